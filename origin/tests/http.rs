//! The origin's HTTP semantics over real HTTP on loopback (RFC 9110 §8.8, §13, §14, §15).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, SystemTime};

use common::{Server, fake_library, lib_path, pattern};
use http::{Method, StatusCode};
use origin::store::StoreLimits;

/// A request (method and header fields) and the status it must get.
type Row<'a> = (Method, Vec<(&'a str, &'a str)>, StatusCode);

const SEG: &str = "/vod/sample/270p-300k/1.m4s";

fn limits() -> StoreLimits {
    StoreLimits {
        recheck: Duration::ZERO,
        ..StoreLimits::default()
    }
}

/// Files above 0 bytes are streamed from disk rather than kept.
fn streaming() -> StoreLimits {
    StoreLimits {
        inline_max: 0,
        ..limits()
    }
}

async fn server() -> (tempfile::TempDir, Server) {
    let dir = fake_library();
    let server = Server::start(&lib_path(&dir), None, limits()).await;
    (dir, server)
}

#[tokio::test]
async fn media_responses_carry_types_validators_caching_and_cors() {
    let (_dir, s) = server().await;
    let rows = [
        (
            "/vod/sample/master.m3u8",
            "application/vnd.apple.mpegurl",
            false,
        ),
        ("/vod/sample/manifest.mpd", "application/dash+xml", false),
        (
            "/vod/sample/270p-300k/index.m3u8",
            "application/vnd.apple.mpegurl",
            false,
        ),
        ("/vod/sample/270p-300k/init.mp4", "video/mp4", true),
        (SEG, "video/iso.segment", true),
    ];
    for (path, content_type, immutable) in rows {
        let r = s.get(path, &[("origin", "http://elsewhere.test")]).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.header("content-type"), Some(content_type), "{path}");
        let file = s.library.join(path.trim_start_matches("/vod/"));
        assert_eq!(
            r.body.as_ref(),
            std::fs::read(&file).unwrap().as_slice(),
            "{path}"
        );
        assert_eq!(
            r.header("content-length"),
            Some(r.body.len().to_string().as_str())
        );
        let etag = r.header("etag").unwrap();
        assert!(
            etag.starts_with('"') && etag.ends_with('"') && etag.len() > 10,
            "{etag}"
        );
        http_rules::date::parse_http_date(r.header("last-modified").unwrap()).unwrap();
        http_rules::date::parse_http_date(r.header("date").unwrap()).unwrap();
        let cc = r.header("cache-control").unwrap();
        assert_eq!(cc.contains("immutable"), immutable, "{path}: {cc}");
        assert!(cc.contains("max-age="), "{cc}");
        assert_eq!(r.header("accept-ranges"), Some("bytes"));
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        let exposed = r
            .header("access-control-expose-headers")
            .unwrap()
            .to_lowercase();
        for name in ["etag", "content-range", "cache-status"] {
            assert!(exposed.contains(name), "{exposed}");
        }
        // The same bytes for every Origin: no Vary that would split caches.
        assert!(r.header("vary").is_none(), "{path}");
    }
    let long = s.get("/vod/sample/master.m3u8", &[]).await;
    let max_age: u64 = long
        .header("cache-control")
        .unwrap()
        .split("max-age=")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(max_age >= 600, "VOD manifests are long-lived");
}

