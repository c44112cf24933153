//! Real-time playback sessions over HTTP: a headless player that fetches a presentation's
//! init and media segments in order, keeps a playback clock, and lets an [`Abr`] from
//! [`crate::abr`] (the very implementations the simulator runs) pick each segment.
//!
//! A session is one async fn, [`run`], over a shared [`reqwest::Client`] (its connection
//! pool gives keep-alive), a [`LinkModel`] that paces its reads, an [`Observer`] for live
//! figures and a cancellation token, so one tokio runtime can run thousands of them.
//!
//! How it plays:
//!
//! - **VOD and live**: a VOD plays from its first segment to its end; a live presentation
//!   (HLS without `EXT-X-ENDLIST`, dynamic MPD) starts three segments behind the newest
//!   and reloads its manifest every target duration (`minimumUpdatePeriod`) for the next
//!   segment, until the deadline or the stream ends. Renditions are aligned by segment
//!   number; separate audio (the first audio rendition) is fetched by time alongside.
//! - **Clock** ([`clock::Playback`]): playback starts once `startup_s` of media is
//!   buffered, the playhead drains the buffer one second per second, an empty buffer before
//!   the end is a rebuffering event, and playback resumes at `resume_s`.
//! - **Buffer cap**: while playing, the next request waits until the buffer has room for
//!   the segment under `max_buffer_s`.
//! - **Decisions**: segment 0 at rendition 1 (as the simulator), then [`Abr::choose`] after
//!   each segment has fully arrived, fed as `abr`'s module docs say.
//! - **Abandonment** ([`abandon`]): a download that will stall playback is dropped for a
//!   lower rendition that would arrive sooner, as hls.js does.
//! - **Retries**: a failed request (status, connection, broken body, idle timeout) is
//!   retried with capped, jittered exponential backoff, one rendition lower when the error
//!   is permanent (a 4xx); after `retries` failures of one segment the session ends with
//!   the error in its report. Every wait is bounded by the idle timeout or the deadline.
//! - **Pathways** ([`pathway`], [`steering`]): a presentation offered over several
//!   pathways is fetched over the one its steering server puts first (asked before the
//!   first segment, then every TTL, beside the downloads); a request that fails on a
//!   pathway moves at once to the next, without using a retry, and the failed pathway
//!   goes last for `pathway_penalty`. A silent host is found out by the connect
//!   timeout, and on open connections by TCP keepalive and `TCP_USER_TIMEOUT`
//!   ([`http_client_with`]).

pub mod abandon;
pub mod cache_status;
pub mod clock;
pub mod cmcd;
pub mod fetch;
pub mod manifest;
pub mod pathway;
pub mod steering;
pub mod summary;

use std::time::Duration;

use reqwest::Client;
use serde::{Deserialize, Serialize};
use tokio::time::{Instant, sleep, sleep_until};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::abr::{Abr, AbrInput, Download, UnknownAbr, by_name};
use crate::link::LinkModel;
use abandon::{InFlight, abandon_to};
use clock::{PlayState, Playback};
use cmcd::{Cmcd, ObjectType};
use fetch::{ErrorKind, FetchError, Fetcher, Outcome};
use manifest::{Track, TrackSegment};
use pathway::Routes;
use steering::SteeringClient;
use summary::{PlaybackFigures, SegmentLog, Summary, summarise};

