//! Live channels: an asset looped on the wall clock from a fixed availability start time.
//! Once set up (each rendition's init segment and its first and last segments read once),
//! everything is a pure function of (asset, availability start, now), so every origin behind
//! every edge agrees on what segment N is, byte for byte.
//!
//! **The loop.** It lasts as long as the asset's shortest video rendition, measured in decode
//! time (the `tfdt`s and sample durations of its first and last segments): L. Every
//! rendition plays its own segments in loops of exactly L, numbered from 1 at the
//! availability start: a rendition's live segment N is asset segment `(N−1) mod K + 1` of
//! loop `(N−1) div K` (K: the segments a loop of that rendition plays), and becomes
//! available once it has ended on the live timeline. Its decode times are those of the
//! asset less where the video starts, plus loop × L in each track's own timescale, rounded
//! per loop (never accumulated), so no track drifts from another however long the channel
//! runs.
//!
//! **The seam.** A rendition that runs past L (ffmpeg's audio is a frame or two longer than
//! its video) is cut there: its segments that begin after L are left out of the loop, and
//! the samples of its last one that end after L are cut off ([`crate::fragments::retime`]).
//! Every track thus ends each loop at or less than one sample before L and starts the next
//! at L exactly: video is contiguous, audio leaves a gap shorter than one frame (21 ms at
//! 48 kHz), never an overlap, and media time never goes backwards.
//!
//! Only fragmented MP4 can be re-timed: an asset with MPEG-TS or packed-audio segments is
//! refused, with the reason.

use crate::folder::{AssetFiles, HEADER_LIMIT, is_folder_path};
use crate::fragments::{Retime, TrackDefaults, TrackRetime, TrackRun, retime, track_runs};
use crate::validate::init::Init;
use crate::{
    ByteRange, Container, MediaError, MediaType, Presentation, PresentationKind, Rendition, Result,
    Segment,
};

/// The largest media segment a loop reads (a 4K segment of a few seconds is tens of MB).
pub const SEGMENT_LIMIT: u64 = 256 << 20;
/// How many segments at the end of a rendition may lie wholly past the loop's end.
const TAIL: usize = 16;
/// Slack when comparing times in seconds.
const EPSILON: f64 = 1e-9;

/// Where the state of a live segment number stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentState {
    /// Still being "produced": answer 404, cacheable only briefly.
    NotYet,
    Available,
    /// Older than the DVR depth.
    Expired,
}

/// A file of the asset, or a byte range of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRef {
    /// A path in the asset folder.
    pub path: String,
    pub range: Option<ByteRange>,
}

/// One track of a rendition, on the loop's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TrackClock {
    defaults: TrackDefaults,
    timescale: u64,
    /// The asset decode time (this timescale) at which the loop starts: where the video
    /// starts.
    origin: u64,
    /// The asset decode time at which the loop ends.
    end: u64,
}

/// A segment a loop of one rendition plays.
#[derive(Debug, Clone, PartialEq)]
struct LoopSegment {
    source: SourceRef,
    /// Seconds from the loop's start.
    start: f64,
    end: f64,
    size: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
struct RenditionLoop {
    init: SourceRef,
    tracks: Vec<TrackClock>,
    segments: Vec<LoopSegment>,
}

/// An asset looped on the wall clock.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveLoop {
    /// Seconds since the Unix epoch at which the first loop began.
    pub availability_start: f64,
    /// Seconds of one loop.
    pub loop_duration: f64,
    /// The longest video segment, seconds: live manifests are reloaded on it.
    pub segment_duration: f64,
    /// The loop's length exactly: ticks of a timescale.
    loop_ticks: u64,
    loop_timescale: u64,
    /// The channel as players see it: each rendition at `{id}/index.m3u8`, `{id}/init.mp4`,
    /// `{id}/{n}.m4s`, with the segments of one loop.
    layout: Presentation,
    renditions: Vec<RenditionLoop>,
}

fn invalid(rendition: &Rendition, why: impl std::fmt::Display) -> MediaError {
    MediaError::Invalid(format!("rendition {}: {why}", rendition.id))
}

/// `value × numerator / denominator`, rounded to the nearest integer.
fn scale(value: u64, numerator: u64, denominator: u64) -> u64 {
    let d = u128::from(denominator.max(1));
    let scaled = (u128::from(value) * u128::from(numerator) + d / 2) / d;
    u64::try_from(scaled).unwrap_or(u64::MAX)
}

