//! Shared pieces of the end-to-end tests in `tests/tests/`: a small sample library, and the
//! real origin and edge started on `127.0.0.1:0` inside the test process.

pub mod foreign;
pub mod netns;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use http_rules::{SharedClock, SystemClock};
use origin::live::{LiveChannels, LiveConfig};
use origin::steering::{NamedUrl, SteeringConfig};
use origin::{AppState, OriginConfig};

/// A library holding the `small` sample (three rungs, 300/750/1850 kbit/s, and audio) of
/// `duration` seconds, built under `dir` unless a previous run left it there complete.
pub fn sample_library(dir: &Path, duration: f64) -> media::Result<PathBuf> {
    if !dir.join("sample/master.m3u8").is_file() {
        let mut opts = media::SampleOptions::new("small".parse()?);
        opts.duration = duration;
        opts.progress = false;
        media::build_sample(dir, &opts)?;
    }
    Ok(dir.to_path_buf())
}

/// The library the player tests share: the small sample, 12 s in 2 s segments, built once
/// per test binary (its tests run in parallel) under `tmp` (Cargo's per-target temporary
/// folder) and reused by later runs.
pub fn player_library(tmp: &Path) -> Result<&'static Path, String> {
    static LIBRARY: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    LIBRARY
        .get_or_init(|| {
            sample_library(&tmp.join("player-library"), 12.0).map_err(|e| e.to_string())
        })
        .as_deref()
        .map_err(Clone::clone)
}

/// Starts an origin over `library` on 127.0.0.1:0 for the rest of the test's runtime.
pub async fn start_origin(library: &Path) -> std::io::Result<SocketAddr> {
    start_live_origin(
        library,
        &LiveConfig {
            channels: Vec::new(),
            ..LiveConfig::default()
        },
    )
    .await
}

/// Starts an origin over `library` that also serves the live channels of `live`.
pub async fn start_live_origin(library: &Path, live: &LiveConfig) -> std::io::Result<SocketAddr> {
    start_live_origin_on(library, live, SystemClock::shared()).await
}

/// Starts an origin over `library` serving the live channels of `live` at the time `clock`
/// says (a `ManualClock` moves the live window without waiting).
pub async fn start_live_origin_on(
    library: &Path,
    live: &LiveConfig,
    clock: SharedClock,
) -> std::io::Result<SocketAddr> {
    let state = AppState::new(&OriginConfig::new(library)).with_clock(clock);
    let channels = LiveChannels::load(state.library(), live).map_err(std::io::Error::other)?;
    serve_origin(state.with_live(channels)).await
}

/// Starts an origin over `library` (no live channel) that steers players to `edges`
/// (`(name, address)`, the first the manifests' default pathway) with steering manifests
/// valid `ttl`, probing each edge's `/.edge/status` every 200 ms. The edges may front
/// another origin over the same library: the content is the same.
pub async fn start_steered_origin(
    library: &Path,
    edges: &[(&str, SocketAddr)],
    ttl: Duration,
) -> std::io::Result<SocketAddr> {
    let config = OriginConfig::new(library);
    let edges = edges
        .iter()
        .map(|(name, addr)| format!("{name}=http://{addr}").parse::<NamedUrl>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(std::io::Error::other)?;
    let steering = SteeringConfig {
        ttl,
        probe_interval: Duration::from_millis(200),
        ..SteeringConfig::new(edges)
    };
    let state = AppState::new(&config)
        .with_steering(steering)
        .map_err(std::io::Error::other)?;
    serve_origin(state).await
}

/// Serves `state` on 127.0.0.1:0 for the rest of the test's runtime.
async fn serve_origin(state: AppState) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    serve_origin_on(listener, state, std::future::pending());
    Ok(addr)
}

/// Serves `state` on `listener` until `shutdown` completes (an origin stopped and started
/// again over the same library).
pub fn serve_origin_on(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    tokio::spawn(origin::serve(listener, origin::router(state), shutdown));
}

/// Starts an edge named `name` in front of `upstream` on 127.0.0.1:0.
pub async fn start_edge(upstream: SocketAddr, name: &str) -> std::io::Result<SocketAddr> {
    start_stoppable_edge(upstream, name, std::future::pending()).await
}

/// Sums a counter of a Prometheus / OpenMetrics text over the series whose labels contain
/// every one of `labels` (e.g. `kind="segment"`).
pub fn metric_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The longest any reference tool (ffmpeg, ffprobe) may run in a test: some of their
/// readers loop forever on inputs they do not understand, and a test must end by itself.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(180);

