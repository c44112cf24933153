//! `player load`: many real-time sessions — the very [`crate::session::run`] of
//! `player play` — in one tokio runtime over one pooled client, each with its own link
//! emulation, started over a ramp at seeded random offsets, stopped by the deadline.
//!
//! The run is sharded by session index (`--shard K/N` runs the indices `i` with
//! `i % N == K`); offsets and traces are drawn for every index from the seed, so shards
//! of one run agree and `player merge` pools their records into one report.

pub mod report;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use crate::link::{LinkModel, NetworkSpec, Rate};
use crate::session::clock::PlayState;
use crate::session::summary::SegmentLog;
use crate::session::{self, ErrorKind, Observer, SessionConfig};
use report::{LoadReport, Sample, SessionRecord, aggregate};

/// After the deadline, sessions get this long to wind down before they are cancelled.
pub const GRACE: Duration = Duration::from_secs(5);
/// After cancelling, tasks get this long to return their reports before being aborted.
const CANCEL_WAIT: Duration = Duration::from_secs(5);

/// Which part of a sharded run this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `K/N` with `K < N`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid shard {s:?}: expected K/N with 0 ≤ K < N");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if index >= count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

/// A load run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// How each session plays (its link and duration are set per session).
    pub session: SessionConfig,
    pub sessions: usize,
    pub duration_s: f64,
    pub ramp_s: f64,
    /// Each session's link (`None`: unshaped).
    pub network: Option<NetworkSpec>,
    pub seed: u64,
    pub shard: Option<Shard>,
}

/// When and on what link one session runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub index: usize,
    pub start_s: f64,
    pub link: LinkModel,
    pub trace: Option<String>,
}

/// The sessions of this shard: offsets uniform over the ramp, each with a trace (and a
/// random starting point in it) drawn from the seed. Draws are made for every index, so
/// a session gets the same plan whatever the sharding.
pub fn plan(config: &LoadConfig) -> Vec<Planned> {
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut out = Vec::new();
    for index in 0..config.sessions {
        let start_s = rng.random::<f64>() * config.ramp_s;
        let pick: f64 = rng.random();
        let phase: f64 = rng.random();
        if config.shard.is_some_and(|s| index % s.count != s.index) {
            continue;
        }
        let (link, trace) = match &config.network {
            None => (LinkModel::default(), None),
            Some(NetworkSpec::Fixed(link)) => (link.clone(), None),
            Some(NetworkSpec::Traces { traces, .. }) => {
                let i = ((pick * traces.len() as f64) as usize).min(traces.len() - 1);
                let trace = traces[i].clone();
                let period = trace.times_s[trace.times_s.len() - 1] - trace.times_s[0];
                let name = trace.name.clone();
                let link = LinkModel {
                    rate: Some(Rate::Trace {
                        trace,
                        offset_s: phase * period,
                    }),
                    latency_s: 0.0,
                };
                (link, Some(name))
            }
        };
        out.push(Planned {
            index,
            start_s,
            link,
            trace,
        });
    }
    out
}

/// Counters every session of the run updates as it goes.
#[derive(Debug, Default)]
pub struct LiveStats {
    active: AtomicU64,
    rebuffering: AtomicU64,
    /// Sessions that have a current bitrate, and the sum of those bitrates, bit/s.
    with_bitrate: AtomicU64,
    bitrate_sum: AtomicU64,
    requests: AtomicU64,
    errors: AtomicU64,
}

impl LiveStats {
    /// Figures now; rates over `interval_s` since the `previous` counts (requests, errors).
    fn sample(&self, t_s: f64, interval_s: f64, previous: &mut (u64, u64)) -> Sample {
        let (requests, errors) = (
            self.requests.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        );
        let with = self.with_bitrate.load(Ordering::Relaxed);
        let per_s = |now: u64, before: u64| (now - before) as f64 / interval_s.max(1e-3);
        let sample = Sample {
            t_s,
            active: self.active.load(Ordering::Relaxed),
            rebuffering: self.rebuffering.load(Ordering::Relaxed),
            mean_bitrate_bps: if with > 0 {
                self.bitrate_sum.load(Ordering::Relaxed) as f64 / with as f64
            } else {
                0.0
            },
            requests_per_s: per_s(requests, previous.0),
            errors_per_s: per_s(errors, previous.1),
        };
        *previous = (requests, errors);
        sample
    }
}

