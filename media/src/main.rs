//! `media`: make the built-in sample asset, repackage the user's files, build a ladder from
//! one file, inspect a file.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use media::{Cancel, Ladder, PackageOptions, Progress, SampleOptions};

#[derive(Debug, Parser)]
#[command(
    name = "media",
    version,
    about = "Rivulet media tools: the sample ladder, packaging and laddering your own video"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Encode the synthetic sample at every rung of a ladder and package it as CMAF with HLS
    /// and DASH manifests, into OUT/sample/.
    Sample {
        /// Library folder to write the `sample` asset into.
        #[arg(long, env = "MEDIA_OUT", default_value = "data")]
        out: PathBuf,
        /// Seconds of video [default: 60, or 8 with the small ladder].
        #[arg(long, env = "MEDIA_DURATION")]
        duration: Option<f64>,
        /// Seconds per segment.
        #[arg(long, env = "MEDIA_SEGMENT", default_value_t = 2.0)]
        segment: f64,
        /// `default` (300…4300 kbit/s up to 1080p), `small` (3 rungs up to 720p) or a list
        /// such as `300,750@640x360,1200` (kbit/s, optional resolution).
        #[arg(long, env = "MEDIA_LADDER", default_value = "default")]
        ladder: Ladder,
        /// Frames per second.
        #[arg(long, env = "MEDIA_FPS", default_value_t = 30)]
        fps: u32,
        /// No progress bar.
        #[arg(long, env = "MEDIA_QUIET")]
        quiet: bool,
        /// Video only: no AAC audio rendition.
        #[arg(long, env = "MEDIA_NO_AUDIO")]
        no_audio: bool,
    },
    /// Repackage MP4 / MOV / fragmented MP4 files (H.264 or HEVC, AAC) without re-encoding
    /// into LIB/NAME/: each input is one video rendition of the same title.
    Package {
        /// The renditions, e.g. movie_360.mp4 movie_720.mp4.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Library folder to write the asset into.
        #[arg(long, env = "MEDIA_OUT", default_value = "data")]
        out: PathBuf,
        /// Asset name (the folder under LIB, and /vod/NAME/ on the origin).
        #[arg(long, env = "MEDIA_NAME")]
        name: String,
        /// Target seconds per segment: cuts fall on the keyframes nearest to it.
        #[arg(long, env = "MEDIA_SEGMENT", default_value_t = 2.0)]
        segment: f64,
        /// No progress bar.
        #[arg(long, env = "MEDIA_QUIET")]
        quiet: bool,
    },
    /// Build the adaptive ladder of one file into LIB/NAME/: decode (ffmpeg), scale and
    /// encode (openh264) every rung at or below the source's height, audio copied when AAC
    /// (re-encoded to AAC otherwise), then packaged like `package`.
    Ladder {
        input: PathBuf,
        /// Library folder to write the asset into.
        #[arg(long, env = "MEDIA_OUT", default_value = "data")]
        out: PathBuf,
        /// Asset name (the folder under LIB).
        #[arg(long, env = "MEDIA_NAME")]
        name: String,
        /// `default`, `small` or a list such as `300,750@640x360,1200` (kbit/s, optional
        /// resolution; widths follow the source's aspect ratio).
        #[arg(long, env = "MEDIA_LADDER", default_value = "default")]
        ladder: Ladder,
        /// Seconds per segment (rounded to whole frames).
        #[arg(long, env = "MEDIA_SEGMENT", default_value_t = 2.0)]
        segment: f64,
        /// No progress bar.
        #[arg(long, env = "MEDIA_QUIET")]
        quiet: bool,
    },
    /// Print what a file holds (container, duration, video and audio), reading only its
    /// structure.
    Inspect { input: PathBuf },
}

/// A progress bar on stderr driven by the library's [`Progress`] reports (hidden with
/// `quiet`).
fn progress_bar(quiet: bool) -> anyhow::Result<ProgressBar> {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::with_draw_target(Some(1000), ProgressDrawTarget::stderr())
    };
    bar.set_style(
        ProgressStyle::with_template("{msg:>16} [{bar:40}] {percent:>3} % eta {eta}")?
            .progress_chars("=> "),
    );
    Ok(bar)
}

fn show(bar: &ProgressBar, p: Progress) {
    bar.set_message(p.stage.to_string());
    bar.set_position((p.fraction.clamp(0.0, 1.0) * 1000.0) as u64);
}

/// A cancellation flag set by Ctrl-C or SIGTERM, so a job stops between frames and removes
/// its temporary folder instead of leaving it behind.
fn cancel_on_signal() -> Cancel {
    let cancel = Cancel::new();
    let flag = cancel.clone();
    std::thread::spawn(move || {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => {
                runtime.block_on(http_rules::signal::stop_signal());
                flag.cancel();
            }
            Err(e) => tracing::error!(error = %e, "cannot watch for Ctrl-C"),
        }
    });
    cancel
}

/// Runs the command; an error is printed as one line (the library's errors name the file
/// and the reason) and the exit code is 1.
fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("media: {}", http_rules::report::error_chain(&*e));
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // mp4-atom warns about every box it does not model (QuickTime has many).
                .unwrap_or_else(|_| "info,mp4_atom=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Sample {
            out,
            duration,
            segment,
            ladder,
            fps,
            quiet,
            no_audio,
        } => {
            let mut opts = SampleOptions::new(ladder);
            opts.duration = duration.unwrap_or(opts.duration);
            opts.segment = segment;
            opts.fps = fps;
            opts.progress = !quiet;
            opts.audio = !no_audio;
            let report = media::build_sample(&out, &opts)
                .with_context(|| format!("making the sample in {}", out.display()))?;
            println!("{report}");
        }
        Command::Package {
            inputs,
            out,
            name,
            segment,
            quiet,
        } => {
            let opts = PackageOptions {
                segment,
                cancel: cancel_on_signal(),
            };
            let bar = progress_bar(quiet)?;
            let result =
                media::repackage::package_with_progress(&inputs, &out, &name, &opts, &|p| {
                    show(&bar, p);
                });
            bar.finish_and_clear();
            // The library's errors are one line naming the file and the reason.
            let report = result?;
            println!("{report}");
        }
        Command::Ladder {
            input,
            out,
            name,
            ladder,
            segment,
            quiet,
        } => {
            let opts = media::LadderOptions {
                segment,
                cancel: cancel_on_signal(),
                ..media::LadderOptions::new(ladder)
            };
            let bar = progress_bar(quiet)?;
            let result = media::ladder(&input, &out, &name, &opts, |p| show(&bar, p));
            bar.finish_and_clear();
            let report = result?;
            println!("{report}");
        }
        Command::Inspect { input } => {
            let info = media::inspect(&input)?;
            println!(
                "{}: {}, {:.3} s, {} bytes",
                info.path.display(),
                info.container,
                info.duration,
                info.size_bytes
            );
            let v = &info.video;
            println!(
                "  video: {} {}x{} {} fps, longest keyframe gap {:.3} s{}",
                v.codec,
                v.width,
                v.height,
                v.frame_rate,
                v.max_keyframe_gap,
                if v.packageable {
                    ""
                } else {
                    " (needs `media ladder`: not H.264/HEVC)"
                }
            );
            match &info.audio {
                Some(a) => println!(
                    "  audio: {} {} Hz, {} channels{}",
                    a.codec,
                    a.sample_rate,
                    a.channels,
                    if a.aac {
                        ""
                    } else {
                        " (re-encoded to AAC by `media ladder`)"
                    }
                ),
                None => println!("  audio: none"),
            }
        }
    }
    Ok(())
}
