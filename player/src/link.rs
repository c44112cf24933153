//! Link emulation for real-time sessions: a token bucket over a rate that may vary along a
//! network trace, plus a first-byte latency. A session paces its reads of the response
//! body through its own [`Shaper`], so thousands of sessions in one process each see their
//! own link. Everything here runs on virtual seconds; the session maps them to wall time.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use http_rules::cli::parse_duration;

use crate::sim::Trace;

/// Bits a bucket may save up while idle: one packet, so that a link that sat idle while
/// the buffer was full does not deliver the next segment faster than its rate.
const BURST_BITS: f64 = 1500.0 * 8.0;

/// How fast a link delivers over time.
#[derive(Debug, Clone, PartialEq)]
pub enum Rate {
    /// A constant rate, bit/s.
    Constant(f64),
    /// A trace played from `offset_s` on and looped.
    Trace { trace: Arc<Trace>, offset_s: f64 },
}

impl Rate {
    /// Rate in bit/s at trace time `t` (wrapping), and how long it holds from `t`.
    /// Interval `i ≥ 1` of a trace runs from `times[i-1]` to `times[i]` at `mbps[i]`.
    fn piece(&self, t: f64) -> (f64, f64) {
        match self {
            Self::Constant(bps) => (*bps, f64::INFINITY),
            Self::Trace { trace, offset_s } => {
                let times = &trace.times_s;
                let (first, period) = (times[0], times[times.len() - 1] - times[0]);
                let local = first + (t + offset_s - first).rem_euclid(period);
                // The first interval whose end lies after `local`.
                let i = times
                    .partition_point(|&x| x <= local)
                    .clamp(1, times.len() - 1);
                (trace.mbps[i] * 1e6, (times[i] - local).max(1e-9))
            }
        }
    }

    /// Bits delivered from `from_s` to `to_s`.
    pub fn bits_between(&self, from_s: f64, to_s: f64) -> f64 {
        let (mut t, mut bits) = (from_s, 0.0);
        while t < to_s {
            let (bps, holds) = self.piece(t);
            let step = holds.min(to_s - t);
            bits += bps * step;
            t += step;
        }
        bits
    }

    /// When `bits` will have been delivered, starting at `from_s`.
    pub fn time_to_deliver(&self, from_s: f64, bits: f64) -> f64 {
        let (mut t, mut left) = (from_s, bits);
        // A whole loop of a trace delivers its period's bits: skip whole loops at once so a
        // long transfer over a slow trace costs no more than one walk of it.
        if let Self::Trace { trace, .. } = self {
            let period = trace.times_s[trace.times_s.len() - 1] - trace.times_s[0];
            let per_loop = self.bits_between(t, t + period);
            if per_loop > 0.0 && left > per_loop {
                let loops = (left / per_loop).floor();
                t += loops * period;
                left -= loops * per_loop;
            }
        }
        while left > 0.0 {
            let (bps, holds) = self.piece(t);
            if bps * holds >= left {
                return t + left / bps;
            }
            left -= bps * holds;
            t += holds;
        }
        t
    }
}

/// A token bucket on a [`Rate`]: tokens accrue at the rate up to a small burst, a read of
/// `n` bytes takes `8n` tokens, and a read that overdraws waits until the debt is repaid.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: Rate,
    tokens: f64,
    at_s: f64,
}

impl TokenBucket {
    /// A full bucket at time 0.
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            tokens: BURST_BITS,
            at_s: 0.0,
        }
    }

    /// Takes `bytes` that arrived at `now_s`; returns the time from which the reader may
    /// have them (`now_s` when the bucket covers them). Reads are served in order: one
    /// made before an earlier one's release time waits behind it.
    pub fn take(&mut self, now_s: f64, bytes: u64) -> f64 {
        let now = now_s.max(self.at_s);
        self.tokens = (self.tokens + self.rate.bits_between(self.at_s, now)).min(BURST_BITS);
        self.at_s = now;
        self.tokens -= bytes as f64 * 8.0;
        if self.tokens >= 0.0 {
            return now;
        }
        let release = self.rate.time_to_deliver(now, -self.tokens);
        self.tokens = 0.0;
        self.at_s = release;
        release
    }
}

/// The link a session sees: a rate (none = unshaped) and a first-byte latency.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkModel {
    pub rate: Option<Rate>,
    /// Added to every response's first byte, s.
    pub latency_s: f64,
}

impl LinkModel {
    /// A fresh per-session shaper on this link.
    pub fn shaper(&self) -> Shaper {
        Shaper {
            bucket: self.rate.clone().map(TokenBucket::new),
            latency_s: self.latency_s,
        }
    }
}

