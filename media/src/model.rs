//! The presentation model: an asset is renditions × numbered segments.
//!
//! HLS and DASH are two spellings of this model ([`crate::hls`], [`crate::dash`]): we write
//! both from it, and parse both into it, so the origin and the player share one view.

use serde::{Deserialize, Serialize};

use crate::{Codecs, Delivery};

/// What a rendition carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaType {
    Video,
    Audio,
}

/// Whether the presentation is complete (VOD) or grows on a clock (live).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum PresentationKind {
    Vod,
    Live {
        /// Seconds since the Unix epoch at which segment number `start_number` of the live
        /// timeline began (DASH `availabilityStartTime`, HLS `EXT-X-PROGRAM-DATE-TIME`).
        availability_start: Option<f64>,
        /// How often the manifest should be reloaded, seconds.
        reload_interval: f64,
    },
}

/// One numbered media segment of a rendition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// The segment number (`$Number$` in DASH, media sequence in HLS).
    pub number: u64,
    /// Presentation start, seconds from the start of the timeline.
    pub start: f64,
    /// Duration in seconds.
    pub duration: f64,
    /// Size in bytes, when known (ours always; parsed manifests usually not).
    pub size: Option<u64>,
    /// Where to fetch it: relative to the manifest for ours, absolute for parsed ones.
    pub uri: String,
}

/// One rendition (a rung of the ladder, or an audio track).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rendition {
    /// Stable identifier (folder name for ours; DASH `@id` or a derived name for parsed ones).
    pub id: String,
    pub media_type: MediaType,
    /// Peak bit rate of any one segment, bit/s (HLS `BANDWIDTH`, DASH `@bandwidth`).
    pub bandwidth_peak: u64,
    /// Average bit rate over the whole rendition, bit/s (HLS `AVERAGE-BANDWIDTH`).
    pub bandwidth_avg: u64,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub frame_rate: Option<f64>,
    pub codecs: Codecs,
    /// Audio sample rate, Hz.
    pub sample_rate: Option<u32>,
    /// Where the init segment is, when there is one.
    pub init_uri: Option<String>,
    /// The HLS media playlist of this rendition.
    pub playlist_uri: Option<String>,
    pub segments: Vec<Segment>,
}

impl Rendition {
    /// Total duration of the segments, seconds.
    pub fn duration(&self) -> f64 {
        self.segments.iter().map(|s| s.duration).sum()
    }

    /// The longest segment, seconds (HLS target duration before rounding).
    pub fn max_segment_duration(&self) -> f64 {
        self.segments.iter().map(|s| s.duration).fold(0.0, f64::max)
    }

    /// Recomputes `bandwidth_peak` and `bandwidth_avg` from the segment sizes, when all are
    /// known: the peak is the real maximum over segments, never a nominal target.
    pub fn measure_bandwidth(&mut self) {
        let sizes: Option<Vec<(u64, f64)>> = self
            .segments
            .iter()
            .map(|s| s.size.map(|size| (size, s.duration)))
            .collect();
        let Some(sizes) = sizes else { return };
        if let Some(peak) = sizes
            .iter()
            .filter(|(_, d)| *d > 0.0)
            .map(|(size, d)| (*size as f64 * 8.0 / d).ceil() as u64)
            .max()
        {
            self.bandwidth_peak = peak;
        }
        let total_bytes: u64 = sizes.iter().map(|(s, _)| s).sum();
        let total_secs: f64 = sizes.iter().map(|(_, d)| d).sum();
        if total_secs > 0.0 {
            self.bandwidth_avg = (total_bytes as f64 * 8.0 / total_secs).round() as u64;
        }
    }

    /// A short human label: `1280x720 2850k`.
    pub fn label(&self) -> String {
        match (self.width, self.height) {
            (Some(w), Some(h)) => format!("{w}x{h} {}k", self.bandwidth_avg / 1000),
            _ => format!("{} {}k", self.id, self.bandwidth_avg / 1000),
        }
    }
}

/// An asset or live channel as a whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Presentation {
    pub kind: PresentationKind,
    /// Video renditions first, in ascending bandwidth; then audio.
    pub renditions: Vec<Rendition>,
    /// Other places the presentation is served from, when content steering is used.
    #[serde(default, skip_serializing_if = "Delivery::is_empty")]
    pub delivery: Delivery,
}

impl Presentation {
    /// The video renditions, lowest bandwidth first.
    pub fn video(&self) -> impl Iterator<Item = &Rendition> {
        self.renditions
            .iter()
            .filter(|r| r.media_type == MediaType::Video)
    }

    /// The audio renditions.
    pub fn audio(&self) -> impl Iterator<Item = &Rendition> {
        self.renditions
            .iter()
            .filter(|r| r.media_type == MediaType::Audio)
    }

    /// Total duration (of the longest rendition), seconds.
    pub fn duration(&self) -> f64 {
        self.renditions
            .iter()
            .map(Rendition::duration)
            .fold(0.0, f64::max)
    }

    /// Puts renditions in the canonical order: video by ascending bandwidth, then audio.
    pub fn sort(&mut self) {
        self.renditions
            .sort_by_key(|r| (r.media_type != MediaType::Video, r.bandwidth_peak, r.height));
    }
}

