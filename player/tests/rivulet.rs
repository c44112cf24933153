//! `rivulet` meets its targets on the shared traces (chunk 0 skipped): at least 0.96 QoE
//! per chunk on `hsdpa_test` and 0.40 on `fcc`, with no more stall time than robust MPC.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use player::abr::{AbrKind, AbrParams};
use player::sim::load;
use player::sim::report::{Bench, Contender};

#[test]
fn rivulet_beats_the_targets_with_less_stall_than_robust_mpc() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/abr"));
    assert!(
        dir.join("README.md").is_file(),
        "ABR test data missing at {}: this test needs it",
        dir.display()
    );
    let video = load::read_video(&dir.join("video/envivio_sizes.csv")).unwrap();
    for (set, target) in [("hsdpa_test", 0.96), ("fcc", 0.40)] {
        let traces = load::read_trace_dir(&dir.join("traces").join(set)).unwrap();
        let params = AbrParams::default();
        let bench = Bench::new(&video, &params);
        let ours = bench.run_set(&traces, Contender::Abr(AbrKind::Rivulet)).unwrap();
        let mpc = bench.run_set(&traces, Contender::Abr(AbrKind::RobustMpc)).unwrap();
        assert!(
            ours.qoe_per_chunk_mean >= target,
            "{set}: {} < {target}",
            ours.qoe_per_chunk_mean
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
