//! A hostile upstream: a raw-TCP server that answers each request with bytes a test
//! scripts, so that it can break HTTP in ways a real server library never would:
//! `Content-Length` together with `Transfer-Encoding`, resets and stalls mid-head or
//! mid-body, enormous heads, too many header fields, invalid status lines. It records
//! every request head as received, and after answering it discards a request's
//! `Content-Length` bytes from the connection, as a server that does not need a body
//! does: an edge that announces a body it never sends desyncs it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// One request head as the hostile upstream received it.
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// The request line and header lines, exactly as received.
    pub head: String,
    pub method: String,
    pub target: String,
    /// Header fields in order, names lowercased.
    pub fields: Vec<(String, String)>,
    /// Index of the connection it came on (0 for the first accepted).
    pub connection: usize,
}

impl RawRequest {
    /// Every value of the field `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A step of a scripted answer.
#[derive(Debug, Clone)]
pub enum Step {
    Write(Vec<u8>),
    Sleep(Duration),
    /// Never sends another byte (until the peer gives up).
    Stall,
    /// Closes with a TCP reset.
    Reset,
    /// Closes normally (FIN).
    Close,
}

type Script = Arc<dyn Fn(&RawRequest) -> Vec<Step> + Send + Sync>;

/// The hostile upstream. Dropping it stops it and its connections.
pub struct Hostile {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<RawRequest>>>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Hostile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hostile").field("addr", &self.addr).finish()
    }
}

impl Hostile {
    /// Starts a server answering every request by `script`.
    pub async fn start(script: impl Fn(&RawRequest) -> Vec<Step> + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(accept(listener, Arc::new(script), seen.clone()));
        Hostile { addr, seen, task }
    }

    pub fn url(&self) -> reqwest::Url {
        format!("http://{}/", self.addr).parse().unwrap()
    }

    /// Request heads received so far, in order.
    pub fn seen(&self) -> Vec<RawRequest> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests received for `target` (exact request target).
    pub fn seen_for(&self, target: &str) -> Vec<RawRequest> {
        self.seen()
            .into_iter()
            .filter(|r| r.target == target)
            .collect()
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, script: Script, seen: Arc<Mutex<Vec<RawRequest>>>) {
    let mut conns = JoinSet::new();
    for index in 0.. {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        conns.spawn(connection(stream, index, script.clone(), seen.clone()));
        while conns.try_join_next().is_some() {}
    }
}

/// Heads larger than this are refused by closing the connection.
const MAX_HEAD: usize = 1 << 20;

async fn connection(
    mut stream: TcpStream,
    index: usize,
    script: Script,
    seen: Arc<Mutex<Vec<RawRequest>>>,
) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        // Read one head.
        let end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            if buf.len() > MAX_HEAD {
                return;
            }
            let mut chunk = [0u8; 16 * 1024];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        let request = parse(&head, index);
        seen.lock().unwrap().push(request.clone());
        for step in script(&request) {
            match step {
                Step::Write(bytes) => {
                    if stream.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                Step::Sleep(d) => tokio::time::sleep(d).await,
                Step::Stall => std::future::pending::<()>().await,
                Step::Reset => {
                    let _ = stream.set_zero_linger();
                    return;
                }
                Step::Close => {
                    let _ = stream.shutdown().await;
                    return;
                }
            }
        }
        // Answered: now discard the body the request announced, as a server that has
        // no use for it does before reading the next request on the connection.
        let mut announced: usize = request
            .all("content-length")
            .first()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while announced > 0 {
            if buf.is_empty() {
                let mut chunk = [0u8; 16 * 1024];
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let take = announced.min(buf.len());
            buf.drain(..take);
            announced -= take;
        }
    }
}

fn parse(head: &str, connection: usize) -> RawRequest {
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("").to_owned();
    let fields = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    RawRequest {
        head: head.to_owned(),
        method,
        target,
        fields,
        connection,
    }
}

/// A complete response: status line, the given header lines, `Content-Length` and body.
pub fn response(status: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\n");
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// The bytes of a raw HTTP/1.1 exchange on a fresh connection to `addr`: writes
/// `request`, then reads until the peer closes or `limit` passes.
pub async fn exchange(addr: SocketAddr, request: &[u8], limit: Duration) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(limit, s.read_to_end(&mut out)).await;
    out
}

/// One response read from a raw connection.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
    /// The body ended as its framing said (else the connection closed early).
    pub complete: bool,
}

impl RawResponse {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.split("\r\n").skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

/// Reads one response (to a request of `method`) from `s`; `None` when the connection
/// closed (or `limit` passed) before a whole head arrived.
pub async fn read_response(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    method: &str,
    limit: Duration,
) -> Option<RawResponse> {
    tokio::time::timeout(limit, read_response_inner(s, buf, method))
        .await
        .ok()
        .flatten()
}

async fn fill(s: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 16 * 1024];
    match s.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

async fn read_response_inner(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    method: &str,
) -> Option<RawResponse> {
    let end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if !fill(s, buf).await {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.drain(..end);
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let mut r = RawResponse {
        status,
        head,
        body: Vec::new(),
        complete: true,
    };
    if method == "HEAD" || status == 304 || status == 204 || (100..200).contains(&status) {
        return Some(r);
    }
    let chunked = r
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        loop {
            let line_end = loop {
                if let Some(at) = buf.windows(2).position(|w| w == b"\r\n") {
                    break at;
                }
                if !fill(s, buf).await {
                    r.complete = false;
                    return Some(r);
                }
            };
            let size_text = String::from_utf8_lossy(&buf[..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            buf.drain(..line_end + 2);
            while buf.len() < size + 2 {
                if !fill(s, buf).await {
                    r.body.extend_from_slice(&buf[..buf.len().min(size)]);
                    r.complete = false;
                    return Some(r);
                }
            }
            r.body.extend_from_slice(&buf[..size]);
            buf.drain(..size + 2);
            if size == 0 {
                return Some(r);
            }
        }
    }
    match r
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        Some(len) => {
            while buf.len() < len {
                if !fill(s, buf).await {
                    r.body = std::mem::take(buf);
                    r.complete = false;
                    return Some(r);
                }
            }
            r.body = buf.drain(..len).collect();
        }
        None => {
            while fill(s, buf).await {}
            r.body = std::mem::take(buf);
        }
    }
    Some(r)
}