/// Resolves a URI reference found in a manifest fetched from `base` (RFC 3986 §5.2). A base
/// that is not a URL (a file path) is joined against its folder.
pub fn resolve_uri(base: &str, reference: &str) -> crate::Result<String> {
    if url::Url::parse(reference).is_ok() {
        return Ok(reference.to_string());
    }
    match url::Url::parse(base) {
        Ok(base) => base
            .join(reference)
            .map(String::from)
            .map_err(|e| crate::MediaError::Invalid(format!("cannot resolve {reference:?}: {e}"))),
        Err(_) => Ok(match base.rfind('/') {
            Some(i) => format!("{}/{reference}", &base[..i]),
            None => reference.to_string(),
        }),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::Codec;

    /// Two pathways, `edge-1` (10.0.0.2) and `edge-2` (10.0.0.3, the default), serving
    /// `/vod/sample/`, steered by `steering_uri`.
    pub(crate) fn two_edges(steering_uri: &str, query_before_start: bool) -> Delivery {
        Delivery {
            pathways: ["edge-1", "edge-2"]
                .iter()
                .enumerate()
                .map(|(i, id)| crate::Pathway {
                    id: id.to_string(),
                    base: format!("http://10.0.0.{}:8081/vod/sample/", i + 2),
                })
                .collect(),
            steering: Some(crate::SteeringServer {
                uri: steering_uri.into(),
                default_pathway: Some("edge-2".into()),
                query_before_start,
            }),
        }
    }

    /// An AAC audio rendition laid out as `media` writes it.
    pub(crate) fn audio_rendition() -> Rendition {
        let mut r = rendition(&[32_000, 32_000, 32_000]);
        r.id = "audio".into();
        r.media_type = MediaType::Audio;
        r.codecs = "mp4a.40.2".parse().unwrap();
        r.sample_rate = Some(48_000);
        r.init_uri = Some("init.mp4".into());
        r.playlist_uri = Some("audio/index.m3u8".into());
        r.measure_bandwidth();
        r
    }

    /// A three-rung presentation laid out as `media` writes it.
    pub(crate) fn sample_presentation() -> Presentation {
        let rungs = [
            (480, 270, 300_000u64),
            (640, 360, 750_000),
            (1280, 720, 1_850_000),
        ];
        let mut renditions: Vec<Rendition> = rungs
            .iter()
            .map(|&(w, h, bps)| {
                let id = format!("{h}p-{}k", bps / 1000);
                let mut r = rendition(&[bps / 4, bps / 4 + 1000, bps / 4 - 1000]);
                r.id = id;
                r.width = Some(w);
                r.height = Some(h);
                r.codecs = Codecs::single(Codec::Avc {
                    profile: 0x42,
                    constraints: 0xc0,
                    level: 0x1e,
                });
                r.init_uri = Some("init.mp4".into());
                r.playlist_uri = Some(format!("{}/index.m3u8", r.id));
                r.measure_bandwidth();
                r
            })
            .collect();
        renditions.reverse();
        let mut p = Presentation {
            kind: PresentationKind::Vod,
            renditions,
            delivery: Default::default(),
        };
        p.sort();
        p
    }

    #[test]
    fn resolves_references() {
        let cases = [
            (
                "http://h/a/b/master.m3u8",
                "x/index.m3u8",
                "http://h/a/b/x/index.m3u8",
            ),
            (
                "http://h/a/b/master.m3u8",
                "../init.mp4",
                "http://h/a/init.mp4",
            ),
            ("http://h/a/b/master.m3u8", "/root.m4s", "http://h/root.m4s"),
            (
                "http://h/a/master.m3u8",
                "https://cdn/x.m4s",
                "https://cdn/x.m4s",
            ),
            (
                "/lib/sample/master.m3u8",
                "270p/index.m3u8",
                "/lib/sample/270p/index.m3u8",
            ),
        ];
        for (base, reference, expected) in cases {
            assert_eq!(resolve_uri(base, reference).unwrap(), expected);
        }
    }

    #[test]
    fn sample_is_sorted_by_bandwidth() {
        let p = sample_presentation();
        let peaks: Vec<u64> = p.video().map(|r| r.bandwidth_peak).collect();
        assert!(peaks.windows(2).all(|w| w[0] < w[1]), "{peaks:?}");
    }

    fn rendition(sizes: &[u64]) -> Rendition {
        Rendition {
            id: "r".into(),
            media_type: MediaType::Video,
            bandwidth_peak: 0,
            bandwidth_avg: 0,
            width: Some(640),
            height: Some(360),
            frame_rate: Some(30.0),
            codecs: Codecs::default(),
            sample_rate: None,
            init_uri: None,
            playlist_uri: None,
            segments: sizes
                .iter()
                .enumerate()
                .map(|(i, &size)| Segment {
                    number: i as u64 + 1,
                    start: i as f64 * 2.0,
                    duration: 2.0,
                    size: Some(size),
                    uri: format!("{}.m4s", i + 1),
                })
                .collect(),
        }
    }

    #[test]
    fn peak_is_the_largest_segment_and_average_the_mean() {
        let mut r = rendition(&[100_000, 300_000, 200_000]);
        r.measure_bandwidth();
        assert_eq!(r.bandwidth_peak, 1_200_000);
        assert_eq!(r.bandwidth_avg, 800_000);
        assert_eq!(r.duration(), 6.0);
    }

    #[test]
    fn unknown_sizes_leave_bandwidth_alone() {
        let mut r = rendition(&[100_000]);
        r.segments[0].size = None;
        r.bandwidth_peak = 7;
        r.measure_bandwidth();
        assert_eq!(r.bandwidth_peak, 7);
    }
}
