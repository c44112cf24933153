//! Message framing (RFC 9112 §6): what a request's header says about its body.

use http::HeaderMap;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};

/// Whether a request announces a body with at least one byte (RFC 9112 §6.3: a request
/// has content only when it carries `Content-Length` or `Transfer-Encoding`). An
/// unreadable `Content-Length` counts as a body: whoever reads it must not guess.
pub fn request_announces_body(headers: &HeaderMap) -> bool {
    headers.contains_key(TRANSFER_ENCODING)
        || headers
            .get_all(CONTENT_LENGTH)
            .iter()
            .any(|v| v.to_str().map_or(true, |v| v.trim() != "0"))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn a_body_is_announced_by_content_length_or_transfer_encoding_rfc_9112_6_3() {
        let rows: [(&[(&str, &str)], bool); 6] = [
            (&[], false),
            (&[("content-length", "0")], false),
            (&[("content-length", "5")], true),
            (&[("transfer-encoding", "chunked")], true),
            (
                &[("content-length", "0"), ("transfer-encoding", "chunked")],
                true,
            ),
            (&[("content-length", "x")], true),
        ];
        for (fields, want) in rows {
            let mut h = HeaderMap::new();
            for (n, v) in fields {
                h.append(
                    http::HeaderName::from_static(n),
                    HeaderValue::from_static(v),
                );
            }
            assert_eq!(request_announces_body(&h), want, "{fields:?}");
        }
    }
}
