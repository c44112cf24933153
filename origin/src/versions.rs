//! Versioned media URLs: a re-packaged asset never changes the meaning of a URL that
//! caches keep as `immutable` (issue 12 item 6).
//!
//! `media` replaces an asset folder `LIB/NAME` in one rename, so the same path
//! `/vod/NAME/720p/1.m4s` names other bytes after a rebuild, while every edge, browser
//! and unknown cache on the way may keep the old bytes for a year. Purging the edges we
//! know of cannot reach the others; a new URL for every build does. So the manifests the
//! origin serves for an asset name its media through a **build token**:
//! `/vod/NAME/v-0123456789abcdef/720p/1.m4s`, and those URLs never change meaning.
//!
//! - The token is a hash of the build's `presentation.json` (which records every segment's
//!   size and duration) and, for a build the ingest made, of its source's content hash
//!   (`source.json`): derived from content, so two origins serving copies of one library
//!   agree on it, and a rebuild that changes anything gets another.
//! - When the origin first sees a build of `NAME` (a new folder instance, or a changed
//!   `presentation.json`), it takes a **snapshot**: `LIB/.versions/NAME/TOKEN/`, the same
//!   tree made of hard links (copies where the file system has none). A versioned URL is
//!   served from there, so its bytes cannot change, even while a rebuild is renamed into
//!   `LIB/NAME` during the request: there is no moment at which a manifest of one build
//!   can be answered with a segment of another.
//! - A replaced build stays servable for a while (`keep`, longer than the manifests'
//!   `max-age`), so players and caches holding its manifest keep playing it; then its
//!   snapshot is removed.
//!
//! An asset without `presentation.json` (packaged by hand) is not versioned: its files are
//! served as written.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

/// The hidden folder of the snapshots, under the library.
pub const VERSIONS_DIR: &str = ".versions";
/// The file the ingest records an asset's source in (its `sha256` enters the token).
pub const SOURCE_JSON: &str = "source.json";
const PRESENTATION_JSON: &str = "presentation.json";
const TOKEN_PREFIX: &str = "v-";
/// Hex digits of a token: 64 bits tell the builds of one asset apart.
const TOKEN_HEX: usize = 16;
/// The deepest folder and the most files a snapshot copies (an asset is a few levels deep).
const MAX_DEPTH: usize = 16;
const MAX_FILES: usize = 1_000_000;
/// Extensions of the small text files a snapshot copies rather than links.
const COPIED: [&str; 4] = ["m3u8", "mpd", "json", "vtt"];

/// The token of a path component `v-0123456789abcdef`, if it is one.
pub fn token_of_component(component: &str) -> Option<&str> {
    let token = component.strip_prefix(TOKEN_PREFIX)?;
    (token.len() == TOKEN_HEX
        && token
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
    .then_some(component)
}

/// The build token of the asset folder `dir` (`v-` and 16 hex digits), from its
/// `presentation.json` and the content hash its `source.json` records, if any.
fn build_token(dir: &Path) -> io::Result<String> {
    let model = std::fs::read(dir.join(PRESENTATION_JSON))?;
    let mut hash = Sha256::new();
    hash.update(&model);
    let source = std::fs::read(dir.join(SOURCE_JSON))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|record| record.get("sha256")?.as_str().map(str::to_owned));
    if let Some(sha) = source {
        hash.update(b"\0source\0");
        hash.update(sha.as_bytes());
    }
    let digest = hash.finalize();
    let hex: String = digest
        .iter()
        .take(TOKEN_HEX / 2)
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(format!("{TOKEN_PREFIX}{hex}"))
}

/// Which build an asset folder holds, as cheap to read as two `stat`s: the folder's own
/// identity (a rebuild renames a new folder into place) and its model file's (a model
/// rewritten in place).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FolderKey {
    folder: (u64, u64),
    model: (u64, u64, SystemTime),
}

#[cfg(unix)]
fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    // Without inode numbers a folder's creation time tells instances apart.
    let created = meta
        .created()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64);
    (0, created)
}

/// The key of `dir`'s build; `None` when it has no model (not versioned) or is gone.
fn folder_key(dir: &Path) -> io::Result<Option<FolderKey>> {
    let folder = match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => meta,
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let model = match std::fs::metadata(dir.join(PRESENTATION_JSON)) {
        Ok(meta) if meta.is_file() => meta,
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let (_, model_ino) = identity(&model);
    Ok(Some(FolderKey {
        folder: identity(&folder),
        model: (model_ino, model.len(), model.modified()?),
    }))
}

/// One build of an asset, as the routes serve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// `v-0123456789abcdef`, the URL component.
    pub token: String,
    /// Its immutable copy, `LIB/.versions/NAME/TOKEN`.
    pub dir: PathBuf,
}

