#![allow(clippy::unwrap_used)]
use super::*;
use crate::cmaf::{
    AudioTrack, Sample, VideoTrack, audio_init_segment, media_segment, video_init_segment,
};
use crate::validate::init::{Init, Track};

/// A small xorshift generator: random bytes without a dependency, the same every run.
pub(crate) fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn init() -> Vec<u8> {
    video_init_segment(&VideoTrack {
        timescale: 90_000,
        width: 640,
        height: 360,
        sps: vec![0x67, 0x42, 0xc0, 0x1e, 0xda],
        pps: vec![0x68, 0xce, 0x3c, 0x80],
    })
    .unwrap()
}

/// Segment `number` (from 1) of 2 s at 30 fps, as `media` writes them.
fn segment(number: u32) -> Vec<u8> {
    let samples: Vec<Sample> = (0..60)
        .map(|i| Sample {
            data: vec![0, 0, 0, 2, 0x65, i as u8],
            duration: 3000,
            sync: i == 0,
            composition_offset: 0,
        })
        .collect();
    media_segment(number, u64::from(number - 1) * 180_000, &samples).unwrap()
}

fn check(init: &Init, bytes: &[u8]) -> Result<Timing, InvalidMedia> {
    let mut scan = Scan::new(init);
    scan.feed(bytes)?;
    scan.finish()
}

#[test]
fn reads_the_init_segments_media_writes() {
    let video = Init::read(&init()).unwrap();
    assert_eq!(
        video.tracks,
        [Track {
            id: 1,
            timescale: 90_000,
            default_duration: 0,
            default_size: 0
        }]
    );
    let audio = audio_init_segment(&AudioTrack {
        timescale: 48_000,
        channels: 2,
        audio_specific_config: vec![0x11, 0x90],
        bitrate: 128_000,
    })
    .unwrap();
    assert_eq!(Init::read(&audio).unwrap().tracks[0].timescale, 48_000);
    for bad in [&b""[..], b"\0\0\0\x08free", &init()[..100], &segment(1)] {
        assert!(Init::read(bad).is_err());
    }
}

#[test]
fn a_segment_is_media_whole_and_in_any_pieces() {
    let init = Init::read(&init()).unwrap();
    let bytes = segment(2);
    let whole = check(&init, &bytes).unwrap();
    assert_eq!(
        whole.spans,
        [Span {
            track: 1,
            timescale: 90_000,
            start: 180_000,
            end: 360_000
        }]
    );
    for piece in [1, 3, 7, 8, 16, 100, 4096] {
        let mut scan = Scan::new(&init);
        for chunk in bytes.chunks(piece) {
            scan.feed(chunk).unwrap();
        }
        assert_eq!(scan.finish().unwrap(), whole, "pieces of {piece}");
    }
}

#[test]
fn every_cut_short_segment_is_refused() {
    let init = Init::read(&init()).unwrap();
    let bytes = segment(1);
    for len in 0..bytes.len() {
        assert!(check(&init, &bytes[..len]).is_err(), "cut at {len}");
    }
}

#[test]
fn random_bytes_are_refused() {
    let init = Init::read(&init()).unwrap();
    for seed in 0..2000u64 {
        let len = (seed as usize * 37) % 5000;
        assert!(check(&init, &noise(seed, len)).is_err(), "seed {seed}");
        assert!(Init::read(&noise(seed, len)).is_err(), "seed {seed}");
    }
    // Random bytes after a valid segment's first boxes.
    let bytes = segment(1);
    for seed in 0..200u64 {
        let mut b = bytes[..40].to_vec();
        b.extend(noise(seed, 1000));
        assert!(check(&init, &b).is_err(), "seed {seed}");
    }
}

/// `bytes` with the big-endian u32 at `at` replaced.
fn patched(bytes: &[u8], at: usize, value: u32) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[at..at + 4].copy_from_slice(&value.to_be_bytes());
    b
}

fn find(bytes: &[u8], kind: &[u8; 4]) -> usize {
    bytes.windows(4).position(|w| w == kind).unwrap() - 4
}

#[test]
fn structure_faults_table() {
    let init = Init::read(&init()).unwrap();
    let good = segment(1);
    let mdat = find(&good, b"mdat");
    let tfhd = find(&good, b"tfhd");
    let trun = find(&good, b"trun");
    let mfhd = find(&good, b"mfhd");
    let mdat_size = u32::from_be_bytes(good[mdat..mdat + 4].try_into().unwrap());
    let data_offset = u32::from_be_bytes(good[trun + 16..trun + 20].try_into().unwrap());
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"\0\0\0");
    let mut no_mdat = good[..mdat].to_vec();
    no_mdat.extend_from_slice(b"\0\0\0\x08free");
    let cases: [(&str, Vec<u8>); 8] = [
        ("track 2 is not in the init", patched(&good, tfhd + 12, 2)),
        ("mdat shorter than its samples", {
            let mut b = patched(&good, mdat, mdat_size - 1);
            b.pop();
            b
        }),
        (
            "data offset past the mdat",
            patched(&good, trun + 16, data_offset + 8),
        ),
        (
            "sample count beyond the trun",
            patched(&good, trun + 12, 1 << 20),
        ),
        ("mfhd renamed", {
            let mut b = good.clone();
            b[mfhd + 4..mfhd + 8].copy_from_slice(b"mfhx");
            b
        }),
        ("bytes after the last box", trailing),
        ("no mdat", no_mdat),
        ("box larger than the segment", patched(&good, 0, 1 << 30)),
    ];
    for (what, bytes) in cases {
        let got = check(&init, &bytes);
        assert!(got.is_err(), "{what}: {got:?}");
    }
    assert!(matches!(
        check(&init, &patched(&good, tfhd + 12, 2)),
        Err(InvalidMedia::UnknownTrack(2))
    ));
}

#[test]
fn fragments_of_one_segment_follow_each_other() {
    let init = Init::read(&init()).unwrap();
    // Two fragments in one segment: 0–2 s, then 2–4 s.
    let mut two = segment(1);
    two.extend_from_slice(&segment(2));
    let timing = check(&init, &two).unwrap();
    assert_eq!((timing.spans[0].start, timing.spans[0].end), (0, 360_000));
    let mut gap = segment(1);
    gap.extend_from_slice(&segment(3));
    assert!(matches!(
        check(&init, &gap),
        Err(InvalidMedia::Discontinuous { .. })
    ));
}
