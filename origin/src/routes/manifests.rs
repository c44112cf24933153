//! The VOD manifests players start from (`/vod/{asset}/master.m3u8`, `manifest.mpd`) and
//! the versioned files they lead to (`/vod/{asset}/v-…/…`, see [`crate::versions`]).
//!
//! For an asset with a `presentation.json`, the multivariant playlist and the MPD are
//! written from the current build's model (kept per build, not per request) with its
//! media under the build's token: relative `v-…/720p/index.m3u8` and an MPD `BaseURL`
//! `v-…/`, or with content steering one absolute base per edge,
//! `{edge}/vod/{asset}/v-…/`. Everything under a token is `immutable`, media playlists
//! included. An asset without a model, or whose build cannot be snapshotted, is served
//! as written (with steering, its manifests name the unversioned paths).
//!
//! With steering, any other multivariant playlist or MPD (an asset someone else packaged)
//! is the file on disk edited with every edge as a pathway ([`VodSource::Text`]), so what
//! the model cannot say (byte ranges, `SegmentList`, MPEG-TS, subtitles) stays as the
//! packager wrote it. Media playlists carry no pathways and are served as they are.

use std::path::Path;

use axum::response::Response;
use http::{HeaderMap, Method};
use media::{Delivery, Pathway, SteeringProtocol};

use crate::entity::{CachePolicy, Content, Entity, respond};
use crate::error::OriginError;
use crate::paths::MediaKind;
use crate::routes::files::{file_error, file_kind, library_file, respond_file, serve_library_file};
use crate::state::AppState;
use crate::steering::manifests::{SourceVersion, SteeredManifest, VodSource, write_vod};
use crate::store::StoreError;
use crate::versions::Snapshot;

