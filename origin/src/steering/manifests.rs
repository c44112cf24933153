//! The manifests steering changes: every edge listed as a pathway (HLS `PATHWAY-ID` and
//! `EXT-X-CONTENT-STEERING`, rfc8216bis §4.4.6.6; DASH `BaseURL@serviceLocation` and
//! `ContentSteering`, DASH-IF CTS 00100), written by `media`, and the cache that keeps the
//! steered VOD manifests so a request costs a look-up, not a parse, a write and a hash.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http_rules::cli::NamedUrl;
use media::{Delivery, Pathway, Presentation, SteeringProtocol, SteeringServer};

use crate::entity::tag_of;
use crate::steering::policy::{START_PARAM, protocol_name};
use crate::store::StoredFile;
use http_rules::etag::EntityTag;

/// The presentation under `root` (`vod/sample`, `live/live`) on every edge, for
/// `protocol`'s manifests. The steering URI is an absolute path, so it resolves to
/// whichever host served the manifest (an edge proxies it uncached: `no-store`).
pub fn delivery(edges: &[NamedUrl], root: &str, protocol: SteeringProtocol) -> Delivery {
    Delivery {
        pathways: edges
            .iter()
            .map(|e| Pathway {
                id: e.name.clone(),
                base: format!("{}{root}/", e.url),
            })
            .collect(),
        steering: Some(SteeringServer {
            uri: format!("/steering/{}?{START_PARAM}=1", protocol_name(protocol)),
            default_pathway: edges.first().map(|e| e.name.clone()),
            // DASH: ask before the first segment, so a new player starts on the edge
            // chosen for it rather than on the default (HLS asks at once anyway).
            query_before_start: protocol == SteeringProtocol::Dash,
        }),
    }
}

/// Why a steered manifest could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("invalid presentation.json: {0}")]
    Model(#[from] serde_json::Error),
    #[error(transparent)]
    Media(#[from] media::MediaError),
}

/// What a steered VOD manifest is written from.
#[derive(Debug, Clone, Copy)]
pub enum VodSource<'a> {
    /// The asset's `presentation.json` (ours): the manifest is written from the model.
    Model(&'a [u8]),
    /// A multivariant playlist or MPD someone else packaged (its text, and its path in the
    /// asset folder): edited in place, so everything the model cannot say (subtitles,
    /// I-frame playlists, byte ranges, `SegmentList`, `SegmentBase`, MPEG-TS) stays as the
    /// packager wrote it.
    Text { text: &'a str, path: &'a str },
}

/// A VOD multivariant playlist or static MPD with `delivery`'s pathways, from `source`.
pub fn write_vod(
    source: VodSource<'_>,
    delivery: Delivery,
    protocol: SteeringProtocol,
) -> Result<String, ManifestError> {
    Ok(match source {
        VodSource::Model(presentation_json) => {
            let presentation = Presentation {
                delivery,
                ..serde_json::from_slice(presentation_json)?
            };
            match protocol {
                SteeringProtocol::Hls => media::hls::write_multivariant(&presentation)?,
                SteeringProtocol::Dash => media::dash::write_static_mpd(&presentation)?,
            }
        }
        VodSource::Text { text, path } => match protocol {
            SteeringProtocol::Hls => media::hls::steer_multivariant(text, path, &delivery)?,
            SteeringProtocol::Dash => media::dash::steer_mpd(text, path, &delivery)?,
        },
    })
}

/// The version of the file a manifest was written from, as the file store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceVersion {
    pub etag: EntityTag,
    pub modified: SystemTime,
}

impl SourceVersion {
    pub fn of(file: &StoredFile) -> Self {
        Self {
            etag: file.etag.clone(),
            modified: file.last_modified,
        }
    }
}

/// A steered manifest and its strong tag, computed once.
#[derive(Debug)]
pub struct SteeredManifest {
    pub source: SourceVersion,
    pub bytes: Bytes,
    pub etag: EntityTag,
}

impl SteeredManifest {
    pub fn new(source: SourceVersion, text: String) -> Self {
        let bytes = Bytes::from(text);
        Self {
            source,
            etag: tag_of(&bytes),
            bytes,
        }
    }
}

/// Steered VOD manifests by (manifest path in the library, protocol). The edges are fixed
/// for the life of the steering state and the manifests do not depend on the steering
/// decisions, so what changes them is the file they are written from (the asset's
/// `presentation.json`, or the manifest itself): an entry serves only the version it was
/// written from. Bounded in bytes; the least recently used go first.
#[derive(Debug)]
pub struct ManifestCache {
    entries: moka::future::Cache<(String, &'static str), Arc<SteeredManifest>>,
}

impl ManifestCache {
    pub fn new(capacity_bytes: u64) -> Self {
        let entries = moka::future::Cache::builder()
            .weigher(|key: &(String, &'static str), m: &Arc<SteeredManifest>| {
                u32::try_from(m.bytes.len() + key.0.len() + 128).unwrap_or(u32::MAX)
            })
            .max_capacity(capacity_bytes)
            .build();
        Self { entries }
    }

    /// The manifest at `path` for `protocol`, if it was written from `source`.
    pub async fn get(
        &self,
        path: &str,
        protocol: SteeringProtocol,
        source: &SourceVersion,
    ) -> Option<Arc<SteeredManifest>> {
        self.entries
            .get(&(path.to_owned(), protocol_name(protocol)))
            .await
            .filter(|m| m.source == *source)
    }