/// One session's window on [`LiveStats`]: it remembers what it added so it can take it
/// back when the session ends.
#[derive(Debug)]
struct SessionStats<'a> {
    live: &'a LiveStats,
    bitrate: AtomicU64,
    stalled: AtomicBool,
}

impl<'a> SessionStats<'a> {
    fn new(live: &'a LiveStats) -> Self {
        live.active.fetch_add(1, Ordering::Relaxed);
        Self {
            live,
            bitrate: AtomicU64::new(0),
            stalled: AtomicBool::new(false),
        }
    }
}

impl Drop for SessionStats<'_> {
    fn drop(&mut self) {
        self.live.active.fetch_sub(1, Ordering::Relaxed);
        let bitrate = self.bitrate.load(Ordering::Relaxed);
        if bitrate > 0 {
            self.live.with_bitrate.fetch_sub(1, Ordering::Relaxed);
            self.live.bitrate_sum.fetch_sub(bitrate, Ordering::Relaxed);
        }
        if self.stalled.load(Ordering::Relaxed) {
            self.live.rebuffering.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Observer for SessionStats<'_> {
    fn request(&self) {
        self.live.requests.fetch_add(1, Ordering::Relaxed);
    }

    fn error(&self, _kind: ErrorKind) {
        self.live.errors.fetch_add(1, Ordering::Relaxed);
    }

    fn segment(&self, log: &SegmentLog) {
        let old = self.bitrate.swap(log.bitrate_bps, Ordering::Relaxed);
        if old == 0 {
            self.live.with_bitrate.fetch_add(1, Ordering::Relaxed);
        }
        self.live
            .bitrate_sum
            .fetch_add(log.bitrate_bps, Ordering::Relaxed);
        self.live.bitrate_sum.fetch_sub(old, Ordering::Relaxed);
    }

    fn state(&self, _from: PlayState, to: PlayState) {
        let stalled = to == PlayState::Stalled;
        if self.stalled.swap(stalled, Ordering::Relaxed) != stalled {
            if stalled {
                self.live.rebuffering.fetch_add(1, Ordering::Relaxed);
            } else {
                self.live.rebuffering.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

/// The run cannot start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("building the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// Receives the live figures once a second (the CLI's progress bar).
pub trait Progress: std::fmt::Debug {
    fn update(&self, sample: &Sample, finished: usize, total: usize);
}

async fn one_session(
    client: reqwest::Client,
    mut config: SessionConfig,
    planned: Planned,
    t0: Instant,
    duration_s: f64,
    live: Arc<LiveStats>,
    stop: CancellationToken,
) -> (SessionRecord, Vec<f64>) {
    let mut record = SessionRecord {
        index: planned.index,
        start_s: planned.start_s,
        trace: planned.trace,
        end: None,
        error: None,
        summary: None,
    };
    tokio::select! {
        () = sleep_until(t0 + Duration::from_secs_f64(planned.start_s)) => {}
        () = stop.cancelled() => return (record, Vec::new()),
    }
    config.link = planned.link;
    config.duration_s = Some((duration_s - planned.start_s).max(0.0));
    let stats = SessionStats::new(&live);
    match session::run(&client, &config, &stats, &stop).await {
        Ok(report) => {
            record.end = Some(report.end);
            record.error = report.error;
            record.summary = Some(report.summary);
            let downloads = report.segments.iter().map(|s| s.download_ms).collect();
            (record, downloads)
        }
        // The failed request has been counted (and the live figures told) already.
        Err(e) => {
            record.error = Some(e.to_string());
            (record, Vec::new())
        }
    }
}

/// Runs the sessions of `config` (this shard's) until the deadline plus [`GRACE`], or
/// until `stop`; returns the report.
pub async fn run(
    config: &LoadConfig,
    stop: &CancellationToken,
    progress: &dyn Progress,
) -> Result<LoadReport, LoadError> {
    let planned = plan(config);
    let total = planned.len();
    // One pool for all sessions: each has one request in flight at a time.
    let client = session::http_client_with(total.max(6), config.session.connect_timeout)?;
    let live = Arc::new(LiveStats::default());
    let t0 = Instant::now();
    let stop = stop.child_token();
    let mut tasks = JoinSet::new();
    for p in planned {
        tasks.spawn(one_session(
            client.clone(),
            config.session.clone(),
            p,
            t0,
            config.duration_s,
            live.clone(),
            stop.clone(),
        ));
    }
    let deadline = t0 + Duration::from_secs_f64(config.duration_s) + GRACE;
    let mut records = Vec::with_capacity(total);
    let mut downloads = Vec::new();
    let mut timeline = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut previous = (0, 0);
    let mut last_tick = t0;
    let mut abort_at: Option<Instant> = None;
    while !tasks.is_empty() {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                Some(Ok((record, d))) => {
                    records.push(record);
                    downloads.extend(d);
                }
                Some(Err(e)) => tracing::error!(error = %e, "a session task failed"),
                None => break,
            },
            _ = ticker.tick() => {
                let now = Instant::now();
                let sample = live.sample(
                    (now - t0).as_secs_f64(),
                    (now - last_tick).as_secs_f64(),
                    &mut previous,
                );
                last_tick = now;
                progress.update(&sample, records.len(), total);
                timeline.push(sample);
                if now >= deadline && !stop.is_cancelled() {
                    tracing::warn!("deadline and grace passed: cancelling the sessions left");
                    stop.cancel();
                }
                if stop.is_cancelled() {
                    let at = *abort_at.get_or_insert(now + CANCEL_WAIT);
                    if now >= at {
                        tracing::error!(left = tasks.len(), "sessions did not stop: aborting them");
                        tasks.abort_all();
                    }
                }
            }
        }
    }
    records.sort_by_key(|r| r.index);
    Ok(LoadReport {
        url: config.session.url.to_string(),
        abr: config.session.abr,
        sessions: config.sessions,
        shard: config.shard.map(|s| (s.index, s.count)),
        duration_s: config.duration_s,
        ramp_s: config.ramp_s,
        network: config
            .network
            .as_ref()
            .map_or_else(|| "unshaped".to_owned(), ToString::to_string),
        seed: config.seed,
        aggregate: aggregate(&records, &downloads),
        records,
        segment_download_ms: downloads,
        timeline,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::sim::Trace;

    fn config(sessions: usize, shard: Option<Shard>, network: Option<NetworkSpec>) -> LoadConfig {
        LoadConfig {
            session: SessionConfig::new("http://h/m.mpd".parse().unwrap()),
            sessions,
            duration_s: 60.0,
            ramp_s: 10.0,
            network,
            seed: 7,
            shard,
        }
    }

    #[test]
    fn shards_partition_the_same_plan() {
        let traces = NetworkSpec::Traces {
            dir: "traces".into(),
            traces: ["a", "b", "c"]
                .iter()
                .map(|n| {
                    Arc::new(Trace {
                        name: (*n).into(),
                        times_s: vec![0.0, 1.0, 2.0],
                        mbps: vec![1.0, 1.0, 2.0],
                    })
                })
                .collect(),
        };
        let all = plan(&config(100, None, Some(traces.clone())));
        assert_eq!(all.len(), 100);
        assert!(all.iter().all(|p| (0.0..10.0).contains(&p.start_s)));
        let names: std::collections::BTreeSet<_> =
            all.iter().filter_map(|p| p.trace.clone()).collect();
        assert_eq!(names.len(), 3, "every trace drawn: {names:?}");
        let mut sharded: Vec<Planned> = (0..3)
            .flat_map(|k| {
                plan(&config(
                    100,
                    Some(Shard { index: k, count: 3 }),
                    Some(traces.clone()),
                ))
            })
            .collect();
        sharded.sort_by_key(|p| p.index);
        assert_eq!(sharded, all);
        assert_ne!(plan(&config(100, None, None))[0].start_s, {
            let mut other = config(100, None, None);
            other.seed = 8;
            plan(&other)[0].start_s
        });
    }

    #[test]
    fn shard_syntax() {
        assert_eq!("1/4".parse::<Shard>(), Ok(Shard { index: 1, count: 4 }));
        for bad in ["4/4", "1", "a/b", "1/0", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn session_stats_give_back_what_they_added() {
        let live = LiveStats::default();
        {
            let s = SessionStats::new(&live);
            let mut log = session::summary::tests::seg(0, 2);
            s.segment(&log);
            log.bitrate_bps = 300_000;
            s.segment(&log);
            s.state(PlayState::Playing, PlayState::Stalled);
            let sample = live.sample(1.0, 1.0, &mut (0, 0));
            assert_eq!((sample.active, sample.rebuffering), (1, 1));
            assert_eq!(sample.mean_bitrate_bps, 300_000.0);
        }
        let sample = live.sample(2.0, 1.0, &mut (0, 0));
        assert_eq!(
            (sample.active, sample.rebuffering, sample.mean_bitrate_bps),
            (0, 0, 0.0)
        );
    }
}
