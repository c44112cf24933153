//! Library files as responses: the store look-up and its errors, shared by the routes.

use std::path::Path;

use axum::response::Response;
use http::{HeaderMap, HeaderValue, Method};

use crate::entity::{CachePolicy, Entity, respond};
use crate::error::OriginError;
use crate::state::AppState;
use crate::store::StoreError;

/// The answer to a failed store look-up: 404 for a missing file, 500 (logged) otherwise.
pub fn file_error(path: &Path, error: StoreError) -> OriginError {
    match error {
        StoreError::NotFound => OriginError::not_found("not found"),
        StoreError::Io(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read file");
            OriginError::Internal("cannot read file")
        }
    }
}

/// A library file as the request asks for it (see [`respond`]).
pub async fn serve_file(
    state: &AppState,
    path: &Path,
    content_type: HeaderValue,
    cache: CachePolicy,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, OriginError> {
    let file = state
        .store()
        .get(path)
        .await
        .map_err(|e| file_error(path, e))?;
    let entity = Entity {
        content: file.content,
        len: file.len,
        etag: file.etag,
        last_modified: file.last_modified,
        content_type,
        cache,
    };
    Ok(respond(method, headers, &entity))
}
