//! The origin's library that takes any video file (issue 12 items 4 and 6), with the real
//! encoder on files made by Debian's ffmpeg: a dropped file is prepared (503 with
//! `Retry-After`) and then served and decoded; a broken file shows its error and does not
//! stop the others; a changed file is rebuilt, a restart does not rebuild, a file changed
//! while the origin was down is; and a rebuild reaches players through an edge without a
//! manifest of one build ever being answered with media of the other.
//!
//! The polls run on a manual clock: a test polls, moves the clock past the settling time
//! and polls again, instead of waiting for files to look still. The only waits are for
//! the encoder.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http_rules::ManualClock;
use http_rules::cli::NamedUrl;
use origin::ingest::purge::PurgeConfig;
use origin::ingest::{Ingest, IngestConfig, SourceStatus};
use origin::{AppState, OriginConfig};
use rivulet_tests::foreign::foreign_content;
use rivulet_tests::{ffmpeg_decode, serve_origin_on, start_edge_with};
use tokio_util::sync::CancellationToken;

/// The poll interval, and the settling time: a file must look the same this long.
const POLL: Duration = Duration::from_secs(2);
/// The longest a test waits for one ladder job (a 10 s source, the small ladder).
const BUILD_LIMIT: Duration = Duration::from_secs(300);

fn fixtures() -> &'static Path {
    foreign_content(Path::new(env!("CARGO_TARGET_TMPDIR"))).unwrap_or_else(|e| panic!("{e}"))
}

/// Copies fixture `from` (under the fixtures' folder) to `to`, written aside and renamed,
/// as a careful user's copy is (the tests of half-written files are `plan`'s table).
fn drop_file(from: &str, to: &Path) {
    let aside = to.with_extension("part");
    std::fs::copy(fixtures().join(from), &aside).unwrap();
    std::fs::rename(&aside, to).unwrap();
}

/// An origin over `library` that builds dropped files with the small ladder, its polls
/// dated by a manual `clock` (its own polls every 2 s see a clock that stands still, so
/// only a test's [`Origin::settle`] lets a file settle), stopped when `stop` is cancelled.
struct Origin {
    addr: SocketAddr,
    state: AppState,
    clock: ManualClock,
    stop: CancellationToken,
}

