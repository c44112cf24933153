//! Where a response body goes as it arrives ([`Body`]): nowhere ([`Discard`]), kept up to
//! a limit ([`Kept`], manifests and indexes), read as a rendition's init segment
//! ([`InitBody`]) or checked piece by piece as one of its media segments
//! ([`SegmentBody`], `media::validate`), so that a segment is known to be media without
//! being kept.

use media::validate::{InvalidMedia, RenditionCheck, SegmentCheck};

/// Why a body was refused.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("not media: {0}")]
    Media(#[from] InvalidMedia),
    #[error("larger than the {0} bytes a player keeps of such a response")]
    TooLarge(usize),
}

/// A response body's destination. Each attempt at a request (a retry, another pathway)
/// starts over with [`Body::start`].
pub trait Body: Send {
    /// A response is about to stream in.
    fn start(&mut self) -> Result<(), BodyError>;
    /// Its next bytes; an error ends the transfer.
    fn piece(&mut self, bytes: &[u8]) -> Result<(), BodyError>;
    /// It arrived whole.
    fn end(&mut self) -> Result<(), BodyError>;
}

/// A body nobody looks at.
#[derive(Debug, Clone, Copy, Default)]
pub struct Discard;

impl Body for Discard {
    fn start(&mut self) -> Result<(), BodyError> {
        Ok(())
    }

    fn piece(&mut self, _bytes: &[u8]) -> Result<(), BodyError> {
        Ok(())
    }

    fn end(&mut self) -> Result<(), BodyError> {
        Ok(())
    }
}

/// The longest manifest a session reads: the longest `media` parses.
pub const MANIFEST_LIMIT: usize = media::limits::MAX_MANIFEST_BYTES;
/// The longest init segment or segment index a session reads.
pub const INDEX_LIMIT: usize = 4 << 20;

/// A body kept whole, up to `limit` bytes.
#[derive(Debug, Clone, Default)]
pub struct Kept {
    pub bytes: Vec<u8>,
    limit: usize,
}

impl Kept {
    pub fn new(limit: usize) -> Self {
        Self {
            bytes: Vec::new(),
            limit,
        }
    }
}

impl Body for Kept {
    fn start(&mut self) -> Result<(), BodyError> {
        self.bytes.clear();
        Ok(())
    }

    fn piece(&mut self, bytes: &[u8]) -> Result<(), BodyError> {
        if self.bytes.len() + bytes.len() > self.limit {
            return Err(BodyError::TooLarge(self.limit));
        }
        self.bytes.extend_from_slice(bytes);
        Ok(())
    }

    fn end(&mut self) -> Result<(), BodyError> {
        Ok(())
    }
}

/// A rendition's init segment: kept, then read by its [`RenditionCheck`].
#[derive(Debug)]
pub struct InitBody<'a> {
    check: &'a mut RenditionCheck,
    kept: Kept,
}

impl<'a> InitBody<'a> {
    pub fn new(check: &'a mut RenditionCheck) -> Self {
        Self {
            check,
            kept: Kept::new(INDEX_LIMIT),
        }
    }
}

impl Body for InitBody<'_> {
    fn start(&mut self) -> Result<(), BodyError> {
        self.kept.start()
    }

    fn piece(&mut self, bytes: &[u8]) -> Result<(), BodyError> {
        self.kept.piece(bytes)
    }

    fn end(&mut self) -> Result<(), BodyError> {
        Ok(self.check.init(&self.kept.bytes)?)
    }
}

/// Media segment `number` of a rendition, checked as it streams in and, once whole,
/// accepted by the rendition's [`RenditionCheck`] (its timestamps continue the previous
/// segment's).
#[derive(Debug)]
pub struct SegmentBody<'a> {
    check: &'a mut RenditionCheck,
    number: u64,
    discontinuity: bool,
    scan: Option<SegmentCheck>,
}

impl<'a> SegmentBody<'a> {
    pub fn new(check: &'a mut RenditionCheck, number: u64, discontinuity: bool) -> Self {
        Self {
            check,
            number,
            discontinuity,
            scan: None,
        }
    }
}

impl Body for SegmentBody<'_> {
    fn start(&mut self) -> Result<(), BodyError> {
        self.scan = Some(self.check.segment()?);
        Ok(())
    }

    fn piece(&mut self, bytes: &[u8]) -> Result<(), BodyError> {
        match &mut self.scan {
            Some(scan) => Ok(scan.feed(bytes)?),
            None => Ok(()),
        }
    }

    fn end(&mut self) -> Result<(), BodyError> {
        let Some(scan) = self.scan.take() else {
            return Ok(());
        };
        let timing = scan.finish()?;
        Ok(self.check.accept(self.number, self.discontinuity, timing)?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use media::Container;

    use super::*;

    fn run(body: &mut dyn Body, bytes: &[u8]) -> Result<(), BodyError> {
        body.start()?;
        for piece in bytes.chunks(5) {
            body.piece(piece)?;
        }
        body.end()
    }

    #[test]
    fn kept_bodies_start_over_and_stop_at_their_limit() {
        let mut kept = Kept::new(8);
        run(&mut kept, b"12345678").unwrap();
        run(&mut kept, b"abc").unwrap();
        assert_eq!(kept.bytes, b"abc", "a second attempt starts over");
        assert!(matches!(
            run(&mut kept, b"123456789"),
            Err(BodyError::TooLarge(8))
        ));
    }

    #[test]
    fn segments_are_checked_and_inits_read() {
        let mut check = RenditionCheck::new(Container::Fmp4);
        // No init yet: a segment cannot be read.
        assert!(run(&mut SegmentBody::new(&mut check, 1, false), b"").is_err());
        assert!(run(&mut InitBody::new(&mut check), b"<html>oops</html>").is_err());
        assert!(!check.has_init());
        let mut ts = RenditionCheck::new(Container::MpegTs);
        let err = run(&mut SegmentBody::new(&mut ts, 1, false), &[0x47; 400]);
        assert!(matches!(err, Err(BodyError::Media(_))), "{err:?}");
    }
}
