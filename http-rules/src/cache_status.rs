//! The `Cache-Status` response field (RFC 9211): one list member per cache on the path,
//! from the origin side to the client (§2), written and read here. Its syntax is an
//! RFC 8941 structured list: a member is a token or a quoted string naming the cache,
//! then `;`-separated parameters whose values are tokens, strings, integers or booleans.

use std::fmt::{self, Write as _};

use crate::list::{members, split_outside_quotes, trim_ows, unquote};

/// How a request went forward (RFC 9211 §2.2, the `fwd` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Forward {
    /// The cache was configured not to handle the request.
    Bypass,
    /// The request method's semantics require it.
    Method,
    /// The cache had no response for the target.
    UriMiss,
    /// The stored response did not match the request's `Vary` fields.
    VaryMiss,
    /// The cache had no usable response (which of the above is unknown).
    Miss,
    /// The request's own semantics (its `Cache-Control`, say) required it.
    Request,
    /// The stored response was stale and needed validation.
    Stale,
    /// Only part of the response was stored.
    Partial,
}

impl Forward {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bypass => "bypass",
            Self::Method => "method",
            Self::UriMiss => "uri-miss",
            Self::VaryMiss => "vary-miss",
            Self::Miss => "miss",
            Self::Request => "request",
            Self::Stale => "stale",
            Self::Partial => "partial",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Self::Bypass,
            Self::Method,
            Self::UriMiss,
            Self::VaryMiss,
            Self::Miss,
            Self::Request,
            Self::Stale,
            Self::Partial,
        ]
        .into_iter()
        .find(|f| f.as_str() == s)
    }
}

/// One cache's member of `Cache-Status` (RFC 9211 §2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheStatus {
    /// The cache's identifier: a token or a string (§2).
    pub cache: String,
    /// Answered from storage without going forward (§2.1).
    pub hit: bool,
    /// Why the request went forward (§2.2).
    pub fwd: Option<Forward>,
    /// The status of the response from the next hop (§2.3).
    pub fwd_status: Option<u16>,
    /// Seconds of freshness left, negative when stale (§2.4).
    pub ttl: Option<i64>,
    /// The forwarded response was stored (§2.5).
    pub stored: bool,
    /// The forward request was collapsed with another one (§2.6).
    pub collapsed: bool,
    /// The cache key (§2.7).
    pub key: Option<String>,
    /// Implementation-specific detail (§2.8).
    pub detail: Option<String>,
}

impl CacheStatus {
    /// A member for `cache` with no parameter yet.
    pub fn new(cache: &str) -> Self {
        Self {
            cache: cache.to_owned(),
            ..Self::default()
        }
    }
}

/// `sf-token` (RFC 8941 §3.3.4): `( ALPHA / "*" ) *( tchar / ":" / "/" )`.
fn is_token(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '*')
        && chars.all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~:/".contains(c))
}

/// A token as it is, anything else as an `sf-string` (RFC 8941 §3.3.3).
fn write_item(out: &mut fmt::Formatter<'_>, s: &str, may_be_token: bool) -> fmt::Result {
    if may_be_token && is_token(s) {
        return out.write_str(s);
    }
    out.write_char('"')?;
    for c in s.chars().filter(|c| (' '..='~').contains(c)) {
        if c == '"' || c == '\\' {
            out.write_char('\\')?;
        }
        out.write_char(c)?;
    }
    out.write_char('"')
}

impl fmt::Display for CacheStatus {
    /// `name; hit` or `name; fwd=…`, then `ttl`, `fwd-status`, `stored`, `collapsed`,
    /// `key` and `detail` when set (the order Rivulet has always written).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_item(f, &self.cache, true)?;
        if self.hit {
            f.write_str("; hit")?;
        }
        if let Some(fwd) = self.fwd {
            write!(f, "; fwd={}", fwd.as_str())?;
        }
        if let Some(ttl) = self.ttl {
            write!(f, "; ttl={ttl}")?;
        }
        if let Some(status) = self.fwd_status {
            write!(f, "; fwd-status={status}")?;
        }
        if self.stored {
            f.write_str("; stored")?;
        }
        if self.collapsed {
            f.write_str("; collapsed")?;
        }
        if let Some(key) = &self.key {
            f.write_str("; key=")?;
            write_item(f, key, false)?;
        }
        if let Some(detail) = &self.detail {
            f.write_str("; detail=")?;
            write_item(f, detail, true)?;
        }
        Ok(())
    }
}

