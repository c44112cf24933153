//! BOLA (Spiteri, Urgaonkar, Sitaraman, INFOCOM 2016) in the shape dash.js runs it:
//! a throughput rule during startup, then the Lyapunov buffer rule
//! `argmax_m (V·(υ_m + γp) − Q) / S_m` with logarithmic utilities, a placeholder
//! buffer so that the switch from the throughput rule is seamless, and BOLA-O's guard
//! that only lets the buffer rule step up as far as throughput supports.

use super::interface::{Abr, AbrInput, highest_at_most};
use super::throughput::DualEwma;

/// BOLA with dash.js's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Bola {
    /// Buffer level at which the lowest rendition stops being chosen, seconds.
    pub minimum_buffer_s: f64,
    /// Extra target buffer per rendition, seconds (dash.js: 2 s).
    pub buffer_per_level_s: f64,
    /// Lower bound on the buffer target, seconds (dash.js `stableBufferTime`).
    pub stable_buffer_s: f64,
    /// Fraction of the throughput estimate the startup and guard rules may use.
    pub safety: f64,
    /// Throughput estimator.
    pub ewma: DualEwma,
    placeholder_s: f64,
    steady: bool,
}

impl Default for Bola {
    fn default() -> Self {
        Self {
            minimum_buffer_s: 10.0,
            buffer_per_level_s: 2.0,
            stable_buffer_s: 12.0,
            safety: 0.9,
            ewma: DualEwma::default(),
            placeholder_s: 0.0,
            steady: false,
        }
    }
}

/// BOLA's control parameters for one ladder.
#[derive(Debug, Clone, PartialEq)]
struct Params {
    utilities: Vec<f64>,
    gp: f64,
    vp: f64,
}

impl Bola {
    fn params(&self, input: &AbrInput<'_>) -> Params {
        let base = input.bitrates_bps[0].max(1) as f64;
        // ln(bitrate ratio), shifted so the lowest rendition has utility 1.
        let utilities: Vec<f64> = input
            .bitrates_bps
            .iter()
            .map(|&b| (b.max(1) as f64 / base).ln() + 1.0)
            .collect();
        let target = self
            .stable_buffer_s
            .max(self.minimum_buffer_s + self.buffer_per_level_s * input.bitrates_bps.len() as f64);
        let top_utility = utilities.last().copied().unwrap_or(1.0);
        // A one-rendition ladder has nothing to trade: any positive gp will do.
        let gp = ((top_utility - 1.0) / (target / self.minimum_buffer_s - 1.0)).max(1e-9);
        let vp = self.minimum_buffer_s / gp;
        Params { utilities, gp, vp }
    }

    /// The buffer rule's choice at virtual buffer level `buffer_s`.
    fn quality_for_buffer(p: &Params, bitrates: &[u64], buffer_s: f64) -> usize {
        let score = |q: usize| (p.vp * (p.utilities[q] + p.gp) - buffer_s) / bitrates[q] as f64;
        (0..bitrates.len()).fold(0, |best, q| if score(q) >= score(best) { q } else { best })
    }

    /// The lowest buffer level at which the buffer rule picks `q` over `q - 1`.
    fn min_buffer_for(p: &Params, bitrates: &[u64], q: usize) -> f64 {
        if q == 0 {
            return 0.0;
        }
        let (b, b1) = (bitrates[q] as f64, bitrates[q - 1] as f64);
        let (u, u1) = (p.utilities[q], p.utilities[q - 1]);
        p.vp * (p.gp + (b * u1 - b1 * u) / (b - b1))
    }
}

impl Abr for Bola {
    fn name(&self) -> &'static str {
        "bola"
    }

    fn choose(&mut self, input: &AbrInput<'_>) -> usize {
        let bitrates = input.bitrates_bps;
        let p = self.params(input);
        let by_throughput = self
            .ewma
            .estimate(input.history)
            .map_or(0, |bps| highest_at_most(bitrates, bps * self.safety));
        if !self.steady {
            // Startup: throughput rule, and pretend the buffer already holds what the
            // buffer rule would need for that choice.
            self.placeholder_s =
                (Self::min_buffer_for(&p, bitrates, by_throughput) - input.buffer_s).max(0.0);
            self.steady = input.buffer_s >= input.segment_duration_s;
            return by_throughput;
        }
        if input.stall_s > 0.0 {
            // As dash.js: after a stall the placeholder must not hold the quality up.
            self.placeholder_s = 0.0;
        }
        let mut q = Self::quality_for_buffer(&p, bitrates, input.buffer_s + self.placeholder_s);
        let last = input.last_quality.unwrap_or(0);
        if q > last && q > by_throughput {
            q = by_throughput.max(last);
        }
        // As dash.js: the virtual buffer above the level where even `q` stops paying
        // (score ≤ 0) is taken out of the placeholder. dash.js would also idle for any
        // excess beyond the placeholder; the session's own buffer cap covers that.
        let ceiling = p.vp * (p.utilities[q] + p.gp);
        let excess = (input.buffer_s + self.placeholder_s - ceiling).max(0.0);
        self.placeholder_s = (self.placeholder_s - excess).max(0.0);
        q
    }
}

#[cfg(test)]
mod tests {
    use super::super::interface::test_util::{LADDER, dl, input};
    use super::*;

    #[test]
    fn buffer_rule_climbs_with_buffer() {
        let bola = Bola::default();
        let i = input(0.0, &[]);
        let p = bola.params(&i);
        let mut last = 0;
        for b in [0.0, 5.0, 10.0, 12.0, 14.0, 16.0, 18.0, 20.0, 22.0, 30.0] {
            let q = Bola::quality_for_buffer(&p, &LADDER, b);
            assert!(q >= last, "buffer {b}: {q} < {last}");
            last = q;
        }
        assert_eq!(Bola::quality_for_buffer(&p, &LADDER, 0.0), 0);
        assert_eq!(Bola::quality_for_buffer(&p, &LADDER, 30.0), 5);
    }

    #[test]
    fn thresholds_are_where_the_rule_switches() {
        let bola = Bola::default();
        let p = bola.params(&input(0.0, &[]));
        for q in 1..LADDER.len() {
            let t = Bola::min_buffer_for(&p, &LADDER, q);
            assert!(
                Bola::quality_for_buffer(&p, &LADDER, t + 1e-6) >= q,
                "q {q} at {t}"
            );
            assert!(
                Bola::quality_for_buffer(&p, &LADDER, t - 1e-6) < q,
                "q {q} at {t}"
            );
        }
    }

    #[test]
    fn startup_uses_throughput_then_guard_limits_steps_up() {
        let mut bola = Bola::default();
        let h = [dl(1, 1.5e6)];
        // 0.9 × 1.5 Mb/s → 1200k during startup.
        assert_eq!(bola.choose(&input(4.0, &h)), 2);
        // Large buffer but throughput only supports 1200k: no step above it.
        let h2 = [dl(1, 1.5e6), dl(2, 1.5e6)];
        assert_eq!(bola.choose(&input(40.0, &h2)), 2);
        // With fast throughput the buffer rule decides.
        let h3 = [dl(5, 20e6), dl(5, 20e6), dl(5, 20e6)];
        assert_eq!(bola.choose(&input(40.0, &h3)), 5);
        assert_eq!(bola.choose(&input(0.5, &h3)), 0);
    }
}
