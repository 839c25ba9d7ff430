//! [`AppState`]: what every request handler may use. Built by [`crate::startup`], read by
//! [`crate::routes`]; kept apart from both so the handlers depend on the state, not on start-up.

use std::sync::Arc;

use subnet_common::keys::Keypair;

use crate::{artifact::Artifact, inference::Inference, labeling::Labeling};

/// Everything a request handler may need. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The miner's hotkey (never logged; only its public half is served).
    pub keypair: Arc<Keypair>,
    /// The model artifact served under `/v1/model/`; `None` when started without `--model.dir`.
    pub model: Option<Arc<Artifact>>,
    /// The loaded model for `/v1/generate`; `None` when no model is served or it was not loaded.
    pub inference: Option<Arc<Inference>>,
    /// The RLHF label track (Postgres pool, block clock); `None` without `--db.url`, then
    /// `/v1/rlhf/*` and `/label` answer 404.
    pub labeling: Option<Arc<Labeling>>,
}
