//! The watch page's player libraries (hls.js, dash.js, Shaka) on a first run.
//!
//! They are third-party code, so they are not in the repository: the origin's first start
//! installs them with `npm ci` from the lockfile committed in `origin/web/` (the versions
//! the browser suite pins) into `LIB/.web-libs/`, in the background, as it builds the
//! sample; later starts find them there. Without `npm` the log and the watch page say what
//! to install, and the page plays natively where the browser can. `--web-libs DIR` (a
//! `node_modules` folder) replaces all of this.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::Serialize;

/// The folder under the library the libraries are installed in.
pub const WEB_LIBS_DIR: &str = ".web-libs";
/// The committed manifest and lockfile `npm ci` installs from.
pub const PACKAGE_JSON: &str = include_str!("../web/package.json");
pub const PACKAGE_LOCK: &str = include_str!("../web/package-lock.json");
/// Written after a successful install: the lockfile it installed.
const INSTALLED: &str = ".installed-lock.json";
/// The longest `npm ci` may take (it downloads about 5 MB).
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);

/// Player libraries: the URL name under `/lib/` and where npm puts the browser build
/// (first existing candidate wins; dash.js 5 moved its bundle under `modern/umd`).
pub const LIBS: &[(&str, &[&str])] = &[
    ("hls.js", &["hls.js/dist/hls.min.js"]),
    (
        "dash.js",
        &[
            "dashjs/dist/modern/umd/dash.all.min.js",
            "dashjs/dist/dash.all.min.js",
        ],
    ),
    ("shaka.js", &["shaka-player/dist/shaka-player.compiled.js"]),
];

/// Where the libraries stand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum WebLibsStatus {
    /// None configured (tests, embedders).
    Off,
    /// A folder given with `--web-libs`.
    Given {
        folder: PathBuf,
    },
    /// `npm ci` is running.
    Installing {
        folder: PathBuf,
    },
    Installed {
        folder: PathBuf,
    },
    /// No `npm` to install them with.
    NoNpm,
    /// `npm ci` failed; the last line it printed.
    Failed {
        error: String,
    },
}

impl WebLibsStatus {
    /// What the watch page tells a person whose libraries are missing.
    pub fn advice(&self) -> String {
        match self {
            Self::Off => "The origin was started without player libraries: the `origin` \
                          binary installs them with npm ci unless told not to, or give it \
                          --web-libs with a node_modules folder that has them."
                .into(),
            Self::Given { folder } => format!(
                "{} holds no such library (give --web-libs a node_modules folder with \
                 hls.js, dashjs and shaka-player).",
                folder.display()
            ),
            Self::Installing { .. } => {
                "The origin is installing them (npm ci, in the background): reload in a \
                 minute."
                    .into()
            }
            Self::Installed { folder } => format!(
                "{} does not have it: remove that folder and restart the origin to install \
                 them again.",
                folder.display()
            ),
            Self::NoNpm => "npm was not found: install Node.js and npm (Debian: apt-get install \
                            npm) and restart the origin, or start it with --web-libs \
                            pointing at a node_modules folder that has them."
                .into(),
            Self::Failed { error } => format!(
                "npm ci failed ({error}); check the network and restart the origin, or start \
                 it with --web-libs."
            ),
        }
    }
}

/// The player libraries of one origin.
#[derive(Debug)]
pub struct WebLibs {
    /// The `node_modules` folder the libraries are (or will be) in.
    node_modules: Option<PathBuf>,
    status: Mutex<WebLibsStatus>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl WebLibs {
    fn with(node_modules: Option<PathBuf>, status: WebLibsStatus) -> Self {
        Self {
            node_modules,
            status: Mutex::new(status),
            task: Mutex::new(None),
        }
    }

    /// No libraries.
    pub fn off() -> Self {
        Self::with(None, WebLibsStatus::Off)
    }

    /// The libraries of a `node_modules` folder given by the operator.
    pub fn given(node_modules: &Path) -> Self {
        Self::with(
            Some(node_modules.to_path_buf()),
            WebLibsStatus::Given {
                folder: node_modules.to_path_buf(),
            },
        )
    }

    /// The libraries under `library/.web-libs`, installed there now with `npm` (the
    /// program to run) unless an earlier start did, on the current Tokio runtime.
    pub fn install(library: &Path, npm: PathBuf) -> std::sync::Arc<Self> {
        let folder = library.join(WEB_LIBS_DIR);
        let libs = std::sync::Arc::new(Self::with(
            Some(folder.join("node_modules")),
            WebLibsStatus::Installing {
                folder: folder.clone(),
            },
        ));
        let task = tokio::spawn({
            let libs = std::sync::Arc::clone(&libs);
            async move {
                let status = install(&folder, &npm).await;
                *lock(&libs.status) = status;
            }
        });
        *lock(&libs.task) = Some(task);
        libs
    }

    pub fn status(&self) -> WebLibsStatus {
        lock(&self.status).clone()
    }

    /// Stops an install in progress (its `npm` is killed).
    pub fn stop(&self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
    }

    /// Where the browser build of `name` (`hls.js`, `dash.js`, `shaka.js`) is, if there.
    pub async fn find(&self, name: &str) -> Option<PathBuf> {
        let dir = self.node_modules.as_deref()?;
        let (_, candidates) = LIBS.iter().find(|(n, _)| *n == name)?;
        for candidate in *candidates {
            let path = dir.join(candidate);
            if tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_file()) {
                return Some(path);
            }
        }
        None
    }
}

