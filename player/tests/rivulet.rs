//! `rivulet` with its shipped parameters, tuned on `hsdpa_train` alone (`abr/rivulet.json`),
//! on the two sets the tuning never saw (chunk 0 skipped): above robust MPC in QoE, with
//! no more stall time and no more switches, and above the floors the README reports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use player::abr::{AbrKind, AbrParams};
use player::sim::load;
use player::sim::report::{Bench, Contender};

mod common;
use common::abr_data;

#[test]
fn rivulet_beats_robust_mpc_on_sets_its_tuning_never_saw() {
    let dir = abr_data();
    let params = AbrParams::default();
    let tuned_on = params
        .tuned
        .as_ref()
        .expect("the shipped file says how it was made");
    assert!(
        tuned_on.command.contains("hsdpa_train"),
        "tuned on {}",
        tuned_on.command
    );
    let video = load::read_video(&dir.join("video/envivio_sizes.csv")).unwrap();
    for (set, floor) in [("hsdpa_test", 0.98_f64), ("fcc", 0.38)] {
        let traces = load::read_trace_dir(&dir.join("traces").join(set)).unwrap();
        let bench = Bench::new(&video, &params);
        let ours = bench
            .run_set(&traces, Contender::Abr(AbrKind::Rivulet))
            .unwrap();
        let mpc = bench
            .run_set(&traces, Contender::Abr(AbrKind::RobustMpc))
            .unwrap();
        assert!(
            ours.qoe_per_chunk_mean >= floor.max(mpc.qoe_per_chunk_mean),
            "{set}: {} (robust MPC {})",
            ours.qoe_per_chunk_mean,
            mpc.qoe_per_chunk_mean
        );
        assert!(
            ours.rebuffer_s_total <= mpc.rebuffer_s_total,
            "{set}: stall {} s > robust MPC's {} s",
            ours.rebuffer_s_total,
            mpc.rebuffer_s_total
        );
        assert!(
            ours.switches_mean <= mpc.switches_mean,
            "{set}: more switches than robust MPC"
        );
    }
}
