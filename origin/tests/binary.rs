//! The `origin` binary as a user runs it: it builds the sample into an empty library, prints
//! the URLs, serves them, and stops cleanly on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A minimal HTTP/1.1 GET over a fresh connection; returns the status line and the body.
fn get(authority: &str, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(authority).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let status = text.lines().next().unwrap_or_default().to_owned();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Kills the child if the test fails before it stopped by itself.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn builds_the_sample_prints_urls_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let library = dir.path().join("data");
    let access_log = dir.path().join("access.log");
    let child = Command::new(env!("CARGO_BIN_EXE_origin"))
        .args([
            "--access-log",
            access_log.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--sample-ladder",
            "small",
            "--sample-duration",
            "2",
        ])
        .env("ORIGIN_LIBRARY", &library)
        .env("ORIGIN_WEB_LIBS", dir.path().join("none"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Guard(child);
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    // Banner: the listening line, then watch, HLS and DASH URLs of the sample.
    for line in lines.by_ref().take(4) {
        printed.push(line.unwrap());
    }
    let banner = printed.join("\n");
    let authority = banner
        .split("listening on http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no listening line in {banner}"))
        .to_owned();
    for url in [
        "/watch/sample",
        "/vod/sample/master.m3u8",
        "/vod/sample/manifest.mpd",
    ] {
        assert!(
            banner.contains(&format!("http://{authority}{url}")),
            "{url} in {banner}"
        );
        let (status, _) = get(&authority, url);
        assert!(status.contains(" 200 "), "{url}: {status}");
    }
    assert!(library.join("sample/master.m3u8").is_file());
    let (_, index) = get(&authority, "/");
    assert!(index.contains("watch/sample"));

    let killed = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "origin did not stop within 10 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "graceful exit, got {status}");

    // One access log line per request, in order, with the client and the bytes sent.
    let log = std::fs::read_to_string(&access_log).unwrap();
    let lines: Vec<Vec<&str>> = log.lines().map(|l| l.split(' ').collect()).collect();
    assert_eq!(lines.len(), 4, "{log}");
    let master = &lines[1];
    assert_eq!(master.len(), 7, "{log}");
    assert!(master[0].parse::<f64>().unwrap() > 1.7e9, "{log}");
    assert_eq!(
        master[1..5],
        ["127.0.0.1", "GET", "/vod/sample/master.m3u8", "200"]
    );
    assert!(master[5].parse::<u64>().unwrap() > 100, "{log}");
    assert_eq!(lines[3][3], "/", "{log}");
}
