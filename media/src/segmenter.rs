//! The pure decisions of repackaging: where segments are cut, whether renditions' keyframes
//! line up, how long a stretch without a keyframe is, and which audio frames go with which
//! video segment. Times are seconds of presentation (the first presented frame at 0) unless
//! said otherwise.

use std::ops::Range;

/// Cut times for segments of about `target` seconds: the first keyframe (0), then, from each
/// cut, the keyframe nearest to `cut + target` (the earlier on a tie). A keyframe gap longer
/// than `target` makes a longer segment; cuts never fall anywhere but on a keyframe.
pub fn choose_cuts(keyframes: &[f64], target: f64) -> Vec<f64> {
    let Some(&first) = keyframes.first() else {
        return Vec::new();
    };
    let mut cuts = vec![first];
    let mut i = 0;
    loop {
        let last = cuts[cuts.len() - 1];
        let goal = last + target;
        let mut best: Option<usize> = None;
        for (j, &k) in keyframes.iter().enumerate().skip(i + 1) {
            let better = best.is_none_or(|b| (k - goal).abs() < (keyframes[b] - goal).abs());
            if better {
                best = Some(j);
            }
            // Past the goal, later keyframes are only farther.
            if k >= goal {
                break;
            }
        }
        match best {
            Some(j) => {
                cuts.push(keyframes[j]);
                i = j;
            }
            None => return cuts,
        }
    }
}

/// The longest stretch without a keyframe, `(seconds, from)`, counting the stretch from the
/// last keyframe to `end`.
pub fn longest_gap(keyframes: &[f64], end: f64) -> Option<(f64, f64)> {
    keyframes
        .iter()
        .zip(keyframes.iter().skip(1).chain(std::iter::once(&end)))
        .map(|(&from, &to)| (to - from, from))
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

/// For each cut, the index in `keyframes` of the keyframe at that time (within
/// `tolerance`), or the first cut time this rendition has no keyframe at.
pub fn match_cuts(keyframes: &[f64], cuts: &[f64], tolerance: f64) -> Result<Vec<usize>, f64> {
    cuts.iter()
        .map(|&cut| {
            let i = keyframes.partition_point(|&k| k < cut - tolerance);
            match keyframes.get(i) {
                Some(&k) if (k - cut).abs() <= tolerance => Ok(i),
                _ => Err(cut),
            }
        })
        .collect()
}

/// The audio frames of each segment, as index ranges into `starts` (frame start times in
/// the audio's ticks, ascending, every frame `frame` ticks long), for video cuts at
/// `cuts` (ticks) and a video ending at `end` (ticks). A segment starts with the first
/// frame that starts at or after its cut, so audio and video segments cover the same time
/// to within one frame; frames before 0 (encoder priming the edit list hides) are left
/// out, and the audio stops at the last frame that ends by the video's end, so it never
/// outlasts the video.
pub fn audio_ranges(starts: &[i64], frame: i64, cuts: &[i64], end: i64) -> Vec<Range<usize>> {
    let stop = starts.partition_point(|&s| s + frame <= end);
    let firsts: Vec<usize> = cuts
        .iter()
        .map(|&cut| starts.partition_point(|&s| s < cut.max(0)).min(stop))
        .chain(std::iter::once(stop))
        .collect();
    firsts.windows(2).map(|w| w[0]..w[1].max(w[0])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_fall_on_keyframes_nearest_the_target() {
        let every_two: Vec<f64> = (0..5).map(|i| f64::from(i) * 2.0).collect();
        assert_eq!(choose_cuts(&every_two, 2.0), every_two);
        // A 4 s target takes every other keyframe.
        assert_eq!(choose_cuts(&every_two, 4.0), [0.0, 4.0, 8.0]);
        // Keyframes every 1.5 s with a 2 s target: nearest to 2 is 1.5, then nearest to
        // 3.5 is 3.0, …
        let odd: Vec<f64> = (0..7).map(|i| f64::from(i) * 1.5).collect();
        assert_eq!(choose_cuts(&odd, 2.0), odd);
        // Irregular: nearest to 2 of {1.2, 2.5} is 2.5; then nearest to 4.5 of {3.0, 6.0}
        // is 3.0 (1.5 away against 1.5: the earlier).
        assert_eq!(
            choose_cuts(&[0.0, 1.2, 2.5, 3.0, 6.0], 2.0),
            [0.0, 2.5, 3.0, 6.0]
        );
        // A long GOP makes a long segment.
        assert_eq!(choose_cuts(&[0.0, 10.0], 2.0), [0.0, 10.0]);
        assert!(choose_cuts(&[], 2.0).is_empty());
    }

    #[test]
    fn gaps_count_the_tail() {
        assert_eq!(longest_gap(&[0.0, 2.0, 4.0], 10.0), Some((6.0, 4.0)));
        assert_eq!(longest_gap(&[0.0, 5.0, 6.0], 7.0), Some((5.0, 0.0)));
        assert_eq!(longest_gap(&[], 7.0), None);
    }

    #[test]
    fn alignment_names_the_first_missing_cut() {
        let keys = [0.0, 2.0, 4.0005, 6.0];
        assert_eq!(
            match_cuts(&keys, &[0.0, 2.0, 4.0, 6.0], 0.01),
            Ok(vec![0, 1, 2, 3])
        );
        assert_eq!(match_cuts(&keys, &[0.0, 2.0, 4.0], 0.0001), Err(4.0));
        assert_eq!(match_cuts(&[0.0, 1.5, 3.0], &[0.0, 2.0], 0.01), Err(2.0));
        assert_eq!(match_cuts(&[0.0], &[0.0, 2.0], 0.01), Err(2.0));
    }

    #[test]
    fn audio_follows_video_cuts_within_a_frame() {
        // 48 kHz AAC, 1024-sample frames; the first frame is priming (starts at -1024).
        let starts: Vec<i64> = (-1..500).map(|i| i * 1024).collect();
        let cuts = [0, 96_000, 192_000];
        let end = 288_000; // 6 s of video
        let ranges = audio_ranges(&starts, 1024, &cuts, end);
        assert_eq!(ranges.len(), 3);
        // Priming frame left out; segment 2 starts at frame 94 (96256 >= 96000).
        assert_eq!(ranges[0], 1..95);
        assert_eq!(starts[ranges[1].start], 94 * 1024);
        // The last frame ends by 6 s: 281 frames of 1024 = 287744 <= 288000.
        let last = ranges[2].end - 1;
        assert_eq!(starts[last] + 1024, 281 * 1024);
        assert!(starts[last] + 1024 <= end);
        // Audio shorter than the video: empty tail segments, never a panic.
        let short: Vec<i64> = (0..10).map(|i| i * 1024).collect();
        let r = audio_ranges(&short, 1024, &cuts, end);
        assert_eq!(r, [0..10, 10..10, 10..10]);
    }
}
