//! Deterministic trace-driven simulator in virtual time, following the rules of
//! Pensieve's `test/fixed_env.py` (see `tests/data/abr/README.md`, "Simulator rules"), so
//! that the reference algorithms reproduce the reference logs to the last bit.
//!
//! Everything here is a pure function over plain data; reading files lives in [`load`],
//! and the summaries the CLI prints live in [`report`].

pub mod load;
pub mod optimal;
pub mod report;
pub mod tune;

use crate::abr::{Abr, AbrInput, Download};

/// `f` over every item, on every core the machine offers, results in item order; the
/// first error wins.
pub fn par_map<T: Sync, R: Send, E: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E> {
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(items.len())
        .max(1);
    if workers == 1 {
        return items.iter().map(f).collect();
    }
    let f = &f;
    // Worker w takes items w, w + workers, …: traces of one folder have similar costs.
    let parts: Vec<Vec<(usize, Result<R, E>)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                scope.spawn(move || {
                    items
                        .iter()
                        .enumerate()
                        .skip(w)
                        .step_by(workers)
                        .map(|(i, item)| (i, f(item)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut all: Vec<(usize, Result<R, E>)> = parts.into_iter().flatten().collect();
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, r)| r).collect()
}

/// A network trace: throughput `mbps[i]` holds over the interval ending at `times_s[i]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// File name of the trace.
    pub name: String,
    /// Sample times, seconds, strictly increasing.
    pub times_s: Vec<f64>,
    /// Throughput, Mbit/s (10^6 bit/s).
    pub mbps: Vec<f64>,
}

impl Trace {
    /// Why the simulator cannot run over this trace, if it cannot: it needs two or more
    /// samples, strictly increasing finite times, finite non-negative throughput, and
    /// some throughput after the first sample (whose value is never used) or no download
    /// would ever finish.
    pub fn problem(&self) -> Option<&'static str> {
        let (t, bw) = (&self.times_s, &self.mbps);
        if t.len() != bw.len() {
            Some("times and throughputs differ in number")
        } else if t.len() < 2 {
            Some("a trace needs at least two samples")
        } else if t.iter().any(|x| !x.is_finite() || *x < 0.0) || t.windows(2).any(|w| w[1] <= w[0])
        {
            Some("times must be finite, non-negative and strictly increasing")
        } else if bw.iter().any(|x| !x.is_finite() || *x < 0.0) {
            Some("throughput must be finite and non-negative")
        } else if bw[1..].iter().all(|&x| x == 0.0) {
            Some("throughput is zero throughout; nothing could download")
        } else {
            None
        }
    }
}

/// A video: its ladder and the size of every chunk at every rendition.
#[derive(Debug, Clone, PartialEq)]
pub struct Video {
    /// Bitrates in bit/s, ascending.
    pub bitrates_bps: Vec<u64>,
    /// `sizes[chunk][quality]` in bytes. May list more chunks than are played.
    pub sizes: Vec<Vec<u64>>,
}

/// The simulator's constants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    /// Request round trip added to every chunk's delay, ms.
    pub rtt_ms: f64,
    /// Fraction of the link's bytes that are payload.
    pub payload_fraction: f64,
    /// Buffer above which the player sleeps, ms.
    pub buffer_max_ms: f64,
    /// Sleep quantum, ms.
    pub drain_quantum_ms: f64,
    /// Media per chunk, ms.
    pub chunk_ms: f64,
    /// Chunks played per trace.
    pub chunks: usize,
    /// Quality of chunk 0, fetched before the ABR is asked (also R_{-1}).
    pub first_quality: usize,
    /// QoE_lin stall penalty per second.
    pub rebuf_penalty: f64,
}

impl Rules {
    /// Pensieve's constants.
    pub const PENSIEVE: Rules = Rules {
        rtt_ms: 80.0,
        payload_fraction: 0.95,
        buffer_max_ms: 60_000.0,
        drain_quantum_ms: 500.0,
        chunk_ms: 4000.0,
        chunks: 48,
        first_quality: 1,
        rebuf_penalty: 4.3,
    };
}

impl Default for Rules {
    fn default() -> Self {
        Self::PENSIEVE
    }
}

