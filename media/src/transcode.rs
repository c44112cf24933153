//! `media ladder`: one file decoded, scaled and encoded at every rung of a ladder, its
//! audio carried over (AAC) or re-encoded to AAC, then packaged like `media package`.
//!
//! Decoding goes through the system `ffmpeg` (Debian's), piped: raw yuv420p frames on its
//! stdout, one process per job, killed when the job stops early. Each rung has its own
//! thread (scale with [`crate::scale`], encode with [`crate::encode::H264Encoder`]) fed
//! through a bounded channel, so memory stays at a few frames per rung. Every rung gets an
//! IDR at the same frames (one per segment), so the renditions are aligned by
//! construction.

use std::io::Read;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Instant;

use crate::asset::{
    Cancel, INIT_SEGMENT, Progress, Report, Stage, Staging, rendition, rendition_dir, write_file,
    write_segment, write_vod,
};
use crate::audio::{AudioJob, write_audio_rendition};
use crate::cmaf::{Sample, video_init_segment};
use crate::encode::H264Encoder;
use crate::mp4::{Movie, TrackKind};
use crate::repackage::{AudioSource, segment_number, write_audio};
use crate::scale::scale_frame;
use crate::source::Frame;
use crate::{
    Codec, Codecs, InputError, Ladder, MediaError, MediaType, Rendition, Result, Rung, Segment,
};

/// How to build a ladder.
#[derive(Debug, Clone)]
pub struct LadderOptions {
    pub ladder: Ladder,
    /// Target seconds per segment (a whole number of frames: rounded to one).
    pub segment: f64,
    pub cancel: Cancel,
    /// Files (name, bytes) written into the asset folder with the rest, before it is
    /// renamed into place: the origin records in one which source the asset was built
    /// from, so the record and the asset appear (and disappear) together.
    pub extra_files: Vec<(String, Vec<u8>)>,
}

impl LadderOptions {
    pub fn new(ladder: Ladder) -> Self {
        Self {
            ladder,
            segment: 2.0,
            cancel: Cancel::new(),
            extra_files: Vec::new(),
        }
    }
}

/// AAC made when the source's audio is not AAC.
const AUDIO_RATE: u32 = 48_000;
const AUDIO_BITRATE: u32 = 128_000;
/// Frames queued per rung between the decoder and that rung's encoder.
const QUEUE: usize = 4;
/// Most stderr kept from ffmpeg for an error message.
const STDERR_LIMIT: u64 = 16 << 10;

fn input_error(path: &Path, reason: InputError) -> MediaError {
    MediaError::Input {
        path: path.to_path_buf(),
        reason,
    }
}

/// Even numbers only: 4:2:0 needs them.
fn even(x: f64) -> u32 {
    ((x / 2.0).round() as u32 * 2).max(2)
}

/// The largest even size of a `width × height` picture that openh264 encodes: at most
/// 3840 on the long side and 2160 on the short one (level 5.2), never larger than the
/// source.
fn encodable_size(width: u32, height: u32) -> (u32, u32) {
    let (long, short) = (width.max(height), width.min(height));
    let scale = (3840.0 / f64::from(long.max(1)))
        .min(2160.0 / f64::from(short.max(1)))
        .min(1.0);
    let fit = |x: u32| ((f64::from(x) * scale) as u32 & !1).max(2);
    (fit(width), fit(height))
}

