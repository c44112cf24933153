//! Rivulet edge: an RFC 9111 caching reverse proxy for media, media-agnostic. The HTTP
//! rules it shares with the origin and the player (preconditions, ranges, the 304
//! fields, `Cache-Control`, `Cache-Status`, the status schema, CLI grammars, clocks)
//! live in [`http_rules`].
//!
//! Modules, each using only those listed before it:
//! - pure rules: [`policy`] (freshness, `Age`, storability, stale use), [`key`],
//!   [`phase`] (the per-request outcome), [`hrw`] (rendezvous hashing), [`health`]
//!   (rise/fall);
//! - configuration: [`config`] (flags), [`settings`] (flags over the TOML file);
//! - parts: [`upstream`] (the client and a proxy's header rules), [`cluster`] (peers
//!   and upstreams, routing), [`metrics`], [`load`], [`body`], [`store`] (moka, in
//!   bytes), [`fill`] (coalesced streaming fills), [`probe`] (active health checks);
//! - [`state`]: one node's state, its clock, reload and drain;
//! - the request path: [`decide`] (pure: route, hit, stale, fetch), [`forward`]
//!   (peers, then upstreams with failover), [`respond`] (the client response),
//!   [`fill_task`], [`pass`] (pass-through), [`admin`] (metrics, health, status,
//!   purge), [`proxy`] (the pipeline);
//! - [`router`] / [`serve`]: the axum app and a hardened hyper server loop.

pub mod admin;
pub mod body;
pub mod cluster;
pub mod config;
pub mod decide;
pub mod fill;
pub mod fill_task;
pub mod forward;
pub mod health;
pub mod hrw;
pub mod key;
pub mod load;
pub mod metrics;
pub mod pass;
pub mod phase;
pub mod policy;
pub mod probe;
pub mod proxy;
pub mod respond;
pub mod settings;
pub mod state;
pub mod store;
pub mod upstream;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{any, get};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::ServiceExt;
use tracing::{debug, info, warn};

pub use config::Config;
pub use state::{AppState, ClientAddr, StartError};

/// The edge as an axum app: admin routes under [`admin::ADMIN_PREFIX`], everything
/// else proxied.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/.edge/metrics", get(admin::metrics))
        .route("/.edge/healthz", get(admin::healthz))
        .route("/.edge/status", get(admin::status))
        .route("/.edge/{*rest}", any(admin::unknown))
        .fallback(proxy::handle)
        .with_state(state)
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops listening (so
/// new connections are refused at once, and peers fall back) and drains connections
/// for up to 10 s. HTTP/1.1 with keep-alive; request heads larger than `max_header_size`
/// get 431, and clients that take longer than `header_read_timeout` to send a request
/// head are disconnected (RFC 9112 leaves both limits to the server).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    cfg: &Config,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(cfg.header_read_timeout)
        .max_header_size(usize::try_from(cfg.max_header_size).unwrap_or(usize::MAX))
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ClientAddr(peer));
                app.clone().oneshot(req.map(axum::body::Body::new))
            });
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    info!("shutting down: draining connections");
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        warn!("connections still open after 10 s; exiting anyway");
    }
    Ok(())
}
