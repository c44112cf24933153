//! The built-in `sample` asset: the ladder encoded in parallel, packaged as CMAF with HLS
//! and DASH manifests, and written atomically.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::audio::{AudioJob, encode_audio};
use crate::cmaf::{audio_init_segment, media_segment, video_init_segment};
use crate::encode::{EncodeJob, encode_rendition};
use crate::{
    Codec, Codecs, Container, Ladder, MediaError, MediaType, Presentation, PresentationKind,
    Rendition, Result, Rung, Segment, dash, hls,
};

/// The asset name of the built-in sample.
pub const SAMPLE_ASSET: &str = "sample";
/// File names inside an asset folder.
pub const MASTER_PLAYLIST: &str = "master.m3u8";
pub const MPD: &str = "manifest.mpd";
pub const PRESENTATION_JSON: &str = "presentation.json";
pub const MEDIA_PLAYLIST: &str = "index.m3u8";
pub const INIT_SEGMENT: &str = "init.mp4";
/// The folder (and rendition id) of the audio rendition.
pub const AUDIO_RENDITION: &str = "audio";
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

/// What one rendition came out as.
#[derive(Debug, Clone, PartialEq)]
pub struct RenditionReport {
    pub id: String,
    pub target_kbps: u32,
    pub average_kbps: f64,
    pub peak_kbps: f64,
}

/// What [`build_sample`] made.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleReport {
    pub dir: PathBuf,
    pub elapsed: Duration,
    pub renditions: Vec<RenditionReport>,
}

impl std::fmt::Display for SampleReport {
    /// The one-line summary: time taken and measured bit rate per rendition.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sample written to {} in {:.1} s:",
            self.dir.display(),
            self.elapsed.as_secs_f64()
        )?;
        for r in &self.renditions {
            write!(
                f,
                " {} {:.0}k (peak {:.0}k);",
                r.id, r.average_kbps, r.peak_kbps
            )?;
        }
        Ok(())
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(MediaError::io(path))
}

/// Encodes and packages one rung into `dir/{id}/`.
fn package_rung(
    dir: &Path,
    rung: &Rung,
    opts: &SampleOptions,
    segments: u32,
    bar: &ProgressBar,
) -> Result<Rendition> {
    let id = rung.id();
    let rendition_dir = dir.join(&id);
    std::fs::create_dir_all(&rendition_dir).map_err(MediaError::io(&rendition_dir))?;
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
    let track = encode_rendition(
        &job,
        |number, samples| {
            let base_time = u64::from(number - 1) * segment_ticks;
            let bytes = media_segment(number, base_time, samples)?;
            let name = format!("{number}.m4s");
            write_file(&rendition_dir.join(&name), &bytes)?;
            model_segments.push(Segment {
                number: u64::from(number),
                start: base_time as f64 / f64::from(timescale),
                duration: segment_ticks as f64 / f64::from(timescale),
                size: Some(bytes.len() as u64),
                uri: name,
                ..Default::default()
            });
            Ok(())
        },
        || bar.inc(1),
    )?;
    write_file(
        &rendition_dir.join(INIT_SEGMENT),
        &video_init_segment(&track)?,
    )?;
    let mut rendition = Rendition {
        id: id.clone(),
        media_type: MediaType::Video,
        bandwidth_peak: 0,
        bandwidth_avg: 0,
        width: Some(rung.width),
        height: Some(rung.height),
        frame_rate: Some(f64::from(opts.fps)),
        codecs: Codecs::single(Codec::from_sps(&track.sps)?),
        sample_rate: None,
        init_uri: Some(INIT_SEGMENT.into()),
        init_range: None,
        container: Container::Fmp4,
        playlist_uri: Some(format!("{id}/{MEDIA_PLAYLIST}")),
        segment_index: None,
        segments: model_segments,
    };
    rendition.measure_bandwidth();
    Ok(rendition)
}

