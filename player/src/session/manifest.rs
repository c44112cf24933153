//! From a manifest URL to the track a session plays: HLS (a multivariant playlist and its
//! media playlists, or one media playlist) or a DASH MPD, parsed by `media` into its
//! presentation model, then reduced to the video renditions and their URLs. Pathways go
//! to the session's routes as soon as they are known, so that even the media playlists
//! fail over.

use media::limits::SegmentBudget;
use media::model::{MediaType, Presentation, PresentationKind, Rendition};
use media::{ByteRange, Container, Delivery, MediaError, SteeringProtocol, dash, hls};
use url::Url;

use super::body::{INDEX_LIMIT, Kept};
use super::fetch::Fetcher;
use super::outcome::SessionError;
use super::steering::SteeringStart;

/// One media segment, as every rendition has it at the same position.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackSegment {
    pub number: u64,
    /// Presentation start, s.
    pub start_s: f64,
    pub duration_s: f64,
    pub url: Url,
    /// The part of `url` that is this segment, when it is not all of it.
    pub range: Option<ByteRange>,
    /// Its timestamps need not continue the previous segment's.
    pub discontinuity: bool,
}

/// One video rendition ready to fetch.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackRendition {
    pub id: String,
    /// Declared peak bitrate (HLS `BANDWIDTH`, DASH `@bandwidth`), bit/s: what hls.js and
    /// dash.js decide on. Without one, the mean of the segment sizes the manifest gives
    /// (byte ranges, `sidx`), 0 when it gives none.
    pub bitrate_bps: u64,
    /// No bitrate was declared: each segment's is its size over its duration.
    pub measured: bool,
    pub init: Option<Url>,
    pub init_range: Option<ByteRange>,
    pub container: Container,
    pub segments: Vec<TrackSegment>,
}

/// Segments a live session starts behind the newest one by default (hls.js's
/// `liveSyncDurationCount`).
pub const LIVE_DELAY_SEGMENTS: u64 = 3;

/// The shortest and longest wait between reloads of a live manifest, s: its
/// `minimumUpdatePeriod` or target duration, within these.
pub const LIVE_RELOAD_S: (f64, f64) = (0.5, 30.0);

/// What a session fetches of a presentation: the video renditions by ascending bitrate
/// (segments aligned by number), and the first separate audio rendition, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    pub renditions: Vec<TrackRendition>,
    pub audio: Option<TrackRendition>,
    /// Seconds between manifest reloads of a live presentation; `None` for VOD.
    pub live_reload_s: Option<f64>,
    /// Live: Unix time of the timeline's zero (segment starts count from it), when the
    /// manifest ties the timeline to the clock (DASH `availabilityStartTime`, HLS
    /// `EXT-X-PROGRAM-DATE-TIME`).
    pub live_epoch_s: Option<f64>,
    /// The content steering server, when the presentation names one.
    pub steering: Option<SteeringStart>,
}

impl Track {
    pub fn bitrates_bps(&self) -> Vec<u64> {
        self.renditions.iter().map(|r| r.bitrate_bps).collect()
    }

    /// A fresh check of each video rendition's segments (`media::validate`).
    pub fn checks(&self) -> Vec<media::validate::RenditionCheck> {
        self.renditions
            .iter()
            .map(|r| media::validate::RenditionCheck::new(r.container))
            .collect()
    }

    /// The first number every video rendition lists.
    pub fn first_number(&self) -> Option<u64> {
        self.common_numbers().map(|(first, _)| first)
    }

    /// The numbers every video rendition lists, first and last.
    fn common_numbers(&self) -> Option<(u64, u64)> {
        let first = self
            .renditions
            .iter()
            .map(|r| r.segments.first().map(|s| s.number))
            .collect::<Option<Vec<_>>>()?
            .into_iter()
            .max()?;
        let last = self
            .renditions
            .iter()
            .filter_map(|r| r.segments.last().map(|s| s.number))
            .min()?;
        (first <= last).then_some((first, last))
    }

    /// Segment `number` of every video rendition (index = rendition), when all list it.
    pub fn row(&self, number: u64) -> Option<Vec<&TrackSegment>> {
        self.renditions
            .iter()
            .map(|r| {
                let first = r.segments.first()?.number;
                let segment = r
                    .segments
                    .get(usize::try_from(number.checked_sub(first)?).ok()?)?;
                (segment.number == number).then_some(segment)
            })
            .collect()
    }

    /// The first segment to play: the first of a VOD, `live_delay_segments` behind the
    /// newest of a live presentation (or the oldest listed, if the window is shorter).
    pub fn start_number(&self, live_delay_segments: u64) -> Option<u64> {
        let (first, last) = self.common_numbers()?;
        Some(match self.live_reload_s {
            None => first,
            Some(_) => last
                .saturating_sub(live_delay_segments.saturating_sub(1))
                .max(first),
        })
    }

