//! The `edge` binary: configuration from the environment, the start-up line, serving,
//! a graceful exit on SIGINT / SIGTERM, and config reloads on SIGHUP. Only the
//! processes started here are signalled, by PID.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Route, Upstream, cache_status, client, eventually, metric, status};

/// Kills the edge if the test fails before it exits by itself.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The lines the edge logs (on stdout) after its start-up line.
type Log = Arc<Mutex<Vec<String>>>;

/// Starts the binary with `env` and returns it with its URL, read from the start-up line.
async fn spawn_edge(env: &[(&str, &str)]) -> (Reap, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_edge"));
    cmd.env("RUST_LOG", "off").envs(env.iter().copied());
    let (child, url, _) = start(cmd).await;
    (child, url)
}

/// Starts `cmd` (the edge binary, perhaps through a shell) with the tests' listen
/// address, name and cache size; returns it with its URL, read from the start-up line,
/// and what it logs after, collected by a thread (which also keeps its stdout open).
async fn start(mut cmd: Command) -> (Reap, String, Log) {
    let child = cmd
        .env("EDGE_LISTEN", "127.0.0.1:0")
        .env("EDGE_NAME", "bin-edge")
        .env("EDGE_CACHE_SIZE", "16MiB")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Reap(child);
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let line = tokio::task::spawn_blocking(move || lines.next().map(|l| (l, lines)));
    let (line, lines) = tokio::time::timeout(Duration::from_secs(10), line)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let line = line.unwrap();
    assert!(
        line.starts_with("edge bin-edge listening on http://127.0.0.1:"),
        "{line}"
    );
    let url = line
        .split_whitespace()
        .nth(4)
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    let log = Log::default();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    (child, url, log)
}

fn signal(child: &Reap, sig: &str) {
    let pid = child.0.id().to_string();
    assert!(
        Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success()
    );
}

async fn wait_exit(child: &mut Reap) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            return status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "edge did not exit after the signal"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn binary_reads_env_prints_url_serves_and_exits_on_sigint() {
    let up = Upstream::start().await;
    up.set("/bin", Route::ok("max-age=60", "from the binary"));
    let (mut child, url) = spawn_edge(&[("EDGE_ORIGIN", up.url().as_str())]).await;

    for want in ["fwd=miss", "hit"] {
        let r = client().get(format!("{url}/bin")).send().await.unwrap();
        assert!(
            cache_status(&r).starts_with("bin-edge;"),
            "{}",
            cache_status(&r)
        );
        assert!(cache_status(&r).contains(want), "{}", cache_status(&r));
        assert_eq!(r.text().await.unwrap(), "from the binary");
    }

    signal(&child, "-INT");
    let status = wait_exit(&mut child).await;
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn binary_reloads_its_config_on_sighup_and_drains_on_sigterm() {
    let up = Upstream::start().await;
    // The test upstream stands in for a peer too: it passes the peer health check.
    up.set("/.edge/healthz", Route::ok("no-store", "ok"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.toml");
    let common = format!(
        "upstreams = [\"{}\"]\n[health]\ninterval = \"100ms\"\n",
        up.url()
    );
    std::fs::write(&path, &common).unwrap();
    let (mut child, url) = spawn_edge(&[
        ("EDGE_CONFIG", path.to_str().unwrap()),
        ("EDGE_DRAIN_DELAY", "3s"),
    ])
    .await;
    let s = status(&url).await;
    assert_eq!(s["peers"].as_array().unwrap().len(), 0, "{s}");
    assert_eq!(s["upstreams"][0]["url"], up.url().as_str());

    let with_peers = format!(
        "{common}\n[[peers]]\nname = \"bin-edge\"\nurl = \"{url}/\"\n\n[[peers]]\nname = \"other\"\nurl = \"{}\"\n",
        up.url()
    );
    std::fs::write(&path, with_peers).unwrap();
    signal(&child, "-HUP");
    eventually(
        Duration::from_secs(10),
        "the peers of the new file",
        || async { status(&url).await["peers"].as_array().unwrap().len() == 2 },
    )
    .await;
    let s = status(&url).await;
    assert_eq!(s["peers"][0]["self"], true, "{s}");
    assert_eq!(s["peers"][1]["name"], "other");
    assert_eq!(s["peers"][1]["healthy"], true, "{s}");
    assert_eq!(
        metric(&url, "edge_config_reloads_total{result=\"ok\"}").await,
        1.0
    );

    // A broken file is refused and the running settings stay.
    std::fs::write(&path, "peers = [").unwrap();
    signal(&child, "-HUP");
    eventually(
        Duration::from_secs(10),
        "the reload error counted",
        || async { metric(&url, "edge_config_reloads_total{result=\"error\"}").await == 1.0 },
    )
    .await;
    assert_eq!(status(&url).await["peers"].as_array().unwrap().len(), 2);

    // SIGTERM: unhealthy for the drain delay, then a clean exit.
    signal(&child, "-TERM");
    eventually(Duration::from_secs(3), "draining reported", || async {
        status(&url).await["draining"] == true
    })
    .await;
    let s = status(&url).await;
    assert_eq!(s["healthy"], false, "{s}");
    let r = client()
        .get(format!("{url}/.edge/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let status = wait_exit(&mut child).await;
    assert!(status.success(), "{status:?}");
}

/// CPU time (user + system, in clock ticks) the process `pid` has used so far.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name (which may hold spaces) start after ")".
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Defect 2 (edge): out of file descriptors, failing `accept`s back off (and are
/// logged at most once per 10 s) instead of spinning, and the edge answers again as
/// soon as descriptors are free. The binary runs under `ulimit -n 64`.
#[tokio::test]
async fn out_of_descriptors_accept_backs_off_and_recovers() {
    let up = Upstream::start().await;
    up.set("/a", Route::ok("max-age=60", "a"));
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "ulimit -n 64 && exec \"$0\"",
        env!("CARGO_BIN_EXE_edge"),
    ])
    .env("EDGE_ORIGIN", up.url().as_str())
    .env("RUST_LOG", "edge=warn,http_rules=warn");
    let (mut child, url, log) = start(cmd).await;
    let pid = child.0.id();
    let addr = url.trim_start_matches("http://").to_owned();
    // More connections than the edge has descriptors: the first ones are accepted,
    // the rest wait in the listen queue while `accept` fails with EMFILE.
    let mut held = Vec::new();
    for _ in 0..100 {
        held.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    let logged = |log: &Log| {
        log.lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("accept failed"))
            .count()
    };
    let started = Instant::now();
    while logged(&log) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no accept failure logged: {:?}",
            log.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (ticks, started) = (cpu_ticks(pid), Instant::now());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (spent, waited) = (cpu_ticks(pid) - ticks, started.elapsed());
    let failures = logged(&log);
    // One line for the first failure, the next after 10 s (the old loop logged one
    // every 50 ms); a spinning loop would use a CPU-second per second (100 ticks).
    assert_eq!(failures, 1, "{:?}", log.lock().unwrap());
    assert!(
        spent < 50,
        "{spent} ticks of CPU in {waited:?} at the limit"
    );
    // Descriptors freed: the edge answers again (its back-off is at most 1 s).
    drop(held);
    eventually(Duration::from_secs(10), "served again", || async {
        client()
            .get(format!("{url}/a"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    signal(&child, "-INT");
    let status = wait_exit(&mut child).await;
    assert!(status.success(), "{status:?}");
}
