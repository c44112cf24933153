//! What every request must be before it is routed: one valid `Host` (RFC 9112 §3.2)
//! and a target with a normal form (RFC 3986 §6.2.2) naming no segment with an
//! encoded `/` or NUL, the rules of [`http_rules::host`] and [`http_rules::path`] that
//! the edge applies too (the query is left to the routes). Routing then happens on the normal form, so an alias such as
//! `/vod/%73ample/…` or `/vod/x/../sample/…` is served as what it means
//! (`/vod/sample/…`), exactly as the edge keys and forwards it, and `a%2Findex.m3u8`
//! is refused instead of being decoded into two path components.

use std::borrow::Cow;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_rules::host::request_host;
use http_rules::path::{normalize, segments};

use crate::error::OriginError;

/// The middleware: 400 with the reason, else the request with its target in normal
/// form.
pub async fn normal_request(request: Request, next: Next) -> Response {
    match normal_target(request) {
        Ok(request) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

fn normal_target(request: Request) -> Result<Request, OriginError> {
    let bad = |e: &dyn std::fmt::Display| OriginError::BadRequest(e.to_string().into());
    let (mut parts, body) = request.into_parts();
    request_host(parts.version, &parts.headers, &parts.uri).map_err(|e| bad(&e))?;
    // The path is what names files; the query is left as it came, for the routes that
    // read it leniently (a steering request never fails on an odd query value).
    let path = parts.uri.path();
    let normal = normalize(path).map_err(|e| bad(&e))?;
    segments(&normal).map_err(|e| bad(&e))?;
    // An absolute-form target (RFC 9112 §3.2.2) is routed by its path as well.
    if matches!(normal, Cow::Owned(_)) || parts.uri.authority().is_some() {
        let target = match parts.uri.query() {
            Some(query) => format!("{normal}?{query}"),
            None => normal.into_owned(),
        };
        parts.uri = target
            .parse()
            .map_err(|_| OriginError::BadRequest("the request target must be a path".into()))?;
    }
    Ok(Request::from_parts(parts, body))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use axum::body::Body;
    use http::{HeaderValue, Version, header::HOST};

    use super::*;

    fn request(target: &str, hosts: &[&str]) -> Request {
        let mut r = Request::builder()
            .uri(target)
            .version(Version::HTTP_11)
            .body(Body::empty())
            .unwrap();
        for h in hosts {
            r.headers_mut()
                .append(HOST, HeaderValue::from_str(h).unwrap());
        }
        r
    }

    #[test]
    fn one_normal_target_and_host_or_400() {
        let rows: [(&str, &[&str], Result<&str, &str>); 12] = [
            (
                "/vod/sample/master.m3u8",
                &["a"],
                Ok("/vod/sample/master.m3u8"),
            ),
            // RFC 3986 §6.2.2: served as the normal form, like the edge forwards it.
            (
                "/vod/%73ample/master.m3u8",
                &["a"],
                Ok("/vod/sample/master.m3u8"),
            ),
            (
                "/vod/x/../sample/./720p/1.m4s?a=%7e",
                &["a"],
                Ok("/vod/sample/720p/1.m4s?a=%7e"),
            ),
            // The query is the routes' to read (leniently).
            ("/steering/hls?x=%ZZ", &["a"], Ok("/steering/hls?x=%ZZ")),
            ("http://a:80/healthz", &["a"], Ok("/healthz")),
            // An encoded separator is data, never a path component.
            (
                "/vod/sample/a%2findex.m3u8",
                &["a"],
                Err("an encoded / or NUL in a path segment"),
            ),
            (
                "/vod/sample%00/x",
                &["a"],
                Err("an encoded / or NUL in a path segment"),
            ),
            (
                "/../etc/passwd",
                &["a"],
                Err("the path climbs above the root"),
            ),
            (
                "/a%zz",
                &["a"],
                Err("invalid percent-encoding in the request target"),
            ),
            // RFC 9112 §3.2.
            (
                "/healthz",
                &[],
                Err("an HTTP/1.1 request needs a Host header"),
            ),
            ("/healthz", &["a", "b"], Err("more than one Host header")),
            ("/healthz", &["a b"], Err("invalid Host header")),
        ];
        for (target, hosts, want) in rows {
            let got = normal_target(request(target, hosts));
            match (got, want) {
                (Ok(r), Ok(path)) => assert_eq!(r.uri().to_string(), path, "{target}"),
                (Err(e), Err(reason)) => {
                    assert_eq!(e.status(), 400, "{target}");
                    assert_eq!(e.to_string(), reason, "{target}");
                }
                (got, _) => panic!("{target} {hosts:?}: {got:?}"),
            }
        }
    }
}
