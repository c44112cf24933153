//! `/.edge/metrics`: the edge's counters, written by `prometheus-client` as the origin's
//! are. Counters are atomics handed out once, so the request path never locks; what
//! describes the cluster (peer and upstream health) and the store's size is read at
//! scrape time. The names and labels are a contract that tests and tools read.

use std::fmt;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::cluster::{Hop, Membership};
use crate::conn::ConnectionCounters;
use crate::phase::Phase;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabel {
    cache: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabel {
    peer: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabel {
    upstream: String,
}

/// The edge's counters. Each is registered once under its exported name (`edge_` plus
/// the name here, counters ending in `_total`).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// `edge_requests_total{cache=…}`, one counter per phase.
    requests: [Counter; Phase::ALL.len()],
    pub upstream_requests: Counter,
    pub upstream_errors: Counter,
    pub revalidations: Counter,
    pub coalesced_waiters: Counter,
    pub bytes_from_cache: Counter,
    pub bytes_from_upstream: Counter,
    pub evictions: Counter,
    pub purges: Counter,
    pub peer_fallbacks: Counter,
    pub bytes_from_peers: Counter,
    pub loop_rejections: Counter,
    pub reloads_ok: Counter,
    pub reloads_error: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("edge");
        let by_phase = Family::<CacheLabel, Counter>::default();
        registry.register(
            "requests",
            "Client requests by cache outcome.",
            by_phase.clone(),
        );
        // Every phase is exported from the start, at 0.
        let requests = Phase::ALL.map(|phase| {
            by_phase
                .get_or_create(&CacheLabel {
                    cache: phase.label(),
                })
                .clone()
        });
        let mut counter = |name: &str, help: &str| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        let upstream_requests = counter("upstream_requests", "Requests sent to the upstream.");
        let upstream_errors = counter(
            "upstream_errors",
            "Upstream requests that failed (refused, timed out, cut short).",
        );
        let revalidations = counter(
            "revalidations",
            "Stale entries confirmed by a 304 from the upstream.",
        );
        let coalesced_waiters = counter(
            "coalesced_waiters",
            "Requests that joined another request's upstream fetch.",
        );
        let bytes_from_cache = counter("bytes_from_cache", "Body bytes served from the store.");
        let bytes_from_upstream = counter(
            "bytes_from_upstream",
            "Body bytes received from the upstream.",
        );
        let evictions = counter(
            "evictions",
            "Entries evicted to stay within the cache size.",
        );
        let purges = counter("purges", "Accepted PURGE requests.");
        let peer_fallbacks = counter(
            "peer_fallbacks",
            "Peer fetches that failed and went to the next peer or the upstream.",
        );
        let bytes_from_peers = counter("bytes_from_peers", "Body bytes received from peer edges.");
        let loop_rejections = counter(
            "loop_rejections",
            "Requests refused with 508 because they came round a loop (Via, CDN-Loop).",
        );
        let reloads = Family::<ResultLabel, Counter>::default();
        registry.register(
            "config_reloads",
            "SIGHUP reloads of the --config file.",
            reloads.clone(),
        );
        let reload = |result| reloads.get_or_create(&ResultLabel { result }).clone();
        Metrics {
            reloads_ok: reload("ok"),
            reloads_error: reload("error"),
            registry,
            requests,
            upstream_requests,
            upstream_errors,
            revalidations,
            coalesced_waiters,
            bytes_from_cache,
            bytes_from_upstream,
            evictions,
            purges,
            peer_fallbacks,
            bytes_from_peers,
            loop_rejections,
        }
    }
}

/// What the store holds, read at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreSize {
    pub entries: u64,
    pub bytes: u64,
    /// Fill memory reserved.
    pub filling: u64,
}

impl Metrics {
    pub fn request(&self, phase: Phase) {
        self.requests[phase.index()].inc();
    }

    pub fn requests(&self, phase: Phase) -> u64 {
        self.requests[phase.index()].get()
    }

    /// The counter of body bytes received over `hop`.
    pub fn bytes_from(&self, hop: Hop) -> &Counter {
        match hop {
            Hop::Peer => &self.bytes_from_peers,
            Hop::Upstream => &self.bytes_from_upstream,
        }
    }

