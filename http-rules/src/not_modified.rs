//! The header fields of a 304 (Not Modified) response (RFC 9110 §15.4.5).

use http::HeaderMap;
use http::header::{
    CACHE_CONTROL, CONTENT_LOCATION, DATE, ETAG, EXPIRES, HeaderName, LAST_MODIFIED, VARY,
};

/// The fields a 304 carries from the 200 it stands for. §15.4.5: a sender MUST send
/// those of Content-Location, Date, ETag and Vary, and Cache-Control and Expires, that
/// the 200 would have; Last-Modified is kept too, as the metadata "for the purpose of
/// guiding cache updates" it allows (a cache without an ETag revalidates by date).
/// Nothing else: the recipient already holds the representation.
pub const NOT_MODIFIED_FIELDS: [HeaderName; 7] = [
    CACHE_CONTROL,
    CONTENT_LOCATION,
    DATE,
    ETAG,
    EXPIRES,
    LAST_MODIFIED,
    VARY,
];

/// The header of a 304 made from the header `full` of the 200 that would have been
/// sent: every line of the [`NOT_MODIFIED_FIELDS`] it has, in its order, nothing else.
pub fn not_modified_headers(full: &HeaderMap) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for name in NOT_MODIFIED_FIELDS {
        for value in full.get_all(&name) {
            headers.append(name.clone(), value.clone());
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn keeps_the_fields_of_rfc_9110_15_4_5_and_only_those() {
        let mut full = HeaderMap::new();
        for (name, value) in [
            ("cache-control", "max-age=60"),
            // Every line of a list field is kept, not only the first.
            ("cache-control", "stale-if-error=30"),
            ("content-location", "/a.m4s"),
            ("date", "Sun, 06 Nov 1994 08:49:37 GMT"),
            ("etag", "\"v1\""),
            ("expires", "Sun, 06 Nov 1994 08:50:37 GMT"),
            ("last-modified", "Sun, 06 Nov 1994 08:00:00 GMT"),
            ("vary", "accept-encoding"),
            ("vary", "accept-language"),
            // Representation metadata and framing a 304 must not carry.
            ("content-type", "video/mp4"),
            ("content-length", "1000"),
            ("content-range", "bytes 0-9/1000"),
            ("accept-ranges", "bytes"),
            ("x-custom", "1"),
        ] {
            full.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        let h = not_modified_headers(&full);
        let kept: Vec<(&str, &str)> = h
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap_or("")))
            .collect();
        assert_eq!(
            kept,
            [
                ("cache-control", "max-age=60"),
                ("cache-control", "stale-if-error=30"),
                ("content-location", "/a.m4s"),
                ("date", "Sun, 06 Nov 1994 08:49:37 GMT"),
                ("etag", "\"v1\""),
                ("expires", "Sun, 06 Nov 1994 08:50:37 GMT"),
                ("last-modified", "Sun, 06 Nov 1994 08:00:00 GMT"),
                ("vary", "accept-encoding"),
                ("vary", "accept-language"),
            ]
        );
        assert!(not_modified_headers(&HeaderMap::new()).is_empty());
    }
}
