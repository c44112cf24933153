//! The origin's server loop: the shared one of [`http_rules::server`] (header-read and
//! idle timeout, send timeout, a cap on connections, bounded request heads, accept
//! back-off), serving the [`crate::router`] with the peer address for the access log;
//! and the default connection cap, derived from the descriptor limit.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::ConnectInfo;
use http_rules::server::{ConnectionEvents, Limits};
use tower::ServiceExt;

/// Serves `router` on `listener` within `limits` until `shutdown` completes, then lets
/// open requests finish (for up to `limits.drain`). `events` counts connections (the
/// origin's [`crate::metrics::Metrics`]).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: &Limits,
    events: Arc<dyn ConnectionEvents>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let service_for = move |peer: SocketAddr| {
        let router = router.clone();
        hyper::service::service_fn(move |mut request: http::Request<hyper::body::Incoming>| {
            // The peer address feeds the access log.
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request.map(axum::body::Body::new))
        })
    };
    http_rules::server::serve(listener, service_for, limits, events, shutdown).await
}

/// [`serve_with`] the default limits, counting nothing.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_with(listener, router, &Limits::default(), Arc::new(()), shutdown).await
}

/// Descriptors kept for everything but client connections: the listener, library files
/// being read, steering probes, the access log, ingest jobs.
const RESERVED_DESCRIPTORS: u64 = 64;

/// The connection cap when `--max-connections` is not given: half the descriptors left
/// after [`RESERVED_DESCRIPTORS`] (a connection streaming a large file holds that file
/// open too), at most 10,000, at least 16; 10,000 when the limit is unknown. The cap is
/// then reached before the descriptors run out, so a crowd gets a 503 and a log line
/// that names the flag, not accept errors.
pub fn default_max_connections(descriptor_limit: Option<u64>) -> usize {
    const MOST: u64 = 10_000;
    let cap = descriptor_limit.map_or(MOST, |n| {
        (n.saturating_sub(RESERVED_DESCRIPTORS) / 2).clamp(16, MOST)
    });
    usize::try_from(cap).unwrap_or(usize::MAX)
}

/// The soft limit on open files of this process (`RLIMIT_NOFILE`), read from
/// `/proc/self/limits`; `None` where there is no such file or no limit.
pub fn descriptor_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_descriptor_limit(&limits)
}

/// The soft limit of the `Max open files` line of a `/proc/PID/limits` text.
fn parse_descriptor_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cap_leaves_descriptors_for_files() {
        let rows = [
            (None, 10_000),
            (Some(1024), 480),
            (Some(20_000), 9_968),
            (Some(1_048_576), 10_000),
            (Some(64), 16),
            (Some(0), 16),
        ];
        for (limit, want) in rows {
            assert_eq!(default_max_connections(limit), want, "{limit:?}");
        }
    }

    #[test]
    fn the_soft_limit_is_read_from_proc_limits() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max cpu time              unlimited            unlimited            seconds   \n\
                    Max open files            1024                 524288               files     \n";
        assert_eq!(parse_descriptor_limit(text), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_descriptor_limit(unlimited), None);
        assert_eq!(parse_descriptor_limit(""), None);
    }
}
