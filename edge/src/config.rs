//! Command-line / environment configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::Parser;
use http_rules::cli::{
    MAX_NAME_LEN, NamedUrl, parse_base_url, parse_duration, parse_name, parse_size,
};
use http_rules::{SharedClock, SystemClock};

use crate::conn::ConnectionCounters;

const DEFAULT_FILL_MEMORY: u64 = 64 << 20;

/// A header field name (RFC 9110 §5.1: a token), case-insensitive.
fn parse_field_name(s: &str) -> Result<http::HeaderName, String> {
    http::HeaderName::from_bytes(s.trim().as_bytes())
        .map_err(|_| format!("{s:?} is not a header field name"))
}

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
    #[arg(long, env = "EDGE_PEERS", value_delimiter = ',', value_parser = NamedUrl::from_str)]
    pub peers: Vec<NamedUrl>,

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

    /// Memory for bodies on their way into the cache, all fills together [default:
    /// 64MiB, or --cache-size if smaller]. A fill that finds no room streams its body
    /// through uncached, reading from the upstream only as fast as its slowest client
    /// takes it.
    #[arg(long, env = "EDGE_FILL_MEMORY", value_parser = parse_size)]
    pub fill_memory: Option<u64>,

    /// Cache identifier in `Cache-Status`, `Via` and `--peers` (default:
    /// `<hostname>-<port>`): a letter, then letters, digits, `.`, `-` or `_`, such as
    /// `edge-1` or `eu-west-8081`.
    #[arg(long, env = "EDGE_NAME", value_parser = parse_name)]
    pub name: Option<String>,

    /// A targeted cache-control field of this edge's own (RFC 9213), e.g.
    /// `Rivulet-CDN-Cache-Control`: when a response carries it (valid, not empty), it
    /// decides the caching, over `CDN-Cache-Control`, which decides over
    /// `Cache-Control` and `Expires`.
    #[arg(long, env = "EDGE_TARGETED_CACHE_CONTROL", value_parser = parse_field_name)]
    pub targeted_cache_control: Option<http::HeaderName>,

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

    /// A client that takes none of its response for this long is disconnected.
    #[arg(long, env = "EDGE_SEND_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub send_timeout: Duration,

    /// Most client connections open at once; more are answered 503 and closed.
    #[arg(long, env = "EDGE_MAX_CONNECTIONS", default_value = "10000")]
    pub max_connections: usize,

    /// Requests to peers and upstreams in flight at once (each holds its connection and
    /// its read buffer until its body is done); more wait for a free slot up to
    /// --connect-timeout + --first-byte-timeout, then get 503. Protects the origin and
    /// bounds memory under a burst of misses.
    #[arg(long, env = "EDGE_MAX_UPSTREAM_REQUESTS", default_value = "256")]
    pub max_upstream_requests: usize,

    /// Largest request head accepted; larger gets 431.
    #[arg(long, env = "EDGE_MAX_HEADER_SIZE", default_value = "32KiB", value_parser = parse_size)]
    pub max_header_size: u64,

    /// Where the edge reads the time for every cache decision (freshness, `Age`, the
    /// stale windows, the `Date` it adds): the system clock, or a test's manual clock.
    #[arg(skip = SystemClock::shared())]
    pub clock: SharedClock,

    /// The server loop's connection counters, read by `/.edge/metrics`.
    #[arg(skip)]
    pub connections: ConnectionCounters,
}

impl Config {
    /// A configuration with every default, for tests and embedding.
    pub fn new(origin: reqwest::Url) -> Self {
        let mut c = Self::parse_from(["edge"]);
        c.origin = vec![origin];
        c
    }

    /// The fill budget in force: `--fill-memory`, else 64 MiB or the cache size if
    /// smaller (an object larger than the cache could not be stored anyway).
    pub fn fill_memory(&self) -> u64 {
        self.fill_memory
            .unwrap_or_else(|| DEFAULT_FILL_MEMORY.min(self.cache_size))
    }

    /// The cache identifier: `--name`, else `<hostname>-<port>`, shaped into the name
    /// grammar of [`parse_name`] (which makes it an RFC 8941 token, as RFC 9211 §2 wants
    /// of a cache identifier, and a valid peer name).
    pub fn node_name(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_default();
        default_name(&host, self.listen.port())
    }
}

