//! A programmable test upstream and helpers to start an edge in front of it, all on
//! 127.0.0.1 with ephemeral ports.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

pub mod hostile;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use edge::{AppState, Config};
use http::{HeaderMap, Request, Response, StatusCode};
use http_rules::ManualClock;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

/// A gate the test upstream waits at until the test opens it: a test orders events by
/// holding the upstream, instead of hoping a delay is long enough.
#[derive(Debug, Clone)]
pub struct Gate(Arc<watch::Sender<bool>>);

impl Gate {
    pub fn closed() -> Self {
        Gate(Arc::new(watch::Sender::new(false)))
    }

    /// Lets every waiter through, now and later.
    pub fn open(&self) {
        self.0.send_replace(true);
    }

    async fn passed(&self) {
        let mut open = self.0.subscribe();
        // The sender lives in `self`, so the wait ends only when the gate opens.
        let _ = open.wait_for(|open| *open).await;
    }
}

/// How the upstream answers one path.
#[derive(Debug, Clone)]
pub struct Route {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// The body is sent in this many chunks, `chunk_delay` apart.
    pub chunks: usize,
    pub chunk_delay: Duration,
    /// Stop after this many bytes while announcing the full `Content-Length`.
    pub truncate_at: Option<usize>,
    /// Answer `If-None-Match` equal to this with 304 and these extra headers.
    pub not_modified: Option<(String, Vec<(String, String)>)>,
    /// Send no `Content-Length` (chunked transfer coding).
    pub no_length: bool,
    /// Wait at this gate before the response head.
    pub hold_head: Option<Gate>,
    /// Wait at this gate after the first body chunk.
    pub hold_body: Option<Gate>,
}

impl Route {
    pub fn ok(cache_control: &str, body: impl Into<Bytes>) -> Self {
        Route {
            status: 200,
            headers: vec![("cache-control".into(), cache_control.into())],
            body: body.into(),
            chunks: 1,
            chunk_delay: Duration::ZERO,
            truncate_at: None,
            not_modified: None,
            no_length: false,
            hold_head: None,
            hold_body: None,
        }
    }

    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
}

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path_and_query: String,
    pub headers: HeaderMap,
}

#[derive(Debug, Default)]
struct Shared {
    routes: Mutex<HashMap<String, Route>>,
    seen: Mutex<Vec<Seen>>,
    finished: AtomicUsize,
}

/// The test upstream: counts requests, can be slow, failing, truncating or stopped.
#[derive(Debug)]
pub struct Upstream {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Upstream {
    pub async fn start() -> Arc<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        Arc::new(Upstream {
            addr,
            shared,
            task: Mutex::new(Some(task)),
        })
    }

    pub fn url(&self) -> reqwest::Url {
        format!("http://{}/", self.addr).parse().unwrap()
    }

    pub fn set(&self, path: &str, route: Route) {
        self.shared
            .routes
            .lock()
            .unwrap()
            .insert(path.into(), route);
    }

    /// Requests received for a path (query ignored).
    pub fn count(&self, path: &str) -> usize {
        self.seen_for(path).len()
    }

    pub fn seen_for(&self, path: &str) -> Vec<Seen> {
        let seen = self.shared.seen.lock().unwrap();
        seen.iter()
            .filter(|s| s.path_and_query.split('?').next() == Some(path))
            .cloned()
            .collect()
    }

    /// Every request target received, in order.
    pub fn shared_paths(&self) -> Vec<String> {
        let seen = self.shared.seen.lock().unwrap();
        seen.iter().map(|s| s.path_and_query.clone()).collect()
    }

    /// Bodies sent to the end.
    pub fn finished(&self) -> usize {
        self.shared.finished.load(Ordering::SeqCst)
    }

