//! The per-request cache outcome. One value per response drives the RFC 9211
//! `Cache-Status` member, the `/metrics` counters and the tests' expectations.

use http_rules::cache_status::{CacheStatus, Forward};

/// What the cache did for one request (compare Pingora's `CachePhase`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Fresh stored response.
    Hit,
    /// Stale stored response served while a background refresh runs (RFC 5861 §3).
    StaleWhileRevalidate,
    /// Stale stored response served because the upstream failed (RFC 5861 §4).
    StaleIfError,
    /// Nothing usable stored; this request led the upstream fetch.
    Miss,
    /// Nothing usable stored; this request joined another request's upstream fetch.
    Collapsed,
    /// Stale stored response confirmed by a 304 and served from the store.
    Revalidated,
    /// Stale stored response replaced by a new full response from the upstream.
    Refreshed,
    /// Not served through the cache (unsafe method, uncacheable response, admin).
    Bypass,
    /// The upstream failed and nothing stored could be served.
    Error,
}

impl Phase {
    pub const ALL: [Phase; 9] = [
        Phase::Hit,
        Phase::StaleWhileRevalidate,
        Phase::StaleIfError,
        Phase::Miss,
        Phase::Collapsed,
        Phase::Revalidated,
        Phase::Refreshed,
        Phase::Bypass,
        Phase::Error,
    ];

    /// Label used in metrics.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Hit => "hit",
            Phase::StaleWhileRevalidate => "stale_while_revalidate",
            Phase::StaleIfError => "stale_if_error",
            Phase::Miss => "miss",
            Phase::Collapsed => "collapsed",
            Phase::Revalidated => "revalidated",
            Phase::Refreshed => "refreshed",
            Phase::Bypass => "bypass",
            Phase::Error => "error",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// A full outcome: the phase plus the `Cache-Status` parameters it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub phase: Phase,
    /// Remaining freshness in seconds (negative when stale), for `ttl=`.
    pub ttl: Option<i64>,
    /// Status of the forward request, for `fwd-status=`.
    pub fwd_status: Option<u16>,
    /// The forwarded response was (to be) stored.
    pub stored: bool,
}

impl Outcome {
    pub fn new(phase: Phase) -> Self {
        Self {
            phase,
            ttl: None,
            fwd_status: None,
            stored: false,
        }
    }

    /// The RFC 9211 list member for this node, e.g. `edge-1; hit; ttl=42`.
    pub fn cache_status(&self, name: &str) -> CacheStatus {
        let mut member = CacheStatus::new(name);
        let (hit, fwd, detail) = match self.phase {
            Phase::Hit => (true, None, None),
            Phase::StaleWhileRevalidate => (true, None, Some("stale-while-revalidate")),
            Phase::StaleIfError => (true, None, Some("stale-if-error")),
            Phase::Miss | Phase::Collapsed => (false, Some(Forward::Miss), None),
            Phase::Revalidated | Phase::Refreshed => (false, Some(Forward::Stale), None),
            Phase::Bypass => (false, Some(Forward::Bypass), None),
            Phase::Error => (false, Some(Forward::Miss), Some("upstream-error")),
        };
        member.hit = hit;
        member.fwd = fwd;
        member.ttl = self.ttl;
        member.fwd_status = self.fwd_status;
        member.stored = self.stored;
        member.collapsed = self.phase == Phase::Collapsed;
        member.detail = detail.map(str::to_owned);
        member
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_status_table() {
        let o = Outcome::new;
        let cases: &[(Outcome, &str)] = &[
            (
                Outcome {
                    ttl: Some(42),
                    ..o(Phase::Hit)
                },
                "e1; hit; ttl=42",
            ),
            (
                Outcome {
                    ttl: Some(-3),
                    ..o(Phase::StaleWhileRevalidate)
                },
                "e1; hit; ttl=-3; detail=stale-while-revalidate",
            ),
            (
                Outcome {
                    ttl: Some(-3),
                    fwd_status: Some(503),
                    ..o(Phase::StaleIfError)
                },
                "e1; hit; ttl=-3; fwd-status=503; detail=stale-if-error",
            ),
            (
                Outcome {
                    fwd_status: Some(200),
                    stored: true,
                    ..o(Phase::Miss)
                },
                "e1; fwd=miss; fwd-status=200; stored",
            ),
            (
                Outcome {
                    fwd_status: Some(200),
                    ..o(Phase::Miss)
                },
                "e1; fwd=miss; fwd-status=200",
            ),
            (
                Outcome {
                    fwd_status: Some(200),
                    stored: true,
                    ..o(Phase::Collapsed)
                },
                "e1; fwd=miss; fwd-status=200; stored; collapsed",
            ),
            (
                Outcome {
                    fwd_status: Some(304),
                    ttl: Some(60),
                    ..o(Phase::Revalidated)
                },
                "e1; fwd=stale; ttl=60; fwd-status=304",
            ),
            (
                Outcome {
                    fwd_status: Some(200),
                    stored: true,
                    ..o(Phase::Refreshed)
                },
                "e1; fwd=stale; fwd-status=200; stored",
            ),
            (
                Outcome {
                    fwd_status: Some(201),
                    ..o(Phase::Bypass)
                },
                "e1; fwd=bypass; fwd-status=201",
            ),
            (o(Phase::Error), "e1; fwd=miss; detail=upstream-error"),
        ];
        for (outcome, want) in cases {
            assert_eq!(outcome.cache_status("e1").to_string(), *want);
        }
        for (i, p) in Phase::ALL.iter().enumerate() {
            assert_eq!(p.index(), i);
        }
    }
}
