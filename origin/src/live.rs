//! Live channels: assets of the library looped on the wall clock (see `media::live`), with
//! sliding-window HLS playlists, a dynamic MPD, and segments re-timed for their place on
//! the live timeline. The origin only routes and applies HTTP; what segment N is, and what
//! the manifests say, is `media`'s.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use media::live::{LiveClock, SegmentState};
use media::{Presentation, Rendition, SteeringProtocol, dash, hls};

use crate::entity::{CachePolicy, Entity, respond, text_error};
use crate::library::Library;
use crate::paths::{media_kind, valid_component};
use crate::{AppState, serve_file, store_error};

/// Every origin uses the same availability start, so origins behind several edges agree
/// on segment numbers and bytes: 2026-01-01T00:00:00Z.
pub const DEFAULT_AVAILABILITY_START: f64 = 1_767_225_600.0;

/// How live channels are set up.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveConfig {
    /// `(channel, asset)` pairs.
    pub channels: Vec<(String, String)>,
    /// Seconds of segments listed in the playlists and MPD (at least 3 target durations).
    pub window: f64,
    /// Seconds behind live that segments are still served (DVR depth).
    pub dvr: f64,
    /// Unix time of live segment 1's start.
    pub availability_start: f64,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            channels: vec![("live".into(), "sample".into())],
            window: 30.0,
            dvr: 300.0,
            availability_start: DEFAULT_AVAILABILITY_START,
        }
    }
}

/// Why a channel could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("channel {channel}: invalid name")]
    Name { channel: String },
    #[error("channel {channel}: asset {asset}: {source}")]
    Asset {
        channel: String,
        asset: String,
        #[source]
        source: media::MediaError,
    },
}

#[derive(Debug)]
struct Channel {
    asset: String,
    presentation: Presentation,
    clock: LiveClock,
}

/// The live channels of an origin.
#[derive(Debug, Default)]
pub struct LiveChannels {
    channels: BTreeMap<String, Channel>,
    window: f64,
    dvr: f64,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn system_time(unix: f64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs_f64(unix.max(0.0))
}

impl LiveChannels {
    /// Loads each channel's asset model from the library.
    pub fn load(library: &Library, config: &LiveConfig) -> Result<Self, LiveError> {
        let mut channels = BTreeMap::new();
        for (name, asset) in &config.channels {
            if !valid_component(name) {
                return Err(LiveError::Name {
                    channel: name.clone(),
                });
            }
            let asset_error = |source| LiveError::Asset {
                channel: name.clone(),
                asset: asset.clone(),
                source,
            };
            let dir = library.resolve(&[asset]).ok_or_else(|| {
                asset_error(media::MediaError::Invalid("invalid asset name".into()))
            })?;
            let presentation = media::read_presentation(&dir).map_err(asset_error)?;
            let clock =
                LiveClock::new(&presentation, config.availability_start).map_err(asset_error)?;
            channels.insert(
                name.clone(),
                Channel {
                    asset: asset.clone(),
                    presentation,
                    clock,
                },
            );
        }
        Ok(Self {
            channels,
            window: config.window.max(1.0),
            dvr: config.dvr.max(config.window),
        })
    }

    /// Channel names, for the index page and the start-up banner.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.channels.keys().map(String::as_str)
    }

