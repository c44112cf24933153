//! `Cache-Control` (RFC 9111 §5.2): the directives a shared cache acts on, parsed from
//! every field line, quoted strings and all.

use crate::list::{members, trim_ows, unquote};

/// Delta-seconds larger than this are clamped to it (RFC 9111 §1.2.2).
pub const DELTA_SECONDS_MAX: u64 = 1 << 31;

/// `delta-seconds` (RFC 9111 §1.2.2): digits only; a value too large for the recipient
/// becomes 2^31.
pub fn parse_delta_seconds(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        s.parse::<u64>()
            .map_or(DELTA_SECONDS_MAX, |v| v.min(DELTA_SECONDS_MAX)),
    )
}

/// The response (or request) directives a shared cache acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheControl {
    pub max_age: Option<u64>,
    pub s_maxage: Option<u64>,
    pub no_store: bool,
    pub no_cache: bool,
    pub private: bool,
    pub public: bool,
    pub must_revalidate: bool,
    pub proxy_revalidate: bool,
    /// RFC 5861 §3.
    pub stale_while_revalidate: Option<u64>,
    /// RFC 5861 §4.
    pub stale_if_error: Option<u64>,
}

impl CacheControl {
    /// Parses every `Cache-Control` field line given, as one list (RFC 9110 §5.3).
    /// Directive names are case-insensitive and arguments may be quoted (§5.2: "recipients
    /// SHOULD accept both forms"); a comma inside a quoted argument belongs to it. Unknown
    /// directives are ignored (§5.2.3). A duplicated or invalid freshness value makes the
    /// response stale (§4.2.1: "caches are encouraged to consider the response stale"),
    /// so it becomes 0.
    pub fn parse<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut cc = Self::default();
        for directive in members(values) {
            let (name, arg) = match directive.split_once('=') {
                Some((n, a)) => (trim_ows(n), Some(unquote(trim_ows(a)))),
                None => (directive, None),
            };
            let seconds = |slot: &mut Option<u64>| {
                let parsed = arg.as_deref().and_then(parse_delta_seconds);
                *slot = match (*slot, parsed) {
                    (None, Some(v)) => Some(v),
                    _ => Some(0),
                };
            };
            match name.to_ascii_lowercase().as_str() {
                "max-age" => seconds(&mut cc.max_age),
                "s-maxage" => seconds(&mut cc.s_maxage),
                "stale-while-revalidate" => seconds(&mut cc.stale_while_revalidate),
                "stale-if-error" => seconds(&mut cc.stale_if_error),
                "no-store" => cc.no_store = true,
                // The qualified forms (`no-cache="f"`, `private="f"`) are treated as
                // unqualified: the conservative reading §5.2.2.4 and §5.2.2.7 allow.
                "no-cache" => cc.no_cache = true,
                "private" => cc.private = true,
                "public" => cc.public = true,
                "must-revalidate" => cc.must_revalidate = true,
                "proxy-revalidate" => cc.proxy_revalidate = true,
                _ => {}
            }
        }
        cc
    }

    /// Whether these directives forbid serving the response stale, whatever the stale
    /// windows say: `must-revalidate` (§5.2.2.2), `proxy-revalidate` (§5.2.2.8) and
    /// `s-maxage` (§5.2.2.10) for a shared cache, and `no-cache` (§5.2.2.4), which
    /// requires validation on every use (RFC 5861 §3 and §4 defer to all of them).
    pub fn forbids_stale(&self) -> bool {
        self.must_revalidate || self.proxy_revalidate || self.s_maxage.is_some() || self.no_cache
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cc(s: &str) -> CacheControl {
        CacheControl::parse([s])
    }

    #[test]
    fn parsing_follows_rfc_9111_5_2() {
        let d = CacheControl::default;
        let rows: Vec<(&str, CacheControl)> = vec![
            ("", d()),
            (
                "max-age=60",
                CacheControl {
                    max_age: Some(60),
                    ..d()
                },
            ),
            // §5.2: directive names are case-insensitive.
            (
                "MAX-AGE=60, Public",
                CacheControl {
                    max_age: Some(60),
                    public: true,
                    ..d()
                },
            ),
            // §5.2: the quoted-string form of an argument is accepted.
            (
                "max-age=\"60\"",
                CacheControl {
                    max_age: Some(60),
                    ..d()
                },
            ),
            // §4.2.1: invalid or duplicated freshness values mean stale.
            (
                "max-age=abc",
                CacheControl {
                    max_age: Some(0),
                    ..d()
                },
            ),
            (
                "max-age=-1",
                CacheControl {
                    max_age: Some(0),
                    ..d()
                },
            ),
            (
                "max-age",
                CacheControl {
                    max_age: Some(0),
                    ..d()
                },
            ),
            (
                "max-age=10, max-age=20",
                CacheControl {
                    max_age: Some(0),
                    ..d()
                },
            ),
            // §1.2.2: too large clamps to 2^31.
            (
                "max-age=99999999999999999999",
                CacheControl {
                    max_age: Some(1 << 31),
                    ..d()
                },
            ),
            (
                "s-maxage=5,no-cache",
                CacheControl {
                    s_maxage: Some(5),
                    no_cache: true,
                    ..d()
                },
            ),
            // §5.2.2.7: a qualified private; the comma inside the quotes is not a
            // directive separator.
            (
                "private=\"set-cookie, x\", no-store",
                CacheControl {
                    private: true,
                    no_store: true,
                    ..d()
                },
            ),
            (
                "no-cache=\"a, max-age=5\", max-age=7",
                CacheControl {
                    no_cache: true,
                    max_age: Some(7),
                    ..d()
                },
            ),
            // §5.6.4: an escaped quote does not end the quoted string.
            (
                "private=\"a\\\", max-age=5\", public",
                CacheControl {
                    private: true,
                    public: true,
                    ..d()
                },
            ),
            // RFC 5861 §3, §4.
            (
                "max-age=1, stale-while-revalidate=30, stale-if-error=600",
                CacheControl {
                    max_age: Some(1),
                    stale_while_revalidate: Some(30),
                    stale_if_error: Some(600),
                    ..d()
                },
            ),
            // §5.2.3: unknown directives are ignored; §5.6.1: so are empty elements.
            (
                "must-revalidate, proxy-revalidate, unknown=1",
                CacheControl {
                    must_revalidate: true,
                    proxy_revalidate: true,
                    ..d()
                },
            ),
            (
                "must-revalidate, , proxy-revalidate, unknown=1, immutable",
                CacheControl {
                    must_revalidate: true,
                    proxy_revalidate: true,
                    ..d()
                },
            ),
        ];
        for (input, want) in rows {
            assert_eq!(cc(input), want, "{input}");
        }
        // §5.3: several field lines are one list.
        assert_eq!(
            CacheControl::parse(["max-age=5", "public"]),
            CacheControl {
                max_age: Some(5),
                public: true,
                ..d()
            }
        );
    }

    #[test]
    fn delta_seconds_rfc_9111_1_2_2() {
        let rows = [
            ("0", Some(0)),
            ("60", Some(60)),
            ("2147483648", Some(DELTA_SECONDS_MAX)),
            ("99999999999999999999999", Some(DELTA_SECONDS_MAX)),
            ("-1", None),
            ("", None),
            ("1.5", None),
            (" 1", None),
        ];
        for (input, want) in rows {
            assert_eq!(parse_delta_seconds(input), want, "{input:?}");
        }
    }

    #[test]
    fn directives_that_forbid_stale() {
        let rows = [
            ("max-age=60, stale-while-revalidate=30", false),
            ("public, stale-if-error=60", false),
            // RFC 9111 §5.2.2.2, §5.2.2.8, §5.2.2.10, §5.2.2.4.
            ("must-revalidate", true),
            ("proxy-revalidate", true),
            ("s-maxage=60", true),
            ("no-cache", true),
        ];
        for (input, want) in rows {
            assert_eq!(cc(input).forbids_stale(), want, "{input}");
        }
    }
}
