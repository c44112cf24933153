//! The request path: lookup, freshness decision, coalesced fills, stale serving and
//! pass-through, producing one [`Outcome`] per response.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use http::header::{
    AGE, AUTHORIZATION, CACHE_CONTROL, CONNECTION, CONTENT_LENGTH, CONTENT_LOCATION, CONTENT_RANGE,
    CONTENT_TYPE, DATE, ETAG, EXPIRES, IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE,
    IF_UNMODIFIED_SINCE, LAST_MODIFIED, RANGE, VARY, VIA,
};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use tracing::{debug, warn};

use crate::cluster::{Hop, Membership, peer_failed};
use crate::conditional::{
    Conditionals, Precondition, RangeOutcome, Validators, evaluate_preconditions, evaluate_range,
    if_range_allows,
};
use crate::config::Config;
use crate::fill::{Fill, FillError, FillGuard, HeadEvent, Inflight};
use crate::key::{primary_key, variant_key};
use crate::load::Load;
use crate::metrics::Metrics;
use crate::phase::{Outcome, Phase};
use crate::policy::{
    CacheControl, Heuristic, RequestFacts, ResponseFacts, StaleDefaults, Usability, now_secs,
    stale_if_error, storable, usability,
};
use crate::settings::{Settings, SettingsError};
use crate::store::{Entry, Head, Lookup, Store, Vary};
use crate::upstream::{
    ClientError, EDGE_PEER, client, forward_headers, loops_through, strip_hop_by_hop,
};

/// The client's address, inserted into request extensions by the server loop.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// Why an edge could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Settings(#[from] SettingsError),
}

/// Shared state of one edge node.
#[derive(Debug)]
pub struct AppState {
    pub cfg: Config,
    pub name: String,
    via: HeaderValue,
    /// `name` as the value of `Edge-Peer` on requests to peers.
    peer_tag: HeaderValue,
    pub(crate) client: reqwest::Client,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub load: Arc<Load>,
    /// Peers and upstreams; replaced whole on reload, so a request sees one version.
    membership: RwLock<Arc<Membership>>,
    draining: AtomicBool,
    inflight: Inflight,
    stale: StaleDefaults,
    heuristic: Heuristic,
}

