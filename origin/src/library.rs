//! The library folder: one sub-folder per asset. An asset is a folder with an HLS playlist
//! or a DASH MPD at its top, whoever packaged it: ours (`master.m3u8`, `manifest.mpd`,
//! `presentation.json`, written by `media`) or any packager's (ffmpeg, Shaka Packager,
//! Bento4, MP4Box…), whatever its file names (see [`media::folder::choose_manifests`]).
//! Without `presentation.json`, the presentation model is read from the manifests, once
//! per manifest version, and kept in a bounded cache.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use media::Presentation;
use media::folder::{self, AssetDir, AssetFiles, Manifests};

use crate::paths::valid_component;
use crate::store::StoreError;

/// One asset of the library, for the index page and the start-up banner.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetInfo {
    pub name: String,
    /// The HLS playlist players open, a path in the asset folder (`master.m3u8` for ours,
    /// whatever the packager named it otherwise).
    pub hls: Option<String>,
    /// The DASH MPD players open, a path in the asset folder.
    pub dash: Option<String>,
    /// Seconds, from the presentation model when it could be read.
    pub duration: Option<f64>,
    /// Rendition labels (`1280x720 2850k`), lowest first.
    pub renditions: Vec<String>,
}

impl AssetInfo {
    /// The URL path of the asset's HLS playlist (`/vod/{name}/{hls}`), if it has one.
    pub fn hls_path(&self) -> Option<String> {
        self.hls.as_ref().map(|m| format!("/vod/{}/{m}", self.name))
    }

    /// The URL path of the asset's DASH MPD, if it has one.
    pub fn dash_path(&self) -> Option<String> {
        self.dash
            .as_ref()
            .map(|m| format!("/vod/{}/{m}", self.name))
    }
}

pub const HLS_MANIFEST: &str = "master.m3u8";
pub const DASH_MANIFEST: &str = "manifest.mpd";
const PRESENTATION: &str = media::package::PRESENTATION_JSON;

/// Entries of an asset folder's top looked at, at most, to find its manifests.
const TOP_ENTRIES: usize = 10_000;
/// Memory for the presentation models kept (about 100 bytes per segment).
const MODELS_BYTES: u64 = 32 << 20;

/// The library root.
#[derive(Debug, Clone)]
pub struct Library {
    root: PathBuf,
    /// The root's real path (symbolic links resolved), once it exists.
    real_root: Arc<OnceLock<PathBuf>>,
    models: ModelCache,
}

/// A model as read from one version of the file it comes from.
#[derive(Debug)]
struct CachedModel {
    version: (u64, SystemTime),
    model: Result<Arc<Presentation>, String>,
}

/// Presentation models by (asset, file read), bounded in bytes.
type ModelCache = moka::future::Cache<(String, String), Arc<CachedModel>>;

