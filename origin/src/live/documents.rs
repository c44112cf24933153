//! What a live channel serves at a given instant, as pure functions of `now`: the
//! sliding-window HLS playlists, the dynamic MPD, and which asset segment a live segment
//! number plays. `media::live` owns the schedule and the re-timing; this module picks the
//! documents and their HTTP dates, so that the routes only read the clock and the files.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use media::folder::AssetDir;
use media::live::{LiveLoop, SegmentState, SourceRef};
use media::{Delivery, Presentation, dash, hls};

/// One live channel: a library asset looped on the clock.
#[derive(Debug)]
pub struct Channel {
    /// The library asset it loops.
    pub asset: String,
    /// The asset's files, confined to the library.
    pub files: AssetDir,
    pub live: LiveLoop,
}

/// How far a channel reaches back, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Depth {
    /// Of segments listed in the playlists and the MPD.
    pub window: f64,
    /// Behind live that segments are still served.
    pub dvr: f64,
}

/// The live manifests.
#[derive(Debug, Clone, Copy)]
pub enum LiveManifest {
    /// `master.m3u8`.
    Multivariant,
    /// `manifest.mpd`.
    Mpd,
    /// `{rendition}/index.m3u8`, by the rendition's index.
    MediaPlaylist(usize),
}

/// A live manifest as served at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveDocument {
    pub text: String,
    /// When the newest segment it lists ended: the bytes (so the ETag) change only then,
    /// and this is their `Last-Modified`.
    pub changed: SystemTime,
    /// How long caches keep it: about half a segment, at least a second (RFC 9111 §5.2.2.1
    /// counts whole seconds).
    pub max_age: u32,
}

/// What a request for live segment N gets at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentChoice {
    /// Still being "produced": a short-lived 404.
    NotYet,
    /// Older than the DVR depth: a 404.
    Expired,
    /// The asset segment (a file of the asset folder, or a byte range of one) whose bytes,
    /// re-timed, are live segment N, and the instant it became available (its
    /// `Last-Modified`).
    Play {
        source: SourceRef,
        available_at: SystemTime,
    },
}

/// Seconds since the Unix epoch, the unit of `media::live`.
fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn system_time(unix: f64) -> SystemTime {
    UNIX_EPOCH + Duration::try_from_secs_f64(unix.max(0.0)).unwrap_or_default()
}

impl Channel {
    /// The index of the rendition named `id`.
    pub fn rendition(&self, id: &str) -> Option<usize> {
        self.live.rendition(id)
    }

    /// When the channel began: the `Last-Modified` of what never changes (init segments).
    pub fn started(&self) -> SystemTime {
        system_time(self.live.availability_start)
    }

    /// `which` at `now`, with `delivery`'s pathways when the origin steers (the media
    /// playlists are fetched from the edges and never carry them).
    pub fn document(
        &self,
        which: LiveManifest,
        depth: Depth,
        delivery: Option<Delivery>,
        now: SystemTime,
    ) -> media::Result<LiveDocument> {
        let now = unix_secs(now);
        let layout = self.live.presentation();
        let (text, changed) = match which {
            LiveManifest::Multivariant => (
                hls::write_multivariant(&Presentation {
                    delivery: delivery.unwrap_or_default(),
                    ..layout.clone()
                })?,
                self.live.changed_at(None, now),
            ),
            LiveManifest::Mpd => {
                let mut window = self.live.window(now, depth.window);
                if let Some(delivery) = delivery {
                    window.delivery = delivery;
                }
                // The MPD only changes when a segment ends: publishing that instant (not
                // "now") keeps its bytes, and so its ETag, stable in between, so
                // conditional reloads get 304s.
                let changed = self.live.changed_at(None, now);
                let mpd = dash::write_dynamic_mpd(
                    &window,
                    &dash::DynamicMpd {
                        availability_start: self.live.availability_start,
                        publish_time: changed,
                        minimum_update_period: self.live.segment_duration,
                        time_shift_buffer_depth: depth.window,
                        suggested_presentation_delay: 3.0 * self.live.segment_duration,
                        utc_timing_url: "/time".into(),
                    },
                )?;
                (mpd, changed)
            }
            LiveManifest::MediaPlaylist(r) => {
                let window = self.live.window(now, depth.window);
                let rendition = window.renditions.get(r).ok_or_else(|| {
                    media::MediaError::Invalid(format!("no rendition {r} in the channel"))
                })?;
                let playlist = hls::write_media_playlist(
                    rendition,
                    &rendition.segments,
                    false,
                    Some(self.live.availability_start),
                )?;
                (playlist, self.live.changed_at(Some(r), now))
            }
        };
        Ok(LiveDocument {
            text,
            changed: system_time(changed),
            max_age: (self.live.segment_duration / 2.0).floor().max(1.0) as u32,
        })
    }