/// A build that replaced another one while caches may hold the other's manifests (the
/// moment to purge the edges).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaced {
    pub asset: String,
    pub token: String,
}

/// What the origin knows of one asset's builds.
#[derive(Debug, Default)]
struct Known {
    current: Option<(FolderKey, String)>,
    /// Tokens no longer current, and since when.
    retired: HashMap<String, SystemTime>,
}

/// The snapshots of the library's builds.
#[derive(Debug)]
pub struct Versions {
    library: PathBuf,
    keep: Duration,
    known: Mutex<HashMap<String, Known>>,
    /// One snapshot at a time per asset.
    making: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    replaced: Mutex<Vec<Replaced>>,
    /// Folder keys whose snapshot failed, so the warning is logged once per build.
    failed: Mutex<HashSet<(String, (u64, u64))>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update leaves the maps consistent: a poisoned lock is still usable.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Versions {
    /// Snapshots under `library`, replaced ones kept `keep` after they stop being current.
    pub fn new(library: &Path, keep: Duration) -> Self {
        Self {
            library: library.to_path_buf(),
            keep,
            known: Mutex::default(),
            making: Mutex::default(),
            replaced: Mutex::default(),
            failed: Mutex::default(),
        }
    }

    /// How long a replaced build stays servable.
    pub fn keep(&self) -> Duration {
        self.keep
    }

    /// The snapshot folder of `asset`'s build `token` (which may not exist).
    pub fn dir_of(&self, asset: &str, token: &str) -> PathBuf {
        self.library.join(VERSIONS_DIR).join(asset).join(token)
    }

    /// The current build of `asset`, snapshotted: made now when the folder holds a build
    /// not seen before (a blocking walk of hard links, at most once per build). `None` when
    /// the asset has no `presentation.json`, or its snapshot cannot be made here (a
    /// read-only library: logged once, and the asset is served unversioned).
    pub async fn current(&self, asset: &str, now: SystemTime) -> Option<Snapshot> {
        let dir = self.library.join(asset);
        let key = {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || folder_key(&dir))
                .await
                .ok()?
        };
        let key = match key {
            Ok(key) => key?,
            Err(e) => {
                tracing::warn!(asset, error = %e, "cannot read the asset folder");
                return None;
            }
        };
        if let Some(snapshot) = self.known_current(asset, key) {
            return Some(snapshot);
        }
        let making = Arc::clone(lock(&self.making).entry(asset.to_owned()).or_default());
        let _one_at_a_time = making.lock().await;
        if let Some(snapshot) = self.known_current(asset, key) {
            return Some(snapshot);
        }
        let (library, name) = (self.library.clone(), asset.to_owned());
        let made = tokio::task::spawn_blocking(move || make_snapshot(&library, &name))
            .await
            .ok()?;
        match made {
            Ok(Some(made)) => Some(self.record(asset, made, now)),
            Ok(None) => None,
            Err(e) => {
                if lock(&self.failed).insert((asset.to_owned(), key.folder)) {
                    tracing::warn!(
                        asset,
                        error = %e,
                        "cannot snapshot this build: served unversioned (a rebuild may then \
                         leave caches with old bytes under immutable URLs)"
                    );
                }
                None
            }
        }
    }

    fn known_current(&self, asset: &str, key: FolderKey) -> Option<Snapshot> {
        let known = lock(&self.known);
        let (current_key, token) = known.get(asset)?.current.as_ref()?;
        (*current_key == key).then(|| Snapshot {
            dir: self.dir_of(asset, token),
            token: token.clone(),
        })
    }

    fn record(&self, asset: &str, made: Made, now: SystemTime) -> Snapshot {
        let mut known = lock(&self.known);
        let entry = known.entry(asset.to_owned()).or_default();
        let previous = entry.current.replace((made.key, made.token.clone()));
        entry.retired.remove(&made.token);
        let replaced_one = match &previous {
            Some((_, old)) if *old != made.token => {
                entry.retired.insert(old.clone(), now);
                true
            }
            Some(_) => false,
            // First seen in this run: a build new on disk beside older ones replaced them
            // while the origin was down.
            None => made.new_on_disk && made.others_on_disk,
        };
        if replaced_one {
            tracing::info!(asset, token = %made.token, "new build: manifests now name it");
            lock(&self.replaced).push(Replaced {
                asset: asset.to_owned(),
                token: made.token.clone(),
            });
        }
        Snapshot {
            dir: self.dir_of(asset, &made.token),
            token: made.token,
        }
    }

