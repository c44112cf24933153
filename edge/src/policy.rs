//! Pure RFC 9111 decisions: freshness, `Age`, storability and stale serving (RFC 5861).
//! Plain functions over plain types, so they are table-tested without any server. Times
//! are whole seconds since the Unix epoch, as HTTP dates are. `Cache-Control` itself is
//! parsed by [`http_rules::cache_control`].

use http::HeaderName;
use http_rules::cache_control::{CDN_CACHE_CONTROL, CacheControl};

/// Status codes that are "heuristically cacheable" (RFC 9110 §15.1). 206 is in the
/// list but this cache never stores partial content.
pub fn heuristically_cacheable(status: u16) -> bool {
    matches!(
        status,
        200 | 203 | 204 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

/// How this cache reads a response: the heuristic's limits, and its target list of
/// targeted cache-control fields in priority order (RFC 9213 §2.2): the operator's own
/// field (`--targeted-cache-control`) first when set, then `CDN-Cache-Control`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRules {
    pub heuristic: Heuristic,
    pub targets: Vec<HeaderName>,
}

impl CacheRules {
    pub fn new(own_field: Option<HeaderName>) -> Self {
        CacheRules {
            heuristic: Heuristic::default(),
            targets: own_field.into_iter().chain([CDN_CACHE_CONTROL]).collect(),
        }
    }
}

impl Default for CacheRules {
    fn default() -> Self {
        Self::new(None)
    }
}

/// Final status codes whose caching rules this cache implements: those RFC 9110 §15
/// defines. A response with `must-understand` and another status is not stored
/// (RFC 9111 §5.2.2.3).
pub fn understood_status(status: u16) -> bool {
    matches!(
        status,
        200..=206 | 300..=305 | 307 | 308 | 400..=417 | 421 | 422 | 426 | 500..=505
    )
}

/// The response facts freshness depends on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FreshnessInputs {
    pub status: u16,
    /// `Date`, or the response time when absent.
    pub date: u64,
    /// `Expires`: `Some(None)` when present but invalid (it then means "already expired", §5.3).
    pub expires: Option<Option<u64>>,
    pub last_modified: Option<u64>,
}

/// Limits on heuristic freshness (§4.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heuristic {
    /// Fraction of the `Last-Modified` age, in percent (typically 10).
    pub percent: u64,
    /// Upper bound in seconds.
    pub cap: u64,
}

impl Default for Heuristic {
    fn default() -> Self {
        Self {
            percent: 10,
            cap: 86_400,
        }
    }
}

/// Freshness lifetime (§4.2.1), in seconds, or `None` when the response has no
/// explicit expiration and no heuristic is allowed (it is then stale on arrival).
/// Order: `s-maxage` (shared caches), `max-age`, `Expires − Date`, then the heuristic,
/// which needs a heuristically cacheable status (or `public`) and a `Last-Modified`.
pub fn freshness_lifetime(cc: &CacheControl, r: &FreshnessInputs, h: Heuristic) -> Option<u64> {
    if let Some(v) = cc.s_maxage.or(cc.max_age) {
        return Some(v);
    }
    if let Some(expires) = r.expires {
        return Some(expires.map_or(0, |e| e.saturating_sub(r.date)));
    }
    if heuristically_cacheable(r.status) || cc.public {
        let lm = r.last_modified?;
        return Some((r.date.saturating_sub(lm) * h.percent / 100).min(h.cap));
    }
    None
}

/// The inputs of the `Age` calculation (§4.2.3), captured when the response arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgeInputs {
    /// The `Age` header of the response (0 when absent).
    pub age_value: u64,
    pub date_value: u64,
    pub request_time: u64,
    pub response_time: u64,
}

/// `corrected_initial_age` of §4.2.3, stored with the response.
pub fn corrected_initial_age(a: AgeInputs) -> u64 {
    let apparent_age = a.response_time.saturating_sub(a.date_value);
    let response_delay = a.response_time.saturating_sub(a.request_time);
    let corrected_age_value = a.age_value.saturating_add(response_delay);
    apparent_age.max(corrected_age_value)
}

/// `current_age` of §4.2.3.
pub fn current_age(corrected_initial_age: u64, response_time: u64, now: u64) -> u64 {
    corrected_initial_age.saturating_add(now.saturating_sub(response_time))
}

