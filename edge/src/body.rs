//! Stored bodies: a few exact-size segments per object, served without copying.
//!
//! A fill copies what the upstream sends into segments of about [`SEGMENT`] bytes as
//! it arrives, and the finished segments become the stored body as they are: storing
//! never copies a whole object a second time, and a fill holds the upstream's buffers
//! (which can be much larger than the bytes they carry) for one segment at most.
//! Segments of [`MMAP_MIN`] bytes and more get their own anonymous memory mapping,
//! returned to the OS the moment the object is evicted or purged. Held on the heap,
//! freed bodies stayed resident: after purging a full 128 MiB cache RSS stayed at
//! 169 MB, against 90 MB with mappings.

use std::sync::Arc;

use axum::body::Body;
use bytes::{Bytes, BytesMut};

/// Segments at least this large are stored in their own mapping (the heap allocator's
/// own default mmap threshold).
pub const MMAP_MIN: usize = 128 * 1024;

/// A fill freezes what it received into a segment once this much is waiting.
pub const SEGMENT: usize = 1 << 20;

/// Copies `chunks` into one exact-size buffer: a mapping of its own when large.
pub fn segment(chunks: &[Bytes]) -> Bytes {
    let len: usize = chunks.iter().map(Bytes::len).sum();
    if len >= MMAP_MIN
        && let Ok(mut map) = memmap2::MmapMut::map_anon(len)
    {
        let mut pos = 0;
        for chunk in chunks {
            // The mapping is exactly the sum of the chunk lengths.
            map[pos..pos + chunk.len()].copy_from_slice(chunk);
            pos += chunk.len();
        }
        return Bytes::from_owner(map);
    }
    let mut buf = BytesMut::with_capacity(len);
    for chunk in chunks {
        buf.extend_from_slice(chunk);
    }
    buf.freeze()
}

/// A complete stored body: its segments in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Payload {
    segments: Arc<[Bytes]>,
    len: u64,
}

impl Payload {
    pub fn new(segments: Vec<Bytes>) -> Self {
        let len = segments.iter().map(|s| s.len() as u64).sum();
        Payload {
            segments: segments.into(),
            len,
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes `start..end` (end exclusive, clamped to the length), as slices of the
    /// segments: no copy.
    pub fn slices(&self, start: u64, end: u64) -> Vec<Bytes> {
        let end = end.min(self.len);
        let mut out = Vec::new();
        let mut at = 0u64;
        for seg in self.segments.iter() {
            let len = seg.len() as u64;
            let (lo, hi) = (start.max(at), end.min(at + len));
            if lo < hi {
                // lo - at and hi - at are within the segment, whose length is a usize.
                out.push(seg.slice((lo - at) as usize..(hi - at) as usize));
            }
            at += len;
            if at >= end {
                break;
            }
        }
        out
    }

    /// The bytes `start..end` as a response body.
    pub fn body(&self, start: u64, end: u64) -> Body {
        let mut slices = self.slices(start, end);
        match slices.len() {
            0 => Body::empty(),
            1 => Body::from(slices.remove(0)),
            _ => Body::from_stream(futures::stream::iter(
                slices.into_iter().map(Ok::<_, std::convert::Infallible>),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(size: usize) -> Vec<u8> {
        (0..size).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn segments_copy_small_and_large_bodies() {
        for size in [0, 10, MMAP_MIN - 1, MMAP_MIN, 3 * MMAP_MIN + 7] {
            let data = data(size);
            let chunks: Vec<Bytes> = data.chunks(1000).map(Bytes::copy_from_slice).collect();
            assert_eq!(segment(&chunks), data, "size {size}");
        }
    }

    #[test]
    fn payload_slices_cross_segments() {
        let all = data(2500);
        let segments: Vec<Bytes> = all.chunks(1000).map(Bytes::copy_from_slice).collect();
        let p = Payload::new(segments);
        assert_eq!(p.len(), 2500);
        // (start, end, number of slices)
        let rows: [(u64, u64, usize); 7] = [
            (0, u64::MAX, 3),
            (0, 1000, 1),
            (999, 1001, 2),
            (1500, 1600, 1),
            (10, 2490, 3),
            (2500, u64::MAX, 0),
            (3000, 4000, 0),
        ];
        for (start, end, n) in rows {
            let slices = p.slices(start, end);
            assert_eq!(slices.len(), n, "{start}..{end}");
            let joined: Vec<u8> = slices.iter().flat_map(|s| s.iter().copied()).collect();
            let (s, e) = (
                (start as usize).min(all.len()),
                (end.min(all.len() as u64)) as usize,
            );
            assert_eq!(joined, all[s..e.max(s)], "{start}..{end}");
        }
    }
}
