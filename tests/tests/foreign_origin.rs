//! The origin over folders another packager made (Debian's ffmpeg, see
//! `rivulet_tests::foreign`): each form is listed with its duration and renditions, every
//! file it uses is served with its content type at any depth, symbolic links out of the
//! library are refused, content steering sends players through two real edges, and a live
//! channel loops an ffmpeg-packaged fMP4 asset (ffmpeg decodes it), while a transport
//! stream asset asked for as a channel is refused at start-up with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_rules::{Clock, ManualClock};
use media::fragments::track_runs;
use media::hls;
use origin::library::Library;
use origin::live::{DEFAULT_AVAILABILITY_START, LiveChannels, LiveConfig};
use player::session::{End, SessionReport};
use rivulet_tests::foreign::foreign_content;
use rivulet_tests::{
    ffmpeg_decode, get_text, play_for, start_edge, start_live_origin_on, start_origin,
    start_steered_origin, wait_until_edges_usable,
};

fn packaged() -> PathBuf {
    foreign_content(Path::new(env!("CARGO_TARGET_TMPDIR")))
        .unwrap_or_else(|e| panic!("{e}"))
        .join("packaged")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, target).unwrap();
        }
    }
}

/// A library holding a copy of each packaged folder as an asset of the same name, and
/// `hls_ts` once more as `nested`, its playlists and segments two folders down
/// (`media/ts/`) under a multivariant playlist at the top named as a user might.
fn library() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&packaged(), dir.path());
    let nested = dir.path().join("nested");
    copy_dir(&packaged().join("hls_ts"), &nested.join("media").join("ts"));
    let master = std::fs::read_to_string(nested.join("media/ts/master.m3u8")).unwrap();
    std::fs::remove_file(nested.join("media/ts/master.m3u8")).unwrap();
    let moved: String = master
        .lines()
        .map(|l| {
            if l.ends_with(".m3u8") && !l.starts_with('#') {
                format!("media/ts/{l}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(nested.join("my-movie.m3u8"), moved).unwrap();
    dir
}

/// (asset, the manifest players open, video renditions) of every form.
const FORMS: [(&str, &str, usize); 8] = [
    ("hls_fmp4", "master.m3u8", 2),
    ("hls_ts", "master.m3u8", 2),
    ("hls_byterange", "fmp4.m3u8", 1),
    ("dash_timeline", "manifest.mpd", 2),
    ("dash_duration", "manifest.mpd", 1),
    ("dash_list", "manifest.mpd", 1),
    ("dash_base", "manifest.mpd", 1),
    ("nested", "my-movie.m3u8", 2),
];

/// The content type the origin must give a file named `name`.
fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, e)| e) {
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("mpd") => "application/dash+xml",
        Some("ts") => "video/mp2t",
        Some("mp4") => "video/mp4",
        Some("m4s") => "video/iso.segment",
        other => panic!("a fixture file of unexpected kind {other:?}: {name}"),
    }
}