/// One session's view of its link.
#[derive(Debug, Clone)]
pub struct Shaper {
    bucket: Option<TokenBucket>,
    latency_s: f64,
}

impl Shaper {
    /// Delay before the first byte of each response, s.
    pub fn latency_s(&self) -> f64 {
        self.latency_s
    }

    /// When `bytes` read at `now_s` may be used; `now_s` on an unshaped link.
    pub fn release_at(&mut self, now_s: f64, bytes: u64) -> f64 {
        match &mut self.bucket {
            Some(b) => b.take(now_s, bytes),
            None => now_s,
        }
    }
}

/// A `--network` value: a fixed link, or a folder of traces each session draws from.
#[derive(Debug, Clone, PartialEq)]
pub enum NetworkSpec {
    Fixed(LinkModel),
    Traces {
        /// The folder they were read from (what reports name).
        dir: PathBuf,
        traces: Vec<Arc<Trace>>,
    },
}

/// A `--network` value that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error(
        "invalid network {0:?}: expected a rate like 3mbit or 500kbit, optionally ,40ms, or a folder of traces"
    )]
    Syntax(String),
    #[error(transparent)]
    Traces(#[from] crate::sim::load::LoadError),
    #[error("trace {name}: {problem}")]
    BadTrace { name: String, problem: &'static str },
}

/// `3mbit`, `500kbit`, `2.5mbps`, `100000bit` → bit/s.
fn parse_rate(s: &str) -> Option<f64> {
    let s = s.trim().to_ascii_lowercase();
    let (number, scale) = [
        ("gbit", 1e9),
        ("mbit", 1e6),
        ("kbit", 1e3),
        ("gbps", 1e9),
        ("mbps", 1e6),
        ("kbps", 1e3),
        ("bit", 1.0),
        ("bps", 1.0),
    ]
    .iter()
    .find_map(|(unit, scale)| s.strip_suffix(unit).map(|n| (n.to_owned(), *scale)))?;
    let value: f64 = number.trim().parse().ok()?;
    (value.is_finite() && value > 0.0).then_some(value * scale)
}

/// `40ms`, `0.1s` → seconds: the duration grammar of every Rivulet command line, except
/// that a bare number is refused (40 what? a latency names its unit).
fn parse_latency(s: &str) -> Option<f64> {
    let s = s.trim();
    if !s.ends_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    parse_duration(s).ok().map(|d| d.as_secs_f64())
}

/// A rate the way `--network` spells it: `3mbit`, `2.5mbit`, `500kbit`.
fn rate_text(bps: f64) -> String {
    let (unit, scale) = [("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3)]
        .into_iter()
        .find(|(_, scale)| bps >= *scale)
        .unwrap_or(("bit", 1.0));
    format!("{}{unit}", bps / scale)
}

impl fmt::Display for LinkModel {
    /// The `--network` spelling (`3mbit,40ms`); `unshaped` without a rate.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.rate {
            None => f.write_str("unshaped")?,
            Some(Rate::Constant(bps)) => f.write_str(&rate_text(*bps))?,
            Some(Rate::Trace { trace, .. }) => write!(f, "trace {}", trace.name)?,
        }
        if self.latency_s > 0.0 {
            write!(f, ",{}ms", self.latency_s * 1e3)?;
        }
        Ok(())
    }
}

impl fmt::Display for NetworkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fixed(link) => link.fmt(f),
            Self::Traces { dir, .. } => write!(f, "{}", dir.display()),
        }
    }
}

impl FromStr for LinkModel {
    type Err = NetworkError;

    /// `RATE` or `RATE,LATENCY`, e.g. `3mbit,40ms`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || NetworkError::Syntax(s.to_owned());
        let (rate, latency) = match s.split_once(',') {
            Some((rate, latency)) => (rate, parse_latency(latency).ok_or_else(syntax)?),
            None => (s, 0.0),
        };
        Ok(Self {
            rate: Some(Rate::Constant(parse_rate(rate).ok_or_else(syntax)?)),
            latency_s: latency,
        })
    }
}

