//! What a session counts besides its segment logs ([`Counters`]: requests, bytes, cache
//! lookups, errors by kind, abandonments, traffic by pathway, failovers, steering fetches)
//! and the kinds of failure it tells apart ([`ErrorKind`]). Plain data that adds up over
//! sessions (the load report) and serialises into the reports; [`super::tally::Tally`] is
//! the one place a running session records into it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What kind of failure a request met; the reports count them by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// 4xx answer.
    Status4xx,
    /// 5xx (or other non-success) answer.
    Status5xx,
    /// No connection, or the request could not be sent.
    Connect,
    /// The response body broke off or came short.
    Body,
    /// Nothing arrived for the idle timeout.
    Timeout,
    /// The body is not the media segment it should be (`media::validate`).
    Media,
}

/// Traffic over one pathway.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathwayCounters {
    /// Requests sent over it, failed ones included.
    pub requests: u64,
    /// Body bytes received over it, abandoned and failed downloads included.
    pub bytes: u64,
}

/// Counts a session keeps beside its segment logs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// Requests sent (manifests, init and media segments, retries included).
    pub requests: u64,
    /// Body bytes received, abandoned and failed downloads included.
    pub bytes: u64,
    /// Responses carrying `Cache-Status`, and those reporting a hit.
    pub cache_lookups: u64,
    pub cache_hits: u64,
    /// Failed attempts (retried, or ending the session), by kind.
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Downloads abandoned for a lower rendition.
    pub abandoned: u64,
    /// Traffic by pathway id (empty when the presentation has one delivery path).
    #[serde(default)]
    pub pathways: BTreeMap<String, PathwayCounters>,
    /// Requests moved to another pathway after failing on one.
    #[serde(default)]
    pub failovers: u64,
    /// Steering manifest requests, and those that failed (not in `requests`/`errors`).
    #[serde(default)]
    pub steering_fetches: u64,
    #[serde(default)]
    pub steering_errors: u64,
}

impl Counters {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Self) {
        self.requests += other.requests;
        self.bytes += other.bytes;
        self.cache_lookups += other.cache_lookups;
        self.cache_hits += other.cache_hits;
        self.abandoned += other.abandoned;
        for (kind, n) in &other.errors {
            *self.errors.entry(*kind).or_default() += n;
        }
        for (id, c) in &other.pathways {
            let total = self.pathways.entry(id.clone()).or_default();
            total.requests += c.requests;
            total.bytes += c.bytes;
        }
        self.failovers += other.failovers;
        self.steering_fetches += other.steering_fetches;
        self.steering_errors += other.steering_errors;
    }

    /// Traffic by pathway, failovers and steering fetches on one line; `-` with one
    /// delivery path.
    pub fn pathways_text(&self) -> String {
        if self.pathways.is_empty() && self.steering_fetches == 0 {
            return "- (one delivery path)".to_owned();
        }
        let each: Vec<String> = self
            .pathways
            .iter()
            .map(|(id, p)| format!("{id} {} req {:.2} MB", p.requests, p.bytes as f64 / 1e6))
            .collect();
        format!(
            "{}; {} failovers; {} steering fetches ({} failed)",
            each.join(", "),
            self.failovers,
            self.steering_fetches,
            self.steering_errors
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up_by_pathway() {
        let one = |id: &str, requests, bytes| Counters {
            requests,
            bytes,
            pathways: [(id.to_owned(), PathwayCounters { requests, bytes })].into(),
            failovers: 1,
            steering_fetches: 2,
            ..Counters::default()
        };
        let mut total = one("a", 3, 100);
        total.add(&one("b", 2, 50));
        total.add(&one("a", 1, 10));
        assert_eq!((total.requests, total.bytes, total.failovers), (6, 160, 3));
        assert_eq!(
            total.pathways["a"],
            PathwayCounters {
                requests: 4,
                bytes: 110
            }
        );
        assert_eq!(total.pathways["b"].bytes, 50);
        assert_eq!(
            total.pathways_text(),
            "a 4 req 0.00 MB, b 2 req 0.00 MB; 3 failovers; 6 steering fetches (0 failed)"
        );
        assert_eq!(Counters::default().pathways_text(), "- (one delivery path)");
    }
}