/// The rungs to encode for a `width × height` source: those at or below its height, each
/// resized to the source's aspect ratio; and, when none is at the source's own height, one
/// there too, at the bit rate per pixel of the highest rung kept (or of the lowest rung,
/// for a source smaller than every rung). A source larger than openh264 encodes counts as
/// its largest encodable size.
pub fn rungs_for_source(ladder: &Ladder, width: u32, height: u32) -> Vec<Rung> {
    let aspect = f64::from(width) / f64::from(height.max(1));
    let (max_width, own) = encodable_size(width, height);
    let fit = |r: &Rung, h: u32| Rung {
        kbps: r.kbps,
        width: even(f64::from(h) * aspect).min(max_width),
        height: h,
    };
    let mut rungs: Vec<Rung> = ladder
        .rungs
        .iter()
        .filter(|r| r.height <= own)
        .map(|r| fit(r, r.height))
        .collect();
    if !rungs.iter().any(|r| r.height == own) {
        let reference = rungs.last().or(ladder.rungs.first()).copied();
        if let Some(reference) = reference {
            let pixels = |r: &Rung| f64::from(r.width) * f64::from(r.height);
            let mut top = fit(&reference, own);
            let kbps = f64::from(reference.kbps) * pixels(&top) / pixels(&reference).max(1.0);
            top.kbps = ((kbps / 50.0).round() as u32 * 50).max(50);
            rungs.push(top);
        }
    }
    rungs.sort_by_key(|r| (r.height, r.kbps));
    rungs.dedup_by_key(|r| r.id());
    rungs
}

/// A child process killed (and reaped) when dropped, so a job that stops early never
/// leaves an ffmpeg running.
#[derive(Debug)]
struct Piped {
    child: Child,
    stdout: ChildStdout,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Piped {
    fn spawn(input: &Path, args: &[&str]) -> Result<Self> {
        let mut command = Command::new("ffmpeg");
        command
            .args(["-nostdin", "-v", "error", "-i"])
            .arg(input)
            .args(args)
            .arg("-")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Its own process group: a Ctrl-C in the terminal reaches the job, which cancels
        // and ends ffmpeg itself, rather than ffmpeg dying first and looking like a failure.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command.spawn().map_err(|e| {
            input_error(
                input,
                InputError::Decode(format!(
                    "cannot run ffmpeg ({e}): install it (Debian: apt-get install ffmpeg)"
                )),
            )
        })?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| MediaError::Encoder("ffmpeg has no stdout".into()))?;
        let stderr = child.stderr.take().map(|pipe| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = pipe.take(STDERR_LIMIT).read_to_string(&mut text);
                text
            })
        });
        Ok(Self {
            child,
            stdout,
            stderr,
        })
    }

    /// Fills `buf` from the child's output; `false` at its end.
    fn read_exact_or_end(&mut self, buf: &mut [u8]) -> std::io::Result<bool> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.stdout.read(&mut buf[filled..])? {
                0 if filled == 0 => return Ok(false),
                0 => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "ffmpeg's output ends inside a frame",
                    ));
                }
                n => filled += n,
            }
        }
        Ok(true)
    }

    /// Waits for the child; an error carries the last line ffmpeg printed.
    fn finish(mut self, input: &Path) -> Result<()> {
        let status = self.child.wait().map_err(MediaError::io(input))?;
        let stderr = self
            .stderr
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        if status.success() {
            Ok(())
        } else {
            let last = stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            Err(input_error(
                input,
                InputError::Decode(format!("ffmpeg {status}: {}", last.trim())),
            ))
        }
    }
}

