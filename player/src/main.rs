//! `player`: the headless client's command line. A thin dispatcher over the library.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use player::abr::NAMES;
use player::link::{LinkModel, NetworkSpec};
use player::load::report::{self as load_report, LoadReport};
use player::load::{LoadConfig, Shard};
use player::session::{self, End, SessionConfig, SessionReport};
use player::sim::{Rules, load, report};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(version, about = "Rivulet headless player and ABR simulator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an ABR algorithm over every trace in a folder, in virtual time.
    Simulate(SimulateArgs),
    /// Play an HLS or DASH presentation in real time and report its QoE.
    Play(PlayArgs),
    /// Run many real-time sessions at once against a URL and report QoE over them.
    Load(LoadArgs),
    /// Merge the JSON reports of the shards of one load run.
    Merge(MergeArgs),
}

#[derive(Debug, Args)]
struct SimulateArgs {
    /// Folder of trace files (`time_s<TAB>Mbps` lines); files run in byte order of name.
    #[arg(long, env = "PLAYER_TRACES")]
    traces: PathBuf,
    /// Video chunk-size table (`chunk,300,750,...` header).
    #[arg(long, env = "PLAYER_VIDEO")]
    video: PathBuf,
    /// Algorithm name, or `all` for one row per algorithm.
    #[arg(long, env = "PLAYER_ABR", default_value = NAMES[0])]
    abr: String,
    /// Print JSON (one object; an array of them with `--abr all`).
    #[arg(long, env = "PLAYER_JSON")]
    json: bool,
}

/// How each real-time session plays (shared by `play` and `load`).
#[derive(Debug, Args)]
struct SessionArgs {
    /// ABR algorithm: rivulet, throughput, bba, bola or robust-mpc.
    #[arg(long, env = "PLAYER_ABR", default_value = NAMES[0])]
    abr: String,
    /// Fetch no further ahead than this many seconds of media.
    #[arg(long, env = "PLAYER_MAX_BUFFER", default_value_t = 30.0)]
    max_buffer: f64,
    /// Seconds of media buffered before playback starts.
    #[arg(long, env = "PLAYER_STARTUP_BUFFER", default_value_t = 2.0)]
    startup_buffer: f64,
    /// Seconds of media buffered before playback resumes after a stall.
    #[arg(long, env = "PLAYER_RESUME_BUFFER", default_value_t = 2.0)]
    resume_buffer: f64,
    /// Report CMCD (CTA-5004) as the `CMCD` query parameter.
    #[arg(long, env = "PLAYER_CMCD")]
    cmcd: bool,
    /// Retries of a failed request (with backoff) before the session gives up.
    #[arg(long, env = "PLAYER_RETRIES", default_value_t = 3)]
    retries: u32,
    /// Seconds without data after which a request fails.
    #[arg(long, env = "PLAYER_TIMEOUT", default_value_t = 10.0)]
    timeout: f64,
    /// Seconds to make a connection; also how soon a silent peer is given up on (TCP
    /// keepalive after this long, closed after twice it unacknowledged).
    #[arg(long, env = "PLAYER_CONNECT_TIMEOUT", default_value_t = session::CONNECT_TIMEOUT.as_secs_f64())]
    connect_timeout: f64,
    /// Seconds a pathway that failed a request stays last in the order.
    #[arg(long, env = "PLAYER_PATHWAY_PENALTY", default_value_t = 30.0)]
    pathway_penalty: f64,
    /// Live: start this many segments behind the newest one (the hold-back).
    #[arg(long, env = "PLAYER_LIVE_DELAY", default_value_t = player::session::manifest::LIVE_DELAY_SEGMENTS)]
    live_delay: u64,
}

