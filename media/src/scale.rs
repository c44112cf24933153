//! Picture scaling for the ladder: each plane of a 4:2:0 frame resampled by a separable
//! triangle (bilinear) filter whose support widens with the reduction, so a downscale
//! averages every source pixel it covers (an area filter, no aliasing) and an upscale
//! interpolates bilinearly. Weights are 14-bit fixed point; the horizontal pass keeps 6
//! extra bits for the vertical one.

use crate::source::Frame;

const WEIGHT_BITS: u32 = 14;
const ONE: i32 = 1 << WEIGHT_BITS;
/// Extra precision kept between the two passes.
const MID_BITS: u32 = 6;

/// The taps of a 1-D resampling from `src` to `dst` samples: for each output sample, the
/// first source sample and the weights of the run starting there.
#[derive(Debug, Clone)]
struct Taps {
    starts: Vec<usize>,
    /// Every output's weights, `width` each (zero-padded).
    weights: Vec<i32>,
    width: usize,
}

impl Taps {
    fn new(src: usize, dst: usize) -> Self {
        let scale = src as f64 / dst as f64;
        // Triangle radius in source samples: 1 for interpolation, the reduction factor for
        // decimation (then the filter covers every source sample it maps from).
        let radius = scale.max(1.0);
        let width = (2.0 * radius).ceil() as usize + 1;
        let mut starts = Vec::with_capacity(dst);
        let mut weights = vec![0i32; dst * width];
        for o in 0..dst {
            let center = (o as f64 + 0.5) * scale - 0.5;
            let first = (center - radius).floor() as isize + 1;
            let start = first.clamp(0, src.saturating_sub(width) as isize) as usize;
            let mut raw = vec![0f64; width];
            for k in 0..width {
                let x = first + k as isize;
                let w = (1.0 - (x as f64 - center).abs() / radius).max(0.0);
                // Beyond an edge the edge sample stands in (clamped addressing).
                let at = x.clamp(0, src as isize - 1) as usize;
                if let Some(slot) = raw.get_mut(at.wrapping_sub(start)) {
                    *slot += w;
                }
            }
            let total: f64 = raw.iter().sum();
            let row = &mut weights[o * width..(o + 1) * width];
            for (slot, w) in row.iter_mut().zip(&raw) {
                *slot = (w / total * f64::from(ONE)).round() as i32;
            }
            // Rounding leftovers go to the largest weight, so flat areas stay flat.
            let sum: i32 = row.iter().sum();
            if let Some(max) = row.iter_mut().max_by_key(|w| **w) {
                *max += ONE - sum;
            }
            starts.push(start);
        }
        Self {
            starts,
            weights,
            width,
        }
    }
}

/// Resamples a `sw × sh` plane into a `dw × dh` one.
pub fn scale_plane(src: &[u8], sw: usize, sh: usize, dst: &mut [u8], dw: usize, dh: usize) {
    if sw == dw && sh == dh {
        dst[..dw * dh].copy_from_slice(&src[..sw * sh]);
        return;
    }
    let h = Taps::new(sw, dw);
    let v = Taps::new(sh, dh);
    // Horizontal pass: every source row to `dw` samples with MID_BITS extra bits.
    let mut mid = vec![0u16; dw * sh];
    for y in 0..sh {
        let row = &src[y * sw..(y + 1) * sw];
        for x in 0..dw {
            let start = h.starts[x];
            let weights = &h.weights[x * h.width..(x + 1) * h.width];
            let acc: i32 = weights
                .iter()
                .zip(&row[start..(start + h.width).min(sw)])
                .map(|(w, &p)| w * i32::from(p))
                .sum();
            let value = (acc + (1 << (WEIGHT_BITS - MID_BITS - 1))) >> (WEIGHT_BITS - MID_BITS);
            mid[y * dw + x] = value.clamp(0, 255 << MID_BITS) as u16;
        }
    }
    // Vertical pass over the intermediate rows.
    let shift = WEIGHT_BITS + MID_BITS;
    let mut acc = vec![0i32; dw];
    for y in 0..dh {
        acc.fill(0);
        let start = v.starts[y];
        let weights = &v.weights[y * v.width..(y + 1) * v.width];
        for (k, &w) in weights.iter().enumerate() {
            let Some(row) = mid.get((start + k) * dw..(start + k + 1) * dw) else {
                break;
            };
            if w == 0 {
                continue;
            }
            for (a, &m) in acc.iter_mut().zip(row) {
                *a += w * i32::from(m);
            }
        }
        for (out, &a) in dst[y * dw..(y + 1) * dw].iter_mut().zip(&acc) {
            *out = ((a + (1 << (shift - 1))) >> shift).clamp(0, 255) as u8;
        }
    }
}

/// Scales every plane of `src` into `dst` (whose size is the target's).
pub fn scale_frame(src: &Frame, dst: &mut Frame) {
    scale_plane(
        &src.y, src.width, src.height, &mut dst.y, dst.width, dst.height,
    );
    let (scw, sch) = (src.chroma_width(), src.height.div_ceil(2));
    let (dcw, dch) = (dst.chroma_width(), dst.height.div_ceil(2));
    scale_plane(&src.u, scw, sch, &mut dst.u, dcw, dch);
    scale_plane(&src.v, scw, sch, &mut dst.v, dcw, dch);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_planes_stay_flat() {
        let src = vec![117u8; 64 * 36];
        for (dw, dh) in [(32, 18), (24, 14), (100, 50), (64, 36)] {
            let mut dst = vec![0u8; dw * dh];
            scale_plane(&src, 64, 36, &mut dst, dw, dh);
            assert!(dst.iter().all(|&p| p == 117), "{dw}x{dh}");
        }
    }

    #[test]
    fn halving_averages_pixel_pairs() {
        // Columns alternate 0 and 200: an area filter gives the mean, 100, everywhere
        // (away from the edges, where clamping weighs the edge pixel twice).
        let (sw, sh) = (16, 4);
        let src: Vec<u8> = (0..sw * sh)
            .map(|i| if i % 2 == 0 { 0 } else { 200 })
            .collect();
        let mut dst = vec![0u8; 8 * 2];
        scale_plane(&src, sw, sh, &mut dst, 8, 2);
        for x in 1..7 {
            assert!((i32::from(dst[x]) - 100).abs() <= 2, "{:?}", &dst[..8]);
        }
    }

    #[test]
    fn a_ramp_stays_a_ramp() {
        let (sw, sh) = (256, 2);
        let src: Vec<u8> = (0..sw * sh).map(|i| (i % sw) as u8).collect();
        let mut dst = vec![0u8; 64 * 2];
        scale_plane(&src, sw, sh, &mut dst, 64, 2);
        // Output x covers source 4x..4x+4, whose mean is 4x + 1.5.
        for (x, &p) in dst.iter().enumerate().take(62).skip(2) {
            let expected = 4.0 * x as f64 + 1.5;
            assert!((f64::from(p) - expected).abs() <= 1.0, "x={x}: {p}");
        }
        let mut up = vec![0u8; 512 * 2];
        scale_plane(&src, sw, sh, &mut up, 512, 2);
        assert!(up.windows(2).take(500).all(|w| w[1] >= w[0]), "monotonic");
    }

    #[test]
    fn frames_scale_every_plane() {
        let mut src = Frame::new(64, 36);
        src.u.fill(90);
        let mut dst = Frame::new(32, 18);
        scale_frame(&src, &mut dst);
        assert!(dst.y.iter().all(|&p| p == 16) && dst.u.iter().all(|&p| p == 90));
        assert!(dst.v.iter().all(|&p| p == 128));
    }
}
