//! Integration tests: a real edge in front of the programmable upstream, real HTTP on
//! 127.0.0.1. Every wait is bounded. The edge's clock is a manual one: a test moves time
//! for freshness and stale windows, and orders events with the upstream's gates; the
//! only real delays left are where real network timeouts are the subject (each says so).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Edge, Gate, Route, Upstream, body_of, cache_status, client, eventually};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{sleep, timeout};

const LIMIT: Duration = Duration::from_secs(20);

async fn get(url: &str) -> reqwest::Response {
    client().get(url).send().await.unwrap()
}

#[tokio::test]
async fn miss_then_hit_with_age_via_and_cache_status() {
    let up = Upstream::start().await;
    up.set(
        "/a",
        Route::ok("max-age=60", "hello").header("etag", "\"v1\""),
    );
    let edge = Edge::start(up.url(), |_| {}).await;

    let r = get(&edge.url("/a")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(cache_status(&r), "e1; fwd=miss; fwd-status=200; stored");
    assert_eq!(r.headers()["via"], "1.1 e1");
    assert_eq!(r.text().await.unwrap(), "hello");

    let r = get(&edge.url("/a")).await;
    assert!(
        cache_status(&r).starts_with("e1; hit; ttl="),
        "{}",
        cache_status(&r)
    );
    assert!(r.headers().contains_key("age"));
    assert!(r.headers().contains_key("date"));
    assert_eq!(r.headers()["content-length"], "5");
    assert_eq!(r.text().await.unwrap(), "hello");
    assert_eq!(up.count("/a"), 1);

    // HEAD on a hit: headers, no body.
    let r = client().head(edge.url("/a")).send().await.unwrap();
    assert_eq!(r.headers()["content-length"], "5");
    assert!(r.bytes().await.unwrap().is_empty());
    assert_eq!(up.count("/a"), 1);
}

#[tokio::test]
async fn cmcd_is_not_part_of_the_key_but_is_forwarded() {
    let up = Upstream::start().await;
    up.set("/seg.m4s", Route::ok("max-age=60", "seg"));
    let edge = Edge::start(up.url(), |_| {}).await;
    get(&edge.url("/seg.m4s?x=1&CMCD=br%3D300")).await;
    let r = get(&edge.url("/seg.m4s?x=1&CMCD=br%3D750%2Cbl%3D2000")).await;
    assert!(cache_status(&r).contains("hit"));
    let r = get(&edge.url("/seg.m4s?x=2")).await;
    assert!(cache_status(&r).contains("fwd=miss"));
    let seen = up.seen_for("/seg.m4s");
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].path_and_query, "/seg.m4s?x=1&CMCD=br%3D300");
    // Forwarding headers name the client and this hop.
    assert_eq!(seen[0].headers["x-forwarded-for"], "127.0.0.1");
    assert!(
        seen[0].headers["forwarded"]
            .to_str()
            .unwrap()
            .starts_with("for=127.0.0.1;by=\"e1\"")
    );
    assert_eq!(seen[0].headers["via"], "1.1 e1");
}

#[tokio::test]
async fn uncacheable_responses_are_not_stored() {
    let up = Upstream::start().await;
    up.set("/nostore", Route::ok("no-store, max-age=60", "x"));
    up.set("/private", Route::ok("private, max-age=60", "x"));
    up.set(
        "/varystar",
        Route::ok("max-age=60", "x").header("vary", "*"),
    );
    up.set("/nothing", Route::ok("", "x"));
    up.set("/auth", Route::ok("max-age=60", "x"));
    up.set("/authpublic", Route::ok("public, max-age=60", "x"));
    let edge = Edge::start(up.url(), |_| {}).await;
    for path in ["/nostore", "/private", "/varystar", "/nothing"] {
        for _ in 0..2 {
            let r = get(&edge.url(path)).await;
            assert_eq!(cache_status(&r), "e1; fwd=miss; fwd-status=200", "{path}");
            assert_eq!(r.text().await.unwrap(), "x");
        }
        assert_eq!(up.count(path), 2, "{path}");
    }
    for _ in 0..2 {
        client()
            .get(edge.url("/auth"))
            .header("authorization", "Bearer u")
            .send()
            .await
            .unwrap();
        client()
            .get(edge.url("/authpublic"))
            .header("authorization", "Bearer u")
            .send()
            .await
            .unwrap();
    }
    assert_eq!(up.count("/auth"), 2);
    up.set("/reqnostore", Route::ok("max-age=60", "x"));
    for _ in 0..2 {
        client()
            .get(edge.url("/reqnostore"))
            .header("cache-control", "no-store")
            .send()
            .await
            .unwrap();
    }
    assert_eq!(up.count("/reqnostore"), 2);
    assert_eq!(up.count("/authpublic"), 1);
}

