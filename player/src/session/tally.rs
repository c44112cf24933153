//! The one place a running session counts: every request, body byte, `Cache-Status`,
//! error, abandonment, failover and steering fetch is recorded here, by the HTTP side
//! ([`super::fetch`]), the session loop and the steering client alike, and the session's
//! [`Observer`] hears of requests and errors from here too, so the report and the live
//! figures cannot disagree.

use std::sync::{Mutex, MutexGuard, PoisonError};

use super::counters::{Counters, ErrorKind};
use super::observer::Observer;

/// A session's counters and the observer told about them. Shared by reference between
/// the downloads and the steering client, which run side by side in the session's task
/// (the lock is never held across an await).
#[derive(Debug)]
pub struct Tally<'a> {
    counters: Mutex<Counters>,
    observer: &'a dyn Observer,
}

impl<'a> Tally<'a> {
    pub fn new(observer: &'a dyn Observer) -> Self {
        Self {
            counters: Mutex::default(),
            observer,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Counters> {
        // Nothing panics under the lock; if something did, the counts are still usable.
        self.counters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A request is being sent.
    pub fn request(&self) {
        self.lock().requests += 1;
        self.observer.request();
    }

    /// A response's body bytes (whatever became of the response), and the pathway it went
    /// over, if any.
    pub fn received(&self, bytes: u64, pathway: Option<&str>) {
        let mut c = self.lock();
        c.bytes += bytes;
        if let Some(id) = pathway {
            let p = c.pathways.entry(id.to_owned()).or_default();
            p.requests += 1;
            p.bytes += bytes;
        }
    }

    /// A response carried `Cache-Status`; `hit` when a cache answered from storage.
    pub fn cache_status(&self, hit: bool) {
        let mut c = self.lock();
        c.cache_lookups += 1;
        c.cache_hits += u64::from(hit);
    }

    /// An attempt failed.
    pub fn failed(&self, kind: ErrorKind) {
        *self.lock().errors.entry(kind).or_default() += 1;
        self.observer.error(kind);
    }

    /// A request moved to the next pathway after failing on one.
    pub fn failover(&self) {
        self.lock().failovers += 1;
    }

    /// A download was abandoned for a lower rendition.
    pub fn abandoned(&self) {
        self.lock().abandoned += 1;
    }

    /// A steering manifest was requested, and whether that failed.
    pub fn steering(&self, failed: bool) {
        let mut c = self.lock();
        c.steering_fetches += 1;
        c.steering_errors += u64::from(failed);
    }

    /// The counts so far.
    pub fn counters(&self) -> Counters {
        self.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    #[derive(Debug, Default)]
    struct Heard {
        requests: AtomicU64,
        errors: AtomicU64,
    }

    impl Observer for Heard {
        fn request(&self) {
            self.requests.fetch_add(1, Ordering::Relaxed);
        }

        fn error(&self, _kind: ErrorKind) {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn counts_and_tells_the_observer_the_same() {
        let heard = Heard::default();
        let tally = Tally::new(&heard);
        tally.request();
        tally.received(100, Some("a"));
        tally.request();
        tally.received(10, None);
        tally.failed(ErrorKind::Body);
        tally.failover();
        tally.cache_status(true);
        tally.cache_status(false);
        tally.abandoned();
        tally.steering(false);
        tally.steering(true);
        let c = tally.counters();
        assert_eq!((c.requests, c.bytes), (2, 110));
        assert_eq!((c.pathways["a"].requests, c.pathways["a"].bytes), (1, 100));
        assert_eq!(c.errors[&ErrorKind::Body], 1);
        assert_eq!((c.failovers, c.abandoned), (1, 1));
        assert_eq!((c.cache_lookups, c.cache_hits), (2, 1));
        assert_eq!((c.steering_fetches, c.steering_errors), (2, 1));
        assert_eq!(heard.requests.load(Ordering::Relaxed), c.requests);
        assert_eq!(heard.errors.load(Ordering::Relaxed), 1);
    }
}
