//! Whether bytes are the media segments they claim to be: a player checks each segment it
//! downloads (as a browser's demuxer would before playing it), so that a server answering
//! with an error page, a truncated object, the wrong segment or random bytes is found out
//! rather than counted as played.
//!
//! - fMP4 / CMAF ([`fmp4`]): the box structure tiles the segment exactly; each `moof` has
//!   its `mfhd` and `traf`s, each `traf` a `tfhd` whose track the init segment declares,
//!   and the sample data its `trun`s describe lies inside an `mdat`; the `tfdt` decode
//!   times continue the previous segment of the rendition.
//! - MPEG-TS ([`ts`]): a sync byte every 188 bytes, a PAT and a PMT (CRC-checked), and PES
//!   timestamps (DTS, else PTS) advancing on every audio and video stream, within the
//!   segment and from the previous one.
//! - Packed audio ([`packed`]): an ID3 tag or an audio frame sync where it begins.
//!
//! Everything is a pure function over bytes, fed in pieces as they arrive
//! ([`SegmentCheck::feed`]) so that a download is checked without being kept: only a
//! `moof` and the partial box headers or TS packet at a piece's end are buffered. The cost
//! is a few hundred nanoseconds per segment beyond reading its `moof` (see the
//! `segment_check` benchmark in `tests/benches`).

mod bmff;
pub mod fmp4;
pub mod init;
pub mod packed;
pub mod ts;

use crate::model::Container;

/// Why bytes are not the media segment they should be.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidMedia {
    #[error("ends inside {0}")]
    Truncated(&'static str),
    #[error("box at byte {offset}: {problem}")]
    Box { offset: u64, problem: String },
    #[error("{0}")]
    Structure(String),
    #[error("track {0} is not in the init segment")]
    UnknownTrack(u32),
    #[error("no init segment to read it with")]
    NoInit,
    #[error("TS packet at byte {offset}: {problem}")]
    Packet { offset: u64, problem: String },
    #[error(
        "{what} starts at {found_s:.3} s where the previous segment ended at {expected_s:.3} s"
    )]
    Discontinuous {
        what: String,
        expected_s: f64,
        found_s: f64,
    },
}

/// How far a segment's first decode time may be from where the previous segment of its
/// rendition ended. Packagers leave gaps and overlaps of a few frames (and a TS stream's
/// last PES may hold a fraction of a second of audio); a wrong segment is off by a whole
/// segment duration.
pub const CONTINUITY_TOLERANCE_S: f64 = 0.5;

/// The decode times a segment covers, per track (fMP4 track ID, TS PID).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timing {
    pub spans: Vec<Span>,
}

/// One track's decode times in a segment, in its timescale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// fMP4 track ID or TS PID.
    pub track: u32,
    pub timescale: u32,
    /// fMP4: the first `tfdt` and where the last sample ends. TS: the first and the last
    /// PES timestamp (33-bit, 90 kHz).
    pub start: u64,
    pub end: u64,
}

/// One segment being checked, fed as it arrives.
#[derive(Debug)]
pub enum SegmentCheck {
    Fmp4(fmp4::Scan),
    Ts(ts::Scan),
    Packed(packed::Scan),
}

impl SegmentCheck {
    /// Checks the next bytes; an error is final (the rest need not be fed).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), InvalidMedia> {
        match self {
            Self::Fmp4(s) => s.feed(bytes),
            Self::Ts(s) => s.feed(bytes),
            Self::Packed(s) => s.feed(bytes),
        }
    }

    /// The segment has ended: is it whole, and what does it cover?
    pub fn finish(self) -> Result<Timing, InvalidMedia> {
        match self {
            Self::Fmp4(s) => s.finish(),
            Self::Ts(s) => s.finish(),
            Self::Packed(s) => s.finish(),
        }
    }
}

/// What the checks of one rendition remember from segment to segment: its init segment
/// (fMP4) and where its last segment ended.
#[derive(Debug, Clone)]
pub struct RenditionCheck {
    container: Container,
    init: Option<init::Init>,
    previous: Option<(u64, Timing)>,
}

impl RenditionCheck {
    pub fn new(container: Container) -> Self {
        Self {
            container,
            init: None,
            previous: None,
        }
    }

    /// Reads the rendition's init segment (fMP4).
    pub fn init(&mut self, bytes: &[u8]) -> Result<(), InvalidMedia> {
        self.init = Some(init::Init::read(bytes)?);
        Ok(())
    }

    /// Whether the init segment has been read.
    pub fn has_init(&self) -> bool {
        self.init.is_some()
    }

