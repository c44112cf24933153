//! Conditional requests (RFC 9110 §13) and range requests (§14), as pure decisions over the
//! request's header values and the representation's validators.

use std::ops::RangeInclusive;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, Method, header};
use http_range_header::RangeUnsatisfiableError;

use crate::etag::{EntityTag, TagList};

/// What the server knows about the selected representation (§8.8).
#[derive(Debug, Clone, Copy)]
pub struct Validators<'a> {
    pub etag: &'a EntityTag,
    /// Already truncated to whole seconds, as HTTP-dates carry no more (§5.6.7).
    pub last_modified: SystemTime,
    /// Length of the selected representation in bytes.
    pub len: u64,
}

/// Truncates a time to whole seconds so it compares exactly with HTTP-dates.
pub fn to_http_seconds(t: SystemTime) -> SystemTime {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// `If-Range` (§13.1.5): an entity-tag or an HTTP-date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfRange {
    Tag(EntityTag),
    Date(SystemTime),
    /// Neither: the condition is false and the Range is ignored.
    Invalid,
}

/// The precondition and range fields of a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestConditions {
    pub if_match: Option<TagList>,
    pub if_none_match: Option<TagList>,
    pub if_modified_since: Option<SystemTime>,
    pub if_unmodified_since: Option<SystemTime>,
    pub if_range: Option<IfRange>,
    pub range: Option<String>,
}

/// Reads a single-valued date field; a field that is not one valid HTTP-date is ignored
/// (§13.1.3, §13.1.4), as are repeated lines.
fn date_field(headers: &HeaderMap, name: &header::HeaderName) -> Option<SystemTime> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    httpdate::parse_http_date(value.to_str().ok()?).ok()
}

impl RequestConditions {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let list = |name: &header::HeaderName| {
            TagList::parse(headers.get_all(name).iter().filter_map(|v| v.to_str().ok()))
        };
        let if_range = headers.get(header::IF_RANGE).map(|v| {
            let Ok(s) = v.to_str() else {
                return IfRange::Invalid;
            };
            if let Some(tag) = EntityTag::parse(s) {
                IfRange::Tag(tag)
            } else if let Ok(date) = httpdate::parse_http_date(s) {
                IfRange::Date(date)
            } else {
                IfRange::Invalid
            }
        });
        Self {
            if_match: list(&header::IF_MATCH),
            if_none_match: list(&header::IF_NONE_MATCH),
            if_modified_since: date_field(headers, &header::IF_MODIFIED_SINCE),
            if_unmodified_since: date_field(headers, &header::IF_UNMODIFIED_SINCE),
            if_range,
            range: headers
                .get(header::RANGE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        }
    }
}

/// How to answer a GET or HEAD on an existing representation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// 200 with the whole representation.
    Full,
    /// 206 with these bytes (inclusive).
    Partial(RangeInclusive<u64>),
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    PreconditionFailed,
    /// 416 Range Not Satisfiable.
    RangeNotSatisfiable,
}

/// Evaluates the preconditions in the order of RFC 9110 §13.2.2, then the range (§14.2).
pub fn plan(method: &Method, req: &RequestConditions, v: Validators<'_>) -> Plan {
    // Step 1: If-Match, strong comparison (§13.1.1).
    if let Some(if_match) = &req.if_match {
        if !if_match.matches_strong(v.etag) {
            return Plan::PreconditionFailed;
        }
    } else if let Some(since) = req.if_unmodified_since {
        // Step 2: If-Unmodified-Since only without If-Match (§13.1.4).
        if v.last_modified > since {
            return Plan::PreconditionFailed;
        }
    }
    let get_or_head = method == Method::GET || method == Method::HEAD;
    // Step 3: If-None-Match, weak comparison (§13.1.2).
    if let Some(if_none_match) = &req.if_none_match {
        if if_none_match.matches_weak(v.etag) {
            return if get_or_head {
                Plan::NotModified
            } else {
                Plan::PreconditionFailed
            };
        }
    } else if get_or_head && let Some(since) = req.if_modified_since {
        // Step 4: If-Modified-Since only without If-None-Match, for GET and HEAD (§13.1.3).
        if v.last_modified <= since {
            return Plan::NotModified;
        }
    }
    // Step 5: Range only on GET (§14.2), and only when If-Range (if any) holds (§13.1.5).
    let Some(range) = &req.range else {
        return Plan::Full;
    };
    if method != Method::GET {
        return Plan::Full;
    }
    if let Some(if_range) = &req.if_range
        && !if_range_holds(if_range, v)
    {
        return Plan::Full;
    }
    range_plan(range, v.len)
}

