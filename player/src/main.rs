//! `player`: the headless client's command line. A thin dispatcher over the library.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::builder::PossibleValue;
use clap::{Args, Parser, Subcommand, ValueEnum};
use http_rules::cli::parse_duration;
use http_rules::report::error_chain;
use http_rules::signal::stop_signal;
use player::abr::{AbrKind, AbrParams, Provenance};
use player::link::{LinkModel, NetworkSpec};
use player::load::report::{self as load_report, LoadReport};
use player::load::{LoadConfig, Shard};
use player::session::{self, End, SessionConfig, SessionReport};
use player::sim::report::{Bench, Contender};
use player::sim::{load, report, tune};
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
    /// Run ABR algorithms and the offline optimum over every trace in a folder, in
    /// virtual time (optionally cross-validated).
    Simulate(SimulateArgs),
    /// Search an algorithm's parameters on training traces and write them to a file.
    Tune(TuneArgs),
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
    /// Algorithms (comma-separated), `optimal` (the offline optimum), or `all`. The
    /// optimum is always computed too, for every algorithm's share of it.
    #[arg(
        long,
        env = "PLAYER_ABR",
        default_value = "rivulet",
        value_delimiter = ','
    )]
    abr: Vec<Choice>,
    #[command(flatten)]
    params: ParamsArg,
    /// K-fold cross-validation: each fold is scored with parameters tuned on the others
    /// (`player tune`'s search); figures are over the left-out folds only.
    #[arg(long, env = "PLAYER_CV", value_parser = clap::value_parser!(u16).range(2..=100))]
    cv: Option<u16>,
    /// Buffer quantum of the offline optimum's dynamic programme.
    #[arg(long, env = "PLAYER_OPTIMAL_STEP", default_value = "50ms", value_parser = parse_duration)]
    optimal_step: Duration,
    /// Print JSON (one object for one algorithm, else an array).
    #[arg(long, env = "PLAYER_JSON")]
    json: bool,
    /// Plot each trace's QoE per chunk for every algorithm against the optimum (.svg or
    /// .png).
    #[arg(long, env = "PLAYER_PLOT")]
    plot: Option<PathBuf>,
}

/// `--abr-params`, shared by `simulate`, `tune`, `play` and `load`.
#[derive(Debug, Args)]
struct ParamsArg {
    /// ABR parameter file (JSON, as `player tune` writes it); default: the tuned
    /// parameters built in (`player/abr/rivulet.json`).
    #[arg(long, env = "PLAYER_ABR_PARAMS")]
    abr_params: Option<PathBuf>,
}

impl ParamsArg {
    fn load(&self) -> anyhow::Result<AbrParams> {
        Ok(match &self.abr_params {
            Some(path) => AbrParams::read(path)?,
            None => AbrParams::default(),
        })
    }
}

#[derive(Debug, Args)]
struct TuneArgs {
    /// Folder of training traces.
    #[arg(long, env = "PLAYER_TRACES")]
    traces: PathBuf,
    /// Video chunk-size table.
    #[arg(long, env = "PLAYER_VIDEO")]
    video: PathBuf,
    /// The algorithm whose parameters are searched.
    #[arg(long, env = "PLAYER_ABR", default_value = "rivulet")]
    abr: AbrKind,
    /// Where the search starts (default: the middle of every parameter's grid).
    #[command(flatten)]
    params: ParamsArg,
    /// Write the parameters found here (JSON), for `--abr-params`.
    #[arg(long, env = "PLAYER_OUT")]
    out: PathBuf,
}

/// One `--abr` value of `simulate`: one contender, or all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Choice {
    One(Contender),
    All,
}

impl Choice {
    const VARIANTS: [Self; 7] = [
        Self::One(Contender::Abr(AbrKind::ALL[0])),
        Self::One(Contender::Abr(AbrKind::ALL[1])),
        Self::One(Contender::Abr(AbrKind::ALL[2])),
        Self::One(Contender::Abr(AbrKind::ALL[3])),
        Self::One(Contender::Abr(AbrKind::ALL[4])),
        Self::One(Contender::Optimal),
        Self::All,
    ];
}

