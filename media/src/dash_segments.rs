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

use crate::limits::{self, MAX_SEGMENT_NUMBER, SegmentBudget};
use crate::model::{ByteRange, SegmentIndex, resolve_uri};
use crate::{MediaError, Result, Segment};

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
    budget: &mut SegmentBudget,
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
            return template_addressing(t, ctx, budget);
        }
        if let Some(l) = list {
            return list_addressing(l, ctx, budget);
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

/// `@timescale` (xs:unsignedInt, default 1): 0, or past 2^32 − 1, is refused.
fn timescale(value: Option<u64>, ctx: &Context<'_>) -> Result<u64> {
    match value.unwrap_or(1) {
        t @ 1..=0xFFFF_FFFF => Ok(t),
        t => Err(MediaError::Dash(format!(
            "representation {}: @timescale {t} is not in 1..=4294967295",
            ctx.id
        ))),
    }
}

/// `ticks` over `timescale` as a segment duration in seconds, checked
/// ([`limits::segment_seconds`]).
fn seconds(ticks: f64, timescale: u64, ctx: &Context<'_>) -> Result<f64> {
    limits::segment_seconds(ticks / timescale as f64)
        .map_err(|why| MediaError::Dash(format!("representation {}: {why}", ctx.id)))
}

/// How many ticks of `timescale` the presentation lasts (the end of an `@r=-1` run), plus
/// `offset`; saturating, as the end only bounds a run.
fn end_ticks(ctx: &Context<'_>, timescale: u64, offset: u64) -> Option<u64> {
    ctx.presentation_duration
        .map(|d| ((d * timescale as f64) as u64).saturating_add(offset))
}

fn template_addressing(
    template: &SegmentTemplate,
    ctx: &Context<'_>,
    budget: &mut SegmentBudget,
) -> Result<Addressing> {
    let timescale = timescale(template.timescale, ctx)?;
    // xs:unsignedInt in the MPD schema (ISO/IEC 23009-1 Annex B).
    let start_number = match template.startNumber.unwrap_or(1) {
        n @ 0..=0xFFFF_FFFF => n,
        n => {
            return Err(MediaError::Dash(format!(
                "representation {}: @startNumber {n} is past 4294967295",
                ctx.id
            )));
        }
    };
    let pto = template.presentationTimeOffset.unwrap_or(0);
    let media = template
        .media
        .as_deref()
        .ok_or_else(|| MediaError::Dash(format!("representation {} has no @media", ctx.id)))?;
    // The segments as runs, counted whole before anything is listed; `first` is the
    // index of the first segment after `startNumber`.
    let (first, runs) = match &template.SegmentTimeline {
        Some(timeline) => (
            0,
            timeline_runs(timeline, end_ticks(ctx, timescale, pto), budget)?,
        ),
        None => {
            let d = template
                .duration
                .map(f64::round)
                .filter(|d| *d >= 1.0)
                .ok_or_else(|| {
                    MediaError::Dash(format!(
                        "representation {} has neither timeline nor a @duration of 1 or more",
                        ctx.id
                    ))
                })?;
            let seg_secs = seconds(d, timescale, ctx)?;
            // Float to integer casts saturate: an absurd count stays absurd, and is
            // refused by the budget before anything is listed.
            let (first, count) = match (ctx.live_now, ctx.presentation_duration) {
                // Live without a timeline: the segments available now (§5.3.9.5.3), capped
                // to the last couple of minutes so an old availabilityStartTime stays cheap.
                (Some(now), _) => {
                    let available = (now / seg_secs).floor().max(0.0);
                    let available = limits::segment_number(
                        (available <= MAX_SEGMENT_NUMBER as f64).then_some(available as u64),
                    )?;
                    let window = (120.0 / seg_secs).ceil() as u64;
                    (available.saturating_sub(window), available.min(window))
                }
                (None, Some(total)) => (0, (total / seg_secs - 1e-9).ceil().max(0.0) as u64),
                (None, None) => {
                    return Err(MediaError::Dash("static MPD without a duration".into()));
                }
            };
            budget.ensure_room(count)?;
            let d = d as u64;
            let run = Run {
                time: first
                    .checked_mul(d)
                    .and_then(|t| t.checked_add(pto))
                    .ok_or_else(|| MediaError::Dash("segment times overflow".into()))?,
                duration: d,
                count,
            };
            (first, vec![run])
        }
    };
    let mut segments = Vec::new();
    let mut k = first;
    for run in &runs {
        for i in 0..run.count {
            let time = run.time_of(i)?;
            let number = limits::segment_number(start_number.checked_add(k))?;
            let uri = expand_template(media, ctx.id, number, ctx.bandwidth, time)?;
            let segment = Segment {
                number,
                start: ctx.period_start + time.saturating_sub(pto) as f64 / timescale as f64,
                duration: seconds(run.duration as f64, timescale, ctx)?,
                size: None,
                uri: resolve_uri(ctx.base, &uri)?,
                ..Default::default()
            };
            budget.take(&segment)?;
            segments.push(segment);
            k += 1;
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

/// `count` segments of `duration` ticks from `time`: one `S` element of a
/// `SegmentTimeline` with its repeats.
#[derive(Debug, Clone, Copy)]
struct Run {
    time: u64,
    duration: u64,
    count: u64,
}

impl Run {
    /// The start of the run's `i`th segment; an overflow is an error.
    fn time_of(&self, i: u64) -> Result<u64> {
        i.checked_mul(self.duration)
            .and_then(|offset| self.time.checked_add(offset))
            .ok_or_else(|| MediaError::Dash("SegmentTimeline times overflow".into()))
    }
}

/// The runs of a `SegmentTimeline` (§5.3.9.6); an `@r` of -1 repeats until the next `S@t`
/// or `end`. Counted whole, against the budget, before any segment is listed.
fn timeline_runs(
    timeline: &SegmentTimeline,
    end: Option<u64>,
    budget: &SegmentBudget,
) -> Result<Vec<Run>> {
    let mut runs = Vec::with_capacity(timeline.segments.len());
    let mut time = 0u64;
    let mut total = 0u64;
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
        let count = repeats.saturating_add(1);
        total = total.saturating_add(count);
        budget.ensure_room(total)?;
        let run = Run {
            time,
            duration: s.d,
            count,
        };
        time = run.time_of(count)?;
        runs.push(run);
    }
    Ok(runs)
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

/// The runs of `count` segments of nominal duration `d` (`@duration`): the last ends with
/// the presentation (`end`), and a segment that would start at or after it is not part of
/// it (§5.3.9.5.3; ffmpeg lists the last audio frame as a segment of its own past the end).
fn nominal_runs(d: u64, count: u64, end: Option<u64>) -> Vec<Run> {
    let Some(end) = end else {
        return vec![Run {
            time: 0,
            duration: d,
            count,
        }];
    };
    // Segments starting before the end; the first always counts.
    let within = end.div_ceil(d).clamp(1, count.max(1)).min(count);
    let whole = within.saturating_sub(1);
    let last_start = whole.saturating_mul(d);
    let last = d.min(end.saturating_sub(last_start));
    let mut runs = Vec::with_capacity(2);
    if whole > 0 {
        runs.push(Run {
            time: 0,
            duration: d,
            count: whole,
        });
    }
    if within > 0 {
        runs.push(Run {
            time: last_start,
            duration: if last > 0 { last } else { d },
            count: 1,
        });
    }
    runs
}

/// `SegmentList` (§5.3.9.3): one `SegmentURL` a segment, its `@media` (else the base URL)
/// and `@mediaRange`; times from the `SegmentTimeline`, else `@duration`. Numbered from 1
/// (dash-mpd-core does not read the list's `@startNumber`).
fn list_addressing(
    list: &SegmentList,
    ctx: &Context<'_>,
    budget: &mut SegmentBudget,
) -> Result<Addressing> {
    let timescale = timescale(list.timescale, ctx)?;
    let count = list.segment_urls.len() as u64;
    budget.ensure_room(count)?;
    let runs = match (&list.SegmentTimeline, list.duration) {
        (Some(timeline), _) => timeline_runs(timeline, end_ticks(ctx, timescale, 0), budget)?,
        (None, Some(d)) if d > 0 => nominal_runs(d, count, end_ticks(ctx, timescale, 0)),
        (None, _) if count <= 1 => {
            let whole = ctx.presentation_duration.unwrap_or(0.0) * timescale as f64;
            vec![Run {
                time: 0,
                duration: whole as u64,
                count: 1,
            }]
        }
        (None, _) => {
            return Err(MediaError::Dash(format!(
                "representation {}: SegmentList of several segments without @duration or a timeline",
                ctx.id
            )));
        }
    };
    let timed = runs.iter().map(|r| r.count).fold(0u64, u64::saturating_add);
    let clipped = list.SegmentTimeline.is_none() && list.duration.is_some_and(|d| d > 0);
    if timed < count && !clipped {
        return Err(MediaError::Dash(format!(
            "representation {}: {count} SegmentURLs but {timed} durations",
            ctx.id
        )));
    }
    let times = runs
        .iter()
        .flat_map(|run| (0..run.count).map(move |i| (run.time_of(i), run.duration)));
    let mut segments = Vec::with_capacity(list.segment_urls.len());
    for (k, (url, (time, d))) in list.segment_urls.iter().zip(times).enumerate() {
        let (uri, range) = located(ctx, url.media.as_deref(), url.mediaRange.as_deref())?;
        let segment = Segment {
            number: k as u64 + 1,
            start: ctx.period_start + time? as f64 / timescale as f64,
            duration: seconds(d as f64, timescale, ctx)?,
            size: range.map(|r| r.length),
            uri,
            range,
            discontinuity: false,
        };
        budget.take(&segment)?;
        segments.push(segment);
    }
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
    let timescale = timescale(base.timescale, ctx)? as f64;
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
