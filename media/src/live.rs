//! Live channels: a packaged asset looped on the wall clock from a fixed availability start
//! time. Everything here is a pure function of (asset, availability start, now), so every
//! origin behind every edge agrees on what segment N is, byte for byte.
//!
//! Live segment numbers start at 1 at the availability start; segment N covers live time
//! `[(N−1)·d, N·d)` and becomes available once that interval has passed. It plays asset
//! segment `(N−1) mod S + 1` of loop `(N−1) div S`, re-timed (`tfdt`, `mfhd`) for its place
//! on the live timeline, so media time never goes backwards across a loop.

use crate::cmaf::retime_segment;
use crate::dash::TIMESCALE;
use crate::{MediaError, MediaType, Presentation, PresentationKind, Rendition, Result, Segment};

/// Where a live segment number stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentState {
    /// Still being "produced": answer 404, cacheable only briefly.
    NotYet,
    Available,
    /// Older than the DVR depth.
    Expired,
}

/// The wall-clock schedule of a looped asset.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveClock {
    /// Seconds since the Unix epoch at which live segment 1 began.
    pub availability_start: f64,
    /// Seconds per segment (the asset's video segment duration).
    pub segment_duration: f64,
    /// Segments per loop of the asset.
    pub asset_segments: u64,
}

/// Media timescale of one of our renditions: 90 kHz for video, the sample rate for audio.
fn timescale(r: &Rendition) -> u64 {
    match (r.media_type, r.sample_rate) {
        (MediaType::Audio, Some(rate)) => u64::from(rate),
        _ => TIMESCALE,
    }
}

impl LiveClock {
    /// The schedule of `asset`, whose video segments must all have one duration.
    pub fn new(asset: &Presentation, availability_start: f64) -> Result<Self> {
        let video = asset
            .video()
            .next()
            .ok_or_else(|| MediaError::Invalid("a live channel needs a video rendition".into()))?;
        let d = video.segments.first().map(|s| s.duration).unwrap_or(0.0);
        if d <= 0.0 || video.segments.iter().any(|s| (s.duration - d).abs() > 1e-6) {
            return Err(MediaError::Invalid(
                "a live channel needs equal video segments".into(),
            ));
        }
        if asset
            .renditions
            .iter()
            .any(|r| r.segments.len() != video.segments.len())
        {
            return Err(MediaError::Invalid(
                "renditions differ in segment count".into(),
            ));
        }
        Ok(Self {
            availability_start,
            segment_duration: d,
            asset_segments: video.segments.len() as u64,
        })
    }

    /// Seconds of one loop of the asset.
    pub fn loop_duration(&self) -> f64 {
        self.asset_segments as f64 * self.segment_duration
    }

    /// The newest complete segment at `now`, if any has completed.
    pub fn latest(&self, now: f64) -> Option<u64> {
        let complete = ((now - self.availability_start) / self.segment_duration + 1e-9).floor();
        (complete >= 1.0).then_some(complete as u64)
    }

    /// Whether segment `number` may be served at `now`, keeping `dvr` seconds behind live.
    pub fn state(&self, number: u64, now: f64, dvr: f64) -> SegmentState {
        match self.latest(now) {
            Some(latest) if number >= 1 && number <= latest => {
                let age = (latest - number) as f64 * self.segment_duration;
                if age > dvr {
                    SegmentState::Expired
                } else {
                    SegmentState::Available
                }
            }
            _ if number == 0 => SegmentState::Expired,
            _ => SegmentState::NotYet,
        }
    }

    /// `(loop, asset segment number)` that live segment `number` (≥ 1) plays.
    pub fn source(&self, number: u64) -> (u64, u64) {
        let index = number.saturating_sub(1);
        (index / self.asset_segments, index % self.asset_segments + 1)
    }

