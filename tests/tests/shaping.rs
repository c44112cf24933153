//! Real network shaping: two hosts (network namespaces, see `rivulet_tests::netns`), the
//! origin in one and `player play` in the other, as separate processes. The origin's uplink
//! is shaped with `tc` (a tbf token bucket) and changed mid-run; the player must settle on
//! the highest rendition that fits, then adapt up and down with bounded rebuffering.
//!
//! No netem delay: the kernels this project runs on (CI included) lack `sch_netem`; the rate
//! is what adaptation answers to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rivulet_tests::netns::{Lab, binary};
use rivulet_tests::sample_library;

#[derive(Debug, serde::Deserialize)]
struct LogLine {
    rendition: String,
    quality: usize,
    requested_at_s: f64,
}

#[test]
fn player_adapts_to_a_shaped_link_that_changes() {
    let library = sample_library(
        &PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("shaping-library"),
        100.0,
    )
    .unwrap();
    let (origin, player) = (binary("origin").unwrap(), binary("player").unwrap());
    let mut lab = Lab::new("sh", 77).unwrap();
    let server = lab.add_host("srv", 1).unwrap();
    let client = lab.add_host("cli", 2).unwrap();
    // 1.5 Mbit/s: 360p-750k (+ audio, ~0.9 Mbit/s) fits, 720p-1850k does not.
    lab.shape(&server, true, "1500kbit", false).unwrap();
    let listen = format!("{}:8080", server.addr);
    lab.spawn(
        &server,
        &origin,
        &[
            "--library",
            library.to_str().unwrap(),
            "--listen",
            &listen,
            "--no-sample",
        ],
        "origin",
    )
    .unwrap();
    lab.wait_for_output("origin", "listening", Duration::from_secs(30))
        .unwrap();

    let log = tempfile::NamedTempFile::new().unwrap();
    let url = format!("http://{listen}/vod/sample/master.m3u8");
    lab.spawn(
        &client,
        &player,
        &[
            "play",
            &url,
            "--duration",
            "85",
            "--max-buffer",
            "12",
            "--json",
            "--log",
            log.path().to_str().unwrap(),
        ],
        "player",
    )
    .unwrap();
    let started = Instant::now();
    let at = |secs: u64| {
        let wait = Duration::from_secs(secs).saturating_sub(started.elapsed());
        std::thread::sleep(wait);
    };
    at(30);
    lab.shape(&server, true, "6mbit", true).unwrap();
    at(55);
    // 0.6 Mbit/s: only 300k (+ audio, ~0.45 Mbit/s) fits; 750k + audio needs ~0.9.
    lab.shape(&server, true, "600kbit", true).unwrap();
    // The player stops itself after --duration; bounded wait for it.
    let status = lab.wait("player", Duration::from_secs(90)).unwrap();
    let report = lab.output("player", "out");
    assert!(
        status.success(),
        "player failed: {report}\n{}",
        lab.output("player", "err")
    );

    let video: Vec<LogLine> = std::fs::read_to_string(log.path())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|l: &LogLine| l.rendition != "audio")
        .collect();
    let window = |from: f64, to: f64| -> Vec<usize> {
        video
            .iter()
            .filter(|l| l.requested_at_s >= from && l.requested_at_s < to)
            .map(|l| l.quality)
            .collect()
    };
    // Settled under 1.5 Mbit/s: the 750k rung, never the 1850k one.
    let settled = window(15.0, 30.0);
    assert!(!settled.is_empty());
    assert!(
        settled.iter().all(|&q| q <= 1),
        "above the link at 1.5 Mbit/s: {settled:?}"
    );
    assert!(
        settled.iter().filter(|&&q| q == 1).count() * 2 > settled.len(),
        "not settled on 750k: {settled:?}"
    );
    // Up at 6 Mbit/s.
    let up = window(36.0, 55.0);
    assert!(up.contains(&2), "never reached 1850k at 6 Mbit/s: {up:?}");
    // Down at 0.6 Mbit/s.
    let down = window(68.0, 85.0);
    assert!(!down.is_empty());
    assert!(
        down.iter().filter(|&&q| q == 0).count() * 2 > down.len(),
        "did not drop to 300k at 0.6 Mbit/s: {down:?}"
    );
    let json: serde_json::Value = serde_json::from_str(&report).unwrap();
    let rebuffer = json["summary"]["rebuffer_s"].as_f64().unwrap();
    assert!(rebuffer <= 4.0, "rebuffered {rebuffer} s");
}
