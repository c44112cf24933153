//! What a URL path may name: validated components and the kinds of file the origin serves.

use http::HeaderValue;

use crate::entity::CachePolicy;

/// The longest path component accepted (asset, rendition and file names are short).
pub const MAX_COMPONENT: usize = 128;

/// Whether one percent-decoded URL path component may be joined onto a library path.
///
/// Only `[A-Za-z0-9._-]`, not starting with a dot: this rules out `..`, hidden files,
/// separators (`/`, `\`, an encoded `%2F`), NUL and drive or absolute prefixes, so the joined
/// path can never leave the library.
pub fn valid_component(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_COMPONENT
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Route kinds, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteKind {
    Manifest,
    Init,
    Segment,
    Page,
    Lib,
    Health,
    Metrics,
    Other,
}

impl RouteKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manifest => "manifest",
            Self::Init => "init",
            Self::Segment => "segment",
            Self::Page => "page",
            Self::Lib => "lib",
            Self::Health => "health",
            Self::Metrics => "metrics",
            Self::Other => "other",
        }
    }

    /// Classifies a request path (before validation: metrics count rejected requests too).
    pub fn of_path(path: &str) -> Self {
        if path.starts_with("/vod/") || path.starts_with("/live/") {
            media_kind(path).map_or(Self::Other, |k| k.kind)
        } else if path == "/" || path.starts_with("/watch/") {
            Self::Page
        } else if path.starts_with("/lib/") {
            Self::Lib
        } else if path == "/healthz" {
            Self::Health
        } else if path == "/metrics" {
            Self::Metrics
        } else {
            Self::Other
        }
    }
}

/// How a media file is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaKind {
    pub kind: RouteKind,
    pub content_type: &'static str,
    pub cache: CachePolicy,
}

impl MediaKind {
    pub fn content_type(&self) -> HeaderValue {
        HeaderValue::from_static(self.content_type)
    }
}

/// The deepest a file may sit inside an asset: path components after the asset's name
/// (folders and the file). Packagers nest a level or two (`video/720p/seg-1.m4s`); the
/// bound keeps a request's work and the paths a manifest may name finite.
pub const MAX_DEPTH: usize = 8;

/// Every file extension the origin serves (lowercase), what a player fetches it as, and for
/// how long caches keep it. Anything else in an asset folder (sources, `presentation.json`,
/// `.srt` sidecars no HLS or DASH manifest can reference, notes) is not served.
const KINDS: &[(&str, RouteKind, &str, CachePolicy)] = {
    use CachePolicy::{Immutable, Manifest};
    use RouteKind::{Init, Other, Segment};
    const PLAYLIST: RouteKind = RouteKind::Manifest;
    &[
        // RFC 8216 §4 names this media type for playlists.
        ("m3u8", PLAYLIST, "application/vnd.apple.mpegurl", Manifest),
        // ISO/IEC 23009-1 Annex C.
        ("mpd", PLAYLIST, "application/dash+xml", Manifest),
        // IANA-registered type for ISO-BMFF media segments (ours, ffmpeg's, Shaka's).
        ("m4s", Segment, "video/iso.segment", Immutable),
        // ISO-BMFF files (RFC 4337): init segments, single-file renditions, CMAF tracks
        // (ISO/IEC 23000-19 names `.cmfv`, `.cmfa`, `.cmft`).
        ("mp4", Init, "video/mp4", Immutable),
        ("m4v", Segment, "video/mp4", Immutable),
        ("cmfv", Segment, "video/mp4", Immutable),
        ("m4a", Segment, "audio/mp4", Immutable),
        ("cmfa", Segment, "audio/mp4", Immutable),
        ("cmft", Segment, "application/mp4", Immutable),
        ("webm", Segment, "video/webm", Immutable),
        // MPEG-2 transport stream segments (RFC 8216 §3.2).
        ("ts", Segment, "video/mp2t", Immutable),
        // Packed audio segments (RFC 8216 §3.4): AAC ADTS, AC-3 (RFC 4184), E-AC-3
        // (RFC 4598), MP3 (RFC 3003).
        ("aac", Segment, "audio/aac", Immutable),
        ("ac3", Segment, "audio/ac3", Immutable),
        ("ec3", Segment, "audio/eac3", Immutable),
        ("mp3", Segment, "audio/mpeg", Immutable),
        // Subtitle segments: WebVTT (RFC 8216 §3.5) and TTML (DASH).
        ("vtt", Segment, "text/vtt; charset=utf-8", Immutable),
        ("webvtt", Segment, "text/vtt; charset=utf-8", Immutable),
        ("ttml", Segment, "application/ttml+xml", Immutable),
        // Thumbnail tiles (DASH image adaptation sets, HLS image playlists).
        ("jpg", Segment, "image/jpeg", Immutable),
        ("jpeg", Segment, "image/jpeg", Immutable),
        ("png", Segment, "image/png", Immutable),
        // AES-128 keys (RFC 8216 §4.3.2.4): 16 octets. Kept no longer than playlists, so a
        // key replaced under its URI is picked up within the hour.
        ("key", Other, "application/octet-stream", Manifest),
    ]
};

