//! The steering decision (draft-pantos-hls-rfc8216bis §7, DASH-IF CTS 00100): which edge a
//! player should use, as a pure function of what the origin knows of the edges and of the
//! player's request.

use media::SteeringProtocol;

/// Stickiness: a client stays on its pathway unless that edge steers more than
/// `STICKY_RATIO` × the least-loaded usable edge's clients + `STICKY_SLACK`. The ratio keeps
/// sessions where they are through ordinary imbalance; the slack keeps a handful of clients
/// from bouncing between nearly idle edges.
pub const STICKY_RATIO: f64 = 1.5;
pub const STICKY_SLACK: f64 = 2.0;

/// The query parameter the manifests' steering URI carries and the `RELOAD-URI` does not:
/// it marks a player's first steering request. HLS clients send `_HLS_pathway` even then
/// (the manifest's default pathway, rfc8216bis §7.2), so without it a player that just
/// started would look like one that chose the default edge.
pub const START_PARAM: &str = "start";

/// A protocol's name in the steering routes (`/steering/hls`) and metric labels.
pub fn protocol_name(protocol: SteeringProtocol) -> &'static str {
    match protocol {
        SteeringProtocol::Hls => "hls",
        SteeringProtocol::Dash => "dash",
    }
}

/// What the steering decision knows of one edge.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeFacts<'a> {
    pub name: &'a str,
    /// Its last probe succeeded in time and it reported itself healthy.
    pub usable: bool,
    /// Clients the origin steers to it now.
    pub clients: f64,
    /// The load it reported (bytes sent to clients per second).
    pub bytes_out_per_s: f64,
}

/// The pathway priority for one client on `current` (`None`: a new client, or one whose
/// pathway names no edge).
///
/// Usable edges come first, least loaded first: fewest steered clients, then lowest
/// reported `bytes_out_per_s`, then name. Unusable edges stay listed, last, so clients can
/// come back to them (rfc8216bis §7.2: a client only uses listed pathways). A client stays
/// on its current usable edge unless that edge steers clearly more clients than the least
/// loaded one ([`STICKY_RATIO`], [`STICKY_SLACK`]): sessions keep their warm connection and
/// cache, yet load rebalances. When no edge is usable the origin cannot tell a dead edge
/// from its own lost view, so it moves nobody.
pub fn priority<'a>(edges: &[EdgeFacts<'a>], current: Option<&str>) -> Vec<&'a str> {
    let mut order: Vec<&EdgeFacts<'a>> = edges.iter().collect();
    order.sort_by(|a, b| {
        b.usable
            .cmp(&a.usable)
            .then(a.clients.total_cmp(&b.clients))
            .then(a.bytes_out_per_s.total_cmp(&b.bytes_out_per_s))
            .then(a.name.cmp(b.name))
    });
    let least = order.first().filter(|e| e.usable).map(|e| e.clients);
    if let Some(at) = current.and_then(|c| order.iter().position(|e| e.name == c)) {
        let on = order[at];
        let stays = match least {
            Some(least) => on.usable && on.clients <= STICKY_RATIO * least + STICKY_SLACK,
            None => true,
        };
        if stays {
            order.remove(at);
            order.insert(0, on);
        }
    }
    order.into_iter().map(|e| e.name).collect()
}

/// The edge a client says it is on: HLS sends one pathway ID, dash.js a quoted,
/// comma-separated list of the service locations it used since its last request, the one
/// in use last. Anything that names no edge is ignored.
pub fn current_pathway(value: &str, edges: &[&str]) -> Option<usize> {
    value
        .trim()
        .trim_matches('"')
        .split(',')
        .rev()
        .find_map(|id| edges.iter().position(|e| *e == id.trim()))
}

/// What a steering request says about its client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SteeringQuery {
    /// The manifests' first-request marker ([`START_PARAM`]).
    pub start: bool,
    /// `_HLS_pathway` / `_DASH_pathway` as sent.
    pub pathway: Option<String>,
}

impl SteeringQuery {
    /// The edge (index into `edges`) the client is on; `None` for a new client, whatever
    /// pathway it sends on its first request.
    pub fn current(&self, edges: &[&str]) -> Option<usize> {
        if self.start {
            return None;
        }
        current_pathway(self.pathway.as_deref()?, edges)
    }
}

