//! One HTTP GET as a player makes it, over the session's pooled client: of a whole
//! resource or a byte range of it (RFC 9110 §14), time to first byte and to last byte,
//! body reads paced by the session's link and handed to a [`Body`] (which may check them
//! as media), `Cache-Status`, an idle timeout, and an abandonment check while the body
//! streams in. With several pathways ([`Routes`]), a GET goes to the current one and, when
//! it fails there, at once to the next.

use std::time::Duration;

use futures::StreamExt as _;
use reqwest::Client;
use tokio::time::{Instant, sleep, sleep_until, timeout};
use url::Url;

use http_rules::report::error_chain;
use media::ByteRange;
use media::validate::InvalidMedia;
use reqwest::header::{CONTENT_RANGE, RANGE};

use super::body::{Body, BodyError, Kept, MANIFEST_LIMIT};
use super::counters::ErrorKind;
use super::pathway::Routes;
use super::tally::Tally;
use crate::link::Shaper;

/// How often a download that delivers nothing is looked at (abandonment, idle timeout).
const CHECK_EVERY: Duration = Duration::from_millis(200);
/// Reads are released through the link shaper, and looked at, in pieces of at most this
/// many bytes (about 0.16 s at 200 kbit/s).
const PACE_PIECE: usize = 4096;

/// A request that failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("GET {url}: HTTP {status}")]
    Status { url: Url, status: u16 },
    #[error("GET {url}: {message}")]
    Connect { url: Url, message: String },
    #[error("GET {url}: body broke off after {received} bytes: {message}")]
    Body {
        url: Url,
        received: u64,
        message: String,
    },
    #[error("GET {url}: nothing received for {secs} s")]
    Timeout { url: Url, secs: f64 },
    #[error("GET {url}: not media: {reason}")]
    Media { url: Url, reason: Box<InvalidMedia> },
}

impl FetchError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Status { status, .. } if (400..500).contains(status) => ErrorKind::Status4xx,
            Self::Status { .. } => ErrorKind::Status5xx,
            Self::Connect { .. } => ErrorKind::Connect,
            Self::Body { .. } => ErrorKind::Body,
            Self::Timeout { .. } => ErrorKind::Timeout,
            Self::Media { .. } => ErrorKind::Media,
        }
    }

    /// The same request will fail again: a client error other than 408 and 429, or bytes
    /// that are not media (the server has the wrong object under that name).
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Status { status, .. } => {
                (400..500).contains(status) && *status != 408 && *status != 429
            }
            Self::Media { .. } => true,
            Self::Connect { .. } | Self::Body { .. } | Self::Timeout { .. } => false,
        }
    }

    /// Another pathway may well succeed: the host or its cache is broken (no connection,
    /// a broken or stalled body, a 5xx, bytes that are not the media asked for) or it
    /// lacks the object (404). Other client errors would be the same everywhere.
    pub fn fails_over(&self) -> bool {
        match self {
            Self::Status { status, .. } => *status == 404 || *status >= 500,
            Self::Connect { .. }
            | Self::Body { .. }
            | Self::Timeout { .. }
            | Self::Media { .. } => true,
        }
    }

    fn from_body(url: &Url, received: u64, e: BodyError) -> Self {
        match e {
            BodyError::Media(reason) => Self::Media {
                url: url.clone(),
                reason: Box::new(reason),
            },
            BodyError::TooLarge(_) => Self::Body {
                url: url.clone(),
                received,
                message: e.to_string(),
            },
        }
    }
}

/// A download in progress, for the abandonment check.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub loaded: u64,
    /// `Content-Length`, when the response has one.
    pub expected: Option<u64>,
    /// Seconds since the request was sent, and since its first byte.
    pub elapsed_s: f64,
    pub transfer_s: f64,
}

/// Whether a `Content-Range` field value (RFC 9110 §14.4) is exactly `range`:
/// `bytes first-last/complete-length` or `bytes first-last/*`.
pub fn content_range_is(value: &str, range: ByteRange) -> bool {
    let Some(spec) = value.trim().strip_prefix("bytes ") else {
        return false;
    };
    let Some((span, complete)) = spec.split_once('/') else {
        return false;
    };
    let complete_ok = complete == "*"
        || complete
            .parse::<u64>()
            .is_ok_and(|length| length >= range.end());
    complete_ok
        && span.split_once('-').is_some_and(|(first, last)| {
            first.parse() == Ok(range.offset) && last.parse() == Ok(range.last())
        })
}

