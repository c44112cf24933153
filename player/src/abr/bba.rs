//! Buffer-based adaptation (Huang et al., SIGCOMM 2014), in the form Pensieve's `bb.py`
//! uses: below the reservoir fetch the lowest rendition, above reservoir + cushion the
//! highest, and in between step linearly through the rendition indices.

use super::interface::{Abr, AbrInput};

/// Buffer-based ABR with a reservoir and a cushion (seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bba {
    /// Buffer below which the lowest rendition is fetched, seconds.
    pub reservoir_s: f64,
    /// Width of the buffer band over which the choice climbs to the top rendition, seconds.
    pub cushion_s: f64,
}

impl Default for Bba {
    /// Pensieve's parameters (reservoir 5 s, cushion 10 s), which reproduce its reference.
    fn default() -> Self {
        Self {
            reservoir_s: 5.0,
            cushion_s: 10.0,
        }
    }
}

impl Bba {
    /// The rendition for a buffer level, with `top` the highest index.
    pub fn quality_for_buffer(&self, buffer_s: f64, top: usize) -> usize {
        if buffer_s < self.reservoir_s {
            0
        } else if buffer_s >= self.reservoir_s + self.cushion_s {
            top
        } else {
            // Same operation order as the reference so the floor lands identically.
            let q = top as f64 * (buffer_s - self.reservoir_s) / self.cushion_s;
            (q as usize).min(top)
        }
    }
}

impl Abr for Bba {
    fn name(&self) -> &'static str {
        "bba"
    }

    fn choose(&mut self, input: &AbrInput<'_>) -> usize {
        self.quality_for_buffer(input.buffer_s, input.top())
    }
}

#[cfg(test)]
mod tests {
    use super::super::interface::test_util::input;
    use super::*;

    #[test]
    fn pensieve_map_table() {
        let bba = Bba::default();
        for (buffer, want) in [
            (0.0, 0),
            (4.999, 0),
            (5.0, 0),
            (6.99, 0),
            (7.0, 1),
            (10.0, 2),
            (14.99, 4),
            (15.0, 5),
            (60.0, 5),
        ] {
            assert_eq!(bba.quality_for_buffer(buffer, 5), want, "buffer {buffer}");
        }
    }

    #[test]
    fn choose_uses_buffer_and_ladder_size() {
        let mut bba = Bba::default();
        assert_eq!(bba.choose(&input(12.0, &[])), 3);
        let small = Bba {
            reservoir_s: 2.0,
            cushion_s: 4.0,
        };
        assert_eq!(small.quality_for_buffer(4.0, 2), 1);
    }
}
