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

/// A byte range of a resource: `length` bytes from `offset` (HLS `EXT-X-BYTERANGE` and
/// `EXT-X-MAP:BYTERANGE`, DASH `@mediaRange`, `@indexRange`, `Initialization@range`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ByteRange {
    pub offset: u64,
    /// At least 1.
    pub length: u64,
}

impl ByteRange {
    /// `length` bytes from `offset`; `None` when empty or past `u64`.
    pub fn new(offset: u64, length: u64) -> Option<Self> {
        (length > 0 && offset.checked_add(length).is_some()).then_some(Self { offset, length })
    }

    /// The offset just past the range.
    pub fn end(&self) -> u64 {
        self.offset + self.length
    }

    /// The offset of the last byte, as HTTP (`Range: bytes=first-last`, RFC 9110 §14.1.2)
    /// and DASH write ranges.
    pub fn last(&self) -> u64 {
        self.end() - 1
    }

    /// Parses DASH's `first-last` (both inclusive, ISO/IEC 23009-1 §5.3.9.2).
    pub fn parse_first_last(text: &str) -> crate::Result<Self> {
        let bad = || crate::MediaError::Invalid(format!("bad byte range {text:?}"));
        let (first, last) = text.trim().split_once('-').ok_or_else(bad)?;
        let (first, last): (u64, u64) = (
            first.trim().parse().map_err(|_| bad())?,
            last.trim().parse().map_err(|_| bad())?,
        );
        last.checked_sub(first)
            .and_then(|span| span.checked_add(1))
            .and_then(|length| Self::new(first, length))
            .ok_or_else(bad)
    }
}

/// How a rendition's segments are packaged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Container {
    /// Fragmented MP4 (CMAF): an init segment, then `moof`+`mdat` media segments.
    #[default]
    Fmp4,
    /// MPEG-2 transport stream (HLS segments without `EXT-X-MAP`): each segment carries
    /// its own program tables.
    MpegTs,
    /// Packed audio (HLS `.aac`, `.ac3`, `.ec3`, `.mp3` segments without `EXT-X-MAP`,
    /// RFC 8216 §3.4): elementary stream frames after an ID3 timestamp.
    PackedAudio,
}

impl Container {
    pub fn is_fmp4(&self) -> bool {
        *self == Self::Fmp4
    }

    /// The container of an HLS rendition without `EXT-X-MAP`, from a segment's URI.
    pub fn of_unmapped_segment(uri: &str) -> Self {
        let path = uri.split(['?', '#']).next().unwrap_or(uri);
        let extension = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
        match extension.as_deref() {
            Some("aac" | "ac3" | "ec3" | "mp3") => Self::PackedAudio,
            _ => Self::MpegTs,
        }
    }
}

/// Where a rendition's segments are listed when the manifest itself does not list them
/// (DASH `SegmentBase`): a segment index (`sidx`) in a byte range of the media file.
/// [`Rendition::index_segments`] lists them from the bytes of that range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentIndex {
    /// The media file (its segments live there too).
    pub uri: String,
    pub range: ByteRange,
    /// Seconds added to the index's presentation times: the period start minus
    /// `@presentationTimeOffset`.
    pub time_offset: f64,
}

/// One numbered media segment of a rendition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// The part of `uri` that is this segment, when it is not the whole resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<ByteRange>,
    /// Its timestamps need not continue the previous segment's (HLS
    /// `EXT-X-DISCONTINUITY`, RFC 8216 §4.3.2.3).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub discontinuity: bool,
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
    /// The part of `init_uri` that is the init segment, when it is not the whole resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_range: Option<ByteRange>,
    /// How the segments are packaged.
    #[serde(default, skip_serializing_if = "Container::is_fmp4")]
    pub container: Container,
    /// The HLS media playlist of this rendition.
    pub playlist_uri: Option<String>,
    /// Where the segments are listed when `segments` waits to be filled from an index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_index: Option<SegmentIndex>,
    pub segments: Vec<Segment>,
}

