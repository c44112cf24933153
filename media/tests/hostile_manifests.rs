//! Manifests written to hurt a player: a few kilobytes that ask for millions of segments,
//! absurd clocks and timescales on a dynamic MPD, numbers that overflow. Each must be
//! refused quickly with a one-line error, never expanded, wrapped or reported as a
//! presentation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use media::{MediaError, Segment, dash, hls};

mod support;
use support::mpd;

/// 2026-12-01, seconds since the epoch: the `now` of the dynamic MPDs below.
const NOW: f64 = 1_796_083_200.0;

fn one_line(e: &MediaError) -> String {
    let text = e.to_string();
    assert!(!text.contains('\n'), "not one line: {text:?}");
    assert!(text.len() < 400, "too long: {text:?}");
    text
}

/// Asserts that `parse` fails within seconds with a one-line error; a manifest parsed
/// shows its segments.
fn refused(what: &str, parse: impl FnOnce() -> media::Result<Vec<Segment>>) {
    let started = Instant::now();
    let got = parse();
    let took = started.elapsed();
    assert!(took.as_secs() < 5, "{what}: {took:?}");
    match got {
        Err(e) => println!("{what}: {}", one_line(&e)),
        Ok(segments) => {
            let first: Vec<(u64, f64)> = segments
                .iter()
                .take(3)
                .map(|s| (s.number, s.duration))
                .collect();
            panic!(
                "{what}: parsed, {} segments, first {first:?}",
                segments.len()
            );
        }
    }
}

/// Defect 5 of issue 14: 20 representations of a million segments each took the player
/// to 7.2 GB. The whole manifest shares one segment budget.
#[test]
fn twenty_representations_of_a_million_segments_are_refused() {
    let shapes = [
        // @duration over a long presentation.
        mpd(
            "static",
            "mediaPresentationDuration=\"PT1000000S\"",
            20,
            r#"<SegmentTemplate timescale="1" duration="1" media="$Number$.m4s"/>"#,
        ),
        // A timeline repeating one entry.
        mpd(
            "static",
            "mediaPresentationDuration=\"PT1000000S\"",
            20,
            r#"<SegmentTemplate timescale="1" media="$Time$.m4s"><SegmentTimeline><S t="0" d="1" r="999998"/></SegmentTimeline></SegmentTemplate>"#,
        ),
        // @r=-1 up to the end of the presentation.
        mpd(
            "static",
            "mediaPresentationDuration=\"PT1000000S\"",
            20,
            r#"<SegmentTemplate timescale="1" media="$Time$.m4s"><SegmentTimeline><S t="0" d="1" r="-1"/></SegmentTimeline></SegmentTemplate>"#,
        ),
    ];
    for text in shapes {
        assert!(text.len() < 5_000, "a small manifest: {} bytes", text.len());
        let e = dash::parse_mpd(&text, "http://h/m.mpd", NOW).unwrap_err();
        let line = one_line(&e);
        assert!(
            matches!(e, MediaError::Limit { .. }),
            "not the limit error: {line}"
        );
        assert!(line.contains("segments"), "{line}");
        println!("{line}");
    }
}

