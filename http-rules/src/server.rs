//! The server loop Rivulet's servers share (feature `server`): HTTP/1.1 with keep-alive
//! over hyper, every connection bounded, because a server on the internet meets clients
//! that send slowly, never read, never leave, or come by the thousand. RFC 9112 leaves
//! these limits to the server (§9.5: "a server SHOULD … close idle connections"):
//!
//! - a request head larger than [`Limits::max_header_size`] or with more than
//!   [`Limits::max_headers`] fields gets 431 (hyper's answer), a malformed one 400;
//! - a client that takes longer than [`Limits::header_read_timeout`] to send a request
//!   head (slowloris), the first or the next on a kept-alive connection, is
//!   disconnected: the same timer closes idle keep-alive connections;
//! - a client that takes none of its response for [`Limits::send_timeout`] is
//!   disconnected ([`SendTimeout`]);
//! - past [`Limits::max_connections`] open connections, a new one is answered 503 and
//!   closed, with a log line at most every 10 s;
//! - a failing `accept` (out of descriptors, of memory) backs off ([`AcceptBackoff`])
//!   instead of spinning, with a log line at most every 10 s.

use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Sleep;
use tracing::{debug, info, warn};

/// The bounds every connection is served within (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Time a client has to send a request head, and longest idle time between two
    /// requests on a kept-alive connection.
    pub header_read_timeout: Duration,
    /// A client that takes none of its response for this long is disconnected.
    pub send_timeout: Duration,
    /// Client connections open at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// Largest request head (request line and fields), bytes; larger gets 431.
    pub max_header_size: usize,
    /// Most fields in a request head; more gets 431.
    pub max_headers: usize,
    /// How long open connections may finish after the shutdown signal.
    pub drain: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            send_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            max_header_size: 32 * 1024,
            max_headers: 100,
            drain: Duration::from_secs(10),
        }
    }
}

/// What a server counts about its connections (its metrics): every method is called
/// from the server loop or a connection's task.
pub trait ConnectionEvents: Send + Sync + 'static {
    /// A connection was accepted and is being served.
    fn opened(&self) {}
    /// A served connection ended.
    fn closed(&self) {}
    /// A connection over [`Limits::max_connections`] was answered 503 and closed.
    fn refused(&self) {}
}

/// Counts nothing.
impl ConnectionEvents for () {}

/// Bytes hyper may buffer per connection and direction (its default is ~400 KiB), at
/// least a whole request head: part of the memory per connection.
const CONNECTION_BUFFER: usize = 64 * 1024;

/// Connections over the cap that may linger at once to deliver their 503.
const MAX_REFUSALS: usize = 64;

/// How often a repeated condition (accept errors, the cap) is logged at most.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Serves connections from `listener` until `shutdown` resolves, then stops listening
/// (new connections are refused at once) and lets open ones finish for up to
/// [`Limits::drain`]. `service_for(peer)` gives the service of one connection.
pub async fn serve<M, S, B>(
    listener: TcpListener,
    service_for: M,
    limits: &Limits,
    events: Arc<dyn ConnectionEvents>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    M: Fn(SocketAddr) -> S,
    S: hyper::service::Service<http::Request<Incoming>, Response = http::Response<B>>
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_size)
        .max_headers(limits.max_headers)
        // What hyper may buffer per connection, each way: a request head must fit.
        .max_buf_size(
            limits
                .max_header_size
                .saturating_add(8 * 1024)
                .max(CONNECTION_BUFFER),
        )
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    let (mut backoff, mut accept_log, mut cap_log) = (
        AcceptBackoff::default(),
        Throttle::new(LOG_EVERY),
        Throttle::new(LOG_EVERY),
    );
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => {
                    backoff.succeeded();
                    a
                }
                Err(e) => {
                    let pause = backoff.failed();
                    if let Some(n) = accept_log.event(Instant::now()) {
                        warn!(error = %e, failures = n, ?pause, "accept failed: backing off");
                    }
                    tokio::select! {
                        () = tokio::time::sleep(pause) => continue,
                        () = &mut shutdown => break,
                    }
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            events.refused();
            if let Some(n) = cap_log.event(Instant::now()) {
                warn!(
                    max_connections = limits.max_connections,
                    refused = n,
                    "connection limit reached: answering new connections 503 (--max-connections)"
                );
            }
            // A bounded number of refusals linger to deliver their 503; past that,
            // the connection is just closed.
            if let Ok(lingering) = refusals.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    refuse(stream).await;
                    drop(lingering);
                });
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(SendTimeout::new(stream, limits.send_timeout));
        let conn = graceful.watch(http.serve_connection(io, service_for(peer)));
        let events = events.clone();
        events.opened();
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                debug!(%peer, error = %e, "connection ended with an error");
            }
            events.closed();
            drop(slot);
        });
    }
    drop(listener);
    info!("shutting down: draining connections");
    if tokio::time::timeout(limits.drain, graceful.shutdown())
        .await
        .is_err()
    {
        warn!(drain = ?limits.drain, "connections still open after the drain time; exiting anyway");
    }
    Ok(())
}