/// A file of the asset folder the model names.
fn source(rendition: &Rendition, uri: Option<&str>, range: Option<ByteRange>) -> Result<SourceRef> {
    let uri = uri.ok_or_else(|| invalid(rendition, "no init segment"))?;
    if !is_folder_path(uri) {
        return Err(invalid(
            rendition,
            format!("{uri} is not a file of the asset"),
        ));
    }
    Ok(SourceRef {
        path: uri.to_string(),
        range,
    })
}

fn read(files: &dyn AssetFiles, source: &SourceRef, limit: u64) -> Result<Vec<u8>> {
    files.read(&source.path, source.range, limit)
}

/// What the loop needs of one rendition's files.
struct Facts {
    init: SourceRef,
    tracks: Vec<(TrackDefaults, u64)>,
    segments: Vec<SourceRef>,
    /// The first segment's runs.
    first: Vec<TrackRun>,
}

impl Facts {
    fn read(rendition: &Rendition, files: &dyn AssetFiles) -> Result<Self> {
        if rendition.container != Container::Fmp4 {
            let what = match rendition.container {
                Container::MpegTs => "MPEG-TS",
                _ => "packed audio",
            };
            return Err(invalid(
                rendition,
                format!(
                    "{what} segments cannot be looped live: only fragmented MP4 can be re-timed"
                ),
            ));
        }
        if rendition.segments.is_empty() {
            return Err(invalid(rendition, "no segments"));
        }
        let init = source(
            rendition,
            rendition.init_uri.as_deref(),
            rendition.init_range,
        )?;
        let header = Init::read(&read(files, &init, HEADER_LIMIT)?)
            .map_err(|e| invalid(rendition, format!("init segment: {e}")))?;
        let tracks = header
            .tracks
            .iter()
            .map(|t| {
                let defaults = TrackDefaults {
                    track_id: t.id,
                    duration: t.default_duration,
                    size: t.default_size,
                };
                (defaults, u64::from(t.timescale.max(1)))
            })
            .collect::<Vec<_>>();
        let segments = rendition
            .segments
            .iter()
            .map(|s| source(rendition, Some(&s.uri), s.range))
            .collect::<Result<Vec<_>>>()?;
        let mut facts = Self {
            init,
            tracks,
            segments,
            first: Vec::new(),
        };
        facts.first = facts.runs(rendition, files, 0)?;
        Ok(facts)
    }

    fn defaults(&self) -> Vec<TrackDefaults> {
        self.tracks.iter().map(|(d, _)| *d).collect()
    }

    fn timescale(&self, track: u32) -> Option<u64> {
        self.tracks
            .iter()
            .find(|(d, _)| d.track_id == track)
            .map(|(_, ts)| *ts)
    }

    /// The runs of segment `index`.
    fn runs(
        &self,
        rendition: &Rendition,
        files: &dyn AssetFiles,
        index: usize,
    ) -> Result<Vec<TrackRun>> {
        let segment = &self.segments[index];
        let bytes = read(files, segment, SEGMENT_LIMIT)?;
        let offset = segment.range.map_or(0, |r| r.offset);
        let runs = track_runs(&bytes, offset, &self.defaults())
            .map_err(|e| invalid(rendition, format!("{}: {e}", segment.path)))?;
        match runs.iter().find(|r| self.timescale(r.track_id).is_none()) {
            Some(r) => Err(invalid(
                rendition,
                format!(
                    "{}: track {} is not in the init segment",
                    segment.path, r.track_id
                ),
            )),
            None if runs.is_empty() => {
                Err(invalid(rendition, format!("{}: no samples", segment.path)))
            }
            None => Ok(runs),
        }
    }
}

