//! Memory benchmark of the edge binary under the two loads of issue 14: clients that
//! request distinct large objects and never read them (`slow`), and a burst of
//! concurrent misses of distinct 1 MB objects (`burst`). It serves the objects itself
//! (on 127.0.0.1), starts each edge binary given, samples the edge's RSS every 100 ms
//! from `/proc`, and writes the figures as JSON and the RSS curves as SVG. Run it
//! through `edge/bench/memory.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use plotters::prelude::*;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Parser)]
struct Args {
    /// `LABEL=PATH` of an edge binary; each runs the scenario in turn.
    #[arg(long = "edge-bin", required = true)]
    edges: Vec<String>,
    /// `slow` (clients that never read) or `burst` (concurrent 1 MB misses).
    #[arg(long)]
    scenario: String,
    #[arg(long, default_value = "64MiB")]
    cache_size: String,
    /// Clients (default: 10 for slow, 1500 for burst).
    #[arg(long)]
    clients: Option<usize>,
    /// Object size in bytes (default: 50 MB for slow, 1 MB for burst).
    #[arg(long)]
    size: Option<usize>,
    /// How long the slow clients hold their connections.
    #[arg(long, default_value = "45")]
    hold_s: u64,
    /// Time after the load before the "after" figure is read.
    #[arg(long, default_value = "5")]
    settle_s: u64,
    /// Where the JSON and SVG go.
    #[arg(long, default_value = "target/memload")]
    out: PathBuf,
    /// Extra arguments for every edge.
    #[arg(long, allow_hyphen_values = true, num_args = 0..)]
    edge_args: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Run {
    label: String,
    scenario: String,
    cache_size: String,
    clients: usize,
    object_bytes: usize,
    /// (seconds since the edge started, RSS KiB).
    samples: Vec<(f64, u64)>,
    idle_kib: u64,
    peak_kib: u64,
    after_kib: u64,
    ok_responses: usize,
    failed_responses: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (clients, size) = match args.scenario.as_str() {
        "slow" => (args.clients.unwrap_or(10), args.size.unwrap_or(50_000_000)),
        "burst" => (args.clients.unwrap_or(1500), args.size.unwrap_or(1_000_000)),
        other => bail!("unknown scenario {other:?}: slow or burst"),
    };
    let upstream = serve_objects(size).await?;
    std::fs::create_dir_all(&args.out)?;
    let mut runs = Vec::new();
    for spec in &args.edges {
        let (label, path) = spec.split_once('=').context("--edge-bin LABEL=PATH")?;
        let run = measure(&args, label, path, &upstream, clients, size).await?;
        println!(
            "{:<8} {:<6} cache {:<7} clients {:>5} object {:>9} B: idle {:>7} KiB, peak {:>7} KiB, after {:>7} KiB ({} ok, {} failed)",
            run.label,
            run.scenario,
            run.cache_size,
            run.clients,
            run.object_bytes,
            run.idle_kib,
            run.peak_kib,
            run.after_kib,
            run.ok_responses,
            run.failed_responses
        );
        runs.push(run);
    }
    let json = args.out.join(format!("{}.json", args.scenario));
    std::fs::write(&json, serde_json::to_string_pretty(&runs)?)?;
    let svg = args.out.join(format!("{}.svg", args.scenario));
    plot(&svg, &runs, &args.scenario)?;
    println!("wrote {} and {}", json.display(), svg.display());
    Ok(())
}

/// Serves `/obj/N` (any N, a distinct object each) of `size` bytes, cacheable.
async fn serve_objects(size: usize) -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let body = Bytes::from((0..size).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let body = body.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: hyper::Request<_>| {
                    // The edges' health checks get a short answer.
                    let body = if req.uri().path() == "/healthz" {
                        Bytes::from_static(b"ok\n")
                    } else {
                        body.clone()
                    };
                    async move {
                        Ok::<_, Infallible>(
                            hyper::Response::builder()
                                .header("cache-control", "max-age=3600")
                                .header("content-type", "application/octet-stream")
                                .body(Full::new(body))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(format!("http://{addr}/"))
}

/// Kills the edge (the process this benchmark started) when dropped.
struct Edge(Child);

impl Drop for Edge {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

async fn measure(
    args: &Args,
    label: &str,
    path: &str,
    upstream: &str,
    clients: usize,
    size: usize,
) -> anyhow::Result<Run> {
    let mut child = Command::new(path)
        .args(["--listen", "127.0.0.1:0", "--origin", upstream])
        .args(["--cache-size", &args.cache_size, "--name", "memload"])
        .args(&args.edge_args)
        .env("RUST_LOG", "edge=warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start {path}"))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let edge = Edge(child);
    let pid = edge.0.id();
    let (tx, rx) = tokio::sync::oneshot::channel();
    // Reads the start-up line, then drains the rest so the edge never writes to a
    // closed pipe.
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = tx.send(lines.next());
        for _ in lines {}
    });
    let line = rx.await?.context("the edge printed nothing")??;
    let url = line
        .split_whitespace()
        .nth(4)
        .context("no URL in the start-up line")?
        .trim_end_matches('/')
        .to_owned();
    let addr = url.trim_start_matches("http://").to_owned();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let samples = Arc::new(Mutex::new(Vec::new()));
    let sampler = {
        let samples = samples.clone();
        tokio::spawn(async move {
            loop {
                let rss = rss_kib(pid);
                samples
                    .lock()
                    .unwrap()
                    .push((started.elapsed().as_secs_f64(), rss));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let idle_kib = rss_kib(pid);
    let (ok, failed) = match args.scenario.as_str() {
        "slow" => slow(&addr, clients, size, Duration::from_secs(args.hold_s)).await,
        _ => burst(&url, clients).await,
    };
    tokio::time::sleep(Duration::from_secs(args.settle_s)).await;
    let after_kib = rss_kib(pid);
    sampler.abort();
    drop(edge);
    let samples = std::mem::take(&mut *samples.lock().unwrap());
    let peak_kib = samples.iter().map(|s| s.1).max().unwrap_or(0);
    Ok(Run {
        label: label.to_owned(),
        scenario: args.scenario.clone(),
        cache_size: args.cache_size.clone(),
        clients,
        object_bytes: size,
        samples,
        idle_kib,
        peak_kib,
        after_kib,
        ok_responses: ok,
        failed_responses: failed,
    })
}

/// (answers that were right, answers that were not) of the clients' tasks.
async fn tally(tasks: Vec<tokio::task::JoinHandle<Option<bool>>>) -> (usize, usize) {
    let total = tasks.len();
    let mut ok = 0;
    for t in tasks {
        if let Ok(Some(true)) = t.await {
            ok += 1;
        }
    }
    (ok, total - ok)
}

/// `clients` connections each ask for a distinct object, read its head and nothing
/// more for `hold`, then close.
async fn slow(addr: &str, clients: usize, size: usize, hold: Duration) -> (usize, usize) {
    let tasks = (0..clients)
        .map(|i| {
            let addr = addr.to_owned();
            tokio::spawn(async move {
                let mut s = TcpStream::connect(&addr).await.ok()?;
                let req = format!("GET /obj/slow-{i}-{size} HTTP/1.1\r\nHost: bench\r\n\r\n");
                s.write_all(req.as_bytes()).await.ok()?;
                let mut head = [0u8; 256];
                let n = s.read(&mut head).await.ok()?;
                let ok = head[..n].starts_with(b"HTTP/1.1 200");
                tokio::time::sleep(hold).await;
                Some(ok)
            })
        })
        .collect();
    tally(tasks).await
}

/// `clients` concurrent requests for distinct objects, each read to the end.
async fn burst(url: &str, clients: usize) -> (usize, usize) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let tasks = (0..clients)
        .map(|i| {
            let client = client.clone();
            let url = format!("{url}/obj/burst-{i}");
            tokio::spawn(async move {
                let r = client.get(url).send().await.ok()?;
                let status = r.status();
                let body = r.bytes().await.ok()?;
                Some(status == 200 && !body.is_empty())
            })
        })
        .collect();
    tally(tasks).await
}

fn plot(path: &std::path::Path, runs: &[Run], scenario: &str) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let t_max = runs
        .iter()
        .flat_map(|r| r.samples.iter().map(|s| s.0))
        .fold(1.0, f64::max);
    let rss_max = runs.iter().map(|r| r.peak_kib).max().unwrap_or(1) as f64 / 1024.0;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("edge RSS, scenario {scenario}"), ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..t_max, 0.0..rss_max * 1.1)?;
    chart
        .configure_mesh()
        .x_desc("seconds since start")
        .y_desc("RSS (MiB)")
        .draw()?;
    for (i, run) in runs.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                run.samples.iter().map(|&(t, kib)| (t, kib as f64 / 1024.0)),
                color,
            ))?
            .label(format!(
                "{}: peak {} MiB, after {} MiB",
                run.label,
                run.peak_kib / 1024,
                run.after_kib / 1024
            ))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;
    root.present()?;
    Ok(())
}
