//! `/steering/hls`, `/steering/dash`: the steering manifests (rfc8216bis §7.1, DASH-IF CTS
//! 00100 §6); `/steering/status`: what the origin knows of each edge. Routed only when the
//! origin steers.

use std::net::{IpAddr, SocketAddr};

use axum::Json;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::{Extensions, HeaderValue, Method, header};
use media::SteeringProtocol;

use crate::error::OriginError;
use crate::state::AppState;

/// `application/json`, never stored: every answer is for one client at one moment.
fn json_response(body: String) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

/// A steering manifest for the request's query; only a GET counts the client (a HEAD asks
/// nothing of the origin's load), within its address's budget.
fn manifest(
    state: &AppState,
    protocol: SteeringProtocol,
    method: &Method,
    query: Option<&str>,
    extensions: &Extensions,
) -> Result<Response, OriginError> {
    let steering = state
        .steering()
        .ok_or_else(|| OriginError::not_found("not found"))?;
    let client: Option<IpAddr> = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip());
    let answer = steering.answer(protocol, query.unwrap_or(""), method == Method::GET, client);
    Ok(json_response(answer.to_json(protocol)))
}

/// `GET /steering/hls`: the HLS steering manifest (rfc8216bis §7.1).
pub async fn hls(
    State(state): State<AppState>,
    method: Method,
    RawQuery(query): RawQuery,
    extensions: Extensions,
) -> Result<Response, OriginError> {
    manifest(
        &state,
        SteeringProtocol::Hls,
        &method,
        query.as_deref(),
        &extensions,
    )
}

/// `GET /steering/dash`: the DASH steering manifest (DASH-IF CTS 00100 §6).
pub async fn dash(
    State(state): State<AppState>,
    method: Method,
    RawQuery(query): RawQuery,
    extensions: Extensions,
) -> Result<Response, OriginError> {
    manifest(
        &state,
        SteeringProtocol::Dash,
        &method,
        query.as_deref(),
        &extensions,
    )
}

/// `GET /steering/status`: each edge's probe, reported load and steered clients.
pub async fn status(State(state): State<AppState>) -> Result<Response, OriginError> {
    let steering = state
        .steering()
        .ok_or_else(|| OriginError::not_found("not found"))?;
    let mut response = Json(steering.status()).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
