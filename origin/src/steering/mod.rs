//! Content steering: the origin lists every configured edge as a pathway of its manifests
//! (HLS `PATHWAY-ID` and `EXT-X-CONTENT-STEERING`, draft-pantos-hls-rfc8216bis §4.4.6.6;
//! DASH `BaseURL@serviceLocation` and `ContentSteering`, DASH-IF CTS 00100), probes each
//! edge's `/.edge/status`, and answers the players' steering requests (rfc8216bis §7) with
//! the edges in the order it wants them used.
//!
//! - [`config`]: the edges and timings;
//! - [`policy`]: the steering decision, a pure function of what the origin knows;
//! - [`windows`]: steered clients per edge, counted from steering requests;
//! - [`probes`]: the edge probes and what is kept of them;
//! - [`manifests`]: steered manifests (`media` writes them) and their cache;
//! - [`metrics`]: the steering families of `/metrics`;
//! - [`Steering`]: the state tying them together, set up by
//!   [`crate::AppState::with_steering`]. It reads the time from the server's clock.
//!
//! Nothing here knows HTTP routes: `crate::routes::steering` answers the requests.

pub mod config;
pub mod manifests;
pub mod metrics;
pub mod policy;
pub mod probes;
pub mod windows;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::SystemTime;

use http_rules::SharedClock;
use media::{Delivery, SteeringManifest, SteeringProtocol};
use prometheus_client::registry::Registry;
use serde::Serialize;

pub use config::{NamedUrl, SteeringConfig, SteeringError};
use manifests::{ManifestCache, ManifestError, SourceVersion, SteeredManifest, VodSource};
use metrics::SteeringMetrics;
use policy::{EdgeFacts, priority, protocol_name, steering_query};
use probes::{Change, EdgeReport, Outcome, Probe, Prober};
use windows::{Window, count_answer, slot_at};

/// Memory for steered VOD manifests (a few kB each, two per asset).
const MANIFEST_CACHE_BYTES: u64 = 16 << 20;

/// What the probes and the steering answers have learnt, one entry per edge.
#[derive(Debug)]
struct Shared {
    probes: Vec<Probe>,
    windows: Vec<Window>,
}

/// The steering state of an origin: its edges, their last probes and steered clients.
#[derive(Debug)]
pub struct Steering {
    config: SteeringConfig,
    clock: SharedClock,
    /// When this configuration took effect: client windows count their slots from here,
    /// and generated manifests are no older.
    since: SystemTime,
    /// One lock for decisions and their counts, so concurrent new clients spread evenly.
    shared: Mutex<Shared>,
    prober: Arc<Prober>,
    /// The last probe round begun.
    rounds: AtomicU64,
    metrics: SteeringMetrics,
    manifests: ManifestCache,
}

/// One edge on `/steering/status`.
#[derive(Debug, Serialize)]
struct EdgeStatus<'a> {
    name: &'a str,
    url: &'a str,
    usable: bool,
    steered_clients: f64,
    /// RFC 3339, when the last probe ended.
    last_probe: Option<String>,
    last_probe_age_s: Option<f64>,
    last_probe_latency_ms: Option<f64>,
    last_probe_error: Option<&'a str>,
    /// The last report received.
    reported: Option<&'a EdgeReport>,
}

