//! The client response for a cacheable head: the client's preconditions and range
//! (evaluated by [`http_rules::precondition`]), `Age`, `Cache-Status` and `Via`.

use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::header::{AGE, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, VIA};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use http_rules::not_modified::not_modified_headers;
use http_rules::precondition::{Conditions, Evaluation, evaluate};
use http_rules::range::{content_range, unsatisfied_range};

use crate::body::Payload;
use crate::fill::{FillError, Reader};
use crate::phase::{Outcome, Phase};
use crate::state::AppState;
use crate::store::Head;

/// Where a response body comes from.
#[derive(Debug)]
pub enum Src<'a> {
    /// A stored body.
    Stored(&'a Payload),
    /// A fill's body, streamed as it arrives.
    Fill(Reader),
}

/// Counts the request under its outcome and adds this node's `Cache-Status` member and
/// `Via`.
pub fn stamp(st: &AppState, headers: &mut HeaderMap, outcome: &Outcome) {
    st.metrics.request(outcome.phase);
    if let Ok(v) = HeaderValue::from_str(&outcome.cache_status(&st.name).to_string()) {
        // RFC 9211 §2: each cache appends its member; the list is read left to right
        // from the origin towards the client.
        headers.append(HeaderName::from_static("cache-status"), v);
    }
    headers.append(VIA, st.via.clone());
}

/// Builds the client response for `head`, which is `age` seconds old. Preconditions
/// and ranges apply to 200s only (RFC 9110 §13.2.1: they are ignored where the response
/// would be another status).
pub fn respond(
    st: &AppState,
    parts: &Parts,
    head: &Head,
    src: Src<'_>,
    outcome: &Outcome,
    age: u64,
) -> Response {
    let evaluation = if head.status == StatusCode::OK {
        let conditions = Conditions::from_headers(&parts.headers);
        evaluate(&parts.method, &conditions, head.validators())
    } else {
        Evaluation::Full
    };
    let mut headers = head.headers.clone();
    // The body's bytes `start..end`, end exclusive.
    let (status, start, end) = match evaluation {
        Evaluation::Full => (head.status, 0, u64::MAX),
        Evaluation::Partial(range) => {
            let len = head.content_length.unwrap_or(0);
            headers.insert(CONTENT_RANGE, content_range(&range, len));
            let (start, end) = (*range.start(), range.end() + 1);
            headers.insert(CONTENT_LENGTH, HeaderValue::from(end - start));
            (StatusCode::PARTIAL_CONTENT, start, end)
        }
        Evaluation::NotModified => {
            let mut headers = not_modified_headers(&head.headers);
            headers.insert(AGE, HeaderValue::from(age));
            stamp(st, &mut headers, outcome);
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        Evaluation::PreconditionFailed => {
            st.metrics.request(outcome.phase);
            return plain(StatusCode::PRECONDITION_FAILED, "precondition failed");
        }
        Evaluation::RangeNotSatisfiable => {
            st.metrics.request(outcome.phase);
            let mut r = plain(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable");
            let len = head.content_length.unwrap_or(0);
            r.headers_mut()
                .insert(CONTENT_RANGE, unsatisfied_range(len));
            return r;
        }
    };
    headers.insert(AGE, HeaderValue::from(age));
    stamp(st, &mut headers, outcome);
    let body = if parts.method == Method::HEAD {
        Body::empty()
    } else {
        match src {
            Src::Stored(payload) => {
                let len = payload.len();
                st.metrics
                    .bytes_from_cache
                    .inc_by(end.min(len).saturating_sub(start.min(len)));
                payload.body(start, end)
            }
            Src::Fill(reader) => Body::from_stream(reader.stream(
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

/// 502 (504 for a timeout, 503 when every upstream request slot stayed taken) with the
/// reason, for a request nothing could answer.
pub fn error_response(st: &AppState, err: FillError) -> Response {
    let status = match err {
        FillError::Timeout => StatusCode::GATEWAY_TIMEOUT,
        FillError::Busy => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_GATEWAY,
    };
    let mut r = plain(status, &err.to_string());
    if err == FillError::Busy {
        r.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    stamp(st, r.headers_mut(), &Outcome::new(Phase::Error));
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
