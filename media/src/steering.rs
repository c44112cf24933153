//! Content steering: one presentation offered over several delivery paths (CDNs, edges),
//! with a steering server that tells clients which to prefer.
//!
//! HLS calls a path a *Pathway* (`EXT-X-CONTENT-STEERING`, `PATHWAY-ID` on each variant,
//! draft-pantos-hls-rfc8216bis §4.4.6.6, §7.1); DASH calls it a *service location*
//! (`BaseURL@serviceLocation` and `ContentSteering`, DASH-IF CTS 00100). Both fetch the
//! same JSON steering manifest, differing only in the name of the priority list.
//!
//! The model keeps one rendition set (that of the default pathway) and each pathway as the
//! base URL the presentation lives under there: a URI on one pathway moves to another by
//! swapping the base ([`Delivery::rebase`]). Manifests whose pathways are not such copies
//! of one another keep only the pathways that are.

use serde::{Deserialize, Serialize};

use crate::{MediaError, Result};

/// One delivery path of a presentation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pathway {
    /// The HLS `PATHWAY-ID` / DASH `@serviceLocation`.
    pub id: String,
    /// Absolute URL of the presentation's root on this path, ending with `/`: the
    /// manifest-relative URIs of the presentation resolve against it.
    pub base: String,
}

/// Where a steering client fetches its steering manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SteeringServer {
    /// The steering manifest URI (HLS `SERVER-URI`, the DASH `ContentSteering` text),
    /// as written in the manifest (it may be relative to the manifest).
    pub uri: String,
    /// The pathway to start on before the first steering manifest arrives.
    pub default_pathway: Option<String>,
    /// DASH `@queryBeforeStart`: fetch the steering manifest before the first segment.
    pub query_before_start: bool,
}

/// The delivery paths of a presentation; empty when it is served from one place.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub pathways: Vec<Pathway>,
    pub steering: Option<SteeringServer>,
}

impl Delivery {
    pub fn is_empty(&self) -> bool {
        self.pathways.is_empty() && self.steering.is_none()
    }

    pub fn pathway(&self, id: &str) -> Option<&Pathway> {
        self.pathways.iter().find(|p| p.id == id)
    }

    /// The pathway a client starts on: the steering server's default when listed, else
    /// the first.
    pub fn default_pathway(&self) -> Option<&Pathway> {
        self.steering
            .as_ref()
            .and_then(|s| s.default_pathway.as_deref())
            .and_then(|id| self.pathway(id))
            .or_else(|| self.pathways.first())
    }

    /// `uri` (on pathway `from`) moved to pathway `to`; `None` when either pathway is
    /// unknown or `uri` does not live under `from`.
    pub fn rebase(&self, uri: &str, from: &str, to: &str) -> Option<String> {
        let rest = uri.strip_prefix(self.pathway(from)?.base.as_str())?;
        Some(format!("{}{rest}", self.pathway(to)?.base))
    }

    /// The pathways in the order a steering manifest prefers them. Pathways it does not
    /// list are dropped (HLS §7.2: the client chooses among listed pathways only), unless
    /// it lists none that we know, when every pathway stays usable in manifest order.
    pub fn ordered(&self, priority: &[String]) -> Vec<&Pathway> {
        let listed: Vec<&Pathway> = priority.iter().filter_map(|id| self.pathway(id)).collect();
        if listed.is_empty() {
            self.pathways.iter().collect()
        } else {
            listed
        }
    }
}

/// Which protocol's spelling a steering exchange uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SteeringProtocol {
    Hls,
    Dash,
}

impl SteeringProtocol {
    /// The JSON member holding the priority list.
    pub fn priority_key(self) -> &'static str {
        match self {
            Self::Hls => "PATHWAY-PRIORITY",
            Self::Dash => "SERVICE-LOCATION-PRIORITY",
        }
    }

    /// The query parameter naming the client's current pathway (HLS §7.2.1 `_HLS_pathway`,
    /// DASH-IF CTS 00100 `_DASH_pathway`).
    pub fn pathway_param(self) -> &'static str {
        match self {
            Self::Hls => "_HLS_pathway",
            Self::Dash => "_DASH_pathway",
        }
    }

    /// The query parameter carrying the client's throughput estimate in bit/s.
    pub fn throughput_param(self) -> &'static str {
        match self {
            Self::Hls => "_HLS_throughput",
            Self::Dash => "_DASH_throughput",
        }
    }
}

/// A steering manifest (HLS §7.1, DASH-IF CTS 00100 §6): which pathways to use, in order,
/// and when to ask again.
#[derive(Debug, Clone, PartialEq)]
pub struct SteeringManifest {
    pub version: u32,
    /// Seconds until the client fetches the manifest again.
    pub ttl: u64,
    /// Where to fetch it next time (relative to this manifest's URI); the same URI when
    /// absent.
    pub reload_uri: Option<String>,
    pub priority: Vec<String>,
}

impl SteeringManifest {
    /// The JSON text in `protocol`'s spelling.
    pub fn to_json(&self, protocol: SteeringProtocol) -> String {
        let mut object = serde_json::Map::new();
        object.insert("VERSION".into(), self.version.into());
        object.insert("TTL".into(), self.ttl.into());
        if let Some(uri) = &self.reload_uri {
            object.insert("RELOAD-URI".into(), uri.clone().into());
        }
        object.insert(protocol.priority_key().into(), self.priority.clone().into());
        serde_json::Value::Object(object).to_string()
    }

