//! Fragmented MP4 (ISO/IEC 14496-12, CMAF ISO/IEC 23000-19): the init segment's tracks,
//! and media segments checked as they stream in.
//!
//! Boxes are read by hand, only the fields checked: a player must not refuse a valid
//! segment because a general-purpose parser does not know one of its sample entries.

use super::bmff::{Fields, boxes, kind_text, printable};
use super::init::{Init, Track};
use super::{CONTINUITY_TOLERANCE_S, InvalidMedia, Span, Timing};

/// The largest `moof` buffered: one for 10 s of 120 fps video with every sample field is
/// under 50 kB.
const MOOF_LIMIT: u64 = 4 << 20;

/// `tfhd` flags (§8.8.7.1).
const BASE_DATA_OFFSET: u32 = 0x01;
const SAMPLE_DESCRIPTION_INDEX: u32 = 0x02;
const DEFAULT_DURATION: u32 = 0x08;
const DEFAULT_SIZE: u32 = 0x10;
const DEFAULT_FLAGS: u32 = 0x20;
const DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;
/// `trun` flags (§8.8.8.1).
const DATA_OFFSET: u32 = 0x01;
const FIRST_SAMPLE_FLAGS: u32 = 0x04;
const SAMPLE_DURATION: u32 = 0x100;
const SAMPLE_SIZE: u32 = 0x200;
const SAMPLE_FLAGS: u32 = 0x400;
const SAMPLE_CTO: u32 = 0x800;

/// Where the scan is between two pieces.
#[derive(Debug, Clone, Copy)]
enum State {
    /// Reading a box header (its bytes so far in `Scan::header`).
    Header,
    /// Buffering a `moof` that ends at this offset.
    Moof { end: u64 },
    /// Passing over a box (an `mdat`'s samples, a `styp`, `sidx`, …).
    Skip { until: u64, kind: [u8; 4] },
    /// Inside a box that runs to the end of the segment (size 0).
    ToEnd,
}

/// A media segment checked as it streams in: its top-level boxes, every `moof` whole.
#[derive(Debug)]
pub struct Scan {
    tracks: Vec<Track>,
    /// Bytes consumed.
    pos: u64,
    header: [u8; 16],
    header_len: usize,
    state: State,
    moof: Vec<u8>,
    moof_start: u64,
    moofs: usize,
    /// Sample data the `trun`s describe, and `mdat` payloads: `[start, end)` offsets.
    runs: Vec<(u64, u64)>,
    mdats: Vec<(u64, u64)>,
    spans: Vec<Span>,
}

