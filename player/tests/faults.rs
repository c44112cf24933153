//! Real-time sessions against a purpose-built HLS server on 127.0.0.1:0 that misbehaves on
//! request: 404s, bodies cut mid-way, silence, slow drips, malformed manifests. It also
//! offers the presentation over two pathways (`a/…`, `b/…`) with a steering server, to
//! show steering and failover. Every session has a deadline, so a bug shows as a failed
//! assertion, never a hang.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use futures::StreamExt as _;
use media::cmaf::{Sample, VideoTrack, media_segment, video_init_segment};
use player::abr::AbrKind;
use player::link::{LinkModel, Rate};
use player::session::clock::PlayState;
use player::session::{
    self, End, ErrorKind, NoObserver, SessionConfig, SessionError, SessionReport,
};
use tokio_util::sync::CancellationToken;

/// Renditions of the fake: id and bitrate; three 1 s segments each.
const LADDER: [(&str, u64); 2] = [("lo", 300_000), ("hi", 800_000)];
const SEGMENTS: usize = 3;
/// Pathways of `steered.m3u8`, the default first; the steering manifest prefers `b`.
const PATHWAYS: [&str; 2] = ["a", "b"];
const STEERING: &str = r#"{"VERSION":1,"TTL":1,"PATHWAY-PRIORITY":["b","a"]}"#;

/// How one request is answered.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    Status(u16),
    /// Announce the full length, send half, then break the connection.
    CutBody,
    /// Never answer.
    Silent,
    /// 5 kB every 100 ms.
    Drip,
    /// A body that is no manifest at all.
    Garbage,
    /// A multivariant playlist with a broken attribute.
    BadPlaylist,
    /// Random bytes, as many as the body has.
    NotMedia,
    /// The next segment's bytes instead (a stale or mixed-up cache).
    NextSegment,
}

/// `fault(path, attempt)` decides per request (attempts count from 1 per path).
type Script = fn(&str, usize) -> Option<Fault>;

#[derive(Clone)]
struct Fake {
    script: Script,
    seen: Arc<Mutex<HashMap<String, usize>>>,
}

/// The multivariant playlist; with `pathways`, the ladder once under each (`a/lo/…`) and
/// a steering server, the first pathway the default.
fn master(pathways: &[&str]) -> String {
    let mut m = String::from("#EXTM3U\n#EXT-X-VERSION:7\n");
    let copies: Vec<(String, String)> = match pathways.first() {
        None => vec![(String::new(), String::new())],
        Some(first) => {
            m.push_str(&format!(
                "#EXT-X-CONTENT-STEERING:SERVER-URI=\"steer.json\",PATHWAY-ID=\"{first}\"\n"
            ));
            pathways
                .iter()
                .map(|p| (format!("{p}/"), format!(",PATHWAY-ID=\"{p}\"")))
                .collect()
        }
    };
    for (prefix, attribute) in copies {
        for (id, bps) in LADDER {
            m.push_str(&format!(
                "#EXT-X-STREAM-INF:BANDWIDTH={bps},CODECS=\"avc1.42c01e\"{attribute}\n\
                 {prefix}{id}/index.m3u8\n"
            ));
        }
    }
    m
}

fn media_playlist() -> String {
    let mut m = String::from(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:1\n\
         #EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MAP:URI=\"init.mp4\"\n",
    );
    for n in 1..=SEGMENTS {
        m.push_str(&format!("#EXTINF:1.0,\n{n}.m4s\n"));
    }
    m.push_str("#EXT-X-ENDLIST\n");
    m
}

fn body_for(path: &str) -> Option<Vec<u8>> {
    match path {
        "master.m3u8" => return Some(master(&[]).into_bytes()),
        "steered.m3u8" => return Some(master(&PATHWAYS).into_bytes()),
        "steer.json" => return Some(STEERING.into()),
        _ => {}
    }
    // Every pathway serves the same files.
    let path = PATHWAYS
        .iter()
        .find_map(|p| path.strip_prefix(p)?.strip_prefix('/'))
        .unwrap_or(path);
    let (id, file) = path.split_once('/')?;
    let (_, bps) = LADDER.iter().find(|(r, _)| *r == id)?;
    match file {
        "index.m3u8" => Some(media_playlist().into_bytes()),
        "init.mp4" => Some(init_segment()),
        f => segment_of(f, (*bps / 8) as usize),
    }
}

