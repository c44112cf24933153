//! CMAF (ISO/IEC 23000-19) fragmented MP4: init segments and media segments (re-timing any
//! writer's segments is [`crate::fragments`]).

use mp4_atom::{
    Audio, Avc1, Avcc, Codec, Dinf, Dref, Edts, Elst, ElstEntry, Encode, Esds, Ftyp, Hdlr, Mdat,
    Mdhd, Mdia, Mfhd, Minf, Moof, Moov, Mp4a, Mvex, Mvhd, Smhd, Stbl, Stco, Stsc, Stsd, Stsz, Stts,
    Styp, Tfdt, Tfhd, Tkhd, Traf, Trak, Trex, Trun, TrunEntry, TrunSamples, Url, Visual, Vmhd,
    esds,
};

use crate::{MediaError, Result};

/// ISO/IEC 14496-12 §8.8.3.1 sample flags: `sample_depends_on = 2` (does not depend on
/// others, i.e. a sync sample).
pub const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;
/// `sample_depends_on = 1` plus `sample_is_non_sync_sample = 1`.
pub const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;

const TRACK_ID: u32 = 1;

/// What the init segment of an H.264 video track describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoTrack {
    pub timescale: u32,
    pub width: u32,
    pub height: u32,
    /// SPS and PPS NAL units, without start codes.
    pub sps: Vec<u8>,
    pub pps: Vec<u8>,
}

/// What the init segment of an AAC audio track describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioTrack {
    /// Equal to the sample rate.
    pub timescale: u32,
    pub channels: u16,
    /// The AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1).
    pub audio_specific_config: Vec<u8>,
    pub bitrate: u32,
}

/// One coded sample: an access unit in length-prefixed (AVCC / HVCC) form, or an AAC frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub data: Vec<u8>,
    /// Duration in the track's timescale.
    pub duration: u32,
    pub sync: bool,
    /// Presentation time minus decode time, track timescale: non-zero with B-frames, and
    /// negative for the frames presented before they are decoded once the stream is shifted
    /// so that its first frame presents at its decode time (CMAF's version-1 `trun`).
    pub composition_offset: i32,
}

fn u16_dimension(value: u32, what: &str) -> Result<u16> {
    u16::try_from(value).map_err(|_| MediaError::Invalid(format!("{what} {value} too large")))
}

/// The CMAF header (`ftyp` + `moov` with `avcC` and `mvex`/`trex`) of a video track.
pub fn video_init_segment(track: &VideoTrack) -> Result<Vec<u8>> {
    let [_, profile, compat, level, ..] = track.sps[..] else {
        return Err(MediaError::Invalid("SPS too short".into()));
    };
    let width = u16_dimension(track.width, "width")?;
    let height = u16_dimension(track.height, "height")?;
    let avc1 = Avc1 {
        visual: Visual {
            data_reference_index: 1,
            width,
            height,
            horizresolution: 72.into(),
            vertresolution: 72.into(),
            frame_count: 1,
            compressor: "".into(),
            depth: 24,
        },
        avcc: Avcc {
            configuration_version: 1,
            avc_profile_indication: profile,
            profile_compatibility: compat,
            avc_level_indication: level,
            length_size: 4,
            sequence_parameter_sets: vec![track.sps.clone()],
            picture_parameter_sets: vec![track.pps.clone()],
            ext: None,
        },
        btrt: None,
        colr: None,
        pasp: None,
        taic: None,
        fiel: None,
        spatial: None,
    };
    track_init_segment(avc1.into(), track.timescale, 0)
}

/// AAC sampling frequency index (ISO/IEC 14496-3 Table 1.16).
fn frequency_index(rate: u32) -> Result<u8> {
    const RATES: [u32; 13] = [
        96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025,
        8_000, 7_350,
    ];
    RATES
        .iter()
        .position(|&r| r == rate)
        .map(|i| i as u8)
        .ok_or_else(|| MediaError::Invalid(format!("{rate} Hz is not an AAC sampling rate")))
}

