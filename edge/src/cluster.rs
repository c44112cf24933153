//! Membership: the peers sharing the cache and the upstreams behind it, with their
//! health, and where a request for a key goes (owner peers by rendezvous hashing, then
//! the upstreams in priority order). Replaced as a whole on SIGHUP.

use std::fmt::Write as _;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use http::{HeaderMap, StatusCode};
use http_rules::cache_status;
use prometheus_client::metrics::counter::Counter;
use tracing::{info, warn};

use crate::health::{Health, HealthParams, HealthView, Transition};
use crate::hrw;
use crate::settings::Settings;

/// What a target is to this edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Peer,
    Upstream,
}

/// A peer or an upstream.
#[derive(Debug)]
pub struct Target {
    /// A peer's name; an upstream's URL.
    pub name: String,
    pub url: reqwest::Url,
    /// `url` without its trailing `/`, to prepend to request targets.
    prefix: String,
    pub role: Role,
    /// This edge's own entry in the peer list (never checked nor fetched from).
    pub is_self: bool,
    pub health: Health,
    /// Requests sent to this target as a peer.
    pub requests: Counter,
}

impl Target {
    fn new(name: String, url: reqwest::Url, role: Role, is_self: bool) -> Self {
        Target {
            prefix: url.as_str().trim_end_matches('/').to_owned(),
            name,
            url,
            role,
            is_self,
            health: Health::default(),
            requests: Counter::default(),
        }
    }

    /// The URL of `path_and_query` on this target.
    pub fn url_for(&self, path_and_query: &str) -> String {
        let mut url = String::with_capacity(self.prefix.len() + path_and_query.len());
        url.push_str(&self.prefix);
        url.push_str(path_and_query);
        url
    }

    pub fn healthy(&self) -> bool {
        self.health.healthy()
    }

    /// Records an active check (`rtt` set) or a failure seen by a request, logging
    /// a change of health.
    pub fn observe(&self, error: Option<String>, rtt: Option<Duration>, p: &HealthParams) {
        let why = error.clone();
        match self.health.record(error, rtt, p) {
            Some(Transition::Down) => warn!(
                role = ?self.role,
                name = %self.name,
                error = why.as_deref().unwrap_or(""),
                "now unhealthy: skipped until its checks pass {} times in a row",
                p.rise
            ),
            Some(Transition::Up) => info!(role = ?self.role, name = %self.name, "healthy again"),
            None => {}
        }
    }
}

/// Where a response was fetched from, for the byte counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hop {
    Peer,
    Upstream,
}

/// One configuration's peers and upstreams.
#[derive(Debug)]
pub struct Membership {
    /// In the listed order, this edge included when listed.
    pub peers: Vec<Arc<Target>>,
    /// In priority order.
    pub upstreams: Vec<Arc<Target>>,
    pub upstream_health_path: String,
    pub health: HealthParams,
    /// Peer names, in `peers` order, for ranking.
    names: Vec<String>,
}

impl Membership {
    /// Builds the membership for `s`. Targets also in `previous` (same name and URL)
    /// are carried over with their health and counters, so a reload does not make a
    /// dead peer look healthy again nor reset metrics.
    pub fn new(s: &Settings, self_name: &str, previous: Option<&Membership>) -> Self {
        let reuse = |old: Option<&Vec<Arc<Target>>>, name: &str, url: &reqwest::Url| {
            old.into_iter()
                .flatten()
                .find(|t| t.name == name && t.url == *url)
                .cloned()
        };
        let peers = s
            .peers
            .iter()
            .map(|p| {
                reuse(previous.map(|m| &m.peers), &p.name, &p.url).unwrap_or_else(|| {
                    Arc::new(Target::new(
                        p.name.clone(),
                        p.url.clone(),
                        Role::Peer,
                        p.name == self_name,
                    ))
                })
            })
            .collect::<Vec<_>>();
        let upstreams = s
            .upstreams
            .iter()
            .map(|u| {
                reuse(previous.map(|m| &m.upstreams), u.as_str(), u).unwrap_or_else(|| {
                    Arc::new(Target::new(u.to_string(), u.clone(), Role::Upstream, false))
                })
            })
            .collect();
        Membership {
            names: peers.iter().map(|p| p.name.clone()).collect(),
            peers,
            upstreams,
            upstream_health_path: s.upstream_health_path.clone(),
            health: s.health,
        }
    }

    /// Whether this edge is one of the peers (a peer list that omits it makes it a
    /// pure client of the others: it owns no key).
    pub fn lists_self(&self) -> bool {
        self.peers.iter().any(|p| p.is_self)
    }

    /// The peers to ask for `key`, in order, before the upstreams: the healthy members
    /// ranked above this edge by rendezvous hashing. Empty when this edge owns the
    /// key, or when every member ranked above it is unhealthy (the next in line takes
    /// over, as every edge skips the same unhealthy owner).
    pub fn peers_for(&self, key: &str) -> Vec<Arc<Target>> {
        hrw::rank(key, &self.names)
            .into_iter()
            .filter_map(|i| self.peers.get(i))
            .take_while(|p| !p.is_self)
            .filter(|p| p.healthy())
            .cloned()
            .collect()
    }