/// A completed response.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub bytes: u64,
    /// Where the response came from (after redirects).
    pub final_url: Url,
    /// Seconds since the session began when the request was sent.
    pub requested_at_s: f64,
    pub ttfb_s: f64,
    /// Request to last byte, s.
    pub total_s: f64,
    pub cache_status: Option<String>,
    /// The pathway it came over, when the presentation has several.
    pub pathway: Option<String>,
    /// Pathways this request failed on before, each left at once for the next.
    pub failovers: u32,
}

/// How a request ended.
#[derive(Debug)]
pub enum Outcome {
    Done(Fetched),
    /// The check asked to drop the download and fetch rendition `to` instead.
    Abandoned {
        to: usize,
    },
}

/// A session's HTTP side: the shared client, its link, its pathways, and the tally it
/// counts every request into.
#[derive(Debug)]
pub struct Fetcher<'a> {
    client: &'a Client,
    shaper: Shaper,
    t0: Instant,
    idle_timeout: Duration,
    retries: u32,
    tally: &'a Tally<'a>,
    routes: &'a Routes,
}

impl<'a> Fetcher<'a> {
    pub fn new(
        client: &'a Client,
        shaper: Shaper,
        t0: Instant,
        idle_timeout: Duration,
        retries: u32,
        tally: &'a Tally<'a>,
        routes: &'a Routes,
    ) -> Self {
        Self {
            client,
            shaper,
            t0,
            idle_timeout,
            retries,
            tally,
            routes,
        }
    }

