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
use std::time::Duration;

use axum::Router;
use axum::routing::{any, get};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;
use tracing::{debug, info, warn};

use crate::conn::{AcceptBackoff, SendTimeout, Throttle};

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

/// Bytes hyper may buffer per connection and direction (its default is ~400 KiB):
/// part of the documented memory per connection.
const CONNECTION_BUFFER: usize = 64 * 1024;

/// Connections over the cap that may linger at once to deliver their 503.
const MAX_REFUSALS: usize = 64;

/// Serves `app` on `listener` until `shutdown` resolves, then stops listening (so
/// new connections are refused at once, and peers fall back) and drains connections
/// for up to 10 s. HTTP/1.1 with keep-alive. Every connection is bounded (RFC 9112
/// leaves these limits to the server): request heads larger than `max_header_size` get
/// 431; a client that takes longer than `header_read_timeout` to send a request head,
/// the first or the next on a kept-alive connection, is disconnected (so idle
/// connections close after that long too); a client that takes none of its response
/// for `send_timeout` is disconnected; past `max_connections` open connections, new
/// ones are answered 503 and closed; failing `accept`s (out of descriptors…) back off.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    cfg: &Config,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    let max_header = usize::try_from(cfg.max_header_size).unwrap_or(usize::MAX);
    http.timer(TokioTimer::new())
        .header_read_timeout(cfg.header_read_timeout)
        .max_header_size(max_header)
        // What hyper may buffer per connection, each way: a request head must fit.
        .max_buf_size(max_header.saturating_add(8 * 1024).max(CONNECTION_BUFFER))
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(cfg.max_connections));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    let counters = cfg.connections.clone();
    let (mut backoff, mut accept_log, mut cap_log) = (
        AcceptBackoff::default(),
        Throttle::new(Duration::from_secs(10)),
        Throttle::new(Duration::from_secs(10)),
    );
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => {
                    backoff.succeeded();
                    a
                }
                Err(e) => {
                    let pause = backoff.failed();
                    if let Some(n) = accept_log.event(std::time::Instant::now()) {
                        warn!(error = %e, failures = n, ?pause, "accept failed: backing off");
                    }
                    tokio::select! {
                        () = tokio::time::sleep(pause) => continue,
                        () = &mut shutdown => break,
                    }
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            counters.refused.inc();
            if let Some(n) = cap_log.event(std::time::Instant::now()) {
                warn!(
                    max_connections = cfg.max_connections,
                    refused = n,
                    "connection limit reached: answering new connections 503 (--max-connections)"
                );
            }
            // A bounded number of refusals linger to deliver their 503; past that,
            // the connection is just closed.
            if let Ok(lingering) = refusals.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    conn::refuse(stream).await;
                    drop(lingering);
                });
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ClientAddr(peer));
                app.clone().oneshot(req.map(axum::body::Body::new))
            });
        let io = TokioIo::new(SendTimeout::new(stream, cfg.send_timeout));
        let conn = graceful.watch(http.serve_connection(io, service));
        let open = counters.open.clone();
        open.inc();
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                debug!(%peer, error = %e, "connection ended with an error");
            }
            open.dec();
            drop(slot);
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
