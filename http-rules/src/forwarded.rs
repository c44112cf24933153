//! The `Forwarded` field (RFC 7239): one element naming a hop, each value a token or,
//! when it is not one (an address with a port, an IPv6 literal, a host a client sent),
//! a quoted string, so that nothing in a value can start another pair or element.

use std::borrow::Cow;
use std::net::IpAddr;

/// `tchar` (RFC 9110 §5.6.2).
fn tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A `Forwarded` value (RFC 7239 §4): the token as it is, else [`quoted`].
pub fn value(v: &str) -> Cow<'_, str> {
    if !v.is_empty() && v.bytes().all(tchar) {
        return Cow::Borrowed(v);
    }
    Cow::Owned(quoted(v))
}

/// `v` as a quoted string (RFC 9110 §5.6.4), always: `"` and `\` escaped, anything
/// but visible ASCII and spaces dropped.
pub fn quoted(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars().filter(|c| (' '..='~').contains(c)) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A node identifier for `for=` / `by=` (RFC 7239 §6): IPv6 addresses in brackets.
pub fn node(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// One `forwarded-element`: `name=value` pairs joined by `;`, each value as [`value`]
/// or [`quoted`] wrote it.
pub fn element<'a>(pairs: impl IntoIterator<Item = (&'a str, Cow<'a, str>)>) -> String {
    pairs
        .into_iter()
        .map(|(name, v)| format!("{name}={v}"))
        .collect::<Vec<_>>()
        .join(";")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_tokens_or_quoted_strings_rfc_7239_4() {
        let rows = [
            ("example.com", "example.com"),
            ("http", "http"),
            ("10.0.0.1", "10.0.0.1"),
            // Not tokens: quoted.
            ("example.com:8080", "\"example.com:8080\""),
            ("[::1]", "\"[::1]\""),
            ("", "\"\""),
            // Nothing a client sends can close the string or start a pair.
            ("a\";for=evil", "\"a\\\";for=evil\""),
            ("a;by=x,for=y", "\"a;by=x,for=y\""),
            ("a\\b", "\"a\\\\b\""),
        ];
        for (input, want) in rows {
            assert_eq!(value(input), want, "{input:?}");
        }
    }

    #[test]
    fn elements_and_nodes_rfc_7239_6() {
        let v6: IpAddr = "::1".parse().unwrap_or(IpAddr::from([0u8; 4]));
        let v4: IpAddr = "192.0.2.60".parse().unwrap_or(IpAddr::from([0u8; 4]));
        let (n6, n4) = (node(v6), node(v4));
        assert_eq!(
            element([
                ("for", value(&n6)),
                ("by", quoted("e1").into()),
                ("proto", value("http")),
                ("host", value("edge.example:8081")),
            ]),
            "for=\"[::1]\";by=\"e1\";proto=http;host=\"edge.example:8081\""
        );
        assert_eq!(element([("for", value(&n4))]), "for=192.0.2.60");
    }
}
