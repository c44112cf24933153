//! Several edges as one CDN: peers sharing the cache by rendezvous hashing, tiers,
//! loop prevention, health checks and upstream failover. Real servers and real HTTP
//! on 127.0.0.1; every wait is bounded. Time is a manual clock; health checks run
//! round by round when a test says so, except where the periodic checker itself is
//! the subject.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{
    Edge, Gate, Route, Upstream, cache_status, client, config, eventually, listeners, metric,
    status,
};
use edge::hrw;
use http_rules::ManualClock;
use http_rules::cli::NamedUrl;
use tokio::net::TcpListener;

const LIMIT: Duration = Duration::from_secs(20);
const NAMES: [&str; 3] = ["edge-a", "edge-b", "edge-c"];

async fn get(url: &str) -> reqwest::Response {
    client().get(url).send().await.unwrap()
}

fn peer_list(listeners: &[TcpListener]) -> Vec<NamedUrl> {
    NAMES
        .iter()
        .zip(listeners)
        .map(|(name, l)| NamedUrl {
            name: (*name).into(),
            url: format!("http://{}/", l.local_addr().unwrap())
                .parse()
                .unwrap(),
        })
        .collect()
}

/// Three peered edges in front of `up`, each with the same peer list, on one clock.
async fn three_peers(up: &Upstream, tweak: impl Fn(&mut edge::Config)) -> Vec<Edge> {
    let ls = listeners(3).await;
    let peers = peer_list(&ls);
    let clock = ManualClock::starting_now();
    ls.into_iter()
        .zip(NAMES)
        .map(|(l, name)| {
            let mut cfg = config(up.url(), name);
            cfg.peers = peers.clone();
            tweak(&mut cfg);
            Edge::serve(l, cfg, &clock)
        })
        .collect()
}

fn owner(key: &str) -> &'static str {
    hrw::owner(key, &NAMES).unwrap()
}

/// Keys under `prefix` owned by `name`.
fn keys_owned_by(name: &str, prefix: &str, n: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .filter(|k| owner(k) == name)
        .take(n)
        .collect()
}

fn peer_json<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no peer {name} in {status}"))
}

#[tokio::test]
async fn peers_fetch_each_key_from_the_upstream_once() {
    let up = Upstream::start().await;
    let keys: Vec<String> = (0..30).map(|i| format!("/k/{i}")).collect();
    for k in &keys {
        up.set(k, Route::ok("max-age=60", format!("body of {k}")));
    }
    let edges = three_peers(&up, |_| {}).await;
    // Each key visits every edge once, a different one each round.
    for round in 0..3 {
        for (i, k) in keys.iter().enumerate() {
            let at = (i + round) % 3;
            let r = get(&edges[at].url(&format!("{k}?CMCD=sid%3D%22{round}%22"))).await;
            assert_eq!(r.status(), 200, "{k}");
            let cs = cache_status(&r);
            assert_eq!(r.text().await.unwrap(), format!("body of {k}"));
            if round > 0 {
                continue;
            }
            let (me, own) = (NAMES[at], owner(k));
            let miss = "fwd=miss; fwd-status=200; stored";
            if me == own {
                assert_eq!(cs, format!("{me}; {miss}"), "{k}");
            } else {
                // The owner's member first (the origin side), then ours (RFC 9211 §2).
                assert_eq!(cs, format!("{own}; {miss}, {me}; {miss}"), "{k}");
            }
        }
    }
    for k in &keys {
        assert_eq!(up.count(k), 1, "{k}: the upstream saw it more than once");
        let seen = &up.seen_for(k)[0];
        assert!(
            seen.headers.get("edge-peer").is_none(),
            "Edge-Peer is per hop"
        );
        let cdn_loop: Vec<&str> = seen
            .headers
            .get_all("cdn-loop")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(
            cdn_loop.last(),
            Some(&owner(k)),
            "{k}: only the owner goes upstream"
        );
    }
    let mut from_peers = 0.0;
    for e in &edges {
        let base = e.url("/");
        from_peers += metric(&base, "edge_bytes_from_peers_total").await;
        assert_eq!(metric(&base, "edge_peer_fallbacks_total").await, 0.0);
        let s = status(&base).await;
        assert_eq!(s["healthy"], true, "{s}");
        assert_eq!(s["peers"].as_array().unwrap().len(), 3);
    }
    assert!(from_peers > 0.0);
}

