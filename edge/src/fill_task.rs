//! The fill task: one upstream fetch of a cache key, run in its own task so that it
//! completes for every waiter even if the client that started it goes away. It
//! revalidates a stale entry or fetches the whole object, decides whether the answer
//! may be stored (RFC 9111 §3), streams the body to the waiters, then stores it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{
    AUTHORIZATION, CACHE_CONTROL, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED,
};
use http::request::Parts;
use http::{HeaderMap, StatusCode};
use http_rules::cache_control::CacheControl;
use tracing::{debug, warn};

use crate::cluster::Hop;
use crate::fill::{Fill, FillError, FillGuard, HeadEvent, Reservation, STREAM_WINDOW};
use crate::forward::fill_request;
use crate::policy::{RequestFacts, ResponseFacts, storable};
use crate::state::AppState;
use crate::store::{Entry, Head, Vary};
use crate::upstream::Answer;
use crate::upstream::{EDGE_PEER, strip_hop_by_hop};

/// What a fill task needs besides the fill itself.
#[derive(Debug)]
pub struct FillJob {
    primary: String,
    key: String,
    /// The fill is registered in the in-flight map under `key` (and leaves it at the end).
    registered: bool,
    /// The stale entry to revalidate, if any.
    stale: Option<Arc<Entry>>,
    /// The request target, sent unchanged (`CMCD` included).
    pq: String,
    /// A peer sent the request: never ask another peer.
    from_peer: bool,
}