#[tokio::test]
async fn etags_come_from_content_not_from_the_clock() {
    let (dir, s) = server().await;
    let lib = lib_path(&dir);
    let seg = lib.join("sample/270p-300k/2.m4s");
    let first = s.get("/vod/sample/270p-300k/2.m4s", &[]).await;
    // Same bytes, new mtime: same tag.
    std::fs::write(&seg, pattern(1000, 3)).unwrap();
    let file = std::fs::File::options().write(true).open(&seg).unwrap();
    file.set_modified(SystemTime::now() + Duration::from_secs(3600))
        .unwrap();
    let touched = s.get("/vod/sample/270p-300k/2.m4s", &[]).await;
    assert_eq!(first.header("etag"), touched.header("etag"));
    assert_ne!(
        first.header("last-modified"),
        touched.header("last-modified")
    );
    // An equal copy elsewhere: same tag; other bytes: another tag.
    std::fs::write(lib.join("sample/270p-300k/3.m4s"), pattern(1000, 3)).unwrap();
    let copy = s.get("/vod/sample/270p-300k/3.m4s", &[]).await;
    assert_eq!(first.header("etag"), copy.header("etag"));
    std::fs::write(&seg, pattern(1000, 4)).unwrap();
    let changed = s.get("/vod/sample/270p-300k/2.m4s", &[]).await;
    assert_ne!(first.header("etag"), changed.header("etag"));
    assert_eq!(changed.body.as_ref(), pattern(1000, 4).as_slice());
}

#[tokio::test]
async fn conditional_requests_follow_rfc_9110_13_2_2() {
    for store in [limits(), streaming()] {
        let dir = fake_library();
        let s = Server::start(&lib_path(&dir), None, store).await;
        let full = s.get(SEG, &[]).await;
        let etag = full.header("etag").unwrap().to_owned();
        let lm = full.header("last-modified").unwrap().to_owned();
        let earlier = http_rules::date::format_http_date(
            http_rules::date::parse_http_date(&lm).unwrap() - Duration::from_secs(60),
        );
        let weak = format!("W/{etag}");
        let list = format!("\"nope\", {etag}");
        use StatusCode as S;
        let rows: Vec<Row<'_>> = vec![
            (Method::GET, vec![("if-none-match", &etag)], S::NOT_MODIFIED),
            (Method::GET, vec![("if-none-match", &weak)], S::NOT_MODIFIED),
            (Method::GET, vec![("if-none-match", &list)], S::NOT_MODIFIED),
            (Method::GET, vec![("if-none-match", "*")], S::NOT_MODIFIED),
            (
                Method::HEAD,
                vec![("if-none-match", &etag)],
                S::NOT_MODIFIED,
            ),
            (Method::GET, vec![("if-none-match", "\"nope\"")], S::OK),
            (
                Method::GET,
                vec![("if-modified-since", &lm)],
                S::NOT_MODIFIED,
            ),
            (Method::GET, vec![("if-modified-since", &earlier)], S::OK),
            (
                Method::GET,
                vec![("if-modified-since", "not a date")],
                S::OK,
            ),
            // If-None-Match wins over If-Modified-Since.
            (
                Method::GET,
                vec![("if-none-match", "\"nope\""), ("if-modified-since", &lm)],
                S::OK,
            ),
            (Method::GET, vec![("if-match", &etag)], S::OK),
            (Method::GET, vec![("if-match", "*")], S::OK),
            (
                Method::GET,
                vec![("if-match", "\"nope\"")],
                S::PRECONDITION_FAILED,
            ),
            (
                Method::GET,
                vec![("if-match", &weak)],
                S::PRECONDITION_FAILED,
            ),
            (Method::GET, vec![("if-unmodified-since", &lm)], S::OK),
            (
                Method::GET,
                vec![("if-unmodified-since", &earlier)],
                S::PRECONDITION_FAILED,
            ),
            (
                Method::HEAD,
                vec![("if-match", "\"nope\"")],
                S::PRECONDITION_FAILED,
            ),
        ];
        for (method, headers, want) in rows {
            let r = s.request(method.clone(), SEG, &headers).await;
            assert_eq!(r.status, want, "{method} {headers:?}");
            match want {
                S::NOT_MODIFIED => {
                    // §15.4.5: the validators and caching fields, no body: the field
                    // set of `http_rules::not_modified`, Last-Modified included (the
                    // origin's own 304 used to carry ETag and Cache-Control only).
                    assert!(r.body.is_empty());
                    assert_eq!(r.header("etag"), Some(etag.as_str()));
                    assert_eq!(r.header("last-modified"), Some(lm.as_str()));
                    assert!(r.header("cache-control").unwrap().contains("immutable"));
                    assert!(r.header("date").is_some());
                    for representation_field in ["content-type", "content-range"] {
                        assert!(r.header(representation_field).is_none());
                    }
                }
                S::PRECONDITION_FAILED => {
                    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
                }
                _ => {}
            }
        }
    }
}