impl AppState {
    /// Builds the edge and, inside a Tokio runtime, starts its health checks (they
    /// stop when the state is dropped).
    pub fn new(cfg: Config) -> Result<Arc<Self>, StartError> {
        let name = cfg.node_name();
        let membership = Membership::new(&Settings::load(&cfg)?, &name, None);
        warn_if_not_listed(&membership, &name);
        let metrics = Arc::new(Metrics::default());
        let st = Arc::new(AppState {
            via: HeaderValue::from_str(&format!("1.1 {name}"))
                .unwrap_or(HeaderValue::from_static("1.1 edge")),
            peer_tag: HeaderValue::from_str(&name).unwrap_or(HeaderValue::from_static("edge")),
            client: client(&cfg)?,
            store: Store::new(cfg.cache_size, metrics.clone()),
            stale: StaleDefaults {
                while_revalidate: cfg.stale_while_revalidate.as_secs(),
                if_error: cfg.stale_if_error.as_secs(),
            },
            heuristic: Heuristic::default(),
            inflight: Inflight::default(),
            load: Arc::new(Load::default()),
            membership: RwLock::new(Arc::new(membership)),
            draining: AtomicBool::new(false),
            metrics,
            name,
            cfg,
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(crate::cluster::run_checks(Arc::downgrade(&st)));
        }
        Ok(st)
    }

    /// The membership in force.
    pub fn membership(&self) -> Arc<Membership> {
        self.membership
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Re-reads the `--config` file (flags still override it) and replaces the
    /// membership atomically; on any error the old one stays. Counted in
    /// `edge_config_reloads_total`.
    pub fn reload(&self) -> Result<Arc<Membership>, SettingsError> {
        if self.cfg.config.is_none() {
            return Err(SettingsError::NoFile);
        }
        let settings =
            Settings::load(&self.cfg).inspect_err(|_| self.metrics.reloads_error.inc())?;
        let mut current = self
            .membership
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let next = Arc::new(Membership::new(&settings, &self.name, Some(&current)));
        *current = next.clone();
        drop(current);
        self.metrics.reloads_ok.inc();
        warn_if_not_listed(&next, &self.name);
        Ok(next)
    }

    /// Starts draining (SIGTERM / Ctrl-C): `/.edge/healthz` answers 503 and status
    /// reports unhealthy, so that checkers steer traffic elsewhere.
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// How long a waiter waits for a fill's response head. A fill may try several
    /// peers and upstreams in turn, each bounded by the connect and first-byte
    /// timeouts, and always publishes a head or a failure within `--fill-timeout`;
    /// this bound only guards against a fill that was lost.
    fn head_wait(&self) -> Duration {
        self.cfg.fill_timeout + Duration::from_secs(1)
    }

    /// Sends one request to a peer or an upstream, bounded by the connect and
    /// first-byte timeouts.
    async fn send(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: Option<reqwest::Body>,
    ) -> Result<reqwest::Response, FillError> {
        let mut rb = self.client.request(method, url).headers(headers);
        if let Some(body) = body {
            rb = rb.body(body);
        }
        match tokio::time::timeout(
            self.cfg.connect_timeout + self.cfg.first_byte_timeout,
            rb.send(),
        )
        .await
        {
            Err(_) => Err(FillError::Timeout),
            Ok(Err(e)) if e.is_timeout() => Err(FillError::Timeout),
            Ok(Err(e)) if e.is_connect() => Err(FillError::Connect),
            Ok(Err(e)) => {
                debug!(error = %e, "upstream request failed");
                Err(FillError::Upstream)
            }
            Ok(Ok(r)) => Ok(r),
        }
    }

    /// Sends a request to the upstreams in failover order. The next one is tried
    /// when one cannot be reached, if the request can be repeated (RFC 9110 §9.2.2:
    /// it is idempotent or was never sent; a streamed body cannot be replayed).
    /// Connection failures and timeouts count against the upstream's health.
    async fn send_upstream(
        &self,
        m: &Membership,
        method: &Method,
        pq: &str,
        headers: &HeaderMap,
        mut body: Option<reqwest::Body>,
    ) -> Result<reqwest::Response, FillError> {
        let replayable = body.is_none();
        let mut last = FillError::Connect;
        for up in m.upstream_order() {
            self.metrics.upstream_requests.inc();
            let sent = self
                .send(
                    method.clone(),
                    &up.url_for(pq),
                    headers.clone(),
                    body.take(),
                )
                .await;
            match sent {
                Ok(r) => return Ok(r),
                Err(e) => {
                    self.metrics.upstream_errors.inc();
                    let unreachable = matches!(e, FillError::Connect | FillError::Timeout);
                    if unreachable {
                        up.observe(Some(e.to_string()), None, &m.health);
                    }
                    last = e;
                    if !(replayable && (e == FillError::Connect || method.is_idempotent())) {
                        break;
                    }
                    debug!(upstream = %up.name, error = %e, "upstream failed: trying the next");
                }
            }
        }
        Err(last)
    }

    /// The GET of a cache fill. Unless a peer sent the request, the peers ranked
    /// above this edge for the key come first: the owner, then (if it fails before
    /// its response head: unreachable, timed out or a 5xx of its own) at once the
    /// next in line, each failure counting against the peer's health. The upstreams
    /// come last, so one dead peer never costs a client an error.
    async fn fill_request(
        &self,
        job: &FillJob,
        headers: HeaderMap,
    ) -> Result<(reqwest::Response, Hop), FillError> {
        let m = self.membership();
        let peers = if job.from_peer {
            Vec::new()
        } else {
            m.peers_for(&job.primary)
        };
        for peer in peers {
            peer.requests.inc();
            let mut h = headers.clone();
            h.insert(EDGE_PEER, self.peer_tag.clone());
            let failure = match self
                .send(Method::GET, &peer.url_for(&job.pq), h, None)
                .await
            {
                Ok(r) if !peer_failed(r.status(), r.headers(), &peer.name) => {
                    return Ok((r, Hop::Peer));
                }
                Ok(r) => format!("answered {}", r.status()),
                Err(e) => e.to_string(),
            };
            self.metrics.peer_fallbacks.inc();
            warn!(peer = %peer.name, target = %job.pq, %failure, "peer fetch failed: asking the next in line");
            peer.observe(Some(failure), None, &m.health);
        }
        self.send_upstream(&m, &Method::GET, &job.pq, &headers, None)
            .await
            .map(|r| (r, Hop::Upstream))
    }

    fn peer(parts: &Parts) -> Option<SocketAddr> {
        parts.extensions.get::<ClientAddr>().map(|c| c.0)
    }

    /// Request headers for a cache fill: the client's, forwarded, minus its own
    /// conditionals and range (the fill fetches the whole representation, and adds
    /// validators of the stored response itself).
    fn fill_headers(&self, parts: &Parts) -> HeaderMap {
        let mut h = forward_headers(&parts.headers, Self::peer(parts), &self.via, &self.name);
        for name in [
            IF_MATCH,
            IF_NONE_MATCH,
            IF_MODIFIED_SINCE,
            IF_UNMODIFIED_SINCE,
            IF_RANGE,
            RANGE,
        ] {
            h.remove(name);
        }
        h
    }

    fn stamp(&self, headers: &mut HeaderMap, outcome: &Outcome) {
        self.metrics.request(outcome.phase);
        if let Ok(v) = HeaderValue::from_str(&outcome.cache_status(&self.name)) {
            // RFC 9211 §2: each cache appends its member; the list is read left to right
            // from the origin towards the client.
            headers.append(HeaderName::from_static("cache-status"), v);
        }
        headers.append(VIA, self.via.clone());
    }
}

/// The proxy handler: every request that is not an admin route, counted as load
/// until its response body is done.
pub async fn handle(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let in_flight = st.load.begin();
    in_flight.wrap(proxy(st, req).await)
}

async fn proxy(st: Arc<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    // Only origin-form targets map onto the upstream (`OPTIONS *` has nothing to proxy).
    if !parts.uri.path().starts_with('/') {
        st.metrics.request(Phase::Bypass);
        return plain(StatusCode::BAD_REQUEST, "request target must be a path");
    }
    if parts.method.as_str() == "PURGE" {
        return crate::admin::purge(&st, &parts).await;
    }
    // Our own name in `CDN-Loop` or `Via` means the request came back through us:
    // answer instead of forwarding it round the loop again (RFC 8586, RFC 9110 §7.6.3).
    if loops_through(&parts.headers, &st.name) {
        st.metrics.request(Phase::Bypass);
        st.metrics.loop_rejections.inc();
        return plain(
            StatusCode::LOOP_DETECTED,
            &format!(
                "request loop: it already passed through edge {} (an upstream or peer leads back to it)",
                st.name
            ),
        );
    }
    if parts.method != Method::GET && parts.method != Method::HEAD {
        return pass(&st, &parts, Some(body), Phase::Bypass).await;
    }
    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let primary = primary_key(pq);
    let lookup = st.store.lookup(&primary, &parts.headers).await;
    if let Some(entry) = &lookup.entry {
        let now = now_secs();
        let age = entry.head.current_age(now);
        let lifetime = entry.head.lifetime_or_zero();
        match usability(&entry.head.cc, lifetime, age, st.stale) {
            Usability::Fresh { ttl } => {
                let outcome = Outcome {
                    ttl: Some(signed(ttl)),
                    ..Outcome::new(Phase::Hit)
                };
                return respond(
                    &st,
                    &parts,
                    &entry.head,
                    Src::Bytes(&entry.body),
                    &outcome,
                    age,
                );
            }
            Usability::StaleWhileRevalidate { staleness } => {
                let key = lookup
                    .variant_key
                    .clone()
                    .unwrap_or_else(|| primary.clone().into_owned());
                let (fill, leader) = st.inflight.join_or_create(&key, || st.fill_headers(&parts));
                if leader {
                    spawn_fill(
                        &st,
                        fill,
                        FillJob::new(&parts, &primary, key, true, lookup.entry.clone()),
                    );
                }
                let outcome = Outcome {
                    ttl: Some(-signed(staleness)),
                    ..Outcome::new(Phase::StaleWhileRevalidate)
                };
                return respond(
                    &st,
                    &parts,
                    &entry.head,
                    Src::Bytes(&entry.body),
                    &outcome,
                    age,
                );
            }
            Usability::Stale { .. } => {}
        }
    }
    fetch(&st, &parts, &primary, lookup).await
}

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A miss or a stale entry that needs the upstream: join or lead a fill.
async fn fetch(st: &Arc<AppState>, parts: &Parts, primary: &str, lookup: Lookup) -> Response {
    let key = lookup.variant_key.unwrap_or_else(|| primary.to_owned());
    // §3.5: a response to an authenticated request is per-user until it says otherwise,
    // so such requests never share a fill.
    let coalesce = !parts.headers.contains_key(AUTHORIZATION);
    let (fill, leader) = if coalesce {
        st.inflight.join_or_create(&key, || st.fill_headers(parts))
    } else {
        (Fill::new(st.fill_headers(parts)), true)
    };
    let stale = lookup.entry;
    if leader {
        spawn_fill(
            st,
            fill.clone(),
            FillJob::new(parts, primary, key, coalesce, stale.clone()),
        );
    } else {
        st.metrics.coalesced_waiters.inc();
    }
    match fill.wait_head(st.head_wait()).await {
        HeadEvent::Stream { head, status } => {
            if !leader && !same_variant(&head.vary, primary, &fill.leader_headers, &parts.headers) {
                return pass(st, parts, None, Phase::Miss).await;
            }
            let phase = match (leader, &stale) {
                (false, _) => Phase::Collapsed,
                (true, Some(_)) => Phase::Refreshed,
                (true, None) => Phase::Miss,
            };
            let outcome = Outcome {
                fwd_status: Some(status),
                stored: true,
                ..Outcome::new(phase)
            };
            let age = head.current_age(now_secs());
            respond(st, parts, &head, Src::Fill(fill), &outcome, age)
        }
        HeadEvent::Revalidated(entry) => {
            let age = entry.head.current_age(now_secs());
            let ttl = signed(entry.head.lifetime_or_zero()) - signed(age);
            let outcome = Outcome {
                ttl: Some(ttl),
                fwd_status: Some(304),
                ..Outcome::new(Phase::Revalidated)
            };
            respond(
                st,
                parts,
                &entry.head,
                Src::Bytes(&entry.body),
                &outcome,
                age,
            )
        }
        HeadEvent::Pass {
            status,
            response,
            hop,
        } => {
            if status >= 500
                && let Some(r) = serve_stale_if_error(st, parts, stale.as_ref(), Some(status))
            {
                return r;
            }
            match response {
                Some(resp) => pass_response(st, parts, resp, Phase::Miss, hop),
                None => pass(st, parts, None, Phase::Miss).await,
            }
        }
        HeadEvent::Failed(err) => serve_stale_if_error(st, parts, stale.as_ref(), None)
            .unwrap_or_else(|| error_response(st, err)),
    }
}

/// Whether a waiter selects the same variant as the fill's leader (RFC 9111 §4.1).
fn same_variant(vary: &Vary, primary: &str, leader: &HeaderMap, mine: &HeaderMap) -> bool {
    match vary {
        Vary::None => true,
        Vary::Star => false,
        Vary::Names(names) => {
            variant_key(primary, names, leader) == variant_key(primary, names, mine)
        }
    }
}

fn serve_stale_if_error(
    st: &AppState,
    parts: &Parts,
    stale: Option<&Arc<Entry>>,
    fwd_status: Option<u16>,
) -> Option<Response> {
    let entry = stale?;
    let age = entry.head.current_age(now_secs());
    let lifetime = entry.head.lifetime_or_zero();
    if !stale_if_error(&entry.head.cc, lifetime, age, st.stale) {
        return None;
    }
    let outcome = Outcome {
        ttl: Some(signed(lifetime) - signed(age)),
        fwd_status,
        ..Outcome::new(Phase::StaleIfError)
    };
    Some(respond(
        st,
        parts,
        &entry.head,
        Src::Bytes(&entry.body),
        &outcome,
        age,
    ))
}

/// What a fill task needs besides the fill itself.
#[derive(Debug)]
struct FillJob {
    primary: String,
    key: String,
    registered: bool,
    stale: Option<Arc<Entry>>,
    /// The request target, sent unchanged (`CMCD` included).
    pq: String,
    /// A peer sent the request: never ask another peer.
    from_peer: bool,
}

impl FillJob {
    fn new(
        parts: &Parts,
        primary: &str,
        key: String,
        registered: bool,
        stale: Option<Arc<Entry>>,
    ) -> Self {
        FillJob {
            primary: primary.to_owned(),
            key,
            registered,
            stale,
            pq: parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned(),
            from_peer: parts.headers.contains_key(EDGE_PEER),
        }
    }
}

/// Runs a fill in its own task, so that it completes for every waiter even if the
/// client that started it goes away; bounded by `--fill-timeout`.
fn spawn_fill(st: &Arc<AppState>, fill: Arc<Fill>, job: FillJob) {
    let st = st.clone();
    tokio::spawn(async move {
        let guard = FillGuard(fill.clone());
        if tokio::time::timeout(st.cfg.fill_timeout, run_fill(&st, &fill, &job))
            .await
            .is_err()
        {
            warn!(target = %job.pq, "cache fill timed out");
            st.metrics.upstream_errors.inc();
            fill.finish(Err(FillError::Timeout));
        }
        if job.registered {
            st.inflight.remove(&job.key, &fill);
        }
        drop(guard);
    });
}

async fn run_fill(st: &AppState, fill: &Fill, job: &FillJob) {
    let mut headers = fill.leader_headers.clone();
    if let Some(stale) = &job.stale {
        // §4.3.1: revalidate with the stored validators.
        if let Some(etag) = stale.head.headers.get(ETAG) {
            headers.insert(IF_NONE_MATCH, etag.clone());
        }
        if let Some(lm) = stale.head.headers.get(LAST_MODIFIED) {
            headers.insert(IF_MODIFIED_SINCE, lm.clone());
        }
    }
    let request_time = now_secs();
    let (mut resp, hop) = match st.fill_request(job, headers).await {
        Ok(r) => r,
        Err(e) => return fill.finish(Err(e)),
    };
    let response_time = now_secs();
    let status = resp.status();
    let mut headers = resp.headers().clone();
    strip_hop_by_hop(&mut headers);
    if let (StatusCode::NOT_MODIFIED, Some(stale)) = (status, &job.stale) {
        st.metrics.revalidations.inc();
        let times = (request_time, response_time);
        let entry =
            Arc::new(stale.revalidated(&headers, times, st.heuristic, st.cfg.keep_stale, st.stale));
        st.store
            .insert(&job.primary, &fill.leader_headers, entry.clone())
            .await;
        fill.publish(HeadEvent::Revalidated(entry));
        return fill.finish(Ok(()));
    }
    let head = Head::new(status, &headers, request_time, response_time, st.heuristic);
    let leader = &fill.leader_headers;
    let req = RequestFacts {
        method_get: true,
        authorization: leader.contains_key(AUTHORIZATION),
        // §5.2.1.5: a request's no-store forbids storing the response to it.
        no_store: CacheControl::parse(
            leader
                .get_all(CACHE_CONTROL)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        )
        .no_store,
    };
    let facts = ResponseFacts {
        status: status.as_u16(),
        vary_star: head.vary == Vary::Star,
        has_validator: head.etag.is_some() || head.last_modified.is_some(),
        content_length: head.content_length,
    };
    if let Err(why) = storable(req, &head.cc, facts, head.lifetime, st.cfg.max_object_size) {
        debug!(target = %job.pq, ?why, "not storable: passing through");
        fill.publish(HeadEvent::Pass {
            status: status.as_u16(),
            response: Some(resp),
            hop,
        });
        return fill.finish(Ok(()));
    }
    let head = Arc::new(head);
    fill.publish(HeadEvent::Stream {
        head: head.clone(),
        status: status.as_u16(),
    });
    let mut received = 0;
    let from = hop.bytes_counter(&st.metrics);
    let mut result = loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                from.add(chunk.len() as u64);
                received = fill.push(chunk, st.cfg.max_object_size);
            }
            Ok(None) => break Ok(()),
            Err(e) => {
                debug!(target = %job.pq, error = %e, "upstream body failed");
                break Err(FillError::Truncated);
            }
        }
    };
    // §3.3 / §3.4: an incomplete response is never stored as complete.
    if head.content_length.is_some_and(|cl| cl != received) {
        result = Err(FillError::Truncated);
    }
    match result {
        Ok(()) if received <= st.cfg.max_object_size => {
            let entry = Entry::new(
                (*head).clone(),
                fill.collect_body(),
                st.cfg.keep_stale,
                st.stale,
            );
            st.store
                .insert(&job.primary, &fill.leader_headers, Arc::new(entry))
                .await;
        }
        Ok(()) => {
            debug!(target = %job.pq, received, "object larger than --max-object-size: not stored");
        }
        Err(_) => {
            warn!(target = %job.pq, received, "upstream body cut short: not stored");
            st.metrics.upstream_errors.inc();
        }
    }
    fill.finish(result);
}

