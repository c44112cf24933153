//! Request coalescing. One upstream fetch ("fill") per key at a time; every request
//! for that key attaches to it and streams the body as it arrives (like Varnish's
//! streaming miss, unlike nginx's polling cache lock). The body is shared `Bytes`, so
//! each reader costs a cursor, not a copy.
//!
//! A fill runs in one of two modes, and memory stays bounded in both:
//! - **storing**: the body will be stored, so the fill keeps all of it, frozen into
//!   exact-size segments ([`crate::body::segment`]) that become the stored body as
//!   they are. The bytes are reserved in the node's [`FillBudget`] first (the whole
//!   `Content-Length` up front, or as a body without one grows): at most the budget is
//!   held by all storing fills together, and slow readers never hold the upstream back.
//! - **streaming**: the body will not be stored (no room in the budget, or it outgrew
//!   `--max-object-size`), so the fill keeps only what its slowest reader has not
//!   taken yet, and stops reading from the upstream while that is more than
//!   [`STREAM_WINDOW`] (back-pressure). Once every reader has gone, it stops.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use http::HeaderMap;
use tokio::sync::watch;

use crate::body::{Payload, SEGMENT, segment};
use crate::cluster::Hop;
use crate::store::{Entry, Head};
use crate::upstream::Answer;

/// How far a streaming fill may read ahead of its slowest reader.
pub const STREAM_WINDOW: u64 = 64 * 1024;

/// Why a fill produced no usable response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FillError {
    #[error("upstream timed out")]
    Timeout,
    #[error("upstream unreachable")]
    Connect,
    #[error("upstream request failed")]
    Upstream,
    #[error("upstream response framing is invalid")]
    Framing,
    #[error("upstream body cut short")]
    Truncated,
    #[error("cache fill aborted")]
    Aborted,
    #[error("too many upstream requests in flight")]
    Busy,
}

/// The memory storing fills may hold together (`--fill-memory`).
#[derive(Debug)]
pub struct FillBudget {
    limit: u64,
    used: AtomicU64,
}

impl FillBudget {
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(FillBudget {
            limit,
            used: AtomicU64::new(0),
        })
    }

    /// Bytes reserved now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Reserves `bytes`, if they fit.
    pub fn reserve(self: &Arc<Self>, bytes: u64) -> Option<Reservation> {
        let mut r = Reservation {
            budget: self.clone(),
            bytes: 0,
        };
        r.grow_to(bytes).then_some(r)
    }
}

/// Bytes held in a [`FillBudget`], given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<FillBudget>,
    bytes: u64,
}

impl Reservation {
    /// Grows the reservation to `total` bytes; false (and unchanged) without room.
    pub fn grow_to(&mut self, total: u64) -> bool {
        let more = total.saturating_sub(self.bytes);
        if more == 0 {
            return true;
        }
        let limit = self.budget.limit;
        let grown = self
            .budget
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(more).filter(|&u| u <= limit)
            })
            .is_ok();
        if grown {
            self.bytes = total;
        }
        grown
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// What a fill tells its waiters once the upstream answered.
#[derive(Debug)]
pub enum HeadEvent {
    /// A response the cache shares: its body streams through [`Fill::attach`].
    /// `stored`: the whole body is reserved in the budget, so it will be stored
    /// unless the upstream cuts it short (only then may `Cache-Status` say so).
    Stream {
        head: Arc<Head>,
        status: u16,
        stored: bool,
    },
    /// The stale entry was confirmed by a 304 and updated.
    Revalidated(Arc<Entry>),
    /// Not shareable (private, no-store, too large, error status…): the first waiter
    /// takes the response (`Some`, fetched over `hop`); the others fetch their own.
    Pass {
        status: u16,
        response: Option<Answer>,
        hop: Hop,
    },
    Failed(FillError),
}

#[derive(Debug, Default)]
struct State {
    head: Option<HeadEvent>,
    /// The body from offset `starts[0]` on: frozen segments, then raw chunks.
    pieces: VecDeque<Bytes>,
    /// The body offset of each piece.
    starts: VecDeque<u64>,
    /// How many pieces at the end are raw chunks not yet frozen (storing only).
    raw: usize,
    raw_bytes: usize,
    /// Bytes received so far.
    len: u64,
    storing: bool,
    /// Position of each attached reader (bytes it has taken), by reader id.
    readers: HashMap<u64, u64>,
    next_reader: u64,
    attached: bool,
    /// A streaming fill whose readers all left: it stopped, nobody may attach.
    abandoned: bool,
    /// `Some(Ok)` once the body is complete, `Some(Err)` if it was cut short.
    end: Option<Result<(), FillError>>,
}