impl Rendition {
    /// A rendition known only by its media playlist at `playlist_uri` (a media playlist
    /// opened on its own): video of undeclared bit rate until
    /// [`crate::hls::MediaPlaylistInfo::fill`] and the segments say more.
    pub fn of_media_playlist(id: &str, playlist_uri: &str) -> Self {
        Self {
            id: id.into(),
            media_type: MediaType::Video,
            bandwidth_peak: 0,
            bandwidth_avg: 0,
            width: None,
            height: None,
            frame_rate: None,
            codecs: Codecs::default(),
            sample_rate: None,
            init_uri: None,
            init_range: None,
            container: Container::Fmp4,
            playlist_uri: Some(playlist_uri.into()),
            segment_index: None,
            segments: Vec::new(),
        }
    }

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

    /// Lists the segments from the bytes of [`Self::segment_index`]'s range (its `sidx`
    /// box), out of `budget` (the presentation's).
    pub fn index_segments(
        &mut self,
        index_bytes: &[u8],
        budget: &mut crate::limits::SegmentBudget,
    ) -> crate::Result<()> {
        let index = self.segment_index.as_ref().ok_or_else(|| {
            crate::MediaError::Invalid(format!("rendition {} has no segment index", self.id))
        })?;
        self.segments = crate::sidx::segments(index, index_bytes, budget)?;
        Ok(())
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
            init_range: None,
            container: Container::Fmp4,
            playlist_uri: None,
            segment_index: None,
            segments: sizes
                .iter()
                .enumerate()
                .map(|(i, &size)| Segment {
                    number: i as u64 + 1,
                    start: i as f64 * 2.0,
                    duration: 2.0,
                    size: Some(size),
                    uri: format!("{}.m4s", i + 1),
                    ..Default::default()
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
    fn presentation_json_stays_as_it_was_unless_a_new_field_is_used() {
        let mut p = sample_presentation();
        let plain = serde_json::to_string(&p).unwrap();
        for new in ["range", "discontinuity", "container", "segment_index"] {
            assert!(!plain.contains(new), "{new} written though unused");
        }
        // An older presentation.json (none of the new fields) reads back the same.
        let back: Presentation = serde_json::from_str(&plain).unwrap();
        assert_eq!(back, p);
        let r = &mut p.renditions[0];
        r.container = Container::MpegTs;
        r.init_range = ByteRange::new(0, 100);
        r.segments[0].range = ByteRange::new(100, 50);
        r.segments[0].discontinuity = true;
        let used = serde_json::to_string(&p).unwrap();
        assert!(used.contains(r#""container":"mpeg-ts""#), "{used}");
        assert!(
            used.contains(r#""range":{"offset":100,"length":50}"#),
            "{used}"
        );
        assert_eq!(serde_json::from_str::<Presentation>(&used).unwrap(), p);
    }

    #[test]
    fn byte_ranges_table() {
        let cases = [
            ("0-99", Some((0, 100))),
            (" 834-177692 ", Some((834, 176_859))),
            ("5-5", Some((5, 1))),
            ("6-5", None),
            ("-5", None),
            ("a-b", None),
            ("18446744073709551615-18446744073709551615", None),
        ];
        for (text, want) in cases {
            let got = ByteRange::parse_first_last(text)
                .ok()
                .map(|r| (r.offset, r.length));
            assert_eq!(got, want, "{text}");
        }
        let r = ByteRange::new(10, 5).unwrap();
        assert_eq!((r.last(), r.end()), (14, 15));
        assert_eq!(ByteRange::new(1, 0), None);
        assert_eq!(
            Container::of_unmapped_segment("x/seg.TS?a.aac"),
            Container::MpegTs
        );
        assert_eq!(
            Container::of_unmapped_segment("x/seg.ec3"),
            Container::PackedAudio
        );
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
