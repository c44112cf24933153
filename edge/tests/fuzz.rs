//! A bounded fuzzing pass (issue 14 checks): seeded random inputs, a fixed count, over
//! the rules a request's bytes reach (paths, `Range`, `Cache-Control` and targeted
//! fields, HTTP dates, `Host`) and over whole request heads sent to a real edge. The
//! property is the same everywhere: no panic, and every answer is a valid HTTP
//! response or a clean close, within a bound. The seed is fixed so a failure
//! reproduces; `FUZZ_SEED` picks another.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::hostile::read_response;
use common::{Edge, Route, Upstream, client};
use http_rules::cache_control::CacheControl;
use http_rules::date::{format_http_date, parse_http_date_at};
use http_rules::path::normalize;
use http_rules::range::{RangeDecision, evaluate_range};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn rng() -> StdRng {
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(14);
    StdRng::seed_from_u64(seed)
}

/// One of `pieces`, or a few random bytes now and then.
fn pick<'a>(r: &mut StdRng, pieces: &[&'a str]) -> std::borrow::Cow<'a, str> {
    if r.random_ratio(1, 8) {
        let n = r.random_range(0..6);
        let bytes: Vec<u8> = (0..n).map(|_| r.random_range(0x20..0x7f)).collect();
        return String::from_utf8_lossy(&bytes).into_owned().into();
    }
    pieces[r.random_range(0..pieces.len())].into()
}

/// A string made of `1..max` pieces.
fn compose(r: &mut StdRng, pieces: &[&str], max: usize) -> String {
    let n = r.random_range(1..max);
    (0..n).map(|_| pick(r, pieces)).collect()
}

const PATH: &[&str] = &[
    "/",
    "a",
    "b",
    ".",
    "..",
    "%2e",
    "%2E%2e",
    "%2f",
    "%2F",
    "%",
    "%4",
    "%zz",
    "%41",
    "%7e",
    "?",
    "&",
    "=",
    "CMCD=x",
    ";",
    "~",
    "\"",
    "{",
    "|",
    "\\",
    "%00",
    "%ff",
    ".edge",
    "//",
    "seg_1.m4s",
    "*",
];
const RANGE: &[&str] = &[
    "bytes",
    "=",
    "0",
    "1",
    "9",
    "-",
    ",",
    " ",
    "99999999999999999999999",
    "bytes=0-",
    "-0",
    "x",
    "BYTES",
    ";",
    "\t",
];
const CC: &[&str] = &[
    "max-age",
    "s-maxage",
    "=",
    "60",
    "-1",
    "\"",
    "no-store",
    "private",
    "no-cache",
    ",",
    " ",
    "must-understand",
    "stale-if-error",
    "?0",
    "?1",
    "(",
    ")",
    "1.5",
    ";",
    "99999999999999999999",
    "\\",
    "=\"a,b\"",
];
const DATE: &[&str] = &[
    "Sun", "sunday", ",", " ", "06", "6", "Nov", "NOV", "1994", "94", "08:49:37", "24:00:00",
    "GMT", "gmt", "UTC", "-", "31", "Feb", "0", "99999",
];

/// A date in one of the three forms, with random fields and case: often valid.
fn date_like(r: &mut StdRng) -> String {
    let days = ["Sun", "Monday", "tue", "WED"];
    let months = ["Jan", "feb", "MAR", "Nov", "Dec"];
    let (d, m, y) = (
        r.random_range(0..33),
        months[r.random_range(0..months.len())],
        r.random_range(1900..2100),
    );
    let (h, mi, sec) = (
        r.random_range(0..25),
        r.random_range(0..61),
        r.random_range(0..62),
    );
    let day = days[r.random_range(0..days.len())];
    let zone = pick(r, &["GMT", "gmt", "UTC"]);
    match r.random_range(0..3) {
        0 => format!("{day}, {d:02} {m} {y} {h:02}:{mi:02}:{sec:02} {zone}"),
        1 => format!(
            "{day}, {d:02}-{m}-{:02} {h:02}:{mi:02}:{sec:02} {zone}",
            y % 100
        ),
        _ => format!("{day} {m} {d:>2} {h:02}:{mi:02}:{sec:02} {y}"),
    }
}

#[test]
fn rules_never_panic_and_keep_their_promises() {
    let mut r = rng();
    let now = UNIX_EPOCH + Duration::from_secs(1_780_000_000);
    // How many inputs each rule accepted: a pass that only fed it garbage tests little.
    let (mut paths, mut ranges, mut dates) = (0, 0, 0);
    for _ in 0..20_000 {
        // Paths: one normal form, itself normal, always a path.
        let target = format!("/{}", compose(&mut r, PATH, 12));
        if let Ok(normal) = normalize(&target) {
            paths += 1;
            assert!(normal.starts_with('/'), "{target:?} -> {normal:?}");
            assert_eq!(normalize(&normal).as_deref(), Ok(&*normal), "{target:?}");
            let path = normal.split('?').next().unwrap_or("");
            assert!(
                !path.split('/').any(|s| s == "." || s == ".."),
                "{target:?} -> {normal:?}"
            );
        }
        // Ranges: a satisfiable range lies within the representation.
        let value = if r.random_bool(0.5) {
            format!(
                "bytes={}-{}",
                r.random_range(0..3000u64),
                r.random_range(0..3000u64)
            )
        } else {
            compose(&mut r, RANGE, 8)
        };
        let len = r.random_range(0..2000u64);
        if let RangeDecision::Satisfiable(range) = evaluate_range(&value, len) {
            ranges += 1;
            assert!(
                range.start() <= range.end() && *range.end() < len,
                "{value:?} {len}"
            );
        }
        // Cache-Control and targeted fields: parsed without panicking.
        let cc = compose(&mut r, CC, 10);
        let _ = CacheControl::parse([cc.as_str()]);
        let _ = CacheControl::parse_targeted([cc.as_str()]);
        // Dates: whatever parses formats back to a date that parses to the same time.
        let date = if r.random_bool(0.5) {
            date_like(&mut r)
        } else {
            compose(&mut r, DATE, 9)
        };
        if let Some(t) = parse_http_date_at(&date, now)
            && t >= UNIX_EPOCH
        {
            dates += 1;
            let again = parse_http_date_at(&format_http_date(t), now);
            assert_eq!(again, Some(t), "{date:?}");
        }
        // Hosts.
        let host = compose(
            &mut r,
            &["a", ".", ":", "80", "[", "]", "::1", "@", " ", "%41", "v1"],
            6,
        );
        let _ = http_rules::host::valid_host(&host);
    }
    assert!(
        paths > 5_000 && ranges > 2_000 && dates > 1_000,
        "{paths} {ranges} {dates}"
    );
}

