//! Which pathway (CDN, edge) each request goes to, when a presentation is offered over
//! several (HLS `PATHWAY-ID`, DASH `BaseURL@serviceLocation`; `media::steering`).
//!
//! A session keeps the pathways in the order the steering server last gave
//! ([`Pathways::steer`], which drops unlisted ones as HLS §7.2 asks), the default pathway
//! first until then. A request goes to the first pathway of that order that is not
//! penalised; a pathway that fails a request (see `FetchError::fails_over`)
//! is penalised for `penalty_s`, which moves it to the end of the order, as hls.js's
//! content-steering controller does when it drops a failed pathway from its priority. The
//! steering server does not know about our failure, so its next manifest does not lift
//! the penalty: a silently dead host would otherwise cost a connect timeout at every TTL.
//!
//! The track's URLs all live on the default pathway; each request is rebased onto its
//! pathway at send time ([`media::Delivery::rebase`]), so one track serves every pathway.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use media::Delivery;
use url::Url;

/// `order` with the pathways penalised past `now_s` moved to the end, those whose penalty
/// ends first (they failed first) leading among them.
pub fn rank<'a>(
    order: &'a [String],
    penalised_until: &BTreeMap<String, f64>,
    now_s: f64,
) -> Vec<&'a str> {
    let mut ranked: Vec<(f64, &str)> = order
        .iter()
        .map(|id| {
            let until = penalised_until
                .get(id)
                .copied()
                .filter(|&t| t > now_s)
                .unwrap_or(f64::NEG_INFINITY);
            (until, id.as_str())
        })
        .collect();
    // Stable: unpenalised pathways keep the steering order.
    ranked.sort_by(|a, b| a.0.total_cmp(&b.0));
    ranked.into_iter().map(|(_, id)| id).collect()
}

/// The pathway a request goes to next: the first of `ranked` it has not failed on yet;
/// `None` once it has failed on every one.
pub fn next_pathway<'a>(ranked: &[&'a str], tried: &[String]) -> Option<&'a str> {
    ranked
        .iter()
        .copied()
        .find(|id| !tried.iter().any(|t| t == id))
}

/// The pathways of one presentation and a session's view of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Pathways {
    delivery: Delivery,
    /// Pathway ids, most preferred first.
    order: Vec<String>,
    penalised_until: BTreeMap<String, f64>,
    penalty_s: f64,
}

impl Pathways {
    /// The pathways of `delivery`, its default first; `None` when it has none.
    pub fn new(delivery: &Delivery, penalty_s: f64) -> Option<Self> {
        let first = &delivery.default_pathway()?.id;
        let order = std::iter::once(first)
            .chain(
                delivery
                    .pathways
                    .iter()
                    .map(|p| &p.id)
                    .filter(|id| *id != first),
            )
            .cloned()
            .collect();
        Some(Self {
            delivery: delivery.clone(),
            order,
            penalised_until: BTreeMap::new(),
            penalty_s,
        })
    }

    /// The order requests try pathways in at `now_s`.
    pub fn ranked(&self, now_s: f64) -> Vec<&str> {
        rank(&self.order, &self.penalised_until, now_s)
    }

    /// The pathway requests go to now.
    pub fn current(&self, now_s: f64) -> Option<&str> {
        self.ranked(now_s).first().copied()
    }

    /// The pathway whose base `url` lives under (the longest base, should one hold
    /// another).
    fn home_of(&self, url: &Url) -> Option<&str> {
        self.delivery
            .pathways
            .iter()
            .filter(|p| url.as_str().starts_with(p.base.as_str()))
            .max_by_key(|p| p.base.len())
            .map(|p| p.id.as_str())
    }