/// Every file under `dir`, as `/`-separated paths relative to it.
fn files(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = format!("{prefix}{}", path.file_name().unwrap().to_str().unwrap());
        if path.is_dir() {
            files(&path, &format!("{name}/"), out);
        } else {
            out.push(name);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_form_is_listed_and_every_file_served_with_its_type() {
    let lib = library();
    let assets = Library::new(lib.path()).assets().await;
    let names: Vec<&str> = assets.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names.len(), FORMS.len(), "{names:?}");
    for (asset, manifest, video) in FORMS {
        let info = assets.iter().find(|a| a.name == asset).unwrap();
        let duration = info.duration.unwrap_or_else(|| panic!("{asset}: {info:?}"));
        assert!((duration - 10.0).abs() < 0.1, "{asset}: {duration}");
        let opened = info.hls.as_deref().or(info.dash.as_deref()).unwrap();
        assert_eq!(opened.replace(' ', "%20"), manifest, "{asset}: {info:?}");
        // Every video rendition, and the audio one where it is apart.
        assert!(info.renditions.len() >= video, "{asset}: {info:?}");
    }
    let origin = start_origin(lib.path()).await.unwrap();
    let client = reqwest::Client::new();
    let index = get_text(&client, &format!("http://{origin}/")).await;
    for (asset, manifest, _) in FORMS {
        // Its row: the real manifest linked, the duration, the renditions.
        let row = index
            .split("<tr>")
            .find(|row| row.contains(&format!("<strong>{asset}</strong>")))
            .unwrap_or_else(|| panic!("{asset} on the index page:\n{index}"));
        assert!(row.contains(&format!("vod/{asset}/{manifest}")), "{row}");
        assert!(row.contains("10.0 s"), "{row}");
        assert!(row.contains("640x360"), "{row}");
        let mut all = Vec::new();
        files(&lib.path().join(asset), "", &mut all);
        for file in all {
            let url = format!("http://{origin}/vod/{asset}/{}", file.replace(' ', "%20"));
            let response = client.get(&url).send().await.unwrap();
            assert_eq!(response.status(), 200, "{url}");
            assert_eq!(
                response.headers()["content-type"],
                content_type(&file),
                "{url}"
            );
            let cache = response.headers()["cache-control"]
                .to_str()
                .unwrap()
                .to_owned();
            let manifest = file.ends_with(".m3u8") || file.ends_with(".mpd");
            assert_eq!(cache.contains("immutable"), !manifest, "{url}: {cache}");
            let size = std::fs::metadata(lib.path().join(asset).join(&file))
                .unwrap()
                .len();
            assert_eq!(response.bytes().await.unwrap().len() as u64, size, "{url}");
        }
    }
}

async fn play(url: &str) -> SessionReport {
    play_for(url, 60.0).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nested_ts_asset_plays_from_the_origin() {
    let lib = library();
    let origin = start_origin(lib.path()).await.unwrap();
    let r = play(&format!("http://{origin}/vod/nested/my-movie.m3u8")).await;
    assert_eq!((r.end, &r.error), (End::Complete, &None), "{r:#?}");
    assert_eq!(r.segments.len(), 5);
    assert!(
        r.summary.counters.errors.is_empty(),
        "{:?}",
        r.summary.counters
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symbolic_links_out_of_the_library_are_refused() {
    use std::os::unix::fs::symlink;
    let lib = library();
    let outside = tempfile::tempdir().unwrap();
    copy_dir(
        &packaged().join("hls_ts"),
        &outside.path().join("elsewhere"),
    );
    let ts = lib.path().join("hls_ts");
    // A file that leads out, one that leads to another asset (followed), and an asset
    // folder that leads out.
    symlink("/etc/passwd", ts.join("passwd.ts")).unwrap();
    symlink(lib.path().join("hls_fmp4/0_000.m4s"), ts.join("alias.m4s")).unwrap();
    symlink(outside.path().join("elsewhere"), lib.path().join("linked")).unwrap();
    let origin = start_origin(lib.path()).await.unwrap();
    let get = |path: &str| {
        let url = format!("http://{origin}{path}");
        async move { reqwest::get(&url).await.unwrap() }
    };
    let refused = get("/vod/hls_ts/passwd.ts").await;
    assert_eq!(refused.status(), 403);
    let body = refused.text().await.unwrap();
    assert!(!body.contains("root:"), "{body}");
    let inside = get("/vod/hls_ts/alias.m4s").await;
    assert_eq!(
        inside.status(),
        200,
        "a link within the library is followed"
    );
    assert_eq!(
        inside.bytes().await.unwrap(),
        std::fs::read(lib.path().join("hls_fmp4/0_000.m4s")).unwrap()
    );
    for path in ["/vod/linked/master.m3u8", "/vod/linked/0_000.ts"] {
        let status = get(path).await.status();
        assert!(status == 403 || status == 404, "{path}: {status}");
    }
    let assets = Library::new(lib.path()).assets().await;
    assert!(assets.iter().all(|a| a.name != "linked"), "not listed");
    // Dot segments, raw or encoded (sent as they are: a URL library would remove them),
    // are resolved to the path's one normal form (issue 14, defect 7: the same form the
    // edge keys and forwards), so a dot-dot inside the library names another file of it;
    // above the root, or with an encoded separator, it is refused.
    for path in [
        "/vod/hls_ts/../hls_fmp4/0.m3u8",
        "/vod/hls_ts/%2e%2e/hls_fmp4/0.m3u8",
    ] {
        assert_eq!(raw_status(origin, path).await, "200", "{path}");
    }
    for path in [
        "/vod/hls_ts/..%2F..%2Fetc%2Fpasswd",
        "/vod/../../../etc/passwd",
        "/../etc/passwd",
    ] {
        let status = raw_status(origin, path).await;
        assert!(status == "400" || status == "404", "{path}: {status}");
    }
}

/// The status code the origin answers a GET of `path` with, sent byte for byte.
async fn raw_status(origin: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(origin).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = vec![0; 12];
    stream.read_exact(&mut head).await.unwrap();
    String::from_utf8_lossy(&head[9..12]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steering_sends_players_of_ffmpeg_assets_through_two_edges() {
    let lib = library();
    let origin = start_origin(lib.path()).await.unwrap();
    let a = start_edge(origin, "edge-a").await.unwrap();
    let b = start_edge(origin, "edge-b").await.unwrap();
    let edges = [("edge-a", a), ("edge-b", b)];
    let steering = start_steered_origin(lib.path(), &edges, Duration::from_secs(1))
        .await
        .unwrap();
    wait_until_edges_usable(steering, 2).await;
    for (asset, manifest) in [
        ("hls_fmp4", "master.m3u8"),
        ("dash_timeline", "manifest.mpd"),
    ] {
        let url = format!("http://{steering}/vod/{asset}/{manifest}");
        let text = get_text(&reqwest::Client::new(), &url).await;
        for (name, addr) in edges {
            assert!(text.contains(name), "{url} names pathway {name}:\n{text}");
            assert!(
                text.contains(&format!("http://{addr}/vod/{asset}/")),
                "{url} sends {name}'s players to it:\n{text}"
            );
        }
        let r = play(&url).await;
        assert_eq!((r.end, r.error.as_deref()), (End::Complete, None), "{r:#?}");
        assert!(
            r.summary.counters.errors.is_empty(),
            "{:?}",
            r.summary.counters
        );
        let pathway = r.segments[0].pathway.clone().unwrap();
        assert!(edges.iter().any(|(n, _)| *n == pathway), "{pathway}");
        for s in &r.segments {
            assert_eq!(s.pathway.as_deref(), Some(pathway.as_str()), "{s:?}");
            let status = s.cache_status.as_deref().unwrap_or("");
            assert!(
                status.starts_with(&pathway),
                "came through {pathway}: {s:?}"
            );
        }
        assert!(
            r.summary.counters.steering_fetches >= 1,
            "{:?}",
            r.summary.counters
        );
    }
}

/// The multivariant playlist of live channel `channel` on `host`, read.
async fn live_master(
    client: &reqwest::Client,
    host: SocketAddr,
    channel: &str,
) -> media::Presentation {
    let url = format!("http://{host}/live/{channel}/master.m3u8");
    hls::parse_multivariant(&get_text(client, &url).await, &url).unwrap()
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_channel_loops_an_ffmpeg_packaged_asset() {
    let lib = library();
    // A day and a bit after the availability start: thousands of loops in.
    let clock = ManualClock::starting_now();
    let now = unix(clock.now());
    let config = LiveConfig {
        channels: vec![
            ("hls".into(), "hls_fmp4".into()),
            ("dash".into(), "dash_timeline".into()),
            // One file of fMP4 fragments with video and audio together, in byte ranges.
            ("ranges".into(), "hls_byterange".into()),
        ],
        availability_start: now - 86_400.0 - 3.3,
        ..LiveConfig::default()
    };
    let host = start_live_origin_on(lib.path(), &config, clock.shared())
        .await
        .unwrap();
    let client = reqwest::Client::new();
    for (channel, renditions) in [("hls", 3), ("dash", 3), ("ranges", 1)] {
        let presentation = live_master(&client, host, channel).await;
        assert_eq!(presentation.renditions.len(), renditions, "{channel}");
        for rendition in &presentation.renditions {
            let url = rendition.playlist_uri.clone().unwrap();
            let text = get_text(&client, &url).await;
            let playlist = hls::parse_media_playlist(&text, &url).unwrap();
            // 30 s of 2 s segments over a 10 s asset: the window crosses loop seams.
            assert!(playlist.segments.len() >= 14, "{text}");
            let init = client
                .get(playlist.init_uri.clone().unwrap())
                .send()
                .await
                .unwrap();
            assert_eq!(init.status(), 200);
            // Per track (a muxed rendition has two): where its previous run ended.
            let mut previous: std::collections::HashMap<u32, u64> = Default::default();
            let mut seams = 0;
            for segment in &playlist.segments {
                let response = client.get(&segment.uri).send().await.unwrap();
                assert_eq!(response.status(), 200, "{}", segment.uri);
                let bytes = response.bytes().await.unwrap();
                assert!(!bytes.windows(4).any(|w| w == b"sidx"), "{}", segment.uri);
                let runs = track_runs(&bytes, 0, &[]).unwrap();
                assert_eq!(u64::from(runs[0].sequence), segment.number);
                for run in &runs {
                    let start = run.base_decode_time;
                    if let Some(&end) = previous.get(&run.track_id) {
                        // Video is contiguous; audio leaves less than one AAC frame at a
                        // loop seam, never an overlap.
                        let what = format!("{} track {}", segment.uri, run.track_id);
                        assert!(start >= end, "{what}: time went backwards");
                        assert!(start - end < 1024, "{what}: gap of {}", start - end);
                        seams += usize::from(start > end);
                    }
                    previous.insert(run.track_id, run.end());
                }
            }
            assert!(seams <= 3, "{}: {seams} gaps", rendition.id);
        }
    }
    // ffmpeg decodes the live HLS of both for 12 s with no error, across a loop seam: on
    // an origin with the real clock, as players see it.
    let real = rivulet_tests::start_live_origin(lib.path(), &config)
        .await
        .unwrap();
    let mut decodes = tokio::task::JoinSet::new();
    for channel in ["hls", "dash", "ranges"] {
        let url = format!("http://{real}/live/{channel}/master.m3u8");
        decodes.spawn_blocking(move || ffmpeg_decode(&url, &["-t", "12"]));
    }
    for result in decodes.join_all().await {
        result.unwrap();
    }
    // The clock moves on: the window with it.
    let presentation = live_master(&client, host, "hls").await;
    let url = presentation.renditions[0].playlist_uri.clone().unwrap();
    let before = hls::parse_media_playlist(&get_text(&client, &url).await, &url).unwrap();
    clock.advance(Duration::from_secs(4));
    let after = hls::parse_media_playlist(&get_text(&client, &url).await, &url).unwrap();
    assert_eq!(
        after.segments.last().unwrap().number,
        before.segments.last().unwrap().number + 2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_streams_cannot_be_live_channels_and_say_why() {
    let lib = library();
    let library = Library::new(lib.path());
    for (asset, why) in [
        ("hls_ts", "MPEG-TS"),
        ("nested", "MPEG-TS"),
        ("missing", "not an asset"),
    ] {
        let config = LiveConfig {
            channels: vec![("ch".into(), asset.into())],
            availability_start: DEFAULT_AVAILABILITY_START,
            ..LiveConfig::default()
        };
        let e = LiveChannels::load(&library, &config)
            .unwrap_err()
            .to_string();
        assert!(e.contains(asset) && e.contains(why), "{asset}: {e}");
    }
}