/// A parameter value (RFC 8941 §3.3): what this module reads of one.
enum Value<'a> {
    /// A bare key (`; hit`) is the boolean true.
    Bool(bool),
    Integer(i64),
    Text(std::borrow::Cow<'a, str>),
}

fn value(raw: Option<&str>) -> Option<Value<'_>> {
    let Some(raw) = raw.map(trim_ows) else {
        return Some(Value::Bool(true));
    };
    match raw {
        "?1" => Some(Value::Bool(true)),
        "?0" => Some(Value::Bool(false)),
        _ if raw.starts_with('"') => Some(Value::Text(unquote(raw))),
        _ if is_token(raw) => Some(Value::Text(raw.into())),
        // §3.3.1: at most 15 digits.
        _ => raw
            .strip_prefix('-')
            .unwrap_or(raw)
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| raw.parse().ok().map(Value::Integer))
            .flatten(),
    }
}

/// Reads every member of all `Cache-Status` field lines, in order (origin side first).
/// Lenient: a member without a name is skipped, and so is a parameter this module does
/// not know or whose value has the wrong type; quoted strings may hold `,` and `;`.
pub fn parse<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<CacheStatus> {
    members(values)
        .into_iter()
        .filter_map(|member| {
            let mut parts = split_outside_quotes(member, ';').into_iter();
            let cache = unquote(trim_ows(parts.next()?)).into_owned();
            if cache.is_empty() {
                return None;
            }
            let mut status = CacheStatus::new(&cache);
            for param in parts {
                let (key, raw) = match param.split_once('=') {
                    Some((k, v)) => (trim_ows(k), Some(v)),
                    None => (trim_ows(param), None),
                };
                match (key, value(raw)) {
                    ("hit", Some(Value::Bool(b))) => status.hit = b,
                    ("stored", Some(Value::Bool(b))) => status.stored = b,
                    ("collapsed", Some(Value::Bool(b))) => status.collapsed = b,
                    ("fwd", Some(Value::Text(t))) => status.fwd = Forward::parse(&t),
                    ("fwd-status", Some(Value::Integer(n))) => {
                        status.fwd_status = u16::try_from(n).ok();
                    }
                    ("ttl", Some(Value::Integer(n))) => status.ttl = Some(n),
                    ("key", Some(Value::Text(t))) => status.key = Some(t.into_owned()),
                    ("detail", Some(Value::Text(t))) => status.detail = Some(t.into_owned()),
                    _ => {}
                }
            }
            Some(status)
        })
        .collect()
}

