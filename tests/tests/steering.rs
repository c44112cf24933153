//! Content steering end to end: an origin that steers players between real edges (which
//! front a second origin over the same library), and real player sessions that follow its
//! steering manifests, fail over at once when the edge they use stops, and spread a load
//! run over the edges.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use player::link::{LinkModel, Rate};
use player::load::report::Sample;
use player::load::{LoadConfig, Progress};
use player::session::summary::SegmentLog;
use player::session::{self, End, NoObserver, Observer, SessionConfig, SessionReport};
use rivulet_tests::{
    start_origin, start_steered_origin, start_stoppable_edge, wait_until_edges_usable,
};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

/// Short, so that a 12 s session asks many times.
const TTL: Duration = Duration::from_secs(1);

fn library() -> &'static std::path::Path {
    rivulet_tests::player_library(std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))).unwrap()
}

/// A steering origin in front of edges `names` (the first the manifests' default pathway)
/// whose steering manifests last `ttl`, each edge stopped by sending on (or dropping) its
/// sender.
struct Cdn {
    steering: SocketAddr,
    stops: HashMap<String, oneshot::Sender<()>>,
}

async fn cdn(names: &[&str], ttl: Duration) -> Cdn {
    let origin = start_origin(library()).await.unwrap();
    let mut edges = Vec::new();
    let mut stops = HashMap::new();
    for name in names {
        let (stop, stopped) = oneshot::channel::<()>();
        let addr = start_stoppable_edge(origin, name, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
        edges.push((*name, addr));
        stops.insert((*name).to_owned(), stop);
    }
    let steering = start_steered_origin(library(), &edges, ttl).await.unwrap();
    wait_until_edges_usable(steering, names.len()).await;
    Cdn { steering, stops }
}

async fn get_json(url: &str) -> serde_json::Value {
    let text = reqwest::get(url).await.unwrap().text().await.unwrap();
    serde_json::from_str(&text).unwrap()
}

async fn play(config: &SessionConfig, observer: &dyn Observer) -> SessionReport {
    let client = session::http_client(6).unwrap();
    let stop = CancellationToken::new();
    let run = session::run(&client, config, observer, &stop);
    tokio::time::timeout(Duration::from_secs(40), run)
        .await
        .expect("the session must end by itself")
        .unwrap()
}

fn pathways(r: &SessionReport) -> Vec<&str> {
    r.segments
        .iter()
        .map(|s| s.pathway.as_deref().unwrap_or("-"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_plays_from_the_edge_the_steering_server_puts_first() {
    let cdn = cdn(&["edge-a", "edge-b"], TTL).await;
    // Another new client is steered first: the origin balances, so this session's first
    // choice is the other edge, whatever the manifests' default (edge-a).
    let other = get_json(&format!("http://{}/steering/hls?start=1", cdn.steering)).await;
    let taken = other["PATHWAY-PRIORITY"][0].as_str().unwrap().to_owned();
    let expected = if taken == "edge-a" {
        "edge-b"
    } else {
        "edge-a"
    };

    let url = format!("http://{}/vod/sample/master.m3u8", cdn.steering);
    let r = play(&SessionConfig::new(url.parse().unwrap()), &NoObserver).await;
    assert_eq!((r.end, r.error.as_deref()), (End::Complete, None), "{r:#?}");
    assert_eq!(pathways(&r), vec![expected; r.segments.len()], "{r:#?}");
    // Each segment really came through that edge.
    for s in &r.segments {
        let status = s.cache_status.as_deref().unwrap_or("");
        assert!(status.starts_with(expected), "{s:?}");
    }
    let c = &r.summary.counters;
    assert!(c.steering_fetches >= 2, "TTL {TTL:?}: {c:?}");
    assert_eq!((c.steering_errors, c.failovers), (0, 0), "{c:?}");
    assert!(c.errors.is_empty(), "{c:?}");
}

/// Stops the edge segment `index` came from, once it has.
#[derive(Debug)]
struct StopEdgeAfter {
    index: usize,
    stops: Mutex<HashMap<String, oneshot::Sender<()>>>,
    stopped: Mutex<Option<String>>,
}

impl Observer for StopEdgeAfter {
    fn segment(&self, log: &SegmentLog) {
        let Some(pathway) = log.pathway.as_ref().filter(|_| log.index == self.index) else {
            return;
        };
        if let Some(stop) = self.stops.lock().unwrap().remove(pathway) {
            stop.send(()).unwrap();
            *self.stopped.lock().unwrap() = Some(pathway.clone());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_edge_in_use_fails_over_without_a_stall() {
    // The origin sees a stopped edge too and steers players away from it, at their next
    // steering request: a TTL longer than the downloads leaves the move to the failover.
    let cdn = cdn(&["edge-a", "edge-b"], Duration::from_secs(10)).await;
    let url = format!("http://{}/vod/sample/manifest.mpd", cdn.steering);
    let mut config = SessionConfig::new(url.parse().unwrap());
    // A 4 Mbit/s link: the session is still downloading when its edge stops.
    config.link = LinkModel {
        rate: Some(Rate::Constant(4e6)),
        latency_s: 0.0,
    };
    let observer = StopEdgeAfter {
        index: 1,
        stops: Mutex::new(cdn.stops),
        stopped: Mutex::new(None),
    };
    let r = play(&config, &observer).await;
    assert_eq!((r.end, r.error.as_deref()), (End::Complete, None), "{r:#?}");
    let stopped = observer
        .stopped
        .lock()
        .unwrap()
        .clone()
        .expect("an edge stopped");
    // The stop is not instantaneous: a request already on its way over a kept-alive
    // connection may still be answered. From the first segment that came over another
    // edge on, none came over the stopped one.
    let used = pathways(&r);
    let moved = used.iter().position(|p| *p != stopped);
    assert!(
        moved.is_some_and(|at| at >= 2 && used[at..].iter().all(|p| *p != stopped)),
        "{stopped} stopped after segment 1: {used:?}"
    );
    let s = &r.summary;
    assert!(s.counters.failovers >= 1, "{:#?}", s.counters);
    assert!(
        r.segments.iter().all(|l| l.retries == 0),
        "{:#?}",
        r.segments
    );
    assert!(s.max_stall_s < 2.0, "{s:#?}");
}

#[derive(Debug)]
struct Quiet;

impl Progress for Quiet {
    fn update(&self, _: &Sample, _: usize, _: usize) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_run_spreads_over_the_edges() {
    const SESSIONS: usize = 20;
    let names = ["edge-a", "edge-b", "edge-c"];
    let cdn = cdn(&names, TTL).await;
    let url = format!("http://{}/vod/sample/master.m3u8", cdn.steering);
    let config = LoadConfig {
        session: SessionConfig::new(url.parse().unwrap()),
        sessions: SESSIONS,
        // The 12 s sample plays out in about 13 s.
        duration_s: 16.0,
        ramp_s: 2.0,
        network: None,
        seed: 5,
        shard: None,
    };
    let started = Instant::now();
    let report = player::load::run(&config, &CancellationToken::new(), &Quiet)
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "{:?}",
        started.elapsed()
    );
    let a = &report.aggregate;
    assert_eq!(
        (a.sessions, a.started, a.failed),
        (SESSIONS, SESSIONS, 0),
        "{a:#?}"
    );
    assert!(
        report.records.iter().all(|r| r.end == Some(End::Complete)),
        "{:#?}",
        report.records
    );
    for name in names {
        let bytes = a.counters.pathways.get(name).map_or(0, |p| p.bytes);
        assert!(bytes > 0, "nothing over {name}: {:#?}", a.counters.pathways);
    }
    assert_eq!(
        (a.sessions_failed_over, a.counters.failovers),
        (0, 0),
        "{a:#?}"
    );
    assert!(a.counters.steering_fetches >= SESSIONS as u64, "{a:#?}");
    assert!(a.max_stall_s < 2.0, "{a:#?}");
    drop(cdn);
}
