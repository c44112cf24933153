//! Admin surface: `/.edge/metrics`, `/.edge/healthz` (reserved prefix on the proxy
//! port) and the `PURGE` method on any proxied URL.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{HeaderValue, StatusCode};

use crate::key::primary_key;
use crate::proxy::{AppState, plain};

/// Paths under this prefix are served by the edge itself, never proxied.
pub const ADMIN_PREFIX: &str = "/.edge";

pub async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    // Bring moka's entry count and weighted size up to date before reading them.
    st.store.run_pending_tasks().await;
    let body = st
        .metrics
        .render(st.store.entry_count(), st.store.weighted_size());
    (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        body,
    )
        .into_response()
}

pub async fn healthz() -> Response {
    plain(StatusCode::OK, "ok")
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
    let presented = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
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