    /// The upstreams in the order to try them.
    pub fn upstream_order(&self) -> Vec<Arc<Target>> {
        let healthy: Vec<bool> = self.upstreams.iter().map(|u| u.healthy()).collect();
        failover_order(&healthy)
            .into_iter()
            .filter_map(|i| self.upstreams.get(i).cloned())
            .collect()
    }

    /// Whether anything can serve a miss: a healthy upstream or a healthy other peer.
    pub fn can_serve(&self) -> bool {
        self.upstreams.iter().any(|u| u.healthy())
            || self.peers.iter().any(|p| !p.is_self && p.healthy())
    }

    /// The targets the health checker probes, with the URL to GET.
    pub fn checks(&self) -> impl Iterator<Item = (&Arc<Target>, String)> {
        let peers = self
            .peers
            .iter()
            .filter(|p| !p.is_self)
            .map(|p| (p, p.url_for(PEER_HEALTH_PATH)));
        let ups = self
            .upstreams
            .iter()
            .map(|u| (u, u.url_for(&self.upstream_health_path)));
        peers.chain(ups)
    }

    /// A one-line summary for start-up and reload logs.
    pub fn describe(&self) -> String {
        let mut s = String::from("upstreams ");
        for (i, u) in self.upstreams.iter().enumerate() {
            let _ = write!(s, "{}{}", if i > 0 { ", " } else { "" }, u.url);
        }
        if !self.peers.is_empty() {
            s.push_str("; peers ");
            for (i, p) in self.peers.iter().enumerate() {
                let me = if p.is_self { " (self)" } else { "" };
                let sep = if i > 0 { ", " } else { "" };
                let _ = write!(s, "{sep}{}={}{me}", p.name, p.url);
            }
        }
        let h = &self.health;
        let _ = write!(
            s,
            "; health every {:?}, timeout {:?}, rise {}, fall {}",
            h.interval, h.timeout, h.rise, h.fall
        );
        s
    }

    /// Health of each peer, for status and metrics; this edge's own entry is healthy
    /// unless it is draining.
    pub fn peer_views(&self, draining: bool) -> Vec<(&Target, HealthView)> {
        self.peers
            .iter()
            .map(|p| {
                let mut v = p.health.view();
                if p.is_self {
                    v.state.healthy = !draining;
                }
                (p.as_ref(), v)
            })
            .collect()
    }
}

/// What a peer answers on, like `/.edge/healthz` of this crate's admin routes.
pub const PEER_HEALTH_PATH: &str = "/.edge/healthz";

/// The membership in force, shared by the request path and the health checks, and
/// replaced whole on reload, so that one request sees one version.
#[derive(Debug)]
pub struct Members(RwLock<Arc<Membership>>);

impl Members {
    pub fn new(m: Membership) -> Self {
        Self(RwLock::new(Arc::new(m)))
    }

    pub fn current(&self) -> Arc<Membership> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the membership by `next(current)`, atomically.
    pub fn replace(&self, next: impl FnOnce(&Membership) -> Membership) -> Arc<Membership> {
        let mut current = self.0.write().unwrap_or_else(PoisonError::into_inner);
        let next = Arc::new(next(&current));
        *current = next.clone();
        next
    }
}

/// Upstream indices in the order to try them: the healthy ones in priority order,
/// then the unhealthy ones as a last resort (checks lag behind reality, and trying
/// a dead upstream costs one refused connection, less than failing the request).
pub fn failover_order(healthy: &[bool]) -> Vec<usize> {
    let (up, down): (Vec<usize>, Vec<usize>) = (0..healthy.len()).partition(|&i| healthy[i]);
    up.into_iter().chain(down).collect()
}