    /// The builds that replaced others since the last call (for purging edges).
    pub fn take_replaced(&self) -> Vec<Replaced> {
        std::mem::take(&mut *lock(&self.replaced))
    }

    /// Removes the snapshots replaced more than `keep` before `now`, those of assets no
    /// longer in `present`, and temporary folders of snapshots that died half made.
    /// Blocking (it deletes folders): call it on the blocking pool.
    pub fn sweep(&self, now: SystemTime, present: &HashSet<String>) {
        let root = self.library.join(VERSIONS_DIR);
        let Ok(assets) = std::fs::read_dir(&root) else {
            return;
        };
        for asset_dir in assets.flatten() {
            let Some(asset) = asset_dir.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let current = {
                let mut known = lock(&self.known);
                let entry = known.entry(asset.clone()).or_default();
                if !present.contains(&asset)
                    && let Some((_, token)) = entry.current.take()
                {
                    entry.retired.insert(token, now);
                }
                entry.current.as_ref().map(|(_, token)| token.clone())
            };
            let Ok(builds) = std::fs::read_dir(asset_dir.path()) else {
                continue;
            };
            let mut left = 0;
            for build in builds.flatten() {
                let name = build.file_name().to_string_lossy().into_owned();
                if name.starts_with(".tmp-") {
                    if abandoned(&name) {
                        let _ = std::fs::remove_dir_all(build.path());
                    } else {
                        left += 1;
                    }
                    continue;
                }
                if current.as_deref() == Some(name.as_str()) {
                    left += 1;
                    continue;
                }
                let since = *lock(&self.known)
                    .entry(asset.clone())
                    .or_default()
                    .retired
                    .entry(name.clone())
                    .or_insert(now);
                if now.duration_since(since).unwrap_or_default() < self.keep {
                    left += 1;
                    continue;
                }
                match std::fs::remove_dir_all(build.path()) {
                    Ok(()) => {
                        tracing::info!(asset, token = %name, "replaced build removed");
                        if let Some(entry) = lock(&self.known).get_mut(&asset) {
                            entry.retired.remove(&name);
                        }
                    }
                    Err(e) => {
                        left += 1;
                        tracing::warn!(asset, token = %name, error = %e, "cannot remove a replaced build");
                    }
                }
            }
            if left == 0 {
                let _ = std::fs::remove_dir(asset_dir.path());
            }
        }
    }
}

/// A snapshot made (or found) for a folder's build.
#[derive(Debug)]
struct Made {
    key: FolderKey,
    token: String,
    /// Its folder was made now (not found from an earlier run or another origin).
    new_on_disk: bool,
    /// Other builds of the asset have snapshots.
    others_on_disk: bool,
}

/// `.tmp-PID-…` of a process that no longer runs (where `/proc` tells; else never).
fn abandoned(name: &str) -> bool {
    let pid = name
        .trim_start_matches(".tmp-")
        .split('-')
        .next()
        .and_then(|p| p.parse::<u32>().ok());
    Path::new("/proc/self").exists()
        && pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
}

/// Snapshots the build in `library/asset`: `None` when it has no model. The folder is
/// checked to be the same build before, and after linking it; a rebuild renamed in
/// meanwhile starts the walk again (three times at most).
fn make_snapshot(library: &Path, asset: &str) -> io::Result<Option<Made>> {
    let dir = library.join(asset);
    let builds = library.join(VERSIONS_DIR).join(asset);
    for _ in 0..3 {
        let Some(key) = folder_key(&dir)? else {
            return Ok(None);
        };
        let token = build_token(&dir)?;
        if folder_key(&dir)? != Some(key) {
            continue;
        }
        std::fs::create_dir_all(&builds)?;
        let others_on_disk = std::fs::read_dir(&builds)?.flatten().any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            !name.starts_with('.') && name != token
        });
        let target = builds.join(&token);
        if target.is_dir() {
            return Ok(Some(Made {
                key,
                token,
                new_on_disk: false,
                others_on_disk,
            }));
        }
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let tmp = builds.join(format!(".tmp-{}-{nanos}", std::process::id()));
        let linked = link_tree(library, &dir, &tmp);
        if let Err(e) = linked {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        if folder_key(&dir)? != Some(key) {
            let _ = std::fs::remove_dir_all(&tmp);
            continue;
        }
        if let Err(e) = std::fs::rename(&tmp, &target) {
            let _ = std::fs::remove_dir_all(&tmp);
            // Another origin on the same library made it first: the same content.
            if !target.is_dir() {
                return Err(e);
            }
        }
        return Ok(Some(Made {
            key,
            token,
            new_on_disk: true,
            others_on_disk,
        }));
    }
    Err(io::Error::other(
        "the asset folder kept changing while its snapshot was made",
    ))
}

