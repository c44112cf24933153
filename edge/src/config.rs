//! Command-line / environment configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Rivulet edge: an RFC 9111 caching reverse proxy.
#[derive(Debug, Clone, Parser)]
#[command(name = "edge", version, about)]
pub struct Config {
    /// Upstream base URLs (origins or parent edges), comma-separated in priority order:
    /// the first healthy one is used, the next on connection errors. Paths and queries
    /// are appended unchanged. Required unless the --config file lists upstreams.
    #[arg(long, env = "EDGE_ORIGIN", value_delimiter = ',', value_parser = parse_base_url)]
    pub origin: Vec<reqwest::Url>,

    /// Cluster settings file (TOML: upstreams, peers, health), re-read on SIGHUP.
    /// Flags (and their environment variables) override its values.
    #[arg(long, env = "EDGE_CONFIG")]
    pub config: Option<PathBuf>,

    /// Peer edges sharing one cache by rendezvous hashing, comma-separated `NAME=URL`
    /// entries: the same list on every edge, each finding itself by its --name.
    #[arg(long, env = "EDGE_PEERS", value_delimiter = ',', value_parser = parse_peer)]
    pub peers: Vec<PeerSpec>,

    /// Path probed on each upstream by the health checks [default: /healthz].
    #[arg(long, env = "EDGE_UPSTREAM_HEALTH_PATH")]
    pub upstream_health_path: Option<String>,

    /// Time between health checks of peers and upstreams [default: 1s].
    #[arg(long, env = "EDGE_HEALTH_INTERVAL", value_parser = parse_duration)]
    pub health_interval: Option<Duration>,

    /// Time a health check may take [default: 500ms].
    #[arg(long, env = "EDGE_HEALTH_TIMEOUT", value_parser = parse_duration)]
    pub health_timeout: Option<Duration>,

    /// Consecutive successful checks that make an unhealthy target healthy [default: 2].
    #[arg(long, env = "EDGE_HEALTH_RISE")]
    pub health_rise: Option<u32>,

    /// Consecutive failures that make a healthy target unhealthy [default: 2].
    #[arg(long, env = "EDGE_HEALTH_FALL")]
    pub health_fall: Option<u32>,

    /// On SIGTERM / Ctrl-C, how long to keep serving while reporting unhealthy (so
    /// that load balancers and the origin steer clients away) before draining.
    #[arg(long, env = "EDGE_DRAIN_DELAY", default_value = "0s", value_parser = parse_duration)]
    pub drain_delay: Duration,

    /// Address to listen on.
    #[arg(long, env = "EDGE_LISTEN", default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,

    /// Memory for cached objects, headers included (e.g. `512MiB`, `2GB`, `1073741824`).
    #[arg(long, env = "EDGE_CACHE_SIZE", default_value = "1GiB", value_parser = parse_size)]
    pub cache_size: u64,

    /// Larger objects are streamed through uncached.
    #[arg(long, env = "EDGE_MAX_OBJECT_SIZE", default_value = "64MiB", value_parser = parse_size)]
    pub max_object_size: u64,

    /// Cache identifier in `Cache-Status` and `Via` (default: `<hostname>:<port>`);
    /// an RFC 8941 token such as `edge-1` or `eu-west:8081`.
    #[arg(long, env = "EDGE_NAME", value_parser = parse_token)]
    pub name: Option<String>,

    /// Bearer token required by PURGE; PURGE is refused when unset.
    #[arg(long, env = "EDGE_PURGE_TOKEN", hide_env_values = true)]
    pub purge_token: Option<String>,

    /// stale-while-revalidate window for responses that do not set one (e.g. `0s`, `30s`).
    #[arg(long, env = "EDGE_STALE_WHILE_REVALIDATE", default_value = "0s", value_parser = parse_duration)]
    pub stale_while_revalidate: Duration,

    /// stale-if-error window for responses that do not set one.
    #[arg(long, env = "EDGE_STALE_IF_ERROR", default_value = "60s", value_parser = parse_duration)]
    pub stale_if_error: Duration,

    /// How long a stale object with a validator is kept for revalidation.
    #[arg(long, env = "EDGE_KEEP_STALE", default_value = "1h", value_parser = parse_duration)]
    pub keep_stale: Duration,

    /// Upstream TCP connect timeout.
    #[arg(long, env = "EDGE_CONNECT_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub connect_timeout: Duration,

    /// Upstream time to response headers.
    #[arg(long, env = "EDGE_FIRST_BYTE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub first_byte_timeout: Duration,

    /// Upstream idle time between body chunks.
    #[arg(long, env = "EDGE_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub read_timeout: Duration,

    /// Total time for one cache fill (upstream fetch of a cacheable object).
    #[arg(long, env = "EDGE_FILL_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub fill_timeout: Duration,

    /// Time a client has to send its request head (slower connections are closed), and
    /// longest pause in a request body it uploads (408).
    #[arg(long, env = "EDGE_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,

    /// Largest request head accepted; larger gets 431.
    #[arg(long, env = "EDGE_MAX_HEADER_SIZE", default_value = "32KiB", value_parser = parse_size)]
    pub max_header_size: u64,
}

impl Config {
    /// A configuration with every default, for tests and embedding.
    pub fn new(origin: reqwest::Url) -> Self {
        let mut c = Self::parse_from(["edge"]);
        c.origin = vec![origin];
        c
    }