/// `<host>-<port>` as a name: other characters become `-`, a host not starting with a
/// letter gets `edge-` in front, and a long host is cut so that the port always fits.
fn default_name(host: &str, port: u16) -> String {
    let mut name: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        name.insert_str(0, "edge-");
    }
    let suffix = format!("-{port}");
    // Only ASCII is left, so any byte index is a character boundary.
    name.truncate(MAX_NAME_LEN - suffix.len());
    name + &suffix
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::try_parse_from(std::iter::once("edge").chain(args.iter().copied()))
    }

    #[test]
    fn flags_use_the_shared_grammars() {
        // (flag, value, accepted): the grammars are http_rules::cli's, tested there in
        // full; these rows pin that every kind of flag goes through them.
        let rows = [
            ("--cache-size", "512MiB", true),
            ("--cache-size", "1.5KiB", true),
            ("--cache-size", "12XB", false),
            ("--cache-size", "1e999GiB", false),
            ("--cache-size", "99999999999999999999TiB", false),
            ("--max-header-size", "-1", false),
            ("--stale-if-error", "250ms", true),
            ("--stale-if-error", "2m", true),
            // One duration grammar for every Rivulet command (issue 13): decimals too.
            ("--keep-stale", "1.5s", true),
            ("--fill-timeout", "5d", false),
            ("--health-interval", "", false),
            ("--name", "edge-1", true),
            ("--name", "eu-west-8081", true),
            ("--name", "1edge", false),
            ("--name", "my edge", false),
            ("--name", "a,b", false),
            ("--name", "a;b", false),
            ("--name", "\"q\"", false),
            // One name grammar for names and peers: a pathway ID has no `:` nor `/`.
            ("--name", "eu-west:8081", false),
            ("--peers", "edge-2=http://10.0.0.2:8081/", true),
            ("--peers", "edge-2", false),
            ("--peers", "=http://h/", false),
            ("--peers", "2edge=http://h/", false),
            ("--peers", "e=ftp://h/", false),
            ("--peers", "e=h:80", false),
            ("--peers", "e=", false),
            ("--origin", "http://h:8080", true),
            ("--origin", "file:///x", false),
            ("--origin", "http://h/?q=1", false),
            (
                "--targeted-cache-control",
                "Rivulet-CDN-Cache-Control",
                true,
            ),
            ("--targeted-cache-control", "not a name", false),
            ("--fill-memory", "32MiB", true),
            ("--send-timeout", "5s", true),
            ("--max-connections", "100", true),
            ("--max-connections", "-1", false),
            ("--max-upstream-requests", "64", true),
        ];
        for (flag, value, ok) in rows {
            assert_eq!(parse(&[flag, value]).is_ok(), ok, "{flag} {value:?}");
        }
    }

    #[test]
    fn peers_and_urls() {
        let c = Config::parse_from([
            "edge",
            "--origin",
            "http://a:1/,http://b:2",
            "--peers",
            "e1=http://h1:8081/, e2=http://h2:8081/",
        ]);
        let origins: Vec<&str> = c.origin.iter().map(reqwest::Url::as_str).collect();
        assert_eq!(origins, ["http://a:1/", "http://b:2/"]);
        assert_eq!(c.peers.len(), 2);
        assert_eq!(c.peers[1].name, "e2");
        assert_eq!(c.peers[1].url.as_str(), "http://h2:8081/");
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
        assert!(d.node_name().ends_with("-8081"), "{}", d.node_name());
        assert_eq!(parse_name(&d.node_name()), Ok(d.node_name()));
        assert_eq!(d.cache_size, 1 << 30);
        assert_eq!(d.stale_if_error, Duration::from_secs(60));
    }

    #[test]
    fn default_names_fit_the_name_grammar() {
        let long = "h".repeat(100);
        let rows = [
            ("edge-host", 8081, "edge-host-8081".to_owned()),
            ("web01.example.com\n", 80, "web01.example.com-80".to_owned()),
            ("host_with:colon", 1, "host_with-colon-1".to_owned()),
            ("10.0.0.1", 8081, "edge-10.0.0.1-8081".to_owned()),
            ("", 8081, "edge--8081".to_owned()),
            ("hôte", 8081, "h-te-8081".to_owned()),
            (long.as_str(), 65535, format!("{}-65535", "h".repeat(58))),
        ];
        for (host, port, want) in rows {
            let name = default_name(host, port);
            assert_eq!(name, want, "{host:?}");
            assert_eq!(parse_name(&name), Ok(name.clone()), "{host:?}");
        }
    }
}
