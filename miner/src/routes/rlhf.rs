//! `POST /v1/rlhf/tasks` and `POST /v1/rlhf/labels` (btauth, validator permit): validators send
//! task batches for the miner's labelers and collect the labels. A validator sees only its own
//! batches; another validator's `batch_id` is 404.

use std::collections::HashSet;

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use subnet_common::{
    btauth::VerifiedCaller,
    protocol::{ErrorBody, LabelsRequest, LabelsResponse, RlhfTaskBatch},
};

use crate::{
    db,
    error::ApiError,
    labeling::{BatchLimits, NO_LABELS},
    metrics,
    state::AppState,
};

/// Errors of the RLHF routes: [`ApiError`] plus 413 for batches over the limits.
#[derive(Debug, thiserror::Error)]
pub enum RlhfError {
    /// 413: too many tasks or too much text.
    #[error("{0}")]
    TooLarge(String),
    /// Any other API error.
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<db::DbError> for RlhfError {
    fn from(e: db::DbError) -> Self {
        Self::Api(ApiError::Internal(e.into()))
    }
}

impl IntoResponse for RlhfError {
    fn into_response(self) -> Response {
        match self {
            Self::TooLarge(message) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                Json(ErrorBody {
                    error: "payload_too_large".into(),
                    message,
                }),
            )
                .into_response(),
            Self::Api(e) => e.into_response(),
        }
    }
}

/// Checks a batch against the limits: 413 for size, 400 for shape.
pub fn validate(batch: &RlhfTaskBatch, limits: &BatchLimits) -> Result<(), RlhfError> {
    let bad = |m: String| RlhfError::Api(ApiError::BadRequest(m));
    let id_ok = |id: &str| !id.trim().is_empty() && id.len() <= limits.max_id_bytes;
    if !id_ok(&batch.batch_id) {
        return Err(bad(format!(
            "batch_id must be 1 to {} bytes and not blank",
            limits.max_id_bytes
        )));
    }
    if batch.tasks.is_empty() {
        return Err(bad("a batch needs at least one task".into()));
    }
    if batch.tasks.len() > limits.max_tasks {
        return Err(RlhfError::TooLarge(format!(
            "{} tasks in one batch; at most {} are accepted",
            batch.tasks.len(),
            limits.max_tasks
        )));
    }
    // Postgres text cannot hold a NUL byte: refuse it here instead of failing the insert (500).
    if batch.batch_id.contains('\0') {
        return Err(bad("batch_id contains a NUL byte".into()));
    }
    let mut seen = HashSet::new();
    for task in &batch.tasks {
        if let Some((field, _)) = [
            ("task_id", &task.task_id),
            ("prompt", &task.prompt),
            ("a", &task.a),
            ("b", &task.b),
        ]
        .into_iter()
        .find(|(_, text)| text.contains('\0'))
        {
            return Err(bad(format!(
                "task {:?}: {field} contains a NUL byte",
                task.task_id
            )));
        }
        if !id_ok(&task.task_id) {
            return Err(bad(format!(
                "task_id must be 1 to {} bytes and not blank",
                limits.max_id_bytes
            )));
        }
        if !seen.insert(task.task_id.as_str()) {
            return Err(bad(format!("task_id {:?} appears twice", task.task_id)));
        }
        if task.prompt.trim().is_empty() {
            return Err(bad(format!("task {:?} has an empty prompt", task.task_id)));
        }
        for (field, text) in [("prompt", &task.prompt), ("a", &task.a), ("b", &task.b)] {
            if text.len() > limits.max_text_bytes {
                return Err(RlhfError::TooLarge(format!(
                    "task {:?}: {field} is {} bytes; at most {} are accepted",
                    task.task_id,
                    text.len(),
                    limits.max_text_bytes
                )));
            }
        }
    }
    Ok(())
}