/// §13.1.5: a strong ETag match, or a date exactly equal to Last-Modified. A weak tag never
/// matches, since If-Range needs byte-for-byte identity.
fn if_range_holds(if_range: &IfRange, v: Validators<'_>) -> bool {
    match if_range {
        IfRange::Tag(tag) => tag.strong_eq(v.etag),
        IfRange::Date(date) => *date == v.last_modified,
        IfRange::Invalid => false,
    }
}

/// §14.2: one satisfiable range → 206; none satisfiable → 416; a field we cannot parse is
/// ignored (200), and so is a multi-range request: we do not build multipart/byteranges,
/// which the server may decline by sending the whole representation.
fn range_plan(range: &str, len: u64) -> Plan {
    let parsed = match http_range_header::parse_range_header(range) {
        Ok(parsed) => parsed,
        Err(RangeUnsatisfiableError::Invalid(_)) => return Plan::Full,
        Err(_) => return Plan::RangeNotSatisfiable,
    };
    match parsed.validate(len) {
        Ok(ranges) => match ranges.as_slice() {
            [one] => Plan::Partial(one.clone()),
            _ => Plan::Full,
        },
        Err(_) => Plan::RangeNotSatisfiable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const LEN: u64 = 1000;

    /// A request (method and header fields) and the plan it must get.
    type Row = (Method, Vec<(&'static str, String)>, Plan);

    fn t0() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    fn date(offset: i64) -> String {
        let t = if offset >= 0 {
            t0() + Duration::from_secs(offset.unsigned_abs())
        } else {
            t0() - Duration::from_secs(offset.unsigned_abs())
        };
        httpdate::fmt_http_date(t)
    }

    fn run(method: &Method, fields: &[(&str, &str)]) -> Plan {
        let mut headers = HeaderMap::new();
        for (name, value) in fields {
            let name = header::HeaderName::from_bytes(name.as_bytes()).unwrap_or(header::WARNING);
            headers.append(
                name,
                HeaderValue::from_str(value).unwrap_or(HeaderValue::from_static("")),
            );
        }
        let etag = EntityTag::parse("\"v1\"").unwrap_or_else(|| EntityTag::from_digest(&[]));
        let v = Validators {
            etag: &etag,
            last_modified: t0(),
            len: LEN,
        };
        plan(method, &RequestConditions::from_headers(&headers), v)
    }

    #[test]
    fn preconditions_follow_rfc_9110_13_2_2() {
        use Plan::*;
        let get = Method::GET;
        let rows: Vec<Row> = vec![
            (get.clone(), vec![], Full),
            // If-None-Match: weak comparison, lists, `*`.
            (
                get.clone(),
                vec![("if-none-match", "\"v1\"".into())],
                NotModified,
            ),
            (
                get.clone(),
                vec![("if-none-match", "W/\"v1\"".into())],
                NotModified,
            ),
            (
                get.clone(),
                vec![("if-none-match", "\"x\", \"v1\"".into())],
                NotModified,
            ),
            (
                get.clone(),
                vec![("if-none-match", "*".into())],
                NotModified,
            ),
            (get.clone(), vec![("if-none-match", "\"x\"".into())], Full),
            (
                Method::HEAD,
                vec![("if-none-match", "\"v1\"".into())],
                NotModified,
            ),
            (
                Method::POST,
                vec![("if-none-match", "\"v1\"".into())],
                PreconditionFailed,
            ),
            // If-Modified-Since: only without If-None-Match.
            (
                get.clone(),
                vec![("if-modified-since", date(0))],
                NotModified,
            ),
            (
                get.clone(),
                vec![("if-modified-since", date(10))],
                NotModified,
            ),
            (get.clone(), vec![("if-modified-since", date(-10))], Full),
            (
                get.clone(),
                vec![("if-modified-since", "yesterday".into())],
                Full,
            ),
            (
                get.clone(),
                vec![
                    ("if-none-match", "\"x\"".into()),
                    ("if-modified-since", date(10)),
                ],
                Full,
            ),
            (Method::POST, vec![("if-modified-since", date(10))], Full),
            // If-Match: strong comparison.
            (get.clone(), vec![("if-match", "\"v1\"".into())], Full),
            (get.clone(), vec![("if-match", "*".into())], Full),
            (
                get.clone(),
                vec![("if-match", "W/\"v1\"".into())],
                PreconditionFailed,
            ),
            (
                get.clone(),
                vec![("if-match", "\"x\"".into())],
                PreconditionFailed,
            ),
            // If-Unmodified-Since: only without If-Match.
            (get.clone(), vec![("if-unmodified-since", date(0))], Full),
            (
                get.clone(),
                vec![("if-unmodified-since", date(-10))],
                PreconditionFailed,
            ),
            (
                get.clone(),
                vec![
                    ("if-match", "\"v1\"".into()),
                    ("if-unmodified-since", date(-10)),
                ],
                Full,
            ),
            // If-Match is evaluated before If-None-Match.
            (
                get,
                vec![
                    ("if-match", "\"x\"".into()),
                    ("if-none-match", "\"v1\"".into()),
                ],
                PreconditionFailed,
            ),
        ];
        for (method, fields, want) in rows {
            let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
            assert_eq!(run(&method, &fields), want, "{method} {fields:?}");
        }
    }

    #[test]
    fn ranges_follow_rfc_9110_14() {
        use Plan::*;
        let rows: Vec<(&str, Plan)> = vec![
            ("bytes=0-99", Partial(0..=99)),
            ("bytes=900-", Partial(900..=999)),
            ("bytes=-100", Partial(900..=999)),
            ("bytes=-5000", Partial(0..=999)),
            ("bytes=990-5000", Partial(990..=999)),
            ("BYTES=0-0", Partial(0..=0)),
            ("bytes=1000-", RangeNotSatisfiable),
            ("bytes=5000-6000", RangeNotSatisfiable),
            ("bytes=-0", RangeNotSatisfiable),
            // Syntactically invalid: ignored.
            ("bytes=5-2", Full),
            ("items=0-1", Full),
            ("bytes=abc", Full),
            // Several ranges: we send the whole representation.
            ("bytes=0-1,5-6", Full),
        ];
        for (range, want) in rows {
            assert_eq!(run(&Method::GET, &[("range", range)]), want, "{range}");
        }
        // Range is only for GET.
        assert_eq!(run(&Method::HEAD, &[("range", "bytes=0-1")]), Full);
    }

    #[test]
    fn if_range_needs_a_strong_match_or_the_exact_date() {
        use Plan::*;
        let zero = date(0);
        let later = date(10);
        let rows: Vec<(&str, Plan)> = vec![
            ("\"v1\"", Partial(0..=9)),
            ("W/\"v1\"", Full),
            ("\"v2\"", Full),
            (zero.as_str(), Partial(0..=9)),
            (later.as_str(), Full),
            ("garbage", Full),
        ];
        for (if_range, want) in rows {
            let got = run(
                &Method::GET,
                &[("range", "bytes=0-9"), ("if-range", if_range)],
            );
            assert_eq!(got, want, "{if_range}");
        }
        // Without a Range, If-Range is ignored.
        assert_eq!(run(&Method::GET, &[("if-range", "\"v2\"")]), Full);
    }

    #[test]
    fn http_seconds_truncate() {
        let t = t0() + Duration::from_millis(999);
        assert_eq!(to_http_seconds(t), t0());
    }
}
