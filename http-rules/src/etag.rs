//! Entity tags (RFC 9110 §8.8.3), the two ways of comparing them (§8.8.3.2), and the tag
//! lists of `If-Match` and `If-None-Match` (§13.1.1, §13.1.2).

use std::fmt;
use std::str::FromStr;

use http::header::HeaderName;
use http::{HeaderMap, HeaderValue};

/// An entity tag: an opaque validator, strong unless marked `W/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntityTag {
    weak: bool,
    /// The characters between the double quotes.
    opaque: String,
}

/// `etagc = %x21 / %x23-7E / obs-text` (§8.8.3). Header values read as text are visible
/// ASCII, so obs-text never reaches here.
fn is_etagc(c: char) -> bool {
    c == '!' || ('#'..='~').contains(&c)
}

impl EntityTag {
    /// A strong tag, if `opaque` holds only `etagc` characters.
    pub fn strong(opaque: &str) -> Option<Self> {
        Self::new(false, opaque)
    }

    /// A weak tag, if `opaque` holds only `etagc` characters.
    pub fn weak(opaque: &str) -> Option<Self> {
        Self::new(true, opaque)
    }

    fn new(weak: bool, opaque: &str) -> Option<Self> {
        opaque.chars().all(is_etagc).then(|| Self {
            weak,
            opaque: opaque.to_owned(),
        })
    }

    /// A strong tag from a content digest: the first 16 bytes in hex are plenty to tell
    /// versions of one resource apart, and keep the header short.
    pub fn from_digest(digest: &[u8]) -> Self {
        let opaque = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        Self {
            weak: false,
            opaque,
        }
    }

    pub fn is_weak(&self) -> bool {
        self.weak
    }

    /// The characters between the quotes.
    pub fn opaque(&self) -> &str {
        &self.opaque
    }

    /// Strong comparison (§8.8.3.2): both strong and the same characters.
    pub fn strong_eq(&self, other: &Self) -> bool {
        !self.weak && !other.weak && self.opaque == other.opaque
    }

    /// Weak comparison (§8.8.3.2): the same characters, whatever the weakness.
    pub fn weak_eq(&self, other: &Self) -> bool {
        self.opaque == other.opaque
    }

    /// The header form. A tag holds only `etagc` characters, which are valid in a header.
    pub fn to_header(&self) -> HeaderValue {
        HeaderValue::from_str(&self.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("\"\""))
    }

    /// Parses one `entity-tag` (§8.8.3): `"xyz"` or `W/"xyz"`, nothing around it but
    /// optional whitespace.
    pub fn parse(s: &str) -> Option<Self> {
        let (tag, rest) = parse_one(s.trim_matches([' ', '\t']))?;
        rest.is_empty().then_some(tag)
    }

    /// The `ETag` of a response (§8.8.3): one line holding one tag, else none.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let mut lines = headers.get_all(http::header::ETAG).iter();
        let line = lines.next()?;
        if lines.next().is_some() {
            return None;
        }
        Self::parse(line.to_str().ok()?)
    }
}

impl fmt::Display for EntityTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.weak {
            f.write_str("W/")?;
        }
        write!(f, "\"{}\"", self.opaque)
    }
}

impl FromStr for EntityTag {
    type Err = InvalidEntityTag;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or(InvalidEntityTag)
    }
}

/// A value that is not one `entity-tag`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not an entity-tag (\"xyz\" or W/\"xyz\")")]
pub struct InvalidEntityTag;

/// Parses an entity-tag at the start of `s`, returning it and the rest of the input. The
/// opaque part ends at the next double quote: `etagc` excludes it, so a comma inside
/// (`"c,d"`) belongs to the tag.
fn parse_one(s: &str) -> Option<(EntityTag, &str)> {
    let (weak, s) = match s.strip_prefix("W/") {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let s = s.strip_prefix('"')?;
    let end = s.find('"')?;
    let tag = EntityTag::new(weak, &s[..end])?;
    Some((tag, &s[end + 1..]))
}

/// The value of `If-Match` or `If-None-Match`: `"*" / #entity-tag` (§13.1.1, §13.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagList {
    Any,
    Tags(Vec<EntityTag>),
}