#[tokio::test]
async fn ranges_and_if_range_follow_rfc_9110_14() {
    for store in [limits(), streaming()] {
        let dir = fake_library();
        let s = Server::start(&lib_path(&dir), None, store).await;
        let whole = pattern(300_000, 2);
        let full = s.get(SEG, &[]).await;
        let etag = full.header("etag").unwrap().to_owned();
        let lm = full.header("last-modified").unwrap().to_owned();
        let later =
            http_rules::date::format_http_date(SystemTime::now() + Duration::from_secs(86400));
        let rows: Vec<(&str, usize, usize)> = vec![
            ("bytes=0-99", 0, 99),
            ("bytes=1000-1999", 1000, 1999),
            ("bytes=299990-", 299_990, 299_999),
            ("bytes=-10", 299_990, 299_999),
            ("bytes=299000-500000", 299_000, 299_999),
        ];
        for (range, first, last) in rows {
            let r = s.get(SEG, &[("range", range)]).await;
            assert_eq!(r.status, StatusCode::PARTIAL_CONTENT, "{range}");
            assert_eq!(
                r.header("content-range"),
                Some(format!("bytes {first}-{last}/300000").as_str())
            );
            assert_eq!(r.body.as_ref(), &whole[first..=last], "{range}");
            assert_eq!(r.header("etag"), Some(etag.as_str()));
        }
        for range in ["bytes=300000-", "bytes=400000-500000", "bytes=-0"] {
            let r = s.get(SEG, &[("range", range)]).await;
            assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
            assert_eq!(r.header("content-range"), Some("bytes */300000"));
            assert!(!r.body.is_empty());
        }
        // Invalid ranges are ignored; multiple ranges are answered whole, overlapping or
        // not and whether or not any is satisfiable (the one behaviour of
        // `http_rules::range`: the origin used to answer 416 to several unsatisfiable
        // ranges, the edge 200).
        for range in [
            "bytes=9-1",
            "lines=1-2",
            "bytes=0-1,5-6",
            "bytes=0-99,50-149",
            "bytes=400000-500000,600000-",
        ] {
            let r = s.get(SEG, &[("range", range)]).await;
            assert_eq!(r.status, StatusCode::OK, "{range}");
            assert_eq!(r.body.len(), 300_000);
        }
        let weak = format!("W/{etag}");
        let rows: Vec<(&str, StatusCode)> = vec![
            (&etag, StatusCode::PARTIAL_CONTENT),
            (&lm, StatusCode::PARTIAL_CONTENT),
            ("\"other\"", StatusCode::OK),
            (&weak, StatusCode::OK),
            (&later, StatusCode::OK),
        ];
        for (if_range, want) in rows {
            let r = s
                .get(SEG, &[("range", "bytes=0-9"), ("if-range", if_range)])
                .await;
            assert_eq!(r.status, want, "If-Range {if_range}");
            let len = if want == StatusCode::OK { 300_000 } else { 10 };
            assert_eq!(r.body.len(), len);
        }
    }
}

