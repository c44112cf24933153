//! Adaptive-bitrate algorithms behind one trait, shared by the trace simulator and by
//! real-time sessions.
//!
//! An [`Abr`] sees only what a real player knows ([`AbrInput`]): its completed downloads,
//! its buffer, the ladder, segment sizes when the manifest or index gives them, its last
//! choice, and how many segments are left when the presentation has an end. It returns the
//! index of the rendition to fetch next. The caller owns the history and calls
//! [`Abr::choose`] once per segment, after the previous segment has fully arrived.
//!
//! # Feeding it from a real-time session
//!
//! Create one algorithm per session with [`AbrKind::build`]. Fetch the first segment at a
//! rendition of your choosing (the simulator uses index 1). After each media segment has
//! fully arrived, push a [`Download`]: `bytes` = body bytes, `duration_ms` = from sending
//! the request to the last body byte, `ttfb_ms` = from sending the request to the first
//! byte of the response (milliseconds, wall clock). Then fill an [`AbrInput`]:
//! `bitrates_bps` = the renditions' declared bandwidth in **bit/s**, ascending;
//! `segment_duration_s` in **seconds**; `buffer_s` = media buffered ahead of the playhead
//! right now, seconds; `stall_s` = seconds playback was stalled since the previous
//! decision; `buffer_max_s` = the buffer level at which the session stops fetching;
//! `last_quality` = index of the segment just fetched; `upcoming_sizes` = byte sizes from
//! the next segment on when an index (`sidx`, byte ranges) gives them, else empty;
//! `segments_remaining` = segments left including the next (VOD), `None` for live. Call
//! [`Abr::choose`] and request the next segment at the returned index.

mod bba;
mod bola;
mod interface;
mod mpc;
mod rivulet;
mod throughput;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use bba::Bba;
pub use bola::Bola;
pub use interface::{Abr, AbrInput, Download, highest_at_most};
pub use mpc::RobustMpc;
pub use rivulet::{Prediction, Rivulet, RivuletParams, predict};
pub use throughput::Throughput;

/// The algorithms, by the name the command line, the reports and the JSON use.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
#[value(rename_all = "kebab-case")]
pub enum AbrKind {
    /// The default: [`Rivulet`].
    #[default]
    Rivulet,
    Throughput,
    Bba,
    Bola,
    RobustMpc,
}

impl AbrKind {
    /// Every algorithm, the default first.
    pub const ALL: [Self; 5] = [
        Self::Rivulet,
        Self::Throughput,
        Self::Bba,
        Self::Bola,
        Self::RobustMpc,
    ];

    /// The registry name (`robust-mpc`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Rivulet => "rivulet",
            Self::Throughput => "throughput",
            Self::Bba => "bba",
            Self::Bola => "bola",
            Self::RobustMpc => "robust-mpc",
        }
    }

    /// A fresh instance with `params` (one per session or trace).
    pub fn build(self, params: &AbrParams) -> Box<dyn Abr> {
        match self {
            Self::Rivulet => Box::new(Rivulet::new(params.rivulet.clone())),
            Self::Throughput => Box::new(Throughput::default()),
            Self::Bba => Box::new(Bba::default()),
            Self::Bola => Box::new(Bola::default()),
            Self::RobustMpc => Box::new(RobustMpc::default()),
        }
    }
}

impl fmt::Display for AbrKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// The tunable parameters of the algorithms, as a file `player tune` writes and
/// `--abr-params` reads (JSON). A field left out keeps its default; the defaults are
/// the committed tuned file `player/abr/rivulet.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbrParams {
    /// [`Rivulet`]'s parameters.
    #[serde(default)]
    pub rivulet: RivuletParams,
    /// How the file was made, when `player tune` made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuned: Option<Provenance>,
}

/// The tuned defaults: written by `player tune` (README, "Tuning"), checked in, and
/// compiled in.
const TUNED: &str = include_str!("../../abr/rivulet.json");

impl Default for AbrParams {
    fn default() -> Self {
        #[allow(clippy::expect_used)] // Built into the binary and parsed by a unit test.
        serde_json::from_str(TUNED).expect("player/abr/rivulet.json parses")
    }
}

/// Where a parameter file came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// The command that wrote it.
    pub command: String,
    /// Traces it was tuned on.
    pub training_traces: usize,
    /// Mean QoE per chunk (chunk 0 skipped) on those traces with these parameters.
    pub training_qoe_per_chunk: f64,
}

/// A parameter file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ParamsError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a parameter file.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: serde_json::Error,
    },
}

impl AbrParams {
    /// Reads a parameter file (JSON).
    pub fn read(path: &Path) -> Result<Self, ParamsError> {
        let text = std::fs::read_to_string(path).map_err(|source| ParamsError::Io {
            path: path.to_owned(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| ParamsError::Parse {
            path: path.to_owned(),
            source,
        })
    }
}

/// The name is not one of [`AbrKind::ALL`].
#[derive(Debug, thiserror::Error)]
#[error("unknown ABR algorithm {name:?}; known: {}", known())]
pub struct UnknownAbr {
    /// The name asked for.
    pub name: String,
}

fn known() -> String {
    AbrKind::ALL.map(AbrKind::name).join(", ")
}

impl FromStr for AbrKind {
    type Err = UnknownAbr;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
            .ok_or_else(|| UnknownAbr {
                name: name.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_kind_round_trips_its_name_and_builds_itself() {
        for kind in AbrKind::ALL {
            assert_eq!(kind.name().parse::<AbrKind>().unwrap(), kind);
            assert_eq!(kind.build(&AbrParams::default()).name(), kind.name());
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{kind}\""));
            let value = clap::ValueEnum::to_possible_value(&kind).unwrap();
            assert_eq!(value.get_name(), kind.name(), "the CLI spells it the same");
        }
        assert_eq!(AbrKind::default(), AbrKind::ALL[0]);
    }

    #[test]
    fn the_committed_tuned_file_is_the_default_and_round_trips() {
        let params = AbrParams::default();
        assert!(params.rivulet.horizon >= 1 && params.rivulet.window >= 1);
        let text = serde_json::to_string(&params).unwrap();
        assert_eq!(serde_json::from_str::<AbrParams>(&text).unwrap(), params);
        assert!(
            params.tuned.is_some(),
            "the shipped file says how it was made"
        );
        // Fields left out keep their defaults; unknown ones are refused.
        let empty = serde_json::from_str::<AbrParams>("{}").unwrap();
        assert_eq!(empty.rivulet, params.rivulet);
        assert!(serde_json::from_str::<AbrParams>(r#"{"rivulet":{"horizon":3}}"#).is_err());
        assert!(serde_json::from_str::<AbrParams>(r#"{"bogus":1}"#).is_err());
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let err = "pensieve".parse::<AbrKind>().unwrap_err().to_string();
        assert!(
            err.contains("pensieve") && err.contains("robust-mpc"),
            "{err}"
        );
    }
}
