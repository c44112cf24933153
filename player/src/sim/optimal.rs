//! The offline optimum: the best QoE_lin any player could reach on a trace if it knew
//! the whole trace in advance, found by dynamic programming under the simulator's own
//! rules (the link clock, the RTT that does not advance it, the buffer cap and the
//! quantised sleep: [`fetch_chunk`] is the very step [`simulate`] takes).
//!
//! The state after chunk `k` is (rendition of chunk `k`, buffer level quantised to
//! `buffer_step_ms`). Each state keeps one representative path: the one with the best
//! QoE so far (more buffer on a tie), together with its exact link position and exact
//! buffer, so every transition is simulated exactly and only the merging of paths into
//! a state is approximate. Paths that land in one state differ by less than a step of
//! buffer and may differ in link clock (a path that stalled more is further along the
//! trace); a finer grid merges less. The plan found is then replayed through
//! [`simulate`], so the score reported is one the simulator really gives: a lower
//! bound on the true optimum that tightens as the grid shrinks (`player simulate
//! --optimal-step`, README "The offline optimum" for the convergence run).

use super::{
    ChunkLog, Link, Rules, SimError, Trace, Video, check_inputs, fetch_chunk, reward, simulate,
};
use crate::abr::{Abr, AbrInput};

/// Default buffer quantum of the optimum's state, ms: a five times finer grid (10 ms)
/// moves no shared set's mean by more than 0.0001 QoE per chunk (README, "The offline
/// optimum"; `tests/optimal.rs` checks 25 ms on a subset).
pub const BUFFER_STEP_MS: f64 = 50.0;

/// One state's representative path, as it stands after the chunk of its layer.
#[derive(Debug, Clone, Copy)]
struct Node<'a> {
    /// QoE of chunks 1..=k (chunk 0 is not scored).
    score: f64,
    buffer_ms: f64,
    link: Link<'a>,
}

