//! Content steering end to end on loopback: a real origin steering players between real
//! edges (the `edge` crate) in front of it. Manifests list every edge as a pathway and
//! parse back with media's parsers, and are kept until the asset changes; the steering
//! JSON puts a stopped edge last after one probe; new clients spread evenly and known ones
//! stay where they are. The origin runs on a manual clock: steering windows and live
//! documents move only when a test moves it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant, UNIX_EPOCH};

use http_rules::{Clock, ManualClock};
use media::{SteeringManifest, SteeringProtocol};
use origin::entity::tag_of;
use origin::steering::manifests::SourceVersion;
use origin::steering::{NamedUrl, SteeringConfig};
use origin::store::StoreLimits;
use origin::{AppState, OriginConfig};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const PROBE_INTERVAL: Duration = Duration::from_millis(200);
const TTL: Duration = Duration::from_secs(2);

/// A real edge; `stop` closes its listener (new connections are refused).
struct Edge {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Edge {
    async fn start(listener: TcpListener, origin: SocketAddr, name: &str) -> Self {
        let addr = listener.local_addr().unwrap();
        let mut config = edge::Config::new(format!("http://{origin}").parse().unwrap());
        config.name = Some(name.into());
        config.listen = addr;
        let app = edge::router(edge::AppState::new(config.clone()).unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            edge::serve(listener, app, &config, shutdown).await.unwrap();
        });
        Self {
            addr,
            stop: Some(stop),
            task,
        }
    }

    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.unwrap();
    }
}

/// An origin over the sample library with the `live` channel, steering to `names.len()`
/// edges in front of it.
struct Cluster {
    origin: SocketAddr,
    /// The origin's state (a clone shares it): probes can be asked for by hand.
    state: AppState,
    clock: ManualClock,
    edges: Vec<Edge>,
    names: Vec<String>,
    client: reqwest::Client,
    _stop: oneshot::Sender<()>,
}

