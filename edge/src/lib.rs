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
pub mod conn;
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

use axum::Router;
use axum::routing::{any, get};
use http_rules::server::Limits;
use tokio::net::TcpListener;
use tower::ServiceExt;

pub use config::Config;
pub use state::{AppState, ClientAddr, StartError};

/// The edge as an axum app: admin routes under [`admin::ADMIN_PREFIX`], everything
/// else proxied.
pub fn router(state: Arc<AppState>) -> Router {
    let routes = Router::new()
        .route("/.edge/metrics", get(admin::metrics))
        .route("/.edge/healthz", get(admin::healthz))
        .route("/.edge/status", get(admin::status))
        .route("/.edge", any(admin::unknown))
        .route("/.edge/", any(admin::unknown))
        .route("/.edge/{*rest}", any(admin::unknown))
        .fallback(proxy::handle)
        .with_state(state.clone());
    // Routing happens on the normal form of the target (one form for the admin
    // routes, the cache key, the upstream request and PURGE), so the check runs first.
    Router::new()
        .fallback_service(routes)
        .layer(axum::middleware::from_fn_with_state(
            state,
            proxy::normal_request,
        ))
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops listening (so
/// new connections are refused at once, and peers fall back) and drains connections
/// for up to 10 s. HTTP/1.1 with keep-alive, through the server loop the origin shares
/// (`http_rules::server`). Every connection is bounded (RFC 9112 leaves these limits to
/// the server): request heads larger than `max_header_size` get 431; a client that
/// takes longer than `header_read_timeout` to send a request head, the first or the
/// next on a kept-alive connection, is disconnected (so idle connections close after
/// that long too); a client that takes none of its response for `send_timeout` is
/// disconnected; past `max_connections` open connections, new ones are answered 503
/// and closed; failing `accept`s (out of descriptors…) back off.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    cfg: &Config,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let limits = Limits {
        header_read_timeout: cfg.header_read_timeout,
        send_timeout: cfg.send_timeout,
        max_connections: cfg.max_connections,
        max_header_size: usize::try_from(cfg.max_header_size).unwrap_or(usize::MAX),
        ..Limits::default()
    };
    let service_for = move |peer| {
        let app = app.clone();
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ClientAddr(peer));
            app.clone().oneshot(req.map(axum::body::Body::new))
        })
    };
    let events = Arc::new(cfg.connections.clone());
    http_rules::server::serve(listener, service_for, &limits, events, shutdown).await
}
