//! Pure evaluation of client preconditions (RFC 9110 §13) and byte ranges (§14)
//! against a stored or arriving response.

use crate::policy::parse_http_date;

/// The client's conditional request header values, as received.
#[derive(Debug, Clone, Copy, Default)]
pub struct Conditionals<'a> {
    pub if_match: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
    pub if_modified_since: Option<&'a str>,
    pub if_unmodified_since: Option<&'a str>,
    pub if_range: Option<&'a str>,
}

/// The validators of the selected representation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Validators<'a> {
    pub etag: Option<&'a str>,
    pub last_modified: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    Proceed,
    NotModified,
    Failed,
}

/// Opaque tag and weakness of an entity-tag (§8.8.3); `None` if malformed.
fn entity_tag(s: &str) -> Option<(bool, &str)> {
    let s = s.trim();
    let (weak, rest) = s.strip_prefix("W/").map_or((false, s), |r| (true, r));
    (rest.len() >= 2 && rest.starts_with('"') && rest.ends_with('"')).then_some((weak, rest))
}

/// Does the list (`*` or entity-tags) match `etag`? Weak comparison unless `strong` (§8.8.3.2).
fn etag_list_matches(list: &str, etag: Option<&str>, strong: bool) -> bool {
    if list.trim() == "*" {
        return etag.is_some();
    }
    let Some((etag_weak, etag_opaque)) = etag.and_then(entity_tag) else {
        return false;
    };
    list.split(',')
        .filter_map(entity_tag)
        .any(|(weak, opaque)| opaque == etag_opaque && !(strong && (weak || etag_weak)))
}

/// Evaluates preconditions in the order of RFC 9110 §13.2.2 for a GET or HEAD of a
/// 2xx representation. (Range/If-Range is handled by [`evaluate_range`].)
pub fn evaluate_preconditions(c: &Conditionals<'_>, v: &Validators<'_>) -> Precondition {
    if let Some(im) = c.if_match {
        if !etag_list_matches(im, v.etag, true) {
            return Precondition::Failed;
        }
    } else if let Some(ius) = c.if_unmodified_since.and_then(parse_http_date)
        && v.last_modified.is_none_or(|lm| lm > ius)
    {
        return Precondition::Failed;
    }
    if let Some(inm) = c.if_none_match {
        if etag_list_matches(inm, v.etag, false) {
            return Precondition::NotModified;
        }
    } else if let Some(ims) = c.if_modified_since.and_then(parse_http_date)
        && v.last_modified.is_some_and(|lm| lm <= ims)
    {
        return Precondition::NotModified;
    }
    Precondition::Proceed
}

