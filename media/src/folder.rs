//! Asset folders, whoever packaged them (ffmpeg, Shaka Packager, Bento4, MP4Box, `media`
//! itself): which manifests a folder offers players, and its presentation model read from
//! those manifests when it has no `presentation.json`, every URI made a path inside the
//! folder.
//!
//! Files are read through [`AssetFiles`] by paths relative to the folder (`/`-separated, as
//! in URLs), so that a server can confine them ([`AssetDir::within`]) and tests can read
//! anything.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

use crate::limits::SegmentBudget;
use crate::{
    ByteRange, Codec, Codecs, Container, MediaError, MediaType, Presentation, PresentationKind,
    Rendition, Result, dash, hls, mp4,
};

/// The largest manifest read (a two-hour rendition's playlist is a few hundred kB).
pub const MANIFEST_LIMIT: u64 = 16 << 20;
/// The largest init segment or segment index read.
pub const HEADER_LIMIT: u64 = 16 << 20;
/// Playlists at the top of a folder read, at most, to find its multivariant one.
const CANDIDATES: usize = 16;
/// Our own manifests' names, chosen first when present.
const HLS_NAME: &str = "master.m3u8";
const DASH_NAME: &str = "manifest.mpd";
/// What a lone media playlist is called when it has no multivariant playlist above it
/// (ffmpeg's and Apple's tools write `index.m3u8`).
const LONE_NAME: &str = "index.m3u8";

/// The files of one asset folder, by paths relative to it.
pub trait AssetFiles {
    /// The bytes of file `path`, or of its `range`; an error when that is over `limit`
    /// bytes or the range runs past the end.
    fn read(&self, path: &str, range: Option<ByteRange>, limit: u64) -> Result<Vec<u8>>;
    /// The size of file `path`, bytes.
    fn size(&self, path: &str) -> Result<u64>;
}

/// An asset folder on disk.
#[derive(Debug, Clone)]
pub struct AssetDir {
    dir: PathBuf,
    /// When set, every file's real path (every symbolic link followed) must be under it.
    root: Option<PathBuf>,
}

impl AssetDir {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            root: None,
        }
    }

    /// The same folder, reading only files whose real path is under `root` (itself a real
    /// path, as [`std::fs::canonicalize`] gives): a symbolic link that leads out of it is
    /// an error, one that stays inside is followed.
    pub fn within(self, root: &Path) -> Self {
        Self {
            root: Some(root.to_path_buf()),
            ..self
        }
    }

    /// The file at `path`: plain components only (no `..`, no root, nothing empty), and
    /// inside the root when one is set.
    pub fn file(&self, path: &str) -> Result<PathBuf> {
        let relative = Path::new(path);
        let plain = !path.is_empty()
            && !path.contains('\\')
            && relative
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
        if !plain {
            return Err(MediaError::Invalid(format!(
                "{path:?} is not a path in the folder"
            )));
        }
        let full = self.dir.join(relative);
        if let Some(root) = &self.root {
            let real = std::fs::canonicalize(&full).map_err(MediaError::io(&full))?;
            if !real.starts_with(root) {
                return Err(MediaError::Invalid(format!(
                    "{path}: resolves outside the library (to {})",
                    real.display()
                )));
            }
        }
        Ok(full)
    }
}

impl AssetFiles for AssetDir {
    fn read(&self, path: &str, range: Option<ByteRange>, limit: u64) -> Result<Vec<u8>> {
        let full = self.file(path)?;
        let io = MediaError::io(&full);
        let mut file = std::fs::File::open(&full).map_err(MediaError::io(&full))?;
        let len = file.metadata().map_err(MediaError::io(&full))?.len();
        let range = match range {
            Some(r) if r.end() > len => {
                return Err(MediaError::Invalid(format!(
                    "{path}: bytes {}-{} are past its end ({len} bytes)",
                    r.offset,
                    r.last()
                )));
            }
            Some(r) => r,
            None => ByteRange::new(0, len)
                .ok_or_else(|| MediaError::Invalid(format!("{path}: empty file")))?,
        };
        if range.length > limit {
            return Err(MediaError::Invalid(format!(
                "{path}: {} bytes, over the limit of {limit}",
                range.length
            )));
        }
        let length = usize::try_from(range.length)
            .map_err(|_| MediaError::Invalid(format!("{path}: range too large")))?;
        let mut bytes = vec![0; length];
        file.seek(SeekFrom::Start(range.offset))
            .and_then(|_| file.read_exact(&mut bytes))
            .map_err(io)?;
        Ok(bytes)
    }

