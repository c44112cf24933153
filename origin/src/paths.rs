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

/// The kind of a media file from its name; `None` for names the origin does not serve.
pub fn media_kind(name: &str) -> Option<MediaKind> {
    let (_, ext) = name.rsplit_once('.')?;
    let (kind, content_type, cache) = match ext {
        // RFC 8216 §4 names this media type for playlists.
        "m3u8" => (
            RouteKind::Manifest,
            "application/vnd.apple.mpegurl",
            CachePolicy::Manifest,
        ),
        // ISO/IEC 23009-1 Annex C.
        "mpd" => (
            RouteKind::Manifest,
            "application/dash+xml",
            CachePolicy::Manifest,
        ),
        // CMAF header (init segment): an ISO-BMFF file.
        "mp4" => (RouteKind::Init, "video/mp4", CachePolicy::Immutable),
        // IANA-registered type for ISO-BMFF media segments.
        "m4s" => (
            RouteKind::Segment,
            "video/iso.segment",
            CachePolicy::Immutable,
        ),
        _ => return None,
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
        let k = |n| media_kind(n).map(|k| (k.kind, k.content_type));
        assert_eq!(
            k("master.m3u8"),
            Some((RouteKind::Manifest, "application/vnd.apple.mpegurl"))
        );
        assert_eq!(
            k("manifest.mpd"),
            Some((RouteKind::Manifest, "application/dash+xml"))
        );
        assert_eq!(k("init.mp4"), Some((RouteKind::Init, "video/mp4")));
        assert_eq!(k("7.m4s"), Some((RouteKind::Segment, "video/iso.segment")));
        assert_eq!(k("presentation.json"), None);
        assert_eq!(k("m4s"), None);
    }

    #[test]
    fn route_kinds() {
        let rows = [
            ("/vod/sample/master.m3u8", RouteKind::Manifest),
            ("/vod/sample/270p-300k/index.m3u8", RouteKind::Manifest),
            ("/vod/sample/270p-300k/init.mp4", RouteKind::Init),
            ("/vod/sample/270p-300k/3.m4s", RouteKind::Segment),
            ("/vod/sample/x.txt", RouteKind::Other),
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
