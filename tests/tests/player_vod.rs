//! `player` sessions against a real origin (and a real edge in front of it) on loopback,
//! playing a small sample built once per test run: HLS and DASH, QoE sanity, the log,
//! CMCD and the cache hit ratio seen through `Cache-Status`; and the origin's live
//! channel looping the same sample.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use player::abr::AbrKind;
use player::session::{self, End, NoObserver, SessionConfig, SessionReport};
use rivulet_tests::{start_edge, start_live_origin, start_origin};
use tokio_util::sync::CancellationToken;

fn library() -> &'static std::path::Path {
    rivulet_tests::player_library(std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))).unwrap()
}

async fn play(config: &SessionConfig) -> SessionReport {
    let client = session::http_client(6).unwrap();
    let stop = CancellationToken::new();
    let run = session::run(&client, config, &NoObserver, &stop);
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("a 12 s sample plays in well under a minute")
        .unwrap()
}

fn config(addr: SocketAddr, manifest: &str) -> SessionConfig {
    let url = format!("http://{addr}/vod/sample/{manifest}")
        .parse()
        .unwrap();
    let mut c = SessionConfig::new(url);
    c.duration_s = Some(40.0);
    c
}

/// What every clean loopback session must show.
fn assert_sane(r: &SessionReport) {
    let s = &r.summary;
    assert_eq!(r.end, End::Complete, "{r:#?}");
    assert_eq!(r.bitrates_bps.len(), 3);
    assert_eq!(s.rebuffer_count, 0, "{s:#?}");
    assert!(s.startup_delay_s.unwrap() < 2.0, "{s:#?}");
    assert!((s.played_s - 12.0).abs() < 1e-3, "{s:#?}");
    assert_eq!(
        s.top_quality,
        Some(2),
        "the top rendition on an unthrottled link"
    );
    assert!(s.counters.errors.is_empty(), "{s:#?}");
    // The log is complete: every segment once, in order, with its measurements.
    assert_eq!(r.segments.len(), 6);
    for (k, seg) in r.segments.iter().enumerate() {
        assert_eq!(seg.index, k);
        assert_eq!(seg.number, k as u64 + 1);
        assert!(seg.bytes > 1000, "{seg:?}");
        assert!(
            seg.ttfb_ms > 0.0 && seg.ttfb_ms <= seg.download_ms,
            "{seg:?}"
        );
        assert!(seg.throughput_bps > 1e6, "{seg:?}");
        assert!(seg.buffer_after_s > 0.0);
        assert_eq!(seg.stall_s, 0.0);
    }
    let media_bytes: u64 = r.segments.iter().map(|s| s.bytes).sum();
    assert!(
        s.counters.bytes > media_bytes,
        "manifests and init segments count too"
    );
    assert!(s.qoe_lin > 0.0);
}

#[tokio::test]
async fn plays_hls_from_the_origin() {
    let origin = start_origin(library()).await.unwrap();
    let mut c = config(origin, "master.m3u8");
    c.max_buffer_s = 6.0;
    let r = play(&c).await;
    assert_sane(&r);
    // Nothing is fetched beyond the buffer cap (6 s: three segments).
    for seg in &r.segments {
        assert!(seg.buffer_after_s <= 6.0 + 1e-3, "{seg:?}");
    }
    assert!(
        r.segments.iter().any(|s| s.buffer_before_s > 3.9),
        "the cap was reached"
    );
    assert_eq!(r.summary.cache_hit_ratio, None, "the origin is no cache");
}

#[tokio::test]
async fn plays_dash_from_the_origin_with_cmcd() {
    let origin = start_origin(library()).await.unwrap();
    let mut c = config(origin, "manifest.mpd");
    c.cmcd = true;
    c.abr = AbrKind::Bola;
    let r = play(&c).await;
    assert_sane(&r);
}

#[tokio::test]
async fn through_an_edge_the_second_viewer_hits_the_cache() {
    let origin = start_origin(library()).await.unwrap();
    let edge = start_edge(origin, "edge-test").await.unwrap();
    let mut c = config(edge, "master.m3u8");
    c.abr = AbrKind::Throughput;
    let first = play(&c).await;
    assert_sane(&first);
    assert!(
        first.summary.cache_hit_ratio.unwrap() < 0.5,
        "{:#?}",
        first.summary
    );
    // CMCD differs per session (sid) and is not part of the cache key.
    c.cmcd = true;
    let second = play(&c).await;
    assert_sane(&second);
    let hits = second.summary.cache_hit_ratio.unwrap();
    assert!(hits > 0.99, "{:#?}", second.summary);
    assert!(second.segments.iter().all(|s| {
        s.cache_status
            .as_deref()
            .is_some_and(|v| v.contains("edge-test; hit"))
    }));
}

#[tokio::test]
async fn plays_the_live_channel_at_the_live_edge_from_origin_and_edge() {
    let origin = start_live_origin(library(), &Default::default())
        .await
        .unwrap();
    let edge = start_edge(origin, "edge-live").await.unwrap();
    for (host, manifest) in [
        (origin, "master.m3u8"),
        (origin, "manifest.mpd"),
        (edge, "master.m3u8"),
        (edge, "manifest.mpd"),
    ] {
        let url = format!("http://{host}/live/live/{manifest}")
            .parse()
            .unwrap();
        let mut c = SessionConfig::new(url);
        c.duration_s = Some(20.0);
        let r = play(&c).await;
        let s = &r.summary;
        assert_eq!(
            (r.end, &r.error),
            (End::Deadline, &None),
            "{manifest}: {r:#?}"
        );
        assert!(s.startup_delay_s.unwrap() < 2.0, "{manifest}: {s:#?}");
        assert_eq!(s.rebuffer_count, 0, "{manifest}: {s:#?}");
        assert!(s.counters.errors.is_empty(), "{manifest}: {s:#?}");
        // Three segments behind live, then one per 2 s as they come out.
        assert!(
            (11..=15).contains(&r.segments.len()),
            "{manifest}: {:?}",
            r.segments
        );
        assert!(
            r.segments
                .windows(2)
                .all(|w| w[1].number == w[0].number + 1),
            "{manifest}: consecutive numbers"
        );
        assert!(
            r.segments.iter().all(|g| g.buffer_after_s < 8.5),
            "{manifest}: a live buffer stays near the live delay"
        );
        // Three segments of hold-back behind a segment that is only out once complete:
        // about 6–8 s behind live, steadily.
        let (mean, p95) = (
            s.live_latency_mean_s.unwrap(),
            s.live_latency_p95_s.unwrap(),
        );
        assert!(
            (4.0..10.0).contains(&mean),
            "{manifest}: {mean:.2} s behind live"
        );
        assert!(p95 < 11.0 && p95 >= mean, "{manifest}: p95 {p95:.2} s");
    }
}
