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
use crate::routes::files::{file_error, library_file, respond_file, serve_library_file};
use crate::state::AppState;
use crate::steering::Steering;
use crate::steering::manifests::{SourceVersion, VodSource};
use crate::store::StoredFile;

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
    if let (Some(steering), Some(protocol)) = (state.steering(), manifest_protocol(&components)) {
        return steered_manifest(
            &state,
            steering,
            &components,
            protocol,
            &path,
            kind,
            &method,
            &headers,
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

/// A VOD manifest with every edge as a pathway, kept by the steering state until the file
/// it is written from changes. Our assets' `master.m3u8` and `manifest.mpd` are written
/// from their `presentation.json`; any other multivariant playlist or MPD (an asset someone
/// else packaged) is the file on disk, edited ([`VodSource::Text`]). Media playlists are
/// served as they are. Its bytes, so its ETag, only change with the asset or the
/// configuration, and it answers like the file it replaces.
#[allow(clippy::too_many_arguments)]
async fn steered_manifest(
    state: &AppState,
    steering: &Steering,
    components: &[&str],
    protocol: SteeringProtocol,
    path: &Path,
    kind: MediaKind,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, OriginError> {
    // The asset offers the manifests it has on disk, as without steering.
    let file = library_file(state, path).await?;
    let asset = components[0];
    let key = components.join("/");
    let ours = matches!(components, [_, HLS_MANIFEST | DASH_MANIFEST]);
    let model = match ours {
        true => {
            let model_path = state
                .library()
                .resolve(&[asset, media::package::PRESENTATION_JSON])
                .ok_or(OriginError::InvalidPath)?;
            match library_file(state, &model_path).await {
                Ok(model) => Some(model),
                Err(OriginError::NotFound(_)) => None,
                Err(e) => return Err(e),
            }
        }
        false => None,
    };
    let unchanged =
        |file: StoredFile| respond_file(file, kind.content_type(), kind.cache, method, headers);
    let from = model.as_ref().unwrap_or(&file);
    let source = SourceVersion {
        etag: from.etag.clone(),
        modified: from.last_modified,
    };
    let manifest = match steering.cached_vod_manifest(&key, protocol, &source).await {
        Some(manifest) => manifest,
        None => {
            if from.len > media::folder::MANIFEST_LIMIT {
                tracing::warn!(path = %key, "too large to steer: served as it is");
                return Ok(unchanged(file));
            }
            let bytes = from.bytes().await.map_err(|e| file_error(path, e))?;
            let written = match &model {
                Some(_) => {
                    steering
                        .write_vod_manifest(asset, &key, protocol, source, VodSource::Model(&bytes))
                        .await
                }
                None => {
                    let Ok(text) = std::str::from_utf8(&bytes) else {
                        return Ok(unchanged(file));
                    };
                    // Media playlists carry no pathways: the edges serve them as they are.
                    if protocol == SteeringProtocol::Hls && !media::hls::is_multivariant(text) {
                        return Ok(unchanged(file));
                    }
                    let in_asset = components[1..].join("/");
                    steering
                        .write_vod_manifest(
                            asset,
                            &key,
                            protocol,
                            source,
                            VodSource::Text {
                                text,
                                path: &in_asset,
                            },
                        )
                        .await
                }
            };
            match written {
                Ok(manifest) => manifest,
                // A manifest the editor cannot read is still the asset's: served unsteered.
                Err(e) if model.is_none() => {
                    tracing::warn!(path = %key, error = %e, "cannot steer: served as it is");
                    return Ok(unchanged(file));
                }
                Err(e) => {
                    tracing::warn!(asset, error = %e, "cannot write a steered manifest");
                    return Err(OriginError::Internal("cannot write the manifest"));
                }
            }
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