    /// The last segment of a VOD; `None` for live.
    pub fn last_number(&self) -> Option<u64> {
        self.live_reload_s
            .is_none()
            .then(|| self.common_numbers().map(|(_, last)| last))
            .flatten()
    }

    /// Media time at which playback from `start` ends: the end of the last segment of a
    /// VOD, never for live.
    pub fn media_duration_from(&self, start: u64) -> f64 {
        let Some(last) = self.last_number() else {
            return f64::INFINITY;
        };
        (start..=last)
            .filter_map(|n| {
                self.row(n)
                    .and_then(|row| row.first().map(|s| s.duration_s))
            })
            .sum()
    }
}

fn parse_url(manifest: &Url, uri: &str) -> Result<Url, SessionError> {
    Url::parse(uri).map_err(|e| SessionError::Manifest {
        url: manifest.to_string(),
        source: MediaError::Invalid(format!("segment URL {uri:?}: {e}")),
    })
}

/// The mean bitrate of `r`'s segments from their sizes, when the manifest gives them all.
fn bitrate_from_sizes(r: &Rendition) -> Option<u64> {
    let (bytes, seconds) = r.segments.iter().try_fold((0u64, 0.0), |(b, d), s| {
        Some((b.checked_add(s.size?)?, d + s.duration))
    })?;
    (seconds > 0.0).then(|| (bytes as f64 * 8.0 / seconds).round() as u64)
}

fn track_rendition(url: &Url, r: &Rendition) -> Result<TrackRendition, SessionError> {
    let measured = r.bandwidth_peak == 0;
    Ok(TrackRendition {
        id: r.id.clone(),
        bitrate_bps: if measured {
            bitrate_from_sizes(r).unwrap_or(0)
        } else {
            r.bandwidth_peak
        },
        measured,
        init_range: r.init_range,
        container: r.container,
        init: r
            .init_uri
            .as_deref()
            .map(|u| parse_url(url, u))
            .transpose()?,
        segments: r
            .segments
            .iter()
            .map(|s| {
                Ok(TrackSegment {
                    number: s.number,
                    start_s: s.start,
                    duration_s: s.duration,
                    url: parse_url(url, &s.uri)?,
                    range: s.range,
                    discontinuity: s.discontinuity,
                })
            })
            .collect::<Result<_, SessionError>>()?,
    })
}

/// The renditions of a presentation as a [`Track`].
pub fn track_of(url: &Url, presentation: &Presentation) -> Result<Track, SessionError> {
    let renditions = presentation
        .video()
        .filter(|r| !r.segments.is_empty())
        .map(|r| track_rendition(url, r))
        .collect::<Result<Vec<_>, SessionError>>()?;
    let audio = presentation
        .audio()
        .find(|r| !r.segments.is_empty())
        .map(|r| track_rendition(url, r))
        .transpose()?;
    let track = Track {
        renditions,
        audio,
        live_reload_s: match presentation.kind {
            PresentationKind::Vod => None,
            // Never hammer the origin, nor sleep past the live edge, whatever the manifest
            // says.
            PresentationKind::Live {
                reload_interval, ..
            } => Some(reload_interval.clamp(LIVE_RELOAD_S.0, LIVE_RELOAD_S.1)),
        },
        live_epoch_s: match presentation.kind {
            PresentationKind::Vod => None,
            PresentationKind::Live {
                availability_start, ..
            } => availability_start,
        },
        steering: None,
    };
    if track.common_numbers().is_none() {
        return Err(SessionError::NoVideo(url.to_string()));
    }
    if track
        .renditions
        .windows(2)
        .any(|w| w[0].segments.len() != w[1].segments.len())
    {
        tracing::warn!(%url, "renditions differ in their segments: playing the common part");
    }
    Ok(track)
}

fn manifest_error(url: &Url) -> impl FnOnce(MediaError) -> SessionError + '_ {
    move |source| SessionError::Manifest {
        url: url.to_string(),
        source,
    }
}

/// Where the steering manifest of `delivery` is: its server URI resolved against the
/// URL the manifest came from.
fn steering_start(
    delivery: &Delivery,
    base: &Url,
    protocol: SteeringProtocol,
) -> Result<Option<SteeringStart>, SessionError> {
    delivery
        .steering
        .as_ref()
        .map(|s| {
            Ok(SteeringStart {
                url: base.join(&s.uri).map_err(|e| SessionError::Manifest {
                    url: base.to_string(),
                    source: MediaError::Invalid(format!("steering URI {:?}: {e}", s.uri)),
                })?,
                protocol,
            })
        })
        .transpose()
}

