//! Prometheus counters, kept as atomics so the hot path never locks.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::cluster::Membership;
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
    pub peer_fallbacks: Counter,
    pub bytes_from_peers: Counter,
    pub loop_rejections: Counter,
    pub reloads_ok: Counter,
    pub reloads_error: Counter,
}

impl Metrics {
    pub fn request(&self, phase: Phase) {
        self.requests[phase.index()].inc();
    }

    pub fn requests(&self, phase: Phase) -> u64 {
        self.requests[phase.index()].get()
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self, entries: u64, bytes: u64, m: &Membership, draining: bool) -> String {
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
        let counters: [(&str, &str, &Counter); 11] = [
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
            (
                "edge_peer_fallbacks_total",
                "Peer fetches that failed and went to the next peer or the upstream.",
                &self.peer_fallbacks,
            ),
            (
                "edge_bytes_from_peers_total",
                "Body bytes received from peer edges.",
                &self.bytes_from_peers,
            ),
            (
                "edge_loop_rejections_total",
                "Requests refused with 508 because they came round a loop (Via, CDN-Loop).",
                &self.loop_rejections,
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
        out.push_str("# HELP edge_config_reloads_total SIGHUP reloads of the --config file.\n# TYPE edge_config_reloads_total counter\n");
        for (result, c) in [("ok", &self.reloads_ok), ("error", &self.reloads_error)] {
            let _ = writeln!(
                out,
                "edge_config_reloads_total{{result=\"{result}\"}} {}",
                c.get()
            );
        }
        let peers = m.peer_views(draining);
        out.push_str("# HELP edge_peer_healthy Whether a peer passes its health checks (1) or not (0).\n# TYPE edge_peer_healthy gauge\n");
        for (p, view) in &peers {
            let _ = writeln!(
                out,
                "edge_peer_healthy{{peer=\"{}\"}} {}",
                label(&p.name),
                u8::from(view.state.healthy)
            );
        }
        out.push_str("# HELP edge_peer_requests_total Cache fills asked of a peer.\n# TYPE edge_peer_requests_total counter\n");
        for (p, _) in &peers {
            let _ = writeln!(
                out,
                "edge_peer_requests_total{{peer=\"{}\"}} {}",
                label(&p.name),
                p.requests.get()
            );
        }
        out.push_str("# HELP edge_upstream_healthy Whether an upstream passes its health checks (1) or not (0).\n# TYPE edge_upstream_healthy gauge\n");
        for u in &m.upstreams {
            let _ = writeln!(
                out,
                "edge_upstream_healthy{{upstream=\"{}\"}} {}",
                label(&u.name),
                u8::from(u.healthy())
            );
        }
        out
    }
}

/// A label value escaped as the text format requires (backslash, quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn label_escaping() {
        assert_eq!(super::label("edge-1"), "edge-1");
        assert_eq!(super::label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