impl Origin {
    async fn start(library: &Path) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(listener, library, None).await
    }

    async fn start_on(
        listener: tokio::net::TcpListener,
        library: &Path,
        purge: Option<PurgeConfig>,
    ) -> Self {
        let clock = ManualClock::starting_now();
        let config = IngestConfig {
            poll: POLL,
            purge,
            ..IngestConfig::new("small".parse().unwrap(), "small")
        };
        let state = AppState::new(&OriginConfig::new(library))
            .with_clock(clock.shared())
            .with_ingest(config)
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        serve_origin_on(listener, state.clone(), stop.clone().cancelled_owned());
        Self {
            addr,
            state,
            clock,
            stop,
        }
    }

    fn ingest(&self) -> &Ingest {
        self.state.ingest().unwrap()
    }

    /// Polls, lets the settling time pass, and polls again: the files that looked the
    /// same both times are queued.
    async fn settle(&self) {
        self.ingest().poll().await;
        self.clock.advance(POLL);
        self.ingest().poll().await;
    }

    fn status(&self, file: &str) -> SourceStatus {
        self.ingest()
            .status()
            .sources
            .into_iter()
            .find(|s| s.file == file)
            .unwrap_or_else(|| panic!("{file} not in {:?}", self.ingest().status()))
    }

    /// Waits (for the encoder) until `file` is in one of `states`.
    async fn wait_for(&self, file: &str, states: &[&str]) -> SourceStatus {
        let deadline = Instant::now() + BUILD_LIMIT;
        loop {
            let status = self.status(file);
            if states.contains(&status.state) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{file} not {states:?} after {BUILD_LIMIT:?}: {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn stop(self) {
        self.ingest().shutdown(Duration::from_secs(10)).await;
        self.stop.cancel();
    }
}

async fn get(url: &str) -> reqwest::Response {
    reqwest::Client::new().get(url).send().await.unwrap()
}

/// The build token (`v-…`) the HLS multivariant playlist names its media through.
fn token_of(master: &str) -> String {
    master
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .and_then(|uri| uri.split('/').next())
        .filter(|t| t.starts_with("v-"))
        .unwrap_or_else(|| panic!("no versioned URI in\n{master}"))
        .to_owned()
}

/// Identity of a folder instance: a rebuild renames a new one into place.
fn inode(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().ino()
}

/// Entries of the library root other than the sources, the assets and the hidden folders
/// the origin keeps (`.versions`): left-overs of a job.
fn leftovers(library: &Path) -> Vec<String> {
    std::fs::read_dir(library)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n != ".versions")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_file_becomes_an_asset_and_a_broken_one_shows_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let library = dir.path();
    // The broken file sorts first, so it is queued first and must not block the other.
    drop_file("bad/text.mp4", &library.join("broken.mp4"));
    drop_file("sources/plain.mp4", &library.join("clip.mp4"));
    let origin = Origin::start(library).await;

    // Seen but still settling: prepared, not found.
    origin.ingest().poll().await;
    for manifest in ["master.m3u8", "manifest.mpd"] {
        let response = get(&origin.url(&format!("/vod/clip/{manifest}"))).await;
        assert_eq!(response.status(), 503, "{manifest}");
        let headers = response.headers().clone();
        assert_eq!(headers["retry-after"], "5");
        assert_eq!(headers["cache-control"], "no-store");
        let body = response.text().await.unwrap();
        assert_eq!(
            body.trim_end(),
            "clip is being prepared: waiting for the file to stop changing"
        );
    }
    let page = get(&origin.url("/watch/clip")).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("clip.mp4"));

    origin.clock.advance(POLL);
    origin.ingest().poll().await;
    let building = origin.wait_for("clip.mp4", &["building", "ready"]).await;
    let response = get(&origin.url("/vod/clip/master.m3u8")).await;
    if building.state == "building" && response.status() == 503 {
        assert!(response.headers().contains_key("retry-after"));
        let body = response.text().await.unwrap();
        assert!(body.starts_with("clip is being prepared: "), "{body}");
    }

    let broken = origin.wait_for("broken.mp4", &["failed"]).await;
    assert_eq!(
        broken.message,
        "broken.mp4: not a video file (no MP4/MOV box structure)"
    );
    let clip = origin.wait_for("clip.mp4", &["ready", "failed"]).await;
    assert_eq!(clip.state, "ready", "{clip:?}");
    assert!(clip.playable);

    // The error on the index page, as JSON, and as the reason of a 404.
    let index = get(&origin.url("/")).await.text().await.unwrap();
    assert!(index.contains(&broken.message), "{index}");
    let status: serde_json::Value = serde_json::from_str(
        &get(&origin.url("/library/status"))
            .await
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    let states: BTreeMap<&str, &str> = status["ingest"]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["file"].as_str().unwrap(), s["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        BTreeMap::from([("broken.mp4", "failed"), ("clip.mp4", "ready")])
    );
    let response = get(&origin.url("/vod/broken/master.m3u8")).await;
    assert_eq!(response.status(), 404);
    assert!(response.text().await.unwrap().contains(&broken.message));
    assert_eq!(get(&origin.url("/watch/broken")).await.status(), 404);

    // Served like the sample, and every frame decodes through both manifests.
    let response = get(&origin.url("/vod/clip/master.m3u8")).await;
    assert_eq!(response.status(), 200);
    let master = response.text().await.unwrap();
    assert_eq!(master.matches("#EXT-X-STREAM-INF").count(), 3, "{master}");
    ffmpeg_decode(&origin.url("/vod/clip/master.m3u8"), &[]).unwrap();
    ffmpeg_decode(&origin.url("/vod/clip/manifest.mpd"), &[]).unwrap();
    assert_eq!(get(&origin.url("/watch/clip")).await.status(), 200);

    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(library.join("clip/source.json")).unwrap()).unwrap();
    assert_eq!(record["file"], "clip.mp4");
    assert_eq!(
        record["size"],
        std::fs::metadata(library.join("clip.mp4")).unwrap().len()
    );
    assert!(!library.join("broken").exists());
    assert_eq!(leftovers(library), Vec::<String>::new());
    origin.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_file_is_rebuilt_and_a_restart_rebuilds_only_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let library = dir.path();
    let file = library.join("clip.mp4");
    drop_file("sources/movie_360.mp4", &file);
    let origin = Origin::start(library).await;
    origin.settle().await;
    origin.wait_for("clip.mp4", &["ready", "failed"]).await;
    assert_eq!(origin.status("clip.mp4").state, "ready");
    let first = inode(&library.join("clip"));
    let first_token = token_of(
        &get(&origin.url("/vod/clip/master.m3u8"))
            .await
            .text()
            .await
            .unwrap(),
    );

    // Touched, content unchanged: the record is updated, the asset is not rebuilt.
    let touched = SystemTime::now() + Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(touched)
        .unwrap();
    origin.settle().await;
    origin.wait_for("clip.mp4", &["ready"]).await;
    assert_eq!(inode(&library.join("clip")), first, "rebuilt for a touch");
    origin.stop().await;

    // A restart over an unchanged source: ready at the first poll, nothing built.
    let origin = Origin::start(library).await;
    origin.ingest().poll().await;
    assert_eq!(origin.status("clip.mp4").state, "ready");
    origin.clock.advance(POLL);
    origin.ingest().poll().await;
    assert_eq!(origin.status("clip.mp4").state, "ready");
    assert_eq!(inode(&library.join("clip")), first, "rebuilt at a restart");
    origin.stop().await;

    // Changed while the origin was down: rebuilt at the next start.
    drop_file("sources/plain.mp4", &file);
    let origin = Origin::start(library).await;
    origin.ingest().poll().await;
    assert_eq!(origin.status("clip.mp4").state, "waiting");
    // The previous build plays meanwhile.
    assert!(origin.status("clip.mp4").playable);
    assert_eq!(
        get(&origin.url("/vod/clip/master.m3u8")).await.status(),
        200
    );
    origin.clock.advance(POLL);
    origin.ingest().poll().await;
    origin.wait_for("clip.mp4", &["ready", "failed"]).await;
    assert_eq!(origin.status("clip.mp4").state, "ready");
    let second = inode(&library.join("clip"));
    assert_ne!(second, first);
    let master = get(&origin.url("/vod/clip/master.m3u8"))
        .await
        .text()
        .await
        .unwrap();
    let second_token = token_of(&master);
    assert_ne!(second_token, first_token);
    // plain.mp4 is 720p: the ladder has its third rung now.
    assert_eq!(master.matches("#EXT-X-STREAM-INF").count(), 3, "{master}");

    // Changed while it runs: rebuilt without a restart.
    drop_file("sources/movie_360.mp4", &file);
    origin.settle().await;
    origin.wait_for("clip.mp4", &["building", "ready"]).await;
    origin.wait_for("clip.mp4", &["ready", "failed"]).await;
    assert_eq!(origin.status("clip.mp4").state, "ready");
    assert_ne!(inode(&library.join("clip")), second);
    let master = get(&origin.url("/vod/clip/master.m3u8"))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(master.matches("#EXT-X-STREAM-INF").count(), 2, "{master}");
    assert_ne!(token_of(&master), second_token);
    ffmpeg_decode(&origin.url("/vod/clip/master.m3u8"), &[]).unwrap();
    assert_eq!(leftovers(library), Vec::<String>::new());
    origin.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_made_otherwise_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let library = dir.path();
    std::fs::create_dir(library.join("clip")).unwrap();
    std::fs::write(library.join("clip/index.m3u8"), b"#EXTM3U\n").unwrap();
    drop_file("sources/movie_360.mp4", &library.join("clip.mp4"));
    let origin = Origin::start(library).await;
    origin.settle().await;
    let status = origin.status("clip.mp4");
    assert_eq!(status.state, "conflict");
    assert!(
        status.message.contains("was not built from clip.mp4"),
        "{status:?}"
    );
    let index = get(&origin.url("/")).await.text().await.unwrap();
    assert!(index.contains("was not built from clip.mp4"), "{index}");
    let entries: Vec<_> = std::fs::read_dir(library.join("clip")).unwrap().collect();
    assert_eq!(entries.len(), 1);
    origin.stop().await;
}

