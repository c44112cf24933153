//! DASH segment addressing (ISO/IEC 23009-1 §5.3.9): where a representation's segments
//! are, from its `SegmentTemplate` (`$Number$` or `$Time$`, with a `SegmentTimeline` or
//! `@duration`), its `SegmentList` (`SegmentURL`s, each maybe a `@mediaRange` of one
//! file) or its `SegmentBase` (a `sidx` at `@indexRange`, read once fetched:
//! [`crate::Rendition::index_segments`]). The lowest level that has one wins
//! (Representation, then AdaptationSet, then Period).

use dash_mpd_core::{
    AdaptationSet, Initialization, Period, Representation, SegmentBase, SegmentList,
    SegmentTemplate, SegmentTimeline,
};

use crate::model::{ByteRange, SegmentIndex, resolve_uri};
use crate::{MediaError, Result, Segment};

/// Upper bound on the segments one representation may list: a malformed `@r` or duration
/// must not make us allocate without end.
const MAX_SEGMENTS: u64 = 1_000_000;

/// What addressing needs to know of the representation and its period.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub id: &'a str,
    pub bandwidth: u64,
    /// The representation's base URL (its media file, for `SegmentList` and `SegmentBase`).
    pub base: &'a str,
    pub period_start: f64,
    pub presentation_duration: Option<f64>,
    /// For a dynamic MPD: seconds since the period started, now.
    pub live_now: Option<f64>,
}

/// Where a representation's init segment and media segments are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Addressing {
    pub segments: Vec<Segment>,
    pub init_uri: Option<String>,
    pub init_range: Option<ByteRange>,
    /// `SegmentBase`: the segments wait to be read from this index.
    pub segment_index: Option<SegmentIndex>,
}

/// The addressing of `rep` (in `set`, in `period`).
pub fn addressing(
    rep: &Representation,
    set: &AdaptationSet,
    period: &Period,
    ctx: &Context<'_>,
) -> Result<Addressing> {
    let levels = [
        (&rep.SegmentTemplate, &rep.SegmentList, &rep.SegmentBase),
        (&set.SegmentTemplate, &set.SegmentList, &set.SegmentBase),
        (
            &period.SegmentTemplate,
            &period.SegmentList,
            &period.SegmentBase,
        ),
    ];
    for (template, list, base) in levels {
        if let Some(t) = template {
            return template_addressing(t, ctx);
        }
        if let Some(l) = list {
            return list_addressing(l, ctx);
        }
        if let Some(b) = base {
            return base_addressing(b, ctx);
        }
    }
    Err(MediaError::Dash(format!(
        "representation {} has no SegmentTemplate, SegmentList or SegmentBase",
        ctx.id
    )))
}

