//! The fill task: one upstream fetch of a cache key, run in its own task so that it
//! completes for every waiter even if the client that started it goes away. It
//! revalidates a stale entry or fetches the whole object, decides whether the answer
//! may be stored (RFC 9111 §3), streams the body to the waiters, then stores it.

use std::sync::Arc;

use http::header::{
    AUTHORIZATION, CACHE_CONTROL, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED,
};
use http::request::Parts;
use http::{HeaderMap, StatusCode};
use http_rules::cache_control::CacheControl;
use tracing::{debug, warn};

use crate::fill::{Fill, FillError, FillGuard, HeadEvent};
use crate::forward::fill_request;
use crate::policy::{RequestFacts, ResponseFacts, storable};
use crate::state::AppState;
use crate::store::{Entry, Head, Vary};
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

/// Runs a fill in its own task, bounded by `--fill-timeout`.
pub fn spawn_fill(st: &Arc<AppState>, fill: Arc<Fill>, job: FillJob) {
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
            Arc::new(stale.revalidated(&headers, times, st.heuristic, st.cfg.keep_stale, st.stale));
        st.store
            .insert(&job.primary, &fill.leader_headers, entry.clone())
            .await;
        fill.publish(HeadEvent::Revalidated(entry));
        return fill.finish(Ok(()));
    }
    let head = Head::new(status, &headers, request_time, response_time, st.heuristic);
    let facts = ResponseFacts {
        status: status.as_u16(),
        vary_star: head.vary == Vary::Star,
        has_validator: head.revalidatable(),
        content_length: head.content_length,
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
    let head = Arc::new(head);
    fill.publish(HeadEvent::Stream {
        head: head.clone(),
        status: status.as_u16(),
    });
    let mut received = 0;
    let from = st.metrics.bytes_from(hop);
    let mut result = loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                from.inc_by(chunk.len() as u64);
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
