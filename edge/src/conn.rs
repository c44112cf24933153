//! Client connections: the counters of the server loop (`http_rules::server`, shared
//! with the origin: timeouts, the cap, accept back-off), read by `/.edge/metrics`.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

/// The server loop's counters, shared with the node's `/.edge/metrics` through
/// [`crate::Config::connections`] (clones count together).
#[derive(Debug, Clone, Default)]
pub struct ConnectionCounters {
    /// `edge_connections`: client connections open now.
    pub open: Gauge,
    /// `edge_connections_refused_total`: connections answered 503 at the cap.
    pub refused: Counter,
}

impl http_rules::server::ConnectionEvents for ConnectionCounters {
    fn opened(&self) {
        self.open.inc();
    }

    fn closed(&self) {
        self.open.dec();
    }

    fn refused(&self) {
        self.refused.inc();
    }
}
