#![allow(clippy::unwrap_used)]
use super::*;
use crate::cmaf::{
    AudioTrack, Sample, VideoTrack, audio_init_segment, media_segment, video_init_segment,
};
use crate::folder::tests::Memory;
use crate::fragments::tests::ffmpeg_prefix;
use crate::{Codecs, dash, hls};

const START: f64 = 1_000.0;
/// Video: 90 kHz, 30 fps, three 2 s segments.
const FRAME: u32 = 3_000;
/// Audio: 48 kHz AAC frames.
const AAC: u32 = 1_024;

fn samples(count: usize, duration: u32) -> Vec<Sample> {
    (0..count)
        .map(|i| Sample {
            data: vec![i as u8; 7 + i % 5],
            duration,
            sync: i == 0,
            composition_offset: 0,
        })
        .collect()
}

/// `styp` and `sidx` before the fragment, as ffmpeg writes its segments.
fn as_ffmpeg_writes(segment: Vec<u8>, timescale: u32, time: u64) -> Vec<u8> {
    let mut out = ffmpeg_prefix(timescale, time);
    out.extend(segment);
    out
}

fn rendition(id: &str, media_type: MediaType, segments: &[f64]) -> Rendition {
    let mut start = 0.0;
    Rendition {
        id: id.into(),
        media_type,
        bandwidth_peak: 100_000,
        bandwidth_avg: 100_000,
        width: None,
        height: None,
        frame_rate: None,
        codecs: Codecs::default(),
        sample_rate: (media_type == MediaType::Audio).then_some(48_000),
        init_uri: Some(format!("{id}/init-{id}.mp4")),
        init_range: None,
        container: Container::Fmp4,
        playlist_uri: Some(format!("{id}.m3u8")),
        segment_index: None,
        segments: segments
            .iter()
            .enumerate()
            .map(|(i, &duration)| {
                let s = Segment {
                    number: i as u64 + 1,
                    start,
                    duration,
                    size: None,
                    uri: format!("{id}/chunk-{id}-{:05}.m4s", i + 1),
                    ..Segment::default()
                };
                start += duration;
                s
            })
            .collect(),
    }
}

/// An asset as ffmpeg packages one: a 6 s video in three 2 s segments (starting at decode
/// time `video_start`), and audio in three segments of 94 AAC frames: 282 frames, 6.016 s,
/// most of a frame longer than the video. Any file names; `styp`+`sidx` in every segment.
fn ffmpeg_like(video_start: u64) -> (Presentation, Memory) {
    let mut files = Memory::default();
    let video = VideoTrack {
        timescale: 90_000,
        width: 640,
        height: 360,
        sps: vec![0x67, 0x42, 0xc0, 0x1e, 0xda],
        pps: vec![0x68, 0xce, 0x3c, 0x80],
    };
    files
        .0
        .insert("v/init-v.mp4".into(), video_init_segment(&video).unwrap());
    for k in 0..3u64 {
        let time = video_start + k * 180_000;
        let bytes = media_segment(k as u32 + 1, time, &samples(60, FRAME)).unwrap();
        files.0.insert(
            format!("v/chunk-v-{:05}.m4s", k + 1),
            as_ffmpeg_writes(bytes, 90_000, time),
        );
    }
    let audio = AudioTrack {
        timescale: 48_000,
        channels: 2,
        audio_specific_config: vec![0x11, 0x90],
        bitrate: 128_000,
    };
    files
        .0
        .insert("a/init-a.mp4".into(), audio_init_segment(&audio).unwrap());
    for k in 0..3u64 {
        let time = k * 94 * u64::from(AAC);
        let bytes = media_segment(k as u32 + 1, time, &samples(94, AAC)).unwrap();
        files.0.insert(
            format!("a/chunk-a-{:05}.m4s", k + 1),
            as_ffmpeg_writes(bytes, 48_000, time),
        );
    }
    let a = 94.0 * 1024.0 / 48_000.0;
    let presentation = Presentation {
        kind: PresentationKind::Vod,
        renditions: vec![
            rendition("v", MediaType::Video, &[2.0, 2.0, 2.0]),
            rendition("a", MediaType::Audio, &[a, a, a]),
        ],
        delivery: Default::default(),
    };
    (presentation, files)
}

