//! The one normal form of a request target's path and query (RFC 3986 §6.2.2), used
//! for everything a server decides by path: the edge's cache key, the target it sends
//! upstream, `PURGE` prefixes and its admin routing; the origin's routing and file
//! lookup ([`segments`]). Two targets that mean the same resource have the same normal
//! form, so aliases (`/%73ample`, `/a/./b`, `/x/../.edge/status`) neither multiply
//! cache entries nor slip past a prefix or a route.
//!
//! The normal form of `path?query`:
//! 1. percent-encodings of unreserved characters (`A–Z a–z 0–9 - . _ ~`) are decoded
//!    and every other one is written in upper case (§6.2.2.1, §6.2.2.2): `%7e` → `~`,
//!    `%2f` → `%2F`; an encoded `/` stays encoded: it is data, not a separator;
//! 2. characters a URI may not carry literally there (`"`, `<`, `\`, `{`, bytes past
//!    ASCII…) are percent-encoded, so a lenient parser's spelling and the strict one
//!    meet;
//! 3. dot segments are removed from the path (§5.2.4, §6.2.2.3), after step 1, so
//!    `%2e%2e` is `..` too.
//!
//! A target has no normal form (a server answers 400) when its path does not start
//! with `/`, a `%` is not followed by two hex digits, or a `..` would climb above the
//! root (RFC 3986 would silently drop it; like nginx, Rivulet refuses the attempt).

use std::borrow::Cow;

/// Why a target has no normal form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the request target must be a path starting with /")]
    NotAPath,
    #[error("invalid percent-encoding in the request target")]
    BadPercent,
    #[error("the path climbs above the root")]
    AboveRoot,
    #[error("an encoded / or NUL in a path segment")]
    ForbiddenSegment,
}

/// `unreserved` (RFC 3986 §2.3).
pub(crate) fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// `sub-delims` (RFC 3986 §2.2).
pub(crate) fn sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

/// Characters kept literally: `pchar` (RFC 3986 §3.3) and `/`, plus `?` in a query.
fn literal(b: u8, query: bool) -> bool {
    unreserved(b) || sub_delim(b) || matches!(b, b':' | b'@' | b'/') || (query && b == b'?')
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn push_encoded(out: &mut String, b: u8) {
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 15)]));
}

/// Steps 1 and 2 over one component.
fn normalize_encoding(s: &str, query: bool) -> Result<String, PathError> {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) else {
                return Err(PathError::BadPercent);
            };
            let v = hi << 4 | lo;
            if unreserved(v) {
                out.push(char::from(v));
            } else {
                push_encoded(&mut out, v);
            }
            i += 3;
        } else {
            if literal(b, query) {
                out.push(char::from(b));
            } else {
                push_encoded(&mut out, b);
            }
            i += 1;
        }
    }
    Ok(out)
}

/// Step 3: RFC 3986 §5.2.4 on an absolute path, refusing to climb above the root.
fn remove_dot_segments(path: &str) -> Result<String, PathError> {
    let mut out: Vec<&str> = Vec::new();
    let mut segments = path.split('/').skip(1).peekable();
    // A path ending in `.` or `..` names a directory: it keeps its trailing slash.
    let mut trailing = false;
    while let Some(seg) = segments.next() {
        let last = segments.peek().is_none();
        match seg {
            "." => trailing = last,
            ".." => {
                if out.pop().is_none() {
                    return Err(PathError::AboveRoot);
                }
                trailing = last;
            }
            s => {
                out.push(s);
                trailing = false;
            }
        }
    }
    let mut normal = String::with_capacity(path.len());
    for seg in &out {
        normal.push('/');
        normal.push_str(seg);
    }
    if trailing || normal.is_empty() {
        normal.push('/');
    }
    Ok(normal)
}

/// The normal form of an origin-form target `path[?query]` (see the module
/// documentation); borrowed when the target already is in it.
pub fn normalize(target: &str) -> Result<Cow<'_, str>, PathError> {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    if !path.starts_with('/') {
        return Err(PathError::NotAPath);
    }
    let path = remove_dot_segments(&normalize_encoding(path, false)?)?;
    let query = query.map(|q| normalize_encoding(q, true)).transpose()?;
    let normal_len = path.len() + query.as_ref().map_or(0, |q| q.len() + 1);
    let same = normal_len == target.len()
        && target.starts_with(path.as_str())
        && query
            .as_ref()
            .is_none_or(|q| target[path.len() + 1..] == *q);
    if same {
        return Ok(Cow::Borrowed(target));
    }
    let mut normal = path;
    if let Some(q) = query {
        normal.push('?');
        normal.push_str(&q);
    }
    Ok(Cow::Owned(normal))
}

