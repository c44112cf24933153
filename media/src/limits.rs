//! Bounds on what a manifest from the outside may make a parser allocate or compute.
//!
//! A manifest is small and says how many segments there are: a few kilobytes of MPD can
//! ask for millions of them (`@r`, `@duration` over a long presentation, a live edge
//! computed from a clock of year 1), and HLS repeats two short lines per segment. Every
//! parser here therefore checks the text before handing it to `m3u8-rs` or
//! `dash-mpd-core` ([`check_playlist_text`], [`check_mpd_text`]) and lists segments out
//! of one [`SegmentBudget`] shared by every rendition and period of a presentation (and
//! the segment indexes read for it), so that what a manifest costs is bounded whatever
//! its shape. Exceeding a bound is [`MediaError::Limit`], one line.

use crate::{MediaError, Result, Segment};

/// The largest manifest read (a 24-hour DVR window of 2 s segments in HLS is about 4 MB).
pub const MAX_MANIFEST_BYTES: usize = 16 << 20;
/// Segments in one presentation, all renditions and periods together: a 24-hour window of
/// 2 s segments in six renditions is 259,200.
pub const MAX_SEGMENTS: u64 = 300_000;
/// Memory the listed segments may take, their URLs included: 300,000 segments with
/// 300-byte URLs.
pub const MAX_SEGMENT_BYTES: usize = 128 << 20;
/// Renditions a manifest may declare (DASH `Representation`s in all periods, and as many
/// `AdaptationSet`s; HLS `EXT-X-STREAM-INF`, `EXT-X-I-FRAME-STREAM-INF` and
/// `EXT-X-MEDIA`). `dash-mpd-core` builds 2 kB for each representation or adaptation set.
pub const MAX_RENDITIONS: usize = 1_000;
/// Periods of an MPD.
pub const MAX_PERIODS: usize = 1_000;
/// XML elements of an MPD: one `S` or `SegmentURL` per segment at most, and room for the
/// rest. It bounds what `dash-mpd-core` builds, a structure per element.
pub const MAX_ELEMENTS: usize = MAX_SEGMENTS as usize + 100_000;
/// Nesting of XML elements (an MPD needs about 8).
pub const MAX_DEPTH: usize = 64;
/// The longest HLS line, XML attribute value or text (a long signed URL or an SCTE-35
/// `EXT-X-DATERANGE` is a few kilobytes).
pub const MAX_LINE_BYTES: usize = 64 << 10;
/// The longest segment (seconds): a day, so that a whole recording as one segment still
/// plays; a longer one is a wrong timescale or an attack.
pub const MAX_SEGMENT_SECONDS: f64 = 86_400.0;
/// How far in the future a live timeline may start (`availabilityStartTime`): an event
/// announced a month ahead. Before the Unix epoch it may not start at all (year 1 is an
/// attack; `1970-01-01T00:00:00Z` is what many live packagers write).
pub const MAX_FUTURE_START_SECONDS: f64 = 30.0 * 86_400.0;
/// The largest segment number (`$Number$`, media sequence) accepted: 2^53 − 1, the
/// largest that JavaScript players and our `f64` clocks count exactly.
pub const MAX_SEGMENT_NUMBER: u64 = (1 << 53) - 1;

fn over(what: &'static str, limit: u64) -> MediaError {
    MediaError::Limit { what, limit }
}

/// What the segments of one presentation may still take: [`MAX_SEGMENTS`] segments and
/// [`MAX_SEGMENT_BYTES`] bytes by default. One budget serves a whole presentation (every
/// rendition and period, the HLS media playlists and DASH segment indexes read for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentBudget {
    segments: u64,
    bytes: usize,
}

impl Default for SegmentBudget {
    fn default() -> Self {
        Self::new(MAX_SEGMENTS, MAX_SEGMENT_BYTES)
    }
}

impl SegmentBudget {
    pub fn new(segments: u64, bytes: usize) -> Self {
        Self { segments, bytes }
    }

    /// Refuses, before anything is listed, `count` more segments than the budget has left.
    pub fn ensure_room(&self, count: u64) -> Result<()> {
        if count > self.segments {
            return Err(over(
                "segments in the manifest (all renditions together)",
                MAX_SEGMENTS,
            ));
        }
        Ok(())
    }

