//! The upstream side: the pooled HTTP client and the header rules of a proxy.

use std::net::SocketAddr;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::header::{
    CONNECTION, CONTENT_LENGTH, HOST, TE, TRAILER, TRANSFER_ENCODING, UPGRADE, VIA,
};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use http_rules::forwarded;
use tokio::sync::OwnedSemaphorePermit;

use crate::config::Config;

/// RFC 8586: each CDN node a request passes through adds its name, so a node that
/// finds its own name knows the request came round a loop.
pub const CDN_LOOP: HeaderName = HeaderName::from_static("cdn-loop");

/// Marks a request one edge sends a peer for a key the peer owns, naming the sender.
/// A peer never forwards such a request to another peer (serving it from its cache or
/// its upstream), so a request takes at most one peer hop whatever the memberships say.
pub const EDGE_PEER: HeaderName = HeaderName::from_static("edge-peer");

/// Hop-by-hop fields that are never forwarded (RFC 9110 §7.6.1), besides those
/// named by `Connection`. `Proxy-*` fields concern only the adjacent hop.
const HOP_BY_HOP: [&str; 4] = [
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
];

/// A response from a peer or an upstream, holding one of the `--max-upstream-requests`
/// slots until it is dropped (its body read or abandoned).
#[derive(Debug)]
pub struct Answer {
    response: reqwest::Response,
    slot: OwnedSemaphorePermit,
}

impl Answer {
    pub fn new(response: reqwest::Response, slot: OwnedSemaphorePermit) -> Self {
        Answer { response, slot }
    }

    pub fn status(&self) -> StatusCode {
        self.response.status()
    }

    pub fn headers(&self) -> &HeaderMap {
        self.response.headers()
    }

    /// The next chunk of the body; `None` at its end.
    pub async fn chunk(&mut self) -> reqwest::Result<Option<Bytes>> {
        self.response.chunk().await
    }

