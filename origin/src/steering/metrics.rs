//! The steering families of `/metrics`, in a registry of their own so that an origin
//! without edges exports exactly what it did before.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EdgeLabels {
    edge: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProtocolLabels {
    protocol: &'static str,
}

/// `origin_edge_usable{edge}`, `origin_steering_requests_total{protocol}`,
/// `origin_steered_clients{edge}`.
#[derive(Debug)]
pub struct SteeringMetrics {
    registry: Registry,
    usable: Family<EdgeLabels, Gauge>,
    requests: Family<ProtocolLabels, Counter>,
    clients: Family<EdgeLabels, Gauge<f64, AtomicU64>>,
}

impl Default for SteeringMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("origin");
        let usable = Family::<EdgeLabels, Gauge>::default();
        let requests = Family::<ProtocolLabels, Counter>::default();
        let clients = Family::<EdgeLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "edge_usable",
            "Whether the edge's last probe succeeded and it reported itself healthy",
            usable.clone(),
        );
        registry.register(
            "steering_requests",
            "Steering manifests served, by protocol",
            requests.clone(),
        );
        registry.register(
            "steered_clients",
            "Clients steered to the edge first, counted from steering requests over two TTLs",
            clients.clone(),
        );
        Self {
            registry,
            usable,
            requests,
            clients,
        }
    }
}

impl SteeringMetrics {
    /// One steering manifest served for `protocol` (`hls`, `dash`).
    pub fn count_request(&self, protocol: &'static str) {
        self.requests
            .get_or_create(&ProtocolLabels { protocol })
            .inc();
    }

    /// The gauges of one edge.
    pub fn set_edge(&self, edge: &str, usable: bool, clients: f64) {
        let labels = EdgeLabels { edge: edge.into() };
        self.usable.get_or_create(&labels).set(i64::from(usable));
        self.clients.get_or_create(&labels).set(clients);
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}
