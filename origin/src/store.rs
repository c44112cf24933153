//! The file store: content-derived validators computed once per file version, and small files
//! kept in memory so a hot segment costs a map lookup, not a read and a hash.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use moka::future::Cache;
use sha2::{Digest, Sha256};

use crate::entity::{Content, tag_of};
use http_rules::etag::EntityTag;

/// Why a file could not be served.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("I/O error: {0}")]
    Io(String),
    /// The path resolves (through a symbolic link) to a file outside the folder it must
    /// stay in.
    #[error("{} resolves outside the library", path.display())]
    Outside { path: PathBuf },
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            // ENOTDIR (a file used as a folder) is a missing resource too.
            std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory => Self::NotFound,
            _ => Self::Io(e.to_string()),
        }
    }
}

/// A file version as the store knows it.
#[derive(Debug)]
struct Cached {
    size: u64,
    mtime: SystemTime,
    etag: EntityTag,
    /// The whole file, when it is small enough to keep.
    bytes: Option<Bytes>,
    /// When the file was last seen unchanged on disk (milliseconds since the store began).
    checked_ms: AtomicU64,
}

/// What a route needs to build an [`crate::entity::Entity`].
#[derive(Debug, Clone)]
pub struct StoredFile {
    pub content: Content,
    pub len: u64,
    pub etag: EntityTag,
    pub last_modified: SystemTime,
}

impl StoredFile {
    /// The whole body in memory: kept bytes as they are, a streamed file read once.
    pub async fn bytes(&self) -> Result<Bytes, StoreError> {
        match &self.content {
            Content::Bytes(bytes) => Ok(bytes.clone()),
            Content::File(path) => Ok(Bytes::from(tokio::fs::read(path).await?)),
        }
    }
}

/// Sizes of the store.
#[derive(Debug, Clone, Copy)]
pub struct StoreLimits {
    /// Files up to this size are kept in memory; larger ones are streamed from disk.
    pub inline_max: u64,
    /// Memory budget for kept files, bytes.
    pub capacity: u64,
    /// How long a file is trusted unchanged before it is checked again with a `stat`. Library
    /// files are written once (media renames whole asset folders into place), so a short
    /// window only delays noticing a rebuilt asset, and saves a system call per request.
    pub recheck: Duration,
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self {
            inline_max: 4 << 20,
            capacity: 256 << 20,
            recheck: Duration::from_secs(1),
        }
    }
}

/// Content hashes and small-file bodies, keyed by path and checked against size and mtime.
#[derive(Debug, Clone)]
pub struct FileStore {
    cache: Cache<PathBuf, Arc<Cached>>,
    limits: StoreLimits,
    epoch: Instant,
}

