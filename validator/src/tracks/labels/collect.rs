//! Talking to label miners: `POST /v1/rlhf/tasks` with a batch, `POST /v1/rlhf/labels` for its
//! labels (`docs/protocol.md`). Every request is btauth/1-signed, has a timeout, and every answer
//! body is read up to a limit. A miner that misbehaves is an [`LabelOutcome`], never an error.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use subnet_common::btauth::SignedClient;
use subnet_common::keys::AccountId;
use subnet_common::protocol::{Choice, Label, LabelsRequest, LabelsResponse, RlhfTaskBatch};

/// Route a batch is posted to.
pub const TASKS_PATH: &str = "v1/rlhf/tasks";

/// Route labels are collected from.
pub const LABELS_PATH: &str = "v1/rlhf/labels";

/// How a label miner's batch went this epoch; every code but `ok` scores 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelOutcome {
    /// Labels collected and scored.
    Ok,
    /// No axon published on chain.
    NotServing,
    /// Connection refused, reset, DNS, TLS: the miner could not be reached.
    Unreachable,
    /// The miner answered with an HTTP error status (e.g. 404: it does not label).
    BadStatus,
    /// The miner answered with a redirect, which is never followed (it would carry our signed
    /// headers and the batch to an address the miner did not publish).
    Redirect,
    /// No answer within the timeout.
    Timeout,
    /// The answer is not the protocol's JSON.
    Malformed,
    /// The answer is larger than the limit.
    TooLarge,
    /// The answer holds no label for any task of the batch.
    NoLabels,
    /// The validator had no task for it this epoch (its models answered no prompt, e.g. before
    /// any model was scored): nothing was sent.
    NoTasks,
}

impl LabelOutcome {
    /// Outcomes that say the miner does not label at all (no axon, unreachable, an HTTP error
    /// such as a model-only miner's 404, a redirect): a miner whose recent batches all ended so
    /// is only probed ([`super::PROBE_AFTER`]). A timeout, a malformed answer or an answer
    /// without labels come from a miner that serves the label routes, and do not count.
    pub const LABELS_NOTHING: [LabelOutcome; 4] = [
        LabelOutcome::NotServing,
        LabelOutcome::Unreachable,
        LabelOutcome::BadStatus,
        LabelOutcome::Redirect,
    ];

    /// The stable code, as stored.
    pub fn code(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::NotServing => "not_serving",
            Self::Unreachable => "unreachable",
            Self::BadStatus => "bad_status",
            Self::Redirect => "redirect",
            Self::Timeout => "timeout",
            Self::Malformed => "malformed",
            Self::TooLarge => "too_large",
            Self::NoLabels => "no_labels",
            Self::NoTasks => "no_tasks",
        }
    }

    /// The outcome of a stored code.
    pub fn from_code(code: &str) -> Option<Self> {
        [
            Self::Ok,
            Self::NotServing,
            Self::Unreachable,
            Self::BadStatus,
            Self::Redirect,
            Self::Timeout,
            Self::Malformed,
            Self::TooLarge,
            Self::NoLabels,
            Self::NoTasks,
        ]
        .into_iter()
        .find(|o| o.code() == code)
    }
}

impl std::fmt::Display for LabelOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// A failed exchange: what to record and why, in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The recorded outcome.
    pub outcome: LabelOutcome,
    /// Why.
    pub reason: String,
}

impl Failure {
    fn new(outcome: LabelOutcome, reason: impl Into<String>) -> Self {
        Self {
            outcome,
            reason: reason.into(),
        }
    }
}

/// Limits on each exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeLimits {
    /// Time allowed for one whole request, body included.
    pub timeout: Duration,
    /// Largest answer body read.
    pub max_response_bytes: usize,
    /// Most labels kept per task (one per labeler; more are dropped).
    pub max_labels_per_task: usize,
}

impl Default for ExchangeLimits {
    /// 15 s, 1 MiB, 16 labels per task.
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(15),
            max_response_bytes: 1 << 20,
            max_labels_per_task: 16,
        }
    }
}