/// Recreates the tree `from` at `to`: media files as hard links (copies where links fail),
/// the text files (manifests, playlists, the model) as copies, since a person editing one
/// in place would otherwise edit every snapshot sharing it. A symbolic link is followed
/// when it stays inside `library`, and left out otherwise (the routes never serve what
/// resolves outside the library).
fn link_tree(library: &Path, from: &Path, to: &Path) -> io::Result<()> {
    let library = std::fs::canonicalize(library)?;
    let mut files = 0usize;
    let mut warned = false;
    let mut stack = vec![(from.to_path_buf(), to.to_path_buf(), 0usize)];
    std::fs::create_dir_all(to)?;
    while let Some((src, dst, depth)) = stack.pop() {
        for entry in std::fs::read_dir(&src)? {
            let entry = entry?;
            let path = entry.path();
            let target = dst.join(entry.file_name());
            let kind = entry.file_type()?;
            let real = if kind.is_symlink() {
                match std::fs::canonicalize(&path) {
                    Ok(real) if real.starts_with(&library) => real,
                    _ => continue,
                }
            } else {
                path
            };
            let meta = std::fs::metadata(&real)?;
            if meta.is_dir() {
                if depth + 1 >= MAX_DEPTH {
                    return Err(io::Error::other("asset folder nested too deep"));
                }
                std::fs::create_dir(&target)?;
                stack.push((real, target, depth + 1));
            } else if meta.is_file() {
                files += 1;
                if files > MAX_FILES {
                    return Err(io::Error::other("asset folder holds too many files"));
                }
                let text = real
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| COPIED.contains(&e.to_ascii_lowercase().as_str()));
                if text {
                    copy(&real, &target, &meta)?;
                } else if let Err(e) = std::fs::hard_link(&real, &target) {
                    if !warned {
                        tracing::warn!(error = %e, "no hard links here: the snapshot copies the files");
                        warned = true;
                    }
                    copy(&real, &target, &meta)?;
                }
            }
        }
    }
    Ok(())
}

