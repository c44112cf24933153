//! Live channels: assets of the library looped on the clock (see `media::live`), with
//! sliding-window HLS playlists, a dynamic MPD, and segments re-timed for their place on
//! the live timeline. Any fragmented-MP4 asset loops, whoever packaged it (ours, ffmpeg's,
//! with `sidx` boxes and any file names); one with MPEG-TS or packed-audio segments is
//! refused at start-up with the reason.
//!
//! - this module: the channels' configuration, loaded from the library;
//! - [`documents`]: what a channel serves at an instant, pure functions of `now`.
//!
//! What segment N is, and what the manifests say, is `media`'s; `crate::routes::live`
//! reads the server's clock and the files and applies HTTP.

pub mod documents;

use std::collections::BTreeMap;

use media::live::LiveLoop;

use crate::library::Library;
use crate::paths::valid_component;
pub use documents::{Channel, Depth, LiveDocument, LiveManifest, SegmentChoice};

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
    #[error("channel {channel}: asset {asset}: {reason}")]
    Asset {
        channel: String,
        asset: String,
        reason: String,
    },
}

/// The live channels of an origin.
#[derive(Debug)]
pub struct LiveChannels {
    channels: BTreeMap<String, Channel>,
    depth: Depth,
}

impl Default for LiveChannels {
    fn default() -> Self {
        let config = LiveConfig::default();
        Self {
            channels: BTreeMap::new(),
            depth: Depth {
                window: config.window,
                dvr: config.dvr,
            },
        }
    }
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
            let asset_error = |reason: String| LiveError::Asset {
                channel: name.clone(),
                asset: asset.clone(),
                reason,
            };
            let (files, model) = library.open_blocking(asset).map_err(asset_error)?;
            let live = LiveLoop::new(&model, config.availability_start, &files)
                .map_err(|e| asset_error(e.to_string()))?;
            tracing::info!(
                channel = %name,
                asset = %asset,
                loop_s = live.loop_duration,
                "live channel set up"
            );
            channels.insert(
                name.clone(),
                Channel {
                    asset: asset.clone(),
                    files,
                    live,
                },
            );
        }
        Ok(Self {
            channels,
            depth: Depth {
                window: config.window.max(1.0),
                dvr: config.dvr.max(config.window),
            },
        })
    }

    /// Channel names, for the index page and the start-up banner.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.channels.keys().map(String::as_str)
    }

    pub fn get(&self, name: &str) -> Option<&Channel> {
        self.channels.get(name)
    }

    /// How far every channel reaches back.
    pub fn depth(&self) -> Depth {
        self.depth
    }
}