impl SessionArgs {
    fn config(&self, url: &str, duration: Option<f64>) -> anyhow::Result<SessionConfig> {
        let url = url::Url::parse(url).with_context(|| format!("invalid URL {url:?}"))?;
        anyhow::ensure!(
            self.max_buffer.is_finite()
                && self.max_buffer >= self.startup_buffer.max(self.resume_buffer)
                && self.startup_buffer >= 0.0
                && self.resume_buffer >= 0.0,
            "--max-buffer must be at least --startup-buffer and --resume-buffer (all ≥ 0)"
        );
        for (name, value) in [
            ("--timeout", self.timeout),
            ("--connect-timeout", self.connect_timeout),
        ] {
            anyhow::ensure!(
                value.is_finite() && value > 0.0 && value <= 3600.0,
                "{name} must be between 0 and 3600 s"
            );
        }
        anyhow::ensure!(
            self.pathway_penalty.is_finite() && (0.0..=86_400.0).contains(&self.pathway_penalty),
            "--pathway-penalty must be between 0 and 86400 s"
        );
        if let Some(d) = duration {
            anyhow::ensure!(d.is_finite() && d > 0.0, "--duration must be positive");
        }
        player::abr::by_name(&self.abr)?;
        anyhow::ensure!(
            self.live_delay >= 1,
            "--live-delay must be at least one segment"
        );
        Ok(SessionConfig {
            live_delay_segments: self.live_delay,
            abr: self.abr.clone(),
            duration_s: duration,
            max_buffer_s: self.max_buffer,
            startup_s: self.startup_buffer,
            resume_s: self.resume_buffer,
            cmcd: self.cmcd,
            retries: self.retries,
            idle_timeout: Duration::from_secs_f64(self.timeout),
            connect_timeout: Duration::from_secs_f64(self.connect_timeout),
            pathway_penalty: Duration::from_secs_f64(self.pathway_penalty),
            ..SessionConfig::new(url)
        })
    }
}

#[derive(Debug, Args)]
struct PlayArgs {
    /// `master.m3u8` (or a media playlist) or `.mpd` URL.
    #[arg(env = "PLAYER_URL")]
    url: String,
    #[command(flatten)]
    session: SessionArgs,
    /// Stop after this many seconds (default: play to the end; live plays until Ctrl-C).
    #[arg(long, env = "PLAYER_DURATION")]
    duration: Option<f64>,
    /// Emulate a link: `3mbit` or `3mbit,40ms` (default: no shaping).
    #[arg(long, env = "PLAYER_NETWORK")]
    network: Option<LinkModel>,
    /// Print the report as JSON (summary and per-segment log).
    #[arg(long, env = "PLAYER_JSON")]
    json: bool,
    /// Write the per-segment log here, one JSON object per line.
    #[arg(long, env = "PLAYER_LOG")]
    log: Option<PathBuf>,
    /// Plot bitrate, throughput and buffer over time (.svg or .png).
    #[arg(long, env = "PLAYER_PLOT")]
    plot: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct LoadArgs {
    /// `master.m3u8` (or a media playlist) or `.mpd` URL.
    #[arg(env = "PLAYER_URL")]
    url: String,
    #[command(flatten)]
    session: SessionArgs,
    /// Sessions of the whole run (required: a load test is always bounded).
    #[arg(long, env = "PLAYER_SESSIONS")]
    sessions: usize,
    /// Seconds the run lasts; sessions still playing then are stopped (required).
    #[arg(long, env = "PLAYER_DURATION")]
    duration: f64,
    /// Sessions start at random offsets over this many seconds.
    #[arg(long, env = "PLAYER_RAMP", default_value_t = 0.0)]
    ramp: f64,
    /// Each session's link: `3mbit`, `3mbit,40ms`, or a folder of traces
    /// (`time_s<TAB>Mbps`) each session draws one of (default: no shaping).
    #[arg(long, env = "PLAYER_NETWORK")]
    network: Option<String>,
    /// Seed of the start offsets and trace draws.
    #[arg(long, env = "PLAYER_SEED", default_value_t = 1)]
    seed: u64,
    /// Run only the sessions `i` with `i % N == K` (merge the reports with `player merge`).
    #[arg(long, env = "PLAYER_SHARD")]
    shard: Option<Shard>,
    #[command(flatten)]
    out: ReportArgs,
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// Write the JSON report here.
    #[arg(long, env = "PLAYER_JSON_FILE")]
    json: Option<PathBuf>,
    /// Write report.json, report.txt and plots into this folder.
    #[arg(long, env = "PLAYER_REPORT")]
    report: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct MergeArgs {
    /// JSON reports of `player load --shard K/N`.
    #[arg(required = true)]
    reports: Vec<PathBuf>,
    #[command(flatten)]
    out: ReportArgs,
}

fn simulate(args: &SimulateArgs) -> anyhow::Result<()> {
    let traces = load::read_trace_dir(&args.traces)?;
    let video = load::read_video(&args.video)?;
    let names: Vec<&str> = if args.abr == "all" {
        NAMES.to_vec()
    } else {
        vec![args.abr.as_str()]
    };
    let reports = names
        .iter()
        .map(|name| report::run_set(&traces, &video, &Rules::PENSIEVE, name))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("simulating over {}", args.traces.display()))?;
    if args.json {
        let json = match reports.as_slice() {
            [one] => serde_json::to_string_pretty(one)?,
            many => serde_json::to_string_pretty(many)?,
        };
        println!("{json}");
    } else {
        print!("{}", report::table(&reports));
    }
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("starting the async runtime")
}

/// A token cancelled by the first Ctrl-C.
fn ctrl_c_token() -> CancellationToken {
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!("Ctrl-C: stopping");
            on_signal.cancel();
        }
    });
    stop
}