#[tokio::test]
async fn vary_keys_variants() {
    let up = Upstream::start().await;
    up.set(
        "/v",
        Route::ok("max-age=60", "variant").header("vary", "accept-language"),
    );
    let edge = Edge::start(up.url(), |_| {}).await;
    let c = client();
    let fetch = |lang: &'static str| c.get(edge.url("/v")).header("accept-language", lang).send();
    assert!(cache_status(&fetch("en").await.unwrap()).contains("fwd=miss"));
    assert!(cache_status(&fetch("en").await.unwrap()).contains("hit"));
    assert!(cache_status(&fetch("fr").await.unwrap()).contains("fwd=miss"));
    assert!(cache_status(&fetch("fr").await.unwrap()).contains("hit"));
    assert_eq!(up.count("/v"), 2);
}

#[tokio::test]
async fn client_conditionals_and_ranges_on_hits() {
    let up = Upstream::start().await;
    let body = body_of(1000);
    up.set(
        "/obj",
        Route::ok("max-age=60", body.clone())
            .header("etag", "\"e1\"")
            .header("last-modified", "Sun, 06 Nov 1994 08:49:37 GMT"),
    );
    let edge = Edge::start(up.url(), |_| {}).await;
    let c = client();
    get(&edge.url("/obj")).await.bytes().await.unwrap();

    let r = c
        .get(edge.url("/obj"))
        .header("if-none-match", "\"e1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["etag"], "\"e1\"");
    assert!(cache_status(&r).contains("hit"));
    let r = c
        .get(edge.url("/obj"))
        .header("if-modified-since", "Sun, 06 Nov 1994 08:49:37 GMT")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = c
        .get(edge.url("/obj"))
        .header("if-none-match", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(edge.url("/obj"))
        .header("if-match", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);

    let r = c
        .get(edge.url("/obj"))
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 10-19/1000");
    assert_eq!(r.bytes().await.unwrap(), body.slice(10..20));
    let r = c
        .get(edge.url("/obj"))
        .header("range", "bytes=-10")
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap(), body.slice(990..));
    let r = c
        .get(edge.url("/obj"))
        .header("range", "bytes=5000-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["content-range"], "bytes */1000");
    let r = c
        .get(edge.url("/obj"))
        .header("range", "bytes=99999999999999999999999-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "malformed (reversed) range is ignored");
    let r = c
        .get(edge.url("/obj"))
        .header("range", "bytes=99999999999999999999999-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    // If-Range with a different validator: the whole object.
    let r = c
        .get(edge.url("/obj"))
        .header("range", "bytes=0-1")
        .header("if-range", "\"old\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), 1000);
    assert_eq!(up.count("/obj"), 1);
}

#[tokio::test]
async fn client_preconditions_follow_the_shared_rules() {
    let up = Upstream::start().await;
    // An ETag holding a comma, two Vary lines, two Cache-Control lines.
    up.set(
        "/comma",
        Route::ok("max-age=60", body_of(100))
            .header("cache-control", "stale-if-error=30")
            .header("etag", "\"c,d\"")
            .header("vary", "accept-language")
            .header("vary", "x-variant"),
    );
    // No validator at all.
    up.set("/bare", Route::ok("max-age=60", body_of(100)));
    let edge = Edge::start(up.url(), |_| {}).await;
    let c = client();
    for path in ["/comma", "/bare"] {
        get(&edge.url(path)).await.bytes().await.unwrap();
    }
    let ask = |path: &str, fields: &[(&str, &str)], head: bool| {
        let mut rb = if head {
            c.head(edge.url(path))
        } else {
            c.get(edge.url(path))
        };
        for (name, value) in fields {
            rb = rb.header(*name, *value);
        }
        rb.send()
    };
    /// Path, request fields, HEAD (else GET), status.
    type Row<'a> = (&'a str, &'a [(&'a str, &'a str)], bool, u16);
    // Each row was once answered otherwise by the edge.
    let rows: [Row<'_>; 13] = [
        // RFC 9110 §5.3: every If-None-Match line counts (was 200).
        (
            "/comma",
            &[("if-none-match", "\"x\""), ("if-none-match", "\"c,d\"")],
            false,
            304,
        ),
        // §8.8.3: the comma belongs to the tag (was 200, and 412 for If-Match).
        ("/comma", &[("if-none-match", "\"c,d\"")], false, 304),
        ("/comma", &[("if-match", "\"c,d\"")], false, 200),
        // §13.1.4: If-Unmodified-Since is ignored without Last-Modified (was 412).
        (
            "/bare",
            &[("if-unmodified-since", "Sun, 06 Nov 1994 08:49:37 GMT")],
            false,
            200,
        ),
        // §13.1.1, §13.1.2: `*` matches any current representation (were 412 and 200).
        ("/bare", &[("if-match", "*")], false, 200),
        ("/bare", &[("if-none-match", "*")], false, 304),
        // §14.2: Range is for GET only (HEAD was 206), and several ranges get the whole.
        ("/bare", &[("range", "bytes=0-9")], true, 200),
        ("/bare", &[("range", "bytes=0-9,20-29")], false, 200),
        // Issue 14 defect 9 (pinned, not a past bug of the edge's): overlapping or
        // unsatisfiable, several ranges get one answer from every Rivulet server
        // (http_rules::range): the whole 200.
        ("/bare", &[("range", "bytes=0-9,5-15")], false, 200),
        ("/bare", &[("range", "bytes=0-9,0-9")], false, 200),
        ("/bare", &[("range", "bytes=0-9,100000-100009")], false, 200),
        (
            "/bare",
            &[("range", "bytes=100000-100009,200000-")],
            false,
            200,
        ),
        // §5.6.1: an empty list element does not make several ranges (was 200).
        ("/bare", &[("range", "bytes=0-9,")], false, 206),
    ];
    for (path, fields, head, want) in rows {
        let r = ask(path, fields, head).await.unwrap();
        assert_eq!(r.status(), want, "{path} {fields:?} head={head}");
    }
    // §15.4.5: the 304 carries every line of its fields, and only those.
    let r = ask("/comma", &[("if-none-match", "\"c,d\"")], false)
        .await
        .unwrap();
    let lines = |name: &str| -> Vec<String> {
        r.headers()
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(lines("vary"), ["accept-language", "x-variant"]);
    assert_eq!(lines("cache-control"), ["max-age=60", "stale-if-error=30"]);
    assert_eq!(lines("etag"), ["\"c,d\""]);
    assert!(!r.headers().contains_key("content-type"));
    assert_eq!(up.count("/comma") + up.count("/bare"), 2);
}

#[tokio::test]
async fn age_and_ttl_follow_the_edge_clock() {
    let up = Upstream::start().await;
    up.set("/t", Route::ok("max-age=60", "timed"));
    let edge = Edge::start(up.url(), |_| {}).await;
    get(&edge.url("/t")).await.bytes().await.unwrap();
    for (advance, age, status) in [
        (0, 0, "e1; hit; ttl=60"),
        (5, 5, "e1; hit; ttl=55"),
        (54, 59, "e1; hit; ttl=1"),
    ] {
        edge.clock.advance(Duration::from_secs(advance));
        let r = get(&edge.url("/t")).await;
        assert_eq!(r.headers()["age"], age.to_string().as_str());
        assert_eq!(cache_status(&r), status);
    }
    // RFC 9111 §4.2: at an age equal to the lifetime it is stale: fetched again.
    edge.clock.advance(Duration::from_secs(1));
    let r = get(&edge.url("/t")).await;
    assert_eq!(cache_status(&r), "e1; fwd=stale; fwd-status=200; stored");
    assert_eq!(up.count("/t"), 2);
}

#[tokio::test]
async fn range_miss_fetches_whole_object_and_slices() {
    let up = Upstream::start().await;
    let body = body_of(10_000);
    let mut route = Route::ok("max-age=60", body.clone());
    route.chunks = 4;
    route.chunk_delay = Duration::from_millis(20);
    up.set("/big", route);
    let edge = Edge::start(up.url(), |_| {}).await;
    let r = client()
        .get(edge.url("/big"))
        .header("range", "bytes=2500-7499")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 2500-7499/10000");
    assert_eq!(r.bytes().await.unwrap(), body.slice(2500..7500));
    assert!(up.seen_for("/big")[0].headers.get("range").is_none());
    // The range ended before the fill did; later requests join it or hit the store.
    for _ in 0..50 {
        let r = get(&edge.url("/big")).await;
        let status = cache_status(&r);
        assert_eq!(r.bytes().await.unwrap(), body);
        if status.contains("hit") {
            break;
        }
        assert!(status.contains("collapsed"), "{status}");
        sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(up.count("/big"), 1);
}

#[tokio::test]
async fn two_hundred_concurrent_cold_requests_make_one_upstream_request() {
    let up = Upstream::start().await;
    let body = body_of(300_000);
    let mut route = Route::ok("max-age=60", body.clone());
    route.chunks = 10;
    route.chunk_delay = Duration::from_millis(30);
    up.set("/cold", route);
    let edge = Edge::start(up.url(), |_| {}).await;
    let c = client();
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let c = c.clone();
            let url = edge.url("/cold");
            tokio::spawn(async move {
                let r = c.get(url).send().await.unwrap();
                let status = cache_status(&r);
                (status, r.bytes().await.unwrap())
            })
        })
        .collect();
    let mut collapsed = 0;
    for t in tasks {
        let (status, bytes) = timeout(LIMIT, t).await.unwrap().unwrap();
        assert_eq!(bytes, body);
        collapsed += usize::from(status.contains("collapsed") || status.contains("hit"));
    }
    assert_eq!(up.count("/cold"), 1);
    assert_eq!(collapsed, 199);
}

#[tokio::test]
async fn waiters_get_bytes_before_the_upstream_finishes() {
    let up = Upstream::start().await;
    let mut route = Route::ok("max-age=60", body_of(50_000));
    route.chunks = 5;
    // The upstream sends its first chunk, then waits until the test lets it finish.
    let rest = Gate::closed();
    route.hold_body = Some(rest.clone());
    up.set("/slow", route);
    let edge = Edge::start(up.url(), |_| {}).await;
    let c = client();
    let leader = c.get(edge.url("/slow")).send().await.unwrap();
    let waiter = c.get(edge.url("/slow")).send().await.unwrap();
    assert!(cache_status(&waiter).contains("collapsed"));
    let mut stream = waiter.bytes_stream();
    let first = timeout(LIMIT, stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(!first.is_empty());
    assert_eq!(
        up.finished(),
        0,
        "first waiter byte must arrive while the upstream is still sending"
    );
    rest.open();
    let mut total = first.len();
    while let Some(chunk) = timeout(LIMIT, stream.next()).await.unwrap() {
        total += chunk.unwrap().len();
    }
    assert_eq!(total, 50_000);
    assert_eq!(leader.bytes().await.unwrap().len(), 50_000);
    assert_eq!(up.count("/slow"), 1);
}

#[tokio::test]
async fn truncated_upstream_body_is_not_cached_and_waiters_see_the_cut() {
    let up = Upstream::start().await;
    let mut route = Route::ok("max-age=60", body_of(10_000));
    route.truncate_at = Some(4_000);
    route.chunks = 4;
    // Held after its first chunk until both requests have their heads: one fill for both.
    let rest = Gate::closed();
    route.hold_body = Some(rest.clone());
    up.set("/cut", route);
    let edge = Edge::start(up.url(), |_| {}).await;
    let c = client();
    let a = c.get(edge.url("/cut")).send();
    let b = c.get(edge.url("/cut")).send();
    let (a, b) = tokio::join!(a, b);
    rest.open();
    for r in [a.unwrap(), b.unwrap()] {
        assert!(
            timeout(LIMIT, r.bytes()).await.unwrap().is_err(),
            "a cut body must not look complete"
        );
    }
    assert_eq!(up.count("/cut"), 1);
    let r = get(&edge.url("/cut")).await;
    assert!(cache_status(&r).contains("fwd=miss"));
    let _ = r.bytes().await;
    assert_eq!(up.count("/cut"), 2);
}

#[tokio::test]
async fn failing_fill_releases_every_waiter() {
    let up = Upstream::start().await;
    let mut route = Route::ok("max-age=60", "late");
    // An upstream that never answers: the edge's real first-byte timeout is the subject.
    route.hold_head = Some(Gate::closed());
    up.set("/hang", route);
    // A request is bounded by the connect and first-byte timeouts together.
    let edge = Edge::start(up.url(), |c| {
        c.connect_timeout = Duration::from_millis(200);
        c.first_byte_timeout = Duration::from_millis(300);
    })
    .await;
    let c = client();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let c = c.clone();
            let url = edge.url("/hang");
            tokio::spawn(async move { c.get(url).send().await.unwrap().status() })
        })
        .collect();
    for t in tasks {
        assert_eq!(timeout(LIMIT, t).await.unwrap().unwrap(), 504);
    }
    assert_eq!(up.count("/hang"), 1);
}

#[tokio::test]
async fn refused_upstream_is_a_502() {
    let up = Upstream::start().await;
    let url = up.url();
    up.stop();
    sleep(Duration::from_millis(50)).await;
    let edge = Edge::start(url, |_| {}).await;
    let r = get(&edge.url("/x")).await;
    assert_eq!(r.status(), 502);
    assert_eq!(cache_status(&r), "e1; fwd=miss; detail=upstream-error");
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
}

#[tokio::test]
async fn stale_if_error_then_502_after_the_window() {
    let up = Upstream::start().await;
    up.set("/sie", Route::ok("max-age=1, stale-if-error=3", "good"));
    let edge = Edge::start(up.url(), |_| {}).await;
    assert_eq!(get(&edge.url("/sie")).await.text().await.unwrap(), "good");
    up.stop();
    // Stale by 1 s of the 3 s stale-if-error window.
    edge.clock.advance(Duration::from_secs(2));
    let r = get(&edge.url("/sie")).await;
    assert_eq!(r.status(), 200);
    assert!(
        cache_status(&r).contains("detail=stale-if-error"),
        "{}",
        cache_status(&r)
    );
    assert_eq!(r.text().await.unwrap(), "good");
    // Stale by 4 s: past the window.
    edge.clock.advance(Duration::from_secs(3));
    let r = get(&edge.url("/sie")).await;
    assert_eq!(r.status(), 502);
}

#[tokio::test]
async fn stale_if_error_on_upstream_5xx_and_must_revalidate_disables_it() {
    let up = Upstream::start().await;
    up.set("/a", Route::ok("max-age=1, stale-if-error=30", "good"));
    up.set(
        "/b",
        Route::ok("max-age=1, stale-if-error=30, must-revalidate", "good"),
    );
    let edge = Edge::start(up.url(), |_| {}).await;
    get(&edge.url("/a")).await.bytes().await.unwrap();
    get(&edge.url("/b")).await.bytes().await.unwrap();
    let mut broken = Route::ok("no-store", "boom");
    broken.status = 503;
    up.set("/a", broken.clone());
    up.set("/b", broken);
    edge.clock.advance(Duration::from_secs(2));
    let r = get(&edge.url("/a")).await;
    assert_eq!(r.status(), 200);
    assert!(
        cache_status(&r).contains("fwd-status=503; detail=stale-if-error"),
        "{}",
        cache_status(&r)
    );
    let r = get(&edge.url("/b")).await;
    assert_eq!(r.status(), 503);
}

#[tokio::test]
async fn revalidation_with_304_merges_headers_and_counts() {
    let up = Upstream::start().await;
    let mut route = Route::ok("max-age=1", "body-v1")
        .header("etag", "\"v1\"")
        .header("x-rev", "1");
    route.not_modified = Some((
        "\"v1\"".into(),
        vec![
            ("x-rev".into(), "2".into()),
            ("cache-control".into(), "max-age=60".into()),
        ],
    ));
    up.set("/r", route);
    let edge = Edge::start(up.url(), |_| {}).await;
    get(&edge.url("/r")).await.bytes().await.unwrap();
    edge.clock.advance(Duration::from_secs(2));
    let r = get(&edge.url("/r")).await;
    assert_eq!(r.status(), 200);
    assert!(
        cache_status(&r).starts_with("e1; fwd=stale;"),
        "{}",
        cache_status(&r)
    );
    assert!(cache_status(&r).contains("fwd-status=304"));
    assert_eq!(r.headers()["x-rev"], "2");
    assert_eq!(r.headers()["cache-control"], "max-age=60");
    assert_eq!(r.headers()["content-length"], "7");
    assert_eq!(r.text().await.unwrap(), "body-v1");
    let seen = up.seen_for("/r");
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].headers["if-none-match"], "\"v1\"");
    let r = get(&edge.url("/r")).await;
    assert!(cache_status(&r).contains("hit"));
    let m = get(&edge.url("/.edge/metrics")).await.text().await.unwrap();
    assert!(m.contains("edge_revalidations_total 1"), "{m}");
    assert!(
        m.contains("edge_requests_total{cache=\"revalidated\"} 1"),
        "{m}"
    );
}

#[tokio::test]
async fn stale_while_revalidate_serves_stale_and_refreshes_once() {
    let up = Upstream::start().await;
    up.set(
        "/swr",
        Route::ok("max-age=1, stale-while-revalidate=30", "old"),
    );
    let edge = Edge::start(up.url(), |_| {}).await;
    get(&edge.url("/swr")).await.bytes().await.unwrap();
    let mut fresh = Route::ok("max-age=60", "new");
    // Held until the five stale answers below are in: the refresh cannot land before.
    let refresh = Gate::closed();
    fresh.hold_head = Some(refresh.clone());
    up.set("/swr", fresh);
    edge.clock.advance(Duration::from_secs(2));
    for _ in 0..5 {
        let r = get(&edge.url("/swr")).await;
        assert!(
            cache_status(&r).contains("detail=stale-while-revalidate"),
            "{}",
            cache_status(&r)
        );
        assert_eq!(r.text().await.unwrap(), "old");
    }
    refresh.open();
    let mut body = String::new();
    for _ in 0..60 {
        sleep(Duration::from_millis(50)).await;
        body = get(&edge.url("/swr")).await.text().await.unwrap();
        if body == "new" {
            break;
        }
    }
    assert_eq!(body, "new");
    assert_eq!(up.count("/swr"), 2, "one background refresh");
}

#[tokio::test]
async fn background_refresh_with_5xx_keeps_the_good_object() {
    let up = Upstream::start().await;
    up.set(
        "/k",
        Route::ok(
            "max-age=1, stale-while-revalidate=30, stale-if-error=30",
            "good",
        ),
    );
    let edge = Edge::start(up.url(), |_| {}).await;
    get(&edge.url("/k")).await.bytes().await.unwrap();
    let mut broken = Route::ok("max-age=60", "bad");
    broken.status = 500;
    up.set("/k", broken);
    edge.clock.advance(Duration::from_secs(2));
    for _ in 0..3 {
        assert_eq!(get(&edge.url("/k")).await.text().await.unwrap(), "good");
        sleep(Duration::from_millis(100)).await;
    }
    assert!(up.count("/k") >= 2);
}

#[tokio::test]
async fn no_cache_is_revalidated_on_every_use() {
    let up = Upstream::start().await;
    let mut route = Route::ok("no-cache", "nc").header("etag", "\"n\"");
    route.not_modified = Some(("\"n\"".into(), vec![]));
    up.set("/nc", route);
    let edge = Edge::start(up.url(), |_| {}).await;
    get(&edge.url("/nc")).await.bytes().await.unwrap();
    for _ in 0..2 {
        let r = get(&edge.url("/nc")).await;
        assert!(
            cache_status(&r).contains("fwd-status=304"),
            "{}",
            cache_status(&r)
        );
        assert_eq!(r.text().await.unwrap(), "nc");
    }
    assert_eq!(up.count("/nc"), 3);
}

#[tokio::test]
async fn unsafe_methods_pass_through_and_invalidate() {
    let up = Upstream::start().await;
    up.set("/item", Route::ok("max-age=60", "v"));
    let edge = Edge::start(up.url(), |_| {}).await;
    get(&edge.url("/item")).await.bytes().await.unwrap();
    let r = client()
        .post(edge.url("/item"))
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(cache_status(&r).contains("fwd=bypass"));
    let seen = up.seen_for("/item");
    assert_eq!(seen[1].method, "POST");
    let r = get(&edge.url("/item")).await;
    assert!(cache_status(&r).contains("fwd=miss"));
    assert_eq!(up.count("/item"), 3);
}

#[tokio::test]
async fn head_miss_fills_with_get() {
    let up = Upstream::start().await;
    up.set("/h", Route::ok("max-age=60", "twelve bytes"));
    let edge = Edge::start(up.url(), |_| {}).await;
    let r = client().head(edge.url("/h")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "12");
    assert!(r.bytes().await.unwrap().is_empty());
    assert_eq!(up.seen_for("/h")[0].method, "GET");
    let r = get(&edge.url("/h")).await;
    assert!(cache_status(&r).contains("hit"), "{}", cache_status(&r));
    assert_eq!(r.text().await.unwrap(), "twelve bytes");
    assert_eq!(up.count("/h"), 1);
}

#[tokio::test]
async fn waiters_of_another_variant_fetch_their_own() {
    let up = Upstream::start().await;
    let mut route = Route::ok("max-age=60", "v").header("vary", "accept-language");
    // Held until the second request has joined the first one's fill.
    let answer = Gate::closed();
    route.hold_head = Some(answer.clone());
    up.set("/vv", route);
    let edge = Edge::start(up.url(), |_| {}).await;
    let c = client();
    let en = c
        .get(edge.url("/vv"))
        .header("accept-language", "en")
        .send();
    let fr = async {
        eventually(LIMIT, "the first fill upstream", || async {
            up.count("/vv") == 1
        })
        .await;
        let fr = c
            .get(edge.url("/vv"))
            .header("accept-language", "fr")
            .send();
        let joined = async {
            let waiters = &edge.state.metrics.coalesced_waiters;
            eventually(LIMIT, "the second request waiting", || async {
                waiters.get() == 1
            })
            .await;
            answer.open();
        };
        tokio::join!(fr, joined).0
    };
    let (en, fr) = tokio::join!(en, fr);
    assert_eq!(en.unwrap().status(), 200);
    assert_eq!(fr.unwrap().status(), 200);
    let seen = up.seen_for("/vv");
    assert_eq!(seen.len(), 2);
    let langs: Vec<_> = seen
        .iter()
        .map(|s| s.headers["accept-language"].to_str().unwrap().to_owned())
        .collect();
    assert!(
        langs.contains(&"en".to_owned()) && langs.contains(&"fr".to_owned()),
        "{langs:?}"
    );
}

#[tokio::test]
async fn stalled_upload_fails_instead_of_hanging() {
    let up = Upstream::start().await;
    let edge = Edge::start(up.url(), |c| {
        c.header_read_timeout = Duration::from_millis(300);
    })
    .await;
    let ok = client()
        .post(edge.url("/upload"))
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 201);
    // One byte, then nothing ever again: the edge's real idle timeout is the subject.
    let stalled = futures::stream::unfold(0, |n| async move {
        if n > 0 {
            std::future::pending::<()>().await;
        }
        Some((
            Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"a")),
            n + 1,
        ))
    });
    let r = client()
        .post(edge.url("/upload"))
        .body(reqwest::Body::wrap_stream(stalled))
        .send();
    let r = timeout(Duration::from_secs(5), r)
        .await
        .expect("the edge must give up on a stalled upload");
    assert_eq!(r.unwrap().status(), 408);
}