    fn size(&self, path: &str) -> Result<u64> {
        let full = self.file(path)?;
        Ok(std::fs::metadata(&full)
            .map_err(MediaError::io(&full))?
            .len())
    }
}

/// The manifests a folder offers players, as paths in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifests {
    pub hls: Option<String>,
    pub dash: Option<String>,
}

impl Manifests {
    pub fn is_empty(&self) -> bool {
        self.hls.is_none() && self.dash.is_none()
    }

    /// The one the presentation model is read from: HLS first (ours, and packagers' that
    /// write both, describe the same renditions in each).
    pub fn primary(&self) -> Option<&str> {
        self.hls.as_deref().or(self.dash.as_deref())
    }
}

fn has_extension(name: &str, extension: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(stem, e)| !stem.is_empty() && e.eq_ignore_ascii_case(extension))
}

/// The manifests of a folder whose top-level files are `names`, chosen deterministically:
///
/// - DASH: `manifest.mpd` (ours) if there, else the first `.mpd` in byte order of names;
/// - HLS: `master.m3u8` (ours) if there, else the first `.m3u8` in byte order that is a
///   multivariant playlist (of the first 16, each read up to [`MANIFEST_LIMIT`]), else
///   `index.m3u8`, else the first `.m3u8`: a lone media playlist.
pub fn choose_manifests<'a>(
    names: impl IntoIterator<Item = &'a str>,
    files: &dyn AssetFiles,
) -> Manifests {
    let mut names: Vec<&str> = names.into_iter().collect();
    names.sort_unstable();
    let first = |ours: &str, extension: &str| -> Option<String> {
        if names.contains(&ours) {
            return Some(ours.to_string());
        }
        names
            .iter()
            .find(|n| has_extension(n, extension))
            .map(|n| (*n).to_string())
    };
    let dash = first(DASH_NAME, "mpd");
    let playlists: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| has_extension(n, "m3u8"))
        .collect();
    let hls = if playlists.contains(&HLS_NAME) {
        Some(HLS_NAME.to_string())
    } else {
        playlists
            .iter()
            .take(CANDIDATES)
            .find(|name| read_text(files, name).is_ok_and(|text| hls::is_multivariant(&text)))
            .or_else(|| playlists.iter().find(|n| **n == LONE_NAME))
            .or_else(|| playlists.first())
            .map(|n| (*n).to_string())
    };
    Manifests { hls, dash }
}

fn read_text(files: &dyn AssetFiles, path: &str) -> Result<String> {
    let bytes = files.read(path, None, MANIFEST_LIMIT)?;
    String::from_utf8(bytes).map_err(|_| MediaError::Invalid(format!("{path}: not UTF-8 text")))
}

/// What the folder's manifests are resolved against: a level below the host, so that a
/// URI that climbs out of the folder (`../other/x.m4s`) resolves outside the prefix
/// instead of being clamped at the host's root.
const BASE: &str = "http://asset.invalid/asset/";

/// A URI the manifests name, resolved against [`BASE`], as a path in the folder (query and
/// fragment left out, percent-escapes decoded); `None` for one outside it (another host,
/// or above the folder).
pub fn path_in_folder(resolved: &str) -> Option<String> {
    let rest = resolved.strip_prefix(BASE)?;
    let path = rest.split(['?', '#']).next().unwrap_or(rest);
    let decoded = percent_decode(path)?;
    (!decoded.is_empty()).then_some(decoded)
}

/// `%XX` escapes decoded (RFC 3986 §2.1); `None` for a bad escape or text that is not
/// UTF-8 once decoded.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `uri` (absolute, resolved against [`BASE`]) as a path in the folder, or left absolute
/// when it is outside.
fn relative(uri: &str) -> String {
    path_in_folder(uri).unwrap_or_else(|| uri.to_string())
}