    /// What live segment `number` of rendition `r` is at `now`, keeping `dvr` seconds
    /// behind live.
    pub fn segment(&self, r: usize, number: u64, now: SystemTime, dvr: f64) -> SegmentChoice {
        match self.live.state(r, number, unix_secs(now), dvr) {
            SegmentState::NotYet => SegmentChoice::NotYet,
            SegmentState::Expired => SegmentChoice::Expired,
            SegmentState::Available => SegmentChoice::Play {
                source: self.live.source(r, number).clone(),
                available_at: system_time(self.live.available_at(r, number)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use media::cmaf::{Sample, VideoTrack, media_segment, video_init_segment};
    use media::{Codec, Codecs, MediaType, PresentationKind, Rendition, Segment};

    use super::*;

    const START: f64 = 1_767_225_600.0;

    /// An 8 s asset of four 2 s segments in two video renditions, written to `dir`.
    fn channel(dir: &std::path::Path) -> Channel {
        let track = VideoTrack {
            timescale: 90_000,
            width: 640,
            height: 360,
            sps: vec![0x67, 0x42, 0xc0, 0x1e],
            pps: vec![0x68, 0xce, 0x3c, 0x80],
        };
        let samples: Vec<Sample> = (0..60)
            .map(|i| Sample {
                data: vec![1; 9],
                duration: 3_000,
                sync: i == 0,
                composition_offset: 0,
            })
            .collect();
        let rendition = |id: &str, height: u32, bandwidth: u64| {
            std::fs::create_dir_all(dir.join(id)).unwrap();
            std::fs::write(
                dir.join(id).join("init.mp4"),
                video_init_segment(&track).unwrap(),
            )
            .unwrap();
            for n in 1..=4u64 {
                let bytes = media_segment(n as u32, (n - 1) * 180_000, &samples).unwrap();
                std::fs::write(dir.join(id).join(format!("{n}.m4s")), bytes).unwrap();
            }
            Rendition {
                id: id.into(),
                media_type: MediaType::Video,
                bandwidth_peak: bandwidth,
                bandwidth_avg: bandwidth,
                width: Some(height * 16 / 9),
                height: Some(height),
                frame_rate: Some(30.0),
                codecs: Codecs::single(Codec::Avc {
                    profile: 0x42,
                    constraints: 0xc0,
                    level: 0x1e,
                }),
                sample_rate: None,
                init_uri: Some(format!("{id}/init.mp4")),
                init_range: None,
                container: media::Container::Fmp4,
                playlist_uri: Some(format!("{id}/index.m3u8")),
                segment_index: None,
                segments: (1..=4)
                    .map(|n| Segment {
                        number: n,
                        start: (n - 1) as f64 * 2.0,
                        duration: 2.0,
                        size: Some(bandwidth / 4),
                        uri: format!("{id}/{n}.m4s"),
                        ..Segment::default()
                    })
                    .collect(),
            }
        };
        let presentation = Presentation {
            kind: PresentationKind::Vod,
            renditions: vec![
                rendition("270p-300k", 270, 300_000),
                rendition("720p-1850k", 720, 1_850_000),
            ],
            delivery: Delivery::default(),
        };
        let files = AssetDir::new(dir);
        Channel {
            asset: "sample".into(),
            live: LiveLoop::new(&presentation, START, &files).unwrap(),
            files,
        }
    }

    const DEPTH: Depth = Depth {
        window: 30.0,
        dvr: 300.0,
    };

    fn at(since_start: f64) -> SystemTime {
        system_time(START + since_start)
    }

    fn playlist(channel: &Channel, now: SystemTime) -> hls::MediaPlaylistInfo {
        let r = channel.rendition("270p-300k").unwrap();
        let doc = channel
            .document(LiveManifest::MediaPlaylist(r), DEPTH, None, now)
            .unwrap();
        hls::parse_media_playlist(&doc.text, "http://o/live/live/270p-300k/index.m3u8").unwrap()
    }

    #[test]
    fn the_playlist_window_slides_with_now() {
        let dir = tempfile::tempdir().unwrap();
        let c = channel(dir.path());
        // (seconds since the availability start, first and last segment listed)
        let rows = [
            (2.0, 1, 1),
            (9.9, 1, 4),
            (30.0, 1, 15),
            (31.999, 1, 15),
            (32.0, 2, 16),
            (100.0, 36, 50),
        ];
        for (since, first, last) in rows {
            let p = playlist(&c, at(since));
            let numbers: Vec<u64> = p.segments.iter().map(|s| s.number).collect();
            assert_eq!(
                (numbers[0], *numbers.last().unwrap()),
                (first, last),
                "at {since}"
            );
            assert!(!p.ended, "no ENDLIST");
            assert!(p.first_program_date_time.is_some());
        }
    }

    #[test]
    fn documents_change_only_when_a_segment_completes() {
        let dir = tempfile::tempdir().unwrap();
        let c = channel(dir.path());
        let r = c.rendition("720p-1850k").unwrap();
        for which in [
            LiveManifest::Multivariant,
            LiveManifest::Mpd,
            LiveManifest::MediaPlaylist(r),
        ] {
            let doc = |since| c.document(which, DEPTH, None, at(since)).unwrap();
            let (a, b, next) = (doc(40.0), doc(41.999), doc(42.0));
            assert_eq!(a, b, "{which:?}: same bytes and date within a segment");
            assert_eq!(a.changed, at(40.0), "{which:?}: dated at the completion");
            assert_eq!(next.changed, at(42.0), "{which:?}");
            assert_eq!(a.max_age, 1, "{which:?}: half a 2 s segment");
            let moves = !matches!(which, LiveManifest::Multivariant);
            assert_eq!(a.text != next.text, moves, "{which:?}");
        }
    }

    #[test]
    fn the_mpd_is_dynamic_over_the_window_and_carries_the_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let c = channel(dir.path());
        let now = at(100.0);
        let doc = c.document(LiveManifest::Mpd, DEPTH, None, now).unwrap();
        let url = "http://o/live/live/manifest.mpd";
        let mpd = dash::parse_mpd(&doc.text, url, START + 100.0).unwrap();
        assert!(matches!(
            mpd.kind,
            PresentationKind::Live {
                availability_start: Some(s),
                ..
            } if s == START
        ));
        let video = mpd.video().next().unwrap();
        let numbers: Vec<u64> = video.segments.iter().map(|s| s.number).collect();
        assert_eq!((numbers[0], *numbers.last().unwrap()), (36, 50));
        assert!(
            doc.text.contains("publishTime=\"2026-01-01T00:01:40"),
            "{}",
            doc.text
        );
        assert!(doc.text.contains("/time"), "UTCTiming");
        let delivery = Delivery {
            pathways: vec![media::Pathway {
                id: "e1".into(),
                base: "http://e1/live/live/".into(),
            }],
            steering: None,
        };
        let steered = c
            .document(LiveManifest::Mpd, DEPTH, Some(delivery), now)
            .unwrap();
        assert!(
            steered.text.contains("http://e1/live/live/"),
            "{}",
            steered.text
        );
    }

    #[test]
    fn segments_are_chosen_on_the_clock() {
        let dir = tempfile::tempdir().unwrap();
        let c = channel(dir.path());
        let r = c.rendition("270p-300k").unwrap();
        let play = |file: &str, available: f64| SegmentChoice::Play {
            source: SourceRef {
                path: format!("270p-300k/{file}"),
                range: None,
            },
            available_at: at(available),
        };
        // (live segment number, seconds since the start, expected)
        let rows = [
            (1, 1.999, SegmentChoice::NotYet),
            (1, 2.0, play("1.m4s", 2.0)),
            (4, 8.0, play("4.m4s", 8.0)),
            (5, 10.0, play("1.m4s", 10.0)),
            (7, 100.0, play("3.m4s", 14.0)),
            (51, 100.0, SegmentChoice::NotYet),
            (0, 100.0, SegmentChoice::Expired),
            (50, 401.9, play("2.m4s", 100.0)),
            (50, 402.0, SegmentChoice::Expired),
        ];
        for (number, since, want) in rows {
            assert_eq!(
                c.segment(r, number, at(since), DEPTH.dvr),
                want,
                "{number} at {since}"
            );
        }
    }
}
