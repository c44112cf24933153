//! `/metrics` in the Prometheus (OpenMetrics) text format, the middleware that counts and logs every
//! request, and the optional access log.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::{Instant, UNIX_EPOCH};

use axum::body::HttpBody;
use axum::extract::ConnectInfo;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, header};
use http_rules::SharedClock;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::paths::RouteKind;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    kind: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// The origin's counters.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    bytes: Family<KindLabels, Counter>,
    access_log: OnceLock<AccessLog>,
    access_log_dropped: Counter,
    connections: Gauge,
    connections_refused: Counter,
}

/// Lines waiting for the access log's writer; past this, lines are dropped (and counted)
/// rather than holding requests behind a slow disk.
const ACCESS_LOG_BACKLOG: usize = 65_536;

/// The access log (`--access-log`): one line per request, appended by a thread of its own,
/// `UNIX_TIME CLIENT METHOD TARGET STATUS BYTES MICROS` (time with milliseconds, client
/// `-` when unknown, BYTES the body bytes sent).
#[derive(Debug)]
pub struct AccessLog {
    lines: SyncSender<String>,
    dropped: Counter,
}

impl AccessLog {
    /// Opens `path` for appending and starts the writer thread.
    pub fn open(path: &Path, dropped: Counter) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let (lines, queue) = std::sync::mpsc::sync_channel::<String>(ACCESS_LOG_BACKLOG);
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                let mut out = std::io::BufWriter::new(file);
                // Flushed whenever the queue runs dry: batched under load, prompt when idle.
                while let Ok(line) = queue.recv() {
                    let mut written = out.write_all(line.as_bytes());
                    while let Ok(line) = queue.try_recv() {
                        written = written.and_then(|()| out.write_all(line.as_bytes()));
                    }
                    if let Err(e) = written.and_then(|()| out.flush()) {
                        tracing::error!(error = %e, "access log write failed; no more lines");
                        break;
                    }
                }
            })?;
        Ok(Self { lines, dropped })
    }

    fn write(&self, line: String) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.lines.try_send(line)
        {
            self.dropped.inc();
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("origin");
        let requests = Family::<RequestLabels, Counter>::default();
        let bytes = Family::<KindLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route kind and status",
            requests.clone(),
        );
        registry.register(
            "http_response_body_bytes",
            "Response body bytes sent, by route kind",
            bytes.clone(),
        );
        let access_log_dropped = Counter::default();
        registry.register(
            "access_log_dropped_lines",
            "Access log lines dropped because the writer fell behind",
            access_log_dropped.clone(),
        );
        let connections = Gauge::default();
        registry.register(
            "connections",
            "Client connections open",
            connections.clone(),
        );
        let connections_refused = Counter::default();
        registry.register(
            "connections_refused",
            "Connections answered 503 at --max-connections",
            connections_refused.clone(),
        );
        Self {
            registry,
            requests,
            bytes,
            access_log: OnceLock::new(),
            access_log_dropped,
            connections,
            connections_refused,
        }
    }
}

impl Metrics {
    /// Writes one access log line per request to `path` from now on; a second call is an
    /// error (one log per origin).
    pub fn open_access_log(&self, path: &Path) -> std::io::Result<()> {
        let log = AccessLog::open(path, self.access_log_dropped.clone())?;
        self.access_log
            .set(log)
            .map_err(|_| std::io::Error::other("the access log is already open"))
    }

    fn record(&self, kind: RouteKind, status: StatusCode, body_bytes: u64) {
        let kind = kind.as_str();
        self.requests
            .get_or_create(&RequestLabels {
                kind,
                status: status.as_u16(),
            })
            .inc();
        self.bytes
            .get_or_create(&KindLabels { kind })
            .inc_by(body_bytes);
    }

    /// The text exposition, with the families of `extra` (steering's) after ours.
    pub fn encode(&self, extra: Option<&Registry>) -> Response {
        let mut out = String::new();
        let encoded = encode_registry(&mut out, &self.registry)
            .and_then(|()| extra.map_or(Ok(()), |r| encode_registry(&mut out, r)))
            .and_then(|()| encode_eof(&mut out));
        if encoded.is_err() {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        (
            [
                // The encoder writes OpenMetrics text (counter families named without
                // `_total`, a closing `# EOF`), which Prometheus reads under this type.
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    ),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            out,
        )
            .into_response()
    }
}

/// The server loop's counts (`origin_connections`, `origin_connections_refused_total`).
impl http_rules::server::ConnectionEvents for Metrics {
    fn opened(&self) {
        self.connections.inc();
    }

    fn closed(&self) {
        self.connections.dec();
    }

    fn refused(&self) {
        self.connections_refused.inc();
    }
}

/// Counts each request by route kind and status, adds the body bytes it sends, and logs one
/// line per request at debug level and to the access log, dated by the server's `clock`.
pub async fn track(
    State((metrics, clock)): State<(Arc<Metrics>, SharedClock)>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let target = request
        .uri()
        .path_and_query()
        .map_or_else(|| path.clone(), |t| t.as_str().to_owned());
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let kind = RouteKind::of_path(&path);
    let response = next.run(request).await;
    let status = response.status();
    // The length the response announces is what it sends; HEAD and 304 send no body.
    let body_bytes = if method == Method::HEAD || status == StatusCode::NOT_MODIFIED {
        0
    } else {
        response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .or_else(|| response.body().size_hint().exact())
            .unwrap_or(0)
    };
    metrics.record(kind, status, body_bytes);
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    if let Some(log) = metrics.access_log.get() {
        let now = clock
            .now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let client = client.map_or_else(|| "-".to_owned(), |ip| ip.to_string());
        log.write(format!(
            "{now:.3} {client} {method} {target} {} {body_bytes} {micros}\n",
            status.as_u16()
        ));
    }
    tracing::debug!(
        %method,
        path,
        status = status.as_u16(),
        bytes = body_bytes,
        micros,
        "request"
    );
    response
}
