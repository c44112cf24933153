//! The request path, as a pipeline: read the request, [`route`] it, look the key up,
//! [`decide`] at the clock's `now`, then answer from the store, start or join a fill
//! ([`crate::fill_task`]), or pass the request by the cache ([`crate::pass`]). Each
//! response carries one [`Outcome`].

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use futures::StreamExt;
use http::header::{CONNECTION, HOST};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body::Body as _;
use http_rules::host::request_host;
use http_rules::path::normalize;

use crate::admin;
use crate::decide::{
    Decision, Incoming, Route, Served, decide, revalidated, route, stale_if_error,
};
use crate::fill::{Fill, HeadEvent};
use crate::fill_task::{FillJob, spawn_fill};
use crate::forward::fill_headers;
use crate::key::{primary_key, variant_key};
use crate::pass::{pass, pass_response};
use crate::phase::{Outcome, Phase};
use crate::respond::{Src, error_response, plain, respond};
use crate::state::AppState;
use crate::store::{Entry, Lookup, Vary};

/// The first step of every request, admin routes included: the target in its one
/// normal form ([`http_rules::path`], RFC 3986 §6.2.2) and a valid `Host`
/// ([`http_rules::host`], RFC 9112 §3.2), else 400 with the reason. An absolute-form
/// target becomes origin-form, its authority the `Host` (RFC 9112 §3.2.2).
pub async fn normal_request(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let host = match request_host(parts.version, &parts.headers, &parts.uri) {
        Ok(host) => host.map(str::to_owned),
        Err(e) => return bad_request(&st, &e.to_string()),
    };
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let normal = match normalize(target) {
        Ok(normal) => normal,
        Err(e) => return bad_request(&st, &e.to_string()),
    };
    if matches!(normal, Cow::Owned(_)) || parts.uri.authority().is_some() {
        match normal.parse() {
            Ok(uri) => parts.uri = uri,
            Err(_) => return bad_request(&st, "request target must be a path"),
        }
        if let Some(host) = host.and_then(|h| HeaderValue::from_str(&h).ok()) {
            parts.headers.insert(HOST, host);
        }
    }
    next.run(Request::from_parts(parts, body)).await
}

fn bad_request(st: &AppState, reason: &str) -> Response {
    st.metrics.request(Phase::Bypass);
    let mut r = plain(StatusCode::BAD_REQUEST, reason);
    r.headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    r
}

/// The proxy handler: every request that is not an admin route, counted as load
/// until its response body is done.
pub async fn handle(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let in_flight = st.load.begin();
    in_flight.wrap(serve(st, req).await)
}

async fn serve(st: Arc<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let incoming = Incoming::read(&parts, &st.name);
    match route(&incoming) {
        Route::BadTarget => {
            st.metrics.request(Phase::Bypass);
            plain(StatusCode::BAD_REQUEST, "request target must be a path")
        }
        Route::Purge => admin::purge(&st, &parts).await,
        Route::Loop => {
            st.metrics.request(Phase::Bypass);
            st.metrics.loop_rejections.inc();
            plain(
                StatusCode::LOOP_DETECTED,
                &format!(
                    "request loop: it already passed through edge {} (an upstream or peer leads back to it)",
                    st.name
                ),
            )
        }
        Route::Pass => pass(&st, &parts, Some(body), Phase::Bypass).await,
        Route::Cache => {
            let close = discard_body(body, st.cfg.header_read_timeout);
            let mut response = cached(&st, &parts, &incoming).await;
            if close {
                response
                    .headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            }
            response
        }
    }
}

/// The most a GET or HEAD body is read for, only to keep its connection usable.
const DRAIN_LIMIT: u64 = 64 * 1024;

