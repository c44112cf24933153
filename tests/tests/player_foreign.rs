//! The player on content packaged by someone else (Debian's ffmpeg, see
//! `rivulet_tests::foreign`): fMP4 and MPEG-TS HLS, byte-range HLS, DASH with a timeline,
//! `@duration`, `SegmentList` with `mediaRange` and `SegmentBase` with a `sidx`. Each plays
//! end to end with every segment checked as media; random bytes in place of the segments
//! fail the session as `media` errors; a media playlist on its own reports the bitrate its
//! segments have.
//!
//! Served by the real origin over a library holding copies of the packaged folders, the
//! MPEG-TS forms included.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use player::session::{End, ErrorKind, SessionReport};
use rivulet_tests::foreign::foreign_content;
use rivulet_tests::{play_for, start_origin};

/// The video segments of every packaged form: 10 s in 2 s segments.
const SEGMENTS: usize = 5;

fn packaged() -> PathBuf {
    foreign_content(Path::new(env!("CARGO_TARGET_TMPDIR")))
        .unwrap_or_else(|e| panic!("{e}"))
        .join("packaged")
}

/// A library holding a copy of each packaged folder as an asset of the same name.
fn library() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(packaged()).unwrap() {
        let from = entry.unwrap().path();
        let to = dir.path().join(from.file_name().unwrap());
        std::fs::create_dir_all(&to).unwrap();
        for file in std::fs::read_dir(&from).unwrap() {
            let file = file.unwrap().path();
            std::fs::copy(&file, to.join(file.file_name().unwrap())).unwrap();
        }
    }
    dir
}

async fn play(url: String) -> SessionReport {
    play_for(&url, 60.0).await
}

/// Played to the end, every segment there and checked, nothing failed.
fn assert_played(what: &str, r: &SessionReport) {
    let s = &r.summary;
    assert_eq!((r.end, &r.error), (End::Complete, &None), "{what}: {r:#?}");
    assert_eq!(r.segments.len(), SEGMENTS, "{what}: {:?}", r.segments);
    assert!(s.counters.errors.is_empty(), "{what}: {:?}", s.counters);
    assert!((s.played_s - 10.0).abs() < 0.2, "{what}: {s:#?}");
    assert!(r.segments.iter().all(|g| g.bytes > 10_000), "{what}");
    assert!(s.avg_bitrate_bps > 100_000.0, "{what}: {s:#?}");
}

#[tokio::test]
async fn every_foreign_form_the_origin_serves_plays_to_the_end() {
    let lib = library();
    let origin = start_origin(lib.path()).await.unwrap();
    let forms = [
        ("hls_fmp4", "master.m3u8", 2),
        ("hls_byterange", "fmp4.m3u8", 1),
        ("dash_timeline", "manifest.mpd", 2),
        ("dash_duration", "manifest.mpd", 1),
        ("dash_list", "manifest.mpd", 1),
        ("dash_base", "manifest.mpd", 1),
    ];
    // Side by side: each plays its 10 s in real time.
    let mut sessions = tokio::task::JoinSet::new();
    for (i, (asset, manifest, _)) in forms.iter().enumerate() {
        let url = format!("http://{origin}/vod/{asset}/{manifest}");
        sessions.spawn(async move { (i, play(url).await) });
    }
    let mut reports = sessions.join_all().await;
    reports.sort_by_key(|(i, _)| *i);
    for ((asset, manifest, renditions), (_, r)) in forms.iter().zip(reports) {
        let what = format!("{asset}/{manifest}");
        assert_played(&what, &r);
        assert_eq!(r.bitrates_bps.len(), *renditions, "{what}");
        if *asset != "hls_byterange" {
            // Separate audio: its init and segments were fetched (and checked) too.
            let video = r.segments.len() + renditions;
            assert!(
                r.summary.counters.requests as usize > video + SEGMENTS,
                "{what}: {:?}",
                r.summary.counters
            );
        }
    }
}

#[tokio::test]
async fn transport_stream_hls_plays_whole_and_in_byte_ranges() {
    let lib = library();
    let origin = start_origin(lib.path()).await.unwrap();
    // (playlist, renditions, requests: the playlists and the segments, audio being muxed)
    for (manifest, renditions, requests) in [
        ("hls_ts/master.m3u8", 2, 3 + SEGMENTS),
        ("hls_byterange/ts.m3u8", 1, 1 + SEGMENTS),
    ] {
        let r = play(format!("http://{origin}/vod/{manifest}")).await;
        assert_played(manifest, &r);
        assert_eq!(r.bitrates_bps.len(), renditions, "{manifest}");
        let c = &r.summary.counters;
        assert_eq!(c.requests as usize, requests, "{manifest}: {c:?}");
    }
    // Random bytes in place of the transport stream segments are found out too.
    for file in std::fs::read_dir(lib.path().join("hls_ts")).unwrap() {
        let path = file.unwrap().path();
        if path.extension().is_some_and(|e| e == "ts") {
            std::fs::write(&path, noise(std::fs::metadata(&path).unwrap().len())).unwrap();
        }
    }
    let r = play(format!("http://{origin}/vod/hls_ts/master.m3u8")).await;
    assert_eq!(r.end, End::Failed, "{r:#?}");
    let c = &r.summary.counters;
    assert_eq!(
        c.errors.keys().collect::<Vec<_>>(),
        [&ErrorKind::Media],
        "{c:?}"
    );
}

