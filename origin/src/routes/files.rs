//! Library files as responses: the store look-up and its errors, shared by the routes.

use std::path::Path;

use axum::response::Response;
use http::{HeaderMap, HeaderValue, Method};

use crate::entity::{CachePolicy, Entity, respond};
use crate::error::OriginError;
use crate::paths::{MediaKind, media_kind};
use crate::state::AppState;
use crate::store::{StoreError, StoredFile};

/// The answer to a failed store look-up: 404 for a missing file, 403 (logged) for one a
/// symbolic link places outside the library, 500 (logged) otherwise.
pub fn file_error(path: &Path, error: StoreError) -> OriginError {
    match error {
        StoreError::NotFound => OriginError::not_found("not found"),
        StoreError::Outside { .. } => {
            let real = std::fs::canonicalize(path).ok();
            tracing::warn!(
                path = %path.display(),
                real = ?real,
                "refused: a symbolic link leads outside the library"
            );
            OriginError::OutsideLibrary
        }
        StoreError::Io(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read file");
            OriginError::Internal("cannot read file")
        }
    }
}

/// The kind of the file a request names by its last path component; a 404 for a type the
/// origin does not serve.
pub fn file_kind(components: &[&str]) -> Result<MediaKind, OriginError> {
    components
        .last()
        .and_then(|name| media_kind(name))
        .ok_or_else(|| OriginError::not_found("not found: unknown file type"))
}

/// A file of the library (at `path`, built by [`crate::library::Library::resolve`]) from
/// the store, refused when a symbolic link takes it outside the library.
pub async fn library_file(state: &AppState, path: &Path) -> Result<StoredFile, OriginError> {
    let root = state
        .library()
        .real_root()
        .await
        .map_err(|e| file_error(path, e))?;
    state
        .store()
        .get_within(&root, path)
        .await
        .map_err(|e| file_error(path, e))
}

/// A library file as the request asks for it (see [`respond`]).
pub async fn serve_library_file(
    state: &AppState,
    path: &Path,
    content_type: HeaderValue,
    cache: CachePolicy,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, OriginError> {
    let file = library_file(state, path).await?;
    Ok(respond_file(file, content_type, cache, method, headers))
}

/// A file outside the library (the player libraries) as the request asks for it.
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
    Ok(respond_file(file, content_type, cache, method, headers))
}

pub fn respond_file(
    file: StoredFile,
    content_type: HeaderValue,
    cache: CachePolicy,
    method: &Method,
    headers: &HeaderMap,
) -> Response {
    let entity = Entity {
        content: file.content,
        len: file.len,
        etag: file.etag,
        last_modified: file.last_modified,
        content_type,
        cache,
    };
    respond(method, headers, &entity)
}
