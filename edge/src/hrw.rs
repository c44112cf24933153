//! Rendezvous (highest random weight, HRW) hashing: which peer owns a cache key
//! (Thaler & Ravishankar, "Using name-based mappings to increase hit rates", 1998).
//!
//! Every member scores every key; the highest score owns it and the rest of the
//! ranking is the fallback order. Removing a member moves only that member's keys
//! (each to its runner-up), adding one takes about `1/n` of the keys, and no state is
//! shared: every edge given the same member names ranks alike.

use sha2::{Digest, Sha256};

/// The weight of `member` for `key`: the first 8 bytes of SHA-256(member, NUL, key).
/// A fixed, fully specified hash (std's `DefaultHasher` may change between Rust
/// releases), so edges built at different times still agree during a rolling upgrade;
/// its cost (well under a microsecond per member) is paid on misses only. NUL cannot
/// occur in a member name (a token) nor in a request target, so inputs never collide.
pub fn score(member: &str, key: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(member.as_bytes());
    h.update([0]);
    h.update(key.as_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// Indices of `members` from the owner of `key` down to the last resort. Ties (never
/// seen in practice with 64-bit scores) go to the smaller name, so the order is total.
pub fn rank<S: AsRef<str>>(key: &str, members: &[S]) -> Vec<usize> {
    let mut scored: Vec<(u64, &str, usize)> = members
        .iter()
        .enumerate()
        .map(|(i, m)| (score(m.as_ref(), key), m.as_ref(), i))
        .collect();
    scored.sort_unstable_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.into_iter().map(|(_, _, i)| i).collect()
}

/// The member owning `key`, if there are members.
pub fn owner<'a, S: AsRef<str>>(key: &str, members: &'a [S]) -> Option<&'a str> {
    rank(key, members)
        .first()
        .and_then(|&i| members.get(i))
        .map(AsRef::as_ref)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("/vod/sample/{}/{i}.m4s", i % 6))
            .collect()
    }

    #[test]
    fn ranking_is_a_stable_permutation() {
        let members = ["edge-1", "edge-2", "edge-3"];
        for key in keys(200) {
            let r = rank(&key, &members);
            let mut sorted = r.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, [0, 1, 2], "{key}");
            assert_eq!(rank(&key, &members), r, "same input, same ranking");
            // The order members are listed in does not matter, only their names.
            let reversed = ["edge-3", "edge-2", "edge-1"];
            assert_eq!(owner(&key, &reversed), owner(&key, &members), "{key}");
        }
        let none: [&str; 0] = [];
        assert_eq!(owner("/k", &none), None);
        assert!(rank("/k", &none).is_empty());
    }

    #[test]
    fn fixed_vectors_pin_the_hash() {
        // Changing the hash would split a cluster running mixed versions: pin it
        // (values from an independent SHA-256: Python's hashlib).
        let table = [
            ("edge-1", "/a", 0xcf8f_0f82_03d2_31d0),
            ("edge-2", "/a", 0xf8a1_5aea_2cec_e9cd),
            ("edge-3", "/a", 0x86c7_45a7_0d34_41d3),
            ("edge-1", "/vod/sample/720p/1.m4s", 0x512f_c22d_3186_dd5c),
        ];
        for (member, key, want) in table {
            assert_eq!(score(member, key), want, "{member} {key}");
        }
        assert_eq!(rank("/a", &["edge-1", "edge-2", "edge-3"]), [1, 0, 2]);
    }

    #[test]
    fn removing_a_member_moves_only_its_keys() {
        let all = ["edge-1", "edge-2", "edge-3", "edge-4"];
        let without = ["edge-1", "edge-2", "edge-4"];
        let mut moved = 0;
        for key in keys(5_000) {
            let before = owner(&key, &all);
            let after = owner(&key, &without);
            if before == Some("edge-3") {
                moved += 1;
                // The runner-up takes over.
                let second = rank(&key, &all)[1];
                assert_eq!(after, Some(all[second]), "{key}");
            } else {
                assert_eq!(after, before, "{key} must not move");
            }
        }
        assert!(moved > 1_000, "edge-3 owned {moved} of 5000");
    }

    #[test]
    fn adding_a_member_takes_keys_only_for_itself() {
        let before = ["a", "b", "c"];
        let after = ["a", "b", "c", "d"];
        for key in keys(5_000) {
            let now = owner(&key, &after);
            assert!(
                now == Some("d") || now == owner(&key, &before),
                "{key} moved between old members"
            );
        }
    }

    #[test]
    fn distribution_is_even_within_ten_percent() {
        let table: [&[&str]; 3] = [
            &["edge-1", "edge-2", "edge-3"],
            &["eu-west:8081", "eu-west:8082", "us-east:8081"],
            &["a", "b", "c", "d", "e"],
        ];
        let keys = keys(10_000);
        for members in table {
            let mut counts = vec![0usize; members.len()];
            for key in &keys {
                counts[rank(key, members)[0]] += 1;
            }
            let fair = keys.len() as f64 / members.len() as f64;
            for (m, c) in members.iter().zip(&counts) {
                let off = (*c as f64 - fair).abs() / fair;
                assert!(off <= 0.10, "{m} owns {c} of {}: {counts:?}", keys.len());
            }
        }
    }
}