/// A connection whose writes fail once the peer has accepted nothing for `limit`:
/// a client that stops reading its response is disconnected instead of holding a
/// connection and a response forever (nginx's `send_timeout`).
#[derive(Debug)]
pub struct SendTimeout<S> {
    inner: S,
    limit: Duration,
    /// Running while writes make no progress.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> SendTimeout<S> {
    pub fn new(inner: S, limit: Duration) -> Self {
        SendTimeout {
            inner,
            limit,
            stalled: None,
        }
    }

    /// The outcome of one write attempt: progress resets the clock; no progress
    /// starts it, and fails once it runs out.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        attempt: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if attempt.is_ready() {
            self.stalled = None;
            return attempt;
        }
        let limit = self.limit;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        ready!(stalled.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "client took nothing for the send timeout",
        )))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SendTimeout<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SendTimeout<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let attempt = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch(cx, attempt)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let attempt = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.watch(cx, attempt)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let attempt = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(cx, attempt)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let attempt = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.watch(cx, attempt)
    }
}

/// The pause after a failed `accept` (out of descriptors, of memory…): 10 ms, doubling
/// up to one second while failures go on, back to the start after a success. Without
/// it the loop would spin on an error that only time (connections closing) clears.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AcceptBackoff {
    failures: u32,
}

impl AcceptBackoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);

    /// Records a failure; returns how long to pause.
    pub fn failed(&mut self) -> Duration {
        let pause = Self::FIRST
            .saturating_mul(1 << self.failures.min(10))
            .min(Self::MAX);
        self.failures = self.failures.saturating_add(1);
        pause
    }

    pub fn succeeded(&mut self) {
        self.failures = 0;
    }
}

/// A log line that repeats at most once per `every`: the first event is logged at
/// once, later ones are counted and reported with the next line.
#[derive(Debug, Clone, Copy)]
pub struct Throttle {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    pub fn new(every: Duration) -> Self {
        Throttle {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// Records an event at `now`; `Some(n)` when a line should be logged now, `n`
    /// being the events since the last line (this one included).
    pub fn event(&mut self, now: Instant) -> Option<u64> {
        self.suppressed += 1;
        if self
            .last
            .is_some_and(|last| now.saturating_duration_since(last) < self.every)
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// The answer to a connection over the cap, written without reading the request.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: text/plain; charset=utf-8\r\n\
retry-after: 1\r\n\
connection: close\r\n\
content-length: 25\r\n\
\r\n\
connection limit reached\n";

/// Answers a connection over the cap with 503 and closes it. A short lingering read
/// (RFC 9112 §9.6) keeps the request bytes already sent from turning the close into
/// a reset that would destroy the answer.
pub async fn refuse(stream: TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = stream;
    let linger = async {
        if stream.write_all(REFUSAL).await.is_err() {
            return;
        }
        let _ = stream.shutdown().await;
        let mut sink = [0u8; 4096];
        let mut left = 64 * 1024;
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(n) => left -= n.min(left),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), linger).await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn accept_backoff_doubles_to_a_second_and_resets() {
        let mut b = AcceptBackoff::default();
        let pauses: Vec<u64> = (0..9).map(|_| b.failed().as_millis() as u64).collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        for _ in 0..100 {
            b.failed();
        }
        assert_eq!(b.failed(), Duration::from_secs(1));
        b.succeeded();
        assert_eq!(b.failed(), Duration::from_millis(10));
    }

    #[test]
    fn throttled_lines_count_what_they_skipped() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut t = Throttle::new(Duration::from_secs(10));
        let rows = [
            (0, Some(1)),
            (1, None),
            (5_000, None),
            (10_000, Some(3)),
            (10_001, None),
            (25_000, Some(2)),
        ];
        for (ms, want) in rows {
            assert_eq!(t.event(at(ms)), want, "at {ms} ms");
        }
    }

    #[tokio::test]
    async fn a_peer_that_takes_nothing_fails_the_write() {
        use tokio::io::AsyncWriteExt;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // The peer connects and never reads.
        let _peer = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let mut s = SendTimeout::new(server, Duration::from_millis(200));
        let chunk = vec![0u8; 1 << 20];
        let started = Instant::now();
        let err = loop {
            if let Err(e) = s.write_all(&chunk).await {
                break e;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "never timed out"
            );
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
