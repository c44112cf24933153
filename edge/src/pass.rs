//! Pass-through: requests and responses that go by the cache (unsafe methods,
//! responses that cannot be shared, waiters of another `Vary` variant).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use http::header::{CONNECTION, CONTENT_LENGTH};
use http::request::Parts;
use http::{HeaderValue, Method, StatusCode};
use http_body::Body as _;

use crate::cluster::Hop;
use crate::forward::{forwarded_headers, send_upstream};
use crate::key::primary_key;
use crate::phase::{Outcome, Phase};
use crate::respond::{error_response, plain, stamp};
use crate::state::AppState;
use crate::upstream::{Answer, strip_hop_by_hop};

/// Forwards a request without the cache. A successful unsafe request invalidates the
/// target (RFC 9111 §4.4).
///
/// The body is framed by what the edge forwards (RFC 9112 §6.3): the length hyper read
/// from the client's `Content-Length` (and holds the client to while streaming), else
/// chunked; a body known to be empty is not sent at all.
pub async fn pass(st: &AppState, parts: &Parts, body: Option<Body>, phase: Phase) -> Response {
    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut headers = forwarded_headers(st, parts);
    let stalled = Arc::new(AtomicBool::new(false));
    let length = body.as_ref().and_then(|b| b.size_hint().exact());
    if let Some(len) = length
        && (len > 0 || parts.headers.contains_key(CONTENT_LENGTH))
    {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    }
    let body = body.filter(|_| length != Some(0)).map(|b| {
        let limited = idle_limited(
            b.into_data_stream(),
            st.cfg.header_read_timeout,
            stalled.clone(),
        );
        reqwest::Body::wrap_stream(limited)
    });
    let m = st.membership();
    match send_upstream(st, &m, &parts.method, pq, &headers, body).await {
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

/// The client response for an upstream (or peer, over `hop`) response that is not
/// stored: its status, end-to-end headers and body as they come.
pub fn pass_response(
    st: &AppState,
    parts: &Parts,
    resp: Answer,
    phase: Phase,
    hop: Hop,
) -> Response {
    let status = resp.status();
    let mut headers = resp.headers().clone();
    strip_hop_by_hop(&mut headers);
    stamp(
        st,
        &mut headers,
        &Outcome {
            fwd_status: Some(status.as_u16()),
            ..Outcome::new(phase)
        },
    );
    let body = if parts.method == Method::HEAD {
        Body::empty()
    } else {
        let received = st.metrics.bytes_from(hop).clone();
        Body::from_stream(resp.into_stream().inspect_ok(move |c| {
            received.inc_by(c.len() as u64);
        }))
    };
    let mut out = Response::new(body);
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out
}
