//! The decisions of the request path as pure functions: where a request goes
//! ([`route`]), and how a GET or HEAD is answered from what is stored at `now`
//! ([`decide`], [`stale_if_error`], [`revalidated`]). The request path does the I/O
//! around them.

use http::Method;
use http::header::AUTHORIZATION;
use http::request::Parts;

use crate::policy::{
    StaleDefaults, Usability, stale_if_error as stale_if_error_allowed, usability,
};
use crate::store::{Entry, Head};
use crate::upstream::loops_through;

/// What the decisions need to know of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub method: Method,
    /// An origin-form target (`/path?query`): the only kind that maps onto an upstream.
    pub target_is_path: bool,
    /// This node's name is already in `CDN-Loop` or `Via`.
    pub looped: bool,
    pub authorization: bool,
}

impl Incoming {
    /// Reads the request as the node `node` sees it.
    pub fn read(parts: &Parts, node: &str) -> Self {
        Self {
            method: parts.method.clone(),
            target_is_path: parts.uri.path().starts_with('/'),
            looped: loops_through(&parts.headers, node),
            authorization: parts.headers.contains_key(AUTHORIZATION),
        }
    }
}

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// 400: nothing to proxy (`OPTIONS *` and other non-path targets).
    BadTarget,
    /// The `PURGE` method of the admin surface.
    Purge,
    /// 508: the request came round a loop through this node (RFC 8586, RFC 9110 §7.6.3).
    Loop,
    /// Forwarded without the cache: every method but GET and HEAD.
    Pass,
    /// Through the cache: GET and HEAD.
    Cache,
}

pub fn route(r: &Incoming) -> Route {
    if !r.target_is_path {
        Route::BadTarget
    } else if r.method.as_str() == "PURGE" {
        Route::Purge
    } else if r.looped {
        Route::Loop
    } else if r.method != Method::GET && r.method != Method::HEAD {
        Route::Pass
    } else {
        Route::Cache
    }
}

/// A stored response served as it is: its `Age`, and its `ttl` for `Cache-Status`
/// (freshness left in seconds, negative when stale: RFC 9211 §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    pub age: u64,
    pub ttl: i64,
}

/// How a GET or HEAD is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision<'a> {
    /// From the store, fresh (RFC 9111 §4.2).
    Hit(&'a Entry, Served),
    /// From the store, stale, while one background fill refreshes it (RFC 5861 §3).
    StaleWhileRevalidate(&'a Entry, Served),
    /// Through a fill: nothing is stored, or what is stored must be revalidated first.
    /// Requests with `Authorization` never share a fill (`coalesce` false): the response
    /// is per user until it says otherwise (RFC 9111 §3.5).
    Fetch { coalesce: bool },
}

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Decides how to answer a GET or HEAD whose lookup found `stored`, at `now` (seconds
/// since the epoch), with the configured stale windows for responses that set none.
pub fn decide<'a>(
    stored: Option<&'a Entry>,
    request: &Incoming,
    now: u64,
    defaults: StaleDefaults,
) -> Decision<'a> {
    let fetch = Decision::Fetch {
        coalesce: !request.authorization,
    };
    let Some(entry) = stored else {
        return fetch;
    };
    let head = &entry.head;
    let age = head.current_age(now);
    match usability(&head.cc, head.lifetime_or_zero(), age, defaults) {
        Usability::Fresh { ttl } => Decision::Hit(
            entry,
            Served {
                age,
                ttl: signed(ttl),
            },
        ),
        Usability::StaleWhileRevalidate { staleness } => Decision::StaleWhileRevalidate(
            entry,
            Served {
                age,
                ttl: -signed(staleness),
            },
        ),
        Usability::Stale { .. } => fetch,
    }
}

/// Whether the stale `stored` may answer, at `now`, a request whose upstream failed
/// (RFC 5861 §4), and how.
pub fn stale_if_error(stored: &Head, now: u64, defaults: StaleDefaults) -> Option<Served> {
    let age = stored.current_age(now);
    let lifetime = stored.lifetime_or_zero();
    stale_if_error_allowed(&stored.cc, lifetime, age, defaults).then(|| Served {
        age,
        ttl: signed(lifetime) - signed(age),
    })
}