/// Reads the query of a steering request. It never fails: odd values are ignored, so a
/// player always gets its manifest.
pub fn steering_query(raw: &str, protocol: SteeringProtocol) -> SteeringQuery {
    let mut query = SteeringQuery::default();
    for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        if key == START_PARAM {
            query.start = true;
        } else if key == protocol.pathway_param() {
            query.pathway = Some(value.into_owned());
        }
    }
    query
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::steering::windows::{SLOTS_PER_TTL, Window, count_answer};

    fn facts(name: &str, usable: bool, clients: f64, bytes_out_per_s: f64) -> EdgeFacts<'_> {
        EdgeFacts {
            name,
            usable,
            clients,
            bytes_out_per_s,
        }
    }

    #[test]
    fn priority_table() {
        // (edges as (name, usable, clients, bytes/s), current, expected order, why)
        type Row = (
            &'static [(&'static str, bool, f64, f64)],
            Option<&'static str>,
            &'static [&'static str],
            &'static str,
        );
        let rows: &[Row] = &[
            (
                &[
                    ("a", true, 0.0, 0.0),
                    ("b", true, 0.0, 0.0),
                    ("c", true, 0.0, 0.0),
                ],
                None,
                &["a", "b", "c"],
                "all equal: by name",
            ),
            (
                &[
                    ("a", true, 3.0, 0.0),
                    ("b", true, 1.0, 0.0),
                    ("c", true, 2.0, 0.0),
                ],
                None,
                &["b", "c", "a"],
                "new client: fewest steered clients first",
            ),
            (
                &[
                    ("a", true, 1.0, 900.0),
                    ("b", true, 1.0, 100.0),
                    ("c", true, 2.0, 0.0),
                ],
                None,
                &["b", "a", "c"],
                "equal clients: lower reported bytes out first",
            ),
            (
                &[
                    ("a", false, 0.0, 0.0),
                    ("b", true, 9.0, 0.0),
                    ("c", true, 5.0, 0.0),
                ],
                None,
                &["c", "b", "a"],
                "unusable last, even when idle",
            ),
            (
                &[("a", true, 8.0, 0.0), ("b", true, 5.0, 0.0)],
                Some("a"),
                &["a", "b"],
                "sticky: 8 ≤ 1.5 × 5 + 2",
            ),
            (
                &[("a", true, 10.0, 0.0), ("b", true, 5.0, 0.0)],
                Some("a"),
                &["b", "a"],
                "rebalance: 10 > 1.5 × 5 + 2",
            ),
            (
                &[("a", true, 2.0, 0.0), ("b", true, 0.0, 0.0)],
                Some("a"),
                &["a", "b"],
                "a lone client stays (slack)",
            ),
            (
                &[("a", true, 2.5, 0.0), ("b", true, 0.0, 0.0)],
                Some("a"),
                &["b", "a"],
                "past the slack it moves",
            ),
            (
                &[
                    ("a", true, 5.0, 0.0),
                    ("b", false, 0.0, 0.0),
                    ("c", true, 4.0, 0.0),
                ],
                Some("b"),
                &["c", "a", "b"],
                "current edge unusable: moved to the least loaded usable",
            ),
            (
                &[
                    ("a", true, 5.0, 0.0),
                    ("b", true, 1.0, 0.0),
                    ("c", true, 3.5, 0.0),
                ],
                Some("c"),
                &["c", "b", "a"],
                "sticky at the limit (1.5 × 1 + 2): the rest in load order",
            ),
            (
                &[("a", true, 1.0, 0.0), ("b", true, 1.0, 0.0)],
                Some("zzz"),
                &["a", "b"],
                "unknown current: as a new client",
            ),
            (
                &[("a", false, 4.0, 0.0), ("b", false, 1.0, 0.0)],
                Some("a"),
                &["a", "b"],
                "nothing usable: nobody is moved",
            ),
            (
                &[("a", false, 4.0, 0.0), ("b", false, 1.0, 0.0)],
                None,
                &["b", "a"],
                "nothing usable: new clients by load",
            ),
            (&[], Some("a"), &[], "no edges"),
        ];
        for (edges, current, want, why) in rows {
            let edges: Vec<EdgeFacts<'_>> = edges
                .iter()
                .map(|(n, u, c, b)| facts(n, *u, *c, *b))
                .collect();
            assert_eq!(priority(&edges, *current), *want, "{why}");
        }
    }

    #[test]
    fn current_pathway_table() {
        let edges = ["e1", "e2", "e3"];
        let rows = [
            ("e2", Some(1)),
            (" e3 ", Some(2)),
            ("\"e1\"", Some(0)),
            ("\"e1,e3\"", Some(2)),
            ("\"e3,nope\"", Some(2)),
            ("\"\"", None),
            ("", None),
            ("E1", None),
            (".", None),
            ("\u{fffd}\u{fffd}", None),
        ];
        for (value, want) in rows {
            assert_eq!(current_pathway(value, &edges), want, "{value:?}");
        }
    }

    #[test]
    fn steering_query_table() {
        let rows = [
            ("", SteeringProtocol::Hls, false, None),
            (
                "_HLS_pathway=e1&_HLS_throughput=500000",
                SteeringProtocol::Hls,
                false,
                Some("e1"),
            ),
            (
                "start=1&_HLS_pathway=e1",
                SteeringProtocol::Hls,
                true,
                Some("e1"),
            ),
            (
                "_DASH_pathway=%22e1%2Ce2%22&_DASH_throughput=1,2",
                SteeringProtocol::Dash,
                false,
                Some("\"e1,e2\""),
            ),
            ("_HLS_pathway=e1", SteeringProtocol::Dash, false, None),
            (
                "_HLS_pathway=%FF%FE&&=&x",
                SteeringProtocol::Hls,
                false,
                Some("\u{fffd}\u{fffd}"),
            ),
            ("start", SteeringProtocol::Dash, true, None),
        ];
        for (raw, protocol, start, pathway) in rows {
            assert_eq!(
                steering_query(raw, protocol),
                SteeringQuery {
                    start,
                    pathway: pathway.map(str::to_string)
                },
                "{raw}"
            );
        }
    }
    /// 30 new clients over 3 idle edges, then every one re-asking from where it was sent:
    /// 10 each, and nobody moves.
    #[test]
    fn new_clients_spread_evenly_and_then_stay() {
        let names = ["e1", "e2", "e3"];
        let mut windows = vec![Window::default(); 3];
        let mut on = Vec::new();
        let decide = |windows: &[Window], now: u64, current: Option<usize>| {
            let facts: Vec<EdgeFacts<'_>> = names
                .iter()
                .zip(windows)
                .map(|(n, w)| facts(n, true, w.clients(now), 0.0))
                .collect();
            let first = priority(&facts, current.map(|i| names[i]))[0];
            names.iter().position(|n| *n == first).unwrap()
        };
        for _ in 0..30 {
            let chosen = decide(&windows, 8, None);
            count_answer(&mut windows, 8, chosen, None);
            on.push(chosen);
        }
        let per_edge = |on: &[usize]| [0, 1, 2].map(|e| on.iter().filter(|c| **c == e).count());
        assert_eq!(per_edge(&on), [10, 10, 10]);
        for round in 1..4 {
            let now = 8 + round * SLOTS_PER_TTL;
            for client in on.iter_mut() {
                let chosen = decide(&windows, now, Some(*client));
                count_answer(&mut windows, now, chosen, Some(*client));
                *client = chosen;
            }
            assert_eq!(per_edge(&on), [10, 10, 10], "round {round}");
        }
    }

    /// 30 clients on one edge, two idle edges appear: the load evens out within a TTL, and
    /// does not swing back (it would if moved clients were still counted where they were).
    #[test]
    fn a_crowded_edge_rebalances_without_overshoot() {
        let names = ["e1", "e2", "e3"];
        let mut windows = vec![Window::default(); 3];
        for slot in [4, 8] {
            for _ in 0..30 {
                windows[0].add(slot);
            }
        }
        let mut on = vec![0usize; 30];
        let mut history = Vec::new();
        for round in 3..10 {
            let now = round * SLOTS_PER_TTL;
            for client in on.iter_mut() {
                let facts: Vec<EdgeFacts<'_>> = names
                    .iter()
                    .zip(&windows)
                    .map(|(n, w)| facts(n, true, w.clients(now), 0.0))
                    .collect();
                let first = priority(&facts, Some(names[*client]))[0];
                let chosen = names.iter().position(|n| *n == first).unwrap();
                count_answer(&mut windows, now, chosen, Some(*client));
                *client = chosen;
            }
            history.push([0, 1, 2].map(|e| on.iter().filter(|c| **c == e).count()));
        }
        // One round moves just enough clients to end the imbalance (the crowded edge is
        // within 1.5 × + 2 of the others), and nobody moves after.
        let first = history[0];
        let least = first[1].min(first[2]);
        assert!(
            first[0] as f64 <= STICKY_RATIO * least as f64 + STICKY_SLACK,
            "{history:?}"
        );
        assert!(first[1].abs_diff(first[2]) <= 1, "{history:?}");
        assert!(history.iter().all(|h| *h == first), "{history:?}");
    }
}
