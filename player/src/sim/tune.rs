//! The honest protocol: parameters are searched on training traces only ([`tune`]),
//! and figures come from traces the search never saw, either another set or the
//! left-out fold of a K-fold cross-validation ([`cross_validate`]).
//!
//! The search is coordinate descent over a grid per parameter ([`axes`]): each pass
//! tries every value of one parameter with the others held, keeps the best (the
//! earlier value on a tie, so the result does not depend on float noise), and moves to
//! the next; it stops when a pass changes nothing. Rivulet's prior error distribution
//! is not searched but fitted: before each pass it is set to the quantiles of the
//! predictor's errors over the training traces ([`fit_prior`]). Everything is
//! deterministic: the same traces give the same file.

use serde::Serialize;

use super::report::{Bench, Contender, SetReport, set_shares, summarise};
use super::{ChunkLog, SimError, Trace};
use crate::abr::{AbrKind, AbrParams, Download, predict};

/// One searched parameter: its name, the values tried, and how to read and set it.
#[derive(Debug, Clone)]
pub struct Axis {
    /// Field name in the parameter file.
    pub name: &'static str,
    /// Values tried, in the order ties are broken (earlier wins).
    pub values: &'static [f64],
    /// Reads the parameter.
    pub get: fn(&AbrParams) -> f64,
    /// Sets the parameter.
    pub set: fn(&mut AbrParams, f64),
}

/// The parameters `player tune` searches for `kind` (none for the reference
/// algorithms, which keep their published constants).
pub fn axes(kind: AbrKind) -> Vec<Axis> {
    match kind {
        AbrKind::Rivulet => vec![
            Axis {
                name: "horizon",
                values: &[3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 12.0],
                get: |p| p.rivulet.horizon as f64,
                // The values are small whole numbers.
                set: |p, v| p.rivulet.horizon = v as usize,
            },
            Axis {
                name: "window",
                values: &[2.0, 4.0, 6.0, 8.0, 12.0, 16.0],
                get: |p| p.rivulet.window as f64,
                set: |p, v| p.rivulet.window = v as usize,
            },
            Axis {
                name: "half_life",
                values: &[0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 32.0],
                get: |p| p.rivulet.half_life,
                set: |p, v| p.rivulet.half_life = v,
            },
            Axis {
                name: "jump",
                // 9 (a factor e^9 ≈ 8000 off) is never: the restart switched off.
                values: &[9.0, 1.0, 0.7, 0.5, 0.3, 0.2],
                get: |p| p.rivulet.jump,
                set: |p, v| p.rivulet.jump = v,
            },
            Axis {
                name: "scale_exponent",
                values: &[0.0, 0.5, 1.0],
                get: |p| p.rivulet.scale_exponent,
                set: |p, v| p.rivulet.scale_exponent = v,
            },
            Axis {
                name: "reserve_s",
                values: &[0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0],
                get: |p| p.rivulet.reserve_s,
                set: |p, v| p.rivulet.reserve_s = v,
            },
            Axis {
                name: "prior_weight",
                values: &[0.0, 1.0, 2.0, 4.0, 8.0],
                get: |p| p.rivulet.prior_weight,
                set: |p, v| p.rivulet.prior_weight = v,
            },
        ],
        AbrKind::Throughput | AbrKind::Bba | AbrKind::Bola | AbrKind::RobustMpc => Vec::new(),
    }
}

/// Where the search starts unless told otherwise: the middle value of every axis and no
/// prior (it is fitted before the first evaluation), so that the result depends on the
/// training traces alone, not on the parameters built in at the time.
pub fn start_point(kind: AbrKind) -> AbrParams {
    let mut params = AbrParams::default();
    for axis in axes(kind) {
        (axis.set)(&mut params, axis.values[axis.values.len() / 2]);
    }
    if kind == AbrKind::Rivulet {
        params.rivulet.prior_log_errors.clear();
    }
    params.tuned = None;
    params
}

/// What a search step reports, for progress.
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    /// Pass number, from 1.
    pub pass: usize,
    /// The parameter being searched.
    pub axis: &'a str,
    /// The best mean QoE per chunk so far.
    pub best: f64,
}

/// The result of [`tune`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tuned {
    /// The parameters found.
    pub params: AbrParams,
    /// Their mean QoE per chunk on the training traces.
    pub qoe_per_chunk: f64,
    /// Parameter settings evaluated.
    pub evaluations: usize,
}

/// The downloads a simulator run fed its algorithm.
fn downloads(logs: &[ChunkLog], rtt_ms: f64) -> Vec<Download> {
    logs.iter()
        .map(|c| Download {
            quality: c.quality,
            bytes: c.bytes,
            duration_ms: c.delay_ms,
            ttfb_ms: Some(rtt_ms),
        })
        .collect()
}

