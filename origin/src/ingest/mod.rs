//! The library that takes any video file (issue 12 item 4): `LIB/NAME.mp4` (`.mov`,
//! `.m4v`, any case) becomes the asset `NAME`.
//!
//! - **Watching.** The library root is polled every `poll` (2 s): a new or changed file is
//!   built once it looks the same (size and modification time) across two polls, so a
//!   file still being copied is never read half-written.
//! - **Jobs.** One at a time, in order, on a blocking thread: the source is hashed, then
//!   `media::ladder` builds `LIB/NAME` (in a hidden folder renamed into place) with a
//!   `source.json` recording the file, its size, time and SHA-256. A progress line goes to
//!   the log at most every 5 s; progress and errors are in [`Ingest::status`] (the index
//!   page, the watch page, `/library/status`). A file that changes under its job cancels
//!   it; shutdown cancels the running job (its temporary folder is removed).
//! - **Restarts.** An asset whose `source.json` matches its file is not built again; one
//!   whose file changed while the origin was down is. A touched file whose content is
//!   unchanged only gets its record updated.
//! - **Never overwriting.** A folder `LIB/NAME` without a `source.json` of this file
//!   (someone's own packaged asset) is left alone and the file shows why.
//! - **Meanwhile** the asset's manifests answer 503 with `Retry-After`
//!   ([`Ingest::unavailable`]); a rebuild serves the previous build until the new one is
//!   renamed into place.
//!
//! Each poll also looks at every asset's build ([`crate::versions`]): a new one (built
//! here, or by `media` run by hand) gets its snapshot, and the `--edge`s are purged of
//! the asset when a purge token is set ([`purge`]).
//!
//! What to do with each file is decided by [`plan::step`], a pure function; this module
//! is the I/O around it.

pub mod job;
pub mod plan;
pub mod purge;
pub mod source;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use http_rules::SharedClock;
use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::error::OriginError;
use crate::paths::valid_component;
use crate::versions::Versions;
use job::{Activity, Job, Outcome};
use plan::{Command, Folder, Observation, State};
use purge::{PurgeConfig, Purger};

/// The least time between two progress lines of a job in the log.
const LOG_EVERY: Duration = Duration::from_secs(5);
/// How often replaced builds past their keeping time are removed.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// What `Retry-After` says while an asset is prepared, seconds.
const RETRY_AFTER_S: u32 = 5;

/// How the library is watched and built.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// The ladder dropped files are built with.
    pub ladder: media::Ladder,
    /// Its name as given (`default`, `small`, a list), recorded in `source.json`.
    pub ladder_name: String,
    /// Target segment duration, seconds.
    pub segment: f64,
    /// Time between two polls of the library; a file must look the same this long.
    pub poll: Duration,
    /// Build dropped video files (off: only watch the builds, for snapshots and purges).
    pub build: bool,
    /// Edges to purge when an asset gets a new build.
    pub purge: Option<PurgeConfig>,
}

impl IngestConfig {
    pub fn new(ladder: media::Ladder, ladder_name: &str) -> Self {
        Self {
            ladder,
            ladder_name: ladder_name.to_owned(),
            segment: 2.0,
            poll: Duration::from_secs(2),
            build: true,
            purge: None,
        }
    }
}

/// One dropped file on the pages and in `/library/status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceStatus {
    pub file: String,
    /// The asset it makes; `None` when its name cannot be one.
    pub asset: Option<String>,
    /// `waiting` (still changing), `queued`, `building`, `ready`, `failed`, `conflict`.
    pub state: &'static str,
    /// One line for people: `encoding 42 %`, the error, …
    pub message: String,
    /// How far its job is, 0–1, while it builds.
    pub progress: Option<f64>,
    /// Whether its asset can be played now (a rebuild plays the previous build).
    pub playable: bool,
}

/// The library's side of `/library/status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IngestStatus {
    /// Whether dropped files are built.
    pub building: bool,
    pub sources: Vec<SourceStatus>,
}

/// What is known of one file.
#[derive(Debug)]
struct Entry {
    asset: Option<String>,
    state: State,
    activity: Option<Activity>,
    /// Its asset folder exists (a build, or someone's own folder).
    folder_exists: bool,
}

#[derive(Debug, Default)]
struct Table {
    entries: BTreeMap<String, Entry>,
    queue: VecDeque<String>,
    /// The file whose job runs, and its cancel flag.
    running: Option<(String, media::Cancel)>,
}

#[derive(Debug)]
struct Inner {
    library: PathBuf,
    config: IngestConfig,
    clock: SharedClock,
    versions: Arc<Versions>,
    purger: Option<Purger>,
    table: Mutex<Table>,
    wake: Notify,
    stop: CancellationToken,
    last_sweep: Mutex<Option<Instant>>,
}

