//! `/live/{channel}/…`: generated manifests and re-timed segments of the live channels, at
//! the instant the server's clock says; and `/time`, that clock for DASH `UTCTiming`.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, header};
use media::{Rendition, SteeringProtocol};

use crate::entity::{CachePolicy, Entity, respond};
use crate::error::OriginError;
use crate::live::{Channel, LiveManifest, SegmentChoice};
use crate::paths::{media_kind, valid_component};
use crate::routes::files::{file_error, serve_library_file};
use crate::state::AppState;

pub async fn live(
    State(state): State<AppState>,
    Path((name, rest)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, OriginError> {
    let channel = state
        .live()
        .get(&name)
        .ok_or_else(|| OriginError::not_found("no such live channel"))?;
    let parts: Vec<&str> = rest.split('/').collect();
    if !parts.iter().all(|c| valid_component(c)) {
        return Err(OriginError::InvalidPath);
    }
    let manifest = |which, content_type| {
        document(
            &state,
            &name,
            channel,
            which,
            content_type,
            &method,
            &headers,
        )
    };
    match parts[..] {
        [media::package::MASTER_PLAYLIST] => {
            manifest(LiveManifest::Multivariant, "application/vnd.apple.mpegurl")
        }
        [media::package::MPD] => manifest(LiveManifest::Mpd, "application/dash+xml"),
        [rendition_id, file] => {
            let rendition = channel
                .rendition(rendition_id)
                .ok_or_else(|| OriginError::not_found("no such rendition"))?;
            if file == media::package::MEDIA_PLAYLIST {
                return manifest(
                    LiveManifest::MediaPlaylist(rendition),
                    "application/vnd.apple.mpegurl",
                );
            }
            if file == media::package::INIT_SEGMENT {
                let path = state
                    .library()
                    .resolve(&[&channel.asset, rendition_id, file])
                    .ok_or_else(|| OriginError::not_found("not found"))?;
                return serve_library_file(
                    &state,
                    &path,
                    HeaderValue::from_static("video/mp4"),
                    CachePolicy::Immutable,
                    &method,
                    &headers,
                )
                .await;
            }
            let number = file
                .strip_suffix(".m4s")
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(|| OriginError::not_found("not found"))?;
            segment(&state, channel, rendition, number, &method, &headers).await
        }
        _ => Err(OriginError::not_found("not found")),
    }
}

/// A live manifest at the clock's now: cacheable for about half a segment, revalidatable by
/// ETag. With content steering, the pathways are the channel on every edge (media
/// playlists and segments are fetched there; only the multivariant playlist and the MPD
/// come from here and carry them).
fn document(
    state: &AppState,
    name: &str,
    channel: &Channel,
    which: LiveManifest<'_>,
    content_type: &'static str,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, OriginError> {
    let protocol = match which {
        LiveManifest::Multivariant => Some(SteeringProtocol::Hls),
        LiveManifest::Mpd => Some(SteeringProtocol::Dash),
        LiveManifest::MediaPlaylist(_) => None,
    };
    let delivery = state
        .steering()
        .zip(protocol)
        .map(|(s, protocol)| s.delivery(&format!("live/{name}"), protocol));
    let now = state.clock().now();
    let document = channel
        .document(which, state.live().depth(), delivery, now)
        .map_err(|e| {
            tracing::warn!(error = %e, "cannot write a live manifest");
            OriginError::Internal("cannot write the manifest")
        })?;
    let entity = Entity::generated(
        Bytes::from(document.text),
        HeaderValue::from_static(content_type),
        CachePolicy::Live {
            max_age: document.max_age,
        },
        document.changed,
    );
    Ok(respond(method, headers, &entity))
}

/// Live segment `number`: the asset segment it plays, re-timed, once the clock has reached
/// its end and until it leaves the DVR window.
async fn segment(
    state: &AppState,
    channel: &Channel,
    rendition: &Rendition,
    number: u64,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, OriginError> {
    let now = state.clock().now();
    let (asset_file, available_at) = match channel.segment(number, now, state.live().depth().dvr) {
        SegmentChoice::NotYet => return Err(OriginError::NotYetAvailable),
        SegmentChoice::Expired => {
            return Err(OriginError::not_found("segment left the DVR window"));
        }
        SegmentChoice::Play {
            asset_file,
            available_at,
        } => (asset_file, available_at),
    };
    let path = state
        .library()
        .resolve(&[&channel.asset, &rendition.id, &asset_file])
        .ok_or_else(|| OriginError::not_found("not found"))?;
    let file = state
        .store()
        .get(&path)
        .await
        .map_err(|e| file_error(&path, e))?;
    let bytes = file.bytes().await.map_err(|e| file_error(&path, e))?;
    let live = channel
        .clock
        .retime(rendition, number, &bytes)
        .map_err(|e| {
            tracing::warn!(error = %e, "cannot re-time a live segment");
            OriginError::Internal("cannot re-time the segment")
        })?;
    let content_type = media_kind(&asset_file)
        .map_or(HeaderValue::from_static("video/iso.segment"), |k| {
            k.content_type()
        });
    let entity = Entity::generated(
        Bytes::from(live),
        content_type,
        CachePolicy::Immutable,
        available_at,
    );
    Ok(respond(method, headers, &entity))
}

/// `GET /time`: the server's clock as ISO 8601, for DASH `UTCTiming` (never cached).
pub async fn time(State(state): State<AppState>) -> Response {
    let now = chrono::DateTime::<chrono::Utc>::from(state.clock().now())
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        now,
    )
        .into_response()
}
