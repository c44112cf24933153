//! Prometheus counters, kept as atomics so the hot path never locks.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::phase::Phase;

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    requests: [Counter; Phase::ALL.len()],
    pub upstream_requests: Counter,
    pub upstream_errors: Counter,
    pub revalidations: Counter,
    pub coalesced_waiters: Counter,
    pub bytes_from_cache: Counter,
    pub bytes_from_upstream: Counter,
    pub evictions: Counter,
    pub purges: Counter,
}

impl Metrics {
    pub fn request(&self, phase: Phase) {
        self.requests[phase.index()].inc();
    }

    pub fn requests(&self, phase: Phase) -> u64 {
        self.requests[phase.index()].get()
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self, entries: u64, bytes: u64) -> String {
        let mut out = String::with_capacity(2048);
        out.push_str("# HELP edge_requests_total Client requests by cache outcome.\n# TYPE edge_requests_total counter\n");
        for phase in Phase::ALL {
            let _ = writeln!(
                out,
                "edge_requests_total{{cache=\"{}\"}} {}",
                phase.label(),
                self.requests(phase)
            );
        }
        let counters: [(&str, &str, &Counter); 8] = [
            (
                "edge_upstream_requests_total",
                "Requests sent to the upstream.",
                &self.upstream_requests,
            ),
            (
                "edge_upstream_errors_total",
                "Upstream requests that failed (refused, timed out, cut short).",
                &self.upstream_errors,
            ),
            (
                "edge_revalidations_total",
                "Stale entries confirmed by a 304 from the upstream.",
                &self.revalidations,
            ),
            (
                "edge_coalesced_waiters_total",
                "Requests that joined another request's upstream fetch.",
                &self.coalesced_waiters,
            ),
            (
                "edge_bytes_from_cache_total",
                "Body bytes served from the store.",
                &self.bytes_from_cache,
            ),
            (
                "edge_bytes_from_upstream_total",
                "Body bytes received from the upstream.",
                &self.bytes_from_upstream,
            ),
            (
                "edge_evictions_total",
                "Entries evicted to stay within the cache size.",
                &self.evictions,
            ),
            (
                "edge_purges_total",
                "Accepted PURGE requests.",
                &self.purges,
            ),
        ];
        for (name, help, c) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                c.get()
            );
        }
        let _ = writeln!(
            out,
            "# HELP edge_cache_entries Entries stored.\n# TYPE edge_cache_entries gauge\nedge_cache_entries {entries}"
        );
        let _ = writeln!(
            out,
            "# HELP edge_cache_bytes Bytes stored (headers and bodies).\n# TYPE edge_cache_bytes gauge\nedge_cache_bytes {bytes}"
        );
        out
    }
}
