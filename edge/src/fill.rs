//! Request coalescing. One upstream fetch ("fill") per key at a time; every request
//! for that key attaches to it and streams the body as chunks arrive (like Varnish's
//! streaming miss, unlike nginx's polling cache lock). Chunks are shared `Bytes`, so
//! each waiter costs a cursor, not a copy.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use http::HeaderMap;
use tokio::sync::watch;

use crate::body::store_copy;
use crate::cluster::Hop;
use crate::store::{Entry, Head};

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
    #[error("client fell too far behind the upstream")]
    Lagged,
}

/// What a fill tells its waiters once the upstream answered.
#[derive(Debug)]
pub enum HeadEvent {
    /// A response the cache will store: its body streams through [`Fill::body`].
    Stream {
        head: Arc<Head>,
        status: u16,
    },
    /// The stale entry was confirmed by a 304 and updated.
    Revalidated(Arc<Entry>),
    /// Not shareable (private, no-store, too large, error status…): the first waiter
    /// takes the response (`Some`, fetched over `hop`); the others fetch their own.
    Pass {
        status: u16,
        response: Option<reqwest::Response>,
        hop: Hop,
    },
    Failed(FillError),
}

#[derive(Debug, Default)]
struct State {
    head: Option<HeadEvent>,
    /// The body's chunks from index `base` on (earlier ones were dropped, see `push`).
    chunks: VecDeque<Bytes>,
    base: usize,
    retained: u64,
    len: u64,
    /// `Some(Ok)` once the body is complete, `Some(Err)` if it was cut short.
    end: Option<Result<(), FillError>>,
}

#[derive(Debug)]
pub struct Fill {
    state: Mutex<State>,
    changed: watch::Sender<()>,
    /// Request headers of the request that started the fill, to tell whether a
    /// waiter selects the same `Vary` variant.
    pub leader_headers: HeaderMap,
}