#[tokio::test]
async fn purge_requires_the_token() {
    let up = Upstream::start().await;
    up.set("/p/1", Route::ok("max-age=60", "1"));
    up.set("/p/2", Route::ok("max-age=60", "2"));
    let edge = Edge::start(up.url(), |c| c.purge_token = Some("s3cret".into())).await;
    let c = client();
    let purge = |path: &str, token: Option<&str>| {
        let mut rb = c.request(
            reqwest::Method::from_bytes(b"PURGE").unwrap(),
            edge.url(path),
        );
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        rb.send()
    };
    get(&edge.url("/p/1")).await.bytes().await.unwrap();
    get(&edge.url("/p/2")).await.bytes().await.unwrap();
    assert_eq!(purge("/p/1", None).await.unwrap().status(), 401);
    assert_eq!(purge("/p/1", Some("wrong")).await.unwrap().status(), 401);
    assert!(cache_status(&get(&edge.url("/p/1")).await).contains("hit"));
    assert_eq!(purge("/p/1", Some("s3cret")).await.unwrap().status(), 200);
    assert_eq!(purge("/p/1", Some("s3cret")).await.unwrap().status(), 404);
    assert!(cache_status(&get(&edge.url("/p/1")).await).contains("fwd=miss"));
    assert_eq!(purge("/p/*", Some("s3cret")).await.unwrap().status(), 200);
    assert!(cache_status(&get(&edge.url("/p/2")).await).contains("fwd=miss"));
    assert_eq!(up.count("/p/1"), 2);

    let open = Edge::start(up.url(), |_| {}).await;
    let r = c
        .request(
            reqwest::Method::from_bytes(b"PURGE").unwrap(),
            open.url("/p/1"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn a_loop_through_this_edge_is_detected() {
    let up = Upstream::start().await;
    let edge = Edge::start(up.url(), |_| {}).await;
    let r = client()
        .get(edge.url("/x"))
        .header("via", "1.1 e1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 508);
    let via = |v: &'static str| client().get(edge.url("/x")).header("via", v).send();
    assert_eq!(
        via("1.0 fred, 1.1 e1 (rivulet)").await.unwrap().status(),
        508
    );
    let r = client()
        .get(edge.url("/x"))
        .header("via", "1.1 other")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "another hop's Via is fine");
    assert_eq!(up.count("/x"), 1);
}

#[tokio::test]
async fn admin_endpoints() {
    let up = Upstream::start().await;
    up.set("/m", Route::ok("max-age=60", body_of(1000)));
    let edge = Edge::start(up.url(), |_| {}).await;
    assert_eq!(
        get(&edge.url("/.edge/healthz")).await.text().await.unwrap(),
        "ok\n"
    );
    get(&edge.url("/m")).await.bytes().await.unwrap();
    get(&edge.url("/m")).await.bytes().await.unwrap();
    let m = get(&edge.url("/.edge/metrics")).await.text().await.unwrap();
    for line in [
        "edge_requests_total{cache=\"hit\"} 1",
        "edge_requests_total{cache=\"miss\"} 1",
        "edge_upstream_requests_total 1",
        "edge_bytes_from_cache_total 1000",
        "edge_bytes_from_upstream_total 1000",
        "edge_cache_entries 1",
    ] {
        assert!(m.contains(line), "missing {line} in\n{m}");
    }
    assert_eq!(get(&edge.url("/.edge/other")).await.status(), 404);
    assert_eq!(up.count("/.edge/metrics") + up.count("/.edge/other"), 0);
}

#[tokio::test]
async fn objects_over_the_maximum_stream_through_uncached() {
    let up = Upstream::start().await;
    up.set("/huge", Route::ok("max-age=60", body_of(5000)));
    let edge = Edge::start(up.url(), |c| c.max_object_size = 4000).await;
    for _ in 0..2 {
        assert_eq!(
            get(&edge.url("/huge")).await.bytes().await.unwrap().len(),
            5000
        );
    }
    assert_eq!(up.count("/huge"), 2);
}

#[tokio::test]
async fn chunked_bodies_are_cached_unless_they_outgrow_the_maximum() {
    let up = Upstream::start().await;
    let mut small = Route::ok("max-age=60", body_of(3000));
    small.no_length = true;
    small.chunks = 3;
    let mut big = Route::ok("max-age=60", body_of(10_000));
    big.no_length = true;
    big.chunks = 10;
    up.set("/chunked-small", small);
    up.set("/chunked-big", big);
    let edge = Edge::start(up.url(), |c| c.max_object_size = 4000).await;
    for _ in 0..2 {
        assert_eq!(
            get(&edge.url("/chunked-small"))
                .await
                .bytes()
                .await
                .unwrap(),
            body_of(3000)
        );
        assert_eq!(
            get(&edge.url("/chunked-big")).await.bytes().await.unwrap(),
            body_of(10_000)
        );
    }
    let r = get(&edge.url("/chunked-small")).await;
    assert_eq!(
        r.headers()["content-length"],
        "3000",
        "the stored copy knows its length"
    );
    assert_eq!(up.count("/chunked-small"), 1);
    assert_eq!(up.count("/chunked-big"), 2);
}

#[tokio::test]
async fn eviction_keeps_the_store_within_its_size() {
    let up = Upstream::start().await;
    for i in 0..40 {
        up.set(&format!("/e/{i}"), Route::ok("max-age=60", body_of(10_000)));
    }
    let edge = Edge::start(up.url(), |c| c.cache_size = 100_000).await;
    let store = &edge.state.store;
    let evictions = &edge.state.metrics.evictions;
    for i in 0..40 {
        get(&edge.url(&format!("/e/{i}")))
            .await
            .bytes()
            .await
            .unwrap();
        // Nothing here runs the store's maintenance: each fill's insert must settle its
        // own evictions, so every object fetched is soon counted as stored or evicted,
        // and the store never holds more than its size meanwhile.
        let fetched = i + 1;
        eventually(LIMIT, "the insert settled", || async {
            store.entry_count() + evictions.get() == fetched
        })
        .await;
        assert!(
            store.weighted_size() <= 100_000,
            "{}",
            store.weighted_size()
        );
    }
    assert!(evictions.get() >= 30, "{}", evictions.get());
}

#[tokio::test]
async fn bad_input_gets_4xx_or_close() {
    let up = Upstream::start().await;
    let edge = Edge::start(up.url(), |c| {
        c.max_header_size = 8192;
        c.header_read_timeout = Duration::from_millis(500);
    })
    .await;
    // Huge header: 431.
    let r = client()
        .get(edge.url("/x"))
        .header("x-big", "a".repeat(20_000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 431);
    // Garbage request line: 400 and close.
    let mut s = tokio::net::TcpStream::connect(edge.addr).await.unwrap();
    s.write_all(b"NOT HTTP AT ALL\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    timeout(LIMIT, s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&buf)
    );
    // Asterisk-form target: nothing to proxy.
    let mut s = tokio::net::TcpStream::connect(edge.addr).await.unwrap();
    s.write_all(b"OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    timeout(LIMIT, s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&buf)
    );
    // Slow client: the connection is closed after the header read timeout.
    let mut s = tokio::net::TcpStream::connect(edge.addr).await.unwrap();
    s.write_all(b"GET /x HTTP/1.1\r\nHost: a\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    // Ends (EOF or reset) well before the 5 s bound: the edge closed it.
    let _ = timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .unwrap();
    assert_eq!(up.count("/x"), 0);
}