impl Steering {
    /// Validates `config` and starts probing its edges every `probe_interval` on the
    /// current Tokio runtime; the probes stop when the returned state is dropped.
    pub fn start(config: SteeringConfig, clock: SharedClock) -> Result<Arc<Self>, SteeringError> {
        config.validate()?;
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| SteeringError::NoRuntime)?;
        let prober = Arc::new(Prober::new(&config.edges, config.probe_timeout)?);
        let shared = Shared {
            probes: vec![Probe::default(); config.edges.len()],
            windows: vec![Window::default(); config.edges.len()],
        };
        let steering = Arc::new(Self {
            since: clock.now(),
            clock,
            shared: Mutex::new(shared),
            prober,
            rounds: AtomicU64::new(0),
            metrics: SteeringMetrics::default(),
            manifests: ManifestCache::new(MANIFEST_CACHE_BYTES),
            config,
        });
        runtime.spawn(probe_loop(
            Arc::downgrade(&steering),
            steering.config.probe_interval,
        ));
        Ok(steering)
    }

    pub fn config(&self) -> &SteeringConfig {
        &self.config
    }

    /// When steering began: a generated manifest is never dated earlier.
    pub fn since(&self) -> SystemTime {
        self.since
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // Every update leaves the state consistent, so a poisoned lock is still usable.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current slot of the client windows.
    fn slot_now(&self) -> u64 {
        slot_at(self.since, self.clock.now(), self.config.ttl)
    }

    /// Probes every edge once, now, and records what it finds (the probe loop does this
    /// every `probe_interval`; an operator or a test may ask for a round in between).
    pub async fn probe_edges(&self) {
        let round = self.rounds.fetch_add(1, Ordering::Relaxed) + 1;
        let outcomes = self.prober.round().await;
        self.record_round(round, outcomes);
    }

    fn record_round(&self, round: u64, outcomes: Vec<Outcome>) {
        let at = self.clock.now();
        let mut shared = self.lock();
        for ((edge, probe), outcome) in self
            .config
            .edges
            .iter()
            .zip(&mut shared.probes)
            .zip(outcomes)
        {
            match probe.record(round, at, outcome) {
                Some(Change::Usable) => tracing::info!(edge = %edge.name, "edge usable"),
                Some(Change::Unusable) => tracing::warn!(
                    edge = %edge.name,
                    error = probe.error.as_deref().unwrap_or("reports itself unhealthy"),
                    "edge unusable: steering players away"
                ),
                Some(Change::Same) => {}
                None => tracing::debug!(edge = %edge.name, round, "stale probe answer dropped"),
            }
        }
    }

    /// The presentation under `root` (`vod/sample`, `live/live`) on every edge, for
    /// `protocol`'s manifests.
    pub fn delivery(&self, root: &str, protocol: SteeringProtocol) -> Delivery {
        manifests::delivery(&self.config.edges, root, protocol)
    }

    /// The steered VOD manifest at `path` (in the library: `sample/master.m3u8`) if one was
    /// written from `source` (the version of the file it is written from).
    pub async fn cached_vod_manifest(
        &self,
        path: &str,
        protocol: SteeringProtocol,
        source: &SourceVersion,
    ) -> Option<Arc<SteeredManifest>> {
        self.manifests.get(path, protocol, source).await
    }

    /// Writes the steered VOD manifest at `path` of `asset` from `from` (of version
    /// `source`) and keeps it for the next requests.
    pub async fn write_vod_manifest(
        &self,
        asset: &str,
        path: &str,
        protocol: SteeringProtocol,
        source: SourceVersion,
        from: VodSource<'_>,
    ) -> Result<Arc<SteeredManifest>, ManifestError> {
        let delivery = self.delivery(&format!("vod/{asset}"), protocol);
        let text = manifests::write_vod(from, delivery, protocol)?;
        Ok(self
            .manifests
            .insert(path, protocol, SteeredManifest::new(source, text))
            .await)
    }

    /// Answers one steering request (its raw query) and, when `count` (a GET), counts the
    /// client on the edge it is steered to.
    pub fn answer(
        &self,
        protocol: SteeringProtocol,
        raw_query: &str,
        count: bool,
    ) -> SteeringManifest {
        let query = steering_query(raw_query, protocol);
        let names: Vec<&str> = self.config.edges.iter().map(|e| e.name.as_str()).collect();
        let current = query.current(&names);
        let now = self.slot_now();
        let mut shared = self.lock();
        let facts: Vec<EdgeFacts<'_>> = names
            .iter()
            .zip(shared.probes.iter().zip(&shared.windows))
            .map(|(name, (probe, window))| EdgeFacts {
                name,
                usable: probe.usable(),
                clients: window.clients(now),
                bytes_out_per_s: probe.bytes_out_per_s(),
            })
            .collect();
        let order = priority(&facts, current.map(|i| names[i]));
        if count
            && let Some(chosen) = order
                .first()
                .and_then(|n| names.iter().position(|m| m == n))
        {
            count_answer(&mut shared.windows, now, chosen, current);
        }
        drop(shared);
        self.metrics.count_request(protocol_name(protocol));
        SteeringManifest {
            version: 1,
            ttl: self.config.ttl.as_secs(),
            // The same path: clients append their parameters again (rfc8216bis §7.2), and
            // without the start marker they are known clients from now on.
            reload_uri: Some(format!("/steering/{}", protocol_name(protocol))),
            priority: order.into_iter().map(str::to_string).collect(),
        }
    }

    /// The steering families, with the gauges set to the current state.
    pub fn metrics(&self) -> &Registry {
        let now = self.slot_now();
        let shared = self.lock();
        for ((edge, probe), window) in self
            .config
            .edges
            .iter()
            .zip(&shared.probes)
            .zip(&shared.windows)
        {
            self.metrics
                .set_edge(&edge.name, probe.usable(), window.clients(now));
        }
        self.metrics.registry()
    }

    /// The `/steering/status` document.
    pub fn status(&self) -> serde_json::Value {
        let wall = self.clock.now();
        let now = self.slot_now();
        let shared = self.lock();
        let list: Vec<EdgeStatus<'_>> = self
            .config
            .edges
            .iter()
            .zip(&shared.probes)
            .zip(&shared.windows)
            .map(|((edge, probe), window)| EdgeStatus {
                name: &edge.name,
                url: edge.url.as_str(),
                usable: probe.usable(),
                steered_clients: window.clients(now),
                last_probe: probe.at.map(|t| {
                    chrono::DateTime::<chrono::Utc>::from(t)
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                }),
                last_probe_age_s: probe
                    .at
                    .map(|t| wall.duration_since(t).unwrap_or_default().as_secs_f64()),
                last_probe_latency_ms: probe.at.map(|_| probe.latency.as_secs_f64() * 1e3),
                last_probe_error: probe.error.as_deref(),
                reported: probe.report.as_ref(),
            })
            .collect();
        serde_json::json!({
            "ttl_s": self.config.ttl.as_secs(),
            "probe_interval_s": self.config.probe_interval.as_secs_f64(),
            "probe_timeout_s": self.config.probe_timeout.as_secs_f64(),
            "edges": list,
        })
    }
}