impl FillJob {
    pub fn new(
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

/// Runs a fill in its own task. Every wait in it is bounded: the upstream's head by
/// the connect and first-byte timeouts, each body chunk by `--read-timeout`, a storing
/// fill as a whole by `--fill-timeout`, a streaming fill by its readers taking bytes
/// within `--send-timeout`.
pub fn spawn_fill(st: &Arc<AppState>, fill: Arc<Fill>, job: FillJob) {
    let st = st.clone();
    tokio::spawn(async move {
        let guard = FillGuard(fill.clone());
        run_fill(&st, &fill, &job).await;
        if job.registered {
            st.inflight.remove(&job.key, &fill);
        }
        drop(guard);
    });
}

/// The request facts storage depends on (RFC 9111 §3): a fill is always a GET.
fn request_facts(leader: &HeaderMap) -> RequestFacts {
    RequestFacts {
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
    }
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
    let request_time = st.now();
    let sent = fill_request(st, &job.pq, &job.primary, job.from_peer, headers).await;
    let (mut resp, hop) = match sent {
        Ok(r) => r,
        Err(e) => return fill.finish(Err(e)),
    };
    let response_time = st.now();
    let status = resp.status();
    let mut headers = resp.headers().clone();
    strip_hop_by_hop(&mut headers);
    if let (StatusCode::NOT_MODIFIED, Some(stale)) = (status, &job.stale) {
        st.metrics.revalidations.inc();
        let times = (request_time, response_time);
        let entry =
            Arc::new(stale.revalidated(&headers, times, &st.rules, st.cfg.keep_stale, st.stale));
        st.store
            .insert(&job.primary, &fill.leader_headers, entry.clone())
            .await;
        fill.publish(HeadEvent::Revalidated(entry));
        return fill.finish(Ok(()));
    }
    let head = Head::new(status, &headers, request_time, response_time, &st.rules);
    let facts = ResponseFacts {
        status: status.as_u16(),
        vary_star: head.vary == Vary::Star,
        has_validator: head.revalidatable(),
        content_length: head.content_length,
        explicit_expires: head.explicit_expires,
        // A 5xx passes by a stored response (which may then answer, stale-if-error).
        replaces_stored: job.stale.is_some(),
    };
    let req = request_facts(&fill.leader_headers);
    if let Err(why) = storable(req, &head.cc, facts, head.lifetime, st.cfg.max_object_size) {
        debug!(target = %job.pq, ?why, "not storable: passing through");
        fill.publish(HeadEvent::Pass {
            status: status.as_u16(),
            response: Some(resp),
            hop,
        });
        return fill.finish(Ok(()));
    }
    // Storing needs room for the whole body in the fill budget: the Content-Length
    // up front (then `stored` can be promised), or as a body without one grows.
    let mut reservation = st.fill_budget.reserve(head.content_length.unwrap_or(0));
    let stored = head.content_length.is_some() && reservation.is_some();
    if reservation.is_none() {
        debug!(target = %job.pq, "fill memory full: streaming without storing");
    }
    fill.set_storing(reservation.is_some());
    let head = Arc::new(head);
    fill.publish(HeadEvent::Stream {
        head: head.clone(),
        status: status.as_u16(),
        stored,
    });
    let sizes = (head.content_length, hop);
    let result = receive_body(st, fill, job, &mut resp, &mut reservation, sizes).await;
    let received = result.unwrap_or(0);
    // §3.3 / §3.4: an incomplete response is never stored as complete.
    let result = match result {
        Ok(n) if head.content_length.is_some_and(|cl| cl != n) => Err(FillError::Truncated),
        other => other.map(|_| ()),
    };
    match (result, reservation) {
        (Ok(()), Some(reservation)) => {
            if let Some(body) = fill.stored_body() {
                let entry = Entry::new((*head).clone(), body, st.cfg.keep_stale, st.stale);
                st.store
                    .insert(&job.primary, &fill.leader_headers, Arc::new(entry))
                    .await;
            }
            // Given back once the body is in the store, which has evicted for it.
            drop(reservation);
        }
        (Ok(()), None) => {
            debug!(target = %job.pq, received, "streamed through without storing");
        }
        (Err(e), _) => {
            warn!(target = %job.pq, received, error = %e, "upstream body incomplete: not stored");
            st.metrics.upstream_errors.inc();
        }
    }
    fill.finish(result);
}

/// Reads the body into the fill; returns how many bytes came. Storing stops (the
/// reservation is dropped) when the body outgrows `--max-object-size` or the budget;
/// streaming waits for the slowest reader.
async fn receive_body(
    st: &AppState,
    fill: &Fill,
    job: &FillJob,
    resp: &mut Answer,
    reservation: &mut Option<Reservation>,
    (content_length, hop): (Option<u64>, Hop),
) -> Result<u64, FillError> {
    let deadline = Instant::now() + st.cfg.fill_timeout;
    let from = st.metrics.bytes_from(hop);
    let mut received = 0u64;
    loop {
        if reservation.is_none() {
            fill.wait_for_room(STREAM_WINDOW, st.cfg.send_timeout + Duration::from_secs(1))
                .await?;
        } else if Instant::now() >= deadline {
            warn!(target = %job.pq, "cache fill timed out");
            return Err(FillError::Timeout);
        }
        let chunk = match tokio::time::timeout(st.cfg.read_timeout, resp.chunk()).await {
            Err(_) => return Err(FillError::Timeout),
            Ok(Err(e)) => {
                debug!(target = %job.pq, error = %e, "upstream body failed");
                return Err(FillError::Truncated);
            }
            Ok(Ok(None)) => return Ok(received),
            Ok(Ok(Some(chunk))) => chunk,
        };
        from.inc_by(chunk.len() as u64);
        received += chunk.len() as u64;
        // A Content-Length was reserved whole; a body without one grows in steps.
        let needed = content_length.map_or(received.next_multiple_of(GROW_STEP), |_| received);
        if let Some(r) = reservation
            && (received > st.cfg.max_object_size || !r.grow_to(needed))
        {
            debug!(target = %job.pq, received, "outgrew --max-object-size or the fill memory: streaming without storing");
            *reservation = None;
            fill.stop_storing();
        }
        fill.push(chunk);
    }
}

/// A body without `Content-Length` reserves fill memory in steps of this.
const GROW_STEP: u64 = 64 * 1024;