/// Runs `command` to completion with its output captured, killing it after
/// [`TOOL_TIMEOUT`].
pub fn run_bounded(command: &mut Command) -> Result<std::process::Output, String> {
    let name = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {name} (the test command installs it): {e}"))?;
    // Drained on their own threads so a chatty tool never blocks on a full pipe.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if started.elapsed() > TOOL_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{name} still running after {TOOL_TIMEOUT:?}: killed"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// Decodes every stream of `url` with ffmpeg (Debian's, installed by the test command):
/// `Ok` only when ffmpeg succeeds and prints nothing at `-v error`. `extra` goes before
/// `-i` (e.g. `-t 10` to read a live stream for ten seconds).
pub fn ffmpeg_decode(url: &str, extra: &[&str]) -> Result<(), String> {
    let out = run_bounded(
        Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error"])
            .args(extra)
            .args(["-i", url, "-map", "0", "-f", "null", "-"]),
    )?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() && stderr.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("ffmpeg on {url}: {}\n{stderr}", out.status))
    }
}

/// Counts the frames of each video stream of `url` with ffprobe.
pub fn ffprobe_video_frames(url: &str) -> Result<Vec<u64>, String> {
    let out = run_bounded(
        Command::new("ffprobe")
            .args(["-v", "error", "-count_frames", "-select_streams", "v"])
            .args(["-show_entries", "stream=nb_read_frames", "-of", "json", url]),
    )?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    // JSON keeps the top-level stream list apart from the per-program copies that the
    // flat formats interleave.
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    json["streams"]
        .as_array()
        .ok_or("ffprobe printed no streams")?
        .iter()
        .map(|s| {
            s["nb_read_frames"]
                .as_str()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("no frame count in {s}"))
        })
        .collect()
}

/// Starts an edge named `name` in front of `upstream` on 127.0.0.1:0 that stops when
/// `shutdown` completes, as an operator stopping it would: it accepts no more connections
/// and closes the idle ones.
pub async fn start_stoppable_edge(
    upstream: SocketAddr,
    name: &str,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<SocketAddr> {
    start_edge_with(upstream, name, |_| {}, shutdown).await
}

/// Starts an edge as [`start_stoppable_edge`] does, with `configure` changing its
/// configuration first (e.g. setting its purge token).
pub async fn start_edge_with(
    upstream: SocketAddr,
    name: &str,
    configure: impl FnOnce(&mut edge::Config),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<SocketAddr> {
    let origin_url = format!("http://{upstream}")
        .parse()
        .map_err(std::io::Error::other)?;
    let mut config = edge::Config::new(origin_url);
    config.name = Some(name.into());
    configure(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    config.listen = addr;
    let app = edge::router(edge::AppState::new(config.clone()).map_err(std::io::Error::other)?);
    tokio::spawn(async move { edge::serve(listener, app, &config, shutdown).await });
    Ok(addr)
}

/// Plays `url` with the player (at most `duration_s` of media, with real timing) until the
/// session ends by itself, within 90 s; panics on a session that cannot start.
// A test helper: a failure is the test's, with the reason.
#[allow(clippy::expect_used, clippy::panic)]
pub async fn play_for(url: &str, duration_s: f64) -> player::session::SessionReport {
    use player::session::{self, NoObserver, SessionConfig};
    let mut config = SessionConfig::new(url.parse().expect("a valid URL"));
    config.duration_s = Some(duration_s);
    let client = session::http_client(6).expect("an HTTP client");
    let stop = tokio_util::sync::CancellationToken::new();
    let run = session::run(&client, &config, &NoObserver, &stop);
    tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("the session ends within 90 s")
        .unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// The body of a GET of `url` as text; panics on a transport error.
// A test helper: a failure is the test's, with the reason.
#[allow(clippy::expect_used, clippy::panic)]
pub async fn get_text(client: &reqwest::Client, url: &str) -> String {
    let response = client.get(url).send().await.expect("a response");
    response.text().await.expect("a text body")
}

/// Waits (at most 5 s) until a steering origin's probes have found its `edges` edges all
/// usable (`/steering/status`), so that its first answers already weigh them all.
// A test helper: a failure is the test's, with the reason.
#[allow(clippy::expect_used, clippy::panic)]
pub async fn wait_until_edges_usable(origin: SocketAddr, edges: usize) {
    let url = format!("http://{origin}/steering/status");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = get_text(&client, &url).await;
        let status: serde_json::Value = serde_json::from_str(&text).expect("JSON status");
        let usable = status["edges"]
            .as_array()
            .map_or(0, |e| e.iter().filter(|e| e["usable"] == true).count());
        if usable == edges {
            return;
        }
        assert!(Instant::now() < deadline, "edges never usable: {status:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