/// Whether a URI of a folder's model is a file of the folder (not an absolute URL left as
/// it was because it points elsewhere).
pub fn is_folder_path(uri: &str) -> bool {
    !uri.contains("://")
}

/// The presentation model of the folder, read from its manifest at `manifest` (HLS, with
/// every media playlist it names, or DASH, with the segment indexes `SegmentBase` points
/// at). Every URI becomes a path in the folder (see [`path_in_folder`]); what the
/// manifests do not say is read from the init segments (codecs, picture size, sample
/// rate, whether a rendition is audio), and segment sizes from the files (byte ranges
/// carry theirs), so bit rates are the real ones. Rendition ids are made path components
/// (`[A-Za-z0-9._-]`, unique).
pub fn read_model(files: &dyn AssetFiles, manifest: &str) -> Result<Presentation> {
    let text = read_text(files, manifest)?;
    let url = format!("{BASE}{manifest}");
    // One budget for the whole presentation: its media playlists and segment indexes too.
    let mut budget = SegmentBudget::default();
    let mut presentation = if has_extension(manifest, "mpd") {
        read_dash(files, &text, &url, &mut budget)?
    } else {
        read_hls(files, &text, &url, manifest, &mut budget)?
    };
    for r in &mut presentation.renditions {
        make_relative(r);
        describe_from_init(files, r)?;
        measure(files, r);
    }
    unique_ids(&mut presentation.renditions);
    presentation.sort();
    Ok(presentation)
}

fn read_hls(
    files: &dyn AssetFiles,
    text: &str,
    url: &str,
    manifest: &str,
    budget: &mut SegmentBudget,
) -> Result<Presentation> {
    let mut presentation = if hls::is_multivariant(text) {
        hls::parse_multivariant(text, url)?
    } else {
        let stem = manifest.rsplit('/').next().unwrap_or(manifest);
        let id = stem.rsplit_once('.').map_or(stem, |(s, _)| s);
        Presentation {
            kind: PresentationKind::Vod,
            renditions: vec![Rendition::of_media_playlist(id, url)],
            delivery: Default::default(),
        }
    };
    let mut live = None;
    for r in &mut presentation.renditions {
        let Some(playlist_url) = r.playlist_uri.clone() else {
            continue;
        };
        let path = path_in_folder(&playlist_url).ok_or_else(|| {
            MediaError::Hls(format!(
                "media playlist {playlist_url} is outside the folder"
            ))
        })?;
        let text = read_text(files, &path)?;
        let info = hls::parse_media_playlist_in(&text, &playlist_url, budget)?;
        if !info.ended {
            live = Some(info.target_duration);
        }
        info.fill(r);
    }
    if let Some(reload_interval) = live {
        presentation.kind = PresentationKind::Live {
            availability_start: None,
            reload_interval,
        };
    }
    Ok(presentation)
}

fn read_dash(
    files: &dyn AssetFiles,
    text: &str,
    url: &str,
    budget: &mut SegmentBudget,
) -> Result<Presentation> {
    let mut presentation = dash::parse_mpd_in(text, url, 0.0, budget)?;
    for r in &mut presentation.renditions {
        let Some(index) = &r.segment_index else {
            continue;
        };
        let path = path_in_folder(&index.uri).ok_or_else(|| {
            MediaError::Dash(format!("segment index {} is outside the folder", index.uri))
        })?;
        let bytes = files.read(&path, Some(index.range), HEADER_LIMIT)?;
        r.index_segments(&bytes, budget)?;
    }
    Ok(presentation)
}

fn make_relative(r: &mut Rendition) {
    for uri in [&mut r.init_uri, &mut r.playlist_uri].into_iter().flatten() {
        *uri = relative(uri);
    }
    if let Some(index) = &mut r.segment_index {
        index.uri = relative(&index.uri);
    }
    for s in &mut r.segments {
        s.uri = relative(&s.uri);
    }
}

