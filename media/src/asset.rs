//! An asset folder written atomically: everything goes into a hidden temporary folder
//! beside the destination, which replaces `LIB/NAME` in one rename when complete. A job that
//! fails, is cancelled or panics leaves nothing behind (the temporary folder is removed on
//! drop), and a reader never sees half an asset.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cmaf::{Sample, media_segment};
use crate::{
    Codecs, Container, MediaError, MediaType, Presentation, PresentationKind, Rendition, Result,
    Segment, dash, hls,
};

/// File names inside an asset folder.
pub const MASTER_PLAYLIST: &str = "master.m3u8";
pub const MPD: &str = "manifest.mpd";
pub const PRESENTATION_JSON: &str = "presentation.json";
pub const MEDIA_PLAYLIST: &str = "index.m3u8";
pub const INIT_SEGMENT: &str = "init.mp4";
/// The folder (and rendition id) of the audio rendition.
pub const AUDIO_RENDITION: &str = "audio";

/// Whether `name` may name an asset: a single folder name of letters, digits, `-`, `_` and
/// `.`, not hidden (hidden names are the temporary folders).
pub fn check_asset_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(MediaError::Invalid(format!(
            "asset name {name:?}: use 1-100 letters, digits, '-', '_' or '.', not starting with '.'"
        )))
    }
}

/// A cancellation flag a caller sets to stop a job (Ctrl-C in the CLI, shutdown in the
/// origin); jobs check it between samples or frames.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every job holding a clone of this flag to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Cancelled)` once cancelled.
    pub fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(MediaError::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// The temporary folder an asset is assembled in.
#[derive(Debug)]
pub struct Staging {
    out_dir: PathBuf,
    name: String,
    tmp: PathBuf,
    committed: bool,
}

fn nonce() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{nanos}", std::process::id())
}

impl Staging {
    /// Creates `out_dir` if needed and a fresh temporary folder in it for asset `name`,
    /// after removing the temporary folders of `name` left by processes that no longer run
    /// (killed outright, they could not clean up).
    pub fn new(out_dir: &Path, name: &str) -> Result<Self> {
        check_asset_name(name)?;
        std::fs::create_dir_all(out_dir).map_err(MediaError::io(out_dir))?;
        remove_abandoned(out_dir, name);
        let tmp = out_dir.join(format!(".{name}.tmp-{}", nonce()));
        std::fs::create_dir(&tmp).map_err(MediaError::io(&tmp))?;
        Ok(Self {
            out_dir: out_dir.to_path_buf(),
            name: name.to_string(),
            tmp,
            committed: false,
        })
    }

    /// Where to write the asset's files.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Moves the finished asset to `out_dir/name`, replacing any previous one (moved aside
    /// first, so `out_dir/name` is never half-written), and returns its path.
    pub fn commit(mut self) -> Result<PathBuf> {
        let dir = self.out_dir.join(&self.name);
        let old = self.out_dir.join(format!(".{}.old-{}", self.name, nonce()));
        let had_old = dir.exists();
        if had_old {
            std::fs::rename(&dir, &old).map_err(MediaError::io(&dir))?;
        }
        std::fs::rename(&self.tmp, &dir).map_err(MediaError::io(&dir))?;
        self.committed = true;
        if had_old {
            std::fs::remove_dir_all(&old).map_err(MediaError::io(&old))?;
        }
        Ok(dir)
    }
}

/// Removes `out_dir/.{name}.tmp-PID-…` and `.{name}.old-PID-…` folders whose process is
/// gone. Only where `/proc` tells which processes run (Linux); best effort.
fn remove_abandoned(out_dir: &Path, name: &str) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(out_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| {
            n.strip_prefix(&format!(".{name}.tmp-"))
                .or_else(|| n.strip_prefix(&format!(".{name}.old-")))
        }) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            tracing::info!(folder = %entry.path().display(), "removing an abandoned temporary folder");
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: the temporary folder is ours alone.
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

/// What one rendition of a finished asset came out as.
#[derive(Debug, Clone, PartialEq)]
pub struct RenditionReport {
    pub id: String,
    /// The bit rate asked for, when the rendition was encoded (not when repackaged).
    pub target_kbps: Option<u32>,
    pub average_kbps: f64,
    pub peak_kbps: f64,
}

