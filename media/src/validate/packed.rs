//! Packed audio (RFC 8216 §3.4): an ID3v2 tag (holding the segment's timestamp), then
//! elementary stream frames: ADTS AAC, MPEG audio, AC-3 or E-AC-3. Checked where the
//! frames begin.

use super::{InvalidMedia, Timing};

/// ID3v2 header length (ID3v2.4 §3.1), and a bound on a tag a player would skip.
const ID3_HEADER: usize = 10;
const ID3_LIMIT: u64 = 1 << 20;

/// A packed audio segment's start, checked as it streams in.
#[derive(Debug, Default)]
pub struct Scan {
    head: Vec<u8>,
    /// Bytes still to pass over (the rest of an ID3 tag).
    skip: u64,
    /// The first frame's sync was seen.
    framed: bool,
}

impl Scan {
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), InvalidMedia> {
        while !self.framed && !bytes.is_empty() {
            if self.skip > 0 {
                let take = self.skip.min(bytes.len() as u64);
                self.skip -= take;
                bytes = &bytes[take as usize..];
                continue;
            }
            // Three bytes tell a tag from a frame; a tag's header is ten.
            let want = if self.head.starts_with(b"ID3") {
                ID3_HEADER
            } else {
                3
            };
            let take = (want - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.head.len() < want || want == 3 && self.head.starts_with(b"ID3") {
                continue;
            }
            let head = std::mem::take(&mut self.head);
            if head.starts_with(b"ID3") {
                self.skip = id3_tag_len(&head)? - ID3_HEADER as u64;
            } else if frame_sync(&head) {
                self.framed = true;
            } else {
                return Err(InvalidMedia::Structure(
                    "packed audio without an ID3 tag or an audio frame sync".into(),
                ));
            }
        }
        Ok(())
    }

    pub fn finish(self) -> Result<Timing, InvalidMedia> {
        if self.framed {
            Ok(Timing::default())
        } else {
            Err(InvalidMedia::Truncated(
                "packed audio before its first frame",
            ))
        }
    }
}

/// The whole length of the ID3v2 tag whose header is `h` (footer included).
fn id3_tag_len(h: &[u8]) -> Result<u64, InvalidMedia> {
    let bad = || InvalidMedia::Structure("a malformed ID3 tag".into());
    if h[3] == 0xff || h[4] == 0xff || h[6..10].iter().any(|b| b & 0x80 != 0) {
        return Err(bad());
    }
    // A syncsafe integer: 7 bits a byte.
    let size = h[6..10].iter().fold(0u64, |n, &b| (n << 7) | u64::from(b));
    let footer = if h[5] & 0x10 != 0 { 10 } else { 0 };
    if size > ID3_LIMIT {
        return Err(bad());
    }
    Ok(ID3_HEADER as u64 + size + footer)
}

/// ADTS and MPEG audio frames open with 11 or 12 set bits; AC-3 and E-AC-3 with 0x0B77.
fn frame_sync(h: &[u8]) -> bool {
    (h[0] == 0xff && h[1] & 0xe0 == 0xe0) || h[..2] == [0x0b, 0x77]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn check(bytes: &[u8], piece: usize) -> Result<Timing, InvalidMedia> {
        let mut scan = Scan::default();
        for chunk in bytes.chunks(piece.max(1)) {
            scan.feed(chunk)?;
        }
        scan.finish()
    }

    #[test]
    fn table() {
        let mut id3 = b"ID3\x04\x00\x00\x00\x00\x00\x05hello".to_vec();
        id3.extend([0xff, 0xf1, 0x50, 0x80]);
        let cases: [(&[u8], bool); 7] = [
            (&id3, true),
            (&[0xff, 0xf1, 0x50], true),
            (&[0x0b, 0x77, 0], true),
            (&id3[..15], false),
            (b"<html>", false),
            (b"ID3\x04\x00\x00\x80\x00\x00\x00", false),
            (&[], false),
        ];
        for (bytes, ok) in cases {
            for piece in [1, 3, 100] {
                assert_eq!(
                    check(bytes, piece).is_ok(),
                    ok,
                    "{bytes:?} in pieces of {piece}"
                );
            }
        }
    }
}