/// The CMAF header of an AAC audio track (`mp4a` with `esds`).
pub fn audio_init_segment(track: &AudioTrack) -> Result<Vec<u8>> {
    let asc = &track.audio_specific_config;
    let profile = asc
        .first()
        .map(|b| b >> 3)
        .ok_or_else(|| MediaError::Invalid("empty AudioSpecificConfig".into()))?;
    let mp4a = Mp4a {
        audio: Audio {
            data_reference_index: 1,
            channel_count: track.channels,
            sample_size: 16,
            sample_rate: u16::try_from(track.timescale)
                .map_err(|_| MediaError::Invalid("sample rate over 65535 Hz".into()))?
                .into(),
        },
        esds: Esds {
            es_desc: esds::EsDescriptor {
                es_id: 2,
                depends_on_es_id: None,
                url: None,
                ocr_es_id: None,
                stream_priority: 0,
                dec_config: esds::DecoderConfig {
                    // 0x40: MPEG-4 audio; stream type 5: audio (ISO/IEC 14496-1 Tables 5, 6).
                    object_type_indication: 0x40,
                    stream_type: 5,
                    max_bitrate: track.bitrate,
                    avg_bitrate: track.bitrate,
                    dec_specific: Some(esds::DecoderSpecific {
                        profile,
                        freq_index: frequency_index(track.timescale)?,
                        chan_conf: track.channels as u8,
                        raw: asc.clone(),
                    }),
                    ..Default::default()
                },
                sl_config: esds::SLConfig {},
            },
        },
        btrt: None,
        taic: None,
    };
    track_init_segment(mp4a.into(), track.timescale, 0)
}

/// The CMAF header of a one-track fragmented file around `entry`, a video (`avc1`, `avc3`,
/// `hvc1`, `hev1`) or audio (`mp4a`) sample entry: ours, or one carried over unchanged from
/// a file being repackaged, so the decoder configuration (`avcC`, `hvcC`, `esds`, colour
/// and aspect boxes) is the source's byte for byte.
///
/// A non-zero `presentation_delay` (track ticks) writes an edit list whose one edit starts
/// presentation that far into the media (ISO/IEC 14496-12 §8.6.6): with B-frames, the
/// first frame is composed at its (positive) composition offset, and this edit puts it at
/// time 0, as the source's own edit list did.
pub fn track_init_segment(
    mut entry: Codec,
    timescale: u32,
    presentation_delay: u64,
) -> Result<Vec<u8>> {
    // Our init segments have one data reference: every entry points at it.
    match &mut entry {
        Codec::Avc1(e) => e.visual.data_reference_index = 1,
        Codec::Avc3(e) => e.visual.data_reference_index = 1,
        Codec::Hvc1(e) => e.visual.data_reference_index = 1,
        Codec::Hev1(e) => e.visual.data_reference_index = 1,
        Codec::Mp4a(e) => e.audio.data_reference_index = 1,
        _ => {
            return Err(MediaError::Invalid(
                "only H.264, HEVC and AAC tracks are packaged".into(),
            ));
        }
    }
    if let Some(visual) = entry.visual() {
        let tkhd = Tkhd {
            track_id: TRACK_ID,
            enabled: true,
            in_movie: true,
            width: visual.width.into(),
            height: visual.height.into(),
            ..Default::default()
        };
        let minf = Minf {
            vmhd: Some(Vmhd::default()),
            ..Default::default()
        };
        init_segment(tkhd, timescale, b"vide", minf, entry, presentation_delay)
    } else {
        let tkhd = Tkhd {
            track_id: TRACK_ID,
            alternate_group: 1,
            enabled: true,
            in_movie: true,
            volume: 1.into(),
            ..Default::default()
        };
        let minf = Minf {
            smhd: Some(Smhd::default()),
            ..Default::default()
        };
        init_segment(tkhd, timescale, b"soun", minf, entry, presentation_delay)
    }
}

