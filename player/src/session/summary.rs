//! What a session measured, segment by segment, and the summary computed from it:
//! start-up delay, rebuffering, bitrate, switches, QoE_lin (`tests/data/abr/README.md`), bytes,
//! the cache hit ratio, and traffic by pathway. Pure functions over the logs.

use serde::{Deserialize, Serialize};

use super::clock::Stall;
use super::counters::Counters;

/// QoE_lin penalty per second of rebuffering.
pub const REBUFFER_PENALTY: f64 = 4.3;

/// One media segment as it was fetched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentLog {
    /// Position in the presentation, from 0.
    pub index: usize,
    /// Segment number from the manifest.
    pub number: u64,
    /// Rendition id and index (ascending bitrate).
    pub rendition: String,
    pub quality: usize,
    /// Declared bitrate of the rendition, bit/s.
    pub bitrate_bps: u64,
    /// Media duration, s.
    pub duration_s: f64,
    /// Response body bytes.
    pub bytes: u64,
    /// When the (successful) request was sent, s since the session began.
    pub requested_at_s: f64,
    /// Request to last byte, ms.
    pub download_ms: f64,
    /// Request to first byte, ms.
    pub ttfb_ms: f64,
    /// Body bytes over body transfer time (TTFB taken out), bit/s.
    pub throughput_bps: f64,
    /// Buffer when the segment was requested and after it arrived, s.
    pub buffer_before_s: f64,
    pub buffer_after_s: f64,
    /// Rebuffering while it was fetched, s.
    pub stall_s: f64,
    /// The `Cache-Status` response field, verbatim.
    pub cache_status: Option<String>,
    /// Failed attempts before this one.
    pub retries: u32,
    /// Downloads of this segment abandoned for a lower rendition.
    pub abandoned: u32,
    /// Live only, once playing: how far the playhead was behind the live edge (the wall
    /// clock on the presentation's timeline) when this segment arrived, s.
    #[serde(default)]
    pub live_latency_s: Option<f64>,
    /// The pathway it came over, when the presentation has several.
    #[serde(default)]
    pub pathway: Option<String>,
    /// Pathways its successful request failed on first (each left at once for the next).
    #[serde(default)]
    pub failovers: u32,
}

/// A session's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Wall time the session ran, s.
    pub wall_s: f64,
    /// From the start of the session (manifest request) to the first frame, s; `None`
    /// when playback never started.
    pub startup_delay_s: Option<f64>,
    /// Media played, s.
    pub played_s: f64,
    /// Rebuffering events, their total length and the longest one, s (start-up
    /// excluded).
    pub rebuffer_count: usize,
    pub rebuffer_s: f64,
    #[serde(default)]
    pub max_stall_s: f64,
    /// `rebuffer_s / (played_s + rebuffer_s)`.
    pub rebuffer_ratio: f64,
    /// Media segments fetched.
    pub segments: usize,
    /// Mean declared bitrate of the segments fetched, weighted by duration, bit/s.
    pub avg_bitrate_bps: f64,
    /// Highest rendition index fetched.
    pub top_quality: Option<usize>,
    /// Rendition changes between consecutive segments, and their mean size, bit/s.
    pub switches: usize,
    pub switch_magnitude_bps: f64,
    /// Σ bitrate (Mbit/s) − 4.3 × rebuffer s − Σ |Δbitrate| (Mbit/s), over the segments
    /// fetched; start-up delay is not a rebuffer here.
    pub qoe_lin: f64,
    #[serde(flatten)]
    pub counters: Counters,
    /// `cache_hits / cache_lookups`, when any response carried `Cache-Status`.
    pub cache_hit_ratio: Option<f64>,
    /// Live only: mean and 95th percentile of the latency behind live, s.
    pub live_latency_mean_s: Option<f64>,
    pub live_latency_p95_s: Option<f64>,
}

