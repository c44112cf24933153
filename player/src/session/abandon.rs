//! Abandoning a download that will clearly stall playback, the way hls.js does
//! (`abr-controller` `_abandonRulesCheck`): when the rest of the segment, at the rate it is
//! arriving, will take longer than the buffer lasts, and a lower rendition fetched from
//! scratch would arrive sooner, drop the request and fetch the segment lower.

/// Nothing is decided before the request has run this long: the first bytes of a
/// response are too few to measure a rate.
pub const MIN_ELAPSED_S: f64 = 0.5;
/// The measured rate is discounted by this much when predicting a fresh download.
const SAFETY: f64 = 0.8;

/// A download in flight, as the player sees it at one instant.
#[derive(Debug, Clone, Copy)]
pub struct InFlight<'a> {
    /// Bitrates of the renditions, bit/s, ascending.
    pub bitrates_bps: &'a [u64],
    /// Rendition being fetched.
    pub quality: usize,
    /// Media duration of the segment, seconds.
    pub segment_duration_s: f64,
    /// Bytes the response will have (`Content-Length`, else estimated from the bitrate).
    pub expected_bytes: u64,
    /// Bytes arrived so far.
    pub loaded_bytes: u64,
    /// Seconds since the request was sent.
    pub elapsed_s: f64,
    /// Seconds since the first byte of the response arrived.
    pub transfer_s: f64,
    /// Media buffered ahead of the playhead now, seconds.
    pub buffer_s: f64,
}

/// The rendition to fetch the segment at instead, when the download should be abandoned.
pub fn abandon_to(f: &InFlight<'_>) -> Option<usize> {
    if f.quality == 0
        || f.elapsed_s < MIN_ELAPSED_S
        || f.loaded_bytes == 0
        || f.transfer_s <= 0.0
        || f.bitrates_bps.len() <= f.quality
    {
        return None;
    }
    let rate_bps = f.loaded_bytes as f64 * 8.0 / f.transfer_s;
    let remaining_s = f.expected_bytes.saturating_sub(f.loaded_bytes) as f64 * 8.0 / rate_bps;
    if remaining_s <= f.buffer_s {
        return None;
    }
    let fresh_s = |q: usize| {
        f.bitrates_bps[q] as f64 * f.segment_duration_s / (SAFETY * rate_bps)
            + (f.elapsed_s - f.transfer_s)
    };
    // The highest lower rendition that would arrive before the buffer runs dry; the lowest
    // when none would.
    let target = (0..f.quality)
        .rev()
        .find(|&q| fresh_s(q) < f.buffer_s)
        .unwrap_or(0);
    (fresh_s(target) < remaining_s).then_some(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LADDER: [u64; 3] = [300_000, 750_000, 1_850_000];

    fn in_flight(loaded: u64, transfer_s: f64, buffer_s: f64) -> InFlight<'static> {
        InFlight {
            bitrates_bps: &LADDER,
            quality: 2,
            segment_duration_s: 2.0,
            expected_bytes: 462_500, // 2 s at 1850 kbit/s
            loaded_bytes: loaded,
            elapsed_s: transfer_s + 0.1,
            transfer_s,
            buffer_s,
        }
    }

    #[test]
    fn decisions_table() {
        let cases = [
            // Fast link: 400 kB in 0.5 s, the rest arrives long before the buffer drains.
            (in_flight(400_000, 0.5, 4.0), None),
            // 25 kB/s (200 kbit/s): 17 s still to go with 4 s of buffer; 300k fetched fresh
            // takes 0.6 MB·8/(0.8·200k)=3.75 s + 0.1 s < 4 s → drop to rendition 0.
            (in_flight(25_000, 1.0, 4.0), Some(0)),
            // 100 kB/s (800 kbit/s): 3.6 s to go with 2 s of buffer; 750k takes 2.44 s, too
            // slow for the buffer, so the lowest (1.04 s) it is.
            (in_flight(100_000, 1.0, 2.0), Some(0)),
            // 100 kB/s with 3 s of buffer: 750k (2.44 s) fits.
            (in_flight(100_000, 1.0, 3.0), Some(1)),
            // Slow, but the buffer outlasts the rest of the download.
            (in_flight(25_000, 1.0, 30.0), None),
            // Too early to judge.
            (in_flight(1_000, 0.3, 0.0), None),
            // Nothing arrived yet: no rate to judge by.
            (in_flight(0, 1.0, 0.0), None),
            // Almost done: finishing beats starting over even with an empty buffer.
            (in_flight(460_000, 1.0, 0.0), None),
        ];
        for (i, (f, want)) in cases.iter().enumerate() {
            assert_eq!(abandon_to(f), *want, "case {i}: {f:?}");
        }
    }

    #[test]
    fn never_from_the_lowest() {
        let f = InFlight {
            quality: 0,
            ..in_flight(1_000, 5.0, 0.0)
        };
        assert_eq!(abandon_to(&f), None);
    }
}
