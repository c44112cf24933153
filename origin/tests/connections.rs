//! Issue 14, defect 2: every connection to the origin is bounded. Idle and slowloris
//! connections are closed after the header-read timeout, request heads have a size and
//! a field count, the connection cap answers 503 with one log line and the origin
//! answers again once the idle connections are gone, and running out of descriptors
//! backs off instead of spinning. The first tests drive the server loop in-process;
//! the last two run the binary, for its log and under a low `RLIMIT_NOFILE`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http_rules::server::Limits;
use origin::{AppState, OriginConfig, router, serve_with};

/// An origin over an empty library, served in-process within `limits`.
async fn start(limits: Limits) -> (SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::new(&OriginConfig::new(dir.path()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let events = state.metrics().clone();
    tokio::spawn(async move {
        serve_with(
            listener,
            router(state),
            &limits,
            events,
            std::future::pending(),
        )
        .await
        .unwrap();
    });
    (addr, dir)
}

fn short_timeouts() -> Limits {
    Limits {
        header_read_timeout: Duration::from_millis(500),
        ..Limits::default()
    }
}

/// Reads until the server closes the connection; returns what it sent and how long
/// that took, or fails after `within`.
fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, Duration) {
    let started = Instant::now();
    stream.set_read_timeout(Some(within)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            // A reset is a close too.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "still open after {:?} ({e}); received {:?}",
                started.elapsed(),
                String::from_utf8_lossy(&got)
            ),
        }
    }
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_closed_after_the_header_read_timeout() {
    let (addr, _dir) = start(short_timeouts()).await;
    tokio::task::spawn_blocking(move || {
        // Never sends anything.
        let mut silent = TcpStream::connect(addr).unwrap();
        let (got, after) = read_until_closed(&mut silent, Duration::from_secs(5));
        assert_eq!(got, "");
        assert!(after < Duration::from_secs(3), "closed after {after:?}");

        // One request, then idle on the kept-alive connection.
        let mut kept = TcpStream::connect(addr).unwrap();
        kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap();
        let (got, after) = read_until_closed(&mut kept, Duration::from_secs(5));
        assert!(got.starts_with("HTTP/1.1 200"), "{got}");
        assert!(after < Duration::from_secs(3), "closed after {after:?}");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_head_is_cut_off_after_the_header_read_timeout() {
    let (addr, _dir) = start(short_timeouts()).await;
    tokio::task::spawn_blocking(move || {
        let mut slow = TcpStream::connect(addr).unwrap();
        let mut writer = slow.try_clone().unwrap();
        // A byte every 50 ms, never the blank line that ends the head (10 s of it).
        let head = format!(
            "GET /healthz HTTP/1.1\r\nHost: a\r\nX-Slow: {}",
            "a".repeat(200)
        );
        let dripping = std::thread::spawn(move || {
            for b in head.bytes() {
                if writer.write_all(&[b]).is_err() {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            false
        });
        let (got, after) = read_until_closed(&mut slow, Duration::from_secs(5));
        assert!(after < Duration::from_secs(3), "closed after {after:?}");
        // Cut off, not answered as if the head were complete.
        assert!(!got.contains(" 200 "), "{got}");
        drop(slow);
        let _ = dripping.join();
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_heads_are_bounded_in_size_and_fields() {
    let limits = Limits {
        max_header_size: 4096,
        max_headers: 20,
        ..short_timeouts()
    };
    let (addr, _dir) = start(limits).await;
    tokio::task::spawn_blocking(move || {
        let ask = |head: String| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(head.as_bytes()).unwrap();
            read_until_closed(&mut s, Duration::from_secs(5)).0
        };
        let fits = ask("GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".into());
        assert!(fits.starts_with("HTTP/1.1 200"), "{fits}");
        let big = ask(format!(
            "GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
            "b".repeat(8192)
        ));
        assert!(big.starts_with("HTTP/1.1 431"), "{big}");
        let fields: String = (0..30).map(|i| format!("X-F{i}: v\r\n")).collect();
        let many = ask(format!("GET /healthz HTTP/1.1\r\nHost: a\r\n{fields}\r\n"));
        assert!(many.starts_with("HTTP/1.1 431"), "{many}");
    })
    .await
    .unwrap();
}

/// The `origin` binary over an empty library, its stderr (the log) kept.
struct Origin {
    child: Child,
    authority: String,
    _dir: tempfile::TempDir,
}

impl Origin {
    fn start(wrapper: &[&str], flags: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (program, before) = match wrapper.split_first() {
            Some((w, rest)) => (*w, [rest, &[env!("CARGO_BIN_EXE_origin")]].concat()),
            None => (env!("CARGO_BIN_EXE_origin"), Vec::new()),
        };
        let mut child = Command::new(program)
            .args(before)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--no-sample",
                "--no-ingest",
                "--no-web-libs-install",
            ])
            .args(flags)
            .env("ORIGIN_LIBRARY", dir.path())
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let authority = first
            .split("listening on http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no listening line in {first}"))
            .to_owned();
        // Keep reading stdout so the banner never blocks the origin.
        std::thread::spawn(move || for _ in lines {});
        Origin {
            child,
            authority,
            _dir: dir,
        }
    }

    fn connect(&self) -> TcpStream {
        TcpStream::connect(&self.authority).unwrap()
    }

    /// A GET on a fresh connection: the whole answer, or what the failure was.
    fn get(&self, path: &str) -> String {
        let attempt = || -> std::io::Result<String> {
            let mut s = TcpStream::connect(&self.authority)?;
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            write!(
                s,
                "GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
            )?;
            let mut text = String::new();
            s.read_to_string(&mut text)?;
            Ok(text)
        };
        attempt().unwrap_or_else(|e| format!("error: {e}"))
    }

    /// Polls `path` until it answers 200, for at most `within`.
    fn wait_for_ok(&self, path: &str, within: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let answer = self.get(path);
            if answer.starts_with("HTTP/1.1 200") {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < within,
                "{path} still failing after {within:?}: {answer}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// CPU seconds the process used so far (user + system, from /proc/PID/stat).
    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        let after_name = stat.rsplit_once(')').unwrap().1;
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
        ticks / 100.0
    }

    /// Stops the origin (SIGTERM, a graceful exit) and returns its log.
    fn stop(mut self) -> String {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let mut log = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut log)
            .unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "graceful exit, got {status}: {log}");
        log
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn at_the_cap_connections_get_503_one_log_line_and_the_origin_recovers() {
    let origin = Origin::start(
        &[],
        &["--max-connections", "4", "--header-read-timeout", "1s"],
    );
    // Four idle connections take every slot.
    let idle: Vec<TcpStream> = (0..4).map(|_| origin.connect()).collect();
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..5 {
        let refused = origin.get("/healthz");
        assert!(
            refused.starts_with("HTTP/1.1 503") && refused.contains("connection limit reached"),
            "{refused}"
        );
    }
    // The idle connections are closed after the header-read timeout: room again.
    let recovered = origin.wait_for_ok("/healthz", Duration::from_secs(5));
    assert!(recovered < Duration::from_secs(3), "{recovered:?}");
    // Counted: the five refusals, and those while waiting for room.
    let metrics = origin.get("/metrics");
    let refused: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("origin_connections_refused_total "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(refused >= 5, "{metrics}");
    drop(idle);
    let log = origin.stop();
    // One line for all the refusals (at most one every 10 s), naming the flag.
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("connection limit reached"))
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains("--max-connections"), "{log}");
}

#[test]
fn out_of_descriptors_accept_backs_off_and_the_origin_recovers() {
    // Few descriptors and a cap above them: accept fails with EMFILE.
    let origin = Origin::start(
        &["prlimit", "--nofile=40:40", "--"],
        &["--max-connections", "1000", "--header-read-timeout", "2s"],
    );
    let idle: Vec<TcpStream> = (0..60)
        .filter_map(|_| TcpStream::connect(&origin.authority).ok())
        .collect();
    assert!(idle.len() > 40, "only {} connections", idle.len());
    std::thread::sleep(Duration::from_millis(300));
    let cpu_before = origin.cpu_seconds();
    std::thread::sleep(Duration::from_millis(1500));
    let cpu = origin.cpu_seconds() - cpu_before;
    // A spinning accept loop would burn the whole 1.5 s.
    assert!(cpu < 0.3, "{cpu} s of CPU in 1.5 s out of descriptors");
    // The idle connections (still open on this side) time out and free their
    // descriptors; those waiting in the backlog are accepted and time out in turn.
    origin.wait_for_ok("/healthz", Duration::from_secs(12));
    drop(idle);
    let log = origin.stop();
    let accept_lines = log.lines().filter(|l| l.contains("accept failed")).count();
    assert!(
        (1..=2).contains(&accept_lines),
        "{accept_lines} accept lines: {log}"
    );
}
