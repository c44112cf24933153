//! The simulator with `bba` and `robust-mpc` reproduces Pensieve's reference logs in
//! `tests/data/abr/reference/` (a copy of `shared/abr`) chunk by chunk, and the set means in
//! its `README.md`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

use player::abr::{AbrKind, AbrParams};
use player::sim::report::{Bench, Contender};
use player::sim::{ChunkLog, Rules, load, simulate};

const SETS: [&str; 3] = ["hsdpa_test", "fcc", "hsdpa_train"];
/// (reference algorithm name, registry name)
const ALGOS: [(&str, AbrKind); 2] = [("bb", AbrKind::Bba), ("robustmpc", AbrKind::RobustMpc)];

mod common;
use common::abr_data;

/// Relative closeness for summaries whose summation order may differ from the reference.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

type Key = (String, String, String); // set, trace, algorithm

/// Reference chunk rows grouped by (set, trace, algorithm), in chunk order.
fn reference_chunks(dir: &Path) -> BTreeMap<Key, Vec<Vec<String>>> {
    let text = std::fs::read_to_string(dir.join("reference/chunks_shared.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "set,trace,algorithm,chunk,quality,bitrate_kbps,buffer_after_s,rebuf_s,delay_ms,chunk_bytes,reward"
    );
    let mut map: BTreeMap<Key, Vec<Vec<String>>> = BTreeMap::new();
    for line in lines {
        let f: Vec<String> = line.split(',').map(str::to_owned).collect();
        let key = (f[0].clone(), f[1].clone(), f[2].clone());
        map.entry(key).or_default().push(f);
    }
    map
}

fn check_chunk(what: &str, k: usize, got: &ChunkLog, want: &[String]) {
    let num = |i: usize| want[i].parse::<f64>().unwrap();
    assert_eq!(want[3].parse::<usize>().unwrap(), k, "{what}: chunk order");
    assert_eq!(
        got.quality,
        want[4].parse::<usize>().unwrap(),
        "{what} chunk {k}: quality"
    );
    assert_eq!(
        got.bitrate_bps,
        want[5].parse::<u64>().unwrap() * 1000,
        "{what} chunk {k}"
    );
    assert_eq!(
        got.bytes,
        want[9].parse::<u64>().unwrap(),
        "{what} chunk {k}: bytes"
    );
    for (name, g, i) in [
        ("buffer", got.buffer_after_s, 6),
        ("rebuf", got.rebuf_s, 7),
        ("delay", got.delay_ms, 8),
        ("reward", got.reward, 10),
    ] {
        // Same float operations in the same order: bit for bit.
        assert_eq!(
            g.to_bits(),
            num(i).to_bits(),
            "{what} chunk {k}: {name} {g} vs {}",
            num(i)
        );
    }
}

#[test]
fn bba_and_robust_mpc_reproduce_reference_chunk_logs() {
    let dir = abr_data();
    let video = load::read_video(&dir.join("video/envivio_sizes.csv")).unwrap();
    let reference = reference_chunks(&dir);
    let mut checked = 0;
    for set in SETS {
        let traces = load::read_trace_dir(&dir.join("traces").join(set)).unwrap();
        for trace in &traces {
            for (ref_name, name) in ALGOS {
                let key = (set.to_owned(), trace.name.clone(), ref_name.to_owned());
                let want = reference
                    .get(&key)
                    .unwrap_or_else(|| panic!("no reference for {key:?}"));
                let mut abr = name.build(&AbrParams::default());
                let got = simulate(trace, &video, &Rules::PENSIEVE, abr.as_mut()).unwrap();
                assert_eq!(got.len(), want.len(), "{key:?}");
                let what = format!("{set}/{}/{name}", trace.name);
                for (k, (g, w)) in got.iter().zip(want).enumerate() {
                    check_chunk(&what, k, g, w);
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 2 * (71 + 30 + 68));
    assert_eq!(checked, reference.len());
}

#[test]
fn set_means_match_the_readme_table() {
    let dir = abr_data();
    let video = load::read_video(&dir.join("video/envivio_sizes.csv")).unwrap();
    // (set, n, BB QoE/chunk, BB total, robustMPC QoE/chunk, robustMPC total)
    let table = [
        ("hsdpa_test", 71, 0.638043, 29.9880, 0.831250, 39.0687),
        ("fcc", 30, 0.045557, 2.1412, 0.343016, 16.1217),
        ("hsdpa_train", 68, 0.515850, 24.2449, 0.618251, 29.0578),
    ];
    for (set, n, bb_chunk, bb_total, mpc_chunk, mpc_total) in table {
        let traces = load::read_trace_dir(&dir.join("traces").join(set)).unwrap();
        assert_eq!(traces.len(), n, "{set}");
        for (name, per_chunk, total) in [
            (AbrKind::Bba, bb_chunk, bb_total),
            (AbrKind::RobustMpc, mpc_chunk, mpc_total),
        ] {
            let params = AbrParams::default();
            let r = Bench::new(&video, &params)
                .run_set(&traces, Contender::Abr(name))
                .unwrap();
            assert!(
                (r.qoe_per_chunk_mean - per_chunk).abs() < 5e-7,
                "{set} {name}: {}",
                r.qoe_per_chunk_mean
            );
            assert!(
                (r.qoe_total_mean - total).abs() < 5e-5,
                "{set} {name}: {}",
                r.qoe_total_mean
            );
        }
    }
}

#[test]
fn per_trace_scores_match_the_reference() {
    let dir = abr_data();
    let video = load::read_video(&dir.join("video/envivio_sizes.csv")).unwrap();
    let text = std::fs::read_to_string(dir.join("reference/per_trace_shared.csv")).unwrap();
    let mut want: BTreeMap<Key, Vec<f64>> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let nums = f[3..].iter().map(|v| v.parse().unwrap()).collect();
        want.insert((f[0].into(), f[1].into(), f[2].into()), nums);
    }
    for set in SETS {
        let traces = load::read_trace_dir(&dir.join("traces").join(set)).unwrap();
        for (ref_name, name) in ALGOS {
            let params = AbrParams::default();
            let r = Bench::new(&video, &params)
                .run_set(&traces, Contender::Abr(name))
                .unwrap();
            for t in &r.per_trace {
                let w = &want[&(set.to_owned(), t.name.clone(), ref_name.to_owned())];
                // qoe_sum_chunks1_47, qoe_per_chunk, mean_bitrate_mbps, rebuf_s_chunks1_47,
                // startup_s, mean_switch_mbps
                let got = [
                    t.qoe_total,
                    t.qoe_per_chunk,
                    t.bitrate_mbps_mean,
                    t.rebuffer_s,
                    t.startup_s,
                    t.switch_mbps_mean,
                ];
                for (i, (g, w)) in got.iter().zip(w).enumerate() {
                    assert!(
                        close(*g, *w),
                        "{set}/{}/{name} column {i}: {g} vs {w}",
                        t.name
                    );
                }
            }
        }
    }
}