/// The kind of a media file from its name (the extension, in any case); `None` for names
/// the origin does not serve.
pub fn media_kind(name: &str) -> Option<MediaKind> {
    let (stem, ext) = name.rsplit_once('.')?;
    let &(_, kind, content_type, cache) =
        KINDS.iter().find(|(e, ..)| e.eq_ignore_ascii_case(ext))?;
    // Init segments go by many names (`init.mp4`, ffmpeg's `init_0.mp4` and
    // `init-stream0.m4s`, Shaka's `video_init.mp4`); the kind only labels metrics.
    let bmff = content_type.ends_with("mp4") || content_type == "video/iso.segment";
    let is_init = bmff && stem.to_ascii_lowercase().contains("init");
    let kind = match kind {
        RouteKind::Init | RouteKind::Segment if is_init => RouteKind::Init,
        RouteKind::Init => RouteKind::Segment,
        other => other,
    };
    Some(MediaKind {
        kind,
        content_type,
        cache,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components() {
        for ok in ["sample", "720p-2850k", "init.mp4", "12.m4s", "a_b", "A.B-c"] {
            assert!(valid_component(ok), "{ok}");
        }
        let long = "a".repeat(MAX_COMPONENT + 1);
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "a\\b",
            "a\0b",
            "/etc",
            "C:",
            "a b",
            "é",
            "%2e%2e",
            long.as_str(),
        ] {
            assert!(!valid_component(bad), "{bad:?}");
        }
    }

    #[test]
    fn kinds() {
        let k = |n| media_kind(n).map(|k| (k.kind, k.content_type, k.cache));
        let (manifest, immutable) = (CachePolicy::Manifest, CachePolicy::Immutable);
        let rows = [
            (
                "master.m3u8",
                RouteKind::Manifest,
                "application/vnd.apple.mpegurl",
                manifest,
            ),
            (
                "0.m3u8",
                RouteKind::Manifest,
                "application/vnd.apple.mpegurl",
                manifest,
            ),
            (
                "manifest.mpd",
                RouteKind::Manifest,
                "application/dash+xml",
                manifest,
            ),
            ("init.mp4", RouteKind::Init, "video/mp4", immutable),
            ("init_0.mp4", RouteKind::Init, "video/mp4", immutable),
            (
                "init-stream0.m4s",
                RouteKind::Init,
                "video/iso.segment",
                immutable,
            ),
            (
                "manifest-stream0.mp4",
                RouteKind::Segment,
                "video/mp4",
                immutable,
            ),
            ("7.m4s", RouteKind::Segment, "video/iso.segment", immutable),
            (
                "chunk-stream0-00001.m4s",
                RouteKind::Segment,
                "video/iso.segment",
                immutable,
            ),
            ("0_000.ts", RouteKind::Segment, "video/mp2t", immutable),
            ("SEG.TS", RouteKind::Segment, "video/mp2t", immutable),
            ("a.aac", RouteKind::Segment, "audio/aac", immutable),
            ("a.m4a", RouteKind::Segment, "audio/mp4", immutable),
            ("v.m4v", RouteKind::Segment, "video/mp4", immutable),
            ("v.cmfv", RouteKind::Segment, "video/mp4", immutable),
            ("a.cmfa", RouteKind::Segment, "audio/mp4", immutable),
            ("a.ac3", RouteKind::Segment, "audio/ac3", immutable),
            ("a.ec3", RouteKind::Segment, "audio/eac3", immutable),
            ("a.mp3", RouteKind::Segment, "audio/mpeg", immutable),
            (
                "s.vtt",
                RouteKind::Segment,
                "text/vtt; charset=utf-8",
                immutable,
            ),
            (
                "s.webvtt",
                RouteKind::Segment,
                "text/vtt; charset=utf-8",
                immutable,
            ),
            (
                "k.key",
                RouteKind::Other,
                "application/octet-stream",
                manifest,
            ),
        ];
        for (name, kind, content_type, cache) in rows {
            assert_eq!(k(name), Some((kind, content_type, cache)), "{name}");
        }
        for unserved in [
            "presentation.json",
            "m4s",
            "notes.txt",
            "subs.srt",
            "movie.mov",
            "x.",
        ] {
            assert_eq!(k(unserved), None, "{unserved}");
        }
    }

    #[test]
    fn route_kinds() {
        let rows = [
            ("/vod/sample/master.m3u8", RouteKind::Manifest),
            ("/vod/sample/270p-300k/index.m3u8", RouteKind::Manifest),
            ("/vod/sample/270p-300k/init.mp4", RouteKind::Init),
            ("/vod/sample/270p-300k/3.m4s", RouteKind::Segment),
            ("/vod/sample/x.txt", RouteKind::Other),
            ("/vod/hls_ts/a/b/0_000.ts", RouteKind::Segment),
            ("/vod/dash/init-stream0.m4s", RouteKind::Init),
            ("/watch/sample", RouteKind::Page),
            ("/", RouteKind::Page),
            ("/lib/hls.js", RouteKind::Lib),
            ("/healthz", RouteKind::Health),
            ("/metrics", RouteKind::Metrics),
            ("/nope", RouteKind::Other),
        ];
        for (path, kind) in rows {
            assert_eq!(RouteKind::of_path(path), kind, "{path}");
        }
    }
}
