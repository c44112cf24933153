//! Common Media Client Data (CTA-5004) sent as the `CMCD` query parameter: the keys a
//! CDN can use to tell players apart and see their buffer and bitrate.

use media::ByteRange;
use url::Url;

/// CTA-5004 object type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectType {
    Manifest,
    Init,
    Video,
    Audio,
}

impl ObjectType {
    fn token(self) -> &'static str {
        match self {
            Self::Manifest => "m",
            Self::Init => "i",
            Self::Video => "v",
            Self::Audio => "a",
        }
    }
}

/// The CMCD keys this player reports for one request.
#[derive(Debug, Clone, Copy)]
pub struct Cmcd<'a> {
    /// Encoded bitrate of the object, kbit/s.
    pub br_kbps: Option<u64>,
    /// Buffer length, ms.
    pub bl_ms: Option<f64>,
    /// Object duration, ms.
    pub d_ms: Option<f64>,
    /// Measured throughput, kbit/s.
    pub mtp_kbps: Option<f64>,
    /// The next object the player will request, as a URL (made relative to this one; left
    /// out when it is this very object, another range of it).
    pub nor: Option<&'a Url>,
    /// The byte range of the next request, when it is a partial object request.
    pub nrr: Option<ByteRange>,
    pub ot: ObjectType,
    /// Session id.
    pub sid: &'a str,
    /// Starting up or rebuffering: the object is needed urgently.
    pub su: bool,
}

/// A CMCD string value: `"` and `\` escaped, quoted.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl<'a> Cmcd<'a> {
    /// The payload for a request to `url`, keys in alphabetical order as CTA-5004 §3.2
    /// asks; `bl` rounds to 100 ms and `mtp` to 100 kbit/s (§3.3).
    pub fn value(&self, url: &Url) -> String {
        let mut keys: Vec<String> = Vec::with_capacity(8);
        if let Some(bl) = self.bl_ms {
            keys.push(format!(
                "bl={}",
                ((bl / 100.0).round() * 100.0).max(0.0) as u64
            ));
        }
        if let Some(br) = self.br_kbps {
            keys.push(format!("br={br}"));
        }
        if let Some(d) = self.d_ms {
            keys.push(format!("d={}", d.round().max(0.0) as u64));
        }
        if let Some(mtp) = self.mtp_kbps {
            keys.push(format!(
                "mtp={}",
                ((mtp / 100.0).round() * 100.0).max(0.0) as u64
            ));
        }
        if let Some(next) = self.nor.filter(|next| !same_object(next, url)) {
            let relative = url.make_relative(next).unwrap_or_else(|| next.to_string());
            keys.push(format!("nor={}", quoted(&relative)));
        }
        if let Some(range) = self.nrr {
            keys.push(format!(
                "nrr={}",
                quoted(&format!("{}-{}", range.offset, range.last()))
            ));
        }
        keys.push(format!("ot={}", self.ot.token()));
        keys.push(format!("sid={}", quoted(self.sid)));
        if self.su {
            keys.push("su".to_owned());
        }
        keys.join(",")
    }

    /// What a manifest request reports: the object type, the session, and that it is
    /// needed at once.
    pub fn manifest(sid: &'a str) -> Self {
        Self {
            br_kbps: None,
            bl_ms: None,
            d_ms: None,
            mtp_kbps: None,
            nor: None,
            nrr: None,
            ot: ObjectType::Manifest,
            sid,
            su: true,
        }
    }

    /// `url` with the `CMCD` query parameter added (URL-encoded).
    pub fn apply(&self, url: &Url) -> Url {
        let value = self.value(url);
        let mut out = url.clone();
        out.query_pairs_mut().append_pair("CMCD", &value);
        out
    }
}

/// Whether two URLs name one object (their queries, where CMCD itself goes, aside).
fn same_object(a: &Url, b: &Url) -> bool {
    a.as_str().split('?').next() == b.as_str().split('?').next()
}

/// A random session id shaped like a UUID v4 (CTA-5004 recommends a UUID).
pub fn session_id() -> String {
    let bits: u128 = rand::random();
    let b = (bits & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let hex = format!("{b:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn values_table() {
        let url = Url::parse("http://h/vod/sample/720p/3.m4s").unwrap();
        let next = Url::parse("http://h/vod/sample/720p/4.m4s").unwrap();
        let full = Cmcd {
            br_kbps: Some(1850),
            bl_ms: Some(12_345.0),
            d_ms: Some(2000.0),
            mtp_kbps: Some(48_765.4),
            nor: Some(&next),
            nrr: None,
            ot: ObjectType::Video,
            sid: "abc",
            su: false,
        };
        let bare = Cmcd::manifest("a\"b");
        // The next segment is another range of this file: `nrr`, and no `nor`.
        let ranged = Cmcd {
            nor: Some(&url),
            nrr: ByteRange::new(834, 176_859),
            ..full
        };
        for (cmcd, want) in [
            (
                full,
                "bl=12300,br=1850,d=2000,mtp=48800,nor=\"4.m4s\",ot=v,sid=\"abc\"",
            ),
            (bare, "ot=m,sid=\"a\\\"b\",su"),
            (
                ranged,
                "bl=12300,br=1850,d=2000,mtp=48800,nrr=\"834-177692\",ot=v,sid=\"abc\"",
            ),
        ] {
            assert_eq!(cmcd.value(&url), want);
        }
        let applied = full.apply(&url);
        let (key, value) = applied.query_pairs().next().unwrap();
        assert_eq!(key, "CMCD");
        assert_eq!(value, full.value(&url));
    }

    #[test]
    fn session_ids_look_like_uuid_v4() {
        let id = session_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        assert_ne!(id, session_id());
    }
}
