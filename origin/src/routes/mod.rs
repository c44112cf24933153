//! The HTTP layer: one module per family of routes (paths as in `shared/DESIGN.md`), each
//! handler answering with a representation through [`crate::entity::respond`] or with an
//! [`OriginError`].
//!
//! - [`vod`]: `/vod/…`, files of the library (and steered VOD manifests);
//! - [`live`]: `/live/…` and `/time`;
//! - [`pages`]: `/`, `/watch/…`, `/lib/…`, `/library/status`;
//! - [`steering`]: the steering manifests and status, `/steering/…`;
//! - [`health`]: `/healthz`, `/metrics`.
//!
//! Before routing, [`checks`] refuses a request without one valid `Host` or a target
//! with a normal form, and puts the target in that form.

mod checks;
mod files;
mod health;
mod live;
mod manifests;
mod pages;
mod steering;
mod vod;

use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderName, Method, header};
use tower_http::cors::{AllowHeaders, CorsLayer};

use crate::error::OriginError;
use crate::metrics;
use crate::state::AppState;

/// The longest a handler may take before the request is answered 408.
const HANDLER_TIMEOUT: Duration = Duration::from_secs(30);

/// The origin's routes.
pub fn router(state: AppState) -> Router {
    let metrics = (state.metrics().clone(), state.clock().clone());
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
    if state.steering().is_some() {
        routes = routes
            .route("/steering/hls", get(steering::hls))
            .route("/steering/dash", get(steering::dash))
            .route("/steering/status", get(steering::status));
    }
    let routes = routes
        .route("/", get(pages::index))
        .route("/watch/{asset}", get(pages::watch))
        .route("/lib/{name}", get(pages::lib_file))
        .route("/library/status", get(pages::library_status))
        .route("/watch/live/{channel}", get(pages::watch_live))
        .route("/vod/{asset}/{*path}", get(vod::vod))
        .route("/live/{channel}/{*path}", get(live::live))
        .route("/time", get(live::time))
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .fallback(|| async { OriginError::not_found("not found") })
        // After the routes: it applies to the method routers that exist.
        .method_not_allowed_fallback(|| async { OriginError::MethodNotAllowed })
        .layer(middleware::from_fn(timeout))
        .with_state(state);
    // The checks run before routing (a layer on the routes themselves would run after
    // it), inside CORS and the metrics, so a 400 is counted and readable cross-origin.
    Router::new()
        .fallback_service(routes)
        .layer(middleware::from_fn(checks::normal_request))
        .layer(cors)
        .layer(middleware::from_fn_with_state(metrics, metrics::track))
}

/// Answers 408 when a handler has not answered within [`HANDLER_TIMEOUT`] (a stalled disk
/// must not hold a connection forever).
async fn timeout(request: Request, next: Next) -> Response {
    match tokio::time::timeout(HANDLER_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => OriginError::Timeout.into_response(),
    }
}
