//! One ingest job, on a blocking thread: hash the source, and build its ladder with
//! `media::ladder` into `LIB/NAME` unless the asset there is already built from this
//! very content.

use std::path::PathBuf;

use http_rules::report::error_chain;
use media::{Cancel, LadderOptions, MediaError, Progress};

use crate::ingest::plan::{Folder, Observation};
use crate::ingest::source::{SourceRecord, built_record, content_hash, folder, rewrite_record};
use crate::versions::SOURCE_JSON;

/// What a job is doing, for the pages and the log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activity {
    /// Hashing the source (the fraction read).
    Reading(f64),
    /// Building the ladder.
    Ladder(Progress),
}

impl Activity {
    /// The job's progress as one fraction, for a progress bar: reading is the first 5 %,
    /// then `media`'s stages (probing, encoding, audio, packaging).
    pub fn overall(&self) -> f64 {
        use media::Stage;
        let (from, to, fraction) = match *self {
            Self::Reading(f) => (0.0, 0.05, f),
            Self::Ladder(Progress { stage, fraction }) => match stage {
                Stage::Probing => (0.05, 0.06, fraction),
                Stage::Encoding => (0.06, 0.92, fraction),
                Stage::Audio => (0.92, 0.97, fraction),
                Stage::Packaging => (0.97, 1.0, fraction),
            },
        };
        from + (to - from) * fraction.clamp(0.0, 1.0)
    }
}

impl std::fmt::Display for Activity {
    /// `reading the source 40 %`, `encoding 42 %`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Reading(fraction) => write!(
                f,
                "reading the source {:.0} %",
                (fraction.clamp(0.0, 1.0) * 100.0).floor()
            ),
            Self::Ladder(progress) => progress.fmt(f),
        }
    }
}

/// One job.
#[derive(Debug, Clone)]
pub struct Job {
    pub library: PathBuf,
    pub file: String,
    pub asset: String,
    /// The file's version the job was queued for.
    pub observation: Observation,
    pub ladder: media::Ladder,
    pub ladder_name: String,
    pub segment: f64,
    pub cancel: Cancel,
}

/// How a job ended.
#[derive(Debug)]
pub enum Outcome {
    /// The asset was built (the report's one-line summary).
    Built(String),
    /// The source was touched but its content is the asset's: only its record changed.
    Unchanged,
    /// One line saying why the file cannot be used.
    Failed(String),
    /// Cancelled (shutdown, or the file changed under the job).
    Cancelled,
}

impl Job {
    /// Runs the job; `progress` is called often (throttle what it logs).
    pub fn run(&self, progress: &(dyn Fn(Activity) + Sync)) -> Outcome {
        let path = self.library.join(&self.file);
        let sha256 = match content_hash(
            &path,
            self.observation.size,
            |f| progress(Activity::Reading(f)),
            || self.cancel.is_cancelled(),
        ) {
            Ok(sha) => sha,
            Err(_) if self.cancel.is_cancelled() => return Outcome::Cancelled,
            Err(e) => return Outcome::Failed(format!("{}: {e}", self.file)),
        };
        let record = SourceRecord::new(
            &self.file,
            self.observation,
            sha256,
            self.ladder_name.clone(),
        );
        match folder(&self.library, &self.asset) {
            // Made by hand while the job waited: never overwritten.
            Folder::Foreign => {
                return Outcome::Failed(format!(
                    "{}/ exists and was not built from {}: it is left as it is",
                    self.asset, self.file
                ));
            }
            // Touched, content unchanged: only the record changes.
            Folder::Built { file, .. }
                if file == self.file
                    && built_record(&self.library, &self.asset)
                        .is_some_and(|built| built.sha256 == record.sha256) =>
            {
                return match rewrite_record(&self.library, &self.asset, &record) {
                    Ok(()) => Outcome::Unchanged,
                    Err(e) => {
                        Outcome::Failed(format!("cannot update {}/{SOURCE_JSON}: {e}", self.asset))
                    }
                };
            }
            _ => {}
        }
        let options = LadderOptions {
            segment: self.segment,
            cancel: self.cancel.clone(),
            extra_files: vec![(SOURCE_JSON.to_owned(), record.to_json())],
            ..LadderOptions::new(self.ladder.clone())
        };
        match media::ladder(&path, &self.library, &self.asset, &options, |p| {
            progress(Activity::Ladder(p));
        }) {
            Ok(report) => Outcome::Built(report.to_string()),
            Err(MediaError::Cancelled) => Outcome::Cancelled,
            // Named by the file alone: the pages show it beside the library's name.
            Err(MediaError::Input { reason, .. }) => {
                Outcome::Failed(format!("{}: {reason}", self.file))
            }
            Err(e) => Outcome::Failed(error_chain(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overall_progress_follows_the_stages() {
        use media::Stage;
        let ladder = |stage, fraction| Activity::Ladder(Progress { stage, fraction });
        let rows = [
            (Activity::Reading(0.0), 0.0, "reading the source 0 %"),
            (Activity::Reading(1.0), 0.05, "reading the source 100 %"),
            (ladder(Stage::Encoding, 0.5), 0.49, "encoding 50 %"),
            (ladder(Stage::Packaging, 1.0), 1.0, "packaging 100 %"),
        ];
        for (activity, overall, text) in rows {
            assert!((activity.overall() - overall).abs() < 1e-9, "{activity}");
            assert_eq!(activity.to_string(), text);
        }
    }
}