/// Every HLS URL a player reads through `base` starting at `master_url`, fetched in
/// playing order (multivariant, then per media playlist its map and segments), with
/// their bodies.
async fn fetch_hls(client: &reqwest::Client, master_url: &str) -> Vec<(String, Vec<u8>)> {
    let mut fetched = Vec::new();
    let master = fetch(client, master_url).await;
    let master_text = String::from_utf8(master.clone()).unwrap();
    fetched.push((master_url.to_owned(), master));
    for playlist in uris(&master_text) {
        let playlist_url = join(master_url, &playlist);
        let body = fetch(client, &playlist_url).await;
        let text = String::from_utf8(body.clone()).unwrap();
        fetched.push((playlist_url.clone(), body));
        for media in uris(&text) {
            let url = join(&playlist_url, &media);
            let body = fetch(client, &url).await;
            fetched.push((url, body));
        }
    }
    fetched
}

async fn fetch(client: &reqwest::Client, url: &str) -> Vec<u8> {
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    response.bytes().await.unwrap().to_vec()
}

/// The URIs a playlist names: its URI lines and `URI="…"` attributes (maps, renditions).
fn uris(playlist: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in playlist.lines() {
        if line.is_empty() {
            continue;
        }
        if !line.starts_with('#') {
            out.push(line.to_owned());
        } else if let Some((_, rest)) = line.split_once("URI=\"")
            && let Some((uri, _)) = rest.split_once('"')
        {
            out.push(uri.to_owned());
        }
    }
    out
}

fn join(base: &str, relative: &str) -> String {
    let dir = &base[..=base.rfind('/').unwrap()];
    format!("{dir}{relative}")
}

