//! The playback clock: how much media is buffered ahead of the playhead, and when playback
//! starts, stalls and resumes. Pure accounting over wall-clock seconds since the session
//! began, so every transition is table-tested without sleeping.

use serde::Serialize;

/// Tolerance for comparing media times that are sums of segment durations.
const EPS: f64 = 1e-9;

/// Where playback is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PlayState {
    /// Waiting for the start-up threshold; the playhead has not moved yet.
    Startup,
    /// The playhead advances one media second per wall second.
    Playing,
    /// The buffer ran dry before the end; waiting for the resume threshold.
    Stalled,
    /// The playhead reached the end of the presentation.
    Ended,
}

/// One rebuffering event (start-up is not one).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stall {
    /// Wall seconds since the session began when the buffer ran dry.
    pub start_s: f64,
    /// When playback resumed; `None` while still stalled.
    pub end_s: Option<f64>,
}

/// Playback state of one session. Media is appended contiguously from time 0.
#[derive(Debug, Clone)]
pub struct Playback {
    startup_s: f64,
    resume_s: f64,
    media_end_s: f64,
    buffered_s: f64,
    position_s: f64,
    state: PlayState,
    now_s: f64,
    started_at: Option<f64>,
    stalls: Vec<Stall>,
}

impl Playback {
    /// A clock that starts playing once `startup_s` of media is buffered, resumes after a
    /// stall once `resume_s` is buffered, and ends at `media_end_s` (the presentation's
    /// duration; reaching it also starts or resumes playback whatever the thresholds).
    pub fn new(startup_s: f64, resume_s: f64, media_end_s: f64) -> Self {
        Self {
            startup_s,
            resume_s,
            media_end_s,
            buffered_s: 0.0,
            position_s: 0.0,
            state: PlayState::Startup,
            now_s: 0.0,
            started_at: None,
            stalls: Vec::new(),
        }
    }

    /// Lets wall time run to `now_s` (earlier times are ignored: the clock never runs back).
    /// A playing playhead that catches up with the buffer stalls, or ends at the end.
    pub fn advance(&mut self, now_s: f64) {
        let now_s = now_s.max(self.now_s);
        if self.state == PlayState::Playing {
            let ran = now_s - self.now_s;
            let ahead = self.buffered_s - self.position_s;
            if ran >= ahead {
                let dry_at = self.now_s + ahead;
                self.position_s = self.buffered_s;
                if self.all_buffered() {
                    self.state = PlayState::Ended;
                } else {
                    self.state = PlayState::Stalled;
                    self.stalls.push(Stall {
                        start_s: dry_at,
                        end_s: None,
                    });
                }
            } else {
                self.position_s += ran;
            }
        }
        self.now_s = now_s;
    }

    /// A segment of `seconds` of media finished arriving at `now_s`.
    pub fn add_media(&mut self, now_s: f64, seconds: f64) {
        self.advance(now_s);
        if self.state == PlayState::Ended {
            return;
        }
        self.buffered_s = (self.buffered_s + seconds).min(self.media_end_s);
        let level = self.level();
        let complete = self.all_buffered();
        match self.state {
            PlayState::Startup if level + EPS >= self.startup_s || complete => {
                self.state = PlayState::Playing;
                self.started_at = Some(self.now_s);
            }
            PlayState::Stalled if level + EPS >= self.resume_s || complete => {
                self.state = PlayState::Playing;
                if let Some(stall) = self.stalls.last_mut() {
                    stall.end_s = Some(self.now_s);
                }
            }
            _ => {}
        }
    }

    /// Sets the presentation's duration once the manifest has told it.
    pub fn set_media_end(&mut self, media_end_s: f64) {
        self.media_end_s = media_end_s;
    }

    fn all_buffered(&self) -> bool {
        self.buffered_s + EPS >= self.media_end_s
    }

    /// Media buffered ahead of the playhead, seconds.
    pub fn level(&self) -> f64 {
        self.buffered_s - self.position_s
    }

    pub fn state(&self) -> PlayState {
        self.state
    }

    /// Media time of the playhead, seconds: how much has been played.
    pub fn position(&self) -> f64 {
        self.position_s
    }

    /// Wall time at which playback first started.
    pub fn started_at(&self) -> Option<f64> {
        self.started_at
    }

    /// Rebuffering events so far; an open one ends at the last `advance`.
    pub fn stalls(&self) -> &[Stall] {
        &self.stalls
    }

    /// Seconds spent rebuffering up to the last `advance` (start-up excluded).
    pub fn stalled_s(&self) -> f64 {
        self.stalls
            .iter()
            .map(|s| s.end_s.unwrap_or(self.now_s) - s.start_s)
            // Not `sum`: a sum of no f64 is -0.0, which prints as a negative stall.
            .fold(0.0, |a, b| a + b)
    }

