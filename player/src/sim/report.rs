//! Scores (QoE_lin, chunk 0 skipped as Pensieve's `plot_results.py` does) and set
//! summaries of simulator runs.

use std::fmt::{self, Write as _};
use std::str::FromStr;

use serde::{Serialize, Serializer};

use super::optimal::{self, simulate_optimal};
use super::{ChunkLog, Rules, SimError, Trace, Video, par_map, simulate};
use crate::abr::{AbrKind, AbrParams, UnknownAbr};

/// What runs over a set of traces: an online algorithm, or the offline optimum (which
/// knows the trace; [`optimal`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Contender {
    /// An algorithm a real player can run.
    Abr(AbrKind),
    /// The offline optimum.
    Optimal,
}

impl Contender {
    /// Every online algorithm, then the optimum.
    pub fn all() -> Vec<Self> {
        AbrKind::ALL
            .into_iter()
            .map(Self::Abr)
            .chain([Self::Optimal])
            .collect()
    }

    /// The name the command line and the reports use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Abr(kind) => kind.name(),
            Self::Optimal => "optimal",
        }
    }
}

impl fmt::Display for Contender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl Serialize for Contender {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl FromStr for Contender {
    type Err = UnknownAbr;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        if name == "optimal" {
            Ok(Self::Optimal)
        } else {
            name.parse().map(Self::Abr)
        }
    }
}

/// What every run over traces shares: the video, the rules, the algorithms'
/// parameters, and the optimum's buffer grid.
#[derive(Debug, Clone, Copy)]
pub struct Bench<'a> {
    /// The video.
    pub video: &'a Video,
    /// The simulator's rules.
    pub rules: &'a Rules,
    /// Parameters of the online algorithms.
    pub params: &'a AbrParams,
    /// Buffer quantum of the optimum's dynamic programme, ms.
    pub optimal_step_ms: f64,
}

impl<'a> Bench<'a> {
    /// A bench with Pensieve's rules, the default parameters and the default grid.
    pub fn new(video: &'a Video, params: &'a AbrParams) -> Self {
        Self {
            video,
            rules: &Rules::PENSIEVE,
            params,
            optimal_step_ms: optimal::BUFFER_STEP_MS,
        }
    }

    /// The chunk logs of `who` on `trace` (a fresh algorithm instance).
    pub fn logs(&self, trace: &Trace, who: Contender) -> Result<Vec<ChunkLog>, SimError> {
        match who {
            Contender::Abr(kind) => {
                let mut algo = kind.build(self.params);
                simulate(trace, self.video, self.rules, algo.as_mut())
            }
            Contender::Optimal => {
                simulate_optimal(trace, self.video, self.rules, self.optimal_step_ms)
            }
        }
    }

    /// Runs `who` over every trace (on all cores) and summarises.
    pub fn run_set(&self, traces: &[Trace], who: Contender) -> Result<SetReport, SimError> {
        let per_trace = par_map(traces, |t| {
            Ok::<_, SimError>(score(&t.name, &self.logs(t, who)?))
        })?;
        Ok(summarise(who, per_trace))
    }

    /// Runs every contender of `who` over `traces`; when the optimum is among them,
    /// every report gets its share of it.
    pub fn run_sets(
        &self,
        traces: &[Trace],
        who: &[Contender],
    ) -> Result<Vec<SetReport>, SimError> {
        let mut reports = who
            .iter()
            .map(|&w| self.run_set(traces, w))
            .collect::<Result<Vec<_>, _>>()?;
        set_shares(&mut reports);
        Ok(reports)
    }
}

/// Fills in every report's share of the optimum's report among them, if there is one.
pub fn set_shares(reports: &mut [SetReport]) {
    let best = reports
        .iter()
        .find(|r| r.abr == Contender::Optimal)
        .map(|r| r.qoe_per_chunk_mean);
    for r in reports {
        r.share_of_optimum = best.map(|b| share(r.qoe_per_chunk_mean, b));
    }
}