/// The init segment of every rendition: one H.264 track at 90 kHz.
fn init_segment() -> Vec<u8> {
    video_init_segment(&VideoTrack {
        timescale: 90_000,
        width: 640,
        height: 360,
        sps: vec![0x67, 0x42, 0xc0, 0x1e, 0xda],
        pps: vec![0x68, 0xce, 0x3c, 0x80],
    })
    .unwrap()
}

/// Media segment `N.m4s` (from 1): one second of 30 frames from `N - 1` s on, `bytes`
/// long (one second at the rendition's bitrate).
fn segment_of(file: &str, bytes: usize) -> Option<Vec<u8>> {
    let number: u32 = file.strip_suffix(".m4s")?.parse().ok()?;
    let build = |first: usize| {
        let samples: Vec<Sample> = (0..30)
            .map(|i| Sample {
                data: vec![0; if i == 0 { first } else { 100 }],
                duration: 3000,
                sync: i == 0,
                composition_offset: 0,
            })
            .collect();
        media_segment(number, u64::from(number - 1) * 90_000, &samples).unwrap()
    };
    // The boxes around the samples do not depend on their sizes: pad the first to size.
    let first = 100 + bytes.checked_sub(build(100).len())?;
    Some(build(first))
}

async fn serve(
    State(fake): State<Fake>,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let attempt = {
        let mut seen = fake.seen.lock().unwrap();
        // Steering requests are told apart by their query (the client's pathway and
        // throughput).
        let key = match (&*path, query) {
            ("steer.json", Some(q)) => format!("{path}?{q}"),
            _ => path.clone(),
        };
        let n = seen.entry(key).or_default();
        *n += 1;
        *n
    };
    let Some(body) = body_for(&path) else {
        return status(404);
    };
    let len = body.len();
    match (fake.script)(&path, attempt) {
        None => Response::new(Body::from(body)),
        Some(Fault::Status(code)) => status(code),
        Some(Fault::Garbage) => Response::new(Body::from("<html>not a manifest</html>")),
        Some(Fault::BadPlaylist) => Response::new(Body::from(
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=x\nlo/index.m3u8\n",
        )),
        Some(Fault::NotMedia) => Response::new(Body::from(
            (0..len).map(|_| rand::random::<u8>()).collect::<Vec<u8>>(),
        )),
        Some(Fault::NextSegment) => {
            let (stem, n) = path
                .rsplit_once('/')
                .and_then(|(dir, file)| {
                    Some((dir, file.strip_suffix(".m4s")?.parse::<u32>().ok()?))
                })
                .unwrap();
            Response::new(Body::from(
                body_for(&format!("{stem}/{}.m4s", n + 1)).unwrap(),
            ))
        }
        Some(Fault::Silent) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            status(500)
        }
        Some(Fault::CutBody) => {
            let half = bytes::Bytes::from(body[..len / 2].to_vec());
            // The break comes after the head and the first half have gone out.
            let stream = futures::stream::iter([Ok(half), Err(std::io::Error::other("cut"))]).then(
                |item| async {
                    if item.is_err() {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    item
                },
            );
            with_length(Body::from_stream(stream), len)
        }
        Some(Fault::Drip) => {
            let chunks: Vec<bytes::Bytes> = body
                .chunks(5000)
                .map(|c| bytes::Bytes::from(c.to_vec()))
                .collect();
            let stream = futures::stream::iter(chunks).then(|c| async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok::<_, std::io::Error>(c)
            });
            with_length(Body::from_stream(stream), len)
        }
    }
}

fn status(code: u16) -> Response {
    let mut r = Response::new(Body::from("no"));
    *r.status_mut() = StatusCode::from_u16(code).unwrap();
    r
}

