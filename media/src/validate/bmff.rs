//! ISO-BMFF box reading for the checks: boxes that must tile a buffer exactly, and
//! big-endian fields that fail rather than panic when a box is cut short.

use super::InvalidMedia;

/// One box of a buffer: its type and body.
pub(super) struct BoxRef<'a> {
    pub(super) kind: [u8; 4],
    pub(super) body: &'a [u8],
}

pub(super) fn printable(kind: [u8; 4]) -> bool {
    kind.iter().all(|b| (0x20..=0x7e).contains(b))
}

pub(super) fn kind_text(kind: [u8; 4]) -> String {
    String::from_utf8_lossy(&kind).into_owned()
}

/// The boxes that tile `bytes` exactly, in order (an error at the first that does not).
pub(super) fn boxes(bytes: &[u8]) -> impl Iterator<Item = Result<BoxRef<'_>, InvalidMedia>> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        if at >= bytes.len() {
            return None;
        }
        let offset = at;
        let fail = |problem: String| {
            Some(Err(InvalidMedia::Box {
                offset: offset as u64,
                problem,
            }))
        };
        let Some(head) = bytes.get(at..at + 8) else {
            at = bytes.len();
            return fail("a box header is cut short".into());
        };
        let kind = [head[4], head[5], head[6], head[7]];
        let (size, header) = match u32::from_be_bytes([head[0], head[1], head[2], head[3]]) {
            0 => ((bytes.len() - at) as u64, 8),
            1 => match bytes.get(at + 8..at + 16) {
                Some(large) => (u64::from_be_bytes(large.try_into().unwrap_or_default()), 16),
                None => {
                    at = bytes.len();
                    return fail("a 64-bit box size is cut short".into());
                }
            },
            n => (u64::from(n), 8),
        };
        let end = (at as u64).saturating_add(size);
        if !printable(kind) || size < header || end > bytes.len() as u64 {
            at = bytes.len();
            return fail(format!(
                "{} box of {size} bytes does not fit the {} bytes left",
                kind_text(kind),
                bytes.len() - offset
            ));
        }
        let end = end as usize;
        at = end;
        Some(Ok(BoxRef {
            kind,
            body: &bytes[offset + header as usize..end],
        }))
    })
}

/// A big-endian reader over a box body that fails instead of panicking.
pub(super) struct Fields<'a> {
    pub(super) bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Fields<'a> {
    pub(super) fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Self { bytes, what }
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], InvalidMedia> {
        if self.bytes.len() < n {
            return Err(InvalidMedia::Structure(format!(
                "{} is cut short",
                self.what
            )));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    pub(super) fn u32(&mut self) -> Result<u32, InvalidMedia> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(super) fn u64(&mut self) -> Result<u64, InvalidMedia> {
        Ok((u64::from(self.u32()?) << 32) | u64::from(self.u32()?))
    }

    /// A full box's version and flags.
    pub(super) fn version_flags(&mut self) -> Result<(u8, u32), InvalidMedia> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00ff_ffff))
    }
}
