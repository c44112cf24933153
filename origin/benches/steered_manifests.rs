//! What a steered VOD manifest costs per request, now that it is kept per version of the
//! asset's `presentation.json`, beside what writing and hashing it costs (the work every
//! request did before) and a plain file of the library as the floor. In-process requests
//! through the origin's router (no sockets), so the figures are the origin's own work.
//!
//! `cargo bench -p origin --bench steered_manifests` (prints a table and one JSON line).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use axum::body::Body;
use http::Request;
use http_body_util::BodyExt;
use media::SteeringProtocol;
use origin::entity::tag_of;
use origin::steering::SteeringConfig;
use origin::steering::manifests::{VodSource, delivery, write_vod};
use origin::{AppState, OriginConfig};
use tower::ServiceExt;

#[path = "../tests/common/mod.rs"]
mod common;

const REQUESTS: u32 = 20_000;

/// Mean time per GET of `path` over [`REQUESTS`] requests, body read.
async fn per_request(app: &axum::Router, path: &str) -> Duration {
    let started = Instant::now();
    for _ in 0..REQUESTS {
        let request = Request::get(path).body(Body::empty()).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        response.into_body().collect().await.unwrap();
    }
    started.elapsed() / REQUESTS
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let library = common::small_sample().to_path_buf();
        let edges = ["e1=http://127.0.0.1:1", "e2=http://127.0.0.1:1/two"]
            .iter()
            .map(|e| e.parse().unwrap())
            .collect();
        let state = AppState::new(&OriginConfig::new(&library))
            .with_steering(SteeringConfig::new(edges))
            .unwrap();
        let app = origin::router(state.clone());

        let mut rows = Vec::new();
        for (label, path) in [
            ("steered master.m3u8 (cached)", "/vod/sample/master.m3u8"),
            ("steered manifest.mpd (cached)", "/vod/sample/manifest.mpd"),
            ("plain file index.m3u8", "/vod/sample/270p-300k/index.m3u8"),
        ] {
            per_request(&app, path).await; // warm: store and manifest cache filled
            rows.push((label, per_request(&app, path).await));
        }
        // What each steered request used to add: parse the model, write, hash.
        let model = std::fs::read(library.join("sample/presentation.json")).unwrap();
        let steering = state.steering().unwrap();
        for (label, protocol) in [
            ("write + hash master.m3u8", SteeringProtocol::Hls),
            ("write + hash manifest.mpd", SteeringProtocol::Dash),
        ] {
            let started = Instant::now();
            for _ in 0..REQUESTS / 10 {
                let d = delivery(&steering.config().edges, "vod/sample", protocol);
                let text = write_vod(VodSource::Model(&model), d, protocol).unwrap();
                std::hint::black_box(tag_of(text.as_bytes()));
            }
            rows.push((label, started.elapsed() / (REQUESTS / 10)));
        }
        println!("{:<32} {:>10}", "per request", "µs");
        for (label, t) in &rows {
            println!("{label:<32} {:>10.1}", t.as_secs_f64() * 1e6);
        }
        let us = |i: usize| rows[i].1.as_secs_f64() * 1e6;
        println!(
            "uncached/cached: HLS {:.1}×, DASH {:.1}×",
            (us(0) + us(3)) / us(0),
            (us(1) + us(4)) / us(1)
        );
        let json: serde_json::Value = rows
            .iter()
            .map(|(label, t)| {
                (
                    (*label).to_owned(),
                    serde_json::json!(t.as_secs_f64() * 1e6),
                )
            })
            .collect::<serde_json::Map<_, _>>()
            .into();
        println!("{json}");
    });
}