impl FileStore {
    pub fn new(limits: StoreLimits) -> Self {
        let cache = Cache::builder()
            .weigher(|_path: &PathBuf, c: &Arc<Cached>| {
                let kept = c.bytes.as_ref().map_or(0, Bytes::len);
                u32::try_from(kept + 256).unwrap_or(u32::MAX)
            })
            .max_capacity(limits.capacity)
            .build();
        Self {
            cache,
            limits,
            epoch: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Looks a file up, loading (and hashing) it on first use or after it changed.
    pub async fn get(&self, path: &Path) -> Result<StoredFile, StoreError> {
        self.lookup(path, None).await
    }

    /// [`FileStore::get`] for a file that must stay inside `root` (a real path: no symbolic
    /// link in it): wherever the file is checked on disk (its first load, and each re-`stat`),
    /// its real path, after every symbolic link, must be under `root`, else
    /// [`StoreError::Outside`]. Links that stay inside are followed.
    pub async fn get_within(&self, root: &Path, path: &Path) -> Result<StoredFile, StoreError> {
        self.lookup(path, Some(root)).await
    }

    async fn lookup(&self, path: &Path, root: Option<&Path>) -> Result<StoredFile, StoreError> {
        if let Some(cached) = self.cache.get(path).await {
            let now = self.now_ms();
            let age = now.saturating_sub(cached.checked_ms.load(Ordering::Relaxed));
            if u128::from(age) < self.limits.recheck.as_millis() {
                return Ok(stored(path, &cached));
            }
            if let Some(root) = root {
                confine(root, path).await?;
            }
            let meta = tokio::fs::metadata(path).await;
            match meta {
                Ok(m)
                    if m.is_file()
                        && m.len() == cached.size
                        && m.modified().ok() == Some(cached.mtime) =>
                {
                    cached.checked_ms.store(now, Ordering::Relaxed);
                    return Ok(stored(path, &cached));
                }
                _ => self.cache.invalidate(path).await,
            }
        }
        if let Some(root) = root {
            confine(root, path).await?;
        }
        let owned = path.to_path_buf();
        let limits = self.limits;
        let checked = self.now_ms();
        // `try_get_with` coalesces concurrent first requests for one file into one load.
        let cached = self
            .cache
            .try_get_with(owned.clone(), load(owned, limits.inline_max, checked))
            .await
            .map_err(|e| (*e).clone())?;
        Ok(stored(path, &cached))
    }
}

/// Whether `path`'s real location (every symbolic link followed) is under `root`.
pub async fn confine(root: &Path, path: &Path) -> Result<(), StoreError> {
    let real = tokio::fs::canonicalize(path).await?;
    if real.starts_with(root) {
        Ok(())
    } else {
        Err(StoreError::Outside {
            path: path.to_path_buf(),
        })
    }
}

impl StoredFile {
    /// `range` of the body: a slice of kept bytes, or that part of a streamed file read
    /// from disk (never the whole file). `None` when the range is past the end.
    pub async fn read_range(&self, range: media::ByteRange) -> Result<Option<Bytes>, StoreError> {
        if range.end() > self.len {
            return Ok(None);
        }
        match &self.content {
            Content::Bytes(bytes) => {
                let (start, end) = (range.offset as usize, range.end() as usize);
                Ok(Some(bytes.slice(start..end)))
            }
            Content::File(path) => {
                use tokio::io::{AsyncReadExt, AsyncSeekExt};
                let length = usize::try_from(range.length)
                    .map_err(|_| StoreError::Io("range too large".into()))?;
                let mut file = tokio::fs::File::open(path).await?;
                file.seek(std::io::SeekFrom::Start(range.offset)).await?;
                let mut buf = vec![0; length];
                file.read_exact(&mut buf).await?;
                Ok(Some(Bytes::from(buf)))
            }
        }
    }
}

fn stored(path: &Path, cached: &Cached) -> StoredFile {
    StoredFile {
        content: match &cached.bytes {
            Some(bytes) => Content::Bytes(bytes.clone()),
            None => Content::File(path.to_path_buf()),
        },
        len: cached.size,
        etag: cached.etag.clone(),
        last_modified: cached.mtime,
    }
}

async fn load(path: PathBuf, inline_max: u64, checked_ms: u64) -> Result<Arc<Cached>, StoreError> {
    let meta = tokio::fs::metadata(&path).await?;
    if !meta.is_file() {
        return Err(StoreError::NotFound);
    }
    let mtime = meta.modified()?;
    let (size, etag, bytes) = if meta.len() <= inline_max {
        let bytes = Bytes::from(tokio::fs::read(&path).await?);
        let etag = tag_of(&bytes);
        (bytes.len() as u64, etag, Some(bytes))
    } else {
        // Hash large files in bounded chunks on the blocking pool.
        let (size, digest) = tokio::task::spawn_blocking(move || hash_file(&path))
            .await
            .map_err(|e| StoreError::Io(e.to_string()))??;
        (size, EntityTag::from_digest(&digest), None)
    };
    Ok(Arc::new(Cached {
        size,
        mtime,
        etag,
        bytes,
        checked_ms: AtomicU64::new(checked_ms),
    }))
}

fn hash_file(path: &Path) -> Result<(u64, Vec<u8>), StoreError> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hasher.finalize().to_vec()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn limits(inline_max: u64) -> StoreLimits {
        StoreLimits {
            inline_max,
            capacity: 1 << 20,
            recheck: Duration::ZERO,
        }
    }

    #[tokio::test]
    async fn small_files_are_kept_and_large_ones_streamed_with_the_same_tag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.m4s");
        std::fs::write(&path, vec![7u8; 1000]).unwrap();
        let small = FileStore::new(limits(4096)).get(&path).await.unwrap();
        let large = FileStore::new(limits(10)).get(&path).await.unwrap();
        assert!(matches!(small.content, Content::Bytes(ref b) if b.len() == 1000));
        assert!(matches!(large.content, Content::File(_)));
        assert_eq!(small.etag, large.etag);
        assert_eq!((small.len, large.len), (1000, 1000));
    }

    #[tokio::test]
    async fn a_changed_file_gets_a_new_tag_and_missing_ones_are_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.m4s");
        let store = FileStore::new(limits(4096));
        std::fs::write(&path, b"one").unwrap();
        let first = store.get(&path).await.unwrap();
        std::fs::write(&path, b"second").unwrap();
        let second = store.get(&path).await.unwrap();
        assert_ne!(first.etag, second.etag);
        assert_eq!(second.len, 6);
        assert!(matches!(
            store.get(&dir.path().join("nope")).await,
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            store.get(dir.path()).await,
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            store.get(&path.join("x")).await,
            Err(StoreError::NotFound)
        ));
    }
}
