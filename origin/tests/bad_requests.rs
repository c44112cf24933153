//! Issue 14, defects 7 and 8 (the origin's part): one normal form for the path
//! (RFC 3986 §6.2.2, `http_rules::path`), an encoded `/` never a separator, and one
//! valid `Host` (RFC 9112 §3.2, `http_rules::host`); every refusal a 400 with a
//! one-line reason, the server unharmed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Server, fake_library, lib_path};
use origin::store::StoreLimits;

/// Sends `head` (a whole request head) on a fresh connection; the status and the body.
async fn send(s: &Server, head: &str) -> (u16, String) {
    let (status, text) = s.send(head.as_bytes()).await;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn get(target: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n")
}

#[tokio::test]
async fn the_path_has_one_normal_form_and_an_encoded_slash_is_not_a_separator() {
    let dir = fake_library();
    let s = Server::start(&lib_path(&dir), None, StoreLimits::default()).await;
    let (status, playlist) = send(&s, &get("/vod/sample/270p-300k/index.m3u8")).await;
    assert_eq!(status, 200);

    // An encoded `/` is data: it may not join two names into a path (it used to be
    // decoded into a separator and served, 200).
    for target in [
        "/vod/sample/270p-300k%2findex.m3u8",
        "/vod/sample/270p-300k%2Findex.m3u8",
        "/vod/sample%2F270p-300k/index.m3u8",
        "/vod/sample/270p-300k/index.m3u8%00",
    ] {
        let (status, body) = send(&s, &get(target)).await;
        assert_eq!(status, 400, "{target}: {body}");
        assert_eq!(body, "an encoded / or NUL in a path segment\n", "{target}");
    }

    // Aliases are served as what they mean, the form the edge keys and forwards.
    for target in [
        "/vod/%73ample/270p-300k/index.m3u8",
        "/vod/sample/270p%2D300k/index%2Em3u8",
        "/vod/x/../sample/./270p-300k/index.m3u8",
        "/vod/sample/270p-300k/%2e/index.m3u8",
    ] {
        let (status, body) = send(&s, &get(target)).await;
        assert_eq!((status, &body), (200, &playlist), "{target}");
    }

    // No normal form: 400 with the reason, one line.
    for (target, reason) in [
        ("/../secret.m4s", "the path climbs above the root"),
        (
            "/vod/%2e%2e/%2e%2e/secret.m4s",
            "the path climbs above the root",
        ),
        (
            "/vod/sample/%zz.m4s",
            "invalid percent-encoding in the request target",
        ),
        (
            "/vod/sample/%C3%28.m4s",
            "an encoded / or NUL in a path segment",
        ),
    ] {
        let (status, body) = send(&s, &get(target)).await;
        assert_eq!(status, 400, "{target}: {body}");
        assert_eq!(body, format!("{reason}\n"), "{target}");
    }
    assert_eq!(send(&s, &get("/healthz")).await.0, 200);
}

#[tokio::test]
async fn one_valid_host_or_400_rfc_9112_3_2() {
    let dir = fake_library();
    let s = Server::start(&lib_path(&dir), None, StoreLimits::default()).await;
    let rows: [(&str, u16, &str); 9] = [
        ("Host: origin.test\r\n", 200, "ok\n"),
        ("Host: [::1]:8080\r\n", 200, "ok\n"),
        ("", 400, "an HTTP/1.1 request needs a Host header\n"),
        ("Host: a\r\nHost: a\r\n", 400, "more than one Host header\n"),
        ("Host: a\r\nHost: b\r\n", 400, "more than one Host header\n"),
        ("Host:\r\n", 400, "empty Host header\n"),
        ("Host: a b\r\n", 400, "invalid Host header\n"),
        ("Host: user@a\r\n", 400, "invalid Host header\n"),
        ("Host: a:99999\r\n", 400, "invalid Host header\n"),
    ];
    for (host, want, body) in rows {
        let head = format!("GET /healthz HTTP/1.1\r\n{host}Connection: close\r\n\r\n");
        assert_eq!(send(&s, &head).await, (want, body.to_owned()), "{host:?}");
    }
    // HTTP/1.0 needs none; an absolute-form target's authority takes its place.
    let old = "GET /healthz HTTP/1.0\r\n\r\n";
    assert_eq!(send(&s, old).await.0, 200);
    let absolute =
        "GET http://origin.test/healthz HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n";
    assert_eq!(send(&s, absolute).await.0, 200);
}
