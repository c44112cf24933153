//! `media package` and `media ladder` on content made by Debian's ffmpeg the way users'
//! files are (x264 High profile with B-frames, AAC; x265; MOV; fragmented MP4), checked with
//! ffmpeg as the reference reader: every frame decodes through both manifests, the
//! packaged video is the source's bytes (no re-encoding), presentation starts at 0 in the
//! source's frame order, ladder rungs meet their bit rates, and bad inputs get a one-line
//! error that names the file and leave nothing in the library.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use media::{LadderOptions, MediaError, PackageOptions, Presentation, read_presentation};
use rivulet_tests::foreign::{FPS, SECONDS, foreign_content};
use rivulet_tests::{ffmpeg_decode, ffprobe_video_frames, run_bounded};

fn fixtures() -> &'static Path {
    foreign_content(Path::new(env!("CARGO_TARGET_TMPDIR"))).unwrap_or_else(|e| panic!("{e}"))
}

fn source(name: &str) -> PathBuf {
    fixtures().join("sources").join(name)
}

fn url(path: &Path) -> &str {
    path.to_str()
        .unwrap_or_else(|| panic!("not UTF-8: {}", path.display()))
}

/// Runs a tool and returns its stdout, failing the test on an error.
fn stdout_of(command: &mut Command) -> String {
    let out = run_bounded(command).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// MD5 of the video packets' payload as ffmpeg reads them (stream copy, no decoding): equal
/// for two files only when every coded frame is byte-identical and in the same order.
fn video_packets_md5(input: &Path) -> String {
    stdout_of(
        Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-i", url(input)])
            .args(["-map", "0:v:0", "-c", "copy", "-f", "md5", "-"]),
    )
}

/// Presentation times of the first `n` decoded frames of the first video stream.
fn first_frame_times(input: &Path, n: usize) -> Vec<String> {
    stdout_of(
        Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0"])
            .args(["-show_entries", "frame=pts_time", "-of", "csv=p=0"])
            .arg(input),
    )
    .lines()
    .map(|l| l.trim().trim_end_matches(',').to_string())
    .filter(|l| !l.is_empty())
    .take(n)
    .collect()
}

/// Frames of each of the `streams` video streams of `input`, each counted by decoding it
/// alone: ffprobe 5.1 counting several DASH representations at once stops some of them a
/// few frames early (each alone decodes whole).
fn frames_per_stream(input: &Path, streams: usize) -> Vec<u64> {
    (0..streams)
        .map(|i| {
            stdout_of(
                Command::new("ffprobe")
                    .args(["-v", "error", "-count_frames"])
                    .args(["-select_streams", &format!("v:{i}")])
                    .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
                    .arg(input),
            )
            // HLS lists a stream once per program and once on its own: the same count.
            .lines()
            .find_map(|l| l.trim().trim_end_matches(',').parse().ok())
            .unwrap_or(0)
        })
        .collect()
}

fn package(inputs: &[PathBuf], lib: &Path, name: &str) -> media::Result<media::Report> {
    media::package(inputs, lib, name, &PackageOptions::default())
}

/// What `lib` holds: the names of its entries, hidden ones included.
fn entries(lib: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(lib)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn three_renditions_package_without_reencoding() {
    let lib = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let heights = [360, 540, 720];
    let inputs: Vec<PathBuf> = heights
        .iter()
        .map(|h| source(&format!("movie_{h}.mp4")))
        .collect();
    let report = package(&inputs, lib.path(), "movie").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        entries(lib.path()),
        ["movie"],
        "nothing else in the library"
    );
    let dir = report.dir;
    let presentation: Presentation = read_presentation(&dir).unwrap_or_else(|e| panic!("{e}"));
    let video: Vec<_> = presentation.video().collect();
    assert_eq!(video.len(), 3);
    assert_eq!(presentation.audio().count(), 1);
    let frames = u64::from(SECONDS * FPS);
    for manifest in ["master.m3u8", "manifest.mpd"] {
        let path = dir.join(manifest);
        ffmpeg_decode(url(&path), &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(frames_per_stream(&path, 3), vec![frames; 3], "{manifest}");
    }
    // Same cut times in every rendition (2 s keyframes, 2 s target): 5 segments each.
    for r in &video {
        let starts: Vec<f64> = r.segments.iter().map(|s| s.start).collect();
        assert_eq!(starts, [0.0, 2.0, 4.0, 6.0, 8.0], "{}", r.id);
    }
    // The coded frames are the source's, byte for byte, for every rendition (listed by
    // bit rate, as the inputs are).
    for ((r, input), height) in video.iter().zip(&inputs).zip(heights) {
        assert_eq!(r.height, Some(height));
        let playlist = dir.join(&r.id).join("index.m3u8");
        assert_eq!(
            video_packets_md5(&playlist),
            video_packets_md5(input),
            "{}",
            r.id
        );
    }
    // Codecs strings from avcC (High profile) and the AudioSpecificConfig.
    let master = std::fs::read_to_string(dir.join("master.m3u8")).unwrap_or_default();
    assert!(master.contains("avc1.64001e,mp4a.40.2"), "{master}");
    // Audio never outlasts the video by more than a frame.
    let audio = presentation
        .audio()
        .next()
        .map(|a| a.duration())
        .unwrap_or(0.0);
    assert!(audio <= f64::from(SECONDS) + 0.022, "{audio}");
    assert!(audio >= f64::from(SECONDS) - 0.05, "{audio}");
}

/// "Stream your own video": the packaged title served by a real origin (and an edge in
/// front of it) reads whole with ffmpeg over HTTP, by HLS and by DASH.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packaged_title_streams_from_the_origin_and_an_edge() {
    let lib = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let inputs: Vec<PathBuf> = [360, 720]
        .iter()
        .map(|h| source(&format!("movie_{h}.mp4")))
        .collect();
    let dir = lib.path().to_path_buf();
    tokio::task::spawn_blocking(move || package(&inputs, &dir, "movie"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let origin = rivulet_tests::start_origin(lib.path())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let edge = rivulet_tests::start_edge(origin, "edge-own")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let frames = u64::from(SECONDS * FPS);
    for host in [origin, edge] {
        for manifest in ["master.m3u8", "manifest.mpd"] {
            let url = format!("http://{host}/vod/movie/{manifest}");
            let u = url.clone();
            tokio::task::spawn_blocking(move || {
                ffmpeg_decode(&u, &[])?;
                ffprobe_video_frames(&u)
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .map(|counts| assert_eq!(counts, [frames, frames], "{url}"))
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        }
    }
}

#[test]
fn b_frames_present_from_zero_in_the_sources_order() {
    let lib = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let input = source("plain.mp4");
    let report = package(std::slice::from_ref(&input), lib.path(), "plain")
        .unwrap_or_else(|e| panic!("{e}"));
    let expected = first_frame_times(&input, 12);
    assert_eq!(expected.first().map(String::as_str), Some("0.000000"));
    let presentation = read_presentation(&report.dir).unwrap_or_else(|e| panic!("{e}"));
    let id = presentation
        .video()
        .next()
        .map(|r| r.id.clone())
        .unwrap_or_default();
    for manifest in [format!("{id}/index.m3u8"), "manifest.mpd".into()] {
        let got = first_frame_times(&report.dir.join(&manifest), 12);
        assert_eq!(got, expected, "{manifest}");
    }
    // Decode order differs from presentation order (B-frames), and it is kept: packet
    // timestamps as ffprobe reads them match the source's.
    let packets = |p: &Path| {
        stdout_of(
            Command::new("ffprobe")
                .args(["-v", "error", "-select_streams", "v:0"])
                .args([
                    "-show_entries",
                    "packet=pts_time,dts_time",
                    "-of",
                    "csv=p=0",
                ])
                .arg(p),
        )
        .lines()
        .take(12)
        .map(str::to_owned)
        .collect::<Vec<_>>()
    };
    assert_eq!(
        packets(&report.dir.join(format!("{id}/index.m3u8"))),
        packets(&input)
    );
}

/// A page that appends the first segment of each of `renditions` (`(folder, MIME type)`)
/// to Media Source Extensions and prints where each SourceBuffer's buffered range starts
/// and ends: what hls.js and dash.js, which feed MSE, present.
fn mse_page(renditions: &[(String, String)]) -> String {
    let list: Vec<String> = renditions
        .iter()
        .map(|(dir, mime)| format!("['{dir}', '{mime}']"))
        .collect();
    format!(
        r#"<html><body><pre id="out">pending</pre><script>
const out = document.getElementById('out');
const ms = new MediaSource();
document.createElement('video').src = URL.createObjectURL(ms);
ms.addEventListener('sourceopen', async () => {{
  try {{
    const renditions = [{}];
    const buffers = renditions.map(([, mime]) => ms.addSourceBuffer(mime));
    const ranges = [];
    for (const [i, [dir]] of renditions.entries()) {{
      for (const file of ['init.mp4', '1.m4s']) {{
        const data = await (await fetch(dir + '/' + file)).arrayBuffer();
        await new Promise((ok, fail) => {{
          buffers[i].onupdateend = ok; buffers[i].onerror = fail; buffers[i].appendBuffer(data);
        }});
      }}
      ranges.push(buffers[i].buffered.start(0).toFixed(4) + '-' + buffers[i].buffered.end(0).toFixed(4));
    }}
    out.textContent = 'buffered ' + ranges.join(' ');
  }} catch (e) {{ out.textContent = 'error ' + e; }}
}});
</script></body></html>"#,
        list.join(", ")
    )
}

/// Debian's Chromium (headless, the arguments of the browser suite) reading the packaged
/// B-frame title through MSE: the edit list in `init.mp4` makes the first frame present at
/// 0, with the audio (without it, Chromium buffers the video from 0.0667 s, the first
/// frame's composition offset).
#[test]
fn chromium_media_source_presents_the_first_frame_at_zero() {
    let lib = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let report =
        package(&[source("plain.mp4")], lib.path(), "plain").unwrap_or_else(|e| panic!("{e}"));
    let presentation = read_presentation(&report.dir).unwrap_or_else(|e| panic!("{e}"));
    let renditions: Vec<(String, String)> = presentation
        .renditions
        .iter()
        .map(|r| {
            let kind = if r.media_type == media::MediaType::Video {
                "video"
            } else {
                "audio"
            };
            (r.id.clone(), format!("{kind}/mp4; codecs=\"{}\"", r.codecs))
        })
        .collect();
    let page = report.dir.join("mse.html");
    std::fs::write(&page, mse_page(&renditions)).unwrap_or_else(|e| panic!("{e}"));
    let out = stdout_of(
        Command::new("/usr/bin/chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--autoplay-policy=no-user-gesture-required",
                // The page fetches the segments beside it.
                "--allow-file-access-from-files",
                "--virtual-time-budget=20000",
                "--dump-dom",
            ])
            .arg(format!("file://{}", page.display())),
    );
    let line = out
        .lines()
        .find_map(|l| l.split("<pre id=\"out\">").nth(1))
        .unwrap_or_else(|| panic!("no result in {out}"));
    let ranges: Vec<(f64, f64)> = line
        .trim_start_matches("buffered ")
        .split(['<', ' '])
        .filter_map(|r| r.split_once('-'))
        .filter_map(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        .collect();
    assert_eq!(ranges.len(), 2, "{line}");
    let (video, audio) = (ranges[0], ranges[1]);
    assert_eq!(video.0, 0.0, "video buffered from {line}");
    assert!(audio.0 < 0.03, "audio buffered from {line}");
    assert!((video.1 - 2.0).abs() < 0.04, "{line}");
}

#[test]
fn mov_fragmented_and_hevc_inputs_package() {
    let lib = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let frames = u64::from(SECONDS * FPS);
    for (name, file, codec) in [
        ("mov", "movie_360.mov", "avc1.64001e"),
        ("fragmented", "fragmented.mp4", "avc1.64001e"),
        ("hevc", "hevc.mp4", "hvc1.1.6.L"),
    ] {
        let input = source(file);
        let info = media::inspect(&input).unwrap_or_else(|e| panic!("{e}"));
        assert!(info.video.packageable, "{file}");
        let report = package(std::slice::from_ref(&input), lib.path(), name)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let master = std::fs::read_to_string(report.dir.join("master.m3u8")).unwrap_or_default();
        assert!(master.contains(codec), "{file}: {master}");
        for manifest in ["master.m3u8", "manifest.mpd"] {
            let path = report.dir.join(manifest);
            ffmpeg_decode(url(&path), &[]).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(
                ffprobe_video_frames(url(&path)).unwrap_or_else(|e| panic!("{e}")),
                vec![frames],
                "{file} {manifest}"
            );
        }
        let presentation = read_presentation(&report.dir).unwrap_or_else(|e| panic!("{e}"));
        let video = presentation
            .video()
            .next()
            .map(|r| r.id.clone())
            .unwrap_or_default();
        assert_eq!(
            video_packets_md5(&report.dir.join(video).join("index.m3u8")),
            video_packets_md5(&input),
            "{file}"
        );
    }
}

/// A packager's output as input: ffmpeg's single-file DASH (fragmented, `sidx`), one file
/// of video and one of audio only, which becomes the title's audio.
#[test]
fn a_separate_audio_file_is_the_titles_audio() {
    let lib = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dash = fixtures().join("packaged/dash_base");
    let inputs = [
        dash.join("manifest-stream1.mp4"),
        dash.join("manifest-stream0.mp4"),
    ];
    let report = package(&inputs, lib.path(), "split").unwrap_or_else(|e| panic!("{e}"));
    let presentation = read_presentation(&report.dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(presentation.video().count(), 1);
    let audio = presentation
        .audio()
        .next()
        .unwrap_or_else(|| panic!("no audio"));
    assert_eq!(audio.codecs.to_string(), "mp4a.40.2");
    assert!(audio.duration() > 9.9 && audio.duration() <= 10.0 + 1e-6);
    for manifest in ["master.m3u8", "manifest.mpd"] {
        let path = report.dir.join(manifest);
        ffmpeg_decode(url(&path), &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            frames_per_stream(&path, 1),
            [u64::from(SECONDS * FPS)],
            "{manifest}"
        );
    }
}

#[test]
fn a_file_cut_without_reencoding_starts_at_the_keyframe_of_its_cut() {
    let lib = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let input = source("late_start.mp4");
    // ffmpeg presents it from 0.5 s of the original: 285 frames.
    assert_eq!(frames_per_stream(&input, 1), [285]);
    let report =
        package(std::slice::from_ref(&input), lib.path(), "late").unwrap_or_else(|e| panic!("{e}"));
    let master = report.dir.join("master.m3u8");
    ffmpeg_decode(url(&master), &[]).unwrap_or_else(|e| panic!("{e}"));
    // The whole GOP the cut falls in is kept (a segment starts with a keyframe), from 0.
    assert_eq!(frames_per_stream(&master, 1), [300]);
    assert_eq!(first_frame_times(&master, 2), ["0.000000", "0.033333"]);
    let presentation = read_presentation(&report.dir).unwrap_or_else(|e| panic!("{e}"));
    // ffmpeg kept the audio from the same point (hidden by its own edit list): placed on the
    // same timeline, it starts with the video (within a frame) and ends with it.
    let audio = presentation
        .audio()
        .next()
        .unwrap_or_else(|| panic!("no audio"));
    let start = audio.segments.first().map_or(-1.0, |s| s.start);
    assert!((0.0..0.03).contains(&start), "audio starts at {start}");
    let end = audio.segments.last().map_or(0.0, |s| s.start + s.duration);
    assert!(end <= 10.0 + 1e-6 && end > 9.9, "audio ends at {end}");
}

#[test]
fn audio_that_is_not_aac_is_left_out_by_package_and_reencoded_by_ladder() {
    let lib = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for (file, name) in [("no_audio.mp4", "silent"), ("ac3_audio.mp4", "ac3")] {
        let input = source(file);
        let report = package(std::slice::from_ref(&input), lib.path(), name)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let presentation = read_presentation(&report.dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(presentation.audio().count(), 0, "{file}");
        let master = report.dir.join("master.m3u8");
        ffmpeg_decode(url(&master), &[]).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    let info = media::inspect(&source("ac3_audio.mp4")).unwrap_or_else(|e| panic!("{e}"));
    let audio = info.audio.unwrap_or_else(|| panic!("no audio"));
    assert!(!audio.aac && audio.codec.contains("AC-3"), "{audio:?}");
    let opts = LadderOptions::new("300,750".parse().unwrap_or_else(|e| panic!("{e}")));
    let report = media::ladder(
        &source("ac3_audio.mp4"),
        lib.path(),
        "ac3-ladder",
        &opts,
        |_| {},
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let presentation = read_presentation(&report.dir).unwrap_or_else(|e| panic!("{e}"));
    let audio = presentation
        .audio()
        .next()
        .unwrap_or_else(|| panic!("no AAC made"));
    assert_eq!(audio.codecs.to_string(), "mp4a.40.2");
    assert!(audio.duration() <= f64::from(SECONDS) + 1e-6 && audio.duration() > 9.9);
    // 300 kbit/s is 480x270 (under the 360p source); 750 is 640x360, the source's height.
    let ids: Vec<&str> = presentation.video().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["270p-300k", "360p-750k"]);
    for manifest in ["master.m3u8", "manifest.mpd"] {
        let path = report.dir.join(manifest);
        ffmpeg_decode(url(&path), &[]).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn the_ladder_of_a_plain_mp4_meets_its_bit_rates() {
    let lib = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let opts = LadderOptions::new("small".parse().unwrap_or_else(|e| panic!("{e}")));
    let seen = std::sync::Mutex::new(Vec::new());
    let report = media::ladder(&source("plain.mp4"), lib.path(), "plain", &opts, |p| {
        if let Ok(mut seen) = seen.lock() {
            seen.push(p);
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(entries(lib.path()), ["plain"]);
    let seen = seen.into_inner().unwrap_or_default();
    assert!(
        seen.iter()
            .any(|p| p.stage == media::Stage::Encoding && p.fraction >= 1.0),
        "progress reaches 100 %"
    );
    // The small ladder tops at 720p, the source's height: three rungs and the copied AAC.
    let targets: Vec<u32> = report
        .renditions
        .iter()
        .filter_map(|r| r.target_kbps)
        .collect();
    assert_eq!(targets, [300, 750, 1850]);
    for r in &report.renditions {
        if let Some(target) = r.target_kbps {
            let ratio = r.average_kbps / f64::from(target);
            assert!(
                (0.8..=1.2).contains(&ratio),
                "{}: {} kbit/s",
                r.id,
                r.average_kbps
            );
        }
    }
    let frames = u64::from(SECONDS * FPS);
    for manifest in ["master.m3u8", "manifest.mpd"] {
        let path = report.dir.join(manifest);
        ffmpeg_decode(url(&path), &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(frames_per_stream(&path, 3), vec![frames; 3], "{manifest}");
    }
    let presentation = read_presentation(&report.dir).unwrap_or_else(|e| panic!("{e}"));
    let audio = presentation.audio().next().map(|a| a.codecs.to_string());
    assert_eq!(audio.as_deref(), Some("mp4a.40.2"));
}

#[test]
fn bad_inputs_get_one_line_and_leave_nothing() {
    let bad = fixtures().join("bad");
    let lib = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cases: [(Vec<PathBuf>, &str); 4] = [
        (
            vec![bad.join("text.mp4")],
            "text.mp4: not a video file (no MP4/MOV box structure)",
        ),
        (
            vec![bad.join("truncated.mp4")],
            "truncated.mp4: truncated moov: the file ends",
        ),
        (
            vec![bad.join("mpeg4.mp4")],
            "mpeg4.mp4: unsupported video codec mp4v (MPEG-4 Part 2) (H.264 or HEVC needed)",
        ),
        (
            vec![source("unaligned_a.mp4"), source("unaligned_b.mp4")],
            "unaligned_b.mp4: keyframes not aligned with",
        ),
    ];
    for (inputs, expected) in cases {
        let err = package(&inputs, lib.path(), "bad").map(|_| ()).unwrap_err();
        assert!(
            matches!(err, MediaError::Input { .. }),
            "{expected}: {err:?}"
        );
        let line = err.to_string();
        assert!(line.contains(expected), "{line}");
        assert!(!line.contains('\n'), "{line}");
        assert_eq!(entries(lib.path()), Vec::<String>::new(), "{expected}");
    }
    let unaligned = package(
        &[source("unaligned_a.mp4"), source("unaligned_b.mp4")],
        lib.path(),
        "bad",
    )
    .map(|_| ())
    .unwrap_err()
    .to_string();
    assert!(
        unaligned.ends_with("it has a keyframe at 2.000 s, this file has none there"),
        "{unaligned}"
    );
    // The ladder refuses the same way.
    let opts = LadderOptions::new("small".parse().unwrap_or_else(|e| panic!("{e}")));
    let err = media::ladder(&bad.join("truncated.mp4"), lib.path(), "bad", &opts, |_| {})
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("truncated moov"), "{err}");
    assert!(entries(lib.path()).is_empty());
}

/// MPEG-4 Part 2, which `package` refuses, is what `ladder` is for: ffmpeg decodes it, the
/// rungs are H.264 (one at the source's 240 lines, under every rung of the small ladder).
#[test]
fn the_ladder_takes_a_codec_package_refuses() {
    let lib = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let input = fixtures().join("bad/mpeg4.mp4");
    let info = media::inspect(&input).unwrap_or_else(|e| panic!("{e}"));
    assert!(!info.video.packageable);
    assert_eq!((info.video.width, info.video.height), (320, 240));
    let opts = LadderOptions::new("small".parse().unwrap_or_else(|e| panic!("{e}")));
    let report =
        media::ladder(&input, lib.path(), "mpeg4", &opts, |_| {}).unwrap_or_else(|e| panic!("{e}"));
    let presentation = read_presentation(&report.dir).unwrap_or_else(|e| panic!("{e}"));
    let video: Vec<_> = presentation.video().collect();
    assert_eq!(video.len(), 1);
    assert_eq!((video[0].width, video[0].height), (Some(320), Some(240)));
    assert!(video[0].codecs.to_string().starts_with("avc1.42"));
    let master = report.dir.join("master.m3u8");
    ffmpeg_decode(url(&master), &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(frames_per_stream(&master, 1), [60]);
}

#[test]
fn a_cancelled_ladder_leaves_nothing() {
    let lib = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let opts = LadderOptions::new("small".parse().unwrap_or_else(|e| panic!("{e}")));
    let cancel = opts.cancel.clone();
    let result = media::ladder(&source("plain.mp4"), lib.path(), "plain", &opts, |p| {
        if p.stage == media::Stage::Encoding && p.fraction > 0.2 {
            cancel.cancel();
        }
    });
    assert!(matches!(result, Err(MediaError::Cancelled)), "{result:?}");
    assert!(entries(lib.path()).is_empty(), "{:?}", entries(lib.path()));
}