impl LiveLoop {
    /// The loop of `asset` (a model whose URIs are paths in its folder, as
    /// [`crate::folder::read_model`] and [`crate::folder::folder_paths`] give), whose files
    /// `files` reads, starting at `availability_start` (seconds since the Unix epoch).
    pub fn new(
        asset: &Presentation,
        availability_start: f64,
        files: &dyn AssetFiles,
    ) -> Result<Self> {
        if asset.video().next().is_none() {
            return Err(MediaError::Invalid(
                "a live channel needs a video rendition".into(),
            ));
        }
        let facts = asset
            .renditions
            .iter()
            .map(|r| Facts::read(r, files))
            .collect::<Result<Vec<_>>>()?;
        // The loop: the shortest video rendition, in decode time, from where it starts.
        let mut shortest: Option<(u64, u64, u64)> = None; // (ticks, timescale, first decode time)
        for (r, f) in asset.renditions.iter().zip(&facts) {
            if r.media_type != MediaType::Video {
                continue;
            }
            let first = &f.first[0];
            let last = f.runs(r, files, f.segments.len() - 1)?;
            let end = last
                .iter()
                .filter(|run| run.track_id == first.track_id)
                .map(TrackRun::end)
                .max()
                .unwrap_or(0);
            let ticks = end.saturating_sub(first.base_decode_time);
            let ts = f.timescale(first.track_id).unwrap_or(1);
            if ticks == 0 {
                return Err(invalid(r, "its video has no duration"));
            }
            let shorter = shortest.is_none_or(|(t, s, _)| {
                u128::from(ticks) * u128::from(s) < u128::from(t) * u128::from(ts)
            });
            if shorter {
                shortest = Some((ticks, ts, first.base_decode_time));
            }
        }
        let Some((loop_ticks, loop_timescale, video_origin)) = shortest else {
            return Err(MediaError::Invalid(
                "a live channel needs a video rendition".into(),
            ));
        };
        let loop_duration = loop_ticks as f64 / loop_timescale as f64;
        let mut renditions = Vec::with_capacity(facts.len());
        for (r, f) in asset.renditions.iter().zip(facts) {
            renditions.push(Self::rendition_loop(
                r,
                f,
                files,
                (loop_ticks, loop_timescale, video_origin),
            )?);
        }
        let segment_duration = asset
            .renditions
            .iter()
            .zip(&renditions)
            .filter(|(r, _)| r.media_type == MediaType::Video)
            .flat_map(|(_, l)| l.segments.iter().map(|s| s.end - s.start))
            .fold(0.0, f64::max);
        let layout = Presentation {
            kind: asset.kind,
            renditions: asset
                .renditions
                .iter()
                .zip(&renditions)
                .map(|(r, l)| Rendition {
                    playlist_uri: Some(format!("{}/index.m3u8", r.id)),
                    init_uri: Some("init.mp4".into()),
                    init_range: None,
                    container: Container::Fmp4,
                    segment_index: None,
                    segments: l
                        .segments
                        .iter()
                        .enumerate()
                        .map(|(k, s)| Segment {
                            number: k as u64 + 1,
                            start: s.start,
                            duration: s.end - s.start,
                            size: s.size,
                            uri: format!("{}.m4s", k + 1),
                            ..Segment::default()
                        })
                        .collect(),
                    ..r.clone()
                })
                .collect(),
            delivery: Default::default(),
        };
        Ok(Self {
            availability_start,
            loop_duration,
            segment_duration,
            loop_ticks,
            loop_timescale,
            layout,
            renditions,
        })
    }

