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