    /// The OpenMetrics text exposition: the counters, then the store's size and the
    /// cluster's state as they are now.
    pub fn encode(
        &self,
        store: StoreSize,
        connections: &ConnectionCounters,
        m: &Membership,
        draining: bool,
    ) -> Result<String, fmt::Error> {
        let mut now = Registry::with_prefix("edge");
        let gauge = |value: u64| {
            let g = Gauge::<i64>::default();
            g.set(i64::try_from(value).unwrap_or(i64::MAX));
            g
        };
        now.register("cache_entries", "Entries stored.", gauge(store.entries));
        now.register(
            "fill_bytes",
            "Fill memory reserved by bodies on their way into the cache.",
            gauge(store.filling),
        );
        now.register(
            "connections",
            "Client connections open.",
            connections.open.clone(),
        );
        now.register(
            "connections_refused",
            "Client connections answered 503 because --max-connections were open.",
            connections.refused.clone(),
        );
        now.register(
            "cache_bytes",
            "Bytes stored (headers and bodies).",
            gauge(store.bytes),
        );
        let peer_healthy = Family::<PeerLabel, Gauge>::default();
        let peer_requests = Family::<PeerLabel, Counter>::default();
        for (peer, view) in m.peer_views(draining) {
            let label = PeerLabel {
                peer: peer.name.clone(),
            };
            peer_healthy
                .get_or_create(&label)
                .set(i64::from(view.state.healthy));
            peer_requests
                .get_or_create(&label)
                .inc_by(peer.requests.get());
        }
        now.register(
            "peer_healthy",
            "Whether a peer passes its health checks (1) or not (0).",
            peer_healthy,
        );
        now.register(
            "peer_requests",
            "Cache fills asked of a peer.",
            peer_requests,
        );
        let upstream_healthy = Family::<UpstreamLabel, Gauge>::default();
        for u in &m.upstreams {
            upstream_healthy
                .get_or_create(&UpstreamLabel {
                    upstream: u.name.clone(),
                })
                .set(i64::from(u.healthy()));
        }
        now.register(
            "upstream_healthy",
            "Whether an upstream passes its health checks (1) or not (0).",
            upstream_healthy,
        );
        let mut out = String::with_capacity(4096);
        encode_registry(&mut out, &self.registry)?;
        encode_registry(&mut out, &now)?;
        encode_eof(&mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::settings::Settings;

    #[test]
    fn exports_every_series_under_its_contract_name() {
        let metrics = Metrics::default();
        metrics.request(Phase::Hit);
        metrics.request(Phase::Hit);
        metrics.bytes_from(Hop::Peer).inc_by(7);
        metrics.reloads_error.inc();
        let settings = Settings {
            upstreams: vec!["http://o1/".parse().unwrap()],
            upstream_health_path: "/healthz".into(),
            peers: vec![
                "e1=http://e1/".parse().unwrap(),
                "e2=http://e2/".parse().unwrap(),
            ],
            health: crate::health::HealthParams::default(),
        };
        let m = Membership::new(&settings, "e1", None);
        m.peers[1].requests.inc_by(3);
        let connections = ConnectionCounters::default();
        connections.open.set(2);
        connections.refused.inc();
        let text = metrics
            .encode(
                StoreSize {
                    entries: 4,
                    bytes: 5000,
                    filling: 700,
                },
                &connections,
                &m,
                false,
            )
            .unwrap();
        for line in [
            "edge_requests_total{cache=\"hit\"} 2",
            "edge_requests_total{cache=\"stale_while_revalidate\"} 0",
            "edge_requests_total{cache=\"error\"} 0",
            "edge_upstream_requests_total 0",
            "edge_upstream_errors_total 0",
            "edge_revalidations_total 0",
            "edge_coalesced_waiters_total 0",
            "edge_bytes_from_cache_total 0",
            "edge_bytes_from_upstream_total 0",
            "edge_evictions_total 0",
            "edge_purges_total 0",
            "edge_peer_fallbacks_total 0",
            "edge_bytes_from_peers_total 7",
            "edge_loop_rejections_total 0",
            "edge_config_reloads_total{result=\"ok\"} 0",
            "edge_config_reloads_total{result=\"error\"} 1",
            "edge_cache_entries 4",
            "edge_cache_bytes 5000",
            "edge_fill_bytes 700",
            "edge_connections 2",
            "edge_connections_refused_total 1",
            "edge_peer_healthy{peer=\"e1\"} 1",
            "edge_peer_healthy{peer=\"e2\"} 1",
            "edge_peer_requests_total{peer=\"e2\"} 3",
            "edge_upstream_healthy{upstream=\"http://o1/\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
        // Draining makes this edge's own entry unhealthy.
        let text = metrics
            .encode(StoreSize::default(), &connections, &m, true)
            .unwrap();
        assert!(text.contains("edge_peer_healthy{peer=\"e1\"} 0"), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        let family = Family::<UpstreamLabel, Gauge>::default();
        family
            .get_or_create(&UpstreamLabel {
                upstream: "a\"b\\c\nd".into(),
            })
            .set(1);
        let mut registry = Registry::with_prefix("edge");
        registry.register("upstream_healthy", "h", family);
        let mut out = String::new();
        encode_registry(&mut out, &registry).unwrap();
        assert!(out.contains("{upstream=\"a\\\"b\\\\c\\nd\"} 1"), "{out}");
    }
}
