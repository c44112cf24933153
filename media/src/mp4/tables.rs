//! Sample tables (ISO/IEC 14496-12 §8.6–8.7) and movie fragments (§8.8) expanded into one
//! sample index per track. Containers are walked here (unknown boxes skipped, as QuickTime
//! files have many); the leaf boxes are decoded with `mp4_atom`.

use std::collections::HashMap;

use mp4_atom::{
    Co64, Ctts, Decode, Elst, Mdhd, Moof, Stco, Stsc, Stsd, Stss, Stsz, StszSamples, Stts, Tkhd,
    Trex,
};

use super::boxes::{Child, children, find, fourcc};
use super::{MAX_SAMPLES, SampleRef, Track, TrackKind};

type Result<T> = std::result::Result<T, String>;

fn decode<T: Decode>(child: Child<'_>) -> Result<T> {
    T::decode(&mut &child.bytes[..]).map_err(|e| format!("{}: {e}", fourcc(&child.kind)))
}

fn required<'a>(parent: &'a [u8], kind: &[u8; 4], within: &str) -> Result<Child<'a>> {
    find(parent, kind)?.ok_or_else(|| format!("{within} has no {}", fourcc(kind)))
}

/// The tracks of a movie box's body, with their samples from the sample tables (empty for a
/// fragmented file, whose samples come from [`add_fragment`]).
pub fn parse_moov(moov: &[u8]) -> Result<Vec<Track>> {
    let movie_timescale = match find(moov, b"mvhd")? {
        Some(mvhd) => decode::<mp4_atom::Mvhd>(mvhd)?.timescale,
        None => return Err("moov has no mvhd".into()),
    };
    let mut tracks = Vec::new();
    for child in children(moov) {
        let child = child?;
        if &child.kind == b"trak" {
            tracks.push(parse_trak(child.body, movie_timescale)?);
        }
    }
    Ok(tracks)
}

/// The handler type of an `hdlr` body: version/flags, `pre_defined` (QuickTime's component
/// type), then the handler (§8.4.3). Read by hand: QuickTime's counted name string is not
/// what ISO readers expect.
fn handler(body: &[u8]) -> Result<[u8; 4]> {
    body.get(8..12)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .ok_or_else(|| "hdlr is too short".to_string())
}

fn parse_trak(trak: &[u8], movie_timescale: u32) -> Result<Track> {
    let tkhd: Tkhd = decode(required(trak, b"tkhd", "trak")?)?;
    let mdia = required(trak, b"mdia", "trak")?.body;
    let mdhd: Mdhd = decode(required(mdia, b"mdhd", "mdia")?)?;
    if mdhd.timescale == 0 {
        return Err(format!("track {} has a timescale of 0", tkhd.track_id));
    }
    let kind = match &handler(required(mdia, b"hdlr", "mdia")?.body)? {
        b"vide" => TrackKind::Video,
        b"soun" => TrackKind::Audio,
        _ => TrackKind::Other,
    };
    let stbl = required(required(mdia, b"minf", "mdia")?.body, b"stbl", "minf")?.body;
    let stsd: Stsd = decode(required(stbl, b"stsd", "stbl")?)?;
    let entry = stsd
        .codecs
        .into_iter()
        .next()
        .ok_or_else(|| format!("track {} has no sample description", tkhd.track_id))?;
    let edit_shift = match find(trak, b"edts")? {
        Some(edts) => match find(edts.body, b"elst")? {
            Some(elst) => edit_shift(&decode(elst)?, movie_timescale, mdhd.timescale),
            None => 0,
        },
        None => 0,
    };
    let samples = sample_table(stbl).map_err(|e| format!("track {}: {e}", tkhd.track_id))?;
    // A display matrix turned a quarter (a = d = 0, §8.3.2: phones record portrait video
    // this way) shows the picture with width and height swapped.
    let quarter_turn = tkhd.matrix.a == 0 && tkhd.matrix.d == 0 && tkhd.matrix.b != 0;
    let header_size = (
        u32::from(tkhd.width.integer()),
        u32::from(tkhd.height.integer()),
    );
    Ok(Track {
        id: tkhd.track_id,
        kind,
        timescale: mdhd.timescale,
        entry,
        edit_shift,
        quarter_turn,
        header_size: (header_size.0 > 0 && header_size.1 > 0).then_some(header_size),
        samples,
    })
}