/// `/vod/{asset}/{token}/{rest…}`: a file of one build, from its snapshot. A build
/// replaced long ago (or never made) is a 404 saying to reload the manifest.
pub async fn versioned_file(
    state: &AppState,
    asset: &str,
    token: &str,
    rest: &[&str],
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, OriginError> {
    let kind = file_kind(rest)?;
    let build = state.versions().dir_of(asset, token);
    let path = rest.iter().fold(build.clone(), |path, c| path.join(c));
    // Nothing under a token ever changes, manifests included.
    let cache = CachePolicy::Immutable;
    match serve_library_file(state, &path, kind.content_type(), cache, method, headers).await {
        Err(OriginError::NotFound(_))
            if !tokio::fs::metadata(&build).await.is_ok_and(|m| m.is_dir()) =>
        {
            Err(OriginError::not_found(format!(
                "{asset} has no build {token} (replaced or removed): load its manifest again"
            )))
        }
        other => other,
    }
}

/// `/vod/{asset}/master.m3u8` or `manifest.mpd` (on disk at `path`), as the module
/// documentation says.
pub async fn vod_manifest(
    state: &AppState,
    components: &[&str],
    protocol: SteeringProtocol,
    kind: MediaKind,
    path: &Path,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, OriginError> {
    let asset = components.first().copied().unwrap_or_default();
    // The asset offers the manifests it has on disk.
    library_file(state, path).await?;
    let as_written = || {
        serve_library_file(
            state,
            path,
            kind.content_type(),
            kind.cache,
            method,
            headers,
        )
    };
    let snapshot = state.versions().current(asset, state.clock().now()).await;
    let model_path = match &snapshot {
        Some(build) => build.dir.join(media::package::PRESENTATION_JSON),
        None => state
            .library()
            .resolve(&[asset, media::package::PRESENTATION_JSON])
            .ok_or(OriginError::InvalidPath)?,
    };
    if snapshot.is_none() && state.steering().is_none() {
        return as_written().await;
    }
    let model = match state.store().get(&model_path).await {
        Ok(model) => model,
        // An asset without the model (packaged by someone else) is served as written, or
        // edited with the edges as pathways.
        Err(StoreError::NotFound) if state.steering().is_some() => {
            return edited_manifest(state, components, protocol, kind, path, method, headers).await;
        }
        Err(StoreError::NotFound) => return as_written().await,
        Err(e) => return Err(file_error(&model_path, e)),
    };
    let root = match &snapshot {
        Some(build) => format!("vod/{asset}/{}", build.token),
        None => format!("vod/{asset}"),
    };
    let source = SourceVersion::of(&model);
    let cache = state.manifests();
    let manifest = match cache.get(&root, protocol, &source).await {
        Some(manifest) => manifest,
        None => {
            let json = model
                .bytes()
                .await
                .map_err(|e| file_error(&model_path, e))?;
            let written = write_vod(
                VodSource::Model(&json),
                delivery(state, snapshot.as_ref(), &root, protocol),
                protocol,
            );
            match written {
                Ok(text) => {
                    cache
                        .insert(&root, protocol, SteeredManifest::new(source, text))
                        .await
                }
                Err(e) if state.steering().is_none() => {
                    tracing::debug!(asset, error = %e, "unreadable presentation.json: manifest served as written");
                    return as_written().await;
                }
                Err(e) => {
                    tracing::warn!(asset, error = %e, "cannot write a steered manifest");
                    return Err(OriginError::Internal("cannot write the manifest"));
                }
            }
        }
    };
    Ok(respond(
        method,
        headers,
        &steered_entity(state, &manifest, kind),
    ))
}

/// A written manifest as a representation: no older than the steering configuration,
/// which its pathways come from.
fn steered_entity(state: &AppState, manifest: &SteeredManifest, kind: MediaKind) -> Entity {
    let since = state.steering().map(|s| s.since());
    Entity {
        content: Content::Bytes(manifest.bytes.clone()),
        len: manifest.bytes.len() as u64,
        etag: manifest.etag.clone(),
        last_modified: since.map_or(manifest.source.modified, |s| {
            manifest.source.modified.max(s)
        }),
        content_type: kind.content_type(),
        cache: kind.cache,
    }
}

/// A multivariant playlist or MPD someone else packaged (at `components` in the library),
/// with every edge as a pathway; kept until the file changes. A media playlist, a file too
/// large to edit or one the editor cannot read is served as it is.
pub async fn edited_manifest(
    state: &AppState,
    components: &[&str],
    protocol: SteeringProtocol,
    kind: MediaKind,
    path: &Path,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, OriginError> {
    let file = library_file(state, path).await?;
    let as_is = |file| respond_file(file, kind.content_type(), kind.cache, method, headers);
    let Some(steering) = state.steering() else {
        return Ok(as_is(file));
    };
    let (asset, in_asset) = match components {
        [asset, rest @ ..] => (*asset, rest.join("/")),
        [] => return Err(OriginError::not_found("not found")),
    };
    let key = format!("vod/{}", components.join("/"));
    let source = SourceVersion::of(&file);
    let cache = state.manifests();
    let manifest = match cache.get(&key, protocol, &source).await {
        Some(manifest) => manifest,
        None => {
            if file.len > media::folder::MANIFEST_LIMIT {
                tracing::warn!(path = %key, "too large to steer: served as it is");
                return Ok(as_is(file));
            }
            let bytes = file.bytes().await.map_err(|e| file_error(path, e))?;
            let text = match std::str::from_utf8(&bytes) {
                // Media playlists carry no pathways: the edges serve them as they are.
                Ok(text)
                    if protocol == SteeringProtocol::Dash || media::hls::is_multivariant(text) =>
                {
                    text
                }
                _ => {
                    return Ok(as_is(file));
                }
            };
            let delivery = steering.delivery(&format!("vod/{asset}"), protocol);
            let from = VodSource::Text {
                text,
                path: &in_asset,
            };
            match write_vod(from, delivery, protocol) {
                Ok(text) => {
                    cache
                        .insert(&key, protocol, SteeredManifest::new(source, text))
                        .await
                }
                // A manifest the editor cannot read is still the asset's: served unsteered.
                Err(e) => {
                    tracing::warn!(path = %key, error = %e, "cannot steer: served as it is");
                    return Ok(as_is(file));
                }
            }
        }
    };
    Ok(respond(
        method,
        headers,
        &steered_entity(state, &manifest, kind),
    ))
}

/// Where the manifests of the build under `root` send players: every edge with steering,
/// else the build's token as a relative base.
fn delivery(
    state: &AppState,
    snapshot: Option<&Snapshot>,
    root: &str,
    protocol: SteeringProtocol,
) -> Delivery {
    match (state.steering(), snapshot) {
        (Some(steering), _) => steering.delivery(root, protocol),
        (None, Some(build)) => Delivery {
            pathways: vec![Pathway {
                id: String::new(),
                base: format!("{}/", build.token),
            }],
            steering: None,
        },
        (None, None) => Delivery::default(),
    }
}
