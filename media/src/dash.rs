//! DASH (ISO/IEC 23009-1): the presentation model written as an MPD, and standard MPDs parsed
//! back, their segments addressed by `SegmentTemplate` (`$Number$`, or `$Time$` with a
//! `SegmentTimeline`), `SegmentList` or `SegmentBase` ([`crate::dash_segments`]).

use std::time::Duration;

use dash_mpd_core::{
    AdaptationSet, BaseURL, MPD, Period, Representation, S, SegmentTemplate, SegmentTimeline,
    UTCTiming,
};

pub use crate::dash_segments::expand_template;
use crate::dash_segments::{Context, addressing};
use crate::limits::{self, SegmentBudget};
use crate::model::resolve_uri;
use crate::{
    Codecs, Container, Delivery, MediaError, MediaType, Pathway, Presentation, PresentationKind,
    Rendition, Result, Segment, SteeringServer,
};

/// Media timescale used in our templates: 90 kHz, the MPEG clock; every frame rate we
/// encode divides it.
pub const TIMESCALE: u64 = 90_000;
const PROFILES: &str = "urn:mpeg:dash:profile:isoff-live:2011";

/// `SegmentTimeline` for `segments`: runs of equal durations folded with `@r`.
fn timeline(segments: &[Segment]) -> SegmentTimeline {
    let mut entries: Vec<S> = Vec::new();
    for s in segments {
        let t = (s.start * TIMESCALE as f64).round() as u64;
        let d = (s.duration * TIMESCALE as f64).round() as u64;
        match entries.last_mut() {
            Some(last) if last.d == d => last.r = Some(last.r.unwrap_or(0) + 1),
            _ => entries.push(S {
                t: Some(t),
                d,
                ..Default::default()
            }),
        }
    }
    SegmentTimeline { segments: entries }
}

/// `SegmentTemplate` of a rendition laid out as `media` writes it (`{id}/init.mp4`,
/// `{id}/{n}.m4s`), with an explicit timeline: with only `@duration`, ffmpeg 5.1 asks for one
/// segment past the end (the DASH-IF guidelines allow both together).
fn template(rendition: &Rendition) -> SegmentTemplate {
    SegmentTemplate {
        initialization: Some("$RepresentationID$/init.mp4".into()),
        media: Some("$RepresentationID$/$Number$.m4s".into()),
        startNumber: Some(rendition.segments.first().map_or(1, |s| s.number)),
        timescale: Some(TIMESCALE),
        SegmentTimeline: Some(timeline(&rendition.segments)),
        ..Default::default()
    }
}

fn frame_rate_attr(fps: f64) -> String {
    if (fps - fps.round()).abs() < 1e-9 {
        format!("{}", fps.round() as u64)
    } else {
        // NTSC rates: 29.97 → 30000/1001.
        format!("{}/1001", (fps * 1001.0).round() as u64)
    }
}

fn adaptation_set(id: usize, media_type: MediaType, renditions: &[&Rendition]) -> AdaptationSet {
    let representations = renditions
        .iter()
        .map(|r| Representation {
            id: Some(r.id.clone()),
            bandwidth: Some(r.bandwidth_peak),
            width: r.width.map(u64::from),
            height: r.height.map(u64::from),
            frameRate: r.frame_rate.map(frame_rate_attr),
            audioSamplingRate: r.sample_rate.map(|s| s.to_string()),
            codecs: Some(r.codecs.to_string()),
            SegmentTemplate: Some(template(r)),
            ..Default::default()
        })
        .collect();
    let (content_type, mime) = match media_type {
        MediaType::Video => ("video", "video/mp4"),
        MediaType::Audio => ("audio", "audio/mp4"),
    };
    AdaptationSet {
        id: Some(id.to_string()),
        contentType: Some(content_type.into()),
        mimeType: Some(mime.into()),
        segmentAlignment: Some(true),
        startWithSAP: Some(1),
        maxWidth: renditions
            .iter()
            .filter_map(|r| r.width)
            .max()
            .map(u64::from),
        maxHeight: renditions
            .iter()
            .filter_map(|r| r.height)
            .max()
            .map(u64::from),
        representations,
        ..Default::default()
    }
}

/// One AdaptationSet per media type, video first.
fn adaptation_sets(presentation: &Presentation) -> Vec<AdaptationSet> {
    let mut adaptations = Vec::new();
    for media_type in [MediaType::Video, MediaType::Audio] {
        let renditions: Vec<&Rendition> = presentation
            .renditions
            .iter()
            .filter(|r| r.media_type == media_type)
            .collect();
        if !renditions.is_empty() {
            adaptations.push(adaptation_set(adaptations.len(), media_type, &renditions));
        }
    }
    adaptations
}

