//! What to do with each video file of the library: pure decisions over what a poll saw
//! (the file, the folder of its asset, what was decided before, the time), with table
//! tests. The scheduling around them (polling, the queue, the job) is `super`'s I/O.

use std::time::{Duration, SystemTime};

/// Extensions of the files that become assets (compared case-insensitively).
pub const VIDEO_EXTENSIONS: [&str; 3] = ["mp4", "mov", "m4v"];

/// What a poll sees of a file: enough to tell that it changed, without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    pub size: u64,
    pub modified: SystemTime,
}

/// The folder `LIB/NAME` of a file's asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Folder {
    Missing,
    /// Built by the ingest from the source `file` as it was then (its `source.json`).
    Built {
        file: String,
        observation: Observation,
    },
    /// Something else: an asset packaged otherwise (no `source.json`), or not a folder.
    Foreign,
}

/// Where a file stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Seen like this since `since`; built once it stays so for a settling time (a file
    /// still being copied keeps changing).
    Settling {
        observation: Observation,
        since: SystemTime,
    },
    /// Waiting for the one job slot.
    Queued { observation: Observation },
    /// Its ladder is being built.
    Building { observation: Observation },
    /// Its asset is built from it as it is.
    Ready { observation: Observation },
    /// This version of the file cannot be used; tried again once it changes.
    Failed {
        observation: Observation,
        error: String,
    },
    /// It cannot become its asset (a folder of that name made otherwise, a bad or taken
    /// name): shown, never built, never overwriting anything.
    Conflict { reason: String },
}

impl State {
    /// The file's version a job is queued or running for.
    fn active(&self) -> Option<Observation> {
        match self {
            Self::Queued { observation } | Self::Building { observation } => Some(*observation),
            _ => None,
        }
    }
}

/// What the scheduler must do besides recording the new state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Put the file's job in the queue.
    Enqueue,
    /// Drop its queued job, or cancel the running one.
    Cancel,
}

/// The asset name a file in the library root makes, if it is a video file by its
/// extension; hidden files (a copy in progress, `.DS_Store`) are not.
pub fn source_asset(file: &str) -> Option<&str> {
    if file.starts_with('.') {
        return None;
    }
    let (stem, extension) = file.rsplit_once('.')?;
    VIDEO_EXTENSIONS
        .iter()
        .any(|e| extension.eq_ignore_ascii_case(e))
        .then_some(stem)
}

/// The asset each video file makes, or why it cannot: its name must be a valid asset
/// name, and when two files make one name (`film.mp4`, `film.mov`) the first in name
/// order has it. `files` are names in the library root, any order.
pub fn asset_names(files: &[String]) -> Vec<(String, Result<String, String>)> {
    let mut sorted: Vec<&String> = files.iter().collect();
    sorted.sort();
    let mut taken: Vec<(&str, &str)> = Vec::new();
    let mut out = Vec::new();
    for file in sorted {
        let Some(stem) = source_asset(file) else {
            continue;
        };
        let name = if media::asset::check_asset_name(stem).is_err() {
            let suggestion: String = stem
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                        c
                    } else {
                        '-'
                    }
                })
                .take(100)
                .collect();
            Err(format!(
                "{file}: an asset name may only have letters, digits, '-', '_' and '.' \
                 (at most 100); rename the file, e.g. to {suggestion}{}",
                &file[stem.len()..]
            ))
        } else if let Some((first, _)) = taken.iter().find(|(_, n)| *n == stem) {
            Err(format!("{file}: {first} already makes the asset {stem}"))
        } else {
            taken.push((file, stem));
            Ok(stem.to_owned())
        };
        out.push((file.clone(), name));
    }
    out
}

