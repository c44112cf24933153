//! `/vod/{asset}/{file}` and `/vod/{asset}/{rendition}/{file}`: the library's files, and
//! with content steering the multivariant playlist and MPD written with every edge as a
//! pathway.

use std::path::Path;

use axum::extract::{self, State};
use axum::response::Response;
use http::{HeaderMap, Method};
use media::SteeringProtocol;

use crate::entity::{Content, Entity, respond};
use crate::error::OriginError;
use crate::library::{DASH_MANIFEST, HLS_MANIFEST};
use crate::paths::{self, MediaKind, media_kind, valid_component};
use crate::routes::files::{file_error, library_file, serve_library_file};
use crate::state::AppState;
use crate::steering::Steering;
use crate::steering::manifests::SourceVersion;
use crate::store::StoreError;

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
    let kind = components
        .last()
        .and_then(|name| media_kind(name))
        .ok_or_else(|| OriginError::not_found("not found: unknown file type"))?;
    let path = state
        .library()
        .resolve(&components)
        .ok_or(OriginError::InvalidPath)?;
    if let (Some(steering), [asset, file]) = (state.steering(), components.as_slice())
        && let Some(protocol) = manifest_protocol(file)
    {
        return steered_manifest(
            &state, steering, asset, protocol, &path, kind, &method, &headers,
        )
        .await;
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

/// The steering protocol of a VOD manifest file name.
fn manifest_protocol(file: &str) -> Option<SteeringProtocol> {
    match file {
        HLS_MANIFEST => Some(SteeringProtocol::Hls),
        DASH_MANIFEST => Some(SteeringProtocol::Dash),
        _ => None,
    }
}

/// A VOD manifest (on disk at `path`) written from the asset's `presentation.json` with
/// every edge as a pathway, kept by the steering state until that file changes. Its bytes,
/// so its ETag, only change with the asset or the configuration, and it answers like the
/// file it replaces.
#[allow(clippy::too_many_arguments)]
async fn steered_manifest(
    state: &AppState,
    steering: &Steering,
    asset: &str,
    protocol: SteeringProtocol,
    path: &Path,
    kind: MediaKind,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, OriginError> {
    // The asset offers the manifests it has on disk, as without steering.
    state
        .store()
        .get(path)
        .await
        .map_err(|e| file_error(path, e))?;
    let model_path = state
        .library()
        .resolve(&[asset, media::package::PRESENTATION_JSON])
        .ok_or(OriginError::InvalidPath)?;
    let model = match state.store().get(&model_path).await {
        Ok(model) => model,
        // An asset without the model (packaged by hand) is served as written, unsteered.
        Err(StoreError::NotFound) => {
            return serve_library_file(
                state,
                path,
                kind.content_type(),
                kind.cache,
                method,
                headers,
            )
            .await;
        }
        Err(e) => return Err(file_error(&model_path, e)),
    };
    let source = SourceVersion {
        etag: model.etag.clone(),
        modified: model.last_modified,
    };
    let manifest = match steering.cached_vod_manifest(asset, protocol, &source).await {
        Some(manifest) => manifest,
        None => {
            let json = model
                .bytes()
                .await
                .map_err(|e| file_error(&model_path, e))?;
            steering
                .write_vod_manifest(asset, protocol, source, &json)
                .await
                .map_err(|e| {
                    tracing::warn!(asset, error = %e, "cannot write a steered manifest");
                    OriginError::Internal("cannot write the manifest")
                })?
        }
    };
    let entity = Entity {
        content: Content::Bytes(manifest.bytes.clone()),
        len: manifest.bytes.len() as u64,
        etag: manifest.etag.clone(),
        last_modified: manifest.source.modified.max(steering.since()),
        content_type: kind.content_type(),
        cache: kind.cache,
    };
    Ok(respond(method, headers, &entity))
}
