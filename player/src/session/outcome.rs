//! How a session ended and everything it measured ([`SessionReport`]), or why it could
//! not start ([`SessionError`]).

use serde::{Deserialize, Serialize};

use super::fetch::FetchError;
use super::summary::{SegmentLog, Summary};
use crate::abr::AbrKind;

/// A session that could not start.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("fetching the manifest: {0}")]
    Fetch(#[from] FetchError),
    #[error("manifest {url}: {source}")]
    Manifest {
        url: String,
        #[source]
        source: media::MediaError,
    },
    #[error("{url} is neither an HLS playlist nor a DASH MPD (it starts {start:?})")]
    NotAManifest { url: String, start: String },
    #[error("{0} has no video rendition with segments")]
    NoVideo(String),
}

/// Why a session stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum End {
    /// The presentation played to its end.
    Complete,
    /// The `duration_s` deadline came.
    Deadline,
    /// Cancelled (Ctrl-C).
    Stopped,
    /// A segment failed beyond its retries.
    Failed,
}

/// Everything a session measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionReport {
    pub url: String,
    pub abr: AbrKind,
    pub end: End,
    /// The error that ended a failed session.
    pub error: Option<String>,
    /// Declared bitrates of the renditions, bit/s; where the manifest declares none, the
    /// mean of its segment sizes over their durations (given by the manifest or measured).
    pub bitrates_bps: Vec<u64>,
    pub summary: Summary,
    pub segments: Vec<SegmentLog>,
    /// Rebuffering events: (start, end) wall seconds since the session began.
    pub stalls: Vec<(f64, f64)>,
}