    /// The body as a stream that keeps the slot until it ends or is dropped.
    pub fn into_stream(self) -> impl Stream<Item = reqwest::Result<Bytes>> + Send + 'static {
        let Answer { response, slot } = self;
        response.bytes_stream().map(move |chunk| {
            let _held = &slot;
            chunk
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot build the upstream HTTP client: {0}")]
pub struct ClientError(#[from] reqwest::Error);

/// A pooled keep-alive client; no redirects followed (the client sees them), no proxy
/// from the environment, no decompression (bodies pass through as sent).
pub fn client(cfg: &Config) -> Result<reqwest::Client, ClientError> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(cfg.connect_timeout)
        .read_timeout(cfg.read_timeout)
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .build()?)
}

/// Removes hop-by-hop fields in place (RFC 9110 §7.6.1).
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [CONNECTION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE] {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Whether a request came back through `node`: its name in `CDN-Loop` (RFC 8586 §2)
/// or as the received-by of a `Via` member (RFC 9110 §7.6.3).
pub fn loops_through(headers: &HeaderMap, node: &str) -> bool {
    let members = |name: HeaderName| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>()
    };
    // cdn-info = pseudonym *( OWS ";" OWS parameter )
    let cdn = members(CDN_LOOP)
        .into_iter()
        .any(|m| m.split(';').next().map(str::trim) == Some(node));
    // Via member = received-protocol RWS received-by [ RWS comment ]
    cdn || members(VIA)
        .into_iter()
        .any(|m| m.split_whitespace().nth(1) == Some(node))
}

/// The headers to send upstream for a client request: end-to-end fields only, no
/// `Host` (the client sets the upstream's), plus `Via`, `X-Forwarded-For` and
/// `Forwarded` (RFC 7239) naming the client, and this node added to `CDN-Loop`
/// (RFC 8586). A received `Edge-Peer` concerns only the hop it came over.
///
/// No framing field either: the client's `Content-Length` described the body the
/// client sent, and the edge frames what it sends itself (RFC 9112 §6.3). Forwarding it
/// on a request sent without that body made the upstream read the next request on
/// the pooled connection as the missing body (issue 14, request desync).
pub fn forward_headers(
    client_headers: &HeaderMap,
    peer: Option<SocketAddr>,
    via: &HeaderValue,
    node: &str,
) -> HeaderMap {
    let mut h = client_headers.clone();
    strip_hop_by_hop(&mut h);
    h.remove(CONTENT_LENGTH);
    let host = h.remove(HOST);
    h.remove(EDGE_PEER);
    h.append(VIA, via.clone());
    if let Ok(v) = HeaderValue::from_str(node) {
        h.append(CDN_LOOP, v);
    }
    if let Some(peer) = peer {
        let ip = peer.ip();
        let xff = match h.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(prev) => format!("{prev}, {ip}"),
            None => ip.to_string(),
        };
        if let Ok(v) = HeaderValue::from_str(&xff) {
            h.insert("x-forwarded-for", v);
        }
        // RFC 7239 §4: each value a token or a quoted string, so that a client's Host
        // can never add a pair or an element.
        // The node name is written quoted, as the edge always has.
        let for_node = forwarded::node(ip);
        let mut pairs = vec![
            ("for", forwarded::value(&for_node)),
            ("by", forwarded::quoted(node).into()),
            ("proto", "http".into()),
        ];
        if let Some(host) = host.as_ref().and_then(|v| v.to_str().ok()) {
            pairs.push(("host", forwarded::value(host)));
        }
        if let Ok(v) = HeaderValue::from_str(&forwarded::element(pairs)) {
            h.append(http::header::FORWARDED, v);
        }
    }
    if let Some(host) = host {
        h.insert("x-forwarded-host", host);
    }
    h
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn hop_by_hop_removed() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "close, x-secret"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("te", "trailers"),
            ("upgrade", "h2c"),
            ("proxy-authorization", "Basic x"),
            ("cache-control", "max-age=1"),
        ] {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("cache-control"));
    }

    #[test]
    fn forwarding_headers() {
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_static("edge.example"));
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        h.insert(CONNECTION, HeaderValue::from_static("keep-alive"));
        h.insert(CONTENT_LENGTH, HeaderValue::from_static("5"));
        h.insert(CDN_LOOP, HeaderValue::from_static("parent-cdn"));
        h.insert(EDGE_PEER, HeaderValue::from_static("e0"));
        let out = forward_headers(
            &h,
            Some("[::1]:5000".parse().unwrap()),
            &HeaderValue::from_static("1.1 e1"),
            "e1",
        );
        assert!(out.get(HOST).is_none());
        assert!(out.get(CONNECTION).is_none());
        assert!(out.get(CONTENT_LENGTH).is_none());
        assert_eq!(out["x-forwarded-for"], "10.0.0.1, ::1");
        assert_eq!(
            out["forwarded"],
            "for=\"[::1]\";by=\"e1\";proto=http;host=edge.example"
        );
        assert_eq!(out["via"], "1.1 e1");
        assert_eq!(out["x-forwarded-host"], "edge.example");
        let cdn: Vec<_> = out.get_all(CDN_LOOP).iter().collect();
        assert_eq!(cdn, ["parent-cdn", "e1"]);
        assert!(out.get(EDGE_PEER).is_none());
    }

    #[test]
    fn loop_detection_table() {
        let table: &[(&str, &str, bool)] = &[
            ("cdn-loop", "e1", true),
            ("cdn-loop", "foo, e1; v=1", true),
            ("cdn-loop", "foo;e1, bar", false),
            ("cdn-loop", "e10, xe1", false),
            ("via", "1.1 e1", true),
            ("via", "1.0 fred, 1.1 e1 (rivulet)", true),
            ("via", "1.1 other", false),
            ("x-other", "e1", false),
        ];
        for (name, value, want) in table {
            let mut h = HeaderMap::new();
            h.insert(
                HeaderName::from_static(name),
                HeaderValue::from_str(value).unwrap(),
            );
            assert_eq!(loops_through(&h, "e1"), *want, "{name}: {value}");
        }
        let mut two = HeaderMap::new();
        two.append(CDN_LOOP, HeaderValue::from_static("a"));
        two.append(CDN_LOOP, HeaderValue::from_static("e1"));
        assert!(loops_through(&two, "e1"));
        assert!(!loops_through(&HeaderMap::new(), "e1"));
    }
}
