//! A bounded fuzzing pass over the manifest and segment-index parsers: seeded random
//! mutations (a fixed count, a fixed seed, so a failure reproduces) of real manifests —
//! ours as `media` writes them, and the forms ffmpeg and other packagers write — and of
//! `sidx` boxes. Every input must give `Ok` or a one-line typed error, never a panic, and
//! in bounded time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use media::dash::{self, DynamicMpd};
use media::limits::SegmentBudget;
use media::model::{
    ByteRange, Container, MediaType, Presentation, PresentationKind, Rendition, Segment,
    SegmentIndex,
};
use media::{MediaError, hls, sidx};
use mp4_atom::{Encode, SegmentReference, Sidx};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

mod support;
use support::mpd;

const NOW: f64 = 1_796_083_200.0;
/// Mutated inputs per seed manifest, and per `sidx`.
const ROUNDS: usize = 300;
/// Generous: a parse takes microseconds to a few hundred milliseconds (a budget's worth
/// of segments); a hang or an unbounded loop is what this catches.
const SLOWEST: Duration = Duration::from_secs(5);

fn rendition(id: &str, media_type: MediaType, bps: u64) -> Rendition {
    Rendition {
        id: id.into(),
        media_type,
        bandwidth_peak: bps,
        bandwidth_avg: bps,
        width: (media_type == MediaType::Video).then_some(640),
        height: (media_type == MediaType::Video).then_some(360),
        frame_rate: (media_type == MediaType::Video).then_some(30.0),
        codecs: if media_type == MediaType::Video {
            "avc1.42c01e".parse().unwrap()
        } else {
            "mp4a.40.2".parse().unwrap()
        },
        sample_rate: (media_type == MediaType::Audio).then_some(48_000),
        init_uri: Some("init.mp4".into()),
        init_range: None,
        container: Container::Fmp4,
        playlist_uri: Some(format!("{id}/index.m3u8")),
        segment_index: None,
        segments: (0..5)
            .map(|i| Segment {
                number: i + 1,
                start: i as f64 * 2.0,
                duration: 2.0,
                size: Some(50_000),
                uri: format!("{}.m4s", i + 1),
                ..Default::default()
            })
            .collect(),
    }
}

fn ours() -> Presentation {
    Presentation {
        kind: PresentationKind::Vod,
        renditions: vec![
            rendition("360p-750k", MediaType::Video, 750_000),
            rendition("720p-1850k", MediaType::Video, 1_850_000),
            rendition("audio", MediaType::Audio, 128_000),
        ],
        delivery: Default::default(),
    }
}

/// MPDs: ours (static and dynamic) and the forms ffmpeg and others write.
fn mpd_seeds() -> Vec<String> {
    let p = ours();
    let live = DynamicMpd {
        availability_start: NOW - 3_600.0,
        publish_time: NOW,
        minimum_update_period: 2.0,
        time_shift_buffer_depth: 60.0,
        suggested_presentation_delay: 6.0,
        utc_timing_url: "http://h/time".into(),
    };
    // ffmpeg's single-file forms: one file, its segments by range or by its index.
    let single_file = |addressing: &str| {
        mpd(
            "static",
            "mediaPresentationDuration=\"PT10.0S\"",
            1,
            &format!("<BaseURL>manifest-stream0.mp4</BaseURL>{addressing}"),
        )
    };
    vec![
        dash::write_static_mpd(&p).unwrap(),
        dash::write_dynamic_mpd(&p, &live).unwrap(),
        single_file(
            r#"<SegmentList timescale="1000000" duration="2000000" startNumber="1">
     <Initialization range="0-833" />
     <SegmentURL mediaRange="834-177692" indexRange="834-885" />
     <SegmentURL mediaRange="177693-387612" indexRange="177693-177744" />
    </SegmentList>"#,
        ),
        single_file(
            r#"<SegmentBase indexRange="838-937" timescale="1000"><Initialization range="0-837" /></SegmentBase>"#,
        ),
        single_file(
            r#"<SegmentTemplate timescale="1000" initialization="init-$RepresentationID$.m4s" media="chunk-$RepresentationID$-$Number%05d$.m4s" startNumber="1">
     <SegmentTimeline><S t="0" d="2000" r="3"/><S d="1000"/><S d="500" r="-1"/></SegmentTimeline>
    </SegmentTemplate>"#,
        ),
    ]
}