/// The contenders asked for, each once, in the order asked, and the optimum last if
/// it was not asked for (it gives the shares); `true` when it was asked for.
fn contenders(choices: &[Choice]) -> (Vec<Contender>, bool) {
    let mut out: Vec<Contender> = Vec::new();
    for choice in choices {
        let add = match choice {
            Choice::One(c) => vec![*c],
            Choice::All => Contender::all(),
        };
        for c in add {
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    let asked = out.contains(&Contender::Optimal);
    if !asked {
        out.push(Contender::Optimal);
    }
    (out, asked)
}

impl ValueEnum for Choice {
    fn value_variants<'a>() -> &'a [Self] {
        &Self::VARIANTS
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(match self {
            Self::One(c) => c.name(),
            Self::All => "all",
        }))
    }
}

/// How each real-time session plays (shared by `play` and `load`). Durations take the
/// grammar every Rivulet command shares: `500ms`, `1.5s`, `10` (seconds), `2m`, `1h`.
#[derive(Debug, Args)]
struct SessionArgs {
    /// ABR algorithm.
    #[arg(long, env = "PLAYER_ABR", default_value = "rivulet")]
    abr: AbrKind,
    #[command(flatten)]
    params: ParamsArg,
    /// Fetch no further ahead than this much media.
    #[arg(long, env = "PLAYER_MAX_BUFFER", default_value = "30", value_parser = parse_duration)]
    max_buffer: Duration,
    /// Media buffered before playback starts.
    #[arg(long, env = "PLAYER_STARTUP_BUFFER", default_value = "2", value_parser = parse_duration)]
    startup_buffer: Duration,
    /// Media buffered before playback resumes after a stall.
    #[arg(long, env = "PLAYER_RESUME_BUFFER", default_value = "2", value_parser = parse_duration)]
    resume_buffer: Duration,
    /// Report CMCD (CTA-5004) as the `CMCD` query parameter.
    #[arg(long, env = "PLAYER_CMCD")]
    cmcd: bool,
    /// Retries of a failed request (with backoff) before the session gives up.
    #[arg(long, env = "PLAYER_RETRIES", default_value_t = 3)]
    retries: u32,
    /// Time without data after which a request fails.
    #[arg(long, env = "PLAYER_TIMEOUT", default_value = "10", value_parser = parse_duration)]
    timeout: Duration,
    /// Time to make a connection; also how soon a silent peer is given up on (TCP
    /// keepalive after this long, closed after twice it unacknowledged).
    #[arg(long, env = "PLAYER_CONNECT_TIMEOUT", default_value = "1", value_parser = parse_duration)]
    connect_timeout: Duration,
    /// How long a pathway that failed a request stays last in the order.
    #[arg(long, env = "PLAYER_PATHWAY_PENALTY", default_value = "30", value_parser = parse_duration)]
    pathway_penalty: Duration,
    /// Live: start this many segments behind the newest one (the hold-back).
    #[arg(long, env = "PLAYER_LIVE_DELAY", default_value_t = player::session::manifest::LIVE_DELAY_SEGMENTS)]
    live_delay: u64,
}

impl SessionArgs {
    fn config(&self, url: &str, duration: Option<Duration>) -> anyhow::Result<SessionConfig> {
        let url = url::Url::parse(url).with_context(|| format!("invalid URL {url:?}"))?;
        anyhow::ensure!(
            self.max_buffer >= self.startup_buffer.max(self.resume_buffer),
            "--max-buffer must be at least --startup-buffer and --resume-buffer"
        );
        for (name, value) in [
            ("--timeout", self.timeout),
            ("--connect-timeout", self.connect_timeout),
        ] {
            anyhow::ensure!(
                !value.is_zero() && value <= Duration::from_secs(3600),
                "{name} must be between 0 and 3600 s"
            );
        }
        anyhow::ensure!(
            self.pathway_penalty <= Duration::from_secs(86_400),
            "--pathway-penalty must be between 0 and 86400 s"
        );
        if let Some(d) = duration {
            anyhow::ensure!(!d.is_zero(), "--duration must be positive");
        }
        anyhow::ensure!(
            self.live_delay >= 1,
            "--live-delay must be at least one segment"
        );
        Ok(SessionConfig {
            live_delay_segments: self.live_delay,
            abr: self.abr,
            abr_params: self.params.load()?,
            duration_s: duration.map(|d| d.as_secs_f64()),
            max_buffer_s: self.max_buffer.as_secs_f64(),
            startup_s: self.startup_buffer.as_secs_f64(),
            resume_s: self.resume_buffer.as_secs_f64(),
            cmcd: self.cmcd,
            retries: self.retries,
            idle_timeout: self.timeout,
            connect_timeout: self.connect_timeout,
            pathway_penalty: self.pathway_penalty,
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
    /// Stop after this long (default: play to the end; live plays until Ctrl-C).
    #[arg(long, env = "PLAYER_DURATION", value_parser = parse_duration)]
    duration: Option<Duration>,
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
    /// How long the run lasts; sessions still playing then are stopped (required).
    #[arg(long, env = "PLAYER_DURATION", value_parser = parse_duration)]
    duration: Duration,
    /// Sessions start at random offsets over this long.
    #[arg(long, env = "PLAYER_RAMP", default_value = "0", value_parser = parse_duration)]
    ramp: Duration,
    /// Each session's link: `3mbit`, `3mbit,40ms`, or a folder of traces
    /// (`time_s<TAB>Mbps`) each session draws one of (default: no shaping).
    #[arg(long, env = "PLAYER_NETWORK", value_parser = NetworkSpec::parse)]
    network: Option<NetworkSpec>,
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
    let params = args.params.load()?;
    let bench = Bench {
        optimal_step_ms: args.optimal_step.as_secs_f64() * 1000.0,
        ..Bench::new(&video, &params)
    };
    let (who, optimal_asked) = contenders(&args.abr);
    let context = || format!("simulating over {}", args.traces.display());
    let (mut reports, cv) = match args.cv {
        None => (bench.run_sets(&traces, &who).with_context(context)?, None),
        Some(k) => {
            let bar = player::progress::steps("cross-validating", u64::from(k));
            let cv = tune::cross_validate(&bench, &traces, &who, usize::from(k), &|fold, step| {
                bar.set_position(fold as u64);
                bar.set_message(format!(
                    "fold {}/{k}: pass {} {} (best {:.4})",
                    fold + 1,
                    step.pass,
                    step.axis,
                    step.best
                ));
            })
            .with_context(context)?;
            bar.finish_and_clear();
            (cv.iter().map(|r| r.held_out.clone()).collect(), Some(cv))
        }
    };
    if let Some(path) = &args.plot {
        player::plot::per_trace(path, &reports, &args.traces.display().to_string())
            .with_context(|| format!("plotting {}", path.display()))?;
    }
    // The optimum was only wanted for the shares: its row shows in the table, not in
    // the JSON.
    let keep = |r: &report::SetReport| optimal_asked || r.abr != Contender::Optimal;
    if args.json {
        let json = match cv {
            Some(mut cv) => {
                cv.retain(|r| keep(&r.held_out));
                match cv.as_slice() {
                    [one] => serde_json::to_string_pretty(one)?,
                    many => serde_json::to_string_pretty(many)?,
                }
            }
            None => {
                reports.retain(keep);
                match reports.as_slice() {
                    [one] => serde_json::to_string_pretty(one)?,
                    many => serde_json::to_string_pretty(many)?,
                }
            }
        };
        println!("{json}");
    } else {
        if let Some(k) = args.cv {
            println!(
                "{k}-fold cross-validation: every figure is from traces the tuning did not see"
            );
        }
        print!("{}", report::table(&reports));
    }
    Ok(())
}

fn tune(args: &TuneArgs) -> anyhow::Result<()> {
    let traces = load::read_trace_dir(&args.traces)?;
    let video = load::read_video(&args.video)?;
    let start = match &args.params.abr_params {
        Some(_) => args.params.load()?,
        None => tune::start_point(args.abr),
    };
    let bench = Bench::new(&video, &start);
    anyhow::ensure!(
        !tune::axes(args.abr).is_empty(),
        "{} has no parameters to tune",
        args.abr
    );
    let bar = player::progress::steps("tuning", tune::axes(args.abr).len() as u64);
    let tuned = tune::tune(&bench, &traces, args.abr, &|step| {
        bar.set_message(format!(
            "pass {}: {} (best {:.4})",
            step.pass, step.axis, step.best
        ));
        bar.inc(1);
    })
    .with_context(|| format!("tuning over {}", args.traces.display()))?;
    bar.finish_and_clear();
    let mut params = tuned.params;
    params.tuned = Some(Provenance {
        command: format!(
            "player tune --traces {} --video {} --abr {} --out {}",
            args.traces.display(),
            args.video.display(),
            args.abr,
            args.out.display()
        ),
        training_traces: traces.len(),
        training_qoe_per_chunk: tuned.qoe_per_chunk,
    });
    let json = serde_json::to_string_pretty(&params)? + "\n";
    std::fs::write(&args.out, json).with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "{}: {:.4} QoE/chunk on {} training traces after {} evaluations; written to {}",
        args.abr,
        tuned.qoe_per_chunk,
        traces.len(),
        tuned.evaluations,
        args.out.display()
    );
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("starting the async runtime")
}

/// A token cancelled by the first Ctrl-C or SIGTERM.
fn stop_token() -> CancellationToken {
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        stop_signal().await;
        on_signal.cancel();
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
    let stop = stop_token();
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
        !args.duration.is_zero() && args.duration <= Duration::from_secs(86_400),
        "--duration must be between 0 and 86400 s"
    );
    anyhow::ensure!(
        args.ramp <= args.duration,
        "--ramp must be between 0 and --duration"
    );
    let config = LoadConfig {
        session: args.session.config(&args.url, None)?,
        sessions: args.sessions,
        duration_s: args.duration.as_secs_f64(),
        ramp_s: args.ramp.as_secs_f64(),
        network: args.network,
        seed: args.seed,
        shard: args.shard,
    };
    let stop = stop_token();
    let progress = player::progress::LoadProgress::new(config.duration_s);
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

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match Cli::parse().command {
        Command::Simulate(args) => simulate(&args),
        Command::Tune(args) => tune(&args),
        Command::Play(args) => runtime().and_then(|r| r.block_on(play(args))),
        Command::Load(args) => runtime().and_then(|r| r.block_on(load(args))),
        Command::Merge(args) => merge(&args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_chain(e.as_ref()));
            std::process::ExitCode::FAILURE
        }
    }
}
