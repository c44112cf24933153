//! The built-in `sample` asset: the ladder encoded in parallel, packaged as CMAF with HLS
//! and DASH manifests, and written atomically.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::asset::{
    Report, Staging, rendition, rendition_dir, write_file, write_segment, write_vod,
};
use crate::audio::{AudioJob, tone, write_audio_rendition};
use crate::cmaf::video_init_segment;
use crate::encode::{EncodeJob, encode_rendition};
use crate::{
    Codec, Codecs, Ladder, MediaError, MediaType, Presentation, Rendition, Result, Rung, dash,
};

pub use crate::asset::{
    AUDIO_RENDITION, INIT_SEGMENT, MASTER_PLAYLIST, MEDIA_PLAYLIST, MPD, PRESENTATION_JSON,
    read_presentation,
};

/// The asset name of the built-in sample.
pub const SAMPLE_ASSET: &str = "sample";
const AUDIO_SAMPLE_RATE: u32 = 48_000;
const AUDIO_BITRATE: u32 = 128_000;

/// How to make the sample.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleOptions {
    /// Seconds of video.
    pub duration: f64,
    /// Seconds per segment.
    pub segment: f64,
    pub ladder: Ladder,
    pub fps: u32,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// Add an AAC audio rendition (a tone with a beep each second).
    pub audio: bool,
}

impl SampleOptions {
    /// Defaults for a ladder: its default duration, 2 s segments, 30 fps, progress shown.
    pub fn new(ladder: Ladder) -> Self {
        Self {
            duration: ladder.default_duration(),
            segment: 2.0,
            ladder,
            fps: 30,
            progress: true,
            audio: true,
        }
    }
}

/// What [`build_sample`] made.
pub type SampleReport = Report;

/// Encodes and packages one rung into `dir/{id}/`.
fn package_rung(
    dir: &Path,
    rung: &Rung,
    opts: &SampleOptions,
    segments: u32,
    bar: &ProgressBar,
) -> Result<Rendition> {
    let id = rung.id();
    let rendition_dir = rendition_dir(dir, &id)?;
    let frames_per_segment = (opts.segment * f64::from(opts.fps)).round() as u32;
    let timescale = dash::TIMESCALE as u32;
    let job = EncodeJob {
        width: rung.width,
        height: rung.height,
        bitrate_bps: rung.kbps * 1000,
        fps: opts.fps,
        frames_per_segment,
        segments,
        timescale,
        label: format!("{}x{} {}k", rung.width, rung.height, rung.kbps),
    };
    let segment_ticks = u64::from(frames_per_segment) * u64::from(timescale / opts.fps);
    let mut model_segments = Vec::with_capacity(segments as usize);
    let secs = |ticks: u64| ticks as f64 / f64::from(timescale);
    let track = encode_rendition(
        &job,
        |number, samples| {
            let base_time = u64::from(number - 1) * segment_ticks;
            model_segments.push(write_segment(
                &rendition_dir,
                number,
                base_time,
                samples,
                secs(base_time),
                secs(segment_ticks),
            )?);
            Ok(())
        },
        || bar.inc(1),
    )?;
    write_file(
        &rendition_dir.join(INIT_SEGMENT),
        &video_init_segment(&track)?,
    )?;
    let codecs = Codecs::single(Codec::from_sps(&track.sps)?);
    Ok(Rendition {
        width: Some(rung.width),
        height: Some(rung.height),
        frame_rate: Some(f64::from(opts.fps)),
        ..rendition(&id, MediaType::Video, codecs, model_segments)
    })
}

/// Encodes and packages the audio rendition into `dir/audio/`.
fn package_audio(
    dir: &Path,
    opts: &SampleOptions,
    segments: u32,
    bar: &ProgressBar,
) -> Result<Rendition> {
    let job = AudioJob {
        sample_rate: AUDIO_SAMPLE_RATE,
        bitrate: AUDIO_BITRATE,
        segment: opts.segment,
        segments,
    };
    write_audio_rendition(dir, &job, tone(AUDIO_SAMPLE_RATE), || bar.inc(1))
}

