//! The grammars every Rivulet command line shares, so a value means the same to the origin,
//! the edge and the player: durations, byte sizes, node names and `NAME=URL` members.
//! Each parser returns a one-line reason that clap prints as it is.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use url::Url;

/// Why a command-line value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CliError(String);

fn refuse(why: String) -> CliError {
    CliError(why)
}

/// A duration: a decimal number of seconds, or a number with a unit `ms`, `s`, `m` or `h`:
/// `250ms`, `1.5s`, `10`, `2m`, `1h`. Negative, infinite and out-of-range values are
/// refused.
pub fn parse_duration(s: &str) -> Result<Duration, CliError> {
    let text = s.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit.trim() {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(refuse(format!(
                "unknown unit {other:?} in duration {text:?}: use ms, s, m or h (e.g. 500ms, 1.5s, 2m)"
            )));
        }
    };
    number
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .and_then(|v| Duration::try_from_secs_f64(v * scale).ok())
        .ok_or_else(|| {
            refuse(format!(
                "{text:?} is not a duration such as 500ms, 1.5s, 10 or 2m"
            ))
        })
}

/// A byte size: plain bytes, or a number with `K/M/G/T` (powers of 1000, with or without
/// `B`) or `KiB/MiB/GiB/TiB` (powers of 1024), case-insensitive: `64MiB`, `2GB`, `1.5KiB`.
pub fn parse_size(s: &str) -> Result<u64, CliError> {
    let text = s.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| refuse(format!("{text:?} is not a size such as 512MiB or 2GB")))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "m" | "mb" => 1000_u64.pow(2),
        "g" | "gb" => 1000_u64.pow(3),
        "t" | "tb" => 1000_u64.pow(4),
        "ki" | "kib" => 1 << 10,
        "mi" | "mib" => 1 << 20,
        "gi" | "gib" => 1 << 30,
        "ti" | "tib" => 1 << 40,
        other => {
            return Err(refuse(format!(
                "unknown size unit {other:?} in {text:?}: use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB"
            )));
        }
    };
    let bytes = number * scale as f64;
    // `u64::MAX as f64` rounds up to 2^64, which itself does not fit.
    if !bytes.is_finite() || bytes < 0.0 || bytes >= u64::MAX as f64 {
        return Err(refuse(format!("size out of range: {text:?}")));
    }
    Ok(bytes as u64)
}

/// The longest node name.
pub const MAX_NAME_LEN: usize = 64;

/// A node name (an edge's `--name`, a peer, a steering pathway): a letter, then letters,
/// digits, `.`, `-` or `_`, at most 64 characters. Such a name is at once an RFC 8941
/// §3.3.4 token (what RFC 9211 §2 makes a `Cache-Status` cache identifier, and what fits in
/// `Via` and `CDN-Loop`), an HLS `PATHWAY-ID` (RFC 8216bis §4.4.6.6: `[a-zA-Z0-9._-]`) and
/// a DASH `@serviceLocation`, so one name serves everywhere it appears.
pub fn parse_name(s: &str) -> Result<String, CliError> {
    let valid = !s.is_empty()
        && s.len() <= MAX_NAME_LEN
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if valid {
        Ok(s.to_owned())
    } else {
        Err(refuse(format!(
            "{s:?} is not a name: a letter, then letters, digits, '.', '-' or '_' (at most {MAX_NAME_LEN})"
        )))
    }
}

/// A base URL other paths are appended to: `http` or `https`, a host, no query, no
/// fragment, no credentials. Its path is made to end with `/`, so `http://h:8080` and
/// `http://h:8080/` are the same base.
pub fn parse_base_url(s: &str) -> Result<Url, CliError> {
    let text = s.trim();
    let mut url = Url::parse(text).map_err(|e| refuse(format!("{text:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err(refuse(format!(
            "{text:?} is not an http:// or https:// URL with a host"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(refuse(format!(
            "{text:?}: a base URL has no query or fragment"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse(format!(
            "{text:?}: a base URL carries no credentials"
        )));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// A named node and its base URL, written `NAME=URL` (`--peers`, `--edge`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedUrl {
    pub name: String,
    pub url: Url,
}

impl FromStr for NamedUrl {
    type Err = CliError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, url) = s
            .split_once('=')
            .ok_or_else(|| refuse(format!("{s:?} is not NAME=URL")))?;
        Ok(Self {
            name: parse_name(name.trim())?,
            url: parse_base_url(url)?,
        })
    }
}

impl fmt::Display for NamedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, self.url)
    }
}

