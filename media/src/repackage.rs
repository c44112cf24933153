//! `media package`: the user's MP4 / MOV / fragmented MP4 files repackaged, without
//! re-encoding, into an asset laid out like the sample (CMAF segments, HLS and DASH
//! manifests, `presentation.json`), and the cheap [`inspect`] probe.
//!
//! Each input is one video rendition (its first video track, H.264 or HEVC); the audio
//! rendition is the first AAC track of the inputs, in order. Segments are cut at the
//! reference input's keyframes nearest the target duration ([`crate::segmenter`]), and every
//! other input must have keyframes at the same presentation times. Presentation times
//! follow the edit lists, shifted so the first presented video frame is at 0; composition
//! offsets go into version-1 `trun`s, negative where a frame is presented before it is
//! decoded. Samples are streamed from the files by offset: memory holds the sample indexes
//! and one segment at a time.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::asset::{
    AUDIO_RENDITION, Cancel, INIT_SEGMENT, Progress, Report, Stage, Staging, rendition,
    rendition_dir, write_file, write_segment, write_vod,
};
use crate::cmaf::{Sample, track_init_segment};
use crate::mp4::{Movie, SampleReader, Track, codec_name};
use crate::segmenter::{audio_ranges, choose_cuts, longest_gap, match_cuts};
use crate::{Codec, Codecs, InputError, MediaError, MediaType, Rendition, Result};

/// A stretch longer than this without a keyframe is refused: a segment must start with one.
pub const MAX_KEYFRAME_GAP: f64 = 30.0;

/// How to package.
#[derive(Debug, Clone)]
pub struct PackageOptions {
    /// Target seconds per segment; segments are cut at the keyframe nearest each target.
    pub segment: f64,
    /// Set to stop the job; it then fails with [`MediaError::Cancelled`] and leaves nothing.
    pub cancel: Cancel,
}

impl Default for PackageOptions {
    fn default() -> Self {
        Self {
            segment: 2.0,
            cancel: Cancel::new(),
        }
    }
}

fn input_error(path: &Path, reason: InputError) -> MediaError {
    MediaError::Input {
        path: path.to_path_buf(),
        reason,
    }
}

/// A video track placed on the title's timeline.
#[derive(Debug)]
pub(crate) struct VideoTimeline {
    /// Index of the first sample kept: the keyframe the edit list's start falls in.
    pub(crate) first: usize,
    /// Track ticks subtracted from edited presentation times, so the first kept keyframe
    /// presents at 0.
    pub(crate) zero: i64,
    /// Keyframes (sync samples from `first` on): presentation seconds and sample index.
    keyframes: Vec<(f64, usize)>,
    /// Presentation end of the last frame, seconds.
    pub(crate) end: f64,
    /// The shortest frame duration, seconds (half of it is the alignment tolerance).
    frame: f64,
}

impl VideoTimeline {
    fn of(path: &Path, track: &Track) -> Result<Self> {
        let scale = f64::from(track.timescale);
        // The keyframe the edit list's start falls in (a file cut without re-encoding keeps
        // the GOP its cut is in, and hides its head): presentation starts there, since a
        // segment must start with a keyframe. Without one at or before the start, the first.
        let first = track
            .samples
            .iter()
            .rposition(|s| s.sync && track.presentation(s) <= 0)
            .or_else(|| track.samples.iter().position(|s| s.sync))
            .ok_or_else(|| {
                let reason = if track.samples.is_empty() {
                    InputError::EmptyVideo
                } else {
                    InputError::NoKeyframe {
                        gap: track.duration_secs(),
                        from: 0.0,
                        limit: MAX_KEYFRAME_GAP,
                    }
                };
                input_error(path, reason)
            })?;
        let zero = track.presentation(&track.samples[first]);
        let secs = |ticks: i64| ticks as f64 / scale;
        let kept = &track.samples[first..];
        let keyframes = kept
            .iter()
            .enumerate()
            .filter(|(_, s)| s.sync)
            .map(|(i, s)| (secs(track.presentation(s) - zero), first + i))
            .collect();
        let end = kept
            .iter()
            .map(|s| track.presentation(s) - zero + i64::from(s.duration))
            .max()
            .map_or(0.0, secs);
        let frame = kept
            .iter()
            .map(|s| s.duration)
            .filter(|&d| d > 0)
            .min()
            .map_or(0.0, |d| f64::from(d) / scale);
        Ok(Self {
            first,
            zero,
            keyframes,
            end,
            frame,
        })
    }

