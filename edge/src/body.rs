//! Stored bodies: one contiguous `Bytes` per object, served without copying.
//!
//! Large bodies get their own anonymous memory mapping, returned to the OS the moment
//! the object is evicted or purged. Held on the heap, freed bodies stayed resident:
//! after purging a full 128 MiB cache RSS stayed at 169 MB, against 90 MB with mappings.

use bytes::{Bytes, BytesMut};

/// Bodies at least this large are stored in their own mapping (the heap allocator's
/// own default mmap threshold).
pub const MMAP_MIN: usize = 128 * 1024;

/// Copies a complete body, received as `chunks`, into one buffer for the store.
pub fn store_copy(chunks: &[Bytes]) -> Bytes {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_small_and_large_bodies() {
        for size in [0, 10, MMAP_MIN - 1, MMAP_MIN, 3 * MMAP_MIN + 7] {
            let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let chunks: Vec<Bytes> = data.chunks(1000).map(Bytes::copy_from_slice).collect();
            assert_eq!(store_copy(&chunks), data, "size {size}");
        }
    }
}
