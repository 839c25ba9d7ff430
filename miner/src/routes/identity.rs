//! `GET /v1/identity` (btauth): the miner's hotkey and the verified caller.

use axum::{Json, extract::State};
use subnet_common::{
    btauth::VerifiedCaller,
    protocol::{Identity, PROTOCOL_VERSION},
};

use crate::state::AppState;

/// Echoes who signed the request, proving the signature checked out.
pub async fn identity(
    State(state): State<AppState>,
    VerifiedCaller(caller): VerifiedCaller,
) -> Json<Identity> {
    Json(Identity {
        hotkey: state.keypair.account_id(),
        caller,
        version: env!("CARGO_PKG_VERSION").into(),
        protocol: PROTOCOL_VERSION.into(),
    })
}