/// Disposes of the body of a GET or HEAD, which the edge never forwards (it has no
/// defined meaning there, RFC 9110 §9.3.1, §9.3.2). A small body is read and dropped
/// in the background, for at most `within`, so that its connection can carry the next
/// request; anything larger, slower or endless is dropped unread, and hyper then
/// closes the connection after the answer instead of reading the rest as the next
/// request (RFC 9112 §9.6). Returns whether the answer should say `Connection: close`.
fn discard_body(body: Body, within: Duration) -> bool {
    if body.is_end_stream() {
        return false;
    }
    if body.size_hint().lower() > DRAIN_LIMIT {
        return true;
    }
    tokio::spawn(async move {
        let mut data = body.into_data_stream();
        let mut read = 0;
        let drained = async {
            while let Some(Ok(chunk)) = data.next().await {
                read += chunk.len() as u64;
                if read > DRAIN_LIMIT {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(within, drained).await;
    });
    false
}

/// A GET or HEAD: from the store, or through a fill.
async fn cached(st: &Arc<AppState>, parts: &Parts, incoming: &Incoming) -> Response {
    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let primary = primary_key(pq);
    let lookup = st.store.lookup(&primary, &parts.headers).await;
    match decide(lookup.entry.as_deref(), incoming, st.now(), st.stale) {
        Decision::Hit(entry, served) => {
            let outcome = Outcome {
                ttl: Some(served.ttl),
                ..Outcome::new(Phase::Hit)
            };
            from_store(st, parts, entry, &outcome, served)
        }
        Decision::StaleWhileRevalidate(entry, served) => {
            // One background refresh; every request meanwhile gets the stale copy.
            let key = lookup
                .variant_key
                .clone()
                .unwrap_or_else(|| primary.clone().into_owned());
            let (fill, leader) = st.inflight.join_or_create(&key, || fill_headers(st, parts));
            if leader {
                let stale = lookup.entry.clone();
                spawn_fill(st, fill, FillJob::new(parts, &primary, key, true, stale));
            }
            let outcome = Outcome {
                ttl: Some(served.ttl),
                ..Outcome::new(Phase::StaleWhileRevalidate)
            };
            from_store(st, parts, entry, &outcome, served)
        }
        Decision::Fetch { coalesce } => fetch(st, parts, &primary, lookup, coalesce).await,
    }
}

fn from_store(
    st: &AppState,
    parts: &Parts,
    entry: &Entry,
    outcome: &Outcome,
    served: Served,
) -> Response {
    respond(
        st,
        parts,
        &entry.head,
        Src::Stored(&entry.body),
        outcome,
        served.age,
    )
}

/// A miss or a stale entry that needs the upstream: join or lead a fill, then answer
/// from what it brings.
async fn fetch(
    st: &Arc<AppState>,
    parts: &Parts,
    primary: &str,
    lookup: Lookup,
    coalesce: bool,
) -> Response {
    let key = lookup.variant_key.unwrap_or_else(|| primary.to_owned());
    let (fill, leader) = if coalesce {
        st.inflight.join_or_create(&key, || fill_headers(st, parts))
    } else {
        (Fill::new(fill_headers(st, parts)), true)
    };
    let stale = lookup.entry;
    if leader {
        let job = FillJob::new(parts, primary, key, coalesce, stale.clone());
        spawn_fill(st, fill.clone(), job);
    } else {
        st.metrics.coalesced_waiters.inc();
    }
    match fill.wait_head(st.head_wait()).await {
        HeadEvent::Stream {
            head,
            status,
            stored,
        } => {
            if !leader && !same_variant(&head.vary, primary, &fill.leader_headers, &parts.headers) {
                return pass(st, parts, None, Phase::Miss).await;
            }
            // A fill that streams without storing lets go of what its readers took:
            // a latecomer fetches its own.
            let Some(reader) = fill.attach() else {
                return pass(st, parts, None, Phase::Miss).await;
            };
            let phase = match (leader, &stale) {
                (false, _) => Phase::Collapsed,
                (true, Some(_)) => Phase::Refreshed,
                (true, None) => Phase::Miss,
            };
            let outcome = Outcome {
                fwd_status: Some(status),
                stored,
                ..Outcome::new(phase)
            };
            let age = head.current_age(st.now());
            respond(st, parts, &head, Src::Fill(reader), &outcome, age)
        }
        HeadEvent::Revalidated(entry) => {
            let served = revalidated(&entry.head, st.now());
            let outcome = Outcome {
                ttl: Some(served.ttl),
                fwd_status: Some(304),
                ..Outcome::new(Phase::Revalidated)
            };
            from_store(st, parts, &entry, &outcome, served)
        }
        HeadEvent::Pass {
            status,
            response,
            hop,
        } => {
            if status >= 500
                && let Some(r) = serve_stale_if_error(st, parts, stale.as_deref(), Some(status))
            {
                return r;
            }
            match response {
                Some(resp) => pass_response(st, parts, resp, Phase::Miss, hop),
                None => pass(st, parts, None, Phase::Miss).await,
            }
        }
        HeadEvent::Failed(err) => serve_stale_if_error(st, parts, stale.as_deref(), None)
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

/// The stale entry, if RFC 5861 §4 lets it answer for a failed upstream.
fn serve_stale_if_error(
    st: &AppState,
    parts: &Parts,
    stale: Option<&Entry>,
    fwd_status: Option<u16>,
) -> Option<Response> {
    let entry = stale?;
    let served = stale_if_error(&entry.head, st.now(), st.stale)?;
    let outcome = Outcome {
        ttl: Some(served.ttl),
        fwd_status,
        ..Outcome::new(Phase::StaleIfError)
    };
    Some(from_store(st, parts, entry, &outcome, served))
}
