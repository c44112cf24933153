//! Cache keys. The edge fronts one upstream, so the key is the request target
//! (path and query) with the CTA-5004 `CMCD` query parameter removed: it varies per
//! client and per request and says nothing about the representation.

use std::borrow::Cow;

use http::HeaderMap;
use http::header::{ACCEPT_ENCODING, ACCEPT_LANGUAGE};

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
/// values of each header named by the stored `Vary`, normalised as §4.1 allows
/// ("by adding or removing whitespace…, combining multiple header field lines…, or
/// normalizing both header field values in a way that is known to have identical
/// semantics"): whitespace around list members always, and for `Accept-Language` and
/// `Accept-Encoding` the weighted list itself ([`weighted_list`]).
/// `\0` cannot occur in a request target, so keys never collide.
pub fn variant_key(primary: &str, vary: &[http::HeaderName], request: &HeaderMap) -> String {
    let mut key = String::with_capacity(primary.len() + 32);
    key.push_str(primary);
    for name in vary {
        key.push('\0');
        key.push_str(name.as_str());
        key.push('=');
        if *name == ACCEPT_LANGUAGE || *name == ACCEPT_ENCODING {
            let values = request.get_all(name).iter().filter_map(|v| v.to_str().ok());
            key.push_str(&weighted_list(values));
            continue;
        }
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

/// A list of weighted case-insensitive tokens (`Accept-Language`, RFC 9110 §12.5.4;
/// `Accept-Encoding`, §12.5.3) in one form with the same meaning: lower case, without
/// whitespace, each member once (its first weight), weights as numbers (`q=0.50` is
/// `q=0.5`, `q=1` is no weight), sorted by weight then name, as members of equal
/// weight are equally preferred (§12.4.2). `en-US, fr;q=0.5` and `fr;q=0.50,EN-us`
/// select the same variant.
pub fn weighted_list<'a>(values: impl IntoIterator<Item = &'a str>) -> String {
    let mut members: Vec<(u16, String)> = Vec::new();
    for member in values.into_iter().flat_map(|v| v.split(',')) {
        let mut parts = member.split(';');
        let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        if name.is_empty() || members.iter().any(|(_, n)| *n == name) {
            continue;
        }
        // qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), in thousandths;
        // an invalid weight leaves the member unweighted, as the origin would likely read it.
        let weight = parts
            .filter_map(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .or_else(|| p.trim().strip_prefix("Q="))
            })
            .find_map(qvalue)
            .unwrap_or(1000);
        members.push((weight, name));
    }
    members.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    members
        .iter()
        .map(|(w, n)| match w {
            1000 => n.clone(),
            0 => format!("{n};q=0"),
            w => format!("{n};q=0.{}", format!("{w:03}").trim_end_matches('0')),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A `qvalue` (RFC 9110 §12.4.2) in thousandths.
fn qvalue(s: &str) -> Option<u16> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac: u16 = format!("{frac:0<3}").parse().ok()?;
    match int {
        "0" => Some(frac),
        "1" if frac == 0 => Some(1000),
        _ => None,
    }
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
    fn weighted_lists_rfc_9110_12_4_2() {
        let rows: [(&[&str], &str); 9] = [
            (&["en-US, fr;q=0.5"], "en-us,fr;q=0.5"),
            (&["fr;q=0.50,EN-us"], "en-us,fr;q=0.5"),
            (&["fr;q=0.5", "en-us"], "en-us,fr;q=0.5"),
            // Equal weights are equally preferred: one order.
            (&["fr, en"], "en,fr"),
            (
                &["en;q=1.000, de;q=0.9, fr;Q=0.900"],
                "en,de;q=0.9,fr;q=0.9",
            ),
            // Repeated members keep their first weight; q=0 stays (not acceptable).
            (&["en;q=0.2, en, *;q=0"], "en;q=0.2,*;q=0"),
            (&["gzip, br;q=0.125"], "gzip,br;q=0.125"),
            // Invalid weights leave the member unweighted; empty members go.
            (&["en;q=2, , fr;q=0.1234"], "en,fr"),
            (&[], ""),
        ];
        for (values, want) in rows {
            assert_eq!(weighted_list(values.iter().copied()), want, "{values:?}");
        }
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
