//! The `edge` binary: configuration from the environment, the start-up line, serving,
//! and a graceful exit on SIGINT. Only the process started here is signalled, by PID.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Route, Upstream, cache_status, client};

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

#[tokio::test]
async fn binary_reads_env_prints_url_serves_and_exits_on_sigint() {
    let up = Upstream::start().await;
    up.set("/bin", Route::ok("max-age=60", "from the binary"));
    let child = Command::new(env!("CARGO_BIN_EXE_edge"))
        .env("EDGE_ORIGIN", up.url().as_str())
        .env("EDGE_LISTEN", "127.0.0.1:0")
        .env("EDGE_NAME", "bin-edge")
        .env("EDGE_CACHE_SIZE", "16MiB")
        .env("RUST_LOG", "off")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Reap(child);
    let stdout = child.0.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    });
    let line = tokio::time::timeout(Duration::from_secs(10), line)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
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

    let pid = child.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "edge did not exit after SIGINT"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
}
