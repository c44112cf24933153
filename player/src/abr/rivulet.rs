//! Rivulet's own ABR: scenario MPC over a learned error distribution.
//!
//! Like robust MPC it plans a few segments ahead and scores plans with QoE_lin itself,
//! then plays the first step of the best plan. It differs in what it believes about the
//! link and in what it values at the end of the plan:
//!
//! - **A predictor that learns how wrong it is on this link.** The prediction is an
//!   exponentially weighted mean of log transfer throughput; each download adds one
//!   error, log(measured) − log(predicted before it). The scenarios of a plan are the
//!   prediction shifted by each of the last `window` errors, so the spread of the
//!   future is the spread of this link's own surprises. A prior set of errors learned
//!   offline on the training traces (`prior_log_errors`, weight `prior_weight` in
//!   downloads) keeps the tails the session has not met yet; its spread can follow the
//!   link's observed error size (`scale_exponent`: 0 keeps the training set's spread,
//!   1 takes the link's), so a steady link is not planned as if it were a 3G one.
//! - **Regime changes.** Links move between levels (a cell hand-over, a new bottleneck:
//!   FCC's traces hold a level for minutes, then step). Two errors in a row larger than
//!   `jump` and of one sign restart the predictor from the latest download instead of
//!   letting it drift over at the half-life's pace.
//! - **Stall risk from that distribution.** A plan's score is its mean QoE over the
//!   weighted scenarios; stall cost is convex in throughput, so the low tail of the
//!   error distribution, not a safety factor, keeps plans from running on empty.
//! - **Latency apart from throughput.** Throughput is measured over the body transfer
//!   (TTFB taken out) and a planned download takes TTFB + size / throughput, exactly as
//!   the simulator and a real session measure it (README, "Rivulet in real time").
//! - **Real sizes.** Each step uses the size of the segment it stands for (bitrate ×
//!   duration when sizes are unknown).
//! - **A buffer reserve at the horizon.** A short horizon happily drains the buffer
//!   because nothing after it counts. Each second the plan ends below `reserve_s` (at
//!   most half of the player's buffer) is charged like a second of stall. When the
//!   horizon covers all remaining segments no reserve is kept.
//! - **Few switches.** Plans change rendition at most once (hold `a` for `m` segments,
//!   then `c`); this prunes 6^h sequences to 36·h and rules out zig-zag plans.
//!
//! Every number above is a [`RivuletParams`] field, searched by `player tune` on
//! training traces; the defaults are the committed file `player/abr/rivulet.json`.

use serde::{Deserialize, Serialize};

use super::interface::{Abr, AbrInput, Download};

/// QoE_lin stall penalty per second (also what a second of missing reserve costs).
const REBUF_PENALTY: f64 = 4.3;

/// Downloads the predictor looks back over at most, so that a long live session costs
/// the same per decision as a short one; weights this old are below 2^-8 for the
/// half-lives searched.
const LOOKBACK: usize = 64;

/// The tuned parameters, as `player tune` writes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RivuletParams {
    /// Look-ahead in segments.
    pub horizon: usize,
    /// How many of the session's latest prediction errors give a scenario each.
    pub window: usize,
    /// Half-life of the throughput predictor, in downloads.
    pub half_life: f64,
    /// A regime change: when the last two errors are both larger than this (natural
    /// log of measured / predicted) and of one sign, the predictor restarts from the
    /// latest download instead of drifting over to the new level.
    pub jump: f64,
    /// Buffer the plan should leave at the end of the horizon, seconds (capped at half
    /// the player's maximum buffer).
    pub reserve_s: f64,
    /// Weight of the prior errors, in downloads' worth.
    pub prior_weight: f64,
    /// How far the prior's spread follows this link's: the prior errors are stretched
    /// by (link's mean error size / prior's) to this power; 0 keeps the training set's
    /// spread, 1 takes the link's.
    pub scale_exponent: f64,
    /// Errors (natural log of measured / predicted throughput) seen on the training
    /// traces, as evenly spaced quantiles: the scenarios before this link has shown
    /// its own.
    pub prior_log_errors: Vec<f64>,
}

impl Default for RivuletParams {
    /// The tuned defaults ([`super::AbrParams::default`]).
    fn default() -> Self {
        super::AbrParams::default().rivulet
    }
}

/// Scenario MPC over a learned error distribution (see the module docs).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rivulet {
    /// Its parameters.
    pub params: RivuletParams,
}

impl Rivulet {
    /// An instance with `params`.
    pub fn new(params: RivuletParams) -> Self {
        Self { params }
    }
}

/// A plan: rendition `a` for the first `hold` segments, then `c` for the rest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// First rendition.
    pub a: usize,
    /// Segments played at `a` (1..=horizon).
    pub hold: usize,
    /// Rendition after the switch.
    pub c: usize,
}