    fn keyframe_times(&self) -> Vec<f64> {
        self.keyframes.iter().map(|k| k.0).collect()
    }

    /// Refuses a video with a stretch longer than [`MAX_KEYFRAME_GAP`] without a keyframe.
    fn check_gaps(&self, path: &Path) -> Result<()> {
        match longest_gap(&self.keyframe_times(), self.end) {
            Some((gap, from)) if gap > MAX_KEYFRAME_GAP => Err(input_error(
                path,
                InputError::NoKeyframe {
                    gap,
                    from,
                    limit: MAX_KEYFRAME_GAP,
                },
            )),
            _ => Ok(()),
        }
    }
}

/// The timeline of `track` (of the file at `path`), its keyframe gaps checked.
pub(crate) fn video_timeline(path: &Path, track: &Track) -> Result<VideoTimeline> {
    let timeline = VideoTimeline::of(path, track)?;
    timeline.check_gaps(path)?;
    Ok(timeline)
}

/// One opened input and its video track.
#[derive(Debug)]
struct VideoInput {
    path: PathBuf,
    movie: Movie,
    track: usize,
    codec: Codec,
    timeline: VideoTimeline,
}

impl VideoInput {
    fn new(path: &Path, movie: Movie) -> Result<Self> {
        let track = movie
            .tracks
            .iter()
            .position(|t| t.kind == crate::mp4::TrackKind::Video)
            .ok_or_else(|| input_error(path, InputError::NoVideo))?;
        let codec = movie.tracks[track]
            .video_codec()
            .map_err(|reason| input_error(path, reason))?;
        let timeline = video_timeline(path, &movie.tracks[track])?;
        Ok(Self {
            path: path.to_path_buf(),
            movie,
            track,
            codec,
            timeline,
        })
    }

    fn track(&self) -> &Track {
        &self.movie.tracks[self.track]
    }
}

/// The cut times of the title and, for each input, the sample index each segment starts
/// at; or the first input whose keyframes do not line up with the first input's.
fn plan_segments(inputs: &[VideoInput], target: f64) -> Result<(Vec<f64>, Vec<Vec<usize>>)> {
    let reference = &inputs[0];
    let cuts = choose_cuts(&reference.timeline.keyframe_times(), target);
    let tolerance = inputs
        .iter()
        .map(|i| i.timeline.frame)
        .fold(f64::INFINITY, f64::min)
        / 2.0;
    let mut starts = Vec::with_capacity(inputs.len());
    for input in inputs {
        // Cuts past this rendition's end are not its business (a slightly shorter file).
        let own: Vec<f64> = cuts
            .iter()
            .copied()
            .filter(|&c| c < input.timeline.end - tolerance)
            .collect();
        let indices =
            match_cuts(&input.timeline.keyframe_times(), &own, tolerance).map_err(|at| {
                input_error(
                    &input.path,
                    InputError::Unaligned {
                        reference: reference.path.clone(),
                        at,
                    },
                )
            })?;
        starts.push(
            indices
                .into_iter()
                .map(|k| input.timeline.keyframes[k].1)
                .collect(),
        );
    }
    Ok((cuts, starts))
}

/// Unique rendition id `{height}p-{kbps}k` (the sample's scheme), suffixed when taken.
fn rendition_id(height: u32, kbps: u64, taken: &[String]) -> String {
    let base = format!("{height}p-{kbps}k");
    let mut id = base.clone();
    let mut n = 2;
    while taken.contains(&id) {
        id = format!("{base}-{n}");
        n += 1;
    }
    id
}

