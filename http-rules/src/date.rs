//! HTTP-dates (RFC 9110 §5.6.7): the one parser and the one formatter every Rivulet
//! server uses, and the whole-second arithmetic their comparisons need.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::HeaderName;
use http::{HeaderMap, HeaderValue};

/// Parses an HTTP-date leniently, as a cache recipient should (RFC 9111 §4.2), at
/// the system clock's `now` (which only a two-digit year depends on); see
/// [`parse_http_date_at`].
pub fn parse_http_date(s: &str) -> Option<SystemTime> {
    parse_http_date_at(s, SystemTime::now())
}

/// Parses an HTTP-date in any of the three forms of RFC 9110 §5.6.7 (IMF-fixdate,
/// RFC 850, asctime), leniently:
/// - names of days, months and the `GMT` zone in any case (RFC 9111 §4.2: "a cache
///   recipient SHOULD match the field value case-insensitively");
/// - the day name is not trusted: any day name (short or long) is accepted whatever
///   the date, and it may be missing (it is redundant, §5.6.7);
/// - a one-digit day, and any run of spaces between the parts;
/// - a two-digit year (RFC 850) is the year with those digits not more than 50 years
///   after `now` (§5.6.7).
///
/// Still refused (`None`): another zone than GMT (RFC 9111 §4.2 calls it invalid), a
/// date that does not exist (30 February, hour 24), a number, a list of dates.
pub fn parse_http_date_at(s: &str, now: SystemTime) -> Option<SystemTime> {
    let cleaned = s.replace(',', " ");
    let mut tokens: Vec<&str> = cleaned.split_ascii_whitespace().collect();
    if tokens.first().is_some_and(|t| day_name(t)) {
        tokens.remove(0);
    }
    let (day, month, year, time, two_digit) = match tokens.as_slice() {
        // IMF-fixdate: 06 Nov 1994 08:49:37 GMT
        [d, m, y, t, zone] if zone.eq_ignore_ascii_case("GMT") => (*d, *m, *y, *t, y.len() == 2),
        // RFC 850: 06-Nov-94 08:49:37 GMT
        [dmy, t, zone] if zone.eq_ignore_ascii_case("GMT") => {
            let mut parts = dmy.split('-');
            let (d, m, y) = (parts.next()?, parts.next()?, parts.next()?);
            if parts.next().is_some() {
                return None;
            }
            (d, m, y, *t, y.len() == 2)
        }
        // asctime: Nov  6 08:49:37 1994
        [m, d, t, y] => (*d, *m, *y, *t, false),
        _ => return None,
    };
    let day: u32 = digits(day, 1, 2)?;
    let month = month_number(month)?;
    let mut year: i64 = digits(year, 2, 4)?;
    if two_digit {
        // §5.6.7: not more than 50 years in the future.
        let this_year = civil_from_days(unix_days(now)).0;
        year += this_year - this_year.rem_euclid(100);
        if year > this_year + 50 {
            year -= 100;
        }
    }
    let mut hms = time.split(':');
    let (h, m, sec) = (hms.next()?, hms.next()?, hms.next()?);
    if hms.next().is_some() {
        return None;
    }
    let (h, m, sec): (u64, u64, u64) = (digits(h, 2, 2)?, digits(m, 2, 2)?, digits(sec, 2, 2)?);
    if h > 23 || m > 59 || sec > 60 || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + i64::try_from(h * 3600 + m * 60 + sec).ok()?;
    Some(if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    })
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const LONG_DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];
const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

fn day_name(t: &str) -> bool {
    let t = t.to_ascii_lowercase();
    DAYS.contains(&t.as_str()) || LONG_DAYS.contains(&t.as_str())
}

fn month_number(t: &str) -> Option<u32> {
    let t = t.to_ascii_lowercase();
    let i = MONTHS.iter().position(|m| *m == t)?;
    u32::try_from(i + 1).ok()
}