/// Fills what the manifest left out from the rendition's init segment (fMP4 only): its
/// media type, codecs, picture size, sample rate. An init segment that cannot be read
/// leaves the rendition as the manifest describes it.
fn describe_from_init(files: &dyn AssetFiles, r: &mut Rendition) -> Result<()> {
    let Some(init) = r.init_uri.as_deref().filter(|u| is_folder_path(u)) else {
        return Ok(());
    };
    let Ok(bytes) = files.read(init, r.init_range, HEADER_LIMIT) else {
        return Ok(());
    };
    let Ok(tracks) = mp4::init_tracks(&bytes) else {
        return Ok(());
    };
    let Some(track) = tracks.iter().find(|t| t.kind != mp4::TrackKind::Other) else {
        return Ok(());
    };
    if track.kind == mp4::TrackKind::Audio && !r.codecs.has_video() {
        r.media_type = MediaType::Audio;
    }
    if r.codecs.0.is_empty() {
        // Every track's codec: a muxed init segment declares video and audio.
        r.codecs = Codecs(
            tracks
                .iter()
                .filter_map(|t| match t.kind {
                    mp4::TrackKind::Video => t.video_codec().ok(),
                    mp4::TrackKind::Audio => t
                        .audio_specific_config()
                        .and_then(|asc| Codec::from_audio_specific_config(asc).ok()),
                    mp4::TrackKind::Other => None,
                })
                .collect(),
        );
    }
    if r.media_type == MediaType::Video
        && r.width.is_none()
        && let Some((w, h)) = track.display_dimensions()
    {
        (r.width, r.height) = (Some(w), Some(h));
    }
    if r.media_type == MediaType::Audio && r.sample_rate.is_none() {
        r.sample_rate = track
            .entry
            .audio()
            .map(|a| u32::from(a.sample_rate.integer()))
            .filter(|rate| *rate > 0);
    }
    Ok(())
}

/// Segment sizes from the files where the manifest gives none, then the real peak and
/// average bit rates. A segment that cannot be sized (outside the folder, missing) leaves
/// the bit rates as the manifest declares them.
fn measure(files: &dyn AssetFiles, r: &mut Rendition) {
    for s in &mut r.segments {
        if s.size.is_none() && is_folder_path(&s.uri) {
            s.size = files.size(&s.uri).ok();
        }
    }
    r.measure_bandwidth();
}

/// Rendition ids made path components (`[A-Za-z0-9._-]`, not starting with `.`), unique:
/// live channels and our manifests use them as folder names.
fn unique_ids(renditions: &mut [Rendition]) {
    let mut taken: Vec<String> = Vec::new();
    for (i, r) in renditions.iter_mut().enumerate() {
        let clean: String =
            r.id.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                        c
                    } else {
                        '_'
                    }
                })
                .take(64)
                .collect();
        let prefix = match r.media_type {
            MediaType::Video => 'v',
            MediaType::Audio => 'a',
        };
        let mut id = if clean.is_empty() || clean.starts_with('.') {
            format!("{prefix}{i}")
        } else {
            clean
        };
        if taken.contains(&id) {
            id = format!("{id}-{i}");
        }
        taken.push(id.clone());
        r.id = id;
    }
}

/// A model whose URIs follow HLS (a rendition's init and segment URIs relative to its
/// media playlist, as in `presentation.json`) with every URI made a path in the folder,
/// as [`read_model`] gives them.
pub fn folder_paths(mut presentation: Presentation) -> Presentation {
    for r in &mut presentation.renditions {
        let playlist = r.playlist_uri.as_deref().unwrap_or("");
        let base = format!("{BASE}{playlist}");
        let resolve = |uri: &str| {
            crate::model::resolve_uri(&base, uri).map_or_else(|_| uri.to_string(), |u| relative(&u))
        };
        r.init_uri = r.init_uri.as_deref().map(resolve);
        for s in &mut r.segments {
            s.uri = resolve(&s.uri);
        }
        if let Some(index) = &mut r.segment_index {
            index.uri = resolve(&index.uri);
        }
        r.playlist_uri = r
            .playlist_uri
            .as_deref()
            .map(|p| relative(&format!("{BASE}{p}")));
    }
    presentation
}

