//! Errors of the dashboard: JSON `{"error", "message"}` for the API, a plain HTML page for
//! browsers. 5xx are logged once with their cause and answered generically.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use subnet_common::protocol::ErrorBody;

use crate::db::DbError;

/// An error of a JSON handler; becomes `{"error": code, "message": text}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 404: nothing stored under that name.
    #[error("{0}")]
    NotFound(String),
    /// 500: the database failed; the cause is logged, never sent.
    #[error("internal error")]
    Db(#[from] DbError),
    /// 500: a page or chart could not be rendered.
    #[error("internal error")]
    Render(String),
}

impl ApiError {
    /// The HTTP status and stable code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Db(_) | Self::Render(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// Logs a server-side cause once.
    pub fn log(&self) {
        match self {
            Self::Db(cause) => tracing::error!(error = %cause, "dashboard query failed"),
            Self::Render(cause) => tracing::error!(error = %cause, "dashboard rendering failed"),
            Self::NotFound(_) => {}
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        let (status, code) = self.status_and_code();
        let body = ErrorBody {
            error: code.to_string(),
            message: self.to_string(),
        };
        (status, Json(body)).into_response()
    }
}
