//! The `player simulate` command line: JSON shape, the `all` table, helpful errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

mod common;
use common::abr_data;

fn simulate(abr: &str, extra: &[&str]) -> Output {
    let dir = abr_data();
    Command::new(env!("CARGO_BIN_EXE_player"))
        .arg("simulate")
        .arg("--traces")
        .arg(dir.join("traces/fcc"))
        .arg("--video")
        .arg(dir.join("video/envivio_sizes.csv"))
        .args(["--abr", abr])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn json_is_one_object_with_the_documented_fields() {
    let out = simulate("bba", &["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["abr"], "bba");
    assert_eq!(v["traces"], 30);
    // README table: BB on fcc.
    assert!((v["qoe_per_chunk_mean"].as_f64().unwrap() - 0.045557).abs() < 5e-7);
    for key in [
        "qoe_per_chunk_median",
        "bitrate_mbps_mean",
        "rebuffer_s_total",
        "switch_mbps_mean",
    ] {
        assert!(v[key].is_number(), "{key}");
    }
    let per = v["per_trace"].as_array().unwrap();
    assert_eq!(per.len(), 30);
    // Byte order of file names.
    assert_eq!(per[0]["name"], "trace_10322_http---edition.cnn.com");
    assert!(per[0]["qoe_per_chunk"].is_number());
}

#[test]
fn all_prints_one_row_per_algorithm_and_the_optimum() {
    let out = simulate("all", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for name in player::abr::AbrKind::ALL
        .map(player::abr::AbrKind::name)
        .into_iter()
        .chain(["optimal"])
    {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} missing:\n{text}"
        );
    }
}

#[test]
fn unknown_algorithm_lists_the_known_ones() {
    let out = simulate("pensieve", &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("pensieve") && err.contains("robust-mpc"),
        "{err}"
    );
}

#[test]
fn load_refuses_to_run_unbounded() {
    for args in [
        &["--duration", "10"][..],
        &["--sessions", "10"][..],
        &["--sessions", "0", "--duration", "10"][..],
        &["--sessions", "10", "--duration", "10", "--ramp", "20"][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_player"))
            .args(["load", "http://127.0.0.1:9/master.m3u8"])
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--sessions") || err.contains("--duration") || err.contains("--ramp"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn tune_writes_a_file_that_simulate_loads_and_reports_shares_of_the_optimum() {
    let dir = abr_data();
    let train = tempfile::tempdir().unwrap();
    let mut names: Vec<_> = std::fs::read_dir(dir.join("traces/hsdpa_train"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for path in names.iter().take(4) {
        std::fs::copy(path, train.path().join(path.file_name().unwrap())).unwrap();
    }
    let params = train.path().join("params.json");
    let out = Command::new(env!("CARGO_BIN_EXE_player"))
        .arg("tune")
        .arg("--traces")
        .arg(train.path())
        .arg("--video")
        .arg(dir.join("video/envivio_sizes.csv"))
        .arg("--out")
        .arg(&params)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&params).unwrap()).unwrap();
    assert_eq!(file["tuned"]["training_traces"], 4);
    assert!(file["rivulet"]["horizon"].is_u64());
    let out = simulate(
        "rivulet",
        &["--json", "--abr-params", params.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["abr"], "rivulet");
    let share = v["share_of_optimum"].as_f64().unwrap();
    assert!(share > 0.0 && share <= 1.0, "{share}");
    // A file that is not a parameter file is refused with its name.
    let out = simulate("rivulet", &["--abr-params", "Cargo.toml"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Cargo.toml"));
}