/// The static MPD of a VOD presentation, with its XML declaration.
pub fn write_static_mpd(presentation: &Presentation) -> Result<String> {
    let duration = Duration::from_secs_f64(presentation.duration());
    let adaptations = adaptation_sets(presentation);
    let max_segment = presentation
        .renditions
        .iter()
        .map(Rendition::max_segment_duration)
        .fold(0.0, f64::max);
    let mpd = MPD {
        xmlns: Some("urn:mpeg:dash:schema:mpd:2011".into()),
        mpdtype: Some("static".into()),
        profiles: Some(PROFILES.into()),
        mediaPresentationDuration: Some(duration),
        minBufferTime: Some(Duration::from_secs_f64(max_segment.max(1.0))),
        maxSegmentDuration: Some(Duration::from_secs_f64(max_segment)),
        periods: vec![Period {
            id: Some("0".into()),
            start: Some(Duration::ZERO),
            adaptations,
            ..Default::default()
        }],
        ..Default::default()
    };
    Ok(finish(mpd, &presentation.delivery))
}

/// The live parameters of a dynamic MPD (ISO/IEC 23009-1 §5.3.1.2), times in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct DynamicMpd {
    /// Unix time of live timeline zero.
    pub availability_start: f64,
    /// Unix time this MPD was generated.
    pub publish_time: f64,
    pub minimum_update_period: f64,
    pub time_shift_buffer_depth: f64,
    pub suggested_presentation_delay: f64,
    /// Where clients read the server's clock (`urn:mpeg:dash:utc:http-iso:2014`).
    pub utc_timing_url: String,
}

fn xs_datetime(unix: f64) -> Result<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp_millis((unix * 1000.0).round() as i64)
        .ok_or_else(|| MediaError::Dash(format!("time {unix} out of range")))
}

/// The dynamic MPD of a live window (`presentation` as made by
/// [`crate::live::LiveClock::window`]), with its XML declaration.
pub fn write_dynamic_mpd(presentation: &Presentation, live: &DynamicMpd) -> Result<String> {
    let secs = Duration::from_secs_f64;
    let mpd = MPD {
        xmlns: Some("urn:mpeg:dash:schema:mpd:2011".into()),
        mpdtype: Some("dynamic".into()),
        profiles: Some(PROFILES.into()),
        availabilityStartTime: Some(xs_datetime(live.availability_start)?),
        publishTime: Some(xs_datetime(live.publish_time)?),
        minimumUpdatePeriod: Some(secs(live.minimum_update_period)),
        timeShiftBufferDepth: Some(secs(live.time_shift_buffer_depth)),
        suggestedPresentationDelay: Some(secs(live.suggested_presentation_delay)),
        minBufferTime: Some(secs(live.minimum_update_period.max(1.0))),
        periods: vec![Period {
            id: Some("0".into()),
            start: Some(Duration::ZERO),
            adaptations: adaptation_sets(presentation),
            ..Default::default()
        }],
        UTCTiming: vec![UTCTiming {
            schemeIdUri: "urn:mpeg:dash:utc:http-iso:2014".into(),
            value: Some(live.utc_timing_url.clone()),
            ..Default::default()
        }],
        ..Default::default()
    };
    Ok(finish(mpd, &presentation.delivery))
}

/// `mpd` with the presentation's pathways as MPD-level `BaseURL@serviceLocation` and its
/// steering server as `ContentSteering` (DASH-IF CTS 00100 §4), serialised with its XML
/// declaration.
fn finish(mut mpd: MPD, delivery: &Delivery) -> String {
    mpd.base_url = delivery
        .pathways
        .iter()
        .map(|p| BaseURL {
            // An unnamed pathway (one base, no steering) has no service location.
            serviceLocation: (!p.id.is_empty()).then(|| p.id.clone()),
            base: p.base.clone(),
            ..Default::default()
        })
        .collect();
    let text = with_declaration(&mpd);
    let Some(steering) = &delivery.steering else {
        return text;
    };
    // dash-mpd-core has no MPD-level ContentSteering: it is written here, before the first
    // Period as the schema orders it.
    match text.find("<Period") {
        Some(at) => format!(
            "{}{}{}",
            &text[..at],
            content_steering_element(steering),
            &text[at..]
        ),
        None => text,
    }
}

/// The MPD-level `ContentSteering` element naming `steering`'s server (DASH-IF CTS 00100
/// §4).
fn content_steering_element(steering: &SteeringServer) -> String {
    let mut element = String::from("<ContentSteering");
    if let Some(id) = &steering.default_pathway {
        element.push_str(&format!(
            " defaultServiceLocation=\"{}\"",
            quick_xml::escape::escape(id.as_str())
        ));
    }
    element.push_str(&format!(
        " queryBeforeStart=\"{}\" clientRequirement=\"false\">{}</ContentSteering>",
        steering.query_before_start,
        quick_xml::escape::escape(steering.uri.as_str())
    ));
    element
}