impl TagList {
    /// Parses all field lines of the header, combined as one comma-separated list (§5.3).
    /// Malformed members are dropped rather than failing the whole field: a client that
    /// sends garbage gets the answer for the tags it did spell right. `None` when there
    /// is no line at all.
    pub fn parse<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        let mut tags = Vec::new();
        let mut seen_any = false;
        let mut seen_field = false;
        for value in values {
            seen_field = true;
            let mut rest = value;
            loop {
                rest = rest.trim_start_matches([' ', '\t', ',']);
                if rest.is_empty() {
                    break;
                }
                if let Some(after) = rest.strip_prefix('*') {
                    seen_any = true;
                    rest = after;
                } else if let Some((tag, after)) = parse_one(rest) {
                    tags.push(tag);
                    rest = after;
                } else {
                    // Skip the malformed member up to the next comma.
                    rest = rest.find(',').map_or("", |i| &rest[i..]);
                }
            }
        }
        if !seen_field {
            None
        } else if seen_any {
            Some(Self::Any)
        } else {
            Some(Self::Tags(tags))
        }
    }

    /// Every line of the field `name` (`If-Match` or `If-None-Match`). A line that is not
    /// text still makes the field present, with no tag in it.
    pub fn from_headers(headers: &HeaderMap, name: &HeaderName) -> Option<Self> {
        TagList::parse(
            headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap_or("")),
        )
    }

    /// Whether the list matches the current representation with strong comparison
    /// (`If-Match`, §13.1.1). `*` matches any current representation, tagged or not.
    pub fn matches_strong(&self, current: Option<&EntityTag>) -> bool {
        match self {
            Self::Any => true,
            Self::Tags(tags) => current.is_some_and(|c| tags.iter().any(|t| t.strong_eq(c))),
        }
    }

    /// Whether the list matches the current representation with weak comparison
    /// (`If-None-Match`, §13.1.2). `*` matches any current representation, tagged or not.
    pub fn matches_weak(&self, current: Option<&EntityTag>) -> bool {
        match self {
            Self::Any => true,
            Self::Tags(tags) => current.is_some_and(|c| tags.iter().any(|t| t.weak_eq(c))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(weak: bool, opaque: &str) -> EntityTag {
        EntityTag {
            weak,
            opaque: opaque.into(),
        }
    }

    #[test]
    fn comparison_table_of_rfc_9110_8_8_3_2() {
        // ETag 1, ETag 2, strong comparison, weak comparison: the table of §8.8.3.2.
        let rows = [
            (tag(true, "1"), tag(true, "1"), false, true),
            (tag(true, "1"), tag(true, "2"), false, false),
            (tag(true, "1"), tag(false, "1"), false, true),
            (tag(false, "1"), tag(false, "1"), true, true),
        ];
        for (a, b, strong, weak) in rows {
            assert_eq!(a.strong_eq(&b), strong, "{a} vs {b}");
            assert_eq!(a.weak_eq(&b), weak, "{a} vs {b}");
        }
    }

    #[test]
    fn single_tags_follow_rfc_9110_8_8_3() {
        let rows: [(&str, Option<EntityTag>); 11] = [
            ("\"abc\"", Some(tag(false, "abc"))),
            ("W/\"abc\"", Some(tag(true, "abc"))),
            (" \"\" ", Some(tag(false, ""))),
            // §8.8.3: a comma is an etagc, so it belongs to the tag.
            ("\"c,d\"", Some(tag(false, "c,d"))),
            ("abc", None),
            ("\"abc", None),
            // §8.8.3: the weakness indicator is case-sensitive `W/`.
            ("w/\"abc\"", None),
            ("\"a\"b", None),
            // §8.8.3: no space (nor DQUOTE) inside the opaque part.
            ("\"a b\"", None),
            ("", None),
            ("*", None),
        ];
        for (input, want) in rows {
            assert_eq!(EntityTag::parse(input), want, "{input:?}");
            if let Some(t) = &want {
                assert_eq!(EntityTag::parse(&t.to_string()).as_ref(), Some(t));
            }
        }
        assert_eq!(EntityTag::strong("a b"), None);
        assert_eq!(EntityTag::weak("x"), Some(tag(true, "x")));
        assert_eq!("W/\"x\"".parse::<EntityTag>(), Ok(tag(true, "x")));
    }

    #[test]
    fn lists_combine_every_field_line_rfc_9110_5_3() {
        let rows: [(&[&str], Option<TagList>); 6] = [
            (
                &["\"a\", W/\"b\"", "\"c,d\""],
                Some(TagList::Tags(vec![
                    tag(false, "a"),
                    tag(true, "b"),
                    tag(false, "c,d"),
                ])),
            ),
            (&["*"], Some(TagList::Any)),
            (&[], None),
            // A malformed member is dropped, the good ones kept.
            (
                &["bogus, \"x\""],
                Some(TagList::Tags(vec![tag(false, "x")])),
            ),
            (&["garbage"], Some(TagList::Tags(vec![]))),
            // §5.6.1: empty list elements are ignored.
            (&[", ,\"x\","], Some(TagList::Tags(vec![tag(false, "x")]))),
        ];
        for (lines, want) in rows {
            assert_eq!(TagList::parse(lines.iter().copied()), want, "{lines:?}");
        }
        let mut headers = HeaderMap::new();
        for line in ["\"x\"", "\"v1\""] {
            headers.append(http::header::IF_NONE_MATCH, HeaderValue::from_static(line));
        }
        assert_eq!(
            TagList::from_headers(&headers, &http::header::IF_NONE_MATCH),
            Some(TagList::Tags(vec![tag(false, "x"), tag(false, "v1")]))
        );
    }

    #[test]
    fn list_matching_uses_the_right_comparison() {
        let current = tag(false, "v1");
        let weak_list = TagList::Tags(vec![tag(true, "v1")]);
        // (list, current, If-Match strong §13.1.1, If-None-Match weak §13.1.2)
        let rows = [
            (weak_list.clone(), Some(&current), false, true),
            (TagList::Any, Some(&current), true, true),
            // `*` is about the representation existing, not about it having a tag.
            (TagList::Any, None, true, true),
            (weak_list, None, false, false),
            (
                TagList::Tags(vec![tag(false, "v2")]),
                Some(&current),
                false,
                false,
            ),
        ];
        for (list, current, strong, weak) in rows {
            assert_eq!(list.matches_strong(current), strong, "{list:?} {current:?}");
            assert_eq!(list.matches_weak(current), weak, "{list:?} {current:?}");
        }
    }

    #[test]
    fn response_etag_and_digest_tags() {
        let mut headers = HeaderMap::new();
        assert_eq!(EntityTag::from_headers(&headers), None);
        headers.insert(http::header::ETAG, HeaderValue::from_static("W/\"7\""));
        assert_eq!(EntityTag::from_headers(&headers), Some(tag(true, "7")));
        headers.append(http::header::ETAG, HeaderValue::from_static("\"8\""));
        assert_eq!(EntityTag::from_headers(&headers), None, "two ETags: none");
        let t = EntityTag::from_digest(&[0xab; 32]);
        assert!(!t.is_weak());
        assert_eq!(t.to_string(), format!("\"{}\"", "ab".repeat(16)));
        assert_eq!(t.to_header(), t.to_string().as_str());
    }
}
