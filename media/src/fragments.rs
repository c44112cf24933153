//! Media segments as movie fragments (ISO/IEC 14496-12 §8.8): each `moof` with the `mdat`
//! after it, every sample's timing and bytes located, whoever wrote them (ours, ffmpeg's
//! `styp`+`sidx`+`moof`+`mdat`, several fragments per segment, explicit base data
//! offsets into a single-file rendition); and a segment rewritten for another timeline (a
//! live loop): decode times moved, the samples after a point cut off, sequence numbers set.
//!
//! What a packager puts around the fragments (`styp`, `free`, `emsg`…) is kept, except
//! `sidx` and `prft`, which index and date the fragments where they were in the asset and
//! would be wrong on the new timeline (players address live segments by number and need
//! neither).

use std::ops::Range;

use mp4_atom::{Decode, Encode, Moof, TrunSamples};

use crate::mp4::boxes::children;
use crate::{MediaError, Result};

/// What a track's fragments may leave out, from the init segment's `trex` (§8.8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrackDefaults {
    pub track_id: u32,
    pub duration: u32,
    pub size: u32,
}

/// One sample of a fragment: where its bytes are in the segment, and how long it lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    at: usize,
    size: usize,
    duration: u32,
}

/// A `moof` and its `mdat`.
#[derive(Debug)]
struct Fragment {
    moof: Moof,
    /// The `moof`'s size as it was.
    moof_len: usize,
    /// The `mdat` box, header included.
    mdat: Range<usize>,
    /// Per `traf`, per `trun`: its samples.
    samples: Vec<Vec<Vec<Span>>>,
}

/// A top-level box of a segment.
#[derive(Debug)]
enum Piece {
    /// Copied as it is.
    Keep(Range<usize>),
    /// Left out of a rewritten segment (`sidx`, `prft`).
    Drop,
    Fragment(Fragment),
}

fn invalid(why: impl Into<String>) -> MediaError {
    MediaError::Invalid(why.into())
}

/// The boxes of segment `bytes` (which start at byte `file_offset` of their file), its
/// fragments read, with `defaults` for what their `tfhd`/`trun` leave out.
fn parse(bytes: &[u8], file_offset: u64, defaults: &[TrackDefaults]) -> Result<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut pending: Option<(Moof, usize, usize)> = None;
    let mut at = 0usize;
    for child in children(bytes) {
        let child = child.map_err(invalid)?;
        let range = at..at + child.bytes.len();
        at = range.end;
        match &child.kind {
            b"moof" => {
                if pending.is_some() {
                    return Err(invalid("a moof without its mdat"));
                }
                let moof = Moof::decode(&mut &child.bytes[..])?;
                pending = Some((moof, range.start, range.len()));
            }
            b"mdat" => match pending.take() {
                Some((moof, moof_at, moof_len)) => {
                    let payload = range.end - child.body.len()..range.end;
                    let samples = locate(&moof, moof_at, &payload, file_offset, defaults)?;
                    pieces.push(Piece::Fragment(Fragment {
                        moof,
                        moof_len,
                        mdat: range,
                        samples,
                    }));
                }
                None => pieces.push(Piece::Keep(range)),
            },
            b"sidx" | b"prft" => pieces.push(Piece::Drop),
            _ => pieces.push(Piece::Keep(range)),
        }
    }
    if pending.is_some() {
        return Err(invalid("a moof without its mdat"));
    }
    if !pieces.iter().any(|p| matches!(p, Piece::Fragment(_))) {
        return Err(invalid("no movie fragment (moof and mdat)"));
    }
    Ok(pieces)
}

