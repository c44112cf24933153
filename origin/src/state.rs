//! What the routes share: the library and its file store, the live channels, content
//! steering, the metrics, and the clock every time-dependent answer reads.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use http_rules::{SharedClock, SystemClock};

use crate::library::Library;
use crate::live::LiveChannels;
use crate::metrics::Metrics;
use crate::steering::{Steering, SteeringConfig, SteeringError};
use crate::store::{FileStore, StoreLimits};

/// What the server needs to know.
#[derive(Debug, Clone)]
pub struct OriginConfig {
    /// The library folder (one sub-folder per asset).
    pub library: PathBuf,
    /// A folder laid out like `node_modules` holding hls.js, dashjs and shaka-player, served
    /// under `/lib/` for the watch page; `None` when there is none.
    pub web_libs: Option<PathBuf>,
    pub store: StoreLimits,
}

/// Shared state of the routes.
#[derive(Debug, Clone)]
pub struct AppState {
    library: Library,
    store: FileStore,
    web_libs: Option<Arc<Path>>,
    metrics: Arc<Metrics>,
    clock: SharedClock,
    live: Arc<LiveChannels>,
    steering: Option<Arc<Steering>>,
}

impl AppState {
    /// A state on the system clock, without live channels or steering.
    pub fn new(config: &OriginConfig) -> Self {
        Self {
            library: Library::new(&config.library),
            store: FileStore::new(config.store),
            web_libs: config.web_libs.as_deref().map(Arc::from),
            metrics: Arc::new(Metrics::default()),
            clock: SystemClock::shared(),
            live: Arc::new(LiveChannels::default()),
            steering: None,
        }
    }

    /// The same state reading the time from `clock` (live windows, steering windows and
    /// probes, `/time`, page dates). Set it before [`AppState::with_steering`], which
    /// starts steering on the clock the state has then.
    pub fn with_clock(self, clock: SharedClock) -> Self {
        Self { clock, ..self }
    }

    /// The same state serving `live` channels too (see [`LiveChannels::load`]).
    pub fn with_live(self, live: LiveChannels) -> Self {
        Self {
            live: Arc::new(live),
            ..self
        }
    }

    /// The same state writing an access log to `path` (see [`crate::metrics::AccessLog`]).
    pub fn with_access_log(self, path: &Path) -> std::io::Result<Self> {
        self.metrics.open_access_log(path)?;
        Ok(self)
    }

    /// The same state steering players to `config`'s edges (see [`crate::steering`]): it
    /// starts probing them on the current Tokio runtime, until the last clone of the state
    /// is dropped.
    pub fn with_steering(self, config: SteeringConfig) -> Result<Self, SteeringError> {
        Ok(Self {
            steering: Some(Steering::start(config, Arc::clone(&self.clock))?),
            ..self
        })
    }

    pub fn library(&self) -> &Library {
        &self.library
    }

    pub fn live(&self) -> &LiveChannels {
        &self.live
    }

    pub fn steering(&self) -> Option<&Steering> {
        self.steering.as_deref()
    }

    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    pub(crate) fn store(&self) -> &FileStore {
        &self.store
    }

    pub(crate) fn web_libs(&self) -> Option<&Path> {
        self.web_libs.as_deref()
    }

    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
}