/// A comma-separated list of `NAME=URL` members with distinct names.
pub fn parse_named_urls(s: &str) -> Result<Vec<NamedUrl>, CliError> {
    let mut members: Vec<NamedUrl> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let member: NamedUrl = part.parse()?;
        if members.iter().any(|m| m.name == member.name) {
            return Err(refuse(format!("{:?} is named twice", member.name)));
        }
        members.push(member);
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = [
            ("250ms", Duration::from_millis(250)),
            ("1.5s", Duration::from_millis(1500)),
            ("10", Duration::from_secs(10)),
            ("0.5", Duration::from_millis(500)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            (" 3 s ", Duration::from_secs(3)),
            ("0", Duration::ZERO),
        ];
        for (s, want) in ok {
            assert_eq!(parse_duration(s), Ok(want), "{s}");
        }
        for bad in [
            "", "s", "-1s", "1.2.3s", "10 days", "1e3", "nan", "1S", "inf",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn sizes() {
        let ok = [
            ("1024", 1024),
            ("512MiB", 512 << 20),
            ("2GB", 2_000_000_000),
            ("2gb", 2_000_000_000),
            ("1GiB", 1 << 30),
            ("1.5KiB", 1536),
            ("10k", 10_000),
            ("7 B", 7),
        ];
        for (s, want) in ok {
            assert_eq!(parse_size(s), Ok(want), "{s}");
        }
        // 2^64 bytes, which the old bound let through as u64::MAX.
        for bad in [
            "",
            "MiB",
            "12XB",
            "-1",
            "1e999GB",
            "16777216TiB",
            "18446744073709551616",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn names() {
        for ok in ["e1", "edge-1", "cdn.a_b", "A", &"x".repeat(MAX_NAME_LEN)] {
            assert_eq!(parse_name(ok).as_deref(), Ok(ok), "{ok}");
        }
        let too_long = "x".repeat(MAX_NAME_LEN + 1);
        for bad in [
            "", "1e", ".a", "-a", "a b", "a:b", "a/b", "é", "a=b", &too_long,
        ] {
            assert!(parse_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn base_urls() {
        let ok = [
            ("http://h:8080", "http://h:8080/"),
            ("http://h:8080/", "http://h:8080/"),
            ("https://cdn.example/edge", "https://cdn.example/edge/"),
            (" http://10.0.0.1:8081 ", "http://10.0.0.1:8081/"),
        ];
        for (s, want) in ok {
            assert_eq!(
                parse_base_url(s).map(String::from),
                Ok(want.to_owned()),
                "{s}"
            );
        }
        for bad in [
            "",
            "h:8080",
            "ftp://h/",
            "http://h/?a=1",
            "http://h/#x",
            "http://u:p@h/",
            "file:///etc",
        ] {
            assert!(parse_base_url(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn named_urls() {
        let member: NamedUrl = "e1=http://10.0.0.11:8081"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(member.name, "e1");
        assert_eq!(member.url.as_str(), "http://10.0.0.11:8081/");
        assert_eq!(member.to_string(), "e1=http://10.0.0.11:8081/");
        for bad in ["e1", "=http://h/", "e 1=http://h/", "e1=h:1"] {
            assert!(bad.parse::<NamedUrl>().is_err(), "{bad:?} accepted");
        }
        let list =
            parse_named_urls("a=http://h:1, b=http://h:2,").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            list.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(parse_named_urls("a=http://h:1,a=http://h:2").is_err());
    }
}