/// Whether `If-Range` lets the Range apply (§13.1.5): a strong ETag match or an exact
/// `Last-Modified` date match. Absent means yes.
pub fn if_range_allows(if_range: Option<&str>, v: &Validators<'_>) -> bool {
    match if_range.map(str::trim) {
        None => true,
        Some(ir) if ir.starts_with('"') || ir.starts_with("W/") => {
            entity_tag(ir).is_some_and(|(weak, _)| !weak) && etag_list_matches(ir, v.etag, true)
        }
        Some(ir) => parse_http_date(ir).is_some_and(|d| v.last_modified == Some(d)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeOutcome {
    /// Serve the whole representation (no range, an unsupported unit, a malformed
    /// header, or several ranges: §14.2 lets a server ignore Range).
    Full,
    /// Serve bytes `start..=end` with 206.
    Partial { start: u64, end: u64 },
    /// 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// Evaluates a `Range` header against a representation of `len` bytes (§14.1.2, §14.2).
/// Numbers too large for u64 saturate, so absurd ranges become unsatisfiable, never a panic.
pub fn evaluate_range(range: &str, len: u64) -> RangeOutcome {
    let Some((unit, set)) = range.split_once('=') else {
        return RangeOutcome::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || set.contains(',') {
        return RangeOutcome::Full;
    }
    let Some((first, last)) = set.trim().split_once('-') else {
        return RangeOutcome::Full;
    };
    let number = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().unwrap_or(u64::MAX))
    };
    match (
        number(first.trim()),
        number(last.trim()),
        last.trim().is_empty(),
    ) {
        // suffix-range: the last N bytes
        (None, Some(n), _) if first.trim().is_empty() => {
            if n == 0 || len == 0 {
                RangeOutcome::Unsatisfiable
            } else {
                RangeOutcome::Partial {
                    start: len.saturating_sub(n),
                    end: len - 1,
                }
            }
        }
        (Some(start), None, true) => partial(start, u64::MAX, len),
        (Some(start), Some(end), _) if end >= start => partial(start, end, len),
        _ => RangeOutcome::Full,
    }
}

fn partial(start: u64, end: u64, len: u64) -> RangeOutcome {
    if start >= len {
        RangeOutcome::Unsatisfiable
    } else {
        RangeOutcome::Partial {
            start,
            end: end.min(len - 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LM: u64 = 784_111_777; // Sun, 06 Nov 1994 08:49:37 GMT
    const LM_S: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
    const EARLIER: &str = "Sun, 06 Nov 1994 08:49:36 GMT";
    const LATER: &str = "Sun, 06 Nov 1994 08:49:38 GMT";

    #[test]
    fn preconditions_table() {
        use Precondition::*;
        let v = Validators {
            etag: Some("\"abc\""),
            last_modified: Some(LM),
        };
        let weak = Validators {
            etag: Some("W/\"abc\""),
            last_modified: Some(LM),
        };
        let none = Validators::default();
        let c = Conditionals::default;
        let cases: &[(Conditionals<'_>, Validators<'_>, Precondition)] = &[
            (c(), v, Proceed),
            (
                Conditionals {
                    if_none_match: Some("\"abc\""),
                    ..c()
                },
                v,
                NotModified,
            ),
            (
                Conditionals {
                    if_none_match: Some("\"x\", \"abc\""),
                    ..c()
                },
                v,
                NotModified,
            ),
            (
                Conditionals {
                    if_none_match: Some("W/\"abc\""),
                    ..c()
                },
                v,
                NotModified,
            ),
            (
                Conditionals {
                    if_none_match: Some("\"abc\""),
                    ..c()
                },
                weak,
                NotModified,
            ),
            (
                Conditionals {
                    if_none_match: Some("*"),
                    ..c()
                },
                v,
                NotModified,
            ),
            (
                Conditionals {
                    if_none_match: Some("\"zzz\""),
                    ..c()
                },
                v,
                Proceed,
            ),
            (
                Conditionals {
                    if_none_match: Some("garbage"),
                    ..c()
                },
                v,
                Proceed,
            ),
            (
                Conditionals {
                    if_none_match: Some("\"abc\""),
                    ..c()
                },
                none,
                Proceed,
            ),
            (
                Conditionals {
                    if_modified_since: Some(LM_S),
                    ..c()
                },
                v,
                NotModified,
            ),
            (
                Conditionals {
                    if_modified_since: Some(LATER),
                    ..c()
                },
                v,
                NotModified,
            ),
            (
                Conditionals {
                    if_modified_since: Some(EARLIER),
                    ..c()
                },
                v,
                Proceed,
            ),
            (
                Conditionals {
                    if_modified_since: Some("not a date"),
                    ..c()
                },
                v,
                Proceed,
            ),
            (
                Conditionals {
                    if_modified_since: Some(LM_S),
                    ..c()
                },
                none,
                Proceed,
            ),
            // §13.2.2: If-None-Match takes precedence over If-Modified-Since.
            (
                Conditionals {
                    if_none_match: Some("\"zzz\""),
                    if_modified_since: Some(LATER),
                    ..c()
                },
                v,
                Proceed,
            ),
            (
                Conditionals {
                    if_match: Some("\"abc\""),
                    ..c()
                },
                v,
                Proceed,
            ),
            (
                Conditionals {
                    if_match: Some("\"abc\""),
                    ..c()
                },
                weak,
                Failed,
            ),
            (
                Conditionals {
                    if_match: Some("\"zzz\""),
                    ..c()
                },
                v,
                Failed,
            ),
            (
                Conditionals {
                    if_match: Some("*"),
                    ..c()
                },
                none,
                Failed,
            ),
            (
                Conditionals {
                    if_unmodified_since: Some(EARLIER),
                    ..c()
                },
                v,
                Failed,
            ),
            (
                Conditionals {
                    if_unmodified_since: Some(LM_S),
                    ..c()
                },
                v,
                Proceed,
            ),
            (
                Conditionals {
                    if_match: Some("\"abc\""),
                    if_none_match: Some("\"abc\""),
                    ..c()
                },
                v,
                NotModified,
            ),
        ];
        for (i, (cond, val, want)) in cases.iter().enumerate() {
            assert_eq!(
                evaluate_preconditions(cond, val),
                *want,
                "case {i}: {cond:?} {val:?}"
            );
        }
    }

    #[test]
    fn if_range_table() {
        let v = Validators {
            etag: Some("\"abc\""),
            last_modified: Some(LM),
        };
        let weak = Validators {
            etag: Some("W/\"abc\""),
            last_modified: Some(LM),
        };
        let cases: &[(Option<&str>, Validators<'_>, bool)] = &[
            (None, v, true),
            (Some("\"abc\""), v, true),
            (Some("\"abd\""), v, false),
            (Some("W/\"abc\""), v, false),
            (Some("\"abc\""), weak, false),
            (Some(LM_S), v, true),
            (Some(LATER), v, false),
            (Some("nonsense"), v, false),
        ];
        for (ir, val, want) in cases {
            assert_eq!(if_range_allows(*ir, val), *want, "{ir:?} {val:?}");
        }
    }

    #[test]
    fn range_table() {
        use RangeOutcome::*;
        let cases: &[(&str, u64, RangeOutcome)] = &[
            ("bytes=0-99", 1000, Partial { start: 0, end: 99 }),
            (
                "bytes=500-",
                1000,
                Partial {
                    start: 500,
                    end: 999,
                },
            ),
            (
                "bytes=-100",
                1000,
                Partial {
                    start: 900,
                    end: 999,
                },
            ),
            ("bytes=-5000", 1000, Partial { start: 0, end: 999 }),
            (
                "bytes=900-5000",
                1000,
                Partial {
                    start: 900,
                    end: 999,
                },
            ),
            ("BYTES = 1-1", 1000, Partial { start: 1, end: 1 }),
            ("bytes=1000-", 1000, Unsatisfiable),
            ("bytes=1000-2000", 1000, Unsatisfiable),
            ("bytes=-0", 1000, Unsatisfiable),
            ("bytes=0-0", 0, Unsatisfiable),
            ("bytes=-1", 0, Unsatisfiable),
            ("bytes=99999999999999999999999999-", 1000, Unsatisfiable),
            (
                "bytes=0-99999999999999999999999999",
                1000,
                Partial { start: 0, end: 999 },
            ),
            // Ignored: malformed, other units, reversed, multiple ranges.
            ("bytes=5-1", 1000, Full),
            ("bytes=abc", 1000, Full),
            ("bytes=", 1000, Full),
            ("bytes=-", 1000, Full),
            ("items=0-1", 1000, Full),
            ("0-1", 1000, Full),
            ("bytes=0-1,5-6", 1000, Full),
            ("bytes=+1-2", 1000, Full),
        ];
        for (header, len, want) in cases {
            assert_eq!(evaluate_range(header, *len), *want, "{header} len={len}");
        }
    }
}