/// The simulation cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Input files are missing or malformed.
    #[error(transparent)]
    Load(#[from] load::LoadError),
    /// The video lists fewer chunks than the rules play, or the first quality is missing.
    #[error(
        "video has {have} chunks × {renditions} renditions; the rules need {need} chunks and rendition {first}"
    )]
    VideoTooSmall {
        /// Chunks in the video.
        have: usize,
        /// Renditions in the video.
        renditions: usize,
        /// Chunks the rules play.
        need: usize,
        /// The forced first rendition.
        first: usize,
    },
    /// The trace cannot be simulated (see [`Trace::problem`]).
    #[error("trace {name}: {problem}")]
    BadTrace {
        /// The trace.
        name: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// An algorithm returned a rendition that does not exist.
    #[error("{abr} chose rendition {choice} of {renditions} on trace {trace}")]
    BadChoice {
        /// The algorithm.
        abr: &'static str,
        /// What it returned.
        choice: usize,
        /// Renditions available.
        renditions: usize,
        /// The trace.
        trace: String,
    },
}

/// What happened to one chunk.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ChunkLog {
    /// Rendition fetched.
    pub quality: usize,
    /// Its bitrate, bit/s.
    pub bitrate_bps: u64,
    /// Buffer after the chunk arrived and after any sleep, s.
    pub buffer_after_s: f64,
    /// Stall while fetching it, s.
    pub rebuf_s: f64,
    /// Download time plus RTT, ms.
    pub delay_ms: f64,
    /// Sleep left over after walking the link (the reference's quirk), ms.
    pub sleep_ms: f64,
    /// Bytes fetched.
    pub bytes: u64,
    /// QoE_lin reward of the chunk.
    pub reward: f64,
}

/// The link side of the simulator: a pointer into the trace and the link clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Link<'a> {
    trace: &'a Trace,
    ptr: usize,
    clock_s: f64,
}

impl<'a> Link<'a> {
    pub(crate) fn new(trace: &'a Trace) -> Self {
        Self {
            trace,
            ptr: 1,
            clock_s: trace.times_s[0],
        }
    }

    /// Moves to the next interval, wrapping to the start of the trace.
    fn next_interval(&mut self) {
        self.clock_s = self.trace.times_s[self.ptr];
        self.ptr += 1;
        if self.ptr >= self.trace.times_s.len() {
            self.ptr = 1;
            self.clock_s = 0.0;
        }
    }

    /// Transfers `bytes`; returns the time taken, s.
    fn download(&mut self, bytes: u64, payload_fraction: f64) -> f64 {
        let bytes = bytes as f64;
        let (mut sent, mut took) = (0.0, 0.0);
        loop {
            let bytes_per_s = self.trace.mbps[self.ptr] * 1e6 / 8.0;
            let duration = self.trace.times_s[self.ptr] - self.clock_s;
            let payload = bytes_per_s * duration * payload_fraction;
            if sent + payload > bytes {
                let part = (bytes - sent) / bytes_per_s / payload_fraction;
                took += part;
                self.clock_s += part;
                return took;
            }
            sent += payload;
            took += duration;
            self.next_interval();
        }
    }

    /// Lets `sleep_ms` pass; returns what is left of it after the walk (reference quirk).
    fn sleep(&mut self, mut sleep_ms: f64) -> f64 {
        loop {
            let duration = self.trace.times_s[self.ptr] - self.clock_s;
            if duration > sleep_ms / 1000.0 {
                self.clock_s += sleep_ms / 1000.0;
                return sleep_ms;
            }
            sleep_ms -= duration * 1000.0;
            self.next_interval();
        }
    }
}

/// What fetching one chunk did to the link and the buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Fetched {
    /// Download time plus RTT, ms.
    pub delay_ms: f64,
    /// Stall while fetching, ms.
    pub rebuf_ms: f64,
    /// Buffer after the chunk and any sleep, ms.
    pub buffer_ms: f64,
    /// Sleep left over after walking the link (the reference's quirk), ms.
    pub sleep_ms: f64,
}