    /// Stops listening and drops every open connection: the upstream is gone.
    pub fn stop(&self) {
        if let Some(t) = self.task.lock().unwrap().take() {
            t.abort();
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Owning the connections here means aborting this task closes them all.
    let mut conns = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        conns.spawn(async move {
            let svc = hyper::service::service_fn(move |req| answer(shared.clone(), req));
            let mut b = hyper::server::conn::http1::Builder::new();
            // No Date: the edge then dates the response itself, which keeps Age exact.
            b.auto_date_header(false);
            let _ = b.serve_connection(TokioIo::new(stream), svc).await;
        });
        while conns.try_join_next().is_some() {}
    }
}

async fn answer(
    shared: Arc<Shared>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, std::convert::Infallible> {
    let pq = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let path = req.uri().path().to_owned();
    shared.seen.lock().unwrap().push(Seen {
        method: req.method().to_string(),
        path_and_query: pq,
        headers: req.headers().clone(),
    });
    if req.method() == http::Method::POST {
        // Read the whole upload first, as an application would.
        let _ = http_body_util::BodyExt::collect(req.into_body()).await;
        return Ok(Response::builder()
            .status(201)
            .body(Body::from("created\n"))
            .unwrap());
    }
    let route = shared.routes.lock().unwrap().get(&path).cloned();
    if route.is_none() && path == "/healthz" {
        // The edges' upstream health checks: healthy unless a test routes it.
        return Ok(Response::new(Body::from("ok\n")));
    }
    let Some(route) = route else {
        return Ok(Response::builder()
            .status(404)
            .body(Body::from("no route\n"))
            .unwrap());
    };
    if let Some(gate) = &route.hold_head {
        gate.passed().await;
    }
    let inm = req
        .headers()
        .get("if-none-match")
        .and_then(|v| v.to_str().ok());
    if let Some((etag, extra)) = &route.not_modified
        && inm == Some(etag.as_str())
    {
        let mut b = Response::builder()
            .status(304)
            .header("etag", etag.as_str());
        for (k, v) in extra {
            b = b.header(k.as_str(), v.as_str());
        }
        shared.finished.fetch_add(1, Ordering::SeqCst);
        return Ok(b.body(Body::empty()).unwrap());
    }
    let mut b = Response::builder().status(StatusCode::from_u16(route.status).unwrap());
    for (k, v) in &route.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    if !route.no_length {
        b = b.header("content-length", route.body.len());
    }
    if req.method() == http::Method::HEAD {
        return Ok(b.body(Body::empty()).unwrap());
    }
    let body = route.body.clone();
    let send_len = route.truncate_at.unwrap_or(body.len());
    let n = route.chunks.max(1);
    let step = body.len().div_ceil(n).max(1);
    let stream = async_stream(
        shared.clone(),
        body.slice(..send_len),
        step,
        (route.chunk_delay, route.hold_body.clone()),
        route.truncate_at.is_some(),
    );
    Ok(b.body(Body::from_stream(stream)).unwrap())
}

/// The body in chunks of `step` bytes; between chunks a `delay`, and before the
/// second one the `hold` gate.
fn async_stream(
    shared: Arc<Shared>,
    body: Bytes,
    step: usize,
    (delay, hold): (Duration, Option<Gate>),
    truncate: bool,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    futures::stream::unfold((0usize, body, false), move |(pos, body, done)| {
        let shared = shared.clone();
        let hold = hold.clone();
        async move {
            if pos > 0
                && pos == step
                && let Some(gate) = hold
            {
                gate.passed().await;
            }
            if done {
                return None;
            }
            if pos >= body.len() {
                if truncate {
                    // An error mid-body makes hyper drop the connection short of Content-Length.
                    return Some((Err(std::io::Error::other("truncated")), (pos, body, true)));
                }
                shared.finished.fetch_add(1, Ordering::SeqCst);
                return None;
            }
            if pos > 0 {
                tokio::time::sleep(delay).await;
            }
            let end = (pos + step).min(body.len());
            Some((Ok(body.slice(pos..end)), (end, body, false)))
        }
    })
}

/// A running edge in front of `upstream`, on a clock that moves only when the test
/// advances it.
#[derive(Debug)]
pub struct Edge {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    pub clock: ManualClock,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

/// A test configuration: `name`, in front of `upstream`, quick health checks.
pub fn config(upstream: reqwest::Url, name: &str) -> Config {
    let mut cfg = Config::new(upstream);
    cfg.name = Some(name.into());
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.health_interval = Some(Duration::from_millis(100));
    cfg.health_timeout = Some(Duration::from_millis(500));
    cfg
}

impl Edge {
    pub async fn start(upstream: reqwest::Url, tweak: impl FnOnce(&mut Config)) -> Edge {
        let mut cfg = config(upstream, "e1");
        tweak(&mut cfg);
        let listener = TcpListener::bind(cfg.listen).await.unwrap();
        Edge::serve(listener, cfg, &ManualClock::starting_now())
    }

    /// Serves `cfg` on a listener bound beforehand (so that peers can know each
    /// other's URLs before any of them starts), on `clock`.
    pub fn serve(listener: TcpListener, mut cfg: Config, clock: &ManualClock) -> Edge {
        let addr = listener.local_addr().unwrap();
        cfg.listen = addr;
        cfg.clock = clock.shared();
        let state = AppState::new(cfg.clone()).unwrap();
        let app = edge::router(state.clone());
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            edge::serve(listener, app, &cfg, shutdown).await.unwrap();
        });
        Edge {
            addr,
            state,
            clock: clock.clone(),
            stop: Some(stop),
            task,
        }
    }

    /// Stops listening, closes connections and waits until the server is gone.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(15), &mut self.task)
            .await
            .unwrap()
            .unwrap();
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn base(&self) -> reqwest::Url {
        self.url("/").parse().unwrap()
    }
}

/// Binds `n` listeners on 127.0.0.1:0.
pub async fn listeners(n: usize) -> Vec<TcpListener> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    v
}

/// The edge's `/.edge/status` document.
pub async fn status(base: &str) -> serde_json::Value {
    client()
        .get(format!("{}/.edge/status", base.trim_end_matches('/')))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap()
}

/// The value of one metric line (exact name and labels) in `/.edge/metrics`.
pub async fn metric(base: &str, series: &str) -> f64 {
    let text = client()
        .get(format!("{}/.edge/metrics", base.trim_end_matches('/')))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

/// Polls `check` every 50 ms until it holds, for at most `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = std::time::Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

pub fn cache_status(r: &reqwest::Response) -> String {
    r.headers()
        .get_all("cache-status")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A deterministic body of `n` bytes.
pub fn body_of(n: usize) -> Bytes {
    (0..n)
        .map(|i| (i * 7 % 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}