    /// One rendition's loop: its tracks' clocks, and the segments it plays, the last cut
    /// at the loop's end when it runs past it.
    fn rendition_loop(
        r: &Rendition,
        f: Facts,
        files: &dyn AssetFiles,
        (loop_ticks, loop_timescale, video_origin): (u64, u64, u64),
    ) -> Result<RenditionLoop> {
        let tracks: Vec<TrackClock> = f
            .tracks
            .iter()
            .map(|&(defaults, ts)| {
                let origin = scale(video_origin, ts, loop_timescale);
                TrackClock {
                    defaults,
                    timescale: ts,
                    origin,
                    end: origin + scale(loop_ticks, ts, loop_timescale),
                }
            })
            .collect();
        // Every track is cut at the loop's end but never at its start: one that starts
        // before the video would overlap its own previous loop.
        if let Some((run, t)) = f.first.iter().find_map(|run| {
            let t = tracks
                .iter()
                .find(|t| t.defaults.track_id == run.track_id)?;
            (run.base_decode_time < t.origin).then_some((run, t))
        }) {
            return Err(invalid(
                r,
                format!(
                    "track {} starts {:.3} s before the video: it cannot be looped",
                    run.track_id,
                    (t.origin - run.base_decode_time) as f64 / t.timescale as f64
                ),
            ));
        }
        let end_of = |track: u32| {
            tracks
                .iter()
                .find(|t| t.defaults.track_id == track)
                .map_or(0, |t| t.end)
        };
        // From the last segment back: drop those wholly past the end, cut the one across it.
        let mut count = f.segments.len();
        let mut cut_end = None;
        loop {
            if f.segments.len() - count >= TAIL || count == 0 {
                return Err(invalid(
                    r,
                    format!("runs more than {TAIL} segments past the end of the video"),
                ));
            }
            let runs = if count == 1 {
                f.first.clone()
            } else {
                f.runs(r, files, count - 1)?
            };
            if runs.iter().all(|run| run.end() <= end_of(run.track_id)) {
                break;
            }
            let kept = runs.iter().any(|run| {
                run.durations
                    .first()
                    .is_some_and(|d| run.base_decode_time + u64::from(*d) <= end_of(run.track_id))
            });
            if kept {
                // Where the cut segment ends, on its first track: its last sample that ends
                // by the loop's end.
                let track_id = runs[0].track_id;
                cut_end = tracks
                    .iter()
                    .find(|t| t.defaults.track_id == track_id)
                    .map(|t| {
                        let mut end = 0;
                        for run in runs.iter().filter(|run| run.track_id == track_id) {
                            let mut at = run.base_decode_time;
                            for d in &run.durations {
                                if at + u64::from(*d) > t.end {
                                    break;
                                }
                                at += u64::from(*d);
                            }
                            end = end.max(at);
                        }
                        end.saturating_sub(t.origin) as f64 / t.timescale as f64
                    });
                break;
            }
            count -= 1;
        }
        let loop_duration = loop_ticks as f64 / loop_timescale as f64;
        let first_start = r.segments[0].start;
        let mut segments: Vec<LoopSegment> = r.segments[..count]
            .iter()
            .zip(&f.segments)
            .map(|(s, source)| {
                let start = (s.start - first_start).clamp(0.0, loop_duration);
                LoopSegment {
                    source: source.clone(),
                    start,
                    end: (start + s.duration).min(loop_duration),
                    size: s.size,
                }
            })
            .collect();
        if let (Some(end), Some(last)) = (cut_end, segments.last_mut()) {
            last.end = end.clamp(last.start, loop_duration);
        }
        // Ends never go backwards (a manifest's rounding must not reorder availability).
        for i in 1..segments.len() {
            segments[i].end = segments[i].end.max(segments[i - 1].end);
        }
        Ok(RenditionLoop {
            init: f.init,
            tracks,
            segments,
        })
    }

    /// The channel's renditions (ids, codecs, bit rates) with the segments of one loop.
    pub fn presentation(&self) -> &Presentation {
        &self.layout
    }

    /// The index of rendition `id`.
    pub fn rendition(&self, id: &str) -> Option<usize> {
        self.layout.renditions.iter().position(|r| r.id == id)
    }

    /// (loop, index in the loop) of live segment `number` (≥ 1) of rendition `r`.
    fn place(&self, r: usize, number: u64) -> (u64, usize) {
        let k = self.renditions[r].segments.len().max(1) as u64;
        let index = number.saturating_sub(1);
        (index / k, (index % k) as usize)
    }

    /// Seconds from the availability start at which live segment `number` of rendition `r`
    /// starts and ends.
    fn span(&self, r: usize, number: u64) -> (f64, f64) {
        let (lap, k) = self.place(r, number);
        let s = &self.renditions[r].segments[k];
        let at = lap as f64 * self.loop_duration;
        (at + s.start, at + s.end)
    }

    /// The newest segment of rendition `r` that has ended at `now` (Unix seconds), if any.
    pub fn latest(&self, r: usize, now: f64) -> Option<u64> {
        let t = now - self.availability_start;
        if t < 0.0 {
            return None;
        }
        let segments = &self.renditions[r].segments;
        let lap = (t / self.loop_duration + EPSILON).floor().max(0.0) as u64;
        let within = t - lap as f64 * self.loop_duration;
        let done = segments.partition_point(|s| s.end <= within + EPSILON) as u64;
        let n = lap * segments.len() as u64 + done;
        (n > 0).then_some(n)
    }