    /// Takes one listed segment (its record and URL) from the budget.
    pub fn take(&mut self, segment: &Segment) -> Result<()> {
        self.ensure_room(1)?;
        let cost = size_of::<Segment>() + segment.uri.len();
        self.bytes = self.bytes.checked_sub(cost).ok_or_else(|| {
            over(
                "bytes of segment records and URLs",
                MAX_SEGMENT_BYTES as u64,
            )
        })?;
        self.segments -= 1;
        Ok(())
    }
}

/// A segment number, checked against [`MAX_SEGMENT_NUMBER`]; `None` (an overflow on the
/// way) is out of range too.
pub fn segment_number(number: Option<u64>) -> Result<u64> {
    number
        .filter(|n| *n <= MAX_SEGMENT_NUMBER)
        .ok_or_else(|| over("segment number", MAX_SEGMENT_NUMBER))
}

/// A segment duration in seconds: finite, above 0 and at most [`MAX_SEGMENT_SECONDS`];
/// else why not, for the caller's error.
pub fn segment_seconds(seconds: f64) -> Result<f64, String> {
    if seconds.is_finite() && seconds > 0.0 && seconds <= MAX_SEGMENT_SECONDS {
        Ok(seconds)
    } else {
        Err(format!(
            "segment duration {seconds:e} s is not in (0, {MAX_SEGMENT_SECONDS}]"
        ))
    }
}

fn check_size(text: &str) -> Result<()> {
    if text.len() > MAX_MANIFEST_BYTES {
        return Err(over("manifest bytes", MAX_MANIFEST_BYTES as u64));
    }
    Ok(())
}

/// What [`check_playlist_text`] counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlaylistCounts {
    /// `EXTINF` lines: the segments.
    pub segments: u64,
}

/// Checks an HLS playlist before it is parsed: its size, every line's length, the number
/// of renditions a multivariant playlist declares, and each `EXTINF` duration (by its text:
/// `m3u8-rs` reads it into an `f32`, where `1e39` is not what it says). Returns the count
/// of segments, for the caller's budget.
pub fn check_playlist_text(text: &str) -> Result<PlaylistCounts> {
    check_size(text)?;
    let mut counts = PlaylistCounts::default();
    let mut renditions = 0usize;
    for line in text.lines() {
        if line.len() > MAX_LINE_BYTES {
            return Err(over("bytes on one playlist line", MAX_LINE_BYTES as u64));
        }
        if let Some(rest) = line.strip_prefix("#EXTINF:") {
            let value = rest.split(',').next().unwrap_or_default().trim();
            let seconds: f64 = value
                .parse()
                .map_err(|_| MediaError::Hls(format!("EXTINF duration {value:?}")))?;
            segment_seconds(seconds).map_err(MediaError::Hls)?;
            counts.segments += 1;
        } else if [
            "#EXT-X-STREAM-INF",
            "#EXT-X-I-FRAME-STREAM-INF",
            "#EXT-X-MEDIA:",
        ]
        .iter()
        .any(|tag| line.starts_with(tag))
        {
            renditions += 1;
            if renditions > MAX_RENDITIONS {
                return Err(over("renditions in the playlist", MAX_RENDITIONS as u64));
            }
        }
    }
    Ok(counts)
}

