//! Message framing (RFC 9112 §6): what a request's header says about its body.

use http::HeaderMap;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};

/// Why a received response's framing cannot be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// RFC 9112 §6.3 ¶3: "ought to be handled as an error"; an intermediary that
    /// forwards it anyway must drop the Content-Length first.
    #[error("both Content-Length and Transfer-Encoding")]
    LengthAndEncoding,
    /// RFC 9112 §6.3 ¶5: several differing or invalid values are unrecoverable.
    #[error("invalid Content-Length")]
    InvalidLength,
}

/// Checks the framing fields of a response (RFC 9112 §6.3). A response that carries
/// both `Content-Length` and `Transfer-Encoding` may be an attempt at response
/// splitting: Rivulet refuses it rather than guess which one the sender meant, as
/// nginx and Varnish do. `Content-Length` must be one number (a list of one number
/// repeated is that number, §8.6).
pub fn check_response_framing(headers: &HeaderMap) -> Result<(), FramingError> {
    let lengths = headers.get_all(CONTENT_LENGTH);
    if lengths.iter().next().is_none() {
        return Ok(());
    }
    if headers.contains_key(TRANSFER_ENCODING) {
        return Err(FramingError::LengthAndEncoding);
    }
    let mut value: Option<u64> = None;
    for line in lengths {
        for member in line
            .to_str()
            .map_err(|_| FramingError::InvalidLength)?
            .split(',')
        {
            let member = member.trim_matches([' ', '\t']);
            if member.is_empty() || !member.bytes().all(|b| b.is_ascii_digit()) {
                return Err(FramingError::InvalidLength);
            }
            let n = member.parse().map_err(|_| FramingError::InvalidLength)?;
            if value.is_some_and(|v| v != n) {
                return Err(FramingError::InvalidLength);
            }
            value = Some(n);
        }
    }
    Ok(())
}

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

    fn headers(fields: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in fields {
            h.append(
                http::HeaderName::from_static(n),
                HeaderValue::from_static(v),
            );
        }
        h
    }

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
            let h = headers(fields);
            assert_eq!(request_announces_body(&h), want, "{fields:?}");
        }
    }

    #[test]
    fn response_framing_rfc_9112_6_3() {
        use FramingError::*;
        type Row<'a> = (&'a [(&'a str, &'a str)], Result<(), FramingError>);
        let rows: [Row<'_>; 9] = [
            (&[], Ok(())),
            (&[("content-length", "10")], Ok(())),
            (&[("transfer-encoding", "chunked")], Ok(())),
            // ¶3: both is an error for Rivulet (the issue-14 defect 4 shape).
            (
                &[("content-length", "100"), ("transfer-encoding", "chunked")],
                Err(LengthAndEncoding),
            ),
            // §8.6: a list of one repeated value is that value.
            (&[("content-length", "5, 5")], Ok(())),
            (&[("content-length", "5"), ("content-length", "5")], Ok(())),
            (
                &[("content-length", "5"), ("content-length", "7")],
                Err(InvalidLength),
            ),
            (&[("content-length", "-1")], Err(InvalidLength)),
            (&[("content-length", "")], Err(InvalidLength)),
        ];
        for (fields, want) in rows {
            let h = headers(fields);
            assert_eq!(check_response_framing(&h), want, "{fields:?}");
        }
    }
}
