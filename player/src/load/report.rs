//! The load report: per-session records, the figures over sessions (percentiles), the
//! text table, and the merge of shard reports. Pure functions over plain data.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::abr::AbrKind;
use crate::session::summary::{Summary, quantile};
use crate::session::{Counters, End};

/// Percentiles over sessions (nearest rank).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p10: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

/// Nearest-rank percentiles of `values` (NaNs ignored); `None` when there are none.
pub fn percentiles(values: &[f64]) -> Option<Percentiles> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let at = |p: f64| quantile(&v, p);
    Some(Percentiles {
        p10: at(0.10),
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
    })
}

/// One session of a load run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Index among all sessions of the run (shards included).
    pub index: usize,
    /// Start offset in the ramp, s.
    pub start_s: f64,
    /// The trace its link followed, if any.
    pub trace: Option<String>,
    /// How it ended; `None` when it never started (stopped during the ramp).
    pub end: Option<End>,
    /// Why it failed, when it did (at start or later).
    pub error: Option<String>,
    /// Its figures, when it got past the manifest.
    pub summary: Option<Summary>,
}

/// Figures over the sessions of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    pub sessions: usize,
    /// Sessions whose playback started.
    pub started: usize,
    /// Sessions that failed before playing (manifest) and after (a segment).
    pub failed_to_start: usize,
    pub failed: usize,
    pub startup_delay_s: Option<Percentiles>,
    pub rebuffer_ratio: Option<Percentiles>,
    pub avg_bitrate_bps: Option<Percentiles>,
    pub qoe_lin: Option<Percentiles>,
    /// Rendition switches per minute watched.
    pub switches_per_minute: Option<Percentiles>,
    /// Media segment download times (request to last byte), ms.
    pub segment_download_ms: Option<Percentiles>,
    /// Live: each session's mean latency behind live, s.
    #[serde(default)]
    pub live_latency_s: Option<Percentiles>,
    /// The longest single stall of any session, s.
    #[serde(default)]
    pub max_stall_s: f64,
    /// Sessions that moved a request to another pathway at least once.
    #[serde(default)]
    pub sessions_failed_over: usize,
    /// All sessions' counters summed (traffic by pathway and failovers included).
    pub counters: Counters,
    pub cache_hit_ratio: Option<f64>,
}

/// A load run (or several shards merged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    pub url: String,
    pub abr: AbrKind,
    /// Sessions of the whole run, and the shard this report covers (`None`: all).
    pub sessions: usize,
    pub shard: Option<(usize, usize)>,
    pub duration_s: f64,
    pub ramp_s: f64,
    pub network: String,
    pub seed: u64,
    pub aggregate: Aggregate,
    pub records: Vec<SessionRecord>,
    /// Every media segment's download time, ms (for percentiles after a merge).
    pub segment_download_ms: Vec<f64>,
    /// Live figures sampled once a second.
    pub timeline: Vec<Sample>,
}

/// The live figures at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the run began.
    pub t_s: f64,
    pub active: u64,
    pub rebuffering: u64,
    /// Mean bitrate of the segments being played by sessions that have one, bit/s.
    pub mean_bitrate_bps: f64,
    /// Requests and errors per second over the last interval.
    pub requests_per_s: f64,
    pub errors_per_s: f64,
}

/// Figures over `records`.
pub fn aggregate(records: &[SessionRecord], segment_download_ms: &[f64]) -> Aggregate {
    let summaries: Vec<&Summary> = records.iter().filter_map(|r| r.summary.as_ref()).collect();
    let started: Vec<&Summary> = summaries
        .iter()
        .copied()
        .filter(|s| s.startup_delay_s.is_some())
        .collect();
    let of = |f: &dyn Fn(&Summary) -> f64| {
        percentiles(&started.iter().map(|s| f(s)).collect::<Vec<_>>())
    };
    let mut counters = Counters::default();
    for s in &summaries {
        counters.add(&s.counters);
    }
    Aggregate {
        sessions: records.len(),
        started: started.len(),
        failed_to_start: records
            .iter()
            .filter(|r| r.summary.is_none() && r.error.is_some())
            .count(),
        failed: records
            .iter()
            .filter(|r| r.end == Some(End::Failed))
            .count(),
        startup_delay_s: of(&|s| s.startup_delay_s.unwrap_or(f64::NAN)),
        rebuffer_ratio: of(&|s| s.rebuffer_ratio),
        avg_bitrate_bps: of(&|s| s.avg_bitrate_bps),
        qoe_lin: of(&|s| s.qoe_lin),
        switches_per_minute: of(&|s| {
            let watched = s.played_s + s.rebuffer_s;
            if watched > 0.0 {
                s.switches as f64 * 60.0 / watched
            } else {
                f64::NAN
            }
        }),
        segment_download_ms: percentiles(segment_download_ms),
        live_latency_s: of(&|s| s.live_latency_mean_s.unwrap_or(f64::NAN)),
        max_stall_s: summaries.iter().map(|s| s.max_stall_s).fold(0.0, f64::max),
        sessions_failed_over: summaries
            .iter()
            .filter(|s| s.counters.failovers > 0)
            .count(),
        cache_hit_ratio: (counters.cache_lookups > 0)
            .then(|| counters.cache_hits as f64 / counters.cache_lookups as f64),
        counters,
    }
}