/// Probes every edge each interval until the steering state is gone. Only the prober is
/// held while probing, so dropping the state ends the loop.
async fn probe_loop(steering: Weak<Steering>, interval: std::time::Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some((round, prober)) = steering.upgrade().map(|s| {
            let round = s.rounds.fetch_add(1, Ordering::Relaxed) + 1;
            (round, Arc::clone(&s.prober))
        }) else {
            return;
        };
        let outcomes = prober.round().await;
        let Some(steering) = steering.upgrade() else {
            return;
        };
        steering.record_round(round, outcomes);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::time::Duration;

    use http_rules::ManualClock;

    use super::*;

    /// Steering over edges nobody listens on (probes fail at once: no edge is usable, so
    /// new clients go by load and nobody is moved), on a clock the test sets.
    fn steering(clock: &ManualClock, ttl: u64) -> Arc<Steering> {
        let edges = ["e1=http://127.0.0.1:1", "e2=http://127.0.0.1:1/two"]
            .iter()
            .map(|e| e.parse().unwrap())
            .collect();
        let config = SteeringConfig {
            ttl: Duration::from_secs(ttl),
            // The loop's first round runs at once; the test decides when time passes.
            probe_interval: Duration::from_secs(3600),
            ..SteeringConfig::new(edges)
        };
        Steering::start(config, clock.shared()).unwrap()
    }

    fn clients(steering: &Steering) -> Vec<f64> {
        let status = steering.status();
        status["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["steered_clients"].as_f64().unwrap())
            .collect()
    }

    #[tokio::test]
    async fn steered_clients_leave_the_count_two_ttls_after_their_last_request() {
        let clock = ManualClock::starting_now();
        let steering = steering(&clock, 10);
        for _ in 0..4 {
            let answer = steering.answer(SteeringProtocol::Hls, "start=1", true);
            assert_eq!(answer.ttl, 10);
        }
        assert_eq!(
            clients(&steering),
            [2.0, 2.0],
            "spread, one whole client each"
        );
        // A HEAD (count = false) is answered but not counted.
        steering.answer(SteeringProtocol::Hls, "start=1", false);
        assert_eq!(clients(&steering), [2.0, 2.0]);
        // The clients on e1 ask again a TTL later; those on e2 have gone.
        clock.advance(Duration::from_secs(10));
        for _ in 0..2 {
            let answer = steering.answer(SteeringProtocol::Hls, "_HLS_pathway=e1", true);
            assert_eq!(answer.priority[0], "e1", "nothing usable: nobody is moved");
        }
        assert_eq!(
            clients(&steering),
            [2.0, 1.0],
            "e2's last answers, a TTL old"
        );
        // Two TTLs after their last request, the gone clients are not counted.
        clock.advance(Duration::from_millis(9_999));
        assert_eq!(clients(&steering), [2.0, 1.0], "just inside two TTLs");
        clock.advance(Duration::from_millis(1));
        assert_eq!(clients(&steering), [1.0, 0.0]);
        clock.advance(Duration::from_secs(10));
        assert_eq!(clients(&steering), [0.0, 0.0]);
        let text = {
            let mut out = String::new();
            prometheus_client::encoding::text::encode_registry(&mut out, steering.metrics())
                .unwrap();
            out
        };
        assert!(
            text.contains("origin_steering_requests_total{protocol=\"hls\"} 7"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn probe_times_and_ages_come_from_the_clock() {
        let clock = ManualClock::starting_now();
        let steering = steering(&clock, 10);
        steering.probe_edges().await;
        clock.advance(Duration::from_millis(2_500));
        let status = steering.status();
        for edge in status["edges"].as_array().unwrap() {
            assert_eq!(edge["usable"], false, "{status}");
            assert!(edge["last_probe_error"].is_string(), "{status}");
            assert_eq!(edge["last_probe_age_s"], 2.5, "{status}");
        }
    }
}
