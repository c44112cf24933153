//! A CDN across hosts, as network namespaces on one machine (see `rivulet_tests::netns`):
//! an origin host behind a constrained uplink (tbf 20 Mbit/s; no delay, the kernel lacks
//! netem), three edge hosts peered by consistent hashing, and a client host running
//! `player load` steered to the edges by the origin's content steering. Every server is a
//! separate process on its own address, started from the release binaries.
//!
//! Checked: the origin sends a small fraction of what the players receive (offload), no
//! media object leaves the origin twice while the cluster is whole, and killing one edge
//! mid-run makes its players fail over with no failed session and no long stall.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rivulet_tests::netns::{Host, Lab, binary};
use rivulet_tests::{metric_sum, sample_library};

const EDGES: [(&str, u8); 3] = [("e1", 11), ("e2", 12), ("e3", 13)];
/// The edge killed mid-run.
const VICTIM: &str = "e2";
const SESSIONS: usize = 60;
/// The asset's length, and the run's: ramp + asset + start-up slack.
const ASSET_S: f64 = 40.0;
const RAMP_S: f64 = 10.0;
const RUN_S: f64 = 58.0;
/// When the victim dies, counted from the start of the load.
const KILL_AT_S: u64 = 22;

fn get(runtime: &tokio::runtime::Runtime, url: &str) -> String {
    runtime
        .block_on(async {
            reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(5))
                .build()?
                .get(url)
                .send()
                .await?
                .error_for_status()?
                .text()
                .await
        })
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// Requests per media object (init and segments) in the origin's access log, up to
/// `until` (Unix seconds) when given.
fn origin_fetches(log: &str, until: Option<f64>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for line in log.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // time client method path status bytes micros
        let [time, _, method, path, status, ..] = fields[..] else {
            continue;
        };
        let time: f64 = time.parse().unwrap_or(f64::MAX);
        let media = path.ends_with(".m4s") || path.ends_with(".mp4");
        if media && method == "GET" && status == "200" && until.is_none_or(|t| time < t) {
            *counts.entry(path.to_string()).or_default() += 1;
        }
    }
    counts
}

