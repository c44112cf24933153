//! Issue 14: what a hostile client or a hostile upstream sends must not hurt other
//! users. Each test reproduces one defect found by the adversarial pass; the hostile
//! upstream (`common::hostile`) breaks HTTP in ways a server library never would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::hostile::{Hostile, Step, read_response, response};
use common::{Edge, cache_status, client};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const LIMIT: Duration = Duration::from_secs(20);

/// Defect 1 (request desync), in the shape of the report: one client repeats
/// `GET /x` with `Content-Length: 5` and a body, while others make ordinary misses.
/// The edge must never send framing for a body it does not forward: an upstream that
/// discards announced bodies after answering (as servers that need no body do) would
/// otherwise eat the start of the next request on the pooled connection.
#[tokio::test]
async fn a_get_with_a_body_never_desyncs_the_upstream_connection() {
    let up = Hostile::start(|r| {
        let body = format!("answer for {}", r.target);
        vec![Step::Write(response(
            "200 OK",
            &["Cache-Control: no-store"],
            body.as_bytes(),
        ))]
    })
    .await;
    let edge = Edge::start(up.url(), |_| {}).await;
    let attacker = async {
        let mut s = TcpStream::connect(edge.addr).await.unwrap();
        let mut buf = Vec::new();
        let mut answered = 0;
        for _ in 0..20 {
            let sent = s
                .write_all(b"GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
                .await;
            let got = match sent {
                Ok(()) => read_response(&mut s, &mut buf, "GET", LIMIT).await,
                Err(_) => None,
            };
            match got {
                Some(r) => {
                    assert_eq!(r.status, 200, "{}", r.head);
                    answered += 1;
                }
                // The edge may close a connection whose body it did not read: reconnect.
                None => {
                    s = TcpStream::connect(edge.addr).await.unwrap();
                    buf.clear();
                }
            }
        }
        answered
    };
    let others = async {
        let c = client();
        let mut failures = Vec::new();
        for i in 0..60 {
            let r = c.get(edge.url(&format!("/m/{i}"))).send().await.unwrap();
            let status = r.status();
            let body = r.text().await.unwrap();
            if status != 200 || body != format!("answer for /m/{i}") {
                failures.push(format!("/m/{i}: {status} {body:?}"));
            }
        }
        failures
    };
    let (answered, failures) = tokio::join!(attacker, others);
    assert!(answered > 0);
    assert_eq!(
        failures,
        Vec::<String>::new(),
        "other clients' misses failed"
    );
    // Nothing the edge sent upstream announces a body it does not carry.
    for r in up.seen() {
        assert!(
            r.all("content-length").is_empty() && r.all("transfer-encoding").is_empty(),
            "framing forwarded on a request without a body:\n{}",
            r.head
        );
    }
    assert!(!up.seen_for("/x").is_empty());
}

/// Defect 1, the client side: the body of a GET the edge does not forward is drained
/// (a small one sent with the head: the next request on the connection is answered)
/// or the connection is closed; never read as the next request.
#[tokio::test]
async fn the_unforwarded_body_of_a_get_is_drained_or_the_connection_closed() {
    let up = Hostile::start(|r| {
        vec![Step::Write(response(
            "200 OK",
            &["Cache-Control: max-age=60"],
            r.target.as_bytes(),
        ))]
    })
    .await;
    let edge = Edge::start(up.url(), |c| {
        c.header_read_timeout = Duration::from_millis(500);
    })
    .await;
    // A smuggling shape: the "body" is itself a request. It must not be answered.
    let mut s = TcpStream::connect(edge.addr).await.unwrap();
    let smuggled = b"GET /y HTTP/1.1\r\nHost: a\r\n\r\n";
    let head = format!(
        "GET /a HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
        smuggled.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(smuggled).await.unwrap();
    s.write_all(b"GET /b HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let first = read_response(&mut s, &mut buf, "GET", LIMIT).await.unwrap();
    assert_eq!(first.body, b"/a");
    // Drained: the next answer is /b's; closed: no answer. Never /y's.
    if let Some(next) = read_response(&mut s, &mut buf, "GET", LIMIT).await {
        assert_eq!(next.body, b"/b", "{}", next.head);
    }
    assert!(up.seen_for("/y").is_empty());
    // A body announced but never sent: the edge answers, then closes within a bound
    // instead of waiting for it or reading the next request as its body.
    let mut s = TcpStream::connect(edge.addr).await.unwrap();
    s.write_all(b"GET /c HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let r = read_response(&mut s, &mut buf, "GET", LIMIT).await.unwrap();
    assert_eq!(r.status, 200);
    assert!(cache_status(&client().get(edge.url("/c")).send().await.unwrap()).contains("hit"));
    let closed = read_response(&mut s, &mut buf, "GET", Duration::from_secs(5)).await;
    assert!(closed.is_none(), "{closed:?}");
}

/// The hostile upstream's answer for each path of the framing tests.
fn hostile_framing(target: &str) -> Vec<Step> {
    let body: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let head = |extra: &str| {
        format!("HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\n{extra}\r\n").into_bytes()
    };
    match target {
        // RFC 9112 §6.3: Content-Length and Transfer-Encoding together; the chunked
        // body has 10 bytes, the Content-Length says 100.
        "/clte" | "/clte-nostore" => {
            let cc = if target == "/clte" { "max-age=60" } else { "no-store" };
            vec![Step::Write(
                format!(
                    "HTTP/1.1 200 OK\r\nCache-Control: {cc}\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n0\r\n\r\n"
                )
                .into_bytes(),
            )]
        }
        "/reset-mid-body" => vec![
            Step::Write(head("Content-Length: 1000\r\n")),
            Step::Write(body[..500].to_vec()),
            Step::Sleep(Duration::from_millis(50)),
            Step::Reset,
        ],
        "/close-mid-body" => vec![
            Step::Write(head("Content-Length: 1000\r\n")),
            Step::Write(body[..500].to_vec()),
            Step::Close,
        ],
        "/chunked-cut" => vec![
            Step::Write(head("Transfer-Encoding: chunked\r\n")),
            Step::Write(b"1f4\r\n".to_vec()),
            Step::Write(body[..500].to_vec()),
            Step::Write(b"\r\n".to_vec()),
            Step::Close,
        ],
        "/stall-mid-head" => vec![
            Step::Write(b"HTTP/1.1 200 OK\r\nCache-Control: max-a".to_vec()),
            Step::Stall,
        ],
        "/stall-mid-body" => vec![
            Step::Write(head("Content-Length: 1000\r\n")),
            Step::Write(body[..500].to_vec()),
            Step::Stall,
        ],
        "/enormous-head" => {
            let mut h = head(&format!("X-Big: {}\r\n", "a".repeat(1 << 20)));
            h.extend_from_slice(b"Content-Length: 1\r\n\r\nx");
            vec![Step::Write(h), Step::Stall]
        }
        "/many-fields" => {
            let fields: String = (0..500).map(|i| format!("X-F{i}: {i}\r\n")).collect();
            vec![
                Step::Write(head(&format!("{fields}Content-Length: 1\r\n"))),
                Step::Write(b"x".to_vec()),
            ]
        }
        "/bad-status-number" => vec![Step::Write(b"HTTP/1.1 2000 OK\r\nContent-Length: 1\r\n\r\nx".to_vec())],
        "/bad-status-version" => vec![Step::Write(b"HTTX/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx".to_vec())],
        "/bad-status-garbage" => vec![Step::Write(b"\x00\x01garbage\r\n\r\n".to_vec()), Step::Close],
        "/bad-header-line" => vec![Step::Write(b"HTTP/1.1 200 OK\r\nno colon here\r\nContent-Length: 1\r\n\r\nx".to_vec())],
        "/two-lengths" => vec![Step::Write(b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello".to_vec())],
        _ => vec![Step::Write(response(
            "200 OK",
            &["Cache-Control: max-age=60"],
            b"fine",
        ))],
    }
}

/// Defect 4 and the hostile upstream: whatever the upstream breaks, the client gets a
/// clean error or a visibly incomplete response, never a complete-looking 200 of the
/// wrong body, nothing broken is stored, `stored` is never claimed for it, and the edge
/// keeps serving others.
#[tokio::test]
async fn a_hostile_upstream_never_yields_a_complete_looking_wrong_answer() {
    let up = Hostile::start(|r| hostile_framing(&r.target)).await;
    let edge = Edge::start(up.url(), |c| {
        c.connect_timeout = Duration::from_millis(300);
        c.first_byte_timeout = Duration::from_millis(700);
        c.read_timeout = Duration::from_millis(700);
    })
    .await;
    // (path, what the client must see): a status for an error answer, or `None` for
    // a 200 whose body must end incomplete.
    let rows: [(&str, Option<u16>); 13] = [
        ("/clte", Some(502)),
        ("/clte-nostore", Some(502)),
        ("/reset-mid-body", None),
        ("/close-mid-body", None),
        ("/chunked-cut", None),
        ("/stall-mid-head", Some(504)),
        ("/stall-mid-body", None),
        ("/enormous-head", Some(502)),
        ("/many-fields", Some(502)),
        ("/bad-status-number", Some(502)),
        ("/bad-status-version", Some(502)),
        ("/bad-status-garbage", Some(502)),
        ("/bad-header-line", Some(502)),
    ];
    for (path, want) in rows {
        for attempt in 0..2 {
            let mut s = TcpStream::connect(edge.addr).await.unwrap();
            s.write_all(format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut buf = Vec::new();
            let r = read_response(&mut s, &mut buf, "GET", LIMIT)
                .await
                .unwrap_or_else(|| panic!("{path}: no response head"));
            let status_line = r.head.lines().next().unwrap_or("").to_owned();
            match want {
                Some(code) => {
                    assert_eq!(r.status, code, "{path}: {}", r.head);
                    assert!(r.complete, "{path}: an error answer is whole");
                }
                None => {
                    assert_eq!(r.status, 200, "{path}: {status_line}");
                    assert!(
                        !r.complete,
                        "{path}: a cut body must not look complete ({} bytes)",
                        r.body.len()
                    );
                }
            }
            let status = r.header("cache-status").unwrap_or_default();
            assert!(
                !status.contains("hit"),
                "{path} (attempt {attempt}): nothing broken is stored: {status}"
            );
        }
        // Each attempt went upstream: nothing was stored.
        assert_eq!(up.seen_for(path).len(), 2, "{path}");
    }
    // RFC 9112 §6.3: two different Content-Length values is a framing error too.
    let r = client().get(edge.url("/two-lengths")).send().await.unwrap();
    assert_eq!(r.status(), 502);
    // The edge still serves everyone else.
    let r = client().get(edge.url("/fine")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "fine");
}
