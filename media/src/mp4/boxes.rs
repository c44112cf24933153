//! ISO-BMFF box headers (ISO/IEC 14496-12 §4.2), read from a file without loading the
//! boxes, and the children of a box already in memory.

use std::io::{Read, Seek, SeekFrom};

/// A box header: its type, where it starts, and how long it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoxHeader {
    pub kind: [u8; 4],
    /// Offset of the first byte of the box (its size field).
    pub start: u64,
    /// Bytes of the header: 8, or 16 with a 64-bit `largesize`.
    pub header_len: u64,
    /// Whole size of the box, header included. A size of 0 (§4.2: "box extends to the end
    /// of the file") is resolved against the file length.
    pub size: u64,
}

impl BoxHeader {
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.size)
    }

    pub fn body_start(&self) -> u64 {
        self.start + self.header_len
    }
}

/// A four-character code as text, with anything unprintable escaped.
pub fn fourcc(kind: &[u8; 4]) -> String {
    kind.iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b).to_string()
            } else {
                format!("\\x{b:02x}")
            }
        })
        .collect()
}

/// Why a header could not be read.
#[derive(Debug)]
pub enum HeaderError {
    Io(std::io::Error),
    /// Fewer than 8 bytes (or 16 for a large box) are left before the end of the file.
    Short,
    /// A size smaller than the header itself.
    BadSize,
}

/// Reads the header of the box at `at` in a file of `file_len` bytes; `None` at the end.
pub fn read_header<R: Read + Seek>(
    reader: &mut R,
    at: u64,
    file_len: u64,
) -> Result<Option<BoxHeader>, HeaderError> {
    if at >= file_len {
        return Ok(None);
    }
    if file_len - at < 8 {
        return Err(HeaderError::Short);
    }
    reader.seek(SeekFrom::Start(at)).map_err(HeaderError::Io)?;
    let mut head = [0u8; 16];
    reader.read_exact(&mut head[..8]).map_err(HeaderError::Io)?;
    let size32 = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let kind = [head[4], head[5], head[6], head[7]];
    let (size, header_len) = match size32 {
        0 => (file_len - at, 8),
        1 => {
            if file_len - at < 16 {
                return Err(HeaderError::Short);
            }
            reader.read_exact(&mut head[8..]).map_err(HeaderError::Io)?;
            let mut large = [0u8; 8];
            large.copy_from_slice(&head[8..]);
            (u64::from_be_bytes(large), 16)
        }
        n => (u64::from(n), 8),
    };
    if size < header_len {
        return Err(HeaderError::BadSize);
    }
    Ok(Some(BoxHeader {
        kind,
        start: at,
        header_len,
        size,
    }))
}

/// One child box of a box body held in memory.
#[derive(Debug, Clone, Copy)]
pub struct Child<'a> {
    pub kind: [u8; 4],
    /// The whole box, header included (what `mp4_atom`'s decoders take).
    pub bytes: &'a [u8],
    /// The box's payload.
    pub body: &'a [u8],
}

/// The boxes laid end to end in `buf`. A box whose size runs past `buf` is an error (a
/// truncated or corrupt parent), reported with its type.
pub fn children(buf: &[u8]) -> impl Iterator<Item = Result<Child<'_>, String>> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        // Some writers pad a container with fewer than 8 zero bytes; they are no box.
        if rest.len() < 8 {
            let padding = rest.iter().all(|&b| b == 0);
            rest = &[];
            return (!padding).then(|| Err("a box header is cut short".to_string()));
        }
        let size32 = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let kind = [rest[4], rest[5], rest[6], rest[7]];
        let (size, header_len) = match size32 {
            0 => (rest.len() as u64, 8u64),
            1 if rest.len() >= 16 => {
                let mut large = [0u8; 8];
                large.copy_from_slice(&rest[8..16]);
                (u64::from_be_bytes(large), 16)
            }
            1 => {
                rest = &[];
                return Some(Err(format!("{} header is cut short", fourcc(&kind))));
            }
            n => (u64::from(n), 8),
        };
        if size < header_len || size > rest.len() as u64 {
            let err = format!(
                "{} box of {size} bytes does not fit the {} bytes left in its parent",
                fourcc(&kind),
                rest.len()
            );
            rest = &[];
            return Some(Err(err));
        }
        let (bytes, tail) = rest.split_at(size as usize);
        rest = tail;
        Some(Ok(Child {
            kind,
            bytes,
            body: &bytes[header_len as usize..],
        }))
    })
}

/// The first child of type `kind`, if any.
pub fn find<'a>(buf: &'a [u8], kind: &[u8; 4]) -> Result<Option<Child<'a>>, String> {
    for child in children(buf) {
        let child = child?;
        if &child.kind == kind {
            return Ok(Some(child));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn walks_children_and_finds_one() {
        let mut buf = boxed(b"free", b"abc");
        buf.extend(boxed(b"mdhd", &[1, 2, 3, 4]));
        let kinds: Vec<[u8; 4]> = children(&buf).map(|c| c.unwrap().kind).collect();
        assert_eq!(kinds, [*b"free", *b"mdhd"]);
        let mdhd = find(&buf, b"mdhd").unwrap().unwrap();
        assert_eq!(mdhd.body, [1, 2, 3, 4]);
        assert_eq!(mdhd.bytes.len(), 12);
        assert!(find(&buf, b"stbl").unwrap().is_none());
    }

    #[test]
    fn overlong_and_short_boxes_are_errors() {
        let mut buf = boxed(b"trak", b"abcd");
        buf[3] = 200; // claims 200 bytes
        assert!(children(&buf).next().unwrap().is_err());
        assert!(children(&[0, 0, 0, 9, b'a']).next().unwrap().is_err());
        // Zero padding shorter than a header is tolerated.
        assert!(children(&[0, 0, 0, 0]).next().is_none());
        let mut tiny = boxed(b"free", b"");
        tiny[3] = 4; // smaller than its own header
        assert!(children(&tiny).next().unwrap().is_err());
    }

    #[test]
    fn reads_headers_from_a_file() {
        let mut file = boxed(b"ftyp", b"isom");
        let mut large = vec![0, 0, 0, 1];
        large.extend_from_slice(b"mdat");
        large.extend_from_slice(&20u64.to_be_bytes());
        large.extend_from_slice(&[7, 7, 7, 7]);
        file.extend(&large);
        let len = file.len() as u64;
        let mut cursor = std::io::Cursor::new(file);
        let ftyp = read_header(&mut cursor, 0, len).unwrap().unwrap();
        assert_eq!((ftyp.kind, ftyp.size, ftyp.header_len), (*b"ftyp", 12, 8));
        let mdat = read_header(&mut cursor, ftyp.end(), len).unwrap().unwrap();
        assert_eq!((mdat.kind, mdat.size, mdat.header_len), (*b"mdat", 20, 16));
        assert!(read_header(&mut cursor, mdat.end(), len).unwrap().is_none());
        assert!(matches!(
            read_header(&mut cursor, len - 3, len),
            Err(HeaderError::Short)
        ));
    }
}
