//! How a session plays ([`SessionConfig`]) and the HTTP client sessions share.

use std::time::Duration;

use reqwest::Client;
use url::Url;

use super::manifest::LIVE_DELAY_SEGMENTS;
use crate::abr::{AbrKind, AbrParams};
use crate::link::LinkModel;

/// Connect timeout of [`http_client`], and the default of `player`'s `--connect-timeout`:
/// a loopback or LAN peer answers a SYN in milliseconds, a far CDN in a few hundred.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How a session plays.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionConfig {
    /// HLS multivariant / media playlist or DASH MPD.
    pub url: Url,
    /// The ABR algorithm.
    pub abr: AbrKind,
    /// Its parameters (`--abr-params`; the tuned defaults otherwise).
    pub abr_params: AbrParams,
    /// Stop after this many wall seconds (default: when the presentation has played;
    /// a live one plays until stopped).
    pub duration_s: Option<f64>,
    /// Fetch no further ahead than this, s.
    pub max_buffer_s: f64,
    /// Buffer needed to start playing, and to resume after a stall, s.
    pub startup_s: f64,
    pub resume_s: f64,
    /// Send CMCD (CTA-5004) as a query parameter.
    pub cmcd: bool,
    /// Retries allowed per request (a media segment's retries may go to lower
    /// renditions) before the session gives up.
    pub retries: u32,
    /// A request that receives nothing for this long fails.
    pub idle_timeout: Duration,
    /// A connection not made within this fails (the HTTP client's setting: build the
    /// client with [`http_client_with`]).
    pub connect_timeout: Duration,
    /// How long a pathway that failed a request stays at the end of the order.
    pub pathway_penalty: Duration,
    pub link: LinkModel,
    /// Live: segments behind the newest one to start at, and to keep (the hold-back).
    pub live_delay_segments: u64,
}

impl SessionConfig {
    /// A configuration with the defaults of `player play` (hls.js-like: 30 s buffer,
    /// start on the first segment's worth).
    pub fn new(url: Url) -> Self {
        Self {
            url,
            abr: AbrKind::default(),
            abr_params: AbrParams::default(),
            duration_s: None,
            max_buffer_s: 30.0,
            startup_s: 2.0,
            resume_s: 2.0,
            cmcd: false,
            retries: 3,
            idle_timeout: Duration::from_secs(10),
            connect_timeout: CONNECT_TIMEOUT,
            pathway_penalty: Duration::from_secs(30),
            link: LinkModel::default(),
            live_delay_segments: LIVE_DELAY_SEGMENTS,
        }
    }
}

/// [`http_client_with`] the default [`CONNECT_TIMEOUT`].
pub fn http_client(per_host: usize) -> reqwest::Result<Client> {
    http_client_with(per_host, CONNECT_TIMEOUT)
}

/// An HTTP client for sessions: keep-alive pool of up to `per_host` idle connections
/// per host (a browser keeps 6; the load tester shares one client among its sessions).
///
/// A peer that stops answering is found out in about two `connect_timeout`s, not the
/// OS's minutes, so that the session can fail over: connecting is bounded by it; an open
/// connection that goes quiet that long is probed (TCP keepalive), and one whose sent data
/// (a request, a probe) stays unacknowledged for twice that is closed (`TCP_USER_TIMEOUT`,
/// RFC 5482, on Linux). A slow server is not affected: its kernel still acknowledges.
pub fn http_client_with(per_host: usize, connect_timeout: Duration) -> reqwest::Result<Client> {
    // The kernel counts keepalive times in whole seconds (TCP_KEEPIDLE, TCP_KEEPINTVL ≥ 1).
    let keepalive = connect_timeout.max(Duration::from_secs(1));
    let builder = Client::builder()
        .pool_max_idle_per_host(per_host)
        .connect_timeout(connect_timeout)
        .tcp_keepalive(keepalive)
        .tcp_keepalive_interval(keepalive)
        .tcp_keepalive_retries(2)
        .tcp_nodelay(true)
        .user_agent(concat!("rivulet-player/", env!("CARGO_PKG_VERSION")));
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    let builder = builder.tcp_user_timeout(connect_timeout * 2);
    builder.build()
}