/// Copies a file, keeping its modification time (the `Last-Modified` of what it serves).
fn copy(from: &Path, to: &Path, meta: &std::fs::Metadata) -> io::Result<()> {
    std::fs::copy(from, to)?;
    std::fs::File::options()
        .write(true)
        .open(to)?
        .set_modified(meta.modified()?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tokens_are_v_and_16_lowercase_hex_digits() {
        for (component, token) in [
            ("v-0123456789abcdef", true),
            ("v-0123456789ABCDEF", false),
            ("v-0123456789abcde", false),
            ("v-0123456789abcdef0", false),
            ("0123456789abcdef", false),
            ("v-0123456789abcdeg", false),
            ("720p-2850k", false),
        ] {
            assert_eq!(
                token_of_component(component).is_some(),
                token,
                "{component}"
            );
        }
    }

    fn asset(library: &Path, name: &str, model: &str, segment: &[u8]) {
        let dir = library.join(name);
        std::fs::create_dir_all(dir.join("r")).unwrap();
        std::fs::write(dir.join(PRESENTATION_JSON), model).unwrap();
        std::fs::write(dir.join("r/1.m4s"), segment).unwrap();
    }

    /// Replaces `library/name` by a new folder in one rename, as `media` does.
    fn rebuild(library: &Path, name: &str, model: &str, segment: &[u8]) {
        asset(library, ".staging", model, segment);
        std::fs::rename(library.join(name), library.join(".old")).unwrap();
        std::fs::rename(library.join(".staging"), library.join(name)).unwrap();
        std::fs::remove_dir_all(library.join(".old")).unwrap();
    }

    #[tokio::test]
    async fn a_rebuild_gets_a_new_token_and_the_old_bytes_stay_under_the_old_one() {
        let lib = tempfile::tempdir().unwrap();
        let lib = lib.path();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        asset(lib, "a", "{\"v\":1}", b"old");
        let versions = Versions::new(lib, Duration::from_secs(60));
        let first = versions.current("a", t0).await.unwrap();
        assert!(token_of_component(&first.token).is_some());
        assert_eq!(std::fs::read(first.dir.join("r/1.m4s")).unwrap(), b"old");
        assert_eq!(versions.current("a", t0).await, Some(first.clone()));
        assert!(
            versions.take_replaced().is_empty(),
            "a first build replaces nothing"
        );

        rebuild(lib, "a", "{\"v\":2}", b"new");
        let second = versions.current("a", t0).await.unwrap();
        assert_ne!(second.token, first.token);
        assert_eq!(std::fs::read(second.dir.join("r/1.m4s")).unwrap(), b"new");
        assert_eq!(std::fs::read(first.dir.join("r/1.m4s")).unwrap(), b"old");
        assert_eq!(
            versions.take_replaced(),
            [Replaced {
                asset: "a".into(),
                token: second.token.clone()
            }]
        );

        // The same content gets the same token (origins on copies of one library agree),
        // and a source hash recorded beside the model makes another one.
        let copy = tempfile::tempdir().unwrap();
        asset(copy.path(), "a", "{\"v\":2}", b"new");
        let elsewhere = Versions::new(copy.path(), Duration::from_secs(60));
        assert_eq!(
            elsewhere.current("a", t0).await.unwrap().token,
            second.token
        );
        std::fs::write(
            copy.path().join("a").join(SOURCE_JSON),
            "{\"sha256\":\"ab\"}",
        )
        .unwrap();
        rebuild(copy.path(), "a", "{\"v\":2}", b"new");
        std::fs::write(
            copy.path().join("a").join(SOURCE_JSON),
            "{\"sha256\":\"ab\"}",
        )
        .unwrap();
        let sourced = elsewhere.current("a", t0).await.unwrap();
        assert_ne!(sourced.token, second.token);

        // Replaced builds stay for `keep`, then go; the current one stays.
        let present: HashSet<String> = ["a".to_owned()].into();
        versions.sweep(t0 + Duration::from_secs(59), &present);
        assert!(first.dir.is_dir());
        versions.sweep(t0 + Duration::from_secs(60), &present);
        assert!(!first.dir.is_dir());
        assert!(second.dir.is_dir());
        // A deleted asset's builds go too, `keep` after it is noticed.
        std::fs::remove_dir_all(lib.join("a")).unwrap();
        versions.sweep(t0 + Duration::from_secs(100), &HashSet::new());
        assert!(second.dir.is_dir());
        versions.sweep(t0 + Duration::from_secs(160), &HashSet::new());
        assert!(!lib.join(VERSIONS_DIR).join("a").exists());
    }

    #[tokio::test]
    async fn a_model_rewritten_in_place_is_a_new_build_and_no_model_no_version() {
        let lib = tempfile::tempdir().unwrap();
        let lib = lib.path();
        let t0 = SystemTime::UNIX_EPOCH;
        asset(lib, "a", "{\"v\":1}", b"x");
        let versions = Versions::new(lib, Duration::from_secs(60));
        let first = versions.current("a", t0).await.unwrap();
        std::fs::write(lib.join("a").join(PRESENTATION_JSON), "{\"v\":22}").unwrap();
        let second = versions.current("a", t0).await.unwrap();
        assert_ne!(first.token, second.token);
        std::fs::remove_file(lib.join("a").join(PRESENTATION_JSON)).unwrap();
        assert_eq!(versions.current("a", t0).await, None);
        assert_eq!(versions.current("missing", t0).await, None);
    }

    #[tokio::test]
    async fn after_a_restart_an_unchanged_build_is_found_and_a_changed_one_replaces() {
        let lib = tempfile::tempdir().unwrap();
        let lib = lib.path();
        let t0 = SystemTime::UNIX_EPOCH;
        asset(lib, "a", "{\"v\":1}", b"x");
        let first = Versions::new(lib, Duration::from_secs(60))
            .current("a", t0)
            .await
            .unwrap();
        let restarted = Versions::new(lib, Duration::from_secs(60));
        assert_eq!(restarted.current("a", t0).await, Some(first.clone()));
        assert!(restarted.take_replaced().is_empty());
        rebuild(lib, "a", "{\"v\":2}", b"y");
        let again = Versions::new(lib, Duration::from_secs(60));
        let second = again.current("a", t0).await.unwrap();
        assert_ne!(second.token, first.token);
        assert_eq!(again.take_replaced().len(), 1, "rebuilt while down");
    }
}