/// Whether a peer's answer means the peer failed (fall back to the next in line and
/// count a passive failure) rather than the upstream's answer relayed by a working
/// peer. A 5xx the peer forwarded from its upstream carries, as the last member of
/// `Cache-Status`, the peer's own member with `fwd-status` (RFC 9211 §2.5): asking
/// elsewhere would only ask the same upstream again. Any other 5xx (the peer could not
/// reach its upstream, `detail=upstream-error`, or it crashed, or something in front
/// of it answered) is the peer's failure.
pub fn peer_failed(status: StatusCode, headers: &HeaderMap, peer: &str) -> bool {
    if !status.is_server_error() {
        return false;
    }
    let members = cache_status::parse(
        headers
            .get_all("cache-status")
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    let relayed = members
        .last()
        .is_some_and(|last| last.cache == peer && last.fwd_status.is_some());
    !relayed
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use http::HeaderValue;

    use super::*;

    fn settings(peers: &[&str]) -> Settings {
        Settings {
            upstreams: vec!["http://o1/".parse().unwrap(), "http://o2/".parse().unwrap()],
            upstream_health_path: "/healthz".into(),
            peers: peers
                .iter()
                .map(|n| format!("{n}=http://{n}:8081/").parse().unwrap())
                .collect(),
            health: HealthParams::default(),
        }
    }

    fn fail(t: &Target, p: &HealthParams) {
        for _ in 0..p.fall {
            t.health.record(Some("down".into()), None, p);
        }
    }

    #[test]
    fn failover_order_table() {
        let table: [(&[bool], &[usize]); 5] = [
            (&[], &[]),
            (&[true, true], &[0, 1]),
            (&[false, true], &[1, 0]),
            (&[false, false, true], &[2, 0, 1]),
            (&[true, false, true], &[0, 2, 1]),
        ];
        for (healthy, want) in table {
            assert_eq!(failover_order(healthy), want, "{healthy:?}");
        }
    }

    #[test]
    fn peer_failure_verdicts() {
        let cs = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert("cache-status", HeaderValue::from_static(v));
            h
        };
        let none = HeaderMap::new();
        let table = [
            (200, cs("e2; fwd=miss; fwd-status=200; stored"), false),
            (404, none.clone(), false),
            (502, none, true),
            (502, cs("e2; fwd=miss; detail=upstream-error"), true),
            (503, cs("e2; fwd=miss; fwd-status=503"), false),
            (
                503,
                cs("o; fwd=miss; detail=upstream-error, e2; fwd=miss; fwd-status=502"),
                false,
            ),
            (
                503,
                cs("e2; fwd=miss; fwd-status=503, lb; fwd=bypass"),
                true,
            ),
            (500, cs("other; fwd=miss; fwd-status=500"), true),
            // RFC 9211 §2 / RFC 8941: a quoted comma does not end the member (the old
            // naive split read `y"` as the last cache and called a relayed 503 a failure).
            (
                503,
                cs("e2; fwd=miss; detail=\"x, y\"; fwd-status=503"),
                false,
            ),
        ];
        for (status, headers, want) in table {
            let s = StatusCode::from_u16(status).unwrap();
            assert_eq!(peer_failed(s, &headers, "e2"), want, "{status} {headers:?}");
        }
    }

    #[test]
    fn routing_skips_self_and_unhealthy_owners() {
        let names = ["e1", "e2", "e3"];
        let m = Membership::new(&settings(&names), "e1", None);
        assert!(m.lists_self());
        let p = m.health;
        let mut owned_by = [0; 3];
        for i in 0..300 {
            let key = format!("/k/{i}");
            let rank = hrw::rank(&key, &names);
            owned_by[rank[0]] += 1;
            let asked: Vec<String> = m.peers_for(&key).iter().map(|t| t.name.clone()).collect();
            let want: Vec<&str> = rank
                .iter()
                .map(|&i| names[i])
                .take_while(|&n| n != "e1")
                .collect();
            assert_eq!(asked, want, "{key}");
        }
        assert!(owned_by.iter().all(|&n| n > 50), "{owned_by:?}");
        // An unhealthy owner is skipped: the next in line (maybe this edge) takes over.
        fail(&m.peers[1], &p);
        for i in 0..300 {
            let key = format!("/k/{i}");
            assert!(m.peers_for(&key).iter().all(|t| t.name != "e2"), "{key}");
        }
        // A reload keeps the health of unchanged members and drops removed ones.
        let again = Membership::new(&settings(&["e1", "e2"]), "e1", Some(&m));
        assert!(!again.peers[1].healthy());
        assert!(Arc::ptr_eq(&again.peers[1], &m.peers[1]));
        assert_eq!(again.peers.len(), 2);
        // Without itself in the list an edge owns nothing: every key has a peer.
        let client = Membership::new(&settings(&["e2", "e3"]), "e9", None);
        assert!(!client.lists_self());
        assert!((0..50).all(|i| !client.peers_for(&format!("/k/{i}")).is_empty()));
    }

    #[test]
    fn upstreams_fail_over_and_serviceability() {
        let m = Membership::new(&settings(&["e1", "e2"]), "e1", None);
        let order = |m: &Membership| -> Vec<String> {
            m.upstream_order().iter().map(|t| t.name.clone()).collect()
        };
        assert_eq!(order(&m), ["http://o1/", "http://o2/"]);
        assert_eq!(m.upstreams[0].url_for("/a?b"), "http://o1/a?b");
        assert!(m.can_serve());
        let p = m.health;
        fail(&m.upstreams[0], &p);
        assert_eq!(order(&m), ["http://o2/", "http://o1/"]);
        fail(&m.upstreams[1], &p);
        assert!(m.can_serve(), "peer e2 is still healthy");
        fail(&m.peers[1], &p);
        assert!(!m.can_serve());
        let checked: Vec<String> = m.checks().map(|(_, url)| url).collect();
        assert_eq!(
            checked,
            [
                "http://e2:8081/.edge/healthz",
                "http://o1/healthz",
                "http://o2/healthz"
            ]
        );
        assert!(
            m.describe().contains("e1=http://e1:8081/ (self)"),
            "{}",
            m.describe()
        );
    }
}
