//! Steered clients per edge, counted from the steering requests themselves: every player
//! asks again once a TTL, so the answers that named an edge over the last two TTLs count
//! its players, in fixed memory whatever the request rate.

use std::time::{Duration, SystemTime};

/// Slots of a [`Window`]: it spans two TTLs in quarter-TTL slots.
const SLOTS: u64 = 8;
pub const SLOTS_PER_TTL: u64 = 4;

/// The slot of `now` in windows counted since `epoch` with steering TTL `ttl` (at least a
/// second: [`crate::steering::SteeringConfig::validate`]). Offset so that a window never
/// reaches before slot 0; a clock set back before the epoch counts as the epoch.
pub fn slot_at(epoch: SystemTime, now: SystemTime, ttl: Duration) -> u64 {
    let width = ttl.as_secs_f64() / SLOTS_PER_TTL as f64;
    let elapsed = now.duration_since(epoch).unwrap_or_default().as_secs_f64();
    SLOTS + (elapsed / width) as u64
}

/// Steering answers that named one edge first, over the last two TTLs. A live client asks
/// once a TTL, so it is in the window twice: clients = answers / 2. Two TTLs rather than
/// one so that a client that asks a little late is still counted. Fixed memory, whatever
/// the request rate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Window {
    /// `(slot number, answers)`, slot `n` at index `n % SLOTS`.
    slots: [(u64, u32); SLOTS as usize],
}

impl Window {
    fn cell(&mut self, slot: u64) -> &mut (u64, u32) {
        &mut self.slots[(slot % SLOTS) as usize]
    }

    /// One answer at `slot` (a slot older than the window is ignored).
    pub fn add(&mut self, slot: u64) {
        let cell = self.cell(slot);
        if cell.0 < slot {
            *cell = (slot, 0);
        }
        if cell.0 == slot {
            cell.1 = cell.1.saturating_add(1);
        }
    }

    /// Removes one answer at `slot`; whether there was one.
    pub fn take(&mut self, slot: u64) -> bool {
        let cell = self.cell(slot);
        let there = cell.0 == slot && cell.1 > 0;
        if there {
            cell.1 -= 1;
        }
        there
    }

    /// Clients counted in the window that ends with slot `now`.
    pub fn clients(&self, now: u64) -> f64 {
        let answers: u32 = self
            .slots
            .iter()
            .filter(|(slot, _)| *slot <= now && now - slot < SLOTS)
            .map(|(_, n)| n)
            .sum();
        f64::from(answers) / 2.0
    }
}

/// Counts one answer at slot `now` that named edge `chosen` first, for a client that was on
/// `previous` (`None`: new). Each client weighs two answers, one this TTL and one the TTL
/// before, as a client that has been there all along does:
/// - a new client also gets the answer it would have had a TTL ago, so it counts as one
///   whole client at once (50 players starting together spread evenly);
/// - a client moved to another edge takes its answer of a TTL ago along, so the edge it
///   left stops counting it now rather than two TTLs later (without this, rebalancing
///   overshoots and swings back).
pub fn count_answer(windows: &mut [Window], now: u64, chosen: usize, previous: Option<usize>) {
    let Some(window) = windows.get_mut(chosen) else {
        return;
    };
    window.add(now);
    let earlier = now.saturating_sub(SLOTS_PER_TTL);
    match previous {
        None => window.add(earlier),
        Some(from) if from != chosen => {
            // Its earlier ask: about a TTL ago, a little more when it asked late.
            let oldest = now.saturating_sub(SLOTS - 1);
            let moved = windows
                .get_mut(from)
                .is_some_and(|w| (oldest..=earlier).rev().any(|slot| w.take(slot)));
            if moved {
                windows[chosen].add(earlier);
            }
        }
        Some(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_quarter_ttls_since_the_epoch() {
        let epoch = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        let ttl = Duration::from_secs(10);
        let rows = [
            (Duration::ZERO, SLOTS),
            (Duration::from_millis(2_499), SLOTS),
            (Duration::from_millis(2_500), SLOTS + 1),
            (Duration::from_secs(10), SLOTS + SLOTS_PER_TTL),
            (Duration::from_secs(25), SLOTS + 10),
        ];
        for (since, want) in rows {
            assert_eq!(slot_at(epoch, epoch + since, ttl), want, "{since:?}");
        }
        let before = epoch - Duration::from_secs(5);
        assert_eq!(slot_at(epoch, before, ttl), SLOTS, "a clock set back");
    }

    #[test]
    fn windows_count_clients_over_two_ttls() {
        let mut w = Window::default();
        w.add(10);
        w.add(10);
        w.add(13);
        assert_eq!(w.clients(13), 1.5);
        assert_eq!(w.clients(17), 1.5, "slot 10 is still in 10..=17");
        assert_eq!(w.clients(18), 0.5, "slot 10 has left");
        assert_eq!(w.clients(21), 0.0);
        assert!(w.take(13));
        assert_eq!(w.clients(13), 1.0);
        assert!(!w.take(13), "nothing left at 13");
        // A slot reused by the ring starts from zero.
        w.add(18);
        assert_eq!(w.clients(18), 0.5);
        // A slot older than the one its cell holds is ignored.
        w.add(10);
        assert_eq!(w.clients(18), 0.5);
    }

    #[test]
    fn answers_count_new_moved_and_staying_clients() {
        // (previous, chosen, clients per edge after one answer at slot 20, starting from
        // one client on edge 0 that asked at 16 and 20)
        let rows = [
            (None, 1, [1.0, 1.0], "a new client counts as one at once"),
            (Some(0), 0, [1.5, 0.0], "a staying client's new answer"),
            (
                Some(0),
                1,
                [0.5, 1.0],
                "a moved client takes its earlier answer along",
            ),
            (
                Some(1),
                0,
                [1.5, 0.0],
                "moved from an edge that never counted it",
            ),
        ];
        for (previous, chosen, want, why) in rows {
            let mut windows = vec![Window::default(), Window::default()];
            windows[0].add(16);
            windows[0].add(20);
            count_answer(&mut windows, 20, chosen, previous);
            let got = [windows[0].clients(20), windows[1].clients(20)];
            assert_eq!(got, want, "{why}");
        }
        // A late client (earlier answer five slots back) is still found.
        let mut windows = vec![Window::default(), Window::default()];
        windows[0].add(15);
        count_answer(&mut windows, 20, 1, Some(0));
        assert_eq!([windows[0].clients(20), windows[1].clients(20)], [0.0, 1.0]);
        // An index out of range is ignored.
        count_answer(&mut windows, 20, 7, None);
    }
}