/// `ftyp` + `moov` of a one-track fragmented file: the parts every track type shares.
fn init_segment(
    tkhd: Tkhd,
    timescale: u32,
    handler: &[u8; 4],
    minf: Minf,
    entry: Codec,
    presentation_delay: u64,
) -> Result<Vec<u8>> {
    let ftyp = Ftyp {
        major_brand: b"cmfc".into(),
        minor_version: 0,
        compatible_brands: vec![
            b"iso6".into(),
            b"cmfc".into(),
            b"mp41".into(),
            b"dash".into(),
        ],
    };
    let moov = Moov {
        mvhd: Mvhd {
            timescale: 1000,
            rate: 1.into(),
            volume: 1.into(),
            next_track_id: TRACK_ID + 1,
            ..Default::default()
        },
        mvex: Some(Mvex {
            mehd: None,
            trex: vec![Trex {
                track_id: TRACK_ID,
                default_sample_description_index: 1,
                ..Default::default()
            }],
        }),
        trak: vec![Trak {
            tkhd,
            // A duration of 0 in a fragmented file: the edit runs to the end (§8.6.6.3).
            edts: (presentation_delay > 0).then(|| Edts {
                elst: Some(Elst {
                    entries: vec![ElstEntry {
                        segment_duration: 0,
                        media_time: Some(presentation_delay),
                        media_rate: 1.into(),
                    }],
                }),
            }),
            mdia: Mdia {
                mdhd: Mdhd {
                    timescale,
                    language: "und".into(),
                    ..Default::default()
                },
                hdlr: Hdlr {
                    handler: handler.into(),
                    name: "Rivulet".into(),
                },
                minf: Minf {
                    dinf: Dinf {
                        dref: Dref {
                            entries: vec![
                                Url {
                                    location: String::new(),
                                }
                                .into(),
                            ],
                        },
                    },
                    stbl: Stbl {
                        stsd: Stsd {
                            codecs: vec![entry],
                        },
                        stts: Stts::default(),
                        stsc: Stsc::default(),
                        stsz: Stsz::default(),
                        stco: Some(Stco::default()),
                        ..Default::default()
                    },
                    ..minf
                },
            },
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut out = Vec::new();
    ftyp.encode(&mut out)?;
    moov.encode(&mut out)?;
    Ok(out)
}

/// One CMAF media segment (`styp`, `moof` with `mfhd`/`tfhd`/`tfdt`/`trun`, `mdat`).
///
/// `sequence` is the `mfhd` sequence number, `base_decode_time` the `tfdt` of the first
/// sample in the track's timescale.
pub fn media_segment(sequence: u32, base_decode_time: u64, samples: &[Sample]) -> Result<Vec<u8>> {
    let first = samples
        .first()
        .ok_or_else(|| MediaError::Invalid("a media segment needs samples".into()))?;
    if !first.sync {
        return Err(MediaError::Invalid(
            "a CMAF segment must start with a sync sample".into(),
        ));
    }
    // Composition offsets only when some sample has one (B-frames): version 1, signed.
    let with_offsets = samples.iter().any(|s| s.composition_offset != 0);
    let entries = samples
        .iter()
        .map(|s| -> Result<TrunEntry> {
            Ok(TrunEntry {
                duration: Some(s.duration),
                size: Some(
                    u32::try_from(s.data.len())
                        .map_err(|_| MediaError::Invalid("sample larger than 4 GiB".into()))?,
                ),
                flags: Some(if s.sync {
                    SYNC_SAMPLE_FLAGS
                } else {
                    NON_SYNC_SAMPLE_FLAGS
                }),
                cts: with_offsets.then_some(i64::from(s.composition_offset)),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut moof = Moof {
        mfhd: Mfhd {
            sequence_number: sequence,
        },
        traf: vec![Traf {
            tfhd: Tfhd {
                track_id: TRACK_ID,
                default_base_is_moof: true,
                ..Default::default()
            },
            tfdt: Some(Tfdt {
                base_media_decode_time: base_decode_time,
            }),
            trun: vec![Trun {
                data_offset: Some(0),
                samples: TrunSamples::Explicit(entries),
            }],
            ..Default::default()
        }],
    };
    // The data offset is counted from the start of the moof (default-base-is-moof) to the
    // first byte of mdat's payload: moof's size plus mdat's 8-byte header.
    let mut probe = Vec::new();
    moof.encode(&mut probe)?;
    let offset =
        i32::try_from(probe.len() + 8).map_err(|_| MediaError::Invalid("moof too large".into()))?;
    moof.traf[0].trun[0].data_offset = Some(offset);

    let payload: usize = samples.iter().map(|s| s.data.len()).sum();
    let mut data = Vec::with_capacity(payload);
    for s in samples {
        data.extend_from_slice(&s.data);
    }
    let styp = Styp {
        major_brand: b"msdh".into(),
        minor_version: 0,
        compatible_brands: vec![b"msdh".into(), b"msix".into(), b"cmfs".into()],
    };
    let mut out = Vec::with_capacity(payload + probe.len() + 64);
    styp.encode(&mut out)?;
    moof.encode(&mut out)?;
    Mdat { data }.encode(&mut out)?;
    Ok(out)
}

/// What [`inspect_segment`] reads back from a media segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    pub sequence: u32,
    pub base_decode_time: u64,
    pub sample_count: usize,
    pub duration: u64,
    pub first_sample_sync: bool,
}

/// Reads the timing of a media segment's first track (its first fragment), for tests: any
/// writer's segments, `sidx` and all.
pub fn inspect_segment(bytes: &[u8]) -> Result<SegmentInfo> {
    let runs = crate::fragments::track_runs(bytes, 0, &[])?;
    let first = runs
        .first()
        .ok_or_else(|| MediaError::Invalid("moof without traf".into()))?;
    let mine: Vec<&crate::fragments::TrackRun> = runs
        .iter()
        .filter(|r| r.track_id == first.track_id)
        .collect();
    Ok(SegmentInfo {
        sequence: first.sequence,
        base_decode_time: first.base_decode_time,
        sample_count: mine.iter().map(|r| r.durations.len()).sum(),
        duration: mine.last().map_or(0, |r| r.end()) - first.base_decode_time,
        first_sample_sync: first.first_sync,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use mp4_atom::Decode;

    use super::*;

    fn samples(n: usize) -> Vec<Sample> {
        (0..n)
            .map(|i| Sample {
                data: vec![0, 0, 0, 2, 0x65, i as u8],
                duration: 3000,
                sync: i == 0,
                composition_offset: 0,
            })
            .collect()
    }

    #[test]
    fn media_segment_round_trips_timing() {
        let seg = media_segment(7, 180_000, &samples(60)).unwrap();
        let info = inspect_segment(&seg).unwrap();
        assert_eq!(
            info,
            SegmentInfo {
                sequence: 7,
                base_decode_time: 180_000,
                sample_count: 60,
                duration: 180_000,
                first_sample_sync: true,
            }
        );
    }

    #[test]
    fn segments_must_start_with_a_sync_sample() {
        let mut s = samples(3);
        s[0].sync = false;
        assert!(media_segment(1, 0, &s).is_err());
        assert!(media_segment(1, 0, &[]).is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [&b""[..], b"\0\0\0\x08free", b"\xff\xff\xff\xffmoof", b"abc"] {
            assert!(inspect_segment(bad).is_err());
        }
    }

    #[test]
    fn audio_init_segment_decodes() {
        let track = AudioTrack {
            timescale: 48_000,
            channels: 2,
            audio_specific_config: vec![0x11, 0x90],
            bitrate: 128_000,
        };
        let init = audio_init_segment(&track).unwrap();
        let mut buf = &init[..];
        Ftyp::decode(&mut buf).unwrap();
        let moov = Moov::decode(&mut buf).unwrap();
        assert_eq!(moov.trak[0].mdia.hdlr.handler, b"soun".into());
        assert!(moov.trak[0].mdia.minf.smhd.is_some());
        assert!(frequency_index(44_100).is_ok() && frequency_index(44_000).is_err());
    }

    #[test]
    fn init_segment_decodes() {
        let track = VideoTrack {
            timescale: 90_000,
            width: 640,
            height: 360,
            sps: vec![0x67, 0x42, 0xc0, 0x1e, 0xda],
            pps: vec![0x68, 0xce, 0x3c, 0x80],
        };
        let init = video_init_segment(&track).unwrap();
        let mut buf = &init[..];
        let ftyp = Ftyp::decode(&mut buf).unwrap();
        assert_eq!(ftyp.major_brand, b"cmfc".into());
        let moov = Moov::decode(&mut buf).unwrap();
        assert_eq!(moov.trak[0].mdia.mdhd.timescale, 90_000);
        assert!(moov.mvex.is_some());
    }
}