/// Where each sample of `moof` is (§8.8.7.1: a `traf`'s data counts from its explicit base
/// data offset, else from the `moof` when default-base-is-moof or for the first `traf`,
/// else from the end of the previous `traf`'s data; a `trun` without a data offset follows
/// the previous one), each inside `payload`, the `mdat`'s.
fn locate(
    moof: &Moof,
    moof_at: usize,
    payload: &Range<usize>,
    file_offset: u64,
    defaults: &[TrackDefaults],
) -> Result<Vec<Vec<Vec<Span>>>> {
    let mut trafs = Vec::with_capacity(moof.traf.len());
    let mut previous_end = moof_at;
    for (i, traf) in moof.traf.iter().enumerate() {
        let tfhd = &traf.tfhd;
        let track = defaults
            .iter()
            .find(|d| d.track_id == tfhd.track_id)
            .copied()
            .unwrap_or_default();
        // Counted from the segment's first byte; an explicit base (from the file's start)
        // may lie before it, the data offset bringing it back inside.
        let base: i64 = match tfhd.base_data_offset {
            Some(offset) => i64::try_from(offset)
                .ok()
                .zip(i64::try_from(file_offset).ok())
                .map(|(o, f)| o - f)
                .ok_or_else(|| invalid("base data offset out of range"))?,
            None if tfhd.default_base_is_moof || i == 0 => moof_at as i64,
            None => previous_end as i64,
        };
        let mut runs = Vec::with_capacity(traf.trun.len());
        let mut next = usize::try_from(base).unwrap_or(usize::MAX);
        for trun in &traf.trun {
            if let Some(offset) = trun.data_offset {
                next = usize::try_from(base + i64::from(offset))
                    .map_err(|_| invalid("sample data before the segment"))?;
            }
            let mut spans = Vec::with_capacity(trun.samples.len());
            for entry in trun.samples.iter() {
                let size = entry
                    .size
                    .or(tfhd.default_sample_size)
                    .unwrap_or(track.size) as usize;
                let span = Span {
                    at: next,
                    size,
                    duration: entry
                        .duration
                        .or(tfhd.default_sample_duration)
                        .unwrap_or(track.duration),
                };
                next = next
                    .checked_add(size)
                    .filter(|end| payload.start <= span.at && *end <= payload.end)
                    .ok_or_else(|| invalid("sample data outside the mdat"))?;
                spans.push(span);
            }
            runs.push(spans);
        }
        previous_end = next;
        trafs.push(runs);
    }
    Ok(trafs)
}

/// One track's samples in one fragment of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackRun {
    pub track_id: u32,
    /// `tfdt`, track timescale.
    pub base_decode_time: u64,
    /// Each sample's duration, in decode order.
    pub durations: Vec<u32>,
    /// Whether the first sample is a sync sample.
    pub first_sync: bool,
    /// The fragment's `mfhd` sequence number.
    pub sequence: u32,
}

impl TrackRun {
    /// The decode time just after the last sample.
    pub fn end(&self) -> u64 {
        self.base_decode_time + self.durations.iter().map(|d| u64::from(*d)).sum::<u64>()
    }
}

/// The runs of every track in every fragment of `bytes`, in order.
pub fn track_runs(
    bytes: &[u8],
    file_offset: u64,
    defaults: &[TrackDefaults],
) -> Result<Vec<TrackRun>> {
    let mut runs = Vec::new();
    for piece in parse(bytes, file_offset, defaults)? {
        let Piece::Fragment(f) = piece else { continue };
        for (traf, samples) in f.moof.traf.iter().zip(&f.samples) {
            let first_flags = traf
                .trun
                .iter()
                .find(|t| !t.samples.is_empty())
                .and_then(|t| t.samples.get(0))
                .and_then(|e| e.flags)
                .or(traf.tfhd.default_sample_flags);
            runs.push(TrackRun {
                track_id: traf.tfhd.track_id,
                base_decode_time: traf
                    .tfdt
                    .as_ref()
                    .ok_or_else(|| invalid("a fragment without tfdt"))?
                    .base_media_decode_time,
                durations: samples.iter().flatten().map(|s| s.duration).collect(),
                // §8.8.3.1: sample_is_non_sync_sample is bit 16.
                first_sync: first_flags.is_none_or(|f| f & 0x0001_0000 == 0),
                sequence: f.moof.mfhd.sequence_number,
            });
        }
    }
    Ok(runs)
}

/// How one track's fragments are rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackRetime {
    pub defaults: TrackDefaults,
    /// Added to every `tfdt` (a result below zero is zero).
    pub shift: i64,
    /// Samples ending after this decode time (before the shift) are cut off.
    pub cut_at: Option<u64>,
}

/// How a segment is rewritten.
#[derive(Debug, Clone, Copy)]
pub struct Retime<'a> {
    /// The first fragment's `mfhd` sequence number; later fragments follow it.
    pub sequence: u32,
    pub tracks: &'a [TrackRetime],
    /// Where the segment's bytes start in their file (a byte range of a single-file
    /// rendition): explicit base data offsets count from there.
    pub file_offset: u64,
}