/// The renditions, chunk by chunk, of the best plan found on `trace` (chunk 0 at the
/// forced first rendition), with buffer states quantised to `buffer_step_ms`.
pub fn plan(
    trace: &Trace,
    video: &Video,
    rules: &Rules,
    buffer_step_ms: f64,
) -> Result<Vec<usize>, SimError> {
    check_inputs(trace, video, rules)?;
    let renditions = video.bitrates_bps.len();
    let step = if buffer_step_ms.is_finite() && buffer_step_ms > 0.0 {
        buffer_step_ms
    } else {
        BUFFER_STEP_MS
    };
    // Buffer levels run from 0 to the cap (a sleep brings anything above it back).
    let levels = (rules.buffer_max_ms / step).ceil() as usize + 1;
    let index = |q: usize, buffer_ms: f64| {
        q * levels + ((buffer_ms.max(0.0) / step) as usize).min(levels - 1)
    };
    // Chunk 0 is forced; its reward is not scored.
    let mut link = Link::new(trace);
    let first = fetch_chunk(&mut link, rules, 0.0, video.sizes[0][rules.first_quality]);
    let mut layer: Vec<Option<Node<'_>>> = vec![None; renditions * levels];
    layer[index(rules.first_quality, first.buffer_ms)] = Some(Node {
        score: 0.0,
        buffer_ms: first.buffer_ms,
        link,
    });
    // parents[k - 1][state] = the state of chunk k - 1 the best path to `state` came from.
    let mut parents: Vec<Vec<u32>> = Vec::with_capacity(rules.chunks);
    for k in 1..rules.chunks {
        let mut next: Vec<Option<Node<'_>>> = vec![None; renditions * levels];
        let mut from = vec![u32::MAX; renditions * levels];
        for (state, node) in layer.iter().enumerate() {
            let Some(node) = node else { continue };
            let last_bps = video.bitrates_bps[state / levels];
            for (q, &bitrate_bps) in video.bitrates_bps.iter().enumerate() {
                let mut link = node.link;
                let fetched = fetch_chunk(&mut link, rules, node.buffer_ms, video.sizes[k][q]);
                let score =
                    node.score + reward(rules, bitrate_bps, last_bps, fetched.rebuf_ms / 1000.0);
                let to = index(q, fetched.buffer_ms);
                let better = next[to].is_none_or(|held| {
                    score > held.score
                        || (score == held.score && fetched.buffer_ms > held.buffer_ms)
                });
                if better {
                    next[to] = Some(Node {
                        score,
                        buffer_ms: fetched.buffer_ms,
                        link,
                    });
                    // States number at most renditions × (60 s / step): far below u32.
                    from[to] = state as u32;
                }
            }
        }
        parents.push(from);
        layer = next;
    }
    let mut state = layer
        .iter()
        .enumerate()
        .filter_map(|(s, n)| n.map(|n| (s, n.score)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(0, |(s, _)| s);
    let mut qualities = vec![rules.first_quality; rules.chunks];
    for k in (1..rules.chunks).rev() {
        qualities[k] = state / levels;
        state = parents[k - 1][state] as usize;
    }
    Ok(qualities)
}

/// Plays a fixed list of renditions, one per chunk, whatever it sees: how a plan of
/// [`plan`] is replayed through [`simulate`].
#[derive(Debug, Clone)]
pub struct Planned {
    qualities: Vec<usize>,
}

impl Planned {
    /// Plays `qualities[k]` for chunk `k`.
    pub fn new(qualities: Vec<usize>) -> Self {
        Self { qualities }
    }
}

impl Abr for Planned {
    fn name(&self) -> &'static str {
        "optimal"
    }

    fn choose(&mut self, input: &AbrInput<'_>) -> usize {
        // The next chunk's index is the number of chunks fetched so far.
        self.qualities
            .get(input.history.len())
            .copied()
            .unwrap_or(0)
            .min(input.top())
    }
}

/// Runs the optimum on `trace`: plans it, then replays the plan through the simulator.
pub fn simulate_optimal(
    trace: &Trace,
    video: &Video,
    rules: &Rules,
    buffer_step_ms: f64,
) -> Result<Vec<ChunkLog>, SimError> {
    let qualities = plan(trace, video, rules, buffer_step_ms)?;
    simulate(trace, video, rules, &mut Planned::new(qualities))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::abr::{AbrKind, AbrParams};
    use crate::sim::report::score;
    use crate::sim::tests::trace;

    fn video(chunks: usize) -> Video {
        let bitrates_bps = vec![300_000, 750_000, 1_200_000];
        let sizes = (0..chunks)
            .map(|_| bitrates_bps.iter().map(|b| b / 2).collect())
            .collect();
        Video {
            bitrates_bps,
            sizes,
        }
    }

    /// On a link far faster than the ladder the optimum climbs to the top at once and
    /// stays there.
    #[test]
    fn fast_link_goes_to_the_top_and_stays() {
        let t = trace(&[0.0, 1e4], &[0.0, 100.0]);
        let rules = Rules {
            chunks: 10,
            ..Rules::PENSIEVE
        };
        let q = plan(&t, &video(10), &rules, BUFFER_STEP_MS).unwrap();
        assert_eq!(q, [1, 2, 2, 2, 2, 2, 2, 2, 2, 2]);
    }

    /// A link that dies after a while: the optimum buffers ahead and never scores below
    /// any online algorithm, and its score is exactly what the simulator gives.
    #[test]
    fn beats_every_algorithm_on_a_link_that_fades() {
        let t = trace(
            &[0.0, 20.0, 40.0, 60.0, 80.0, 300.0],
            &[0.0, 2.0, 0.2, 1.5, 0.4, 1.0],
        );
        let v = video(48);
        let rules = Rules::PENSIEVE;
        let best = score(
            "t",
            &simulate_optimal(&t, &v, &rules, BUFFER_STEP_MS).unwrap(),
        );
        for kind in AbrKind::ALL {
            let mut abr = kind.build(&AbrParams::default());
            let got = score("t", &simulate(&t, &v, &rules, abr.as_mut()).unwrap());
            assert!(
                best.qoe_total >= got.qoe_total,
                "{kind}: {} > optimum {}",
                got.qoe_total,
                best.qoe_total
            );
        }
    }
}
