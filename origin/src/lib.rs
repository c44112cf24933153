//! Rivulet's origin: serves a library folder of packaged assets (written by `media`) over
//! HTTP with exact RFC 9110 semantics, plus the browser watch page.
//!
//! - [`etag`], [`conditional`]: validators, preconditions (§13) and ranges (§14) as pure
//!   decisions;
//! - [`entity`]: one representation (bytes or file) turned into the response a request asks
//!   for; every route, file-backed or generated, answers through it;
//! - [`store`]: content hashes and small bodies cached per file version;
//! - [`paths`], [`library`]: what a URL may name, and the library folder;
//! - [`metrics`]: Prometheus counters and the per-request log line;
//! - [`steering`]: content steering, players sent to edges by a probed, load-aware order.

pub mod conditional;
pub mod entity;
pub mod etag;
pub mod library;
pub mod live;
pub mod metrics;
pub mod paths;
pub mod steering;
pub mod store;
mod web;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::middleware;
use axum::response::Response;
use axum::routing::get;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use tower_http::cors::{AllowHeaders, CorsLayer};
use tower_http::timeout::TimeoutLayer;

use crate::entity::{Entity, respond, text_error};
use crate::library::Library;
use crate::live::LiveChannels;
use crate::metrics::Metrics;
use crate::paths::{media_kind, valid_component};
use crate::steering::{Steering, SteeringConfig, SteeringError};
use crate::store::{FileStore, StoreError, StoreLimits};

/// What the server needs to know.
#[derive(Debug, Clone)]
pub struct OriginConfig {
    /// The library folder (one sub-folder per asset).
    pub library: PathBuf,
    /// A folder laid out like `node_modules` holding hls.js, dashjs and shaka-player, served
    /// under `/lib/` for the watch page; `None` when there is none.
    pub web_libs: Option<PathBuf>,
    pub store: StoreLimits,
}

/// Shared state of the routes.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
    live: Arc<LiveChannels>,
    steering: Option<Arc<Steering>>,
}

#[derive(Debug)]
struct Inner {
    library: Library,
    store: FileStore,
    web_libs: Option<PathBuf>,
    metrics: Arc<Metrics>,
}

impl AppState {
    pub fn new(config: &OriginConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                library: Library::new(&config.library),
                store: FileStore::new(config.store),
                web_libs: config.web_libs.clone(),
                metrics: Arc::new(Metrics::default()),
            }),
            live: Arc::new(LiveChannels::default()),
            steering: None,
        }
    }

    /// The same state serving `live` channels too (see [`live::LiveChannels::load`]).
    pub fn with_live(self, live: LiveChannels) -> Self {
        Self {
            live: Arc::new(live),
            ..self
        }
    }

    /// The same state writing an access log to `path` (see [`metrics::AccessLog`]).
    pub fn with_access_log(self, path: &std::path::Path) -> std::io::Result<Self> {
        self.inner.metrics.open_access_log(path)?;
        Ok(self)
    }

    /// The same state steering players to `config`'s edges (see [`steering`]): it starts
    /// probing them on the current Tokio runtime, until the last clone of the state is
    /// dropped.
    pub fn with_steering(self, config: SteeringConfig) -> Result<Self, SteeringError> {
        Ok(Self {
            steering: Some(Steering::start(config)?),
            ..self
        })
    }

    pub fn library(&self) -> &Library {
        &self.inner.library
    }

    pub fn live(&self) -> &LiveChannels {
        &self.live
    }

    pub fn steering(&self) -> Option<&Steering> {
        self.steering.as_deref()
    }
}

/// `Allow` for every route (RFC 9110 §10.2.1): OPTIONS requests are answered by the CORS
/// layer, other methods than these get 405.
const ALLOWED: &str = "GET, HEAD, OPTIONS";

async fn method_not_allowed() -> Response {
    let mut response = text_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed: use GET, HEAD or OPTIONS",
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(ALLOWED));
    response
}