/// Fetches a chunk of `bytes` with `buffer_ms` buffered: rules 3–6 of the simulator
/// (download over the link, RTT, stall, buffer, quantised sleep above the cap). The
/// one step both [`simulate`] and the offline optimum ([`optimal`]) take.
pub(crate) fn fetch_chunk(
    link: &mut Link<'_>,
    rules: &Rules,
    buffer_ms: f64,
    bytes: u64,
) -> Fetched {
    let delay_ms = link.download(bytes, rules.payload_fraction) * 1000.0 + rules.rtt_ms;
    let rebuf_ms = (delay_ms - buffer_ms).max(0.0);
    let mut buffer_ms = (buffer_ms - delay_ms).max(0.0) + rules.chunk_ms;
    let mut sleep_ms = 0.0;
    if buffer_ms > rules.buffer_max_ms {
        let drain = ((buffer_ms - rules.buffer_max_ms) / rules.drain_quantum_ms).ceil()
            * rules.drain_quantum_ms;
        buffer_ms -= drain;
        sleep_ms = link.sleep(drain);
    }
    Fetched {
        delay_ms,
        rebuf_ms,
        buffer_ms,
        sleep_ms,
    }
}

/// QoE_lin reward of a chunk at `bitrate_bps` after one at `last_bps`, stalling `rebuf_s`.
pub(crate) fn reward(rules: &Rules, bitrate_bps: u64, last_bps: u64, rebuf_s: f64) -> f64 {
    bitrate_bps as f64 / 1e6
        - rules.rebuf_penalty * rebuf_s
        - bitrate_bps.abs_diff(last_bps) as f64 / 1e6
}

/// Checks that `trace` and `video` can be simulated under `rules`.
pub(crate) fn check_inputs(trace: &Trace, video: &Video, rules: &Rules) -> Result<(), SimError> {
    if let Some(problem) = trace.problem() {
        return Err(SimError::BadTrace {
            name: trace.name.clone(),
            problem,
        });
    }
    let renditions = video.bitrates_bps.len();
    if video.sizes.len() < rules.chunks
        || rules.first_quality >= renditions
        || video.sizes.iter().any(|row| row.len() != renditions)
    {
        return Err(SimError::VideoTooSmall {
            have: video.sizes.len(),
            renditions,
            need: rules.chunks,
            first: rules.first_quality,
        });
    }
    Ok(())
}