/// HLS playlists: ours and ffmpeg's (byte ranges, TS, packed audio), an Apple-style
/// multivariant playlist with audio and I-frame variants.
fn playlist_seeds() -> Vec<String> {
    let p = ours();
    vec![
        hls::write_multivariant(&p).unwrap(),
        hls::write_vod_media_playlist(&p.renditions[0]).unwrap(),
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MAP:URI=\"fmp4.m4s\",BYTERANGE=\"1373@0\"\n\
#EXTINF:2.000000,\n#EXT-X-BYTERANGE:207728@1373\nfmp4.m4s\n\
#EXTINF:2.000000,\n#EXT-X-BYTERANGE:242489\nfmp4.m4s\n#EXT-X-ENDLIST\n"
            .into(),
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PROGRAM-DATE-TIME:2026-12-01T00:00:00.000Z\n\
#EXTINF:2,\n0.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:2,\nad/0.ts?x=1\n#EXTINF:2,\na/0.aac\n"
            .into(),
        "#EXTM3U\n#EXT-X-VERSION:6\n\
#EXT-X-CONTENT-STEERING:SERVER-URI=\"/steer.json\",PATHWAY-ID=\"a\"\n\
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",NAME=\"English\",DEFAULT=YES,URI=\"a/prog.m3u8\"\n\
#EXT-X-STREAM-INF:BANDWIDTH=2177116,RESOLUTION=960x540,CODECS=\"avc1.640020,mp4a.40.2\",AUDIO=\"aac\",PATHWAY-ID=\"a\"\n\
v5/prog_index.m3u8\n\
#EXT-X-STREAM-INF:BANDWIDTH=2177116,RESOLUTION=960x540,CODECS=\"avc1.640020,mp4a.40.2\",AUDIO=\"aac\",PATHWAY-ID=\"b\"\n\
https://b.test/v5/prog_index.m3u8\n\
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=186522,URI=\"v5/iframe.m3u8\"\n"
            .into(),
    ]
}

/// Pieces a mutation may put in: extreme numbers, repeats, broken syntax.
const NUMBERS: [&str; 12] = [
    "0",
    "-1",
    "1",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775807",
    "1e308",
    "NaN",
    "-0",
    "0.0000001",
];
const TOKENS: [&str; 18] = [
    "<S d=\"1\" r=\"999999999\"/>",
    "<S t=\"18446744073709551615\" d=\"1\"/>",
    " r=\"-1\"",
    " timescale=\"0\"",
    " startNumber=\"18446744073709551615\"",
    "$Number%099d$",
    "$Time$",
    "<Period/>",
    "availabilityStartTime=\"0001-01-01T00:00:00Z\"",
    "#EXTINF:1e39,\n",
    "#EXTINF:0.001,\nx.m4s\n",
    "#EXT-X-BYTERANGE:5@18446744073709551615\n",
    "#EXT-X-MEDIA-SEQUENCE:18446744073709551615\n",
    "#EXT-X-TARGETDURATION:18446744073709551615\n",
    "\u{feff}",
    "\"",
    "avc1.1\u{e9}234",
    "CODECS=\"hvc1.A\u{e9}.4.L\u{e9}\",",
];