/// What a job wrote: the asset folder, how long it took, the renditions.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub dir: PathBuf,
    pub elapsed: std::time::Duration,
    /// Seconds of video.
    pub duration: f64,
    pub renditions: Vec<RenditionReport>,
}

impl Report {
    /// The report of a presentation just written to `dir`, with each video rendition's
    /// target (in order) when it was encoded.
    pub fn new(
        dir: PathBuf,
        started: std::time::Instant,
        presentation: &Presentation,
        targets: &dyn Fn(&Rendition) -> Option<u32>,
    ) -> Self {
        Self {
            dir,
            elapsed: started.elapsed(),
            duration: presentation.duration(),
            renditions: presentation
                .renditions
                .iter()
                .map(|r| RenditionReport {
                    id: r.id.clone(),
                    target_kbps: targets(r),
                    average_kbps: r.bandwidth_avg as f64 / 1000.0,
                    peak_kbps: r.bandwidth_peak as f64 / 1000.0,
                })
                .collect(),
        }
    }
}

impl std::fmt::Display for Report {
    /// The one-line summary: time taken and measured bit rate per rendition.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({:.1} s of video) written in {:.1} s:",
            self.dir.display(),
            self.duration,
            self.elapsed.as_secs_f64()
        )?;
        for r in &self.renditions {
            write!(f, " {} {:.0}k", r.id, r.average_kbps)?;
            if let Some(target) = r.target_kbps {
                write!(f, " (target {target}k)")?;
            }
            write!(f, " peak {:.0}k;", r.peak_kbps)?;
        }
        Ok(())
    }
}

/// The stage a long job is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reading the input's structure.
    Probing,
    /// Decoding, scaling and encoding the ladder's rungs.
    Encoding,
    /// Encoding the audio to AAC.
    Audio,
    /// Cutting and writing segments.
    Packaging,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Probing => "probing",
            Self::Encoding => "encoding",
            Self::Audio => "encoding audio",
            Self::Packaging => "packaging",
        })
    }
}

/// How far a job is: its stage and the fraction of that stage done (0–1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub stage: Stage,
    pub fraction: f64,
}

impl std::fmt::Display for Progress {
    /// `encoding 42 %`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {:.0} %",
            self.stage,
            (self.fraction.clamp(0.0, 1.0) * 100.0).floor()
        )
    }
}

/// Writes `bytes` to `path`.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(MediaError::io(path))
}

/// Creates the folder of rendition `id` in the asset folder `dir`.
pub fn rendition_dir(dir: &Path, id: &str) -> Result<PathBuf> {
    let path = dir.join(id);
    std::fs::create_dir_all(&path).map_err(MediaError::io(&path))?;
    Ok(path)
}

/// Writes media segment `number` (`{number}.m4s`, decode time `base_decode_time`) into the
/// rendition folder `dir` and returns its entry in the model: presented from `start` for
/// `duration` seconds.
pub fn write_segment(
    dir: &Path,
    number: u32,
    base_decode_time: u64,
    samples: &[Sample],
    start: f64,
    duration: f64,
) -> Result<Segment> {
    let bytes = media_segment(number, base_decode_time, samples)?;
    let name = format!("{number}.m4s");
    write_file(&dir.join(&name), &bytes)?;
    Ok(Segment {
        number: u64::from(number),
        start,
        duration,
        size: Some(bytes.len() as u64),
        uri: name,
        ..Segment::default()
    })
}

/// A rendition laid out as ours are (folder `id` with `init.mp4` and `index.m3u8`), its
/// bandwidth measured from its segments; picture size, frame rate and sample rate are for
/// the caller to add.
pub fn rendition(
    id: &str,
    media_type: MediaType,
    codecs: Codecs,
    segments: Vec<Segment>,
) -> Rendition {
    let mut rendition = Rendition {
        id: id.to_string(),
        media_type,
        bandwidth_peak: 0,
        bandwidth_avg: 0,
        width: None,
        height: None,
        frame_rate: None,
        codecs,
        sample_rate: None,
        init_uri: Some(INIT_SEGMENT.into()),
        init_range: None,
        container: Container::Fmp4,
        playlist_uri: Some(format!("{id}/{MEDIA_PLAYLIST}")),
        segment_index: None,
        segments,
    };
    rendition.measure_bandwidth();
    rendition
}