    /// Keeps `manifest` in place of any other version of it.
    pub async fn insert(
        &self,
        path: &str,
        protocol: SteeringProtocol,
        manifest: SteeredManifest,
    ) -> Arc<SteeredManifest> {
        let manifest = Arc::new(manifest);
        self.entries
            .insert(
                (path.to_owned(), protocol_name(protocol)),
                Arc::clone(&manifest),
            )
            .await;
        manifest
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use super::*;

    fn edges() -> Vec<NamedUrl> {
        ["e1=http://127.0.0.1:1", "e2=http://10.0.0.2:8081/cdn"]
            .iter()
            .map(|e| e.parse().unwrap())
            .collect()
    }

    #[test]
    fn deliveries_name_every_edge_under_the_root() {
        let d = delivery(&edges(), "vod/sample", SteeringProtocol::Dash);
        let bases: Vec<&str> = d.pathways.iter().map(|p| p.base.as_str()).collect();
        assert_eq!(
            bases,
            [
                "http://127.0.0.1:1/vod/sample/",
                "http://10.0.0.2:8081/cdn/vod/sample/"
            ]
        );
        let server = d.steering.unwrap();
        assert_eq!(server.uri, "/steering/dash?start=1");
        assert_eq!(server.default_pathway.as_deref(), Some("e1"));
        assert!(server.query_before_start);
        let hls = delivery(&edges(), "live/live", SteeringProtocol::Hls);
        let server = hls.steering.unwrap();
        assert_eq!(server.uri, "/steering/hls?start=1");
        assert!(!server.query_before_start);
        assert_eq!(hls.pathways[0].base, "http://127.0.0.1:1/live/live/");
    }

    #[tokio::test]
    async fn a_cached_manifest_serves_only_the_version_it_was_written_from() {
        let cache = ManifestCache::new(1 << 20);
        let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        let v1 = SourceVersion {
            etag: tag_of(b"one"),
            modified: at(1),
        };
        let hls = SteeringProtocol::Hls;
        assert!(cache.get("a", hls, &v1).await.is_none(), "empty");
        let kept = cache
            .insert(
                "a",
                hls,
                SteeredManifest::new(v1.clone(), "#EXTM3U\n".into()),
            )
            .await;
        assert_eq!(kept.etag, tag_of(b"#EXTM3U\n"));
        assert_eq!(cache.get("a", hls, &v1).await.unwrap().bytes, kept.bytes);
        // Another asset, another protocol: not this entry.
        assert!(cache.get("b", hls, &v1).await.is_none());
        assert!(cache.get("a", SteeringProtocol::Dash, &v1).await.is_none());
        // The file changed (content, or only its date): the entry no longer answers.
        let v2 = SourceVersion {
            etag: tag_of(b"two"),
            ..v1.clone()
        };
        let touched = SourceVersion {
            modified: at(2),
            ..v1.clone()
        };
        assert!(cache.get("a", hls, &v2).await.is_none());
        assert!(cache.get("a", hls, &touched).await.is_none());
        // Its replacement takes the place of the old version.
        cache
            .insert(
                "a",
                hls,
                SteeredManifest::new(v2.clone(), "#EXTM3U\n#2\n".into()),
            )
            .await;
        assert!(cache.get("a", hls, &v1).await.is_none());
        assert!(cache.get("a", hls, &v2).await.is_some());
    }

    #[tokio::test]
    async fn the_cache_stays_within_its_bytes() {
        let cache = ManifestCache::new(10_000);
        let v = SourceVersion {
            etag: tag_of(b"x"),
            modified: SystemTime::UNIX_EPOCH,
        };
        for i in 0..100 {
            let text = "x".repeat(1_000);
            cache
                .insert(
                    &format!("asset{i}"),
                    SteeringProtocol::Hls,
                    SteeredManifest::new(v.clone(), text),
                )
                .await;
        }
        cache.entries.run_pending_tasks().await;
        assert!(cache.entries.weighted_size() <= 10_000);
        assert!(cache.entries.entry_count() < 100);
    }

    #[test]
    fn foreign_manifests_are_edited_and_media_playlists_refused() {
        let d = || delivery(&edges(), "vod/a", SteeringProtocol::Hls);
        let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv/0.m3u8\n";
        let source = VodSource::Text {
            text: master,
            path: "hls/main.m3u8",
        };
        let text = write_vod(source, d(), SteeringProtocol::Hls).unwrap();
        assert!(
            text.contains("\nhttp://10.0.0.2:8081/cdn/vod/a/hls/v/0.m3u8\n"),
            "{text}"
        );
        let media = VodSource::Text {
            text: "#EXTM3U\n#EXTINF:2,\na.ts\n",
            path: "a.m3u8",
        };
        assert!(matches!(
            write_vod(media, d(), SteeringProtocol::Hls),
            Err(ManifestError::Media(_))
        ));
    }

    #[test]
    fn vod_manifests_are_written_from_the_model_with_the_delivery() {
        let empty = serde_json::to_vec(&Presentation {
            kind: media::PresentationKind::Vod,
            renditions: Vec::new(),
            delivery: Delivery::default(),
        })
        .unwrap();
        let rows = [
            (empty.as_slice(), true),
            (b"{}".as_slice(), false),
            (b"not json".as_slice(), false),
        ];
        for (json, parses) in rows {
            let d = delivery(&edges(), "vod/a", SteeringProtocol::Hls);
            let written = write_vod(VodSource::Model(json), d, SteeringProtocol::Hls);
            assert_eq!(
                matches!(written, Err(ManifestError::Model(_))),
                !parses,
                "{}",
                String::from_utf8_lossy(json)
            );
        }
    }
}
