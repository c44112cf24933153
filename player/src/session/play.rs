//! A session's life: [`run`] loads the manifest, asks the steering server, then plays
//! the track segment by segment ([`Session::play_track`]): the buffer cap, the ABR's
//! decision after each segment, live reloads, and the report at the end.

use std::time::Duration;

use reqwest::Client;
use tokio::time::{Instant, sleep, sleep_until};
use tokio_util::sync::CancellationToken;
use url::Url;

use media::validate::RenditionCheck;

use super::clock::Playback;
use super::cmcd::{self, Cmcd};
use super::config::SessionConfig;
use super::fetch::{FetchError, Fetcher};
use super::manifest::{self, Track};
use super::observer::Observer;
use super::outcome::{End, SessionError, SessionReport};
use super::pathway::Routes;
use super::steering::SteeringClient;
use super::summary::{PlaybackFigures, SegmentLog, summarise};
use super::tally::Tally;
use crate::abr::{Abr, AbrInput, Download};

/// Plays `config.url` until the end, the deadline, a fatal error or `stop`.
pub async fn run(
    client: &Client,
    config: &SessionConfig,
    observer: &dyn Observer,
    stop: &CancellationToken,
) -> Result<SessionReport, SessionError> {
    let mut abr = config.abr.build(&config.abr_params);
    let t0 = Instant::now();
    let routes = Routes::new(config.pathway_penalty.as_secs_f64());
    let tally = Tally::new(observer);
    let mut session = Session {
        config,
        fetcher: Fetcher::new(
            client,
            config.link.shaper(),
            t0,
            config.idle_timeout,
            config.retries,
            &tally,
            &routes,
        ),
        observer,
        t0,
        playback: Playback::new(config.startup_s, config.resume_s, f64::INFINITY),
        logs: Vec::new(),
        history: Vec::new(),
        bitrates_bps: Vec::new(),
        sid: cmcd::session_id(),
        audio_until_s: None,
        audio_check: None,
        measured: Vec::new(),
    };
    let deadline = config
        .duration_s
        .map(|d| t0 + Duration::from_secs_f64(d.max(0.0)));
    let ended = tokio::select! {
        r = session.play(&mut *abr) => r,
        () = stop.cancelled() => Ok(End::Stopped),
        () = async {
            match deadline {
                Some(d) => sleep_until(d).await,
                None => std::future::pending().await,
            }
        } => Ok(End::Deadline),
    };
    let (end, error) = match ended {
        Ok(end) => (end, None),
        Err(Fatal::Start(e)) => return Err(e),
        Err(Fatal::Segment(e)) => (End::Failed, Some(e.to_string())),
        Err(Fatal::Reload(e)) => (End::Failed, Some(e.to_string())),
    };
    Ok(session.report(end, error))
}

/// Brings `playback` to now (`t0` is the session's start) and tells `observer` about a
/// state change.
pub(super) fn tick(playback: &mut Playback, observer: &dyn Observer, t0: Instant) {
    let before = playback.state();
    playback.advance(t0.elapsed().as_secs_f64());
    if playback.state() != before {
        observer.state(before, playback.state());
    }
}

pub(super) enum Fatal {
    /// The manifest could not be loaded at the start.
    Start(SessionError),
    /// A live manifest could not be reloaded.
    Reload(SessionError),
    Segment(FetchError),
}

/// A session while it plays: the playback loop here, the fetching of one segment in
/// [`super::segment`].
#[derive(Debug)]
pub(super) struct Session<'a> {
    pub(super) config: &'a SessionConfig,
    pub(super) fetcher: Fetcher<'a>,
    pub(super) observer: &'a dyn Observer,
    pub(super) t0: Instant,
    pub(super) playback: Playback,
    pub(super) logs: Vec<SegmentLog>,
    pub(super) history: Vec<Download>,
    pub(super) bitrates_bps: Vec<u64>,
    pub(super) sid: String,
    /// Media time up to which audio has been fetched, and the checks of its segments.
    pub(super) audio_until_s: Option<f64>,
    pub(super) audio_check: Option<RenditionCheck>,
    /// Bytes and seconds of media fetched per rendition, for those whose bitrate the
    /// manifest does not declare.
    pub(super) measured: Vec<(u64, f64)>,
}

