//! The pages a person opens: the asset index (with the dropped files and their jobs) and
//! the watch page (or, for an asset still being built, its progress), the player
//! libraries (hls.js, dash.js, Shaka, see [`crate::web_libs`]), and `/library/status`,
//! the same facts as JSON.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};

use crate::entity::{CachePolicy, Entity, respond};
use crate::error::OriginError;
use crate::ingest::SourceStatus;
use crate::library::{AssetInfo, DASH_MANIFEST, HLS_MANIFEST};
use crate::routes::files::serve_file;
use crate::state::AppState;
use crate::web_libs::LIBS;

const WATCH_HTML: &str = include_str!("web/watch.html");
const INDEX_HTML: &str = include_str!("web/index.html");
const PREPARING_HTML: &str = include_str!("web/preparing.html");

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
    let Some(path) = state.web_libs().find(&name).await else {
        return Err(OriginError::not_found(format!(
            "{name} is not installed. {}",
            state.web_libs().status().advice()
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

/// One dropped file on the index page; its cells are updated in place by the page's
/// script from `/library/status`.
fn source_row(source: &SourceStatus) -> String {
    let file = escape(&source.file);
    let asset = match (&source.asset, source.playable) {
        (Some(asset), true) => {
            let asset = escape(asset);
            format!("<a href=\"watch/{asset}\">{asset}</a>")
        }
        (Some(asset), false) => escape(asset),
        (None, _) => String::new(),
    };
    let progress = source.progress.map_or_else(String::new, |p| {
        format!(" <progress max=\"1\" value=\"{p:.3}\"></progress>")
    });
    format!(
        "<tr data-file=\"{file}\" class=\"{state}\"><td>{file}</td><td>{asset}</td>\
         <td class=\"state\">{state}</td><td class=\"message\">{message}{progress}</td></tr>",
        state = source.state,
        message = escape(&source.message),
    )
}

/// `/`: the assets with links, and the dropped files with their jobs.
pub async fn index(State(state): State<AppState>, method: Method, headers: HeaderMap) -> Response {
    let assets = state.library().assets().await;
    let sources = state
        .ingest()
        .map(|ingest| ingest.status().sources)
        .unwrap_or_default();
    let rows = if assets.is_empty() {
        let hint = if state.ingest().is_some_and(|i| i.status().building) {
            "drop a video file (<code>.mp4</code>, <code>.mov</code>, <code>.m4v</code>) \
             into the library folder, or run <code>media sample --out DIR</code> and start \
             the origin with <code>--library DIR</code>"
        } else {
            "run <code>media sample --out DIR</code> and start the origin with \
             <code>--library DIR</code>"
        };
        format!("<tr><td colspan=\"4\">The library is empty: {hint}.</td></tr>")
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
    let source_rows: String = sources.iter().map(source_row).collect();
    let html = INDEX_HTML
        .replace("{{ROWS}}", &rows)
        .replace(
            "{{SOURCES_HIDDEN}}",
            if sources.is_empty() { " hidden" } else { "" },
        )
        .replace("{{SOURCES}}", &source_rows)
        .replace(
            "{{LIBRARY}}",
            &escape(&state.library().root().display().to_string()),
        );
    page(&state, html, &method, &headers)
}

/// `/library/status`: the dropped files and their jobs, and the player libraries, as JSON
/// for machines (never stored: it changes every moment).
pub async fn library_status(State(state): State<AppState>) -> Response {
    let body = serde_json::json!({
        "library": state.library().root(),
        "ingest": state.ingest().map(|ingest| ingest.status()),
        "web_libs": state.web_libs().status(),
        "keep_replaced_s": state.versions().keep().as_secs(),
    });
    let mut response = axum::Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `/watch/{asset}`: the player page. All URLs in it are relative so it works through an edge.
pub async fn watch(
    State(state): State<AppState>,
    Path(asset): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, OriginError> {
    let source = state
        .ingest()
        .and_then(|ingest| ingest.asset_status(&asset));
    let Some(info) = state.library().asset(&asset).await else {
        // An asset a dropped file makes, not built yet: its progress, or why it cannot be.
        return match source {
            Some(source) => Ok(preparing_page(&state, &asset, &source, &method, &headers)),
            None => Err(OriginError::not_found("not found: no such asset")),
        };
    };
    let root = "../";
    let hls = info.hls_path().map(|p| format!("..{p}"));
    let dash = info.dash_path().map(|p| format!("..{p}"));
    Ok(watch_page(
        &state, &info.name, root, hls, dash, source, &method, &headers,
    )
    .await)
}

/// The page of an asset being prepared from a dropped file: its progress, updated from
/// `/library/status`, reloading into the player once it can be played; or the reason it
/// cannot be (a 404).
fn preparing_page(
    state: &AppState,
    asset: &str,
    source: &SourceStatus,
    method: &Method,
    headers: &HeaderMap,
) -> Response {
    let config = serde_json::json!({ "asset": asset, "source": source });
    let html = PREPARING_HTML
        .replace("{{TITLE}}", &escape(asset))
        .replace("{{FILE}}", &escape(&source.file))
        .replace("{{MESSAGE}}", &escape(&source.message))
        .replace("{{CONFIG}}", &config.to_string().replace('<', "\\u003c"));
    let mut response = page(state, html, method, headers);
    if source.state == "failed" && response.status() == StatusCode::OK {
        *response.status_mut() = StatusCode::NOT_FOUND;
    }
    response
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
        None,
        &method,
        &headers,
    )
    .await)
}

/// The player page for a title and its manifests. Every URL is relative (`root` leads from
/// the page back to the site root), so the page works through an edge. `source` is the
/// dropped file the asset is built from, when it is (a rebuild in progress or a changed
/// file that failed is noted on the page).
#[allow(clippy::too_many_arguments)]
async fn watch_page(
    state: &AppState,
    title: &str,
    root: &str,
    hls: Option<String>,
    dash: Option<String>,
    source: Option<SourceStatus>,
    method: &Method,
    headers: &HeaderMap,
) -> Response {
    let mut libs = serde_json::Map::new();
    for (name, _) in LIBS {
        let installed = state.web_libs().find(name).await.is_some();
        libs.insert((*name).to_owned(), serde_json::Value::Bool(installed));
    }
    let config = serde_json::json!({
        "asset": title,
        "root": root,
        "hls": hls,
        "dash": dash,
        "libs": libs,
        "libsAdvice": state.web_libs().status().advice(),
        "source": source.filter(|s| s.state != "ready"),
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
