//! The state of one edge node: its configuration and clock, the store, the fills in
//! flight, the counters, and the cluster membership with its reload and drain.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::HeaderValue;
use http_rules::date::unix_seconds;
use tracing::warn;

use crate::cluster::{Members, Membership};
use crate::config::Config;
use crate::fill::{FillBudget, Inflight};
use crate::load::Load;
use crate::metrics::Metrics;
use crate::policy::{CacheRules, StaleDefaults};
use crate::probe;
use crate::settings::{Settings, SettingsError};
use crate::store::Store;
use crate::upstream::{ClientError, client};

/// The client's address, inserted into request extensions by the server loop.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// Why an edge could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Settings(#[from] SettingsError),
}

/// Shared state of one edge node.
#[derive(Debug)]
pub struct AppState {
    pub cfg: Config,
    pub name: String,
    /// `Via: 1.1 NAME`, added to every response and forwarded request.
    pub(crate) via: HeaderValue,
    /// `name` as the value of `Edge-Peer` on requests to peers.
    pub(crate) peer_tag: HeaderValue,
    pub(crate) client: reqwest::Client,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub load: Arc<Load>,
    /// Peers and upstreams; the health checks hold it weakly, so they end with the state.
    members: Arc<Members>,
    draining: AtomicBool,
    pub(crate) inflight: Inflight,
    /// Requests to peers and upstreams in flight at most (`--max-upstream-requests`).
    pub(crate) upstream_slots: Arc<tokio::sync::Semaphore>,
    /// What storing fills may hold together (`--fill-memory`).
    pub fill_budget: Arc<FillBudget>,
    pub(crate) stale: StaleDefaults,
    /// How responses are read: heuristic limits, targeted fields (RFC 9213).
    pub(crate) rules: CacheRules,
}

impl AppState {
    /// Builds the edge and, inside a Tokio runtime, starts its health checks (they
    /// stop when the state is dropped).
    pub fn new(cfg: Config) -> Result<Arc<Self>, StartError> {
        let name = cfg.node_name();
        let membership = Membership::new(&Settings::load(&cfg)?, &name, None);
        warn_if_not_listed(&membership, &name);
        let metrics = Arc::new(Metrics::default());
        let st = Arc::new(AppState {
            via: HeaderValue::from_str(&format!("1.1 {name}"))
                .unwrap_or(HeaderValue::from_static("1.1 edge")),
            peer_tag: HeaderValue::from_str(&name).unwrap_or(HeaderValue::from_static("edge")),
            client: client(&cfg)?,
            store: Store::new(cfg.cache_size, metrics.evictions.clone()),
            stale: StaleDefaults {
                while_revalidate: cfg.stale_while_revalidate.as_secs(),
                if_error: cfg.stale_if_error.as_secs(),
            },
            rules: CacheRules::new(cfg.targeted_cache_control.clone()),
            inflight: Inflight::default(),
            fill_budget: FillBudget::new(cfg.fill_memory()),
            upstream_slots: Arc::new(tokio::sync::Semaphore::new(cfg.max_upstream_requests)),
            load: Arc::new(Load::default()),
            members: Arc::new(Members::new(membership)),
            draining: AtomicBool::new(false),
            metrics,
            name,
            cfg,
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(probe::run_checks(
                Arc::downgrade(&st.members),
                st.client.clone(),
            ));
        }
        Ok(st)
    }

    /// Now, in the whole seconds of HTTP dates, from the configured clock: the `now`
    /// every cache decision is made at.
    pub fn now(&self) -> u64 {
        unix_seconds(self.cfg.clock.now())
    }

    /// The membership in force.
    pub fn membership(&self) -> Arc<Membership> {
        self.members.current()
    }

    /// Re-reads the `--config` file (flags still override it) and replaces the
    /// membership atomically; on any error the old one stays. Counted in
    /// `edge_config_reloads_total`.
    pub fn reload(&self) -> Result<Arc<Membership>, SettingsError> {
        if self.cfg.config.is_none() {
            return Err(SettingsError::NoFile);
        }
        let settings = Settings::load(&self.cfg).inspect_err(|_| {
            self.metrics.reloads_error.inc();
        })?;
        let next = self
            .members
            .replace(|current| Membership::new(&settings, &self.name, Some(current)));
        self.metrics.reloads_ok.inc();
        warn_if_not_listed(&next, &self.name);
        Ok(next)
    }

    /// Runs one round of health checks of every peer and upstream now, besides the
    /// periodic ones (a test drives the rise/fall state machine with it, round by round,
    /// instead of waiting for intervals).
    pub async fn check_health_now(&self) {
        probe::check_round(&self.membership(), &self.client).await;
    }

    /// Starts draining (SIGTERM / Ctrl-C): `/.edge/healthz` answers 503 and status
    /// reports unhealthy, so that checkers steer traffic elsewhere.
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// How long a waiter waits for a fill's response head. A fill may try several
    /// peers and upstreams in turn, each bounded by the connect and first-byte
    /// timeouts, and always publishes a head or a failure within `--fill-timeout`;
    /// this bound only guards against a fill that was lost.
    pub(crate) fn head_wait(&self) -> Duration {
        self.cfg.fill_timeout + Duration::from_secs(1)
    }
}

/// Logs when a peer list that is not empty leaves this edge out: it then owns no key.
fn warn_if_not_listed(m: &Membership, name: &str) {
    if !m.peers.is_empty() && !m.lists_self() {
        warn!(
            name,
            "this edge is not in its peer list: it owns no key and sends every miss to a peer"
        );
    }
}