/// Shard reports cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("nothing to merge")]
    Empty,
    #[error("reports are of different runs: their {0} differ")]
    Mismatch(&'static str),
    #[error("session {0} appears in two reports (the same shard twice?)")]
    Duplicate(usize),
}

/// Merges shard reports of one run: records and download times are pooled and the
/// figures recomputed; timelines add up second by second.
pub fn merge(reports: Vec<LoadReport>) -> Result<LoadReport, MergeError> {
    let mut iter = reports.into_iter();
    let mut merged = iter.next().ok_or(MergeError::Empty)?;
    for r in iter {
        if r.url != merged.url {
            return Err(MergeError::Mismatch("URLs"));
        }
        if (r.sessions, r.seed) != (merged.sessions, merged.seed) {
            return Err(MergeError::Mismatch("session counts or seeds"));
        }
        merged.records.extend(r.records);
        merged.segment_download_ms.extend(r.segment_download_ms);
        for s in r.timeline {
            let second = s.t_s.round();
            match merged.timeline.iter_mut().find(|m| m.t_s.round() == second) {
                Some(m) => {
                    let weight = |x: &Sample| x.mean_bitrate_bps * x.active as f64;
                    let active = m.active + s.active;
                    m.mean_bitrate_bps = if active > 0 {
                        (weight(m) + weight(&s)) / active as f64
                    } else {
                        0.0
                    };
                    m.active = active;
                    m.rebuffering += s.rebuffering;
                    m.requests_per_s += s.requests_per_s;
                    m.errors_per_s += s.errors_per_s;
                }
                None => merged.timeline.push(s),
            }
        }
    }
    merged.records.sort_by_key(|r| r.index);
    merged.timeline.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    if let Some(w) = merged.records.windows(2).find(|w| w[0].index == w[1].index) {
        return Err(MergeError::Duplicate(w[0].index));
    }
    merged.shard = None;
    merged.aggregate = aggregate(&merged.records, &merged.segment_download_ms);
    Ok(merged)
}

