//! Conditional requests (RFC 9110 §13) on GET and HEAD and other methods, then the range
//! (§14), in the one evaluation order of §13.2.2, against a representation that exists.
//! A server evaluates them only where the response would otherwise be a 2xx (§13.2.1):
//! an error status is answered as it is.

use std::ops::RangeInclusive;
use std::time::SystemTime;

use http::{HeaderMap, Method, StatusCode, header};

use crate::date::{date_field, whole_seconds};
use crate::etag::{EntityTag, TagList};
use crate::range::{IfRange, RangeDecision, evaluate_range};

/// The precondition and range fields of a request, every field line read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    pub if_match: Option<TagList>,
    pub if_none_match: Option<TagList>,
    pub if_modified_since: Option<SystemTime>,
    pub if_unmodified_since: Option<SystemTime>,
    pub if_range: Option<IfRange>,
    pub range: Option<String>,
}

impl Conditions {
    /// Reads the fields. Tag lists combine all their lines (§5.3); the date fields,
    /// `If-Range` and `Range` are singletons, so a repeated or malformed one is ignored
    /// (§13.1.3, §13.1.4), or for `If-Range` is false (§13.1.5).
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let single = |name: &header::HeaderName| {
            let mut lines = headers.get_all(name).iter();
            let line = lines.next()?;
            Some(if lines.next().is_some() {
                None
            } else {
                line.to_str().ok()
            })
        };
        Self {
            if_match: TagList::from_headers(headers, &header::IF_MATCH),
            if_none_match: TagList::from_headers(headers, &header::IF_NONE_MATCH),
            if_modified_since: date_field(headers, &header::IF_MODIFIED_SINCE),
            if_unmodified_since: date_field(headers, &header::IF_UNMODIFIED_SINCE),
            if_range: single(&header::IF_RANGE)
                .map(|line| line.map_or(IfRange::Invalid, IfRange::parse)),
            range: single(&header::RANGE).flatten().map(str::to_owned),
        }
    }
}

/// What the server knows of the selected representation (§8.8). A stored response at a
/// cache may have neither validator.
#[derive(Debug, Clone, Copy, Default)]
pub struct Validators<'a> {
    pub etag: Option<&'a EntityTag>,
    /// Compared in whole seconds, as HTTP-dates carry no more (§5.6.7).
    pub last_modified: Option<SystemTime>,
    /// Length of the representation in bytes; without it a Range is ignored.
    pub len: Option<u64>,
    /// The `Date` of the response these validators belong to. `Last-Modified` is a
    /// strong validator only when it is at least a second earlier (§8.8.2.2), and only
    /// a strong one can satisfy an `If-Range` date (§13.1.5). `None` (an origin server
    /// that vouches for its modification times): always strong.
    pub date: Option<SystemTime>,
    /// Evaluated by a cache against a stored response: without `Last-Modified`,
    /// `If-Modified-Since` is compared with the stored `Date` (RFC 9111 §4.3.2).
    pub at_cache: bool,
}

impl Validators<'_> {
    /// `Last-Modified` if it is a strong validator (§8.8.2.2), in whole seconds.
    fn strong_last_modified(&self) -> Option<SystemTime> {
        let lm = whole_seconds(self.last_modified?);
        match self.date.map(whole_seconds) {
            Some(date) if date < lm + std::time::Duration::from_secs(1) => None,
            _ => Some(lm),
        }
    }
}

/// How to answer the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evaluation {
    /// 200 with the whole representation.
    Full,
    /// 206 with these bytes (inclusive).
    Partial(RangeInclusive<u64>),
    /// 304 Not Modified (GET and HEAD).
    NotModified,
    /// 412 Precondition Failed.
    PreconditionFailed,
    /// 416 Range Not Satisfiable.
    RangeNotSatisfiable,
}

impl Evaluation {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Full => StatusCode::OK,
            Self::Partial(_) => StatusCode::PARTIAL_CONTENT,
            Self::NotModified => StatusCode::NOT_MODIFIED,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
        }
    }
}

