//! Live notifications from a running session: the load tester's live figures, `play`'s
//! progress line.

use super::clock::PlayState;
use super::counters::ErrorKind;
use super::summary::SegmentLog;

/// What a session tells as it plays (every method a no-op by default). Requests and
/// errors come from its [`super::tally::Tally`], so they match its counters.
pub trait Observer: Send + Sync + std::fmt::Debug {
    /// A request is being sent.
    fn request(&self) {}
    /// A request failed.
    fn error(&self, _kind: ErrorKind) {}
    /// A media segment arrived.
    fn segment(&self, _log: &SegmentLog) {}
    /// Playback changed state.
    fn state(&self, _from: PlayState, _to: PlayState) {}
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl Observer for NoObserver {}
