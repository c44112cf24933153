//! Manifests written to hurt a player: a few kilobytes that ask for millions of segments,
//! absurd clocks and timescales on a dynamic MPD, numbers that overflow. Each must be
//! refused quickly with a one-line error, never expanded, wrapped or reported as a
//! presentation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use media::{MediaError, dash, hls};

/// 2026-12-01, seconds since the epoch: the `now` of the dynamic MPDs below.
const NOW: f64 = 1_796_083_200.0;

fn one_line(e: &MediaError) -> String {
    let text = e.to_string();
    assert!(!text.contains('\n'), "not one line: {text:?}");
    assert!(text.len() < 400, "too long: {text:?}");
    text
}

/// A static MPD of `representations` video representations, each with `addressing`.
fn mpd(kind: &str, top: &str, representations: usize, addressing: &str) -> String {
    let reps: String = (0..representations)
        .map(|i| {
            format!(
                "<Representation id=\"r{i}\" bandwidth=\"{}\" codecs=\"avc1.64001f\">{addressing}</Representation>\n",
                100_000 * (i + 1)
            )
        })
        .collect();
    format!(
        r#"<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="{kind}" {top} minBufferTime="PT2S" profiles="urn:mpeg:dash:profile:isoff-live:2011">
 <Period id="0" start="PT0S">
  <AdaptationSet contentType="video" mimeType="video/mp4">
{reps}  </AdaptationSet>
 </Period>
</MPD>"#
    )
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
    let ok_template = r#"<SegmentTemplate timescale="90000" duration="180000" startNumber="1" media="$Number$.m4s"/>"#;
    // The reference: a sane live MPD parses, its newest segment numbered by the clock.
    let sane = dash::parse_mpd(
        &live("2026-11-30T00:00:00Z", ok_template),
        "http://h/m.mpd",
        NOW,
    )
    .unwrap();
    let newest = sane.renditions[0].segments.last().unwrap().number;
    assert_eq!(newest, 86_400 / 2 + 1 - 1, "{newest}");
    let cases = [
        ("year 1", live("0001-01-01T00:00:00Z", ok_template)),
        ("year 9999", live("9999-01-01T00:00:00Z", ok_template)),
        (
            "timescale 2^32-1, duration 1",
            live(
                "2026-11-30T00:00:00Z",
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
            live(
                "2026-11-30T00:00:00Z",
                r#"<SegmentTemplate timescale="90000" duration="180000" startNumber="18446744073709551615" media="$Number$.m4s"/>"#,
            ),
        ),
        (
            "timescale past xs:unsignedInt",
            live(
                "2026-11-30T00:00:00Z",
                r#"<SegmentTemplate timescale="18446744073709551615" duration="180000" media="$Number$.m4s"/>"#,
            ),
        ),
        (
            "timescale 0",
            live(
                "2026-11-30T00:00:00Z",
                r#"<SegmentTemplate timescale="0" duration="180000" media="$Number$.m4s"/>"#,
            ),
        ),
        (
            "duration 0",
            live(
                "2026-11-30T00:00:00Z",
                r#"<SegmentTemplate timescale="90000" duration="0" media="$Number$.m4s"/>"#,
            ),
        ),
        (
            "a segment of a century",
            live(
                "2026-11-30T00:00:00Z",
                r#"<SegmentTemplate timescale="1" duration="3155760000" media="$Number$.m4s"/>"#,
            ),
        ),
        (
            "timeline numbers that overflow",
            live(
                "2026-11-30T00:00:00Z",
                r#"<SegmentTemplate timescale="1" startNumber="4294967295" media="$Number$.m4s"><SegmentTimeline><S t="18446744073709551610" d="4" r="3"/></SegmentTimeline></SegmentTemplate>"#,
            ),
        ),
    ];
    for (what, text) in cases {
        let started = std::time::Instant::now();
        let got = dash::parse_mpd(&text, "http://h/m.mpd", NOW);
        assert!(
            started.elapsed().as_secs() < 5,
            "{what}: {:?}",
            started.elapsed()
        );
        match got {
            Err(e) => println!("{what}: {}", one_line(&e)),
            Ok(p) => {
                let numbers: Vec<u64> = p.renditions[0]
                    .segments
                    .iter()
                    .map(|s| s.number)
                    .take(3)
                    .collect();
                panic!(
                    "{what}: parsed, {} segments, numbers {numbers:?}",
                    p.renditions[0].segments.len()
                );
            }
        }
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
        let started = std::time::Instant::now();
        let got = hls::parse_media_playlist(&text, "http://h/a/index.m3u8");
        assert!(
            started.elapsed().as_secs() < 5,
            "{what}: {:?}",
            started.elapsed()
        );
        match got {
            Err(e) => println!("{what}: {}", one_line(&e)),
            Ok(info) => panic!(
                "{what}: parsed, {} segments, first {:?}",
                info.segments.len(),
                info.segments.first().map(|s| (s.number, s.duration))
            ),
        }
    }
}