/// Counts work done (bytes of samples written) against the total, for progress.
struct Tally<'a> {
    done: u64,
    total: u64,
    progress: &'a dyn Fn(Progress),
}

impl Tally<'_> {
    fn add(&mut self, bytes: u64) {
        self.done += bytes;
        (self.progress)(Progress {
            stage: Stage::Packaging,
            fraction: self.done as f64 / self.total.max(1) as f64,
        });
    }
}

/// Writes one video rendition into `dir/{id}/`.
fn write_video(
    dir: &Path,
    input: &VideoInput,
    starts: &[usize],
    taken: &[String],
    opts: &PackageOptions,
    tally: &mut Tally<'_>,
) -> Result<Rendition> {
    let track = input.track();
    let timeline = &input.timeline;
    let scale = f64::from(track.timescale);
    let kept = &track.samples[timeline.first..];
    let bytes: u64 = kept.iter().map(|s| u64::from(s.size)).sum();
    let kbps = (bytes as f64 * 8.0 / timeline.end.max(1e-3) / 1000.0).round() as u64;
    let (width, height) = track.dimensions().unwrap_or((0, 0));
    let id = rendition_id(height, kbps, taken);
    let rendition_dir = rendition_dir(dir, &id)?;
    // The source's composition offsets are kept; the first kept frame's offset becomes the
    // init segment's edit, so it presents at 0. Offsets are lowered only when that one is
    // negative (a source already shifted to signed offsets).
    let first_offset = track.samples[timeline.first].cts_offset;
    let delay = first_offset.max(0);
    let lower = first_offset - delay;
    write_file(
        &rendition_dir.join(INIT_SEGMENT),
        &track_init_segment(
            track.entry.clone(),
            track.timescale,
            delay.unsigned_abs().into(),
        )?,
    )?;
    let mut reader = SampleReader::open(&input.path)?;
    let first_dts = track.samples[timeline.first].dts;
    let presented =
        |i: usize| (track.presentation(&track.samples[i]) - timeline.zero) as f64 / scale;
    let mut segments = Vec::with_capacity(starts.len());
    for (j, &start) in starts.iter().enumerate() {
        opts.cancel.check()?;
        let end = starts.get(j + 1).copied().unwrap_or(track.samples.len());
        let refs = &track.samples[start..end];
        let mut samples = Vec::with_capacity(refs.len());
        for s in refs {
            samples.push(Sample {
                data: reader.read(s)?,
                duration: s.duration,
                sync: s.sync,
                composition_offset: s.cts_offset - lower,
            });
        }
        let seg_start = presented(start);
        let seg_end = starts
            .get(j + 1)
            .map_or(timeline.end, |&next| presented(next));
        segments.push(write_segment(
            &rendition_dir,
            segment_number(j)?,
            track.samples[start].dts - first_dts,
            &samples,
            seg_start,
            seg_end - seg_start,
        )?);
        tally.add(refs.iter().map(|s| u64::from(s.size)).sum());
    }
    let frames = kept.len() as f64;
    Ok(Rendition {
        width: Some(width),
        height: Some(height),
        frame_rate: Some((frames / timeline.end.max(1e-3) * 1000.0).round() / 1000.0),
        ..rendition(
            &id,
            MediaType::Video,
            Codecs::single(input.codec.clone()),
            segments,
        )
    })
}

/// The number (from 1) of the segment at index `j`.
pub(crate) fn segment_number(j: usize) -> Result<u32> {
    u32::try_from(j + 1).map_err(|_| MediaError::Invalid("too many segments".into()))
}

