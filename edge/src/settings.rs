//! Cluster settings: upstreams, peers and health checks, from flags and an optional
//! TOML file (`--config`) that SIGHUP re-reads. Flags override the file, field by field.
//!
//! ```toml
//! upstreams = ["http://origin-a:8080/", "http://origin-b:8080/"]
//! upstream_health_path = "/healthz"
//!
//! [health]
//! interval = "1s"
//! timeout = "500ms"
//! rise = 2
//! fall = 2
//!
//! [[peers]]
//! name = "edge-1"
//! url = "http://10.0.0.1:8081/"
//! ```

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use http_rules::cli::{NamedUrl, parse_base_url, parse_duration, parse_name};
use serde::Deserialize;

use crate::config::Config;
use crate::health::HealthParams;

const DEFAULT_UPSTREAM_HEALTH_PATH: &str = "/healthz";

/// The resolved, validated cluster settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// In priority order: primary first, then backups.
    pub upstreams: Vec<reqwest::Url>,
    pub upstream_health_path: String,
    pub peers: Vec<NamedUrl>,
    pub health: HealthParams,
}

/// Why settings were rejected; always one line, as it is logged on SIGHUP.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("no --config file to reload")]
    NoFile,
    /// The cause is in the message (not a `source`), so the logged line is complete.
    #[error("cannot read {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: {msg}", path.display())]
    Parse { msg: String, path: PathBuf },
    #[error("{0}")]
    Invalid(String),
}

/// The TOML file. Unknown keys are errors, so that a typo is not silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    #[serde(default)]
    pub upstreams: Vec<String>,
    pub upstream_health_path: Option<String>,
    #[serde(default)]
    pub peers: Vec<PeerEntry>,
    #[serde(default)]
    pub health: HealthFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerEntry {
    pub name: String,
    pub url: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthFile {
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub rise: Option<u32>,
    pub fall: Option<u32>,
}

impl ClusterFile {
    /// Parses a file's text; errors name the line.
    pub fn parse(text: &str, path: &Path) -> Result<Self, SettingsError> {
        toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| {
                text.as_bytes()[..s.start.min(text.len())]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count()
                    + 1
            });
            let msg = e.message().replace('\n', " ");
            let msg = match line {
                Some(n) => format!("line {n}: {msg}"),
                None => msg,
            };
            SettingsError::Parse {
                msg,
                path: path.to_owned(),
            }
        })
    }

    pub fn read(path: &Path) -> Result<Self, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|error| SettingsError::Read {
            path: path.to_owned(),
            error,
        })?;
        Self::parse(&text, path)
    }
}

impl Settings {
    /// The settings in force for `cfg`: its `--config` file (read now) under its flags.
    pub fn load(cfg: &Config) -> Result<Self, SettingsError> {
        let file = match &cfg.config {
            Some(path) => ClusterFile::read(path)?,
            None => ClusterFile::default(),
        };
        Self::merge(cfg, file)
    }