fn live() -> (LiveLoop, Memory) {
    let (asset, files) = ffmpeg_like(0);
    (LiveLoop::new(&asset, START, &files).unwrap(), files)
}

/// Live segment `n` of rendition `r`, re-timed.
fn live_segment(l: &LiveLoop, files: &Memory, r: usize, n: u64) -> Vec<TrackRun> {
    let source = l.source(r, n);
    let bytes = files
        .read(&source.path, source.range, SEGMENT_LIMIT)
        .unwrap();
    let moved = l.retime(r, n, &bytes).unwrap();
    assert!(!moved.windows(4).any(|w| w == b"sidx"), "sidx left out");
    track_runs(&moved, 0, &[]).unwrap()
}

#[test]
fn the_loop_lasts_as_long_as_the_video() {
    let (l, _) = live();
    assert_eq!(l.loop_duration, 6.0);
    assert_eq!(l.segment_duration, 2.0);
    let v = l.rendition("v").unwrap();
    let a = l.rendition("a").unwrap();
    // (seconds since the start, newest video segment, newest audio segment)
    let rows = [
        (-1.0, None, None),
        (1.99, None, None),
        (2.0, Some(1), None),
        (2.0 + 0.006, Some(1), Some(1)),
        (6.0, Some(3), Some(3)), // the cut audio segment ends with the loop
        (12.0, Some(6), Some(6)),
        (6_000.0, Some(3_000), Some(3_000)),
    ];
    for (since, video, audio) in rows {
        assert_eq!(l.latest(v, START + since), video, "video at {since}");
        assert_eq!(l.latest(a, START + since), audio, "audio at {since}");
    }
    assert_eq!(l.available_at(v, 4), START + 8.0);
    assert_eq!(l.state(v, 4, START + 8.0, 60.0), SegmentState::Available);
    assert_eq!(l.state(v, 5, START + 8.0, 60.0), SegmentState::NotYet);
    assert_eq!(l.state(v, 0, START + 8.0, 60.0), SegmentState::Expired);
    assert_eq!(l.state(v, 1, START + 100.0, 60.0), SegmentState::Expired);
    assert_eq!(l.source(v, 4).path, "v/chunk-v-00001.m4s");
    assert_eq!(l.source(a, 6).path, "a/chunk-a-00003.m4s");
    assert_eq!(l.init(a).path, "a/init-a.mp4");
    // Players see our layout, whatever the asset's names.
    let layout = l.presentation();
    assert_eq!(
        layout.renditions[v].playlist_uri.as_deref(),
        Some("v/index.m3u8")
    );
    assert_eq!(layout.renditions[v].segments[2].uri, "3.m4s");
}

#[test]
fn tracks_continue_across_loops_without_drift() {
    let (l, files) = live();
    let v = l.rendition("v").unwrap();
    let a = l.rendition("a").unwrap();
    // Video: contiguous, live segment n starting at (n−1) × 2 s, however many loops.
    let mut end = 0;
    for n in 1..=9 {
        let runs = live_segment(&l, &files, v, n);
        assert_eq!(runs[0].sequence, n as u32);
        assert_eq!(runs[0].base_decode_time, end, "video segment {n}");
        end = runs.last().unwrap().end();
    }
    let far = 3 * 10_000 + 1; // loop 10 000, first segment
    let runs = live_segment(&l, &files, v, far);
    assert_eq!(runs[0].base_decode_time, 10_000 * 6 * 90_000);
    // Audio: each loop starts at loop × 6 s exactly; the frame past the loop's end is cut,
    // leaving a gap shorter than one frame, never an overlap.
    let mut end = 0;
    for n in 1..=9u64 {
        let runs = live_segment(&l, &files, a, n);
        let start = runs[0].base_decode_time;
        if n % 3 == 1 {
            assert_eq!(
                start,
                (n / 3) * 288_000,
                "audio segment {n} starts its loop"
            );
            let gap = start - end;
            assert!(
                n == 1 || (gap > 0 && gap < u64::from(AAC)),
                "gap {gap} at {n}"
            );
        } else {
            assert_eq!(start, end, "audio segment {n} continues");
        }
        end = runs.last().unwrap().end();
        let frames: usize = runs.iter().map(|r| r.durations.len()).sum();
        assert_eq!(frames, if n % 3 == 0 { 93 } else { 94 }, "segment {n}");
        assert!(
            end <= (n.div_ceil(3)) * 288_000,
            "never past the loop's end"
        );
    }
    let runs = live_segment(&l, &files, a, far);
    assert_eq!(runs[0].base_decode_time, 10_000 * 288_000);
}

