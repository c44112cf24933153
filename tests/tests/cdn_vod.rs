//! VOD through the CDN path: ffmpeg, a real client, reads the sample from the origin and
//! through an edge, by HLS and by DASH, and decodes every frame without an error; the
//! second reader is served from the edge's cache.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use rivulet_tests::{
    ffmpeg_decode, ffprobe_video_frames, sample_library, start_edge, start_origin,
};

const DURATION: f64 = 8.0;

fn library() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cdn-vod-library");
    sample_library(&dir, DURATION).unwrap()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_plays_hls_and_dash_from_origin_and_through_edge() {
    let library = library();
    let origin = start_origin(&library).await.unwrap();
    let edge = start_edge(origin, "edge-e2e").await.unwrap();
    let frames = (DURATION * 30.0) as u64;
    for host in [origin, edge] {
        for manifest in ["master.m3u8", "manifest.mpd"] {
            let url = format!("http://{host}/vod/sample/{manifest}");
            let u = url.clone();
            blocking(move || ffmpeg_decode(&u, &[])).await.unwrap();
            let u = url.clone();
            let counts = blocking(move || ffprobe_video_frames(&u)).await.unwrap();
            assert_eq!(counts, [frames, frames, frames], "{url}");
        }
    }
    // Everything ffmpeg read through the edge was stored: a repeat is a hit. The
    // manifests name the media under the current build's token (versioned URLs).
    let client = reqwest::Client::new();
    let master = client
        .get(format!("http://{edge}/vod/sample/master.m3u8"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = master
        .lines()
        .find(|l| l.starts_with("v-"))
        .and_then(|uri| uri.split('/').next())
        .unwrap_or_else(|| panic!("no versioned URI in {master}"));
    let url = format!("http://{edge}/vod/sample/{token}/720p-1850k/2.m4s");
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let status = response.headers()["cache-status"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(status.starts_with("edge-e2e; hit"), "{status}");
    let from_edge = response.bytes().await.unwrap();
    let from_origin = client
        .get(format!("http://{origin}/vod/sample/720p-1850k/2.m4s"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(from_edge, from_origin);
}