/// `len` random bytes.
fn noise(len: u64) -> Vec<u8> {
    (0..len).map(|_| rand::random::<u8>()).collect()
}

#[tokio::test]
async fn random_bytes_for_segments_fail_the_session_as_media_errors() {
    let lib = library();
    // The fMP4 HLS asset with every media segment (video and audio) replaced by as many
    // random bytes; init segments and playlists intact.
    let asset = lib.path().join("hls_fmp4");
    for file in std::fs::read_dir(&asset).unwrap() {
        let path = file.unwrap().path();
        if path.extension().is_some_and(|e| e == "m4s") {
            std::fs::write(&path, noise(std::fs::metadata(&path).unwrap().len())).unwrap();
        }
    }
    let origin = start_origin(lib.path()).await.unwrap();
    let r = play(format!("http://{origin}/vod/hls_fmp4/master.m3u8")).await;
    assert_eq!(r.end, End::Failed, "{r:#?}");
    assert!(r.error.as_deref().unwrap().contains("not media"), "{r:#?}");
    assert!(r.segments.is_empty());
    let errors = &r.summary.counters.errors;
    assert_eq!(
        errors.keys().collect::<Vec<_>>(),
        [&ErrorKind::Media],
        "{errors:?}"
    );
    // The first try and every retry.
    assert_eq!(errors[&ErrorKind::Media], 4, "{errors:?}");
    assert_eq!(r.summary.startup_delay_s, None, "never played");
}

/// Bits per second of `files` in `dir` over `seconds`.
fn bitrate_of(dir: &Path, files: &[String], seconds: f64) -> f64 {
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(dir.join(f)).unwrap().len())
        .sum();
    bytes as f64 * 8.0 / seconds
}

#[tokio::test]
async fn a_media_playlist_alone_reports_the_bitrate_of_its_segments() {
    let lib = library();
    let origin = start_origin(lib.path()).await.unwrap();

    // Whole-file segments: each one's size over its duration, as they arrive.
    let r = play(format!("http://{origin}/vod/hls_fmp4/0.m3u8")).await;
    assert_played("0.m3u8", &r);
    let files: Vec<String> = (0..SEGMENTS).map(|i| format!("0_{i:03}.m4s")).collect();
    let want = bitrate_of(&lib.path().join("hls_fmp4"), &files, 10.0);
    let s = &r.summary;
    assert!(
        (s.avg_bitrate_bps / want - 1.0).abs() < 1e-6,
        "{} vs {want}",
        s.avg_bitrate_bps
    );
    for (g, file) in r.segments.iter().zip(&files) {
        let size = std::fs::metadata(lib.path().join("hls_fmp4").join(file))
            .unwrap()
            .len();
        assert_eq!(g.bytes, size);
        assert_eq!(
            g.bitrate_bps,
            (size as f64 * 8.0 / g.duration_s).round() as u64
        );
    }
    assert_eq!(r.bitrates_bps, [want.round() as u64]);

    // Byte ranges: the playlist gives the sizes before anything is fetched.
    let r = play(format!("http://{origin}/vod/hls_byterange/fmp4.m3u8")).await;
    assert_played("fmp4.m3u8", &r);
    let media: u64 = r.segments.iter().map(|g| g.bytes).sum();
    let dir = lib.path().join("hls_byterange");
    let file = std::fs::metadata(dir.join("fmp4.m4s")).unwrap().len();
    let text = std::fs::read_to_string(dir.join("fmp4.m3u8")).unwrap();
    let init = media::hls::parse_media_playlist(&text, "http://h/fmp4.m3u8")
        .unwrap()
        .init_range
        .unwrap();
    // Everything after the init segment is the segments.
    assert_eq!(media, file - init.end());
    let want = media as f64 * 8.0 / 10.0;
    assert!(
        (r.bitrates_bps[0] as f64 / want - 1.0).abs() < 1e-6,
        "{:?}",
        r.bitrates_bps
    );
    assert!((r.summary.avg_bitrate_bps / want - 1.0).abs() < 1e-6);
}