/// Where a response body comes from.
enum Src<'a> {
    Bytes(&'a Bytes),
    Fill(Arc<Fill>),
}

/// Builds the client response for a cacheable head: client preconditions, Range,
/// `Age`, `Cache-Status`, `Via`. Conditionals and ranges apply to 200s only
/// (RFC 9110 §13.1, §14.2).
fn respond(
    st: &AppState,
    parts: &Parts,
    head: &Head,
    src: Src<'_>,
    outcome: &Outcome,
    age: u64,
) -> Response {
    let mut headers;
    let mut status = head.status;
    let (mut start, mut end) = (0, u64::MAX);
    if status == StatusCode::OK {
        let v = Validators {
            etag: head.etag.as_deref(),
            last_modified: head.last_modified,
        };
        let h = &parts.headers;
        let text = |name: HeaderName| h.get(name).and_then(|v| v.to_str().ok());
        let c = Conditionals {
            if_match: text(IF_MATCH),
            if_none_match: text(IF_NONE_MATCH),
            if_modified_since: text(IF_MODIFIED_SINCE),
            if_unmodified_since: text(IF_UNMODIFIED_SINCE),
            if_range: text(IF_RANGE),
        };
        match evaluate_preconditions(&c, &v) {
            Precondition::Proceed => {}
            Precondition::NotModified => {
                // RFC 9110 §15.4.5: a 304 carries the fields a 200 would have that
                // describe the representation's caching.
                headers = HeaderMap::new();
                for name in [
                    CACHE_CONTROL,
                    CONTENT_LOCATION,
                    DATE,
                    ETAG,
                    EXPIRES,
                    LAST_MODIFIED,
                    VARY,
                ] {
                    if let Some(v) = head.headers.get(&name) {
                        headers.insert(name, v.clone());
                    }
                }
                headers.insert(AGE, HeaderValue::from(age));
                st.stamp(&mut headers, outcome);
                return (StatusCode::NOT_MODIFIED, headers).into_response();
            }
            Precondition::Failed => {
                st.metrics.request(outcome.phase);
                return plain(StatusCode::PRECONDITION_FAILED, "precondition failed");
            }
        }
        if let (Some(range), Some(len)) = (text(RANGE), head.content_length)
            && if_range_allows(c.if_range, &v)
        {
            match evaluate_range(range, len) {
                RangeOutcome::Full => {}
                RangeOutcome::Partial { start: s, end: e } => {
                    status = StatusCode::PARTIAL_CONTENT;
                    (start, end) = (s, e + 1);
                }
                RangeOutcome::Unsatisfiable => {
                    st.metrics.request(outcome.phase);
                    let mut r = plain(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable");
                    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                        r.headers_mut().insert(CONTENT_RANGE, v);
                    }
                    return r;
                }
            }
        }
    }
    headers = head.headers.clone();
    if status == StatusCode::PARTIAL_CONTENT {
        let len = head.content_length.unwrap_or(0);
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{len}", end - 1)) {
            headers.insert(CONTENT_RANGE, v);
        }
        headers.insert(CONTENT_LENGTH, HeaderValue::from(end - start));
    }
    headers.insert(AGE, HeaderValue::from(age));
    st.stamp(&mut headers, outcome);
    let body = if parts.method == Method::HEAD {
        Body::empty()
    } else {
        match src {
            Src::Bytes(bytes) => {
                let len = bytes.len() as u64;
                let (s, e) = (start.min(len), end.min(len));
                st.metrics.bytes_from_cache.add(e - s);
                // s <= e <= len, and len came from a usize.
                Body::from(bytes.slice(s as usize..e as usize))
            }
            Src::Fill(fill) => Body::from_stream(fill.body(
                start,
                end,
                st.cfg.read_timeout + Duration::from_secs(1),
            )),
        }
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}