/// Byte spans of an MPD's text that [`steer_mpd`] edits.
#[derive(Debug, Default)]
struct MpdLayout {
    /// Just past the `MPD` start tag.
    after_mpd_tag: usize,
    /// Just past the last `ProgramInformation` child of MPD, if any.
    after_program_information: Option<usize>,
    /// MPD-level `BaseURL` elements (start, end) and their text.
    base_urls: Vec<(usize, usize, String)>,
    /// MPD-level `ContentSteering` elements (start, end).
    steering: Vec<(usize, usize)>,
    /// Where the first `Period` starts.
    first_period: Option<usize>,
}

fn mpd_layout(text: &str) -> Result<MpdLayout> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut layout = MpdLayout::default();
    let mut depth = 0usize;
    let position = |reader: &quick_xml::Reader<&[u8]>| {
        usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX)
    };
    loop {
        let start = position(&reader);
        match reader.read_event().map_err(dash_error)? {
            Event::Start(e) if depth == 1 => {
                // MPD's children: the ones edited are read whole here, the rest entered.
                match e.local_name().as_ref() {
                    "BaseURL" => {
                        let raw = reader.read_text(e.name()).map_err(dash_error)?;
                        let url = quick_xml::escape::unescape(&raw).map_err(dash_error)?;
                        layout
                            .base_urls
                            .push((start, position(&reader), url.into_owned()));
                    }
                    "ContentSteering" => {
                        reader.read_to_end(e.name()).map_err(dash_error)?;
                        layout.steering.push((start, position(&reader)));
                    }
                    "ProgramInformation" => {
                        reader.read_to_end(e.name()).map_err(dash_error)?;
                        layout.after_program_information = Some(position(&reader));
                    }
                    name => {
                        if name == "Period" && layout.first_period.is_none() {
                            layout.first_period = Some(start);
                        }
                        depth += 1;
                    }
                }
            }
            Event::Start(_) => {
                if depth == 0 {
                    layout.after_mpd_tag = position(&reader);
                }
                depth += 1;
            }
            Event::Empty(e) if depth == 1 => {
                let end = position(&reader);
                match e.local_name().as_ref() {
                    "BaseURL" => layout.base_urls.push((start, end, String::new())),
                    "ContentSteering" => layout.steering.push((start, end)),
                    "ProgramInformation" => layout.after_program_information = Some(end),
                    "Period" if layout.first_period.is_none() => layout.first_period = Some(start),
                    _ => {}
                }
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Eof => break,
            _ => {}
        }
    }
    if layout.after_mpd_tag == 0 {
        return Err(MediaError::Dash("no MPD element".into()));
    }
    Ok(layout)
}

/// An MPD someone else wrote (`text`, served as `manifest`: its path under each pathway's
/// base) edited for content steering, every other byte as it was: one MPD-level
/// `BaseURL serviceLocation` per pathway of `delivery` (where the MPD's own first
/// MPD-level `BaseURL`, or the MPD's folder, is on that pathway; deeper `BaseURL`s and
/// templates resolve against it as before), in place of the MPD-level `BaseURL`s it had,
/// and a `ContentSteering` element naming the steering server in place of any it had
/// (DASH-IF CTS 00100).
pub fn steer_mpd(text: &str, manifest: &str, delivery: &Delivery) -> Result<String> {
    dash_mpd_core::parse(text).map_err(dash_error)?;
    let layout = mpd_layout(text)?;
    let own_base = layout
        .base_urls
        .first()
        .map_or("./", |(_, _, url)| url.trim());
    let mut base_urls = String::new();
    for pathway in &delivery.pathways {
        let url = resolve_uri(&resolve_uri(&pathway.base, manifest)?, own_base)?;
        base_urls.push_str(&format!(
            "<BaseURL serviceLocation=\"{}\">{}</BaseURL>",
            quick_xml::escape::escape(pathway.id.as_str()),
            quick_xml::escape::escape(url.as_str())
        ));
    }
    let base_at = layout
        .base_urls
        .first()
        .map(|(start, ..)| *start)
        .or(layout.after_program_information)
        .unwrap_or(layout.after_mpd_tag);
    // Insertions (at, text) and removals (from, to), applied in order of position.
    let mut edits: Vec<(usize, usize, String)> = vec![(base_at, base_at, base_urls)];
    if let Some(steering) = &delivery.steering {
        let at = layout.first_period.unwrap_or(text.len());
        edits.push((at, at, content_steering_element(steering)));
    }
    edits.extend(
        layout
            .base_urls
            .iter()
            .map(|(a, b, _)| (*a, *b, String::new())),
    );
    edits.extend(layout.steering.iter().map(|(a, b)| (*a, *b, String::new())));
    edits.sort_by_key(|(from, to, _)| (*from, *to));
    let mut out = String::with_capacity(text.len() + 512);
    let mut at = 0;
    for (from, to, insert) in edits {
        let from = from.max(at);
        out.push_str(
            text.get(at..from)
                .ok_or_else(|| MediaError::Dash("bad offsets".into()))?,
        );
        out.push_str(&insert);
        at = to.max(from);
    }
    out.push_str(&text[at..]);
    Ok(out)
}