/// Plays one video over one trace with `abr`; returns a log line per chunk.
pub fn simulate(
    trace: &Trace,
    video: &Video,
    rules: &Rules,
    abr: &mut dyn Abr,
) -> Result<Vec<ChunkLog>, SimError> {
    check_inputs(trace, video, rules)?;
    let renditions = video.bitrates_bps.len();
    let mut link = Link::new(trace);
    let mut buffer_ms = 0.0;
    let mut history: Vec<Download> = Vec::with_capacity(rules.chunks);
    let mut logs = Vec::with_capacity(rules.chunks);
    let mut last_bps = video.bitrates_bps[rules.first_quality];
    for k in 0..rules.chunks {
        let quality = if k == 0 {
            rules.first_quality
        } else {
            let input = AbrInput {
                bitrates_bps: &video.bitrates_bps,
                segment_duration_s: rules.chunk_ms / 1000.0,
                buffer_s: buffer_ms / 1000.0,
                stall_s: logs.last().map_or(0.0, |c: &ChunkLog| c.rebuf_s),
                buffer_max_s: rules.buffer_max_ms / 1000.0,
                history: &history,
                last_quality: history.last().map(|d| d.quality),
                upcoming_sizes: &video.sizes[k..],
                segments_remaining: Some(rules.chunks - k),
            };
            let q = abr.choose(&input);
            if q >= renditions {
                return Err(SimError::BadChoice {
                    abr: abr.name(),
                    choice: q,
                    renditions,
                    trace: trace.name.clone(),
                });
            }
            q
        };
        let bytes = video.sizes[k][quality];
        let Fetched {
            delay_ms,
            rebuf_ms,
            buffer_ms: after_ms,
            sleep_ms,
        } = fetch_chunk(&mut link, rules, buffer_ms, bytes);
        buffer_ms = after_ms;
        let bitrate_bps = video.bitrates_bps[quality];
        let rebuf_s = rebuf_ms / 1000.0;
        let reward = reward(rules, bitrate_bps, last_bps, rebuf_s);
        last_bps = bitrate_bps;
        history.push(Download {
            quality,
            bytes,
            duration_ms: delay_ms,
            ttfb_ms: Some(rules.rtt_ms),
        });
        logs.push(ChunkLog {
            quality,
            bitrate_bps,
            buffer_after_s: buffer_ms / 1000.0,
            rebuf_s,
            delay_ms,
            sleep_ms,
            bytes,
            reward,
        });
    }
    Ok(logs)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::abr::Bba;

    /// A trace named `t` (also for the optimum's tests).
    pub(crate) fn trace(times: &[f64], mbps: &[f64]) -> Trace {
        Trace {
            name: "t".into(),
            times_s: times.to_vec(),
            mbps: mbps.to_vec(),
        }
    }

    #[test]
    fn download_spans_intervals_and_wraps() {
        // 8 Mbit/s = 1 MB/s; payload 0.95 → 0.95 MB per second of interval.
        let t = trace(&[0.0, 1.0, 2.0], &[99.0, 8.0, 0.0]);
        let mut link = Link::new(&t);
        let took = link.download(475_000, 0.95);
        assert!((took - 0.5).abs() < 1e-12);
        // 0.475 MB left in interval 1, then 1 s of nothing, wrap, then 0.05 MB.
        let took = link.download(525_000, 0.95);
        assert!((took - (0.5 + 1.0 + 0.05 / 0.95)).abs() < 1e-12, "{took}");
        assert_eq!(link.ptr, 1);
    }

    #[test]
    fn sleep_walks_and_returns_leftover() {
        let t = trace(&[0.0, 1.0, 2.0, 3.0], &[0.0, 8.0, 8.0, 8.0]);
        let mut link = Link::new(&t);
        // 2.5 s: consumes [0,1] and [1,2] whole, half of [2,3].
        let left = link.sleep(2500.0);
        assert_eq!(left, 500.0);
        assert_eq!((link.ptr, link.clock_s), (3, 2.5));
        // Exactly the rest of an interval is consumed whole, not partly.
        let mut link = Link::new(&t);
        assert_eq!(link.sleep(1000.0), 0.0);
        assert_eq!(link.ptr, 2);
    }

    #[test]
    fn chunk_zero_is_forced_and_counts_as_stall() {
        let t = trace(&[0.0, 1000.0], &[0.0, 8.0]);
        let video = Video {
            bitrates_bps: vec![300_000, 750_000],
            sizes: vec![vec![950_000, 1_900_000]; 3],
        };
        let rules = Rules {
            chunks: 3,
            ..Rules::PENSIEVE
        };
        let logs = simulate(&t, &video, &rules, &mut Bba::default()).unwrap();
        assert_eq!(logs[0].quality, 1);
        // 1.9 MB at 0.95 MB/s = 2 s + 80 ms, all stall.
        assert!((logs[0].delay_ms - 2080.0).abs() < 1e-9);
        assert!((logs[0].rebuf_s - 2.08).abs() < 1e-12);
        assert_eq!(logs[0].buffer_after_s, 4.0);
        assert!((logs[0].reward - (0.75 - 4.3 * 2.08)).abs() < 1e-12);
        // Buffer below the reservoir: lowest rendition, switch penalty 0.45.
        assert_eq!(logs[1].quality, 0);
        assert!((logs[1].reward - (0.3 - 0.45)).abs() < 1e-12);
        assert_eq!(logs.len(), 3);
    }

    #[test]
    fn unusable_traces_are_errors_not_hangs() {
        let video = Video {
            bitrates_bps: vec![300_000, 750_000],
            sizes: vec![vec![1, 2]; 48],
        };
        for t in [
            trace(&[0.0], &[1.0]),
            trace(&[0.0, 1.0], &[1.0, 0.0]),
            trace(&[0.0, 0.0], &[1.0, 1.0]),
            trace(&[0.0, 1.0], &[1.0, f64::NAN]),
            trace(&[0.0, 1.0], &[1.0]),
        ] {
            let err = simulate(&t, &video, &Rules::PENSIEVE, &mut Bba::default()).unwrap_err();
            assert!(matches!(err, SimError::BadTrace { .. }), "{t:?}: {err}");
        }
    }

    #[test]
    fn too_small_video_is_an_error() {
        let t = trace(&[0.0, 1.0], &[1.0, 1.0]);
        let video = Video {
            bitrates_bps: vec![300_000, 750_000],
            sizes: vec![vec![1, 2]],
        };
        let err = simulate(&t, &video, &Rules::PENSIEVE, &mut Bba::default()).unwrap_err();
        assert!(
            matches!(err, SimError::VideoTooSmall { have: 1, .. }),
            "{err}"
        );
    }
}
