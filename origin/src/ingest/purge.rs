//! Purging the edges the origin knows (its `--edge`s) when an asset gets a new build:
//! `PURGE {edge}/vod/NAME/*` with the edges' bearer token (the edge's prefix purge). The
//! versioned URLs already keep every cache correct; the purge makes the edges drop the
//! previous build's manifests at once instead of when their `max-age` runs out, so
//! players starting through an edge get the new build now.

use std::time::Duration;

use http_rules::cli::NamedUrl;
use http_rules::report::error_chain;

/// The longest one purge request may take.
const PURGE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how to purge.
#[derive(Debug, Clone)]
pub struct PurgeConfig {
    pub edges: Vec<NamedUrl>,
    /// The edges' `--purge-token`.
    pub token: String,
}

/// Sends the purges.
#[derive(Debug, Clone)]
pub struct Purger {
    client: reqwest::Client,
    method: reqwest::Method,
    config: PurgeConfig,
}

impl Purger {
    pub fn new(config: PurgeConfig) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(PURGE_TIMEOUT)
            .connect_timeout(PURGE_TIMEOUT)
            .no_proxy()
            .build()
            .map_err(|e| error_chain(&e))?;
        let method = reqwest::Method::from_bytes(b"PURGE").map_err(|e| e.to_string())?;
        Ok(Self {
            client,
            method,
            config,
        })
    }

    /// Purges everything under `/vod/{asset}/` on every edge at once; each result is
    /// logged (an edge that is down has nothing to purge when it comes back empty, and a
    /// refused purge only delays the switch to the new build until `max-age`).
    pub async fn purge_asset(&self, asset: &str) {
        let requests = self.config.edges.iter().map(|edge| {
            let url = format!("{}vod/{asset}/*", edge.url);
            let request = self
                .client
                .request(self.method.clone(), &url)
                .bearer_auth(&self.config.token);
            async move {
                match request.send().await {
                    Ok(response) if response.status().is_success() => {
                        tracing::info!(edge = %edge.name, asset, "edge purged of the previous build");
                    }
                    Ok(response) => tracing::warn!(
                        edge = %edge.name,
                        asset,
                        status = %response.status(),
                        "edge refused the purge (is --edge-purge-token its --purge-token?)"
                    ),
                    Err(e) => tracing::warn!(
                        edge = %edge.name,
                        asset,
                        error = %error_chain(&e),
                        "cannot purge the edge"
                    ),
                }
            }
        });
        futures::future::join_all(requests).await;
    }
}