/// `POST /v1/rlhf/tasks`: stores the batch for the labelers; 202. Re-sending a `batch_id`
/// changes nothing and answers 202 again.
pub async fn tasks(
    State(state): State<AppState>,
    VerifiedCaller(caller): VerifiedCaller,
    Json(batch): Json<RlhfTaskBatch>,
) -> Result<StatusCode, RlhfError> {
    let labeling = state
        .labeling
        .as_deref()
        .ok_or_else(|| ApiError::NotFound(NO_LABELS.into()))?;
    validate(&batch, &labeling.config.limits)?;
    let validator = caller.to_string();
    let stored = db::store_batch(&labeling.pool, &validator, &batch).await?;
    metrics::record_rlhf_batch(stored == db::BatchStored::New, batch.tasks.len());
    tracing::info!(
        %validator,
        batch_id = %batch.batch_id,
        tasks = batch.tasks.len(),
        deadline_block = batch.deadline_block,
        new = stored == db::BatchStored::New,
        "RLHF batch received"
    );
    Ok(StatusCode::ACCEPTED)
}

/// `POST /v1/rlhf/labels`: the labels collected so far for the caller's own batch.
pub async fn labels(
    State(state): State<AppState>,
    VerifiedCaller(caller): VerifiedCaller,
    Json(request): Json<LabelsRequest>,
) -> Result<Json<LabelsResponse>, RlhfError> {
    let labeling = state
        .labeling
        .as_deref()
        .ok_or_else(|| ApiError::NotFound(NO_LABELS.into()))?;
    let labels = db::batch_labels(
        &labeling.pool,
        &caller.to_string(),
        &request.batch_id,
        labeling.config.reading_speed,
    )
    .await?
    .ok_or_else(|| {
        ApiError::NotFound(format!(
            "no batch {:?} from this validator",
            request.batch_id
        ))
    })?;
    metrics::record_rlhf_labels(labels.len());
    Ok(Json(LabelsResponse { labels }))
}

#[cfg(test)]
mod tests {
    use subnet_common::protocol::RlhfTask;

    use super::*;

    fn batch(n: usize) -> RlhfTaskBatch {
        RlhfTaskBatch {
            batch_id: "b1".into(),
            deadline_block: 100,
            tasks: (0..n)
                .map(|i| RlhfTask {
                    task_id: format!("t{i}"),
                    prompt: "2+2=".into(),
                    a: "4".into(),
                    b: "5".into(),
                })
                .collect(),
        }
    }

    fn status(r: Result<(), RlhfError>) -> StatusCode {
        r.map_or_else(|e| e.into_response().status(), |()| StatusCode::OK)
    }

    #[test]
    fn a_batch_within_the_limits_passes() {
        assert_eq!(
            status(validate(&batch(3), &BatchLimits::default())),
            StatusCode::OK
        );
    }

    #[test]
    fn too_many_tasks_or_too_much_text_is_413() {
        let limits = BatchLimits {
            max_tasks: 2,
            max_text_bytes: 8,
            max_id_bytes: 16,
        };
        assert_eq!(
            status(validate(&batch(3), &limits)),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        let mut long = batch(1);
        long.tasks[0].b = "x".repeat(9);
        assert_eq!(
            status(validate(&long, &limits)),
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }

    #[test]
    fn malformed_batches_are_400() {
        let limits = BatchLimits::default();
        assert_eq!(
            status(validate(&batch(0), &limits)),
            StatusCode::BAD_REQUEST
        );
        let mut twice = batch(2);
        twice.tasks[1].task_id = "t0".into();
        assert_eq!(status(validate(&twice, &limits)), StatusCode::BAD_REQUEST);
        let mut blank = batch(1);
        blank.batch_id = " ".into();
        assert_eq!(status(validate(&blank, &limits)), StatusCode::BAD_REQUEST);
        for field in 0..4 {
            let mut nul = batch(1);
            let task = &mut nul.tasks[0];
            [
                &mut task.task_id,
                &mut task.prompt,
                &mut task.a,
                &mut task.b,
            ][field]
                .push('\0');
            let refused = validate(&nul, &limits).expect_err("a NUL byte is refused");
            assert_eq!(status(Err(refused)), StatusCode::BAD_REQUEST);
        }
        let mut nul_id = batch(1);
        nul_id.batch_id.push('\0');
        assert_eq!(status(validate(&nul_id, &limits)), StatusCode::BAD_REQUEST);
        let mut empty_prompt = batch(1);
        empty_prompt.tasks[0].prompt = String::new();
        assert_eq!(
            status(validate(&empty_prompt, &limits)),
            StatusCode::BAD_REQUEST
        );
    }
}
