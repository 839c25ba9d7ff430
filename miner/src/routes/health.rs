//! `GET /health`: public liveness, with the hotkey callers must sign for.

use axum::{Json, extract::State};
use subnet_common::protocol::{Health, PROTOCOL_VERSION};

use crate::state::AppState;

/// Always 200 while the process serves.
pub async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        hotkey: state.keypair.account_id(),
        protocol: PROTOCOL_VERSION.into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}