/// The VOD presentation of `renditions` (put in canonical order), its manifests written
/// into the asset folder `dir`.
pub fn write_vod(dir: &Path, renditions: Vec<Rendition>) -> Result<Presentation> {
    let mut presentation = Presentation {
        kind: PresentationKind::Vod,
        renditions,
        delivery: Default::default(),
    };
    presentation.sort();
    write_manifests(dir, &presentation)?;
    Ok(presentation)
}

/// Writes the manifests of `presentation` into the asset folder `dir`: a media playlist per
/// rendition, the multivariant playlist, the MPD and `presentation.json`. Rendition URIs in
/// the model are relative to the rendition folder; the multivariant playlist and MPD refer
/// to them through the folder name.
pub fn write_manifests(dir: &Path, presentation: &Presentation) -> Result<()> {
    for r in &presentation.renditions {
        write_file(
            &dir.join(&r.id).join(MEDIA_PLAYLIST),
            hls::write_vod_media_playlist(r)?.as_bytes(),
        )?;
    }
    write_file(
        &dir.join(MASTER_PLAYLIST),
        hls::write_multivariant(presentation)?.as_bytes(),
    )?;
    write_file(
        &dir.join(MPD),
        dash::write_static_mpd(presentation)?.as_bytes(),
    )?;
    let json =
        serde_json::to_vec_pretty(presentation).map_err(|e| MediaError::Invalid(e.to_string()))?;
    write_file(&dir.join(PRESENTATION_JSON), &json)
}

/// Reads the presentation model of an asset folder made by `media`.
pub fn read_presentation(asset_dir: &Path) -> Result<Presentation> {
    let path = asset_dir.join(PRESENTATION_JSON);
    let bytes = std::fs::read(&path).map_err(MediaError::io(&path))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| MediaError::Invalid(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_are_single_visible_folders() {
        for good in ["movie", "my-film_2.v1", "A"] {
            assert!(check_asset_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".hidden", "a/b", "..", "a b", "é", &"x".repeat(101)] {
            assert!(check_asset_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn staging_commits_in_one_rename_and_cleans_up_otherwise() {
        let lib = tempfile::tempdir().unwrap();
        let staging = Staging::new(lib.path(), "film").unwrap();
        write_file(&staging.path().join("a"), b"1").unwrap();
        let dir = staging.commit().unwrap();
        assert_eq!(std::fs::read(dir.join("a")).unwrap(), b"1");
        // A second build replaces the first whole.
        let staging = Staging::new(lib.path(), "film").unwrap();
        write_file(&staging.path().join("b"), b"2").unwrap();
        staging.commit().unwrap();
        assert!(!dir.join("a").exists() && dir.join("b").exists());
        // An abandoned build leaves nothing.
        let staging = Staging::new(lib.path(), "other").unwrap();
        write_file(&staging.path().join("c"), b"3").unwrap();
        drop(staging);
        let names = |lib: &Path| -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(lib)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        assert_eq!(names(lib.path()), ["film"]);
        // A folder left by a process that was killed (no such PID) goes at the next build of
        // that name; a running process's (ours) stays.
        let dead = lib.path().join(format!(".film.tmp-{}-1", u32::MAX));
        let alive = lib
            .path()
            .join(format!(".film.tmp-{}-1", std::process::id()));
        std::fs::create_dir(&dead).unwrap();
        std::fs::create_dir(&alive).unwrap();
        drop(Staging::new(lib.path(), "film").unwrap());
        assert!(!dead.exists() && alive.exists());
    }

    #[test]
    fn cancel_is_shared_by_clones() {
        let cancel = Cancel::new();
        let job = cancel.clone();
        assert!(job.check().is_ok());
        cancel.cancel();
        assert!(matches!(job.check(), Err(MediaError::Cancelled)));
    }
}