/// Connect timeout of [`http_client`], and the default of `player`'s `--connect-timeout`:
/// a loopback or LAN peer answers a SYN in milliseconds, a far CDN in a few hundred.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How a session plays.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionConfig {
    /// HLS multivariant / media playlist or DASH MPD.
    pub url: Url,
    /// ABR algorithm name ([`crate::abr::NAMES`]).
    pub abr: String,
    /// Stop after this many wall seconds (default: when the presentation has played;
    /// a live one plays until stopped).
    pub duration_s: Option<f64>,
    /// Fetch no further ahead than this, s.
    pub max_buffer_s: f64,
    /// Buffer needed to start playing, and to resume after a stall, s.
    pub startup_s: f64,
    pub resume_s: f64,
    /// Send CMCD (CTA-5004) as a query parameter.
    pub cmcd: bool,
    /// Retries allowed per request (a media segment's retries may go to lower
    /// renditions) before the session gives up.
    pub retries: u32,
    /// A request that receives nothing for this long fails.
    pub idle_timeout: Duration,
    /// A connection not made within this fails (the HTTP client's setting: build the
    /// client with [`http_client_with`]).
    pub connect_timeout: Duration,
    /// How long a pathway that failed a request stays at the end of the order.
    pub pathway_penalty: Duration,
    pub link: LinkModel,
    /// Live: segments behind the newest one to start at, and to keep (the hold-back).
    pub live_delay_segments: u64,
}

impl SessionConfig {
    /// A configuration with the defaults of `player play` (hls.js-like: 30 s buffer,
    /// start on the first segment's worth).
    pub fn new(url: Url) -> Self {
        Self {
            url,
            abr: crate::abr::NAMES[0].to_owned(),
            duration_s: None,
            max_buffer_s: 30.0,
            startup_s: 2.0,
            resume_s: 2.0,
            cmcd: false,
            retries: 3,
            idle_timeout: Duration::from_secs(10),
            connect_timeout: CONNECT_TIMEOUT,
            pathway_penalty: Duration::from_secs(30),
            link: LinkModel::default(),
            live_delay_segments: manifest::LIVE_DELAY_SEGMENTS,
        }
    }
}

/// Live notifications from a session (all no-ops by default): the load tester's
/// counters, `play`'s log file.
pub trait Observer: Send + Sync + std::fmt::Debug {
    /// A request is being sent.
    fn request(&self) {}
    /// A request failed.
    fn error(&self, _kind: ErrorKind) {}
    /// A media segment arrived.
    fn segment(&self, _log: &SegmentLog) {}
    /// Playback changed state.
    fn state(&self, _from: PlayState, _to: PlayState) {}
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl Observer for NoObserver {}

/// A session that could not start.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Abr(#[from] UnknownAbr),
    #[error("fetching the manifest: {0}")]
    Fetch(#[from] FetchError),
    #[error("manifest {url}: {source}")]
    Manifest {
        url: String,
        #[source]
        source: media::MediaError,
    },
    #[error("{url} is neither an HLS playlist nor a DASH MPD (it starts {start:?})")]
    NotAManifest { url: String, start: String },
    #[error("{0} has no video rendition with segments")]
    NoVideo(String),
}

/// Why a session stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum End {
    /// The presentation played to its end.
    Complete,
    /// The `duration_s` deadline came.
    Deadline,
    /// Cancelled (Ctrl-C).
    Stopped,
    /// A segment failed beyond its retries.
    Failed,
}

/// Everything a session measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionReport {
    pub url: String,
    pub abr: String,
    pub end: End,
    /// The error that ended a failed session.
    pub error: Option<String>,
    /// Declared bitrates of the renditions, bit/s.
    pub bitrates_bps: Vec<u64>,
    pub summary: Summary,
    pub segments: Vec<SegmentLog>,
    /// Rebuffering events: (start, end) wall seconds since the session began.
    pub stalls: Vec<(f64, f64)>,
}

/// [`http_client_with`] the default [`CONNECT_TIMEOUT`].
pub fn http_client(per_host: usize) -> reqwest::Result<Client> {
    http_client_with(per_host, CONNECT_TIMEOUT)
}

