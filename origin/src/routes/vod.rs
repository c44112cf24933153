//! `/vod/{asset}/…`: the library's files at any depth in an asset; the multivariant
//! playlist and MPD written for the asset's current build (versioned media URLs, every
//! edge as a pathway with steering) and that build's files under `/vod/{asset}/v-…/`; and
//! with steering, the manifests of assets someone else packaged, edited with every edge as
//! a pathway (`crate::routes::manifests`).

use axum::extract::{self, State};
use axum::response::Response;
use http::{HeaderMap, Method};
use media::SteeringProtocol;

use crate::error::OriginError;
use crate::library::{DASH_MANIFEST, HLS_MANIFEST};
use crate::paths::{self, valid_component};
use crate::routes::files::{file_kind, serve_library_file};
use crate::routes::manifests;
use crate::state::AppState;
use crate::versions::token_of_component;

pub async fn vod(
    State(state): State<AppState>,
    extract::Path((asset, rest)): extract::Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, OriginError> {
    let mut components = vec![asset.as_str()];
    components.extend(rest.split('/'));
    if let Some(bad) = components.iter().find(|c| !valid_component(c)) {
        return Err(if bad.len() > paths::MAX_COMPONENT {
            OriginError::PathTooLong
        } else {
            OriginError::InvalidPath
        });
    }
    if components.len() > 1 + paths::MAX_DEPTH {
        return Err(OriginError::not_found(format!(
            "not found: deeper than {} levels in the asset",
            paths::MAX_DEPTH
        )));
    }
    // A build's own URLs (`/vod/{asset}/v-…/…`): see `crate::versions`.
    if let [asset, second, rest @ ..] = components.as_slice()
        && let Some(token) = token_of_component(second)
    {
        return manifests::versioned_file(&state, asset, token, rest, &method, &headers).await;
    }
    let kind = file_kind(&components)?;
    let path = state
        .library()
        .resolve(&components)
        .ok_or(OriginError::InvalidPath)?;
    if let Some(protocol) = manifest_protocol(&components) {
        if let [asset, HLS_MANIFEST | DASH_MANIFEST] = components.as_slice() {
            // An asset a dropped file makes, not built yet: 503 while it is prepared.
            if let Some(unavailable) = state.ingest().and_then(|i| i.unavailable(asset)) {
                return Err(unavailable);
            }
            return manifests::vod_manifest(
                &state,
                &components,
                protocol,
                kind,
                &path,
                &method,
                &headers,
            )
            .await;
        }
        if state.steering().is_some() {
            return manifests::edited_manifest(
                &state,
                &components,
                protocol,
                kind,
                &path,
                &method,
                &headers,
            )
            .await;
        }
    }
    serve_library_file(
        &state,
        &path,
        kind.content_type(),
        kind.cache,
        &method,
        &headers,
    )
    .await
}

/// The steering protocol of a manifest file: a playlist (multivariant or not: that is in
/// its text) or an MPD.
fn manifest_protocol(components: &[&str]) -> Option<SteeringProtocol> {
    let (_, extension) = components.last()?.rsplit_once('.')?;
    if extension.eq_ignore_ascii_case("m3u8") {
        Some(SteeringProtocol::Hls)
    } else if extension.eq_ignore_ascii_case("mpd") {
        Some(SteeringProtocol::Dash)
    } else {
        None
    }
}