/// The shift an edit list applies to composition times, track ticks: the first non-empty
/// edit's `media_time` (where presentation starts in the media), less the leading empty
/// edits' duration (a delay before the track starts, movie timescale). Later edits (cuts
/// inside the file) are not honoured: repackaging keeps every sample from the first edit on.
pub fn edit_shift(elst: &Elst, movie_timescale: u32, track_timescale: u32) -> i64 {
    let mut empty = 0u64;
    for entry in &elst.entries {
        match entry.media_time {
            None => empty = empty.saturating_add(entry.segment_duration),
            Some(media_time) => {
                let delay = (u128::from(empty) * u128::from(track_timescale)
                    / u128::from(movie_timescale.max(1))) as i64;
                return media_time as i64 - delay;
            }
        }
    }
    0
}

/// Expands `stts`, `ctts`, `stss`, `stsc`, `stsz` and `stco`/`co64` into sample references.
fn sample_table(stbl: &[u8]) -> Result<Vec<SampleRef>> {
    let stsz: Stsz = decode(required(stbl, b"stsz", "stbl")?)?;
    let count = match &stsz.samples {
        StszSamples::Identical { count, .. } => *count as usize,
        StszSamples::Different { sizes } => sizes.len(),
    };
    if count > MAX_SAMPLES {
        return Err(format!("{count} samples, over the limit of {MAX_SAMPLES}"));
    }
    if count == 0 {
        return Ok(Vec::new());
    }
    let size_of = |i: usize| match &stsz.samples {
        StszSamples::Identical { size, .. } => *size,
        StszSamples::Different { sizes } => sizes[i],
    };
    let stts: Stts = decode(required(stbl, b"stts", "stbl")?)?;
    let ctts: Option<Ctts> = find(stbl, b"ctts")?.map(decode).transpose()?;
    let stss: Option<Stss> = find(stbl, b"stss")?.map(decode).transpose()?;
    let stsc: Stsc = decode(required(stbl, b"stsc", "stbl")?)?;
    let chunk_offsets: Vec<u64> = match (find(stbl, b"stco")?, find(stbl, b"co64")?) {
        (Some(stco), _) => decode::<Stco>(stco)?
            .entries
            .into_iter()
            .map(u64::from)
            .collect(),
        (None, Some(co64)) => decode::<Co64>(co64)?.entries,
        (None, None) => return Err("stbl has neither stco nor co64".into()),
    };

    let mut samples = Vec::with_capacity(count);
    // Offsets: walk the chunks, each holding `samples_per_chunk` of the run it is in.
    for (run, entry) in stsc.entries.iter().enumerate() {
        let first_chunk = entry.first_chunk.max(1) as usize;
        let next_first = stsc
            .entries
            .get(run + 1)
            .map_or(chunk_offsets.len() + 1, |e| e.first_chunk as usize);
        for chunk in first_chunk..next_first.min(chunk_offsets.len() + 1) {
            let mut offset = chunk_offsets[chunk - 1];
            for _ in 0..entry.samples_per_chunk {
                if samples.len() == count {
                    break;
                }
                let size = size_of(samples.len());
                samples.push(SampleRef {
                    offset,
                    size,
                    dts: 0,
                    duration: 0,
                    cts_offset: 0,
                    sync: stss.is_none(),
                });
                offset += u64::from(size);
            }
        }
    }
    if samples.len() != count {
        return Err(format!(
            "the chunk tables place {} of {count} samples",
            samples.len()
        ));
    }
    let mut dts = 0u64;
    let mut durations = stts
        .entries
        .iter()
        .flat_map(|e| std::iter::repeat_n(e.sample_delta, e.sample_count as usize));
    for sample in &mut samples {
        let duration = durations
            .next()
            .ok_or("stts covers fewer samples than stsz")?;
        sample.dts = dts;
        sample.duration = duration;
        dts += u64::from(duration);
    }
    if let Some(ctts) = ctts {
        let mut offsets = ctts
            .entries
            .iter()
            .flat_map(|e| std::iter::repeat_n(e.sample_offset, e.sample_count as usize));
        for sample in &mut samples {
            let offset = offsets
                .next()
                .ok_or("ctts covers fewer samples than stsz")?;
            sample.cts_offset = i32::try_from(offset)
                .map_err(|_| format!("composition offset {offset} out of range"))?;
        }
    }
    if let Some(stss) = stss {
        for number in stss.entries {
            if let Some(sample) = (number as usize)
                .checked_sub(1)
                .and_then(|i| samples.get_mut(i))
            {
                sample.sync = true;
            }
        }
    }
    Ok(samples)
}

