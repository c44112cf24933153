//! The content-steering client: fetches the steering manifest (HLS §7.1-7.2 of
//! draft-pantos-hls-rfc8216bis, DASH-IF CTS 00100) before the first segment, as DASH's
//! `@queryBeforeStart` asks, then again every `TTL` seconds, and hands each priority list
//! to the session's [`Routes`].
//!
//! Each request names the pathway in use and the session's throughput (`_HLS_pathway` /
//! `_HLS_throughput` for HLS, `_DASH_pathway` / `_DASH_throughput` for DASH) so that the
//! server can steer on them. Refreshes run beside the segment downloads, never in their
//! way; a fetch that fails or times out keeps the current order and is tried again after
//! the TTL. Steering requests go over the session's client but not through its link model
//! (they are a few hundred bytes).

use std::convert::Infallible;
use std::time::Duration;

use http_rules::report::error_chain;
use media::{SteeringManifest, SteeringProtocol};
use reqwest::Client;
use tokio::time::{Instant, sleep_until, timeout};
use url::Url;

use super::pathway::Routes;
use super::tally::Tally;

/// How long one steering request may take: the first one holds start-up, so a steering
/// server that has not answered by then is counted as failed.
pub const STEERING_TIMEOUT: Duration = Duration::from_secs(2);
/// The TTL until a steering manifest has given one (HLS §7.1: 300 s when absent).
const DEFAULT_TTL_S: u64 = 300;
/// A TTL of 0 would have the client ask in a loop; once a second is enough.
const MIN_TTL_S: u64 = 1;

/// Where a presentation's steering manifest is, and the spelling it speaks.
#[derive(Debug, Clone, PartialEq)]
pub struct SteeringStart {
    /// The steering server URI resolved against the manifest's URL.
    pub url: Url,
    pub protocol: SteeringProtocol,
}

/// The steering request for `url`: the query parameters naming the current `pathway` and
/// the `throughput_bps` estimate added (replacing any of the same name the server put in
/// a `RELOAD-URI`); each is left out while unknown.
pub fn steering_query(
    url: &Url,
    protocol: SteeringProtocol,
    pathway: Option<&str>,
    throughput_bps: Option<u64>,
) -> Url {
    let (pathway_param, throughput_param) = (protocol.pathway_param(), protocol.throughput_param());
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != pathway_param && k != throughput_param)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut out = url.clone();
    out.set_query(None);
    let added = [
        pathway.map(|p| (pathway_param, p.to_owned())),
        throughput_bps.map(|t| (throughput_param, t.to_string())),
    ];
    if !kept.is_empty() || added.iter().any(Option::is_some) {
        let mut pairs = out.query_pairs_mut();
        for (k, v) in &kept {
            pairs.append_pair(k, v);
        }
        for (k, v) in added.iter().flatten() {
            pairs.append_pair(k, v);
        }
    }
    out
}

/// When and where the steering manifest is fetched next.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    url: Url,
    ttl_s: Option<u64>,
}

impl Schedule {
    pub fn new(url: Url) -> Self {
        Self { url, ttl_s: None }
    }

    /// The URL of the next request (without the client's query parameters).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// A fetch finished at `now_s` with `fetched` (`None`: it failed). Returns when to
    /// fetch next: the manifest's TTL later, from its `RELOAD-URI` (resolved against the
    /// URL it came from) when it gives one; after a failure, the last TTL later from the
    /// same URL.
    pub fn after(&mut self, now_s: f64, fetched: Option<&SteeringManifest>) -> f64 {
        if let Some(m) = fetched {
            self.ttl_s = Some(m.ttl);
            if let Some(reload) = &m.reload_uri {
                match self.url.join(reload) {
                    Ok(next) => self.url = next,
                    Err(e) => tracing::warn!(%reload, error = %e, "ignoring a bad RELOAD-URI"),
                }
            }
        }
        now_s + self.ttl_s.unwrap_or(DEFAULT_TTL_S).max(MIN_TTL_S) as f64
    }
}

/// A steering request that failed.
#[derive(Debug, thiserror::Error)]
enum SteeringError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    #[error(transparent)]
    Manifest(#[from] media::MediaError),
}

/// One session's steering client.
#[derive(Debug)]
pub struct SteeringClient<'a> {
    client: &'a Client,
    routes: &'a Routes,
    tally: &'a Tally<'a>,
    protocol: SteeringProtocol,
    schedule: Schedule,
    /// The session's start, and when the next fetch is due (s since then).
    t0: Instant,
    next_s: f64,
}

