//! Content steering: the origin lists every configured edge as a pathway of its manifests
//! (HLS `PATHWAY-ID` and `EXT-X-CONTENT-STEERING`, draft-pantos-hls-rfc8216bis §4.4.6.6;
//! DASH `BaseURL@serviceLocation` and `ContentSteering`, DASH-IF CTS 00100), probes each
//! edge's `/.edge/status`, and answers the players' steering requests (rfc8216bis §7) with
//! the edges in the order it wants them used.
//!
//! - [`priority`]: the steering decision, a pure function of what the origin knows;
//! - [`Window`], [`count_answer`]: steered clients per edge, counted from steering requests;
//! - [`Steering`]: configuration, probe results, counts and metrics, set up by
//!   [`crate::AppState::with_steering`].
//!
//! The media crate writes the manifests and the steering JSON; this module only decides.

use std::str::FromStr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime};

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use media::{Delivery, Pathway, Presentation, SteeringManifest, SteeringProtocol, SteeringServer};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::entity::{Entity, respond, text_error};
use crate::paths::MediaKind;
use crate::store::StoreError;
use crate::{AppState, serve_file, store_error};

/// Stickiness: a client stays on its pathway unless that edge steers more than
/// `STICKY_RATIO` × the least-loaded usable edge's clients + `STICKY_SLACK`. The ratio keeps
/// sessions where they are through ordinary imbalance; the slack keeps a handful of clients
/// from bouncing between nearly idle edges.
pub const STICKY_RATIO: f64 = 1.5;
pub const STICKY_SLACK: f64 = 2.0;

/// The query parameter the manifests' steering URI carries and the `RELOAD-URI` does not:
/// it marks a player's first steering request. HLS clients send `_HLS_pathway` even then
/// (the manifest's default pathway, rfc8216bis §7.2), so without it a player that just
/// started would look like one that chose the default edge.
pub const START_PARAM: &str = "start";

/// The largest `/.edge/status` body read.
const MAX_STATUS_BYTES: usize = 64 * 1024;

/// One edge players can be steered to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeTarget {
    /// The pathway ID (HLS `PATHWAY-ID`, DASH `@serviceLocation`).
    pub name: String,
    /// The edge's base URL; the library is under `{url}vod/…` and `{url}live/…` there.
    pub url: Url,
}

impl EdgeTarget {
    /// An edge from its name and base URL (`http://host:port`, optionally with a path).
    pub fn new(name: &str, url: &str) -> Result<Self, SteeringError> {
        if !valid_pathway_id(name) {
            return Err(SteeringError::Name(name.into()));
        }
        let bad = |why: &str| SteeringError::Url {
            name: name.into(),
            url: url.into(),
            why: why.into(),
        };
        let mut parsed = Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(bad("not an http:// or https:// URL with a host"));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(bad("a base URL has no query or fragment"));
        }
        // The presentation paths are appended to it: it names a folder.
        if !parsed.path().ends_with('/') {
            let path = format!("{}/", parsed.path());
            parsed.set_path(&path);
        }
        Ok(Self {
            name: name.into(),
            url: parsed,
        })
    }
}

/// `NAME=URL`, as `--edge` takes it.
impl FromStr for EdgeTarget {
    type Err = SteeringError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, url) = s
            .split_once('=')
            .ok_or_else(|| SteeringError::Syntax(s.into()))?;
        Self::new(name.trim(), url.trim())
    }
}

/// HLS pathway IDs are `[a-z] [A-Z] [0-9] . - _` (rfc8216bis §4.4.6.2); DASH service
/// locations are free text, so the HLS rule serves both. A leading letter or digit keeps
/// them apart from `.`, the pathway of variants that name none.
fn valid_pathway_id(id: &str) -> bool {
    id.len() <= 64
        && id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// How the origin steers.
#[derive(Debug, Clone, PartialEq)]
pub struct SteeringConfig {
    /// In order: the first is every manifest's default pathway.
    pub edges: Vec<EdgeTarget>,
    /// How long clients keep a steering manifest (`TTL`, whole seconds).
    pub ttl: Duration,
    pub probe_interval: Duration,
    pub probe_timeout: Duration,
}

impl SteeringConfig {
    /// `edges` with the default timings: TTL 10 s, probes every second, 500 ms timeout.
    pub fn new(edges: Vec<EdgeTarget>) -> Self {
        Self {
            edges,
            ttl: Duration::from_secs(10),
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
        }
    }

    fn validate(&self) -> Result<(), SteeringError> {
        if self.edges.is_empty() {
            return Err(SteeringError::NoEdges);
        }
        for (i, edge) in self.edges.iter().enumerate() {
            if !valid_pathway_id(&edge.name) {
                return Err(SteeringError::Name(edge.name.clone()));
            }
            if self.edges[..i].iter().any(|e| e.name == edge.name) {
                return Err(SteeringError::Duplicate(edge.name.clone()));
            }
        }
        if self.ttl < Duration::from_secs(1) || self.ttl.subsec_nanos() != 0 {
            return Err(SteeringError::Ttl(self.ttl));
        }
        if self.probe_interval.is_zero() || self.probe_timeout.is_zero() {
            return Err(SteeringError::Probe);
        }
        Ok(())
    }
}

/// Why steering could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SteeringError {
    #[error("edge {0:?} is not NAME=URL")]
    Syntax(String),
    #[error("edge name {0:?}: use 1 to 64 of A-Z a-z 0-9 . _ -, starting with a letter or digit")]
    Name(String),
    #[error("edge {name}: URL {url:?}: {why}")]
    Url {
        name: String,
        url: String,
        why: String,
    },
    #[error("edge {0} is configured twice")]
    Duplicate(String),
    #[error("content steering needs at least one edge")]
    NoEdges,
    #[error("the steering TTL must be a whole number of seconds, at least 1 (got {0:?})")]
    Ttl(Duration),
    #[error("the edge probe interval and timeout must be above zero")]
    Probe,
    #[error("edge probes need a Tokio runtime")]
    NoRuntime,
    #[error("cannot build the edge probe client: {0}")]
    Client(String),
}

