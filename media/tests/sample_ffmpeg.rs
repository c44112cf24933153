//! The packaged sample checked by real tools: ffmpeg decodes every rendition without a
//! single error through both the multivariant playlist and the MPD, bit rates are what the
//! manifests say, and the codecs strings match what ffprobe reports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use media::{Codec, MediaType, Presentation, SampleOptions, dash, hls, read_presentation};

const DURATION: f64 = 8.0;
const FPS: u32 = 30;

/// One small sample shared by every test of this file (encoding takes a few seconds).
fn sample() -> &'static (tempfile::TempDir, PathBuf, Presentation) {
    static SAMPLE: OnceLock<(tempfile::TempDir, PathBuf, Presentation)> = OnceLock::new();
    SAMPLE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = SampleOptions::new("small".parse().unwrap());
        opts.duration = DURATION;
        opts.progress = false;
        let report = media::build_sample(dir.path(), &opts).unwrap();
        let presentation = read_presentation(&report.dir).unwrap();
        (dir, report.dir, presentation)
    })
}

fn tool(name: &str) -> Command {
    let probe = Command::new(name).arg("-version").output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "{name} is required (the test command installs Debian's ffmpeg)"
    );
    Command::new(name)
}

/// ffprobe's view of every video stream reachable from `input`, frames counted by decoding.
fn probe_streams(input: &Path) -> Vec<serde_json::Value> {
    let out = tool("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v"])
        .args([
            "-show_entries",
            "stream=index,codec_name,profile,level,width,height,nb_read_frames",
        ])
        .args(["-of", "json"])
        .arg(input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["streams"].as_array().unwrap().clone()
}

