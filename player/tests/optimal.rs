//! The offline optimum (`--abr optimal`) and the honest protocol on the shared traces:
//! the optimum scores at least as well as every online algorithm on every trace, a finer
//! buffer grid does not move it, and cross-validation scores every trace exactly once
//! with parameters tuned without it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use player::abr::{AbrKind, AbrParams};
use player::sim::report::{Bench, Contender};
use player::sim::{Trace, Video, load, tune};

const SETS: [&str; 3] = ["hsdpa_test", "fcc", "hsdpa_train"];

mod common;
use common::abr_data;

fn data(set: &str) -> (Vec<Trace>, Video) {
    let dir = abr_data();
    (
        load::read_trace_dir(&dir.join("traces").join(set)).unwrap(),
        load::read_video(&dir.join("video/envivio_sizes.csv")).unwrap(),
    )
}

#[test]
fn the_optimum_is_at_least_every_algorithm_on_every_trace() {
    let params = AbrParams::default();
    for set in SETS {
        let (traces, video) = data(set);
        let reports = Bench::new(&video, &params)
            .run_sets(&traces, &Contender::all())
            .unwrap();
        let best = reports
            .iter()
            .find(|r| r.abr == Contender::Optimal)
            .unwrap();
        assert_eq!(best.share_of_optimum, Some(1.0));
        for r in &reports {
            let share = r.share_of_optimum.unwrap();
            assert!(share <= 1.0, "{set} {}: share {share}", r.abr);
            for (ours, opt) in r.per_trace.iter().zip(&best.per_trace) {
                assert_eq!(ours.name, opt.name);
                assert!(
                    opt.qoe_total >= ours.qoe_total - 1e-9,
                    "{set}/{}: {} scores {} > optimum {}",
                    ours.name,
                    r.abr,
                    ours.qoe_total,
                    opt.qoe_total
                );
            }
        }
    }
}

/// README, "The offline optimum": halving the buffer quantum moves no set's mean by more
/// than 0.001 QoE per chunk. Every fourth trace of each set keeps the test quick; `player simulate --abr optimal --optimal-step 10ms` runs the
/// whole sets.
#[test]
fn a_finer_buffer_grid_does_not_move_the_optimum() {
    let params = AbrParams::default();
    for set in SETS {
        let (traces, video) = data(set);
        let subset: Vec<Trace> = traces.into_iter().step_by(4).collect();
        let mean_at = |step_ms: f64| {
            let bench = Bench {
                optimal_step_ms: step_ms,
                ..Bench::new(&video, &params)
            };
            bench
                .run_set(&subset, Contender::Optimal)
                .unwrap()
                .qoe_per_chunk_mean
        };
        let coarse = mean_at(player::sim::optimal::BUFFER_STEP_MS);
        let finer = player::sim::optimal::BUFFER_STEP_MS / 2.0;
        let fine = mean_at(finer);
        assert!(
            (fine - coarse).abs() <= 0.001,
            "{set}: {coarse} at the default grid, {fine} at {finer} ms"
        );
    }
}

#[test]
fn cross_validation_scores_every_trace_once_with_parameters_tuned_without_it() {
    let (traces, video) = data("fcc");
    let traces: Vec<Trace> = traces.into_iter().take(6).collect();
    let params = AbrParams::default();
    let bench = Bench::new(&video, &params);
    let who = [
        Contender::Abr(AbrKind::Rivulet),
        Contender::Abr(AbrKind::Bba),
    ];
    let cv = tune::cross_validate(&bench, &traces, &who, 3, &|_, _| {}).unwrap();
    assert_eq!(cv.len(), 2);
    let names: Vec<&str> = traces.iter().map(|t| t.name.as_str()).collect();
    for r in &cv {
        let scored: Vec<&str> = r
            .held_out
            .per_trace
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(scored, names, "every trace once, in order");
        assert_eq!(r.folds.len(), 3);
        for f in &r.folds {
            assert_eq!((f.train_traces, f.test_traces), (4, 2));
        }
    }
    // Rivulet is tuned per fold; BBA has nothing to tune and scores as it is.
    assert!(cv[0].folds.iter().all(|f| f.params.is_some()));
    assert!(cv[1].folds.iter().all(|f| f.params.is_none()));
    let plain = bench
        .run_set(&traces, Contender::Abr(AbrKind::Bba))
        .unwrap();
    assert_eq!(cv[1].held_out.per_trace, plain.per_trace);
    // The tuned parameters of a fold are those a search on its training traces finds.
    let start = tune::start_point(AbrKind::Rivulet);
    let train: Vec<Trace> = [1, 2, 4, 5].map(|i| traces[i].clone()).to_vec();
    let tuned = tune::tune(
        &Bench::new(&video, &start),
        &train,
        AbrKind::Rivulet,
        &|_| {},
    )
    .unwrap();
    assert_eq!(cv[0].folds[0].params.as_ref(), Some(&tuned.params));
}
