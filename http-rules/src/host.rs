//! The `Host` of a request (RFC 9112 §3.2, RFC 9110 §7.2): one line, a valid
//! `uri-host [ ":" port ]` (RFC 3986 §3.2.2, §3.2.3), or the authority of an
//! absolute-form target, which takes its place (RFC 9112 §3.2.2).

use http::header::HOST;
use http::{HeaderMap, Uri, Version};

use crate::path::{sub_delim, unreserved};

/// Why a request's host is refused: a server answers 400 (RFC 9112 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("an HTTP/1.1 request needs a Host header")]
    Missing,
    #[error("more than one Host header")]
    Duplicate,
    #[error("empty Host header")]
    Empty,
    #[error("invalid Host header")]
    Invalid,
}

/// The host a request is for: the authority of an absolute-form target, else its one
/// `Host` line; `None` only for an HTTP/1.0 request without either. Refused (400):
/// an HTTP/1.1 request without `Host`, more than one `Host` line, an empty one (an
/// `http` URI has a host, RFC 9110 §4.2.1), or one that is not `uri-host[:port]` (no
/// spaces, `/`, `@`, quotes…), and an absolute-form authority that is not either.
pub fn request_host<'a>(
    version: Version,
    headers: &'a HeaderMap,
    uri: &'a Uri,
) -> Result<Option<&'a str>, HostError> {
    let mut lines = headers.get_all(HOST).iter();
    let line = lines.next();
    if lines.next().is_some() {
        return Err(HostError::Duplicate);
    }
    let field = match line {
        None if version >= Version::HTTP_11 => return Err(HostError::Missing),
        None => None,
        Some(v) => {
            let v = v.to_str().map_err(|_| HostError::Invalid)?;
            let v = v.trim_matches([' ', '\t']);
            if v.is_empty() {
                return Err(HostError::Empty);
            }
            if !valid_host(v) {
                return Err(HostError::Invalid);
            }
            Some(v)
        }
    };
    match uri.authority() {
        // §3.2.2: the target's authority replaces the Host field.
        Some(a) if valid_host(a.as_str()) => Ok(Some(a.as_str())),
        Some(_) => Err(HostError::Invalid),
        None => Ok(field),
    }
}

/// `uri-host [ ":" port ]`: an IP literal in brackets, or an IPv4 address or
/// registered name (unreserved characters, sub-delimiters, percent-encodings), then
/// an optional port of at most 5 digits not above 65535.
pub fn valid_host(s: &str) -> bool {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((literal, after)) = rest.split_once(']') else {
            return false;
        };
        if !ip_literal(literal) {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => (None, port),
                None => return false,
            },
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (Some(h), p),
            None => (Some(s), ""),
        }
    };
    let port_ok = port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u32>().map_or(port.is_empty(), |p| p <= 65_535);
    port_ok && host.is_none_or(reg_name)
}

/// `IPv6address / IPvFuture` (RFC 3986 §3.2.2), the inside of the brackets.
fn ip_literal(s: &str) -> bool {
    if let Some(future) = s.strip_prefix(['v', 'V']) {
        let Some((version, rest)) = future.split_once('.') else {
            return false;
        };
        return !version.is_empty()
            && version.bytes().all(|b| b.is_ascii_hexdigit())
            && !rest.is_empty()
            && rest
                .bytes()
                .all(|b| unreserved(b) || sub_delim(b) || b == b':');
    }
    s.parse::<std::net::Ipv6Addr>().is_ok()
}

/// `reg-name` (an IPv4 address is one too), not empty.
fn reg_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let ok = bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !ok {
                return false;
            }
            i += 3;
        } else if unreserved(b) || sub_delim(b) {
            i += 1;
        } else {
            return false;
        }
    }
    !s.is_empty()
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(hosts: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in hosts {
            h.append(
                HOST,
                HeaderValue::from_bytes(v).unwrap_or(HeaderValue::from_static("")),
            );
        }
        h
    }

    #[test]
    fn one_valid_host_rfc_9112_3_2() {
        use HostError::*;
        let origin_form: Uri = "/a".parse().unwrap_or_default();
        type Row<'a> = (Version, &'a [&'a [u8]], Result<Option<&'a str>, HostError>);
        let rows: [Row<'_>; 22] = [
            (Version::HTTP_11, &[b"example.com"], Ok(Some("example.com"))),
            (
                Version::HTTP_11,
                &[b"example.com:8080"],
                Ok(Some("example.com:8080")),
            ),
            (Version::HTTP_11, &[b" a.b "], Ok(Some("a.b"))),
            (Version::HTTP_11, &[b"10.0.0.1:80"], Ok(Some("10.0.0.1:80"))),
            (Version::HTTP_11, &[b"[::1]:8081"], Ok(Some("[::1]:8081"))),
            (Version::HTTP_11, &[b"[::1]"], Ok(Some("[::1]"))),
            (Version::HTTP_11, &[b"[v1.fe]"], Ok(Some("[v1.fe]"))),
            (
                Version::HTTP_11,
                &[b"xn--bcher-kva.example"],
                Ok(Some("xn--bcher-kva.example")),
            ),
            // RFC 3986 allows an empty port.
            (Version::HTTP_11, &[b"a:"], Ok(Some("a:"))),
            // §3.2: HTTP/1.1 needs one; HTTP/1.0 may go without.
            (Version::HTTP_11, &[], Err(Missing)),
            (Version::HTTP_10, &[], Ok(None)),
            (Version::HTTP_11, &[b"a", b"a"], Err(Duplicate)),
            (Version::HTTP_11, &[b"a", b"b"], Err(Duplicate)),
            (Version::HTTP_11, &[b""], Err(Empty)),
            (Version::HTTP_11, &[b"  "], Err(Empty)),
            (Version::HTTP_11, &[b"a b"], Err(Invalid)),
            (Version::HTTP_11, &[b"a/b"], Err(Invalid)),
            (Version::HTTP_11, &[b"user@a"], Err(Invalid)),
            (Version::HTTP_11, &[b"a\"b"], Err(Invalid)),
            (Version::HTTP_11, &[b"a:99999"], Err(Invalid)),
            (Version::HTTP_11, &[b"[::1"], Err(Invalid)),
            (Version::HTTP_11, &[b"[zz::1]"], Err(Invalid)),
        ];
        for (version, hosts, want) in rows {
            let h = headers(hosts);
            assert_eq!(request_host(version, &h, &origin_form), want, "{hosts:?}");
        }
    }

    #[test]
    fn an_absolute_form_authority_replaces_the_host_rfc_9112_3_2_2() {
        let uri: Uri = "http://target.example:81/a".parse().unwrap_or_default();
        let h = headers(&[b"other.example"]);
        assert_eq!(
            request_host(Version::HTTP_11, &h, &uri),
            Ok(Some("target.example:81"))
        );
        // The Host line is still checked (§3.2 applies to every request).
        let two = headers(&[b"a", b"b"]);
        assert_eq!(
            request_host(Version::HTTP_11, &two, &uri),
            Err(HostError::Duplicate)
        );
    }
}