/// A number of `min..=max` ASCII digits.
fn digits<T: std::str::FromStr>(t: &str, min: usize, max: usize) -> Option<T> {
    if t.len() < min || t.len() > max || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

fn leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the "days from civil"
/// algorithm: eras of 400 years, years starting in March).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a day count since 1970-01-01 (inverse of the above).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

fn unix_days(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs() / 86_400).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs().div_ceil(86_400)).unwrap_or(i64::MAX),
    }
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
        // `now` in 2026, for the two-digit years.
        let now = from_unix_seconds(1_780_000_000);
        let rows: [(&str, Option<u64>); 27] = [
            // The three forms §5.6.7 gives for one instant.
            ("Sun, 06 Nov 1994 08:49:37 GMT", Some(T)),
            ("Sunday, 06-Nov-94 08:49:37 GMT", Some(T)),
            ("Sun Nov  6 08:49:37 1994", Some(T)),
            (" Sun, 06 Nov 1994 08:49:37 GMT\t", Some(T)),
            // RFC 9111 §4.2: case-insensitive at a cache.
            ("sun, 06 nov 1994 08:49:37 gmt", Some(T)),
            ("SUNDAY, 06-NOV-94 08:49:37 GMT", Some(T)),
            ("sun NOV  6 08:49:37 1994", Some(T)),
            // The day name is not trusted (nor needed); a one-digit day, extra spaces.
            ("Wed, 06 Nov 1994 08:49:37 GMT", Some(T)),
            ("Friday, 06-Nov-94 08:49:37 GMT", Some(T)),
            ("06 Nov 1994 08:49:37 GMT", Some(T)),
            ("Sun,  6 Nov 1994  08:49:37 GMT", Some(T)),
            // §5.6.7: a two-digit year is at most 50 years ahead of now (May 2026):
            // `80` is 1980, `76` is 2076, `00` is 2000.
            ("Tuesday, 01-Jan-80 00:00:00 GMT", Some(315_532_800)),
            ("Thursday, 01-Jan-76 00:00:00 GMT", Some(3_345_062_400)),
            ("Saturday, 01-Jan-00 00:00:00 GMT", Some(946_684_800)),
            ("Friday, 01-Jan-77 00:00:00 GMT", Some(220_924_800)),
            // Before the epoch: parsed (and `unix_seconds` makes it 0).
            ("Thu, 01 Jan 1900 00:00:00 GMT", Some(0)),
            ("Tue, 29 Feb 2000 12:00:00 GMT", Some(951_825_600)),
            // Still invalid: another zone, impossible dates, numbers, lists, junk.
            ("Sun, 06 Nov 1994 08:49:37 UTC", None),
            ("Sun, 06 Nov 1994 08:49:37 +0000", None),
            ("Mon, 29 Feb 2100 00:00:00 GMT", None),
            ("Sun, 31 Apr 1994 08:49:37 GMT", None),
            ("Sun, 06 Nov 1994 24:00:00 GMT", None),
            ("Sun, 06 Nox 1994 08:49:37 GMT", None),
            ("0", None),
            ("", None),
            (
                "Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:38 GMT",
                None,
            ),
            ("yesterday", None),
        ];
        for (input, want) in rows {
            assert_eq!(
                parse_http_date_at(input, now).map(unix_seconds),
                want,
                "{input:?}"
            );
        }
        // Two-digit years follow `now`: `77` was 1977 in 2026 (2077 is more than 50
        // years ahead), and is 2077 in 2040.
        let in_2040 = from_unix_seconds(2_210_000_000);
        assert_eq!(
            parse_http_date_at("Friday, 01-Jan-77 00:00:00 GMT", in_2040).map(unix_seconds),
            Some(3_376_684_800)
        );
    }

    #[test]
    fn civil_days_round_trip() {
        for days in [-800_000, -1, 0, 1, 10_957, 20_000, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
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
