//! How the origin steers: the edges (`--edge NAME=URL`, the shared grammar of
//! `http_rules::cli`), the steering TTL and the probe timings.

use std::time::Duration;

pub use http_rules::cli::NamedUrl;
use http_rules::cli::{CliError, parse_name};

/// Players behind one address counted by default (`--steering-clients-per-address`).
pub const DEFAULT_CLIENTS_PER_ADDRESS: u32 = 64;

/// How the origin steers.
#[derive(Debug, Clone, PartialEq)]
pub struct SteeringConfig {
    /// In order: the first is every manifest's default pathway. The name is the pathway ID
    /// (HLS `PATHWAY-ID`, DASH `@serviceLocation`); the library is under `{url}vod/…` and
    /// `{url}live/…` on the edge.
    pub edges: Vec<NamedUrl>,
    /// How long clients keep a steering manifest (`TTL`, whole seconds).
    pub ttl: Duration,
    pub probe_interval: Duration,
    pub probe_timeout: Duration,
    /// Players counted per client address (an IPv6 /64) and TTL at most: the weight
    /// anyone sending steering requests can add to an edge's count.
    pub clients_per_address: u32,
}

impl SteeringConfig {
    /// `edges` with the default timings: TTL 10 s, probes every second, 500 ms timeout;
    /// 64 players counted per address.
    pub fn new(edges: Vec<NamedUrl>) -> Self {
        Self {
            edges,
            ttl: Duration::from_secs(10),
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
            clients_per_address: DEFAULT_CLIENTS_PER_ADDRESS,
        }
    }

    /// Checks what the types cannot: names (the fields are public, so a config may not
    /// have come through the parser), duplicates and timings.
    pub fn validate(&self) -> Result<(), SteeringError> {
        if self.edges.is_empty() {
            return Err(SteeringError::NoEdges);
        }
        for (i, edge) in self.edges.iter().enumerate() {
            parse_name(&edge.name).map_err(|source| SteeringError::Name {
                name: edge.name.clone(),
                source,
            })?;
            if self.edges[..i].iter().any(|e| e.name == edge.name) {
                return Err(SteeringError::Duplicate(edge.name.clone()));
            }
        }
        // rfc8216bis §7.1: TTL is a whole number of seconds.
        if self.ttl < Duration::from_secs(1) || self.ttl.subsec_nanos() != 0 {
            return Err(SteeringError::Ttl(self.ttl));
        }
        if self.probe_interval.is_zero() || self.probe_timeout.is_zero() {
            return Err(SteeringError::Probe);
        }
        if self.clients_per_address == 0 {
            return Err(SteeringError::ClientsPerAddress);
        }
        Ok(())
    }
}

/// Why steering could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SteeringError {
    #[error("edge name {name:?}: {source}")]
    Name {
        name: String,
        #[source]
        source: CliError,
    },
    #[error("edge {0} is configured twice")]
    Duplicate(String),
    #[error("content steering needs at least one edge")]
    NoEdges,
    #[error("the steering TTL must be a whole number of seconds, at least 1 (got {0:?})")]
    Ttl(Duration),
    #[error("the edge probe interval and timeout must be above zero")]
    Probe,
    #[error("the players counted per address must be at least 1")]
    ClientsPerAddress,
    #[error("edge probes need a Tokio runtime")]
    NoRuntime,
    #[error("cannot build the edge probe client: {0}")]
    Client(String),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn edges_parse_from_flags() {
        let e: NamedUrl = "e1=http://127.0.0.1:8081".parse().unwrap();
        assert_eq!(e.name, "e1");
        assert_eq!(e.url.as_str(), "http://127.0.0.1:8081/");
        let e: NamedUrl = "cdn-b = https://b.example/rivulet".parse().unwrap();
        assert_eq!(e.url.as_str(), "https://b.example/rivulet/");
        for bad in [
            "e1",
            "=http://x",
            "e 1=http://x",
            "e1=ftp://x",
            "e1=http://x/?q=1",
            "e1=/relative",
            "e1=",
            "e\"1=http://x",
            ".=http://x",
            "-a=http://x",
        ] {
            assert!(bad.parse::<NamedUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn configs_are_validated() {
        let edge = |n: &str| NamedUrl {
            name: n.into(),
            url: "http://127.0.0.1:1/".parse().unwrap(),
        };
        assert!(SteeringConfig::new(vec![edge("a")]).validate().is_ok());
        let rows = [
            SteeringConfig::new(vec![]),
            SteeringConfig::new(vec![edge("a"), edge("a")]),
            SteeringConfig::new(vec![edge("a b")]),
            SteeringConfig {
                ttl: Duration::from_millis(1500),
                ..SteeringConfig::new(vec![edge("a")])
            },
            SteeringConfig {
                ttl: Duration::ZERO,
                ..SteeringConfig::new(vec![edge("a")])
            },
            SteeringConfig {
                probe_interval: Duration::ZERO,
                ..SteeringConfig::new(vec![edge("a")])
            },
            SteeringConfig {
                clients_per_address: 0,
                ..SteeringConfig::new(vec![edge("a")])
            },
        ];
        for config in rows {
            assert!(config.validate().is_err(), "{config:?}");
        }
    }
}