/// Defect 5 of issue 14: a dynamic MPD from year 1 with a 2^32-1 timescale asked for
/// segment 18446743558314476215 (a wrapped number) and played on.
#[test]
fn a_dynamic_mpd_with_absurd_clock_values_is_refused() {
    let live = |ast: &str, template: &str| {
        mpd(
            "dynamic",
            &format!("availabilityStartTime=\"{ast}\" minimumUpdatePeriod=\"PT2S\""),
            2,
            template,
        )
    };
    let recent = |template: &str| live("2026-11-30T00:00:00Z", template);
    let ok_template = r#"<SegmentTemplate timescale="90000" duration="180000" startNumber="1" media="$Number$.m4s"/>"#;
    // The reference: a sane live MPD parses, its newest segment numbered by the clock.
    let sane = dash::parse_mpd(&recent(ok_template), "http://h/m.mpd", NOW).unwrap();
    let newest = sane.renditions[0].segments.last().unwrap().number;
    assert_eq!(newest, 86_400 / 2 + 1 - 1, "{newest}");
    let cases = [
        ("year 1", live("0001-01-01T00:00:00Z", ok_template)),
        ("year 9999", live("9999-01-01T00:00:00Z", ok_template)),
        (
            "timescale 2^32-1, duration 1",
            recent(
                r#"<SegmentTemplate timescale="4294967295" duration="1" media="$Number$.m4s"/>"#,
            ),
        ),
        (
            "the issue's combination",
            live(
                "0001-01-01T00:00:00Z",
                r#"<SegmentTemplate timescale="4294967295" duration="1" startNumber="4294967295" media="$Number$.m4s"/>"#,
            ),
        ),
        (
            "startNumber past xs:unsignedInt",
            recent(
                r#"<SegmentTemplate timescale="90000" duration="180000" startNumber="18446744073709551615" media="$Number$.m4s"/>"#,
            ),
        ),
        (
            "timescale past xs:unsignedInt",
            recent(
                r#"<SegmentTemplate timescale="18446744073709551615" duration="180000" media="$Number$.m4s"/>"#,
            ),
        ),
        (
            "timescale 0",
            recent(r#"<SegmentTemplate timescale="0" duration="180000" media="$Number$.m4s"/>"#),
        ),
        (
            "duration 0",
            recent(r#"<SegmentTemplate timescale="90000" duration="0" media="$Number$.m4s"/>"#),
        ),
        (
            "a segment of a century",
            recent(
                r#"<SegmentTemplate timescale="1" duration="3155760000" media="$Number$.m4s"/>"#,
            ),
        ),
        (
            "timeline numbers that overflow",
            recent(
                r#"<SegmentTemplate timescale="1" startNumber="4294967295" media="$Number$.m4s"><SegmentTimeline><S t="18446744073709551610" d="4" r="3"/></SegmentTimeline></SegmentTemplate>"#,
            ),
        ),
    ];
    for (what, text) in cases {
        refused(what, || {
            dash::parse_mpd(&text, "http://h/m.mpd", NOW)
                .map(|mut p| p.renditions.remove(0).segments)
        });
    }
}

/// The same bounds for HLS: a media playlist's segment count, line length, durations,
/// byte ranges and media sequence.
#[test]
fn hostile_media_playlists_are_refused() {
    let head = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n";
    let many: String = std::iter::once(head.to_string())
        .chain(std::iter::repeat_n("#EXTINF:2,\na\n".to_string(), 400_000))
        .collect();
    let long_line = format!("{head}#EXTINF:2,\n{}\n", "a".repeat(200_000));
    let cases = [
        ("400,000 segments", many),
        ("a 200 kB line", long_line),
        (
            "media sequence overflow",
            format!(
                "{head}#EXT-X-MEDIA-SEQUENCE:18446744073709551615\n#EXTINF:2,\na\n#EXTINF:2,\nb\n"
            ),
        ),
        (
            "a target duration of a century",
            "#EXTM3U\n#EXT-X-TARGETDURATION:3155760000\n#EXTINF:2,\na\n".to_string(),
        ),
        (
            "a segment of a century",
            format!("{head}#EXTINF:3155760000,\na\n"),
        ),
        ("a segment of 0 s", format!("{head}#EXTINF:0,\na\n")),
        ("an infinite segment", format!("{head}#EXTINF:1e39,\na\n")),
        (
            "a byte range past u64",
            format!("{head}#EXTINF:2,\n#EXT-X-BYTERANGE:10@18446744073709551610\na\n"),
        ),
        (
            "a date before the epoch",
            format!("{head}#EXT-X-PROGRAM-DATE-TIME:0001-01-01T00:00:00Z\n#EXTINF:2,\na\n"),
        ),
    ];
    for (what, text) in cases {
        refused(what, || {
            hls::parse_media_playlist(&text, "http://h/a/index.m3u8").map(|info| info.segments)
        });
    }
}