/// What the request looked like, as far as storing its response goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestFacts {
    pub method_get: bool,
    pub authorization: bool,
    pub no_store: bool,
}

/// Why a response is not stored (also surfaced in logs and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStored {
    Method,
    Status,
    NoStore,
    Private,
    Authorization,
    VaryStar,
    /// `must-understand` on a status this cache does not implement (§5.2.2.3).
    NotUnderstood,
    /// A 5xx without explicit freshness (only a heuristically cacheable 501 may do
    /// without), or one that would replace a stored good response.
    ServerError,
    /// No explicit expiration, not heuristically cacheable, or neither fresh nor
    /// revalidatable: storing it could never serve a request.
    Useless,
    TooLarge,
}

/// The response facts storage depends on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponseFacts {
    pub status: u16,
    pub vary_star: bool,
    pub has_validator: bool,
    /// `Content-Length`, when the upstream sent one.
    pub content_length: Option<u64>,
    /// An `Expires` counts for freshness (not overridden by a targeted field).
    pub explicit_expires: bool,
    /// A response is stored at this key now (stale, being refreshed).
    pub replaces_stored: bool,
}

/// May a shared cache store this response (RFC 9111 §3, §3.5)? `lifetime` is the result
/// of [`freshness_lifetime`]. A 5xx is stored only with explicit freshness (or a 501's
/// heuristic), and never where it would replace a stored response: the fill passes it
/// by when something is stored (`replaces_stored`), so an upstream failure never
/// replaces a good object.
pub fn storable(
    req: RequestFacts,
    cc: &CacheControl,
    resp: ResponseFacts,
    lifetime: Option<u64>,
    max_object: u64,
) -> Result<(), NotStored> {
    if !req.method_get {
        return Err(NotStored::Method);
    }
    // §3: final; 206 is never stored as a full object; 304 only updates.
    if resp.status < 200 || matches!(resp.status, 206 | 304) {
        return Err(NotStored::Status);
    }
    // §5.2.2.3: must-understand limits storing to understood statuses, and then
    // overrides no-store (which it is meant to come with).
    if cc.must_understand {
        if !understood_status(resp.status) {
            return Err(NotStored::NotUnderstood);
        }
    } else if cc.no_store {
        return Err(NotStored::NoStore);
    }
    if req.no_store {
        return Err(NotStored::NoStore);
    }
    if resp.status >= 500 {
        let explicit = cc.s_maxage.or(cc.max_age).is_some() || resp.explicit_expires;
        if resp.replaces_stored || !(explicit || heuristically_cacheable(resp.status)) {
            return Err(NotStored::ServerError);
        }
    }
    if cc.private {
        return Err(NotStored::Private);
    }
    // §3.5: shared caches store responses to authenticated requests only when allowed.
    if req.authorization && !(cc.public || cc.s_maxage.is_some() || cc.must_revalidate) {
        return Err(NotStored::Authorization);
    }
    // §4.1: `Vary: *` always fails to match.
    if resp.vary_star {
        return Err(NotStored::VaryStar);
    }
    if resp.content_length.is_some_and(|l| l > max_object) {
        return Err(NotStored::TooLarge);
    }
    match lifetime {
        Some(l) if l > 0 && !cc.no_cache => Ok(()),
        // Stale on arrival but revalidatable: worth keeping to answer with a 304 later.
        _ if resp.has_validator && (lifetime.is_some() || heuristically_cacheable(resp.status)) => {
            Ok(())
        }
        _ => Err(NotStored::Useless),
    }
}

/// How a stored response may be used now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usability {
    /// Fresh: serve it; `ttl` seconds of freshness remain.
    Fresh { ttl: u64 },
    /// Stale by `staleness` seconds, may be served while revalidating (RFC 5861 §3).
    StaleWhileRevalidate { staleness: u64 },
    /// Stale by `staleness` seconds: must be revalidated or refetched before use.
    Stale { staleness: u64 },
}

/// Stale-serving windows configured for responses that do not carry their own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StaleDefaults {
    pub while_revalidate: u64,
    pub if_error: u64,
}