    /// The loop and the asset segment (of `rendition`) that live segment `number` plays.
    fn source_segment<'a>(
        &self,
        rendition: &'a Rendition,
        number: u64,
    ) -> Result<(u64, &'a Segment)> {
        let (lap, asset_number) = self.source(number);
        let seg = rendition
            .segments
            .get((asset_number - 1) as usize)
            .ok_or_else(|| {
                MediaError::Invalid(format!("{} has no segment {asset_number}", rendition.id))
            })?;
        Ok((lap, seg))
    }

    /// Live segment `number` of `rendition` as it appears on the live timeline.
    fn live_segment(&self, rendition: &Rendition, number: u64) -> Result<Segment> {
        let (lap, seg) = self.source_segment(rendition, number)?;
        Ok(Segment {
            number,
            start: lap as f64 * self.loop_duration() + seg.start,
            duration: seg.duration,
            size: seg.size,
            uri: format!("{number}.m4s"),
            ..Default::default()
        })
    }

    /// The asset as a live presentation at `now`: every rendition with the segments of the
    /// last `window` seconds (at least one segment), numbered and timed on the live timeline.
    pub fn window(&self, asset: &Presentation, now: f64, window: f64) -> Result<Presentation> {
        let latest = self.latest(now).unwrap_or(0);
        let count = ((window / self.segment_duration).ceil() as u64).max(1);
        let first = latest.saturating_sub(count - 1).max(1);
        let renditions = asset
            .renditions
            .iter()
            .map(|r| {
                let segments = (first..=latest)
                    .map(|n| self.live_segment(r, n))
                    .collect::<Result<Vec<_>>>()?;
                Ok(Rendition {
                    segments,
                    ..r.clone()
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Presentation {
            kind: PresentationKind::Live {
                availability_start: Some(self.availability_start),
                reload_interval: self.segment_duration,
            },
            renditions,
            delivery: Default::default(),
        })
    }

    /// The bytes of live segment `number` of `rendition`, from `asset_bytes` (the bytes of
    /// the asset segment that [`LiveClock::source`] names): sequence number `number` and a
    /// `tfdt` of the segment's place on the live timeline, every sample unchanged.
    pub fn retime(
        &self,
        rendition: &Rendition,
        number: u64,
        asset_bytes: &[u8],
    ) -> Result<Vec<u8>> {
        let (lap, seg) = self.source_segment(rendition, number)?;
        let ts = timescale(rendition);
        // Loops start on exact multiples of the loop duration (whole seconds × timescale for
        // our assets), never on accumulated rounding.
        let loop_ticks = (self.loop_duration() * ts as f64).round() as u64;
        let base = lap * loop_ticks + (seg.start * ts as f64).round() as u64;
        let sequence = u32::try_from(number % (1 << 32)).unwrap_or(u32::MAX);
        retime_segment(asset_bytes, sequence, base)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::cmaf::{Sample, inspect_segment, media_segment};
    use crate::model::tests::sample_presentation;
    use crate::{dash, hls};

    fn clock() -> LiveClock {
        LiveClock::new(&sample_presentation(), 1_000.0).unwrap()
    }

    #[test]
    fn schedule() {
        let c = clock();
        assert_eq!((c.segment_duration, c.asset_segments), (2.0, 3));
        let cases = [
            (999.0, None),
            (1_001.9, None),
            (1_002.0, Some(1)),
            (1_007.5, Some(3)),
            (1_100.0, Some(50)),
        ];
        for (now, latest) in cases {
            assert_eq!(c.latest(now), latest, "now {now}");
        }
        let states = [
            (1, 1_003.0, SegmentState::Available),
            (2, 1_003.0, SegmentState::NotYet),
            (0, 1_003.0, SegmentState::Expired),
            (40, 1_100.0, SegmentState::Available),
            (10, 1_100.0, SegmentState::Expired), // 80 s behind, DVR 60 s
        ];
        for (n, now, state) in states {
            assert_eq!(c.state(n, now, 60.0), state, "segment {n} at {now}");
        }
        assert_eq!(c.source(1), (0, 1));
        assert_eq!(c.source(3), (0, 3));
        assert_eq!(c.source(4), (1, 1));
        assert_eq!(c.source(8), (2, 2));
    }

    #[test]
    fn window_numbers_and_times_segments_on_the_live_timeline() {
        let asset = sample_presentation();
        let live = clock().window(&asset, 1_020.0, 6.0).unwrap();
        assert!(matches!(live.kind, PresentationKind::Live { .. }));
        for r in &live.renditions {
            let numbers: Vec<u64> = r.segments.iter().map(|s| s.number).collect();
            assert_eq!(numbers, [8, 9, 10]);
            assert_eq!(r.segments[0].start, 14.0);
            assert_eq!(r.segments[0].uri, "8.m4s");
        }
        // Before anything completed the window is empty, not an error.
        let early = clock().window(&asset, 1_001.0, 6.0).unwrap();
        assert!(early.renditions.iter().all(|r| r.segments.is_empty()));
    }

    #[test]
    fn tfdt_strictly_increases_across_a_loop_boundary() {
        let asset = sample_presentation();
        let c = clock();
        let r = &asset.renditions[0];
        let asset_bytes: Vec<Vec<u8>> = r
            .segments
            .iter()
            .map(|s| {
                let samples: Vec<Sample> = (0..60)
                    .map(|i| Sample {
                        data: vec![0, 0, 0, 1, 0x65],
                        duration: 3000,
                        sync: i == 0,
                        composition_offset: 0,
                    })
                    .collect();
                media_segment(s.number as u32, (s.start * 90_000.0) as u64, &samples).unwrap()
            })
            .collect();
        let mut last_end = 0;
        for n in 1..=8u64 {
            let (_, k) = c.source(n);
            let bytes = c.retime(r, n, &asset_bytes[(k - 1) as usize]).unwrap();
            let info = inspect_segment(&bytes).unwrap();
            assert_eq!(u64::from(info.sequence), n);
            assert_eq!(
                info.base_decode_time, last_end,
                "segment {n} continues the timeline"
            );
            assert_eq!(info.base_decode_time, (n - 1) * 180_000);
            last_end = info.base_decode_time + info.duration;
        }
    }

    #[test]
    fn live_manifests() {
        let asset = sample_presentation();
        let c = clock();
        let now = 1_031.0;
        let live = c.window(&asset, now, 30.0).unwrap();
        let r = &live.renditions[0];
        let playlist =
            hls::write_media_playlist(r, &r.segments, false, Some(c.availability_start)).unwrap();
        assert!(playlist.contains("#EXT-X-MEDIA-SEQUENCE:1\n"), "{playlist}");
        assert!(
            playlist.contains("#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:16:40"),
            "{playlist}"
        );
        assert!(!playlist.contains("ENDLIST") && !playlist.contains("PLAYLIST-TYPE"));
        let info = hls::parse_media_playlist(&playlist, "http://h/live/ch/x/index.m3u8").unwrap();
        assert!(!info.ended);
        assert_eq!(info.first_program_date_time, Some(1_000.0));
        let mpd = dash::write_dynamic_mpd(
            &live,
            &dash::DynamicMpd {
                availability_start: c.availability_start,
                publish_time: now,
                minimum_update_period: 2.0,
                time_shift_buffer_depth: 30.0,
                suggested_presentation_delay: 6.0,
                utc_timing_url: "/time".into(),
            },
        )
        .unwrap();
        for needle in [
            "type=\"dynamic\"",
            "availabilityStartTime=\"1970-01-01T00:16:40",
            "publishTime=",
            "minimumUpdatePeriod=\"PT2S\"",
            "timeShiftBufferDepth=\"PT30S\"",
            "suggestedPresentationDelay=\"PT6S\"",
            "urn:mpeg:dash:utc:http-iso:2014",
            "value=\"/time\"",
        ] {
            assert!(mpd.contains(needle), "{needle} missing:\n{mpd}");
        }
        let parsed = dash::parse_mpd(&mpd, "http://h/live/ch/manifest.mpd", now).unwrap();
        assert!(matches!(parsed.kind, PresentationKind::Live { .. }));
        let v = parsed.video().next().unwrap();
        assert_eq!(v.segments.first().unwrap().number, 1);
        assert_eq!(v.segments.last().unwrap().number, 15);
        assert_eq!(
            v.segments.last().unwrap().uri,
            format!("http://h/live/ch/{}/15.m4s", v.id)
        );
    }
}
