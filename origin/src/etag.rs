//! Entity tags (RFC 9110 §8.8.3) and the two ways of comparing them (§8.8.3.2).

use std::fmt;

use http::HeaderValue;

/// An entity tag: an opaque validator, strong unless marked `W/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityTag {
    weak: bool,
    /// The characters between the double quotes.
    opaque: String,
}

impl EntityTag {
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

    /// Strong comparison (§8.8.3.2): both strong and the same characters.
    pub fn strong_eq(&self, other: &Self) -> bool {
        !self.weak && !other.weak && self.opaque == other.opaque
    }

    /// Weak comparison (§8.8.3.2): the same characters, whatever the weakness.
    pub fn weak_eq(&self, other: &Self) -> bool {
        self.opaque == other.opaque
    }

    /// The header form. Only tags built from valid `etagc` characters exist, so this
    /// cannot fail for ours; a parsed tag round-trips its own (valid) characters.
    pub fn to_header(&self) -> HeaderValue {
        HeaderValue::from_str(&self.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("\"\""))
    }

    /// Parses one `entity-tag` (§8.8.3): `"xyz"` or `W/"xyz"`, nothing around it.
    pub fn parse(s: &str) -> Option<Self> {
        let (tag, rest) = parse_one(s.trim_matches([' ', '\t']))?;
        rest.is_empty().then_some(tag)
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

/// `etagc = %x21 / %x23-7E / obs-text` (§8.8.3); obs-text is not valid UTF-8 on its own, and
/// header values we see here were already checked to be visible ASCII.
fn is_etagc(c: char) -> bool {
    c == '!' || ('#'..='~').contains(&c)
}

/// Parses an entity-tag at the start of `s`, returning it and the rest of the input.
fn parse_one(s: &str) -> Option<(EntityTag, &str)> {
    let (weak, s) = match s.strip_prefix("W/") {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let s = s.strip_prefix('"')?;
    let end = s.find('"')?;
    let opaque = &s[..end];
    if !opaque.chars().all(is_etagc) {
        return None;
    }
    Some((
        EntityTag {
            weak,
            opaque: opaque.to_owned(),
        },
        &s[end + 1..],
    ))
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
    /// sends garbage gets the answer for the tags it did spell right.
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

    /// Whether `current` matches with strong comparison (`If-Match`, §13.1.1).
    pub fn matches_strong(&self, current: &EntityTag) -> bool {
        match self {
            Self::Any => true,
            Self::Tags(tags) => tags.iter().any(|t| t.strong_eq(current)),
        }
    }

    /// Whether `current` matches with weak comparison (`If-None-Match`, §13.1.2).
    pub fn matches_weak(&self, current: &EntityTag) -> bool {
        match self {
            Self::Any => true,
            Self::Tags(tags) => tags.iter().any(|t| t.weak_eq(current)),
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
        // ETag 1, ETag 2, strong comparison, weak comparison.
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
    fn parses_single_tags() {
        assert_eq!(EntityTag::parse("\"abc\""), Some(tag(false, "abc")));
        assert_eq!(EntityTag::parse("W/\"abc\""), Some(tag(true, "abc")));
        assert_eq!(EntityTag::parse(" \"\" "), Some(tag(false, "")));
        for bad in ["abc", "\"abc", "w/\"abc\"", "\"a\"b", "\"a b\"", ""] {
            assert_eq!(EntityTag::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn parses_lists_across_field_lines() {
        let list = TagList::parse(["\"a\", W/\"b\"", "\"c,d\""]);
        assert_eq!(
            list,
            Some(TagList::Tags(vec![
                tag(false, "a"),
                tag(true, "b"),
                tag(false, "c,d")
            ]))
        );
        assert_eq!(TagList::parse(["*"]), Some(TagList::Any));
        assert_eq!(TagList::parse(Vec::<&str>::new()), None);
        // A malformed member is dropped, the good ones kept.
        assert_eq!(
            TagList::parse(["bogus, \"x\""]),
            Some(TagList::Tags(vec![tag(false, "x")]))
        );
    }

    #[test]
    fn list_matching_uses_the_right_comparison() {
        let current = tag(false, "v1");
        let weak_list = TagList::parse(["W/\"v1\""]).unwrap_or(TagList::Tags(vec![]));
        assert!(weak_list.matches_weak(&current));
        assert!(!weak_list.matches_strong(&current));
        assert!(TagList::Any.matches_strong(&current));
        let other = TagList::Tags(vec![tag(false, "v2")]);
        assert!(!other.matches_weak(&current));
    }

    #[test]
    fn digest_tags_are_strong_hex() {
        let t = EntityTag::from_digest(&[0xab; 32]);
        assert!(!t.is_weak());
        assert_eq!(t.to_string(), format!("\"{}\"", "ab".repeat(16)));
    }
}