/// The ingest of one library. Dropping it stops the polls and cancels the running job.
#[derive(Debug)]
pub struct Ingest {
    inner: Arc<Inner>,
    worker: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update leaves the table consistent: a poisoned lock is still usable.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Ingest {
    /// Starts watching `library` on the current Tokio runtime: a poll every
    /// `config.poll` (the first at once) and the job worker. `clock` dates the polls
    /// (a file must look the same for `poll` of its time before it is built).
    pub fn start(
        library: &Path,
        config: IngestConfig,
        clock: SharedClock,
        versions: Arc<Versions>,
    ) -> Result<Self, String> {
        let purger = config.purge.clone().map(Purger::new).transpose()?;
        let inner = Arc::new(Inner {
            library: library.to_path_buf(),
            config,
            clock,
            versions,
            purger,
            table: Mutex::default(),
            wake: Notify::new(),
            stop: CancellationToken::new(),
            last_sweep: Mutex::new(None),
        });
        tokio::spawn(watch(Arc::clone(&inner)));
        let worker = tokio::spawn(work(Arc::clone(&inner)));
        Ok(Self {
            inner,
            worker: Mutex::new(Some(worker)),
        })
    }

    /// Polls the library now (besides the regular polls), and returns when the
    /// decisions are made.
    pub async fn poll(&self) {
        self.inner.poll().await;
    }

    /// Stops watching and cancels the running job, then waits (at most `limit`) for the
    /// job to end and clean up its temporary folder.
    pub async fn shutdown(&self, limit: Duration) {
        self.inner.shutdown();
        let worker = lock(&self.worker).take();
        if let Some(worker) = worker
            && tokio::time::timeout(limit, worker).await.is_err()
        {
            tracing::warn!("the ingest job did not stop in time");
        }
    }

    /// Every dropped file and where it stands.
    pub fn status(&self) -> IngestStatus {
        let table = lock(&self.inner.table);
        let sources = table
            .entries
            .iter()
            .map(|(file, entry)| source_status(&table, file, entry))
            .collect();
        IngestStatus {
            building: self.inner.config.build,
            sources,
        }
    }

    /// The status of the file that makes `asset`, if one does.
    pub fn asset_status(&self, asset: &str) -> Option<SourceStatus> {
        let table = lock(&self.inner.table);
        table
            .entries
            .iter()
            .find(|(_, e)| {
                e.asset.as_deref() == Some(asset) && !matches!(e.state, State::Conflict { .. })
            })
            .map(|(file, entry)| source_status(&table, file, entry))
    }

    /// Why `asset` cannot be played yet, when it is made from a dropped file that has no
    /// build yet: 503 with `Retry-After` while it is prepared, 404 with the reason when
    /// the file cannot be used.
    pub fn unavailable(&self, asset: &str) -> Option<OriginError> {
        let status = self.asset_status(asset)?;
        if status.playable {
            return None;
        }
        match status.state {
            "failed" => Some(OriginError::not_found(format!(
                "{asset} cannot be played: {}",
                status.message
            ))),
            "waiting" | "queued" | "building" => Some(OriginError::Unavailable {
                reason: format!("{asset} is being prepared: {}", status.message),
                retry_after: RETRY_AFTER_S,
            }),
            _ => None,
        }
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        self.inner.shutdown();
    }
}

fn source_status(table: &Table, file: &str, entry: &Entry) -> SourceStatus {
    let (state, message, progress) = match &entry.state {
        State::Settling { .. } => (
            "waiting",
            "waiting for the file to stop changing".to_owned(),
            None,
        ),
        State::Queued { .. } => {
            let ahead = table.queue.iter().position(|f| f == file).unwrap_or(0)
                + usize::from(table.running.is_some());
            let message = match ahead {
                0 => "queued".to_owned(),
                1 => "queued behind 1 other file".to_owned(),
                n => format!("queued behind {n} other files"),
            };
            ("queued", message, None)
        }
        State::Building { .. } => {
            let activity = entry.activity.unwrap_or(Activity::Reading(0.0));
            ("building", activity.to_string(), Some(activity.overall()))
        }
        State::Ready { .. } => ("ready", "ready".to_owned(), None),
        State::Failed { error, .. } => ("failed", error.clone(), None),
        State::Conflict { reason } => ("conflict", reason.clone(), None),
    };
    SourceStatus {
        file: file.to_owned(),
        asset: entry.asset.clone(),
        state,
        message,
        progress,
        playable: entry.folder_exists && !matches!(entry.state, State::Conflict { .. }),
    }
}

impl Inner {
    fn shutdown(&self) {
        self.stop.cancel();
        if let Some((_, cancel)) = &lock(&self.table).running {
            cancel.cancel();
        }
    }