/// The AAC track packaged with the video: its file, track, and the video zero of that file
/// (seconds) its times are measured from.
#[derive(Debug)]
pub(crate) struct AudioSource<'a> {
    pub path: &'a Path,
    pub track: &'a Track,
    /// Presentation seconds of the file's own first video frame: the audio is placed
    /// relative to it, as the file plays.
    pub video_zero: f64,
}

/// Writes the audio rendition into `dir/audio/`, segmented at the video's cuts.
pub(crate) fn write_audio(
    dir: &Path,
    audio: &AudioSource<'_>,
    cuts: &[f64],
    video_end: f64,
    cancel: &Cancel,
    mut on_bytes: impl FnMut(u64),
) -> Result<Option<Rendition>> {
    let track = audio.track;
    let asc = track.audio_specific_config().ok_or_else(|| {
        input_error(
            audio.path,
            InputError::UnsupportedAudio(track.entry_fourcc()),
        )
    })?;
    let rate = f64::from(track.timescale);
    let zero = (audio.video_zero * rate).round() as i64;
    let starts: Vec<i64> = track
        .samples
        .iter()
        .map(|s| track.presentation(s) - zero)
        .collect();
    let frame = track
        .samples
        .iter()
        .map(|s| i64::from(s.duration))
        .max()
        .unwrap_or(1024);
    let ticks = |secs: f64| (secs * rate).round() as i64;
    let cut_ticks: Vec<i64> = cuts.iter().map(|&c| ticks(c)).collect();
    let ranges = audio_ranges(&starts, frame, &cut_ticks, ticks(video_end));
    if ranges.iter().all(|r| r.is_empty()) {
        return Ok(None);
    }
    let rendition_dir = rendition_dir(dir, AUDIO_RENDITION)?;
    write_file(
        &rendition_dir.join(INIT_SEGMENT),
        &track_init_segment(track.entry.clone(), track.timescale, 0)?,
    )?;
    let mut reader = SampleReader::open(audio.path)?;
    let mut segments = Vec::new();
    for (j, range) in ranges.into_iter().enumerate() {
        cancel.check()?;
        if range.is_empty() {
            // Audio shorter than the video: the audio playlist simply ends earlier.
            break;
        }
        let refs = &track.samples[range.clone()];
        let mut samples = Vec::with_capacity(refs.len());
        for s in refs {
            samples.push(Sample {
                data: reader.read(s)?,
                duration: s.duration,
                sync: true,
                composition_offset: 0,
            });
        }
        let base = u64::try_from(starts[range.start]).unwrap_or(0);
        let duration: u64 = refs.iter().map(|s| u64::from(s.duration)).sum();
        segments.push(write_segment(
            &rendition_dir,
            segment_number(j)?,
            base,
            &samples,
            base as f64 / rate,
            duration as f64 / rate,
        )?);
        on_bytes(refs.iter().map(|s| u64::from(s.size)).sum());
    }
    let sample_rate = track
        .entry
        .audio()
        .map(|a| u32::from(a.sample_rate.integer()))
        .filter(|&r| r > 0)
        .unwrap_or(track.timescale);
    let codecs = Codecs::single(Codec::from_audio_specific_config(asc)?);
    Ok(Some(Rendition {
        sample_rate: Some(sample_rate),
        ..rendition(AUDIO_RENDITION, MediaType::Audio, codecs, segments)
    }))
}

/// Repackages `inputs` (renditions of one title) without re-encoding into `out_lib/name/`.
/// The asset appears in one rename when complete; on any error nothing is left in
/// `out_lib`. Safe to call from a blocking thread; prints nothing.
pub fn package(
    inputs: &[PathBuf],
    out_lib: &Path,
    name: &str,
    opts: &PackageOptions,
) -> Result<Report> {
    package_with_progress(inputs, out_lib, name, opts, &|_| {})
}