/// Whether every media segment and init segment of `presentation` is fragmented MP4 (what
/// a live loop re-times).
pub fn all_fmp4(presentation: &Presentation) -> bool {
    presentation
        .renditions
        .iter()
        .all(|r| r.container == Container::Fmp4)
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashMap;

    use super::*;

    /// Files in memory.
    #[derive(Default)]
    pub(crate) struct Memory(pub(crate) HashMap<String, Vec<u8>>);

    impl AssetFiles for Memory {
        fn read(&self, path: &str, range: Option<ByteRange>, limit: u64) -> Result<Vec<u8>> {
            let bytes = self
                .0
                .get(path)
                .ok_or_else(|| MediaError::Invalid(format!("no {path}")))?;
            let r = range.unwrap_or(ByteRange {
                offset: 0,
                length: bytes.len() as u64,
            });
            if r.length > limit {
                return Err(MediaError::Invalid("over the limit".into()));
            }
            bytes
                .get(r.offset as usize..r.end() as usize)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| MediaError::Invalid("past the end".into()))
        }

        fn size(&self, path: &str) -> Result<u64> {
            self.read(path, None, u64::MAX).map(|b| b.len() as u64)
        }
    }

    fn memory(files: &[(&str, &str)]) -> Memory {
        Memory(
            files
                .iter()
                .map(|(p, t)| ((*p).to_string(), t.as_bytes().to_vec()))
                .collect(),
        )
    }

    const MULTIVARIANT: &str = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000\nv/0.m3u8\n";
    const MEDIA: &str = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n0_000.ts\n\
