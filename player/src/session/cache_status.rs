//! Reading the RFC 9211 `Cache-Status` response field: did any cache on the path answer
//! from storage?

/// Whether a `Cache-Status` value reports a hit: some member carries the `hit` parameter
/// (RFC 9211 §2.1; a boolean parameter is `hit` or `hit=?1`). Members are
/// `name; param; param=value`, comma-separated; quoted strings may hold `,` and `;`.
pub fn is_hit(value: &str) -> bool {
    split_outside_quotes(value, ',').iter().any(|member| {
        split_outside_quotes(member, ';')
            .iter()
            .skip(1)
            .any(|param| matches!(param.trim(), "hit" | "hit=?1"))
    })
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_table() {
        for (value, hit) in [
            ("edge-1; hit; ttl=3500", true),
            ("edge-1; fwd=miss; stored", false),
            ("edge-1; fwd=stale; fwd-status=304", false),
            ("edge-1; hit=?1", true),
            ("edge-1; hit=?0", false),
            // A parent hit behind a child miss still kept the request off the origin.
            ("parent; hit, child; fwd=miss; stored", true),
            ("origin-shield; fwd=uri-miss, edge; fwd=miss", false),
            ("\"hit; ttl\"; fwd=miss", false),
            ("x; detail=\"a, b; hit\"; fwd=miss", false),
            ("hit", false),
            ("", false),
        ] {
            assert_eq!(is_hit(value), hit, "{value:?}");
        }
    }
}
