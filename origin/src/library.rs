//! The library folder: one sub-folder per asset, as `media` writes them.

use std::path::{Path, PathBuf};

use crate::paths::valid_component;

/// One asset of the library, for the index page and the start-up banner.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetInfo {
    pub name: String,
    pub has_hls: bool,
    pub has_dash: bool,
    /// Seconds, from `presentation.json` when it is there and readable.
    pub duration: Option<f64>,
    /// Rendition labels (`1280x720 2850k`), lowest first.
    pub renditions: Vec<String>,
}

/// The library root.
#[derive(Debug, Clone)]
pub struct Library {
    root: PathBuf,
}

pub const HLS_MANIFEST: &str = "master.m3u8";
pub const DASH_MANIFEST: &str = "manifest.mpd";
const PRESENTATION: &str = "presentation.json";

impl Library {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Joins validated components under the root. Callers pass only components that passed
    /// [`valid_component`]; anything else yields `None` so no path can leave the library.
    pub fn resolve(&self, components: &[&str]) -> Option<PathBuf> {
        let mut path = self.root.clone();
        for c in components {
            if !valid_component(c) {
                return None;
            }
            path.push(c);
        }
        Some(path)
    }

    /// Reads what is known of one asset; `None` when it has neither manifest.
    pub async fn asset(&self, name: &str) -> Option<AssetInfo> {
        let dir = self.resolve(&[name])?;
        let exists = |file: &str| {
            let path = dir.join(file);
            async move { tokio::fs::metadata(path).await.is_ok_and(|m| m.is_file()) }
        };
        let (has_hls, has_dash) = (exists(HLS_MANIFEST).await, exists(DASH_MANIFEST).await);
        if !has_hls && !has_dash {
            return None;
        }
        let presentation = tokio::fs::read(dir.join(PRESENTATION))
            .await
            .ok()
            .and_then(|bytes| serde_json::from_slice::<media::Presentation>(&bytes).ok());
        Some(AssetInfo {
            name: name.to_owned(),
            has_hls,
            has_dash,
            duration: presentation.as_ref().map(media::Presentation::duration),
            renditions: presentation
                .iter()
                .flat_map(|p| p.renditions.iter().map(media::Rendition::label))
                .collect(),
        })
    }

    /// All assets, sorted by name. A missing library is an empty one.
    pub async fn assets(&self) -> Vec<AssetInfo> {
        let mut names = Vec::new();
        if let Ok(mut dir) = tokio::fs::read_dir(&self.root).await {
            while let Ok(Some(entry)) = dir.next_entry().await {
                if let Some(name) = entry.file_name().to_str()
                    && valid_component(name)
                {
                    names.push(name.to_owned());
                }
            }
        }
        names.sort();
        let mut assets = Vec::new();
        for name in names {
            if let Some(asset) = self.asset(&name).await {
                assets.push(asset);
            }
        }
        assets
    }
}

/// The URLs printed at start-up for one asset, relative to `base` (`http://host:port`).
pub fn asset_urls(base: &str, asset: &AssetInfo) -> Vec<(&'static str, String)> {
    let name = &asset.name;
    let mut urls = vec![("watch", format!("{base}/watch/{name}"))];
    if asset.has_hls {
        urls.push(("HLS", format!("{base}/vod/{name}/{HLS_MANIFEST}")));
    }
    if asset.has_dash {
        urls.push(("DASH", format!("{base}/vod/{name}/{DASH_MANIFEST}")));
    }
    urls
}

/// How to build the built-in sample when the library lacks it.
#[derive(Debug, Clone)]
pub struct SampleConfig {
    pub ladder: media::Ladder,
    /// Seconds; `None` keeps the ladder's default.
    pub duration: Option<f64>,
    pub progress: bool,
}

/// Builds `sample` into the library unless it is there already. Blocking (it encodes video):
/// call it before serving or on the blocking pool. Returns whether it built one.
pub fn ensure_sample(library: &Library, config: &SampleConfig) -> media::Result<bool> {
    let root = library.root();
    if root.join("sample").join(HLS_MANIFEST).is_file() {
        return Ok(false);
    }
    std::fs::create_dir_all(root).map_err(media::MediaError::io(root))?;
    let mut options = media::SampleOptions::new(config.ladder.clone());
    if let Some(duration) = config.duration {
        options.duration = duration;
    }
    options.progress = config.progress;
    media::build_sample(root, &options)?;
    Ok(true)
}