    pub fn client(&self) -> &'a Client {
        self.client
    }

    pub fn routes(&self) -> &'a Routes {
        self.routes
    }

    pub fn tally(&self) -> &'a Tally<'a> {
        self.tally
    }

    fn now_s(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    /// Counts a failed attempt.
    pub fn failed(&self, e: &FetchError) {
        self.tally.failed(e.kind());
    }

    /// GETs `url` (only `range` of it, when given), its body handed to `body`. `check`
    /// sees the download after every piece read and every 200 ms without data; returning a
    /// rendition abandons it.
    ///
    /// When `url` lives on a pathway, the request goes to the current one; a failure that
    /// another pathway may not have ([`FetchError::fails_over`]) penalises it and sends the
    /// request at once to the next pathway, body and all. Only when every pathway has
    /// failed does the error come back (for the caller's retries).
    pub async fn get(
        &mut self,
        url: &Url,
        range: Option<ByteRange>,
        body: &mut dyn Body,
        check: &mut (dyn FnMut(&Progress) -> Option<usize> + Send),
    ) -> Result<Outcome, FetchError> {
        let Some((mut pathway, mut target)) = self.routes.route(url, &[], self.now_s()) else {
            return self.get_from(url, None, range, body, check).await;
        };
        let mut tried = Vec::new();
        loop {
            let mut result = self
                .get_from(&target, Some(&pathway), range, body, check)
                .await;
            if let Ok(Outcome::Done(f)) = &mut result {
                f.failovers = u32::try_from(tried.len()).unwrap_or(u32::MAX);
            }
            let Err(e) = &result else { return result };
            if !e.fails_over() {
                return result;
            }
            self.routes.penalise(&pathway, self.now_s());
            tried.push(pathway);
            let Some(next) = self.routes.route(url, &tried, self.now_s()) else {
                return result;
            };
            self.failed(e);
            self.tally.failover();
            tracing::warn!(error = %e, to = %next.0, "failing over");
            (pathway, target) = next;
        }
    }

    /// One GET of `url`, its bytes counted (for `pathway` too, when it goes over one).
    async fn get_from(
        &mut self,
        url: &Url,
        pathway: Option<&str>,
        range: Option<ByteRange>,
        body: &mut dyn Body,
        check: &mut (dyn FnMut(&Progress) -> Option<usize> + Send),
    ) -> Result<Outcome, FetchError> {
        let mut loaded = 0;
        let mut result = self.get_once(url, range, body, check, &mut loaded).await;
        self.tally.received(loaded, pathway);
        if let (Some(p), Ok(Outcome::Done(f))) = (pathway, &mut result) {
            f.pathway = Some(p.to_owned());
        }
        result
    }

    /// One GET of `url`; `loaded` counts the body bytes received, whatever the outcome.
    async fn get_once(
        &mut self,
        url: &Url,
        range: Option<ByteRange>,
        body: &mut dyn Body,
        check: &mut (dyn FnMut(&Progress) -> Option<usize> + Send),
        loaded: &mut u64,
    ) -> Result<Outcome, FetchError> {
        self.tally.request();
        let sent = Instant::now();
        let requested_at_s = self.now_s();
        let timed_out = |url: &Url, secs: f64| FetchError::Timeout {
            url: url.clone(),
            secs,
        };
        let mut request = self.client.get(url.clone());
        if let Some(r) = range {
            request = request.header(RANGE, format!("bytes={}-{}", r.offset, r.last()));
        }
        let response = match timeout(self.idle_timeout, request.send()).await {
            Err(_) => return Err(timed_out(url, self.idle_timeout.as_secs_f64())),
            Ok(Err(e)) => {
                return Err(FetchError::Connect {
                    url: url.clone(),
                    message: error_chain(&e),
                });
            }
            Ok(Ok(r)) => r,
        };
        if self.shaper.latency_s() > 0.0 {
            sleep(Duration::from_secs_f64(self.shaper.latency_s())).await;
        }
        let first_byte = Instant::now();
        let ttfb_s = (first_byte - sent).as_secs_f64();
        let status = response.status();
        // Every field line: a parent's member may come on a line of its own (RFC 9211 §2).
        let lines: Vec<&str> = response
            .headers()
            .get_all("cache-status")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let cache_status = (!lines.is_empty()).then(|| lines.join(", "));
        if !lines.is_empty() {
            self.tally
                .cache_status(http_rules::cache_status::any_hit(lines));
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                url: url.clone(),
                status: status.as_u16(),
            });
        }
        if let Some(r) = range {
            // A server that ignores Range (200) or answers another range sends other bytes
            // than those asked for (RFC 9110 §15.3.7).
            let answered = response
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .filter(|v| status.as_u16() == 206 && content_range_is(v, r));
            if answered.is_none() {
                return Err(FetchError::Body {
                    url: url.clone(),
                    received: 0,
                    message: format!(
                        "asked for bytes {}-{}, got HTTP {status} without that Content-Range",
                        r.offset,
                        r.last()
                    ),
                });
            }
        }
        let final_url = response.url().clone();
        let expected = response.content_length();
        body.start().map_err(|e| FetchError::from_body(url, 0, e))?;
        let mut last_data = Instant::now();
        let mut stream = response.bytes_stream();
        let progress = |loaded| Progress {
            loaded,
            expected,
            elapsed_s: sent.elapsed().as_secs_f64(),
            transfer_s: first_byte.elapsed().as_secs_f64(),
        };
        loop {
            match timeout(CHECK_EVERY, stream.next()).await {
                Ok(Some(Ok(chunk))) => {
                    // Paced in small pieces, each looked at once released: on a slow link
                    // one network read can take seconds to "arrive", and playback may
                    // stall (or the download deserve abandoning) meanwhile.
                    for piece in chunk.chunks(PACE_PIECE) {
                        let n = piece.len() as u64;
                        let release = self.shaper.release_at(self.now_s(), n);
                        sleep_until(self.t0 + Duration::from_secs_f64(release)).await;
                        *loaded += n;
                        body.piece(piece)
                            .map_err(|e| FetchError::from_body(url, *loaded, e))?;
                        if let Some(to) = check(&progress(*loaded)) {
                            return Ok(Outcome::Abandoned { to });
                        }
                    }
                    last_data = Instant::now();
                }
                Ok(Some(Err(e))) => {
                    return Err(FetchError::Body {
                        url: url.clone(),
                        received: *loaded,
                        message: error_chain(&e),
                    });
                }
                Ok(None) => break,
                Err(_) if last_data.elapsed() >= self.idle_timeout => {
                    return Err(timed_out(url, self.idle_timeout.as_secs_f64()));
                }
                Err(_) => {
                    if let Some(to) = check(&progress(*loaded)) {
                        return Ok(Outcome::Abandoned { to });
                    }
                }
            }
        }
        if let Some(expected) = expected.filter(|&e| e != *loaded) {
            return Err(FetchError::Body {
                url: url.clone(),
                received: *loaded,
                message: format!("Content-Length is {expected}"),
            });
        }
        body.end()
            .map_err(|e| FetchError::from_body(url, *loaded, e))?;
        Ok(Outcome::Done(Fetched {
            bytes: *loaded,
            final_url,
            requested_at_s,
            ttfb_s,
            total_s: sent.elapsed().as_secs_f64(),
            cache_status,
            pathway: None,
            failovers: 0,
        }))
    }

    /// GETs `url` (or `range` of it) to the end (a manifest, an index, an init or audio
    /// segment: nothing to abandon), retrying failures that may heal with backoff.
    pub async fn get_retrying(
        &mut self,
        url: &Url,
        range: Option<ByteRange>,
        body: &mut dyn Body,
    ) -> Result<Fetched, FetchError> {
        let mut failures = 0;
        loop {
            match self.get(url, range, body, &mut |_| None).await {
                Ok(Outcome::Done(f)) => return Ok(f),
                Ok(Outcome::Abandoned { .. }) => unreachable!("the check never abandons"),
                Err(e) => {
                    self.failed(&e);
                    failures += 1;
                    if e.is_permanent() || failures > self.retries {
                        return Err(e);
                    }
                    tracing::warn!(retry = failures, error = %e, "retrying");
                    sleep(backoff(failures)).await;
                }
            }
        }
    }

    /// GETs a text body (a manifest); returns it with the URL it came from.
    pub async fn get_text(&mut self, url: &Url) -> Result<(String, Url), FetchError> {
        let mut kept = Kept::new(MANIFEST_LIMIT);
        let f = self.get_retrying(url, None, &mut kept).await?;
        Ok((
            String::from_utf8_lossy(&kept.bytes).into_owned(),
            f.final_url,
        ))
    }
}

