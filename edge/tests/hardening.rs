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
/// Defect 4, `Cache-Status`: `stored` is claimed only for a body the edge stores. A
/// body without `Content-Length` can outgrow `--max-object-size` after its head went
/// out; its head must not have said `stored`.
#[tokio::test]
async fn stored_is_never_claimed_for_a_body_that_is_not_stored() {
    let up = common::Upstream::start().await;
    let mut big = common::Route::ok("max-age=60", common::body_of(10_000));
    big.no_length = true;
    big.chunks = 10;
    up.set("/chunked-big", big);
    let edge = Edge::start(up.url(), |c| c.max_object_size = 4000).await;
    for _ in 0..2 {
        let r = client().get(edge.url("/chunked-big")).send().await.unwrap();
        let status = cache_status(&r);
        assert_eq!(r.bytes().await.unwrap().len(), 10_000);
        assert!(!status.contains("stored"), "{status}");
    }
    assert_eq!(up.count("/chunked-big"), 2);
}

/// Defect 3: a fill that finds no room in the fill memory (at most `--cache-size` by
/// default) streams through without storing (and without claiming `stored`), and
/// reads from the upstream only as fast as its client takes the body: a client that
/// reads nothing holds a bounded amount, not the object.
#[tokio::test]
async fn a_fill_without_room_streams_at_the_pace_of_its_client() {
    const SIZE: usize = 32 << 20;
    let up = common::Upstream::start().await;
    let body = common::body_of(SIZE);
    let mut route = common::Route::ok("max-age=60", body.clone());
    route.chunks = 512;
    up.set("/big", route);
    up.set("/small", common::Route::ok("max-age=60", "small"));
    let edge = Edge::start(up.url(), |c| c.cache_size = 4 << 20).await;
    // A client that sends its request and reads only the head.
    let mut s = TcpStream::connect(edge.addr).await.unwrap();
    s.write_all(b"GET /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let mut head = [0u8; 512];
    let n = tokio::io::AsyncReadExt::read(&mut s, &mut head)
        .await
        .unwrap();
    buf.extend_from_slice(&head[..n]);
    let head_text = String::from_utf8_lossy(&buf).into_owned();
    assert!(head_text.starts_with("HTTP/1.1 200"), "{head_text}");
    assert!(!head_text.contains("stored"), "{head_text}");
    // Real flow control is the subject: give the edge time to (not) read ahead.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let read_upstream = edge.state.metrics.bytes_from_upstream.get();
    assert!(
        read_upstream < 16 << 20,
        "the edge read {read_upstream} bytes for a client that took none"
    );
    assert_eq!(up.finished(), 0);
    // Other clients are served meanwhile, and objects that fit are still stored.
    for want in ["fwd=miss", "hit"] {
        let r = client().get(edge.url("/small")).send().await.unwrap();
        assert!(cache_status(&r).contains(want), "{}", cache_status(&r));
    }
    // Once the client reads, it gets the whole body.
    let mut rest = Vec::new();
    tokio::time::timeout(
        LIMIT,
        tokio::io::AsyncReadExt::read_to_end(&mut s, &mut rest),
    )
    .await
    .ok();
    let total = buf.len() + rest.len();
    assert!(total >= SIZE, "{total}");
}

/// Log lines written while a test runs, captured from `tracing` (the test runtime has
/// one thread, so the server's tasks log here too).
#[derive(Clone, Default)]
struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let logs = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("edge=info")
            .with_ansi(false)
            .with_writer(move || logs.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }
}

/// Defect 2 (edge): idle keep-alive connections and slowloris heads are closed after
/// the header read timeout; the real timeout is the subject.
#[tokio::test]
async fn idle_and_slowloris_connections_are_closed() {
    let up = common::Upstream::start().await;
    up.set("/a", common::Route::ok("max-age=60", "a"));
    let edge = Edge::start(up.url(), |c| {
        c.header_read_timeout = Duration::from_millis(300);
    })
    .await;
    // Idle after one request.
    let mut idle = TcpStream::connect(edge.addr).await.unwrap();
    idle.write_all(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let r = read_response(&mut idle, &mut buf, "GET", LIMIT)
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    // Slowloris: a byte of head every 100 ms, never finishing.
    let mut slow = TcpStream::connect(edge.addr).await.unwrap();
    let started = std::time::Instant::now();
    let drip = async {
        slow.write_all(b"GET /a HTTP/1.1\r\n").await.unwrap();
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if slow.write_all(b"x").await.is_err() {
                return started.elapsed();
            }
            let mut one = [0u8; 1];
            if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(
                Duration::from_millis(1),
                tokio::io::AsyncReadExt::read(&mut slow, &mut one),
            )
            .await
            {
                return started.elapsed();
            }
        }
        started.elapsed()
    };
    let dripped = drip.await;
    assert!(
        dripped < Duration::from_secs(3),
        "slowloris held on {dripped:?}"
    );
    // The idle one is closed too: its next read sees the end.
    let closed = read_response(&mut idle, &mut buf, "GET", Duration::from_secs(3)).await;
    assert!(closed.is_none(), "{closed:?}");
}

/// Defect 2 (edge): at `--max-connections`, a new connection is answered 503 and
/// closed, the refusal is logged (and counted), and the connections already open keep
/// working.
#[tokio::test]
async fn at_the_connection_cap_new_connections_are_refused_and_logged() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let up = common::Upstream::start().await;
    up.set("/a", common::Route::ok("max-age=60", "a"));
    let edge = Edge::start(up.url(), |c| c.max_connections = 3).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(edge.addr).await.unwrap();
        let mut buf = Vec::new();
        s.write_all(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        let r = read_response(&mut s, &mut buf, "GET", LIMIT).await.unwrap();
        assert_eq!(r.status, 200);
        open.push((s, buf));
    }
    for _ in 0..2 {
        let refused =
            common::hostile::exchange(edge.addr, b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n", LIMIT)
                .await;
        let text = String::from_utf8_lossy(&refused);
        assert!(text.starts_with("HTTP/1.1 503"), "{text}");
        assert!(text.contains("connection: close"), "{text}");
    }
    // The open ones still work.
    for (s, buf) in &mut open {
        s.write_all(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        let r = read_response(s, buf, "GET", LIMIT).await.unwrap();
        assert_eq!(r.status, 200);
    }
    assert_eq!(edge.state.cfg.connections.refused.get(), 2);
    assert_eq!(edge.state.cfg.connections.open.get(), 3);
    let text = logs.text();
    assert!(
        text.contains("connection limit reached") && text.contains("max_connections=3"),
        "{text}"
    );
    // Once one closes, a new connection is served again.
    drop(open.pop());
    common::eventually(LIMIT, "a slot freed", || async {
        edge.state.cfg.connections.open.get() == 2
    })
    .await;
    let r = client().get(edge.url("/a")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// Defect 3 (edge): a client that stops reading its response is disconnected after
/// `--send-timeout`, releasing what it held; the real timeout is the subject.
#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected() {
    let up = common::Upstream::start().await;
    up.set(
        "/big",
        common::Route::ok("max-age=60", common::body_of(16 << 20)),
    );
    let edge = Edge::start(up.url(), |c| c.send_timeout = Duration::from_millis(500)).await;
    // Stored first, so the stalled client reads from the store.
    let r = client().get(edge.url("/big")).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), 16 << 20);
    let mut s = TcpStream::connect(edge.addr).await.unwrap();
    s.write_all(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    // Read nothing for a while: the edge fills the socket buffers, then gives up.
    common::eventually(LIMIT, "the stalled connection closed", || async {
        edge.state.cfg.connections.open.get() == 0
    })
    .await;
}