    /// The cache identifier: `--name`, else `<hostname>:<port>`, shaped into an
    /// RFC 8941 token as RFC 9211 §2 requires.
    pub fn node_name(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_default();
        let host: String = host
            .trim()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let host = if host.starts_with(|c: char| c.is_ascii_alphabetic()) {
            host
        } else {
            format!("edge-{host}")
        };
        format!("{host}:{}", self.listen.port())
    }
}

/// Accepts an RFC 8941 §3.3.4 token, the form RFC 9211 §2 gives a cache identifier
/// (and one that fits in `Via`).
pub fn parse_token(s: &str) -> Result<String, String> {
    let mut chars = s.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '*');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~:/".contains(c));
    if first_ok && rest_ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "{s:?} is not a token: start with a letter, then letters, digits or !#$%&'*+-.^_`|~:/"
        ))
    }
}

/// One member of a peer list: the name it goes by (its `--name`) and its proxy URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    pub name: String,
    pub url: reqwest::Url,
}

/// Parses a `--peers` entry, `NAME=URL`.
pub fn parse_peer(s: &str) -> Result<PeerSpec, String> {
    let (name, url) = s
        .split_once('=')
        .ok_or_else(|| format!("peer {s:?} is not NAME=URL"))?;
    Ok(PeerSpec {
        name: parse_token(name.trim())?,
        url: parse_base_url(url.trim())?,
    })
}

/// Parses an upstream or peer base URL: `http` or `https` with a host.
pub fn parse_base_url(s: &str) -> Result<reqwest::Url, String> {
    let url: reqwest::Url = s.parse().map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err(format!("{s:?} is not an http(s) URL with a host"));
    }
    Ok(url)
}

/// Parses a byte size: plain bytes, or a number with `K/M/G/T` (powers of 1000, with or
/// without `B`) or `KiB/MiB/GiB/TiB` (powers of 1024). Case-insensitive.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num: f64 = num.parse().map_err(|_| format!("invalid size {s:?}"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "m" | "mb" => 1000_u64.pow(2),
        "g" | "gb" => 1000_u64.pow(3),
        "t" | "tb" => 1000_u64.pow(4),
        "ki" | "kib" => 1 << 10,
        "mi" | "mib" => 1 << 20,
        "gi" | "gib" => 1 << 30,
        "ti" | "tib" => 1 << 40,
        other => return Err(format!("unknown size unit {other:?} in {s:?}")),
    };
    let bytes = num * mult as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("size out of range: {s:?}"));
    }
    Ok(bytes as u64)
}

/// Parses a duration: seconds, or a number with `ms`, `s`, `m`, `h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n.saturating_mul(60))),
        "h" => Ok(Duration::from_secs(n.saturating_mul(3600))),
        other => Err(format!("unknown duration unit {other:?} in {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        for bad in [
            "",
            "MiB",
            "12XB",
            "-1",
            "1e999GiB",
            "99999999999999999999TiB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tokens() {
        for ok in ["e1", "edge-1", "eu-west:8081", "host.example/1"] {
            assert_eq!(parse_token(ok).as_deref(), Ok(ok));
        }
        for bad in ["", "1edge", "my edge", "a,b", "a;b", "\"q\""] {
            assert!(parse_token(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        let ok = [
            ("5", 5_000),
            ("5s", 5_000),
            ("250ms", 250),
            ("2m", 120_000),
            ("1h", 3_600_000),
        ];
        for (s, ms) in ok {
            assert_eq!(parse_duration(s), Ok(Duration::from_millis(ms)), "{s}");
        }
        for bad in ["", "s", "5d", "1.5s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn peers_and_urls() {
        let p = parse_peer("edge-2=http://10.0.0.2:8081/").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.name, "edge-2");
        assert_eq!(p.url.as_str(), "http://10.0.0.2:8081/");
        for bad in [
            "edge-2",
            "=http://h/",
            "2edge=http://h/",
            "e=ftp://h/",
            "e=h:80",
            "e=",
        ] {
            assert!(parse_peer(bad).is_err(), "{bad}");
        }
        let c = Config::parse_from([
            "edge",
            "--origin",
            "http://a:1/,http://b:2/",
            "--peers",
            "e1=http://h1:8081/, e2=http://h2:8081/",
        ]);
        let origins: Vec<&str> = c.origin.iter().map(reqwest::Url::as_str).collect();
        assert_eq!(origins, ["http://a:1/", "http://b:2/"]);
        assert_eq!(c.peers.len(), 2);
        assert_eq!(c.peers[1].name, "e2");
        assert!(Config::try_parse_from(["edge", "--origin", "file:///x"]).is_err());
    }

    #[test]
    fn env_and_defaults() {
        let c = Config::parse_from([
            "edge",
            "--origin",
            "http://127.0.0.1:9/",
            "--cache-size",
            "2GB",
            "--name",
            "e1",
        ]);
        assert_eq!(c.cache_size, 2_000_000_000);
        assert_eq!(c.listen.to_string(), "127.0.0.1:8081");
        assert_eq!(c.node_name(), "e1");
        let d = Config::new(
            "http://127.0.0.1:9/"
                .parse()
                .unwrap_or_else(|_| unreachable!()),
        );
        assert!(d.node_name().ends_with(":8081"));
        assert_eq!(d.cache_size, 1 << 30);
    }
}
