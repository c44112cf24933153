//! Live channels over real HTTP on a manual clock, moved by the test instead of waited
//! for: a segment is a short-lived 404 until the clock reaches its end, then immutable,
//! and a 404 again once it leaves the DVR window; playlists change, and so stop
//! revalidating, exactly when a segment completes; `/time` and the dates read the clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_rules::ManualClock;
use origin::live::DEFAULT_AVAILABILITY_START;

/// `seconds` after the channels' availability start.
fn after_start(seconds: f64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs_f64(DEFAULT_AVAILABILITY_START + seconds)
}

async fn origin(clock: &ManualClock) -> SocketAddr {
    let library = tokio::task::spawn_blocking(common::small_sample)
        .await
        .unwrap();
    let state = common::live_state(library, clock);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(origin::serve(
        listener,
        origin::router(state),
        std::future::pending(),
    ));
    addr
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response.headers()[name].to_str().unwrap()
}

#[tokio::test]
async fn segments_appear_and_expire_on_the_clock() {
    let clock = ManualClock::new(after_start(100.0));
    let host = origin(&clock).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let get = |n: u64| {
        client
            .get(format!("http://{host}/live/live/270p-300k/{n}.m4s"))
            .send()
    };

    // At 100 s, segment 50 (98–100 s) is complete, 51 is not.
    let not_yet = get(51).await.unwrap();
    assert_eq!(not_yet.status(), 404);
    assert_eq!(header(&not_yet, "cache-control"), "public, max-age=1");
    assert_eq!(not_yet.text().await.unwrap(), "segment not yet available\n");
    clock.advance(Duration::from_secs(2));
    let available = get(51).await.unwrap();
    assert_eq!(available.status(), 200);
    assert!(header(&available, "cache-control").contains("immutable"));
    assert_eq!(
        header(&available, "last-modified"),
        http_rules::date::format_http_date(after_start(102.0)),
        "dated when it became available"
    );

    // The DVR keeps 300 s: segment 50 is there at 400 s (latest 200), gone at 402 s.
    clock.set(after_start(400.0));
    assert_eq!(get(50).await.unwrap().status(), 200);
    clock.set(after_start(402.0));
    let expired = get(50).await.unwrap();
    assert_eq!(expired.status(), 404);
    assert_eq!(header(&expired, "cache-control"), "no-store");
    assert_eq!(
        expired.text().await.unwrap(),
        "segment left the DVR window\n"
    );
}

#[tokio::test]
async fn playlists_revalidate_until_a_segment_completes() {
    let clock = ManualClock::new(after_start(100.0));
    let host = origin(&clock).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    for path in ["270p-300k/index.m3u8", "manifest.mpd"] {
        clock.set(after_start(100.0));
        let url = format!("http://{host}/live/live/{path}");
        let first = client.get(&url).send().await.unwrap();
        assert_eq!(first.status(), 200, "{path}");
        assert_eq!(header(&first, "cache-control"), "public, max-age=1");
        assert_eq!(
            header(&first, "last-modified"),
            http_rules::date::format_http_date(after_start(100.0)),
            "{path}: dated at the newest segment's completion"
        );
        let etag = header(&first, "etag").to_owned();
        let revalidate = || client.get(&url).header("if-none-match", &etag).send();
        clock.set(after_start(101.999));
        assert_eq!(revalidate().await.unwrap().status(), 304, "{path}");
        clock.set(after_start(102.0));
        let changed = revalidate().await.unwrap();
        assert_eq!(changed.status(), 200, "{path}: a segment completed");
        assert_ne!(header(&changed, "etag"), etag, "{path}");
    }
    clock.set(after_start(61.25));
    let time = client
        .get(format!("http://{host}/time"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(time, "2026-01-01T00:01:01.250Z");
}
