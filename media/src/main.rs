//! `media`: make the built-in sample asset.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use media::{Ladder, SampleOptions};

#[derive(Debug, Parser)]
#[command(
    name = "media",
    version,
    about = "Rivulet media tools: encode and package the sample ladder"
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
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
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
    }
    Ok(())
}