    /// Starts checking a segment of this rendition.
    pub fn segment(&self) -> Result<SegmentCheck, InvalidMedia> {
        Ok(match self.container {
            Container::Fmp4 => SegmentCheck::Fmp4(fmp4::Scan::new(
                self.init.as_ref().ok_or(InvalidMedia::NoInit)?,
            )),
            Container::MpegTs => SegmentCheck::Ts(ts::Scan::default()),
            Container::PackedAudio => SegmentCheck::Packed(packed::Scan::default()),
        })
    }

    /// Segment `number` checked out as covering `timing`: it must continue the previous
    /// segment when that was `number - 1` and no discontinuity lies between them; then it
    /// becomes the previous one.
    pub fn accept(
        &mut self,
        number: u64,
        discontinuity: bool,
        timing: Timing,
    ) -> Result<(), InvalidMedia> {
        if let Some((previous, before)) = &self.previous
            && number.checked_sub(1) == Some(*previous)
            && !discontinuity
        {
            continues(self.container, before, &timing)?;
        }
        self.previous = Some((number, timing));
        Ok(())
    }

    /// [`Self::segment`], fed `bytes` whole, then [`Self::accept`]ed.
    pub fn check(
        &mut self,
        number: u64,
        discontinuity: bool,
        bytes: &[u8],
    ) -> Result<(), InvalidMedia> {
        let mut check = self.segment()?;
        check.feed(bytes)?;
        let timing = check.finish()?;
        self.accept(number, discontinuity, timing)
    }
}

/// Whether `next` starts where `before` ended, track by track (tracks in only one of
/// them are not compared).
fn continues(container: Container, before: &Timing, next: &Timing) -> Result<(), InvalidMedia> {
    for span in &next.spans {
        let Some(prev) = before.spans.iter().find(|p| p.track == span.track) else {
            continue;
        };
        let scale = f64::from(span.timescale.max(1));
        let tolerance = CONTINUITY_TOLERANCE_S * scale;
        let (fits, what) = match container {
            // The next tfdt is where the previous samples end.
            Container::Fmp4 => (
                (span.start as f64 - prev.end as f64).abs() <= tolerance,
                "track",
            ),
            // Timestamps move forward (modulo 2^33), by less than the tolerance.
            Container::MpegTs => {
                let step = ts::forward(prev.end, span.start);
                (step > 0 && step as f64 <= tolerance, "PID")
            }
            Container::PackedAudio => (true, ""),
        };
        if !fits {
            return Err(InvalidMedia::Discontinuous {
                what: format!("{what} {}", span.track),
                expected_s: prev.end as f64 / scale,
                found_s: span.start as f64 / scale,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(track: u32, start: u64, end: u64) -> Timing {
        Timing {
            spans: vec![Span {
                track,
                timescale: 1000,
                start,
                end,
            }],
        }
    }

    #[test]
    fn continuity_table() {
        // (container, previous end, next start, continues)
        let cases = [
            (Container::Fmp4, 2000, 2000, true),
            (Container::Fmp4, 2000, 2400, true),
            (Container::Fmp4, 2000, 1600, true),
            (Container::Fmp4, 2000, 4000, false),
            (Container::Fmp4, 2000, 0, false),
            (Container::MpegTs, 2000, 2040, true),
            (Container::MpegTs, 2000, 2000, false),
            (Container::MpegTs, 2000, 1960, false),
            (Container::MpegTs, 2000, 3000, false),
        ];
        for (container, end, start, want) in cases {
            let got = continues(
                container,
                &timing(1, 0, end),
                &timing(1, start, start + 100),
            );
            assert_eq!(got.is_ok(), want, "{container:?} {end} → {start}: {got:?}");
        }
        // Another track is not compared.
        assert!(continues(Container::Fmp4, &timing(1, 0, 2000), &timing(2, 9000, 9100)).is_ok());
    }

    #[test]
    fn only_consecutive_segments_without_a_discontinuity_must_continue() {
        let mut r = RenditionCheck::new(Container::Fmp4);
        r.accept(1, false, timing(1, 0, 2000))
            .unwrap_or_else(|e| panic!("{e}"));
        // Segment 3 after 1 (2 came at another rendition): not compared.
        r.accept(3, false, timing(1, 4000, 6000))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(r.accept(4, false, timing(1, 9000, 11_000)).is_err());
        // The failed one did not become the previous one.
        r.accept(4, false, timing(1, 6000, 8000))
            .unwrap_or_else(|e| panic!("{e}"));
        r.accept(5, true, timing(1, 0, 2000))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            RenditionCheck::new(Container::Fmp4).segment(),
            Err(InvalidMedia::NoInit)
        ));
    }
}