/// Encodes and packages the audio rendition into `dir/audio/`.
fn package_audio(
    dir: &Path,
    opts: &SampleOptions,
    segments: u32,
    bar: &ProgressBar,
) -> Result<Rendition> {
    let rendition_dir = dir.join(AUDIO_RENDITION);
    std::fs::create_dir_all(&rendition_dir).map_err(MediaError::io(&rendition_dir))?;
    let job = AudioJob {
        sample_rate: AUDIO_SAMPLE_RATE,
        bitrate: AUDIO_BITRATE,
        segment: opts.segment,
        segments,
    };
    let rate = f64::from(AUDIO_SAMPLE_RATE);
    let mut model_segments = Vec::with_capacity(segments as usize);
    let track = encode_audio(&job, |number, base_time, samples| {
        let bytes = media_segment(number, base_time, samples)?;
        let name = format!("{number}.m4s");
        write_file(&rendition_dir.join(&name), &bytes)?;
        let ticks: u64 = samples.iter().map(|s| u64::from(s.duration)).sum();
        model_segments.push(Segment {
            number: u64::from(number),
            start: base_time as f64 / rate,
            duration: ticks as f64 / rate,
            size: Some(bytes.len() as u64),
            uri: name,
            ..Default::default()
        });
        bar.inc(1);
        Ok(())
    })?;
    write_file(
        &rendition_dir.join(INIT_SEGMENT),
        &audio_init_segment(&track)?,
    )?;
    let mut rendition = Rendition {
        id: AUDIO_RENDITION.into(),
        media_type: MediaType::Audio,
        bandwidth_peak: 0,
        bandwidth_avg: 0,
        width: None,
        height: None,
        frame_rate: None,
        codecs: Codecs::single(Codec::from_audio_specific_config(
            &track.audio_specific_config,
        )?),
        sample_rate: Some(AUDIO_SAMPLE_RATE),
        init_uri: Some(INIT_SEGMENT.into()),
        init_range: None,
        container: Container::Fmp4,
        playlist_uri: Some(format!("{AUDIO_RENDITION}/{MEDIA_PLAYLIST}")),
        segment_index: None,
        segments: model_segments,
    };
    rendition.measure_bandwidth();
    Ok(rendition)
}

/// Writes the manifests of `presentation` into the asset folder `dir`. Rendition URIs in the
/// model are relative to the rendition folder; the multivariant playlist and MPD refer to
/// them through the folder name.
fn write_manifests(dir: &Path, presentation: &Presentation) -> Result<()> {
    for r in &presentation.renditions {
        write_file(
            &dir.join(&r.id).join(MEDIA_PLAYLIST),
            hls::write_vod_media_playlist(r)?.as_bytes(),
        )?;
    }
    write_file(
        &dir.join(MASTER_PLAYLIST),
        hls::write_multivariant(presentation)?.as_bytes(),
    )?;
    write_file(
        &dir.join(MPD),
        dash::write_static_mpd(presentation)?.as_bytes(),
    )?;
    let json =
        serde_json::to_vec_pretty(presentation).map_err(|e| MediaError::Invalid(e.to_string()))?;
    write_file(&dir.join(PRESENTATION_JSON), &json)
}

/// Reads the presentation model of an asset folder made by [`build_sample`].
pub fn read_presentation(asset_dir: &Path) -> Result<Presentation> {
    let path = asset_dir.join(PRESENTATION_JSON);
    let bytes = std::fs::read(&path).map_err(MediaError::io(&path))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| MediaError::Invalid(format!("{}: {e}", path.display())))
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
    std::fs::create_dir_all(out_dir).map_err(MediaError::io(out_dir))?;
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let tmp = out_dir.join(format!(
        ".{SAMPLE_ASSET}.tmp-{}-{nonce}",
        std::process::id()
    ));
    let result = build_into(&tmp, opts, segments);
    let presentation = match result {
        Ok(p) => p,
        Err(e) => {
            // Best effort: the temporary folder is ours alone.
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    let dir = out_dir.join(SAMPLE_ASSET);
    // Replace any previous sample: move it aside first so `dir` is never half-written.
    let old = out_dir.join(format!(
        ".{SAMPLE_ASSET}.old-{}-{nonce}",
        std::process::id()
    ));
    let had_old = dir.exists();
    if had_old {
        std::fs::rename(&dir, &old).map_err(MediaError::io(&dir))?;
    }
    std::fs::rename(&tmp, &dir).map_err(MediaError::io(&dir))?;
    if had_old {
        std::fs::remove_dir_all(&old).map_err(MediaError::io(&old))?;
    }
    let targets = opts
        .ladder
        .rungs
        .iter()
        .map(|r| r.kbps)
        .chain([AUDIO_BITRATE / 1000]);
    let renditions = presentation
        .renditions
        .iter()
        .zip(targets)
        .map(|(r, target_kbps)| RenditionReport {
            id: r.id.clone(),
            target_kbps,
            average_kbps: r.bandwidth_avg as f64 / 1000.0,
            peak_kbps: r.bandwidth_peak as f64 / 1000.0,
        })
        .collect();
    Ok(SampleReport {
        dir,
        elapsed: started.elapsed(),
        renditions,
    })
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
    let mut presentation = Presentation {
        kind: PresentationKind::Vod,
        renditions,
        delivery: Default::default(),
    };
    presentation.sort();
    write_manifests(dir, &presentation)?;
    Ok(presentation)
}