impl Plan {
    fn at(self, k: usize) -> usize {
        if k < self.hold { self.a } else { self.c }
    }
}

/// Every plan with at most one switch over `horizon` segments for `n` renditions, each
/// listed once, lower first renditions first.
pub fn plans(n: usize, horizon: usize) -> impl Iterator<Item = Plan> {
    (0..n).flat_map(move |a| {
        let constant = std::iter::once(Plan {
            a,
            hold: horizon,
            c: a,
        });
        let switching = (1..horizon).flat_map(move |hold| {
            (0..n)
                .filter(move |&c| c != a)
                .map(move |c| Plan { a, hold, c })
        });
        constant.chain(switching)
    })
}

/// The predictor's view of a session: its current prediction and its errors so far.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Natural log of the predicted transfer throughput, bit/s.
    pub log_bps: f64,
    /// log(measured) − log(predicted before it), oldest first (one per download after
    /// the first of the look-back).
    pub log_errors: Vec<f64>,
}

/// Runs the log-EWMA predictor with `half_life` (downloads) over the latest downloads
/// of `history`; `None` before any usable download.
pub fn predict(history: &[Download], half_life: f64, jump: f64) -> Option<Prediction> {
    let alpha = 1.0 - 0.5f64.powf(1.0 / half_life.max(1e-3));
    let mut samples = history[history.len().saturating_sub(LOOKBACK)..]
        .iter()
        .map(Download::transfer_bps)
        .filter(|bps| bps.is_finite() && *bps > 0.0)
        .map(f64::ln);
    let mut log_bps = samples.next()?;
    let mut log_errors = Vec::new();
    for sample in samples {
        let error = sample - log_bps;
        let shifted = log_errors.last().is_some_and(|&last: &f64| {
            error.abs() > jump && last.abs() > jump && error * last > 0.0
        });
        log_errors.push(error);
        log_bps = if shifted {
            sample
        } else {
            log_bps + alpha * error
        };
    }
    Some(Prediction {
        log_bps,
        log_errors,
    })
}

/// The weighted throughput scenarios (bit/s, weight) for the next downloads: the
/// prediction shifted by each of the last `window` errors (weight 1 each) and by each
/// prior error (`prior_weight` shared among them).
pub fn scenarios(input: &AbrInput<'_>, params: &RivuletParams) -> Vec<(f64, f64)> {
    let Some(p) = predict(input.history, params.half_life, params.jump) else {
        return Vec::new();
    };
    let own = &p.log_errors[p.log_errors.len().saturating_sub(params.window)..];
    let prior_each = if params.prior_log_errors.is_empty() {
        0.0
    } else {
        params.prior_weight.max(0.0) / params.prior_log_errors.len() as f64
    };
    // The prior's shape is the training set's; its scale is this link's, as far as the
    // link has shown it: the mean size of its errors, shrunk to the prior's own by
    // `prior_weight` downloads' worth.
    let mean_abs = |xs: &[f64]| xs.iter().map(|e| e.abs()).sum::<f64>() / xs.len().max(1) as f64;
    let prior_scale = mean_abs(&params.prior_log_errors);
    let seen = p.log_errors.len() as f64;
    let w = params.prior_weight.max(0.0);
    let link_scale = if seen + w > 0.0 {
        (w * prior_scale + seen * mean_abs(&p.log_errors)) / (w + seen)
    } else {
        prior_scale
    };
    let stretch = if prior_scale > 0.0 && link_scale > 0.0 {
        (link_scale / prior_scale).powf(params.scale_exponent)
    } else {
        1.0
    };
    let mut out: Vec<(f64, f64)> = own
        .iter()
        .map(|e| ((p.log_bps + e).exp(), 1.0))
        .chain(
            params
                .prior_log_errors
                .iter()
                .map(|e| ((p.log_bps + stretch * e).exp(), prior_each)),
        )
        .filter(|(bps, w)| bps.is_finite() && *bps > 0.0 && *w > 0.0)
        .collect();
    if out.is_empty() {
        // No errors known and no prior: the prediction itself.
        out.push((p.log_bps.exp(), 1.0));
    }
    out
}

/// What one plan is worth under one throughput scenario.
#[derive(Debug, Clone, Copy)]
struct Rollout<'a, 'b> {
    input: &'a AbrInput<'b>,
    horizon: usize,
    latency_s: f64,
    /// Reserve charged at the end; 0 when the horizon reaches the end of the video.
    reserve_s: f64,
}

