//! The field-value grammar several rules share: comma-separated lists (RFC 9110 §5.6.1)
//! whose members may hold quoted strings (§5.6.4) with their own commas and semicolons.

/// Splits `s` at every `sep` outside a quoted string; a backslash inside a quoted string
/// escapes the next character (a `quoted-pair`). Parts are returned untrimmed.
pub(crate) fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// The members of a list field, every field line combined (§5.3), trimmed of optional
/// whitespace, empty members dropped (§5.6.1: a recipient accepts and ignores them).
pub(crate) fn members<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    values
        .into_iter()
        .flat_map(|v| split_outside_quotes(v, ','))
        .map(trim_ows)
        .filter(|m| !m.is_empty())
        .collect()
}

/// Removes optional whitespace (`OWS`: spaces and horizontal tabs, §5.6.3).
pub(crate) fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// The text of a quoted string with its escapes resolved (§5.6.4), or `s` as it is when it
/// is not quoted.
pub(crate) fn unquote(s: &str) -> std::borrow::Cow<'_, str> {
    let Some(inner) = s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) else {
        return s.into();
    };
    if !inner.contains('\\') {
        return inner.into();
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' {
            chars.next().unwrap_or(c)
        } else {
            c
        });
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting_keeps_quoted_separators() {
        let rows: [(&str, char, &[&str]); 5] = [
            ("a, b", ',', &["a", " b"]),
            ("a=\"x, y\", b", ',', &["a=\"x, y\"", " b"]),
            // An escaped quote does not end the string (§5.6.4 quoted-pair).
            ("a=\"x\\\", y\", b", ',', &["a=\"x\\\", y\"", " b"]),
            (
                "n; detail=\"p; q\"; hit",
                ';',
                &["n", " detail=\"p; q\"", " hit"],
            ),
            ("", ',', &[""]),
        ];
        for (input, sep, want) in rows {
            assert_eq!(split_outside_quotes(input, sep), want, "{input:?}");
        }
    }

    #[test]
    fn members_of_all_lines_without_empty_ones() {
        // RFC 9110 §5.6.1: empty list elements are ignored; §5.3: lines combine.
        assert_eq!(members([" a ,, b", "", "c,\t"]), ["a", "b", "c"]);
    }

    #[test]
    fn unquoting() {
        for (input, want) in [
            ("60", "60"),
            ("\"60\"", "60"),
            ("\"a\\\"b\"", "a\"b"),
            ("\"a\\\\b\"", "a\\b"),
            ("\"", "\""),
        ] {
            assert_eq!(unquote(input), want, "{input:?}");
        }
    }
}