impl Library {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let models = moka::future::Cache::builder()
            .weigher(|_key: &(String, String), m: &Arc<CachedModel>| {
                let segments: usize = m
                    .model
                    .as_ref()
                    .map_or(0, |p| p.renditions.iter().map(|r| r.segments.len()).sum());
                u32::try_from(segments * 100 + 1024).unwrap_or(u32::MAX)
            })
            .max_capacity(MODELS_BYTES)
            .build();
        Self {
            root: root.into(),
            real_root: Arc::new(OnceLock::new()),
            models,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The root's real path: what every file served must stay under (a symbolic link may
    /// lead anywhere inside it, never out).
    pub async fn real_root(&self) -> Result<PathBuf, StoreError> {
        if let Some(real) = self.real_root.get() {
            return Ok(real.clone());
        }
        let real = tokio::fs::canonicalize(&self.root).await?;
        Ok(self.real_root.get_or_init(|| real).clone())
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

    /// The manifests asset `name` offers (none: not an asset), read on the blocking pool.
    pub async fn manifests(&self, name: &str) -> Option<Manifests> {
        let dir = self.resolve(&[name])?;
        let root = self.real_root().await.ok()?;
        let found = tokio::task::spawn_blocking(move || manifests_of(&root, &dir))
            .await
            .ok()?;
        found.filter(|m| !m.is_empty())
    }

    /// The presentation model of asset `name` (URIs as paths in its folder): from its
    /// `presentation.json` when it has one, else read from `manifest` (see
    /// [`media::folder::read_model`]); kept until that file changes. The error says why it
    /// cannot be read.
    pub async fn presentation(
        &self,
        name: &str,
        manifests: &Manifests,
    ) -> Result<Arc<Presentation>, String> {
        let dir = self.resolve(&[name]).ok_or("invalid asset name")?;
        let root = self.real_root().await.map_err(|e| e.to_string())?;
        let source = match tokio::fs::metadata(dir.join(PRESENTATION)).await {
            Ok(m) if m.is_file() => PRESENTATION.to_string(),
            _ => manifests.primary().ok_or("no manifest")?.to_string(),
        };
        let meta = tokio::fs::metadata(dir.join(&source))
            .await
            .map_err(|e| format!("{source}: {e}"))?;
        let version = (meta.len(), meta.modified().map_err(|e| e.to_string())?);
        let key = (name.to_owned(), source.clone());
        if let Some(cached) = self.models.get(&key).await {
            if cached.version == version {
                return cached.model.clone();
            }
            self.models.invalidate(&key).await;
        }
        let asset = name.to_owned();
        let cached = self
            .models
            .get_with(key, async move {
                let read = tokio::task::spawn_blocking(move || read_model(&root, &dir, &source))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|model| model);
                if let Err(e) = &read {
                    tracing::warn!(asset, error = %e, "cannot read the presentation");
                }
                Arc::new(CachedModel {
                    version,
                    model: read.map(Arc::new),
                })
            })
            .await;
        cached.model.clone()
    }

    /// Reads what is known of one asset; `None` when it offers no manifest.
    pub async fn asset(&self, name: &str) -> Option<AssetInfo> {
        let manifests = self.manifests(name).await?;
        let presentation = self.presentation(name, &manifests).await.ok();
        Some(AssetInfo {
            name: name.to_owned(),
            duration: presentation.as_deref().map(Presentation::duration),
            renditions: presentation
                .iter()
                .flat_map(|p| p.renditions.iter().map(media::Rendition::label))
                .collect(),
            hls: manifests.hls,
            dash: manifests.dash,
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

    /// Asset `name` for a live channel, read now on this thread (at start-up): its files,
    /// confined to the library, and its model with URIs as paths in its folder.
    pub fn open_blocking(&self, name: &str) -> Result<(AssetDir, Presentation), String> {
        let dir = self.resolve(&[name]).ok_or("invalid asset name")?;
        let root = std::fs::canonicalize(&self.root)
            .map_err(|e| format!("library {}: {e}", self.root.display()))?;
        let manifests = manifests_of(&root, &dir).ok_or("not an asset of the library")?;
        let source = if dir.join(PRESENTATION).is_file() {
            PRESENTATION
        } else {
            manifests
                .primary()
                .ok_or("no HLS playlist or DASH MPD at its top")?
        };
        let model = read_model(&root, &dir, source)?;
        Ok((AssetDir::new(&dir).within(&root), model))
    }
}

/// The manifests at the top of the asset folder `dir` (which must be inside `root`, a real
/// path); `None` when it is no folder of the library.
fn manifests_of(root: &Path, dir: &Path) -> Option<Manifests> {
    let real = std::fs::canonicalize(dir).ok()?;
    if !real.starts_with(root) {
        tracing::warn!(
            dir = %dir.display(),
            real = %real.display(),
            "refused: a symbolic link takes this asset folder outside the library"
        );
        return None;
    }
    if !real.is_dir() {
        return None;
    }
    let names: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .take(TOP_ENTRIES)
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| !t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| valid_component(n))
        .collect();
    let files = AssetDir::new(dir).within(root);
    Some(folder::choose_manifests(
        names.iter().map(String::as_str),
        &files,
    ))
}

/// The model of the asset folder `dir` from `source`: our `presentation.json`, or a
/// manifest; URIs as paths in the folder.
fn read_model(root: &Path, dir: &Path, source: &str) -> Result<Presentation, String> {
    let files = AssetDir::new(dir).within(root);
    if source == PRESENTATION {
        let bytes = AssetFiles::read(&files, PRESENTATION, None, folder::MANIFEST_LIMIT)
            .map_err(|e| e.to_string())?;
        let model: Presentation =
            serde_json::from_slice(&bytes).map_err(|e| format!("{PRESENTATION}: {e}"))?;
        Ok(folder::folder_paths(model))
    } else {
        folder::read_model(&files, source).map_err(|e| e.to_string())
    }
}

/// The URLs printed at start-up for one asset, relative to `base` (`http://host:port`).
pub fn asset_urls(base: &str, asset: &AssetInfo) -> Vec<(&'static str, String)> {
    let mut urls = vec![("watch", format!("{base}/watch/{}", asset.name))];
    if let Some(path) = asset.hls_path() {
        urls.push(("HLS", format!("{base}{path}")));
    }
    if let Some(path) = asset.dash_path() {
        urls.push(("DASH", format!("{base}{path}")));
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