/// `qoe` as a fraction of the optimum's `best` (0 when the optimum itself is not
/// positive, where a share means nothing).
pub fn share(qoe: f64, best: f64) -> f64 {
    if best > 0.0 { qoe / best } else { 0.0 }
}

/// One trace's figures over chunks 1.. (chunk 0, the forced start-up chunk, is skipped).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceScore {
    /// Trace file name.
    pub name: String,
    /// Σ reward over chunks 1..
    pub qoe_total: f64,
    /// `qoe_total` / scored chunks.
    pub qoe_per_chunk: f64,
    /// Mean bitrate, Mbit/s.
    pub bitrate_mbps_mean: f64,
    /// Stall time, s.
    pub rebuffer_s: f64,
    /// Start-up delay: chunk 0's whole download, s (not in the QoE figures).
    pub startup_s: f64,
    /// Mean |bitrate change| per chunk, Mbit/s.
    pub switch_mbps_mean: f64,
    /// Number of chunks whose rendition differs from the previous chunk's.
    pub switches: usize,
}

/// Scores a run from its chunk logs.
pub fn score(name: &str, logs: &[ChunkLog]) -> TraceScore {
    let scored = logs.get(1..).unwrap_or_default();
    let n = scored.len().max(1) as f64;
    let qoe_total: f64 = scored.iter().map(|c| c.reward).sum();
    let mbps = |c: &ChunkLog| c.bitrate_bps as f64 / 1e6;
    let switch_sum: f64 = logs
        .windows(2)
        .map(|w| (mbps(&w[1]) - mbps(&w[0])).abs())
        .sum();
    TraceScore {
        name: name.to_owned(),
        qoe_total,
        qoe_per_chunk: qoe_total / n,
        bitrate_mbps_mean: scored.iter().map(mbps).sum::<f64>() / n,
        rebuffer_s: scored.iter().map(|c| c.rebuf_s).sum(),
        startup_s: logs.first().map_or(0.0, |c| c.rebuf_s),
        switch_mbps_mean: switch_sum / n,
        switches: logs
            .windows(2)
            .filter(|w| w[0].quality != w[1].quality)
            .count(),
    }
}

/// One algorithm over one set of traces.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SetReport {
    /// The algorithm.
    pub abr: Contender,
    /// Number of traces.
    pub traces: usize,
    /// Mean over traces of QoE per chunk (chunk 0 skipped).
    pub qoe_per_chunk_mean: f64,
    /// Median over traces of QoE per chunk.
    pub qoe_per_chunk_median: f64,
    /// Mean over traces of the per-trace QoE total (chunks 1..).
    pub qoe_total_mean: f64,
    /// Mean over traces of the mean bitrate, Mbit/s.
    pub bitrate_mbps_mean: f64,
    /// Stall time summed over all traces (chunks 1..), s.
    pub rebuffer_s_total: f64,
    /// Mean start-up delay (chunk 0), s.
    pub startup_s_mean: f64,
    /// Mean over traces of the mean |bitrate change|, Mbit/s.
    pub switch_mbps_mean: f64,
    /// Mean over traces of the number of rendition switches.
    pub switches_mean: f64,
    /// `qoe_per_chunk_mean` over the offline optimum's on the same traces, when it was
    /// computed alongside.
    pub share_of_optimum: Option<f64>,
    /// Per-trace figures, in trace order.
    pub per_trace: Vec<TraceScore>,
}

