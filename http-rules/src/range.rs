//! Range requests (RFC 9110 §14): the `Range` field against a representation's length,
//! `If-Range` (§13.1.5), and the `Content-Range` values of the answers (§14.4).
//!
//! One behaviour for every Rivulet server: a `Range` of **one** satisfiable range gets
//! 206, a single range that is not satisfiable 416, and anything else is ignored with
//! 200 and the whole representation, which §14.2 always allows. That includes a request
//! of **several** ranges, overlapping or not and whether or not any is satisfiable: no
//! server here writes `multipart/byteranges`, and coalescing ranges a client asked for
//! separately would answer a question it did not ask. Syntactically invalid fields, other
//! units and ranges whose last position precedes the first are ignored the same way.

use std::ops::RangeInclusive;
use std::time::SystemTime;

use http::HeaderValue;

use crate::date::{parse_http_date, whole_seconds};
use crate::etag::EntityTag;
use crate::list::trim_ows;

/// What a `Range` field asks of a representation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeDecision {
    /// Ignore the field: answer 200 with the whole representation (§14.2).
    Ignore,
    /// Answer 206 with these bytes (inclusive).
    Satisfiable(RangeInclusive<u64>),
    /// Answer 416 with `Content-Range: bytes */len` (§15.5.17).
    Unsatisfiable,
}

/// A position: digits only (§14.1.1), saturating, so an absurd number is merely large.
fn position(s: &str) -> Option<u64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().unwrap_or(u64::MAX))
}

/// One `range-spec` (§14.1.1) against `len` bytes; `None` when it is not valid syntax.
fn range_spec(spec: &str, len: u64) -> Option<RangeDecision> {
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (trim_ows(first), trim_ows(last));
    if first.is_empty() {
        // suffix-range: the last N bytes; N = 0 asks for nothing, and an empty
        // representation has no byte a 206 could carry (§14.4 needs first <= last).
        let n = position(last)?;
        return Some(if n == 0 || len == 0 {
            RangeDecision::Unsatisfiable
        } else {
            RangeDecision::Satisfiable(len.saturating_sub(n)..=len - 1)
        });
    }
    let start = position(first)?;
    let end = if last.is_empty() {
        u64::MAX
    } else {
        position(last)?
    };
    // §14.1.1: an int-range whose last-pos is less than its first-pos is invalid.
    if end < start {
        return None;
    }
    // §14.1.1: satisfiable when the first position is within the representation.
    Some(if start >= len {
        RangeDecision::Unsatisfiable
    } else {
        RangeDecision::Satisfiable(start..=end.min(len - 1))
    })
}

/// Evaluates a `Range` field value against a representation of `len` bytes, as the
/// module documentation says: one range → 206 or 416, anything else → ignored.
pub fn evaluate_range(value: &str, len: u64) -> RangeDecision {
    let Some((unit, set)) = value.split_once('=') else {
        return RangeDecision::Ignore;
    };
    // §14.1: range units are case-insensitive; only `bytes` is defined.
    if !trim_ows(unit).eq_ignore_ascii_case("bytes") {
        return RangeDecision::Ignore;
    }
    // §5.6.1: `1#range-spec`, empty elements ignored.
    let specs: Vec<&str> = set
        .split(',')
        .map(trim_ows)
        .filter(|s| !s.is_empty())
        .collect();
    match specs.as_slice() {
        [one] => range_spec(one, len).unwrap_or(RangeDecision::Ignore),
        // No range, or several (see the module documentation).
        _ => RangeDecision::Ignore,
    }
}

/// `If-Range` (§13.1.5): an entity-tag or an HTTP-date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfRange {
    Tag(EntityTag),
    Date(SystemTime),
    /// Neither: the condition is false and the Range is ignored.
    Invalid,
}

impl IfRange {
    pub fn parse(s: &str) -> Self {
        if let Some(tag) = EntityTag::parse(s) {
            Self::Tag(tag)
        } else if let Some(date) = parse_http_date(s) {
            Self::Date(date)
        } else {
            Self::Invalid
        }
    }

    /// Whether the condition holds for the current representation (§13.1.5): a strong
    /// match of its ETag (a weak tag never matches, as a range needs byte-for-byte
    /// identity), or a date exactly equal to its Last-Modified.
    pub fn holds(&self, etag: Option<&EntityTag>, last_modified: Option<SystemTime>) -> bool {
        match self {
            Self::Tag(tag) => etag.is_some_and(|current| tag.strong_eq(current)),
            Self::Date(date) => last_modified.is_some_and(|lm| whole_seconds(lm) == *date),
            Self::Invalid => false,
        }
    }
}

/// `Content-Range: bytes first-last/complete-length` of a 206 (§14.4).
pub fn content_range(range: &RangeInclusive<u64>, len: u64) -> HeaderValue {
    let text = format!("bytes {}-{}/{len}", range.start(), range.end());
    // Digits, letters and punctuation only.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("bytes */0"))
}