#[test]
fn a_track_that_starts_before_the_video_is_refused() {
    // Its first samples would overlap the end of its previous loop.
    let (asset, files) = ffmpeg_like(2 * u64::from(FRAME));
    let e = LiveLoop::new(&asset, START, &files)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("rendition a") && e.contains("0.067 s before the video"),
        "{e}"
    );
}

#[test]
fn the_window_and_the_manifests() {
    let (l, _) = live();
    let now = START + 31.0;
    let window = l.window(now, 12.0);
    assert!(matches!(window.kind, PresentationKind::Live { .. }));
    let v = &window.renditions[l.rendition("v").unwrap()];
    let numbers: Vec<u64> = v.segments.iter().map(|s| s.number).collect();
    assert_eq!(numbers, [10, 11, 12, 13, 14, 15]);
    assert_eq!(v.segments[0].start, 18.0);
    assert_eq!(v.segments[0].uri, "10.m4s");
    let playlist = hls::write_media_playlist(v, &v.segments, false, Some(START)).unwrap();
    assert!(
        playlist.contains("#EXT-X-MEDIA-SEQUENCE:10\n"),
        "{playlist}"
    );
    assert!(!playlist.contains("ENDLIST"));
    let mpd = dash::write_dynamic_mpd(
        &window,
        &dash::DynamicMpd {
            availability_start: START,
            publish_time: l.changed_at(None, now),
            minimum_update_period: 2.0,
            time_shift_buffer_depth: 12.0,
            suggested_presentation_delay: 6.0,
            utc_timing_url: "/time".into(),
        },
    )
    .unwrap();
    let parsed = dash::parse_mpd(&mpd, "http://h/live/ch/manifest.mpd", now).unwrap();
    let video = parsed.video().next().unwrap();
    assert_eq!(
        video.segments.last().unwrap().uri,
        "http://h/live/ch/v/15.m4s"
    );
    // Before anything ended, the window is empty, not an error.
    let early = l.window(START + 0.5, 12.0);
    assert!(early.renditions.iter().all(|r| r.segments.is_empty()));
    assert_eq!(l.changed_at(None, START + 0.5), START);
    assert_eq!(l.changed_at(None, START + 7.0), START + 6.0);
}

#[test]
fn what_cannot_be_looped_says_why() {
    let (mut asset, files) = ffmpeg_like(0);
    asset.renditions[0].container = Container::MpegTs;
    let e = LiveLoop::new(&asset, START, &files)
        .unwrap_err()
        .to_string();
    assert!(e.contains("MPEG-TS") && e.contains("rendition v"), "{e}");
    let (mut asset, files) = ffmpeg_like(0);
    asset
        .renditions
        .retain(|r| r.media_type == MediaType::Audio);
    let e = LiveLoop::new(&asset, START, &files)
        .unwrap_err()
        .to_string();
    assert!(e.contains("video"), "{e}");
    let (asset, mut files) = ffmpeg_like(0);
    files
        .0
        .insert("v/chunk-v-00002.m4s".into(), b"not a segment".to_vec());
    let l = LiveLoop::new(&asset, START, &files).unwrap();
    let v = l.rendition("v").unwrap();
    assert!(l.retime(v, 2, b"not a segment").is_err());
    files.0.remove("v/chunk-v-00003.m4s");
    assert!(
        LiveLoop::new(&asset, START, &files).is_err(),
        "a missing segment"
    );
}
