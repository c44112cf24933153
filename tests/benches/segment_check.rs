//! What checking a segment costs (`media::validate`), over real segments: ffmpeg's fMP4
//! (video with B-frames, AAC audio) and MPEG-TS HLS renditions (`rivulet_tests::foreign`)
//! and Rivulet's own sample. Each rendition's segments are checked in order, as a player
//! does, whole and in the 4 KiB pieces a session feeds them in.
//!
//! `cargo bench -p rivulet-tests --bench segment_check` prints ns per segment and writes
//! the figures as JSON to `target/segment_check.json`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use media::Container;
use media::validate::RenditionCheck;

/// A rendition's init segment (if any) and media segments, in order.
struct Rendition {
    name: String,
    container: Container,
    init: Option<Vec<u8>>,
    segments: Vec<Vec<u8>>,
}

fn read(
    dir: &Path,
    name: &str,
    container: Container,
    init: Option<&str>,
    prefix: &str,
) -> Rendition {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let file = p.file_name().unwrap().to_string_lossy();
            file.starts_with(prefix) && (file.ends_with(".m4s") || file.ends_with(".ts"))
        })
        .collect();
    // Numbered names sort in order once their numbers are compared as numbers.
    files.sort_by_key(|p| {
        let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
        let digits: String = stem
            .chars()
            .rev()
            .take_while(char::is_ascii_digit)
            .collect();
        digits
            .chars()
            .rev()
            .collect::<String>()
            .parse::<u64>()
            .unwrap_or(0)
    });
    Rendition {
        name: name.to_owned(),
        container,
        init: init.map(|f| std::fs::read(dir.join(f)).unwrap()),
        segments: files.iter().map(|f| std::fs::read(f).unwrap()).collect(),
    }
}

/// Checks every segment of `r` once, fed in pieces of `piece` bytes; panics on a refusal
/// (these are all media).
fn check_all(r: &Rendition, piece: usize) {
    let mut check = RenditionCheck::new(r.container);
    if let Some(init) = &r.init {
        check.init(init).unwrap();
    }
    for (n, segment) in r.segments.iter().enumerate() {
        let mut scan = check.segment().unwrap();
        for chunk in segment.chunks(piece) {
            scan.feed(chunk)
                .unwrap_or_else(|e| panic!("{} #{n}: {e}", r.name));
        }
        let timing = scan
            .finish()
            .unwrap_or_else(|e| panic!("{} #{n}: {e}", r.name));
        check
            .accept(n as u64 + 1, false, timing)
            .unwrap_or_else(|e| panic!("{} #{n}: {e}", r.name));
    }
}

fn main() {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let foreign = rivulet_tests::foreign::foreign_content(tmp).unwrap();
    let sample = rivulet_tests::player_library(tmp).unwrap().join("sample");
    let hls = foreign.join("packaged/hls_fmp4");
    let ts = foreign.join("packaged/hls_ts");
    let mut renditions = vec![
        read(
            &hls,
            "ffmpeg fMP4 360p",
            Container::Fmp4,
            Some("init_0.mp4"),
            "0_",
        ),
        read(
            &hls,
            "ffmpeg fMP4 720p",
            Container::Fmp4,
            Some("init_1.mp4"),
            "1_",
        ),
        read(
            &hls,
            "ffmpeg fMP4 audio",
            Container::Fmp4,
            Some("init_2.mp4"),
            "2_",
        ),
        read(&ts, "ffmpeg TS 360p", Container::MpegTs, None, "0_"),
        read(&ts, "ffmpeg TS 720p", Container::MpegTs, None, "1_"),
    ];
    for entry in std::fs::read_dir(&sample).unwrap() {
        let dir = entry.unwrap().path();
        if dir.join("init.mp4").is_file() {
            let name = format!("sample {}", dir.file_name().unwrap().to_string_lossy());
            renditions.push(read(&dir, &name, Container::Fmp4, Some("init.mp4"), ""));
        }
    }
    renditions.sort_by(|a, b| a.name.cmp(&b.name));
    println!(
        "{:<24} {:>8} {:>12} {:>14} {:>14}",
        "rendition", "segments", "mean bytes", "ns/segment", "ns/segment 4K"
    );
    let mut json = Vec::new();
    for r in &renditions {
        let bytes: usize = r.segments.iter().map(Vec::len).sum();
        let n = r.segments.len();
        // Enough rounds for about 200 ms of work each way.
        check_all(r, usize::MAX);
        let probe = Instant::now();
        check_all(r, usize::MAX);
        let rounds =
            (0.2 / probe.elapsed().as_secs_f64().max(1e-7)).clamp(10.0, 100_000.0) as usize;
        let mut figures = Vec::new();
        for piece in [usize::MAX, 4096] {
            let started = Instant::now();
            for _ in 0..rounds {
                check_all(r, piece);
            }
            figures.push(started.elapsed().as_nanos() as f64 / (rounds * n) as f64);
        }
        println!(
            "{:<24} {:>8} {:>12} {:>14.0} {:>14.0}",
            r.name,
            n,
            bytes / n.max(1),
            figures[0],
            figures[1]
        );
        json.push(serde_json::json!({
            "rendition": r.name,
            "segments": n,
            "mean_bytes": bytes / n.max(1),
            "ns_per_segment_whole": figures[0],
            "ns_per_segment_4k_pieces": figures[1],
        }));
    }
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/segment_check.json");
    std::fs::write(&out, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    println!("written to {}", out.display());
}