    /// The longest single rebuffering event up to the last `advance`, s (0 without any).
    pub fn longest_stall_s(&self) -> f64 {
        self.stalls
            .iter()
            .map(|s| s.end_s.unwrap_or(self.now_s) - s.start_s)
            .fold(0.0, f64::max)
    }

    /// Wall seconds until the buffer drains to `level` if nothing arrives; `None` when the
    /// playhead is not moving (start-up, stalled, ended), `Some(0)` when already there.
    pub fn time_until_level(&self, level: f64) -> Option<f64> {
        (self.state == PlayState::Playing).then(|| (self.level() - level).max(0.0))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Applies `(now, media seconds arriving)` steps; `0.0` media only advances the clock.
    fn run(steps: &[(f64, f64)]) -> Playback {
        let mut p = Playback::new(4.0, 2.0, 10.0);
        for &(now, media) in steps {
            if media > 0.0 {
                p.add_media(now, media);
            } else {
                p.advance(now);
            }
        }
        p
    }

    #[test]
    fn transitions_table() {
        // (steps, state, level, position, started_at, stall seconds, stalls)
        type Steps = &'static [(f64, f64)];
        type Case = (Steps, PlayState, f64, f64, Option<f64>, f64, usize);
        let cases: &[Case] = &[
            // Below the start-up threshold nothing moves.
            (
                &[(1.0, 2.0), (5.0, 0.0)],
                PlayState::Startup,
                2.0,
                0.0,
                None,
                0.0,
                0,
            ),
            // Starts when 4 s are in, then drains 1 s per s.
            (
                &[(1.0, 2.0), (2.0, 2.0), (3.5, 0.0)],
                PlayState::Playing,
                2.5,
                1.5,
                Some(2.0),
                0.0,
                0,
            ),
            // Runs dry at 5.0, stalled until 8.0 when 2 s (the resume threshold) arrive.
            (
                &[(1.0, 4.0), (8.0, 2.0)],
                PlayState::Playing,
                2.0,
                4.0,
                Some(1.0),
                3.0,
                1,
            ),
            // Still stalled: 1 s is below the resume threshold; the open stall counts to now.
            (
                &[(1.0, 4.0), (8.0, 1.0), (9.0, 0.0)],
                PlayState::Stalled,
                1.0,
                4.0,
                Some(1.0),
                4.0,
                1,
            ),
            // The whole presentation in one go starts playback below the threshold.
            (
                &[(0.5, 10.0), (20.0, 0.0)],
                PlayState::Ended,
                0.0,
                10.0,
                Some(0.5),
                0.0,
                0,
            ),
            // Reaching the end is not a stall.
            (
                &[(1.0, 6.0), (2.0, 4.0), (30.0, 0.0)],
                PlayState::Ended,
                0.0,
                10.0,
                Some(1.0),
                0.0,
                0,
            ),
        ];
        for (i, (steps, state, level, position, started, stalled, n)) in cases.iter().enumerate() {
            let p = run(steps);
            assert_eq!(p.state(), *state, "case {i}");
            assert!(
                (p.level() - level).abs() < 1e-9,
                "case {i}: level {}",
                p.level()
            );
            assert!(
                (p.position() - position).abs() < 1e-9,
                "case {i}: position {}",
                p.position()
            );
            assert_eq!(p.started_at(), *started, "case {i}");
            assert!(
                (p.stalled_s() - stalled).abs() < 1e-9,
                "case {i}: stalled {}",
                p.stalled_s()
            );
            assert_eq!(p.stalls().len(), *n, "case {i}");
        }
    }

    #[test]
    fn time_until_level_only_while_playing() {
        let mut p = Playback::new(2.0, 2.0, 100.0);
        assert_eq!(p.time_until_level(1.0), None);
        p.add_media(0.0, 6.0);
        assert_eq!(p.time_until_level(1.0), Some(5.0));
        assert_eq!(p.time_until_level(9.0), Some(0.0));
        p.advance(10.0);
        assert_eq!(p.state(), PlayState::Stalled);
        assert_eq!(p.time_until_level(1.0), None);
        assert_eq!(p.stalls()[0].start_s, 6.0);
        // An open stall counts up to now.
        assert_eq!(p.longest_stall_s(), 4.0);
        p.add_media(11.0, 3.0);
        p.advance(20.0);
        p.add_media(21.0, 3.0);
        assert_eq!(p.stalls().len(), 2);
        // 6 → 11 and 14 → 21.
        assert_eq!(p.longest_stall_s(), 7.0, "{:?}", p.stalls());
    }

    #[test]
    fn the_clock_never_runs_back() {
        let mut p = Playback::new(2.0, 2.0, 100.0);
        p.add_media(5.0, 4.0);
        p.advance(3.0);
        assert_eq!(p.level(), 4.0);
        p.advance(6.0);
        assert_eq!(p.level(), 3.0);
    }
}