/// An MPD serialised with its XML declaration.
pub fn with_declaration(mpd: &MPD) -> String {
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{mpd}\n")
}

fn dash_error(e: impl std::fmt::Display) -> MediaError {
    MediaError::Dash(crate::one_line(e))
}

fn join_base(base: &str, urls: &[BaseURL]) -> Result<String> {
    match urls.first() {
        Some(b) => resolve_uri(base, b.base.trim()),
        None => Ok(base.to_string()),
    }
}

/// MPEG-TS for `video/mp2t` representations (ISO/IEC 23009-1 §7.4), fMP4 otherwise.
fn container_of(set: &AdaptationSet, rep: &Representation) -> Container {
    let mime = rep.mimeType.as_deref().or(set.mimeType.as_deref());
    if mime.is_some_and(|m| m.contains("mp2t")) {
        Container::MpegTs
    } else {
        Container::Fmp4
    }
}

fn media_type_of(set: &AdaptationSet, rep: &Representation, codecs: &Codecs) -> MediaType {
    let hints = [
        rep.contentType.as_deref(),
        rep.mimeType.as_deref(),
        set.contentType.as_deref(),
        set.mimeType.as_deref(),
    ];
    if hints.iter().flatten().any(|h| h.starts_with("audio")) {
        MediaType::Audio
    } else if hints.iter().flatten().any(|h| h.starts_with("video")) || codecs.has_video() {
        MediaType::Video
    } else {
        MediaType::Audio
    }
}

/// Parses an MPD fetched from `base` into the model. `now` (seconds since the epoch) places
/// the segments of a dynamic MPD that has no timeline; static MPDs ignore it. Its segments
/// come out of a [`SegmentBudget`] of their own.
pub fn parse_mpd(text: &str, base: &str, now: f64) -> Result<Presentation> {
    parse_mpd_in(text, base, now, &mut SegmentBudget::default())
}

/// [`parse_mpd`] within `budget`, which the segments of every representation share
/// (and which the caller may go on using, for the segment indexes it reads next).
pub fn parse_mpd_in(
    text: &str,
    base: &str,
    now: f64,
    budget: &mut SegmentBudget,
) -> Result<Presentation> {
    limits::check_mpd_text(text)?;
    let mpd = dash_mpd_core::parse(text).map_err(dash_error)?;
    let dynamic = mpd.mpdtype.as_deref() == Some("dynamic");
    let availability_start = mpd
        .availabilityStartTime
        .map(|t| availability_start_of(t.timestamp_millis() as f64 / 1000.0, now))
        .transpose()?;
    let kind = if dynamic {
        PresentationKind::Live {
            availability_start,
            reload_interval: mpd.minimumUpdatePeriod.map_or(2.0, |d| d.as_secs_f64()),
        }
    } else {
        PresentationKind::Vod
    };
    let period = mpd
        .periods
        .first()
        .ok_or_else(|| MediaError::Dash("MPD has no Period".into()))?;
    let period_start = period.start.map_or(0.0, |d| d.as_secs_f64());
    if !period_start.is_finite() {
        return Err(MediaError::Dash(format!("Period@start {period_start}")));
    }
    let presentation_duration = period
        .duration
        .or(mpd.mediaPresentationDuration)
        .map(|d| d.as_secs_f64());
    let delivery = delivery_of(text, &mpd, base)?;
    let mpd_base = match delivery.default_pathway() {
        Some(p) => p.base.clone(),
        None => join_base(base, &mpd.base_url)?,
    };
    let period_base = join_base(&mpd_base, &period.BaseURL)?;
    let mut renditions = Vec::new();
    for set in &period.adaptations {
        let set_base = join_base(&period_base, &set.BaseURL)?;
        for rep in &set.representations {
            let rep_base = join_base(&set_base, &rep.BaseURL)?;
            let id = rep
                .id
                .clone()
                .unwrap_or_else(|| format!("r{}", renditions.len()));
            let bandwidth = rep.bandwidth.unwrap_or(0);
            let codecs: Codecs = rep
                .codecs
                .as_deref()
                .or(set.codecs.as_deref())
                .unwrap_or("")
                .parse()?;
            let addressing = addressing(
                rep,
                set,
                period,
                &Context {
                    id: &id,
                    bandwidth,
                    base: &rep_base,
                    period_start,
                    presentation_duration,
                    live_now: dynamic
                        .then(|| now - availability_start.unwrap_or(0.0) - period_start),
                },
                budget,
            )?;
            let frame_rate = rep
                .frameRate
                .as_deref()
                .or(set.frameRate.as_deref())
                .and_then(parse_frame_rate);
            renditions.push(Rendition {
                media_type: media_type_of(set, rep, &codecs),
                id,
                bandwidth_peak: bandwidth,
                bandwidth_avg: bandwidth,
                width: rep.width.or(set.width).map(|w| w as u32),
                height: rep.height.or(set.height).map(|h| h as u32),
                frame_rate,
                codecs,
                sample_rate: rep
                    .audioSamplingRate
                    .as_deref()
                    .or(set.audioSamplingRate.as_deref())
                    .and_then(|s| s.parse().ok()),
                init_uri: addressing.init_uri,
                init_range: addressing.init_range,
                container: container_of(set, rep),
                playlist_uri: None,
                segment_index: addressing.segment_index,
                segments: addressing.segments,
            });
        }
    }
    if renditions.is_empty() {
        return Err(MediaError::Dash("MPD has no representations".into()));
    }
    let mut presentation = Presentation {
        kind,
        renditions,
        delivery,
    };
    presentation.sort();
    Ok(presentation)
}

