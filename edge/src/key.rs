//! Cache keys. The edge fronts one upstream, so the key is the request target
//! (path and query) with the CTA-5004 `CMCD` query parameter removed: it varies per
//! client and per request and says nothing about the representation.

use std::borrow::Cow;

use http::HeaderMap;

/// The primary cache key for a request target. Borrowed (no allocation) in the
/// common case of a query without `CMCD`.
pub fn primary_key(path_and_query: &str) -> Cow<'_, str> {
    let Some((path, query)) = path_and_query.split_once('?') else {
        return Cow::Borrowed(path_and_query);
    };
    if !query.split('&').any(is_cmcd) {
        return Cow::Borrowed(path_and_query);
    }
    let kept: Vec<&str> = query.split('&').filter(|p| !is_cmcd(p)).collect();
    if kept.is_empty() {
        Cow::Borrowed(path)
    } else {
        Cow::Owned(format!("{path}?{}", kept.join("&")))
    }
}

fn is_cmcd(param: &str) -> bool {
    param.split('=').next() == Some("CMCD")
}

/// The secondary key of a variant (RFC 9111 §4.1): the primary key plus the request's
/// values of each header named by the stored `Vary`, whitespace-normalised.
/// `\0` cannot occur in a request target, so keys never collide.
pub fn variant_key(primary: &str, vary: &[http::HeaderName], request: &HeaderMap) -> String {
    let mut key = String::with_capacity(primary.len() + 32);
    key.push_str(primary);
    for name in vary {
        key.push('\0');
        key.push_str(name.as_str());
        key.push('=');
        let mut first = true;
        for value in request.get_all(name) {
            if !first {
                key.push(',');
            }
            first = false;
            let v = String::from_utf8_lossy(value.as_bytes());
            for (i, part) in v.split(',').map(str::trim).enumerate() {
                if i > 0 {
                    key.push(',');
                }
                key.push_str(part);
            }
        }
    }
    key
}

/// Whether `key` is `primary` or one of its variants.
pub fn belongs_to(key: &str, primary: &str) -> bool {
    key.strip_prefix(primary)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('\0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderName, HeaderValue};

    #[test]
    fn primary_key_table() {
        let cases = [
            ("/a/b.m4s", "/a/b.m4s"),
            ("/a?x=1", "/a?x=1"),
            ("/a?CMCD=br%3D300", "/a"),
            ("/a?x=1&CMCD=br%3D300%2Csid%3D%22s%22&y=2", "/a?x=1&y=2"),
            ("/a?CMCDX=1", "/a?CMCDX=1"),
            ("/a?cmcd=1", "/a?cmcd=1"),
            ("/a?CMCD", "/a"),
            ("/a?", "/a?"),
        ];
        for (input, want) in cases {
            assert_eq!(primary_key(input), want, "{input}");
        }
        assert!(matches!(primary_key("/a?x=1"), Cow::Borrowed(_)));
    }

    #[test]
    fn variant_keys() {
        let vary = [HeaderName::from_static("accept-encoding")];
        let mut a = HeaderMap::new();
        a.insert("accept-encoding", HeaderValue::from_static("gzip,  br"));
        let mut b = HeaderMap::new();
        b.insert("accept-encoding", HeaderValue::from_static("gzip, br"));
        let none = HeaderMap::new();
        assert_eq!(variant_key("/x", &vary, &a), variant_key("/x", &vary, &b));
        assert_ne!(
            variant_key("/x", &vary, &a),
            variant_key("/x", &vary, &none)
        );
        assert!(belongs_to(&variant_key("/x", &vary, &a), "/x"));
        assert!(belongs_to("/x", "/x"));
        assert!(!belongs_to("/xy", "/x"));
    }
}
