//! Throughput rule in the style of hls.js: two exponentially weighted moving averages of
//! the transfer throughput (TTFB taken out, as hls.js does), weighted by download time,
//! one with a short and one with a long half-life; the lower of the two, times a safety
//! factor, picks the rendition. Going up uses a stricter factor than staying or going
//! down, which damps oscillation.

use super::interface::{Abr, AbrInput, Download, highest_at_most};

/// Dual-EWMA throughput estimate (bit/s), zero-bias corrected as hls.js does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DualEwma {
    /// Half-life of the fast average, in seconds of download time.
    pub fast_half_life_s: f64,
    /// Half-life of the slow average, in seconds of download time.
    pub slow_half_life_s: f64,
}

impl Default for DualEwma {
    /// hls.js VOD defaults.
    fn default() -> Self {
        Self {
            fast_half_life_s: 3.0,
            slow_half_life_s: 9.0,
        }
    }
}

impl DualEwma {
    /// The estimate in bit/s over `history`, or `None` without samples.
    pub fn estimate(&self, history: &[Download]) -> Option<f64> {
        let fast = ewma(self.fast_half_life_s, history)?;
        let slow = ewma(self.slow_half_life_s, history)?;
        Some(fast.min(slow))
    }
}

/// One EWMA where each sample weighs its download time in seconds; dividing by
/// `1 - alpha^total_weight` removes the bias towards the zero start value.
fn ewma(half_life_s: f64, history: &[Download]) -> Option<f64> {
    let alpha = 0.5f64.powf(1.0 / half_life_s);
    let (mut est, mut total) = (0.0, 0.0);
    for d in history {
        let w = (d.duration_ms / 1000.0).max(1e-3);
        let a = alpha.powf(w);
        est = a * est + (1.0 - a) * d.transfer_bps();
        total += w;
    }
    (total > 0.0).then(|| est / (1.0 - alpha.powf(total)))
}

/// hls.js-style throughput ABR.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throughput {
    /// The estimator.
    pub ewma: DualEwma,
    /// Fraction of the estimate usable when staying or switching down.
    pub factor: f64,
    /// Fraction of the estimate usable when switching up.
    pub up_factor: f64,
}

impl Default for Throughput {
    /// hls.js defaults (`abrBandWidthFactor` 0.95, `abrBandWidthUpFactor` 0.7).
    fn default() -> Self {
        Self {
            ewma: DualEwma::default(),
            factor: 0.95,
            up_factor: 0.7,
        }
    }
}

impl Abr for Throughput {
    fn name(&self) -> &'static str {
        "throughput"
    }

    fn choose(&mut self, input: &AbrInput<'_>) -> usize {
        let Some(est) = self.ewma.estimate(input.history) else {
            return 0;
        };
        let down = highest_at_most(input.bitrates_bps, est * self.factor);
        let up = highest_at_most(input.bitrates_bps, est * self.up_factor);
        match input.last_quality {
            Some(last) if down > last => up.max(last),
            _ => down,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::interface::test_util::{dl, input};
    use super::*;

    #[test]
    fn constant_throughput_is_estimated_exactly() {
        let h = [dl(1, 2e6), dl(2, 2e6), dl(0, 2e6)];
        let est = DualEwma::default().estimate(&h).unwrap();
        assert!((est - 2e6).abs() < 1e-6, "{est}");
        assert_eq!(DualEwma::default().estimate(&[]), None);
    }

    #[test]
    fn drop_is_followed_fast_and_rise_slowly() {
        let e = DualEwma::default();
        let mut h = vec![dl(3, 4e6); 10];
        h.push(dl(3, 1e6));
        let after_drop = e.estimate(&h).unwrap();
        let mut h2 = vec![dl(3, 1e6); 10];
        h2.push(dl(3, 4e6));
        let after_rise = e.estimate(&h2).unwrap();
        assert!(after_drop < 3e6, "{after_drop}");
        assert!(after_rise < 2.5e6, "{after_rise}");
    }

    #[test]
    fn decisions_table() {
        // (history throughput bit/s, last quality, expected choice)
        for (bps, last, want) in [
            (1e6, 1, 1),   // 0.95 Mb/s: stay at 750k
            (2e6, 1, 2),   // up needs 0.7×2 = 1.4 Mb/s → 1200k
            (2e6, 4, 3),   // down uses 0.95×2 = 1.9 Mb/s → 1850k
            (10e6, 0, 5),  // plenty
            (200e3, 3, 0), // below the ladder
            (1.3e6, 2, 2), // 1.235 Mb/s keeps 1200k
        ] {
            let h = [dl(last, bps), dl(last, bps)];
            let mut abr = Throughput::default();
            assert_eq!(abr.choose(&input(10.0, &h)), want, "{bps} from {last}");
        }
        assert_eq!(Throughput::default().choose(&input(0.0, &[])), 0);
    }
}
