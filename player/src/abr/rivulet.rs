//! Rivulet's own ABR: scenario MPC with a buffer reserve.
//!
//! Like robust MPC it plans a few segments ahead and scores plans with QoE_lin itself,
//! then plays the first step of the best plan. It differs in what it believes and in
//! what it values at the end of the plan:
//!
//! - **Scenarios instead of one prediction.** Each of the last `window` transfer
//!   throughputs is a scenario ("the link behaves as it did then"), and a plan's score is
//!   its mean QoE over the scenarios. Stall cost is convex in throughput, so a spread of
//!   recent samples costs a risky plan more than any single point estimate would,
//!   without a hand-made safety factor; a steady link lets the plan run close to it.
//! - **Latency apart from throughput.** Throughput is measured over the body transfer
//!   (TTFB taken out) and a planned download takes TTFB + size / throughput, so small
//!   segments are not mistaken for a slow link.
//! - **Real sizes.** Each step uses the size of the segment it stands for (bitrate ×
//!   duration when sizes are unknown).
//! - **A buffer reserve at the horizon.** A short horizon happily drains the buffer
//!   because nothing after it counts. Each second the plan ends below a reserve (20 s,
//!   at most half of the player's buffer) is charged like a second of stall, so the
//!   buffer is kept as insurance against fades deeper than anything in the window. Near
//!   the end of the video, when the horizon covers all remaining segments, no reserve
//!   is kept: buffer left at the end is worth nothing.
//! - **Few switches.** Plans change rendition at most once (hold `a` for `m` segments,
//!   then `c`); this prunes 6^h sequences to 36·h and rules out zig-zag plans.

use super::interface::{Abr, AbrInput};

/// QoE_lin stall penalty per second (also what a second of missing reserve costs).
const REBUF_PENALTY: f64 = 4.3;

/// Scenario MPC with a buffer reserve (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct Rivulet {
    /// Look-ahead in segments.
    pub horizon: usize,
    /// How many recent downloads give a throughput scenario each.
    pub window: usize,
    /// Buffer the plan should leave at the end of the horizon, seconds (capped at half
    /// the player's maximum buffer).
    pub reserve_s: f64,
}

impl Default for Rivulet {
    fn default() -> Self {
        Self {
            horizon: 6,
            window: 8,
            reserve_s: 20.0,
        }
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

/// The transfer throughputs (bit/s) of the last `window` downloads, oldest first.
pub fn scenarios(input: &AbrInput<'_>, window: usize) -> Vec<f64> {
    let h = input.history;
    h[h.len().saturating_sub(window)..]
        .iter()
        .map(|d| d.transfer_bps())
        .filter(|bps| bps.is_finite() && *bps > 0.0)
        .collect()
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
        let scen = scenarios(input, self.window);
        if scen.is_empty() || input.bitrates_bps.is_empty() {
            return 0;
        }
        let horizon = input
            .segments_remaining
            .map_or(self.horizon, |r| r.min(self.horizon))
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
                self.reserve_s.min(input.buffer_max_s / 2.0)
            },
        };
        let mut best = (f64::NEG_INFINITY, 0);
        for plan in plans(input.bitrates_bps.len(), horizon) {
            let score = scen
                .iter()
                .map(|&bps| rollout.value(plan, bps))
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

    #[test]
    fn scenarios_use_transfer_time_and_window() {
        let with_ttfb = Download {
            quality: 0,
            bytes: 100_000,
            duration_ms: 1080.0,
            ttfb_ms: Some(80.0),
        };
        let h = [dl(0, 1e6), dl(0, 2e6), with_ttfb];
        let s = scenarios(&input(5.0, &h), 2);
        assert_eq!(s.len(), 2);
        assert!(
            (s[0] - 2e6).abs() < 1e-3 && (s[1] - 800_000.0).abs() < 1e-6,
            "{s:?}"
        );
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
            assert_eq!(
                Rivulet::default().choose(&i),
                want,
                "{bps} {buffer} {remaining:?}"
            );
        }
        assert_eq!(Rivulet::default().choose(&input(10.0, &[])), 0);
    }

    #[test]
    fn variable_link_is_treated_more_carefully_than_its_mean() {
        let steady = [dl(3, 2.5e6); 8];
        let mut swings = Vec::new();
        for k in 0..8 {
            swings.push(dl(3, if k % 2 == 0 { 4.5e6 } else { 0.5e6 }));
        }
        let q_steady = Rivulet::default().choose(&input(16.0, &steady));
        let q_swings = Rivulet::default().choose(&input(16.0, &swings));
        assert!(q_swings < q_steady, "{q_swings} vs {q_steady}");
    }
}
