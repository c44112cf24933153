//! ffmpeg as a real client: it reads the sample's HLS and DASH manifests from a running
//! origin and decodes every frame of every rendition without an error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::Server;
use origin::store::StoreLimits;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_decodes_every_frame_over_hls_and_dash() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = media::SampleOptions::new("small".parse().unwrap());
    options.duration = 4.0;
    options.progress = false;
    let (out, opts) = (dir.path().to_path_buf(), options.clone());
    tokio::task::spawn_blocking(move || media::build_sample(&out, &opts))
        .await
        .unwrap()
        .unwrap();
    let presentation: media::Presentation = serde_json::from_slice(
        &std::fs::read(dir.path().join("sample/presentation.json")).unwrap(),
    )
    .unwrap();
    let renditions = presentation.video().count();
    let frames = (options.duration * f64::from(options.fps)).round() as usize;

    let server = Server::start(dir.path(), None, StoreLimits::default()).await;
    for manifest in ["master.m3u8", "manifest.mpd"] {
        let url = server.url(&format!("/vod/sample/{manifest}"));
        let run = tokio::process::Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-xerror", "-i", &url])
            .args(["-map", "0:v", "-f", "framecrc", "-"])
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(Duration::from_secs(120), run)
            .await
            .expect("ffmpeg took over 120 s")
            .expect("ffmpeg must be installed (apt-get install -y ffmpeg)");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{manifest}: {stderr}");
        assert!(stderr.trim().is_empty(), "{manifest}: {stderr}");
        // framecrc: one line per decoded frame, starting with the stream index.
        let mut per_stream = BTreeMap::<String, usize>::new();
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            if let Some((stream, _)) = line.split_once(',')
                && !line.starts_with('#')
            {
                *per_stream.entry(stream.trim().to_owned()).or_default() += 1;
            }
        }
        assert_eq!(per_stream.len(), renditions, "{manifest}: {per_stream:?}");
        for (stream, count) in &per_stream {
            assert_eq!(*count, frames, "{manifest} stream {stream}");
        }
    }
}
