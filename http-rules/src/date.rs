//! HTTP-dates (RFC 9110 §5.6.7): the one parser and the one formatter every Rivulet
//! server uses, and the whole-second arithmetic their comparisons need.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::HeaderName;
use http::{HeaderMap, HeaderValue};

/// Parses an HTTP-date: the preferred IMF-fixdate and the two obsolete forms (RFC 850 and
/// asctime) that §5.6.7 says recipients accept; surrounding whitespace is ignored.
/// Anything else (a number, a date with a zone other than GMT, a list of dates) is `None`.
pub fn parse_http_date(s: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(s.trim_matches([' ', '\t'])).ok()
}

/// Formats `t` as an IMF-fixdate (§5.6.7), truncated to the second.
pub fn format_http_date(t: SystemTime) -> String {
    httpdate::fmt_http_date(t)
}

/// `t` as the value of a date field (`Date`, `Last-Modified`, `Expires`…).
pub fn http_date_value(t: SystemTime) -> HeaderValue {
    // An IMF-fixdate is visible ASCII.
    HeaderValue::from_str(&format_http_date(t))
        .unwrap_or_else(|_| HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"))
}

/// A single-valued date field of `headers`: `None` when absent, sent more than once, or
/// not one valid HTTP-date (§13.1.3, §13.1.4 ignore such fields; §5.3 a repeated
/// singleton field is invalid).
pub fn date_field(headers: &HeaderMap, name: &HeaderName) -> Option<SystemTime> {
    let mut lines = headers.get_all(name).iter();
    let line = lines.next()?;
    if lines.next().is_some() {
        return None;
    }
    parse_http_date(line.to_str().ok()?)
}

/// Seconds since the Unix epoch (0 before it).
pub fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The time `secs` seconds after the Unix epoch.
pub fn from_unix_seconds(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// `t` truncated to whole seconds, so that it compares exactly with HTTP-dates, which
/// carry no more (§5.6.7).
pub fn whole_seconds(t: SystemTime) -> SystemTime {
    from_unix_seconds(unix_seconds(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 784_111_777;

    #[test]
    fn parses_the_three_forms_of_rfc_9110_5_6_7() {
        let rows: [(&str, Option<u64>); 9] = [
            // The three forms §5.6.7 gives for one instant.
            ("Sun, 06 Nov 1994 08:49:37 GMT", Some(T)),
            ("Sunday, 06-Nov-94 08:49:37 GMT", Some(T)),
            ("Sun Nov  6 08:49:37 1994", Some(T)),
            (" Sun, 06 Nov 1994 08:49:37 GMT\t", Some(T)),
            // Strict for now: no other zone, no number, no list.
            ("Sun, 06 Nov 1994 08:49:37 UTC", None),
            ("0", None),
            ("", None),
            (
                "Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:38 GMT",
                None,
            ),
            ("yesterday", None),
        ];
        for (input, want) in rows {
            assert_eq!(parse_http_date(input).map(unix_seconds), want, "{input:?}");
        }
    }

    #[test]
    fn formats_imf_fixdate_and_truncates() {
        let t = from_unix_seconds(T) + Duration::from_millis(999);
        assert_eq!(format_http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date_value(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(whole_seconds(t), from_unix_seconds(T));
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(5)), 0);
    }

    #[test]
    fn a_date_field_is_one_valid_line() {
        let name = http::header::IF_MODIFIED_SINCE;
        let mut headers = HeaderMap::new();
        assert_eq!(date_field(&headers, &name), None);
        headers.insert(
            &name,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(date_field(&headers, &name), Some(from_unix_seconds(T)));
        headers.append(
            &name,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(date_field(&headers, &name), None, "two lines");
    }
}