/// Per-track defaults of movie fragments (`trex`).
pub fn trex_defaults(moov: &[u8]) -> Result<HashMap<u32, Trex>> {
    let mut defaults = HashMap::new();
    if let Some(mvex) = find(moov, b"mvex")? {
        for child in children(mvex.body) {
            let child = child?;
            if &child.kind == b"trex" {
                let trex: Trex = decode(child)?;
                defaults.insert(trex.track_id, trex);
            }
        }
    }
    Ok(defaults)
}

/// `sample_is_non_sync_sample` of the sample flags (§8.8.3.1).
const NON_SYNC: u32 = 0x0001_0000;

/// Appends the samples of one movie fragment (`moof` at file offset `moof_start`) to the
/// tracks they belong to.
pub fn add_fragment(
    tracks: &mut [Track],
    defaults: &HashMap<u32, Trex>,
    moof_start: u64,
    moof: &Moof,
) -> Result<()> {
    // Without base-data-offset or default-base-is-moof, the first traf's data starts at the
    // moof and each later traf's right after the previous one's (§8.8.7.1).
    let mut previous_end = moof_start;
    for traf in &moof.traf {
        let tfhd = &traf.tfhd;
        let Some(track) = tracks.iter_mut().find(|t| t.id == tfhd.track_id) else {
            return Err(format!("fragment for unknown track {}", tfhd.track_id));
        };
        let trex = defaults.get(&tfhd.track_id);
        let default_duration = tfhd
            .default_sample_duration
            .or(trex.map(|t| t.default_sample_duration))
            .unwrap_or(0);
        let default_size = tfhd
            .default_sample_size
            .or(trex.map(|t| t.default_sample_size))
            .unwrap_or(0);
        let default_flags = tfhd
            .default_sample_flags
            .or(trex.map(|t| t.default_sample_flags))
            .unwrap_or(0);
        let base = match tfhd.base_data_offset {
            Some(base) => base,
            None if tfhd.default_base_is_moof => moof_start,
            None => previous_end,
        };
        let mut dts = match &traf.tfdt {
            Some(tfdt) => tfdt.base_media_decode_time,
            None => track
                .samples
                .last()
                .map_or(0, |s| s.dts + u64::from(s.duration)),
        };
        let mut offset = base;
        for trun in &traf.trun {
            if let Some(data_offset) = trun.data_offset {
                offset = base
                    .checked_add_signed(i64::from(data_offset))
                    .ok_or("trun data offset before the file start")?;
            }
            for entry in trun.samples.iter() {
                if track.samples.len() >= MAX_SAMPLES {
                    return Err(format!("track {} has over {MAX_SAMPLES} samples", track.id));
                }
                let size = entry.size.unwrap_or(default_size);
                let duration = entry.duration.unwrap_or(default_duration);
                let flags = entry.flags.unwrap_or(default_flags);
                let cts_offset = entry.cts.unwrap_or(0);
                track.samples.push(SampleRef {
                    offset,
                    size,
                    dts,
                    duration,
                    cts_offset: i32::try_from(cts_offset)
                        .map_err(|_| format!("composition offset {cts_offset} out of range"))?,
                    sync: flags & NON_SYNC == 0,
                });
                offset += u64::from(size);
                dts += u64::from(duration);
            }
        }
        previous_end = offset;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use mp4_atom::{ElstEntry, Encode, Mfhd, Tfdt, Tfhd, Traf, Trun, TrunEntry, TrunSamples};

    #[test]
    fn edit_lists_shift_composition_times() {
        let edit = |segment_duration, media_time| ElstEntry {
            segment_duration,
            media_time,
            media_rate: 1.into(),
        };
        // ffmpeg's B-frame delay: presentation starts 1024 ticks into the media.
        let elst = Elst {
            entries: vec![edit(10_000, Some(1024))],
        };
        assert_eq!(edit_shift(&elst, 1000, 15_360), 1024);
        // One second of nothing first (movie timescale 1000), then the media from 0.
        let elst = Elst {
            entries: vec![edit(1000, None), edit(10_000, Some(0))],
        };
        assert_eq!(edit_shift(&elst, 1000, 48_000), -48_000);
        assert_eq!(edit_shift(&Elst::default(), 1000, 90_000), 0);
    }

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    fn encoded(atom: &impl Encode) -> Vec<u8> {
        let mut out = Vec::new();
        atom.encode(&mut out).unwrap();
        out
    }

    #[test]
    fn sample_tables_expand_to_offsets_times_and_sync() {
        use mp4_atom::{CttsEntry, StscEntry, SttsEntry};
        let mut stbl = Vec::new();
        stbl.extend(encoded(&Stsz {
            samples: StszSamples::Different {
                sizes: vec![10, 20, 30, 40, 50],
            },
        }));
        stbl.extend(encoded(&Stts {
            entries: vec![SttsEntry {
                sample_count: 5,
                sample_delta: 512,
            }],
        }));
        stbl.extend(encoded(&Ctts {
            entries: vec![
                CttsEntry {
                    sample_count: 1,
                    sample_offset: 1024,
                },
                CttsEntry {
                    sample_count: 4,
                    sample_offset: 0,
                },
            ],
        }));
        stbl.extend(encoded(&Stss {
            entries: vec![1, 4],
        }));
        // Two chunks: three samples at 1000, two at 5000.
        stbl.extend(encoded(&Stsc {
            entries: vec![
                StscEntry {
                    first_chunk: 1,
                    samples_per_chunk: 3,
                    sample_description_index: 1,
                },
                StscEntry {
                    first_chunk: 2,
                    samples_per_chunk: 2,
                    sample_description_index: 1,
                },
            ],
        }));
        stbl.extend(encoded(&Stco {
            entries: vec![1000, 5000],
        }));
        let samples = sample_table(&stbl).unwrap();
        let offsets: Vec<u64> = samples.iter().map(|s| s.offset).collect();
        assert_eq!(offsets, [1000, 1010, 1030, 5000, 5040]);
        let dts: Vec<u64> = samples.iter().map(|s| s.dts).collect();
        assert_eq!(dts, [0, 512, 1024, 1536, 2048]);
        assert_eq!(samples[0].cts(), 1024);
        let sync: Vec<bool> = samples.iter().map(|s| s.sync).collect();
        assert_eq!(sync, [true, false, false, true, false]);
        // A size table longer than the chunks can hold is corrupt.
        let mut short = stbl.clone();
        short.extend(boxed(b"free", b""));
        assert!(sample_table(&short).is_ok());
    }

    #[test]
    fn fragments_append_samples_with_their_offsets() {
        let mut track = Track {
            id: 1,
            kind: TrackKind::Video,
            timescale: 90_000,
            entry: mp4_atom::Codec::Unknown(b"test".into(), Vec::new()),
            edit_shift: 0,
            quarter_turn: false,
            header_size: None,
            samples: Vec::new(),
        };
        let trun = |n: u32, cts: i64| Trun {
            data_offset: Some(100),
            samples: TrunSamples::Explicit(
                (0..n)
                    .map(|i| TrunEntry {
                        duration: Some(3000),
                        size: Some(10 + i),
                        flags: Some(if i == 0 { 0x0200_0000 } else { NON_SYNC }),
                        cts: Some(cts),
                    })
                    .collect(),
            ),
        };
        let moof = |time: u64| Moof {
            mfhd: Mfhd { sequence_number: 1 },
            traf: vec![Traf {
                tfhd: Tfhd {
                    track_id: 1,
                    default_base_is_moof: true,
                    ..Default::default()
                },
                tfdt: Some(Tfdt {
                    base_media_decode_time: time,
                }),
                trun: vec![trun(3, -3000)],
                ..Default::default()
            }],
        };
        let tracks = std::slice::from_mut(&mut track);
        add_fragment(tracks, &HashMap::new(), 4000, &moof(0)).unwrap();
        add_fragment(tracks, &HashMap::new(), 9000, &moof(9000)).unwrap();
        let s = &track.samples;
        assert_eq!(s.len(), 6);
        assert_eq!(
            s.iter().map(|s| s.offset).collect::<Vec<_>>(),
            [4100, 4110, 4121, 9100, 9110, 9121]
        );
        assert_eq!(s[3].dts, 9000);
        assert_eq!(s[4].cts(), 9000);
        assert!(s[0].sync && !s[1].sync && s[3].sync);
        let mut other = moof(0);
        other.traf[0].tfhd.track_id = 7;
        assert!(
            add_fragment(std::slice::from_mut(&mut track), &HashMap::new(), 0, &other).is_err()
        );
    }
}
