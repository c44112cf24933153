//! The `/.edge/status` document: what an edge says of itself, and what the origin's
//! steering reads to rank edges. One type for both sides, so a field renamed on one side
//! fails to build or to parse instead of silently reading as 0.
//!
//! The field names are a contract (the edge README shows the document): fields may be
//! added, never renamed or removed. Every field here is required when reading, and
//! fields this type does not know are ignored, so a newer edge stays readable.

use serde::{Deserialize, Serialize};

/// `GET /.edge/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeStatus {
    /// The edge's name (its `--name`, as in `Cache-Status`).
    pub name: String,
    /// False while draining, or when neither an upstream nor another peer is healthy.
    pub healthy: bool,
    /// A stop was requested: the edge finishes its requests and takes no new work.
    pub draining: bool,
    /// Seconds since start-up.
    pub uptime_s: f64,
    pub load: LoadStatus,
    /// Every listed peer, in list order, this edge included.
    pub peers: Vec<PeerStatus>,
    /// The upstreams in priority order.
    pub upstreams: Vec<UpstreamStatus>,
}

/// How busy the edge is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadStatus {
    /// Client (proxy) requests being served now, bodies included.
    pub in_flight: u64,
    /// Client requests started per second over the recent window.
    pub requests_per_s: f64,
    /// Response body bytes sent per second over the recent window.
    pub bytes_out_per_s: f64,
    pub cache_entries: u64,
    pub cache_bytes: u64,
}

/// One peer of the edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerStatus {
    pub name: String,
    pub url: String,
    /// This edge's own entry: never checked, healthy unless draining.
    #[serde(rename = "self")]
    pub is_self: bool,
    #[serde(flatten)]
    pub health: HealthStatus,
}

/// One upstream of the edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpstreamStatus {
    pub url: String,
    #[serde(flatten)]
    pub health: HealthStatus,
}

/// The health-check state of a peer or an upstream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthStatus {
    pub healthy: bool,
    pub consecutive_successes: u32,
    pub consecutive_failures: u32,
    /// Round-trip time of the last check in milliseconds; 0 before the first one.
    pub last_check_ms: f64,
    /// Why the last check or request failed; null after a success.
    pub last_error: Option<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The document of the edge README, field for field.
    const README_EXAMPLE: &str = r#"{"name":"edge-1","healthy":true,"draining":false,"uptime_s":12.3,
 "load":{"in_flight":3,"requests_per_s":41.5,"bytes_out_per_s":1234567.0,
         "cache_entries":120,"cache_bytes":34567890},
 "peers":[{"name":"edge-2","url":"http://10.0.0.2:8081/","self":false,"healthy":true,
           "consecutive_successes":5,"consecutive_failures":0,"last_check_ms":3.2,
           "last_error":null}],
 "upstreams":[{"url":"http://origin:8080/","healthy":true,"consecutive_successes":5,
               "consecutive_failures":0,"last_check_ms":1.1,"last_error":null}]}"#;

    fn example() -> EdgeStatus {
        EdgeStatus {
            name: "edge-1".into(),
            healthy: true,
            draining: false,
            uptime_s: 12.3,
            load: LoadStatus {
                in_flight: 3,
                requests_per_s: 41.5,
                bytes_out_per_s: 1_234_567.0,
                cache_entries: 120,
                cache_bytes: 34_567_890,
            },
            peers: vec![PeerStatus {
                name: "edge-2".into(),
                url: "http://10.0.0.2:8081/".into(),
                is_self: false,
                health: HealthStatus {
                    healthy: true,
                    consecutive_successes: 5,
                    consecutive_failures: 0,
                    last_check_ms: 3.2,
                    last_error: None,
                },
            }],
            upstreams: vec![UpstreamStatus {
                url: "http://origin:8080/".into(),
                health: HealthStatus {
                    healthy: true,
                    consecutive_successes: 5,
                    consecutive_failures: 0,
                    last_check_ms: 1.1,
                    last_error: None,
                },
            }],
        }
    }

    #[test]
    fn reads_the_documented_example() {
        let read: EdgeStatus = serde_json::from_str(README_EXAMPLE).unwrap();
        assert_eq!(read, example());
    }

    #[test]
    fn round_trips_with_the_documented_field_names() {
        let mut status = example();
        status.peers[0].health.last_error = Some("connection refused".into());
        let text = serde_json::to_string(&status).unwrap();
        assert_eq!(serde_json::from_str::<EdgeStatus>(&text).unwrap(), status);
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["peers"][0]["self"], false);
        assert_eq!(json["peers"][0]["consecutive_successes"], 5);
        assert_eq!(json["upstreams"][0]["last_error"], serde_json::Value::Null);
        assert_eq!(json["load"]["bytes_out_per_s"], 1_234_567.0);
    }

    #[test]
    fn a_missing_field_fails_and_a_new_one_is_ignored() {
        let renamed =
            README_EXAMPLE.replace("\"healthy\":true,\"draining\"", "\"ok\":true,\"draining\"");
        assert!(serde_json::from_str::<EdgeStatus>(&renamed).is_err());
        let renamed_load = README_EXAMPLE.replace("bytes_out_per_s", "bytes_per_s");
        assert!(serde_json::from_str::<EdgeStatus>(&renamed_load).is_err());
        let newer = README_EXAMPLE.replacen('{', "{\"version\":2,", 1);
        assert_eq!(
            serde_json::from_str::<EdgeStatus>(&newer).unwrap(),
            example()
        );
    }
}
