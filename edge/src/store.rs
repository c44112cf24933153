//! The in-memory store: a moka cache weighed in bytes, holding response heads and
//! `Bytes` bodies that are served without copying.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::header::{AGE, CONTENT_LENGTH, DATE, ETAG, EXPIRES, LAST_MODIFIED, VARY};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use http_rules::cache_control::{CacheControl, age_value};
use http_rules::date::{from_unix_seconds, http_date_value, parse_http_date_at, unix_seconds};
use http_rules::etag::EntityTag;
use http_rules::precondition::Validators;
use moka::Expiry;
use moka::notification::RemovalCause;
use prometheus_client::metrics::counter::Counter;

use crate::body::Payload;
use crate::key::{belongs_to, variant_key};
use crate::policy::{
    AgeInputs, CacheRules, FreshnessInputs, StaleDefaults, corrected_initial_age, current_age,
    freshness_lifetime,
};

/// What `Vary` says about a response (RFC 9111 §4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vary {
    None,
    Star,
    Names(Arc<[HeaderName]>),
}

impl Vary {
    fn parse(headers: &HeaderMap) -> Self {
        let mut names = Vec::new();
        for value in headers.get_all(VARY) {
            for name in value
                .to_str()
                .unwrap_or("*")
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                if name == "*" {
                    return Vary::Star;
                }
                match HeaderName::from_bytes(name.as_bytes()) {
                    Ok(n) if !names.contains(&n) => names.push(n),
                    Ok(_) => {}
                    Err(_) => return Vary::Star,
                }
            }
        }
        if names.is_empty() {
            Vary::None
        } else {
            Vary::Names(names.into())
        }
    }
}

/// A response head with everything the cache derives from it, computed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: StatusCode,
    /// End-to-end headers as they will be sent, minus `Age` (computed per response).
    pub headers: HeaderMap,
    /// The directives the cache follows (a targeted field's, or `Cache-Control`).
    pub cc: CacheControl,
    /// `Expires` counts for freshness.
    pub explicit_expires: bool,
    /// `Date` (or the reception time when there was none), seconds.
    pub date: u64,
    pub etag: Option<EntityTag>,
    pub last_modified: Option<u64>,
    pub content_length: Option<u64>,
    pub vary: Vary,
    /// Freshness lifetime (§4.2.1); `None` = stale on arrival.
    pub lifetime: Option<u64>,
    pub corrected_initial_age: u64,
    pub response_time: u64,
}

impl Head {
    /// Builds a head from upstream headers (already stripped of hop-by-hop fields).
    /// Its directives are those of the first valid targeted field of `rules`, else
    /// `Cache-Control` (RFC 9213 §2.2); dates are read leniently (RFC 9111 §4.2).
    pub fn new(
        status: StatusCode,
        headers: &HeaderMap,
        request_time: u64,
        response_time: u64,
        rules: &CacheRules,
    ) -> Self {
        let mut headers = detach(headers);
        // RFC 9111 §5.1: the first member of a list; an invalid value is ignored.
        let age_value = age_value(&headers).unwrap_or(0);
        headers.remove(AGE);
        let at = from_unix_seconds(response_time);
        let date = header_date(&headers, &DATE, at).unwrap_or_else(|| {
            // RFC 9110 §6.6.1: a recipient with a clock adds Date when it is missing.
            headers.insert(DATE, http_date_value(at));
            response_time
        });
        let policy = CacheControl::for_cache(&headers, &rules.targets);
        let last_modified = header_date(&headers, &LAST_MODIFIED, at);
        // RFC 9213 §2.2: a targeted field overrides Expires as well.
        let expires = headers.get(EXPIRES).filter(|_| !policy.targeted).map(|v| {
            v.to_str()
                .ok()
                .and_then(|v| parse_http_date_at(v, at))
                .map(unix_seconds)
        });
        let cc = policy.cc;
        let lifetime = freshness_lifetime(
            &cc,
            &FreshnessInputs {
                status: status.as_u16(),
                date,
                expires,
                last_modified,
            },
            rules.heuristic,
        );
        let age = AgeInputs {
            age_value,
            date_value: date,
            request_time,
            response_time,
        };
        Head {
            status,
            cc,
            explicit_expires: expires.is_some(),
            date,
            etag: EntityTag::from_headers(&headers),
            last_modified,
            content_length: headers
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.trim().parse().ok()),
            vary: Vary::parse(&headers),
            lifetime,
            corrected_initial_age: corrected_initial_age(age),
            response_time,
            headers,
        }
    }

    pub fn current_age(&self, now: u64) -> u64 {
        current_age(self.corrected_initial_age, self.response_time, now)
    }

    pub fn lifetime_or_zero(&self) -> u64 {
        self.lifetime.unwrap_or(0)
    }

    /// Whether the upstream can be asked to confirm this response (RFC 9111 §4.3.1):
    /// it has an `ETag` (sent back as it came) or a valid `Last-Modified`.
    pub fn revalidatable(&self) -> bool {
        self.headers.contains_key(ETAG) || self.last_modified.is_some()
    }

    /// What a client's preconditions and range are evaluated against (RFC 9110 §13).
    pub fn validators(&self) -> Validators<'_> {
        Validators {
            etag: self.etag.as_ref(),
            last_modified: self.last_modified.map(from_unix_seconds),
            len: self.content_length,
            date: Some(from_unix_seconds(self.date)),
            at_cache: true,
        }
    }

    /// Approximate memory held by the head, for the weigher.
    fn weight(&self) -> usize {
        self.headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 32)
            .sum::<usize>()
            + 256
    }
}

