//! HTTP handlers, one module per resource.

pub mod generate;
pub mod health;
pub mod identity;
pub mod label;
pub mod model;
pub mod rlhf;

use axum::{extract::MatchedPath, http::Request};

use crate::error::ApiError;

/// Answer for unknown paths.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {}", uri.path()))
}

/// Request span named by the matched route (not the raw path, which may carry ids).
pub fn make_span<B>(request: &Request<B>) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("<unmatched>", MatchedPath::as_str);
    tracing::info_span!("http", method = %request.method(), route)
}
