//! Health of peers and upstreams: the rise/fall state machine (as in HAProxy's
//! `rise`/`fall`) as a pure function, and the per-target record the checks and the
//! request path update.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Active health check settings (reloadable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthParams {
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive successes that make an unhealthy target healthy.
    pub rise: u32,
    /// Consecutive failures that make a healthy target unhealthy.
    pub fall: u32,
}

impl Default for HealthParams {
    fn default() -> Self {
        HealthParams {
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            rise: 2,
            fall: 2,
        }
    }
}

/// Where a target stands. Counters saturate instead of wrapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthState {
    pub healthy: bool,
    pub successes: u32,
    pub failures: u32,
}

impl HealthState {
    /// Targets start healthy, so a fresh cluster serves at once instead of waiting
    /// `rise` intervals; a dead one is found by its first failures.
    pub const OPTIMISTIC: HealthState = HealthState {
        healthy: true,
        successes: 0,
        failures: 0,
    };

    /// The state after one more observation: a success resets the failure run and a
    /// failure the success run; `rise` successes in a row make the target healthy,
    /// `fall` failures in a row unhealthy (a `rise`/`fall` of 0 acts as 1).
    pub fn observe(self, ok: bool, rise: u32, fall: u32) -> HealthState {
        let (successes, failures) = if ok {
            (self.successes.saturating_add(1), 0)
        } else {
            (0, self.failures.saturating_add(1))
        };
        let healthy = if self.healthy {
            failures < fall.max(1)
        } else {
            successes >= rise.max(1)
        };
        HealthState {
            healthy,
            successes,
            failures,
        }
    }
}

/// A snapshot of one target's health, for status and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthView {
    pub state: HealthState,
    /// Round-trip time of the last active check; 0 before the first.
    pub last_check_ms: f64,
    /// Why the last observation failed; `None` after a success.
    pub last_error: Option<String>,
}

/// One target's health, shared by its checker and the request path.
#[derive(Debug)]
pub struct Health(Mutex<HealthView>);

impl Default for Health {
    fn default() -> Self {
        Health(Mutex::new(HealthView {
            state: HealthState::OPTIMISTIC,
            last_check_ms: 0.0,
            last_error: None,
        }))
    }
}

/// A change of health worth logging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Up,
    Down,
}

impl Health {
    fn lock(&self) -> MutexGuard<'_, HealthView> {
        // Every write leaves the record consistent, so a poisoned lock is still usable.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn view(&self) -> HealthView {
        self.lock().clone()
    }

    pub fn healthy(&self) -> bool {
        self.lock().state.healthy
    }

    /// Records an active check (`rtt` set) or a failure seen on the request path
    /// (`rtt` none); returns the transition, if any.
    pub fn record(
        &self,
        error: Option<String>,
        rtt: Option<Duration>,
        p: &HealthParams,
    ) -> Option<Transition> {
        let mut v = self.lock();
        let before = v.state.healthy;
        v.state = v.state.observe(error.is_none(), p.rise, p.fall);
        if let Some(rtt) = rtt {
            v.last_check_ms = rtt.as_secs_f64() * 1000.0;
        }
        v.last_error = error;
        match (before, v.state.healthy) {
            (false, true) => Some(Transition::Up),
            (true, false) => Some(Transition::Down),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rise_and_fall_table() {
        const UP: HealthState = HealthState::OPTIMISTIC;
        let down = HealthState {
            healthy: false,
            successes: 0,
            failures: 5,
        };
        let s = |healthy, successes, failures| HealthState {
            healthy,
            successes,
            failures,
        };
        // (start, observations, rise, fall, end)
        let table: &[(HealthState, &[bool], u32, u32, HealthState)] = &[
            (UP, &[], 2, 2, UP),
            (UP, &[true, true, true], 2, 2, s(true, 3, 0)),
            (UP, &[false], 2, 2, s(true, 0, 1)),
            (UP, &[false, false], 2, 2, s(false, 0, 2)),
            (UP, &[false, true, false], 2, 2, s(true, 0, 1)),
            (UP, &[false, false, false], 2, 3, s(false, 0, 3)),
            (UP, &[false], 2, 1, s(false, 0, 1)),
            (UP, &[false], 2, 0, s(false, 0, 1)),
            (down, &[true], 2, 2, s(false, 1, 0)),
            (down, &[true, true], 2, 2, s(true, 2, 0)),
            (down, &[true, false, true], 2, 2, s(false, 1, 0)),
            (down, &[true], 1, 2, s(true, 1, 0)),
            (down, &[true, true, true, false], 3, 2, s(true, 0, 1)),
            (s(true, u32::MAX, 0), &[true], 2, 2, s(true, u32::MAX, 0)),
        ];
        for (i, (start, obs, rise, fall, want)) in table.iter().enumerate() {
            let end = obs
                .iter()
                .fold(*start, |st, &ok| st.observe(ok, *rise, *fall));
            assert_eq!(end, *want, "row {i}");
        }
    }

    #[test]
    fn record_reports_transitions_and_the_last_error() {
        let h = Health::default();
        let p = HealthParams::default();
        assert_eq!(h.record(Some("refused".into()), None, &p), None);
        assert_eq!(
            h.record(Some("refused".into()), Some(Duration::from_millis(3)), &p),
            Some(Transition::Down)
        );
        assert!(!h.healthy());
        assert_eq!(h.record(None, Some(Duration::from_millis(1)), &p), None);
        assert_eq!(
            h.record(None, Some(Duration::from_millis(2)), &p),
            Some(Transition::Up)
        );
        let v = h.view();
        assert_eq!(
            v.state,
            HealthState {
                healthy: true,
                successes: 2,
                failures: 0
            }
        );
        assert!((v.last_check_ms - 2.0).abs() < 1e-9);
        assert_eq!(v.last_error, None, "a success clears the error");
    }
}
