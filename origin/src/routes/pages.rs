//! The pages a person opens: the asset index and the watch page, and the player libraries
//! (hls.js, dash.js, Shaka) served from a configured folder.

use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};

use crate::entity::{CachePolicy, Entity, respond};
use crate::error::OriginError;
use crate::library::{AssetInfo, DASH_MANIFEST, HLS_MANIFEST};
use crate::routes::files::serve_file;
use crate::state::AppState;

/// Player libraries: the URL name under `/lib/` and where npm installs the browser build
/// (first existing candidate wins; dash.js 5 moved its bundle under `modern/umd`).
const LIBS: &[(&str, &[&str])] = &[
    ("hls.js", &["hls.js/dist/hls.min.js"]),
    (
        "dash.js",
        &[
            "dashjs/dist/modern/umd/dash.all.min.js",
            "dashjs/dist/dash.all.min.js",
        ],
    ),
    ("shaka.js", &["shaka-player/dist/shaka-player.compiled.js"]),
];

const WATCH_HTML: &str = include_str!("web/watch.html");
const INDEX_HTML: &str = include_str!("web/index.html");

/// Where a library's file is, if installed.
async fn find_lib(state: &AppState, name: &str) -> Option<std::path::PathBuf> {
    let dir = state.web_libs()?;
    let (_, candidates) = LIBS.iter().find(|(n, _)| *n == name)?;
    for candidate in *candidates {
        let path = dir.join(candidate);
        if tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_file()) {
            return Some(path);
        }
    }
    None
}

/// `/lib/{name}`: hls.js, dash.js or shaka.js from the configured folder.
pub async fn lib_file(
    State(state): State<AppState>,
    Path(name): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, OriginError> {
    if !LIBS.iter().any(|(n, _)| *n == name) {
        return Err(OriginError::not_found("not found: unknown library"));
    }
    let Some(path) = find_lib(&state, &name).await else {
        return Err(OriginError::not_found(format!(
            "{name} is not installed: run `npm ci` in tests/browser, or start the origin \
             with --web-libs pointing at a node_modules folder that has it"
        )));
    };
    let content_type = HeaderValue::from_static("text/javascript; charset=utf-8");
    serve_file(
        &state,
        &path,
        content_type,
        CachePolicy::Static,
        &method,
        &headers,
    )
    .await
}

/// Escapes text for HTML element content and attribute values.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A generated HTML page through the common response path (ETag, 304, HEAD), dated now.
fn page(state: &AppState, html: String, method: &Method, headers: &HeaderMap) -> Response {
    let entity = Entity::generated(
        Bytes::from(html),
        HeaderValue::from_static("text/html; charset=utf-8"),
        CachePolicy::Revalidate,
        state.clock().now(),
    );
    respond(method, headers, &entity)
}

fn asset_row(asset: &AssetInfo) -> String {
    let name = escape(&asset.name);
    let mut links = vec![format!(
        "<a class=\"watch\" href=\"watch/{name}\">watch</a>"
    )];
    // The manifests' paths are valid path components: nothing to escape.
    if let Some(path) = asset.hls_path() {
        links.push(format!("<a href=\"{}\">HLS</a>", &path[1..]));
    }
    if let Some(path) = asset.dash_path() {
        links.push(format!("<a href=\"{}\">DASH</a>", &path[1..]));
    }
    let duration = asset
        .duration
        .map_or_else(String::new, |d| format!("{d:.1} s"));
    format!(
        "<tr><td><strong>{name}</strong></td><td>{}</td><td>{duration}</td><td>{}</td></tr>",
        links.join(" · "),
        escape(&asset.renditions.join(", ")),
    )
}

/// `/`: the assets with links.
pub async fn index(State(state): State<AppState>, method: Method, headers: HeaderMap) -> Response {
    let assets = state.library().assets().await;
    let rows = if assets.is_empty() {
        "<tr><td colspan=\"4\">The library is empty: run <code>media sample --out DIR</code> \
         and start the origin with <code>--library DIR</code>.</td></tr>"
            .to_owned()
    } else {
        assets.iter().map(asset_row).collect()
    };
    let live_rows: String = state
        .live()
        .names()
        .map(|ch| {
            let ch = escape(ch);
            format!(
                "<tr><td><strong>{ch}</strong> (live)</td><td><a href=\"watch/live/{ch}\">watch</a> · \
                 <a href=\"live/{ch}/{HLS_MANIFEST}\">HLS</a> · <a href=\"live/{ch}/{DASH_MANIFEST}\">DASH</a>\
                 </td><td>live</td><td></td></tr>"
            )
        })
        .collect();
    let rows = rows + &live_rows;
    page(
        &state,
        INDEX_HTML.replace("{{ROWS}}", &rows),
        &method,
        &headers,
    )
}

/// `/watch/{asset}`: the player page. All URLs in it are relative so it works through an edge.
pub async fn watch(
    State(state): State<AppState>,
    Path(asset): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, OriginError> {
    let info = state
        .library()
        .asset(&asset)
        .await
        .ok_or_else(|| OriginError::not_found("not found: no such asset"))?;
    let root = "../";
    let hls = info.hls_path().map(|p| format!("..{p}"));
    let dash = info.dash_path().map(|p| format!("..{p}"));
    Ok(watch_page(&state, &info.name, root, hls, dash, &method, &headers).await)
}

/// `/watch/live/{channel}`: the same page on a live channel.
pub async fn watch_live(
    State(state): State<AppState>,
    Path(channel): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, OriginError> {
    if state.live().get(&channel).is_none() {
        return Err(OriginError::not_found("not found: no such live channel"));
    }
    let root = "../../";
    let hls = Some(format!("{root}live/{channel}/{HLS_MANIFEST}"));
    let dash = Some(format!("{root}live/{channel}/{DASH_MANIFEST}"));
    Ok(watch_page(
        &state,
        &format!("{channel} (live)"),
        root,
        hls,
        dash,
        &method,
        &headers,
    )
    .await)
}

/// The player page for a title and its manifests. Every URL is relative (`root` leads from
/// the page back to the site root), so the page works through an edge.
async fn watch_page(
    state: &AppState,
    title: &str,
    root: &str,
    hls: Option<String>,
    dash: Option<String>,
    method: &Method,
    headers: &HeaderMap,
) -> Response {
    let mut libs = serde_json::Map::new();
    for (name, _) in LIBS {
        let installed = find_lib(state, name).await.is_some();
        libs.insert((*name).to_owned(), serde_json::Value::Bool(installed));
    }
    let config = serde_json::json!({
        "asset": title,
        "root": root,
        "hls": hls,
        "dash": dash,
        "libs": libs,
    });
    // `<` cannot close the script element once escaped (JSON allows \u003c anywhere).
    let config = config.to_string().replace('<', "\\u003c");
    let html = WATCH_HTML
        .replace("{{TITLE}}", &escape(title))
        .replace("{{ROOT}}", root)
        .replace("{{CONFIG}}", &config);
    page(state, html, method, headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_html() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
