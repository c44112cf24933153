//! Rivulet's media crate: everything about the media format.
//!
//! - [`source`]: the synthetic sample source (a moving, detailed test pattern that shows the
//!   rendition and the time code);
//! - [`encode`]: H.264 encoding with openh264, one IDR at every segment start;
//! - [`cmaf`]: CMAF / fragmented MP4 init and media segments (and the live re-timing of them);
//! - [`model`]: the presentation model (renditions × numbered segments) shared by the origin and
//!   the player;
//! - [`hls`] and [`dash`]: the model written as HLS playlists and DASH MPDs, and parsed back
//!   from any standard playlist or MPD;
//! - [`codecs`]: typed RFC 6381 codecs strings derived from the bitstream;
//! - [`steering`]: content steering (HLS pathways, DASH service locations) and its manifest;
//! - [`package`]: the `sample` asset: a ladder encoded in parallel and written atomically;
//! - [`sidx`]: segment indexes (`sidx`) read into the model's segments (DASH `SegmentBase`);
//! - [`validate`]: whether bytes are the media segments they claim to be (fMP4 and MPEG-TS
//!   structure, track IDs, timestamps continuing across segments).

pub mod audio;
pub mod cmaf;
pub mod codecs;
pub mod dash;
pub mod dash_segments;
pub mod encode;
pub mod hls;
pub mod ladder;
pub mod live;
pub mod model;
pub mod package;
pub mod sidx;
pub mod source;
pub mod steering;
pub mod validate;

pub use codecs::{Codec, Codecs};
pub use ladder::{Ladder, Rung};
pub use model::{
    ByteRange, Container, MediaType, Presentation, PresentationKind, Rendition, Segment,
    SegmentIndex,
};
pub use package::{SampleOptions, SampleReport, build_sample, read_presentation};
pub use steering::{Delivery, Pathway, SteeringManifest, SteeringProtocol, SteeringServer};

/// Errors of the media crate.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("encoder error: {0}")]
    Encoder(String),
    #[error("MP4 box error: {0}")]
    Mp4(#[from] mp4_atom::Error),
    #[error("invalid codecs string {0:?}")]
    Codecs(String),
    #[error("invalid HLS playlist: {0}")]
    Hls(String),
    #[error("invalid DASH MPD: {0}")]
    Dash(String),
    #[error("invalid ladder: {0}")]
    Ladder(String),
    #[error("invalid media: {0}")]
    Invalid(String),
}

impl MediaError {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<std::path::PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

/// Result alias of the media crate.
pub type Result<T, E = MediaError> = std::result::Result<T, E>;
