//! `player load` in-process against a real origin behind a real edge: a bounded run of
//! many sessions on trace-driven links, and shards that merge into the same run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use player::link::NetworkSpec;
use player::load::report::{LoadReport, Sample, merge};
use player::load::{GRACE, LoadConfig, Progress, Shard};
use player::session::{End, SessionConfig};
use rivulet_tests::{start_edge, start_origin};
use tokio_util::sync::CancellationToken;

fn library() -> &'static std::path::Path {
    rivulet_tests::player_library(std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))).unwrap()
}

#[derive(Debug)]
struct Quiet;

impl Progress for Quiet {
    fn update(&self, _: &Sample, _: usize, _: usize) {}
}

const SESSIONS: usize = 12;
const DURATION_S: f64 = 8.0;

async fn run(config: &LoadConfig) -> LoadReport {
    let started = Instant::now();
    let report = player::load::run(config, &CancellationToken::new(), &Quiet)
        .await
        .unwrap();
    // Bounded: the deadline, the grace, and a little scheduling slack.
    let limit = Duration::from_secs_f64(DURATION_S) + GRACE + Duration::from_secs(3);
    assert!(started.elapsed() < limit, "{:?}", started.elapsed());
    report
}

#[tokio::test]
async fn a_bounded_run_on_trace_links_and_its_shards() {
    let origin = start_origin(library()).await.unwrap();
    let edge = start_edge(origin, "edge-test").await.unwrap();
    // Two traces: a steady 6 Mbit/s and one that swings between 1 and 4 Mbit/s.
    let traces = tempfile::tempdir().unwrap();
    std::fs::write(
        traces.path().join("steady"),
        "0.0\t6.0\n1.0\t6.0\n2.0\t6.0\n",
    )
    .unwrap();
    std::fs::write(
        traces.path().join("swing"),
        "0.0\t1.0\n1.5\t1.0\n3.0\t4.0\n4.5\t1.0\n",
    )
    .unwrap();
    let url = format!("http://{edge}/vod/sample/manifest.mpd")
        .parse()
        .unwrap();
    let config = LoadConfig {
        session: SessionConfig::new(url),
        sessions: SESSIONS,
        duration_s: DURATION_S,
        ramp_s: 2.0,
        network: Some(NetworkSpec::parse(traces.path().to_str().unwrap()).unwrap()),
        seed: 3,
        shard: None,
    };
    let whole = run(&config).await;
    let a = &whole.aggregate;
    assert_eq!(
        (a.sessions, a.started, a.failed, a.failed_to_start),
        (SESSIONS, SESSIONS, 0, 0),
        "{a:#?}"
    );
    assert!(a.counters.errors.is_empty(), "{a:#?}");
    assert!(
        whole
            .records
            .iter()
            .all(|r| matches!(r.end, Some(End::Deadline | End::Complete)))
    );
    assert!(whole.records.iter().all(|r| r.trace.is_some()));
    // Twelve viewers of one asset through one edge: most objects come from its cache.
    assert!(a.cache_hit_ratio.unwrap() > 0.5, "{a:#?}");
    assert!(a.startup_delay_s.unwrap().p99 < 3.0, "{a:#?}");
    assert!(a.segment_download_ms.is_some());
    assert!(!whole.timeline.is_empty());

    let shard = |index| LoadConfig {
        shard: Some(Shard { index, count: 2 }),
        ..config.clone()
    };
    let (shard0, shard1) = (shard(0), shard(1));
    let (first, second) = tokio::join!(run(&shard0), run(&shard1));
    assert_eq!(first.records.len() + second.records.len(), SESSIONS);
    let merged = merge(vec![first, second]).unwrap();
    assert_eq!(merged.aggregate.sessions, SESSIONS);
    assert_eq!(merged.aggregate.failed, 0);
    let plan = |r: &LoadReport| -> Vec<(usize, f64, Option<String>)> {
        r.records
            .iter()
            .map(|x| (x.index, x.start_s, x.trace.clone()))
            .collect()
    };
    assert_eq!(
        plan(&merged),
        plan(&whole),
        "the seed fixes each session's plan"
    );
}