    /// Where a request for `url` goes after failing on the pathways `tried`: the next
    /// pathway and `url` moved onto it. `None` when `url` lives on no pathway (it is
    /// fetched as it is) or every pathway has been tried.
    pub fn route(&self, url: &Url, tried: &[String], now_s: f64) -> Option<(String, Url)> {
        let home = self.home_of(url)?;
        let to = next_pathway(&self.ranked(now_s), tried)?;
        let moved = self.delivery.rebase(url.as_str(), home, to)?;
        Some((to.to_owned(), Url::parse(&moved).ok()?))
    }

    /// `id` failed a request at `now_s`: it goes to the end of the order for the penalty.
    pub fn penalise(&mut self, id: &str, now_s: f64) {
        self.penalised_until.retain(|_, until| *until > now_s);
        self.penalised_until
            .insert(id.to_owned(), now_s + self.penalty_s);
    }

    /// Follows a steering manifest's priority list ([`Delivery::ordered`]).
    pub fn steer(&mut self, priority: &[String]) {
        self.order = self
            .delivery
            .ordered(priority)
            .into_iter()
            .map(|p| p.id.clone())
            .collect();
    }
}

/// The pathway state a session's requests and its steering client share (both run in the
/// session's task; the lock is never held across an await).
#[derive(Debug)]
pub struct Routes {
    state: Mutex<RouteState>,
    penalty_s: f64,
}

#[derive(Debug, Default)]
struct RouteState {
    pathways: Option<Pathways>,
    /// The session's latest throughput measurement, bit/s, for the steering server.
    throughput_bps: Option<u64>,
}

impl Routes {
    /// No pathways yet; failed pathways will be penalised for `penalty_s`.
    pub fn new(penalty_s: f64) -> Self {
        Self {
            state: Mutex::default(),
            penalty_s,
        }
    }

    fn lock(&self) -> MutexGuard<'_, RouteState> {
        // Nothing panics under the lock; if something did, the state is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Routes requests over the pathways of `delivery`, once (a live reload parses the
    /// same delivery again and keeps the state).
    pub fn install(&self, delivery: &Delivery) {
        let mut state = self.lock();
        if state.pathways.is_none() {
            state.pathways = Pathways::new(delivery, self.penalty_s);
        }
    }

    /// See [`Pathways::route`]; `None` also without pathways.
    pub fn route(&self, url: &Url, tried: &[String], now_s: f64) -> Option<(String, Url)> {
        self.lock().pathways.as_ref()?.route(url, tried, now_s)
    }

    pub fn penalise(&self, id: &str, now_s: f64) {
        if let Some(p) = &mut self.lock().pathways {
            p.penalise(id, now_s);
        }
    }

    pub fn current(&self, now_s: f64) -> Option<String> {
        self.lock()
            .pathways
            .as_ref()?
            .current(now_s)
            .map(str::to_owned)
    }

    /// Applies a steering manifest's priority list; returns the pathway now first.
    pub fn steer(&self, priority: &[String], now_s: f64) -> Option<String> {
        let mut state = self.lock();
        let pathways = state.pathways.as_mut()?;
        pathways.steer(priority);
        pathways.current(now_s).map(str::to_owned)
    }

    pub fn set_throughput(&self, bps: u64) {
        self.lock().throughput_bps = Some(bps);
    }

