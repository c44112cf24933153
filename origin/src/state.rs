//! What the routes share: the library and its file store, the live channels, content
//! steering, the metrics, and the clock every time-dependent answer reads.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http_rules::{SharedClock, SystemClock};

use crate::ingest::{Ingest, IngestConfig};
use crate::library::Library;
use crate::live::LiveChannels;
use crate::metrics::Metrics;
use crate::steering::manifests::ManifestCache;
use crate::steering::{Steering, SteeringConfig, SteeringError};
use crate::store::{FileStore, StoreLimits};
use crate::versions::Versions;
use crate::web_libs::WebLibs;

/// Memory for the VOD manifests written per build (a few kB each, two per asset).
const MANIFEST_CACHE_BYTES: u64 = 16 << 20;

/// What the server needs to know.
#[derive(Debug, Clone)]
pub struct OriginConfig {
    /// The library folder (one sub-folder per asset).
    pub library: PathBuf,
    /// A folder laid out like `node_modules` holding hls.js, dashjs and shaka-player, served
    /// under `/lib/` for the watch page; `None` for none (see
    /// [`AppState::with_web_libs`] for the libraries the origin installs itself).
    pub web_libs: Option<PathBuf>,
    pub store: StoreLimits,
    /// How long a replaced build of an asset stays servable under its versioned URLs
    /// (longer than the manifests' `max-age`, so cached manifests keep working).
    pub keep_replaced: Duration,
}

/// Two hours: twice the `max-age` of the VOD manifests that name a build.
pub const DEFAULT_KEEP_REPLACED: Duration = Duration::from_secs(2 * 3600);

impl OriginConfig {
    /// A configuration serving `library` with the defaults.
    pub fn new(library: impl Into<PathBuf>) -> Self {
        Self {
            library: library.into(),
            web_libs: None,
            store: StoreLimits::default(),
            keep_replaced: DEFAULT_KEEP_REPLACED,
        }
    }
}

/// Shared state of the routes.
#[derive(Debug, Clone)]
pub struct AppState {
    library: Library,
    store: FileStore,
    versions: Arc<Versions>,
    manifests: Arc<ManifestCache>,
    web_libs: Arc<WebLibs>,
    metrics: Arc<Metrics>,
    clock: SharedClock,
    live: Arc<LiveChannels>,
    steering: Option<Arc<Steering>>,
    ingest: Option<Arc<Ingest>>,
}

impl AppState {
    /// A state on the system clock, without live channels or steering.
    pub fn new(config: &OriginConfig) -> Self {
        Self {
            library: Library::new(&config.library),
            store: FileStore::new(config.store),
            versions: Arc::new(Versions::new(&config.library, config.keep_replaced)),
            manifests: Arc::new(ManifestCache::new(MANIFEST_CACHE_BYTES)),
            web_libs: Arc::new(
                config
                    .web_libs
                    .as_deref()
                    .map_or_else(WebLibs::off, WebLibs::given),
            ),
            metrics: Arc::new(Metrics::default()),
            clock: SystemClock::shared(),
            live: Arc::new(LiveChannels::default()),
            steering: None,
            ingest: None,
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

    /// The same state watching the library (see [`crate::ingest`]): dropped video files
    /// become assets, new builds get their snapshots (and purge edges). It starts on the
    /// current Tokio runtime, on the state's clock (set that first), and stops when the
    /// last clone of the state is dropped or [`Ingest::shutdown`] is called.
    pub fn with_ingest(self, config: IngestConfig) -> Result<Self, String> {
        let ingest = Ingest::start(
            self.library.root(),
            config,
            Arc::clone(&self.clock),
            Arc::clone(&self.versions),
        )?;
        Ok(Self {
            ingest: Some(Arc::new(ingest)),
            ..self
        })
    }

    /// The same state with the player libraries `web_libs` (see [`crate::web_libs`]).
    pub fn with_web_libs(self, web_libs: Arc<WebLibs>) -> Self {
        Self { web_libs, ..self }
    }

    /// The library watch, when started.
    pub fn ingest(&self) -> Option<&Ingest> {
        self.ingest.as_deref()
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

    /// The builds of the library's assets (versioned URLs).
    pub fn versions(&self) -> &Versions {
        &self.versions
    }

    /// The VOD manifests written per build.
    pub fn manifests(&self) -> &ManifestCache {
        &self.manifests
    }

    pub(crate) fn store(&self) -> &FileStore {
        &self.store
    }

    /// The watch page's player libraries.
    pub fn web_libs(&self) -> &WebLibs {
        &self.web_libs
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
}