    /// Flags over file values over defaults, then validation.
    pub fn merge(cfg: &Config, file: ClusterFile) -> Result<Self, SettingsError> {
        let invalid = SettingsError::Invalid;
        let upstreams = if cfg.origin.is_empty() {
            file.upstreams
                .iter()
                .map(|u| parse_base_url(u).map_err(|e| invalid(format!("upstreams: {e}"))))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            cfg.origin.clone()
        };
        if upstreams.is_empty() {
            return Err(invalid(
                "no upstream: give --origin URL[,URL…] or `upstreams` in the --config file".into(),
            ));
        }
        let peers = if cfg.peers.is_empty() {
            file.peers
                .iter()
                .map(|p| {
                    Ok(NamedUrl {
                        name: parse_name(&p.name)
                            .map_err(|e| invalid(format!("peers: name {e}")))?,
                        url: parse_base_url(&p.url)
                            .map_err(|e| invalid(format!("peers: {}: {e}", p.name)))?,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?
        } else {
            cfg.peers.clone()
        };
        let mut names = HashSet::new();
        if let Some(dup) = peers.iter().find(|p| !names.insert(p.name.as_str())) {
            return Err(invalid(format!("peers: {} is listed twice", dup.name)));
        }
        let upstream_health_path = cfg
            .upstream_health_path
            .clone()
            .or(file.upstream_health_path)
            .unwrap_or_else(|| DEFAULT_UPSTREAM_HEALTH_PATH.to_owned());
        if !upstream_health_path.starts_with('/') {
            return Err(invalid(format!(
                "upstream health path {upstream_health_path:?} must start with /"
            )));
        }
        let d = HealthParams::default();
        let duration = |flag, text: Option<String>, default, what: &str| match (flag, text) {
            (Some(v), _) => Ok(v),
            (None, Some(t)) => {
                parse_duration(&t).map_err(|e| invalid(format!("health.{what}: {e}")))
            }
            (None, None) => Ok(default),
        };
        let health = HealthParams {
            interval: duration(
                cfg.health_interval,
                file.health.interval,
                d.interval,
                "interval",
            )?,
            timeout: duration(
                cfg.health_timeout,
                file.health.timeout,
                d.timeout,
                "timeout",
            )?,
            rise: cfg.health_rise.or(file.health.rise).unwrap_or(d.rise),
            fall: cfg.health_fall.or(file.health.fall).unwrap_or(d.fall),
        };
        if health.interval.is_zero() || health.timeout.is_zero() {
            return Err(invalid(
                "health interval and timeout must be above 0".into(),
            ));
        }
        if health.rise == 0 || health.fall == 0 {
            return Err(invalid("health rise and fall must be at least 1".into()));
        }
        Ok(Settings {
            upstreams,
            upstream_health_path,
            peers,
            health,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::time::Duration;

    use clap::Parser;

    use super::*;

    const FULL: &str = r#"
upstreams = ["http://origin-a:8080/", "http://origin-b:8080/"]
upstream_health_path = "/ready"

[health]
interval = "250ms"
timeout = "100ms"
rise = 3
fall = 4

[[peers]]
name = "edge-1"
url = "http://10.0.0.1:8081/"

[[peers]]
name = "edge-2"
url = "http://10.0.0.2:8081/"
"#;

    fn cfg(args: &[&str]) -> Config {
        Config::parse_from(std::iter::once("edge").chain(args.iter().copied()))
    }

    fn file(text: &str) -> ClusterFile {
        ClusterFile::parse(text, Path::new("c.toml")).unwrap()
    }

    #[test]
    fn file_values_apply_when_no_flag_is_given() {
        let s = Settings::merge(&cfg(&[]), file(FULL)).unwrap();
        let ups: Vec<&str> = s.upstreams.iter().map(reqwest::Url::as_str).collect();
        assert_eq!(ups, ["http://origin-a:8080/", "http://origin-b:8080/"]);
        assert_eq!(s.upstream_health_path, "/ready");
        assert_eq!(s.peers.len(), 2);
        assert_eq!(s.peers[1].name, "edge-2");
        assert_eq!(
            s.health,
            HealthParams {
                interval: Duration::from_millis(250),
                timeout: Duration::from_millis(100),
                rise: 3,
                fall: 4,
            }
        );
    }

    #[test]
    fn flags_override_the_file_field_by_field() {
        let c = cfg(&[
            "--origin",
            "http://flag:1/",
            "--peers",
            "solo=http://s:8081/",
            "--health-rise",
            "5",
            "--health-interval",
            "2s",
        ]);
        let s = Settings::merge(&c, file(FULL)).unwrap();
        assert_eq!(s.upstreams.len(), 1);
        assert_eq!(s.upstreams[0].as_str(), "http://flag:1/");
        assert_eq!(s.peers.len(), 1);
        assert_eq!(s.health.rise, 5);
        assert_eq!(s.health.fall, 4, "from the file");
        assert_eq!(s.health.interval, Duration::from_secs(2));
        assert_eq!(s.upstream_health_path, "/ready");
    }

    #[test]
    fn defaults_without_a_file() {
        let s = Settings::merge(&cfg(&["--origin", "http://o/"]), ClusterFile::default()).unwrap();
        assert_eq!(s.health, HealthParams::default());
        assert_eq!(s.upstream_health_path, "/healthz");
        assert!(s.peers.is_empty());
    }

    #[test]
    fn bad_settings_are_rejected_in_one_line() {
        let table = [
            ("", "no upstream"),
            ("upstreams = [\"ftp://x/\"]", "upstreams:"),
            (
                "upstreams = [\"http://o/\"]\nupstream_health_path = \"ready\"",
                "must start with /",
            ),
            (
                "upstreams = [\"http://o/\"]\n[health]\nrise = 0",
                "at least 1",
            ),
            (
                "upstreams = [\"http://o/\"]\n[health]\ninterval = \"0s\"",
                "above 0",
            ),
            (
                "upstreams = [\"http://o/\"]\n[health]\ntimeout = \"soon\"",
                "health.timeout",
            ),
            (
                "upstreams = [\"http://o/\"]\n[[peers]]\nname = \"a\"\nurl = \"http://a/\"\n[[peers]]\nname = \"a\"\nurl = \"http://b/\"",
                "listed twice",
            ),
            (
                "upstreams = [\"http://o/\"]\n[[peers]]\nname = \"1a\"\nurl = \"http://a/\"",
                "peers: name",
            ),
        ];
        for (text, want) in table {
            let err = Settings::merge(&cfg(&[]), file(text))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
        for (text, want) in [
            ("upstreams = [\"http://o/\"]\npeer = []", "line 2"),
            ("upstreams = [", "line 1"),
            (
                "upstreams = [\"http://o/\"]\n\n[health]\nrise = \"two\"",
                "line 4",
            ),
        ] {
            let err = ClusterFile::parse(text, Path::new("c.toml"))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("c.toml: "), "{err}");
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }
}
