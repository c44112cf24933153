//! Real network shaping: two network namespaces joined by a veth pair, the origin in one
//! and `player play` in the other, as separate processes. The link towards the player is
//! shaped with `tc` (a tbf token bucket) and changed mid-run; the player must settle on the
//! highest rendition that fits, then adapt up and down with bounded rebuffering.
//!
//! No netem delay: the kernels this project runs on (CI included) lack `sch_netem` ("Specified
//! qdisc kind is unknown"); the rate is what adaptation answers to.
//!
//! Needs root and iproute2 (the test command installs iproute2). Namespaces, links and
//! processes are removed by a guard even when an assertion fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use rivulet_tests::sample_library;

/// A release binary of the workspace (built by the test command before the tests run).
fn binary(name: &str) -> PathBuf {
    let env = format!("{}_BIN", name.to_uppercase());
    if let Ok(path) = std::env::var(&env) {
        return path.into();
    }
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(
        |_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    for profile in ["release", "debug"] {
        let path = target.join(profile).join(name);
        if path.is_file() {
            return path;
        }
    }
    panic!(
        "no {name} binary under {}: run `cargo build --release --workspace` or set {env}",
        target.display()
    );
}

fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e} (iproute2 is required)"));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The two hosts, their link, and the processes started in them; all removed on drop.
struct Testbed {
    server_ns: String,
    client_ns: String,
    /// The server side of the veth pair: its egress is the player's downlink.
    downlink: String,
    children: Vec<Child>,
    /// The processes' output.
    dir: tempfile::TempDir,
}

const SERVER_ADDR: &str = "10.213.77.1";
const CLIENT_ADDR: &str = "10.213.77.2";

impl Testbed {
    fn new() -> Self {
        let id = std::process::id();
        let bed = Testbed {
            server_ns: format!("rvt-srv-{id}"),
            client_ns: format!("rvt-cli-{id}"),
            downlink: format!("rvs{id}"),
            children: Vec::new(),
            dir: tempfile::tempdir().unwrap(),
        };
        let uplink = format!("rvc{id}");
        run(&["ip", "netns", "add", &bed.server_ns]);
        run(&["ip", "netns", "add", &bed.client_ns]);
        run(&[
            "ip",
            "link",
            "add",
            &bed.downlink,
            "type",
            "veth",
            "peer",
            "name",
            &uplink,
        ]);
        run(&["ip", "link", "set", &bed.downlink, "netns", &bed.server_ns]);
        run(&["ip", "link", "set", &uplink, "netns", &bed.client_ns]);
        for (ns, dev, addr) in [
            (&bed.server_ns, &bed.downlink, SERVER_ADDR),
            (&bed.client_ns, &uplink, CLIENT_ADDR),
        ] {
            run(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{addr}/30"),
                "dev",
                dev,
            ]);
            run(&["ip", "-n", ns, "link", "set", dev, "up"]);
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        bed
    }

    /// Shapes the downlink with a token bucket at `rate` (e.g. `1500kbit`): a 32 kbit burst,
    /// and up to 400 ms of queue before drops, like a modest access link.
    fn shape(&self, rate: &str, change: bool) {
        let verb = if change { "change" } else { "add" };
        run(&[
            "ip",
            "netns",
            "exec",
            &self.server_ns,
            "tc",
            "qdisc",
            verb,
            "dev",
            &self.downlink,
            "root",
            "handle",
            "1:",
            "tbf",
            "rate",
            rate,
            "burst",
            "32kbit",
            "latency",
            "400ms",
        ]);
    }

    /// Starts `program` in namespace `ns`, its stdout and stderr going to `NAME.out` and
    /// `NAME.err` in the test bed's folder (never to a pipe nobody drains).
    fn spawn(&mut self, ns: &str, program: &Path, args: &[&str], name: &str) -> usize {
        let file = |ext: &str| {
            std::fs::File::create(self.dir.path().join(format!("{name}.{ext}"))).unwrap()
        };
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(program)
            .args(args)
            .stdout(file("out"))
            .stderr(file("err"))
            .spawn()
            .unwrap();
        self.children.push(child);
        self.children.len() - 1
    }

    fn output(&self, name: &str, ext: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.{ext}"))).unwrap_or_default()
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Deleting a namespace removes the veth pair (and its qdiscs) with it.
        for ns in [&self.server_ns, &self.client_ns] {
            let _ = Command::new("ip").args(["netns", "delete", ns]).status();
        }
    }
}

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
    let (origin, player) = (binary("origin"), binary("player"));
    let mut bed = Testbed::new();
    // 1.5 Mbit/s: 360p-750k (+ audio, ~0.9 Mbit/s) fits, 720p-1850k does not.
    bed.shape("1500kbit", false);
    let server_ns = bed.server_ns.clone();
    let listen = format!("{SERVER_ADDR}:8080");
    let origin_index = bed.spawn(
        &server_ns,
        &origin,
        &[
            "--library",
            library.to_str().unwrap(),
            "--listen",
            &listen,
            "--no-sample",
        ],
        "origin",
    );
    // Wait (bounded) for the origin's start-up line.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !bed.output("origin", "out").contains("listening") {
        assert!(
            bed.children[origin_index].try_wait().unwrap().is_none(),
            "origin exited: {}",
            bed.output("origin", "err")
        );
        assert!(
            Instant::now() < deadline,
            "origin did not start: {}",
            bed.output("origin", "err")
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let log = tempfile::NamedTempFile::new().unwrap();
    let url = format!("http://{SERVER_ADDR}:8080/vod/sample/master.m3u8");
    let client_ns = bed.client_ns.clone();
    let player_index = bed.spawn(
        &client_ns,
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
    );
    let started = Instant::now();
    let at = |secs: u64| {
        let wait = Duration::from_secs(secs).saturating_sub(started.elapsed());
        std::thread::sleep(wait);
    };
    at(30);
    bed.shape("6mbit", true);
    at(55);
    // 0.6 Mbit/s: only 300k (+ audio, ~0.45 Mbit/s) fits; 750k + audio needs ~0.9.
    bed.shape("600kbit", true);
    // The player stops itself after --duration; bounded wait for it.
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = bed.children[player_index].try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "player did not stop by itself");
        std::thread::sleep(Duration::from_millis(200));
    };
    let report = bed.output("player", "out");
    assert!(
        status.success(),
        "player failed: {report}\n{}",
        bed.output("player", "err")
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