/// An HTTP client for sessions: keep-alive pool of up to `per_host` idle connections
/// per host (a browser keeps 6; the load tester shares one client among its sessions).
///
/// A peer that stops answering is found out in about two `connect_timeout`s, not the
/// OS's minutes, so that the session can fail over: connecting is bounded by it; an open
/// connection that goes quiet that long is probed (TCP keepalive), and one whose sent data
/// (a request, a probe) stays unacknowledged for twice that is closed (`TCP_USER_TIMEOUT`,
/// RFC 5482, on Linux). A slow server is not affected: its kernel still acknowledges.
pub fn http_client_with(per_host: usize, connect_timeout: Duration) -> reqwest::Result<Client> {
    let builder = Client::builder()
        .pool_max_idle_per_host(per_host)
        .connect_timeout(connect_timeout)
        .tcp_keepalive(connect_timeout)
        .tcp_keepalive_interval(connect_timeout)
        .tcp_keepalive_retries(2)
        .tcp_nodelay(true)
        .user_agent(concat!("rivulet-player/", env!("CARGO_PKG_VERSION")));
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    let builder = builder.tcp_user_timeout(connect_timeout * 2);
    builder.build()
}

/// Plays `config.url` until the end, the deadline, a fatal error or `stop`.
pub async fn run(
    client: &Client,
    config: &SessionConfig,
    observer: &dyn Observer,
    stop: &CancellationToken,
) -> Result<SessionReport, SessionError> {
    let mut abr = by_name(&config.abr)?;
    let t0 = Instant::now();
    let routes = Routes::new(config.pathway_penalty.as_secs_f64());
    let mut session = Session {
        config,
        fetcher: Fetcher::new(
            client,
            config.link.shaper(),
            t0,
            config.idle_timeout,
            config.retries,
            observer,
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
        audio_init_fetched: false,
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
fn tick(playback: &mut Playback, observer: &dyn Observer, t0: Instant) {
    let before = playback.state();
    playback.advance(t0.elapsed().as_secs_f64());
    if playback.state() != before {
        observer.state(before, playback.state());
    }
}

enum Fatal {
    /// The manifest could not be loaded at the start.
    Start(SessionError),
    /// A live manifest could not be reloaded.
    Reload(SessionError),
    Segment(FetchError),
}

#[derive(Debug)]
struct Session<'a> {
    config: &'a SessionConfig,
    fetcher: Fetcher<'a>,
    observer: &'a dyn Observer,
    t0: Instant,
    playback: Playback,
    logs: Vec<SegmentLog>,
    history: Vec<Download>,
    bitrates_bps: Vec<u64>,
    sid: String,
    /// Media time up to which audio has been fetched, and whether its init segment has.
    audio_until_s: Option<f64>,
    audio_init_fetched: bool,
}

impl Session<'_> {
    fn now_s(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    /// Brings the clock to now and tells the observer about a state change.
    fn tick(&mut self) {
        tick(&mut self.playback, self.observer, self.t0);
    }

    /// The request URL for `url`: with CMCD, when asked for, describing an object of type
    /// `ot` at `br_bps` lasting `d_s`, followed by `nor`.
    fn request_url(
        &self,
        url: &Url,
        ot: ObjectType,
        br_bps: u64,
        d_s: Option<f64>,
        nor: Option<&Url>,
    ) -> Url {
        if !self.config.cmcd {
            return url.clone();
        }
        Cmcd {
            br_kbps: Some(br_bps / 1000),
            bl_ms: Some(self.playback.level() * 1000.0),
            d_ms: d_s.map(|d| d * 1000.0),
            mtp_kbps: self.history.last().map(|d| d.transfer_bps() / 1000.0),
            nor,
            ot,
            sid: &self.sid,
            su: self.playback.state() != PlayState::Playing,
        }
        .apply(url)
    }

    /// Loads the manifest at `config.url` (again, for live), each request with CMCD when
    /// asked for.
    async fn load(&mut self) -> Result<Track, SessionError> {
        let (config, sid) = (self.config, self.sid.clone());
        let with_cmcd = |url: &Url| {
            if !config.cmcd {
                return url.clone();
            }
            Cmcd {
                br_kbps: None,
                bl_ms: None,
                d_ms: None,
                mtp_kbps: None,
                nor: None,
                ot: ObjectType::Manifest,
                sid: &sid,
                su: true,
            }
            .apply(url)
        };
        manifest::load(&mut self.fetcher, &config.url, &with_cmcd).await
    }

    async fn play(&mut self, abr: &mut dyn Abr) -> Result<End, Fatal> {
        let mut track = self.load().await.map_err(Fatal::Start)?;
        let Some(start) = track.steering.take() else {
            return self.play_track(track, abr).await;
        };
        let (client, routes) = (self.fetcher.client(), self.fetcher.routes());
        let mut steering = SteeringClient::new(client, routes, start, self.t0);
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
        let mut inits = vec![false; track.renditions.len()];
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
                    inits = vec![false; track.renditions.len()];
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
                    segments_remaining: track
                        .last_number()
                        .map(|last| usize::try_from(last + 1 - number).unwrap_or(usize::MAX)),
                };
                stalled_at_decision = stalled;
                quality = abr.choose(&input).min(top);
            }
            let next = track.row(number + 1);
            let log = self
                .fetch_segment(&track, k, &row, next.as_deref(), quality, &mut inits)
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
            number += 1;
            k += 1;
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

    /// Fetches segment `k`, starting at rendition `chosen`, through abandonments and
    /// retries; the log says which rendition it came at.
    async fn fetch_segment(
        &mut self,
        track: &Track,
        k: usize,
        row: &[&TrackSegment],
        next: Option<&[&TrackSegment]>,
        chosen: usize,
        inits: &mut [bool],
    ) -> Result<SegmentLog, FetchError> {
        let mut quality = chosen;
        let (mut retries, mut abandoned) = (0, 0);
        self.tick();
        let buffer_before_s = self.playback.level();
        let stalled_before = self.playback.stalled_s();
        loop {
            let attempt = self.attempt(track, row, next, quality, inits).await;
            match attempt {
                Ok(Outcome::Done(f)) => {
                    let rendition = &track.renditions[quality];
                    let segment = row[quality];
                    self.fetch_audio(track, segment).await?;
                    self.tick();
                    let before = self.playback.state();
                    self.playback.add_media(self.now_s(), segment.duration_s);
                    if self.playback.state() != before {
                        self.observer.state(before, self.playback.state());
                    }
                    let transfer_s = f.total_s - f.ttfb_s;
                    let live_latency_s = self.live_latency(track, segment);
                    return Ok(SegmentLog {
                        index: k,
                        number: segment.number,
                        rendition: rendition.id.clone(),
                        quality,
                        bitrate_bps: rendition.bitrate_bps,
                        duration_s: segment.duration_s,
                        bytes: f.bytes,
                        requested_at_s: f.requested_at_s,
                        download_ms: f.total_s * 1000.0,
                        ttfb_ms: f.ttfb_s * 1000.0,
                        throughput_bps: if transfer_s > 0.0 {
                            f.bytes as f64 * 8.0 / transfer_s
                        } else {
                            f64::INFINITY
                        },
                        buffer_before_s,
                        buffer_after_s: self.playback.level(),
                        stall_s: self.playback.stalled_s() - stalled_before,
                        cache_status: f.cache_status,
                        retries,
                        abandoned,
                        live_latency_s,
                        pathway: f.pathway,
                        failovers: f.failovers,
                    });
                }
                Ok(Outcome::Abandoned { to }) => {
                    tracing::debug!(segment = k, from = quality, to, "download abandoned");
                    abandoned += 1;
                    self.fetcher.counters.abandoned += 1;
                    quality = to;
                }
                Err(e) => {
                    self.fetcher.failed(&e);
                    retries += 1;
                    if retries > self.config.retries {
                        return Err(e);
                    }
                    if e.is_permanent() && quality > 0 {
                        quality -= 1;
                    }
                    tracing::warn!(segment = k, retry = retries, error = %e, "retrying");
                    sleep(fetch::backoff(retries)).await;
                }
            }
        }
    }

    /// How far the playhead is behind live, right after `segment` was buffered: the
    /// timeline's "now" minus the media time at the playhead (the end of what is buffered
    /// minus the buffer level). `None` for VOD, an undated live timeline, or before
    /// playback starts.
    fn live_latency(&self, track: &Track, segment: &TrackSegment) -> Option<f64> {
        let epoch = track.live_epoch_s?;
        self.playback.started_at()?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs_f64();
        let playhead = segment.start_s + segment.duration_s - self.playback.level();
        Some(now - (epoch + playhead))
    }

    /// Fetches the audio that plays with `video` (what it has not fetched yet of the
    /// audio overlapping it): the video plays only with its audio, so a segment counts
    /// as buffered once both are in.
    async fn fetch_audio(&mut self, track: &Track, video: &TrackSegment) -> Result<(), FetchError> {
        let Some(audio) = &track.audio else {
            return Ok(());
        };
        if !self.audio_init_fetched {
            if let Some(init) = &audio.init {
                let first = audio.segments.first().map(|s| &s.url);
                let url = self.request_url(init, ObjectType::Init, audio.bitrate_bps, None, first);
                self.fetcher.get_retrying(&url, false).await?;
            }
            self.audio_init_fetched = true;
        }
        // A millisecond of slack: audio segments end a few samples off the video's.
        let from = self.audio_until_s.unwrap_or(video.start_s) + 1e-3;
        let until = video.start_s + video.duration_s - 1e-3;
        let wanted: Vec<(usize, &TrackSegment)> = audio
            .segments
            .iter()
            .enumerate()
            .filter(|(_, s)| s.start_s + s.duration_s > from && s.start_s < until)
            .collect();
        for (i, segment) in wanted {
            let url = self.request_url(
                &segment.url,
                ObjectType::Audio,
                audio.bitrate_bps,
                Some(segment.duration_s),
                audio.segments.get(i + 1).map(|s| &s.url),
            );
            self.fetcher.get_retrying(&url, false).await?;
            self.audio_until_s = Some(segment.start_s + segment.duration_s);
        }
        Ok(())
    }

    /// One attempt at segment `k` at `quality`: its init segment first when this
    /// rendition's has not been fetched yet.
    async fn attempt(
        &mut self,
        track: &Track,
        row: &[&TrackSegment],
        next: Option<&[&TrackSegment]>,
        quality: usize,
        inits: &mut [bool],
    ) -> Result<Outcome, FetchError> {
        let rendition = &track.renditions[quality];
        let segment = row[quality];
        if let (Some(init), false) = (&rendition.init, inits[quality]) {
            let url = self.request_url(
                init,
                ObjectType::Init,
                rendition.bitrate_bps,
                None,
                Some(&segment.url),
            );
            self.fetcher.get(&url, false, &mut |_| None).await?;
            inits[quality] = true;
        }
        let url = self.request_url(
            &segment.url,
            ObjectType::Video,
            rendition.bitrate_bps,
            Some(segment.duration_s),
            next.map(|n| &n[quality].url),
        );
        let (playback, observer) = (&mut self.playback, self.observer);
        let (t0, bitrates) = (self.t0, &self.bitrates_bps);
        let duration_s = segment.duration_s;
        let mut check = |p: &fetch::Progress| {
            // The clock runs during downloads too: a stall shows while it lasts.
            tick(playback, observer, t0);
            abandon_to(&InFlight {
                bitrates_bps: bitrates,
                quality,
                segment_duration_s: duration_s,
                expected_bytes: p
                    .expected
                    .unwrap_or((bitrates[quality] as f64 * duration_s / 8.0) as u64),
                loaded_bytes: p.loaded,
                elapsed_s: p.elapsed_s,
                transfer_s: p.transfer_s,
                buffer_s: playback.level(),
            })
        };
        self.fetcher.get(&url, false, &mut check).await
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
        let mut counters = self.fetcher.counters.clone();
        (counters.steering_fetches, counters.steering_errors) =
            self.fetcher.routes().steering_counts();
        let summary = summarise(&self.logs, &figures, &counters, self.now_s());
        SessionReport {
            url: self.config.url.to_string(),
            abr: self.config.abr.clone(),
            end,
            error,
            bitrates_bps: self.bitrates_bps.clone(),
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