/// Copies every header into its own allocation. hyper parses header values as slices
/// of the connection's read buffer (up to ~400 KB), so a stored head would otherwise
/// pin that whole buffer for as long as the object is cached: measured, ~40% of RSS
/// on top of the cache size.
fn detach(headers: &HeaderMap) -> HeaderMap {
    headers
        .iter()
        .filter_map(|(name, value)| {
            let name = HeaderName::from_bytes(name.as_str().as_bytes()).ok()?;
            Some((name, HeaderValue::from_bytes(value.as_bytes()).ok()?))
        })
        .collect()
}

fn header_date(headers: &HeaderMap, name: &HeaderName, now: SystemTime) -> Option<u64> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_http_date_at(v, now))
        .map(unix_seconds)
}

/// A complete stored response.
#[derive(Debug, PartialEq, Eq)]
pub struct Entry {
    pub head: Head,
    pub body: Payload,
    /// How long moka keeps it: freshness left plus the longest stale use allowed.
    keep: Duration,
}

impl Entry {
    pub fn new(mut head: Head, body: Payload, keep_stale: Duration, d: StaleDefaults) -> Self {
        // The stored copy always knows its length, even if it arrived chunked.
        head.headers
            .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        head.content_length = Some(body.len());
        let fresh_left = head
            .lifetime_or_zero()
            .saturating_sub(head.current_age(head.response_time));
        let revalidatable = head.revalidatable();
        let stale_use = [
            head.cc.stale_while_revalidate.unwrap_or(d.while_revalidate),
            head.cc.stale_if_error.unwrap_or(d.if_error),
            if revalidatable {
                keep_stale.as_secs()
            } else {
                0
            },
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        let keep = Duration::from_secs(fresh_left.saturating_add(stale_use).max(1));
        Entry { head, body, keep }
    }

    /// The entry updated by a 304 (RFC 9111 §4.3.4, §3.2): every header of the 304
    /// replaces the stored one, except `Content-Length`; freshness restarts from it.
    pub fn revalidated(
        &self,
        not_modified: &HeaderMap,
        times: (u64, u64),
        rules: &CacheRules,
        keep_stale: Duration,
        d: StaleDefaults,
    ) -> Self {
        let mut headers = self.head.headers.clone();
        for name in not_modified.keys() {
            if name == CONTENT_LENGTH {
                continue;
            }
            headers.remove(name);
            for v in not_modified.get_all(name) {
                headers.append(name.clone(), v.clone());
            }
        }
        let head = Head::new(self.head.status, &headers, times.0, times.1, rules);
        Entry::new(head, self.body.clone(), keep_stale, d)
    }
}

/// A store slot: an object, or (at a primary key) the `Vary` names selecting variants.
#[derive(Debug, Clone)]
pub enum Slot {
    Object(Arc<Entry>),
    Variants(Arc<[HeaderName]>, Duration),
}

impl Slot {
    fn keep(&self) -> Duration {
        match self {
            Slot::Object(e) => e.keep,
            Slot::Variants(_, keep) => *keep,
        }
    }
}

struct SlotExpiry;

impl Expiry<String, Slot> for SlotExpiry {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Slot,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.keep())
    }

    fn expire_after_update(
        &self,
        _key: &String,
        value: &Slot,
        _at: Instant,
        _left: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.keep())
    }
}