/// `Content-Range: bytes */complete-length` of a 416 (§14.4, §15.5.17).
pub fn unsatisfied_range(len: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("bytes */{len}"))
        .unwrap_or_else(|_| HeaderValue::from_static("bytes */0"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::date::from_unix_seconds;
    use RangeDecision::*;

    const LEN: u64 = 1000;

    #[test]
    fn ranges_follow_rfc_9110_14_1_and_14_2() {
        let rows: Vec<(&str, u64, RangeDecision)> = vec![
            // §14.1.2 examples: first bytes, a middle span, the tail, suffixes.
            ("bytes=0-99", LEN, Satisfiable(0..=99)),
            ("bytes=500-", LEN, Satisfiable(500..=999)),
            ("bytes=900-", LEN, Satisfiable(900..=999)),
            ("bytes=-100", LEN, Satisfiable(900..=999)),
            // §14.1.3: a suffix longer than the representation selects all of it.
            ("bytes=-5000", LEN, Satisfiable(0..=999)),
            // §14.1.1: a last position past the end is the end.
            ("bytes=990-5000", LEN, Satisfiable(990..=999)),
            ("bytes=900-5000", LEN, Satisfiable(900..=999)),
            ("bytes=0-0", LEN, Satisfiable(0..=0)),
            // §14.1: the unit is case-insensitive; whitespace around `=` is tolerated.
            ("BYTES=0-0", LEN, Satisfiable(0..=0)),
            ("BYTES = 1-1", LEN, Satisfiable(1..=1)),
            // §5.6.1: an empty list element is ignored, so this is one range (the
            // edge's old parser answered 200 to it).
            ("bytes=0-99,", LEN, Satisfiable(0..=99)),
            ("bytes=, 0-99", LEN, Satisfiable(0..=99)),
            // §14.1.1: unsatisfiable: the first position at or past the end, a zero
            // suffix, anything of an empty representation.
            ("bytes=1000-", LEN, Unsatisfiable),
            ("bytes=1000-2000", LEN, Unsatisfiable),
            ("bytes=5000-6000", LEN, Unsatisfiable),
            ("bytes=-0", LEN, Unsatisfiable),
            ("bytes=0-0", 0, Unsatisfiable),
            ("bytes=-1", 0, Unsatisfiable),
            // Absurd numbers saturate: never an overflow nor a panic.
            ("bytes=99999999999999999999999999-", LEN, Unsatisfiable),
            (
                "bytes=0-99999999999999999999999999",
                LEN,
                Satisfiable(0..=999),
            ),
            // §14.2: invalid syntax or another unit: ignored, the whole representation.
            ("bytes=5-2", LEN, Ignore),
            ("bytes=5-1", LEN, Ignore),
            ("bytes=99999999999999999999999-1", LEN, Ignore),
            ("bytes=abc", LEN, Ignore),
            ("bytes=", LEN, Ignore),
            ("bytes=-", LEN, Ignore),
            ("bytes=,", LEN, Ignore),
            ("bytes=+1-2", LEN, Ignore),
            ("bytes=1-+2", LEN, Ignore),
            ("items=0-1", LEN, Ignore),
            ("0-1", LEN, Ignore),
            ("", LEN, Ignore),
            // Several ranges: ignored (see the module documentation), disjoint,
            // overlapping, or with some unsatisfiable (the origin's old parser said 416).
            ("bytes=0-1,5-6", LEN, Ignore),
            ("bytes=0-500,400-999", LEN, Ignore),
            ("bytes=0-99, 5000-6000", LEN, Ignore),
            ("bytes=5000-6000, 7000-", LEN, Ignore),
        ];
        for (value, len, want) in rows {
            assert_eq!(evaluate_range(value, len), want, "{value:?} of {len}");
        }
    }

    #[test]
    fn if_range_needs_a_strong_match_or_the_exact_date_rfc_9110_13_1_5() {
        let lm = from_unix_seconds(784_111_777);
        let v1 = EntityTag::strong("v1");
        let weak_v1 = EntityTag::weak("v1");
        let cd = EntityTag::strong("c,d");
        // (If-Range, current ETag, current Last-Modified, holds)
        let rows: Vec<(&str, Option<&EntityTag>, Option<SystemTime>, bool)> = vec![
            ("\"v1\"", v1.as_ref(), Some(lm), true),
            // A weak tag never matches, in the field or on the representation.
            ("W/\"v1\"", v1.as_ref(), Some(lm), false),
            ("\"v1\"", weak_v1.as_ref(), Some(lm), false),
            ("\"v2\"", v1.as_ref(), Some(lm), false),
            // A tag holding a comma is one tag (the edge's old parser split it: false).
            ("\"c,d\"", cd.as_ref(), Some(lm), true),
            // No ETag to compare with: the condition is false.
            ("\"v1\"", None, Some(lm), false),
            ("Sun, 06 Nov 1994 08:49:37 GMT", v1.as_ref(), Some(lm), true),
            (
                "Sun, 06 Nov 1994 08:49:38 GMT",
                v1.as_ref(),
                Some(lm),
                false,
            ),
            (
                "Sun, 06 Nov 1994 08:49:36 GMT",
                v1.as_ref(),
                Some(lm),
                false,
            ),
            ("Sun, 06 Nov 1994 08:49:37 GMT", v1.as_ref(), None, false),
            ("garbage", v1.as_ref(), Some(lm), false),
        ];
        for (field, etag, last_modified, want) in rows {
            assert_eq!(
                IfRange::parse(field).holds(etag, last_modified),
                want,
                "{field:?} vs {etag:?} {last_modified:?}"
            );
        }
    }

    #[test]
    fn content_range_values_rfc_9110_14_4() {
        assert_eq!(content_range(&(10..=19), 1000), "bytes 10-19/1000");
        assert_eq!(unsatisfied_range(1000), "bytes */1000");
    }
}
