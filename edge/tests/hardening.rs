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
            .with_env_filter("edge=info,http_rules=info")
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
    let open = || edge.state.cfg.connections.open.get();
    common::eventually(LIMIT, "the first connection closed", || async {
        open() == 0
    })
    .await;
    let mut s = TcpStream::connect(edge.addr).await.unwrap();
    s.write_all(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    common::eventually(LIMIT, "the stalled connection open", || async {
        open() == 1
    })
    .await;
    // Read nothing: the edge fills the socket buffers, then gives up after the send
    // timeout, well before anything else (the header read timeout, 10 s) could.
    let started = std::time::Instant::now();
    common::eventually(
        Duration::from_secs(5),
        "the stalled connection closed",
        || async { open() == 0 },
    )
    .await;
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    // The client sees the end of a cut response: less than the body, then the close.
    let mut got = Vec::new();
    let _ = tokio::time::timeout(
        LIMIT,
        tokio::io::AsyncReadExt::read_to_end(&mut s, &mut got),
    )
    .await;
    assert!(got.len() < 16 << 20, "{}", got.len());
}

/// Defect 7: one normal form of the path for the cache key, the upstream request,
/// PURGE and admin routing (RFC 3986 §6.2.2): aliases share one entry, `%2F` stays
/// data, what has no normal form is refused.
#[tokio::test]
async fn one_normal_form_for_key_upstream_purge_and_admin() {
    let up = common::Upstream::start().await;
    up.set("/vod/sample/x", common::Route::ok("max-age=60", "x"));
    up.set(
        "/vod/sample/a%2Findex.m3u8",
        common::Route::ok("max-age=60", "encoded"),
    );
    let edge = Edge::start(up.url(), |c| c.purge_token = Some("t".into())).await;
    let c = client();
    let get = |target: &'static str| {
        let addr = edge.addr;
        async move {
            common::hostile::exchange(
                addr,
                format!("GET {target} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").as_bytes(),
                LIMIT,
            )
            .await
        }
    };
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    let first = text(get("/vod/%73ample/x").await);
    assert!(first.contains("fwd=miss"), "{first}");
    for alias in [
        "/vod/sample/x",
        "/vod/./sample/x",
        "/vod/%73ample/../sample/x",
        "/v%6Fd/sample/x",
    ] {
        let r = text(get(alias).await);
        assert!(r.contains("e1; hit"), "{alias}: {r}");
    }
    assert_eq!(up.count("/vod/sample/x"), 1);
    assert_eq!(
        up.seen_for("/vod/sample/x")[0].path_and_query,
        "/vod/sample/x"
    );
    // An encoded slash is not a separator: its own key, sent upstream encoded.
    let r = text(get("/vod/sample/a%2findex.m3u8").await);
    assert!(r.ends_with("encoded"), "{r}");
    let seen: Vec<String> = up.shared_paths();
    assert!(
        seen.iter().any(|p| p == "/vod/sample/a%2Findex.m3u8"),
        "{seen:?}"
    );
    // PURGE by an alias purges the entry; a prefix matches in the normal form too.
    let purge = |path: &str| {
        c.request(
            reqwest::Method::from_bytes(b"PURGE").unwrap(),
            edge.url(path),
        )
        .header("authorization", "Bearer t")
        .send()
    };
    assert_eq!(purge("/vod/%73ample/x").await.unwrap().status(), 200);
    assert!(text(get("/vod/sample/x").await).contains("fwd=miss"));
    assert_eq!(purge("/v%6Fd/s*").await.unwrap().status(), 200);
    assert!(text(get("/vod/sample/x").await).contains("fwd=miss"));
    // No normal form: 400, nothing upstream.
    for bad in ["/a%zz", "/../etc/passwd", "/x/%2e%2e/%2e%2e/y"] {
        let r = text(get(bad).await);
        assert!(r.starts_with("HTTP/1.1 400"), "{bad}: {r}");
    }
    // `/.edge` and `/.edge/` are the edge's own, never proxied.
    for admin in ["/.edge", "/.edge/", "/x/../.edge/nothing"] {
        let r = text(get(admin).await);
        assert!(r.starts_with("HTTP/1.1 404"), "{admin}: {r}");
    }
    let r = text(get("/x/../.edge/healthz").await);
    assert!(r.ends_with("ok\n"), "{r}");
    assert!(
        up.shared_paths()
            .iter()
            .all(|p| !p.starts_with("/.edge") && !p.starts_with("/x")),
        "{:?}",
        up.shared_paths()
    );
}