/// Evaluates the preconditions in the order of RFC 9110 §13.2.2, then the range (§14.2).
pub fn evaluate(method: &Method, c: &Conditions, v: Validators<'_>) -> Evaluation {
    let last_modified = v.last_modified.map(whole_seconds);
    // Step 1: If-Match, strong comparison (§13.1.1).
    if let Some(if_match) = &c.if_match {
        if !if_match.matches_strong(v.etag) {
            return Evaluation::PreconditionFailed;
        }
    } else if let (Some(since), Some(lm)) = (c.if_unmodified_since, last_modified) {
        // Step 2: If-Unmodified-Since, only without If-Match, and ignored when the
        // representation has no modification date (§13.1.4).
        if lm > since {
            return Evaluation::PreconditionFailed;
        }
    }
    let get_or_head = method == Method::GET || method == Method::HEAD;
    // Step 3: If-None-Match, weak comparison (§13.1.2).
    if let Some(if_none_match) = &c.if_none_match {
        if if_none_match.matches_weak(v.etag) {
            return if get_or_head {
                Evaluation::NotModified
            } else {
                Evaluation::PreconditionFailed
            };
        }
    } else if get_or_head
        && let (Some(since), Some(lm)) = (
            c.if_modified_since,
            last_modified.or(v.date.filter(|_| v.at_cache).map(whole_seconds)),
        )
    {
        // Step 4: If-Modified-Since, only without If-None-Match, for GET and HEAD, and
        // ignored without a modification date (§13.1.3); a cache without Last-Modified
        // compares with the stored Date (RFC 9111 §4.3.2).
        if lm <= since {
            return Evaluation::NotModified;
        }
    }
    // Step 5: Range only on GET (§14.2), only when If-Range (if any) holds (§13.1.5).
    let (Some(range), Some(len)) = (&c.range, v.len) else {
        return Evaluation::Full;
    };
    if method != Method::GET
        || c.if_range
            .as_ref()
            .is_some_and(|ir| !ir.holds(v.etag, v.strong_last_modified()))
    {
        return Evaluation::Full;
    }
    match evaluate_range(range, len) {
        RangeDecision::Ignore => Evaluation::Full,
        RangeDecision::Satisfiable(r) => Evaluation::Partial(r),
        RangeDecision::Unsatisfiable => Evaluation::RangeNotSatisfiable,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use http::HeaderValue;

    use super::*;
    use crate::date::format_http_date;
    use Evaluation::*;

    const LEN: u64 = 1000;

    fn t0() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    fn date(offset: i64) -> String {
        let t = if offset >= 0 {
            t0() + Duration::from_secs(offset.unsigned_abs())
        } else {
            t0() - Duration::from_secs(offset.unsigned_abs())
        };
        format_http_date(t)
    }

    /// The representation a row is evaluated against.
    #[derive(Debug, Clone, Copy)]
    enum Rep {
        /// ETag `"v1"`, Last-Modified t0, 1000 bytes.
        Tagged,
        /// ETag `"c,d"` (a comma inside the tag), Last-Modified t0.
        Comma,
        /// ETag `W/"v1"`, Last-Modified t0.
        Weak,
        /// Last-Modified t0, no ETag.
        Untagged,
        /// ETag `"v1"`, no Last-Modified.
        Undated,
        /// Neither validator (a stored response at a cache may have none).
        Bare,
    }

    fn run(method: &Method, fields: &[(&str, String)], rep: Rep) -> Evaluation {
        let mut headers = HeaderMap::new();
        for (name, value) in fields {
            let name = header::HeaderName::from_bytes(name.as_bytes()).unwrap_or(header::WARNING);
            let value = HeaderValue::from_str(value).unwrap_or(HeaderValue::from_static(""));
            headers.append(name, value);
        }
        let (v1, cd, weak) = (
            EntityTag::strong("v1"),
            EntityTag::strong("c,d"),
            EntityTag::weak("v1"),
        );
        let (etag, last_modified) = match rep {
            Rep::Tagged => (v1.as_ref(), Some(t0())),
            Rep::Comma => (cd.as_ref(), Some(t0())),
            Rep::Weak => (weak.as_ref(), Some(t0())),
            Rep::Untagged => (None, Some(t0())),
            Rep::Undated => (v1.as_ref(), None),
            Rep::Bare => (None, None),
        };
        let v = Validators {
            etag,
            // Sub-second precision must not matter (§5.6.7).
            last_modified: last_modified.map(|t| t + Duration::from_millis(400)),
            len: Some(LEN),
            ..Validators::default()
        };
        evaluate(method, &Conditions::from_headers(&headers), v)
    }

    #[test]
    fn a_cache_compares_with_the_stored_date_and_needs_a_strong_date_for_if_range() {
        let at = |offset: i64| {
            if offset >= 0 {
                t0() + Duration::from_secs(offset.unsigned_abs())
            } else {
                t0() - Duration::from_secs(offset.unsigned_abs())
            }
        };
        // (Last-Modified, Date, at a cache, request fields, answer)
        type Row = (
            Option<i64>,
            Option<i64>,
            bool,
            Vec<(&'static str, String)>,
            Evaluation,
        );
        let ims = |offset| vec![("if-modified-since", date(offset))];
        let ranged = |offset| {
            vec![
                ("range", "bytes=0-9".to_owned()),
                ("if-range", date(offset)),
            ]
        };
        let rows: Vec<Row> = vec![
            // RFC 9111 §4.3.2: no Last-Modified: the stored Date answers.
            (None, Some(0), true, ims(0), NotModified),
            (None, Some(0), true, ims(5), NotModified),
            (None, Some(0), true, ims(-5), Full),
            // An origin server without Last-Modified ignores the field (§13.1.3).
            (None, Some(0), false, ims(0), Full),
            // Last-Modified, when there is one, decides.
            (Some(-100), Some(0), true, ims(-50), NotModified),
            (Some(-100), Some(0), true, ims(-150), Full),
            // §13.1.5 with §8.8.2.2: an If-Range date needs a strong Last-Modified,
            // one at least a second before the Date.
            (Some(-100), Some(0), true, ranged(-100), Partial(0..=9)),
            (Some(0), Some(0), true, ranged(0), Full),
            (Some(0), Some(1), true, ranged(0), Partial(0..=9)),
            (Some(0), None, false, ranged(0), Partial(0..=9)),
        ];
        for (lm, d, at_cache, fields, want) in rows {
            let mut headers = HeaderMap::new();
            for (name, value) in &fields {
                headers.append(
                    header::HeaderName::from_static(name),
                    HeaderValue::from_str(value).unwrap_or(HeaderValue::from_static("")),
                );
            }
            let v = Validators {
                etag: None,
                last_modified: lm.map(at),
                len: Some(LEN),
                date: d.map(at),
                at_cache,
            };
            let got = evaluate(&Method::GET, &Conditions::from_headers(&headers), v);
            assert_eq!(
                got, want,
                "lm {lm:?} date {d:?} cache {at_cache} {fields:?}"
            );
        }
    }

    type Row = (Method, Vec<(&'static str, String)>, Rep, Evaluation);

    fn f(name: &'static str, value: &str) -> (&'static str, String) {
        (name, value.to_owned())
    }

    #[test]
    fn preconditions_follow_rfc_9110_13_2_2() {
        let inm = |v: &str| f("if-none-match", v);
        let im = |v: &str| f("if-match", v);
        let ims = |offset| ("if-modified-since", date(offset));
        let ius = |offset| ("if-unmodified-since", date(offset));
        let rows: Vec<Row> = vec![
            (Method::GET, vec![], Rep::Tagged, Full),
            // §13.1.2: If-None-Match, weak comparison, lists, `*`.
            (Method::GET, vec![inm("\"v1\"")], Rep::Tagged, NotModified),
            (Method::GET, vec![inm("W/\"v1\"")], Rep::Tagged, NotModified),
            (Method::GET, vec![inm("\"v1\"")], Rep::Weak, NotModified),
            (
                Method::GET,
                vec![inm("\"x\", \"v1\"")],
                Rep::Tagged,
                NotModified,
            ),
            (Method::GET, vec![inm("*")], Rep::Tagged, NotModified),
            (Method::GET, vec![inm("\"x\"")], Rep::Tagged, Full),
            (Method::GET, vec![inm("garbage")], Rep::Tagged, Full),
            (Method::GET, vec![inm("\"v1\"")], Rep::Untagged, Full),
            (Method::GET, vec![inm("\"v1\"")], Rep::Bare, Full),
            (Method::HEAD, vec![inm("\"v1\"")], Rep::Tagged, NotModified),
            (
                Method::POST,
                vec![inm("\"v1\"")],
                Rep::Tagged,
                PreconditionFailed,
            ),
            // §5.3: every field line counts (the edge's old code read only the first
            // line and answered 200).
            (
                Method::GET,
                vec![inm("\"x\""), inm("\"v1\"")],
                Rep::Tagged,
                NotModified,
            ),
            // §8.8.3: a comma inside a tag is part of it (the edge's old code split the
            // list on every comma and answered 200).
            (Method::GET, vec![inm("\"c,d\"")], Rep::Comma, NotModified),
            (Method::GET, vec![inm("\"c\"")], Rep::Comma, Full),
            // §13.1.2: `*` is true when a current representation exists, tagged or not
            // (the edge's old code answered 200 without an ETag).
            (Method::GET, vec![inm("*")], Rep::Untagged, NotModified),
            (Method::GET, vec![inm("*")], Rep::Bare, NotModified),
            // §13.1.3: If-Modified-Since, only without If-None-Match.
            (Method::GET, vec![ims(0)], Rep::Tagged, NotModified),
            (Method::GET, vec![ims(10)], Rep::Tagged, NotModified),
            (Method::GET, vec![ims(-10)], Rep::Tagged, Full),
            (
                Method::GET,
                vec![f("if-modified-since", "yesterday")],
                Rep::Tagged,
                Full,
            ),
            (Method::GET, vec![ims(10), ims(10)], Rep::Tagged, Full),
            (Method::GET, vec![ims(10)], Rep::Undated, Full),
            (Method::GET, vec![ims(10)], Rep::Bare, Full),
            (Method::GET, vec![inm("\"x\""), ims(10)], Rep::Tagged, Full),
            (
                Method::GET,
                vec![inm("garbage"), ims(10)],
                Rep::Tagged,
                Full,
            ),
            (Method::POST, vec![ims(10)], Rep::Tagged, Full),
            // §13.1.1: If-Match, strong comparison.
            (Method::GET, vec![im("\"v1\"")], Rep::Tagged, Full),
            (Method::GET, vec![im("*")], Rep::Tagged, Full),
            (
                Method::GET,
                vec![im("W/\"v1\"")],
                Rep::Tagged,
                PreconditionFailed,
            ),
            (
                Method::GET,
                vec![im("\"v1\"")],
                Rep::Weak,
                PreconditionFailed,
            ),
            (
                Method::GET,
                vec![im("\"x\"")],
                Rep::Tagged,
                PreconditionFailed,
            ),
            (
                Method::GET,
                vec![im("\"v1\"")],
                Rep::Untagged,
                PreconditionFailed,
            ),
            (
                Method::GET,
                vec![im("\"x\""), im("\"v1\"")],
                Rep::Tagged,
                Full,
            ),
            // §8.8.3: one tag with a comma (the edge's old code answered 412).
            (Method::GET, vec![im("\"c,d\"")], Rep::Comma, Full),
            // §13.1.1: `*` is true when a current representation exists, tagged or not
            // (the edge's old code answered 412 without an ETag).
            (Method::GET, vec![im("*")], Rep::Untagged, Full),
            (Method::GET, vec![im("*")], Rep::Bare, Full),
            // §13.1.4: If-Unmodified-Since, only without If-Match.
            (Method::GET, vec![ius(0)], Rep::Tagged, Full),
            (Method::GET, vec![ius(10)], Rep::Tagged, Full),
            (Method::GET, vec![ius(-10)], Rep::Tagged, PreconditionFailed),
            (
                Method::GET,
                vec![f("if-unmodified-since", "soon")],
                Rep::Tagged,
                Full,
            ),
            (Method::GET, vec![im("\"v1\""), ius(-10)], Rep::Tagged, Full),
            // §13.1.4: ignored without a modification date (the edge's old code
            // answered 412).
            (Method::GET, vec![ius(-10)], Rep::Undated, Full),
            (Method::GET, vec![ius(-10)], Rep::Bare, Full),
            // §13.2.2: If-Match is evaluated before If-None-Match, and both before the
            // dates.
            (
                Method::GET,
                vec![im("\"x\""), inm("\"v1\"")],
                Rep::Tagged,
                PreconditionFailed,
            ),
            (
                Method::GET,
                vec![im("\"v1\""), inm("\"v1\"")],
                Rep::Tagged,
                NotModified,
            ),
            (
                Method::GET,
                vec![ius(-10), inm("\"v1\"")],
                Rep::Tagged,
                PreconditionFailed,
            ),
            // §13.2.1 step 5 after the preconditions: a 304 wins over a Range.
            (
                Method::GET,
                vec![inm("\"v1\""), f("range", "bytes=0-9")],
                Rep::Tagged,
                NotModified,
            ),
        ];
        for (method, fields, rep, want) in rows {
            assert_eq!(
                run(&method, &fields, rep),
                want,
                "{method} {fields:?} {rep:?}"
            );
        }
    }

    #[test]
    fn ranges_and_if_range_follow_rfc_9110_13_1_5_and_14_2() {
        let range = |v: &str| f("range", v);
        let if_range = |v: &str| f("if-range", v);
        let rows: Vec<Row> = vec![
            (
                Method::GET,
                vec![range("bytes=0-9")],
                Rep::Tagged,
                Partial(0..=9),
            ),
            (
                Method::GET,
                vec![range("bytes=5000-")],
                Rep::Tagged,
                RangeNotSatisfiable,
            ),
            (Method::GET, vec![range("bytes=0-1,5-6")], Rep::Tagged, Full),
            // §14.2: Range is for GET only.
            (Method::HEAD, vec![range("bytes=0-9")], Rep::Tagged, Full),
            (Method::POST, vec![range("bytes=0-9")], Rep::Tagged, Full),
            // §5.3: Range is a singleton: two lines are invalid, ignored.
            (
                Method::GET,
                vec![range("bytes=0-9"), range("bytes=10-19")],
                Rep::Tagged,
                Full,
            ),
            // §13.1.5: a strong match or the exact date lets the range apply.
            (
                Method::GET,
                vec![range("bytes=0-9"), if_range("\"v1\"")],
                Rep::Tagged,
                Partial(0..=9),
            ),
            (
                Method::GET,
                vec![range("bytes=0-9"), if_range("W/\"v1\"")],
                Rep::Tagged,
                Full,
            ),
            (
                Method::GET,
                vec![range("bytes=0-9"), if_range("\"v2\"")],
                Rep::Tagged,
                Full,
            ),
            (
                Method::GET,
                vec![range("bytes=0-9"), if_range("\"c,d\"")],
                Rep::Comma,
                Partial(0..=9),
            ),
            (
                Method::GET,
                vec![range("bytes=0-9"), ("if-range", date(0))],
                Rep::Tagged,
                Partial(0..=9),
            ),
            (
                Method::GET,
                vec![range("bytes=0-9"), ("if-range", date(10))],
                Rep::Tagged,
                Full,
            ),
            (
                Method::GET,
                vec![range("bytes=0-9"), ("if-range", date(0))],
                Rep::Undated,
                Full,
            ),
            (
                Method::GET,
                vec![range("bytes=0-9"), if_range("garbage")],
                Rep::Tagged,
                Full,
            ),
            (
                Method::GET,
                vec![range("bytes=0-9"), if_range("\"v1\""), if_range("\"v1\"")],
                Rep::Tagged,
                Full,
            ),
            // §13.1.5: without a Range, If-Range is ignored.
            (Method::GET, vec![if_range("\"v2\"")], Rep::Tagged, Full),
            // A failed If-Range is not an unsatisfiable range: the whole, not a 416.
            (
                Method::GET,
                vec![range("bytes=5000-"), if_range("\"v2\"")],
                Rep::Tagged,
                Full,
            ),
        ];
        for (method, fields, rep, want) in rows {
            assert_eq!(
                run(&method, &fields, rep),
                want,
                "{method} {fields:?} {rep:?}"
            );
        }
        // Without a known length a Range cannot be evaluated: the whole representation.
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, HeaderValue::from_static("bytes=0-9"));
        let unknown_len = Validators::default();
        assert_eq!(
            evaluate(
                &Method::GET,
                &Conditions::from_headers(&headers),
                unknown_len
            ),
            Full
        );
    }

    #[test]
    fn statuses() {
        let rows = [
            (Full, 200),
            (Partial(0..=1), 206),
            (NotModified, 304),
            (PreconditionFailed, 412),
            (RangeNotSatisfiable, 416),
        ];
        for (evaluation, status) in rows {
            assert_eq!(evaluation.status().as_u16(), status);
        }
    }
}