    async fn poll(self: &Arc<Self>) {
        let now = self.clock.now();
        let library = self.library.clone();
        let build = self.config.build;
        let seen = tokio::task::spawn_blocking(move || look(&library, build)).await;
        let (files, assets) = match seen {
            Ok(Ok(seen)) => seen,
            Ok(Err(e)) => {
                tracing::warn!(library = %self.library.display(), error = %e, "cannot read the library");
                return;
            }
            Err(_) => return,
        };
        if build {
            self.decide(files, now);
        }
        for asset in &assets {
            self.versions.current(asset, now).await;
        }
        self.purge_replaced().await;
        let sweep_due = {
            let mut last = lock(&self.last_sweep);
            let due = last.is_none_or(|t| t.elapsed() >= SWEEP_EVERY);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if sweep_due {
            let versions = Arc::clone(&self.versions);
            let present: HashSet<String> = assets.into_iter().collect();
            let _ = tokio::task::spawn_blocking(move || versions.sweep(now, &present)).await;
        }
    }

    /// Applies the decisions for the files seen at `now`.
    fn decide(&self, files: Vec<Seen>, now: SystemTime) {
        let mut table = lock(&self.table);
        let present: HashSet<&str> = files.iter().map(|f| f.file.as_str()).collect();
        let gone: Vec<String> = table
            .entries
            .keys()
            .filter(|f| !present.contains(f.as_str()))
            .cloned()
            .collect();
        for file in gone {
            tracing::info!(file, "source file removed (its asset, if built, stays)");
            stop_job(&mut table, &file);
            table.entries.remove(&file);
        }
        for seen in files {
            let previous = table.entries.get(&seen.file).map(|e| &e.state);
            let (state, command) = match &seen.asset {
                Ok(asset) => plan::step(
                    previous,
                    &seen.file,
                    asset,
                    seen.observation,
                    &seen.folder,
                    now,
                    self.config.poll,
                ),
                Err(reason) => (
                    State::Conflict {
                        reason: reason.clone(),
                    },
                    previous
                        .is_some_and(|s| matches!(s, State::Queued { .. } | State::Building { .. }))
                        .then_some(Command::Cancel),
                ),
            };
            if previous != Some(&state) {
                log_change(&seen.file, &state);
            }
            match command {
                Some(Command::Enqueue) => table.queue.push_back(seen.file.clone()),
                Some(Command::Cancel) => stop_job(&mut table, &seen.file),
                None => {}
            }
            let building = matches!(state, State::Building { .. });
            let entry = table.entries.entry(seen.file.clone()).or_insert(Entry {
                asset: None,
                state: state.clone(),
                activity: None,
                folder_exists: false,
            });
            entry.asset = seen.asset.ok();
            entry.state = state;
            entry.folder_exists = seen.folder != Folder::Missing;
            if !building {
                entry.activity = None;
            }
        }
        drop(table);
        self.wake.notify_one();
    }

    async fn purge_replaced(&self) {
        let replaced = self.versions.take_replaced();
        if let Some(purger) = &self.purger {
            for build in replaced {
                purger.purge_asset(&build.asset).await;
            }
        }
    }
}

/// Drops `file`'s queued job, or cancels its running one.
fn stop_job(table: &mut Table, file: &str) {
    table.queue.retain(|f| f != file);
    if let Some((running, cancel)) = &table.running
        && running == file
    {
        cancel.cancel();
    }
}

fn log_change(file: &str, state: &State) {
    match state {
        State::Settling { .. } => {
            tracing::info!(file, "source file seen: waiting until it stops changing");
        }
        State::Queued { .. } => tracing::info!(file, "source file queued for its ladder"),
        State::Ready { .. } => tracing::info!(file, "asset up to date with its source file"),
        State::Conflict { reason } => tracing::warn!(file, "{reason}"),
        State::Building { .. } | State::Failed { .. } => {}
    }
}

/// One video file as a poll saw it.
#[derive(Debug)]
struct Seen {
    file: String,
    asset: Result<String, String>,
    observation: Observation,
    folder: Folder,
}

/// Reads the library: its video files (when `build`) with their asset folders, and the
/// names of its asset folders.
fn look(library: &Path, build: bool) -> std::io::Result<(Vec<Seen>, Vec<String>)> {
    let mut files = Vec::new();
    if build {
        let scanned = source::scan(library)?;
        let names: Vec<String> = scanned.iter().map(|(f, _)| f.clone()).collect();
        for (file, asset) in plan::asset_names(&names) {
            let Some((_, observation)) = scanned.iter().find(|(f, _)| *f == file) else {
                continue;
            };
            let folder = match &asset {
                Ok(asset) => source::folder(library, asset),
                Err(_) => Folder::Missing,
            };
            files.push(Seen {
                file,
                asset,
                observation: *observation,
                folder,
            });
        }
    }
    let mut assets = Vec::new();
    if let Ok(entries) = std::fs::read_dir(library) {
        for entry in entries.flatten() {
            if let Some(name) = entry.file_name().to_str()
                && valid_component(name)
                && entry.path().is_dir()
            {
                assets.push(name.to_owned());
            }
        }
    }
    assets.sort();
    Ok((files, assets))
}

/// Polls every `poll` until stopped.
async fn watch(inner: Arc<Inner>) {
    let mut ticker = tokio::time::interval(inner.config.poll);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = inner.stop.cancelled() => break,
            _ = ticker.tick() => inner.poll().await,
        }
    }
}