fn mutate(rng: &mut StdRng, seed: &str) -> String {
    let mut bytes = seed.as_bytes().to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let len = bytes.len().max(1);
        let at = rng.random_range(0..len).min(bytes.len());
        match rng.random_range(0..6) {
            0 => {
                if let Some(b) = bytes.get_mut(at) {
                    *b ^= 1 << rng.random_range(0..8);
                }
            }
            1 => {
                let end = (at + rng.random_range(1..64)).min(bytes.len());
                bytes.drain(at..end);
            }
            2 => {
                // A piece repeated: many elements or lines from a few bytes.
                let end = (at + rng.random_range(1..200)).min(bytes.len());
                let piece = bytes[at..end].to_vec();
                let times = *[2usize, 10, 1_000, 20_000]
                    .get(rng.random_range(0..4))
                    .unwrap();
                let repeated: Vec<u8> = piece.repeat(times.min(300_000 / piece.len().max(1)));
                bytes.splice(end..end, repeated);
            }
            3 => {
                // A number replaced by an extreme one.
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let digits: Vec<usize> = text
                    .char_indices()
                    .filter(|(_, c)| c.is_ascii_digit())
                    .map(|(i, _)| i)
                    .collect();
                if let Some(&start) = digits.get(rng.random_range(0..digits.len().max(1))) {
                    let end = text[start..]
                        .find(|c: char| !c.is_ascii_digit() && c != '.')
                        .map_or(text.len(), |n| start + n);
                    let number = NUMBERS[rng.random_range(0..NUMBERS.len())];
                    bytes = format!("{}{number}{}", &text[..start], &text[end..]).into_bytes();
                }
            }
            4 => {
                let token = TOKENS[rng.random_range(0..TOKENS.len())];
                bytes.splice(at..at, token.bytes());
            }
            _ => bytes.truncate(at),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Runs `parse` on `input`: a panic, a multi-line error or a slow parse fails the test
/// with the input that caused it. Returns how long it took.
fn check<T>(what: &str, input: &str, parse: impl FnOnce() -> Result<T, MediaError>) -> Duration {
    let started = Instant::now();
    let got = catch_unwind(AssertUnwindSafe(parse));
    let took = started.elapsed();
    let shown: String = input.chars().take(600).collect();
    match got {
        Err(_) => panic!("{what} panicked on:\n{shown}"),
        Ok(Err(e)) => {
            let line = e.to_string();
            assert!(!line.contains('\n'), "{what}: {line:?} on:\n{shown}");
        }
        Ok(Ok(_)) => {}
    }
    assert!(took < SLOWEST, "{what} took {took:?} on:\n{shown}");
    took
}

#[test]
fn mutated_mpds_never_panic() {
    let mut rng = StdRng::seed_from_u64(14);
    let mut slowest = Duration::ZERO;
    for seed in mpd_seeds() {
        dash::parse_mpd(&seed, "http://h/m.mpd", NOW).unwrap();
        for _ in 0..ROUNDS {
            let input = mutate(&mut rng, &seed);
            slowest = slowest.max(check("parse_mpd", &input, || {
                dash::parse_mpd(&input, "http://h/m.mpd", NOW)
            }));
        }
    }
    println!("slowest MPD parse: {slowest:?}");
}

#[test]
fn mutated_playlists_never_panic() {
    let mut rng = StdRng::seed_from_u64(14);
    let mut slowest = Duration::ZERO;
    for seed in playlist_seeds() {
        for _ in 0..ROUNDS {
            let input = mutate(&mut rng, &seed);
            let base = "http://h/a/index.m3u8";
            slowest = slowest.max(check("parse_media_playlist", &input, || {
                hls::parse_media_playlist(&input, base)
            }));
            slowest = slowest.max(check("parse_multivariant", &input, || {
                hls::parse_multivariant(&input, base)
            }));
        }
    }
    println!("slowest playlist parse: {slowest:?}");
}

#[test]
fn mutated_segment_indexes_never_panic() {
    let mut rng = StdRng::seed_from_u64(14);
    for references in [1usize, 3, 200] {
        let mut bytes = Vec::new();
        Sidx {
            reference_id: 1,
            timescale: 1000,
            earliest_presentation_time: 500,
            first_offset: 4,
            references: (0..references)
                .map(|_| SegmentReference {
                    reference_type: false,
                    referenced_size: 100_000,
                    subsegment_duration: 2000,
                    starts_with_sap: true,
                    sap_type: 1,
                    sap_delta_time: 0,
                })
                .collect(),
        }
        .encode(&mut bytes)
        .unwrap();
        let index = SegmentIndex {
            uri: "http://h/v.mp4".into(),
            range: ByteRange::new(800, bytes.len() as u64).unwrap(),
            time_offset: 0.0,
        };
        sidx::segments(&index, &bytes, &mut SegmentBudget::default()).unwrap();
        for _ in 0..ROUNDS {
            let mut mutated = bytes.clone();
            for _ in 0..rng.random_range(1..=4) {
                let at = rng.random_range(0..mutated.len().max(1));
                match rng.random_range(0..4) {
                    0 => {
                        if let Some(b) = mutated.get_mut(at) {
                            *b ^= 1 << rng.random_range(0..8);
                        }
                    }
                    // Sizes, counts and timescale are in the first 32 bytes.
                    1 => {
                        let at = rng.random_range(0..32);
                        if let Some(b) = mutated.get_mut(at) {
                            *b = [0x00, 0xff, 0x01, 0x80][rng.random_range(0..4)];
                        }
                    }
                    2 => mutated.truncate(at),
                    _ => mutated.extend((0..rng.random_range(1..64)).map(|_| rng.random::<u8>())),
                }
            }
            let shown = format!("{mutated:02x?}");
            check("sidx::segments", &shown, || {
                sidx::segments(&index, &mutated, &mut SegmentBudget::default())
            });
        }
    }
    // A rendition's own entry point reads through the same code.
    let mut r = ours().renditions.remove(0);
    r.segment_index = None;
    assert!(
        r.index_segments(&[], &mut SegmentBudget::default())
            .is_err()
    );
}