/// Whether some cache on the path answered from storage (RFC 9211 §2.1): a request that
/// a parent's hit kept off the origin counts, whatever the caches nearer the client did.
pub fn any_hit<'a>(values: impl IntoIterator<Item = &'a str>) -> bool {
    parse(values).iter().any(|member| member.hit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(cache: &str, tweak: impl FnOnce(&mut CacheStatus)) -> CacheStatus {
        let mut m = CacheStatus::new(cache);
        tweak(&mut m);
        m
    }

    #[test]
    fn writes_members_rfc_9211_2() {
        let rows: Vec<(CacheStatus, &str)> = vec![
            (
                member("e1", |m| (m.hit, m.ttl) = (true, Some(42))),
                "e1; hit; ttl=42",
            ),
            (
                member("e1", |m| {
                    (m.fwd, m.fwd_status, m.stored) = (Some(Forward::Miss), Some(200), true);
                }),
                "e1; fwd=miss; fwd-status=200; stored",
            ),
            (
                member("e1", |m| {
                    (m.fwd, m.ttl, m.fwd_status) = (Some(Forward::Stale), Some(60), Some(304));
                }),
                "e1; fwd=stale; ttl=60; fwd-status=304",
            ),
            (
                member("e1", |m| {
                    (m.fwd, m.stored, m.collapsed) = (Some(Forward::Miss), true, true);
                }),
                "e1; fwd=miss; stored; collapsed",
            ),
            // §2.8: a detail is a token or, when it cannot be one, a string.
            (
                member("e1", |m| {
                    (m.hit, m.ttl, m.detail) =
                        (true, Some(-3), Some("stale-while-revalidate".into()));
                }),
                "e1; hit; ttl=-3; detail=stale-while-revalidate",
            ),
            (
                member("e1", |m| m.detail = Some("two words".into())),
                "e1; detail=\"two words\"",
            ),
            // §2: a cache identifier that is not a token is written as a string.
            (
                member("my cache \"x\"", |m| m.fwd = Some(Forward::UriMiss)),
                "\"my cache \\\"x\\\"\"; fwd=uri-miss",
            ),
            // §2.7: the key is always a string.
            (
                member("e1", |m| m.key = Some("/a?b".into())),
                "e1; key=\"/a?b\"",
            ),
        ];
        for (m, want) in rows {
            assert_eq!(m.to_string(), want);
            assert_eq!(parse([want]), [m], "{want} reads back");
        }
    }

    #[test]
    fn parses_lists_quote_aware_rfc_9211_2_and_rfc_8941() {
        let rows: Vec<(Vec<&str>, Vec<CacheStatus>)> = vec![
            (vec![""], vec![]),
            (
                vec!["origin; fwd=miss; detail=upstream-error, e2; fwd=miss; fwd-status=502"],
                vec![
                    member("origin", |m| {
                        (m.fwd, m.detail) = (Some(Forward::Miss), Some("upstream-error".into()));
                    }),
                    member("e2", |m| {
                        (m.fwd, m.fwd_status) = (Some(Forward::Miss), Some(502));
                    }),
                ],
            ),
            // §2: members of several field lines, in order.
            (
                vec!["parent; hit", "child; fwd=miss; stored"],
                vec![
                    member("parent", |m| m.hit = true),
                    member("child", |m| (m.fwd, m.stored) = (Some(Forward::Miss), true)),
                ],
            ),
            // RFC 8941 §3.3.6: `?1` and `?0` booleans.
            (vec!["e; hit=?1"], vec![member("e", |m| m.hit = true)]),
            (vec!["e; hit=?0"], vec![member("e", |_| {})]),
            // A quoted name or detail may hold `,` and `;`.
            (
                vec!["\"hit; ttl\"; fwd=miss"],
                vec![member("hit; ttl", |m| m.fwd = Some(Forward::Miss))],
            ),
            (
                vec!["x; detail=\"a, b; hit\"; fwd=miss"],
                vec![member("x", |m| {
                    (m.detail, m.fwd) = (Some("a, b; hit".into()), Some(Forward::Miss));
                })],
            ),
            // A name alone is a member with no parameter; `hit` there is a name.
            (vec!["hit"], vec![member("hit", |_| {})]),
            // Wrong types and unknown parameters are skipped, not fatal.
            (
                vec!["e; ttl=abc; fwd-status=?1; fwd=sideways; x=1; ttl=-5"],
                vec![member("e", |m| m.ttl = Some(-5))],
            ),
            (vec![" , ;hit, e"], vec![member("e", |_| {})]),
        ];
        for (lines, want) in rows {
            assert_eq!(parse(lines.iter().copied()), want, "{lines:?}");
        }
    }

    #[test]
    fn hits_anywhere_on_the_path_rfc_9211_2_1() {
        for (value, hit) in [
            ("edge-1; hit; ttl=3500", true),
            ("edge-1; fwd=miss; stored", false),
            ("edge-1; fwd=stale; fwd-status=304", false),
            ("edge-1; hit=?1", true),
            ("edge-1; hit=?0", false),
            ("parent; hit, child; fwd=miss; stored", true),
            ("origin-shield; fwd=uri-miss, edge; fwd=miss", false),
            ("\"hit; ttl\"; fwd=miss", false),
            ("x; detail=\"a, b; hit\"; fwd=miss", false),
            ("hit", false),
            ("", false),
        ] {
            assert_eq!(any_hit([value]), hit, "{value:?}");
        }
    }
}