    /// Answers `/live/{channel}/{rest}`.
    pub async fn respond(
        &self,
        state: &AppState,
        channel: &str,
        rest: &str,
        method: &Method,
        headers: &HeaderMap,
    ) -> Response {
        let Some(ch) = self.channels.get(channel) else {
            return text_error(StatusCode::NOT_FOUND, "no such live channel");
        };
        let parts: Vec<&str> = rest.split('/').collect();
        if !parts.iter().all(|c| valid_component(c)) {
            return text_error(StatusCode::BAD_REQUEST, "invalid path component");
        }
        let now = unix_now();
        // With content steering, the channel on every edge (media playlists and segments
        // are fetched there; only these two documents come from here).
        let steered = |protocol| {
            state
                .steering()
                .map(|s| s.delivery(&format!("live/{channel}"), protocol))
        };
        match parts[..] {
            [media::package::MASTER_PLAYLIST] => {
                let document = match steered(SteeringProtocol::Hls) {
                    Some(delivery) => hls::write_multivariant(&Presentation {
                        delivery,
                        ..ch.presentation.clone()
                    }),
                    None => hls::write_multivariant(&ch.presentation),
                };
                self.document(
                    ch,
                    now,
                    document,
                    method,
                    headers,
                    "application/vnd.apple.mpegurl",
                )
            }
            [media::package::MPD] => {
                let document = ch
                    .clock
                    .window(&ch.presentation, now, self.window)
                    .and_then(|mut window| {
                        if let Some(delivery) = steered(SteeringProtocol::Dash) {
                            window.delivery = delivery;
                        }
                        let latest = ch.clock.latest(now).unwrap_or(0);
                        dash::write_dynamic_mpd(
                            &window,
                            &dash::DynamicMpd {
                                availability_start: ch.clock.availability_start,
                                // The MPD only changes when a segment completes: publishing that
                                // instant (not "now") keeps its bytes, and so its ETag, stable in
                                // between, so conditional reloads get 304s.
                                publish_time: ch.clock.availability_start
                                    + latest as f64 * ch.clock.segment_duration,
                                minimum_update_period: ch.clock.segment_duration,
                                time_shift_buffer_depth: self.window,
                                suggested_presentation_delay: 3.0 * ch.clock.segment_duration,
                                utc_timing_url: "/time".into(),
                            },
                        )
                    });
                self.document(ch, now, document, method, headers, "application/dash+xml")
            }
            [rendition_id, file] => {
                let Some(rendition) = ch
                    .presentation
                    .renditions
                    .iter()
                    .find(|r| r.id == rendition_id)
                else {
                    return text_error(StatusCode::NOT_FOUND, "no such rendition");
                };
                if file == media::package::MEDIA_PLAYLIST {
                    let document = ch
                        .clock
                        .window(&ch.presentation, now, self.window)
                        .and_then(|window| {
                            let r = window
                                .renditions
                                .iter()
                                .find(|r| r.id == rendition.id)
                                .unwrap_or(rendition);
                            hls::write_media_playlist(
                                r,
                                &r.segments,
                                false,
                                Some(ch.clock.availability_start),
                            )
                        });
                    return self.document(
                        ch,
                        now,
                        document,
                        method,
                        headers,
                        "application/vnd.apple.mpegurl",
                    );
                }
                if file == media::package::INIT_SEGMENT {
                    let Some(path) = state.library().resolve(&[&ch.asset, rendition_id, file])
                    else {
                        return text_error(StatusCode::NOT_FOUND, "not found");
                    };
                    return serve_file(
                        state,
                        &path,
                        HeaderValue::from_static("video/mp4"),
                        CachePolicy::Immutable,
                        method,
                        headers,
                    )
                    .await;
                }
                match file
                    .strip_suffix(".m4s")
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    Some(number) => {
                        self.segment(state, ch, rendition, number, now, method, headers)
                            .await
                    }
                    None => text_error(StatusCode::NOT_FOUND, "not found"),
                }
            }
            _ => text_error(StatusCode::NOT_FOUND, "not found"),
        }
    }

    /// A generated manifest: cacheable for about half a segment, revalidatable by ETag.
    fn document(
        &self,
        ch: &Channel,
        now: f64,
        document: media::Result<String>,
        method: &Method,
        headers: &HeaderMap,
        content_type: &'static str,
    ) -> Response {
        match document {
            Ok(text) => {
                let latest = ch.clock.latest(now).unwrap_or(0);
                let changed =
                    ch.clock.availability_start + latest as f64 * ch.clock.segment_duration;
                let entity = Entity::generated(
                    Bytes::from(text),
                    HeaderValue::from_static(content_type),
                    CachePolicy::Live {
                        max_age: (ch.clock.segment_duration / 2.0).floor().max(1.0) as u32,
                    },
                    system_time(changed),
                );
                respond(method, headers, &entity)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot write a live manifest");
                text_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "cannot write the manifest",
                )
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn segment(
        &self,
        state: &AppState,
        ch: &Channel,
        rendition: &Rendition,
        number: u64,
        now: f64,
        method: &Method,
        headers: &HeaderMap,
    ) -> Response {
        match ch.clock.state(number, now, self.dvr) {
            SegmentState::NotYet => {
                // Cacheable for a second only: the segment appears on the clock.
                let mut response = text_error(StatusCode::NOT_FOUND, "segment not yet available");
                response.headers_mut().insert(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=1"),
                );
                return response;
            }
            SegmentState::Expired => {
                return text_error(StatusCode::NOT_FOUND, "segment left the DVR window");
            }
            SegmentState::Available => {}
        }
        let (_, asset_number) = ch.clock.source(number);
        let name = format!("{asset_number}.m4s");
        let Some(path) = state.library().resolve(&[&ch.asset, &rendition.id, &name]) else {
            return text_error(StatusCode::NOT_FOUND, "not found");
        };
        let bytes = match state.inner.store.get(&path).await {
            Ok(file) => file.bytes().await,
            Err(e) => Err(e),
        };
        let bytes = match bytes {
            Ok(bytes) => bytes,
            Err(e) => return store_error(&path, &e),
        };
        match ch.clock.retime(rendition, number, &bytes) {
            Ok(live) => {
                let available_at =
                    ch.clock.availability_start + number as f64 * ch.clock.segment_duration;
                let kind = media_kind(&name);
                let content_type = kind
                    .map_or(HeaderValue::from_static("video/iso.segment"), |k| {
                        k.content_type()
                    });
                let entity = Entity::generated(
                    Bytes::from(live),
                    content_type,
                    CachePolicy::Immutable,
                    system_time(available_at),
                );
                respond(method, headers, &entity)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot re-time a live segment");
                text_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "cannot re-time the segment",
                )
            }
        }
    }
}

/// `GET /time`: the server clock as ISO 8601, for DASH `UTCTiming` (never cached).
pub fn time_page() -> Response {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
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
