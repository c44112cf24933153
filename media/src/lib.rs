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
//! - [`mp4`]: MP4 / MOV / fragmented MP4 demuxing (sample indexes, samples streamed by offset);
//! - [`repackage`]: the user's files repackaged without re-encoding ([`package()`]), and the
//!   [`inspect`] probe; [`segmenter`]: its pure decisions (cuts, alignment, audio split);
//! - [`transcode`]: `media ladder`: one file decoded (ffmpeg pipe), scaled ([`scale`]) and
//!   encoded at every rung, then packaged ([`ladder()`]);
//! - [`asset`]: atomic asset folders, manifests, reports and progress;
//! - [`limits`]: bounds on what a manifest from the outside may cost (segments, bytes,
//!   clocks), shared by the HLS, DASH and `sidx` parsers;
//! - [`folder`]: asset folders whoever packaged them: the manifests they offer, and their
//!   model read from those manifests;
//! - [`fragments`]: any writer's media segments read as movie fragments, and rewritten for
//!   a live loop's timeline;
//! - [`sidx`]: segment indexes (`sidx`) read into the model's segments (DASH `SegmentBase`);
//! - [`validate`]: whether bytes are the media segments they claim to be (fMP4 and MPEG-TS
//!   structure, track IDs, timestamps continuing across segments).

pub mod asset;
pub mod audio;
pub mod cmaf;
pub mod codecs;
pub mod dash;
pub mod dash_segments;
pub mod encode;
pub mod folder;
pub mod fragments;
pub mod hls;
pub mod ladder;
pub mod limits;
pub mod live;
pub mod model;
pub mod mp4;
pub mod package;
pub mod repackage;
pub mod scale;
pub mod segmenter;
pub mod sidx;
pub mod source;
pub mod steering;
pub mod transcode;
pub mod validate;

pub use asset::{Cancel, Progress, RenditionReport, Report, Stage, read_presentation};
pub use codecs::{Codec, Codecs};
pub use ladder::{Ladder, Rung};
pub use model::{
    ByteRange, Container, MediaType, Presentation, PresentationKind, Rendition, Segment,
    SegmentIndex,
};
pub use package::{SampleOptions, SampleReport, build_sample};
pub use repackage::{PackageOptions, SourceInfo, inspect, package};
pub use steering::{Delivery, Pathway, SteeringManifest, SteeringProtocol, SteeringServer};
pub use transcode::{LadderOptions, ladder};

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
    /// A manifest asks for more than [`limits`] allows (segments, bytes, renditions…).
    #[error("{what} over the limit of {limit}")]
    Limit { what: &'static str, limit: u64 },
    #[error("invalid ladder: {0}")]
    Ladder(String),
    #[error("invalid media: {0}")]
    Invalid(String),
    /// An input file that cannot be used, and why: printed as one line naming the file.
    #[error("{}: {reason}", path.display())]
    Input {
        path: std::path::PathBuf,
        reason: InputError,
    },
    /// The caller asked the job to stop (Ctrl-C, or an origin shutting down).
    #[error("cancelled")]
    Cancelled,
}

/// Why an input file cannot be packaged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InputError {
    #[error("not a video file (no MP4/MOV box structure)")]
    NotMp4,
    #[error("no moov box: not a complete MP4/MOV file")]
    NoMoov,
    #[error("truncated moov: the file ends {missing} bytes before its movie box does")]
    TruncatedMoov { missing: u64 },
    #[error("truncated file: its samples run to byte {needed}, past the end of the file")]
    Truncated { needed: u64 },
    #[error("{what} of {size} bytes is over the limit of {limit} bytes")]
    TooLarge {
        what: &'static str,
        size: u64,
        limit: u64,
    },
    #[error("corrupt sample tables: {0}")]
    Corrupt(String),
    #[error("no video track")]
    NoVideo,
    #[error("the video track has no samples")]
    EmptyVideo,
    #[error("unsupported video codec {0} (H.264 or HEVC needed)")]
    UnsupportedVideo(String),
    #[error("unsupported audio codec {0} (AAC needed to package without re-encoding)")]
    UnsupportedAudio(String),
    #[error(
        "no keyframe for {gap:.1} seconds (from {from:.3} s); a segment needs one at least every {limit:.0} s"
    )]
    NoKeyframe { gap: f64, from: f64, limit: f64 },
    #[error("keyframes not aligned with {}: it has a keyframe at {at:.3} s, this file has none there", reference.display())]
    Unaligned {
        reference: std::path::PathBuf,
        at: f64,
    },
    #[error("decoding failed: {0}")]
    Decode(String),
}

impl MediaError {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<std::path::PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

/// `text` as the reason of an error: one line (an input's line breaks and tabs become
/// spaces) of at most 200 characters.
pub(crate) fn one_line(text: impl std::fmt::Display) -> String {
    text.to_string()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect()
}

/// Result alias of the media crate.
pub type Result<T, E = MediaError> = std::result::Result<T, E>;