/// Encodes the sample ladder and writes `out_dir/sample/` (see the crate docs for the
/// layout). Renditions encode in parallel across cores. The asset is assembled in a
/// temporary folder and renamed into place, so an interrupted run never leaves a half asset
/// that looks complete.
pub fn build_sample(out_dir: &Path, opts: &SampleOptions) -> Result<SampleReport> {
    let started = Instant::now();
    let frames_per_segment = opts.segment * f64::from(opts.fps);
    if opts.fps == 0 || 90_000 % opts.fps != 0 {
        return Err(MediaError::Invalid(format!(
            "{} fps does not divide the 90 kHz clock",
            opts.fps
        )));
    }
    if !(frames_per_segment >= 1.0
        && (frames_per_segment - frames_per_segment.round()).abs() < 1e-9)
    {
        return Err(MediaError::Invalid(format!(
            "a {} s segment is not a whole number of frames at {} fps",
            opts.segment, opts.fps
        )));
    }
    let segments = (opts.duration / opts.segment).round();
    if !(1.0..=100_000.0).contains(&segments) {
        return Err(MediaError::Invalid(format!(
            "{} s is not at least one {} s segment",
            opts.duration, opts.segment
        )));
    }
    let segments = segments as u32;
    let staging = Staging::new(out_dir, SAMPLE_ASSET)?;
    let presentation = build_into(staging.path(), opts, segments)?;
    let dir = staging.commit()?;
    Ok(Report::new(dir, started, &presentation, &|r| {
        opts.ladder
            .rungs
            .iter()
            .find(|rung| rung.id() == r.id)
            .map(|rung| rung.kbps)
            .or((r.id == AUDIO_RENDITION).then_some(AUDIO_BITRATE / 1000))
    }))
}

fn build_into(dir: &Path, opts: &SampleOptions, segments: u32) -> Result<Presentation> {
    std::fs::create_dir_all(dir).map_err(MediaError::io(dir))?;
    let frames_per_rendition =
        u64::from(segments) * (opts.segment * f64::from(opts.fps)).round() as u64;
    // Progress counts video frames, and audio segments (cheap next to a frame).
    let audio_units = if opts.audio { u64::from(segments) } else { 0 };
    let bar = if opts.progress {
        ProgressBar::with_draw_target(
            Some(frames_per_rendition * opts.ladder.rungs.len() as u64 + audio_units),
            ProgressDrawTarget::stderr(),
        )
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "encoding {msg} [{bar:40}] {pos}/{len} frames, {per_sec}, eta {eta}",
        )
        .map_err(|e| MediaError::Invalid(e.to_string()))?
        .progress_chars("=> "),
    );
    bar.set_message(format!("{} renditions", opts.ladder.rungs.len()));
    // Largest pictures first, so the longest job starts first and the cores finish together;
    // audio (`None`) last.
    let mut order: Vec<Option<&Rung>> = opts.ladder.rungs.iter().map(Some).collect();
    order.sort_by_key(|r| std::cmp::Reverse(r.map(|r| u64::from(r.width) * u64::from(r.height))));
    if opts.audio {
        order.push(None);
    }
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<Result<Rendition>>> = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(order.len());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(rung) = order.get(i) else { break };
                    let result = match rung {
                        Some(rung) => package_rung(dir, rung, opts, segments, &bar),
                        None => package_audio(dir, opts, segments, &bar),
                    };
                    let failed = result.is_err();
                    if let Ok(mut done) = done.lock() {
                        done.push(result);
                    }
                    if failed {
                        // Stop handing out work; the error is reported below.
                        next.store(order.len(), Ordering::Relaxed);
                    }
                }
            });
        }
    });
    bar.finish_and_clear();
    let done = done
        .into_inner()
        .map_err(|_| MediaError::Encoder("an encoder thread panicked".into()))?;
    let renditions = done.into_iter().collect::<Result<Vec<_>>>()?;
    if renditions.len() != order.len() {
        return Err(MediaError::Encoder(
            "not every rendition was encoded".into(),
        ));
    }
    write_vod(dir, renditions)
}
