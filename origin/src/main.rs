//! The `origin` binary: parses configuration, builds the sample when the library lacks it,
//! and serves until Ctrl-C or SIGTERM.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use http_rules::cli::{NamedUrl, parse_duration, parse_size};
use http_rules::server::Limits;
use http_rules::signal::stop_signal;
use origin::ingest::IngestConfig;
use origin::ingest::purge::PurgeConfig;
use origin::library::{SampleConfig, ensure_sample};
use origin::live::{LiveChannels, LiveConfig};
use origin::server::{default_max_connections, descriptor_limit};
use origin::steering::SteeringConfig;
use origin::store::StoreLimits;
use origin::web_libs::WebLibs;
use origin::{AppState, OriginConfig, asset_urls, router, serve_with};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// Rivulet origin: serves packaged assets (HLS and DASH over CMAF) and a watch page.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Library folder, one sub-folder per asset; the `sample` asset is built there when missing.
    #[arg(long, env = "ORIGIN_LIBRARY", default_value = "data")]
    library: PathBuf,

    /// Address to listen on (port 0 picks a free port; the URL is printed).
    #[arg(long, env = "ORIGIN_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// A node_modules folder with hls.js, dashjs and shaka-player, served under /lib/ for
    /// the watch page. Without it, the first start installs them into LIBRARY/.web-libs
    /// with `npm ci` from the origin's committed lockfile (in the background).
    #[arg(long, env = "ORIGIN_WEB_LIBS")]
    web_libs: Option<PathBuf>,

    /// Never run npm: without --web-libs the watch page then plays natively only.
    #[arg(long, env = "ORIGIN_NO_WEB_LIBS_INSTALL")]
    no_web_libs_install: bool,

    /// Do not build video files dropped into the library (LIBRARY/NAME.mp4, .mov, .m4v).
    #[arg(long, env = "ORIGIN_NO_INGEST")]
    no_ingest: bool,

    /// Ladder that dropped video files are built with: default, small, or a list of
    /// kbit/s such as 300,750,1850.
    #[arg(long, env = "ORIGIN_INGEST_LADDER", default_value = "default")]
    ingest_ladder: String,

    /// How often the library is looked at for dropped or changed files; a file must stay
    /// unchanged this long (two looks) before it is built.
    #[arg(long, env = "ORIGIN_INGEST_POLL", default_value = "2s", value_parser = parse_duration)]
    ingest_poll: Duration,

    /// How long a replaced build of an asset stays servable under its versioned URLs
    /// (keep it above the manifests' one-hour max-age).
    #[arg(long, env = "ORIGIN_KEEP_REPLACED", default_value = "2h", value_parser = parse_duration)]
    keep_replaced: Duration,

    /// Bearer token of the --edge's PURGE (their --purge-token): with it, the origin purges
    /// /vod/NAME/* on every edge when NAME gets a new build.
    #[arg(long, env = "ORIGIN_EDGE_PURGE_TOKEN", hide_env_values = true)]
    edge_purge_token: Option<String>,

    /// Ladder of the built-in sample when it has to be built: default, small, or a list
    /// of kbit/s such as 300,750,1850.
    #[arg(long, env = "ORIGIN_SAMPLE_LADDER", default_value = "default")]
    sample_ladder: String,

    /// Duration of the built-in sample (default: the ladder's own): 12, 90s, 2m.
    #[arg(long, env = "ORIGIN_SAMPLE_DURATION", value_parser = parse_duration)]
    sample_duration: Option<Duration>,

    /// Do not build the sample; serve the library as it is.
    #[arg(long, env = "ORIGIN_NO_SAMPLE")]
    no_sample: bool,

    /// Memory for files kept in memory (segments, manifests), MiB.
    #[arg(long, env = "ORIGIN_CACHE_MB", default_value_t = 256)]
    cache_mb: u64,

    /// Live channel NAME=ASSET looping a library asset on the wall clock (repeatable;
    /// comma-separated in the variable). Default: `live=sample`, skipped with a warning
    /// when the library has no sample.
    #[arg(long = "live", env = "ORIGIN_LIVE", value_delimiter = ',', value_parser = parse_channel)]
    live: Option<Vec<(String, String)>>,

    /// Time of segments in live playlists and MPDs (at least three target durations).
    #[arg(long, env = "ORIGIN_LIVE_WINDOW", default_value = "30s", value_parser = parse_duration)]
    live_window: Duration,

    /// How far behind live segments are still served (DVR depth).
    #[arg(long, env = "ORIGIN_LIVE_DVR", default_value = "5m", value_parser = parse_duration)]
    live_dvr: Duration,

    /// Availability start of every live channel, Unix seconds. Origins behind the same edges
    /// must share it; the default is fixed (2026-01-01T00:00:00Z).
    #[arg(long, env = "ORIGIN_LIVE_START", default_value_t = origin::live::DEFAULT_AVAILABILITY_START)]
    live_start: f64,

    /// Edge NAME=URL that players are steered to (repeatable; comma-separated in the
    /// variable). With edges, manifests list each as a pathway (the first is the default)
    /// and /steering/hls and /steering/dash order them; without, nothing changes.
    #[arg(long = "edge", env = "ORIGIN_EDGES", value_delimiter = ',')]
    edges: Vec<NamedUrl>,

    /// How long players keep a steering manifest (whole seconds: 10, 10s, 1m).
    #[arg(long, env = "ORIGIN_STEERING_TTL", default_value = "10s", value_parser = parse_duration)]
    steering_ttl: Duration,

    /// How often each edge's /.edge/status is probed (500ms, 1s, …).
    #[arg(long, env = "ORIGIN_EDGE_PROBE_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    edge_probe_interval: Duration,

    /// How long a probe may take before the edge counts as unusable.
    #[arg(long, env = "ORIGIN_EDGE_PROBE_TIMEOUT", default_value = "500ms", value_parser = parse_duration)]
    edge_probe_timeout: Duration,

    /// Players counted per client address (an IPv6 /64) and steering TTL at most: what
    /// anyone sending steering requests can add to an edge's count. Steering requests
    /// proxied by an edge all come from its address: raise it in that layout.
    #[arg(long, env = "ORIGIN_STEERING_CLIENTS_PER_ADDRESS", default_value_t = origin::steering::DEFAULT_CLIENTS_PER_ADDRESS)]
    steering_clients_per_address: u32,

    /// Append one line per request to this file: `UNIX_TIME CLIENT METHOD TARGET STATUS
    /// BYTES MICROS`.
    #[arg(long, env = "ORIGIN_ACCESS_LOG")]
    access_log: Option<PathBuf>,

    /// Time a client has to send a request head (slower connections are closed); also
    /// how long a kept-alive connection may sit idle between requests.
    #[arg(long, env = "ORIGIN_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    header_read_timeout: Duration,

    /// A client that takes none of its response for this long is disconnected.
    #[arg(long, env = "ORIGIN_SEND_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    send_timeout: Duration,

    /// Most client connections open at once; more are answered 503 and closed. Default:
    /// half the descriptor limit (ulimit -n) less 64, at most 10000.
    #[arg(long, env = "ORIGIN_MAX_CONNECTIONS")]
    max_connections: Option<usize>,

    /// Largest request head accepted (request line and fields); larger gets 431.
    #[arg(long, env = "ORIGIN_MAX_HEADER_SIZE", default_value = "32KiB", value_parser = parse_size)]
    max_header_size: u64,

    /// Most fields in a request head; more gets 431.
    #[arg(long, env = "ORIGIN_MAX_HEADERS", default_value_t = 100)]
    max_headers: usize,
}

