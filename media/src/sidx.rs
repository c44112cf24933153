//! Segment indexes: the `sidx` box (ISO/IEC 14496-12 §8.16.3) that a single-file
//! rendition (DASH `SegmentBase@indexRange`, on-demand profile) uses to say where its
//! segments are, read into the model's [`Segment`]s with their byte ranges.

use mp4_atom::{Atom, Decode, Sidx};

use crate::limits::{self, SegmentBudget};
use crate::model::{ByteRange, Segment, SegmentIndex};
use crate::{MediaError, Result};

/// The segments `index_bytes` (the bytes of `index.range`, starting with the `sidx` box)
/// lists, numbered from 1, each a byte range of `index.uri`.
///
/// Offsets count from the anchor, the first byte after the `sidx` box (§8.16.3.3), plus
/// its `first_offset`; times are its `earliest_presentation_time` and durations over its
/// timescale, moved by `index.time_offset`. An index of indexes (a reference to another
/// `sidx`) is refused: the referenced boxes are outside the range fetched. The segments
/// are taken from `budget`, and each must last ([`limits::segment_seconds`]).
pub fn segments(
    index: &SegmentIndex,
    index_bytes: &[u8],
    budget: &mut SegmentBudget,
) -> Result<Vec<Segment>> {
    let invalid =
        |why: String| MediaError::Invalid(format!("segment index of {}: {why}", index.uri));
    let mut buf = index_bytes;
    let header = mp4_atom::Header::decode(&mut buf)?;
    if header.kind != Sidx::KIND {
        return Err(invalid(format!("starts with {:?}, not sidx", header.kind)));
    }
    let body_len = header
        .size
        .ok_or_else(|| invalid("sidx without a size".into()))?;
    let mut body = buf
        .get(..body_len)
        .ok_or_else(|| invalid("sidx is cut short by the index range".into()))?;
    // The header's bytes and the body's, both within `index_bytes`.
    let box_len = index_bytes.len() - buf.len() + body_len;
    let sidx = Sidx::decode_body(&mut body)?;
    if sidx.timescale == 0 {
        return Err(invalid("timescale 0".into()));
    }
    let timescale = f64::from(sidx.timescale);
    let mut offset = index
        .range
        .offset
        .checked_add(box_len as u64)
        .and_then(|anchor| anchor.checked_add(sidx.first_offset))
        .ok_or_else(|| invalid("offsets overflow".into()))?;
    let mut time = sidx.earliest_presentation_time;
    budget.ensure_room(sidx.references.len() as u64)?;
    let mut out = Vec::with_capacity(sidx.references.len());
    for (i, reference) in sidx.references.iter().enumerate() {
        if reference.reference_type {
            return Err(invalid(
                "it indexes other indexes (hierarchical sidx), which is not supported".into(),
            ));
        }
        let range = ByteRange::new(offset, u64::from(reference.referenced_size))
            .ok_or_else(|| invalid(format!("reference {i} is empty or out of range")))?;
        let duration =
            limits::segment_seconds(f64::from(reference.subsegment_duration) / timescale)
                .map_err(|why| invalid(format!("reference {i}: {why}")))?;
        let segment = Segment {
            number: i as u64 + 1,
            start: index.time_offset + time as f64 / timescale,
            duration,
            size: Some(range.length),
            uri: index.uri.clone(),
            range: Some(range),
            discontinuity: false,
        };
        budget.take(&segment)?;
        out.push(segment);
        offset = range.end();
        time = time.saturating_add(u64::from(reference.subsegment_duration));
    }
    if out.is_empty() {
        return Err(invalid("it lists no segments".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use mp4_atom::{Encode, SegmentReference};

    use super::*;

    fn sidx(first_offset: u64, sizes: &[u32], hierarchical: bool) -> Vec<u8> {
        sidx_of(first_offset, sizes, hierarchical, 2000)
    }

    fn sidx_of(first_offset: u64, sizes: &[u32], hierarchical: bool, duration: u32) -> Vec<u8> {
        let sidx = Sidx {
            reference_id: 1,
            timescale: 1000,
            earliest_presentation_time: 500,
            first_offset,
            references: sizes
                .iter()
                .map(|&size| SegmentReference {
                    reference_type: hierarchical,
                    referenced_size: size,
                    subsegment_duration: duration,
                    starts_with_sap: true,
                    sap_type: 1,
                    sap_delta_time: 0,
                })
                .collect(),
        };
        let mut out = Vec::new();
        sidx.encode(&mut out).unwrap();
        out
    }

    fn index(offset: u64, length: u64) -> SegmentIndex {
        SegmentIndex {
            uri: "http://h/v.mp4".into(),
            range: ByteRange::new(offset, length).unwrap(),
            time_offset: 10.0,
        }
    }

    #[test]
    fn references_become_byte_ranges_after_the_anchor() {
        let bytes = sidx(4, &[100, 250], false);
        let segments = segments(
            &index(800, bytes.len() as u64),
            &bytes,
            &mut SegmentBudget::default(),
        )
        .unwrap();
        let anchor = 800 + bytes.len() as u64 + 4;
        let got: Vec<(u64, f64, f64, u64, u64)> = segments
            .iter()
            .map(|s| {
                let r = s.range.unwrap();
                (s.number, s.start, s.duration, r.offset, r.length)
            })
            .collect();
        assert_eq!(
            got,
            [
                (1, 10.5, 2.0, anchor, 100),
                (2, 12.5, 2.0, anchor + 100, 250)
            ]
        );
        assert!(segments.iter().all(|s| s.uri == "http://h/v.mp4"));
        assert_eq!(segments[1].size, Some(250));
    }

    #[test]
    fn what_is_not_a_flat_index_is_an_error() {
        let flat = sidx(0, &[100], false);
        let cases: [(&str, Vec<u8>); 7] = [
            ("hierarchical", sidx(0, &[100], true)),
            ("cut short", flat[..flat.len() - 4].to_vec()),
            ("empty", sidx(0, &[], false)),
            ("not sidx", b"\0\0\0\x08free".to_vec()),
            ("nothing", Vec::new()),
            ("a reference of 0 s", sidx_of(0, &[100], false, 0)),
            (
                "a reference of 50 days",
                sidx_of(0, &[100], false, u32::MAX),
            ),
        ];
        for (what, bytes) in cases {
            let got = segments(&index(0, 100), &bytes, &mut SegmentBudget::default());
            assert!(got.is_err(), "{what}");
        }
        // The presentation's budget is shared: an index that does not fit is refused.
        let three = sidx(0, &[100, 100, 100], false);
        let mut budget = SegmentBudget::new(2, 1 << 20);
        assert!(matches!(
            segments(&index(0, three.len() as u64), &three, &mut budget),
            Err(MediaError::Limit { .. })
        ));
    }
}