#[test]
fn cdn_cluster_offloads_the_origin_and_survives_losing_an_edge() {
    let library = sample_library(
        &PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cluster-library"),
        ASSET_S,
    )
    .unwrap();
    let (origin_bin, edge_bin, player_bin) = (
        binary("origin").unwrap(),
        binary("edge").unwrap(),
        binary("player").unwrap(),
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut lab = Lab::new("cdn", 78).unwrap();
    let origin = lab.add_host("origin", 1).unwrap();
    let edges: Vec<Host> = EDGES
        .iter()
        .map(|(name, n)| lab.add_host(name, *n).unwrap())
        .collect();
    let client = lab.add_host("client", 20).unwrap();
    // The origin's uplink is the constrained link of the topology.
    lab.shape(&origin, true, "20mbit", false).unwrap();

    let origin_url = format!("http://{}:8080", origin.addr);
    let edge_url = |h: &Host| format!("http://{}:8081", h.addr);
    let access_log = lab.path("origin-access.log");
    let mut args: Vec<String> = [
        "--library",
        library.to_str().unwrap(),
        "--listen",
        &format!("{}:8080", origin.addr),
        "--no-sample",
        "--access-log",
        access_log.to_str().unwrap(),
        // Players keep a steering answer 10 s: those on the victim learn of its death
        // from their own failed requests, before the next answer would tell them.
        "--steering-ttl",
        "10",
        "--edge-probe-interval",
        "500ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for h in &edges {
        args.extend(["--edge".into(), format!("{}={}", h.name, edge_url(h))]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    lab.spawn(&origin, &origin_bin, &args, "origin").unwrap();
    lab.wait_for_output("origin", "listening", Duration::from_secs(30))
        .unwrap();

    let peers = edges
        .iter()
        .map(|h| format!("{}={}", h.name, edge_url(h)))
        .collect::<Vec<_>>()
        .join(",");
    for h in &edges {
        let listen = format!("{}:8081", h.addr);
        lab.spawn(
            h,
            &edge_bin,
            &[
                "--origin",
                &origin_url,
                "--listen",
                &listen,
                "--name",
                &h.name,
                "--peers",
                &peers,
                "--health-interval",
                "500ms",
            ],
            &h.name,
        )
        .unwrap();
    }
    for h in &edges {
        lab.wait_for_output(&h.name, "listening", Duration::from_secs(30))
            .unwrap();
    }

    let report_path = lab.path("report.json");
    let manifest = format!("{origin_url}/vod/sample/master.m3u8");
    let (sessions, run_s, ramp_s) = (SESSIONS.to_string(), RUN_S.to_string(), RAMP_S.to_string());
    lab.spawn(
        &client,
        &player_bin,
        &[
            "load",
            &manifest,
            "--sessions",
            &sessions,
            "--duration",
            &run_s,
            "--ramp",
            &ramp_s,
            // A short buffer keeps every session fetching when the victim dies.
            "--max-buffer",
            "10",
            "--json",
            report_path.to_str().unwrap(),
        ],
        "player",
    )
    .unwrap();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(KILL_AT_S));
    assert!(
        lab.status("player").unwrap().is_none(),
        "player load ended early: {}",
        lab.output("player", "err")
    );
    // The steering view just before the kill: the victim carries players.
    let status = get(&runtime, &format!("{origin_url}/steering/status"));
    let victim_metrics = get(
        &runtime,
        &format!(
            "{}/.edge/metrics",
            edge_url(edges.iter().find(|h| h.name == VICTIM).unwrap())
        ),
    );
    let killed_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    lab.kill(VICTIM).unwrap();
    eprintln!(
        "killed {VICTIM} {:.1} s into the run; steering then: {status}",
        started.elapsed().as_secs_f64()
    );
    let victim_served = metric_sum(&victim_metrics, "edge_requests_total", &[]);
    assert!(
        victim_served > 0.0,
        "{VICTIM} served nobody before it died: steering did not spread the players\nplayer: {}\n{}",
        lab.output("player", "out"),
        lab.output("player", "err")
    );

    let ended = lab
        .wait("player", Duration::from_secs_f64(RUN_S + 60.0))
        .unwrap();
    assert!(
        ended.success(),
        "player load failed: {}",
        lab.output("player", "err")
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    let aggregate = &report["aggregate"];
    let origin_metrics = get(&runtime, &format!("{origin_url}/metrics"));

    // Offload over the whole run, cold fills included (stricter than after warm-up).
    let origin_bytes = metric_sum(&origin_metrics, "origin_http_response_body_bytes", &[]);
    let player_bytes = aggregate["counters"]["bytes"].as_f64().unwrap();
    let offload = 1.0 - origin_bytes / player_bytes;
    eprintln!(
        "origin sent {:.1} MB, players received {:.1} MB: offload {:.2} %",
        origin_bytes / 1e6,
        player_bytes / 1e6,
        offload * 100.0
    );
    assert!(offload >= 0.95, "offload {offload:.4} < 95 %");

    // Each media object left the origin at most once while the cluster was whole.
    let log = std::fs::read_to_string(&access_log).unwrap();
    let before = origin_fetches(&log, Some(killed_at));
    let twice: Vec<_> = before.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "fetched from the origin more than once: {twice:?}"
    );
    let after = origin_fetches(&log, None);
    let refetched = after
        .iter()
        .filter(|(path, n)| {
            **n > before.get(*path).copied().unwrap_or(0) && before.contains_key(*path)
        })
        .count();
    eprintln!(
        "origin media fetches: {} objects before the kill; {} objects in all, {} of them fetched again after it",
        before.len(),
        after.len(),
        refetched
    );

    // Failover: nobody failed, nobody stalled long.
    assert_eq!(aggregate["failed"], 0, "{aggregate}");
    assert_eq!(aggregate["failed_to_start"], 0, "{aggregate}");
    assert_eq!(aggregate["started"], SESSIONS, "{aggregate}");
    let failovers = aggregate["counters"]["failovers"].as_u64().unwrap();
    let failed_over = aggregate["sessions_failed_over"].as_u64().unwrap();
    assert!(failovers >= 1, "no session failed over: {aggregate}");
    let longest = aggregate["max_stall_s"].as_f64().unwrap();
    eprintln!(
        "{failovers} failovers in {failed_over} sessions; longest single stall {longest:.2} s; rebuffer ratio {}; per pathway {}",
        aggregate["rebuffer_ratio"], aggregate["counters"]["pathways"]
    );
    assert!(longest <= 2.0, "a session stalled {longest:.2} s");
}
