//! The init segment of a fragmented MP4 rendition: the tracks media segments may use, with
//! their timescales and the sample defaults (`trex`) fragments may leave out.

use super::InvalidMedia;
use super::bmff::{Fields, boxes};

/// A track an init segment declares, with what fragments may leave out (`trex`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Track {
    pub id: u32,
    /// `mdhd` timescale, ticks per second.
    pub timescale: u32,
    pub default_duration: u32,
    pub default_size: u32,
}

/// What media segments are read with: the tracks of an init segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Init {
    pub tracks: Vec<Track>,
}

impl Init {
    /// Reads the tracks of an init segment (`ftyp`, `moov` with a `trak` per track and
    /// `mvex`/`trex` defaults).
    pub fn read(bytes: &[u8]) -> Result<Self, InvalidMedia> {
        let mut moov = None;
        for b in boxes(bytes) {
            let b = b?;
            if &b.kind == b"moov" {
                moov = Some(b.body);
            }
        }
        let moov =
            moov.ok_or_else(|| InvalidMedia::Structure("no moov: not an init segment".into()))?;
        let mut tracks = Vec::new();
        let mut defaults = Vec::new();
        for b in boxes(moov) {
            let b = b?;
            match &b.kind {
                b"trak" => tracks.push(read_trak(b.body)?),
                b"mvex" => {
                    for t in boxes(b.body) {
                        let t = t?;
                        if &t.kind == b"trex" {
                            let mut f = Fields::new(t.body, "trex");
                            f.version_flags()?;
                            let id = f.u32()?;
                            f.u32()?;
                            defaults.push((id, f.u32()?, f.u32()?));
                        }
                    }
                }
                _ => {}
            }
        }
        if tracks.is_empty() {
            return Err(InvalidMedia::Structure("the moov has no track".into()));
        }
        for t in &mut tracks {
            if let Some(&(_, duration, size)) = defaults.iter().find(|d| d.0 == t.id) {
                (t.default_duration, t.default_size) = (duration, size);
            }
        }
        Ok(Self { tracks })
    }
}

/// A `trak`'s ID (`tkhd`) and timescale (`mdia`/`mdhd`).
fn read_trak(trak: &[u8]) -> Result<Track, InvalidMedia> {
    let (mut id, mut timescale) = (None, None);
    for b in boxes(trak) {
        let b = b?;
        match &b.kind {
            b"tkhd" => {
                let mut f = Fields::new(b.body, "tkhd");
                let (version, _) = f.version_flags()?;
                f.take(if version == 1 { 16 } else { 8 })?;
                id = Some(f.u32()?);
            }
            b"mdia" => {
                for m in boxes(b.body) {
                    let m = m?;
                    if &m.kind == b"mdhd" {
                        let mut f = Fields::new(m.body, "mdhd");
                        let (version, _) = f.version_flags()?;
                        f.take(if version == 1 { 16 } else { 8 })?;
                        timescale = Some(f.u32()?);
                    }
                }
            }
            _ => {}
        }
    }
    match (id, timescale) {
        (Some(id), Some(timescale)) if timescale > 0 => Ok(Track {
            id,
            timescale,
            default_duration: 0,
            default_size: 0,
        }),
        _ => Err(InvalidMedia::Structure(
            "a trak without tkhd track ID or mdhd timescale".into(),
        )),
    }
}