/// The nearest-rank `p` quantile (0 < p ≤ 1) of `sorted` (ascending, not empty).
pub fn quantile(sorted: &[f64], p: f64) -> f64 {
    sorted[((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

impl Summary {
    /// The summary as an aligned two-column text table.
    pub fn text(&self) -> String {
        let opt =
            |v: Option<f64>, unit: &str| v.map_or("-".to_owned(), |v| format!("{v:.3} {unit}"));
        let errors: u64 = self.counters.errors.values().sum();
        let rows = [
            ("startup delay", opt(self.startup_delay_s, "s")),
            (
                "played",
                format!("{:.1} s of media in {:.1} s", self.played_s, self.wall_s),
            ),
            (
                "rebuffering",
                format!(
                    "{} events, {:.3} s (longest {:.3} s), ratio {:.4}",
                    self.rebuffer_count, self.rebuffer_s, self.max_stall_s, self.rebuffer_ratio
                ),
            ),
            (
                "segments",
                format!(
                    "{} (top rendition reached: {})",
                    self.segments,
                    self.top_quality.map_or("-".to_owned(), |q| q.to_string())
                ),
            ),
            (
                "average bitrate",
                format!("{:.0} kbit/s", self.avg_bitrate_bps / 1000.0),
            ),
            (
                "switches",
                format!(
                    "{}, mean magnitude {:.0} kbit/s",
                    self.switches,
                    self.switch_magnitude_bps / 1000.0
                ),
            ),
            ("QoE_lin", format!("{:.3}", self.qoe_lin)),
            (
                "behind live",
                match (self.live_latency_mean_s, self.live_latency_p95_s) {
                    (Some(mean), Some(p95)) => format!("mean {mean:.2} s, p95 {p95:.2} s"),
                    _ => "- (not live)".to_owned(),
                },
            ),
            (
                "traffic",
                format!(
                    "{} requests, {:.2} MB",
                    self.counters.requests,
                    self.counters.bytes as f64 / 1e6
                ),
            ),
            (
                "cache hit ratio",
                self.cache_hit_ratio
                    .map_or("- (no Cache-Status)".to_owned(), |r| {
                        format!(
                            "{r:.3} ({} of {})",
                            self.counters.cache_hits, self.counters.cache_lookups
                        )
                    }),
            ),
            ("pathways", self.counters.pathways_text()),
            (
                "errors",
                format!(
                    "{errors} {:?}, {} abandoned downloads",
                    self.counters.errors, self.counters.abandoned
                ),
            ),
        ];
        rows.iter()
            .map(|(name, value)| {
                format!(
                    "{name:<16} {value}
"
                )
            })
            .collect()
    }
}

/// Playback figures the summary needs, read off the clock at the end.
#[derive(Debug, Clone, Copy)]
pub struct PlaybackFigures<'a> {
    pub started_at_s: Option<f64>,
    pub played_s: f64,
    pub stalls: &'a [Stall],
    pub stalled_s: f64,
    /// The longest single stall, s.
    pub longest_stall_s: f64,
}

/// Computes the summary of a session.
pub fn summarise(
    logs: &[SegmentLog],
    playback: &PlaybackFigures<'_>,
    counters: &Counters,
    wall_s: f64,
) -> Summary {
    let mbps = |l: &SegmentLog| l.bitrate_bps as f64 / 1e6;
    let media_s: f64 = logs.iter().map(|l| l.duration_s).sum();
    let avg_bitrate_bps = if media_s > 0.0 {
        logs.iter()
            .map(|l| l.bitrate_bps as f64 * l.duration_s)
            .sum::<f64>()
            / media_s
    } else {
        0.0
    };
    let changes: Vec<f64> = logs
        .windows(2)
        .filter(|w| w[0].quality != w[1].quality)
        .map(|w| (mbps(&w[1]) - mbps(&w[0])).abs())
        .collect();
    let switch_sum_mbps: f64 = changes.iter().sum();
    let mut latencies: Vec<f64> = logs.iter().filter_map(|l| l.live_latency_s).collect();
    latencies.sort_by(f64::total_cmp);
    let rebuffer_s = playback.stalled_s;
    let watched = playback.played_s + rebuffer_s;
    Summary {
        wall_s,
        startup_delay_s: playback.started_at_s,
        played_s: playback.played_s,
        rebuffer_count: playback.stalls.len(),
        rebuffer_s,
        max_stall_s: playback.longest_stall_s,
        rebuffer_ratio: if watched > 0.0 {
            rebuffer_s / watched
        } else {
            0.0
        },
        segments: logs.len(),
        avg_bitrate_bps,
        top_quality: logs.iter().map(|l| l.quality).max(),
        switches: changes.len(),
        switch_magnitude_bps: if changes.is_empty() {
            0.0
        } else {
            switch_sum_mbps * 1e6 / changes.len() as f64
        },
        qoe_lin: logs.iter().map(mbps).sum::<f64>()
            - REBUFFER_PENALTY * rebuffer_s
            - switch_sum_mbps,
        counters: counters.clone(),
        cache_hit_ratio: (counters.cache_lookups > 0)
            .then(|| counters.cache_hits as f64 / counters.cache_lookups as f64),
        live_latency_mean_s: (!latencies.is_empty())
            .then(|| latencies.iter().sum::<f64>() / latencies.len() as f64),
        live_latency_p95_s: (!latencies.is_empty()).then(|| quantile(&latencies, 0.95)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A 2 s segment at `quality` of a 300/750/1850 kbit/s ladder.
    pub(crate) fn seg(index: usize, quality: usize) -> SegmentLog {
        let bitrate_bps = [300_000, 750_000, 1_850_000][quality];
        SegmentLog {
            index,
            number: index as u64 + 1,
            rendition: format!("r{quality}"),
            quality,
            bitrate_bps,
            duration_s: 2.0,
            bytes: bitrate_bps / 4,
            requested_at_s: index as f64,
            download_ms: 100.0,
            ttfb_ms: 10.0,
            throughput_bps: 1e7,
            buffer_before_s: 0.0,
            buffer_after_s: 2.0,
            stall_s: 0.0,
            cache_status: None,
            retries: 0,
            abandoned: 0,
            live_latency_s: None,
            pathway: None,
            failovers: 0,
        }
    }

    #[test]
    fn live_latency_mean_and_p95() {
        let stalls = [];
        let logs: Vec<SegmentLog> = [None, Some(6.0), Some(7.0), Some(8.0), Some(9.0)]
            .into_iter()
            .enumerate()
            .map(|(i, latency)| SegmentLog {
                live_latency_s: latency,
                ..seg(i, 1)
            })
            .collect();
        let s = summarise(&logs, &figures(&stalls, 10.0), &Counters::default(), 10.0);
        assert_eq!(s.live_latency_mean_s, Some(7.5));
        assert_eq!(s.live_latency_p95_s, Some(9.0));
        let vod = summarise(
            &[seg(0, 1)],
            &figures(&stalls, 2.0),
            &Counters::default(),
            2.0,
        );
        assert_eq!(
            (vod.live_latency_mean_s, vod.live_latency_p95_s),
            (None, None)
        );
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.0);
    }

    fn figures(stalls: &[Stall], played_s: f64) -> PlaybackFigures<'_> {
        let lengths = stalls
            .iter()
            .map(|s| s.end_s.unwrap_or(s.start_s) - s.start_s);
        PlaybackFigures {
            started_at_s: Some(0.5),
            played_s,
            stalls,
            stalled_s: lengths.clone().sum(),
            longest_stall_s: lengths.fold(0.0, f64::max),
        }
    }

    #[test]
    fn figures_table() {
        let stall = [Stall {
            start_s: 3.0,
            end_s: Some(4.0),
        }];
        // (qualities, stalls, played, avg kbit/s, switches, magnitude kbit/s, qoe)
        type Qualities = &'static [usize];
        type Stalls<'a> = &'a [Stall];
        let cases: [(Qualities, Stalls<'_>, f64, f64, usize, f64, f64); 4] = [
            (&[], &[], 0.0, 0.0, 0, 0.0, 0.0),
            (&[2, 2, 2], &[], 6.0, 1850.0, 0, 0.0, 5.55),
            // 0.75 + 1.85 + 0.3 − |1.1| − |1.55| = 0.25
            (&[1, 2, 0], &[], 6.0, 966.67, 2, 1325.0, 0.25),
            // One second of stall: 5.55 − 4.3
            (&[2, 2, 2], &stall, 3.0, 1850.0, 0, 0.0, 1.25),
        ];
        for (i, (qualities, stalls, played, avg, switches, magnitude, qoe)) in
            cases.iter().enumerate()
        {
            let logs: Vec<SegmentLog> = qualities
                .iter()
                .enumerate()
                .map(|(k, &q)| seg(k, q))
                .collect();
            let s = summarise(&logs, &figures(stalls, *played), &Counters::default(), 10.0);
            assert!(
                (s.avg_bitrate_bps / 1000.0 - avg).abs() < 0.01,
                "case {i}: {s:?}"
            );
            assert_eq!(s.switches, *switches, "case {i}");
            assert!(
                (s.switch_magnitude_bps / 1000.0 - magnitude).abs() < 1e-6,
                "case {i}"
            );
            assert!((s.qoe_lin - qoe).abs() < 1e-9, "case {i}: {}", s.qoe_lin);
            assert_eq!(s.rebuffer_count, stalls.len(), "case {i}");
        }
    }

    #[test]
    fn ratios() {
        let stall = [Stall {
            start_s: 3.0,
            end_s: Some(5.0),
        }];
        let counters = Counters {
            cache_lookups: 4,
            cache_hits: 3,
            ..Counters::default()
        };
        let s = summarise(&[seg(0, 0)], &figures(&stall, 8.0), &counters, 10.0);
        assert!((s.rebuffer_ratio - 0.2).abs() < 1e-12);
        assert_eq!(s.max_stall_s, 2.0);
        assert_eq!(s.cache_hit_ratio, Some(0.75));
        let none = summarise(&[], &figures(&[], 0.0), &Counters::default(), 0.0);
        assert_eq!(none.cache_hit_ratio, None);
        assert_eq!(none.rebuffer_ratio, 0.0);
    }
}