    /// When (Unix seconds) the newest segment of rendition `r`, or of any rendition, had
    /// ended at `now`: a manifest's bytes change only then. The availability start before
    /// any.
    pub fn changed_at(&self, r: Option<usize>, now: f64) -> f64 {
        let ends = |r: usize| self.latest(r, now).map(|n| self.span(r, n).1);
        let latest = match r {
            Some(r) => ends(r),
            None => (0..self.renditions.len()).filter_map(ends).reduce(f64::max),
        };
        self.availability_start + latest.unwrap_or(0.0)
    }

    /// When (Unix seconds) live segment `number` of rendition `r` becomes available.
    pub fn available_at(&self, r: usize, number: u64) -> f64 {
        self.availability_start + self.span(r, number).1
    }

    /// Whether segment `number` of rendition `r` may be served at `now`, keeping `dvr`
    /// seconds behind the newest.
    pub fn state(&self, r: usize, number: u64, now: f64, dvr: f64) -> SegmentState {
        if number == 0 {
            return SegmentState::Expired;
        }
        match self.latest(r, now) {
            Some(latest) if number <= latest => {
                let age = self.span(r, latest).1 - self.span(r, number).1;
                if age > dvr + EPSILON {
                    SegmentState::Expired
                } else {
                    SegmentState::Available
                }
            }
            _ => SegmentState::NotYet,
        }
    }

    /// The channel at `now`: every rendition with the segments that ended within the last
    /// `window` seconds before its newest (at least that one), numbered and timed on the
    /// live timeline.
    pub fn window(&self, now: f64, window: f64) -> Presentation {
        let renditions = self
            .layout
            .renditions
            .iter()
            .enumerate()
            .map(|(r, rendition)| {
                let segments = match self.latest(r, now) {
                    None => Vec::new(),
                    Some(latest) => {
                        let newest = self.span(r, latest).1;
                        let mut first = latest;
                        while first > 1 && self.span(r, first - 1).1 > newest - window + EPSILON {
                            first -= 1;
                        }
                        (first..=latest).map(|n| self.live_segment(r, n)).collect()
                    }
                };
                Rendition {
                    segments,
                    ..rendition.clone()
                }
            })
            .collect();
        Presentation {
            kind: PresentationKind::Live {
                availability_start: Some(self.availability_start),
                reload_interval: self.segment_duration,
            },
            renditions,
            delivery: Default::default(),
        }
    }

    fn live_segment(&self, r: usize, number: u64) -> Segment {
        let (start, end) = self.span(r, number);
        let (_, k) = self.place(r, number);
        Segment {
            number,
            start,
            duration: end - start,
            size: self.renditions[r].segments[k].size,
            uri: format!("{number}.m4s"),
            ..Segment::default()
        }
    }

    /// Where rendition `r`'s init segment is in the asset.
    pub fn init(&self, r: usize) -> &SourceRef {
        &self.renditions[r].init
    }

    /// Where the asset segment that live segment `number` of rendition `r` plays is.
    pub fn source(&self, r: usize, number: u64) -> &SourceRef {
        let (_, k) = self.place(r, number);
        &self.renditions[r].segments[k].source
    }

    /// The bytes of live segment `number` of rendition `r`, from `asset_bytes` (those of
    /// [`LiveLoop::source`]): sequence number `number`, decode times on the live timeline,
    /// cut at the loop's end when it runs past it; every sample kept unchanged.
    pub fn retime(&self, r: usize, number: u64, asset_bytes: &[u8]) -> Result<Vec<u8>> {
        let (lap, k) = self.place(r, number);
        let rendition = &self.renditions[r];
        let last = k + 1 == rendition.segments.len();
        let tracks: Vec<TrackRetime> = rendition
            .tracks
            .iter()
            .map(|t| {
                // Loops start on exact multiples of the loop's length in each timescale,
                // computed for this loop, never accumulated.
                let loop_start = scale(
                    lap.saturating_mul(self.loop_ticks),
                    t.timescale,
                    self.loop_timescale,
                );
                TrackRetime {
                    defaults: t.defaults,
                    shift: i64::try_from(i128::from(loop_start) - i128::from(t.origin))
                        .unwrap_or(i64::MAX),
                    cut_at: last.then_some(t.end),
                }
            })
            .collect();
        let how = Retime {
            sequence: u32::try_from(number % (1 << 32)).unwrap_or(u32::MAX),
            tracks: &tracks,
            file_offset: rendition.segments[k].source.range.map_or(0, |r| r.offset),
        };
        retime(asset_bytes, &how)
    }
}

#[cfg(test)]
mod tests;
