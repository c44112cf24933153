//! Live progress on stderr for `player play` and `player load` (hidden when stderr is
//! not a terminal).

use indicatif::{ProgressBar, ProgressStyle};

use crate::load::report::Sample;

use crate::session::Observer;
use crate::session::clock::PlayState;
use crate::session::summary::SegmentLog;

/// A spinner that shows the last segment, its rendition and the buffer.
#[derive(Debug)]
pub struct SessionProgress {
    bar: ProgressBar,
}

impl SessionProgress {
    pub fn new() -> Self {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        bar.set_message("loading the manifest");
        Self { bar }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Default for SessionProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl Observer for SessionProgress {
    fn segment(&self, log: &SegmentLog) {
        self.bar.set_message(format!(
            "segment {} at {} ({} kbit/s), {:.1} Mbit/s measured, buffer {:.1} s",
            log.index,
            log.rendition,
            log.bitrate_bps / 1000,
            log.throughput_bps / 1e6,
            log.buffer_after_s
        ));
    }

    fn state(&self, _from: PlayState, to: PlayState) {
        if to == PlayState::Stalled {
            self.bar.println("rebuffering");
        }
    }
}

/// A bar over the run's duration with the live figures of `player load`.
#[derive(Debug)]
pub struct LoadProgress {
    bar: ProgressBar,
}

impl LoadProgress {
    pub fn new(duration_s: f64) -> Self {
        let bar = ProgressBar::new(duration_s.ceil() as u64);
        bar.set_style(
            ProgressStyle::with_template("[{elapsed_precise}] {bar:30} {pos}/{len} s {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Self { bar }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl crate::load::Progress for LoadProgress {
    fn update(&self, s: &Sample, finished: usize, total: usize) {
        self.bar.set_position(s.t_s as u64);
        self.bar.set_message(format!(
            "active {} | rebuffering {} | mean {:.0} kbit/s | {:.0} req/s | {:.1} errors/s | done {finished}/{total}",
            s.active,
            s.rebuffering,
            s.mean_bitrate_bps / 1000.0,
            s.requests_per_s,
            s.errors_per_s
        ));
    }
}

/// A spinner for long computations (`player tune`, `player simulate --cv`): elapsed
/// time, `label`, and a message the caller updates. `total` is ignored beyond the
/// position shown; the caller finishes it.
pub fn steps(label: &str, total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed}] {prefix} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_prefix(label.to_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}