/// `availabilityStartTime` (Unix seconds), when it is not absurd for a stream read at `now`:
/// from the Unix epoch (what many live packagers write for an always-on channel) to
/// [`limits::MAX_FUTURE_START_SECONDS`] ahead of now. Year 1 would put the live edge at
/// a segment number no counter holds.
fn availability_start_of(unix: f64, now: f64) -> Result<f64> {
    let latest = now + limits::MAX_FUTURE_START_SECONDS;
    if (0.0..=latest).contains(&unix) {
        Ok(unix)
    } else {
        Err(MediaError::Dash(format!(
            "availabilityStartTime {} is not between 1970-01-01 and 30 days from now",
            xs_datetime(unix).map_or_else(|_| format!("{unix} s"), |t| t.to_rfc3339())
        )))
    }
}

/// The pathways (MPD-level `BaseURL`s, named by `@serviceLocation` or else by their URL)
/// and steering server of an MPD; empty unless it has several base URLs or steering.
fn delivery_of(text: &str, mpd: &MPD, base: &str) -> Result<Delivery> {
    let steering = content_steering(text)?;
    if mpd.base_url.len() < 2 && steering.is_none() {
        return Ok(Delivery::default());
    }
    let pathways = mpd
        .base_url
        .iter()
        .map(|b| {
            let url = b.base.trim();
            Ok(Pathway {
                id: b.serviceLocation.clone().unwrap_or_else(|| url.to_string()),
                base: resolve_uri(base, url)?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Delivery { pathways, steering })
}

/// The MPD-level `ContentSteering` element (dash-mpd-core does not model it): its text is
/// the steering server URL.
fn content_steering(text: &str) -> Result<Option<SteeringServer>> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut depth = 0usize;
    loop {
        match reader.read_event().map_err(dash_error)? {
            // Only a child of MPD (depth 1); ServiceDescription may hold another one.
            Event::Start(e) if depth == 1 && e.local_name().as_ref() == "ContentSteering" => {
                let attribute = |name: &str| -> Result<Option<String>> {
                    match e.try_get_attribute(name).map_err(dash_error)? {
                        Some(a) => Ok(Some(
                            quick_xml::escape::unescape(&a.value)
                                .map_err(dash_error)?
                                .into_owned(),
                        )),
                        None => Ok(None),
                    }
                };
                let default_pathway = attribute("defaultServiceLocation")?;
                let query_before_start = attribute("queryBeforeStart")?.as_deref() == Some("true");
                let raw = reader.read_text(e.name()).map_err(dash_error)?;
                let uri = quick_xml::escape::unescape(&raw).map_err(dash_error)?;
                let uri = uri.trim();
                if uri.is_empty() {
                    return Err(MediaError::Dash("ContentSteering has no server URL".into()));
                }
                return Ok(Some(SteeringServer {
                    uri: uri.to_string(),
                    default_pathway,
                    query_before_start,
                }));
            }
            Event::Start(_) => depth += 1,
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Eof => return Ok(None),
            _ => {}
        }
    }
}

fn parse_frame_rate(s: &str) -> Option<f64> {
    match s.split_once('/') {
        Some((n, d)) => {
            let (n, d): (f64, f64) = (n.parse().ok()?, d.parse().ok()?);
            (d > 0.0).then(|| n / d)
        }
        None => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ByteRange;
    use crate::model::tests::{sample_presentation, two_edges};

    #[test]
    fn service_locations_and_steering_round_trip() {
        let mut p = sample_presentation();
        p.delivery = two_edges("/steering/dash?a=1&b=2", true);
        let text = write_static_mpd(&p).unwrap();
        assert!(
            text.contains(
                "<BaseURL serviceLocation=\"edge-1\">http://10.0.0.2:8081/vod/sample/</BaseURL>"
            ),
            "{text}"
        );
        assert!(
            text.contains("queryBeforeStart=\"true\" clientRequirement=\"false\">/steering/dash?a=1&amp;b=2</ContentSteering><Period"),
            "{text}"
        );
        let parsed = parse_mpd(&text, "http://origin.test/vod/sample/manifest.mpd", 0.0).unwrap();
        assert_eq!(parsed.delivery, p.delivery);
        // Segments resolve against the default service location.
        let first = &parsed.renditions[0].segments[0].uri;
        assert!(
            first.starts_with("http://10.0.0.3:8081/vod/sample/"),
            "{first}"
        );
        let moved = parsed.delivery.rebase(first, "edge-2", "edge-1").unwrap();
        assert!(
            moved.starts_with("http://10.0.0.2:8081/vod/sample/"),
            "{moved}"
        );
        // Without steering or pathways nothing is added.
        let plain = write_static_mpd(&sample_presentation()).unwrap();
        assert!(!plain.contains("ContentSteering") && !plain.contains("BaseURL"));
        let parsed = parse_mpd(&plain, "http://origin.test/m.mpd", 0.0).unwrap();
        assert!(parsed.delivery.is_empty());
    }

    #[test]
    fn static_mpd_has_the_required_parts() {
        let text = write_static_mpd(&sample_presentation()).unwrap();
        assert!(text.starts_with("<?xml version=\"1.0\""));
        for needle in [
            "type=\"static\"",
            "profiles=\"urn:mpeg:dash:profile:isoff-live:2011\"",
            "mediaPresentationDuration=",
            "minBufferTime=",
            "segmentAlignment=\"true\"",
            "startWithSAP=\"1\"",
            "media=\"$RepresentationID$/$Number$.m4s\"",
            "initialization=\"$RepresentationID$/init.mp4\"",
            "<SegmentTimeline>",
            "frameRate=\"30\"",
            "codecs=\"avc1.42c01e\"",
        ] {
            assert!(text.contains(needle), "{needle} missing in\n{text}");
        }
        // The crate's own parser reads it.
        dash_mpd_core::parse(&text).unwrap();
    }

    #[test]
    fn our_mpd_round_trips_through_the_model() {
        let p = sample_presentation();
        let text = write_static_mpd(&p).unwrap();
        let parsed = parse_mpd(&text, "http://h/vod/sample/manifest.mpd", 0.0).unwrap();
        assert_eq!(parsed.kind, PresentationKind::Vod);
        assert_eq!(parsed.renditions.len(), p.renditions.len());
        for (ours, theirs) in p.renditions.iter().zip(&parsed.renditions) {
            assert_eq!(ours.id, theirs.id);
            assert_eq!(ours.bandwidth_peak, theirs.bandwidth_peak);
            assert_eq!(ours.codecs, theirs.codecs);
            assert_eq!(ours.frame_rate, theirs.frame_rate);
            assert_eq!(
                theirs.init_uri.as_deref(),
                Some(format!("http://h/vod/sample/{}/init.mp4", ours.id).as_str())
            );
            assert_eq!(ours.segments.len(), theirs.segments.len());
            for (a, b) in ours.segments.iter().zip(&theirs.segments) {
                assert_eq!(a.number, b.number);
                assert!((a.start - b.start).abs() < 1e-6);
                assert!((a.duration - b.duration).abs() < 1e-6);
                assert_eq!(b.uri, format!("http://h/vod/sample/{}/{}", ours.id, a.uri));
            }
        }
    }

    #[test]
    fn parses_time_based_and_duration_based_templates() {
        let mpd = r#"<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT9S" minBufferTime="PT2S" profiles="urn:mpeg:dash:profile:isoff-live:2011">
 <BaseURL>https://cdn.test/content/</BaseURL>
 <Period>
  <AdaptationSet contentType="video" mimeType="video/mp4">
   <SegmentTemplate timescale="1000" initialization="$RepresentationID$-init.mp4" media="$RepresentationID$-$Time$.m4s">
    <SegmentTimeline><S t="0" d="4000" r="1"/><S d="1000"/></SegmentTimeline>
   </SegmentTemplate>
   <Representation id="v1" bandwidth="1000000" width="1280" height="720" codecs="avc1.64001f" frameRate="30000/1001"/>
  </AdaptationSet>
  <AdaptationSet mimeType="audio/mp4">
   <Representation id="a1" bandwidth="128000" codecs="mp4a.40.2" audioSamplingRate="48000">
    <SegmentTemplate timescale="48000" duration="96000" startNumber="5" initialization="a/init.mp4" media="a/$Number%05d$.m4s"/>
   </Representation>
  </AdaptationSet>
 </Period>
</MPD>"#;
        let p = parse_mpd(mpd, "https://origin.test/x/manifest.mpd", 0.0).unwrap();
        let v = p.video().next().unwrap();
        let uris: Vec<&str> = v.segments.iter().map(|s| s.uri.as_str()).collect();
        assert_eq!(
            uris,
            [
                "https://cdn.test/content/v1-0.m4s",
                "https://cdn.test/content/v1-4000.m4s",
                "https://cdn.test/content/v1-8000.m4s"
            ]
        );
        assert!((v.frame_rate.unwrap() - 29.97).abs() < 0.01);
        let a = p.audio().next().unwrap();
        assert_eq!(a.segments.len(), 5, "ceil(9 s / 2 s)");
        assert_eq!(a.segments[0].uri, "https://cdn.test/content/a/00005.m4s");
        assert_eq!(a.sample_rate, Some(48_000));
    }

    /// ffmpeg's single-file MPD of one video representation, with `addressing` in place of
    /// its segment information.
    fn single_file_mpd(addressing: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" type="static" mediaPresentationDuration="PT10.0S" minBufferTime="PT4.0S">
 <Period id="0" start="PT0.0S">
  <AdaptationSet id="0" contentType="video" frameRate="30/1">
   <Representation id="0" mimeType="video/mp4" codecs="avc1.64001e" bandwidth="792986" width="640" height="360">
    <BaseURL>manifest-stream0.mp4</BaseURL>
    {addressing}
   </Representation>
  </AdaptationSet>
 </Period>
</MPD>"#
        )
    }

    #[test]
    fn segment_lists_with_media_ranges() {
        let mpd = single_file_mpd(
            r#"<SegmentList timescale="1000000" duration="2000000" startNumber="1">
     <Initialization range="0-833" />
     <SegmentURL mediaRange="834-177692" indexRange="834-885" />
     <SegmentURL mediaRange="177693-387612" indexRange="177693-177744" />
     <SegmentURL media="other.mp4" />
    </SegmentList>"#,
        );
        let p = parse_mpd(&mpd, "http://h/d/manifest.mpd", 0.0).unwrap();
        let r = &p.renditions[0];
        assert_eq!(
            r.init_uri.as_deref(),
            Some("http://h/d/manifest-stream0.mp4")
        );
        assert_eq!(r.init_range, ByteRange::new(0, 834));
        let got: Vec<_> = r
            .segments
            .iter()
            .map(|s| (s.number, s.start, s.uri.as_str(), s.range))
            .collect();
        assert_eq!(
            got,
            [
                (
                    1,
                    0.0,
                    "http://h/d/manifest-stream0.mp4",
                    ByteRange::new(834, 176_859)
                ),
                (
                    2,
                    2.0,
                    "http://h/d/manifest-stream0.mp4",
                    ByteRange::new(177_693, 209_920)
                ),
                (3, 4.0, "http://h/d/other.mp4", None),
            ]
        );
        assert_eq!(r.segments[0].size, Some(176_859));
        let no_durations = single_file_mpd(
            r#"<SegmentList><SegmentURL mediaRange="0-9"/><SegmentURL mediaRange="10-19"/></SegmentList>"#,
        );
        assert!(parse_mpd(&no_durations, "http://h/m.mpd", 0.0).is_err());
        // Nominal durations end with the presentation (10 s): the last segment is cut to
        // it, and one listed past it (ffmpeg's last audio frame) is not part of it.
        let past_the_end = single_file_mpd(
            r#"<SegmentList timescale="1000" duration="4000">
     <SegmentURL mediaRange="0-9"/><SegmentURL mediaRange="10-19"/>
     <SegmentURL mediaRange="20-29"/><SegmentURL mediaRange="30-39"/>
    </SegmentList>"#,
        );
        let p = parse_mpd(&past_the_end, "http://h/m.mpd", 0.0).unwrap();
        let times: Vec<(f64, f64)> = p.renditions[0]
            .segments
            .iter()
            .map(|s| (s.start, s.duration))
            .collect();
        assert_eq!(times, [(0.0, 4.0), (4.0, 4.0), (8.0, 2.0)]);
    }

    #[test]
    fn segment_base_points_at_its_index() {
        let mpd = single_file_mpd(
            r#"<SegmentBase indexRange="838-937" timescale="1000" presentationTimeOffset="500">
     <Initialization range="0-837" />
    </SegmentBase>"#,
        );
        let p = parse_mpd(&mpd, "http://h/d/manifest.mpd", 0.0).unwrap();
        let r = &p.renditions[0];
        assert!(r.segments.is_empty(), "listed by the sidx, once fetched");
        assert_eq!(r.init_range, ByteRange::new(0, 838));
        assert_eq!(
            r.segment_index,
            Some(crate::SegmentIndex {
                uri: "http://h/d/manifest-stream0.mp4".into(),
                range: ByteRange::new(838, 100).unwrap(),
                time_offset: -0.5,
            })
        );
        for bad in [
            r#"<SegmentBase><Initialization range="0-837" /></SegmentBase>"#,
            r#"<SegmentBase indexRange="900-800" />"#,
        ] {
            assert!(
                parse_mpd(&single_file_mpd(bad), "http://h/m.mpd", 0.0).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn transport_stream_representations_are_mpeg_ts() {
        let mpd = single_file_mpd(
            r#"<SegmentList duration="2"><SegmentURL media="0.ts"/></SegmentList>"#,
        )
        .replace("video/mp4", "video/mp2t");
        let p = parse_mpd(&mpd, "http://h/m.mpd", 0.0).unwrap();
        assert_eq!(p.renditions[0].container, Container::MpegTs);
    }

    /// ffmpeg's MPD head, with `extra` children of MPD before its Period.
    fn foreign_mpd(extra: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" type="static" mediaPresentationDuration="PT4.0S" minBufferTime="PT4.0S">
	<ProgramInformation>
	</ProgramInformation>
	{extra}
	<ServiceDescription id="0">
	</ServiceDescription>
	<Period id="0" start="PT0.0S">
		<AdaptationSet id="0" contentType="video">
			<Representation id="0" mimeType="video/mp4" codecs="avc1.64001e" bandwidth="792986" width="640" height="360">
				<SegmentTemplate timescale="15360" initialization="init-stream$RepresentationID$.m4s" media="chunk-stream$RepresentationID$-$Number%05d$.m4s" startNumber="1">
					<SegmentTimeline><S t="0" d="30720" r="1" /></SegmentTimeline>
				</SegmentTemplate>
			</Representation>
		</AdaptationSet>
	</Period>
</MPD>
"#
        )
    }

    #[test]
    fn a_foreign_mpd_is_steered_in_place() {
        let delivery = two_edges("/steering/dash?start=1&x=1", true);
        // (MPD-level extras, the folder the segments come from on a pathway)
        let rows = [
            ("", "vod/sample/dash/"),
            (
                "<BaseURL>media/</BaseURL><BaseURL>http://mirror.test/</BaseURL>",
                "vod/sample/dash/media/",
            ),
            (
                r#"<ContentSteering defaultServiceLocation="x">http://old.test/s</ContentSteering>"#,
                "vod/sample/dash/",
            ),
        ];
        for (extra, folder) in rows {
            let text = foreign_mpd(extra);
            let steered = steer_mpd(&text, "dash/stream.mpd", &delivery).unwrap();
            assert!(
                steered.contains("<ServiceDescription id=\"0\">\n\t</ServiceDescription>"),
                "the rest as it was: {steered}"
            );
            assert!(
                !steered.contains("old.test") && !steered.contains("mirror.test"),
                "{steered}"
            );
            assert!(
                steered.contains("queryBeforeStart=\"true\" clientRequirement=\"false\">/steering/dash?start=1&amp;x=1</ContentSteering><Period"),
                "{steered}"
            );
            let p = parse_mpd(
                &steered,
                "http://origin.test/vod/sample/dash/stream.mpd",
                0.0,
            )
            .unwrap();
            assert_eq!(p.delivery.steering, delivery.steering, "{extra}");
            let ids: Vec<&str> = p.delivery.pathways.iter().map(|p| p.id.as_str()).collect();
            assert_eq!(ids, ["edge-1", "edge-2"]);
            assert_eq!(
                p.delivery.pathways[0].base,
                format!("http://10.0.0.2:8081/{folder}")
            );
            let r = &p.renditions[0];
            assert_eq!(
                r.segments[1].uri,
                format!("http://10.0.0.3:8081/{folder}chunk-stream0-00002.m4s"),
                "on the default pathway"
            );
            assert_eq!(
                r.init_uri.as_deref(),
                Some(format!("http://10.0.0.3:8081/{folder}init-stream0.m4s").as_str())
            );
        }
        assert!(steer_mpd("<html/>", "m.mpd", &delivery).is_err());
    }

    #[test]
    fn template_expansion() {
        let cases = [
            ("$RepresentationID$/$Number$.m4s", "v1/7.m4s"),
            ("$Number%04d$-$Bandwidth$", "0007-500"),
            ("t$Time$$$", "t90$"),
        ];
        for (template, expected) in cases {
            assert_eq!(
                expand_template(template, "v1", 7, 500, 90).unwrap(),
                expected
            );
        }
        for bad in ["$Number", "$Foo$", "$Number%d$", "$Number%099d$"] {
            assert!(expand_template(bad, "v", 1, 1, 1).is_err(), "{bad}");
        }
    }

    #[test]
    fn malformed_mpds_are_errors() {
        for bad in ["", "<MPD", "<MPD type=\"static\"></MPD>", "<html/>"] {
            assert!(parse_mpd(bad, "http://h/m.mpd", 0.0).is_err(), "{bad:?}");
        }
    }
}
