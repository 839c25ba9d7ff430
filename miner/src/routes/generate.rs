//! `POST /v1/generate` (btauth): continue a prompt with the served model.
//!
//! 400 for requests outside the protocol or the limits (both or neither of `prompt` and
//! `input_ids`, too many tokens, a bad temperature, ids outside the vocabulary), 404 when the
//! miner serves no model, 503 `busy` when another generation holds the model for longer than the
//! queue wait.

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use subnet_common::protocol::{ErrorBody, GenerateRequest, GenerateResponse};

use std::time::Instant;

use crate::{error::ApiError, inference::InferenceError, metrics, state::AppState};

/// Generates up to `max_new_tokens` after the prompt; greedy at temperature 0, else seeded.
pub async fn generate(
    State(state): State<AppState>,
    Json(request): Json<GenerateRequest>,
) -> Result<Json<GenerateResponse>, Response> {
    let inference = state
        .inference
        .clone()
        .ok_or_else(|| ApiError::NotFound("this miner serves no model".into()).into_response())?;
    let started = Instant::now();
    let generated = inference.generate_queued(request).await;
    let elapsed = started.elapsed();
    match generated {
        Ok(response) => {
            metrics::record_generate("ok", response.output_ids.len(), elapsed);
            Ok(Json(response))
        }
        Err(InferenceError::Busy) => {
            metrics::record_generate("busy", 0, elapsed);
            let body = ErrorBody {
                error: "busy".into(),
                message: InferenceError::Busy.to_string(),
            };
            Err((StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response())
        }
        Err(e) if e.is_bad_request() => {
            metrics::record_generate("bad_request", 0, elapsed);
            Err(ApiError::BadRequest(e.to_string()).into_response())
        }
        Err(e) => {
            metrics::record_generate("error", 0, elapsed);
            Err(ApiError::Internal(e.into()).into_response())
        }
    }
}
