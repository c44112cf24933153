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

/// The directives a cache follows for one response, and where they came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub cc: CacheControl,
    /// From a targeted field (RFC 9213): `Cache-Control` and `Expires` are ignored.
    pub targeted: bool,
}

/// The field every CDN cache targets (RFC 9213 §3).
pub const CDN_CACHE_CONTROL: http::HeaderName = http::HeaderName::from_static("cdn-cache-control");

/// The `Age` of a response (RFC 9111 §5.1): the first member when a list was sent
/// ("a cache SHOULD use the first member"), `None` when that is not delta-seconds (the
/// field is then ignored).
pub fn age_value(headers: &http::HeaderMap) -> Option<u64> {
    let first = headers.get(http::header::AGE)?.to_str().ok()?;
    parse_delta_seconds(trim_ows(first.split(',').next().unwrap_or("")))
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
    /// §5.2.2.3: store only if the cache implements the status code's caching rules.
    pub must_understand: bool,
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
                "must-understand" => cc.must_understand = true,
                _ => {}
            }
        }
        cc
    }

    /// Parses a targeted cache-control field (RFC 9213 §2.1), every line given: an RFC
    /// 8941 Dictionary of the same directives. `None` when it is empty or does not parse
    /// as a Dictionary: the cache then behaves as if it were absent (§2.1). A value of
    /// the wrong type (a decimal `max-age`, a `no-store=?0`) is not consumed (§2.1):
    /// the directive is ignored. Parameters are ignored.
    pub fn parse_targeted<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        let joined = values.into_iter().collect::<Vec<_>>().join(", ");
        if trim_ows(&joined).is_empty() {
            return None;
        }
        let dict = sfv::Parser::parse_dictionary(joined.as_bytes()).ok()?;
        if dict.is_empty() {
            return None;
        }
        let mut cc = Self::default();
        for (key, entry) in &dict {
            let item = match entry {
                sfv::ListEntry::Item(item) => Some(&item.bare_item),
                // An inner list (`private=("a" "b")`): present, qualified.
                sfv::ListEntry::InnerList(_) => None,
            };
            let seconds = item
                .and_then(sfv::BareItem::as_int)
                .and_then(|v| u64::try_from(v).ok())
                .map(|v| v.min(DELTA_SECONDS_MAX));
            // A flag is a bare key (`true`), a qualified form (a string or inner list,
            // read as unqualified as above), never `?0`.
            let flag = !matches!(item, Some(sfv::BareItem::Boolean(false)))
                && !matches!(
                    item,
                    Some(sfv::BareItem::Integer(_) | sfv::BareItem::Decimal(_))
                );
            match key.as_str() {
                "max-age" => cc.max_age = seconds.or(cc.max_age),
                "s-maxage" => cc.s_maxage = seconds.or(cc.s_maxage),
                "stale-while-revalidate" => {
                    cc.stale_while_revalidate = seconds.or(cc.stale_while_revalidate);
                }
                "stale-if-error" => cc.stale_if_error = seconds.or(cc.stale_if_error),
                "no-store" => cc.no_store |= flag,
                "no-cache" => cc.no_cache |= flag,
                "private" => cc.private |= flag,
                "public" => cc.public |= flag,
                "must-revalidate" => cc.must_revalidate |= flag,
                "proxy-revalidate" => cc.proxy_revalidate |= flag,
                "must-understand" => cc.must_understand |= flag,
                _ => {}
            }
        }
        Some(cc)
    }

    /// The directives a cache follows for a response (RFC 9213 §2.2): the first
    /// targeted field of `targets` (in priority order) with a valid, non-empty value,
    /// else `Cache-Control`. `targeted` tells which: a targeted field also overrides
    /// `Expires`.
    pub fn for_cache(headers: &http::HeaderMap, targets: &[http::HeaderName]) -> Policy {
        let lines = |name| {
            headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect::<Vec<_>>()
        };
        for name in targets {
            if let Some(cc) = Self::parse_targeted(lines(name)) {
                return Policy { cc, targeted: true };
            }
        }
        Policy {
            cc: Self::parse(lines(&http::header::CACHE_CONTROL)),
            targeted: false,
        }
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
    fn must_understand_rfc_9111_5_2_2_3() {
        assert_eq!(
            cc("must-understand, no-store"),
            CacheControl {
                must_understand: true,
                no_store: true,
                ..CacheControl::default()
            }
        );
    }

    #[test]
    fn targeted_fields_are_dictionaries_rfc_9213_2_1() {
        let d = CacheControl::default;
        let rows: Vec<(&str, Option<CacheControl>)> = vec![
            (
                "max-age=60",
                Some(CacheControl {
                    max_age: Some(60),
                    ..d()
                }),
            ),
            (
                "max-age=600, s-maxage=60, must-revalidate",
                Some(CacheControl {
                    max_age: Some(600),
                    s_maxage: Some(60),
                    must_revalidate: true,
                    ..d()
                }),
            ),
            (
                "no-store",
                Some(CacheControl {
                    no_store: true,
                    ..d()
                }),
            ),
            (
                "private, no-cache",
                Some(CacheControl {
                    private: true,
                    no_cache: true,
                    ..d()
                }),
            ),
            // Qualified forms are read as unqualified; parameters are ignored.
            (
                "no-cache=\"set-cookie\", private=(\"a\" \"b\"), max-age=5;x=1",
                Some(CacheControl {
                    no_cache: true,
                    private: true,
                    max_age: Some(5),
                    ..d()
                }),
            ),
            // §2.1: values of the wrong type are not consumed.
            ("max-age=1.5, no-store=?0", Some(d())),
            ("max-age=-1", Some(d())),
            // `none` is a valid, non-empty field that says nothing: it still overrides
            // Cache-Control (§3.1's example).
            ("none", Some(d())),
            // Empty or not a Dictionary: ignored (§2.1), Cache-Control applies.
            ("", None),
            ("  ", None),
            ("Max-Age=60", None),
            ("max-age=60,", None),
            ("max-age=\"60", None),
        ];
        for (input, want) in rows {
            assert_eq!(CacheControl::parse_targeted([input]), want, "{input:?}");
        }
    }

    #[test]
    fn the_first_valid_targeted_field_wins_rfc_9213_2_2() {
        use http::{HeaderMap, HeaderName, HeaderValue};
        let mine = HeaderName::from_static("rivulet-cdn-cache-control");
        let targets = [mine.clone(), CDN_CACHE_CONTROL];
        let policy = |fields: &[(&str, &str)]| {
            let mut h = HeaderMap::new();
            for (n, v) in fields {
                h.append(
                    HeaderName::from_bytes(n.as_bytes()).unwrap_or(mine.clone()),
                    HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static("")),
                );
            }
            let p = CacheControl::for_cache(&h, &targets);
            (p.cc.max_age, p.targeted)
        };
        let cc_only = [("cache-control", "max-age=10")];
        assert_eq!(policy(&cc_only), (Some(10), false));
        let cdn = [
            ("cache-control", "max-age=10"),
            ("cdn-cache-control", "max-age=20"),
        ];
        assert_eq!(policy(&cdn), (Some(20), true));
        let both = [
            ("cache-control", "max-age=10"),
            ("cdn-cache-control", "max-age=20"),
            ("rivulet-cdn-cache-control", "max-age=30"),
        ];
        assert_eq!(policy(&both), (Some(30), true));
        // An invalid field is skipped for the next one.
        let broken = [
            ("cache-control", "max-age=10"),
            ("cdn-cache-control", "max-age=20"),
            ("rivulet-cdn-cache-control", "Max-Age=30"),
        ];
        assert_eq!(policy(&broken), (Some(20), true));
        let all_broken = [("cache-control", "max-age=10"), ("cdn-cache-control", "")];
        assert_eq!(policy(&all_broken), (Some(10), false));
    }

    #[test]
    fn age_uses_the_first_member_rfc_9111_5_1() {
        use http::{HeaderMap, HeaderValue};
        let rows: [(&[&str], Option<u64>); 6] = [
            (&["5"], Some(5)),
            (&["5, 10"], Some(5)),
            (&["5", "10"], Some(5)),
            (&[" 7 "], Some(7)),
            (&["x, 5"], None),
            (&[], None),
        ];
        for (lines, want) in rows {
            let mut h = HeaderMap::new();
            for l in lines {
                h.append(http::header::AGE, HeaderValue::from_static(l));
            }
            assert_eq!(age_value(&h), want, "{lines:?}");
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
