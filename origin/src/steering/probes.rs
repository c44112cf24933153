//! Edge probes: `GET {edge}/.edge/status` on every edge at once, and what the origin keeps
//! of the last answer. The origin probes rather than waiting for players to fail because a
//! player only learns that an edge is gone by stalling on it, and only for itself.

use std::time::{Duration, Instant, SystemTime};

use http_rules::cli::NamedUrl;
use http_rules::edge_status::EdgeStatus;
use http_rules::report::error_chain;
use url::Url;

use crate::steering::config::SteeringError;

/// The largest `/.edge/status` body read.
const MAX_STATUS_BYTES: usize = 64 * 1024;

/// The outcome of probing one edge once, and how long it took.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub result: Result<EdgeStatus, String>,
    pub latency: Duration,
}

/// The last probe of one edge.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Probe {
    /// When it ended; `None` before the first.
    pub at: Option<SystemTime>,
    pub latency: Duration,
    /// Why it failed; `None` after a success.
    pub error: Option<String>,
    /// The last report received (kept after a failure, for the status page).
    pub report: Option<EdgeStatus>,
    /// The round it belongs to: rounds overlap (the loop's and one asked for by hand), and
    /// an older round's answer must not undo what a newer one found.
    round: u64,
}

/// How an edge's usability changed with a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Usable now, after being unusable or never probed.
    Usable,
    /// Unusable now, after being usable or never probed.
    Unusable,
    /// As before.
    Same,
}

impl Probe {
    /// A failed probe makes an edge unusable at once, a success usable again.
    pub fn usable(&self) -> bool {
        self.at.is_some() && self.error.is_none() && self.report.as_ref().is_some_and(|r| r.healthy)
    }

    /// The load that ranks edges: a load that is not a finite positive rate counts as none.
    pub fn bytes_out_per_s(&self) -> f64 {
        self.report
            .as_ref()
            .map(|r| r.load.bytes_out_per_s)
            .filter(|v| v.is_finite() && *v > 0.0)
            .unwrap_or(0.0)
    }

    /// Records `outcome`, of probe round `round`, ended at `at`. `None` when an answer of a
    /// later round is already there (this one is stale and dropped).
    pub fn record(&mut self, round: u64, at: SystemTime, outcome: Outcome) -> Option<Change> {
        if self.at.is_some() && round < self.round {
            return None;
        }
        // `None` before the first probe: its outcome is reported either way.
        let was = self.at.map(|_| self.usable());
        self.round = round;
        self.at = Some(at);
        self.latency = outcome.latency;
        match outcome.result {
            Ok(report) => {
                self.error = None;
                self.report = Some(report);
            }
            Err(error) => self.error = Some(error),
        }
        Some(match (was, self.usable()) {
            (None | Some(false), true) => Change::Usable,
            (None | Some(true), false) => Change::Unusable,
            _ => Change::Same,
        })
    }
}

/// Probes the edges of a configuration.
#[derive(Debug)]
pub struct Prober {
    client: reqwest::Client,
    urls: Vec<Url>,
}

impl Prober {
    /// A prober whose every request ends within `timeout`, connection included.
    pub fn new(edges: &[NamedUrl], timeout: Duration) -> Result<Self, SteeringError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // Edges are reached directly, whatever HTTP_PROXY says.
            .no_proxy()
            .build()
            .map_err(|e| SteeringError::Client(error_chain(&e)))?;
        let urls = edges
            .iter()
            .map(|e| e.url.join(".edge/status").unwrap_or_else(|_| e.url.clone()))
            .collect();
        Ok(Self { client, urls })
    }

    /// Probes every edge at once: one outcome per edge, in configuration order.
    pub async fn round(&self) -> Vec<Outcome> {
        futures::future::join_all(self.urls.iter().map(|url| async move {
            let started = Instant::now();
            let result = probe(&self.client, url.clone()).await;
            Outcome {
                result,
                latency: started.elapsed(),
            }
        }))
        .await
    }
}