/// Forwards a request without the cache (unsafe methods, uncacheable responses,
/// variant mismatches). A successful unsafe request invalidates the target (§4.4).
async fn pass(st: &AppState, parts: &Parts, body: Option<Body>, phase: Phase) -> Response {
    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let headers = forward_headers(&parts.headers, AppState::peer(parts), &st.via, &st.name);
    let stalled = Arc::new(AtomicBool::new(false));
    let body = body.map(|b| {
        let limited = idle_limited(
            b.into_data_stream(),
            st.cfg.header_read_timeout,
            stalled.clone(),
        );
        reqwest::Body::wrap_stream(limited)
    });
    let m = st.membership();
    match st
        .send_upstream(&m, &parts.method, pq, &headers, body)
        .await
    {
        // The client, not the upstream, was too slow (RFC 9110 §15.5.9).
        Err(_) if stalled.load(Ordering::Relaxed) => {
            st.metrics.request(Phase::Bypass);
            let mut r = plain(StatusCode::REQUEST_TIMEOUT, "request body timed out");
            r.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            r
        }
        Err(e) => error_response(st, e),
        Ok(resp) => {
            let unsafe_method = !matches!(
                parts.method,
                Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
            );
            let s = resp.status();
            if unsafe_method && (s.is_success() || s.is_redirection()) {
                st.store.invalidate(&primary_key(pq)).await;
            }
            pass_response(st, parts, resp, phase, Hop::Upstream)
        }
    }
}