/// Runs the queued jobs one at a time until stopped.
async fn work(inner: Arc<Inner>) {
    loop {
        let next = next_job(&inner);
        let Some(job) = next else {
            tokio::select! {
                () = inner.stop.cancelled() => break,
                () = inner.wake.notified() => continue,
            }
        };
        if inner.stop.is_cancelled() {
            break;
        }
        tracing::info!(file = %job.file, asset = %job.asset, "building the ladder");
        let started = Instant::now();
        let progress = progress_reporter(Arc::clone(&inner), job.file.clone(), job.asset.clone());
        let running = job.clone();
        let outcome = tokio::task::spawn_blocking(move || running.run(&progress))
            .await
            .unwrap_or_else(|_| Outcome::Failed("the ladder job panicked".into()));
        let built = matches!(outcome, Outcome::Built(_));
        finish_job(&inner, &job, outcome, started);
        if built {
            // The new build's snapshot now, so the first request does not wait for it,
            // and the edges forget the previous one.
            inner.versions.current(&job.asset, inner.clock.now()).await;
            inner.purge_replaced().await;
        }
    }
}

/// Takes the next queued job, marking its file as building.
fn next_job(inner: &Inner) -> Option<Job> {
    let mut table = lock(&inner.table);
    while let Some(file) = table.queue.pop_front() {
        let Some(entry) = table.entries.get_mut(&file) else {
            continue;
        };
        let (State::Queued { observation }, Some(asset)) = (&entry.state, &entry.asset) else {
            continue;
        };
        let job = Job {
            library: inner.library.clone(),
            file: file.clone(),
            asset: asset.clone(),
            observation: *observation,
            ladder: inner.config.ladder.clone(),
            ladder_name: inner.config.ladder_name.clone(),
            segment: inner.config.segment,
            cancel: media::Cancel::new(),
        };
        entry.state = State::Building {
            observation: *observation,
        };
        entry.activity = Some(Activity::Reading(0.0));
        table.running = Some((file, job.cancel.clone()));
        return Some(job);
    }
    None
}

/// The progress callback of a job: records the activity for the pages, and logs a line
/// at most every [`LOG_EVERY`].
fn progress_reporter(
    inner: Arc<Inner>,
    file: String,
    asset: String,
) -> impl Fn(Activity) + Send + Sync + 'static {
    let last_line = Mutex::new(Instant::now());
    move |activity| {
        if let Some(entry) = lock(&inner.table).entries.get_mut(&file)
            && matches!(entry.state, State::Building { .. })
        {
            entry.activity = Some(activity);
        }
        let mut last = lock(&last_line);
        if last.elapsed() >= LOG_EVERY {
            *last = Instant::now();
            tracing::info!(asset, "{activity}");
        }
    }
}

/// Records how a job ended.
fn finish_job(inner: &Inner, job: &Job, outcome: Outcome, started: Instant) {
    let mut table = lock(&inner.table);
    if table.running.as_ref().is_some_and(|(f, _)| *f == job.file) {
        table.running = None;
    }
    let Some(entry) = table.entries.get_mut(&job.file) else {
        return;
    };
    // Only a job still wanted changes its file's state: one cancelled because the file
    // changed or went away was already replaced by the decision that cancelled it.
    let current =
        matches!(entry.state, State::Building { observation } if observation == job.observation);
    if !current {
        return;
    }
    entry.activity = None;
    let observation = job.observation;
    entry.state = match outcome {
        Outcome::Built(summary) => {
            tracing::info!(
                asset = %job.asset,
                seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
                "asset built: {summary}"
            );
            entry.folder_exists = true;
            State::Ready { observation }
        }
        Outcome::Unchanged => {
            tracing::info!(file = %job.file, "source touched, content unchanged: not rebuilt");
            State::Ready { observation }
        }
        Outcome::Failed(error) => {
            tracing::warn!(file = %job.file, "cannot build the asset: {error}");
            State::Failed { observation, error }
        }
        // Shutdown: built again at the next start.
        Outcome::Cancelled => State::Settling {
            observation,
            since: inner.clock.now(),
        },
    };
}