impl Scan {
    pub fn new(init: &Init) -> Self {
        Self {
            tracks: init.tracks.clone(),
            pos: 0,
            header: [0; 16],
            header_len: 0,
            state: State::Header,
            moof: Vec::new(),
            moof_start: 0,
            moofs: 0,
            runs: Vec::new(),
            mdats: Vec::new(),
            spans: Vec::new(),
        }
    }

    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), InvalidMedia> {
        while !bytes.is_empty() {
            match self.state {
                State::Header => {
                    let need = if self.header_len >= 8 && self.header[..4] == [0, 0, 0, 1] {
                        16
                    } else {
                        8
                    };
                    let take = (need - self.header_len).min(bytes.len());
                    self.header[self.header_len..self.header_len + take]
                        .copy_from_slice(&bytes[..take]);
                    self.header_len += take;
                    self.pos += take as u64;
                    bytes = &bytes[take..];
                    if self.header_len == need && !(need == 8 && self.header[..4] == [0, 0, 0, 1]) {
                        self.start_box()?;
                    }
                }
                State::Moof { end } => {
                    let take = (end - self.pos).min(bytes.len() as u64) as usize;
                    self.moof.extend_from_slice(&bytes[..take]);
                    self.pos += take as u64;
                    bytes = &bytes[take..];
                    if self.pos == end {
                        self.end_moof()?;
                    }
                }
                State::Skip { until, .. } => {
                    let take = (until - self.pos).min(bytes.len() as u64) as usize;
                    self.pos += take as u64;
                    bytes = &bytes[take..];
                    if self.pos == until {
                        self.state = State::Header;
                    }
                }
                State::ToEnd => {
                    self.pos += bytes.len() as u64;
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// A box header is complete: decide what to do with its body.
    fn start_box(&mut self) -> Result<(), InvalidMedia> {
        let h = self.header;
        let header_len = self.header_len as u64;
        self.header_len = 0;
        let start = self.pos - header_len;
        let kind = [h[4], h[5], h[6], h[7]];
        let size = match u32::from_be_bytes([h[0], h[1], h[2], h[3]]) {
            0 => None,
            1 => Some(u64::from_be_bytes([
                h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15],
            ])),
            n => Some(u64::from(n)),
        };
        let fail = |problem: String| InvalidMedia::Box {
            offset: start,
            problem,
        };
        if !printable(kind) {
            return Err(fail(format!(
                "box type {kind:02x?} is not a four-character code"
            )));
        }
        let Some(size) = size else {
            // Size 0: the box runs to the end (§4.2), which only an mdat sensibly does.
            if &kind != b"mdat" {
                return Err(fail(format!("{} box of unknown size", kind_text(kind))));
            }
            self.mdats.push((self.pos, u64::MAX));
            self.state = State::ToEnd;
            return Ok(());
        };
        if size < header_len {
            return Err(fail(format!("{} box of {size} bytes", kind_text(kind))));
        }
        let end = start
            .checked_add(size)
            .ok_or_else(|| fail("box size overflows".into()))?;
        match &kind {
            b"moof" => {
                if size > MOOF_LIMIT {
                    return Err(fail(format!("moof of {size} bytes")));
                }
                self.moof.clear();
                self.moof_start = start;
                self.state = State::Moof { end };
                if self.pos == end {
                    self.end_moof()?;
                }
            }
            _ => {
                if &kind == b"mdat" {
                    self.mdats.push((self.pos, end));
                }
                self.state = if self.pos == end {
                    State::Header
                } else {
                    State::Skip { until: end, kind }
                };
            }
        }
        Ok(())
    }

    /// A whole `moof` is buffered: read it.
    fn end_moof(&mut self) -> Result<(), InvalidMedia> {
        self.state = State::Header;
        self.moofs += 1;
        let moof = std::mem::take(&mut self.moof);
        let result = self.read_moof(&moof);
        self.moof = moof;
        result
    }

    fn read_moof(&mut self, moof: &[u8]) -> Result<(), InvalidMedia> {
        let (mut mfhd, mut trafs) = (false, 0);
        // Without default-base-is-moof, each traf's data follows the previous one's.
        let mut data_end = self.moof_start;
        for b in boxes(moof) {
            let b = b.map_err(|e| self.inside_moof(e))?;
            match &b.kind {
                b"mfhd" => {
                    Fields::new(b.body, "mfhd").take(8)?;
                    mfhd = true;
                }
                b"traf" => {
                    data_end = self.read_traf(b.body, data_end)?;
                    trafs += 1;
                }
                _ => {}
            }
        }
        if !mfhd || trafs == 0 {
            return Err(InvalidMedia::Structure(format!(
                "moof at byte {} lacks {}",
                self.moof_start,
                if mfhd { "a traf" } else { "its mfhd" }
            )));
        }
        Ok(())
    }

    /// Box offsets inside the moof buffer made offsets in the segment.
    fn inside_moof(&self, e: InvalidMedia) -> InvalidMedia {
        match e {
            InvalidMedia::Box { offset, problem } => InvalidMedia::Box {
                offset: self.moof_start + 8 + offset,
                problem,
            },
            other => other,
        }
    }

    /// Reads a `traf` whose data begins at `data_base` unless it says otherwise; returns
    /// where its data ends.
    fn read_traf(&mut self, traf: &[u8], data_base: u64) -> Result<u64, InvalidMedia> {
        let mut children = boxes(traf);
        let tfhd = match children.next() {
            Some(Ok(b)) if &b.kind == b"tfhd" => b.body,
            Some(Err(e)) => return Err(self.inside_moof(e)),
            _ => {
                return Err(InvalidMedia::Structure(
                    "a traf does not begin with tfhd".into(),
                ));
            }
        };
        let mut f = Fields::new(tfhd, "tfhd");
        let (_, flags) = f.version_flags()?;
        let id = f.u32()?;
        let track = *self
            .tracks
            .iter()
            .find(|t| t.id == id)
            .ok_or(InvalidMedia::UnknownTrack(id))?;
        // An explicit base offset counts from the start of the file, which a segment cut
        // out of one does not know: its data is then not placed.
        let mut base = if flags & BASE_DATA_OFFSET != 0 {
            f.u64()?;
            None
        } else if flags & DEFAULT_BASE_IS_MOOF != 0 {
            Some(self.moof_start)
        } else {
            Some(data_base)
        };
        if flags & SAMPLE_DESCRIPTION_INDEX != 0 {
            f.u32()?;
        }
        let default_duration = if flags & DEFAULT_DURATION != 0 {
            f.u32()?
        } else {
            track.default_duration
        };
        let default_size = if flags & DEFAULT_SIZE != 0 {
            f.u32()?
        } else {
            track.default_size
        };
        if flags & DEFAULT_FLAGS != 0 {
            f.u32()?;
        }
        let (mut tfdt, mut duration) = (None, 0u64);
        // The data of a trun without a data offset follows the previous trun's.
        let mut next_data = base;
        for b in children {
            let b = b.map_err(|e| self.inside_moof(e))?;
            match &b.kind {
                b"tfdt" => {
                    let mut f = Fields::new(b.body, "tfdt");
                    let (version, _) = f.version_flags()?;
                    tfdt = Some(if version == 1 {
                        f.u64()?
                    } else {
                        u64::from(f.u32()?)
                    });
                }
                b"trun" => {
                    let run = read_trun(b.body, default_duration, default_size)?;
                    duration += run.duration;
                    let start = match (run.data_offset, base) {
                        (Some(offset), Some(base)) => base.checked_add_signed(i64::from(offset)),
                        (None, _) => next_data,
                        (Some(_), None) => None,
                    };
                    next_data = start.and_then(|s| s.checked_add(run.bytes));
                    if let (Some(start), Some(end)) = (start, next_data) {
                        self.runs.push((start, end));
                    }
                }
                _ => {}
            }
        }
        if base.is_some() {
            base = next_data;
        }
        self.add_span(track, tfdt, duration)?;
        Ok(base.unwrap_or(data_base))
    }

    /// Records that `track` has `duration` ticks from `tfdt` (or from where its previous
    /// fragment in this segment ended): fragments of one segment follow each other.
    fn add_span(
        &mut self,
        track: Track,
        tfdt: Option<u64>,
        duration: u64,
    ) -> Result<(), InvalidMedia> {
        match (self.spans.iter_mut().find(|s| s.track == track.id), tfdt) {
            (Some(span), start) => {
                let start = start.unwrap_or(span.end);
                let gap = start as f64 - span.end as f64;
                if gap.abs() > CONTINUITY_TOLERANCE_S * f64::from(track.timescale) {
                    return Err(InvalidMedia::Discontinuous {
                        what: format!("a fragment of track {}", track.id),
                        expected_s: span.end as f64 / f64::from(track.timescale),
                        found_s: start as f64 / f64::from(track.timescale),
                    });
                }
                span.end = start.saturating_add(duration);
            }
            (None, Some(start)) => self.spans.push(Span {
                track: track.id,
                timescale: track.timescale,
                start,
                end: start.saturating_add(duration),
            }),
            // Without a tfdt the segment's place on the timeline is unknown.
            (None, None) => {}
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<Timing, InvalidMedia> {
        match self.state {
            State::Header if self.header_len == 0 => {}
            State::Header => return Err(InvalidMedia::Truncated("a box header")),
            State::Moof { .. } => return Err(InvalidMedia::Truncated("a moof")),
            State::Skip { kind, .. } if &kind == b"mdat" => {
                return Err(InvalidMedia::Truncated("an mdat"));
            }
            State::Skip { .. } => return Err(InvalidMedia::Truncated("a box")),
            State::ToEnd => {
                if let Some(last) = self.mdats.last_mut() {
                    last.1 = self.pos;
                }
            }
        }
        if self.moofs == 0 || self.mdats.is_empty() {
            return Err(InvalidMedia::Structure(format!(
                "no {}: not a media segment",
                if self.moofs == 0 { "moof" } else { "mdat" }
            )));
        }
        if let Some((start, end)) = self
            .runs
            .iter()
            .find(|(s, e)| !self.mdats.iter().any(|(ms, me)| ms <= s && e <= me))
        {
            return Err(InvalidMedia::Structure(format!(
                "sample data at bytes {start}..{end} lies outside every mdat"
            )));
        }
        Ok(Timing { spans: self.spans })
    }
}

/// What a `trun` says: its samples' total duration and bytes, and its data offset.
struct Run {
    duration: u64,
    bytes: u64,
    data_offset: Option<i32>,
}

fn read_trun(body: &[u8], default_duration: u32, default_size: u32) -> Result<Run, InvalidMedia> {
    let mut f = Fields::new(body, "trun");
    let (_, flags) = f.version_flags()?;
    let count = u64::from(f.u32()?);
    let data_offset = if flags & DATA_OFFSET != 0 {
        Some(f.u32()? as i32)
    } else {
        None
    };
    if flags & FIRST_SAMPLE_FLAGS != 0 {
        f.u32()?;
    }
    let fields = [SAMPLE_DURATION, SAMPLE_SIZE, SAMPLE_FLAGS, SAMPLE_CTO]
        .iter()
        .filter(|&&bit| flags & bit != 0)
        .count();
    let entry_len = 4 * fields;
    if count.saturating_mul(entry_len as u64) > f.bytes.len() as u64 {
        return Err(InvalidMedia::Structure(format!(
            "trun lists {count} samples in {} bytes",
            f.bytes.len()
        )));
    }
    let (mut duration, mut bytes) = (0u64, 0u64);
    if entry_len == 0 {
        duration = count * u64::from(default_duration);
        bytes = count * u64::from(default_size);
    } else {
        for entry in f.bytes.chunks_exact(entry_len).take(count as usize) {
            let mut e = Fields::new(entry, "trun");
            duration += u64::from(if flags & SAMPLE_DURATION != 0 {
                e.u32()?
            } else {
                default_duration
            });
            bytes += u64::from(if flags & SAMPLE_SIZE != 0 {
                e.u32()?
            } else {
                default_size
            });
        }
    }
    Ok(Run {
        duration,
        bytes,
        data_offset,
    })
}

#[cfg(test)]
pub(crate) mod tests;