impl Fill {
    pub fn new(leader_headers: HeaderMap) -> Arc<Self> {
        Arc::new(Fill {
            state: Mutex::default(),
            changed: watch::Sender::new(()),
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

    /// Appends a chunk; returns the body length so far. A body longer than
    /// `max_retained` will not be stored, so from then on only its last `max_retained`
    /// bytes are kept for the waiters: memory stays bounded, and a waiter that falls
    /// further behind gets [`FillError::Lagged`].
    pub fn push(&self, chunk: Bytes, max_retained: u64) -> u64 {
        let mut s = self.lock();
        s.len += chunk.len() as u64;
        s.retained += chunk.len() as u64;
        s.chunks.push_back(chunk);
        while s.len > max_retained && s.retained > max_retained && s.chunks.len() > 1 {
            if let Some(old) = s.chunks.pop_front() {
                s.retained -= old.len() as u64;
                s.base += 1;
            }
        }
        let len = s.len;
        drop(s);
        self.changed.send_replace(());
        len
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

    /// The whole body copied into one buffer, for the store.
    pub fn collect_body(&self) -> Bytes {
        store_copy(self.lock().chunks.make_contiguous())
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
            HeadEvent::Stream { head, status } => HeadEvent::Stream {
                head: head.clone(),
                status: *status,
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

    /// The body bytes `start..end` (end exclusive, `u64::MAX` for all), streamed as
    /// they arrive. Ends with an error if the upstream body is cut short or stalls
    /// longer than `idle` between chunks, so a waiter never hangs.
    pub fn body(
        self: Arc<Self>,
        start: u64,
        end: u64,
        idle: Duration,
    ) -> impl Stream<Item = Result<Bytes, FillError>> + Send + 'static {
        let rx = self.changed.subscribe();
        let cursor = Cursor {
            fill: self,
            rx,
            index: 0,
            pos: 0,
            start,
            end,
            idle,
        };
        futures::stream::unfold(cursor, |mut c| async move {
            let item = c.next().await?;
            Some((item, c))
        })
    }
}

struct Cursor {
    fill: Arc<Fill>,
    rx: watch::Receiver<()>,
    index: usize,
    /// Byte offset of chunk `index` in the body.
    pos: u64,
    start: u64,
    end: u64,
    idle: Duration,
}

impl Cursor {
    async fn next(&mut self) -> Option<Result<Bytes, FillError>> {
        loop {
            if self.pos >= self.end {
                return None;
            }
            let next = {
                let s = self.fill.lock();
                match self.index.checked_sub(s.base) {
                    None => Err(Some(Err(FillError::Lagged))),
                    Some(i) => match s.chunks.get(i) {
                        Some(chunk) => Ok(chunk.clone()),
                        None => Err(s.end),
                    },
                }
            };
            match next {
                Ok(chunk) => {
                    let (from, len) = (self.pos, chunk.len() as u64);
                    self.index += 1;
                    self.pos += len;
                    let lo = self.start.saturating_sub(from).min(len);
                    let hi = self.end.saturating_sub(from).min(len);
                    if lo < hi {
                        // lo/hi are bounded by the chunk length, so they fit in usize.
                        return Some(Ok(chunk.slice(lo as usize..hi as usize)));
                    }
                }
                Err(Some(Ok(()))) => return None,
                Err(Some(Err(e))) => return Some(Err(e)),
                Err(None) => match tokio::time::timeout(self.idle, self.rx.changed()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return Some(Err(FillError::Aborted)),
                    Err(_) => return Some(Err(FillError::Timeout)),
                },
            }
        }
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

/// Marks the fill aborted if the task running it ends early (panic, timeout,
/// cancellation), so that no waiter is left waiting.
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

    async fn collect(fill: &Arc<Fill>, start: u64, end: u64) -> Result<Vec<u8>, FillError> {
        let mut out = Vec::new();
        let mut s = std::pin::pin!(fill.clone().body(start, end, Duration::from_secs(5)));
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn waiters_stream_slices_while_filling() {
        let fill = Fill::new(HeaderMap::new());
        let mut full = std::pin::pin!(fill.clone().body(0, u64::MAX, Duration::from_secs(5)));
        let part = collect(&fill, 3, 7);
        let mut streamed = Vec::new();
        // Each chunk reaches the waiter as soon as it is pushed, before the next one.
        for chunk in [&b"abcd"[..], b"efgh", b"ij"] {
            fill.push(Bytes::from_static(chunk), u64::MAX);
            streamed.extend_from_slice(&full.next().await.unwrap().unwrap());
            assert_eq!(streamed.last(), chunk.last());
        }
        fill.finish(Ok(()));
        assert!(full.next().await.is_none());
        assert_eq!(streamed, b"abcdefghij");
        assert_eq!(part.await.unwrap(), b"defg");
        assert_eq!(fill.collect_body(), &b"abcdefghij"[..]);
    }

    #[tokio::test]
    async fn truncation_and_abort_reach_waiters() {
        let fill = Fill::new(HeaderMap::new());
        fill.push(Bytes::from_static(b"ab"), u64::MAX);
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
    async fn oversized_bodies_keep_only_a_bounded_tail() {
        let fill = Fill::new(HeaderMap::new());
        // A waiter that keeps up takes each chunk before the next is pushed: no timing.
        let mut live = std::pin::pin!(fill.clone().body(0, u64::MAX, Duration::from_secs(5)));
        let mut received = 0;
        for _ in 0..10 {
            fill.push(Bytes::from_static(b"0123456789"), 25);
            received += live.next().await.unwrap().unwrap().len();
            assert!(fill.lock().retained <= 30);
        }
        fill.finish(Ok(()));
        assert!(live.next().await.is_none());
        assert_eq!(received, 100, "a waiter keeping up gets it all");
        assert_eq!(collect(&fill, 0, u64::MAX).await, Err(FillError::Lagged));
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