/// Fetches and parses the manifest at `url` (each HLS media playlist too, each DASH
/// segment index), all of it within one [`SegmentBudget`] (`media::limits`: whatever a
/// manifest says, a presentation lists at most 300,000 segments). `cmcd` adds the CMCD
/// query parameter to each manifest request.
pub async fn load(
    fetcher: &mut Fetcher<'_>,
    url: &Url,
    cmcd: &(dyn Fn(&Url) -> Url + Send + Sync),
) -> Result<Track, SessionError> {
    let (text, base) = fetcher.get_text(&cmcd(url)).await?;
    let mut budget = SegmentBudget::default();
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    let (presentation, protocol) = if trimmed.starts_with("#EXTM3U") {
        (
            load_hls(fetcher, &text, &base, cmcd, &mut budget).await?,
            SteeringProtocol::Hls,
        )
    } else if trimmed.starts_with('<') && text.contains("<MPD") {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let mut mpd = dash::parse_mpd_in(&text, base.as_str(), now, &mut budget)
            .map_err(manifest_error(url))?;
        fetcher.routes().install(&mpd.delivery);
        read_segment_indexes(fetcher, url, &mut mpd, &mut budget).await?;
        (mpd, SteeringProtocol::Dash)
    } else {
        return Err(SessionError::NotAManifest {
            url: url.to_string(),
            start: trimmed.chars().take(40).collect(),
        });
    };
    let mut track = track_of(url, &presentation)?;
    track.steering = steering_start(&presentation.delivery, &base, protocol)?;
    Ok(track)
}

/// The renditions a session plays (every video one and the first audio one) whose
/// segments a segment index lists (DASH `SegmentBase`): fetches each index and lists them.
async fn read_segment_indexes(
    fetcher: &mut Fetcher<'_>,
    url: &Url,
    presentation: &mut Presentation,
    budget: &mut SegmentBudget,
) -> Result<(), SessionError> {
    let first_audio = presentation
        .renditions
        .iter()
        .position(|r| r.media_type == MediaType::Audio);
    for (i, r) in presentation.renditions.iter_mut().enumerate() {
        let Some(index) = &r.segment_index else {
            continue;
        };
        if r.media_type == MediaType::Audio && Some(i) != first_audio {
            continue;
        }
        let index_url = parse_url(url, &index.uri)?;
        let mut kept = Kept::new(INDEX_LIMIT);
        fetcher
            .get_retrying(&index_url, Some(index.range), &mut kept)
            .await?;
        r.index_segments(&kept.bytes, budget)
            .map_err(manifest_error(&index_url))?;
    }
    Ok(())
}