/// Classifies a reqwest error.
fn transport(error: &reqwest::Error, what: &str) -> Failure {
    if error.is_timeout() {
        Failure::new(LabelOutcome::Timeout, format!("{what}: no answer in time"))
    } else {
        Failure::new(LabelOutcome::Unreachable, format!("{what}: {error}"))
    }
}

/// POSTs `value` to `base_url/path` and reads the answer body within the limits.
async fn exchange<T: Serialize>(
    client: &SignedClient,
    base_url: &reqwest::Url,
    receiver: &AccountId,
    path: &str,
    value: &T,
    limits: &ExchangeLimits,
) -> Result<Vec<u8>, Failure> {
    let url = base_url
        .join(path)
        .map_err(|e| Failure::new(LabelOutcome::Unreachable, format!("bad axon URL: {e}")))?;
    let request = client
        .post_json(url, receiver, value)
        .map_err(|e| Failure::new(LabelOutcome::Malformed, format!("encoding: {e}")))?;
    let work = async {
        let mut response = request.send().await.map_err(|e| transport(&e, path))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(Failure::new(
                LabelOutcome::Redirect,
                format!(
                    "{path} answered a redirect (HTTP {}); redirects are not followed",
                    status.as_u16()
                ),
            ));
        }
        if !status.is_success() {
            return Err(Failure::new(
                LabelOutcome::BadStatus,
                format!("{path} answered {status}"),
            ));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| transport(&e, path))? {
            if body.len() + chunk.len() > limits.max_response_bytes {
                return Err(Failure::new(
                    LabelOutcome::TooLarge,
                    format!(
                        "{path} answered more than {} bytes",
                        limits.max_response_bytes
                    ),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    tokio::time::timeout(limits.timeout, work)
        .await
        .map_err(|_| {
            Failure::new(
                LabelOutcome::Timeout,
                format!("{path}: no complete answer within {:?}", limits.timeout),
            )
        })?
}

/// Sends a batch (`POST /v1/rlhf/tasks`); any 2xx is accepted.
pub async fn send_batch(
    client: &SignedClient,
    base_url: &reqwest::Url,
    receiver: &AccountId,
    batch: &RlhfTaskBatch,
    limits: &ExchangeLimits,
) -> Result<(), Failure> {
    exchange(client, base_url, receiver, TASKS_PATH, batch, limits)
        .await
        .map(drop)
}

/// Collects a batch's labels (`POST /v1/rlhf/labels`), unchecked against the batch.
pub async fn fetch_labels(
    client: &SignedClient,
    base_url: &reqwest::Url,
    receiver: &AccountId,
    batch_id: &str,
    limits: &ExchangeLimits,
) -> Result<Vec<Label>, Failure> {
    let request = LabelsRequest {
        batch_id: batch_id.to_owned(),
    };
    let body = exchange(client, base_url, receiver, LABELS_PATH, &request, limits).await?;
    let response: LabelsResponse = serde_json::from_slice(&body).map_err(|e| {
        Failure::new(
            LabelOutcome::Malformed,
            format!("{LABELS_PATH}: not a labels answer: {e}"),
        )
    })?;
    Ok(response.labels)
}

/// The labels that count: those of tasks in the batch, with a finite, non-negative `seconds`,
/// at most one per (task, labeler) (the first) and `max_per_task` per task. Returns them and how
/// many were dropped.
pub fn accept_labels(
    labels: Vec<Label>,
    task_ids: &BTreeSet<&str>,
    max_per_task: usize,
) -> (Vec<Label>, usize) {
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    let mut per_task: BTreeMap<String, usize> = BTreeMap::new();
    let total = labels.len();
    let kept: Vec<Label> = labels
        .into_iter()
        .filter(|l| task_ids.contains(l.task_id.as_str()))
        .filter(|l| l.seconds.is_finite() && l.seconds >= 0.0)
        .filter(|l| seen.insert((l.task_id.clone(), l.labeler.clone())))
        .filter(|l| {
            let n = per_task.entry(l.task_id.clone()).or_default();
            *n += 1;
            *n <= max_per_task
        })
        .collect();
    let dropped = total - kept.len();
    (kept, dropped)
}

/// The miner's answer on one task from its labelers' labels: the choice with most labels;
/// a tie between A and B (or only ties) is [`Choice::Tie`]. `None` without labels.
pub fn miner_choice<'a>(labels: impl IntoIterator<Item = &'a Label>) -> Option<Choice> {
    let (mut a, mut b, mut any) = (0u32, 0u32, false);
    for label in labels {
        any = true;
        match label.choice {
            Choice::A => a += 1,
            Choice::B => b += 1,
            Choice::Tie => {}
        }
    }
    any.then_some(match a.cmp(&b) {
        std::cmp::Ordering::Greater => Choice::A,
        std::cmp::Ordering::Less => Choice::B,
        std::cmp::Ordering::Equal => Choice::Tie,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(task: &str, labeler: &str, choice: Choice) -> Label {
        Label {
            task_id: task.into(),
            choice,
            labeler: labeler.into(),
            seconds: 1.5,
        }
    }

    #[test]
    fn outcome_codes_round_trip() {
        for outcome in [
            LabelOutcome::Ok,
            LabelOutcome::NotServing,
            LabelOutcome::Unreachable,
            LabelOutcome::BadStatus,
            LabelOutcome::Redirect,
            LabelOutcome::Timeout,
            LabelOutcome::Malformed,
            LabelOutcome::TooLarge,
            LabelOutcome::NoLabels,
            LabelOutcome::NoTasks,
        ] {
            assert_eq!(LabelOutcome::from_code(outcome.code()), Some(outcome));
            let json = serde_json::to_string(&outcome).expect("json");
            assert_eq!(json, format!("\"{}\"", outcome.code()));
        }
        assert_eq!(LabelOutcome::from_code("nope"), None);
    }

    #[test]
    fn only_labels_of_sent_tasks_count_once_per_labeler() {
        let ids = BTreeSet::from(["t1", "t2"]);
        let mut bad_seconds = label("t2", "eve", Choice::A);
        bad_seconds.seconds = f64::NAN;
        let labels = vec![
            label("t1", "ann", Choice::A),
            label("t1", "ann", Choice::B),
            label("t1", "bob", Choice::B),
            label("t9", "ann", Choice::A),
            bad_seconds,
            label("t2", "cy", Choice::B),
            label("t2", "dan", Choice::B),
        ];
        let (kept, dropped) = accept_labels(labels, &ids, 2);
        assert_eq!(dropped, 3);
        let kept: Vec<(&str, &str)> = kept
            .iter()
            .map(|l| (l.task_id.as_str(), l.labeler.as_str()))
            .collect();
        assert_eq!(
            kept,
            [("t1", "ann"), ("t1", "bob"), ("t2", "cy"), ("t2", "dan")]
        );
        let (kept, dropped) = accept_labels(
            vec![
                label("t1", "a", Choice::A),
                label("t1", "b", Choice::A),
                label("t1", "c", Choice::A),
            ],
            &ids,
            2,
        );
        assert_eq!((kept.len(), dropped), (2, 1));
    }

    #[test]
    fn a_miners_choice_is_its_labelers_majority() {
        let l = |c| label("t", "x", c);
        assert_eq!(miner_choice(&[]), None);
        assert_eq!(miner_choice(&[l(Choice::A)]), Some(Choice::A));
        assert_eq!(
            miner_choice(&[l(Choice::A), l(Choice::B), l(Choice::B)]),
            Some(Choice::B)
        );
        assert_eq!(
            miner_choice(&[l(Choice::A), l(Choice::B)]),
            Some(Choice::Tie)
        );
        assert_eq!(
            miner_choice(&[l(Choice::Tie), l(Choice::Tie), l(Choice::A)]),
            Some(Choice::A)
        );
        assert_eq!(miner_choice(&[l(Choice::Tie)]), Some(Choice::Tie));
    }
}