/// Decides how a stored response may be used at `current_age` (§4.2, §4.2.4, RFC 5861).
pub fn usability(
    cc: &CacheControl,
    lifetime: u64,
    current_age: u64,
    d: StaleDefaults,
) -> Usability {
    if lifetime > current_age && !cc.no_cache {
        return Usability::Fresh {
            ttl: lifetime - current_age,
        };
    }
    let staleness = current_age.saturating_sub(lifetime);
    let window = cc.stale_while_revalidate.unwrap_or(d.while_revalidate);
    if !cc.forbids_stale() && staleness <= window && window > 0 {
        Usability::StaleWhileRevalidate { staleness }
    } else {
        Usability::Stale { staleness }
    }
}

/// May a stale response be served because the upstream failed (RFC 5861 §4)?
pub fn stale_if_error(
    cc: &CacheControl,
    lifetime: u64,
    current_age: u64,
    d: StaleDefaults,
) -> bool {
    let staleness = current_age.saturating_sub(lifetime);
    let window = cc.stale_if_error.unwrap_or(d.if_error);
    !cc.forbids_stale() && staleness <= window && window > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cc(s: &str) -> CacheControl {
        CacheControl::parse([s])
    }

    #[test]
    fn freshness_lifetime_table() {
        let h = Heuristic {
            percent: 10,
            cap: 3600,
        };
        let base = FreshnessInputs {
            status: 200,
            date: 10_000,
            expires: None,
            last_modified: None,
        };
        let cases: &[(&str, FreshnessInputs, Option<u64>)] = &[
            ("s-maxage=10, max-age=100", base, Some(10)),
            (
                "max-age=100",
                FreshnessInputs {
                    expires: Some(Some(20_000)),
                    ..base
                },
                Some(100),
            ),
            (
                "",
                FreshnessInputs {
                    expires: Some(Some(10_300)),
                    ..base
                },
                Some(300),
            ),
            (
                "",
                FreshnessInputs {
                    expires: Some(Some(9_000)),
                    ..base
                },
                Some(0),
            ),
            // §5.3: an invalid Expires is in the past.
            (
                "",
                FreshnessInputs {
                    expires: Some(None),
                    ..base
                },
                Some(0),
            ),
            // §4.2.2: 10% of the Last-Modified age, capped.
            (
                "",
                FreshnessInputs {
                    last_modified: Some(9_000),
                    ..base
                },
                Some(100),
            ),
            (
                "",
                FreshnessInputs {
                    date: 100_000,
                    last_modified: Some(0),
                    ..base
                },
                Some(3600),
            ),
            // Never a heuristic without Last-Modified.
            ("", base, None),
            // Nor for a status that is not heuristically cacheable, unless public.
            (
                "",
                FreshnessInputs {
                    status: 302,
                    last_modified: Some(9_000),
                    ..base
                },
                None,
            ),
            (
                "public",
                FreshnessInputs {
                    status: 302,
                    last_modified: Some(9_000),
                    ..base
                },
                Some(100),
            ),
            (
                "max-age=7",
                FreshnessInputs {
                    status: 302,
                    ..base
                },
                Some(7),
            ),
        ];
        for (c, inputs, want) in cases {
            assert_eq!(
                freshness_lifetime(&cc(c), inputs, h),
                *want,
                "{c} {inputs:?}"
            );
        }
    }

    #[test]
    fn age_table() {
        let cases: &[(AgeInputs, u64)] = &[
            (
                AgeInputs {
                    age_value: 0,
                    date_value: 100,
                    request_time: 100,
                    response_time: 100,
                },
                0,
            ),
            // apparent age from a Date in the past
            (
                AgeInputs {
                    age_value: 0,
                    date_value: 90,
                    request_time: 100,
                    response_time: 100,
                },
                10,
            ),
            // upstream Age plus the response delay
            (
                AgeInputs {
                    age_value: 30,
                    date_value: 100,
                    request_time: 98,
                    response_time: 100,
                },
                32,
            ),
            // a Date in the future never gives a negative age
            (
                AgeInputs {
                    age_value: 0,
                    date_value: 500,
                    request_time: 100,
                    response_time: 100,
                },
                0,
            ),
        ];
        for (inputs, want) in cases {
            assert_eq!(corrected_initial_age(*inputs), *want, "{inputs:?}");
        }
        assert_eq!(current_age(5, 100, 160), 65);
        assert_eq!(current_age(5, 100, 90), 5);
    }

    #[test]
    fn storable_table() {
        let get = RequestFacts {
            method_get: true,
            ..Default::default()
        };
        let ok = ResponseFacts {
            status: 200,
            ..Default::default()
        };
        let with_validator = ResponseFacts {
            has_validator: true,
            ..ok
        };
        let max = 1000;
        type Case<'a> = (
            RequestFacts,
            &'a str,
            ResponseFacts,
            Option<u64>,
            Result<(), NotStored>,
        );
        let cases: &[Case<'_>] = &[
            (get, "max-age=60", ok, Some(60), Ok(())),
            (
                RequestFacts {
                    method_get: false,
                    ..get
                },
                "max-age=60",
                ok,
                Some(60),
                Err(NotStored::Method),
            ),
            (
                get,
                "max-age=60",
                ResponseFacts { status: 206, ..ok },
                Some(60),
                Err(NotStored::Status),
            ),
            // §3: a 5xx with explicit freshness may be stored on a miss (issue 14; it
            // was refused before), never over a stored response, never by heuristic.
            (
                get,
                "max-age=60",
                ResponseFacts { status: 503, ..ok },
                Some(60),
                Ok(()),
            ),
            (
                get,
                "max-age=60",
                ResponseFacts {
                    status: 503,
                    replaces_stored: true,
                    ..ok
                },
                Some(60),
                Err(NotStored::ServerError),
            ),
            (
                get,
                "",
                ResponseFacts {
                    status: 500,
                    has_validator: true,
                    ..ok
                },
                Some(100),
                Err(NotStored::ServerError),
            ),
            (
                get,
                "",
                ResponseFacts {
                    status: 503,
                    explicit_expires: true,
                    ..ok
                },
                Some(100),
                Ok(()),
            ),
            (
                get,
                "",
                ResponseFacts {
                    status: 501,
                    has_validator: true,
                    ..ok
                },
                Some(100),
                Ok(()),
            ),
            // §5.2.2.3: must-understand: understood statuses are stored even with
            // no-store; others never.
            (
                get,
                "must-understand, no-store, max-age=60",
                ok,
                Some(60),
                Ok(()),
            ),
            (
                get,
                "must-understand, no-store, max-age=60",
                ResponseFacts { status: 299, ..ok },
                Some(60),
                Err(NotStored::NotUnderstood),
            ),
            (
                get,
                "max-age=60",
                ResponseFacts { status: 299, ..ok },
                Some(60),
                Ok(()),
            ),
            (
                RequestFacts {
                    no_store: true,
                    ..get
                },
                "must-understand, no-store, max-age=60",
                ok,
                Some(60),
                Err(NotStored::NoStore),
            ),
            (
                get,
                "max-age=60",
                ResponseFacts { status: 404, ..ok },
                Some(60),
                Ok(()),
            ),
            (
                get,
                "no-store, max-age=60",
                ok,
                Some(60),
                Err(NotStored::NoStore),
            ),
            (
                RequestFacts {
                    no_store: true,
                    ..get
                },
                "max-age=60",
                ok,
                Some(60),
                Err(NotStored::NoStore),
            ),
            (
                get,
                "private, max-age=60",
                ok,
                Some(60),
                Err(NotStored::Private),
            ),
            (
                RequestFacts {
                    authorization: true,
                    ..get
                },
                "max-age=60",
                ok,
                Some(60),
                Err(NotStored::Authorization),
            ),
            (
                RequestFacts {
                    authorization: true,
                    ..get
                },
                "public, max-age=60",
                ok,
                Some(60),
                Ok(()),
            ),
            (
                RequestFacts {
                    authorization: true,
                    ..get
                },
                "s-maxage=60",
                ok,
                Some(60),
                Ok(()),
            ),
            (
                RequestFacts {
                    authorization: true,
                    ..get
                },
                "must-revalidate, max-age=60",
                ok,
                Some(60),
                Ok(()),
            ),
            (
                get,
                "max-age=60",
                ResponseFacts {
                    vary_star: true,
                    ..ok
                },
                Some(60),
                Err(NotStored::VaryStar),
            ),
            (
                get,
                "max-age=60",
                ResponseFacts {
                    content_length: Some(1001),
                    ..ok
                },
                Some(60),
                Err(NotStored::TooLarge),
            ),
            (
                get,
                "max-age=60",
                ResponseFacts {
                    content_length: Some(1000),
                    ..ok
                },
                Some(60),
                Ok(()),
            ),
            // no-cache: stored only when it can be revalidated
            (
                get,
                "no-cache, max-age=60",
                ok,
                Some(60),
                Err(NotStored::Useless),
            ),
            (
                get,
                "no-cache, max-age=60",
                with_validator,
                Some(60),
                Ok(()),
            ),
            (get, "max-age=0", with_validator, Some(0), Ok(())),
            (get, "max-age=0", ok, Some(0), Err(NotStored::Useless)),
            (get, "", ok, None, Err(NotStored::Useless)),
            (get, "", with_validator, None, Ok(())),
            (
                get,
                "",
                ResponseFacts {
                    status: 302,
                    ..with_validator
                },
                None,
                Err(NotStored::Useless),
            ),
        ];
        for (req, c, resp, lifetime, want) in cases {
            assert_eq!(
                storable(*req, &cc(c), *resp, *lifetime, max),
                *want,
                "{req:?} {c} {resp:?}"
            );
        }
    }

    #[test]
    fn usability_table() {
        let d = StaleDefaults {
            while_revalidate: 0,
            if_error: 0,
        };
        let cases: &[(&str, u64, u64, StaleDefaults, Usability)] = &[
            ("max-age=60", 60, 10, d, Usability::Fresh { ttl: 50 }),
            ("max-age=60", 60, 60, d, Usability::Stale { staleness: 0 }),
            (
                "max-age=60, no-cache",
                60,
                0,
                d,
                Usability::Stale { staleness: 0 },
            ),
            (
                "max-age=60, stale-while-revalidate=30",
                60,
                80,
                d,
                Usability::StaleWhileRevalidate { staleness: 20 },
            ),
            (
                "max-age=60, stale-while-revalidate=30",
                60,
                91,
                d,
                Usability::Stale { staleness: 31 },
            ),
            (
                "max-age=60",
                60,
                70,
                StaleDefaults {
                    while_revalidate: 30,
                    if_error: 0,
                },
                Usability::StaleWhileRevalidate { staleness: 10 },
            ),
            (
                "max-age=60, stale-while-revalidate=0",
                60,
                61,
                StaleDefaults {
                    while_revalidate: 30,
                    if_error: 0,
                },
                Usability::Stale { staleness: 1 },
            ),
            (
                "max-age=60, stale-while-revalidate=30, must-revalidate",
                60,
                70,
                d,
                Usability::Stale { staleness: 10 },
            ),
            (
                "max-age=60, stale-while-revalidate=30, proxy-revalidate",
                60,
                70,
                d,
                Usability::Stale { staleness: 10 },
            ),
            (
                "s-maxage=60, stale-while-revalidate=30",
                60,
                70,
                d,
                Usability::Stale { staleness: 10 },
            ),
        ];
        for (c, lifetime, age, defaults, want) in cases {
            assert_eq!(
                usability(&cc(c), *lifetime, *age, *defaults),
                *want,
                "{c} age={age}"
            );
        }
    }

    #[test]
    fn stale_if_error_table() {
        let d = StaleDefaults {
            while_revalidate: 0,
            if_error: 0,
        };
        let cases: &[(&str, u64, u64, StaleDefaults, bool)] = &[
            ("max-age=10, stale-if-error=60", 10, 70, d, true),
            ("max-age=10, stale-if-error=60", 10, 71, d, false),
            ("max-age=10", 10, 30, d, false),
            (
                "max-age=10",
                10,
                30,
                StaleDefaults {
                    while_revalidate: 0,
                    if_error: 60,
                },
                true,
            ),
            (
                "max-age=10, stale-if-error=60, must-revalidate",
                10,
                20,
                d,
                false,
            ),
            ("s-maxage=10, stale-if-error=60", 10, 20, d, false),
            (
                "max-age=10, proxy-revalidate",
                10,
                20,
                StaleDefaults {
                    while_revalidate: 0,
                    if_error: 60,
                },
                false,
            ),
        ];
        for (c, lifetime, age, defaults, want) in cases {
            assert_eq!(
                stale_if_error(&cc(c), *lifetime, *age, *defaults),
                *want,
                "{c} age={age}"
            );
        }
    }
}
