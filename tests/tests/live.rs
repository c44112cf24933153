//! Live channels end to end: the origin's sliding-window playlists and dynamic MPD advance
//! on the clock (a manual one: the test moves it) and revalidate; segments continue the media timeline across the loop of
//! the asset; ffmpeg reads the channel; and an edge in front of the origin collapses a
//! crowd of polling clients into about one manifest request per TTL and exactly one
//! request per segment.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use http_rules::{Clock, ManualClock};
use media::cmaf::inspect_segment;
use media::{PresentationKind, dash, hls};
use origin::live::LiveConfig;
use rivulet_tests::{
    ffmpeg_decode, metric_sum, sample_library, start_edge, start_live_origin, start_live_origin_on,
};

/// 8 s asset: a loop boundary every 4 segments, so any 30 s window crosses several.
fn library() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("live-library");
    sample_library(&dir, 8.0).unwrap()
}

async fn origin() -> SocketAddr {
    start_live_origin(&library(), &LiveConfig::default())
        .await
        .unwrap()
}

async fn get(client: &reqwest::Client, url: &str) -> reqwest::Response {
    client.get(url).send().await.unwrap()
}

/// The origin's metrics page.
async fn origin_metrics(host: SocketAddr) -> String {
    get(&reqwest::Client::new(), &format!("http://{host}/metrics"))
        .await
        .text()
        .await
        .unwrap()
}