/// [`package`], reporting progress (stage [`Stage::Packaging`]) after every segment.
pub fn package_with_progress(
    inputs: &[PathBuf],
    out_lib: &Path,
    name: &str,
    opts: &PackageOptions,
    progress: &dyn Fn(Progress),
) -> Result<Report> {
    let started = Instant::now();
    crate::asset::check_asset_name(name)?;
    if !(opts.segment.is_finite() && (0.5..=60.0).contains(&opts.segment)) {
        return Err(MediaError::Invalid(format!(
            "segment duration {} s: use 0.5 to 60 s",
            opts.segment
        )));
    }
    if inputs.is_empty() {
        return Err(MediaError::Invalid("no input files".into()));
    }
    progress(Progress {
        stage: Stage::Probing,
        fraction: 0.0,
    });
    // Inputs with video are renditions; an input with audio only (a packager's separate
    // audio file) can be the title's audio.
    let mut videos = Vec::new();
    let mut video_order = Vec::new();
    let mut audio_only = Vec::new();
    for (order, path) in inputs.iter().enumerate() {
        let movie = Movie::open(path)?;
        if movie.video().is_none() && movie.audio().is_some() {
            audio_only.push((order, path.as_path(), movie));
        } else {
            videos.push(VideoInput::new(path, movie)?);
            video_order.push(order);
        }
    }
    if videos.is_empty() {
        return Err(input_error(&inputs[0], InputError::NoVideo));
    }
    let audio = find_audio(&videos, &video_order, &audio_only);
    let (cuts, starts) = plan_segments(&videos, opts.segment)?;
    let staging = Staging::new(out_lib, name)?;
    let total: u64 = videos
        .iter()
        .map(|v| {
            v.track().samples[v.timeline.first..]
                .iter()
                .map(|s| u64::from(s.size))
                .sum::<u64>()
        })
        .sum::<u64>()
        + audio.as_ref().map_or(0, |a| {
            a.track.samples.iter().map(|s| u64::from(s.size)).sum()
        });
    let mut tally = Tally {
        done: 0,
        total,
        progress,
    };
    let mut renditions: Vec<Rendition> = Vec::new();
    for (input, starts) in videos.iter().zip(&starts) {
        let taken: Vec<String> = renditions.iter().map(|r| r.id.clone()).collect();
        renditions.push(write_video(
            staging.path(),
            input,
            starts,
            &taken,
            opts,
            &mut tally,
        )?);
    }
    if let Some(audio) = &audio {
        let video_end = videos[0].timeline.end;
        if let Some(r) = write_audio(
            staging.path(),
            audio,
            &cuts,
            video_end,
            &opts.cancel,
            |bytes| tally.add(bytes),
        )? {
            renditions.push(r);
        }
    }
    let presentation = write_vod(staging.path(), renditions)?;
    opts.cancel.check()?;
    let dir = staging.commit()?;
    Ok(Report::new(dir, started, &presentation, &|_| None))
}

/// The first AAC track of the inputs (`videos`, at the places `video_order` in the input
/// list, and `audio_only`, each with its place), in input order. Other audio tracks are
/// left out (logged): without re-encoding only AAC is packaged. An audio-only file's times
/// count from its own 0.
fn find_audio<'a>(
    videos: &'a [VideoInput],
    video_order: &[usize],
    audio_only: &'a [(usize, &'a Path, Movie)],
) -> Option<AudioSource<'a>> {
    let from_video = video_order.iter().zip(videos).filter_map(|(order, v)| {
        let track = v.movie.aac()?;
        let video_zero = v.timeline.zero as f64 / f64::from(v.track().timescale);
        Some((
            *order,
            AudioSource {
                path: &v.path,
                track,
                video_zero,
            },
        ))
    });
    let from_audio = audio_only.iter().filter_map(|(order, path, movie)| {
        Some((
            *order,
            AudioSource {
                path,
                track: movie.aac()?,
                video_zero: 0.0,
            },
        ))
    });
    let found = from_video.chain(from_audio).min_by_key(|(order, _)| *order);
    if found.is_none() {
        let movies = videos
            .iter()
            .map(|v| (v.path.as_path(), &v.movie))
            .chain(audio_only.iter().map(|(_, p, m)| (*p, m)));
        for (path, movie) in movies {
            if let Some(other) = movie.audio() {
                tracing::warn!(
                    file = %path.display(),
                    codec = %codec_name(&other.entry_fourcc()),
                    "audio is not AAC: packaged without audio (`media ladder` re-encodes it)"
                );
            }
        }
    }
    found.map(|(_, audio)| audio)
}