impl NetworkSpec {
    /// Parses a `--network` value; a value that is not a rate names a folder of traces.
    pub fn parse(s: &str) -> Result<Self, NetworkError> {
        if let Ok(link) = s.parse::<LinkModel>() {
            return Ok(Self::Fixed(link));
        }
        let dir = Path::new(s);
        if !dir.is_dir() {
            return Err(NetworkError::Syntax(s.to_owned()));
        }
        let traces = crate::sim::load::read_trace_dir(dir)?;
        for t in &traces {
            if let Some(problem) = t.problem() {
                return Err(NetworkError::BadTrace {
                    name: t.name.clone(),
                    problem,
                });
            }
        }
        Ok(Self::Traces {
            dir: dir.to_owned(),
            traces: traces.into_iter().map(Arc::new).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Reads a 2 Mbit/s link in 1500-byte packets as fast as the bucket allows for 10 s of
    /// virtual time; returns the bytes delivered by then.
    fn delivered_in(rate: Rate, seconds: f64, packet: u64) -> u64 {
        let mut bucket = TokenBucket::new(rate);
        let (mut now, mut bytes) = (0.0, 0);
        loop {
            let at = bucket.take(now, packet);
            if at > seconds {
                return bytes;
            }
            now = at;
            bytes += packet;
        }
    }

    #[test]
    fn constant_rate_within_five_percent_over_ten_seconds() {
        for packet in [1500, 16 * 1024, 64 * 1024] {
            let bytes = delivered_in(Rate::Constant(2e6), 10.0, packet);
            let bps = bytes as f64 * 8.0 / 10.0;
            assert!((bps / 2e6 - 1.0).abs() < 0.05, "{packet}: {bps}");
        }
    }

    #[test]
    fn idle_time_saves_only_a_small_burst() {
        let mut bucket = TokenBucket::new(Rate::Constant(1e6));
        assert_eq!(bucket.take(0.0, 1000), 0.0);
        // After a minute idle, 1 MB still takes about 8 s.
        let done = bucket.take(60.0, 1_000_000);
        assert!((done - 68.0).abs() < 0.2, "{done}");
        // A read made "in the past" waits behind the previous one.
        assert!(bucket.take(61.0, 125_000) > done + 0.99);
    }

    fn trace(times: &[f64], mbps: &[f64]) -> Arc<Trace> {
        Arc::new(Trace {
            name: "t".into(),
            times_s: times.to_vec(),
            mbps: mbps.to_vec(),
        })
    }

    #[test]
    fn trace_rate_follows_and_wraps() {
        // 1 s at 1 Mbit/s, then 1 s at 3 Mbit/s, looping.
        let rate = Rate::Trace {
            trace: trace(&[0.0, 1.0, 2.0], &[9.0, 1.0, 3.0]),
            offset_s: 0.0,
        };
        assert!((rate.bits_between(0.0, 2.0) - 4e6).abs() < 1.0);
        assert!((rate.bits_between(0.5, 4.5) - 8e6).abs() < 1.0);
        assert!((rate.time_to_deliver(0.0, 2.5e6) - 1.5).abs() < 1e-9);
        // 41 loops of 4 Mbit (82 s), then 1 Mbit in the first second of the next loop.
        assert!((rate.time_to_deliver(0.0, 165e6) - 83.0).abs() < 1e-6);
        let shifted = Rate::Trace {
            trace: trace(&[0.0, 1.0, 2.0], &[9.0, 1.0, 3.0]),
            offset_s: 1.0,
        };
        assert!((shifted.time_to_deliver(0.0, 3e6) - 1.0).abs() < 1e-9);
        let bytes = delivered_in(rate, 10.0, 1500);
        assert!((bytes as f64 * 8.0 / 20e6 - 1.0).abs() < 0.05, "{bytes}");
    }

    #[test]
    fn network_values_table() {
        for (text, bps, latency) in [
            ("3mbit", 3e6, 0.0),
            ("3mbit,40ms", 3e6, 0.04),
            ("500kbit, 0.1s", 5e5, 0.1),
            ("2.5Mbps", 2.5e6, 0.0),
        ] {
            let link: LinkModel = text.parse().unwrap();
            assert_eq!(link.rate, Some(Rate::Constant(bps)), "{text}");
            assert!((link.latency_s - latency).abs() < 1e-12, "{text}");
        }
        for bad in ["", "3", "fast", "0mbit", "-1mbit", "3mbit,40", "3mbit,soon"] {
            assert!(bad.parse::<LinkModel>().is_err(), "{bad:?}");
        }
        // What reports print is what the flag takes.
        for (text, shown) in [
            ("3mbit", "3mbit"),
            ("2.5Mbps,40ms", "2.5mbit,40ms"),
            ("500kbit, 0.1s", "500kbit,100ms"),
            ("100bit", "100bit"),
        ] {
            let link: LinkModel = text.parse().unwrap();
            assert_eq!(link.to_string(), shown);
            assert_eq!(shown.parse::<LinkModel>().unwrap(), link);
        }
        assert!(NetworkSpec::parse("/nonexistent/traces").is_err());
    }
}