/// A duration flag: `500ms`, `1.5s`, or plain seconds (`10`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.strip_suffix("ms") {
        Some(n) => (n, 0.001),
        None => (s.strip_suffix('s').unwrap_or(s), 1.0),
    };
    number
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .and_then(|v| Duration::try_from_secs_f64(v * unit).ok())
        .ok_or_else(|| format!("{s:?} is not a duration such as 500ms, 2s or 10"))
}

/// A protocol's name in the steering routes (`/steering/hls`) and metric labels.
fn protocol_name(protocol: SteeringProtocol) -> &'static str {
    match protocol {
        SteeringProtocol::Hls => "hls",
        SteeringProtocol::Dash => "dash",
    }
}

// ---------------------------------------------------------------------------------------
// The decision.

/// What the steering decision knows of one edge.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeFacts<'a> {
    pub name: &'a str,
    /// Its last probe succeeded in time and it reported itself healthy.
    pub usable: bool,
    /// Clients the origin steers to it now.
    pub clients: f64,
    /// The load it reported (bytes sent to clients per second).
    pub bytes_out_per_s: f64,
}

/// The pathway priority for one client on `current` (`None`: a new client, or one whose
/// pathway names no edge).
///
/// Usable edges come first, least loaded first: fewest steered clients, then lowest
/// reported `bytes_out_per_s`, then name. Unusable edges stay listed, last, so clients can
/// come back to them (rfc8216bis §7.2: a client only uses listed pathways). A client stays
/// on its current usable edge unless that edge steers clearly more clients than the least
/// loaded one ([`STICKY_RATIO`], [`STICKY_SLACK`]): sessions keep their warm connection and
/// cache, yet load rebalances. When no edge is usable the origin cannot tell a dead edge
/// from its own lost view, so it moves nobody.
pub fn priority<'a>(edges: &[EdgeFacts<'a>], current: Option<&str>) -> Vec<&'a str> {
    let mut order: Vec<&EdgeFacts<'a>> = edges.iter().collect();
    order.sort_by(|a, b| {
        b.usable
            .cmp(&a.usable)
            .then(a.clients.total_cmp(&b.clients))
            .then(a.bytes_out_per_s.total_cmp(&b.bytes_out_per_s))
            .then(a.name.cmp(b.name))
    });
    let least = order.first().filter(|e| e.usable).map(|e| e.clients);
    if let Some(at) = current.and_then(|c| order.iter().position(|e| e.name == c)) {
        let on = order[at];
        let stays = match least {
            Some(least) => on.usable && on.clients <= STICKY_RATIO * least + STICKY_SLACK,
            None => true,
        };
        if stays {
            order.remove(at);
            order.insert(0, on);
        }
    }
    order.into_iter().map(|e| e.name).collect()
}

/// The edge a client says it is on: HLS sends one pathway ID, dash.js a quoted,
/// comma-separated list of the service locations it used since its last request, the one
/// in use last. Anything that names no edge is ignored.
pub fn current_pathway(value: &str, edges: &[&str]) -> Option<usize> {
    value
        .trim()
        .trim_matches('"')
        .split(',')
        .rev()
        .find_map(|id| edges.iter().position(|e| *e == id.trim()))
}

/// What a steering request says about its client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct SteeringQuery {
    start: bool,
    pathway: Option<String>,
}

/// Reads the query of a steering request. It never fails: odd values are ignored, so a
/// player always gets its manifest.
fn steering_query(raw: &str, protocol: SteeringProtocol) -> SteeringQuery {
    let mut query = SteeringQuery::default();
    for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        if key == START_PARAM {
            query.start = true;
        } else if key == protocol.pathway_param() {
            query.pathway = Some(value.into_owned());
        }
    }
    query
}

// ---------------------------------------------------------------------------------------
// Counting steered clients.

/// Slots of a [`Window`]: it spans two TTLs in quarter-TTL slots.
const SLOTS: u64 = 8;
const SLOTS_PER_TTL: u64 = 4;

/// Steering answers that named one edge first, over the last two TTLs. A live client asks
/// once a TTL, so it is in the window twice: clients = answers / 2. Two TTLs rather than
/// one so that a client that asks a little late is still counted. Fixed memory, whatever
/// the request rate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Window {
    /// `(slot number, answers)`, slot `n` at index `n % SLOTS`.
    slots: [(u64, u32); SLOTS as usize],
}

impl Window {
    fn cell(&mut self, slot: u64) -> &mut (u64, u32) {
        &mut self.slots[(slot % SLOTS) as usize]
    }

    /// One answer at `slot` (a slot older than the window is ignored).
    pub fn add(&mut self, slot: u64) {
        let cell = self.cell(slot);
        if cell.0 < slot {
            *cell = (slot, 0);
        }
        if cell.0 == slot {
            cell.1 = cell.1.saturating_add(1);
        }
    }