#[tokio::test]
async fn a_request_from_a_peer_is_never_forwarded_to_another_peer() {
    let up = Upstream::start().await;
    let edges = three_peers(&up, |_| {}).await;
    let key = &keys_owned_by("edge-b", "/owned-by-b/", 1)[0];
    up.set(key, Route::ok("max-age=60", "direct"));
    let r = client()
        .get(edges[0].url(key))
        .header("edge-peer", "edge-c")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        cache_status(&r),
        "edge-a; fwd=miss; fwd-status=200; stored",
        "no second hop"
    );
    assert_eq!(up.count(key), 1);
    let base = edges[0].url("/");
    assert_eq!(
        metric(&base, "edge_peer_requests_total{peer=\"edge-b\"}").await,
        0.0
    );
    // Edge-b never saw it.
    let b = edges[1].url("/");
    assert_eq!(metric(&b, "edge_requests_total{cache=\"miss\"}").await, 0.0);
}

#[tokio::test]
async fn a_dead_peer_is_skipped_at_once_then_marked_and_comes_back() {
    let up = Upstream::start().await;
    let keys = keys_owned_by("edge-c", "/c/", 6);
    for k in &keys {
        up.set(k, Route::ok("max-age=60", "still served"));
    }
    // Checks run only when this test says (and once at start-up): their rounds, not a
    // race with an interval, decide when edge-c turns unhealthy and healthy again.
    let mut edges = three_peers(&up, |c| {
        c.health_interval = Some(Duration::from_secs(3600));
    })
    .await;
    let c = edges.pop().unwrap();
    let (c_addr, c_cfg, clock) = (c.addr, c.state.cfg.clone(), c.clock.clone());
    c.stop().await;
    let a = edges[0].url("/");
    // At most one failed check (the start-up round) precedes the first request, and
    // `fall` is 2: the first request still asks edge-c and falls back at once.
    for k in &keys {
        let r = get(&edges[0].url(k)).await;
        assert_eq!(r.status(), 200, "{k}: {}", cache_status(&r));
        assert_eq!(r.text().await.unwrap(), "still served");
    }
    assert!(metric(&a, "edge_peer_fallbacks_total").await >= 1.0);
    let fall = edges[0].state.membership().health.fall;
    for _ in 0..fall {
        edges[0].state.check_health_now().await;
    }
    let s = status(&a).await;
    assert_eq!(peer_json(&s, "edge-c")["healthy"], false, "{s}");
    assert_eq!(metric(&a, "edge_peer_healthy{peer=\"edge-c\"}").await, 0.0);
    let s = status(&a).await;
    let pc = peer_json(&s, "edge-c");
    assert!(pc["consecutive_failures"].as_u64().unwrap() >= 2, "{s}");
    assert!(pc["last_error"].is_string(), "{s}");
    assert_eq!(s["healthy"], true, "the upstream is still there");

    // Back on the same port: healthy again after `rise` good checks, not before.
    let listener = TcpListener::bind(c_addr).await.unwrap();
    let c = Edge::serve(listener, c_cfg, &clock);
    let rise = edges[0].state.membership().health.rise;
    for round in 1..=rise {
        edges[0].state.check_health_now().await;
        let s = status(&a).await;
        let healthy = peer_json(&s, "edge-c")["healthy"] == true;
        assert_eq!(
            healthy,
            round == rise,
            "after {round} of {rise} good checks: {s}"
        );
    }
    assert_eq!(metric(&a, "edge_peer_healthy{peer=\"edge-c\"}").await, 1.0);
    let asked = metric(&a, "edge_peer_requests_total{peer=\"edge-c\"}").await;
    let fresh = &keys_owned_by("edge-c", "/c-again/", 1)[0];
    up.set(fresh, Route::ok("max-age=60", "via c"));
    let r = get(&edges[0].url(fresh)).await;
    assert!(
        cache_status(&r).starts_with("edge-c; fwd=miss"),
        "{}",
        cache_status(&r)
    );
    assert_eq!(
        metric(&a, "edge_peer_requests_total{peer=\"edge-c\"}").await,
        asked + 1.0
    );
    c.stop().await;
}

#[tokio::test]
async fn upstream_list_fails_over_then_stale_if_error_applies() {
    let dead = Upstream::start().await;
    let dead_url = dead.url();
    dead.stop();
    let live = Upstream::start().await;
    live.set(
        "/f",
        Route::ok("max-age=1, stale-if-error=30", "from the backup"),
    );
    let edge = Edge::start(dead_url.clone(), |c| c.origin.push(live.url())).await;
    let r = get(&edge.url("/f")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "from the backup");
    assert_eq!(live.count("/f"), 1);
    let base = edge.url("/");
    let dead_series = format!("edge_upstream_healthy{{upstream=\"{dead_url}\"}}");
    eventually(LIMIT, "the dead upstream marked unhealthy", || async {
        metric(&base, &dead_series).await == 0.0
    })
    .await;
    let s = status(&base).await;
    assert_eq!(s["upstreams"][0]["url"], dead_url.as_str());
    assert_eq!(s["upstreams"][0]["healthy"], false, "{s}");
    assert_eq!(s["upstreams"][1]["healthy"], true, "{s}");
    assert_eq!(s["healthy"], true);

    // Every upstream gone: the stale copy is served (RFC 5861 §4).
    live.stop();
    edge.clock.advance(Duration::from_secs(2));
    let r = get(&edge.url("/f")).await;
    assert_eq!(r.status(), 200);
    assert!(
        cache_status(&r).contains("detail=stale-if-error"),
        "{}",
        cache_status(&r)
    );
    eventually(LIMIT, "status unhealthy with no upstream", || async {
        status(&base).await["healthy"] == false
    })
    .await;
}

