//! One segment of a session: its init segment when the rendition's is not in yet, the
//! download at the chosen rendition with the abandonment check riding along and every
//! byte checked as media ([`super::body`]), retries (one rendition lower after a
//! permanent error, bytes that are not media included), and the separate audio that
//! plays with it.

use media::validate::RenditionCheck;
use tokio::time::sleep;
use url::Url;

use super::abandon::{InFlight, abandon_to};
use super::body::{InitBody, SegmentBody};
use super::clock::PlayState;
use super::cmcd::{Cmcd, ObjectType};
use super::fetch::{self, FetchError, Outcome};
use super::manifest::{Track, TrackRendition, TrackSegment};
use super::play::{Session, tick};
use super::summary::SegmentLog;

impl Session<'_> {
    /// The request URL for `url`: with CMCD, when asked for, describing an object of type
    /// `ot` at `br_bps` lasting `d_s`, followed by `next` (a URL, and a range of it).
    fn request_url(
        &self,
        url: &Url,
        ot: ObjectType,
        br_bps: u64,
        d_s: Option<f64>,
        next: Option<&TrackSegment>,
    ) -> Url {
        if !self.config.cmcd {
            return url.clone();
        }
        Cmcd {
            br_kbps: Some(br_bps / 1000),
            bl_ms: Some(self.playback.level() * 1000.0),
            d_ms: d_s.map(|d| d * 1000.0),
            mtp_kbps: self.history.last().map(|d| d.transfer_bps() / 1000.0),
            nor: next.map(|n| &n.url),
            nrr: next.and_then(|n| n.range),
            ot,
            sid: &self.sid,
            su: self.playback.state() != PlayState::Playing,
        }
        .apply(url)
    }

    /// Fetches segment `k`, starting at rendition `chosen`, through abandonments and
    /// retries; the log says which rendition it came at.
    pub(super) async fn fetch_segment(
        &mut self,
        track: &Track,
        k: usize,
        row: &[&TrackSegment],
        next: Option<&[&TrackSegment]>,
        chosen: usize,
        checks: &mut [RenditionCheck],
    ) -> Result<SegmentLog, FetchError> {
        let mut quality = chosen;
        let (mut retries, mut abandoned) = (0, 0);
        self.tick();
        let buffer_before_s = self.playback.level();
        let stalled_before = self.playback.stalled_s();
        loop {
            let attempt = self.attempt(track, row, next, quality, checks).await;
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
                    let bitrate_bps = if rendition.measured {
                        // No bitrate declared: this segment's own.
                        let measured = &mut self.measured[quality];
                        (measured.0, measured.1) =
                            (measured.0 + f.bytes, measured.1 + segment.duration_s);
                        (f.bytes as f64 * 8.0 / segment.duration_s).round() as u64
                    } else {
                        rendition.bitrate_bps
                    };
                    return Ok(SegmentLog {
                        index: k,
                        number: segment.number,
                        rendition: rendition.id.clone(),
                        quality,
                        bitrate_bps,
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
                    self.fetcher.tally().abandoned();
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
        let mut check = self
            .audio_check
            .take()
            .unwrap_or_else(|| RenditionCheck::new(audio.container));
        let result = self.fetch_audio_with(audio, video, &mut check).await;
        self.audio_check = Some(check);
        result
    }

    /// [`Self::fetch_audio`] of `audio`, whose segments `check` checks.
    async fn fetch_audio_with(
        &mut self,
        audio: &TrackRendition,
        video: &TrackSegment,
        check: &mut RenditionCheck,
    ) -> Result<(), FetchError> {
        if let (Some(init), false) = (&audio.init, check.has_init()) {
            let first = audio.segments.first();
            let url = self.request_url(init, ObjectType::Init, audio.bitrate_bps, None, first);
            let mut body = InitBody::new(check);
            self.fetcher
                .get_retrying(&url, audio.init_range, &mut body)
                .await?;
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
                audio.segments.get(i + 1),
            );
            let mut body = SegmentBody::new(check, segment.number, segment.discontinuity);
            self.fetcher
                .get_retrying(&url, segment.range, &mut body)
                .await?;
            self.audio_until_s = Some(segment.start_s + segment.duration_s);
        }
        Ok(())
    }

    /// One attempt at segment `k` at `quality`: its init segment first when this
    /// rendition's has not been read yet.
    async fn attempt(
        &mut self,
        track: &Track,
        row: &[&TrackSegment],
        next: Option<&[&TrackSegment]>,
        quality: usize,
        checks: &mut [RenditionCheck],
    ) -> Result<Outcome, FetchError> {
        let rendition = &track.renditions[quality];
        let segment = row[quality];
        let check = &mut checks[quality];
        if let (Some(init), false) = (&rendition.init, check.has_init()) {
            let url = self.request_url(
                init,
                ObjectType::Init,
                rendition.bitrate_bps,
                None,
                Some(segment),
            );
            let mut body = InitBody::new(check);
            self.fetcher
                .get(&url, rendition.init_range, &mut body, &mut |_| None)
                .await?;
        }
        let url = self.request_url(
            &segment.url,
            ObjectType::Video,
            rendition.bitrate_bps,
            Some(segment.duration_s),
            next.map(|n| n[quality]),
        );
        let (playback, observer) = (&mut self.playback, self.observer);
        let (t0, bitrates) = (self.t0, &self.bitrates_bps);
        let duration_s = segment.duration_s;
        let mut abandon = |p: &fetch::Progress| {
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
        let mut body = SegmentBody::new(check, segment.number, segment.discontinuity);
        self.fetcher
            .get(&url, segment.range, &mut body, &mut abandon)
            .await
    }
}