/// Evenly spaced quantiles (at (i + ½)/n) of `xs`, `n` of them.
fn quantiles(mut xs: Vec<f64>, n: usize) -> Vec<f64> {
    xs.retain(|x| x.is_finite());
    xs.sort_by(f64::total_cmp);
    if xs.is_empty() {
        return Vec::new();
    }
    (0..n)
        .map(|i| {
            let at = ((i as f64 + 0.5) / n as f64 * xs.len() as f64) as usize;
            xs[at.min(xs.len() - 1)]
        })
        .collect()
}

/// Points in Rivulet's prior error distribution.
const PRIOR_POINTS: usize = 8;

/// Sets Rivulet's prior errors to the quantiles of the errors its predictor makes on
/// `traces` when Rivulet plays them with `params`.
pub fn fit_prior(
    bench: &Bench<'_>,
    traces: &[Trace],
    params: &mut AbrParams,
) -> Result<(), SimError> {
    let (half_life, jump) = (params.rivulet.half_life, params.rivulet.jump);
    let bench = Bench { params, ..*bench };
    let errors = super::par_map(traces, |t| {
        let logs = bench.logs(t, Contender::Abr(AbrKind::Rivulet))?;
        Ok::<_, SimError>(
            predict(&downloads(&logs, bench.rules.rtt_ms), half_life, jump)
                .map(|p| p.log_errors)
                .unwrap_or_default(),
        )
    })?;
    params.rivulet.prior_log_errors = quantiles(errors.concat(), PRIOR_POINTS);
    Ok(())
}

/// Mean QoE per chunk of `kind` with `params` over `traces`.
fn evaluate(
    bench: &Bench<'_>,
    traces: &[Trace],
    kind: AbrKind,
    params: &AbrParams,
) -> Result<f64, SimError> {
    let bench = Bench { params, ..*bench };
    Ok(bench
        .run_set(traces, Contender::Abr(kind))?
        .qoe_per_chunk_mean)
}

/// Passes of coordinate descent at most (it stops earlier when a pass changes nothing).
const MAX_PASSES: usize = 4;

/// Searches `kind`'s parameters on `traces`, starting from `bench.params` (see
/// [`start_point`]).
pub fn tune(
    bench: &Bench<'_>,
    traces: &[Trace],
    kind: AbrKind,
    progress: &(dyn Fn(Step<'_>) + Sync),
) -> Result<Tuned, SimError> {
    let mut params = bench.params.clone();
    params.tuned = None;
    let axes = axes(kind);
    let mut evaluations = 0;
    let mut best = f64::NEG_INFINITY;
    for pass in 1..=MAX_PASSES.max(1) {
        if kind == AbrKind::Rivulet {
            fit_prior(bench, traces, &mut params)?;
        }
        let before = params.clone();
        best = evaluate(bench, traces, kind, &params)?;
        evaluations += 1;
        for axis in &axes {
            progress(Step {
                pass,
                axis: axis.name,
                best,
            });
            let held = (axis.get)(&params);
            for &value in axis.values {
                if value == held {
                    continue;
                }
                let mut trial = params.clone();
                (axis.set)(&mut trial, value);
                let qoe = evaluate(bench, traces, kind, &trial)?;
                evaluations += 1;
                if qoe > best + 1e-9 {
                    (best, params) = (qoe, trial);
                }
            }
        }
        if params == before || axes.is_empty() {
            break;
        }
    }
    Ok(Tuned {
        params,
        qoe_per_chunk: best,
        evaluations,
    })
}

/// The folds of K-fold cross-validation over `n` traces in file-name order: trace `i`
/// is in fold `i % k`. Deterministic, disjoint, covering, and balanced to within one
/// trace; neighbours in name order (often runs of one route or one host) are spread
/// over the folds.
pub fn folds(n: usize, k: usize) -> Vec<Vec<usize>> {
    let k = k.max(1);
    (0..k).map(|f| (f..n).step_by(k).collect()).collect()
}

/// One fold of a cross-validation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fold {
    /// Traces tuned on.
    pub train_traces: usize,
    /// Traces scored (the left-out fold).
    pub test_traces: usize,
    /// Mean QoE per chunk on the training folds with the tuned parameters.
    pub train_qoe_per_chunk: f64,
    /// Mean QoE per chunk on the left-out fold.
    pub test_qoe_per_chunk: f64,
    /// The parameters tuned on the other folds (absent for algorithms without any).
    pub params: Option<AbrParams>,
}

/// A cross-validated report of one contender.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CvReport {
    /// Every trace scored once, by parameters tuned without it, in trace order.
    pub held_out: SetReport,
    /// Mean over folds of the fold means.
    pub fold_mean_qoe_per_chunk: f64,
    /// The folds.
    pub folds: Vec<Fold>,
}