/// Checks an MPD before `dash-mpd-core` builds it: its size, its number of elements,
/// periods and representations, its nesting and the length of every attribute value and
/// text.
pub fn check_mpd_text(text: &str) -> Result<()> {
    use quick_xml::events::Event;
    check_size(text)?;
    let mut reader = quick_xml::Reader::from_str(text);
    let (mut elements, mut depth) = (0usize, 0usize);
    let (mut periods, mut sets, mut representations) = (0usize, 0usize, 0usize);
    let invalid = |e: &dyn std::fmt::Display| MediaError::Dash(crate::one_line(e));
    loop {
        let event = reader.read_event().map_err(|e| invalid(&e))?;
        let element = match &event {
            Event::Start(e) | Event::Empty(e) => e,
            Event::Text(t) => {
                if t.len() > MAX_LINE_BYTES {
                    return Err(over("bytes of XML text", MAX_LINE_BYTES as u64));
                }
                continue;
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                continue;
            }
            Event::Eof => return Ok(()),
            _ => continue,
        };
        elements += 1;
        if elements > MAX_ELEMENTS {
            return Err(over("XML elements in the MPD", MAX_ELEMENTS as u64));
        }
        if matches!(event, Event::Start(_)) {
            depth += 1;
            if depth > MAX_DEPTH {
                return Err(over("levels of XML nesting", MAX_DEPTH as u64));
            }
        }
        match element.local_name().as_ref() {
            "Period" => periods += 1,
            "AdaptationSet" => sets += 1,
            "Representation" => representations += 1,
            _ => {}
        }
        if sets > MAX_RENDITIONS {
            return Err(over("adaptation sets in the MPD", MAX_RENDITIONS as u64));
        }
        if periods > MAX_PERIODS {
            return Err(over("periods in the MPD", MAX_PERIODS as u64));
        }
        if representations > MAX_RENDITIONS {
            return Err(over("representations in the MPD", MAX_RENDITIONS as u64));
        }
        for attribute in element.attributes() {
            let attribute = attribute.map_err(|e| invalid(&e))?;
            if attribute.value.len() > MAX_LINE_BYTES {
                return Err(over("bytes in an XML attribute", MAX_LINE_BYTES as u64));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_budget_counts_segments_and_their_bytes() {
        let segment = |uri: &str| Segment {
            uri: uri.into(),
            ..Default::default()
        };
        let mut budget = SegmentBudget::new(2, 10_000);
        budget.take(&segment("a")).unwrap();
        assert!(budget.ensure_room(1).is_ok());
        assert!(budget.ensure_room(2).is_err());
        budget.take(&segment("b")).unwrap();
        assert!(matches!(
            budget.take(&segment("c")),
            Err(MediaError::Limit { .. })
        ));
        let mut small = SegmentBudget::new(10, 1_000);
        assert!(small.take(&segment(&"x".repeat(2_000))).is_err());
    }

    #[test]
    fn numbers_and_durations_table() {
        for (number, ok) in [
            (Some(0), true),
            (Some(MAX_SEGMENT_NUMBER), true),
            (Some(MAX_SEGMENT_NUMBER + 1), false),
            (None, false),
        ] {
            assert_eq!(segment_number(number).is_ok(), ok, "{number:?}");
        }
        for (seconds, ok) in [
            (2.0, true),
            (1e-3, true),
            (86_400.0, true),
            (0.0, false),
            (-1.0, false),
            (86_401.0, false),
            (f64::NAN, false),
            (f64::INFINITY, false),
        ] {
            assert_eq!(segment_seconds(seconds).is_ok(), ok, "{seconds}");
        }
    }

    #[test]
    fn texts_over_their_bounds_are_refused() {
        let deep = format!(
            "{}{}",
            "<a>".repeat(MAX_DEPTH + 1),
            "</a>".repeat(MAX_DEPTH + 1)
        );
        let periods = format!("<MPD>{}</MPD>", "<Period/>".repeat(MAX_PERIODS + 1));
        let sets = format!(
            "<MPD>{}</MPD>",
            "<AdaptationSet/>".repeat(MAX_RENDITIONS + 1)
        );
        let wide = format!("<MPD a=\"{}\"/>", "x".repeat(MAX_LINE_BYTES + 1));
        for bad in [deep, periods, sets, wide] {
            assert!(
                matches!(check_mpd_text(&bad), Err(MediaError::Limit { .. })),
                "{}",
                &bad[..40]
            );
        }
        assert!(check_mpd_text("<MPD><Period/></MPD>").is_ok());
        let variants = "#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n".repeat(MAX_RENDITIONS + 1);
        assert!(check_playlist_text(&format!("#EXTM3U\n{variants}")).is_err());
        let counted = check_playlist_text("#EXTM3U\n#EXTINF:2,\na\n#EXTINF:2.5\nb\n").unwrap();
        assert_eq!(counted.segments, 2);
        for bad in ["#EXTINF:1e39,", "#EXTINF:,", "#EXTINF:0,", "#EXTINF:NaN,"] {
            assert!(
                check_playlist_text(&format!("#EXTM3U\n{bad}\na\n")).is_err(),
                "{bad}"
            );
        }
    }
}