/// The report as a text table.
pub fn text(r: &LoadReport) -> String {
    let a = &r.aggregate;
    let mut out = String::new();
    let shard = r
        .shard
        .map_or(String::new(), |(k, n)| format!(", shard {k}/{n}"));
    let _ = writeln!(
        out,
        "{} with {}: {} sessions{shard} over {} s (ramp {} s, network {}, seed {})",
        r.url, r.abr, r.sessions, r.duration_s, r.ramp_s, r.network, r.seed
    );
    let _ = writeln!(
        out,
        "sessions run {}, started playing {}, failed to start {}, failed later {}",
        a.sessions, a.started, a.failed_to_start, a.failed
    );
    let _ = writeln!(
        out,
        "{:<24} {:>10} {:>10} {:>10} {:>10}",
        "", "p10", "p50", "p90", "p99"
    );
    let rows: [(&str, Option<Percentiles>, f64); 7] = [
        ("startup delay (s)", a.startup_delay_s, 1.0),
        ("rebuffer ratio", a.rebuffer_ratio, 1.0),
        ("avg bitrate (kbit/s)", a.avg_bitrate_bps, 1e-3),
        ("QoE_lin", a.qoe_lin, 1.0),
        ("switches per minute", a.switches_per_minute, 1.0),
        ("segment download (ms)", a.segment_download_ms, 1.0),
        ("behind live (s)", a.live_latency_s, 1.0),
    ];
    for (name, p, scale) in rows {
        match p {
            Some(p) => {
                let _ = writeln!(
                    out,
                    "{name:<24} {:>10.3} {:>10.3} {:>10.3} {:>10.3}",
                    p.p10 * scale,
                    p.p50 * scale,
                    p.p90 * scale,
                    p.p99 * scale
                );
            }
            None => {
                let _ = writeln!(out, "{name:<24} {:>10}", "-");
            }
        }
    }
    let c = &a.counters;
    let _ = writeln!(
        out,
        "requests {}, {:.1} MB, cache hit ratio {}, abandoned downloads {}",
        c.requests,
        c.bytes as f64 / 1e6,
        a.cache_hit_ratio
            .map_or("- (no Cache-Status)".to_owned(), |h| format!("{h:.3}")),
        c.abandoned
    );
    let _ = writeln!(out, "longest single stall {:.3} s", a.max_stall_s);
    let _ = writeln!(
        out,
        "pathways: {} ({} sessions failed over)",
        c.pathways_text(),
        a.sessions_failed_over
    );
    let _ = writeln!(out, "errors by kind: {:?}", c.errors);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::session::{ErrorKind, PathwayCounters};

    #[test]
    fn percentiles_table() {
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        let cases: [(&[f64], Option<[f64; 4]>); 4] = [
            (&[], None),
            (&[5.0], Some([5.0; 4])),
            (&[3.0, 1.0, 2.0, f64::NAN], Some([1.0, 2.0, 3.0, 3.0])),
            (&hundred, Some([10.0, 50.0, 90.0, 99.0])),
        ];
        for (values, want) in cases {
            let got = percentiles(values).map(|p| [p.p10, p.p50, p.p90, p.p99]);
            assert_eq!(got, want, "{values:?}");
        }
    }

    fn record(index: usize, qoe: f64, errors: u64) -> SessionRecord {
        let mut counters = Counters {
            requests: 10,
            cache_lookups: 10,
            cache_hits: 5,
            ..Counters::default()
        };
        if errors > 0 {
            counters.errors.insert(ErrorKind::Body, errors);
            counters.failovers = errors;
            counters.pathways.insert(
                "edge-1".into(),
                PathwayCounters {
                    requests: 10,
                    bytes: 1000,
                },
            );
        }
        SessionRecord {
            index,
            start_s: 0.0,
            trace: None,
            end: Some(End::Complete),
            error: None,
            summary: Some(Summary {
                wall_s: 60.0,
                startup_delay_s: Some(0.5),
                played_s: 60.0,
                rebuffer_count: 0,
                rebuffer_s: 0.0,
                max_stall_s: qoe / 10.0,
                rebuffer_ratio: 0.0,
                segments: 30,
                avg_bitrate_bps: 1e6,
                top_quality: Some(2),
                switches: 3,
                switch_magnitude_bps: 1e5,
                qoe_lin: qoe,
                counters,
                cache_hit_ratio: Some(0.5),
                live_latency_mean_s: None,
                live_latency_p95_s: None,
            }),
        }
    }

    fn report(records: Vec<SessionRecord>, shard: usize) -> LoadReport {
        let downloads = vec![10.0 * (shard + 1) as f64];
        LoadReport {
            url: "http://h/m.mpd".into(),
            abr: AbrKind::Bba,
            sessions: 4,
            shard: Some((shard, 2)),
            duration_s: 60.0,
            ramp_s: 0.0,
            network: "none".into(),
            seed: 1,
            aggregate: aggregate(&records, &downloads),
            records,
            segment_download_ms: downloads,
            timeline: vec![Sample {
                t_s: 1.0,
                active: 2,
                mean_bitrate_bps: 1e6 * (shard + 1) as f64,
                ..Sample::default()
            }],
        }
    }

    #[test]
    fn aggregates_and_merges_shards() {
        let a = report(vec![record(0, 10.0, 1), record(2, 20.0, 0)], 0);
        assert_eq!(a.aggregate.switches_per_minute.unwrap().p50, 3.0);
        assert_eq!(a.aggregate.counters.errors[&ErrorKind::Body], 1);
        let b = report(vec![record(1, 30.0, 2), record(3, 40.0, 0)], 1);
        let m = merge(vec![a.clone(), b.clone()]).unwrap();
        assert_eq!(m.shard, None);
        assert_eq!(
            m.records.iter().map(|r| r.index).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        let qoe = m.aggregate.qoe_lin.unwrap();
        assert_eq!((qoe.p10, qoe.p50, qoe.p99), (10.0, 20.0, 40.0));
        assert_eq!(m.aggregate.counters.requests, 40);
        assert_eq!(m.aggregate.counters.errors[&ErrorKind::Body], 3);
        assert_eq!(m.aggregate.cache_hit_ratio, Some(0.5));
        assert_eq!(m.aggregate.max_stall_s, 4.0);
        assert_eq!(m.aggregate.sessions_failed_over, 2);
        assert_eq!(m.aggregate.counters.failovers, 3);
        assert_eq!(m.aggregate.counters.pathways["edge-1"].bytes, 2000);
        assert_eq!(m.timeline.len(), 1);
        assert_eq!(m.timeline[0].active, 4);
        assert_eq!(m.timeline[0].mean_bitrate_bps, 1.5e6);
        assert!(text(&m).contains("QoE_lin"));
        assert!(
            text(&m).contains("edge-1 20 req 0.00 MB; 3 failovers"),
            "{}",
            text(&m)
        );
        assert!(matches!(
            merge(vec![a.clone(), a.clone()]),
            Err(MergeError::Duplicate(0))
        ));
        let mut other = b;
        other.seed = 2;
        assert!(matches!(
            merge(vec![a, other]),
            Err(MergeError::Mismatch(_))
        ));
        assert!(matches!(merge(Vec::new()), Err(MergeError::Empty)));
    }
}
