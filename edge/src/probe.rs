//! Active health checks: every peer and upstream probed once per interval. The verdicts
//! feed the rise/fall state machine of [`crate::health`].

use std::sync::Weak;
use std::time::Instant;

use http_rules::report::error_chain;

use crate::cluster::{Members, Membership, Target};
use crate::health::HealthParams;

/// The most of a health answer's body a check reads.
const HEALTH_BODY_MAX: usize = 64 * 1024;

/// Probes every peer and upstream once per interval, concurrently, each bounded by the
/// timeout. Runs until the members are dropped with the edge; a reload takes effect at
/// the next round.
pub async fn run_checks(members: Weak<Members>, client: reqwest::Client) {
    loop {
        let Some(m) = members.upgrade().map(|m| m.current()) else {
            return;
        };
        let started = Instant::now();
        check_round(&m, &client).await;
        tokio::time::sleep(m.health.interval.saturating_sub(started.elapsed())).await;
    }
}

/// One round of checks of `m`'s targets, concurrently; returns when all have answered
/// or timed out.
pub async fn check_round(m: &Membership, client: &reqwest::Client) {
    let checks = m.checks().map(|(t, url)| check(client, t, url, &m.health));
    futures::future::join_all(checks).await;
}

/// A GET of `url`: a 2xx within the timeout is a success.
async fn check(client: &reqwest::Client, target: &Target, url: String, p: &HealthParams) {
    let started = Instant::now();
    let probe = async {
        let mut r = client.get(&url).send().await?;
        let status = r.status();
        // Reading a short body lets the connection go back to the pool. A health answer
        // has no business being large: past this the rest is left unread (and the
        // connection dropped), so a wrong health path never costs a download a round.
        let mut read = 0;
        while read <= HEALTH_BODY_MAX
            && let Some(chunk) = r.chunk().await?
        {
            read += chunk.len();
        }
        Ok::<_, reqwest::Error>(status)
    };
    let error = match tokio::time::timeout(p.timeout, probe).await {
        Ok(Ok(s)) if s.is_success() => None,
        Ok(Ok(s)) => Some(format!("GET {url} answered {s}")),
        Ok(Err(e)) => Some(error_chain(&e)),
        Err(_) => Some(format!("GET {url}: no answer within {:?}", p.timeout)),
    };
    target.observe(error, Some(started.elapsed()), p);
}