/// `GET {edge}.edge/status`, bounded by the client's timeout and [`MAX_STATUS_BYTES`].
/// The document is read strictly: a field missing or renamed on the edge's side is an
/// error naming it, never a silent 0 that would rank the edge as idle.
async fn probe(client: &reqwest::Client, url: Url) -> Result<EdgeStatus, String> {
    let mut response = client.get(url).send().await.map_err(|e| error_chain(&e))?;
    if !response.status().is_success() {
        return Err(format!("status {}", response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| error_chain(&e))? {
        if body.len() + chunk.len() > MAX_STATUS_BYTES {
            return Err(format!("status body over {MAX_STATUS_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    read_status(&body)
}

/// The `/.edge/status` document, every field required (`http_rules::edge_status`).
fn read_status(body: &[u8]) -> Result<EdgeStatus, String> {
    serde_json::from_slice(body).map_err(|e| format!("invalid status JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use http_rules::edge_status::LoadStatus;

    use super::*;

    fn report(healthy: bool, bytes_out_per_s: f64) -> EdgeStatus {
        EdgeStatus {
            name: "e1".into(),
            healthy,
            draining: false,
            uptime_s: 1.0,
            load: LoadStatus {
                bytes_out_per_s,
                ..LoadStatus::default()
            },
            peers: Vec::new(),
            upstreams: Vec::new(),
        }
    }

    fn outcome(result: Result<EdgeStatus, &str>) -> Outcome {
        Outcome {
            result: result.map_err(str::to_owned),
            latency: Duration::from_millis(3),
        }
    }

    #[test]
    fn one_probe_decides_usability_and_stale_rounds_are_dropped() {
        let t = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        // (round, outcome, expected change, usable after, why), applied in order to one edge.
        let rows = [
            (
                1,
                outcome(Err("refused")),
                Some(Change::Unusable),
                false,
                "first probe fails",
            ),
            (
                2,
                outcome(Ok(report(true, 5.0))),
                Some(Change::Usable),
                true,
                "one success",
            ),
            (
                3,
                outcome(Ok(report(true, 9.0))),
                Some(Change::Same),
                true,
                "still usable",
            ),
            (
                2,
                outcome(Err("late")),
                None,
                true,
                "an older round's answer is dropped",
            ),
            (
                4,
                outcome(Err("timed out")),
                Some(Change::Unusable),
                false,
                "one failure",
            ),
            (
                5,
                outcome(Ok(report(false, 1.0))),
                Some(Change::Same),
                false,
                "says unhealthy",
            ),
            (
                6,
                outcome(Ok(report(true, 1.0))),
                Some(Change::Usable),
                true,
                "healthy again",
            ),
        ];
        let mut probe = Probe::default();
        assert!(!probe.usable(), "never probed");
        for (round, outcome, change, usable, why) in rows {
            assert_eq!(probe.record(round, t(round), outcome), change, "{why}");
            assert_eq!(probe.usable(), usable, "{why}");
        }
        assert_eq!(probe.at, Some(t(6)));
        // A failure keeps the last report for the status page.
        probe.record(7, t(7), outcome(Err("refused")));
        assert_eq!(probe.report, Some(report(true, 1.0)));
        assert_eq!(probe.error.as_deref(), Some("refused"));
    }

    #[test]
    fn a_renamed_status_field_is_an_error_not_a_zero() {
        let good = serde_json::to_vec(&report(true, 5.0)).unwrap_or_default();
        assert_eq!(read_status(&good), Ok(report(true, 5.0)));
        let text = String::from_utf8(good).unwrap_or_default();
        let renamed = text.replace("bytes_out_per_s", "bytes_per_s");
        let error = read_status(renamed.as_bytes()).err().unwrap_or_default();
        assert!(error.contains("bytes_out_per_s"), "{error}");
    }

    #[test]
    fn only_finite_positive_loads_rank_edges() {
        for (load, want) in [
            (1e6, 1e6),
            (0.0, 0.0),
            (-5.0, 0.0),
            (f64::NAN, 0.0),
            (f64::INFINITY, 0.0),
        ] {
            let mut probe = Probe::default();
            probe.record(1, SystemTime::UNIX_EPOCH, outcome(Ok(report(true, load))));
            assert_eq!(probe.bytes_out_per_s(), want, "{load}");
        }
        assert_eq!(Probe::default().bytes_out_per_s(), 0.0);
    }
}