const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PURGE", "OPTIONS", "DELETE", "get", "G\x01T", "", "CONNECT",
];
const FIELDS: &[&str] = &[
    "Host: a",
    "Host:",
    "Host: a b",
    "Host: a\r\nHost: b",
    "Content-Length: 5",
    "Content-Length: -1",
    "Content-Length: 99999999999999999999",
    "Transfer-Encoding: chunked",
    "Transfer-Encoding: gzip",
    "Range: bytes=0-9",
    "Range: bytes=5-1,2-3",
    "If-Range: Sun, 06 Nov 1994 08:49:37 GMT",
    "If-Modified-Since: sun, 06 nov 1994 08:49:37 gmt",
    "If-None-Match: *",
    "If-None-Match: \"a,b\"",
    "Cache-Control: no-store",
    "Accept-Language: EN-us, fr;q=0.5",
    "Authorization: bearer x",
    "Connection: close",
    "Connection: keep-alive, x-y",
    "Expect: 100-continue",
    "Via: 1.1 e1",
    "X: \u{7f}",
    ": empty name",
    "no colon",
];

/// One random request head (and maybe a body).
fn request(r: &mut StdRng) -> Vec<u8> {
    let method = pick(r, METHODS);
    let target = if r.random_ratio(1, 10) {
        pick(r, &["*", "http://x/a", "a", "//", ""]).into_owned()
    } else {
        format!("/{}", compose(r, PATH, 10))
    };
    let version = pick(
        r,
        &["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1 x", "http/1.1"],
    );
    let mut head = format!("{method} {target} {version}\r\n");
    if r.random_ratio(4, 5) {
        head.push_str("Host: a\r\n");
    }
    for _ in 0..r.random_range(0..6) {
        head.push_str(&pick(r, FIELDS));
        head.push_str("\r\n");
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut bytes = head.into_bytes();
    if r.random_ratio(1, 4) {
        bytes.extend_from_slice(
            pick(
                r,
                &["hello", "5\r\nhello\r\n0\r\n\r\n", "GET / HTTP/1.1\r\n\r\n"],
            )
            .as_bytes(),
        );
    }
    bytes
}

#[tokio::test]
async fn request_heads_get_a_valid_answer_or_a_clean_close() {
    let panics = Arc::new(AtomicUsize::new(0));
    let seen = panics.clone();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        seen.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));
    let up = Upstream::start().await;
    up.set("/a", Route::ok("max-age=60", common::body_of(100)));
    up.set("/", Route::ok("max-age=60", "root"));
    let edge = Edge::start(up.url(), |c| {
        c.purge_token = Some("x".into());
        c.header_read_timeout = Duration::from_millis(500);
        c.first_byte_timeout = Duration::from_millis(500);
    })
    .await;
    let mut r = rng();
    let started = SystemTime::now();
    for i in 0..400 {
        let bytes = request(&mut r);
        let mut s = TcpStream::connect(edge.addr).await.unwrap();
        // The edge may close before reading all of it: a write error is a clean close.
        let _ = s.write_all(&bytes).await;
        let mut buf = Vec::new();
        let answer = read_response(&mut s, &mut buf, "GET", Duration::from_secs(5)).await;
        if let Some(answer) = answer {
            let line = answer.head.lines().next().unwrap_or("");
            let mut parts = line.split(' ');
            let version = parts.next().unwrap_or("");
            let code: u16 = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
            assert!(
                version.starts_with("HTTP/1.") && (100..600).contains(&code),
                "request {i}: {:?} -> {line:?}",
                String::from_utf8_lossy(&bytes)
            );
        } else {
            // No head within the bound: the connection must be closed, not hanging.
            let mut one = [0u8; 1];
            let closed = tokio::time::timeout(
                Duration::from_secs(1),
                tokio::io::AsyncReadExt::read(&mut s, &mut one),
            )
            .await;
            assert!(
                matches!(closed, Ok(Ok(0) | Err(_))),
                "request {i}: {:?} left the connection open without an answer",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
    assert!(started.elapsed().unwrap() < Duration::from_secs(120));
    assert_eq!(panics.load(Ordering::SeqCst), 0, "the edge panicked");
    // Still serving.
    let ok = client()
        .get(edge.url("/.edge/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}
