//! Sessions fed manifests written to hurt a player, from a small server on 127.0.0.1:0:
//! a few kilobytes of MPD asking for 20 million segments, a live MPD whose clock starts
//! in year 1 with a 2^32−1 timescale, HLS variants that together list more segments than
//! a presentation may, a media sequence that overflows. Each session must fail at once
//! with a one-line manifest error and never report a played presentation (issue 14,
//! defect 5).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use media::MediaError;
use player::session::{self, NoObserver, SessionConfig, SessionError};
use tokio_util::sync::CancellationToken;

#[path = "../../media/tests/support/mod.rs"]
mod support;
use support::mpd;

type Files = Arc<HashMap<String, String>>;

async fn serve(State(files): State<Files>, Path(path): Path<String>) -> (StatusCode, String) {
    match files.get(&path) {
        Some(body) => (StatusCode::OK, body.clone()),
        None => (StatusCode::NOT_FOUND, String::new()),
    }
}

async fn start(files: HashMap<String, String>) -> SocketAddr {
    let app = Router::new()
        .route("/{*path}", get(serve))
        .with_state(Arc::new(files));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A media playlist of `count` 2 s segments from media sequence `first`.
fn media_playlist(first: u64, count: usize) -> String {
    let mut m = format!(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:{first}\n\
         #EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MAP:URI=\"init.mp4\"\n"
    );
    for n in 0..count {
        m.push_str(&format!("#EXTINF:2,\n{n}.m4s\n"));
    }
    m.push_str("#EXT-X-ENDLIST\n");
    m
}

fn files() -> HashMap<String, String> {
    let mut files = HashMap::new();
    files.insert(
        "twenty.mpd".into(),
        mpd(
            "static",
            "mediaPresentationDuration=\"PT1000000S\"",
            20,
            r#"<SegmentTemplate timescale="1" duration="1" media="$RepresentationID$/$Number$.m4s"/>"#,
        ),
    );
    files.insert(
        "year1.mpd".into(),
        mpd(
            "dynamic",
            "availabilityStartTime=\"0001-01-01T00:00:00Z\" minimumUpdatePeriod=\"PT2S\"",
            2,
            r#"<SegmentTemplate timescale="4294967295" duration="1" startNumber="4294967295" media="$Number$.m4s"/>"#,
        ),
    );
    files.insert(
        "tiny.mpd".into(),
        mpd(
            "dynamic",
            "availabilityStartTime=\"2020-01-01T00:00:00Z\" minimumUpdatePeriod=\"PT2S\"",
            2,
            r#"<SegmentTemplate timescale="4294967295" duration="1" media="$Number$.m4s"/>"#,
        ),
    );
    // Four variants of 100,000 segments: each fits, together they do not.
    let mut master = String::from("#EXTM3U\n");
    for v in 0..4 {
        master.push_str(&format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={},CODECS=\"avc1.42c01e\"\nv{v}/index.m3u8\n",
            300_000 * (v + 1)
        ));
        files.insert(format!("v{v}/index.m3u8"), media_playlist(0, 100_000));
    }
    files.insert("master.m3u8".into(), master);
    files.insert(
        "overflow.m3u8".into(),
        media_playlist(u64::MAX, 2).replace("#EXT-X-PLAYLIST-TYPE:VOD\n", ""),
    );
    files
}

async fn play(url: String) -> Result<session::SessionReport, SessionError> {
    let mut c = SessionConfig::new(url.parse().unwrap());
    c.idle_timeout = Duration::from_secs(2);
    c.duration_s = Some(20.0);
    let client = session::http_client(2).unwrap();
    let stop = CancellationToken::new();
    let run = session::run(&client, &c, &NoObserver, &stop);
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the session must stop by itself")
}

#[tokio::test]
async fn hostile_manifests_fail_the_session_with_one_line() {
    let addr = start(files()).await;
    // (manifest, refused by a limit rather than as invalid, what the error says)
    let cases = [
        (
            "twenty.mpd",
            true,
            "segments in the manifest (all renditions together) over the limit of 300000",
        ),
        ("year1.mpd", false, "availabilityStartTime 0001-01-01"),
        (
            "tiny.mpd",
            true,
            "segment number over the limit of 9007199254740991",
        ),
        (
            "master.m3u8",
            true,
            "segments in the manifest (all renditions together) over the limit of 300000",
        ),
        ("overflow.m3u8", true, "segment number over the limit"),
    ];
    for (path, limit, says) in cases {
        let url = format!("http://{addr}/{path}");
        match play(url).await {
            Ok(report) => panic!(
                "{path}: reported {:?} with {} segments, error {:?}",
                report.end,
                report.segments.len(),
                report.error
            ),
            Err(e) => {
                let line = e.to_string();
                println!("{path}: {line}");
                assert!(!line.contains('\n'), "{path}: {line:?}");
                assert!(
                    line.contains(&addr.to_string()) && line.contains(says),
                    "{path}: {line}"
                );
                match &e {
                    SessionError::Manifest { source, .. } => assert_eq!(
                        matches!(source, MediaError::Limit { .. }),
                        limit,
                        "{path}: {e}"
                    ),
                    other => panic!("{path}: not a manifest error: {other}"),
                }
            }
        }
    }
}
