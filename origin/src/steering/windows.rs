//! Steered clients per edge, counted from the steering requests themselves: every player
//! asks again once a TTL, so the answers that named an edge over the last two TTLs count
//! its players, in fixed memory whatever the request rate.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
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

/// Client addresses remembered per TTL by [`AddressBudget`] (about 5 MB at most);
/// answers to further addresses in that TTL are not counted.
pub const MAX_ADDRESSES_PER_TTL: usize = 100_000;

/// Steering answers counted per client address in the current TTL, so that nobody
/// can inflate an edge's count by sending steering requests: a player asks once a TTL,
/// so `per_address` answers a TTL is `per_address` players behind one address (a
/// household, a NAT), and whoever asks more often or pretends to be more players
/// counts no more than that. An IPv6 address counts by its /64, which one site holds
/// whole. Memory is bounded by [`MAX_ADDRESSES_PER_TTL`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressBudget {
    /// The TTL (slot / [`SLOTS_PER_TTL`]) the counts are for.
    ttl: u64,
    used: HashMap<IpAddr, u32>,
}

impl AddressBudget {
    /// Whether an answer to `client` at slot `now` may be counted; counts it if so.
    pub fn admit(&mut self, client: IpAddr, now: u64, per_address: u32) -> bool {
        let ttl = now / SLOTS_PER_TTL;
        if ttl != self.ttl {
            self.used.clear();
            self.ttl = ttl;
        }
        let site = site_of(client);
        if !self.used.contains_key(&site) && self.used.len() >= MAX_ADDRESSES_PER_TTL {
            return false;
        }
        let used = self.used.entry(site).or_insert(0);
        if *used >= per_address {
            return false;
        }
        *used += 1;
        true
    }
}

/// What one client site is: an IPv4 address (also when mapped into IPv6), or an IPv6
/// /64 (RFC 4291 §2.5.4: the interface identifier is the host's to choose).
fn site_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_weighs_at_most_its_budget_per_ttl() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap_or(IpAddr::V4(0.into()));
        let mut budget = AddressBudget::default();
        // (address, slot, admitted): budget 2 per TTL of 4 slots.
        let rows = [
            ("10.0.0.1", 8, true),
            ("10.0.0.1", 9, true),
            ("10.0.0.1", 10, false),
            ("10.0.0.1", 11, false),
            // Another address has its own budget.
            ("10.0.0.2", 11, true),
            // ::ffff:10.0.0.2 is 10.0.0.2.
            ("::ffff:10.0.0.2", 11, true),
            ("::ffff:10.0.0.2", 11, false),
            // The next TTL starts afresh.
            ("10.0.0.1", 12, true),
            // One IPv6 /64 is one site, whatever the interface identifier.
            ("2001:db8:1:2::1", 12, true),
            ("2001:db8:1:2:ffff::9", 12, true),
            ("2001:db8:1:2:abcd::1", 13, false),
            ("2001:db8:1:3::1", 13, true),
        ];
        for (address, slot, want) in rows {
            assert_eq!(
                budget.admit(ip(address), slot, 2),
                want,
                "{address} at {slot}"
            );
        }
        // Bounded memory: past the cap, new addresses are not counted, known ones are.
        let mut budget = AddressBudget::default();
        for i in 0..MAX_ADDRESSES_PER_TTL as u32 {
            assert!(budget.admit(IpAddr::V4(i.into()), 8, 1));
        }
        assert!(!budget.admit(IpAddr::V4(u32::MAX.into()), 8, 1));
        assert!(budget.admit(IpAddr::V4(u32::MAX.into()), 12, 1));
    }

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
