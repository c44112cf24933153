//! The files: what a poll reads of the library root, the record of the source an asset
//! was built from (`LIB/NAME/source.json`), and the source's content hash. Blocking I/O,
//! run on the blocking pool.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ingest::plan::{Folder, Observation, source_asset};
use crate::versions::SOURCE_JSON;

/// What `LIB/NAME/source.json` says: the file the asset was built from and its identity
/// then. Written into the asset folder before it is renamed into place, so an asset and
/// its record appear together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRecord {
    /// The source's file name in the library root.
    pub file: String,
    pub size: u64,
    /// Its modification time, Unix seconds and nanoseconds.
    pub modified_s: u64,
    pub modified_ns: u32,
    /// SHA-256 of its whole content, hex.
    pub sha256: String,
    /// The ladder it was built with (`default`, `small`, or a list).
    pub ladder: String,
}

impl SourceRecord {
    pub fn new(file: &str, observation: Observation, sha256: String, ladder: String) -> Self {
        let since = observation
            .modified
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            file: file.to_owned(),
            size: observation.size,
            modified_s: since.as_secs(),
            modified_ns: since.subsec_nanos(),
            sha256,
            ladder,
        }
    }

    pub fn observation(&self) -> Observation {
        Observation {
            size: self.size,
            modified: SystemTime::UNIX_EPOCH
                + Duration::new(self.modified_s, self.modified_ns.min(999_999_999)),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        // A struct of strings and integers always serializes.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}

/// The video files in the library root and how they look now.
pub fn scan(library: &Path) -> std::io::Result<Vec<(String, Observation)>> {
    let mut files = Vec::new();
    let entries = match std::fs::read_dir(library) {
        Ok(entries) => entries,
        // No library yet: nothing dropped in it either.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(e),
    };
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if source_asset(&name).is_none() {
            continue;
        }
        // A symbolic link to a video is followed: its target is what is read.
        let Ok(meta) = std::fs::metadata(entry.path()) else {
            continue;
        };
        if meta.is_file() {
            files.push((
                name,
                Observation {
                    size: meta.len(),
                    modified: meta.modified()?,
                },
            ));
        }
    }
    Ok(files)
}

/// What `LIB/asset` is, for the decisions.
pub fn folder(library: &Path, asset: &str) -> Folder {
    match read_record(library, asset) {
        Ok(Some(record)) => Folder::Built {
            observation: record.observation(),
            file: record.file,
        },
        Ok(None) => Folder::Missing,
        Err(()) => Folder::Foreign,
    }
}

/// The record of the ingest's asset `LIB/asset`, if it is one.
pub fn built_record(library: &Path, asset: &str) -> Option<SourceRecord> {
    read_record(library, asset).ok().flatten()
}

/// The record of `LIB/asset`: `Ok(None)` when there is no such folder, `Err` when there
/// is one without a readable record (not the ingest's).
fn read_record(library: &Path, asset: &str) -> Result<Option<SourceRecord>, ()> {
    let dir = library.join(asset);
    match std::fs::symlink_metadata(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Ok(meta) if meta.is_dir() => {}
        _ => return Err(()),
    }
    let bytes = std::fs::read(dir.join(SOURCE_JSON)).map_err(|_| ())?;
    serde_json::from_slice(&bytes).map(Some).map_err(|_| ())
}

/// Rewrites the record of a built asset (the source was touched, its content unchanged):
/// written aside and renamed over the old one.
pub fn rewrite_record(library: &Path, asset: &str, record: &SourceRecord) -> std::io::Result<()> {
    let dir = library.join(asset);
    let tmp = dir.join(format!(".{SOURCE_JSON}.tmp"));
    std::fs::write(&tmp, record.to_json())?;
    std::fs::rename(&tmp, dir.join(SOURCE_JSON))
}

/// SHA-256 of the file at `path`, read in 1 MiB pieces; `progress` gets the fraction
/// read, and `stop` is asked between pieces (`false` stops with `Interrupted`).
pub fn content_hash(
    path: &Path,
    size: u64,
    mut progress: impl FnMut(f64),
    stop: impl Fn() -> bool,
) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut read = 0u64;
    loop {
        if stop() {
            return Err(std::io::ErrorKind::Interrupted.into());
        }
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        read += n as u64;
        progress(if size == 0 {
            1.0
        } else {
            (read as f64 / size as f64).min(1.0)
        });
    }
    Ok(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn folders_and_records() {
        let lib = tempfile::tempdir().unwrap();
        let lib = lib.path();
        std::fs::write(lib.join("film.mp4"), b"video").unwrap();
        std::fs::write(lib.join("notes.txt"), b"text").unwrap();
        std::fs::create_dir(lib.join("film")).unwrap();
        std::fs::create_dir(lib.join("mine")).unwrap();
        std::fs::write(lib.join("plain"), b"a file").unwrap();
        let scanned = scan(lib).unwrap();
        assert_eq!(scanned.len(), 1);
        assert_eq!(scanned[0].0, "film.mp4");
        assert_eq!(scanned[0].1.size, 5);

        assert_eq!(folder(lib, "nothing"), Folder::Missing);
        assert_eq!(folder(lib, "mine"), Folder::Foreign);
        assert_eq!(folder(lib, "plain"), Folder::Foreign);
        let record = SourceRecord::new("film.mp4", scanned[0].1, "ab".into(), "small".into());
        std::fs::write(lib.join("film").join(SOURCE_JSON), record.to_json()).unwrap();
        assert_eq!(
            folder(lib, "film"),
            Folder::Built {
                file: "film.mp4".into(),
                observation: scanned[0].1
            }
        );
        let touched = SourceRecord {
            modified_s: 7,
            ..record
        };
        rewrite_record(lib, "film", &touched).unwrap();
        assert_eq!(built_record(lib, "film"), Some(touched));
    }

    #[test]
    fn hashes_the_whole_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        std::fs::write(&path, b"abc").unwrap();
        let mut seen = Vec::new();
        let hash = content_hash(&path, 3, |f| seen.push(f), || false).unwrap();
        assert_eq!(
            hash,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(seen, [1.0]);
        let stopped = content_hash(&path, 3, |_| {}, || true).unwrap_err();
        assert_eq!(stopped.kind(), std::io::ErrorKind::Interrupted);
    }
}