/// Decodes every stream of `input` (video and audio) with ffmpeg at `-v error`: any output
/// is a failure.
fn decode_without_errors(input: &Path) {
    let out = tool("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(input)
        .args(["-map", "0", "-f", "null", "-"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "ffmpeg reported errors on {}:\n{stderr}",
        input.display()
    );
}

fn expected_frames() -> u64 {
    (DURATION * f64::from(FPS)) as u64
}

#[test]
fn every_rendition_decodes_cleanly_through_hls_and_dash() {
    let (_, dir, presentation) = sample();
    for manifest in ["master.m3u8", "manifest.mpd"] {
        let path = dir.join(manifest);
        decode_without_errors(&path);
        let streams = probe_streams(&path);
        assert_eq!(
            streams.len(),
            presentation.video().count(),
            "{manifest}: one stream per rendition"
        );
        for stream in &streams {
            let frames: u64 = stream["nb_read_frames"].as_str().unwrap().parse().unwrap();
            assert_eq!(frames, expected_frames(), "{manifest}: {stream}");
        }
    }
}

#[test]
fn audio_is_aac_lc_covering_the_whole_duration() {
    let (_, dir, presentation) = sample();
    let audio = presentation.audio().next().unwrap();
    assert!(
        (audio.duration() - DURATION).abs() < 0.03,
        "{}",
        audio.duration()
    );
    let out = tool("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=codec_name,profile,sample_rate,channels,nb_read_frames",
            "-of",
            "json",
        ])
        .arg(dir.join("audio/index.m3u8"))
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let stream = &json["streams"][0];
    assert_eq!(stream["codec_name"], "aac");
    assert_eq!(stream["profile"], "LC");
    assert_eq!(stream["sample_rate"], "48000");
    assert_eq!(stream["channels"], 2);
    let frames: u64 = stream["nb_read_frames"].as_str().unwrap().parse().unwrap();
    assert_eq!(frames, (DURATION * 48_000.0 / 1024.0).ceil() as u64);
}

#[test]
fn codecs_strings_match_ffprobe() {
    let (_, dir, presentation) = sample();
    for r in presentation.video() {
        let streams = probe_streams(&dir.join(&r.id).join("index.m3u8"));
        let [stream] = &streams[..] else {
            panic!("{}: {streams:?}", r.id)
        };
        assert_eq!(stream["codec_name"], "h264");
        assert_eq!(stream["width"].as_u64(), r.width.map(u64::from));
        assert_eq!(stream["height"].as_u64(), r.height.map(u64::from));
        let [
            Codec::Avc {
                profile,
                constraints,
                level,
            },
        ] = r.codecs.0[..]
        else {
            panic!("{} has codecs {}", r.id, r.codecs)
        };
        assert_eq!(stream["level"].as_u64(), Some(u64::from(level)), "{}", r.id);
        // ffprobe names the profile from profile_idc and constraint_set1 (H.264 Annex A).
        let expected_profile = match (profile, constraints & 0x40 != 0) {
            (66, true) => "Constrained Baseline",
            (66, false) => "Baseline",
            (77, _) => "Main",
            (100, _) => "High",
            other => panic!("unexpected profile {other:?}"),
        };
        assert_eq!(stream["profile"], expected_profile, "{}", r.id);
    }
}

#[test]
fn bit_rates_meet_their_targets_and_manifests_carry_the_real_peak() {
    let (_, dir, presentation) = sample();
    let ladder: media::Ladder = "small".parse().unwrap();
    for (r, rung) in presentation.video().zip(&ladder.rungs) {
        // Measure from the files themselves, not from the model.
        let mut peak = 0.0f64;
        let mut total = 0u64;
        for s in &r.segments {
            let len = std::fs::metadata(dir.join(&r.id).join(&s.uri))
                .unwrap()
                .len();
            assert_eq!(Some(len), s.size);
            total += len;
            peak = peak.max(len as f64 * 8.0 / s.duration);
        }
        let average = total as f64 * 8.0 / r.duration();
        let target = f64::from(rung.kbps) * 1000.0;
        assert!(
            (average / target - 1.0).abs() <= 0.20,
            "{}: {average:.0} bit/s vs target {target}",
            r.id
        );
        assert_eq!(r.bandwidth_peak, peak.ceil() as u64, "{}", r.id);
        assert!(r.bandwidth_peak > r.bandwidth_avg);
    }
    // What the manifests on disk say.
    let master = std::fs::read_to_string(dir.join("master.m3u8")).unwrap();
    let variants = hls::parse_multivariant(&master, dir.join("master.m3u8").to_str().unwrap())
        .unwrap()
        .renditions;
    let mpd = std::fs::read_to_string(dir.join("manifest.mpd")).unwrap();
    let from_mpd = dash::parse_mpd(&mpd, "http://h/manifest.mpd", 0.0).unwrap();
    // A variant's BANDWIDTH covers everything it plays: its video and the audio group.
    let audio = presentation.audio().next().unwrap();
    for ((r, v), d) in presentation.video().zip(&variants).zip(from_mpd.video()) {
        assert_eq!(
            v.bandwidth_peak,
            r.bandwidth_peak + audio.bandwidth_peak,
            "HLS BANDWIDTH of {}",
            r.id
        );
        assert_eq!(
            v.bandwidth_avg,
            r.bandwidth_avg + audio.bandwidth_avg,
            "HLS AVERAGE-BANDWIDTH of {}",
            r.id
        );
        assert_eq!(
            d.bandwidth_peak, r.bandwidth_peak,
            "DASH @bandwidth of {}",
            r.id
        );
        assert_eq!(d.segments.len(), r.segments.len());
    }
}

#[test]
fn manifests_parse_with_the_crates_own_parsers_and_round_trip() {
    let (_, dir, presentation) = sample();
    let master = std::fs::read(dir.join("master.m3u8")).unwrap();
    assert!(m3u8_rs::parse_master_playlist_res(&master).is_ok());
    let mpd = std::fs::read_to_string(dir.join("manifest.mpd")).unwrap();
    dash_mpd_core::parse(&mpd).unwrap();
    for r in &presentation.renditions {
        let text = std::fs::read_to_string(dir.join(&r.id).join("index.m3u8")).unwrap();
        assert!(m3u8_rs::parse_media_playlist_res(text.as_bytes()).is_ok());
        let base = format!("http://h/vod/sample/{}/index.m3u8", r.id);
        let info = hls::parse_media_playlist(&text, &base).unwrap();
        assert!(info.ended);
        let numbers: Vec<u64> = info.segments.iter().map(|s| s.number).collect();
        let ours: Vec<u64> = r.segments.iter().map(|s| s.number).collect();
        assert_eq!(numbers, ours);
    }
    let audio: Vec<_> = presentation
        .renditions
        .iter()
        .filter(|r| r.media_type == MediaType::Audio)
        .collect();
    assert_eq!(audio.len(), 1);
    assert_eq!(audio[0].codecs.to_string(), "mp4a.40.2");
}

#[test]
fn segments_are_aligned_closed_gops_starting_at_zero() {
    let (_, dir, presentation) = sample();
    for r in &presentation.renditions {
        let mut expected_time = 0;
        for s in &r.segments {
            let bytes = std::fs::read(dir.join(&r.id).join(&s.uri)).unwrap();
            let info = media::cmaf::inspect_segment(&bytes).unwrap();
            assert_eq!(
                info.base_decode_time, expected_time,
                "{} segment {}",
                r.id, s.number
            );
            assert!(
                info.first_sample_sync,
                "{} segment {} starts with an IDR",
                r.id, s.number
            );
            assert_eq!(u64::from(info.sequence), s.number);
            // Every rendition's segment starts within one audio frame of the video's.
            assert!(
                (info.base_decode_time as f64 / timescale(r) - (s.number - 1) as f64 * 2.0).abs()
                    < 0.022
            );
            expected_time += info.duration;
        }
    }
}

fn timescale(r: &media::Rendition) -> f64 {
    r.sample_rate.map_or(90_000.0, f64::from)
}

#[test]
fn a_failed_build_leaves_no_asset_behind() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = SampleOptions::new("small".parse().unwrap());
    opts.progress = false;
    opts.segment = 0.01; // not a whole number of frames
    assert!(media::build_sample(dir.path(), &opts).is_err());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
