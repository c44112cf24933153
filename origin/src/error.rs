//! The one error every route answers with: a status and a one-line reason, sent as short
//! `text/plain` that caches do not store.

use std::borrow::Cow;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

/// `Allow` for every route (RFC 9110 §10.2.1): OPTIONS requests are answered by the CORS
/// layer, other methods than these get 405.
pub const ALLOWED_METHODS: &str = "GET, HEAD, OPTIONS";

/// Why a request cannot be answered with the representation it asks for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    /// A path component that may not name a library file (see [`crate::paths`]).
    #[error("invalid path component")]
    InvalidPath,
    #[error("path component too long")]
    PathTooLong,
    /// A request no route can take (its `Host`, its target); the reason says why.
    #[error("{0}")]
    BadRequest(Cow<'static, str>),
    /// Nothing there; the reason says what was missing.
    #[error("{0}")]
    NotFound(Cow<'static, str>),
    /// A file the library links to from outside it (RFC 9110 §15.5.4): never served.
    #[error("forbidden: the file is outside the library")]
    OutsideLibrary,
    /// A live segment still being "produced": it will exist within a segment duration.
    #[error("segment not yet available")]
    NotYetAvailable,
    #[error("method not allowed: use GET, HEAD or OPTIONS")]
    MethodNotAllowed,
    /// RFC 9110 §13.1.1, §13.1.4.
    #[error("precondition failed")]
    PreconditionFailed,
    /// RFC 9110 §15.5.17, for a representation of `complete_length` bytes.
    #[error("range not satisfiable")]
    RangeNotSatisfiable { complete_length: u64 },
    /// Not there yet, but soon (an asset being prepared): 503 with `Retry-After` in
    /// seconds (RFC 9110 §15.6.4, §10.2.3).
    #[error("{reason}")]
    Unavailable { reason: String, retry_after: u32 },
    /// The handler did not finish in time.
    #[error("request timed out")]
    Timeout,
    /// Our fault; the details went to the log, the reason says what failed.
    #[error("{0}")]
    Internal(&'static str),
}

impl OriginError {
    /// A 404 saying what is missing.
    pub fn not_found(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::NotFound(reason.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidPath | Self::PathTooLong | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) | Self::NotYetAvailable => StatusCode::NOT_FOUND,
            Self::OutsideLibrary => StatusCode::FORBIDDEN,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::Timeout => StatusCode::REQUEST_TIMEOUT,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// How long caches may keep the answer. Errors are not stored (a 404 for a segment may
    /// become a 200 a moment later), except a live segment not yet there, cached for a
    /// second so that a crowd polling an edge for it does not reach the origin each time.
    fn cache_control(&self) -> HeaderValue {
        match self {
            Self::NotYetAvailable => HeaderValue::from_static("public, max-age=1"),
            _ => HeaderValue::from_static("no-store"),
        }
    }
}

impl IntoResponse for OriginError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status(),
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                ),
                (header::CACHE_CONTROL, self.cache_control()),
            ],
            format!("{self}\n"),
        )
            .into_response();
        let headers = response.headers_mut();
        match self {
            Self::MethodNotAllowed => {
                headers.insert(header::ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
            }
            Self::Unavailable { retry_after, .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            }
            Self::RangeNotSatisfiable { complete_length } => {
                // §14.4: `bytes */complete-length` says how long the representation is.
                headers.insert(
                    header::CONTENT_RANGE,
                    http_rules::range::unsatisfied_range(complete_length),
                );
                headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_error_is_one_plain_line_with_its_status_and_fields() {
        // (error, status, body, cache-control, extra field)
        type Row = (
            OriginError,
            u16,
            &'static str,
            &'static str,
            Option<(&'static str, &'static str)>,
        );
        let rows: Vec<Row> = vec![
            (
                OriginError::BadRequest("more than one Host header".into()),
                400,
                "more than one Host header",
                "no-store",
                None,
            ),
            (
                OriginError::InvalidPath,
                400,
                "invalid path component",
                "no-store",
                None,
            ),
            (
                OriginError::PathTooLong,
                400,
                "path component too long",
                "no-store",
                None,
            ),
            (
                OriginError::not_found("no such rendition"),
                404,
                "no such rendition",
                "no-store",
                None,
            ),
            (
                OriginError::OutsideLibrary,
                403,
                "forbidden: the file is outside the library",
                "no-store",
                None,
            ),
            (
                OriginError::NotYetAvailable,
                404,
                "segment not yet available",
                "public, max-age=1",
                None,
            ),
            (
                OriginError::MethodNotAllowed,
                405,
                "method not allowed: use GET, HEAD or OPTIONS",
                "no-store",
                Some(("allow", ALLOWED_METHODS)),
            ),
            (
                OriginError::PreconditionFailed,
                412,
                "precondition failed",
                "no-store",
                None,
            ),
            (
                OriginError::RangeNotSatisfiable {
                    complete_length: 300,
                },
                416,
                "range not satisfiable",
                "no-store",
                Some(("content-range", "bytes */300")),
            ),
            (
                OriginError::Unavailable {
                    reason: "film is being prepared: encoding 42 %".into(),
                    retry_after: 5,
                },
                503,
                "film is being prepared: encoding 42 %",
                "no-store",
                Some(("retry-after", "5")),
            ),
            (
                OriginError::Timeout,
                408,
                "request timed out",
                "no-store",
                None,
            ),
            (
                OriginError::Internal("cannot read file"),
                500,
                "cannot read file",
                "no-store",
                None,
            ),
        ];
        for (error, status, reason, cache, extra) in rows {
            let response = error.clone().into_response();
            assert_eq!(response.status().as_u16(), status, "{error:?}");
            let h = response.headers();
            assert_eq!(h["content-type"], "text/plain; charset=utf-8");
            assert_eq!(h["cache-control"], cache, "{error:?}");
            if let Some((name, value)) = extra {
                assert_eq!(h[name], value, "{error:?}");
            }
            assert_eq!(error.to_string(), reason);
            assert!(!reason.contains('\n'));
        }
    }
}
