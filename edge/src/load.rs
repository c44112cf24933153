//! Load figures for `/.edge/status`: client requests in flight, and request and byte
//! rates over a recent window. Counting is a few relaxed atomics per request; rates are
//! computed when status is read.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};

use prometheus_client::metrics::counter::Counter;

/// Rates are measured over at least this long (when status is read often enough).
const WINDOW: Duration = Duration::from_secs(5);
/// Reads closer together than this share a sample, which bounds the history kept.
const SAMPLE_SPACING: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    requests: u64,
    bytes: u64,
}

#[derive(Debug)]
pub struct Load {
    pub started: Instant,
    in_flight: AtomicU64,
    requests: Counter,
    bytes_out: Counter,
    history: Mutex<VecDeque<Sample>>,
}

impl Default for Load {
    fn default() -> Self {
        let started = Instant::now();
        let start = Sample {
            at: started,
            requests: 0,
            bytes: 0,
        };
        Load {
            started,
            in_flight: AtomicU64::new(0),
            requests: Counter::default(),
            bytes_out: Counter::default(),
            history: Mutex::new(VecDeque::from([start])),
        }
    }
}

/// Requests and body bytes per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    pub requests_per_s: f64,
    pub bytes_out_per_s: f64,
}

impl Load {
    /// Counts a client request as started; it stays in flight until the returned
    /// guard (moved into the response body by [`InFlight::wrap`]) is dropped.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.requests.inc();
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Rates since the newest sample at least 5 s (`WINDOW`) old, else since start-up
    /// (samples are taken when status is read).
    pub fn rates(&self) -> Rates {
        self.rates_at(Instant::now())
    }

    fn rates_at(&self, at: Instant) -> Rates {
        let now = Sample {
            at,
            requests: self.requests.get(),
            bytes: self.bytes_out.get(),
        };
        let mut h = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        // History starts with the start-up sample; keep as base the newest sample at
        // least WINDOW old (or start-up, while none is).
        while h.len() >= 2 && h.get(1).is_some_and(|s| at - s.at >= WINDOW) {
            h.pop_front();
        }
        let base = h.front().copied().unwrap_or(now);
        if h.back().is_none_or(|last| at - last.at >= SAMPLE_SPACING) {
            h.push_back(now);
        }
        drop(h);
        let secs = (now.at - base.at).as_secs_f64();
        if secs <= 0.0 {
            return Rates {
                requests_per_s: 0.0,
                bytes_out_per_s: 0.0,
            };
        }
        Rates {
            requests_per_s: now.requests.saturating_sub(base.requests) as f64 / secs,
            bytes_out_per_s: now.bytes.saturating_sub(base.bytes) as f64 / secs,
        }
    }
}

/// One client request being served.
#[derive(Debug)]
pub struct InFlight(Arc<Load>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl InFlight {
    /// The response with its body counted: bytes as they are sent, and the request in
    /// flight until the body ends or the client goes away.
    pub fn wrap(self, resp: axum::response::Response) -> axum::response::Response {
        resp.map(|inner| Body::new(Counted { inner, guard: self }))
    }
}

struct Counted {
    inner: Body,
    guard: InFlight,
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.guard.0.bytes_out.inc_by(data.len() as u64);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use http_body::Body as _;
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn counts_requests_bytes_and_in_flight() {
        let load = Arc::new(Load::default());
        let guard = load.begin();
        assert_eq!(load.in_flight(), 1);
        let resp = guard.wrap(axum::response::Response::new(Body::from("12345")));
        assert_eq!(resp.body().size_hint().exact(), Some(5));
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(bytes.len(), 5);
        assert_eq!(load.in_flight(), 0, "body done, guard dropped");
        assert_eq!(load.bytes_out.get(), 5);
    }

    #[test]
    fn rates_over_a_sliding_window() {
        let load = Load::default();
        let t0 = load.started;
        let at = |ms| t0 + Duration::from_millis(ms);
        load.requests.inc_by(10);
        load.bytes_out.inc_by(1000);
        // First read: since start-up.
        let r = load.rates_at(at(2_000));
        assert!((r.requests_per_s - 5.0).abs() < 1e-9, "{r:?}");
        assert!((r.bytes_out_per_s - 500.0).abs() < 1e-9, "{r:?}");
        // Reads every second: the base is the newest sample at least 5 s old.
        for s in 3..=9 {
            load.requests.inc_by(2);
            load.rates_at(at(s * 1000));
        }
        load.requests.inc_by(2);
        let r = load.rates_at(at(10_000));
        // Base: the sample at 5 s (requests 16); now 26 over 5 s.
        assert!((r.requests_per_s - 2.0).abs() < 1e-9, "{r:?}");
        assert!(load.history.lock().unwrap().len() <= 7);
        let r = load.rates_at(at(10_100));
        assert!(r.requests_per_s > 0.0);
    }
}