impl Drop for WebLibs {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether every library's file is in `node_modules`.
fn complete(node_modules: &Path) -> bool {
    LIBS.iter().all(|(_, candidates)| {
        candidates
            .iter()
            .any(|candidate| node_modules.join(candidate).is_file())
    })
}

/// Installs the libraries into `folder` with `npm ci`, unless the same lockfile was
/// installed there already.
async fn install(folder: &Path, npm: &Path) -> WebLibsStatus {
    let installed = WebLibsStatus::Installed {
        folder: folder.to_path_buf(),
    };
    let done = tokio::fs::read_to_string(folder.join(INSTALLED))
        .await
        .is_ok_and(|lock| lock == PACKAGE_LOCK);
    if done && complete(&folder.join("node_modules")) {
        return installed;
    }
    let failed = |error: String| {
        tracing::warn!(
            folder = %folder.display(),
            "cannot install the watch page's player libraries: {error}; the page plays natively only"
        );
        WebLibsStatus::Failed { error }
    };
    let prepared = async {
        tokio::fs::create_dir_all(folder).await?;
        tokio::fs::write(folder.join("package.json"), PACKAGE_JSON).await?;
        tokio::fs::write(folder.join("package-lock.json"), PACKAGE_LOCK).await
    };
    if let Err(e) = prepared.await {
        return failed(e.to_string());
    }
    tracing::info!(
        folder = %folder.display(),
        "installing the watch page's player libraries (hls.js, dash.js, Shaka) with npm ci, \
         in the background"
    );
    let child = tokio::process::Command::new(npm)
        .args([
            "ci",
            "--omit=dev",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            "--loglevel=error",
        ])
        .current_dir(folder)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(
                "npm not found: the watch page plays natively only; install Node.js and npm \
                 (Debian: apt-get install npm) and restart the origin to get hls.js, dash.js \
                 and Shaka, or give --web-libs a node_modules folder that has them"
            );
            return WebLibsStatus::NoNpm;
        }
        Err(e) => return failed(format!("cannot run {}: {e}", npm.display())),
    };
    let output = match tokio::time::timeout(INSTALL_TIMEOUT, child.wait_with_output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => return failed(e.to_string()),
        Err(_) => return failed(format!("npm ci took over {} s", INSTALL_TIMEOUT.as_secs())),
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty() && !l.contains("A complete log"))
            .unwrap_or("no message")
            .chars()
            .take(300)
            .collect::<String>();
        return failed(format!("npm ci: {}: {last}", output.status));
    }
    if !complete(&folder.join("node_modules")) {
        return failed("npm ci left a library out".into());
    }
    if let Err(e) = tokio::fs::write(folder.join(INSTALLED), PACKAGE_LOCK).await {
        return failed(e.to_string());
    }
    tracing::info!(folder = %folder.display(), "player libraries installed");
    installed
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The watch page gets exactly what the browser suite tests: the same versions, the
    /// same tarballs.
    #[test]
    fn the_lockfile_pins_what_the_browser_suite_tests() {
        let ours: serde_json::Value = serde_json::from_str(PACKAGE_LOCK).unwrap();
        let suite: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/browser/package-lock.json")).unwrap();
        for package in ["hls.js", "dashjs", "shaka-player"] {
            let key = format!("node_modules/{package}");
            for field in ["version", "integrity"] {
                let mine = &ours["packages"][&key][field];
                assert!(mine.is_string(), "{key} {field}");
                assert_eq!(*mine, suite["packages"][&key][field], "{key} {field}");
            }
        }
    }

    #[tokio::test]
    async fn without_npm_it_says_what_to_install() {
        let dir = tempfile::tempdir().unwrap();
        let status = install(dir.path(), Path::new("/nonexistent/npm")).await;
        assert_eq!(status, WebLibsStatus::NoNpm);
        assert!(status.advice().contains("apt-get install npm"));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_failed_install_reports_npms_last_line_and_a_complete_one_is_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join(WEB_LIBS_DIR);
        let script = |name: &str, body: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            path
        };
        let failing = script(
            "npm-fails",
            "echo 'npm error network ETIMEDOUT' >&2; exit 1",
        );
        match install(&folder, &failing).await {
            WebLibsStatus::Failed { error } => {
                assert!(error.ends_with("npm error network ETIMEDOUT"), "{error}");
            }
            other => panic!("{other:?}"),
        }
        // It ran where the lockfile was written.
        assert_eq!(
            std::fs::read_to_string(folder.join("package-lock.json")).unwrap(),
            PACKAGE_LOCK
        );

        // An npm that installs (writes the three files) makes it installed, once.
        let files: Vec<String> = LIBS
            .iter()
            .map(|(_, candidates)| format!("node_modules/{}", candidates[0]))
            .collect();
        let body = files
            .iter()
            .map(|f| format!("mkdir -p \"$(dirname {f})\" && echo lib > {f}"))
            .collect::<Vec<_>>()
            .join("\n");
        let working = script("npm-works", &body);
        let installed = WebLibsStatus::Installed {
            folder: folder.clone(),
        };
        assert_eq!(install(&folder, &working).await, installed);
        // The next start finds them and runs nothing (this npm would fail).
        assert_eq!(install(&folder, &failing).await, installed);
    }
}