    pub fn throughput(&self) -> Option<u64> {
        self.lock().throughput_bps
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use media::{Pathway, SteeringServer};

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn rank_table() {
        let order = ids(&["a", "b", "c"]);
        // (penalties, now, ranked)
        type Penalties = &'static [(&'static str, f64)];
        let cases: [(Penalties, f64, &[&str]); 5] = [
            (&[], 0.0, &["a", "b", "c"]),
            (&[("a", 30.0)], 1.0, &["b", "c", "a"]),
            // Expired penalties no longer count.
            (&[("a", 30.0)], 30.0, &["a", "b", "c"]),
            // The one that failed first (its penalty ends first) comes back first.
            (&[("b", 40.0), ("a", 35.0)], 10.0, &["c", "a", "b"]),
            (&[("a", 5.0), ("b", 6.0), ("c", 7.0)], 1.0, &["a", "b", "c"]),
        ];
        for (penalties, now, want) in cases {
            let p: BTreeMap<String, f64> = penalties
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect();
            assert_eq!(rank(&order, &p, now), want, "{penalties:?} at {now}");
        }
    }

    #[test]
    fn next_pathway_table() {
        let cases: [(&[&str], &[&str], Option<&str>); 4] = [
            (&["a", "b"], &[], Some("a")),
            (&["a", "b"], &["a"], Some("b")),
            (&["b", "a"], &["a"], Some("b")),
            (&["a", "b"], &["b", "a"], None),
        ];
        for (ranked, tried, want) in cases {
            assert_eq!(
                next_pathway(ranked, &ids(tried)),
                want,
                "{ranked:?} {tried:?}"
            );
        }
    }

    fn delivery() -> Delivery {
        Delivery {
            pathways: ["a", "b", "c"]
                .iter()
                .map(|id| Pathway {
                    id: (*id).into(),
                    base: format!("http://{id}.test/vod/s/"),
                })
                .collect(),
            steering: Some(SteeringServer {
                uri: "/steer".into(),
                default_pathway: Some("b".into()),
                query_before_start: false,
            }),
        }
    }

    #[test]
    fn requests_follow_the_order_and_fail_over() {
        let mut p = Pathways::new(&delivery(), 30.0).unwrap();
        assert_eq!(p.ranked(0.0), ["b", "a", "c"], "the default leads");
        let seg = Url::parse("http://b.test/vod/s/720p/3.m4s").unwrap();
        let route = |p: &Pathways, tried: &[&str], now| {
            p.route(&seg, &ids(tried), now)
                .map(|(id, u)| (id, u.to_string()))
        };
        assert_eq!(route(&p, &[], 0.0), Some(("b".into(), seg.to_string())));
        assert_eq!(
            route(&p, &["b"], 0.0),
            Some(("a".into(), "http://a.test/vod/s/720p/3.m4s".into()))
        );
        assert_eq!(route(&p, &["a", "b", "c"], 0.0), None);
        // A URL from another pathway (a playlist fetched there) is moved just the same.
        let on_c = Url::parse("http://c.test/vod/s/720p/4.m4s?CMCD=x").unwrap();
        assert_eq!(
            p.route(&on_c, &[], 0.0).unwrap().1.as_str(),
            "http://b.test/vod/s/720p/4.m4s?CMCD=x"
        );
        // Not on a pathway: fetched as it is.
        let master = Url::parse("http://origin.test/vod/s/master.m3u8").unwrap();
        assert_eq!(p.route(&master, &[], 0.0), None);

        p.steer(&ids(&["c", "a", "b"]));
        assert_eq!(p.current(1.0), Some("c"));
        p.penalise("c", 1.0);
        assert_eq!(p.ranked(2.0), ["a", "b", "c"]);
        // A steering manifest does not lift the penalty; its period does.
        p.steer(&ids(&["c", "b"]));
        assert_eq!(p.ranked(2.0), ["b", "c"], "unlisted pathways are dropped");
        assert_eq!(p.ranked(31.0), ["c", "b"]);
    }

    #[test]
    fn no_pathways_no_routes() {
        assert!(Pathways::new(&Delivery::default(), 30.0).is_none());
        let routes = Routes::new(30.0);
        routes.install(&Delivery::default());
        let url = Url::parse("http://h/x.m4s").unwrap();
        assert_eq!(routes.route(&url, &[], 0.0), None);
        assert_eq!(routes.current(0.0), None);
        routes.install(&delivery());
        assert_eq!(routes.current(0.0).as_deref(), Some("b"));
        routes.penalise("b", 0.0);
        // Installing again (a live reload) keeps the state.
        routes.install(&delivery());
        assert_eq!(routes.current(1.0).as_deref(), Some("a"));
    }
}