/// Defect 7 through a tier: `/x/../.edge/status` sent to a child edge is the child's
/// own status, and never reaches the parent's admin API.
#[tokio::test]
async fn a_child_edge_never_forwards_into_the_parents_admin_api() {
    let parent = Hostile::start(|r| {
        vec![Step::Write(response(
            "200 OK",
            &["Cache-Control: no-store"],
            format!("parent saw {}", r.target).as_bytes(),
        ))]
    })
    .await;
    let child = Edge::start(parent.url(), |_| {}).await;
    for target in [
        "/x/../.edge/status",
        "/x/%2e%2e/.edge/status",
        "/.edge/./status",
    ] {
        let raw = common::hostile::exchange(
            child.addr,
            format!("GET {target} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").as_bytes(),
            LIMIT,
        )
        .await;
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("\"name\":\"e1\""), "{target}: {text}");
    }
    assert!(
        parent.seen().iter().all(|r| !r.target.contains(".edge")),
        "{:?}",
        parent
            .seen()
            .iter()
            .map(|r| r.target.clone())
            .collect::<Vec<_>>()
    );
}

/// Defect 8: a duplicate, empty, invalid or (in HTTP/1.1) missing `Host` is refused
/// with 400 (RFC 9112 §3.2); `Forwarded` quotes a `host=` that is not a token (RFC 7239
/// §4), so nothing in it can add a pair; the bearer scheme of PURGE is
/// case-insensitive (RFC 9110 §11.1).
#[tokio::test]
async fn hosts_are_validated_forwarded_is_quoted_and_bearer_is_case_insensitive() {
    let up = common::Upstream::start().await;
    up.set("/a", common::Route::ok("no-store", "a"));
    let edge = Edge::start(up.url(), |c| c.purge_token = Some("t".into())).await;
    let ask = |head: &'static str| {
        let addr = edge.addr;
        async move {
            let raw = common::hostile::exchange(addr, head.as_bytes(), LIMIT).await;
            String::from_utf8_lossy(&raw).into_owned()
        }
    };
    for bad in [
        "GET /a HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
        "GET /a HTTP/1.1\r\nHost: a\r\nHost: a\r\nConnection: close\r\n\r\n",
        "GET /a HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n",
        "GET /a HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n",
        "GET /a HTTP/1.1\r\nHost: a/b\r\nConnection: close\r\n\r\n",
        "GET /a HTTP/1.1\r\nHost: u@a\r\nConnection: close\r\n\r\n",
        "GET /a HTTP/1.1\r\nConnection: close\r\n\r\n",
    ] {
        let r = ask(bad).await;
        assert!(r.starts_with("HTTP/1.1 400"), "{bad:?}: {r}");
    }
    let r = ask("GET /a HTTP/1.0\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.0 200"), "HTTP/1.0 may omit Host: {r}");
    assert_eq!(up.count("/a"), 1, "no refused request went upstream");
    // A host that is not a token is quoted; one that tries to add pairs stays inside
    // its quoted string.
    for host in ["edge.example:8081", "a;for=evil"] {
        let head = format!("GET /a HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let raw = common::hostile::exchange(edge.addr, head.as_bytes(), LIMIT).await;
        assert!(String::from_utf8_lossy(&raw).starts_with("HTTP/1.1 200"));
    }
    let forwarded: Vec<String> = up
        .seen_for("/a")
        .iter()
        .map(|s| s.headers["forwarded"].to_str().unwrap().to_owned())
        .collect();
    assert!(
        forwarded[1].ends_with(";host=\"edge.example:8081\""),
        "{forwarded:?}"
    );
    assert!(
        forwarded[2].ends_with(";host=\"a;for=evil\""),
        "{forwarded:?}"
    );
    // `bearer`, `BEARER`: the scheme is case-insensitive.
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let r = client()
            .request(
                reqwest::Method::from_bytes(b"PURGE").unwrap(),
                edge.url("/a*"),
            )
            .header("authorization", format!("{scheme} t"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{scheme}");
    }
}

async fn status_of(url: String, headers: &[(&str, &str)]) -> (u16, String, bytes::Bytes) {
    let mut rb = client().get(url);
    for (n, v) in headers {
        rb = rb.header(*n, *v);
    }
    let r = rb.send().await.unwrap();
    let s = cache_status(&r);
    (r.status().as_u16(), s, r.bytes().await.unwrap())
}

/// RFC 9213: `CDN-Cache-Control` decides over `Cache-Control` (and `Expires`) for the
/// edge, and the field named by `--targeted-cache-control` over both; an invalid or
/// empty targeted field is ignored.
#[tokio::test]
async fn targeted_cache_control_rfc_9213() {
    let up = common::Upstream::start().await;
    let route = |cc: &str, extra: &[(&str, &str)]| {
        let mut r = common::Route::ok(cc, "t");
        for (n, v) in extra {
            r = r.header(n, v);
        }
        r
    };
    up.set(
        "/cdn-stores",
        route("no-store", &[("cdn-cache-control", "max-age=60")]),
    );
    up.set(
        "/cdn-refuses",
        route("max-age=60", &[("cdn-cache-control", "no-store")]),
    );
    up.set(
        "/cdn-private",
        route("public, max-age=60", &[("cdn-cache-control", "private")]),
    );
    up.set(
        "/cdn-invalid",
        route("no-store", &[("cdn-cache-control", "Max-Age=60")]),
    );
    up.set(
        "/cdn-over-expires",
        route(
            "",
            &[
                ("expires", "Thu, 01 Jan 1970 00:00:00 GMT"),
                ("cdn-cache-control", "max-age=60"),
            ],
        ),
    );
    up.set(
        "/own",
        route(
            "max-age=600",
            &[
                ("cdn-cache-control", "max-age=60"),
                ("rivulet-cdn-cache-control", "max-age=5"),
            ],
        ),
    );
    let edge = Edge::start(up.url(), |c| {
        c.targeted_cache_control = Some(http::HeaderName::from_static("rivulet-cdn-cache-control"));
    })
    .await;
    for (path, stored) in [
        ("/cdn-stores", true),
        ("/cdn-refuses", false),
        ("/cdn-private", false),
        ("/cdn-invalid", false),
        ("/cdn-over-expires", true),
        ("/own", true),
    ] {
        status_of(edge.url(path), &[]).await;
        let (_, status, _) = status_of(edge.url(path), &[]).await;
        assert_eq!(status.contains("hit"), stored, "{path}: {status}");
    }
    // The edge's own field wins: 5 s, not 60 or 600.
    edge.clock.advance(Duration::from_secs(6));
    let (_, status, _) = status_of(edge.url("/own"), &[]).await;
    assert!(status.contains("fwd=stale"), "{status}");
    // Targeted fields are forwarded, for the CDN tiers and caches below.
    let r = client().get(edge.url("/own")).send().await.unwrap();
    assert_eq!(r.headers()["cdn-cache-control"], "max-age=60");
}

/// RFC 9111 §4.2, §5.1, §5.2.2.3, §4.3.2, RFC 9110 §13.1.5 and §15.1: lenient dates, the
/// first member of an `Age` list, `must-understand`, `If-Modified-Since` against the
/// stored `Date`, an `If-Range` date only with a strong `Last-Modified`, 5xx stored
/// only with explicit freshness, `Accept-Language` normalised in the variant key.
#[tokio::test]
async fn caching_by_the_rfcs() {
    let up = common::Upstream::start().await;
    let edge = Edge::start(up.url(), |_| {}).await;
    let now = http_rules::Clock::now(&edge.clock);
    let in_a_minute = http_rules::date::format_http_date(now + Duration::from_secs(60));
    let now_text = http_rules::date::format_http_date(now);
    // A lowercase Expires (and a wrong day name) is still a date at a cache.
    let lenient =
        in_a_minute
            .to_ascii_lowercase()
            .replacen(&in_a_minute[..3].to_ascii_lowercase(), "mon", 1);
    up.set(
        "/lenient",
        common::Route::ok("", "l").header("expires", &lenient),
    );
    up.set(
        "/age-list",
        common::Route::ok("max-age=60", "a").header("age", "10, 20"),
    );
    up.set(
        "/must-understand",
        common::Route::ok("must-understand, no-store, max-age=60", "m"),
    );
    up.set("/no-lm", common::Route::ok("max-age=60", body_of_len(100)));
    up.set(
        "/weak-lm",
        common::Route::ok("max-age=60", body_of_len(100))
            .header("last-modified", &now_text)
            .header("date", &now_text),
    );
    let mut failing = common::Route::ok("max-age=60", "down for maintenance");
    failing.status = 503;
    up.set("/503-explicit", failing.clone());
    failing.headers = vec![];
    up.set("/503-implicit", failing);
    up.set(
        "/lang",
        common::Route::ok("max-age=60", "l").header("vary", "accept-language"),
    );

    status_of(edge.url("/lenient"), &[]).await;
    assert!(
        status_of(edge.url("/lenient"), &[]).await.1.contains("hit"),
        "{lenient}"
    );

    status_of(edge.url("/age-list"), &[]).await;
    let r = client().get(edge.url("/age-list")).send().await.unwrap();
    assert_eq!(r.headers()["age"], "10");
    assert!(cache_status(&r).contains("ttl=50"), "{}", cache_status(&r));

    status_of(edge.url("/must-understand"), &[]).await;
    assert!(
        status_of(edge.url("/must-understand"), &[])
            .await
            .1
            .contains("hit")
    );

    // No Last-Modified: If-Modified-Since compares with the stored Date.
    status_of(edge.url("/no-lm"), &[]).await;
    let (code, _, _) = status_of(edge.url("/no-lm"), &[("if-modified-since", &now_text)]).await;
    assert_eq!(code, 304);
    // Last-Modified equal to Date is weak: an If-Range date cannot hold.
    status_of(edge.url("/weak-lm"), &[]).await;
    let (code, _, body) = status_of(
        edge.url("/weak-lm"),
        &[("range", "bytes=0-9"), ("if-range", &now_text)],
    )
    .await;
    assert_eq!((code, body.len()), (200, 100));

    // 5xx: stored on a miss only with explicit freshness.
    for (path, stored) in [("/503-explicit", true), ("/503-implicit", false)] {
        status_of(edge.url(path), &[]).await;
        let (code, status, _) = status_of(edge.url(path), &[]).await;
        assert_eq!(
            (code, status.contains("hit")),
            (503, stored),
            "{path}: {status}"
        );
    }

    // Accept-Language: case, order, whitespace and weights normalised.
    status_of(edge.url("/lang"), &[("accept-language", "en-US, fr;q=0.5")]).await;
    for same in ["fr;q=0.50,EN-us", "en-us,fr;q=0.5", "fr;q=0.5, en-US"] {
        let (_, status, _) = status_of(edge.url("/lang"), &[("accept-language", same)]).await;
        assert!(status.contains("hit"), "{same}: {status}");
    }
    let (_, status, _) = status_of(edge.url("/lang"), &[("accept-language", "fr, en-US")]).await;
    assert!(status.contains("fwd=miss"), "{status}");
    assert_eq!(up.count("/lang"), 2);
}

fn body_of_len(n: usize) -> bytes::Bytes {
    common::body_of(n)
}

/// Defect 3, the upstream side: at most `--max-upstream-requests` requests to the
/// upstream at once; another waits for a slot (here beyond the connect and first-byte
/// timeouts: 503, without counting against the upstream's health) and then goes ahead.
#[tokio::test]
async fn upstream_requests_wait_for_a_slot() {
    let up = common::Upstream::start().await;
    let gate = common::Gate::closed();
    // Its body is held after the first chunk: the fill keeps its slot meanwhile.
    let mut held = common::Route::ok("max-age=60", common::body_of(10_000));
    held.chunks = 2;
    held.hold_body = Some(gate.clone());
    up.set("/held", held);
    up.set("/other", common::Route::ok("max-age=60", "other"));
    let edge = Edge::start(up.url(), |c| {
        c.max_upstream_requests = 1;
        c.connect_timeout = Duration::from_millis(200);
        c.first_byte_timeout = Duration::from_millis(300);
    })
    .await;
    let first = tokio::spawn({
        let url = edge.url("/held");
        async move {
            client()
                .get(url)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
                .len()
        }
    });
    common::eventually(LIMIT, "the first request upstream", || async {
        up.count("/held") == 1
    })
    .await;
    let r = client().get(edge.url("/other")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(up.count("/other"), 0);
    assert_eq!(edge.state.metrics.upstream_errors.get(), 0);
    gate.open();
    assert_eq!(first.await.unwrap(), 10_000);
    let r = client().get(edge.url("/other")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}
