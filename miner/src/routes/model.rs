//! `GET /v1/model/manifest` and `GET /v1/model/files/{name}` (btauth): the miner's model artifact.
//!
//! Files are streamed from disk, never buffered whole. Only names listed in the manifest are
//! served, so no path is ever built from the request. `Range` follows RFC 9110 §14 for one range:
//! `bytes=a-b`, `bytes=a-` and `bytes=-n` answer 206 with `Content-Range`; a range starting past
//! the end (or `bytes=-0`) answers 416 with `Content-Range: bytes */size`. A header we do not
//! handle (another unit, several ranges, bad syntax, `b < a`) is ignored and the whole file is
//! sent with 200, as the RFC allows. Every file answer carries `Content-Length`,
//! `Accept-Ranges: bytes` and `ETag: "<sha256>"`.

use std::io::SeekFrom;

use axum::{
    Json,
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use subnet_common::protocol::{ErrorBody, Manifest};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use crate::{
    artifact::{Artifact, OpenFile},
    error::ApiError,
    metrics,
    state::AppState,
};

/// Chunk size of streamed file bodies.
const STREAM_CHUNK_BYTES: usize = 64 * 1024;

/// What a `Range` header asks of a file of a given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// The whole file (no header, or one we ignore).
    Full,
    /// Bytes `start..=end`, both within the file.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end: u64,
    },
    /// A range entirely past the end: 416.
    Unsatisfiable,
}

/// Reads a `Range` header value for a file of `size` bytes (see the module docs for the rules).
pub fn parse_range(header: Option<&str>, size: u64) -> ByteRange {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return ByteRange::Full;
    };
    if spec.contains(',') {
        return ByteRange::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return ByteRange::Full;
    };
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    match (first.trim().is_empty(), last.trim().is_empty()) {
        // `bytes=-n`: the last n bytes.
        (true, false) => match number(last) {
            Some(0) => ByteRange::Unsatisfiable,
            Some(_) if size == 0 => ByteRange::Unsatisfiable,
            Some(n) => ByteRange::Partial {
                start: size - n.min(size),
                end: size - 1,
            },
            None => ByteRange::Full,
        },
        // `bytes=a-`: from a to the end.
        (false, true) => match number(first) {
            Some(a) if a >= size => ByteRange::Unsatisfiable,
            Some(a) => ByteRange::Partial {
                start: a,
                end: size - 1,
            },
            None => ByteRange::Full,
        },
        // `bytes=a-b`.
        (false, false) => match (number(first), number(last)) {
            (Some(a), Some(b)) if b < a => ByteRange::Full,
            (Some(a), Some(_)) if a >= size => ByteRange::Unsatisfiable,
            (Some(a), Some(b)) => ByteRange::Partial {
                start: a,
                end: b.min(size - 1),
            },
            _ => ByteRange::Full,
        },
        (true, true) => ByteRange::Full,
    }
}

/// The artifact, or 404 when the miner was started without `--model.dir`.
fn artifact(state: &AppState) -> Result<&Artifact, ApiError> {
    state
        .model
        .as_deref()
        .ok_or_else(|| ApiError::NotFound("this miner serves no model".into()))
}

/// `GET /v1/model/manifest`: the manifest built at start.
pub async fn manifest(State(state): State<AppState>) -> Result<Json<Manifest>, ApiError> {
    Ok(Json(artifact(&state)?.manifest().clone()))
}

/// `GET /v1/model/files/{name}`: one file of the manifest, whole or one byte range.
pub async fn file(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let artifact = artifact(&state)?;
    let OpenFile { mut file, entry } = artifact
        .open(&name)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .ok_or_else(|| ApiError::NotFound("no such file in the model manifest".into()))?;
    let size = entry.size;
    let range = parse_range(
        headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
        size,
    );
    let (status, start, len) = match range {
        ByteRange::Full => (StatusCode::OK, 0, size),
        ByteRange::Partial { start, end } => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        ByteRange::Unsatisfiable => return Ok(unsatisfiable(size)),
    };
    if start > 0 {
        file.seek(SeekFrom::Start(start))
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
    }
    let stream = ReaderStream::with_capacity(
        metrics::CountServed::new(file.take(len)),
        STREAM_CHUNK_BYTES,
    );
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, len)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, format!("\"{}\"", entry.sha256));
    if status == StatusCode::PARTIAL_CONTENT {
        response = response.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{size}", start + len - 1),
        );
    }
    response
        .body(Body::from_stream(stream))
        .map_err(|e| ApiError::Internal(e.into()))
}

/// 416 with the file's size, in our JSON error shape.
fn unsatisfiable(size: u64) -> Response {
    let body = ErrorBody {
        error: "range_not_satisfiable".into(),
        message: format!("the file has {size} bytes"),
    };
    let mut response = (StatusCode::RANGE_NOT_SATISFIABLE, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
        response.headers_mut().insert(header::CONTENT_RANGE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partial(start: u64, end: u64) -> ByteRange {
        ByteRange::Partial { start, end }
    }

    #[test]
    fn no_or_foreign_range_headers_mean_the_whole_file() {
        for h in [
            None,
            Some("items=0-1"),
            Some("bytes=0-1,4-5"),
            Some("bytes=5-2"),
            Some("bytes=x-"),
            Some("bytes=-"),
            Some("bytes=1"),
            Some("bytes=+1-2"),
        ] {
            assert_eq!(parse_range(h, 10), ByteRange::Full, "{h:?}");
        }
    }

    #[test]
    fn closed_ranges_are_clamped_to_the_end() {
        assert_eq!(parse_range(Some("bytes=0-0"), 10), partial(0, 0));
        assert_eq!(parse_range(Some("bytes=2-5"), 10), partial(2, 5));
        assert_eq!(parse_range(Some("bytes=2-500"), 10), partial(2, 9));
        assert_eq!(
            parse_range(Some("bytes=10-12"), 10),
            ByteRange::Unsatisfiable
        );
    }

    #[test]
    fn open_ranges_run_to_the_end() {
        assert_eq!(parse_range(Some("bytes=3-"), 10), partial(3, 9));
        assert_eq!(parse_range(Some("bytes=9-"), 10), partial(9, 9));
        assert_eq!(parse_range(Some("bytes=10-"), 10), ByteRange::Unsatisfiable);
    }

    #[test]
    fn suffix_ranges_take_the_last_bytes() {
        assert_eq!(parse_range(Some("bytes=-3"), 10), partial(7, 9));
        assert_eq!(parse_range(Some("bytes=-30"), 10), partial(0, 9));
        assert_eq!(parse_range(Some("bytes=-0"), 10), ByteRange::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-1"), 0), ByteRange::Unsatisfiable);
    }

    #[test]
    fn huge_numbers_do_not_overflow() {
        let big = format!("bytes=0-{}", u128::MAX);
        assert_eq!(parse_range(Some(&big), 10), ByteRange::Full);
        let max = format!("bytes=-{}", u64::MAX);
        assert_eq!(parse_range(Some(&max), 10), partial(0, 9));
    }
}
