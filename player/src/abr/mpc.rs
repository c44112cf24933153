//! Robust MPC (Yin et al., SIGCOMM 2015) exactly as Pensieve's `test/mpc.py` runs it,
//! quirks included, so that it reproduces the reference logs bit for bit:
//!
//! - throughput samples are `bytes / delay_ms / 1000` (MB/s, request latency included);
//! - the estimate is the harmonic mean of the last ≤5 samples, divided by one plus the
//!   largest of the last ≤5 relative errors of the previous estimates;
//! - every bitrate sequence over the horizon is scored with QoE_lin, but the size looked
//!   up for horizon position `i` is that of the segment *after* the one it stands for;
//! - ties go to the lexicographically last sequence.

use super::interface::{Abr, AbrInput, Download};

/// How many recent samples and errors robust MPC looks at.
const WINDOW: usize = 5;
/// QoE_lin stall penalty per second.
const REBUF_PENALTY: f64 = 4.3;

/// Robust MPC as in the Pensieve reference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RobustMpc {
    /// Look-ahead in segments.
    pub horizon: usize,
}

impl Default for RobustMpc {
    fn default() -> Self {
        Self { horizon: 5 }
    }
}

/// Reference throughput sample in MB/s: bytes per millisecond of the whole request / 1000.
fn sample_mbyte_s(d: &Download) -> f64 {
    d.bytes as f64 / d.duration_ms / 1000.0
}

/// Harmonic mean of the ≤5 samples ending at index `k`, summed oldest first as the
/// reference does.
fn harmonic_at(samples: &[f64], k: usize) -> f64 {
    let window = &samples[(k + 1).saturating_sub(WINDOW)..=k];
    let sum: f64 = window.iter().fold(0.0, |acc, s| acc + 1.0 / s);
    1.0 / (sum / window.len() as f64)
}

/// Robust throughput prediction in MB/s from the whole session history, or `None`
/// without samples.
pub fn robust_prediction(history: &[Download]) -> Option<f64> {
    let n = history.len();
    let last = n.checked_sub(1)?;
    // Only the samples that feed the last 5 errors and their estimates matter.
    let from = n.saturating_sub(2 * WINDOW);
    let samples: Vec<f64> = history[from..].iter().map(sample_mbyte_s).collect();
    let error = |k: usize| {
        // k indexes `history`; the session's very first sample has no earlier estimate.
        if k == 0 {
            0.0
        } else {
            let s = samples[k - from];
            (harmonic_at(&samples, k - 1 - from) - s).abs() / s
        }
    };
    let max_error = (n.saturating_sub(WINDOW)..n).map(error).fold(0.0, f64::max);
    Some(harmonic_at(&samples, last - from) / (1.0 + max_error))
}

/// Running totals of one partial bitrate sequence in the exhaustive search.
#[derive(Debug, Clone, Copy)]
struct Partial {
    buffer_s: f64,
    rebuf_s: f64,
    bitrate_sum_bps: u64,
    switch_sum_bps: u64,
    last: usize,
    first: usize,
}

/// Exhaustive search state: the best score so far and its first rendition.
#[derive(Debug)]
struct Search<'a, 'b> {
    input: &'a AbrInput<'b>,
    mbyte_s: f64,
    horizon: usize,
    best: f64,
    best_first: usize,
}

impl Search<'_, '_> {
    /// The reference's one-ahead size lookup: position `i` reads segment `next + i + 1`,
    /// 0 past the end of the known sizes (bitrate-based when no sizes are known at all).
    fn size_bytes(&self, i: usize, q: usize) -> f64 {
        if self.input.upcoming_sizes.is_empty() {
            self.input.size_bytes(i + 1, q)
        } else {
            self.input
                .upcoming_sizes
                .get(i + 1)
                .and_then(|row| row.get(q))
                .map_or(0.0, |&s| s as f64)
        }
    }