/// Expands a `SegmentTemplate` identifier string (§5.3.9.4.4): `$RepresentationID$`,
/// `$Number$`, `$Bandwidth$`, `$Time$`, each optionally with a `%0Nd` width, and `$$`.
pub fn expand_template(
    template: &str,
    id: &str,
    number: u64,
    bandwidth: u64,
    time: u64,
) -> Result<String> {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after
            .find('$')
            .ok_or_else(|| MediaError::Dash(format!("unclosed $ in template {template:?}")))?;
        let ident = &after[..end];
        let (name, width) = match ident.split_once('%') {
            Some((name, fmt)) => {
                let digits = fmt
                    .strip_prefix('0')
                    .and_then(|f| f.strip_suffix('d'))
                    .and_then(|w| w.parse::<usize>().ok())
                    .filter(|w| *w <= 32)
                    .ok_or_else(|| MediaError::Dash(format!("bad width format in {template:?}")))?;
                (name, digits)
            }
            None => (ident, 0),
        };
        match name {
            "" => out.push('$'),
            "RepresentationID" => out.push_str(id),
            "Number" => out.push_str(&format!("{number:0width$}")),
            "Bandwidth" => out.push_str(&format!("{bandwidth:0width$}")),
            "Time" => out.push_str(&format!("{time:0width$}")),
            other => {
                return Err(MediaError::Dash(format!(
                    "unknown template identifier ${other}$"
                )));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn template_addressing(template: &SegmentTemplate, ctx: &Context<'_>) -> Result<Addressing> {
    let timescale = template.timescale.unwrap_or(1).max(1) as f64;
    let start_number = template.startNumber.unwrap_or(1);
    let pto = template.presentationTimeOffset.unwrap_or(0);
    let media = template
        .media
        .as_deref()
        .ok_or_else(|| MediaError::Dash(format!("representation {} has no @media", ctx.id)))?;
    let mut segments = Vec::new();
    let mut push = |number: u64, time: u64, d: u64| -> Result<()> {
        if segments.len() as u64 >= MAX_SEGMENTS {
            return Err(MediaError::Dash("too many segments".into()));
        }
        let uri = expand_template(media, ctx.id, number, ctx.bandwidth, time)?;
        segments.push(Segment {
            number,
            start: ctx.period_start + time.saturating_sub(pto) as f64 / timescale,
            duration: d as f64 / timescale,
            size: None,
            uri: resolve_uri(ctx.base, &uri)?,
            ..Default::default()
        });
        Ok(())
    };
    if let Some(timeline) = &template.SegmentTimeline {
        let end = ctx
            .presentation_duration
            .map(|d| (d * timescale) as u64 + pto);
        let mut number = start_number;
        walk_timeline(timeline, end, |time, d| {
            push(number, time, d)?;
            number += 1;
            Ok(())
        })?;
    } else {
        let d = template.duration.filter(|d| *d > 0.0).ok_or_else(|| {
            MediaError::Dash(format!(
                "representation {} has neither timeline nor @duration",
                ctx.id
            ))
        })?;
        let seg_secs = d / timescale;
        let (first, count) = match (ctx.live_now, ctx.presentation_duration) {
            // Live without a timeline: the segments available now (§5.3.9.5.3), capped to the
            // last couple of minutes so an old availabilityStartTime stays cheap.
            (Some(now), _) => {
                let available = (now / seg_secs).floor().max(0.0) as u64;
                let window = (120.0 / seg_secs).ceil() as u64;
                (available.saturating_sub(window), available.min(window))
            }
            (None, Some(total)) => (0, (total / seg_secs - 1e-9).ceil().max(0.0) as u64),
            (None, None) => return Err(MediaError::Dash("static MPD without a duration".into())),
        };
        for k in first..first + count.min(MAX_SEGMENTS) {
            push(start_number + k, (k as f64 * d) as u64 + pto, d as u64)?;
        }
    }
    let init_uri = template
        .initialization
        .as_deref()
        .map(|t| {
            expand_template(t, ctx.id, 0, ctx.bandwidth, 0).and_then(|u| resolve_uri(ctx.base, &u))
        })
        .transpose()?;
    Ok(Addressing {
        segments,
        init_uri,
        ..Addressing::default()
    })
}

/// Calls `each(time, duration)` for every segment of a `SegmentTimeline` (§5.3.9.6); an
/// `@r` of -1 repeats until the next `S@t` or `end`.
fn walk_timeline(
    timeline: &SegmentTimeline,
    end: Option<u64>,
    mut each: impl FnMut(u64, u64) -> Result<()>,
) -> Result<()> {
    let mut time = 0u64;
    let mut count = 0u64;
    for (i, s) in timeline.segments.iter().enumerate() {
        if let Some(t) = s.t {
            time = t;
        }
        if s.d == 0 {
            return Err(MediaError::Dash("SegmentTimeline entry with d=0".into()));
        }
        let repeats = match s.r.unwrap_or(0) {
            r if r >= 0 => r as u64,
            _ => {
                let until = timeline
                    .segments
                    .get(i + 1)
                    .and_then(|next| next.t)
                    .or(end)
                    .ok_or_else(|| MediaError::Dash("@r=-1 with no end".into()))?;
                until.saturating_sub(time).div_ceil(s.d).saturating_sub(1)
            }
        };
        count = count.saturating_add(repeats + 1);
        if repeats >= MAX_SEGMENTS || count > MAX_SEGMENTS {
            return Err(MediaError::Dash("absurd @r".into()));
        }
        for _ in 0..=repeats {
            each(time, s.d)?;
            time += s.d;
        }
    }
    Ok(())
}

/// An `Initialization` element: its `@sourceURL` (else the representation's base URL) and
/// `@range`.
fn initialization(
    init: Option<&Initialization>,
    ctx: &Context<'_>,
) -> Result<(Option<String>, Option<ByteRange>)> {
    let Some(init) = init else {
        return Ok((None, None));
    };
    let (uri, range) = located(ctx, init.sourceURL.as_deref(), init.range.as_deref())?;
    Ok((Some(uri), range))
}

/// A resource an element names by a URL attribute (else the representation's base URL)
/// and maybe a `first-last` range of it.
fn located(
    ctx: &Context<'_>,
    url: Option<&str>,
    range: Option<&str>,
) -> Result<(String, Option<ByteRange>)> {
    let uri = match url {
        Some(url) => resolve_uri(ctx.base, url)?,
        None => ctx.base.to_owned(),
    };
    Ok((uri, range.map(ByteRange::parse_first_last).transpose()?))
}

/// `SegmentList` (§5.3.9.3): one `SegmentURL` a segment, its `@media` (else the base URL)
/// and `@mediaRange`; times from the `SegmentTimeline`, else `@duration`. Numbered from 1
/// (dash-mpd-core does not read the list's `@startNumber`).
fn list_addressing(list: &SegmentList, ctx: &Context<'_>) -> Result<Addressing> {
    let timescale = list.timescale.unwrap_or(1).max(1);
    let mut times: Vec<(u64, u64)> = Vec::new();
    let mut clipped = false;
    match (&list.SegmentTimeline, list.duration) {
        (Some(timeline), _) => {
            let end = ctx
                .presentation_duration
                .map(|d| (d * timescale as f64) as u64);
            walk_timeline(timeline, end, |time, d| {
                times.push((time, d));
                Ok(())
            })?;
        }
        (None, Some(d)) if d > 0 => {
            // Nominal durations: the last one ends with the presentation, and a segment
            // that would start at or after its end is not part of it (§5.3.9.5.3; ffmpeg
            // lists the last audio frame as a segment of its own past the end).
            let end = ctx
                .presentation_duration
                .map_or(u64::MAX, |p| (p * timescale as f64).round() as u64);
            times = (0..list.segment_urls.len() as u64)
                .map(|k| (k * d, d.min(end.saturating_sub(k * d))))
                .take_while(|(time, d)| *time == 0 || (*time < end && *d > 0))
                .collect();
            clipped = times.len() < list.segment_urls.len();
        }
        (None, _) if list.segment_urls.len() <= 1 => {
            let whole = ctx.presentation_duration.unwrap_or(0.0) * timescale as f64;
            times.push((0, whole as u64));
        }
        (None, _) => {
            return Err(MediaError::Dash(format!(
                "representation {}: SegmentList of several segments without @duration or a timeline",
                ctx.id
            )));
        }
    }
    if times.len() < list.segment_urls.len() && !clipped {
        return Err(MediaError::Dash(format!(
            "representation {}: {} SegmentURLs but {} durations",
            ctx.id,
            list.segment_urls.len(),
            times.len()
        )));
    }
    let segments = list
        .segment_urls
        .iter()
        .zip(times)
        .enumerate()
        .map(|(k, (url, (time, d)))| {
            let (uri, range) = located(ctx, url.media.as_deref(), url.mediaRange.as_deref())?;
            Ok(Segment {
                number: k as u64 + 1,
                start: ctx.period_start + time as f64 / timescale as f64,
                duration: d as f64 / timescale as f64,
                size: range.map(|r| r.length),
                uri,
                range,
                discontinuity: false,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let (init_uri, init_range) = initialization(list.Initialization.as_ref(), ctx)?;
    Ok(Addressing {
        segments,
        init_uri,
        init_range,
        segment_index: None,
    })
}

/// `SegmentBase` (§5.3.9.2): one file, its init at `Initialization@range` and its segments
/// listed by the `sidx` at `@indexRange`, read once fetched.
fn base_addressing(base: &SegmentBase, ctx: &Context<'_>) -> Result<Addressing> {
    let range = base
        .indexRange
        .as_deref()
        .ok_or_else(|| {
            MediaError::Dash(format!(
                "representation {}: SegmentBase without @indexRange",
                ctx.id
            ))
        })
        .and_then(ByteRange::parse_first_last)?;
    let timescale = base.timescale.unwrap_or(1).max(1) as f64;
    let pto = base.presentationTimeOffset.unwrap_or(0) as f64 / timescale;
    let (init_uri, init_range) = initialization(base.Initialization.as_ref(), ctx)?;
    Ok(Addressing {
        segments: Vec::new(),
        init_uri,
        init_range,
        segment_index: Some(SegmentIndex {
            uri: ctx.base.to_owned(),
            range,
            time_offset: ctx.period_start - pto,
        }),
    })
}
