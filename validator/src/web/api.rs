//! JSON handlers under `/api/`: the same data as the HTML pages ([`super::views`]).

use axum::Json;
use axum::extract::{Path, State};

use super::error::ApiError;
use super::views::{self, Epochs, Header, Leaderboard, MinerHistory, Weights};
use super::{ChainStatus, DashboardState};

/// `GET /api/leaderboard`.
pub async fn leaderboard(
    State(state): State<DashboardState>,
) -> Result<Json<Leaderboard>, ApiError> {
    Ok(Json(views::leaderboard(&state).await?))
}

/// `GET /api/miners/{hotkey}`.
pub async fn miner(
    State(state): State<DashboardState>,
    Path(hotkey): Path<String>,
) -> Result<Json<MinerHistory>, ApiError> {
    Ok(Json(views::miner(&state, &hotkey).await?))
}

/// `GET /api/weights`.
pub async fn weights(State(state): State<DashboardState>) -> Result<Json<Weights>, ApiError> {
    Ok(Json(views::weights(&state).await?))
}

/// `GET /api/epochs`.
pub async fn epochs(State(state): State<DashboardState>) -> Result<Json<Epochs>, ApiError> {
    Ok(Json(views::epochs(&state).await?))
}

/// `GET /api/chain`.
pub async fn chain(State(state): State<DashboardState>) -> Json<ChainStatus> {
    Json(views::chain(&state))
}

/// `GET /api/status`: the header of every page.
pub async fn status(State(state): State<DashboardState>) -> Result<Json<Header>, ApiError> {
    Ok(Json(views::header(&state).await?))
}