/// The origin's routes (paths as in `shared/DESIGN.md`).
pub fn router(state: AppState) -> Router {
    let metrics = state.inner.metrics.clone();
    // CORS for players on other origins (RFC 9110 fields they must read are exposed).
    let cors = CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([Method::GET, Method::HEAD, Method::OPTIONS])
        .allow_headers(AllowHeaders::any())
        .expose_headers([
            header::ETAG,
            header::CONTENT_RANGE,
            header::CONTENT_LENGTH,
            header::LAST_MODIFIED,
            header::ACCEPT_RANGES,
            header::CACHE_CONTROL,
            header::DATE,
            header::AGE,
            HeaderName::from_static("cache-status"),
        ])
        .max_age(Duration::from_secs(86400))
        // The answer is the same for every Origin (`*`), so responses must not carry
        // `Vary: Origin`, which would split every cache entry by requesting site.
        .vary([]);
    let mut routes = Router::new();
    if state.steering.is_some() {
        routes = routes
            .route("/steering/hls", get(steering::hls))
            .route("/steering/dash", get(steering::dash))
            .route("/steering/status", get(steering::status));
    }
    routes
        .route("/", get(web::index))
        .route("/watch/{asset}", get(web::watch))
        .route("/lib/{name}", get(web::lib_file))
        .route("/watch/live/{channel}", get(web::watch_live))
        .route("/vod/{asset}/{*path}", get(vod))
        .route("/live/{channel}/{*path}", get(live_route))
        .route("/time", get(|| async { live::time_page() }))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics_page))
        .fallback(|| async { text_error(StatusCode::NOT_FOUND, "not found") })
        // After the routes: it applies to the method routers that exist.
        .method_not_allowed_fallback(method_not_allowed)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(cors)
        .layer(middleware::from_fn_with_state(metrics, metrics::track))
        .with_state(state)
}

async fn metrics_page(State(state): State<AppState>) -> Response {
    let steering = state.steering();
    if let Some(steering) = steering {
        steering.refresh_metrics();
    }
    state.inner.metrics.encode(steering.map(Steering::registry))
}

/// `/vod/{asset}/{file}` and `/vod/{asset}/{rendition}/{file}`.
async fn vod(
    State(state): State<AppState>,
    Path((asset, rest)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let mut components = vec![asset.as_str()];
    components.extend(rest.split('/'));
    if let Some(bad) = components.iter().find(|c| !valid_component(c)) {
        let reason = if bad.len() > paths::MAX_COMPONENT {
            "path component too long"
        } else {
            "invalid path component"
        };
        return text_error(StatusCode::BAD_REQUEST, reason);
    }
    if components.len() > 3 {
        return text_error(StatusCode::NOT_FOUND, "not found");
    }
    let Some(kind) = components.last().and_then(|name| media_kind(name)) else {
        return text_error(StatusCode::NOT_FOUND, "not found: unknown file type");
    };
    let Some(path) = state.inner.library.resolve(&components) else {
        return text_error(StatusCode::BAD_REQUEST, "invalid path component");
    };
    if let (Some(steering), [asset, file]) = (state.steering(), components.as_slice())
        && let Some(protocol) = steering::manifest_protocol(file)
    {
        return steering::vod_manifest(
            &state, steering, asset, protocol, &path, kind, &method, &headers,
        )
        .await;
    }
    serve_file(
        &state,
        &path,
        kind.content_type(),
        kind.cache,
        &method,
        &headers,
    )
    .await
}

/// `/live/{channel}/…`: generated manifests and re-timed segments.
async fn live_route(
    State(state): State<AppState>,
    Path((channel, rest)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    state
        .live
        .respond(&state, &channel, &rest, &method, &headers)
        .await
}

/// Looks a file up in the store and answers with [`respond`].
pub(crate) async fn serve_file(
    state: &AppState,
    path: &std::path::Path,
    content_type: HeaderValue,
    cache: entity::CachePolicy,
    method: &Method,
    headers: &HeaderMap,
) -> Response {
    match state.inner.store.get(path).await {
        Ok(file) => {
            let entity = Entity {
                content: file.content,
                len: file.len,
                etag: file.etag,
                last_modified: file.last_modified,
                content_type,
                cache,
            };
            respond(method, headers, &entity)
        }
        Err(e) => store_error(path, &e),
    }
}

/// The answer to a failed store look-up: 404 for a missing file, 500 (logged) otherwise.
pub(crate) fn store_error(path: &std::path::Path, error: &StoreError) -> Response {
    match error {
        StoreError::NotFound => text_error(StatusCode::NOT_FOUND, "not found"),
        StoreError::Io(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read file");
            text_error(StatusCode::INTERNAL_SERVER_ERROR, "cannot read file")
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then lets open requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The peer address feeds the access log.
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// The URLs printed at start-up for one asset, relative to `base` (`http://host:port`).
pub fn asset_urls(base: &str, asset: &library::AssetInfo) -> Vec<(&'static str, String)> {
    let name = &asset.name;
    let mut urls = vec![("watch", format!("{base}/watch/{name}"))];
    if asset.has_hls {
        urls.push((
            "HLS",
            format!("{base}/vod/{name}/{}", library::HLS_MANIFEST),
        ));
    }
    if asset.has_dash {
        urls.push((
            "DASH",
            format!("{base}/vod/{name}/{}", library::DASH_MANIFEST),
        ));
    }
    urls
}