/// Result of a lookup: the stored object, if any, and the key a fill must use.
#[derive(Debug)]
pub struct Lookup {
    pub entry: Option<Arc<Entry>>,
    /// Set when the primary key holds variants: the request's variant key.
    pub variant_key: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Store {
    cache: moka::future::Cache<String, Slot>,
}

impl Store {
    /// A store of at most `capacity` bytes; `evictions` counts the entries dropped to
    /// stay within it.
    pub fn new(capacity: u64, evictions: Counter) -> Self {
        let cache = moka::future::Cache::builder()
            .max_capacity(capacity)
            .weigher(|key: &String, slot: &Slot| {
                let w = key.len() as u64
                    + match slot {
                        Slot::Object(e) => e.body.len() + e.head.weight() as u64,
                        Slot::Variants(names, _) => names.len() as u64 * 32 + 64,
                    };
                u32::try_from(w).unwrap_or(u32::MAX)
            })
            .expire_after(SlotExpiry)
            .eviction_listener(move |_k, _v, cause| {
                if cause == RemovalCause::Size {
                    evictions.inc();
                }
            })
            .support_invalidation_closures()
            .build();
        Store { cache }
    }

    pub async fn lookup(&self, primary: &str, request: &HeaderMap) -> Lookup {
        match self.cache.get(primary).await {
            Some(Slot::Object(entry)) => Lookup {
                entry: Some(entry),
                variant_key: None,
            },
            Some(Slot::Variants(names, _)) => {
                let key = variant_key(primary, &names, request);
                let entry = match self.cache.get(&key).await {
                    Some(Slot::Object(e)) => Some(e),
                    _ => None,
                };
                Lookup {
                    entry,
                    variant_key: Some(key),
                }
            }
            None => Lookup {
                entry: None,
                variant_key: None,
            },
        }
    }

    /// Stores `entry` for `primary`; `request` (the request that fetched it) selects
    /// the variant when the response has `Vary`.
    pub async fn insert(&self, primary: &str, request: &HeaderMap, entry: Arc<Entry>) {
        // A 5xx never replaces a stored response that is not one (stored meanwhile by
        // another fill): an upstream failure must not cost a good object.
        if entry.head.status.is_server_error()
            && let Some(stored) = self.lookup(primary, request).await.entry
            && !stored.head.status.is_server_error()
        {
            return;
        }
        match &entry.head.vary {
            Vary::Names(names) => {
                let key = variant_key(primary, names, request);
                self.cache
                    .insert(
                        primary.to_owned(),
                        Slot::Variants(names.clone(), entry.keep),
                    )
                    .await;
                self.cache.insert(key, Slot::Object(entry)).await;
            }
            Vary::None => {
                self.cache
                    .insert(primary.to_owned(), Slot::Object(entry))
                    .await;
            }
            Vary::Star => {}
        }
        // moka applies evictions in batches; with large objects a batch can overshoot
        // the capacity by many megabytes, so settle them now (fills are rare next to hits).
        self.cache.run_pending_tasks().await;
    }

    /// Drops `primary` and its variants; true if something was stored there.
    pub async fn invalidate(&self, primary: &str) -> bool {
        match self.cache.remove(primary).await {
            Some(Slot::Variants(..)) => {
                let p = primary.to_owned();
                // Registering a predicate fails only if closures are unsupported, which
                // the builder enables; the variants then just age out.
                let _ = self
                    .cache
                    .invalidate_entries_if(move |k, _| belongs_to(k, &p));
                true
            }
            Some(Slot::Object(_)) => true,
            None => false,
        }
    }

    /// Drops every key starting with `prefix`. moka applies such predicates during
    /// maintenance, so run one pass now rather than at the next insert.
    pub async fn invalidate_prefix(&self, prefix: &str) -> bool {
        let p = prefix.to_owned();
        let registered = self
            .cache
            .invalidate_entries_if(move |k, _| k.starts_with(&p))
            .is_ok();
        self.cache.run_pending_tasks().await;
        registered
    }

    pub fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }

    pub fn weighted_size(&self) -> u64 {
        self.cache.weighted_size()
    }

    pub async fn run_pending_tasks(&self) {
        self.cache.run_pending_tasks().await;
    }
}