/// K-fold cross-validation of every contender in `who` over `traces`: for each fold,
/// tunable algorithms are tuned on the other folds and scored on it; the rest are
/// scored as they are. Reports get their share of the optimum when it is among `who`.
pub fn cross_validate(
    bench: &Bench<'_>,
    traces: &[Trace],
    who: &[Contender],
    k: usize,
    progress: &(dyn Fn(usize, Step<'_>) + Sync),
) -> Result<Vec<CvReport>, SimError> {
    let split = folds(traces.len(), k);
    let mut reports = Vec::with_capacity(who.len());
    for &w in who {
        let tunable = matches!(w, Contender::Abr(kind) if !axes(kind).is_empty());
        let mut per_trace = vec![None; traces.len()];
        let mut fold_reports = Vec::with_capacity(split.len());
        for (f, test) in split.iter().enumerate() {
            let pick = |keep: &dyn Fn(usize) -> bool| -> Vec<Trace> {
                (0..traces.len())
                    .filter(|&i| keep(i))
                    .map(|i| traces[i].clone())
                    .collect()
            };
            let test_set = pick(&|i| test.binary_search(&i).is_ok());
            let train_set = pick(&|i| test.binary_search(&i).is_err());
            let (params, train_qoe) = match w {
                Contender::Abr(kind) if tunable => {
                    let start = start_point(kind);
                    let from = Bench {
                        params: &start,
                        ..*bench
                    };
                    let tuned = tune(&from, &train_set, kind, &|s| progress(f, s))?;
                    (Some(tuned.params), tuned.qoe_per_chunk)
                }
                _ => (None, f64::NAN),
            };
            let fold_bench = Bench {
                params: params.as_ref().unwrap_or(bench.params),
                ..*bench
            };
            let scored = fold_bench.run_set(&test_set, w)?;
            for (&i, s) in test.iter().zip(&scored.per_trace) {
                per_trace[i] = Some(s.clone());
            }
            fold_reports.push(Fold {
                train_traces: train_set.len(),
                test_traces: test_set.len(),
                train_qoe_per_chunk: train_qoe,
                test_qoe_per_chunk: scored.qoe_per_chunk_mean,
                params,
            });
        }
        let held_out = summarise(w, per_trace.into_iter().flatten().collect());
        let nonempty: Vec<f64> = fold_reports
            .iter()
            .filter(|f| f.test_traces > 0)
            .map(|f| f.test_qoe_per_chunk)
            .collect();
        reports.push(CvReport {
            held_out,
            fold_mean_qoe_per_chunk: nonempty.iter().sum::<f64>() / nonempty.len().max(1) as f64,
            folds: fold_reports,
        });
    }
    let mut held: Vec<SetReport> = reports.iter().map(|r| r.held_out.clone()).collect();
    set_shares(&mut held);
    for (r, h) in reports.iter_mut().zip(held) {
        r.held_out = h;
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_are_deterministic_disjoint_covering_and_balanced() {
        for (n, k) in [(71, 5), (30, 5), (68, 5), (3, 5), (10, 1), (0, 3)] {
            let a = folds(n, k);
            assert_eq!(a, folds(n, k), "deterministic");
            assert_eq!(a.len(), k);
            let mut all: Vec<usize> = a.concat();
            all.sort_unstable();
            assert_eq!(all, (0..n).collect::<Vec<_>>(), "disjoint and covering");
            let sizes: Vec<usize> = a.iter().map(Vec::len).collect();
            let (lo, hi) = (sizes.iter().min(), sizes.iter().max());
            assert!(hi.zip(lo).is_none_or(|(h, l)| h - l <= 1), "{sizes:?}");
        }
        assert_eq!(folds(7, 3), [vec![0, 3, 6], vec![1, 4], vec![2, 5]]);
    }

    #[test]
    fn quantiles_table() {
        assert_eq!(quantiles(vec![], 4), Vec::<f64>::new());
        assert_eq!(quantiles(vec![3.0, 1.0, 2.0, 4.0], 2), [2.0, 4.0]);
        assert_eq!(quantiles(vec![5.0, f64::NAN], 3), [5.0, 5.0, 5.0]);
    }

    #[test]
    fn only_rivulet_has_parameters_to_search_and_they_round_trip() {
        for kind in AbrKind::ALL {
            let axes = axes(kind);
            assert_eq!(axes.is_empty(), kind != AbrKind::Rivulet, "{kind}");
            for axis in axes {
                let mut p = AbrParams::default();
                for &v in axis.values {
                    (axis.set)(&mut p, v);
                    assert_eq!((axis.get)(&p), v, "{}", axis.name);
                }
            }
        }
    }
}