    /// Removes one answer at `slot`; whether there was one.
    pub fn take(&mut self, slot: u64) -> bool {
        let cell = self.cell(slot);
        let there = cell.0 == slot && cell.1 > 0;
        if there {
            cell.1 -= 1;
        }
        there
    }

    /// Clients counted in the window that ends with slot `now`.
    pub fn clients(&self, now: u64) -> f64 {
        let answers: u32 = self
            .slots
            .iter()
            .filter(|(slot, _)| *slot <= now && now - slot < SLOTS)
            .map(|(_, n)| n)
            .sum();
        f64::from(answers) / 2.0
    }
}

/// Counts one answer at slot `now` that named edge `chosen` first, for a client that was on
/// `previous` (`None`: new). Each client weighs two answers, one this TTL and one the TTL
/// before, as a client that has been there all along does:
/// - a new client also gets the answer it would have had a TTL ago, so it counts as one
///   whole client at once (50 players starting together spread evenly);
/// - a client moved to another edge takes its answer of a TTL ago along, so the edge it
///   left stops counting it now rather than two TTLs later (without this, rebalancing
///   overshoots and swings back).
pub fn count_answer(windows: &mut [Window], now: u64, chosen: usize, previous: Option<usize>) {
    let Some(window) = windows.get_mut(chosen) else {
        return;
    };
    window.add(now);
    let earlier = now.saturating_sub(SLOTS_PER_TTL);
    match previous {
        None => window.add(earlier),
        Some(from) if from != chosen => {
            // Its earlier ask: about a TTL ago, a little more when it asked late.
            let oldest = now.saturating_sub(SLOTS - 1);
            let moved = windows
                .get_mut(from)
                .is_some_and(|w| (oldest..=earlier).rev().any(|slot| w.take(slot)));
            if moved {
                windows[chosen].add(earlier);
            }
        }
        Some(_) => {}
    }
}

// ---------------------------------------------------------------------------------------
// Probes.

/// What an edge reports at `/.edge/status` (the fields the origin reads; more may come).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeReport {
    #[serde(default)]
    pub name: String,
    pub healthy: bool,
    #[serde(default)]
    pub uptime_s: f64,
    #[serde(default)]
    pub load: EdgeLoad,
}

/// The load part of an [`EdgeReport`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EdgeLoad {
    pub in_flight: u64,
    pub requests_per_s: f64,
    pub bytes_out_per_s: f64,
    pub cache_entries: u64,
    pub cache_bytes: u64,
}

/// The last probe of one edge.
#[derive(Debug, Clone, Default)]
struct Probe {
    /// When it ended; `None` before the first.
    at: Option<SystemTime>,
    latency: Duration,
    /// Why it failed; `None` after a success.
    error: Option<String>,
    /// The last report received (kept after a failure, for the status page).
    report: Option<EdgeReport>,
}

impl Probe {
    /// A failed probe makes an edge unusable at once, a success usable again.
    fn usable(&self) -> bool {
        self.at.is_some() && self.error.is_none() && self.report.as_ref().is_some_and(|r| r.healthy)
    }

    /// The load that ranks edges: a load that is not a finite positive rate counts as none.
    fn bytes_out_per_s(&self) -> f64 {
        self.report
            .as_ref()
            .map(|r| r.load.bytes_out_per_s)
            .filter(|v| v.is_finite() && *v > 0.0)
            .unwrap_or(0.0)
    }
}

