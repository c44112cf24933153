//! `/metrics` in the Prometheus (OpenMetrics) text format, and the middleware that counts and logs every
//! request.

use std::sync::Arc;
use std::time::Instant;

use axum::body::HttpBody;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, header};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
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
        Self {
            registry,
            requests,
            bytes,
        }
    }
}

impl Metrics {
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

    /// The text exposition.
    pub fn encode(&self) -> Response {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
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

/// Counts each request by route kind and status, adds the body bytes it sends, and logs one
/// line per request at debug level.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
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
    tracing::debug!(
        %method,
        path,
        status = status.as_u16(),
        bytes = body_bytes,
        micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        "request"
    );
    response
}