    /// Reads a steering manifest of either spelling. A missing `TTL` means 300 s (HLS §7.1).
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = |why: String| MediaError::Invalid(format!("steering manifest: {why}"));
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let object = value
            .as_object()
            .ok_or_else(|| invalid("not a JSON object".into()))?;
        let version = object
            .get("VERSION")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| invalid("no VERSION".into()))?;
        if version != 1 {
            return Err(invalid(format!("unsupported VERSION {version}")));
        }
        let ttl = match object.get("TTL") {
            None => 300,
            Some(v) => v
                .as_u64()
                .ok_or_else(|| invalid("TTL is not a whole number of seconds".into()))?,
        };
        let reload_uri = match object.get("RELOAD-URI") {
            None => None,
            Some(v) => Some(
                v.as_str()
                    .ok_or_else(|| invalid("RELOAD-URI is not a string".into()))?
                    .to_string(),
            ),
        };
        let list = [SteeringProtocol::Hls, SteeringProtocol::Dash]
            .iter()
            .find_map(|p| object.get(p.priority_key()))
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| invalid("no priority list".into()))?;
        let priority = list
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| invalid("priority list holds a non-string".into()))?;
        Ok(Self {
            version: 1,
            ttl,
            reload_uri,
            priority,
        })
    }
}

/// The base URLs of two URIs that name the same resource on two pathways: the longest
/// common suffix, cut at a `/`, is the part they share. `None` when nothing but the file
/// name is shared or the two are equal.
pub(crate) fn split_bases(a: &str, b: &str) -> Option<(String, String)> {
    let common = a
        .bytes()
        .rev()
        .zip(b.bytes().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let shared = &a[a.len() - common..];
    // The shared part must start right after a `/` of both URIs.
    let cut = shared.find('/')? + 1;
    let a_base = &a[..a.len() - common + cut];
    let b_base = &b[..b.len() - common + cut];
    (a_base != b_base).then(|| (a_base.to_string(), b_base.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn delivery() -> Delivery {
        Delivery {
            pathways: vec![
                Pathway {
                    id: "edge-1".into(),
                    base: "http://10.0.0.2:8081/vod/sample/".into(),
                },
                Pathway {
                    id: "edge-2".into(),
                    base: "http://10.0.0.3:8081/vod/sample/".into(),
                },
            ],
            steering: Some(SteeringServer {
                uri: "/steering/hls".into(),
                default_pathway: Some("edge-2".into()),
                query_before_start: false,
            }),
        }
    }

    #[test]
    fn rebase_swaps_the_base() {
        let d = delivery();
        let cases = [
            (
                "http://10.0.0.2:8081/vod/sample/270p/3.m4s",
                "edge-1",
                "edge-2",
                Some("http://10.0.0.3:8081/vod/sample/270p/3.m4s"),
            ),
            ("http://elsewhere/270p/3.m4s", "edge-1", "edge-2", None),
            (
                "http://10.0.0.2:8081/vod/sample/x",
                "edge-1",
                "edge-9",
                None,
            ),
        ];
        for (uri, from, to, want) in cases {
            assert_eq!(d.rebase(uri, from, to).as_deref(), want, "{uri}");
        }
        assert_eq!(d.default_pathway().unwrap().id, "edge-2");
    }

    #[test]
    fn ordering_follows_the_priority_list() {
        let d = delivery();
        let ids = |p: &[&str]| -> Vec<String> {
            let p: Vec<String> = p.iter().map(|s| s.to_string()).collect();
            d.ordered(&p).iter().map(|p| p.id.clone()).collect()
        };
        assert_eq!(ids(&["edge-2", "edge-1"]), ["edge-2", "edge-1"]);
        assert_eq!(ids(&["edge-2", "gone"]), ["edge-2"]);
        assert_eq!(ids(&["gone"]), ["edge-1", "edge-2"]);
        assert_eq!(ids(&[]), ["edge-1", "edge-2"]);
    }

    #[test]
    fn manifest_round_trips_in_both_spellings() {
        let m = SteeringManifest {
            version: 1,
            ttl: 10,
            reload_uri: Some("/steering/hls?session=abc".into()),
            priority: vec!["edge-2".into(), "edge-1".into()],
        };
        for protocol in [SteeringProtocol::Hls, SteeringProtocol::Dash] {
            let text = m.to_json(protocol);
            assert!(text.contains(protocol.priority_key()), "{text}");
            assert_eq!(SteeringManifest::parse(&text).unwrap(), m);
        }
        let minimal = SteeringManifest::parse(r#"{"VERSION":1,"PATHWAY-PRIORITY":["a"]}"#).unwrap();
        assert_eq!(minimal.ttl, 300);
        assert_eq!(minimal.reload_uri, None);
        for bad in [
            "",
            "[]",
            r#"{"VERSION":2,"PATHWAY-PRIORITY":[]}"#,
            r#"{"VERSION":1}"#,
            r#"{"VERSION":1,"TTL":-1,"PATHWAY-PRIORITY":[]}"#,
            r#"{"VERSION":1,"PATHWAY-PRIORITY":[1]}"#,
        ] {
            assert!(SteeringManifest::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bases_split_at_a_path_boundary() {
        let cases = [
            (
                "http://e1:8081/vod/s/270p/playlist.m3u8",
                "http://e2:8081/vod/s/270p/playlist.m3u8",
                Some(("http://e1:8081/", "http://e2:8081/")),
            ),
            (
                "http://a.cdn/x/vod/s/270p/p.m3u8",
                "http://b.cdn/vod/s/270p/p.m3u8",
                Some(("http://a.cdn/x/", "http://b.cdn/")),
            ),
            ("http://a/p.m3u8", "http://a/p.m3u8", None),
            ("http://a/x.m3u8", "http://b/y.m3u8", None),
        ];
        for (a, b, want) in cases {
            let got = split_bases(a, b);
            assert_eq!(
                got.as_ref().map(|(x, y)| (x.as_str(), y.as_str())),
                want,
                "{a} {b}"
            );
        }
    }
}