#[tokio::test]
async fn head_has_the_get_headers_and_no_body() {
    for store in [limits(), streaming()] {
        let dir = fake_library();
        let s = Server::start(&lib_path(&dir), None, store).await;
        let get = s.get(SEG, &[]).await;
        let head = s.request(Method::HEAD, SEG, &[]).await;
        assert_eq!(head.status, StatusCode::OK);
        assert!(head.body.is_empty());
        for name in [
            "content-type",
            "content-length",
            "etag",
            "last-modified",
            "cache-control",
            "accept-ranges",
        ] {
            assert_eq!(head.header(name), get.header(name), "{name}");
        }
        assert_eq!(head.header("content-length"), Some("300000"));
        // Range applies to GET only (§14.2).
        let head_range = s
            .request(Method::HEAD, SEG, &[("range", "bytes=0-1")])
            .await;
        assert_eq!(head_range.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn errors_are_short_plain_text_with_the_right_status() {
    let (_dir, s) = server().await;
    for path in [
        "/vod/nope/master.m3u8",
        "/vod/sample/999p-1k/index.m3u8",
        "/vod/sample/270p-300k/99.m4s",
        "/vod/sample/presentation.json",
        "/vod/sample/270p-300k/1.m4s/x.m4s",
        "/vod/sample/a/b/c.m4s",
        "/watch/nope",
        "/nope",
    ] {
        let r = s.get(path, &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            r.header("content-type"),
            Some("text/plain; charset=utf-8"),
            "{path}"
        );
        assert!(!r.body.is_empty() && r.body.len() < 300, "{path}");
    }
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        for path in [SEG, "/", "/healthz"] {
            let r = s.request(method.clone(), path, &[]).await;
            assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            let allow = r.header("allow").unwrap();
            for m in ["GET", "HEAD", "OPTIONS"] {
                assert!(allow.contains(m), "{allow}");
            }
            assert!(!r.body.is_empty());
        }
    }
}

#[tokio::test]
async fn traversal_attempts_never_leave_the_library() {
    let (_dir, s) = server().await;
    let long = format!("/vod/sample/{}.m4s", "a".repeat(300));
    let targets: Vec<&[u8]> = vec![
        b"/vod/../secret.m4s",
        b"/vod/sample/../../secret.m4s",
        b"/vod/..%2Fsecret.m4s/x.m4s",
        b"/vod/sample/..%2F..%2Fsecret.m4s",
        b"/vod/sample/%2e%2e/%2e%2e/secret.m4s",
        b"/vod/sample/%2E%2E%2F%2E%2E%2Fsecret.m4s",
        b"/vod/%2Ftmp/secret.m4s",
        b"/vod/sample/%2Fetc%2Fpasswd.m4s",
        b"/vod/sample/..%5C..%5Csecret.m4s",
        b"/vod/sample/a%00b.m4s",
        b"/vod/sample/%ff%fe.m4s",
        b"/vod/sample/.hidden.m4s",
        b"//vod/sample/../../secret.m4s",
        long.as_bytes(),
    ];
    for target in targets {
        let (status, text) = s.raw(target).await;
        let shown = String::from_utf8_lossy(target);
        assert!(status == 400 || status == 404, "{shown}: {status}");
        assert!(!text.contains("SECRET"), "{shown}");
    }
}

#[tokio::test]
async fn odd_header_values_never_break_the_server() {
    let (_dir, s) = server().await;
    let values = [
        ("range", "bytes="),
        ("range", "bytes=-"),
        ("range", "bytes=99999999999999999999999999-"),
        ("range", "bytes=0-99999999999999999999999999"),
        ("range", &"bytes=0-1,".repeat(200)),
        ("if-none-match", ",,,,"),
        ("if-none-match", "W/"),
        ("if-match", "\""),
        ("if-range", "W/\"x"),
        ("if-modified-since", "Sun, 99 Foo 2099 99:99:99 GMT"),
        ("if-unmodified-since", ""),
    ];
    for (name, value) in values {
        let r = s.get(SEG, &[(name, value)]).await;
        assert!(
            r.status.is_success() || r.status.is_client_error(),
            "{name}: {value} → {}",
            r.status
        );
    }
    assert_eq!(s.get("/healthz", &[]).await.status, StatusCode::OK);
}

#[tokio::test]
async fn cors_preflight_is_answered() {
    let (_dir, s) = server().await;
    let r = s
        .request(
            Method::OPTIONS,
            SEG,
            &[
                ("origin", "http://player.test"),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "range"),
            ],
        )
        .await;
    assert!(r.status.is_success(), "{}", r.status);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(
        r.header("access-control-allow-methods")
            .unwrap()
            .contains("GET")
    );
}

#[tokio::test]
async fn pages_list_and_play_assets() {
    let (dir, s) = server().await;
    let index = s.get("/", &[]).await;
    assert_eq!(index.status, StatusCode::OK);
    assert_eq!(
        index.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let html = String::from_utf8_lossy(&index.body);
    assert!(html.contains("href=\"watch/sample\""), "{html}");
    assert!(html.contains("href=\"vod/sample/master.m3u8\""));
    // Pages validate too.
    let etag = index.header("etag").unwrap().to_owned();
    assert_eq!(
        s.get("/", &[("if-none-match", &etag)]).await.status,
        StatusCode::NOT_MODIFIED
    );

    let watch = s.get("/watch/sample", &[]).await;
    assert_eq!(watch.status, StatusCode::OK);
    let html = String::from_utf8_lossy(&watch.body);
    assert!(html.contains("<video"));
    assert!(
        html.contains("\"../vod/sample/master.m3u8\""),
        "relative manifest URLs"
    );
    assert!(html.contains("\"../vod/sample/manifest.mpd\""));
    assert!(html.contains("\"hls.js\":false"), "no libraries configured");
    assert!(!html.contains("http://"), "all URLs relative");

    // Libraries are served from the configured folder, and their absence is explained.
    let r = s.get("/lib/hls.js", &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(String::from_utf8_lossy(&r.body).contains("npm ci"));
    let libs = dir.path().join("node_modules");
    std::fs::create_dir_all(libs.join("hls.js/dist")).unwrap();
    std::fs::write(libs.join("hls.js/dist/hls.min.js"), "window.Hls = 1;").unwrap();
    let s = Server::start(&lib_path(&dir), Some(libs), limits()).await;
    let r = s.get("/lib/hls.js", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(r.body.as_ref(), b"window.Hls = 1;");
    let html = String::from_utf8_lossy(&s.get("/watch/sample", &[]).await.body).into_owned();
    assert!(html.contains("\"hls.js\":true") && html.contains("\"dash.js\":false"));
    assert_eq!(
        s.get("/lib/other.js", &[]).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn metrics_count_requests_by_kind_and_status_and_bytes() {
    let (_dir, s) = server().await;
    assert_eq!(s.get("/healthz", &[]).await.body.as_ref(), b"ok\n");
    s.get(SEG, &[]).await;
    s.get(SEG, &[("range", "bytes=0-9")]).await;
    s.get("/vod/sample/270p-300k/init.mp4", &[]).await;
    s.get("/vod/sample/master.m3u8", &[]).await;
    s.get("/vod/sample/270p-300k/77.m4s", &[]).await;
    let r = s.get("/metrics", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = String::from_utf8_lossy(&r.body);
    for line in [
        "origin_http_requests_total{kind=\"segment\",status=\"200\"} 1",
        "origin_http_requests_total{kind=\"segment\",status=\"206\"} 1",
        "origin_http_requests_total{kind=\"segment\",status=\"404\"} 1",
        "origin_http_requests_total{kind=\"init\",status=\"200\"} 1",
        "origin_http_requests_total{kind=\"manifest\",status=\"200\"} 1",
        "origin_http_response_body_bytes_total{kind=\"init\"} 700",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    let seg_bytes = text
        .lines()
        .find(|l| l.starts_with("origin_http_response_body_bytes_total{kind=\"segment\"}"))
        .unwrap();
    // 300000 + 10 + the 404's short reason.
    let n: u64 = seg_bytes.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((300_010..300_100).contains(&n), "{seg_bytes}");
}
