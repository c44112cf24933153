//! A real origin on 127.0.0.1:0 and a real HTTP client for the integration tests.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use http_rules::ManualClock;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use origin::live::{LiveChannels, LiveConfig};
use origin::store::StoreLimits;
use origin::{AppState, OriginConfig, router, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

/// A running origin; dropping it shuts the server down.
pub struct Server {
    pub addr: SocketAddr,
    pub library: PathBuf,
    client: Client<HttpConnector, Empty<Bytes>>,
    _stop: oneshot::Sender<()>,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Server {
    pub async fn start(library: &Path, web_libs: Option<PathBuf>, store: StoreLimits) -> Self {
        let config = OriginConfig {
            web_libs,
            store,
            ..OriginConfig::new(library)
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let app = router(AppState::new(&config));
        tokio::spawn(async move {
            serve(listener, app, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self {
            addr,
            library: library.to_path_buf(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            _stop: stop,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn request(&self, method: Method, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = Request::builder().method(method).uri(self.url(path));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let response = self
            .client
            .request(req.body(Empty::new()).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.request(Method::GET, path, headers).await
    }

    /// Sends raw bytes as a request (paths no client library would send) and returns the
    /// status code and the whole response text.
    pub async fn raw(&self, request_target: &[u8]) -> (u16, String) {
        let mut req = b"GET ".to_vec();
        req.extend_from_slice(request_target);
        req.extend_from_slice(b" HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        self.send(&req).await
    }

    /// Sends `request` (whole, head and all) on a fresh connection; the status code and
    /// the whole response text, read until the server closes (at most 10 s).
    pub async fn send(&self, request: &[u8]) -> (u16, String) {
        let mut stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_end(&mut out),
        )
        .await
        .expect("the origin never finished its answer")
        .unwrap();
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, text)
    }
}

/// The small sample (three rungs and audio), 4 s, built once per test binary under Cargo's
/// per-target temporary folder and reused by later runs.
pub fn small_sample() -> &'static Path {
    static LIBRARY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    LIBRARY.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("small-sample-library");
        if !dir.join("sample/master.m3u8").is_file() {
            let mut options = media::SampleOptions::new("small".parse().unwrap());
            options.duration = 4.0;
            options.progress = false;
            media::build_sample(&dir, &options).unwrap();
        }
        dir
    })
}

/// An origin's state over `library` (default store) serving the default `live` channel,
/// on `clock`.
pub fn live_state(library: &Path, clock: &ManualClock) -> AppState {
    let state = AppState::new(&OriginConfig::new(library)).with_clock(clock.shared());
    let live = LiveChannels::load(state.library(), &LiveConfig::default()).unwrap();
    state.with_live(live)
}

/// Deterministic non-trivial bytes.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

/// A hand-made library with the layout `media` writes:
/// `sample/{master.m3u8, manifest.mpd, 270p-300k/{index.m3u8, init.mp4, 1.m4s, 2.m4s}}`.
pub fn fake_library() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let asset = dir.path().join("lib").join("sample");
    let rendition = asset.join("270p-300k");
    std::fs::create_dir_all(&rendition).unwrap();
    std::fs::write(asset.join("master.m3u8"), "#EXTM3U\n#EXT-X-VERSION:7\n").unwrap();
    std::fs::write(
        asset.join("manifest.mpd"),
        "<?xml version=\"1.0\"?><MPD/>\n",
    )
    .unwrap();
    std::fs::write(asset.join("presentation.json"), "{}").unwrap();
    std::fs::write(rendition.join("index.m3u8"), "#EXTM3U\n").unwrap();
    std::fs::write(rendition.join("init.mp4"), pattern(700, 1)).unwrap();
    std::fs::write(rendition.join("1.m4s"), pattern(300_000, 2)).unwrap();
    std::fs::write(rendition.join("2.m4s"), pattern(1000, 3)).unwrap();
    // A file just outside the library that traversal attempts aim at.
    std::fs::write(dir.path().join("secret.m4s"), b"SECRET").unwrap();
    dir
}

pub fn lib_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("lib")
}