impl Session<'_> {
    pub(super) fn now_s(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    /// Brings the clock to now and tells the observer about a state change.
    pub(super) fn tick(&mut self) {
        tick(&mut self.playback, self.observer, self.t0);
    }

    /// Loads the manifest at `config.url` (again, for live), each request with CMCD when
    /// asked for.
    async fn load(&mut self) -> Result<Track, SessionError> {
        let (config, sid) = (self.config, self.sid.clone());
        let with_cmcd = |url: &Url| {
            if config.cmcd {
                Cmcd::manifest(&sid).apply(url)
            } else {
                url.clone()
            }
        };
        manifest::load(&mut self.fetcher, &config.url, &with_cmcd).await
    }

    async fn play(&mut self, abr: &mut dyn Abr) -> Result<End, Fatal> {
        let mut track = self.load().await.map_err(Fatal::Start)?;
        let Some(start) = track.steering.take() else {
            return self.play_track(track, abr).await;
        };
        let fetcher = &self.fetcher;
        let mut steering = SteeringClient::new(
            fetcher.client(),
            fetcher.routes(),
            fetcher.tally(),
            start,
            self.t0,
        );
        // Before the first segment (DASH `@queryBeforeStart`, and HLS alike): the first
        // request already goes where the server wants. Start-up waits for it.
        steering.fetch().await;
        tokio::select! {
            r = self.play_track(track, abr) => r,
            never = steering.keep_fresh() => match never {},
        }
    }

    /// Plays `track` from its start segment to its end (reloading it when live).
    async fn play_track(&mut self, mut track: Track, abr: &mut dyn Abr) -> Result<End, Fatal> {
        let Some(mut number) = track.start_number(self.config.live_delay_segments) else {
            return Err(Fatal::Start(SessionError::NoVideo(
                self.config.url.to_string(),
            )));
        };
        self.playback
            .set_media_end(track.media_duration_from(number));
        self.bitrates_bps = track.bitrates_bps();
        let mut top = self.bitrates_bps.len().saturating_sub(1);
        let mut checks = track.checks();
        self.measured = vec![(0, 0.0); track.renditions.len()];
        let mut quality = 1.min(top);
        let mut stalled_at_decision = 0.0;
        // Segments fetched so far: the index of the next one in the session's log.
        let mut k = 0;
        loop {
            let Some(row) = track.row(number) else {
                let Some(reload_s) = track.live_reload_s else {
                    break;
                };
                // Live: segment `number` is not out yet. Reload until it is; a session
                // that fell out of the window jumps back to the live delay.
                sleep(Duration::from_secs_f64(reload_s)).await;
                track = self.load().await.map_err(Fatal::Reload)?;
                if track.first_number().is_some_and(|first| number < first) {
                    tracing::warn!(number, "fell behind the live window: skipping ahead");
                    number = track
                        .start_number(self.config.live_delay_segments)
                        .unwrap_or(number);
                }
                if track.bitrates_bps() != self.bitrates_bps {
                    tracing::warn!("the ladder changed on reload: starting over on the new one");
                    self.bitrates_bps = track.bitrates_bps();
                    top = self.bitrates_bps.len().saturating_sub(1);
                    quality = quality.min(top);
                    checks = track.checks();
                    self.measured = vec![(0, 0.0); track.renditions.len()];
                    // Past downloads name renditions of the old ladder.
                    self.history.clear();
                }
                continue;
            };
            self.wait_for_room(row[0].duration_s).await;
            if k > 0 {
                self.tick();
                let stalled = self.playback.stalled_s();
                let input = AbrInput {
                    bitrates_bps: &self.bitrates_bps,
                    segment_duration_s: row[0].duration_s,
                    buffer_s: self.playback.level(),
                    stall_s: stalled - stalled_at_decision,
                    // Live, the buffer cannot grow past the live delay: the segments
                    // are not out yet.
                    buffer_max_s: match track.live_reload_s {
                        Some(_) => self
                            .config
                            .max_buffer_s
                            .min(self.config.live_delay_segments as f64 * row[0].duration_s),
                        None => self.config.max_buffer_s,
                    },
                    history: &self.history,
                    last_quality: Some(quality),
                    upcoming_sizes: &[],
                    segments_remaining: track.last_number().map(|last| {
                        usize::try_from(last.saturating_add(1).saturating_sub(number))
                            .unwrap_or(usize::MAX)
                    }),
                };
                stalled_at_decision = stalled;
                quality = abr.choose(&input).min(top);
            }
            let next = number.checked_add(1).and_then(|n| track.row(n));
            let log = self
                .fetch_segment(&track, k, &row, next.as_deref(), quality, &mut checks)
                .await
                .map_err(Fatal::Segment)?;
            quality = log.quality;
            let download = Download {
                quality,
                bytes: log.bytes,
                duration_ms: log.download_ms,
                ttfb_ms: Some(log.ttfb_ms),
            };
            // The steering server hears the throughput CMCD reports as `mtp`.
            let bps = download.transfer_bps();
            if bps.is_finite() {
                self.fetcher.routes().set_throughput(bps as u64);
            }
            self.history.push(download);
            self.observer.segment(&log);
            self.logs.push(log);
            k += 1;
            // Numbers are at most 2^53 (`media::limits`); a track built otherwise ends here.
            let Some(following) = number.checked_add(1) else {
                break;
            };
            number = following;
        }
        // Everything is buffered (a live stream that ended stops where it stopped): play
        // it out.
        self.playback
            .set_media_end(self.playback.position() + self.playback.level());
        while let Some(left) = self.playback.time_until_level(0.0) {
            sleep(Duration::from_secs_f64(left) + Duration::from_millis(1)).await;
            self.tick();
        }
        Ok(End::Complete)
    }

    /// Waits, while playing, until a segment of `duration_s` fits under the buffer cap.
    /// During start-up and stalls the playhead does not move, so there is nothing to
    /// wait for.
    async fn wait_for_room(&mut self, duration_s: f64) {
        let target = (self.config.max_buffer_s - duration_s).max(0.0);
        loop {
            self.tick();
            match self.playback.time_until_level(target) {
                Some(wait) if wait > 0.0 => sleep(Duration::from_secs_f64(wait)).await,
                _ => return,
            }
        }
    }

    fn report(&mut self, end: End, error: Option<String>) -> SessionReport {
        self.tick();
        let figures = PlaybackFigures {
            started_at_s: self.playback.started_at(),
            played_s: self.playback.position(),
            stalls: self.playback.stalls(),
            stalled_s: self.playback.stalled_s(),
            longest_stall_s: self.playback.longest_stall_s(),
        };
        let counters = self.fetcher.tally().counters();
        let summary = summarise(&self.logs, &figures, &counters, self.now_s());
        SessionReport {
            url: self.config.url.to_string(),
            abr: self.config.abr,
            end,
            error,
            bitrates_bps: self
                .bitrates_bps
                .iter()
                .zip(&self.measured)
                .map(|(&declared, &(bytes, seconds))| {
                    // Measured where the manifest declares none.
                    if declared == 0 && seconds > 0.0 {
                        (bytes as f64 * 8.0 / seconds).round() as u64
                    } else {
                        declared
                    }
                })
                .collect(),
            summary,
            segments: std::mem::take(&mut self.logs),
            stalls: self
                .playback
                .stalls()
                .iter()
                .map(|s| (s.start_s, s.end_s.unwrap_or_else(|| self.now_s())))
                .collect(),
        }
    }
}