/// The file of `library` a versioned media URL `…/vod/NAME/v-TOKEN/REST` is a copy of,
/// in the build it belongs to: `build` is the asset folder as that build wrote it.
fn file_in_build(build: &Path, url: &str) -> PathBuf {
    let (_, rest) = url.split_once("/v-").unwrap();
    let (_, within) = rest.split_once('/').unwrap();
    build.join(within)
}

/// Copies the asset folder `from` (files one level of folders deep, as the ladder writes).
fn copy_build(from: &Path, to: &Path) {
    for entry in walk(from) {
        let target = to.join(entry.strip_prefix(from).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&entry, target).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_reaches_players_through_an_edge_without_mixing_builds() {
    let dir = tempfile::tempdir().unwrap();
    let library = dir.path().join("library");
    std::fs::create_dir(&library).unwrap();
    let file = library.join("clip.mp4");
    drop_file("sources/movie_360.mp4", &file);

    // The edge first (it needs the origin's address), then the origin purging it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin_addr = listener.local_addr().unwrap();
    let token = "purge-secret";
    let edge = start_edge_with(
        origin_addr,
        "e1",
        |config| config.purge_token = Some(token.into()),
        std::future::pending(),
    )
    .await
    .unwrap();
    let purge = PurgeConfig {
        edges: vec![format!("e1=http://{edge}").parse::<NamedUrl>().unwrap()],
        token: token.into(),
    };
    let origin = Origin::start_on(listener, &library, Some(purge)).await;
    origin.settle().await;
    origin.wait_for("clip.mp4", &["ready", "failed"]).await;
    assert_eq!(origin.status("clip.mp4").state, "ready");

    // A player through the edge reads the whole first build; it is kept as written to
    // check every later answer against.
    let client = reqwest::Client::new();
    let master_url = format!("http://{edge}/vod/clip/master.m3u8");
    let old_build = dir.path().join("old-build");
    copy_build(&library.join("clip"), &old_build);
    let old = fetch_hls(&client, &master_url).await;
    let old_token = token_of(&String::from_utf8(old[0].1.clone()).unwrap());
    // The edge stores the manifest for its max-age: the next read is a hit.
    let again = client.get(&master_url).send().await.unwrap();
    assert!(
        again.headers()["cache-status"]
            .to_str()
            .unwrap()
            .contains("hit"),
        "{:?}",
        again.headers()
    );

    // The source changes; players keep reading through the edge while it is rebuilt.
    drop_file("sources/plain.mp4", &file);
    origin.settle().await;
    let reads = Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let reader = tokio::spawn({
        let client = client.clone();
        let master_url = master_url.clone();
        let reads = Arc::clone(&reads);
        let old_token = old_token.clone();
        async move {
            // Bounded: at most 2,000 rounds of a whole-title read.
            for _ in 0..2_000 {
                let round = fetch_hls(&client, &master_url).await;
                let token = token_of(&String::from_utf8(round[0].1.clone()).unwrap());
                let done = token != old_token;
                reads.lock().await.push((token, round));
                if done {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    origin.wait_for("clip.mp4", &["ready", "failed"]).await;
    assert_eq!(origin.status("clip.mp4").state, "ready");
    // The edge was purged: it answers with the new build within moments, not after the
    // manifests' hour of max-age.
    let Ok(read) = tokio::time::timeout(Duration::from_secs(30), reader).await else {
        panic!("the edge still serves the old manifest 30 s after the rebuild");
    };
    read.unwrap();
    let new_build = library.join("clip");
    let reads = reads.lock().await;
    let (new_token, _) = reads.last().unwrap();
    assert_ne!(*new_token, old_token);

    // Every answer through the edge belongs to the build its manifest named: the old
    // build's bytes for the old token, the new build's for the new one.
    let mut checked = 0;
    for (token, round) in reads.iter() {
        let build = if *token == old_token {
            &old_build
        } else {
            &new_build
        };
        for (url, body) in &round[1..] {
            assert!(url.contains(&format!("/{token}/")), "{url} under {token}");
            let expected = std::fs::read(file_in_build(build, url)).unwrap();
            assert!(*body == expected, "{url}: not the bytes of build {token}");
            checked += 1;
        }
    }
    assert!(checked > 0);
    // A player still holding the old manifest plays the old build to its end, through
    // the edge and from the origin itself.
    for (url, body) in &old[1..] {
        assert_eq!(fetch(&client, url).await, *body, "{url}");
        let at_origin = url.replace(&edge.to_string(), &origin_addr.to_string());
        assert_eq!(fetch(&client, &at_origin).await, *body, "{at_origin}");
    }
    let mpd = get(&format!("http://{edge}/vod/clip/manifest.mpd"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        mpd.contains(&format!("<BaseURL>{new_token}/</BaseURL>")),
        "{mpd}"
    );
    ffmpeg_decode(&format!("http://{edge}/vod/clip/master.m3u8"), &[]).unwrap();
    origin.stop().await;
}