impl Drop for Piped {
    fn drop(&mut self) {
        // Already exited when `finish` ran; otherwise the job stopped early.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One rung's encoder thread: frames in, segments written to `dir/{id}/`.
fn encode_rung(
    dir: &Path,
    rung: Rung,
    fps: f64,
    timescale: u32,
    frame_ticks: u32,
    gop: usize,
    frames: &Receiver<Arc<Frame>>,
) -> Result<Rendition> {
    let id = rung.id();
    let rendition_dir = rendition_dir(dir, &id)?;
    let mut encoder = H264Encoder::new(rung.kbps * 1000, fps)?;
    let mut scaled = Frame::new(rung.width as usize, rung.height as usize);
    let mut samples: Vec<Sample> = Vec::with_capacity(gop);
    let mut segments = Vec::new();
    let secs = |ticks: u64| ticks as f64 / f64::from(timescale);
    let flush = |samples: &mut Vec<Sample>, segments: &mut Vec<Segment>| -> Result<()> {
        let base = (segments.len() * gop) as u64 * u64::from(frame_ticks);
        let ticks = samples.len() as u64 * u64::from(frame_ticks);
        let number = segment_number(segments.len())?;
        segments.push(write_segment(
            &rendition_dir,
            number,
            base,
            samples,
            secs(base),
            secs(ticks),
        )?);
        samples.clear();
        Ok(())
    };
    for (index, frame) in frames.iter().enumerate() {
        scale_frame(&frame, &mut scaled);
        let millis = (index as f64 * 1000.0 / fps) as u64;
        let (data, sync) = encoder.encode(&scaled, millis, samples.is_empty())?;
        samples.push(Sample {
            data,
            duration: frame_ticks,
            sync,
            composition_offset: 0,
        });
        if samples.len() == gop {
            flush(&mut samples, &mut segments)?;
        }
    }
    if !samples.is_empty() {
        flush(&mut samples, &mut segments)?;
    }
    let track = encoder.track(rung.width, rung.height, timescale)?;
    write_file(
        &rendition_dir.join(INIT_SEGMENT),
        &video_init_segment(&track)?,
    )?;
    Ok(Rendition {
        width: Some(rung.width),
        height: Some(rung.height),
        frame_rate: Some((fps * 1000.0).round() / 1000.0),
        ..rendition(
            &id,
            MediaType::Video,
            Codecs::single(Codec::from_sps(&track.sps)?),
            segments,
        )
    })
}

/// Re-encodes the input's first audio track to AAC-LC (48 kHz stereo, 128 kbit/s), decoded
/// by ffmpeg, segmented like the video (`segments` of `segment` seconds).
fn reencode_audio(
    dir: &Path,
    input: &Path,
    segment: f64,
    segments: u32,
    cancel: &Cancel,
) -> Result<Rendition> {
    let rate = AUDIO_RATE.to_string();
    let mut pcm = Piped::spawn(
        input,
        &["-map", "0:a:0", "-f", "s16le", "-ac", "2", "-ar", &rate],
    )?;
    let mut bytes = Vec::new();
    let mut ended = false;
    let source = move |buf: &mut [i16]| -> Result<()> {
        cancel.check()?;
        bytes.resize(buf.len() * 2, 0);
        if ended
            || !pcm
                .read_exact_or_end(&mut bytes)
                .map_err(MediaError::io(input))?
        {
            // Silence past the end: the segmenting stops at the video's length.
            ended = true;
            buf.fill(0);
            return Ok(());
        }
        for (s, b) in buf.iter_mut().zip(bytes.chunks_exact(2)) {
            *s = i16::from_le_bytes([b[0], b[1]]);
        }
        Ok(())
    };
    let job = AudioJob {
        sample_rate: AUDIO_RATE,
        bitrate: AUDIO_BITRATE,
        segment,
        segments,
    };
    // `source` owns ffmpeg: it is killed when the encoding is done with it, the rest of its
    // output (audio longer than the video) not needed.
    write_audio_rendition(dir, &job, source, || {})
}

/// Builds the adaptive ladder of `input` into `out_lib/name/`: decoded by ffmpeg, scaled and
/// encoded at every rung at or below the source's height (and one at its own height),
/// audio carried (AAC) or re-encoded to AAC, packaged like [`crate::package()`].
/// `progress` hears the stage and fraction done. The asset appears in one rename when
/// complete; on any error or cancellation nothing is left in `out_lib`. Safe to call from a
/// blocking thread; prints nothing.
pub fn ladder(
    input: &Path,
    out_lib: &Path,
    name: &str,
    opts: &LadderOptions,
    progress: impl Fn(Progress),
) -> Result<Report> {
    let result = build_ladder(input, out_lib, name, opts, &progress);
    // A cancelled job may fail in whatever step noticed first (a closed pipe, an early
    // end of input): it is reported as cancelled.
    match result {
        Err(_) if opts.cancel.is_cancelled() => Err(MediaError::Cancelled),
        other => other,
    }
}

fn build_ladder(
    input: &Path,
    out_lib: &Path,
    name: &str,
    opts: &LadderOptions,
    progress: &dyn Fn(Progress),
) -> Result<Report> {
    let started = Instant::now();
    crate::asset::check_asset_name(name)?;
    for (file, _) in &opts.extra_files {
        // A plain file name in the asset folder (the rule of asset names).
        crate::asset::check_asset_name(file).map_err(|_| {
            MediaError::Invalid(format!("extra file {file:?}: a plain file name is needed"))
        })?;
    }
    progress(Progress {
        stage: Stage::Probing,
        fraction: 0.0,
    });
    let movie = Movie::open(input)?;
    let track = movie
        .video()
        .ok_or_else(|| input_error(input, InputError::NoVideo))?;
    // ffmpeg applies the display matrix (a phone's portrait video comes out upright).
    let (width, height) = track
        .display_dimensions()
        .filter(|&(w, h)| w >= 16 && h >= 16)
        .ok_or_else(|| input_error(input, InputError::Corrupt("no picture size".into())))?;
    let timeline = crate::repackage::video_timeline(input, track)?;
    // ffmpeg applies the edit list: it outputs the frames presented from the edit's start
    // on, the first of them at `first_presented` (track ticks).
    let presented: Vec<i64> = track
        .samples
        .iter()
        .map(|s| track.presentation(s))
        .filter(|&p| p >= 0)
        .collect();
    let first_presented = presented.iter().copied().min().unwrap_or(0);
    let frames_expected = presented.len().max(1);
    // `timeline.end` counts from `timeline.zero`; the decoded frames from `first_presented`.
    let presented_secs =
        timeline.end + (timeline.zero - first_presented) as f64 / f64::from(track.timescale);
    let fps = frames_expected as f64 / presented_secs.max(1e-3);
    if !(1.0..=240.0).contains(&fps) {
        return Err(input_error(
            input,
            InputError::Corrupt(format!("{fps:.2} frames per second")),
        ));
    }
    // NTSC rates (29.97 = 30000/1001) on a 1001-tick clock, others on 90 kHz.
    let ntsc = fps * 1001.0 / 1000.0;
    let (timescale, frame_ticks) =
        if (ntsc - ntsc.round()).abs() < 0.005 && (fps - fps.round()).abs() > 0.005 {
            (ntsc.round() as u32 * 1000, 1001)
        } else {
            (90_000, (90_000.0 / fps).round() as u32)
        };
    let fps = f64::from(timescale) / f64::from(frame_ticks);
    let gop = ((opts.segment * fps).round() as usize).max(1);
    let segment_secs = gop as f64 / fps;
    let rungs = rungs_for_source(&opts.ladder, width, height);
    let staging = Staging::new(out_lib, name)?;
    let dir = staging.path();

    // Decode once, fan out to one thread per rung.
    let mut decoder = Piped::spawn(
        input,
        &[
            "-map",
            "0:v:0",
            "-fps_mode",
            "passthrough",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "yuv420p",
        ],
    )?;
    let (w, h) = (width as usize, height as usize);
    let frame_bytes = w * h + 2 * (w.div_ceil(2) * h.div_ceil(2));
    let mut decoded = 0usize;
    let renditions = std::thread::scope(|scope| -> Result<Vec<Rendition>> {
        let mut senders: Vec<SyncSender<Arc<Frame>>> = Vec::new();
        let mut workers = Vec::new();
        for rung in &rungs {
            let (tx, rx) = sync_channel::<Arc<Frame>>(QUEUE);
            senders.push(tx);
            let rung = *rung;
            workers.push(
                scope.spawn(move || encode_rung(dir, rung, fps, timescale, frame_ticks, gop, &rx)),
            );
        }
        let mut raw = vec![0u8; frame_bytes];
        let read = (|| -> Result<()> {
            loop {
                opts.cancel.check()?;
                if !decoder
                    .read_exact_or_end(&mut raw)
                    .map_err(MediaError::io(input))?
                {
                    return Ok(());
                }
                let mut frame = Frame::new(w, h);
                let (y, chroma) = raw.split_at(w * h);
                let (u, v) = chroma.split_at(chroma.len() / 2);
                frame.y.copy_from_slice(y);
                frame.u.copy_from_slice(u);
                frame.v.copy_from_slice(v);
                let frame = Arc::new(frame);
                for tx in &senders {
                    // A worker gone means it failed: its error is reported below.
                    if tx.send(Arc::clone(&frame)).is_err() {
                        return Ok(());
                    }
                }
                decoded += 1;
                progress(Progress {
                    stage: Stage::Encoding,
                    fraction: (decoded as f64 / frames_expected as f64).min(1.0),
                });
            }
        })();
        drop(senders);
        let results: Vec<Result<Rendition>> = workers
            .into_iter()
            .map(|w| {
                w.join().unwrap_or_else(|_| {
                    Err(MediaError::Encoder("an encoder thread panicked".into()))
                })
            })
            .collect();
        read?;
        results.into_iter().collect()
    })?;
    decoder.finish(input)?;
    if decoded == 0 {
        return Err(input_error(
            input,
            InputError::Decode("no frame decoded".into()),
        ));
    }
    let segments = decoded.div_ceil(gop);
    let video_end = decoded as f64 / fps;
    let mut renditions = renditions;
    progress(Progress {
        stage: Stage::Audio,
        fraction: 0.0,
    });
    if let Some(aac) = movie.aac() {
        let cuts: Vec<f64> = (0..segments).map(|k| k as f64 * segment_secs).collect();
        let source = AudioSource {
            path: input,
            track: aac,
            video_zero: first_presented as f64 / f64::from(track.timescale),
        };
        if let Some(r) = write_audio(dir, &source, &cuts, video_end, &opts.cancel, |_| {})? {
            renditions.push(r);
        }
    } else if movie.tracks.iter().any(|t| t.kind == TrackKind::Audio) {
        let n =
            u32::try_from(segments).map_err(|_| MediaError::Invalid("too many segments".into()))?;
        renditions.push(reencode_audio(dir, input, segment_secs, n, &opts.cancel)?);
    }
    progress(Progress {
        stage: Stage::Packaging,
        fraction: 1.0,
    });
    let presentation = write_vod(dir, renditions)?;
    for (file, bytes) in &opts.extra_files {
        write_file(&dir.join(file), bytes)?;
    }
    opts.cancel.check()?;
    let out = staging.commit()?;
    Ok(Report::new(out, started, &presentation, &|r| {
        rungs
            .iter()
            .find(|rung| rung.id() == r.id)
            .map(|rung| rung.kbps)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(rungs: &[Rung]) -> Vec<String> {
        rungs
            .iter()
            .map(|r| format!("{}x{}@{}", r.width, r.height, r.kbps))
            .collect()
    }

    #[test]
    fn rungs_stop_at_the_source_and_include_its_height() {
        let default = Ladder::default_ladder();
        // A 720p source keeps the five rungs up to 720p; its own height is one of them.
        assert_eq!(
            ids(&rungs_for_source(&default, 1280, 720)),
            [
                "480x270@300",
                "640x360@750",
                "854x480@1200",
                "960x540@1850",
                "1280x720@2850"
            ]
        );
        // 1280x544 (scope): rungs keep the aspect ratio, plus one at 544 lines.
        let scope = rungs_for_source(&default, 1280, 544);
        assert_eq!(scope.last().map(|r| (r.width, r.height)), Some((1280, 544)));
        assert!(scope.iter().all(|r| r.height <= 544));
        assert_eq!(scope[0].width, 636);
        // Odd sizes round down to even (4:2:0).
        let odd = rungs_for_source(&default, 641, 361);
        assert_eq!(odd.last().map(|r| (r.width, r.height)), Some((640, 360)));
        // 8K is encoded at most at 3840x2160, its top rung there.
        let eight_k = rungs_for_source(&default, 7680, 4320);
        assert_eq!(
            eight_k.last().map(|r| (r.width, r.height)),
            Some((3840, 2160))
        );
        assert_eq!(encodable_size(2160, 3840), (2160, 3840));
        // A source smaller than every rung gets one rung at its own size.
        let tiny = rungs_for_source(&default, 320, 180);
        // 300 kbit/s at 480x270, per pixel, is 133 at 320x180: 150 in steps of 50.
        assert_eq!(ids(&tiny), ["320x180@150"]);
    }
}