#[tokio::test]
async fn tiers_show_one_cache_status_member_each_in_order() {
    let up = Upstream::start().await;
    up.set("/t", Route::ok("max-age=60", "tiered"));
    let parent = Edge::start(up.url(), |c| c.name = Some("edge-b".into())).await;
    let child = Edge::start(parent.base(), |c| c.name = Some("edge-a".into())).await;
    let r = get(&child.url("/t")).await;
    assert_eq!(
        cache_status(&r),
        "edge-b; fwd=miss; fwd-status=200; stored, edge-a; fwd=miss; fwd-status=200; stored"
    );
    assert_eq!(r.text().await.unwrap(), "tiered");
    let r = get(&child.url("/t")).await;
    let cs = cache_status(&r);
    assert!(
        cs.starts_with("edge-b; fwd=miss; fwd-status=200; stored, edge-a; hit; ttl="),
        "{cs}"
    );
    assert_eq!(up.count("/t"), 1);
    let seen = up.seen_for("/t");
    let cdn_loop: Vec<&str> = seen[0]
        .headers
        .get_all("cdn-loop")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(cdn_loop, ["edge-a", "edge-b"]);
}

#[tokio::test]
async fn a_tier_cycle_gets_508() {
    let ls = listeners(2).await;
    let url = |l: &TcpListener| -> reqwest::Url {
        format!("http://{}/", l.local_addr().unwrap())
            .parse()
            .unwrap()
    };
    let (x_url, y_url) = (url(&ls[0]), url(&ls[1]));
    let mut ls = ls.into_iter();
    let clock = ManualClock::starting_now();
    let x = Edge::serve(ls.next().unwrap(), config(y_url, "edge-x"), &clock);
    let _y = Edge::serve(ls.next().unwrap(), config(x_url, "edge-y"), &clock);
    let r = get(&x.url("/cycle")).await;
    assert_eq!(r.status(), 508);
    let text = r.text().await.unwrap();
    assert!(text.starts_with("request loop:"), "{text}");
    assert_eq!(text.lines().count(), 1);
    let r = client()
        .get(x.url("/direct"))
        .header("cdn-loop", "some-cdn, edge-x; v=2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 508);
    assert!(metric(&x.url("/"), "edge_loop_rejections_total").await >= 1.0);
}

#[tokio::test]
async fn status_reports_load() {
    let up = Upstream::start().await;
    let mut slow = Route::ok("no-store", "slow body");
    // Held until the status shows the request in flight.
    let answer = Gate::closed();
    slow.hold_head = Some(answer.clone());
    up.set("/slow", slow);
    up.set("/fast", Route::ok("max-age=60", "x".repeat(1000)));
    let edge = Edge::start(up.url(), |_| {}).await;
    let base = edge.url("/");
    for _ in 0..5 {
        get(&edge.url("/fast")).await.bytes().await.unwrap();
    }
    let pending = tokio::spawn(client().get(edge.url("/slow")).send());
    eventually(LIMIT, "one request in flight", || async {
        status(&base).await["load"]["in_flight"] == 1
    })
    .await;
    answer.open();
    pending.await.unwrap().unwrap().bytes().await.unwrap();
    let s = status(&base).await;
    assert_eq!(s["name"], "e1");
    assert_eq!(s["healthy"], true);
    assert_eq!(s["draining"], false);
    assert!(s["uptime_s"].as_f64().unwrap() > 0.0);
    let load = &s["load"];
    assert_eq!(load["in_flight"], 0, "{s}");
    assert!(load["requests_per_s"].as_f64().unwrap() > 0.0, "{s}");
    assert!(
        load["bytes_out_per_s"].as_f64().unwrap() >= 5000.0 / s["uptime_s"].as_f64().unwrap(),
        "{s}"
    );
    assert_eq!(load["cache_entries"], 1, "{s}");
    assert!(load["cache_bytes"].as_u64().unwrap() > 1000, "{s}");
    assert_eq!(s["peers"].as_array().unwrap().len(), 0);
    let up0 = &s["upstreams"][0];
    for field in ["consecutive_successes", "consecutive_failures"] {
        assert!(up0[field].is_u64(), "{field} in {s}");
    }
    assert!(up0["last_check_ms"].is_f64(), "{s}");
    assert_eq!(up0["url"], up.url().as_str());
    assert_eq!(up0["healthy"], true);
}