/// How a response just confirmed by a 304 (or just received) is served at `now`.
pub fn revalidated(head: &Head, now: u64) -> Served {
    let age = head.current_age(now);
    Served {
        age,
        ttl: signed(head.lifetime_or_zero()) - signed(age),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

    use super::*;
    use crate::body::Payload;
    use crate::policy::CacheRules;

    /// Stored at second 1000 (requested and received then), with these headers.
    fn head(fields: &[(&str, &str)]) -> Head {
        let mut h = HeaderMap::new();
        for (name, value) in fields {
            h.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        Head::new(StatusCode::OK, &h, 1000, 1000, &CacheRules::default())
    }

    fn entry(fields: &[(&str, &str)]) -> Entry {
        let keep = Duration::from_secs(3600);
        Entry::new(
            head(fields),
            Payload::default(),
            keep,
            StaleDefaults::default(),
        )
    }

    fn get() -> Incoming {
        Incoming {
            method: Method::GET,
            target_is_path: true,
            looped: false,
            authorization: false,
        }
    }

    #[test]
    fn routes() {
        let with = |tweak: fn(&mut Incoming)| {
            let mut r = get();
            tweak(&mut r);
            r
        };
        let rows = [
            (get(), Route::Cache),
            (with(|r| r.method = Method::HEAD), Route::Cache),
            (with(|r| r.method = Method::POST), Route::Pass),
            (with(|r| r.method = Method::OPTIONS), Route::Pass),
            (
                with(|r| r.method = Method::from_bytes(b"PURGE").unwrap()),
                Route::Purge,
            ),
            // RFC 8586 §2: a request that came round a loop is not forwarded again.
            (with(|r| r.looped = true), Route::Loop),
            (
                with(|r| (r.looped, r.method) = (true, Method::POST)),
                Route::Loop,
            ),
            // RFC 9112 §3.2.4: `OPTIONS *` has no path to proxy.
            (with(|r| r.target_is_path = false), Route::BadTarget),
            (
                with(|r| (r.target_is_path, r.looped) = (false, true)),
                Route::BadTarget,
            ),
        ];
        for (request, want) in rows {
            assert_eq!(route(&request), want, "{request:?}");
        }
    }

    #[test]
    fn decisions_follow_rfc_9111_4_2_and_rfc_5861() {
        let none = StaleDefaults::default();
        let swr_default = StaleDefaults {
            while_revalidate: 30,
            if_error: 0,
        };
        /// What a row expects: `Hit` and `Swr` serve the stored entry.
        #[derive(Debug, Clone, Copy)]
        enum Want {
            Hit(u64, i64),
            Swr(u64, i64),
            Fetch { coalesce: bool },
        }
        use Want::{Hit, Swr};
        let fetch = Want::Fetch { coalesce: true };
        let mut authorized = get();
        authorized.authorization = true;
        // (stored Cache-Control, now, request, defaults, decision); stored at 1000.
        let rows: Vec<(Option<&str>, u64, Incoming, StaleDefaults, Want)> = vec![
            // Nothing stored: a miss, shared unless authorized (RFC 9111 §3.5).
            (None, 1000, get(), none, fetch),
            (
                None,
                1000,
                authorized.clone(),
                none,
                Want::Fetch { coalesce: false },
            ),
            // §4.2: fresh while the age is below the lifetime.
            (Some("max-age=60"), 1000, get(), none, Hit(0, 60)),
            (Some("max-age=60"), 1059, get(), none, Hit(59, 1)),
            (
                Some("max-age=60"),
                1059,
                authorized.clone(),
                none,
                Hit(59, 1),
            ),
            (Some("max-age=60"), 1060, get(), none, fetch),
            (
                Some("max-age=60"),
                1060,
                authorized,
                none,
                Want::Fetch { coalesce: false },
            ),
            // §5.2.2.4: no-cache is never served without revalidation.
            (Some("max-age=60, no-cache"), 1000, get(), none, fetch),
            // RFC 5861 §3: within the window, stale is served while refreshing.
            (
                Some("max-age=1, stale-while-revalidate=30"),
                1003,
                get(),
                none,
                Swr(3, -2),
            ),
            (
                Some("max-age=1, stale-while-revalidate=30"),
                1031,
                get(),
                none,
                Swr(31, -30),
            ),
            (
                Some("max-age=1, stale-while-revalidate=30"),
                1032,
                get(),
                none,
                fetch,
            ),
            // The configured window applies when the response sets none...
            (Some("max-age=1"), 1010, get(), swr_default, Swr(10, -9)),
            // ...and §5.2.2.2 must-revalidate forbids it.
            (
                Some("max-age=1, must-revalidate"),
                1010,
                get(),
                swr_default,
                fetch,
            ),
            // Time going backwards never makes an age negative.
            (Some("max-age=60"), 900, get(), none, Hit(0, 60)),
        ];
        for (cc, now, request, defaults, want) in rows {
            let stored = cc.map(|cc| entry(&[("cache-control", cc)]));
            let stored = stored.as_ref();
            let want = match want {
                Hit(age, ttl) => Decision::Hit(stored.unwrap(), Served { age, ttl }),
                Swr(age, ttl) => {
                    Decision::StaleWhileRevalidate(stored.unwrap(), Served { age, ttl })
                }
                Want::Fetch { coalesce } => Decision::Fetch { coalesce },
            };
            assert_eq!(
                decide(stored, &request, now, defaults),
                want,
                "{cc:?} at {now}"
            );
        }
    }

    #[test]
    fn stale_if_error_rfc_5861_4() {
        let none = StaleDefaults::default();
        let sie_default = StaleDefaults {
            while_revalidate: 0,
            if_error: 60,
        };
        let rows: Vec<(&str, u64, StaleDefaults, Option<Served>)> = vec![
            // Lifetime 1 s, window 3 s: stale by up to 3 s is served.
            (
                "max-age=1, stale-if-error=3",
                1002,
                none,
                Some(Served { age: 2, ttl: -1 }),
            ),
            (
                "max-age=1, stale-if-error=3",
                1004,
                none,
                Some(Served { age: 4, ttl: -3 }),
            ),
            ("max-age=1, stale-if-error=3", 1005, none, None),
            ("max-age=1", 1030, none, None),
            (
                "max-age=1",
                1030,
                sie_default,
                Some(Served { age: 30, ttl: -29 }),
            ),
            // RFC 9111 §5.2.2.2, §5.2.2.10: must-revalidate and s-maxage forbid it.
            (
                "max-age=1, stale-if-error=30, must-revalidate",
                1002,
                none,
                None,
            ),
            ("s-maxage=1, stale-if-error=30", 1002, none, None),
            // Still fresh: the window is measured from the end of freshness.
            (
                "max-age=60, stale-if-error=3",
                1010,
                none,
                Some(Served { age: 10, ttl: 50 }),
            ),
        ];
        for (cc, now, defaults, want) in rows {
            let stored = head(&[("cache-control", cc)]);
            assert_eq!(
                stale_if_error(&stored, now, defaults),
                want,
                "{cc} at {now}"
            );
        }
    }

    #[test]
    fn revalidated_responses_restart_their_age() {
        let stored = head(&[("cache-control", "max-age=60")]);
        assert_eq!(revalidated(&stored, 1000), Served { age: 0, ttl: 60 });
        assert_eq!(revalidated(&stored, 1070), Served { age: 70, ttl: -10 });
        // §4.2.3: an Age from upstream counts.
        let aged = head(&[("cache-control", "max-age=60"), ("age", "15")]);
        assert_eq!(revalidated(&aged, 1000), Served { age: 15, ttl: 45 });
    }
}