/// `GET {edge}.edge/status`, bounded by the client's timeout and [`MAX_STATUS_BYTES`].
async fn probe(client: &reqwest::Client, url: Url) -> Result<EdgeReport, String> {
    let mut response = client.get(url).send().await.map_err(|e| describe(&e))?;
    if !response.status().is_success() {
        return Err(format!("status {}", response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
        if body.len() + chunk.len() > MAX_STATUS_BYTES {
            return Err(format!("status body over {MAX_STATUS_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| format!("invalid status JSON: {e}"))
}

/// An error with its causes (reqwest's own text hides the one that matters).
fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Probes every edge each interval until the steering state is gone.
async fn probe_loop(steering: Weak<Steering>, client: reqwest::Client, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        // Only the URLs are held while probing, so dropping the state ends the loop.
        let Some(urls) = steering.upgrade().map(|s| s.status_urls()) else {
            return;
        };
        let results = futures::future::join_all(urls.into_iter().map(|url| {
            let client = &client;
            async move {
                let started = Instant::now();
                let result = probe(client, url).await;
                (result, started.elapsed())
            }
        }))
        .await;
        let Some(steering) = steering.upgrade() else {
            return;
        };
        for (index, (result, latency)) in results.into_iter().enumerate() {
            steering.record_probe(index, result, latency);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The shared state.

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EdgeLabels {
    edge: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProtocolLabels {
    protocol: &'static str,
}

/// The steering families of `/metrics` (a registry of their own, so an origin without
/// edges exports exactly what it did before).
#[derive(Debug)]
struct SteeringMetrics {
    registry: Registry,
    usable: Family<EdgeLabels, Gauge>,
    requests: Family<ProtocolLabels, Counter>,
    clients: Family<EdgeLabels, Gauge<f64, AtomicU64>>,
}

impl Default for SteeringMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("origin");
        let usable = Family::<EdgeLabels, Gauge>::default();
        let requests = Family::<ProtocolLabels, Counter>::default();
        let clients = Family::<EdgeLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "edge_usable",
            "Whether the edge's last probe succeeded and it reported itself healthy",
            usable.clone(),
        );
        registry.register(
            "steering_requests",
            "Steering manifests served, by protocol",
            requests.clone(),
        );
        registry.register(
            "steered_clients",
            "Clients steered to the edge first, counted from steering requests over two TTLs",
            clients.clone(),
        );
        Self {
            registry,
            usable,
            requests,
            clients,
        }
    }
}

/// What the probes and the steering answers have learnt, one entry per edge.
#[derive(Debug)]
struct Shared {
    probes: Vec<Probe>,
    windows: Vec<Window>,
}

/// The steering state of an origin: its edges, their last probes and steered clients.
#[derive(Debug)]
pub struct Steering {
    config: SteeringConfig,
    /// Slots of the client windows count from here.
    epoch: Instant,
    /// When this configuration took effect: generated manifests are no older.
    since: SystemTime,
    /// One lock for decisions and their counts, so concurrent new clients spread evenly.
    shared: Mutex<Shared>,
    metrics: SteeringMetrics,
}

/// One edge on `/steering/status`.
#[derive(Debug, Serialize)]
struct EdgeStatus<'a> {
    name: &'a str,
    url: &'a str,
    usable: bool,
    steered_clients: f64,
    /// RFC 3339, when the last probe ended.
    last_probe: Option<String>,
    last_probe_age_s: Option<f64>,
    last_probe_latency_ms: Option<f64>,
    last_probe_error: Option<&'a str>,
    /// The last report received.
    reported: Option<&'a EdgeReport>,
}

impl Steering {
    /// Validates `config` and starts probing its edges on the current Tokio runtime; the
    /// probes stop when the returned state is dropped.
    pub fn start(config: SteeringConfig) -> Result<Arc<Self>, SteeringError> {
        config.validate()?;
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| SteeringError::NoRuntime)?;
        let client = reqwest::Client::builder()
            .timeout(config.probe_timeout)
            .connect_timeout(config.probe_timeout)
            // Edges are reached directly, whatever HTTP_PROXY says.
            .no_proxy()
            .build()
            .map_err(|e| SteeringError::Client(describe(&e)))?;
        let shared = Shared {
            probes: vec![Probe::default(); config.edges.len()],
            windows: vec![Window::default(); config.edges.len()],
        };
        let steering = Arc::new(Self {
            epoch: Instant::now(),
            since: SystemTime::now(),
            shared: Mutex::new(shared),
            metrics: SteeringMetrics::default(),
            config,
        });
        runtime.spawn(probe_loop(
            Arc::downgrade(&steering),
            client,
            steering.config.probe_interval,
        ));
        Ok(steering)
    }

    pub fn config(&self) -> &SteeringConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // Every update leaves the state consistent, so a poisoned lock is still usable.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The slot of `at` in the client windows (offset so that a window never reaches
    /// before slot 0).
    fn slot(&self, at: Instant) -> u64 {
        let width = self.config.ttl.as_secs_f64() / SLOTS_PER_TTL as f64;
        SLOTS + (at.saturating_duration_since(self.epoch).as_secs_f64() / width) as u64
    }

    fn status_urls(&self) -> Vec<Url> {
        self.config
            .edges
            .iter()
            .map(|e| e.url.join(".edge/status").unwrap_or_else(|_| e.url.clone()))
            .collect()
    }

    fn record_probe(&self, index: usize, result: Result<EdgeReport, String>, latency: Duration) {
        let Some(edge) = self.config.edges.get(index) else {
            return;
        };
        let mut shared = self.lock();
        let Some(probe) = shared.probes.get_mut(index) else {
            return;
        };
        // `None` before the first probe: its outcome is logged either way.
        let was = probe.at.map(|_| probe.usable());
        probe.at = Some(SystemTime::now());
        probe.latency = latency;
        match result {
            Ok(report) => {
                probe.error = None;
                probe.report = Some(report);
            }
            Err(error) => probe.error = Some(error),
        }
        match (was, probe.usable()) {
            (None | Some(false), true) => tracing::info!(edge = %edge.name, "edge usable"),
            (None | Some(true), false) => tracing::warn!(
                edge = %edge.name,
                error = probe.error.as_deref().unwrap_or("reports itself unhealthy"),
                "edge unusable: steering players away"
            ),
            _ => {}
        }
    }

    /// The presentation under `root` (`vod/sample`, `live/live`) on every edge, for
    /// `protocol`'s manifests. The steering URI is an absolute path, so it resolves to
    /// whichever host served the manifest (an edge proxies it uncached: `no-store`).
    pub fn delivery(&self, root: &str, protocol: SteeringProtocol) -> Delivery {
        Delivery {
            pathways: self
                .config
                .edges
                .iter()
                .map(|e| Pathway {
                    id: e.name.clone(),
                    base: format!("{}{root}/", e.url),
                })
                .collect(),
            steering: Some(SteeringServer {
                uri: format!("/steering/{}?{START_PARAM}=1", protocol_name(protocol)),
                default_pathway: self.config.edges.first().map(|e| e.name.clone()),
                // DASH: ask before the first segment, so a new player starts on the edge
                // chosen for it rather than on the default (HLS asks at once anyway).
                query_before_start: protocol == SteeringProtocol::Dash,
            }),
        }
    }

    /// Answers one steering request (its raw query) and, for a GET, counts the client on
    /// the edge it is steered to.
    fn answer(&self, protocol: SteeringProtocol, raw_query: &str, count: bool) -> SteeringManifest {
        let query = steering_query(raw_query, protocol);
        let names: Vec<&str> = self.config.edges.iter().map(|e| e.name.as_str()).collect();
        let current = query
            .pathway
            .as_deref()
            .and_then(|p| current_pathway(p, &names))
            .filter(|_| !query.start);
        let now = self.slot(Instant::now());
        let mut shared = self.lock();
        let facts: Vec<EdgeFacts<'_>> = names
            .iter()
            .zip(shared.probes.iter().zip(&shared.windows))
            .map(|(name, (probe, window))| EdgeFacts {
                name,
                usable: probe.usable(),
                clients: window.clients(now),
                bytes_out_per_s: probe.bytes_out_per_s(),
            })
            .collect();
        let order = priority(&facts, current.map(|i| names[i]));
        if count
            && let Some(chosen) = order
                .first()
                .and_then(|n| names.iter().position(|m| m == n))
        {
            count_answer(&mut shared.windows, now, chosen, current);
        }
        drop(shared);
        self.metrics
            .requests
            .get_or_create(&ProtocolLabels {
                protocol: protocol_name(protocol),
            })
            .inc();
        SteeringManifest {
            version: 1,
            ttl: self.config.ttl.as_secs(),
            // The same path: clients append their parameters again (rfc8216bis §7.2), and
            // without the start marker they are known clients from now on.
            reload_uri: Some(format!("/steering/{}", protocol_name(protocol))),
            priority: order.into_iter().map(str::to_string).collect(),
        }
    }

    /// Sets the gauges to the current state (called when `/metrics` is read).
    pub(crate) fn refresh_metrics(&self) {
        let now = self.slot(Instant::now());
        let shared = self.lock();
        for ((edge, probe), window) in self
            .config
            .edges
            .iter()
            .zip(&shared.probes)
            .zip(&shared.windows)
        {
            let labels = EdgeLabels {
                edge: edge.name.clone(),
            };
            self.metrics
                .usable
                .get_or_create(&labels)
                .set(i64::from(probe.usable()));
            self.metrics
                .clients
                .get_or_create(&labels)
                .set(window.clients(now));
        }
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.metrics.registry
    }

    /// The `/steering/status` document.
    fn status(&self) -> serde_json::Value {
        let now = self.slot(Instant::now());
        let shared = self.lock();
        let list: Vec<EdgeStatus<'_>> = self
            .config
            .edges
            .iter()
            .zip(&shared.probes)
            .zip(&shared.windows)
            .map(|((edge, probe), window)| EdgeStatus {
                name: &edge.name,
                url: edge.url.as_str(),
                usable: probe.usable(),
                steered_clients: window.clients(now),
                last_probe: probe.at.map(|t| {
                    chrono::DateTime::<chrono::Utc>::from(t)
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                }),
                last_probe_age_s: probe
                    .at
                    .map(|t| t.elapsed().unwrap_or_default().as_secs_f64()),
                last_probe_latency_ms: probe.at.map(|_| probe.latency.as_secs_f64() * 1e3),
                last_probe_error: probe.error.as_deref(),
                reported: probe.report.as_ref(),
            })
            .collect();
        serde_json::json!({
            "ttl_s": self.config.ttl.as_secs(),
            "probe_interval_s": self.config.probe_interval.as_secs_f64(),
            "probe_timeout_s": self.config.probe_timeout.as_secs_f64(),
            "edges": list,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Routes.

/// `application/json`, never stored: every answer is for one client at one moment.
fn json_response(body: String) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

fn manifest(
    state: &AppState,
    protocol: SteeringProtocol,
    method: &Method,
    query: Option<&str>,
) -> Response {
    match state.steering() {
        Some(steering) => {
            let answer = steering.answer(protocol, query.unwrap_or(""), method == Method::GET);
            json_response(answer.to_json(protocol))
        }
        None => text_error(StatusCode::NOT_FOUND, "not found"),
    }
}

/// `GET /steering/hls`: the HLS steering manifest (rfc8216bis §7.1).
pub async fn hls(
    State(state): State<AppState>,
    method: Method,
    RawQuery(query): RawQuery,
) -> Response {
    manifest(&state, SteeringProtocol::Hls, &method, query.as_deref())
}

/// `GET /steering/dash`: the DASH steering manifest (DASH-IF CTS 00100 §6).
pub async fn dash(
    State(state): State<AppState>,
    method: Method,
    RawQuery(query): RawQuery,
) -> Response {
    manifest(&state, SteeringProtocol::Dash, &method, query.as_deref())
}

/// `GET /steering/status`: each edge's probe, reported load and steered clients.
pub async fn status(State(state): State<AppState>) -> Response {
    match state.steering() {
        Some(steering) => {
            let mut response = Json(steering.status()).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        None => text_error(StatusCode::NOT_FOUND, "not found"),
    }
}

/// The steering protocol of a VOD manifest file name.
pub(crate) fn manifest_protocol(file: &str) -> Option<SteeringProtocol> {
    match file {
        crate::library::HLS_MANIFEST => Some(SteeringProtocol::Hls),
        crate::library::DASH_MANIFEST => Some(SteeringProtocol::Dash),
        _ => None,
    }
}

/// Writes a presentation's multivariant playlist or static MPD.
fn write_manifest(
    presentation: &Presentation,
    protocol: SteeringProtocol,
) -> media::Result<String> {
    match protocol {
        SteeringProtocol::Hls => media::hls::write_multivariant(presentation),
        SteeringProtocol::Dash => media::dash::write_static_mpd(presentation),
    }
}

/// A VOD manifest (`manifest`, on disk at `path`) generated from the asset's
/// `presentation.json` with every edge as a pathway. Its bytes, so its ETag, only change
/// with the asset or the configuration, and it answers like the file it replaces.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn vod_manifest(
    state: &AppState,
    steering: &Steering,
    asset: &str,
    protocol: SteeringProtocol,
    path: &std::path::Path,
    kind: MediaKind,
    method: &Method,
    headers: &HeaderMap,
) -> Response {
    // The asset offers the manifests it has on disk, as without steering.
    if let Err(e) = state.inner.store.get(path).await {
        return store_error(path, &e);
    }
    let Some(model) = state
        .library()
        .resolve(&[asset, media::package::PRESENTATION_JSON])
    else {
        return text_error(StatusCode::BAD_REQUEST, "invalid path component");
    };
    let file = match state.inner.store.get(&model).await {
        Ok(file) => file,
        // An asset without the model (packaged by hand) is served as written, unsteered.
        Err(StoreError::NotFound) => {
            return serve_file(
                state,
                path,
                kind.content_type(),
                kind.cache,
                method,
                headers,
            )
            .await;
        }
        Err(e) => return store_error(&model, &e),
    };
    let presentation = match file.bytes().await {
        Ok(bytes) => serde_json::from_slice::<Presentation>(&bytes).map_err(|e| e.to_string()),
        Err(e) => return store_error(&model, &e),
    };
    let text = presentation.and_then(|mut p| {
        p.delivery = steering.delivery(&format!("vod/{asset}"), protocol);
        write_manifest(&p, protocol).map_err(|e| e.to_string())
    });
    match text {
        Ok(text) => {
            let entity = Entity::generated(
                Bytes::from(text),
                kind.content_type(),
                kind.cache,
                file.last_modified.max(steering.since),
            );
            respond(method, headers, &entity)
        }
        Err(e) => {
            tracing::warn!(asset, error = %e, "cannot write a steered manifest");
            text_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot write the manifest",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn facts(name: &str, usable: bool, clients: f64, bytes_out_per_s: f64) -> EdgeFacts<'_> {
        EdgeFacts {
            name,
            usable,
            clients,
            bytes_out_per_s,
        }
    }

    #[test]
    fn priority_table() {
        // (edges as (name, usable, clients, bytes/s), current, expected order, why)
        type Row = (
            &'static [(&'static str, bool, f64, f64)],
            Option<&'static str>,
            &'static [&'static str],
            &'static str,
        );
        let rows: &[Row] = &[
            (
                &[
                    ("a", true, 0.0, 0.0),
                    ("b", true, 0.0, 0.0),
                    ("c", true, 0.0, 0.0),
                ],
                None,
                &["a", "b", "c"],
                "all equal: by name",
            ),
            (
                &[
                    ("a", true, 3.0, 0.0),
                    ("b", true, 1.0, 0.0),
                    ("c", true, 2.0, 0.0),
                ],
                None,
                &["b", "c", "a"],
                "new client: fewest steered clients first",
            ),
            (
                &[
                    ("a", true, 1.0, 900.0),
                    ("b", true, 1.0, 100.0),
                    ("c", true, 2.0, 0.0),
                ],
                None,
                &["b", "a", "c"],
                "equal clients: lower reported bytes out first",
            ),
            (
                &[
                    ("a", false, 0.0, 0.0),
                    ("b", true, 9.0, 0.0),
                    ("c", true, 5.0, 0.0),
                ],
                None,
                &["c", "b", "a"],
                "unusable last, even when idle",
            ),
            (
                &[("a", true, 8.0, 0.0), ("b", true, 5.0, 0.0)],
                Some("a"),
                &["a", "b"],
                "sticky: 8 ≤ 1.5 × 5 + 2",
            ),
            (
                &[("a", true, 10.0, 0.0), ("b", true, 5.0, 0.0)],
                Some("a"),
                &["b", "a"],
                "rebalance: 10 > 1.5 × 5 + 2",
            ),
            (
                &[("a", true, 2.0, 0.0), ("b", true, 0.0, 0.0)],
                Some("a"),
                &["a", "b"],
                "a lone client stays (slack)",
            ),
            (
                &[("a", true, 2.5, 0.0), ("b", true, 0.0, 0.0)],
                Some("a"),
                &["b", "a"],
                "past the slack it moves",
            ),
            (
                &[
                    ("a", true, 5.0, 0.0),
                    ("b", false, 0.0, 0.0),
                    ("c", true, 4.0, 0.0),
                ],
                Some("b"),
                &["c", "a", "b"],
                "current edge unusable: moved to the least loaded usable",
            ),
            (
                &[
                    ("a", true, 5.0, 0.0),
                    ("b", true, 1.0, 0.0),
                    ("c", true, 3.5, 0.0),
                ],
                Some("c"),
                &["c", "b", "a"],
                "sticky at the limit (1.5 × 1 + 2): the rest in load order",
            ),
            (
                &[("a", true, 1.0, 0.0), ("b", true, 1.0, 0.0)],
                Some("zzz"),
                &["a", "b"],
                "unknown current: as a new client",
            ),
            (
                &[("a", false, 4.0, 0.0), ("b", false, 1.0, 0.0)],
                Some("a"),
                &["a", "b"],
                "nothing usable: nobody is moved",
            ),
            (
                &[("a", false, 4.0, 0.0), ("b", false, 1.0, 0.0)],
                None,
                &["b", "a"],
                "nothing usable: new clients by load",
            ),
            (&[], Some("a"), &[], "no edges"),
        ];
        for (edges, current, want, why) in rows {
            let edges: Vec<EdgeFacts<'_>> = edges
                .iter()
                .map(|(n, u, c, b)| facts(n, *u, *c, *b))
                .collect();
            assert_eq!(priority(&edges, *current), *want, "{why}");
        }
    }

    #[test]
    fn current_pathway_table() {
        let edges = ["e1", "e2", "e3"];
        let rows = [
            ("e2", Some(1)),
            (" e3 ", Some(2)),
            ("\"e1\"", Some(0)),
            ("\"e1,e3\"", Some(2)),
            ("\"e3,nope\"", Some(2)),
            ("\"\"", None),
            ("", None),
            ("E1", None),
            (".", None),
            ("\u{fffd}\u{fffd}", None),
        ];
        for (value, want) in rows {
            assert_eq!(current_pathway(value, &edges), want, "{value:?}");
        }
    }

    #[test]
    fn steering_query_table() {
        let rows = [
            ("", SteeringProtocol::Hls, false, None),
            (
                "_HLS_pathway=e1&_HLS_throughput=500000",
                SteeringProtocol::Hls,
                false,
                Some("e1"),
            ),
            (
                "start=1&_HLS_pathway=e1",
                SteeringProtocol::Hls,
                true,
                Some("e1"),
            ),
            (
                "_DASH_pathway=%22e1%2Ce2%22&_DASH_throughput=1,2",
                SteeringProtocol::Dash,
                false,
                Some("\"e1,e2\""),
            ),
            ("_HLS_pathway=e1", SteeringProtocol::Dash, false, None),
            (
                "_HLS_pathway=%FF%FE&&=&x",
                SteeringProtocol::Hls,
                false,
                Some("\u{fffd}\u{fffd}"),
            ),
            ("start", SteeringProtocol::Dash, true, None),
        ];
        for (raw, protocol, start, pathway) in rows {
            assert_eq!(
                steering_query(raw, protocol),
                SteeringQuery {
                    start,
                    pathway: pathway.map(str::to_string)
                },
                "{raw}"
            );
        }
    }

    #[test]
    fn windows_count_clients_over_two_ttls() {
        let mut w = Window::default();
        w.add(10);
        w.add(10);
        w.add(13);
        assert_eq!(w.clients(13), 1.5);
        assert_eq!(w.clients(17), 1.5, "slot 10 is still in 10..=17");
        assert_eq!(w.clients(18), 0.5, "slot 10 has left");
        assert_eq!(w.clients(21), 0.0);
        assert!(w.take(13));
        assert_eq!(w.clients(13), 1.0);
        assert!(!w.take(13), "nothing left at 13");
        // A slot reused by the ring starts from zero.
        w.add(18);
        assert_eq!(w.clients(18), 0.5);
        // A slot older than the one its cell holds is ignored.
        w.add(10);
        assert_eq!(w.clients(18), 0.5);
    }

    #[test]
    fn answers_count_new_moved_and_staying_clients() {
        // (previous, chosen, clients per edge after one answer at slot 20, starting from
        // one client on edge 0 that asked at 16 and 20)
        let rows = [
            (None, 1, [1.0, 1.0], "a new client counts as one at once"),
            (Some(0), 0, [1.5, 0.0], "a staying client's new answer"),
            (
                Some(0),
                1,
                [0.5, 1.0],
                "a moved client takes its earlier answer along",
            ),
            (
                Some(1),
                0,
                [1.5, 0.0],
                "moved from an edge that never counted it",
            ),
        ];
        for (previous, chosen, want, why) in rows {
            let mut windows = vec![Window::default(), Window::default()];
            windows[0].add(16);
            windows[0].add(20);
            count_answer(&mut windows, 20, chosen, previous);
            let got = [windows[0].clients(20), windows[1].clients(20)];
            assert_eq!(got, want, "{why}");
        }
        // A late client (earlier answer five slots back) is still found.
        let mut windows = vec![Window::default(), Window::default()];
        windows[0].add(15);
        count_answer(&mut windows, 20, 1, Some(0));
        assert_eq!([windows[0].clients(20), windows[1].clients(20)], [0.0, 1.0]);
        // An index out of range is ignored.
        count_answer(&mut windows, 20, 7, None);
    }

    /// 30 new clients over 3 idle edges, then every one re-asking from where it was sent:
    /// 10 each, and nobody moves.
    #[test]
    fn new_clients_spread_evenly_and_then_stay() {
        let names = ["e1", "e2", "e3"];
        let mut windows = vec![Window::default(); 3];
        let mut on = Vec::new();
        let decide = |windows: &[Window], now: u64, current: Option<usize>| {
            let facts: Vec<EdgeFacts<'_>> = names
                .iter()
                .zip(windows)
                .map(|(n, w)| facts(n, true, w.clients(now), 0.0))
                .collect();
            let first = priority(&facts, current.map(|i| names[i]))[0];
            names.iter().position(|n| *n == first).unwrap()
        };
        for _ in 0..30 {
            let chosen = decide(&windows, 8, None);
            count_answer(&mut windows, 8, chosen, None);
            on.push(chosen);
        }
        let per_edge = |on: &[usize]| [0, 1, 2].map(|e| on.iter().filter(|c| **c == e).count());
        assert_eq!(per_edge(&on), [10, 10, 10]);
        for round in 1..4 {
            let now = 8 + round * SLOTS_PER_TTL;
            for client in on.iter_mut() {
                let chosen = decide(&windows, now, Some(*client));
                count_answer(&mut windows, now, chosen, Some(*client));
                *client = chosen;
            }
            assert_eq!(per_edge(&on), [10, 10, 10], "round {round}");
        }
    }

    /// 30 clients on one edge, two idle edges appear: the load evens out within a TTL, and
    /// does not swing back (it would if moved clients were still counted where they were).
    #[test]
    fn a_crowded_edge_rebalances_without_overshoot() {
        let names = ["e1", "e2", "e3"];
        let mut windows = vec![Window::default(); 3];
        for slot in [4, 8] {
            for _ in 0..30 {
                windows[0].add(slot);
            }
        }
        let mut on = vec![0usize; 30];
        let mut history = Vec::new();
        for round in 3..10 {
            let now = round * SLOTS_PER_TTL;
            for client in on.iter_mut() {
                let facts: Vec<EdgeFacts<'_>> = names
                    .iter()
                    .zip(&windows)
                    .map(|(n, w)| facts(n, true, w.clients(now), 0.0))
                    .collect();
                let first = priority(&facts, Some(names[*client]))[0];
                let chosen = names.iter().position(|n| *n == first).unwrap();
                count_answer(&mut windows, now, chosen, Some(*client));
                *client = chosen;
            }
            history.push([0, 1, 2].map(|e| on.iter().filter(|c| **c == e).count()));
        }
        // One round moves just enough clients to end the imbalance (the crowded edge is
        // within 1.5 × + 2 of the others), and nobody moves after.
        let first = history[0];
        let least = first[1].min(first[2]);
        assert!(
            first[0] as f64 <= STICKY_RATIO * least as f64 + STICKY_SLACK,
            "{history:?}"
        );
        assert!(first[1].abs_diff(first[2]) <= 1, "{history:?}");
        assert!(history.iter().all(|h| *h == first), "{history:?}");
    }

    #[test]
    fn edges_parse_from_flags() {
        let e: EdgeTarget = "e1=http://127.0.0.1:8081".parse().unwrap();
        assert_eq!(e.name, "e1");
        assert_eq!(e.url.as_str(), "http://127.0.0.1:8081/");
        let e: EdgeTarget = "cdn-b = https://b.example/rivulet".parse().unwrap();
        assert_eq!(e.url.as_str(), "https://b.example/rivulet/");
        for bad in [
            "e1",
            "=http://x",
            "e 1=http://x",
            "e1=ftp://x",
            "e1=http://x/?q=1",
            "e1=/relative",
            "e1=",
            "e\"1=http://x",
            ".=http://x",
            "-a=http://x",
        ] {
            assert!(bad.parse::<EdgeTarget>().is_err(), "{bad}");
        }
    }

    #[test]
    fn configs_are_validated() {
        let edge = |n: &str| EdgeTarget::new(n, "http://127.0.0.1:1").unwrap();
        assert!(SteeringConfig::new(vec![edge("a")]).validate().is_ok());
        let rows = [
            SteeringConfig::new(vec![]),
            SteeringConfig::new(vec![edge("a"), edge("a")]),
            SteeringConfig {
                ttl: Duration::from_millis(1500),
                ..SteeringConfig::new(vec![edge("a")])
            },
            SteeringConfig {
                ttl: Duration::ZERO,
                ..SteeringConfig::new(vec![edge("a")])
            },
            SteeringConfig {
                probe_interval: Duration::ZERO,
                ..SteeringConfig::new(vec![edge("a")])
            },
        ];
        for config in rows {
            assert!(config.validate().is_err(), "{config:?}");
        }
    }

    #[test]
    fn durations_parse() {
        let rows = [
            ("500ms", Some(Duration::from_millis(500))),
            ("2s", Some(Duration::from_secs(2))),
            ("1.5s", Some(Duration::from_millis(1500))),
            ("10", Some(Duration::from_secs(10))),
            (" 0.2 ", Some(Duration::from_millis(200))),
            ("-1", None),
            ("abc", None),
            ("1m", None),
            ("inf", None),
            ("", None),
        ];
        for (text, want) in rows {
            assert_eq!(parse_duration(text).ok(), want, "{text:?}");
        }
    }

    #[tokio::test]
    async fn deliveries_name_every_edge_under_the_root() {
        let edges = vec![
            EdgeTarget::new("e1", "http://127.0.0.1:1").unwrap(),
            EdgeTarget::new("e2", "http://10.0.0.2:8081/cdn").unwrap(),
        ];
        let steering = Steering::start(SteeringConfig::new(edges)).unwrap();
        let d = steering.delivery("vod/sample", SteeringProtocol::Dash);
        let bases: Vec<&str> = d.pathways.iter().map(|p| p.base.as_str()).collect();
        assert_eq!(
            bases,
            [
                "http://127.0.0.1:1/vod/sample/",
                "http://10.0.0.2:8081/cdn/vod/sample/"
            ]
        );
        let server = d.steering.unwrap();
        assert_eq!(server.uri, "/steering/dash?start=1");
        assert_eq!(server.default_pathway.as_deref(), Some("e1"));
        assert!(server.query_before_start);
        let hls = steering.delivery("live/live", SteeringProtocol::Hls);
        assert_eq!(hls.steering.unwrap().uri, "/steering/hls?start=1");
        assert_eq!(hls.pathways[0].base, "http://127.0.0.1:1/live/live/");
    }
}