impl<'a> SteeringClient<'a> {
    pub fn new(
        client: &'a Client,
        routes: &'a Routes,
        tally: &'a Tally<'a>,
        start: SteeringStart,
        t0: Instant,
    ) -> Self {
        Self {
            client,
            routes,
            tally,
            protocol: start.protocol,
            schedule: Schedule::new(start.url),
            t0,
            next_s: 0.0,
        }
    }

    fn now_s(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    async fn get(&self, url: Url) -> Result<SteeringManifest, SteeringError> {
        let text = timeout(STEERING_TIMEOUT, async {
            self.client
                .get(url)
                .send()
                .await?
                .error_for_status()?
                .text()
                .await
        })
        .await
        .map_err(|_| SteeringError::Timeout(STEERING_TIMEOUT))??;
        Ok(SteeringManifest::parse(&text)?)
    }

    /// Fetches the steering manifest now and applies it.
    pub async fn fetch(&mut self) {
        let url = steering_query(
            self.schedule.url(),
            self.protocol,
            self.routes.current(self.now_s()).as_deref(),
            self.routes.throughput(),
        );
        let result = self.get(url.clone()).await;
        self.tally.steering(result.is_err());
        let fetched = match result {
            Ok(m) => {
                let first = self.routes.steer(&m.priority, self.now_s());
                tracing::debug!(%url, priority = ?m.priority, ttl = m.ttl, ?first, "steered");
                Some(m)
            }
            Err(e) => {
                let error = error_chain(&e);
                tracing::warn!(%url, error, "steering manifest: keeping the current order");
                None
            }
        };
        self.next_s = self.schedule.after(self.now_s(), fetched.as_ref());
    }

    /// Fetches the manifest again whenever its TTL runs out; never returns (it stops when
    /// the session drops it).
    pub async fn keep_fresh(&mut self) -> Infallible {
        loop {
            sleep_until(self.t0 + Duration::from_secs_f64(self.next_s)).await;
            self.fetch().await;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn query_table() {
        use SteeringProtocol::{Dash, Hls};
        // (url, protocol, pathway, throughput, want)
        let cases = [
            (
                "http://o/steer",
                Hls,
                Some("edge-1"),
                Some(2_500_000),
                "http://o/steer?_HLS_pathway=edge-1&_HLS_throughput=2500000",
            ),
            (
                "http://o/steer?session=abc&_DASH_pathway=old",
                Dash,
                Some("e 2"),
                None,
                "http://o/steer?session=abc&_DASH_pathway=e+2",
            ),
            ("http://o/steer", Hls, None, None, "http://o/steer"),
            (
                "http://o/steer?_HLS_throughput=1",
                Hls,
                None,
                Some(7),
                "http://o/steer?_HLS_throughput=7",
            ),
        ];
        for (url, protocol, pathway, throughput, want) in cases {
            let got = steering_query(&Url::parse(url).unwrap(), protocol, pathway, throughput);
            assert_eq!(got.as_str(), want, "{url}");
        }
    }

    fn manifest(ttl: u64, reload: Option<&str>) -> SteeringManifest {
        SteeringManifest {
            version: 1,
            ttl,
            reload_uri: reload.map(str::to_owned),
            priority: vec!["a".into()],
        }
    }

    #[test]
    fn schedule_table() {
        // Fetch outcomes in turn (`None`: failed) and the (next time, next URL) each gives.
        let ok = |ttl, reload| Some(manifest(ttl, reload));
        type Fetches<'a> = &'a [(f64, Option<SteeringManifest>)];
        let cases: [(Fetches<'_>, &[(f64, &str)]); 4] = [
            // No manifest yet: the default TTL; the URL stays.
            (&[(0.5, None)], &[(300.5, "http://o/s/steer")]),
            // The TTL, then a failure keeps the last TTL and URL.
            (
                &[(1.0, ok(10, None)), (11.0, None)],
                &[(11.0, "http://o/s/steer"), (21.0, "http://o/s/steer")],
            ),
            // RELOAD-URI resolves against the URL the manifest came from.
            (
                &[(0.0, ok(2, Some("next?s=1"))), (2.0, ok(3, Some("/other")))],
                &[(2.0, "http://o/s/next?s=1"), (5.0, "http://o/other")],
            ),
            // TTL 0 would spin.
            (&[(4.0, ok(0, None))], &[(5.0, "http://o/s/steer")]),
        ];
        for (steps, want) in cases {
            let mut s = Schedule::new(Url::parse("http://o/s/steer").unwrap());
            for ((now, fetched), (at, url)) in steps.iter().zip(want.iter()) {
                assert_eq!(s.after(*now, fetched.as_ref()), *at, "{steps:?}");
                assert_eq!(s.url().as_str(), *url, "{steps:?}");
            }
        }
    }
}