    /// Depth-first in lexicographic order; shares prefixes but performs, per sequence,
    /// exactly the reference's floating-point operations.
    fn visit(&mut self, depth: usize, p: Partial) {
        if depth == self.horizon {
            let score = p.bitrate_sum_bps as f64 / 1e6
                - REBUF_PENALTY * p.rebuf_s
                - p.switch_sum_bps as f64 / 1e6;
            if score >= self.best {
                self.best = score;
                self.best_first = p.first;
            }
            return;
        }
        for q in 0..self.input.bitrates_bps.len() {
            let download_s = (self.size_bytes(depth, q) / 1e6) / self.mbyte_s;
            let mut next = p;
            if next.buffer_s < download_s {
                next.rebuf_s += download_s - next.buffer_s;
                next.buffer_s = 0.0;
            } else {
                next.buffer_s -= download_s;
            }
            next.buffer_s += self.input.segment_duration_s;
            let (rate, prev) = (self.input.bitrates_bps[q], self.input.bitrates_bps[p.last]);
            next.bitrate_sum_bps += rate;
            next.switch_sum_bps += rate.abs_diff(prev);
            next.last = q;
            if depth == 0 {
                next.first = q;
            }
            self.visit(depth + 1, next);
        }
    }
}

impl Abr for RobustMpc {
    fn name(&self) -> &'static str {
        "robust-mpc"
    }

    fn choose(&mut self, input: &AbrInput<'_>) -> usize {
        let Some(mbyte_s) = robust_prediction(input.history) else {
            return 0;
        };
        let horizon = input
            .segments_remaining
            .map_or(self.horizon, |r| r.min(self.horizon));
        let last = input.last_quality.unwrap_or(0).min(input.top());
        if horizon == 0 {
            return last;
        }
        let mut search = Search {
            input,
            mbyte_s,
            horizon,
            best: f64::NEG_INFINITY,
            best_first: 0,
        };
        search.visit(
            0,
            Partial {
                buffer_s: input.buffer_s,
                rebuf_s: 0.0,
                bitrate_sum_bps: 0,
                switch_sum_bps: 0,
                last,
                first: 0,
            },
        );
        search.best_first
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::interface::test_util::input;
    use super::*;

    fn d(bytes: u64, duration_ms: f64) -> Download {
        Download {
            quality: 1,
            bytes,
            duration_ms,
            ttfb_ms: Some(80.0),
        }
    }

    #[test]
    fn prediction_table() {
        // 1 MB/s then 0.5 MB/s: harmonic 2/3; error of 2nd = |1 − 0.5|/0.5 = 1.
        let cases: [(&[Download], f64); 3] = [
            (&[d(1_000_000, 1000.0)], 1.0),
            (
                &[d(1_000_000, 1000.0), d(1_000_000, 2000.0)],
                (2.0 / 3.0) / 2.0,
            ),
            (&[d(2_000_000, 1000.0); 7], 2.0),
        ];
        for (h, want) in cases {
            let got = robust_prediction(h).unwrap();
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
        assert_eq!(robust_prediction(&[]), None);
    }

    #[test]
    fn old_errors_age_out() {
        // A big miss followed by 5 exact samples leaves no error discount.
        let mut h = vec![d(1_000_000, 1000.0), d(1_000_000, 100.0)];
        h.extend([d(1_000_000, 100.0); 9]);
        assert!((robust_prediction(&h).unwrap() - 10.0).abs() < 1e-9);
    }

    #[test]
    fn plenty_of_buffer_and_bandwidth_picks_top_and_scarce_picks_bottom() {
        let fast = [d(5_000_000, 1000.0); 3];
        let mut mpc = RobustMpc::default();
        assert_eq!(mpc.choose(&input(20.0, &fast)), 5);
        let slow = [d(20_000, 1000.0); 3];
        assert_eq!(mpc.choose(&input(1.0, &slow)), 0);
    }

    #[test]
    fn uses_the_size_one_segment_ahead() {
        // The next segment is huge at every rendition but the one after is tiny: the
        // quirk makes the reference ignore the huge one.
        let sizes = vec![vec![100_000_000; 6], vec![1; 6]];
        let h = [d(1_000_000, 1000.0); 2];
        let mut i = input(10.0, &h);
        i.upcoming_sizes = &sizes;
        i.segments_remaining = Some(1);
        assert_eq!(RobustMpc::default().choose(&i), 5);
    }
}