#EXTINF:2,\nsub/0_001.ts?token=1\n#EXT-X-ENDLIST\n";

    #[test]
    fn manifests_are_chosen_by_name_then_content() {
        let files = memory(&[
            ("a.m3u8", MEDIA),
            ("b.m3u8", MEDIA),
            ("playlist.m3u8", MULTIVARIANT),
            ("zz.m3u8", MULTIVARIANT),
        ]);
        // (names at the top, HLS chosen, DASH chosen)
        let rows: [(&[&str], Option<&str>, Option<&str>); 7] = [
            (
                &["master.m3u8", "manifest.mpd", "presentation.json"],
                Some("master.m3u8"),
                Some("manifest.mpd"),
            ),
            (
                &["zz.m3u8", "a.m3u8", "playlist.m3u8"],
                Some("playlist.m3u8"),
                None,
            ),
            (&["b.m3u8", "a.m3u8"], Some("a.m3u8"), None),
            (
                &["b.m3u8", "index.m3u8", "a.m3u8"],
                Some("index.m3u8"),
                None,
            ),
            (&["stream.mpd", "a.MPD", "x.ts"], None, Some("a.MPD")),
            (&["0.ts", ".m3u8", "notes.txt"], None, None),
            (&["master.m3u8", "zz.m3u8"], Some("master.m3u8"), None),
        ];
        for (names, hls, dash) in rows {
            let m = choose_manifests(names.iter().copied(), &files);
            assert_eq!(
                (m.hls.as_deref(), m.dash.as_deref()),
                (hls, dash),
                "{names:?}"
            );
        }
    }

    #[test]
    fn uris_become_paths_in_the_folder_or_stay_outside() {
        let rows = [
            ("http://asset.invalid/asset/a/b.m4s", Some("a/b.m4s")),
            ("http://asset.invalid/asset/a%20b.ts?x=1#f", Some("a b.ts")),
            ("http://asset.invalid/other/x.m4s", None),
            ("https://cdn.test/x.m4s", None),
            ("http://asset.invalid/asset/", None),
            ("http://asset.invalid/asset/%zz", None),
        ];
        for (uri, want) in rows {
            assert_eq!(path_in_folder(uri).as_deref(), want, "{uri}");
        }
    }

    #[test]
    fn a_lone_media_playlist_is_one_rendition_of_the_files_it_names() {
        let files = memory(&[
            ("ts.m3u8", MEDIA),
            ("0_000.ts", &"x".repeat(250_000)),
            ("sub/0_001.ts", &"x".repeat(500_000)),
        ]);
        let p = read_model(&files, "ts.m3u8").unwrap();
        assert_eq!(p.kind, PresentationKind::Vod);
        let r = &p.renditions[0];
        assert_eq!(r.id, "ts");
        assert_eq!(r.container, Container::MpegTs);
        let uris: Vec<&str> = r.segments.iter().map(|s| s.uri.as_str()).collect();
        assert_eq!(uris, ["0_000.ts", "sub/0_001.ts"]);
        assert_eq!(r.bandwidth_peak, 2_000_000, "the larger segment over 2 s");
        assert_eq!(r.bandwidth_avg, 1_500_000);
        assert_eq!(p.duration(), 4.0);
    }

    #[test]
    fn a_multivariant_playlist_reads_its_media_playlists() {
        let files = memory(&[
            ("main.m3u8", MULTIVARIANT),
            (
                "v/0.m3u8",
                "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"../init.mp4\"\n#EXTINF:2,\n../s/1.m4s\n",
            ),
            ("s/1.m4s", "segment"),
        ]);
        let p = read_model(&files, "main.m3u8").unwrap();
        assert!(
            matches!(p.kind, PresentationKind::Live { .. }),
            "no ENDLIST"
        );
        let r = &p.renditions[0];
        assert_eq!(r.playlist_uri.as_deref(), Some("v/0.m3u8"));
        assert_eq!(r.init_uri.as_deref(), Some("init.mp4"));
        assert_eq!(r.segments[0].uri, "s/1.m4s");
        // A media playlist outside the folder is an error; a missing one too.
        let out = memory(&[(
            "m.m3u8",
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n../x.m3u8\n",
        )]);
        assert!(read_model(&out, "m.m3u8").is_err());
        assert!(read_model(&memory(&[("main.m3u8", MULTIVARIANT)]), "main.m3u8").is_err());
    }

    #[test]
    fn ids_become_unique_path_components() {
        let mut renditions: Vec<Rendition> = ["English (US)", "English (US)", "", ".x"]
            .iter()
            .map(|id| Rendition::of_media_playlist(id, "x.m3u8"))
            .collect();
        unique_ids(&mut renditions);
        let ids: Vec<&str> = renditions.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["English__US_", "English__US_-1", "v2", "v3"]);
    }

    #[test]
    fn our_layout_becomes_folder_paths() {
        let mut p = crate::model::tests::sample_presentation();
        p.renditions.push(crate::model::tests::audio_rendition());
        let p = folder_paths(p);
        let a = p.renditions.iter().find(|r| r.id == "audio").unwrap();
        assert_eq!(a.init_uri.as_deref(), Some("audio/init.mp4"));
        assert_eq!(a.segments[1].uri, "audio/2.m4s");
        assert_eq!(a.playlist_uri.as_deref(), Some("audio/index.m3u8"));
    }

    #[test]
    fn asset_dirs_read_ranges_and_stay_inside() {
        let lib = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(lib.path()).unwrap();
        let asset = root.join("a");
        std::fs::create_dir_all(asset.join("sub")).unwrap();
        std::fs::write(asset.join("sub/f.bin"), b"0123456789").unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"secret").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), asset.join("link")).unwrap();
        std::os::unix::fs::symlink(asset.join("sub/f.bin"), asset.join("inner")).unwrap();
        let dir = AssetDir::new(&asset).within(&root);
        assert_eq!(
            dir.read("sub/f.bin", ByteRange::new(2, 3), 100).unwrap(),
            b"234"
        );
        assert_eq!(dir.read("inner", None, 100).unwrap(), b"0123456789");
        assert_eq!(dir.size("sub/f.bin").unwrap(), 10);
        assert!(
            dir.read("sub/f.bin", ByteRange::new(8, 3), 100).is_err(),
            "past the end"
        );
        assert!(dir.read("sub/f.bin", None, 5).is_err(), "over the limit");
        for bad in [
            "link",
            "../a/sub/f.bin",
            "/etc/passwd",
            "sub/../sub/f.bin",
            "",
            "missing",
        ] {
            assert!(dir.read(bad, None, 100).is_err(), "{bad}");
        }
        // Unconfined, the link is followed.
        assert_eq!(
            AssetDir::new(&asset).read("link", None, 100).unwrap(),
            b"secret"
        );
    }
}