/// The next state of `file` (making asset `asset`), seen as `seen` with its folder as
/// `folder` at `now`, after `previous` (`None` for a file not known before: new, or the
/// origin just started). A file must look the same for `settle` before it is built.
pub fn step(
    previous: Option<&State>,
    file: &str,
    asset: &str,
    seen: Observation,
    folder: &Folder,
    now: SystemTime,
    settle: Duration,
) -> (State, Option<Command>) {
    let active = previous.and_then(State::active);
    let cancel = active.map(|_| Command::Cancel);
    let conflict = match folder {
        Folder::Foreign => Some(format!(
            "{asset}/ exists and was not built from {file}: it is left as it is; \
             rename the file or move the folder away"
        )),
        Folder::Built { file: other, .. } if other != file => Some(format!(
            "{asset}/ was built from {other}, not {file}: rename one of them"
        )),
        _ => None,
    };
    if let Some(reason) = conflict {
        return (State::Conflict { reason }, cancel);
    }
    let settling = State::Settling {
        observation: seen,
        since: now,
    };
    match (previous, active) {
        // A job runs or waits for this very version: let it.
        (Some(state), Some(observation)) if observation == seen => (state.clone(), None),
        // Changed under its job: stop it, and wait until the file is still again.
        (_, Some(_)) => (settling, cancel),
        _ if matches!(folder, Folder::Built { observation, .. } if *observation == seen) => {
            (State::Ready { observation: seen }, None)
        }
        (Some(State::Failed { observation, .. }), _) if *observation == seen => {
            (previous.cloned().unwrap_or(settling), None)
        }
        (Some(State::Settling { observation, since }), _) if *observation == seen => {
            if now.duration_since(*since).unwrap_or_default() >= settle {
                (State::Queued { observation: seen }, Some(Command::Enqueue))
            } else {
                (previous.cloned().unwrap_or(settling), None)
            }
        }
        _ => (settling, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTLE: Duration = Duration::from_secs(2);

    fn t(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000) + Duration::from_millis(ms)
    }

    fn seen(size: u64) -> Observation {
        Observation {
            size,
            modified: t(size),
        }
    }

    fn built(size: u64) -> Folder {
        Folder::Built {
            file: "film.mp4".into(),
            observation: seen(size),
        }
    }

    fn settling(size: u64, since: u64) -> State {
        State::Settling {
            observation: seen(size),
            since: t(since),
        }
    }

    #[test]
    fn decisions_for_each_file_and_folder() {
        use Command::{Cancel, Enqueue};
        let queued = |s| State::Queued {
            observation: seen(s),
        };
        let building = |s| State::Building {
            observation: seen(s),
        };
        let ready = |s| State::Ready {
            observation: seen(s),
        };
        let failed = |s| State::Failed {
            observation: seen(s),
            error: "bad".into(),
        };
        let conflict = |reason: &str| State::Conflict {
            reason: reason.into(),
        };
        let foreign = "film/ exists and was not built from film.mp4: it is left as it is; \
                       rename the file or move the folder away";
        let other = "film/ was built from film.mov, not film.mp4: rename one of them";
        let from_mov = Folder::Built {
            file: "film.mov".into(),
            observation: seen(1),
        };
        // (previous, seen size, folder, now ms, next state, command, why)
        type Row = (
            Option<State>,
            u64,
            Folder,
            u64,
            State,
            Option<Command>,
            &'static str,
        );
        let rows: Vec<Row> = vec![
            (
                None,
                1,
                Folder::Missing,
                0,
                settling(1, 0),
                None,
                "a new file waits",
            ),
            (
                Some(settling(1, 0)),
                1,
                Folder::Missing,
                1999,
                settling(1, 0),
                None,
                "not still for long enough",
            ),
            (
                Some(settling(1, 0)),
                1,
                Folder::Missing,
                2000,
                queued(1),
                Some(Enqueue),
                "still across two polls: built",
            ),
            (
                Some(settling(1, 0)),
                2,
                Folder::Missing,
                2000,
                settling(2, 2000),
                None,
                "still being copied",
            ),
            (
                None,
                1,
                built(1),
                0,
                ready(1),
                None,
                "a restart does not rebuild an unchanged source",
            ),
            (
                None,
                2,
                built(1),
                0,
                settling(2, 0),
                None,
                "changed while the origin was down",
            ),
            (
                Some(ready(1)),
                2,
                built(1),
                500,
                settling(2, 500),
                None,
                "changed while it runs",
            ),
            (
                Some(settling(2, 0)),
                2,
                built(1),
                2000,
                queued(2),
                Some(Enqueue),
                "rebuilt once still",
            ),
            (
                Some(queued(1)),
                1,
                Folder::Missing,
                9000,
                queued(1),
                None,
                "waits its turn",
            ),
            (
                Some(building(1)),
                1,
                Folder::Missing,
                9000,
                building(1),
                None,
                "builds",
            ),
            (
                Some(building(2)),
                2,
                built(1),
                9000,
                building(2),
                None,
                "rebuilds, the old build served meanwhile",
            ),
            (
                Some(building(1)),
                2,
                Folder::Missing,
                9000,
                settling(2, 9000),
                Some(Cancel),
                "changed under its job",
            ),
            (
                Some(queued(1)),
                2,
                Folder::Missing,
                9000,
                settling(2, 9000),
                Some(Cancel),
                "changed in the queue",
            ),
            (
                Some(failed(1)),
                1,
                Folder::Missing,
                9000,
                failed(1),
                None,
                "a failure stays until the file changes",
            ),
            (
                Some(failed(1)),
                2,
                Folder::Missing,
                9000,
                settling(2, 9000),
                None,
                "a changed file is tried again",
            ),
            (
                None,
                1,
                Folder::Foreign,
                0,
                conflict(foreign),
                None,
                "someone's own folder is never overwritten",
            ),
            (
                Some(building(1)),
                1,
                Folder::Foreign,
                0,
                conflict(foreign),
                Some(Cancel),
                "a folder made meanwhile stops the job",
            ),
            (
                None,
                1,
                from_mov,
                0,
                conflict(other),
                None,
                "built from another file",
            ),
            (
                Some(ready(1)),
                1,
                Folder::Missing,
                500,
                settling(1, 500),
                None,
                "a deleted asset is built again",
            ),
            (
                Some(conflict(foreign)),
                1,
                Folder::Missing,
                500,
                settling(1, 500),
                None,
                "the folder moved away",
            ),
        ];
        for (previous, size, folder, now, want, command, why) in rows {
            let got = step(
                previous.as_ref(),
                "film.mp4",
                "film",
                seen(size),
                &folder,
                t(now),
                SETTLE,
            );
            assert_eq!(got, (want, command), "{why}");
        }
    }

    #[test]
    fn video_files_and_their_asset_names() {
        for (file, asset) in [
            ("film.mp4", Some("film")),
            ("Film.MOV", Some("Film")),
            ("clip.m4v", Some("clip")),
            ("a.b.mp4", Some("a.b")),
            ("notes.txt", None),
            ("film", None),
            (".film.mp4", None),
            ("film.mp4.part", None),
        ] {
            assert_eq!(source_asset(file), asset, "{file}");
        }
        let files: Vec<String> = ["film.mov", "b.txt", "My Film.mp4", "film.mp4", "good.m4v"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let names = asset_names(&files);
        assert_eq!(
            names,
            [
                (
                    "My Film.mp4".to_owned(),
                    Err(
                        "My Film.mp4: an asset name may only have letters, digits, '-', '_' \
                         and '.' (at most 100); rename the file, e.g. to My-Film.mp4"
                            .to_owned()
                    )
                ),
                ("film.mov".to_owned(), Ok("film".to_owned())),
                (
                    "film.mp4".to_owned(),
                    Err("film.mp4: film.mov already makes the asset film".to_owned())
                ),
                ("good.m4v".to_owned(), Ok("good".to_owned())),
            ]
        );
    }
}