impl Args {
    /// The connection limits of the server loop.
    fn limits(&self) -> Limits {
        Limits {
            header_read_timeout: self.header_read_timeout,
            send_timeout: self.send_timeout,
            max_connections: self
                .max_connections
                .unwrap_or_else(|| default_max_connections(descriptor_limit())),
            max_header_size: usize::try_from(self.max_header_size).unwrap_or(usize::MAX),
            max_headers: self.max_headers,
            ..Limits::default()
        }
    }
}

fn parse_channel(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, asset)) if !name.is_empty() && !asset.is_empty() => {
            Ok((name.to_string(), asset.to_string()))
        }
        _ => Err(format!("{s:?} is not NAME=ASSET")),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();

    let config = OriginConfig {
        web_libs: args.web_libs.clone(),
        store: StoreLimits {
            capacity: args.cache_mb << 20,
            ..StoreLimits::default()
        },
        keep_replaced: args.keep_replaced,
        ..OriginConfig::new(&args.library)
    };
    let ingest_ladder: media::Ladder = args
        .ingest_ladder
        .parse()
        .with_context(|| format!("invalid --ingest-ladder {:?}", args.ingest_ladder))?;
    if args.edge_purge_token.is_some() && args.edges.is_empty() {
        anyhow::bail!("--edge-purge-token needs the --edge list it purges");
    }
    // The folder files are dropped into exists from the start.
    std::fs::create_dir_all(&args.library)
        .with_context(|| format!("cannot create the library {}", args.library.display()))?;
    let mut state = AppState::new(&config);
    match &args.web_libs {
        Some(folder) if !folder.is_dir() => tracing::warn!(
            folder = %folder.display(),
            "--web-libs is not a folder: the watch page plays natively only"
        ),
        Some(_) => {}
        None if args.no_web_libs_install => tracing::info!(
            "no player libraries (--no-web-libs-install): the watch page plays natively only"
        ),
        None => state = state.with_web_libs(WebLibs::install(&args.library, "npm".into())),
    }

    if !args.no_sample {
        let sample = SampleConfig {
            ladder: args
                .sample_ladder
                .parse()
                .with_context(|| format!("invalid --sample-ladder {:?}", args.sample_ladder))?,
            duration: args.sample_duration.map(|d| d.as_secs_f64()),
            progress: true,
        };
        let library = state.library().clone();
        let built = tokio::task::spawn_blocking(move || ensure_sample(&library, &sample))
            .await
            .context("sample builder panicked")?
            .with_context(|| format!("cannot build the sample in {}", args.library.display()))?;
        if built {
            eprintln!("built the sample asset in {}", args.library.display());
        }
    }

    let live_config = LiveConfig {
        channels: args
            .live
            .clone()
            .unwrap_or_else(|| LiveConfig::default().channels),
        window: args.live_window.as_secs_f64(),
        dvr: args.live_dvr.as_secs_f64(),
        availability_start: args.live_start,
    };
    let live = match LiveChannels::load(state.library(), &live_config) {
        Ok(live) => live,
        // The default channel is a convenience: an origin without the sample still serves.
        Err(e) if args.live.is_none() => {
            tracing::warn!(error = %e, "no default live channel");
            LiveChannels::default()
        }
        Err(e) => return Err(e).context("cannot set up the live channels"),
    };
    let mut state = state.with_live(live);
    if let Some(path) = &args.access_log {
        state = state
            .with_access_log(path)
            .with_context(|| format!("cannot open the access log {}", path.display()))?;
    }
    if !args.edges.is_empty() {
        state = state
            .with_steering(SteeringConfig {
                edges: args.edges.clone(),
                ttl: args.steering_ttl,
                probe_interval: args.edge_probe_interval,
                probe_timeout: args.edge_probe_timeout,
                clients_per_address: args.steering_clients_per_address,
            })
            .context("cannot set up content steering")?;
    }
    let ingest = IngestConfig {
        segment: 2.0,
        poll: args.ingest_poll,
        build: !args.no_ingest,
        purge: args.edge_purge_token.clone().map(|token| PurgeConfig {
            edges: args.edges.clone(),
            token,
        }),
        ..IngestConfig::new(ingest_ladder, &args.ingest_ladder)
    };
    state = state
        .with_ingest(ingest)
        .map_err(anyhow::Error::msg)
        .context("cannot watch the library")?;

    let limits = args.limits();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let base = format!("http://{}", display_addr(listener.local_addr()?));
    let assets = state.library().assets().await;
    println!(
        "origin listening on {base}  (library {})",
        args.library.display()
    );
    if assets.is_empty() {
        println!("  the library is empty");
    }
    for asset in &assets {
        for (label, url) in asset_urls(&base, asset) {
            println!("  {:<10} {label:<6} {url}", asset.name);
        }
    }
    for channel in state.live().names() {
        println!("  {channel:<10} watch  {base}/watch/live/{channel}");
        println!("  {channel:<10} HLS    {base}/live/{channel}/master.m3u8");
        println!("  {channel:<10} DASH   {base}/live/{channel}/manifest.mpd");
    }
    if let Some(steering) = state.steering() {
        let config = steering.config();
        for edge in &config.edges {
            println!("  {:<10} edge   {}", edge.name, edge.url);
        }
        println!(
            "  steering   status {base}/steering/status  (TTL {} s, edges probed every {:?}, timeout {:?})",
            config.ttl.as_secs(),
            config.probe_interval,
            config.probe_timeout
        );
    }

    println!(
        "  limits     {} connections, request heads {} bytes and {} fields within {:?}, idle keep-alive {:?}, send timeout {:?}",
        limits.max_connections,
        limits.max_header_size,
        limits.max_headers,
        limits.header_read_timeout,
        limits.header_read_timeout,
        limits.send_timeout
    );

    if !args.no_ingest {
        println!(
            "  drop a video file (.mp4, .mov, .m4v) into {} to make it an asset; progress at {base}/ and {base}/library/status",
            args.library.display()
        );
    }

    // On Ctrl-C or SIGTERM the running ladder job and npm stop at once, while the server
    // lets open responses finish.
    let stop = CancellationToken::new();
    tokio::spawn({
        let stop = stop.clone();
        async move {
            stop_signal().await;
            stop.cancel();
        }
    });
    let watcher = state.clone();
    tokio::spawn({
        let stop = stop.clone();
        async move {
            stop.cancelled().await;
            watcher.web_libs().stop();
            if let Some(ingest) = watcher.ingest() {
                ingest.shutdown(Duration::from_secs(10)).await;
            }
        }
    });
    serve_with(
        listener,
        router(state.clone()),
        &limits,
        state.metrics().clone(),
        stop.clone().cancelled_owned(),
    )
    .await
    .context("server error")?;
    if let Some(ingest) = state.ingest() {
        ingest.shutdown(Duration::from_secs(10)).await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// The address as a URL authority; an unspecified address is reached through loopback.
fn display_addr(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(flags: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("origin").chain(flags.iter().copied()))
    }

    #[test]
    fn durations_and_edges_use_the_shared_grammars() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.steering_ttl, Duration::from_secs(10));
        assert_eq!(args.edge_probe_interval, Duration::from_secs(1));
        assert_eq!(args.edge_probe_timeout, Duration::from_millis(500));
        assert_eq!(args.live_window, Duration::from_secs(30));
        assert_eq!(args.live_dvr, Duration::from_secs(300));
        assert_eq!(args.sample_duration, None);
        assert!(args.edges.is_empty());
        let limits = args.limits();
        assert_eq!(limits.header_read_timeout, Duration::from_secs(10));
        assert_eq!(limits.send_timeout, Duration::from_secs(30));
        assert_eq!(limits.max_header_size, 32 * 1024);
        assert_eq!(limits.max_headers, 100);
        assert_eq!(
            limits.max_connections,
            default_max_connections(descriptor_limit())
        );

        let args = parse(&[
            "--steering-ttl",
            "1m",
            "--edge-probe-interval",
            "1.5s",
            "--edge-probe-timeout",
            "250ms",
            "--live-window",
            "12",
            "--live-dvr",
            "1h",
            "--sample-duration",
            "90s",
            "--edge",
            "e1=http://10.0.0.2:8081",
            "--edge",
            "e2 = https://cdn.example/rivulet",
            "--header-read-timeout",
            "2.5s",
            "--send-timeout",
            "1m",
            "--max-connections",
            "500",
            "--max-header-size",
            "16KiB",
            "--max-headers",
            "50",
        ])
        .unwrap();
        let limits = args.limits();
        assert_eq!(limits.header_read_timeout, Duration::from_millis(2500));
        assert_eq!(limits.send_timeout, Duration::from_secs(60));
        assert_eq!(limits.max_connections, 500);
        assert_eq!(limits.max_header_size, 16 * 1024);
        assert_eq!(limits.max_headers, 50);
        assert_eq!(args.steering_ttl, Duration::from_secs(60));
        assert_eq!(args.edge_probe_interval, Duration::from_millis(1500));
        assert_eq!(args.edge_probe_timeout, Duration::from_millis(250));
        assert_eq!(args.live_window, Duration::from_secs(12));
        assert_eq!(args.live_dvr, Duration::from_secs(3600));
        assert_eq!(args.sample_duration, Some(Duration::from_secs(90)));
        let edges: Vec<String> = args.edges.iter().map(ToString::to_string).collect();
        assert_eq!(
            edges,
            [
                "e1=http://10.0.0.2:8081/",
                "e2=https://cdn.example/rivulet/"
            ]
        );

        for bad in [
            ["--steering-ttl", "10 days"].as_slice(),
            &["--edge-probe-interval", "-1s"],
            &["--live-window", "soon"],
            &["--edge", "e1"],
            &["--edge", "1e=http://h:1"],
            &["--edge", "e1=ftp://h/"],
            &["--header-read-timeout", "never"],
            &["--max-header-size", "lots"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