fn write_log(path: &Path, report: &SessionReport) -> anyhow::Result<()> {
    let mut text = String::new();
    for segment in &report.segments {
        text.push_str(&serde_json::to_string(segment)?);
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

async fn play(args: PlayArgs) -> anyhow::Result<()> {
    let mut config = args.session.config(&args.url, args.duration)?;
    config.link = args.network.unwrap_or_default();
    let client = session::http_client_with(6, config.connect_timeout)?;
    let stop = ctrl_c_token();
    let progress = player::progress::SessionProgress::new();
    let report = session::run(&client, &config, &progress, &stop)
        .await
        .with_context(|| format!("cannot play {}", args.url))?;
    progress.finish();
    if let Some(path) = &args.log {
        write_log(path, &report)?;
    }
    if let Some(path) = &args.plot {
        player::plot::session(path, &report)
            .with_context(|| format!("plotting {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{} with {} ({:?})", report.url, report.abr, report.end);
        print!("{}", report.summary.text());
    }
    match (report.end, &report.error) {
        (End::Failed, Some(e)) => anyhow::bail!("playback failed: {e}"),
        _ => Ok(()),
    }
}

/// Prints the load report and writes the files asked for.
fn write_load_report(report: &LoadReport, out: &ReportArgs) -> anyhow::Result<()> {
    let text = load_report::text(report);
    print!("{text}");
    let json = serde_json::to_string_pretty(report)?;
    if let Some(path) = &out.json {
        std::fs::write(path, &json).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(dir) = &out.report {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join("report.json"), &json)?;
        std::fs::write(dir.join("report.txt"), &text)?;
        player::plot::load(dir, report).context("plotting the load report")?;
    }
    Ok(())
}

async fn load(args: LoadArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=100_000).contains(&args.sessions),
        "--sessions must be between 1 and 100000"
    );
    anyhow::ensure!(
        args.duration.is_finite() && args.duration > 0.0 && args.duration <= 86_400.0,
        "--duration must be between 0 and 86400 s"
    );
    anyhow::ensure!(
        args.ramp.is_finite() && (0.0..=args.duration).contains(&args.ramp),
        "--ramp must be between 0 and --duration"
    );
    let network = args
        .network
        .as_deref()
        .map(NetworkSpec::parse)
        .transpose()?;
    let config = LoadConfig {
        session: args.session.config(&args.url, None)?,
        sessions: args.sessions,
        duration_s: args.duration,
        ramp_s: args.ramp,
        network,
        network_label: args.network.clone().unwrap_or_else(|| "unshaped".into()),
        seed: args.seed,
        shard: args.shard,
    };
    let stop = ctrl_c_token();
    let progress = player::progress::LoadProgress::new(args.duration);
    let report = player::load::run(&config, &stop, &progress).await?;
    progress.finish();
    write_load_report(&report, &args.out)
}

fn merge(args: &MergeArgs) -> anyhow::Result<()> {
    let reports = args
        .reports
        .iter()
        .map(|path| -> anyhow::Result<LoadReport> {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    write_load_report(&load_report::merge(reports)?, &args.out)
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Simulate(args) => simulate(&args),
        Command::Play(args) => runtime()?.block_on(play(args)),
        Command::Load(args) => runtime()?.block_on(load(args)),
        Command::Merge(args) => merge(&args),
    }
}
