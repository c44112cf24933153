//! Admin surface: `/.edge/metrics`, `/.edge/healthz`, `/.edge/status` (reserved
//! prefix on the proxy port) and the `PURGE` method on any proxied URL.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{HeaderValue, StatusCode};
use http_rules::edge_status::{EdgeStatus, HealthStatus, LoadStatus, PeerStatus, UpstreamStatus};

use crate::health::HealthView;
use crate::key::primary_key;
use crate::metrics::StoreSize;
use crate::respond::plain;
use crate::state::AppState;

/// Paths under this prefix are served by the edge itself, never proxied.
pub const ADMIN_PREFIX: &str = "/.edge";

pub async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    // Bring moka's entry count and weighted size up to date before reading them.
    st.store.run_pending_tasks().await;
    let store = StoreSize {
        entries: st.store.entry_count(),
        bytes: st.store.weighted_size(),
        filling: st.fill_budget.used(),
    };
    let encoded = st
        .metrics
        .encode(store, &st.cfg.connections, &st.membership(), st.draining());
    let Ok(body) = encoded else {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "metrics encoding failed");
    };
    (
        [
            // OpenMetrics text (counter families named without `_total`, a closing
            // `# EOF`), which Prometheus reads under this type.
            (
                CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            ),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

/// Liveness for load balancers and peers: 503 while draining, so they stop sending
/// new work before the listener closes.
pub async fn healthz(State(st): State<Arc<AppState>>) -> Response {
    if st.draining() {
        plain(StatusCode::SERVICE_UNAVAILABLE, "draining")
    } else {
        plain(StatusCode::OK, "ok")
    }
}

/// A target's health as `/.edge/status` reports it.
fn health_status(v: HealthView) -> HealthStatus {
    HealthStatus {
        healthy: v.state.healthy,
        consecutive_successes: v.state.successes,
        consecutive_failures: v.state.failures,
        last_check_ms: v.last_check_ms,
        last_error: v.last_error,
    }
}

/// `GET /.edge/status`: the JSON the origin polls to steer players between edges
/// (its schema is [`EdgeStatus`], shared with the origin).
pub async fn status(State(st): State<Arc<AppState>>) -> Json<EdgeStatus> {
    st.store.run_pending_tasks().await;
    let m = st.membership();
    let draining = st.draining();
    let rates = st.load.rates();
    Json(EdgeStatus {
        name: st.name.clone(),
        healthy: !draining && m.can_serve(),
        draining,
        uptime_s: st.load.started.elapsed().as_secs_f64(),
        load: LoadStatus {
            in_flight: st.load.in_flight(),
            requests_per_s: rates.requests_per_s,
            bytes_out_per_s: rates.bytes_out_per_s,
            cache_entries: st.store.entry_count(),
            cache_bytes: st.store.weighted_size(),
        },
        peers: m
            .peer_views(draining)
            .into_iter()
            .map(|(p, view)| PeerStatus {
                name: p.name.clone(),
                url: p.url.to_string(),
                is_self: p.is_self,
                health: health_status(view),
            })
            .collect(),
        upstreams: m
            .upstreams
            .iter()
            .map(|u| UpstreamStatus {
                url: u.url.to_string(),
                health: health_status(u.health.view()),
            })
            .collect(),
    })
}

/// The rest of the reserved prefix: never proxied.
pub async fn unknown() -> Response {
    plain(StatusCode::NOT_FOUND, "unknown admin path")
}

/// `PURGE /path?query` drops that object (and its variants); `PURGE /prefix*` drops
/// every key starting with `/prefix`. Requires `Authorization: Bearer <--purge-token>`.
pub async fn purge(st: &AppState, parts: &Parts) -> Response {
    let Some(token) = st.cfg.purge_token.as_deref() else {
        return plain(
            StatusCode::FORBIDDEN,
            "PURGE disabled: no --purge-token configured",
        );
    };
    // RFC 9110 §11.1: the scheme is case-insensitive; `1*SP` before the credentials.
    let presented = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    if !presented.is_some_and(|p| constant_time_eq(p.as_bytes(), token.as_bytes())) {
        let mut r = plain(StatusCode::UNAUTHORIZED, "PURGE needs a valid bearer token");
        r.headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    }
    st.metrics.purges.inc();
    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    if let Some(prefix) = pq.strip_suffix('*') {
        return if st.store.invalidate_prefix(prefix).await {
            plain(StatusCode::OK, "purged prefix")
        } else {
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "prefix purge unavailable",
            )
        };
    }
    if st.store.invalidate(&primary_key(pq)).await {
        plain(StatusCode::OK, "purged")
    } else {
        plain(StatusCode::NOT_FOUND, "not cached")
    }
}

/// Compares without an early exit, so response timing does not leak the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn token_compare() {
        assert!(super::constant_time_eq(b"abc", b"abc"));
        assert!(!super::constant_time_eq(b"abc", b"abd"));
        assert!(!super::constant_time_eq(b"abc", b"abcd"));
    }
}
