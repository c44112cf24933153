//! Client connections: the limits the server loop applies to each (a send timeout),
//! to all of them (a cap), and to accepting them (a back-off on errors), with the
//! rate-limited log lines that say so.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// The server loop's counters, shared with the node's `/.edge/metrics` through
/// [`crate::Config::connections`] (clones count together).
#[derive(Debug, Clone, Default)]
pub struct ConnectionCounters {
    /// `edge_connections`: client connections open now.
    pub open: Gauge,
    /// `edge_connections_refused_total`: connections answered 503 at the cap.
    pub refused: Counter,
}

/// A connection whose writes fail once the peer has accepted nothing for `limit`:
/// a client that stops reading its response is disconnected instead of holding a
/// connection, a response and the fill behind it forever (nginx's `send_timeout`).
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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
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