fn mean(xs: impl ExactSizeIterator<Item = f64>) -> f64 {
    let n = xs.len().max(1) as f64;
    xs.sum::<f64>() / n
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => 0.0,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

/// Summarises per-trace scores.
pub fn summarise(abr: Contender, per_trace: Vec<TraceScore>) -> SetReport {
    let col = |f: fn(&TraceScore) -> f64| per_trace.iter().map(f).collect::<Vec<f64>>();
    SetReport {
        abr,
        traces: per_trace.len(),
        qoe_per_chunk_mean: mean(col(|t| t.qoe_per_chunk).into_iter()),
        qoe_per_chunk_median: median(col(|t| t.qoe_per_chunk)),
        qoe_total_mean: mean(col(|t| t.qoe_total).into_iter()),
        bitrate_mbps_mean: mean(col(|t| t.bitrate_mbps_mean).into_iter()),
        rebuffer_s_total: col(|t| t.rebuffer_s).iter().sum(),
        startup_s_mean: mean(col(|t| t.startup_s).into_iter()),
        switch_mbps_mean: mean(col(|t| t.switch_mbps_mean).into_iter()),
        switches_mean: mean(col(|t| t.switches as f64).into_iter()),
        share_of_optimum: None,
        per_trace,
    }
}

/// A fixed-width table, one row per report.
pub fn table(reports: &[SetReport]) -> String {
    let mut out = format!(
        "{:<12} {:>6} {:>9} {:>9} {:>9} {:>9} {:>10} {:>9} {:>8} {:>8}\n",
        "abr",
        "traces",
        "qoe/chunk",
        "median",
        "qoe total",
        "Mbit/s",
        "rebuf s",
        "switch",
        "switches",
        "share"
    );
    for r in reports {
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "{:<12} {:>6} {:>9.4} {:>9.4} {:>9.3} {:>9.3} {:>10.2} {:>9.3} {:>8.2} {:>8}",
            r.abr,
            r.traces,
            r.qoe_per_chunk_mean,
            r.qoe_per_chunk_median,
            r.qoe_total_mean,
            r.bitrate_mbps_mean,
            r.rebuffer_s_total,
            r.switch_mbps_mean,
            r.switches_mean,
            r.share_of_optimum
                .map_or_else(|| "-".to_owned(), |s| format!("{:.1}%", 100.0 * s))
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(quality: usize, bitrate_bps: u64, rebuf_s: f64, reward: f64) -> ChunkLog {
        ChunkLog {
            quality,
            bitrate_bps,
            buffer_after_s: 0.0,
            rebuf_s,
            delay_ms: 0.0,
            sleep_ms: 0.0,
            bytes: 0,
            reward,
        }
    }

    #[test]
    fn score_skips_chunk_zero() {
        let logs = [
            chunk(1, 750_000, 2.0, -7.85),
            chunk(0, 300_000, 0.5, 0.3 - 2.15 - 0.45),
            chunk(0, 300_000, 0.0, 0.3),
        ];
        let s = score("x", &logs);
        assert!((s.qoe_total - (0.3 - 2.15 - 0.45 + 0.3)).abs() < 1e-12);
        assert!((s.qoe_per_chunk - s.qoe_total / 2.0).abs() < 1e-12);
        assert!((s.bitrate_mbps_mean - 0.3).abs() < 1e-12);
        assert_eq!((s.rebuffer_s, s.startup_s, s.switches), (0.5, 2.0, 1));
        assert!((s.switch_mbps_mean - 0.225).abs() < 1e-12);
    }

    #[test]
    fn json_has_the_documented_fields() {
        let r = summarise(
            Contender::Abr(AbrKind::Bba),
            vec![score("t", &[chunk(1, 750_000, 0.0, 0.75)])],
        );
        let v = serde_json::to_value(&r).unwrap_or_default();
        for key in [
            "abr",
            "traces",
            "qoe_per_chunk_mean",
            "qoe_per_chunk_median",
            "bitrate_mbps_mean",
            "rebuffer_s_total",
            "switch_mbps_mean",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["per_trace"][0]["name"], "t");
        assert!(v["per_trace"][0]["qoe_per_chunk"].is_number());
    }

    #[test]
    fn median_table() {
        for (xs, want) in [
            (vec![], 0.0),
            (vec![3.0], 3.0),
            (vec![3.0, 1.0], 2.0),
            (vec![5.0, 1.0, 3.0], 3.0),
        ] {
            assert_eq!(median(xs.clone()), want, "{xs:?}");
        }
    }
}
