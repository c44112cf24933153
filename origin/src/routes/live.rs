//! `/live/{channel}/…`: generated manifests and re-timed segments of the live channels, at
//! the instant the server's clock says; and `/time`, that clock for DASH `UTCTiming`.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, header};
use media::SteeringProtocol;
use media::folder::{AssetFiles, HEADER_LIMIT};
use media::live::SEGMENT_LIMIT;

use crate::entity::{CachePolicy, Entity, respond};
use crate::error::OriginError;
use crate::live::{Channel, LiveManifest, SegmentChoice};
use crate::paths::valid_component;
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
            let r = channel
                .rendition(rendition_id)
                .ok_or_else(|| OriginError::not_found("no such rendition"))?;
            if file == media::package::MEDIA_PLAYLIST {
                return manifest(
                    LiveManifest::MediaPlaylist(r),
                    "application/vnd.apple.mpegurl",
                );
            }
            if file == media::package::INIT_SEGMENT {
                return init(&state, &name, channel, r, &method, &headers).await;
            }
            let number = file
                .strip_suffix(".m4s")
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(|| OriginError::not_found("not found"))?;
            segment(&state, &name, channel, r, number, &method, &headers).await
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
    which: LiveManifest,
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

/// Reads what `read` reads of channel `name` on the blocking pool (files, and the CPU work
/// of re-timing a segment, stay off the request threads).
async fn blocking<T: Send + 'static>(
    state: &AppState,
    name: &str,
    read: impl FnOnce(&Channel) -> media::Result<T> + Send + 'static,
) -> Result<T, OriginError> {
    let state = state.clone();
    let name = name.to_owned();
    tokio::task::spawn_blocking(move || {
        let channel = state
            .live()
            .get(&name)
            .ok_or_else(|| OriginError::not_found("no such live channel"))?;
        read(channel).map_err(|e| {
            tracing::warn!(channel = %name, error = %e, "cannot read the live channel's asset");
            OriginError::Internal("cannot read the asset")
        })
    })
    .await
    .map_err(|_| OriginError::Internal("cannot read the asset"))?
}

/// Rendition `r`'s init segment, from wherever the asset keeps it (any name, or a byte
/// range of a single file): it never changes while the origin runs.
async fn init(
    state: &AppState,
    name: &str,
    channel: &Channel,
    r: usize,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, OriginError> {
    let bytes = blocking(state, name, move |c| {
        let source = c.live.init(r);
        c.files.read(&source.path, source.range, HEADER_LIMIT)
    })
    .await?;
    let entity = Entity::generated(
        Bytes::from(bytes),
        HeaderValue::from_static("video/mp4"),
        CachePolicy::Immutable,
        channel.started(),
    );
    Ok(respond(method, headers, &entity))
}

/// Live segment `number`: the asset segment it plays, re-timed, once the clock has reached
/// its end and until it leaves the DVR window.
async fn segment(
    state: &AppState,
    name: &str,
    channel: &Channel,
    r: usize,
    number: u64,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, OriginError> {
    let now = state.clock().now();
    let (source, available_at) = match channel.segment(r, number, now, state.live().depth().dvr) {
        SegmentChoice::NotYet => return Err(OriginError::NotYetAvailable),
        SegmentChoice::Expired => {
            return Err(OriginError::not_found("segment left the DVR window"));
        }
        SegmentChoice::Play {
            source,
            available_at,
        } => (source, available_at),
    };
    let live = blocking(state, name, move |c| {
        let bytes = c.files.read(&source.path, source.range, SEGMENT_LIMIT)?;
        c.live.retime(r, number, &bytes)
    })
    .await?;
    let entity = Entity::generated(
        Bytes::from(live),
        HeaderValue::from_static("video/iso.segment"),
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