async fn load_hls(
    fetcher: &mut Fetcher<'_>,
    text: &str,
    base: &Url,
    cmcd: &(dyn Fn(&Url) -> Url + Send + Sync),
    budget: &mut SegmentBudget,
) -> Result<Presentation, SessionError> {
    let (mut renditions, delivery) = if hls::is_multivariant(text) {
        let parsed = hls::parse_multivariant(text, base.as_str()).map_err(manifest_error(base))?;
        (parsed.renditions, parsed.delivery)
    } else {
        // A media playlist on its own: one rendition of unknown bitrate.
        let only = vec![Rendition::of_media_playlist("media", base.as_str())];
        (only, Delivery::default())
    };
    fetcher.routes().install(&delivery);
    let (mut live, mut reload_s) = (false, f64::INFINITY);
    // Whether the live playlists carry EXT-X-PROGRAM-DATE-TIME.
    let mut dated = false;
    // Video renditions, and the first audio one (the one a session fetches).
    let first_audio = renditions
        .iter()
        .position(|r| r.media_type == MediaType::Audio);
    for (i, r) in renditions.iter_mut().enumerate() {
        let Some(playlist) = &r.playlist_uri else {
            continue;
        };
        if r.media_type != MediaType::Video && Some(i) != first_audio {
            continue;
        }
        let playlist = parse_url(base, playlist)?;
        let (body, final_url) = if playlist == *base {
            (text.to_owned(), base.clone())
        } else {
            fetcher.get_text(&cmcd(&playlist)).await?
        };
        let mut info = hls::parse_media_playlist_in(&body, final_url.as_str(), budget)
            .map_err(manifest_error(&final_url))?;
        if !info.ended {
            // Live starts count from each reload's first segment; the program date-time
            // puts them on one clock, shared with the audio.
            let origin = info.first_program_date_time.unwrap_or(0.0);
            dated |= info.first_program_date_time.is_some();
            for segment in &mut info.segments {
                segment.start += origin;
            }
            reload_s = reload_s.min(info.target_duration);
            live = true;
        }
        info.fill(r);
    }
    Ok(Presentation {
        kind: if live {
            PresentationKind::Live {
                // Dated segments start at Unix times: the timeline's zero is the epoch.
                availability_start: dated.then_some(0.0),
                reload_interval: reload_s,
            }
        } else {
            PresentationKind::Vod
        },
        renditions,
        delivery,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use media::model::Segment;

    fn rendition(id: &str, bps: u64, segments: usize) -> Rendition {
        Rendition {
            id: id.into(),
            media_type: MediaType::Video,
            bandwidth_peak: bps,
            bandwidth_avg: bps,
            width: None,
            height: None,
            frame_rate: None,
            codecs: media::Codecs::default(),
            sample_rate: None,
            init_uri: Some(format!("http://h/{id}/init.mp4")),
            init_range: None,
            container: Container::Fmp4,
            playlist_uri: None,
            segment_index: None,
            segments: (0..segments)
                .map(|i| Segment {
                    number: i as u64 + 1,
                    start: i as f64 * 2.0,
                    duration: 2.0,
                    size: None,
                    uri: format!("http://h/{id}/{}.m4s", i + 1),
                    ..Default::default()
                })
                .collect(),
        }
    }

    #[test]
    fn track_takes_the_common_segments_of_the_video() {
        let url = Url::parse("http://h/master.m3u8").unwrap();
        let mut audio = rendition("a", 64_000, 9);
        audio.media_type = MediaType::Audio;
        let p = Presentation {
            kind: PresentationKind::Vod,
            renditions: vec![
                rendition("lo", 300_000, 6),
                rendition("hi", 900_000, 5),
                audio,
            ],
            delivery: Default::default(),
        };
        let t = track_of(&url, &p).unwrap();
        assert_eq!(t.audio.as_ref().unwrap().segments.len(), 9);
        assert_eq!(t.bitrates_bps(), [300_000, 900_000]);
        assert_eq!(
            (t.start_number(LIVE_DELAY_SEGMENTS), t.last_number()),
            (Some(1), Some(5))
        );
        assert_eq!(t.media_duration_from(1), 10.0);
        assert_eq!(t.media_duration_from(4), 4.0);
        let row = t.row(5).unwrap();
        assert_eq!(row[1].url.as_str(), "http://h/hi/5.m4s");
        assert!(t.row(6).is_none(), "lo has 6, hi does not");
        assert!(t.row(0).is_none());
    }

    #[test]
    fn live_starts_behind_the_newest_segment_and_never_ends() {
        let url = Url::parse("http://h/m.mpd").unwrap();
        let mut lo = rendition("lo", 1, 8);
        for s in &mut lo.segments {
            s.number += 100;
        }
        let live = Presentation {
            kind: PresentationKind::Live {
                availability_start: None,
                reload_interval: 0.1,
            },
            renditions: vec![lo],
            delivery: Default::default(),
        };
        let t = track_of(&url, &live).unwrap();
        assert_eq!(t.live_reload_s, Some(0.5));
        assert_eq!(
            (t.start_number(LIVE_DELAY_SEGMENTS), t.last_number()),
            (Some(106), None)
        );
        assert_eq!(t.media_duration_from(106), f64::INFINITY);
    }

    #[test]
    fn the_steering_uri_resolves_against_the_manifest() {
        let base = Url::parse("http://o.test/vod/s/master.m3u8").unwrap();
        let with = |uri: &str| Delivery {
            pathways: Vec::new(),
            steering: Some(media::SteeringServer {
                uri: uri.into(),
                default_pathway: None,
                query_before_start: false,
            }),
        };
        for (uri, want) in [
            (
                "/steering/hls?start=1",
                "http://o.test/steering/hls?start=1",
            ),
            ("steer.json", "http://o.test/vod/s/steer.json"),
            ("https://s.test/x", "https://s.test/x"),
        ] {
            let start = steering_start(&with(uri), &base, SteeringProtocol::Hls).unwrap();
            assert_eq!(start.unwrap().url.as_str(), want, "{uri}");
        }
        let none = steering_start(&Delivery::default(), &base, SteeringProtocol::Dash);
        assert_eq!(none.unwrap(), None);
        assert!(steering_start(&with("http://[bad"), &base, SteeringProtocol::Hls).is_err());
    }

    #[test]
    fn empty_and_bad_urls_are_errors() {
        let url = Url::parse("http://h/m.mpd").unwrap();
        let empty = Presentation {
            kind: PresentationKind::Vod,
            renditions: vec![rendition("lo", 1, 0)],
            delivery: Default::default(),
        };
        assert!(matches!(
            track_of(&url, &empty),
            Err(SessionError::NoVideo(_))
        ));
        let mut bad = rendition("lo", 1, 1);
        bad.segments[0].uri = "not a url".into();
        let bad = Presentation {
            kind: PresentationKind::Vod,
            renditions: vec![bad],
            delivery: Default::default(),
        };
        assert!(matches!(
            track_of(&url, &bad),
            Err(SessionError::Manifest { .. })
        ));
    }
}