fn with_length(body: Body, len: usize) -> Response {
    let mut r = Response::new(body);
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, len.to_string().parse().unwrap());
    r
}

/// Starts the fake; it lives as long as the test's runtime.
async fn start(script: Script) -> (SocketAddr, Arc<Mutex<HashMap<String, usize>>>) {
    let fake = Fake {
        script,
        seen: Arc::default(),
    };
    let seen = fake.seen.clone();
    let app = Router::new().route("/{*path}", get(serve)).with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

fn config(addr: SocketAddr) -> SessionConfig {
    let mut c = SessionConfig::new(format!("http://{addr}/master.m3u8").parse().unwrap());
    c.startup_s = 1.0;
    c.resume_s = 1.0;
    c.idle_timeout = Duration::from_secs(2);
    c.duration_s = Some(20.0);
    // On loopback it always picks the top rendition, which makes the faults land.
    c.abr = AbrKind::Throughput;
    c
}

async fn play(c: &SessionConfig) -> Result<SessionReport, SessionError> {
    let client = session::http_client(6).unwrap();
    let stop = CancellationToken::new();
    let run = session::run(&client, c, &NoObserver, &stop);
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the session must stop by itself")
}

#[tokio::test]
async fn a_clean_server_plays_to_the_end() {
    let (addr, _) = start(|_, _| None).await;
    let r = play(&config(addr)).await.unwrap();
    assert_eq!(r.end, End::Complete, "{r:?}");
    assert_eq!(r.segments.len(), SEGMENTS);
    assert_eq!(r.summary.rebuffer_count, 0);
    assert!((r.summary.played_s - 3.0).abs() < 1e-6);
    assert_eq!(r.bitrates_bps, [300_000, 800_000]);
    assert!(r.summary.counters.errors.is_empty());
    // master, 2 media playlists, one init and three segments (all at the top).
    assert_eq!(r.summary.counters.requests, 7, "{:?}", r.segments);
}

#[tokio::test]
async fn a_404_on_one_rendition_falls_back_a_rendition_lower() {
    let (addr, _) = start(|path, _| (path == "hi/2.m4s").then_some(Fault::Status(404))).await;
    let r = play(&config(addr)).await.unwrap();
    assert_eq!(r.end, End::Complete, "{r:?}");
    assert_eq!(r.segments.len(), SEGMENTS);
    assert_eq!((r.segments[1].quality, r.segments[1].retries), (0, 1));
    assert_eq!(r.summary.counters.errors[&ErrorKind::Status4xx], 1);
}

#[tokio::test]
async fn a_segment_missing_everywhere_ends_the_session_with_the_error() {
    let (addr, seen) =
        start(|path, _| path.ends_with("/2.m4s").then_some(Fault::Status(404))).await;
    let r = play(&config(addr)).await.unwrap();
    assert_eq!(r.end, End::Failed);
    let error = r.error.unwrap();
    assert!(
        error.contains("HTTP 404") && error.contains("2.m4s"),
        "{error}"
    );
    assert_eq!(r.segments.len(), 1);
    assert_eq!(r.summary.counters.errors[&ErrorKind::Status4xx], 4);
    let seen = seen.lock().unwrap();
    assert_eq!(seen["hi/2.m4s"] + seen["lo/2.m4s"], 4, "{seen:?}");
}

#[tokio::test]
async fn a_body_cut_midway_is_retried() {
    let (addr, _) =
        start(|path, attempt| (path == "hi/2.m4s" && attempt == 1).then_some(Fault::CutBody)).await;
    let r = play(&config(addr)).await.unwrap();
    assert_eq!(r.end, End::Complete, "{r:?}");
    assert_eq!((r.segments[1].quality, r.segments[1].retries), (1, 1));
    assert_eq!(
        r.summary.counters.errors.get(&ErrorKind::Body),
        Some(&1),
        "{:?}",
        r.summary.counters
    );
}

#[tokio::test]
async fn a_transient_manifest_error_is_retried() {
    let (addr, _) =
        start(|path, attempt| (path == "master.m3u8" && attempt < 3).then_some(Fault::Status(503)))
            .await;
    let r = play(&config(addr)).await.unwrap();
    assert_eq!(r.end, End::Complete);
    assert_eq!(r.summary.counters.errors[&ErrorKind::Status5xx], 2);
}

#[tokio::test]
async fn segments_that_are_never_media_fail_the_session_as_media_errors() {
    let (addr, _) = start(|path, _| path.ends_with(".m4s").then_some(Fault::NotMedia)).await;
    let r = play(&config(addr)).await.unwrap();
    assert_eq!(r.end, End::Failed, "{r:?}");
    let error = r.error.unwrap();
    assert!(error.contains("not media"), "{error}");
    assert!(r.segments.is_empty());
    // The first try and three retries, each one rendition lower while there is one.
    assert_eq!(r.summary.counters.errors[&ErrorKind::Media], 4);
    assert_eq!(
        r.summary.counters.errors.len(),
        1,
        "{:?}",
        r.summary.counters
    );
}

#[tokio::test]
async fn a_segment_that_is_not_media_is_fetched_a_rendition_lower() {
    let (addr, _) = start(|path, _| (path == "hi/2.m4s").then_some(Fault::NotMedia)).await;
    let r = play(&config(addr)).await.unwrap();
    assert_eq!(r.end, End::Complete, "{r:?}");
    assert_eq!((r.segments[1].quality, r.segments[1].retries), (0, 1));
    assert_eq!(r.summary.counters.errors[&ErrorKind::Media], 1);
}

#[tokio::test]
async fn the_wrong_segment_is_caught_by_its_timestamps() {
    // Media, but segment 3 where 2 should be: its tfdt does not continue segment 1's.
    let (addr, _) = start(|path, _| (path == "hi/2.m4s").then_some(Fault::NextSegment)).await;
    let r = play(&config(addr)).await.unwrap();
    assert_eq!(r.end, End::Complete, "{r:?}");
    assert_eq!((r.segments[1].quality, r.segments[1].retries), (0, 1));
    assert_eq!(r.summary.counters.errors[&ErrorKind::Media], 1);
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let (addr, _) = start(|path, _| path.ends_with("/2.m4s").then_some(Fault::Silent)).await;
    let mut c = config(addr);
    c.idle_timeout = Duration::from_millis(500);
    c.retries = 1;
    let started = std::time::Instant::now();
    let r = play(&c).await.unwrap();
    assert_eq!(r.end, End::Failed);
    assert!(r.error.unwrap().contains("nothing received"));
    assert_eq!(r.summary.counters.errors[&ErrorKind::Timeout], 2);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn malformed_and_missing_manifests_are_clear_errors() {
    let (garbage, _) = start(|path, _| (path == "master.m3u8").then_some(Fault::Garbage)).await;
    let e = play(&config(garbage)).await.unwrap_err();
    assert!(matches!(e, SessionError::NotAManifest { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("neither an HLS playlist nor a DASH MPD"),
        "{e}"
    );

    let (bad, _) = start(|path, _| (path == "master.m3u8").then_some(Fault::BadPlaylist)).await;
    let e = play(&config(bad)).await.unwrap_err();
    assert!(matches!(e, SessionError::Manifest { .. }), "{e}");

    let (missing, _) =
        start(|path, _| (path == "hi/index.m3u8").then_some(Fault::Status(404))).await;
    let e = play(&config(missing)).await.unwrap_err();
    assert!(e.to_string().contains("HTTP 404"), "{e}");
}

#[tokio::test]
async fn a_download_that_would_stall_is_abandoned_for_a_lower_rendition() {
    let (addr, _) = start(|path, _| (path == "hi/2.m4s").then_some(Fault::Drip)).await;
    let r = play(&config(addr)).await.unwrap();
    assert_eq!(r.end, End::Complete, "{r:?}");
    assert_eq!(
        (r.segments[1].quality, r.segments[1].abandoned),
        (0, 1),
        "{:?}",
        r.segments[1]
    );
    assert_eq!(r.summary.counters.abandoned, 1);
}

#[tokio::test]
async fn a_shaped_link_paces_the_downloads() {
    let (addr, _) = start(|_, _| None).await;
    let mut c = config(addr);
    c.link = LinkModel {
        rate: Some(Rate::Constant(2e6)),
        latency_s: 0.05,
    };
    let r = play(&c).await.unwrap();
    assert_eq!(r.end, End::Complete);
    for s in &r.segments {
        assert!(s.ttfb_ms >= 50.0, "{s:?}");
        // 100 kB at 2 Mbit/s: 0.4 s.
        if s.quality == 1 {
            let ratio = s.throughput_bps / 2e6;
            assert!((0.95..1.05).contains(&ratio), "{s:?}");
        }
    }
}

#[tokio::test]
async fn cancelling_stops_a_session_with_its_report() {
    let (addr, seen) = start(|path, _| path.ends_with("/2.m4s").then_some(Fault::Silent)).await;
    let client = session::http_client(6).unwrap();
    let stop = CancellationToken::new();
    let c = config(addr);
    let cancel = stop.clone();
    // Cancelled while it waits on the silent segment 2, however long a busy machine took
    // to get there (not after a fixed time, which may come before segment 1 is in).
    tokio::spawn(async move {
        let asked_for_2 = || seen.lock().unwrap().keys().any(|k| k.ends_with("/2.m4s"));
        while !asked_for_2() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        cancel.cancel();
    });
    let run = session::run(&client, &c, &NoObserver, &stop);
    let r = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the session must stop")
        .unwrap();
    assert_eq!(r.end, End::Stopped);
    assert_eq!(r.segments.len(), 1);
}

#[tokio::test]
async fn the_play_command_reports_json_and_writes_its_log_and_plot() {
    let (addr, _) = start(|_, _| None).await;
    let dir = tempfile::tempdir().unwrap();
    let (log, plot) = (dir.path().join("log.ndjson"), dir.path().join("plot.svg"));
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_player"))
        .args([
            "play",
            &format!("http://{addr}/master.m3u8"),
            "--json",
            "--cmcd",
        ])
        .args(["--abr", "bba", "--startup-buffer", "1", "--duration", "20"])
        .arg("--log")
        .arg(&log)
        .arg("--plot")
        .arg(&plot)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["end"], "complete");
    assert_eq!(report["abr"], "bba");
    assert_eq!(report["summary"]["segments"], 3);
    assert_eq!(report["summary"]["rebuffer_count"], 0);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for key in [
        "rendition",
        "bitrate_bps",
        "bytes",
        "download_ms",
        "ttfb_ms",
        "throughput_bps",
        "buffer_before_s",
        "buffer_after_s",
        "stall_s",
        "cache_status",
    ] {
        assert!(lines.iter().all(|l| l.get(key).is_some()), "{key} missing");
    }
    assert!(std::fs::read_to_string(&plot).unwrap().contains("<svg"));

    let bad = tokio::process::Command::new(env!("CARGO_BIN_EXE_player"))
        .args(["play", &format!("http://{addr}/nothing.m3u8")])
        .output()
        .await
        .unwrap();
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("HTTP 404"), "{stderr}");
}

/// Records when playback stalled and when segments arrived.
#[derive(Debug, Default)]
struct Events(Mutex<Vec<(&'static str, std::time::Instant)>>);

impl session::Observer for Events {
    fn segment(&self, _: &session::summary::SegmentLog) {
        self.0
            .lock()
            .unwrap()
            .push(("segment", std::time::Instant::now()));
    }

    fn state(&self, _: PlayState, to: PlayState) {
        let name = match to {
            PlayState::Stalled => "stalled",
            PlayState::Playing => "playing",
            _ => return,
        };
        self.0
            .lock()
            .unwrap()
            .push((name, std::time::Instant::now()));
    }
}

#[tokio::test]
async fn observers_see_a_stall_while_it_lasts() {
    let (addr, _) = start(|_, _| None).await;
    let mut c = config(addr);
    // 200 kbit/s: even the lowest rendition (300 kbit/s) arrives slower than it plays.
    c.link = LinkModel {
        rate: Some(Rate::Constant(2e5)),
        latency_s: 0.0,
    };
    let events = Events::default();
    let client = session::http_client(6).unwrap();
    let r = session::run(&client, &c, &events, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(r.end, End::Complete);
    assert!(r.summary.rebuffer_count >= 1, "{:#?}", r.summary);
    let events = events.0.into_inner().unwrap();
    let stalls: Vec<usize> = (0..events.len())
        .filter(|&i| events[i].0 == "stalled")
        .collect();
    assert_eq!(stalls.len(), r.summary.rebuffer_count, "{events:?}");
    for i in stalls {
        // Told during the download, well before the segment that ends the stall.
        let (_, arrived) = events[i + 1..]
            .iter()
            .find(|(name, _)| *name == "segment")
            .unwrap();
        assert!(
            *arrived - events[i].1 > Duration::from_millis(200),
            "{events:?}"
        );
    }
}

/// A live media playlist of 1 s segments: segment `5 + t` comes out at second `t` of the
/// server's life, the window lists the newest four, and the stream ends at segment 9.
async fn live_playlist(State(born): State<std::time::Instant>) -> Response {
    let newest = (5 + born.elapsed().as_secs()).min(9);
    let mut m = format!(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:{}\n\
         #EXT-X-MAP:URI=\"init.mp4\"\n",
        newest - 3
    );
    for n in newest - 3..=newest {
        m.push_str(&format!("#EXTINF:1.0,\n{n}.m4s\n"));
    }
    if newest == 9 {
        m.push_str("#EXT-X-ENDLIST\n");
    }
    Response::new(Body::from(m))
}

#[tokio::test]
async fn a_live_playlist_is_followed_until_it_ends() {
    let segment = |Path(file): Path<String>| async move {
        match file.as_str() {
            "init.mp4" => init_segment(),
            f => segment_of(f, 30_000).unwrap_or_default(),
        }
    };
    let app = Router::new()
        .route("/live.m3u8", get(live_playlist))
        .route("/{segment}", get(segment))
        .with_state(std::time::Instant::now());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut c = config(addr);
    c.url = format!("http://{addr}/live.m3u8").parse().unwrap();
    let r = play(&c).await.unwrap();
    assert_eq!(r.end, End::Complete, "{r:#?}");
    let numbers: Vec<u64> = r.segments.iter().map(|s| s.number).collect();
    // Three behind the newest (5) at the start, then each as it comes out.
    assert_eq!(numbers, (3..=9).collect::<Vec<_>>());
    assert!(r.summary.counters.errors.is_empty());
    assert!((r.summary.played_s - 7.0).abs() < 1e-6, "{:#?}", r.summary);
}

fn steered(addr: SocketAddr) -> SessionConfig {
    SessionConfig {
        url: format!("http://{addr}/steered.m3u8").parse().unwrap(),
        ..config(addr)
    }
}

fn pathways_of(r: &SessionReport) -> Vec<&str> {
    r.segments
        .iter()
        .map(|s| s.pathway.as_deref().unwrap_or("-"))
        .collect()
}

#[tokio::test]
async fn the_steering_server_is_asked_first_and_followed() {
    let (addr, seen) = start(|_, _| None).await;
    let r = play(&steered(addr)).await.unwrap();
    assert_eq!(r.end, End::Complete, "{r:?}");
    // The default pathway until the steering manifest, which wants `b`, came.
    assert_eq!(pathways_of(&r), ["b"; SEGMENTS]);
    let c = &r.summary.counters;
    assert_eq!(c.pathways["a"].requests, 2, "the media playlists: {c:?}");
    assert_eq!(c.pathways["b"].requests, 4, "init and segments: {c:?}");
    assert_eq!(c.failovers, 0);
    // TTL 1 s over a session of three seconds and more.
    assert!(c.steering_fetches >= 2, "{c:?}");
    assert_eq!(c.steering_errors, 0);
    let seen = seen.lock().unwrap();
    let mut asked: Vec<&String> = seen.keys().filter(|k| k.starts_with("steer")).collect();
    asked.sort();
    // Before the first segment: the default pathway, no throughput yet; then both.
    assert!(
        asked.contains(&&"steer.json?_HLS_pathway=a".to_owned()),
        "{asked:?}"
    );
    assert!(
        asked
            .iter()
            .any(|k| k.starts_with("steer.json?_HLS_pathway=b&_HLS_throughput=")),
        "{asked:?}"
    );
    assert!(
        !seen
            .keys()
            .any(|k| k.starts_with("a/") && k.ends_with(".m4s"))
    );
}

#[tokio::test]
async fn a_body_cut_on_one_pathway_is_fetched_again_from_the_next() {
    let (addr, seen) = start(|path, _| (path == "b/hi/2.m4s").then_some(Fault::CutBody)).await;
    let r = play(&steered(addr)).await.unwrap();
    assert_eq!(r.end, End::Complete, "{r:?}");
    // Segment 2 came from `a` at once, at the same rendition, without a retry; `b` stays
    // penalised for the rest of the session.
    assert_eq!(pathways_of(&r), ["b", "a", "a"]);
    let s = &r.segments[1];
    assert_eq!((s.quality, s.retries, s.failovers), (1, 0, 1), "{s:?}");
    let c = &r.summary.counters;
    assert_eq!((c.failovers, c.errors[&ErrorKind::Body]), (1, 1), "{c:?}");
    assert_eq!(seen.lock().unwrap()["a/hi/2.m4s"], 1);
}

#[tokio::test]
async fn a_pathway_answering_5xx_is_penalised_whatever_steering_says() {
    let (addr, _) = start(|path, _| path.starts_with("b/").then_some(Fault::Status(503))).await;
    let r = play(&steered(addr)).await.unwrap();
    assert_eq!(r.end, End::Complete, "{r:?}");
    assert_eq!(pathways_of(&r), ["a"; SEGMENTS]);
    assert!(
        r.segments.iter().all(|s| s.retries == 0),
        "{:?}",
        r.segments
    );
    // One failover: the steering manifests that keep putting `b` first do not lift its
    // penalty.
    let c = &r.summary.counters;
    assert!(c.steering_fetches >= 2, "{c:?}");
    assert_eq!(
        (c.failovers, c.errors[&ErrorKind::Status5xx]),
        (1, 1),
        "{c:?}"
    );
}

#[tokio::test]
async fn only_a_request_failing_on_every_pathway_uses_a_retry() {
    let (addr, _) = start(|path, attempt| {
        (path.ends_with("/hi/2.m4s") && attempt == 1).then_some(Fault::Status(503))
    })
    .await;
    let r = play(&steered(addr)).await.unwrap();
    assert_eq!(r.end, End::Complete, "{r:?}");
    // `b` failed, then `a`: one retry, which goes back to `b`, penalised first.
    let s = &r.segments[1];
    assert_eq!(
        (s.quality, s.retries, s.failovers, s.pathway.as_deref()),
        (1, 1, 0, Some("b")),
        "{s:?}"
    );
    let c = &r.summary.counters;
    assert_eq!(
        (c.failovers, c.errors[&ErrorKind::Status5xx]),
        (1, 2),
        "{c:?}"
    );
}

#[tokio::test]
async fn a_failing_steering_server_leaves_the_default_pathway() {
    let (addr, _) = start(|path, _| (path == "steer.json").then_some(Fault::Status(503))).await;
    let r = play(&steered(addr)).await.unwrap();
    assert_eq!(r.end, End::Complete, "{r:?}");
    assert_eq!(pathways_of(&r), ["a"; SEGMENTS]);
    let c = &r.summary.counters;
    // Asked once before the first segment; the next try is a default TTL (300 s) away.
    assert_eq!((c.steering_fetches, c.steering_errors), (1, 1), "{c:?}");
    assert!(
        c.errors.is_empty(),
        "steering errors are not media errors: {c:?}"
    );
}