/// Origin requests of route `kind` between two metrics pages.
fn requests_since(before: &str, after: &str, kind: &str) -> f64 {
    let label = format!("kind=\"{kind}\"");
    metric_sum(after, "origin_http_requests_total", &[&label])
        - metric_sum(before, "origin_http_requests_total", &[&label])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playlists_and_mpd_advance_and_revalidate() {
    let clock = ManualClock::starting_now();
    let host = start_live_origin_on(&library(), &LiveConfig::default(), clock.shared())
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://{host}/live/live/270p-300k/index.m3u8");
    let first = get(&client, &url).await;
    assert_eq!(first.headers()["cache-control"], "public, max-age=1");
    let etag = first.headers()["etag"].clone();
    let text = first.text().await.unwrap();
    let before = hls::parse_media_playlist(&text, &url).unwrap();
    assert!(!before.ended, "a live playlist has no ENDLIST");
    assert!(before.first_program_date_time.is_some());
    // 30 s window of 2 s segments: at least 3 target durations.
    assert_eq!(before.segments.len(), 15);
    // Same window, same ETag: a conditional reload is a 304, until a segment completes.
    let revalidate = || client.get(&url).header("if-none-match", &etag).send();
    assert_eq!(revalidate().await.unwrap().status(), 304);
    clock.advance(Duration::from_millis(2_200));
    assert_eq!(
        revalidate().await.unwrap().status(),
        200,
        "a segment completed"
    );
    let after =
        hls::parse_media_playlist(&get(&client, &url).await.text().await.unwrap(), &url).unwrap();
    assert!(
        after.segments[0].number > before.segments[0].number,
        "the window slides"
    );
    assert_eq!(after.segments.len(), 15);

    let mpd_url = format!("http://{host}/live/live/manifest.mpd");
    let now = clock
        .now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let mpd = dash::parse_mpd(
        &get(&client, &mpd_url).await.text().await.unwrap(),
        &mpd_url,
        now,
    )
    .unwrap();
    assert!(matches!(
        mpd.kind,
        PresentationKind::Live {
            availability_start: Some(_),
            ..
        }
    ));
    let video = mpd.video().next().unwrap();
    assert_eq!(
        video.segments.last().unwrap().number,
        after.segments.last().unwrap().number
    );
    let time = get(&client, &format!("http://{host}/time"))
        .await
        .text()
        .await
        .unwrap();
    assert!(chrono_like(&time), "ISO 8601 time: {time}");
    let millis = clock.now().duration_since(UNIX_EPOCH).unwrap().as_millis() % 1000;
    assert!(
        time.ends_with(&format!(".{millis:03}Z")),
        "/time reads the server's clock: {time}"
    );
}

fn chrono_like(s: &str) -> bool {
    s.len() >= 20 && s.as_bytes()[4] == b'-' && s.contains('T') && s.ends_with('Z')
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_continue_the_timeline_across_the_loop() {
    let host = origin().await;
    let client = reqwest::Client::new();
    for rendition in ["720p-1850k", "audio"] {
        let url = format!("http://{host}/live/live/{rendition}/index.m3u8");
        let playlist =
            hls::parse_media_playlist(&get(&client, &url).await.text().await.unwrap(), &url)
                .unwrap();
        let mut previous: Option<(u64, u64)> = None;
        for segment in &playlist.segments {
            let response = get(&client, &segment.uri).await;
            assert_eq!(response.status(), 200, "{}", segment.uri);
            assert!(
                response.headers()["cache-control"]
                    .to_str()
                    .unwrap()
                    .contains("immutable")
            );
            let info = inspect_segment(&response.bytes().await.unwrap()).unwrap();
            assert_eq!(u64::from(info.sequence), segment.number % (1 << 32));
            assert!(info.first_sample_sync);
            if let Some((start, end)) = previous {
                assert!(
                    info.base_decode_time > start,
                    "{rendition} segment {}: time went backwards",
                    segment.number
                );
                // Video is exactly contiguous; audio may leave one AAC frame at a loop seam.
                let gap = info.base_decode_time - end;
                assert!(
                    gap <= 1024,
                    "{rendition} segment {}: gap of {gap} ticks",
                    segment.number
                );
            }
            previous = Some((info.base_decode_time, info.base_decode_time + info.duration));
        }
        assert!(
            playlist.segments.len() > 4,
            "the window spans a loop boundary"
        );
    }
    // A segment from the future is a short-lived 404.
    let url = format!("http://{host}/live/live/270p-300k/index.m3u8");
    let playlist =
        hls::parse_media_playlist(&get(&client, &url).await.text().await.unwrap(), &url).unwrap();
    let future = format!(
        "http://{host}/live/live/270p-300k/{}.m4s",
        playlist.segments.last().unwrap().number + 3
    );
    let response = get(&client, &future).await;
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["cache-control"], "public, max-age=1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_reads_the_live_hls_from_origin_and_edge() {
    let host = origin().await;
    let edge = start_edge(host, "edge-live").await.unwrap();
    for base in [host, edge] {
        for manifest in ["master.m3u8", "manifest.mpd"] {
            let url = format!("http://{base}/live/live/{manifest}");
            tokio::task::spawn_blocking(move || {
                ffmpeg_decode(&url, &["-t", "10"]).or_else(|e| {
                    // ffmpeg 5.1's dashdec, refreshing a dynamic MPD with a
                    // SegmentTimeline, resumes one segment early (it looks up the
                    // segment holding "current time - 1") and so hands the muxer
                    // timestamps it already had; it says so and goes on. Only that
                    // message is forgiven, and only for the MPD.
                    let (status, messages) = e.split_once('\n').unwrap_or((&e, ""));
                    let refresh_rewind = url.ends_with(".mpd")
                        && status.ends_with("exit status: 0")
                        && messages.lines().all(|l| {
                            l.trim().is_empty()
                                || l.contains("non monotonically increasing dts to muxer")
                        });
                    if refresh_rewind { Ok(()) } else { Err(e) }
                })
            })
            .await
            .unwrap()
            .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_collapses_200_live_clients() {
    let host = origin().await;
    let edge = start_edge(host, "edge-live").await.unwrap();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let before = origin_metrics(host).await;
    let started = std::time::Instant::now();
    let run_for = Duration::from_secs(6);
    // 200 clients, each reloading one rendition's playlist every second (a player's cadence
    // for 2 s segments) and fetching its newest segment, for a bounded time.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200u64 {
        let client = client.clone();
        let playlist_url = format!("http://{edge}/live/live/360p-750k/index.m3u8");
        tasks.spawn(async move {
            tokio::time::sleep(Duration::from_millis(i * 5)).await;
            let mut fetched = BTreeSet::new();
            while started.elapsed() < run_for {
                let text = client
                    .get(&playlist_url)
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                let playlist = hls::parse_media_playlist(&text, &playlist_url).unwrap();
                let newest = playlist.segments.last().unwrap();
                let response = client.get(&newest.uri).send().await.unwrap();
                assert_eq!(response.status(), 200);
                response.bytes().await.unwrap();
                fetched.insert(newest.number);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            fetched
        });
    }
    let mut segments = BTreeSet::new();
    while let Some(fetched) = tasks.join_next().await {
        segments.extend(fetched.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = origin_metrics(host).await;
    let delta = |kind: &str| requests_since(&before, &after, kind);
    let manifest_requests = delta("manifest");
    let segment_requests = delta("segment");
    // max-age=1: about one fetch or revalidation per second of the run, plus slack for
    // a refresh racing the window change.
    assert!(
        manifest_requests <= elapsed.ceil() + 3.0,
        "{manifest_requests} manifest requests in {elapsed:.1} s"
    );
    assert!(manifest_requests >= 1.0);
    assert_eq!(
        segment_requests,
        segments.len() as f64,
        "exactly one origin request per segment"
    );
}

#[derive(Debug)]
struct Quiet;

impl player::load::Progress for Quiet {
    fn update(&self, _: &player::load::report::Sample, _: usize, _: usize) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_live_players_through_one_edge() {
    let host = origin().await;
    let edge = start_edge(host, "edge-live").await.unwrap();
    let before = origin_metrics(host).await;
    let started = std::time::Instant::now();
    let url = format!("http://{edge}/live/live/master.m3u8")
        .parse()
        .unwrap();
    let config = player::load::LoadConfig {
        session: player::session::SessionConfig::new(url),
        sessions: 200,
        duration_s: 10.0,
        ramp_s: 2.0,
        network: None,
        seed: 1,
        shard: None,
    };
    let report = player::load::run(&config, &tokio_util::sync::CancellationToken::new(), &Quiet)
        .await
        .unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    let a = &report.aggregate;
    assert_eq!(
        (a.started, a.failed, a.failed_to_start),
        (200, 0, 0),
        "{a:#?}"
    );
    assert_eq!(a.rebuffer_ratio.as_ref().unwrap().p99, 0.0, "{a:#?}");
    let latency = a.live_latency_s.as_ref().unwrap();
    assert!(latency.p99 < 11.0, "{latency:?}");
    let after = origin_metrics(host).await;
    let delta = |kind: &str| requests_since(&before, &after, kind);
    // Five manifests (multivariant, three video and one audio playlist), each kept one
    // second by the edge: about one origin request per manifest per second, however many
    // players reload them.
    let manifests = delta("manifest");
    assert!(
        manifests <= 5.0 * (elapsed.ceil() + 2.0),
        "{manifests} manifest requests in {elapsed:.1} s"
    );
    // Segments: at most one origin request per (rendition, segment) that exists in the
    // time the run covered, 4 renditions × (run + hold-back) / 2 s.
    let segments = delta("segment");
    let possible = 4.0 * ((elapsed + 8.0) / 2.0).ceil();
    assert!(
        segments <= possible,
        "{segments} segment requests, at most {possible} segments"
    );
    assert!(a.cache_hit_ratio.unwrap() > 0.9, "{a:#?}");
}
