//! The foreign fixtures are what the tests of packaging, the library and the player claim
//! they are: High-profile H.264 with B-frames and AAC, aligned renditions, every packaging
//! form readable by ffmpeg.

use std::path::Path;
use std::process::Command;

use rivulet_tests::foreign::{FPS, SECONDS, foreign_content};
use rivulet_tests::{ffmpeg_decode, ffprobe_video_frames, run_bounded};

fn fixtures() -> &'static Path {
    foreign_content(Path::new(env!("CARGO_TARGET_TMPDIR"))).unwrap_or_else(|e| panic!("{e}"))
}

fn probe(file: &Path, extra: &[&str], entries: &str) -> serde_json::Value {
    let out = run_bounded(
        Command::new("ffprobe")
            .args(["-v", "error"])
            .args(extra)
            .args(["-show_entries", entries, "-of", "json"])
            .arg(file),
    )
    .unwrap_or_else(|e| panic!("ffprobe: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn sources_are_high_profile_h264_with_b_frames_and_aac() {
    let dir = fixtures().join("sources");
    for name in [
        "plain.mp4",
        "movie_360.mp4",
        "movie_540.mp4",
        "movie_720.mp4",
    ] {
        let json = probe(
            &dir.join(name),
            &[],
            "stream=codec_name,profile,has_b_frames,height",
        );
        let streams = json["streams"]
            .as_array()
            .unwrap_or_else(|| panic!("{json}"));
        let video = &streams[0];
        assert_eq!(video["codec_name"], "h264", "{name}");
        assert_eq!(video["profile"], "High", "{name}");
        assert!(video["has_b_frames"].as_u64() > Some(0), "{name}: {video}");
        assert_eq!(streams[1]["codec_name"], "aac", "{name}");
    }
}

/// Presentation times of the keyframes of a file's video.
fn keyframe_times(file: &Path) -> Vec<String> {
    let json = probe(file, &["-select_streams", "v:0"], "packet=pts_time,flags");
    json["packets"]
        .as_array()
        .unwrap_or_else(|| panic!("{json}"))
        .iter()
        .filter(|p| p["flags"].as_str().is_some_and(|f| f.starts_with('K')))
        .map(|p| p["pts_time"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn renditions_align_and_the_unaligned_pair_does_not() {
    let dir = fixtures().join("sources");
    let first = keyframe_times(&dir.join("movie_360.mp4"));
    assert_eq!(first.len(), 5, "{first:?}");
    for name in ["movie_540.mp4", "movie_720.mp4", "unaligned_a.mp4"] {
        assert_eq!(keyframe_times(&dir.join(name)), first, "{name}");
    }
    assert_ne!(keyframe_times(&dir.join("unaligned_b.mp4")), first);
}

#[test]
fn every_packaged_form_has_every_frame() {
    let dir = fixtures().join("packaged");
    let frames = u64::from(SECONDS * FPS);
    for (manifest, video_streams) in [
        ("hls_fmp4/master.m3u8", 2),
        ("hls_ts/master.m3u8", 2),
        ("hls_byterange/ts.m3u8", 1),
        ("hls_byterange/fmp4.m3u8", 1),
        ("dash_timeline/manifest.mpd", 2),
        ("dash_duration/manifest.mpd", 1),
        ("dash_base/manifest.mpd", 1),
    ] {
        let path = dir.join(manifest);
        let url = path.to_str().unwrap_or_default();
        let counts = ffprobe_video_frames(url).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(counts, vec![frames; video_streams], "{manifest}");
        // ffmpeg 5.1's DASH reader asks for one segment past the end of a static
        // `SegmentTemplate@duration` MPD (its own output) and complains; every frame
        // is there all the same, which the count above proves.
        if manifest != "dash_duration/manifest.mpd" {
            ffmpeg_decode(url, &[]).unwrap_or_else(|e| panic!("{e}"));
        }
    }
    let mpd = std::fs::read_to_string(dir.join("dash_base/manifest.mpd"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(mpd.contains("<SegmentBase indexRange=") && !mpd.contains("SegmentList"));
}

/// `dash_list`, which ffmpeg cannot read back: its ranges tile each file, the init range
/// is the `ftyp`+`moov`, and every media range starts with a box of a media segment.
#[test]
fn segment_list_ranges_tile_their_file() {
    let dir = fixtures().join("packaged/dash_list");
    let mpd = std::fs::read_to_string(dir.join("manifest.mpd")).unwrap_or_else(|e| panic!("{e}"));
    let ranges = |line: &str, attr: &str| -> Option<(usize, usize)> {
        let (_, rest) = line.split_once(&format!("{attr}=\""))?;
        let (range, _) = rest.split_once('"')?;
        let (a, b) = range.split_once('-')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    };
    let mut files = 0;
    let mut lines = mpd.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(file) = line
            .strip_prefix("<BaseURL>")
            .and_then(|s| s.strip_suffix("</BaseURL>"))
        else {
            continue;
        };
        files += 1;
        let bytes = std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{e}"));
        let mut next = 0;
        let mut segments = 0;
        for line in lines.by_ref().take_while(|l| *l != "</SegmentList>") {
            let range = ranges(line, "range").or_else(|| ranges(line, "mediaRange"));
            let Some((start, end)) = range else { continue };
            assert_eq!(start, next, "{file}: ranges must tile the file");
            let kind = &bytes[start + 4..start + 8];
            if line.starts_with("<Initialization") {
                assert_eq!(kind, b"ftyp", "{file}");
            } else {
                assert!(
                    [&b"sidx"[..], b"moof", b"styp"].contains(&kind),
                    "{file} at {start}"
                );
                segments += 1;
            }
            next = end + 1;
        }
        assert_eq!(next, bytes.len(), "{file}: ranges must cover the file");
        assert!(segments >= 5, "{file}: {segments} segments");
    }
    assert_eq!(files, 2);
}