/// Wait before retry `n` (1-based): 250 ms doubling, at most 4 s, with jitter so that
/// many sessions failing together do not retry in lockstep.
pub fn backoff(n: u32) -> Duration {
    let base = 0.25 * f64::from(1u32 << n.saturating_sub(1).min(4));
    Duration::from_secs_f64(base * (0.5 + rand::random::<f64>() / 2.0))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn error_kinds_table() {
        let url = Url::parse("http://h/x").unwrap();
        let status = |status| FetchError::Status {
            url: url.clone(),
            status,
        };
        // (error, kind, permanent, fails over to another pathway)
        for (e, kind, permanent, fails_over) in [
            (status(404), ErrorKind::Status4xx, true, true),
            (status(403), ErrorKind::Status4xx, true, false),
            (status(408), ErrorKind::Status4xx, false, false),
            (status(429), ErrorKind::Status4xx, false, false),
            (status(503), ErrorKind::Status5xx, false, true),
            (
                FetchError::Timeout {
                    url: url.clone(),
                    secs: 1.0,
                },
                ErrorKind::Timeout,
                false,
                true,
            ),
            (
                FetchError::Connect {
                    url: url.clone(),
                    message: "refused".into(),
                },
                ErrorKind::Connect,
                false,
                true,
            ),
            (
                FetchError::Body {
                    url: url.clone(),
                    received: 10,
                    message: "reset".into(),
                },
                ErrorKind::Body,
                false,
                true,
            ),
            (
                FetchError::Media {
                    url: url.clone(),
                    reason: Box::new(InvalidMedia::NoInit),
                },
                ErrorKind::Media,
                true,
                true,
            ),
        ] {
            assert_eq!(e.kind(), kind, "{e}");
            assert_eq!(e.is_permanent(), permanent, "{e}");
            assert_eq!(e.fails_over(), fails_over, "{e}");
        }
    }

    #[test]
    fn content_range_table() {
        let r = ByteRange::new(834, 176_859).unwrap();
        for (value, want) in [
            ("bytes 834-177692/995287", true),
            ("bytes 834-177692/*", true),
            ("bytes 834-177692/177693", true),
            ("bytes 834-177692/177692", false),
            ("bytes 834-177691/995287", false),
            ("bytes 0-177692/995287", false),
            ("bytes */995287", false),
            ("items 834-177692/995287", false),
            ("bytes 834-177692", false),
        ] {
            assert_eq!(content_range_is(value, r), want, "{value}");
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for n in 1..10 {
            let cap = 0.25 * f64::from(1u32 << (n - 1).min(4));
            let d = backoff(n).as_secs_f64();
            assert!(d >= cap / 2.0 && d <= cap, "{n}: {d}");
        }
    }
}