impl Rollout<'_, '_> {
    /// QoE_lin of `plan` over the horizon at constant throughput `bps`, minus the
    /// reserve shortfall.
    fn value(&self, plan: Plan, bps: f64) -> f64 {
        let input = self.input;
        let mbps = |q: usize| input.bitrates_bps[q] as f64 / 1e6;
        let mut buffer = input.buffer_s;
        let mut prev = input
            .last_quality
            .filter(|&q| q < input.bitrates_bps.len())
            .unwrap_or(plan.a);
        let mut qoe = 0.0;
        for k in 0..self.horizon {
            let q = plan.at(k);
            let download_s = self.latency_s + input.size_bytes(k, q) * 8.0 / bps;
            let stall = (download_s - buffer).max(0.0);
            // Above the maximum the player idles, so the excess is not kept.
            buffer =
                ((buffer - download_s).max(0.0) + input.segment_duration_s).min(input.buffer_max_s);
            qoe += mbps(q) - REBUF_PENALTY * stall - (mbps(q) - mbps(prev)).abs();
            prev = q;
        }
        qoe - REBUF_PENALTY * (self.reserve_s - buffer).max(0.0)
    }
}

impl Abr for Rivulet {
    fn name(&self) -> &'static str {
        "rivulet"
    }

    fn choose(&mut self, input: &AbrInput<'_>) -> usize {
        let scen = scenarios(input, &self.params);
        if scen.is_empty() || input.bitrates_bps.is_empty() {
            return 0;
        }
        let horizon = input
            .segments_remaining
            .map_or(self.params.horizon, |r| r.min(self.params.horizon))
            .max(1);
        let ends_inside = input.segments_remaining.is_some_and(|r| r <= horizon);
        let rollout = Rollout {
            input,
            horizon,
            // The last request's latency stands for the next one's.
            latency_s: input
                .history
                .last()
                .and_then(|d| d.ttfb_ms)
                .map_or(0.0, |t| t.max(0.0) / 1000.0),
            reserve_s: if ends_inside {
                0.0
            } else {
                self.params.reserve_s.min(input.buffer_max_s / 2.0)
            },
        };
        let mut best = (f64::NEG_INFINITY, 0);
        for plan in plans(input.bitrates_bps.len(), horizon) {
            let score = scen
                .iter()
                .map(|&(bps, weight)| weight * rollout.value(plan, bps))
                .sum::<f64>();
            if score > best.0 {
                best = (score, plan.a);
            }
        }
        best.1
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::interface::test_util::{dl, input};
    use super::*;
    use crate::abr::Download;

    #[test]
    fn plans_are_distinct_and_switch_at_most_once() {
        for (n, h, want) in [(6, 1, 6), (6, 2, 36), (6, 6, 6 + 6 * 5 * 5), (1, 4, 1)] {
            let all: Vec<Plan> = plans(n, h).collect();
            assert_eq!(all.len(), want, "n {n} h {h}");
            let seqs: std::collections::BTreeSet<Vec<usize>> = all
                .iter()
                .map(|p| (0..h).map(|k| p.at(k)).collect())
                .collect();
            assert_eq!(seqs.len(), want, "duplicates for n {n} h {h}");
        }
    }

    /// Parameters fixed here, so that the tables do not move when the tuned file does.
    fn fixed() -> Rivulet {
        Rivulet::new(RivuletParams {
            horizon: 6,
            window: 8,
            half_life: 2.0,
            jump: f64::INFINITY,
            reserve_s: 20.0,
            prior_weight: 0.0,
            scale_exponent: 0.0,
            prior_log_errors: vec![-0.5, 0.0, 0.5],
        })
    }

    #[test]
    fn predictor_learns_level_and_errors_from_transfer_time() {
        assert_eq!(predict(&[], 2.0, f64::INFINITY), None);
        let with_ttfb = Download {
            quality: 0,
            bytes: 100_000,
            duration_ms: 1080.0,
            ttfb_ms: Some(80.0),
        };
        // 800 kbit/s over the transfer (TTFB out), after 1 then 2 Mbit/s.
        let h = [dl(0, 1e6), dl(0, 2e6), with_ttfb];
        let p = predict(&h, 1.0, f64::INFINITY).unwrap();
        // Half-life of one download: each sample moves the estimate halfway (in logs).
        let m1 = (1e6f64.ln() + 2e6f64.ln()) / 2.0;
        let want = [2e6f64.ln() - 1e6f64.ln(), 800_000f64.ln() - m1];
        assert_eq!(p.log_errors.len(), 2);
        for (got, want) in p.log_errors.iter().zip(want) {
            assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        }
        assert!((p.log_bps - (m1 + 800_000f64.ln()) / 2.0).abs() < 1e-9);
        // A steady link: no surprise, the estimate is the link.
        let p = predict(&[dl(2, 3e6); 5], 3.0, f64::INFINITY).unwrap();
        assert!(p.log_errors.iter().all(|e| e.abs() < 1e-9));
        assert!((p.log_bps.exp() - 3e6).abs() < 1e-3);
    }

    #[test]
    fn predictor_restarts_on_a_regime_change() {
        let mut h = vec![dl(0, 1e6); 6];
        h.extend([dl(0, 4e6); 2]);
        let drifting = predict(&h, 8.0, f64::INFINITY).unwrap();
        assert!(drifting.log_bps.exp() < 2e6, "{}", drifting.log_bps.exp());
        let restarted = predict(&h, 8.0, 0.5).unwrap();
        assert!((restarted.log_bps.exp() - 4e6).abs() < 1e-3);
        // The surprises are kept as errors all the same.
        assert_eq!(restarted.log_errors, drifting.log_errors[..7].to_vec());
        // One outlier alone is not a new regime.
        let mut blip = vec![dl(0, 1e6); 6];
        blip.extend([dl(0, 4e6), dl(0, 1e6)]);
        assert!(predict(&blip, 8.0, 0.5).unwrap().log_bps.exp() < 1.5e6);
    }

    #[test]
    fn the_prior_spread_follows_a_steady_link_as_far_as_told() {
        let mut params = fixed().params;
        params.prior_weight = 2.0;
        params.window = 1;
        let steady = [dl(2, 3e6); 9];
        let spread = |exponent: f64| {
            let p = RivuletParams {
                scale_exponent: exponent,
                ..params.clone()
            };
            let s = scenarios(&input(10.0, &steady), &p);
            let lo = s.iter().map(|x| x.0).fold(f64::INFINITY, f64::min);
            let hi = s.iter().map(|x| x.0).fold(0.0, f64::max);
            hi / lo
        };
        // Prior errors ±0.5: the training set's spread is e^1 from low to high.
        assert!((spread(0.0) - 1f64.exp()).abs() < 1e-9);
        // Eight exact downloads against two downloads' worth of prior: a fifth of it.
        assert!((spread(1.0) - 0.2f64.exp()).abs() < 1e-9, "{}", spread(1.0));
        assert!(spread(0.5) < spread(0.0) && spread(0.5) > spread(1.0));
    }

    #[test]
    fn scenarios_are_the_prediction_shifted_by_own_and_prior_errors() {
        let mut params = fixed().params;
        params.window = 2;
        params.prior_weight = 3.0;
        let h = [dl(0, 1e6), dl(0, 4e6), dl(0, 1e6), dl(0, 2e6)];
        let p = predict(&h, params.half_life, params.jump).unwrap();
        let s = scenarios(&input(5.0, &h), &params);
        assert_eq!(s.len(), 2 + 3, "two own errors, three prior ones");
        for (k, e) in p.log_errors[1..].iter().enumerate() {
            assert!((s[k].0 - (p.log_bps + e).exp()).abs() < 1e-6);
            assert_eq!(s[k].1, 1.0);
        }
        for (k, e) in params.prior_log_errors.iter().enumerate() {
            assert!((s[2 + k].0 - (p.log_bps + e).exp()).abs() < 1e-6);
            assert_eq!(s[2 + k].1, 1.0, "the prior's weight shared by its points");
        }
        // One download and no prior: the measurement itself.
        params.prior_weight = 0.0;
        let one = [dl(1, 1.5e6)];
        let s = scenarios(&input(5.0, &one), &params);
        assert_eq!(s.len(), 1);
        assert!((s[0].0 - 1.5e6).abs() < 1e-3);
    }

    /// (steady throughput bit/s, buffer s, segments remaining, expected choice)
    #[test]
    fn decisions_table() {
        for (bps, buffer, remaining, want) in [
            (20e6, 30.0, None, 5),     // fast link, full buffer: top
            (20e6, 2.0, None, 5),      // so fast that nothing can stall
            (0.2e6, 30.0, None, 0),    // below the ladder: bottom
            (2.0e6, 20.0, None, 3),    // 1850k fits a 2 Mb/s link and keeps the reserve
            (2.0e6, 30.0, None, 4),    // buffer above the reserve may be spent
            (2.0e6, 4.0, None, 1),     // same link, little buffer: lower to rebuild it
            (2.0e6, 30.0, Some(2), 5), // last segments: spend the buffer
        ] {
            let h = [dl(2, bps); 4];
            let mut i = input(buffer, &h);
            i.segments_remaining = remaining;
            assert_eq!(fixed().choose(&i), want, "{bps} {buffer} {remaining:?}");
        }
        assert_eq!(fixed().choose(&input(10.0, &[])), 0);
    }

    #[test]
    fn variable_link_is_treated_more_carefully_than_its_mean() {
        let steady = [dl(3, 2.5e6); 8];
        let mut swings = Vec::new();
        for k in 0..8 {
            swings.push(dl(3, if k % 2 == 0 { 4.5e6 } else { 0.5e6 }));
        }
        let q_steady = fixed().choose(&input(16.0, &steady));
        let q_swings = fixed().choose(&input(16.0, &swings));
        assert!(q_swings < q_steady, "{q_swings} vs {q_steady}");
    }
}
