//! Forwarding: the headers a request goes on with, and sending it to the owner peers
//! and then the upstreams, failing over from one to the next.

use std::net::SocketAddr;

use http::header::{
    CONNECTION, IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, IF_UNMODIFIED_SINCE, RANGE,
};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method};
use http_rules::framing::{check_response_framing, request_announces_body};
use http_rules::report::error_chain;
use tracing::{debug, warn};

use crate::cluster::{Hop, Membership, peer_failed};
use crate::fill::FillError;
use crate::state::{AppState, ClientAddr};
use crate::upstream::{Answer, EDGE_PEER, forward_headers};

/// The address of the client that sent `parts`.
fn client_addr(parts: &Parts) -> Option<SocketAddr> {
    parts.extensions.get::<ClientAddr>().map(|c| c.0)
}

/// The headers a client request is forwarded with (see [`forward_headers`]).
pub fn forwarded_headers(st: &AppState, parts: &Parts) -> HeaderMap {
    forward_headers(&parts.headers, client_addr(parts), &st.via, &st.name)
}

/// Request headers for a cache fill: the client's, forwarded, minus its own
/// conditionals and range (the fill fetches the whole representation, and adds
/// validators of the stored response itself). A fill never carries a body; when the
/// client announced one anyway, the fill also asks for a connection of its own
/// (`Connection: close`), so that whatever the upstream makes of that request, no
/// other request ever follows it on the same connection.
pub fn fill_headers(st: &AppState, parts: &Parts) -> HeaderMap {
    let mut h = forwarded_headers(st, parts);
    if request_announces_body(&parts.headers) {
        h.insert(CONNECTION, HeaderValue::from_static("close"));
    }
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

/// Sends one request to a peer or an upstream, bounded by the connect and first-byte
/// timeouts, once one of the `--max-upstream-requests` slots is free (waiting for one
/// at most as long; `Busy` then). The answer holds its slot until it is dropped.
async fn send(
    st: &AppState,
    method: Method,
    url: &str,
    headers: HeaderMap,
    body: Option<reqwest::Body>,
) -> Result<Answer, FillError> {
    let limit = st.cfg.connect_timeout + st.cfg.first_byte_timeout;
    let free = tokio::time::timeout(limit, st.upstream_slots.clone().acquire_owned()).await;
    // The semaphore is never closed: an error is a wait that ran out.
    let Ok(Ok(slot)) = free else {
        return Err(FillError::Busy);
    };
    let mut rb = st.client.request(method, url).headers(headers);
    if let Some(body) = body {
        rb = rb.body(body);
    }
    match tokio::time::timeout(limit, rb.send()).await {
        Err(_) => Err(FillError::Timeout),
        Ok(Err(e)) if e.is_timeout() => Err(FillError::Timeout),
        Ok(Err(e)) if e.is_connect() => Err(FillError::Connect),
        Ok(Err(e)) => {
            debug!(error = %error_chain(&e), "upstream request failed");
            Err(FillError::Upstream)
        }
        // RFC 9112 §6.3: a response whose length cannot be trusted is refused whole
        // (dropping it unread also drops its connection, never reused).
        Ok(Ok(r)) => match check_response_framing(r.headers()) {
            Ok(()) => Ok(Answer::new(r, slot)),
            Err(e) => {
                warn!(%url, error = %e, "refusing an upstream response");
                Err(FillError::Framing)
            }
        },
    }
}

/// Sends a request to the upstreams in failover order. The next one is tried when one
/// cannot be reached, if the request can be repeated (RFC 9110 §9.2.2: it is idempotent
/// or was never sent; a streamed body cannot be replayed). Connection failures and
/// timeouts count against the upstream's health.
pub async fn send_upstream(
    st: &AppState,
    m: &Membership,
    method: &Method,
    pq: &str,
    headers: &HeaderMap,
    mut body: Option<reqwest::Body>,
) -> Result<Answer, FillError> {
    let replayable = body.is_none();
    let mut last = FillError::Connect;
    for up in m.upstream_order() {
        st.metrics.upstream_requests.inc();
        let sent = send(
            st,
            method.clone(),
            &up.url_for(pq),
            headers.clone(),
            body.take(),
        )
        .await;
        match sent {
            Ok(r) => return Ok(r),
            // This edge's own limit, not the upstream's failure: no other upstream helps.
            Err(FillError::Busy) => return Err(FillError::Busy),
            Err(e) => {
                st.metrics.upstream_errors.inc();
                if matches!(e, FillError::Connect | FillError::Timeout) {
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

/// The GET of a cache fill of `pq` (cache key `primary`). Unless a peer sent the
/// request (`from_peer`), the peers ranked above this edge for the key come first: the
/// owner, then (if it fails before its response head: unreachable, timed out or a 5xx
/// of its own) at once the next in line, each failure counting against the peer's
/// health. The upstreams come last, so one dead peer never costs a client an error.
pub async fn fill_request(
    st: &AppState,
    pq: &str,
    primary: &str,
    from_peer: bool,
    headers: HeaderMap,
) -> Result<(Answer, Hop), FillError> {
    let m = st.membership();
    let peers = if from_peer {
        Vec::new()
    } else {
        m.peers_for(primary)
    };
    for peer in peers {
        peer.requests.inc();
        let mut h = headers.clone();
        h.insert(EDGE_PEER, st.peer_tag.clone());
        let failure = match send(st, Method::GET, &peer.url_for(pq), h, None).await {
            Ok(r) if !peer_failed(r.status(), r.headers(), &peer.name) => {
                return Ok((r, Hop::Peer));
            }
            Err(FillError::Busy) => return Err(FillError::Busy),
            Ok(r) => format!("answered {}", r.status()),
            Err(e) => e.to_string(),
        };
        st.metrics.peer_fallbacks.inc();
        warn!(peer = %peer.name, target = %pq, %failure, "peer fetch failed: asking the next in line");
        peer.observe(Some(failure), None, &m.health);
    }
    send_upstream(st, &m, &Method::GET, pq, &headers, None)
        .await
        .map(|r| (r, Hop::Upstream))
}