/// `bytes` (a media segment) on another timeline: every `tfdt` moved by its track's shift,
/// the samples after the track's cut left out (with their bytes), sequence numbers from
/// `how.sequence`, `sidx` and `prft` left out. Sample bytes are never changed; data
/// offsets are recomputed (`tfdt` may grow from 32 to 64 bits; cut or explicitly based
/// fragments are rebuilt with their data right after their `moof`).
pub fn retime(bytes: &[u8], how: &Retime<'_>) -> Result<Vec<u8>> {
    let defaults: Vec<TrackDefaults> = how.tracks.iter().map(|t| t.defaults).collect();
    let mut out = Vec::with_capacity(bytes.len() + 64);
    let mut sequence = how.sequence;
    for piece in parse(bytes, how.file_offset, &defaults)? {
        match piece {
            Piece::Keep(range) => out.extend_from_slice(&bytes[range]),
            Piece::Drop => {}
            Piece::Fragment(f) => {
                if rewrite_fragment(bytes, f, how, sequence, &mut out)? {
                    sequence = sequence.wrapping_add(1);
                }
            }
        }
    }
    Ok(out)
}

/// Writes fragment `f` rewritten into `out`; `false` when the cut left none of its samples
/// (nothing written).
fn rewrite_fragment(
    bytes: &[u8],
    f: Fragment,
    how: &Retime<'_>,
    sequence: u32,
    out: &mut Vec<u8>,
) -> Result<bool> {
    let Fragment {
        mut moof,
        moof_len,
        mdat,
        samples,
        ..
    } = f;
    moof.mfhd.sequence_number = sequence;
    // Samples kept per traf and trun.
    let mut kept: Vec<Vec<usize>> = Vec::with_capacity(moof.traf.len());
    let mut rebuild = false;
    for (traf, runs) in moof.traf.iter_mut().zip(&samples) {
        let track = how
            .tracks
            .iter()
            .find(|t| t.defaults.track_id == traf.tfhd.track_id)
            .ok_or_else(|| {
                invalid(format!(
                    "track {} is not in the init segment",
                    traf.tfhd.track_id
                ))
            })?;
        let tfdt = traf
            .tfdt
            .as_mut()
            .ok_or_else(|| invalid("a fragment without tfdt"))?;
        let start = tfdt.base_media_decode_time;
        tfdt.base_media_decode_time =
            u64::try_from((i128::from(start) + i128::from(track.shift)).max(0)).unwrap_or(0);
        let mut t = start;
        let counts: Vec<usize> = runs
            .iter()
            .map(|run| {
                run.iter()
                    .take_while(|s| {
                        t += u64::from(s.duration);
                        track.cut_at.is_none_or(|cut| t <= cut)
                    })
                    .count()
            })
            .collect();
        // Once a run is cut, later runs keep nothing.
        let mut cut = false;
        let counts: Vec<usize> = counts
            .iter()
            .zip(runs)
            .map(|(&n, run)| {
                let n = if cut { 0 } else { n };
                cut |= n < run.len();
                n
            })
            .collect();
        rebuild |= cut || traf.tfhd.base_data_offset.is_some();
        kept.push(counts);
    }
    if kept.iter().flatten().all(|n| *n == 0) {
        return Ok(false);
    }
    if !rebuild {
        // Only the tfdt changed: the data stays where it was, moved by the moof's growth.
        let mut probe = Vec::new();
        moof.encode(&mut probe)?;
        let delta = probe.len() as i64 - moof_len as i64;
        if delta != 0 {
            for (i, traf) in moof.traf.iter_mut().enumerate() {
                if !(traf.tfhd.default_base_is_moof || i == 0) {
                    continue;
                }
                if !traf.saio.is_empty() {
                    return Err(invalid("cannot move encrypted fragments"));
                }
                for trun in &mut traf.trun {
                    if let Some(offset) = &mut trun.data_offset {
                        *offset = i32::try_from(i64::from(*offset) + delta)
                            .map_err(|_| invalid("data offset out of range"))?;
                    }
                }
            }
        }
        moof.encode(out)?;
        out.extend_from_slice(&bytes[mdat]);
        return Ok(true);
    }
    // Rebuilt: the kept samples' bytes in order, right after the moof.
    let mut payload = Vec::new();
    let mut run_offsets = Vec::new();
    for ((traf, runs), counts) in moof.traf.iter_mut().zip(&samples).zip(&kept) {
        if !traf.saio.is_empty() || traf.senc.is_some() {
            return Err(invalid("cannot cut encrypted fragments"));
        }
        traf.tfhd.base_data_offset = None;
        traf.tfhd.default_base_is_moof = true;
        let mut truns = Vec::new();
        for ((mut trun, run), &n) in std::mem::take(&mut traf.trun)
            .into_iter()
            .zip(runs)
            .zip(counts)
        {
            if n == 0 {
                continue;
            }
            run_offsets.push(payload.len());
            for s in &run[..n] {
                payload.extend_from_slice(&bytes[s.at..s.at + s.size]);
            }
            trun.samples = match trun.samples {
                TrunSamples::Explicit(mut entries) => {
                    entries.truncate(n);
                    TrunSamples::Explicit(entries)
                }
                TrunSamples::Inherited { first_flags, .. } => TrunSamples::Inherited {
                    count: u32::try_from(n).unwrap_or(u32::MAX),
                    first_flags,
                },
            };
            trun.data_offset = Some(0);
            truns.push(trun);
        }
        traf.trun = truns;
    }
    let header = if payload.len() + 8 > u32::MAX as usize {
        16
    } else {
        8
    };
    let mut probe = Vec::new();
    moof.encode(&mut probe)?;
    let first_byte = probe.len() + header;
    for (trun, offset) in moof
        .traf
        .iter_mut()
        .flat_map(|t| t.trun.iter_mut())
        .zip(run_offsets)
    {
        trun.data_offset =
            Some(i32::try_from(first_byte + offset).map_err(|_| invalid("fragment too large"))?);
    }
    moof.encode(out)?;
    if header == 16 {
        out.extend_from_slice(&1u32.to_be_bytes());
        out.extend_from_slice(b"mdat");
        out.extend_from_slice(&(payload.len() as u64 + 16).to_be_bytes());
    } else {
        out.extend_from_slice(&((payload.len() + 8) as u32).to_be_bytes());
        out.extend_from_slice(b"mdat");
    }
    out.extend_from_slice(&payload);
    Ok(true)
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use mp4_atom::{Mdat, Mfhd, Sidx, Styp, Tfdt, Tfhd, Traf, Trun, TrunEntry};

    use super::*;

    fn entry(duration: u32, size: u32) -> TrunEntry {
        TrunEntry {
            duration: Some(duration),
            size: Some(size),
            flags: None,
            cts: None,
        }
    }

    /// What ffmpeg writes before a segment's fragments: `styp` and a `sidx` (of no
    /// references: the reader never looks into it) at `time` in `timescale`.
    pub(crate) fn ffmpeg_prefix(timescale: u32, time: u64) -> Vec<u8> {
        let mut out = Vec::new();
        Styp {
            major_brand: b"msdh".into(),
            minor_version: 0,
            compatible_brands: vec![b"msdh".into()],
        }
        .encode(&mut out)
        .unwrap();
        Sidx {
            reference_id: 1,
            timescale,
            earliest_presentation_time: time,
            first_offset: 0,
            references: Vec::new(),
        }
        .encode(&mut out)
        .unwrap();
        out
    }

    /// A segment as ffmpeg writes one: `styp`, `sidx`, then fragments of one track (id 1)
    /// whose samples (`durations`, each of 10 + index bytes) follow each moof; with `base`,
    /// the data is addressed by an explicit base data offset as if the segment started at
    /// byte `base` of its file, else from the moof.
    fn segment(fragments: &[(u64, &[u32])], base: Option<u64>) -> Vec<u8> {
        let mut out = ffmpeg_prefix(1000, fragments[0].0);
        for (i, (tfdt, durations)) in fragments.iter().enumerate() {
            let data: Vec<u8> = (0..durations.len())
                .flat_map(|k| vec![k as u8 + 1; 10 + k])
                .collect();
            let mut moof = Moof {
                mfhd: Mfhd {
                    sequence_number: i as u32 + 1,
                },
                traf: vec![Traf {
                    tfhd: Tfhd {
                        track_id: 1,
                        default_base_is_moof: base.is_none(),
                        base_data_offset: base.map(|_| 0),
                        ..Default::default()
                    },
                    tfdt: Some(Tfdt {
                        base_media_decode_time: *tfdt,
                    }),
                    trun: vec![Trun {
                        data_offset: Some(0),
                        samples: TrunSamples::Explicit(
                            durations
                                .iter()
                                .enumerate()
                                .map(|(k, d)| entry(*d, 10 + k as u32))
                                .collect(),
                        ),
                    }],
                    ..Default::default()
                }],
            };
            let mut probe = Vec::new();
            moof.encode(&mut probe).unwrap();
            match base {
                Some(file_start) => {
                    // Data offsets from the file's start: the base is 0, the offset absolute.
                    let at = file_start + (out.len() + probe.len() + 8) as u64;
                    moof.traf[0].trun[0].data_offset = Some(at as i32);
                }
                None => moof.traf[0].trun[0].data_offset = Some(probe.len() as i32 + 8),
            }
            moof.encode(&mut out).unwrap();
            Mdat { data }.encode(&mut out).unwrap();
        }
        out
    }

    fn defaults() -> [TrackDefaults; 1] {
        [TrackDefaults {
            track_id: 1,
            duration: 0,
            size: 0,
        }]
    }

    /// Each sample's bytes, located again after a rewrite.
    fn sample_bytes(bytes: &[u8], file_offset: u64) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for piece in parse(bytes, file_offset, &defaults()).unwrap() {
            if let Piece::Fragment(f) = piece {
                for s in f.samples.iter().flatten().flatten() {
                    out.push(bytes[s.at..s.at + s.size].to_vec());
                }
            }
        }
        out
    }

    #[test]
    fn runs_are_read_through_sidx_and_several_fragments() {
        let bytes = segment(&[(1000, &[512, 512]), (2024, &[512])], None);
        let runs = track_runs(&bytes, 0, &defaults()).unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!((runs[0].base_decode_time, runs[0].end()), (1000, 2024));
        assert_eq!((runs[1].sequence, runs[1].end()), (2, 2536));
        assert!(runs[0].first_sync);
    }

    #[test]
    fn shifted_segments_keep_every_sample_byte() {
        for (base, file_offset) in [(None, 0), (Some(5000), 5000)] {
            let bytes = segment(&[(1000, &[512, 512, 512]), (2536, &[512])], base);
            let tracks = [TrackRetime {
                defaults: defaults()[0],
                shift: 1 << 33, // forces 64-bit tfdts
                cut_at: None,
            }];
            let how = Retime {
                sequence: 77,
                tracks: &tracks,
                file_offset,
            };
            let moved = retime(&bytes, &how).unwrap();
            let runs = track_runs(&moved, 0, &defaults()).unwrap();
            let times: Vec<(u32, u64)> = runs
                .iter()
                .map(|r| (r.sequence, r.base_decode_time))
                .collect();
            assert_eq!(times, [(77, 1000 + (1 << 33)), (78, 2536 + (1 << 33))]);
            assert_eq!(sample_bytes(&moved, 0), sample_bytes(&bytes, file_offset));
            assert!(!moved.windows(4).any(|w| w == b"sidx"), "sidx left out");
            assert!(moved.windows(4).any(|w| w == b"styp"), "styp kept");
        }
    }

    #[test]
    fn a_cut_leaves_out_the_samples_that_end_after_it() {
        let bytes = segment(&[(0, &[1024, 1024, 1024]), (3072, &[1024, 1024])], None);
        let all = sample_bytes(&bytes, 0);
        // (cut, samples kept, fragments written)
        for (cut, keep, fragments) in [(5120, 5, 2), (4000, 3, 1), (2048, 2, 1), (10_000, 5, 2)] {
            let tracks = [TrackRetime {
                defaults: defaults()[0],
                shift: 100,
                cut_at: Some(cut),
            }];
            let how = Retime {
                sequence: 1,
                tracks: &tracks,
                file_offset: 0,
            };
            let moved = retime(&bytes, &how).unwrap();
            let runs = track_runs(&moved, 0, &defaults()).unwrap();
            assert_eq!(runs.len(), fragments, "cut at {cut}");
            let kept: usize = runs.iter().map(|r| r.durations.len()).sum();
            assert_eq!(kept, keep, "cut at {cut}");
            assert_eq!(runs[0].base_decode_time, 100);
            assert!(runs.last().unwrap().end() <= cut + 100);
            assert_eq!(sample_bytes(&moved, 0), all[..keep].to_vec());
        }
        // A cut before the first sample ends leaves nothing of the fragment.
        let tracks = [TrackRetime {
            defaults: defaults()[0],
            shift: 0,
            cut_at: Some(500),
        }];
        let how = Retime {
            sequence: 1,
            tracks: &tracks,
            file_offset: 0,
        };
        assert!(track_runs(&retime(&bytes, &how).unwrap(), 0, &defaults()).is_err());
    }

    #[test]
    fn broken_segments_are_errors() {
        let bytes = segment(&[(0, &[1024])], None);
        let unknown = [TrackRetime {
            defaults: TrackDefaults {
                track_id: 9,
                ..defaults()[0]
            },
            shift: 0,
            cut_at: None,
        }];
        let how = Retime {
            sequence: 1,
            tracks: &unknown,
            file_offset: 0,
        };
        assert!(
            retime(&bytes, &how).is_err(),
            "a track the init does not declare"
        );
        let moof_only = &bytes[..bytes.len() - 20];
        for bad in [
            &b""[..],
            b"\0\0\0\x08free",
            moof_only,
            b"\xff\xff\xff\xffmoof",
        ] {
            assert!(track_runs(bad, 0, &defaults()).is_err());
        }
    }
}
