//! The interface between a player and its ABR algorithm: what an algorithm sees
//! ([`AbrInput`], built from [`Download`]s) and what it implements ([`Abr`]).

/// One completed segment download, as the player measured it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Download {
    /// Rendition index of the segment.
    pub quality: usize,
    /// Bytes of the response body.
    pub bytes: u64,
    /// Milliseconds from sending the request to receiving the last byte (includes TTFB).
    pub duration_ms: f64,
    /// Milliseconds from sending the request to the first byte, when measured.
    pub ttfb_ms: Option<f64>,
}

impl Download {
    /// Throughput over the whole request, in bit/s (request latency included).
    pub fn bps(&self) -> f64 {
        self.bytes as f64 * 8000.0 / self.duration_ms
    }

    /// Throughput of the body transfer alone, in bit/s: the request latency (TTFB) is
    /// taken out so that small segments are not mistaken for a slow link. Falls back to
    /// [`Download::bps`] when TTFB is unknown or implausible.
    pub fn transfer_bps(&self) -> f64 {
        match self.ttfb_ms {
            Some(t) if t >= 0.0 && self.duration_ms - t > 0.0 => {
                self.bytes as f64 * 8000.0 / (self.duration_ms - t)
            }
            _ => self.bps(),
        }
    }
}

/// Everything an ABR algorithm may look at before choosing the next segment.
#[derive(Debug, Clone, Copy)]
pub struct AbrInput<'a> {
    /// Bitrates of the renditions in bit/s, ascending (index = rendition index).
    pub bitrates_bps: &'a [u64],
    /// Media duration of one segment, seconds.
    pub segment_duration_s: f64,
    /// Media buffered ahead of the playhead now, seconds.
    pub buffer_s: f64,
    /// Playback stall since the previous decision, seconds (0 when playback ran on).
    pub stall_s: f64,
    /// The most media the player will buffer before it pauses downloading, seconds.
    pub buffer_max_s: f64,
    /// Completed downloads of this session, oldest first.
    pub history: &'a [Download],
    /// Rendition of the last segment fetched (`None` before the first).
    pub last_quality: Option<usize>,
    /// Sizes in bytes of the segments from the next one on, per rendition:
    /// `upcoming_sizes[j][q]` is segment `next + j` at rendition `q`. Empty when unknown;
    /// may run past the last segment that will be played (it lists what the server has).
    pub upcoming_sizes: &'a [Vec<u64>],
    /// Segments still to fetch, the next one included, when the presentation has an end.
    pub segments_remaining: Option<usize>,
}

impl AbrInput<'_> {
    /// Highest rendition index (kept in range, at least 0).
    pub fn top(&self) -> usize {
        self.bitrates_bps.len().saturating_sub(1)
    }

    /// Size of upcoming segment `j` at rendition `q` in bytes, estimated from the
    /// bitrate when the size is unknown.
    pub fn size_bytes(&self, j: usize, q: usize) -> f64 {
        match self.upcoming_sizes.get(j).and_then(|row| row.get(q)) {
            Some(&s) => s as f64,
            None => self.bitrates_bps[q] as f64 * self.segment_duration_s / 8.0,
        }
    }
}

/// An adaptive-bitrate algorithm. One value serves one session: create a fresh one per
/// session (see [`by_name`]).
pub trait Abr: Send + std::fmt::Debug {
    /// The registry name of the algorithm.
    fn name(&self) -> &'static str;

    /// Rendition index for the next segment; must be `< input.bitrates_bps.len()`.
    fn choose(&mut self, input: &AbrInput<'_>) -> usize;
}

/// Highest rendition whose bitrate is at most `bps` (0 when none fits).
pub fn highest_at_most(bitrates_bps: &[u64], bps: f64) -> usize {
    bitrates_bps
        .iter()
        .rposition(|&b| b as f64 <= bps)
        .unwrap_or(0)
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::{AbrInput, Download};

    pub const LADDER: [u64; 6] = [300_000, 750_000, 1_200_000, 1_850_000, 2_850_000, 4_300_000];

    /// Input with the Pensieve ladder, 4 s segments, no sizes, given buffer and history.
    pub fn input<'a>(buffer_s: f64, history: &'a [Download]) -> AbrInput<'a> {
        AbrInput {
            bitrates_bps: &LADDER,
            segment_duration_s: 4.0,
            buffer_s,
            stall_s: 0.0,
            buffer_max_s: 60.0,
            history,
            last_quality: history.last().map(|d| d.quality),
            upcoming_sizes: &[],
            segments_remaining: None,
        }
    }

    /// A download of a 4 s segment at `quality` that ran at `bps` with no latency.
    pub fn dl(quality: usize, bps: f64) -> Download {
        let bytes = LADDER[quality] / 2; // 4 s × bitrate / 8
        Download {
            quality,
            bytes,
            duration_ms: bytes as f64 * 8000.0 / bps,
            ttfb_ms: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highest_at_most_table() {
        let l = test_util::LADDER;
        for (bps, want) in [
            (0.0, 0),
            (299_999.0, 0),
            (300_000.0, 0),
            (750_000.0, 1),
            (1_849_999.0, 2),
            (1e9, 5),
        ] {
            assert_eq!(highest_at_most(&l, bps), want, "{bps}");
        }
    }

    #[test]
    fn throughput_with_and_without_ttfb() {
        let d = Download {
            quality: 0,
            bytes: 1000,
            duration_ms: 100.0,
            ttfb_ms: Some(20.0),
        };
        assert_eq!(d.bps(), 80_000.0);
        assert_eq!(d.transfer_bps(), 100_000.0);
        let no_ttfb = Download { ttfb_ms: None, ..d };
        assert_eq!(no_ttfb.transfer_bps(), 80_000.0);
    }
}
