//! `/healthz` (liveness) and `/metrics` (Prometheus, OpenMetrics text).

use axum::extract::State;
use axum::response::Response;

use crate::state::AppState;
use crate::steering::Steering;

pub async fn healthz() -> &'static str {
    "ok\n"
}

/// The origin's families, then steering's when it steers.
pub async fn metrics(State(state): State<AppState>) -> Response {
    state
        .metrics()
        .encode(state.steering().map(Steering::metrics))
}