/// The decoded segments of a normalized path, for a server that maps paths to names
/// (files, assets): every `%XX` decoded. A segment that would hold a `/` or a NUL once
/// decoded cannot name a file, so it is refused rather than guessed at; so is one that
/// is not UTF-8. The empty segment after a trailing slash is kept (`/a/` → `["a", ""]`).
pub fn segments(normal_path: &str) -> Result<Vec<String>, PathError> {
    let path = normal_path.split('?').next().unwrap_or("");
    let path = path.strip_prefix('/').ok_or(PathError::NotAPath)?;
    path.split('/')
        .map(|seg| {
            let bytes = seg.as_bytes();
            let mut out = Vec::with_capacity(bytes.len());
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'%' {
                    let v = match (
                        bytes.get(i + 1).copied().and_then(hex),
                        bytes.get(i + 2).copied().and_then(hex),
                    ) {
                        (Some(hi), Some(lo)) => hi << 4 | lo,
                        _ => return Err(PathError::BadPercent),
                    };
                    if v == b'/' || v == 0 {
                        return Err(PathError::ForbiddenSegment);
                    }
                    out.push(v);
                    i += 3;
                } else {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
            String::from_utf8(out).map_err(|_| PathError::ForbiddenSegment)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn normal_forms_rfc_3986_6_2_2() {
        use PathError::*;
        let rows: [(&str, Result<&str, PathError>); 30] = [
            ("/", Ok("/")),
            ("/vod/sample/master.m3u8", Ok("/vod/sample/master.m3u8")),
            ("/a?x=1&y=2", Ok("/a?x=1&y=2")),
            // §6.2.2.2: unreserved characters decoded (issue 14: `/vod/%73ample/…`).
            ("/vod/%73ample/x", Ok("/vod/sample/x")),
            ("/%7Euser/%2D%2e%5F", Ok("/~user/-._")),
            // §6.2.2.1: the other encodings in upper case; `%2F` is data, kept encoded.
            (
                "/vod/sample/a%2findex.m3u8",
                Ok("/vod/sample/a%2Findex.m3u8"),
            ),
            ("/a%2Fb", Ok("/a%2Fb")),
            ("/a%20b%3f", Ok("/a%20b%3F")),
            // Characters a URI may not carry literally are encoded.
            ("/a\"b", Ok("/a%22b")),
            ("/a{b}|c", Ok("/a%7Bb%7D%7Cc")),
            // §5.2.4: dot segments, after decoding (`%2e%2e` is `..`).
            ("/a/./b", Ok("/a/b")),
            ("/a/b/../c", Ok("/a/c")),
            ("/x/../.edge/status", Ok("/.edge/status")),
            ("/x/%2e%2e/.edge/status", Ok("/.edge/status")),
            ("/x/%2E%2E/%2e/y", Ok("/y")),
            ("/a/.", Ok("/a/")),
            ("/a/b/..", Ok("/a/")),
            ("/.", Ok("/")),
            // Segments that only look like dots are names.
            ("/a/.../b", Ok("/a/.../b")),
            ("/a/..b/.c", Ok("/a/..b/.c")),
            // Empty segments are kept: `//` is a different path.
            ("//a", Ok("//a")),
            // The query: same encoding rules, no dot segments, `?` and `/` literal.
            ("/a?q=%7e%2f/..?", Ok("/a?q=~%2F/..?")),
            ("/a?", Ok("/a?")),
            ("/a/../b?x=%41", Ok("/b?x=A")),
            // No normal form: 400.
            ("/..", Err(AboveRoot)),
            ("/a/../../etc/passwd", Err(AboveRoot)),
            ("/%2e%2e/x", Err(AboveRoot)),
            ("/a%zz", Err(BadPercent)),
            ("/a?b=%4", Err(BadPercent)),
            ("*", Err(NotAPath)),
        ];
        for (input, want) in rows {
            assert_eq!(
                normalize(input).as_deref().map_err(|e| *e),
                want,
                "{input:?}"
            );
        }
        // Already normal: borrowed, no allocation on the hot path.
        assert!(matches!(normalize("/a/b?c=d"), Ok(Cow::Borrowed(_))));
        assert!(matches!(normalize("/a/b/"), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn the_normal_form_is_a_fixed_point() {
        for input in [
            "/vod/%73ample/a%2findex.m3u8?x=%7e",
            "/a/./b/../c/",
            "/a\"b?c d",
        ] {
            let once = normalize(input).unwrap().into_owned();
            assert_eq!(normalize(&once).unwrap(), once, "{input:?}");
        }
    }

    #[test]
    fn decoded_segments_for_file_lookups() {
        use PathError::*;
        let rows: [(&str, Result<&[&str], PathError>); 7] = [
            (
                "/vod/sample/master.m3u8",
                Ok(&["vod", "sample", "master.m3u8"]),
            ),
            ("/a%20b/c%3F", Ok(&["a b", "c?"])),
            ("/a/", Ok(&["a", ""])),
            ("/a?x=%2F", Ok(&["a"])),
            // An encoded `/` or NUL cannot be part of a name.
            ("/vod/sample/a%2Findex.m3u8", Err(ForbiddenSegment)),
            ("/a%00", Err(ForbiddenSegment)),
            ("/%C3%28", Err(ForbiddenSegment)),
        ];
        for (input, want) in rows {
            let got = segments(input);
            let got: Result<Vec<&str>, PathError> = got
                .as_ref()
                .map(|v| v.iter().map(String::as_str).collect())
                .map_err(|e| *e);
            assert_eq!(got, want.map(<[&str]>::to_vec), "{input:?}");
        }
    }
}