impl State {
    /// Offset of the first byte still held.
    fn base(&self) -> u64 {
        self.starts.front().copied().unwrap_or(self.len)
    }

    /// The position of the slowest reader (the start of what is held when none is
    /// attached: nothing may be dropped before the first reader comes).
    fn slowest(&self) -> u64 {
        self.readers.values().copied().min().unwrap_or(self.base())
    }

    /// Streaming: drops the pieces every reader has taken.
    fn drop_taken(&mut self) {
        if self.storing || self.readers.is_empty() {
            return;
        }
        let slowest = self.slowest();
        while let (Some(&start), Some(piece)) = (self.starts.front(), self.pieces.front()) {
            if start + piece.len() as u64 > slowest {
                break;
            }
            self.starts.pop_front();
            self.pieces.pop_front();
        }
    }
}

#[derive(Debug)]
pub struct Fill {
    state: Mutex<State>,
    /// Readers wait on it: a head, more body, the end.
    changed: watch::Sender<()>,
    /// The filler waits on it: a reader took bytes or left.
    advanced: watch::Sender<()>,
    /// Request headers of the request that started the fill, to tell whether a
    /// waiter selects the same `Vary` variant.
    pub leader_headers: HeaderMap,
}

impl Fill {
    pub fn new(leader_headers: HeaderMap) -> Arc<Self> {
        Arc::new(Fill {
            state: Mutex::default(),
            changed: watch::Sender::new(()),
            advanced: watch::Sender::new(()),
            leader_headers,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (only pushes), so go on.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    // ----- filler side -----

    pub fn publish(&self, head: HeadEvent) {
        let mut s = self.lock();
        if s.head.is_none() {
            s.head = Some(head);
        }
        drop(s);
        self.changed.send_replace(());
    }

    /// Sets the mode before the body starts: storing or streaming.
    pub fn set_storing(&self, storing: bool) {
        self.lock().storing = storing;
    }

    /// Stops storing (the budget ran out, or the body outgrew the maximum): from now
    /// on only what the readers have not taken is kept.
    pub fn stop_storing(&self) {
        let mut s = self.lock();
        s.storing = false;
        s.raw = 0;
        s.raw_bytes = 0;
        s.drop_taken();
    }

    /// Appends a chunk of the body. Storing, every [`SEGMENT`] bytes are frozen into
    /// one exact-size segment (copied outside the lock: only this filler appends).
    pub fn push(&self, chunk: Bytes) {
        let mut s = self.lock();
        let start = s.len;
        s.len += chunk.len() as u64;
        let freeze = s.storing && {
            s.raw += 1;
            s.raw_bytes += chunk.len();
            s.raw_bytes >= SEGMENT
        };
        s.starts.push_back(start);
        s.pieces.push_back(chunk);
        s.drop_taken();
        drop(s);
        if freeze {
            self.freeze_raw();
        }
        self.changed.send_replace(());
    }

    /// Replaces the raw chunks at the end by one segment holding their bytes.
    fn freeze_raw(&self) {
        let raw: Vec<Bytes> = {
            let s = self.lock();
            if !s.storing || s.raw == 0 {
                return;
            }
            s.pieces
                .iter()
                .skip(s.pieces.len() - s.raw)
                .cloned()
                .collect()
        };
        let seg = segment(&raw);
        let mut s = self.lock();
        // Still storing, so nothing was dropped or appended meanwhile.
        if !s.storing || s.raw != raw.len() {
            return;
        }
        let keep = s.pieces.len() - s.raw;
        let first = s.starts.get(keep).copied().unwrap_or(s.len);
        s.pieces.truncate(keep);
        s.starts.truncate(keep);
        s.pieces.push_back(seg);
        s.starts.push_back(first);
        s.raw = 0;
        s.raw_bytes = 0;
    }

    /// The complete body of a storing fill, as the segments readers share with the
    /// store (`None` if the fill is not storing).
    pub fn stored_body(&self) -> Option<Payload> {
        self.freeze_raw();
        let s = self.lock();
        (s.storing && s.base() == 0).then(|| Payload::new(s.pieces.iter().cloned().collect()))
    }

    /// Streaming: waits until the slowest reader is within `window` bytes of what was
    /// received. Fails with `Aborted` once every reader has left (nobody needs the rest)
    /// and with `Timeout` if no reader takes anything for `idle`.
    pub async fn wait_for_room(&self, window: u64, idle: Duration) -> Result<(), FillError> {
        let mut advanced = self.advanced.subscribe();
        loop {
            {
                let mut s = self.lock();
                if s.storing {
                    return Ok(());
                }
                if s.attached && s.readers.is_empty() {
                    s.abandoned = true;
                    return Err(FillError::Aborted);
                }
                if s.len.saturating_sub(s.slowest()) <= window {
                    return Ok(());
                }
            }
            match tokio::time::timeout(idle, advanced.changed()).await {
                Ok(Ok(())) => {}
                // The sender lives in `self`.
                Ok(Err(_)) => return Err(FillError::Aborted),
                Err(_) => return Err(FillError::Timeout),
            }
        }
    }

    /// Ends the fill; the first call wins. Publishes `Failed` if no head was published.
    pub fn finish(&self, result: Result<(), FillError>) {
        let mut s = self.lock();
        if s.end.is_none() {
            if let Err(e) = result {
                s.head.get_or_insert(HeadEvent::Failed(e));
            }
            s.end = Some(result);
        }
        drop(s);
        self.changed.send_replace(());
    }

    // ----- waiter side -----

    /// Waits up to `timeout` for the upstream's answer.
    pub async fn wait_head(&self, timeout: Duration) -> HeadEvent {
        let mut rx = self.changed.subscribe();
        let wait = async {
            loop {
                if let Some(ev) = self.take_head() {
                    return ev;
                }
                // The sender lives in `self`, so this only fails if it is being dropped.
                if rx.changed().await.is_err() {
                    return HeadEvent::Failed(FillError::Aborted);
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .unwrap_or(HeadEvent::Failed(FillError::Timeout))
    }

    fn take_head(&self) -> Option<HeadEvent> {
        let mut s = self.lock();
        Some(match s.head.as_mut()? {
            HeadEvent::Stream {
                head,
                status,
                stored,
            } => HeadEvent::Stream {
                head: head.clone(),
                status: *status,
                stored: *stored,
            },
            HeadEvent::Revalidated(e) => HeadEvent::Revalidated(e.clone()),
            HeadEvent::Pass {
                status,
                response,
                hop,
            } => HeadEvent::Pass {
                status: *status,
                response: response.take(),
                hop: *hop,
            },
            HeadEvent::Failed(e) => HeadEvent::Failed(*e),
        })
    }

    /// Attaches a reader at the start of the body; `None` when the start is no longer
    /// held (a streaming fill already let it go) or the fill was abandoned: the
    /// request must then fetch its own.
    pub fn attach(self: &Arc<Self>) -> Option<Reader> {
        let mut s = self.lock();
        if s.abandoned || s.base() > 0 {
            return None;
        }
        let id = s.next_reader;
        s.next_reader += 1;
        s.readers.insert(id, 0);
        s.attached = true;
        drop(s);
        Some(Reader {
            fill: self.clone(),
            id,
            pos: 0,
        })
    }
}

/// One reader of a fill's body, attached with [`Fill::attach`]. Dropping it (the
/// client went away) lets a streaming fill drop what only it still needed.
#[derive(Debug)]
pub struct Reader {
    fill: Arc<Fill>,
    id: u64,
    /// Bytes taken.
    pos: u64,
}

impl Reader {
    /// The body bytes `start..end` (end exclusive, `u64::MAX` for all), streamed as
    /// they arrive. Ends with an error if the upstream body is cut short or stalls
    /// longer than `idle` between chunks, so a reader never hangs.
    pub fn stream(
        mut self,
        start: u64,
        end: u64,
        idle: Duration,
    ) -> impl Stream<Item = Result<Bytes, FillError>> + Send + 'static {
        // Skipping to `start` at once lets a streaming fill go on without this reader
        // holding what it will never read.
        self.advance_to(start);
        let rx = self.fill.changed.subscribe();
        futures::stream::unfold((self, rx), move |(mut r, mut rx)| async move {
            let item = r.next(end, idle, &mut rx).await?;
            Some((item, (r, rx)))
        })
    }

    fn advance_to(&mut self, pos: u64) {
        if pos <= self.pos {
            return;
        }
        self.pos = pos;
        let mut s = self.fill.lock();
        s.readers.insert(self.id, pos);
        let streaming = !s.storing;
        drop(s);
        if streaming {
            self.fill.advanced.send_replace(());
        }
    }

    async fn next(
        &mut self,
        end: u64,
        idle: Duration,
        rx: &mut watch::Receiver<()>,
    ) -> Option<Result<Bytes, FillError>> {
        loop {
            if self.pos >= end {
                return None;
            }
            let next = {
                let s = self.fill.lock();
                if self.pos < s.base() {
                    // Cannot happen: nothing a reader still needs is dropped.
                    Err(Some(Err(FillError::Aborted)))
                } else if self.pos < s.len {
                    let i = s.starts.partition_point(|&st| st <= self.pos) - 1;
                    let (start, piece) = (s.starts[i], &s.pieces[i]);
                    let lo = self.pos - start;
                    let hi = (end - start).min(piece.len() as u64);
                    // lo < hi <= the piece's length, a usize.
                    Ok(piece.slice(lo as usize..hi as usize))
                } else {
                    Err(s.end)
                }
            };
            match next {
                Ok(slice) => {
                    let to = self.pos + slice.len() as u64;
                    self.advance_to(to);
                    return Some(Ok(slice));
                }
                Err(Some(Ok(()))) => return None,
                Err(Some(Err(e))) => return Some(Err(e)),
                Err(None) => match tokio::time::timeout(idle, rx.changed()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return Some(Err(FillError::Aborted)),
                    Err(_) => return Some(Err(FillError::Timeout)),
                },
            }
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let mut s = self.fill.lock();
        s.readers.remove(&self.id);
        drop(s);
        self.fill.advanced.send_replace(());
    }
}

/// The fills in flight, by key.
#[derive(Debug, Default)]
pub struct Inflight {
    map: Mutex<HashMap<String, Arc<Fill>>>,
}

impl Inflight {
    /// Returns the fill for `key` and whether the caller created it (and must run it).
    pub fn join_or_create(
        &self,
        key: &str,
        leader_headers: impl FnOnce() -> HeaderMap,
    ) -> (Arc<Fill>, bool) {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(f) = map.get(key) {
            return (f.clone(), false);
        }
        let fill = Fill::new(leader_headers());
        map.insert(key.to_owned(), fill.clone());
        (fill, true)
    }

    /// Removes `fill` if it is still the one registered under `key`.
    pub fn remove(&self, key: &str, fill: &Arc<Fill>) {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if map.get(key).is_some_and(|f| Arc::ptr_eq(f, fill)) {
            map.remove(key);
        }
    }
}

/// Marks the fill aborted if the task running it ends early (panic, cancellation),
/// so that no waiter is left waiting.
#[derive(Debug)]
pub struct FillGuard(pub Arc<Fill>);

impl Drop for FillGuard {
    fn drop(&mut self) {
        self.0.finish(Err(FillError::Aborted));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use futures::StreamExt;

    const IDLE: Duration = Duration::from_secs(5);

    async fn collect(fill: &Arc<Fill>, start: u64, end: u64) -> Result<Vec<u8>, FillError> {
        let mut out = Vec::new();
        let reader = fill.attach().expect("attachable");
        let mut s = std::pin::pin!(reader.stream(start, end, IDLE));
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn readers_stream_slices_while_storing() {
        let fill = Fill::new(HeaderMap::new());
        fill.set_storing(true);
        let mut full = std::pin::pin!(fill.attach().unwrap().stream(0, u64::MAX, IDLE));
        let part = collect(&fill, 3, 7);
        let mut streamed = Vec::new();
        // Each chunk reaches the reader as soon as it is pushed, before the next one.
        for chunk in [&b"abcd"[..], b"efgh", b"ij"] {
            fill.push(Bytes::from_static(chunk));
            streamed.extend_from_slice(&full.next().await.unwrap().unwrap());
            assert_eq!(streamed.last(), chunk.last());
        }
        fill.finish(Ok(()));
        assert!(full.next().await.is_none());
        assert_eq!(streamed, b"abcdefghij");
        assert_eq!(part.await.unwrap(), b"defg");
        let body = fill.stored_body().unwrap();
        assert_eq!(
            body.slices(0, u64::MAX),
            [Bytes::from_static(b"abcdefghij")]
        );
    }

    #[tokio::test]
    async fn storing_freezes_segments_that_readers_share_with_the_store() {
        let fill = Fill::new(HeaderMap::new());
        fill.set_storing(true);
        let chunk = Bytes::from(vec![7u8; 64 * 1024]);
        let n = 2 * SEGMENT / chunk.len() + 3;
        for _ in 0..n {
            fill.push(chunk.clone());
        }
        // Two frozen segments and three raw chunks.
        assert_eq!(fill.lock().pieces.len(), 5);
        fill.finish(Ok(()));
        let body = fill.stored_body().unwrap();
        assert_eq!(body.len(), (n * chunk.len()) as u64);
        assert_eq!(fill.lock().pieces.len(), 3, "the tail is frozen too");
        assert_eq!(
            collect(&fill, 0, u64::MAX).await.unwrap().len(),
            n * chunk.len()
        );
    }

    #[tokio::test]
    async fn truncation_and_abort_reach_readers() {
        let fill = Fill::new(HeaderMap::new());
        fill.set_storing(true);
        fill.push(Bytes::from_static(b"ab"));
        let f2 = fill.clone();
        let waiter = tokio::spawn(async move { collect(&f2, 0, u64::MAX).await });
        drop(FillGuard(fill.clone()));
        assert_eq!(waiter.await.unwrap(), Err(FillError::Aborted));
        assert!(matches!(
            fill.wait_head(Duration::from_secs(1)).await,
            HeadEvent::Failed(FillError::Aborted)
        ));
    }

    #[tokio::test]
    async fn streaming_keeps_only_what_the_slowest_reader_has_not_taken() {
        let fill = Fill::new(HeaderMap::new());
        fill.set_storing(false);
        let mut fast = Box::pin(fill.attach().unwrap().stream(0, u64::MAX, IDLE));
        let slow = fill.attach().unwrap();
        let chunk = Bytes::from(vec![1u8; 16 * 1024]);
        // The window fills up: 4 chunks of 16 KiB, then back-pressure.
        for _ in 0..4 {
            fill.wait_for_room(STREAM_WINDOW, IDLE).await.unwrap();
            fill.push(chunk.clone());
            fast.next().await.unwrap().unwrap();
        }
        fill.push(chunk.clone());
        let blocked = fill.wait_for_room(STREAM_WINDOW, Duration::from_millis(50));
        assert_eq!(
            blocked.await,
            Err(FillError::Timeout),
            "the slow reader holds it"
        );
        // The slow reader leaves: everything the fast one took is dropped.
        drop(slow);
        fill.wait_for_room(STREAM_WINDOW, IDLE).await.unwrap();
        fast.next().await.unwrap().unwrap();
        fill.push(chunk.clone());
        assert_eq!(
            fill.lock().pieces.len(),
            1,
            "only the untaken chunk is held"
        );
        // A late reader cannot start at 0 any more: it fetches its own.
        assert!(fill.attach().is_none());
        // Once every reader has gone, the fill stops.
        drop(fast);
        assert_eq!(
            fill.wait_for_room(STREAM_WINDOW, IDLE).await,
            Err(FillError::Aborted)
        );
        assert!(fill.attach().is_none());
    }

    #[tokio::test]
    async fn a_range_reader_does_not_hold_a_streaming_fill_back() {
        let fill = Fill::new(HeaderMap::new());
        fill.set_storing(false);
        let reader = fill.attach().unwrap();
        let chunk = Bytes::from(vec![2u8; 16 * 1024]);
        let tail = tokio::spawn({
            let fill = fill.clone();
            async move {
                let mut s = std::pin::pin!(reader.stream(200 * 1024, u64::MAX, IDLE));
                let mut n = 0;
                while let Some(c) = s.next().await {
                    n += c.unwrap().len();
                }
                drop(fill);
                n
            }
        });
        for _ in 0..16 {
            fill.wait_for_room(STREAM_WINDOW, IDLE).await.unwrap();
            fill.push(chunk.clone());
        }
        fill.finish(Ok(()));
        assert_eq!(tail.await.unwrap(), 56 * 1024);
    }

    #[test]
    fn the_budget_bounds_reservations() {
        let budget = FillBudget::new(100);
        let a = budget.reserve(60).unwrap();
        assert!(budget.reserve(50).is_none());
        let mut b = budget.reserve(0).unwrap();
        assert!(b.grow_to(40));
        assert!(!b.grow_to(41));
        assert_eq!((a.bytes(), b.bytes(), budget.used()), (60, 40, 100));
        drop(a);
        assert!(b.grow_to(90));
        drop(b);
        assert_eq!(budget.used(), 0);
    }

    #[tokio::test]
    async fn head_wait_is_bounded() {
        let fill = Fill::new(HeaderMap::new());
        let ev = fill.wait_head(Duration::from_millis(20)).await;
        assert!(matches!(ev, HeadEvent::Failed(FillError::Timeout)));
    }

    #[test]
    fn inflight_registry() {
        let reg = Inflight::default();
        let (a, lead_a) = reg.join_or_create("k", HeaderMap::new);
        let (b, lead_b) = reg.join_or_create("k", HeaderMap::new);
        assert!(lead_a && !lead_b && Arc::ptr_eq(&a, &b));
        reg.remove("k", &a);
        let (_, lead_c) = reg.join_or_create("k", HeaderMap::new);
        assert!(lead_c);
    }
}