/// A client upload that stalls longer than `idle` between chunks fails the forwarded
/// request instead of holding an upstream connection forever.
fn idle_limited(
    body: axum::body::BodyDataStream,
    idle: Duration,
    stalled: Arc<AtomicBool>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures::stream::unfold(Some(body), move |body| {
        let stalled = stalled.clone();
        async move {
            let mut body = body?;
            match tokio::time::timeout(idle, body.next()).await {
                Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(body))),
                Ok(Some(Err(e))) => Some((Err(std::io::Error::other(e)), None)),
                Ok(None) => None,
                Err(_) => {
                    stalled.store(true, Ordering::Relaxed);
                    Some((
                        Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "client body stalled",
                        )),
                        None,
                    ))
                }
            }
        }
    })
}

fn pass_response(
    st: &AppState,
    parts: &Parts,
    resp: reqwest::Response,
    phase: Phase,
    hop: Hop,
) -> Response {
    let status = resp.status();
    let mut headers = resp.headers().clone();
    strip_hop_by_hop(&mut headers);
    st.stamp(
        &mut headers,
        &Outcome {
            fwd_status: Some(status.as_u16()),
            ..Outcome::new(phase)
        },
    );
    let body = if parts.method == Method::HEAD {
        Body::empty()
    } else {
        let metrics = st.metrics.clone();
        Body::from_stream(
            resp.bytes_stream()
                .inspect_ok(move |c| hop.bytes_counter(&metrics).add(c.len() as u64)),
        )
    };
    let mut out = Response::new(body);
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out
}

/// Logs when a peer list that is not empty leaves this edge out: it then owns no key.
fn warn_if_not_listed(m: &Membership, name: &str) {
    if !m.peers.is_empty() && !m.lists_self() {
        warn!(
            name,
            "this edge is not in its peer list: it owns no key and sends every miss to a peer"
        );
    }
}

fn error_response(st: &AppState, err: FillError) -> Response {
    let status = match err {
        FillError::Timeout => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::BAD_GATEWAY,
    };
    let mut r = plain(status, &err.to_string());
    st.stamp(r.headers_mut(), &Outcome::new(Phase::Error));
    r
}

/// A one-line plain-text response.
pub fn plain(status: StatusCode, msg: &str) -> Response {
    (
        status,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        format!("{msg}\n"),
    )
        .into_response()
}
