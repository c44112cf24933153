//! One representation (bytes in memory or a file on disk, plus its validators and cache
//! policy) turned into the exact HTTP response a request asks for. Files and generated
//! bytes (live manifests) go through the same function, so every route gets the same
//! RFC 9110 semantics.

use std::io::SeekFrom;
use std::path::PathBuf;
use std::time::SystemTime;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_rules::date::{http_date_value, whole_seconds};
use http_rules::etag::EntityTag;
use http_rules::not_modified::not_modified_headers;
use http_rules::precondition::{Conditions, Evaluation, Validators, evaluate};
use http_rules::range::content_range;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use crate::error::OriginError;

/// Where a representation's bytes are.
#[derive(Debug, Clone)]
pub enum Content {
    /// In memory (small files, generated documents): a range is a cheap slice.
    Bytes(Bytes),
    /// On disk, streamed in chunks so a large file never sits whole in memory per request.
    File(PathBuf),
}

/// How long caches may keep a response (RFC 9111 §5.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CachePolicy {
    /// Init and media segments: never change under one URL (RFC 8246 `immutable`).
    Immutable,
    /// VOD manifests: stable, but revalidated on reload rather than trusted forever.
    Manifest,
    /// Player libraries served from the configured folder: they change only on reinstall.
    Static,
    /// Pages: may be stored, but always revalidated (cheap with the ETag).
    Revalidate,
    /// Live manifests: they change every segment, so caches keep them about half a segment
    /// and then revalidate (the ETag changes only when the window moves).
    Live { max_age: u32 },
}

impl CachePolicy {
    fn header(self) -> HeaderValue {
        let fixed = match self {
            Self::Immutable => "public, max-age=31536000, immutable",
            Self::Manifest => "public, max-age=3600",
            Self::Static => "public, max-age=300",
            Self::Revalidate => "no-cache",
            // Digits are always a valid field value; the fallback is never taken.
            Self::Live { max_age } => {
                return HeaderValue::from_str(&format!("public, max-age={max_age}"))
                    .unwrap_or(HeaderValue::from_static("public, max-age=1"));
            }
        };
        HeaderValue::from_static(fixed)
    }
}

/// A representation ready to be served.
#[derive(Debug, Clone)]
pub struct Entity {
    pub content: Content,
    pub len: u64,
    pub etag: EntityTag,
    pub last_modified: SystemTime,
    pub content_type: HeaderValue,
    pub cache: CachePolicy,
}

impl Entity {
    /// A generated representation (a page, a live manifest): its strong ETag is the hash
    /// of its bytes, so equal documents validate equal whenever they were made.
    pub fn generated(
        bytes: Bytes,
        content_type: HeaderValue,
        cache: CachePolicy,
        last_modified: SystemTime,
    ) -> Self {
        Self {
            len: bytes.len() as u64,
            etag: tag_of(&bytes),
            content: Content::Bytes(bytes),
            last_modified,
            content_type,
            cache,
        }
    }
}

/// The strong entity tag of a representation's bytes: equal bytes, equal tag, whenever and
/// wherever they were made (so origins behind one edge agree).
pub fn tag_of(bytes: &[u8]) -> EntityTag {
    EntityTag::from_digest(&Sha256::digest(bytes))
}

/// Answers a GET or HEAD for `entity` following the request's conditional and range fields
/// (RFC 9110 §13.2.2, evaluated by `http_rules::precondition`).
pub fn respond(method: &Method, headers: &HeaderMap, entity: &Entity) -> Response {
    let validators = Validators {
        etag: Some(&entity.etag),
        last_modified: Some(entity.last_modified),
        len: Some(entity.len),
        // The origin vouches for its modification times (a strong Last-Modified).
        date: None,
        at_cache: false,
    };
    let evaluation = evaluate(method, &Conditions::from_headers(headers), validators);
    let (status, start, len) = match &evaluation {
        Evaluation::PreconditionFailed => return OriginError::PreconditionFailed.into_response(),
        Evaluation::RangeNotSatisfiable => {
            return OriginError::RangeNotSatisfiable {
                complete_length: entity.len,
            }
            .into_response();
        }
        Evaluation::Partial(range) => (
            StatusCode::PARTIAL_CONTENT,
            *range.start(),
            range.end() - range.start() + 1,
        ),
        Evaluation::Full | Evaluation::NotModified => (StatusCode::OK, 0, entity.len),
    };
    let mut full = HeaderMap::new();
    full.insert(header::CONTENT_TYPE, entity.content_type.clone());
    full.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    full.insert(header::ETAG, entity.etag.to_header());
    full.insert(
        header::LAST_MODIFIED,
        http_date_value(whole_seconds(entity.last_modified)),
    );
    full.insert(header::CACHE_CONTROL, entity.cache.header());
    full.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if evaluation == Evaluation::NotModified {
        // §15.4.5: the fields a 200 would carry for cache updates, and no body.
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        *response.headers_mut() = not_modified_headers(&full);
        return response;
    }
    if let Evaluation::Partial(range) = &evaluation {
        full.insert(header::CONTENT_RANGE, content_range(range, entity.len));
    }
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        body(&entity.content, start, len)
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = full;
    response
}

/// The body for `len` bytes from `start`.
fn body(content: &Content, start: u64, len: u64) -> Body {
    match content {
        Content::Bytes(bytes) => {
            let (start, end) = (to_usize(start), to_usize(start + len));
            Body::from(bytes.slice(start.min(bytes.len())..end.min(bytes.len())))
        }
        Content::File(path) => {
            let path = path.clone();
            // Open lazily inside the body stream: this function stays synchronous, and a file
            // that vanished since it was looked up ends the response early instead of
            // panicking.
            let open = async move {
                let mut file = tokio::fs::File::open(&path).await?;
                if start > 0 {
                    file.seek(SeekFrom::Start(start)).await?;
                }
                Ok::<_, std::io::Error>(ReaderStream::with_capacity(file.take(len), 64 * 1024))
            };
            Body::from_stream(futures::stream::once(open).try_flatten().boxed())
        }
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}