/// What [`inspect`] tells about a video track.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoInfo {
    /// The RFC 6381 codecs string for H.264 / HEVC, else the sample entry's code and name.
    pub codec: String,
    /// Whether `media package` can carry it as is (H.264 or HEVC).
    pub packageable: bool,
    pub width: u32,
    pub height: u32,
    pub frame_rate: f64,
    /// Longest stretch between keyframes, seconds.
    pub max_keyframe_gap: f64,
}

/// What [`inspect`] tells about an audio track.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioInfo {
    pub codec: String,
    /// AAC: copied as is; anything else is re-encoded by `ladder`, dropped by `package`.
    pub aac: bool,
    pub sample_rate: u32,
    pub channels: u16,
}

/// What a source file holds, read from its structure only (no media data).
#[derive(Debug, Clone, PartialEq)]
pub struct SourceInfo {
    pub path: PathBuf,
    /// `mp4`, `mov` or `fragmented mp4`.
    pub container: &'static str,
    /// Seconds of video.
    pub duration: f64,
    pub size_bytes: u64,
    pub video: VideoInfo,
    pub audio: Option<AudioInfo>,
}

/// A cheap probe of `input`: its structure is read (the movie box and fragment headers,
/// never the media data), so a caller can validate a file before queueing a job for it.
/// Fails, naming the file, when it is not a movie or has no usable video track.
pub fn inspect(input: &Path) -> Result<SourceInfo> {
    let movie = Movie::open(input)?;
    let track = movie
        .video()
        .ok_or_else(|| input_error(input, InputError::NoVideo))?;
    let (codec, packageable) = match track.video_codec() {
        Ok(codec) => (codec.to_string(), true),
        Err(_) => (codec_name(&track.entry_fourcc()), false),
    };
    let timeline = VideoTimeline::of(input, track)?;
    let (width, height) = track.display_dimensions().unwrap_or((0, 0));
    let frames = (track.samples.len() - timeline.first) as f64;
    let video = VideoInfo {
        codec,
        packageable,
        width,
        height,
        frame_rate: (frames / timeline.end.max(1e-3) * 1000.0).round() / 1000.0,
        max_keyframe_gap: longest_gap(&timeline.keyframe_times(), timeline.end)
            .map_or(0.0, |g| g.0),
    };
    let audio = movie.aac().or(movie.audio()).map(|a| {
        let entry = a.entry.audio();
        AudioInfo {
            codec: match a.audio_specific_config() {
                Some(asc) => Codec::from_audio_specific_config(asc)
                    .map_or_else(|_| a.entry_fourcc(), |c| c.to_string()),
                None => codec_name(&a.entry_fourcc()),
            },
            aac: a.audio_specific_config().is_some(),
            sample_rate: entry.map_or(a.timescale, |e| u32::from(e.sample_rate.integer())),
            channels: entry.map_or(0, |e| e.channel_count),
        }
    });
    Ok(SourceInfo {
        path: input.to_path_buf(),
        container: if movie.fragmented {
            "fragmented mp4"
        } else if movie.quicktime {
            "mov"
        } else {
            "mp4"
        },
        duration: timeline.end,
        size_bytes: movie.file_len,
        video,
        audio,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendition_ids_stay_unique() {
        let taken = vec!["720p-2500k".to_string(), "720p-2500k-2".to_string()];
        assert_eq!(rendition_id(360, 800, &taken), "360p-800k");
        assert_eq!(rendition_id(720, 2500, &taken), "720p-2500k-3");
    }
}