impl Cluster {
    async fn start(names: &[&str]) -> Self {
        let library = tokio::task::spawn_blocking(common::small_sample)
            .await
            .unwrap();
        let origin_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = origin_listener.local_addr().unwrap();
        let mut edges = Vec::new();
        let mut targets = Vec::new();
        for name in names {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            targets.push(format!("{name}=http://{addr}").parse::<NamedUrl>().unwrap());
            edges.push(Edge::start(listener, origin, name).await);
        }
        let clock = ManualClock::starting_now();
        let state = common::live_state(library, &clock)
            .with_steering(SteeringConfig {
                edges: targets,
                ttl: TTL,
                probe_interval: PROBE_INTERVAL,
                probe_timeout: PROBE_INTERVAL,
                ..SteeringConfig::new(Vec::new())
            })
            .unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(origin::serve(
            origin_listener,
            origin::router(state.clone()),
            async {
                let _ = stopped.await;
            },
        ));
        let cluster = Self {
            origin,
            state,
            clock,
            edges,
            names: names.iter().map(|n| n.to_string()).collect(),
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            _stop: stop,
        };
        cluster.wait_usable(names, true).await;
        cluster
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.origin)
    }

    async fn get(&self, url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.client.get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap()
    }

    async fn text(&self, path: &str) -> String {
        let response = self.get(&self.url(path), &[]).await;
        assert_eq!(response.status(), 200, "{path}");
        response.text().await.unwrap()
    }

    async fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.text("/steering/status").await).unwrap()
    }

    /// Waits until each edge of `names` is usable (or not), at most 5 s.
    async fn wait_usable(&self, names: &[&str], usable: bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let status = self.status().await;
            let edges = status["edges"].as_array().unwrap();
            let done = names.iter().all(|name| {
                edges
                    .iter()
                    .any(|e| e["name"] == *name && e["usable"] == usable)
            });
            if done {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "edges {names:?} usable={usable}: {status}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A steering manifest for a request with `query`.
    async fn steer(&self, protocol: SteeringProtocol, query: &str) -> SteeringManifest {
        let path = match protocol {
            SteeringProtocol::Hls => "/steering/hls",
            SteeringProtocol::Dash => "/steering/dash",
        };
        SteeringManifest::parse(&self.text(&format!("{path}?{query}")).await).unwrap()
    }

    fn edge_base(&self, index: usize, root: &str) -> String {
        format!("http://{}/{root}/", self.edges[index].addr)
    }
}

/// Every edge, in order, as a pathway of `delivery`, with its copy of the presentation under
/// `root`. (media reads an HLS pathway's base as the part of the URIs that differs between
/// pathways, `http://edge/`, and a DASH one as the `BaseURL` itself.)
fn assert_pathways(cluster: &Cluster, delivery: &media::Delivery, root: &str) {
    let ids: Vec<&str> = delivery.pathways.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, cluster.names);
    for (i, pathway) in delivery.pathways.iter().enumerate() {
        let edge = format!("http://{}/", cluster.edges[i].addr);
        let full = cluster.edge_base(i, root);
        assert!(
            pathway.base.starts_with(&edge) && full.starts_with(&pathway.base),
            "{} for {full}",
            pathway.base
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_list_every_edge_as_a_pathway_and_parse_back() {
    let cluster = Cluster::start(&["e1", "e2"]).await;

    // VOD multivariant playlist: stable bytes, the usual HTTP semantics.
    let url = cluster.url("/vod/sample/master.m3u8");
    let first = cluster.get(&url, &[]).await;
    assert_eq!(first.status(), 200);
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    assert_eq!(
        header(&first, "content-type").as_deref(),
        Some("application/vnd.apple.mpegurl")
    );
    assert_eq!(
        header(&first, "cache-control").as_deref(),
        Some("public, max-age=3600")
    );
    let etag = header(&first, "etag").unwrap();
    let text = first.text().await.unwrap();
    let again = cluster.get(&url, &[]).await;
    assert_eq!(header(&again, "etag").as_deref(), Some(etag.as_str()));
    assert_eq!(again.text().await.unwrap(), text, "byte-stable");
    let revalidated = cluster.get(&url, &[("if-none-match", &etag)]).await;
    assert_eq!(revalidated.status(), 304);

    let hls = media::hls::parse_multivariant(&text, &url).unwrap();
    // The presentation's media are under the current build's token (versioned URLs).
    let token = hls.renditions[0]
        .playlist_uri
        .as_deref()
        .and_then(|uri| uri.split('/').find(|c| c.starts_with("v-")))
        .unwrap()
        .to_owned();
    let root = format!("vod/sample/{token}");
    assert_pathways(&cluster, &hls.delivery, &root);
    let server = hls.delivery.steering.clone().unwrap();
    assert_eq!(server.uri, "/steering/hls?start=1");
    assert_eq!(server.default_pathway.as_deref(), Some("e1"));

    // A media playlist and a segment on the second pathway come through edge e2.
    let playlist = hls.renditions[0].playlist_uri.clone().unwrap();
    let on_e2 = hls.delivery.rebase(&playlist, "e1", "e2").unwrap();
    assert!(on_e2.starts_with(&cluster.edge_base(1, &root)), "{on_e2}");
    let media_text = cluster.get(&on_e2, &[]).await.text().await.unwrap();
    let media_playlist = media::hls::parse_media_playlist(&media_text, &on_e2).unwrap();
    let segment = cluster.get(&media_playlist.segments[0].uri, &[]).await;
    assert_eq!(segment.status(), 200);
    let cache_status = header(&segment, "cache-status").unwrap();
    assert!(cache_status.starts_with("e2;"), "{cache_status}");

    // VOD MPD: one BaseURL per edge, ContentSteering asked before start.
    let url = cluster.url("/vod/sample/manifest.mpd");
    let response = cluster.get(&url, &[]).await;
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("application/dash+xml")
    );
    let text = response.text().await.unwrap();
    let dash = media::dash::parse_mpd(&text, &url, 0.0).unwrap();
    assert_pathways(&cluster, &dash.delivery, &root);
    let server = dash.delivery.steering.clone().unwrap();
    assert_eq!(server.uri, "/steering/dash?start=1");
    assert_eq!(server.default_pathway.as_deref(), Some("e1"));
    assert!(server.query_before_start);
    assert_eq!(dash.renditions.len(), hls.renditions.len());

    // The live channel: the same, under /live/live/ on each edge.
    let url = cluster.url("/live/live/master.m3u8");
    let live = media::hls::parse_multivariant(&cluster.text("/live/live/master.m3u8").await, &url)
        .unwrap();
    assert_pathways(&cluster, &live.delivery, "live/live");
    let url = cluster.url("/live/live/manifest.mpd");
    let now = cluster
        .clock
        .now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let text = cluster.text("/live/live/manifest.mpd").await;
    let live = media::dash::parse_mpd(&text, &url, now).unwrap();
    assert_pathways(&cluster, &live.delivery, "live/live");
    assert!(live.delivery.steering.unwrap().query_before_start);
    // Its segments are there on an edge.
    let segment = &live.renditions[0].segments.last().unwrap().uri;
    assert!(
        segment.starts_with(&cluster.edge_base(0, "live/live")),
        "{segment}"
    );
    assert_eq!(cluster.get(segment, &[]).await.status(), 200);
}

/// The probe loop runs every `PROBE_INTERVAL`, so a stopped edge goes last within two
/// intervals: one until the next round begins, and that one round is enough. That second
/// half is what this test checks, by asking for one round itself right after the stop
/// (rather than timing the loop, which a busy machine delays); the edge coming back is
/// found by the loop on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_edge_goes_last_after_one_probe_and_comes_back() {
    let mut cluster = Cluster::start(&["e1", "e2"]).await;
    let on_e1 = "_HLS_pathway=e1&_HLS_throughput=1000000";
    assert_eq!(
        cluster.steer(SteeringProtocol::Hls, on_e1).await.priority,
        ["e1", "e2"]
    );

    let addr = cluster.edges[0].addr;
    cluster.edges[0].stop().await;
    // One round begun after the stop: whatever the loop's rounds begun before it report
    // later, this one's answer stands.
    cluster.state.steering().unwrap().probe_edges().await;
    let manifest = cluster.steer(SteeringProtocol::Hls, on_e1).await;
    assert_eq!(manifest.priority, ["e2", "e1"]);
    let dash = cluster.steer(SteeringProtocol::Dash, "").await;
    assert_eq!(dash.priority, ["e2", "e1"], "new clients too");

    let status = cluster.status().await;
    let e1 = &status["edges"][0];
    assert_eq!(e1["usable"], false, "{status}");
    assert!(e1["last_probe_error"].is_string(), "{status}");
    assert_eq!(status["edges"][1]["usable"], true, "{status}");
    let metrics = cluster.text("/metrics").await;
    for line in [
        "origin_edge_usable{edge=\"e1\"} 0",
        "origin_edge_usable{edge=\"e2\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    assert!(
        metrics.contains("origin_steering_requests_total{protocol=\"hls\"}"),
        "{metrics}"
    );

    // The same edge back on its address: usable again, and steered to.
    let listener = TcpListener::bind(addr).await.unwrap();
    cluster.edges[0] = Edge::start(listener, cluster.origin, "e1").await;
    cluster.wait_usable(&["e1"], true).await;
    let manifest = cluster.steer(SteeringProtocol::Hls, "start=1").await;
    assert_eq!(manifest.priority.len(), 2);
    assert_eq!(manifest.priority[0], "e1", "the edge with no clients");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_clients_spread_evenly_and_known_clients_stay() {
    let cluster = Cluster::start(&["e1", "e2", "e3"]).await;

    // 30 players start (hls.js sends the manifest's default pathway on its first request,
    // with the start marker of the manifest's URI).
    let mut on = Vec::new();
    for _ in 0..30 {
        let manifest = cluster
            .steer(
                SteeringProtocol::Hls,
                "start=1&_HLS_pathway=e1&_HLS_throughput=500000",
            )
            .await;
        assert_eq!(manifest.priority.len(), 3);
        on.push(manifest.priority[0].clone());
    }
    let per_edge: Vec<usize> = cluster
        .names
        .iter()
        .map(|n| on.iter().filter(|o| *o == n).count())
        .collect();
    assert!(
        per_edge.iter().all(|n| (9..=11).contains(n)),
        "{per_edge:?}"
    );

    // Each asks again from its edge: everyone stays.
    for edge in &on {
        let manifest = cluster
            .steer(SteeringProtocol::Hls, &format!("_HLS_pathway={edge}"))
            .await;
        assert_eq!(&manifest.priority[0], edge);
    }
    // dash.js spelling: a quoted list of the service locations used, the current last.
    let manifest = cluster
        .steer(
            SteeringProtocol::Dash,
            "_DASH_pathway=%22e1%2Ce3%22&_DASH_throughput=%2C",
        )
        .await;
    assert_eq!(manifest.priority[0], "e3");
    let metrics = cluster.text("/metrics").await;
    assert!(
        metrics.contains("origin_steered_clients{edge=\"e2\"}"),
        "{metrics}"
    );

    // The answer: JSON in the protocol's spelling, never stored, CORS like every route.
    let response = cluster
        .get(
            &cluster.url("/steering/dash?_DASH_pathway=%22e2%22"),
            &[("origin", "http://player.test")],
        )
        .await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["access-control-allow-origin"], "*");
    let json: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(json["VERSION"], 1);
    assert_eq!(json["TTL"], TTL.as_secs());
    assert_eq!(json["RELOAD-URI"], "/steering/dash");
    assert_eq!(json["SERVICE-LOCATION-PRIORITY"][0], "e2");
    let hls: serde_json::Value =
        serde_json::from_str(&cluster.text("/steering/hls").await).unwrap();
    assert_eq!(hls["RELOAD-URI"], "/steering/hls");
    assert_eq!(hls["PATHWAY-PRIORITY"].as_array().unwrap().len(), 3);

    // Odd parameters are ignored, never an error; unknown paths are 404.
    for query in [
        "_HLS_pathway=%FF%FE&_HLS_throughput=fast&&=&start",
        "_HLS_pathway=",
        "_HLS_pathway=e1&_HLS_pathway=nope",
        "x=%ZZ",
    ] {
        let manifest = cluster.steer(SteeringProtocol::Hls, query).await;
        assert_eq!(manifest.priority.len(), 3, "{query}");
    }
    let head = cluster
        .client
        .head(cluster.url("/steering/hls"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    for path in ["/steering/nope", "/steering", "/steering/hls/x"] {
        assert_eq!(
            cluster.get(&cluster.url(path), &[]).await.status(),
            404,
            "{path}"
        );
    }
}

/// Steered VOD manifests are written once per version of the asset's `presentation.json`
/// and kept: the same bytes and ETag on every request, the entry in the cache under the
/// file's version; a changed file gets a new manifest, and an asset that loses its model is
/// served as written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steered_manifests_are_kept_until_the_asset_changes() {
    let built = tokio::task::spawn_blocking(common::small_sample)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let asset = dir.path().join("sample");
    std::fs::create_dir_all(&asset).unwrap();
    for file in ["master.m3u8", "manifest.mpd", "presentation.json"] {
        std::fs::copy(built.join("sample").join(file), asset.join(file)).unwrap();
    }
    let edges = vec!["e1=http://127.0.0.1:1".parse::<NamedUrl>().unwrap()];
    let state = AppState::new(&OriginConfig {
        // Every request looks at the file again, so a change is seen at once.
        store: StoreLimits {
            recheck: Duration::ZERO,
            ..StoreLimits::default()
        },
        ..OriginConfig::new(dir.path())
    })
    .with_steering(SteeringConfig::new(edges))
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(origin::serve(
        listener,
        origin::router(state.clone()),
        std::future::pending(),
    ));
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let get = |file: &'static str| {
        let client = client.clone();
        async move {
            let response = client
                .get(format!("http://{addr}/vod/sample/{file}"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{file}");
            let etag = response.headers()["etag"].to_str().unwrap().to_owned();
            (etag, response.text().await.unwrap())
        }
    };
    let model = asset.join("presentation.json");
    let version = || {
        let bytes = std::fs::read(&model).unwrap();
        SourceVersion {
            etag: tag_of(&bytes),
            modified: std::fs::metadata(&model).unwrap().modified().unwrap(),
        }
    };
    // Manifests are kept per build: under `vod/sample/{token}` of the current one.
    let (manifests, versions) = (state.manifests(), state.versions());
    let cached = |protocol, version| async move {
        let build = versions
            .current("sample", std::time::SystemTime::now())
            .await
            .unwrap();
        manifests
            .get(&format!("vod/sample/{}", build.token), protocol, &version)
            .await
            .map(|m| String::from_utf8(m.bytes.to_vec()).unwrap())
    };

    let (etag, hls) = get("master.m3u8").await;
    let hls_before = hls.clone();
    assert!(hls.contains("PATHWAY-ID=\"e1\""), "{hls}");
    assert_eq!(get("master.m3u8").await, (etag.clone(), hls.clone()));
    let first = version();
    assert_eq!(
        cached(SteeringProtocol::Hls, first.clone()).await,
        Some(hls)
    );
    assert_eq!(cached(SteeringProtocol::Dash, first.clone()).await, None);
    let (_, mpd) = get("manifest.mpd").await;
    assert_eq!(
        cached(SteeringProtocol::Dash, first.clone()).await,
        Some(mpd)
    );

    // A new model (the asset rebuilt with another bandwidth): new manifests at once.
    let mut presentation: media::Presentation =
        serde_json::from_slice(&std::fs::read(&model).unwrap()).unwrap();
    presentation.renditions[0].bandwidth_peak = 123_456;
    let audio_peak = presentation
        .renditions
        .iter()
        .filter(|r| r.media_type == media::MediaType::Audio)
        .map(|r| r.bandwidth_peak)
        .max()
        .unwrap_or(0);
    std::fs::write(&model, serde_json::to_vec(&presentation).unwrap()).unwrap();
    let file = std::fs::File::options().write(true).open(&model).unwrap();
    file.set_modified(std::time::SystemTime::now() + Duration::from_secs(3600))
        .unwrap();
    let (new_etag, new_hls) = get("master.m3u8").await;
    assert_ne!(new_etag, etag);
    assert_ne!(new_hls, hls_before);
    let bandwidth = format!("BANDWIDTH={}", 123_456 + audio_peak);
    assert!(new_hls.contains(&bandwidth), "{bandwidth} in {new_hls}");
    assert_eq!(cached(SteeringProtocol::Hls, first).await, None);
    assert_eq!(
        cached(SteeringProtocol::Hls, version()).await,
        Some(new_hls)
    );

    // Without its model (as an asset another packager made), the manifest is the file on
    // disk edited: each of its lines once per edge, its URIs there.
    std::fs::remove_file(&model).unwrap();
    let on_disk = std::fs::read_to_string(asset.join("master.m3u8")).unwrap();
    let (_, edited) = get("master.m3u8").await;
    let variants = on_disk.matches("#EXT-X-STREAM-INF").count();
    assert_eq!(
        edited.matches("#EXT-X-STREAM-INF").count(),
        variants,
        "{edited}"
    );
    assert!(
        edited.contains("PATHWAY-ID=\"e1\"\nhttp://127.0.0.1:1/vod/sample/270p-300k/index.m3u8\n"),
        "{edited}"
    );
}

/// Issue 14, defect 8: one address sending steering requests as fast as it likes
/// weighs at most `--steering-clients-per-address` players (64) per TTL: it used to
/// count as many players as it sent requests, and could push every real player off
/// an edge. The requests are still answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_inflate_the_steered_counts() {
    let cluster = Cluster::start(&["e1", "e2"]).await;
    for _ in 0..300 {
        let manifest = cluster.steer(SteeringProtocol::Hls, "start=1").await;
        assert_eq!(manifest.priority.len(), 2);
    }
    let counted = |status: &serde_json::Value| -> f64 {
        status["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["steered_clients"].as_f64().unwrap())
            .sum()
    };
    let status = cluster.status().await;
    assert_eq!(counted(&status), 64.0, "{status}");
    // The next TTL has a budget of its own; the window (two TTLs) holds both.
    cluster.clock.advance(TTL);
    for _ in 0..100 {
        cluster.steer(SteeringProtocol::Hls, "start=1").await;
    }
    let status = cluster.status().await;
    assert!(counted(&status) <= 128.0, "{status}");
}
