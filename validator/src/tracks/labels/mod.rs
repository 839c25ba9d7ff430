//! The label track: each epoch, send every label miner a batch of comparison tasks with
//! known-answer tasks hidden among them, collect the labels before the deadline, and score the
//! miners on the known answers (`docs/scoring.md` "Label track").
//!
//! | module | what | IO |
//! |---|---|---|
//! | [`prompts`] | the prompt pool: the starter set and the operator's JSONL | disk (once) |
//! | [`batch`] | each miner's own answer pairs (and optional shared pools), its batch, from seeds | none |
//! | [`corrupt`] | the worse side of a known pair: a real answer, corrupted | none |
//! | [`score`] | information per task: coverage × bits at the windowed accuracy's lower bound | none |
//! | [`collect`] | `POST /v1/rlhf/tasks` and `/v1/rlhf/labels` with timeouts and size limits | network |
//! | [`answers`] | the production [`batch::AnswerSource`]: the top models, run locally | disk, device |
//!
//! The epoch loop builds one [`LabelTrack`] at start-up and, per epoch, calls
//! [`LabelTrack::run_epoch`] (or [`LabelTrack::send`] at the epoch start and
//! [`LabelTrack::collect`] before the deadline). The [`LabelTrackResult`] holds every input of
//! the score (batches with their hidden truth, labels, components); `db::save_label_track`
//! stores it and [`rescore`] recomputes the scores from it.

pub mod answers;
pub mod batch;
pub mod collect;
pub mod corrupt;
pub mod prompts;
pub mod score;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use subnet_common::btauth::SignedClient;
use subnet_common::chain::types::Metagraph;
use subnet_common::keys::AccountId;
use subnet_common::protocol::{Choice, Label};
use tracing::Instrument;

use batch::{AnswerSource, BatchSettings, MinerBatch};
use collect::{ExchangeLimits, Failure, LabelOutcome};
use prompts::PromptPool;
use score::{Components, KnownHistory, MinerVotes, ScoreParams, TaskVote};

/// How the track runs.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelSettings {
    /// Batch size and known-answer share.
    pub batch: BatchSettings,
    /// The scoring rule.
    pub score: ScoreParams,
    /// Timeouts and size limits of each request.
    pub limits: ExchangeLimits,
    /// Miners talked to at once.
    pub concurrency: usize,
    /// **Simulations only** (`--labels.truth-dir`): where each batch's hidden truth is written
    /// before it is sent ([`subnet_common::protocol::SimulationTruth`]).
    pub truth_dir: Option<std::path::PathBuf>,
}

impl Default for LabelSettings {
    fn default() -> Self {
        Self {
            batch: BatchSettings::default(),
            score: ScoreParams::default(),
            limits: ExchangeLimits::default(),
            concurrency: 16,
            truth_dir: None,
        }
    }
}

/// A uid asked to label this epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelMiner {
    /// Uid.
    pub uid: u16,
    /// Hotkey (the btauth receiver).
    pub hotkey: AccountId,
    /// Its axon, `None` when it publishes none.
    pub base_url: Option<reqwest::Url>,
    /// It answered none of its last [`PROBE_AFTER`] batches it was sent: it is only probed
    /// ([`batch::Recipient::probe`]).
    pub probe: bool,
}

/// A miner whose last this-many stored batches all failed as a non-labeller's do
/// ([`LabelOutcome::LABELS_NOTHING`]) is only probed until it answers one.
pub const PROBE_AFTER: u32 = 2;

/// Every uid of `metagraph` but the validator's own, with its axon: the label miners.
pub fn label_miners(metagraph: &Metagraph, own_hotkey: &AccountId) -> Vec<LabelMiner> {
    let mut miners: Vec<LabelMiner> = metagraph
        .neurons
        .iter()
        .filter(|n| &n.hotkey != own_hotkey)
        .map(|n| LabelMiner {
            uid: n.uid,
            hotkey: n.hotkey,
            base_url: crate::tracks::model::plan::axon_url(&n.axon_info),
            probe: false,
        })
        .collect();
    miners.sort_by_key(|m| m.uid);
    miners
}

/// 32 bytes from the OS for [`LabelEpochInput::secret`] (the only randomness of the track; it
/// is recorded inside the stored track seed).
pub fn fresh_secret() -> [u8; 32] {
    let mut secret = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
    secret
}

/// One epoch's input.
#[derive(Debug, Clone, Copy)]
pub struct LabelEpochInput<'a> {
    /// Subnet.
    pub netuid: u16,
    /// Epoch index.
    pub epoch: u64,
    /// The epoch's eval seed (`eval_seed(block_hash, netuid)`).
    pub seed: [u8; 32],
    /// This validator's secret for the epoch (fresh OS randomness), so miners cannot rebuild
    /// the batches from the public seed; it is stored inside [`LabelTrackResult::track_seed`].
    pub secret: [u8; 32],
    /// Labels after this block are not collected.
    pub deadline_block: u64,
    /// Who labels.
    pub miners: &'a [LabelMiner],
    /// The prompts the pairs are drawn from.
    pub prompts: &'a PromptPool,
}

/// A miner's batch after sending.
#[derive(Debug, Clone)]
struct Sent {
    miner: LabelMiner,
    batch: MinerBatch,
    /// `Err` when the batch was not delivered.
    delivered: Result<(), Failure>,
}

/// Batches sent at the epoch start, waiting for [`LabelTrack::collect`] (in the same epoch, or
/// a later one when the window spans epochs; [`StoredSent`] keeps them across restarts).
#[derive(Debug, Clone)]
pub struct SentEpoch {
    netuid: u16,
    epoch: u64,
    track_seed: [u8; 32],
    deadline_block: u64,
    /// Open pairs in the batches' pools (shared and own).
    open_pairs: usize,
    sent: Vec<Sent>,
}

/// One miner's batch of a [`StoredSent`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredBatch {
    /// Its uid when the batch was sent.
    pub uid: u16,
    /// SS58 hotkey.
    pub hotkey: String,
    /// The axon it was sent to.
    pub base_url: Option<String>,
    /// The batch with its hidden truth.
    pub batch: MinerBatch,
    /// Why it was not delivered (`None`: delivered).
    pub failure: Option<Failure>,
}

/// A [`SentEpoch`] as the `label_pending` table stores it until it is collected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredSent {
    /// Subnet.
    pub netuid: u16,
    /// The epoch the batches were built and sent in.
    pub epoch: u64,
    /// The track seed, hex.
    pub track_seed: String,
    /// The batches' deadline block.
    pub deadline_block: u64,
    /// Open pairs available that epoch.
    pub open_pairs: usize,
    /// One entry per miner sent to.
    pub batches: Vec<StoredBatch>,
}

impl From<&SentEpoch> for StoredSent {
    fn from(sent: &SentEpoch) -> Self {
        Self {
            netuid: sent.netuid,
            epoch: sent.epoch,
            track_seed: hex::encode(sent.track_seed),
            deadline_block: sent.deadline_block,
            open_pairs: sent.open_pairs,
            batches: sent
                .sent
                .iter()
                .map(|s| StoredBatch {
                    uid: s.miner.uid,
                    hotkey: s.miner.hotkey.to_ss58(),
                    base_url: s.miner.base_url.as_ref().map(|u| u.to_string()),
                    batch: s.batch.clone(),
                    failure: s.delivered.clone().err(),
                })
                .collect(),
        }
    }
}

impl TryFrom<StoredSent> for SentEpoch {
    type Error = String;

    fn try_from(stored: StoredSent) -> Result<Self, String> {
        let mut track_seed = [0u8; 32];
        hex::decode_to_slice(&stored.track_seed, &mut track_seed)
            .map_err(|e| format!("track_seed {:?}: {e}", stored.track_seed))?;
        let sent = stored
            .batches
            .into_iter()
            .map(|b| {
                let hotkey = AccountId::from_ss58(&b.hotkey)
                    .map_err(|e| format!("hotkey {:?}: {e}", b.hotkey))?;
                let base_url = b
                    .base_url
                    .map(|u| reqwest::Url::parse(&u).map_err(|e| format!("base_url {u:?}: {e}")))
                    .transpose()?;
                Ok(Sent {
                    miner: LabelMiner {
                        uid: b.uid,
                        hotkey,
                        base_url,
                        probe: false,
                    },
                    batch: b.batch,
                    delivered: b.failure.map_or(Ok(()), Err),
                })
            })
            .collect::<Result<Vec<Sent>, String>>()?;
        Ok(Self {
            netuid: stored.netuid,
            epoch: stored.epoch,
            track_seed,
            deadline_block: stored.deadline_block,
            open_pairs: stored.open_pairs,
            sent,
        })
    }
}

impl SentEpoch {
    /// The epoch the batches were built and sent in.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Follows each miner to where `miners` (the metagraph at collection time) has it: its
    /// current uid and axon. A hotkey no longer registered is left out (its uid may be someone
    /// else's now); returns how many were.
    pub fn follow(&mut self, miners: &[LabelMiner]) -> usize {
        let before = self.sent.len();
        self.sent.retain_mut(
            |s| match miners.iter().find(|m| m.hotkey == s.miner.hotkey) {
                Some(now) => {
                    s.miner.uid = now.uid;
                    s.miner.base_url = now.base_url.clone().or(s.miner.base_url.take());
                    true
                }
                None => false,
            },
        );
        before - self.sent.len()
    }

    /// The batches built this epoch, by uid.
    pub fn batches(&self) -> impl Iterator<Item = (u16, &MinerBatch)> {
        self.sent.iter().map(|s| (s.miner.uid, &s.batch))
    }

    /// Open pairs available this epoch, shared and the miners' own (0 when no model gave two
    /// different answers).
    pub fn open_pairs(&self) -> usize {
        self.open_pairs
    }

    /// The deadline block the batches were sent with.
    pub fn deadline_block(&self) -> u64 {
        self.deadline_block
    }
}

/// One label miner's epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelMinerResult {
    /// Uid.
    pub uid: u16,
    /// SS58 hotkey.
    pub hotkey: String,
    /// How it went.
    pub outcome: LabelOutcome,
    /// Why, in words (empty for `ok`).
    pub reason: String,
    /// The batch built for it, with the hidden truth (also for failed miners).
    pub batch: MinerBatch,
    /// The labels accepted (tasks of the batch, one per labeler per task), by task id and labeler.
    pub labels: Vec<Label>,
    /// Labels the miner sent that were dropped.
    pub dropped_labels: u32,
    /// How the score was made.
    pub components: Components,
}

/// The label track's result of one epoch: everything needed to store and recompute it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelTrackResult {
    /// Subnet.
    pub netuid: u16,
    /// The epoch the labels were collected in, whose weights they feed.
    pub epoch: u64,
    /// The epoch the batches were built and sent in: `epoch`, or an earlier one when the label
    /// window spans epochs (`--labels.deadline-blocks` above the tempo).
    pub sent_epoch: u64,
    /// [`batch::track_seed`] of the sending epoch, hex (reveals the secret once it is over).
    pub track_seed: String,
    /// The batches' deadline block.
    pub deadline_block: u64,
    /// The scoring parameters used.
    pub params: ScoreParams,
    /// One entry per label miner, in uid order.
    pub miners: Vec<LabelMinerResult>,
    /// Each hotkey's known-answer votes in the window's earlier epochs (as stored), which the
    /// accuracy estimates take in.
    #[serde(default)]
    pub history: KnownHistory,
}

impl LabelTrackResult {
    /// The track scores by uid, for `TrackScores::labels` (sum to 1, or all 0).
    pub fn scores(&self) -> BTreeMap<u16, f64> {
        self.miners
            .iter()
            .map(|m| (m.uid, m.components.score))
            .collect()
    }
}

/// The rank of the best model that gave each (prompt, answer as shown), for simulations.
struct AnswerRanks(std::collections::HashMap<(String, String), u32>);

impl AnswerRanks {
    fn new(prompts: &[String], ranked: &[Vec<(String, u32)>], max_chars: usize) -> Self {
        let mut ranks = std::collections::HashMap::new();
        for (prompt, answers) in prompts.iter().zip(ranked) {
            for (answer, rank) in answers {
                let shown = batch::normalize_answer(answer, max_chars);
                let best = ranks.entry((prompt.clone(), shown)).or_insert(*rank);
                *best = (*best).min(*rank);
            }
        }
        Self(ranks)
    }

    /// The side of an open task given by the better-ranked model, if its two answers' models
    /// are ranked differently.
    fn better(&self, task: &subnet_common::protocol::RlhfTask) -> Option<Choice> {
        let rank = |answer: &str| self.0.get(&(task.prompt.clone(), answer.to_string()));
        match (rank(&task.a)?, rank(&task.b)?) {
            (a, b) if a < b => Some(Choice::A),
            (a, b) if b < a => Some(Choice::B),
            _ => None,
        }
    }
}

/// Writes `batch`'s truth to `dir/<batch_id>.json` (through a temporary file, so a reader never
/// sees half of it).
async fn write_truth(
    dir: &std::path::Path,
    batch: &MinerBatch,
    ranks: &AnswerRanks,
) -> std::io::Result<()> {
    let truth = subnet_common::protocol::SimulationTruth {
        batch_id: batch.batch_id.clone(),
        tasks: batch
            .tasks
            .iter()
            .map(|t| (t.task.task_id.clone(), t.correct()))
            .collect(),
        open_better: batch
            .tasks
            .iter()
            .filter(|t| !t.known)
            .filter_map(|t| Some((t.task.task_id.clone(), ranks.better(&t.task)?)))
            .collect(),
    };
    let json = serde_json::to_vec(&truth).map_err(std::io::Error::other)?;
    tokio::fs::create_dir_all(dir).await?;
    let path = dir.join(format!("{}.json", batch.batch_id));
    let tmp = dir.join(format!(".{}.json.tmp", batch.batch_id));
    tokio::fs::write(&tmp, json).await?;
    tokio::fs::rename(&tmp, &path).await
}

/// Each task of `batch` with the miner's vote (its labelers' majority) in pair orientation.
pub fn votes_of(batch: &MinerBatch, labels: &[Label]) -> Vec<TaskVote> {
    let mut by_task: BTreeMap<&str, Vec<&Label>> = BTreeMap::new();
    for label in labels {
        by_task
            .entry(label.task_id.as_str())
            .or_default()
            .push(label);
    }
    batch
        .tasks
        .iter()
        .map(|task| TaskVote {
            pair_id: task.pair_id.clone(),
            known: task.known,
            shared: task.shared,
            vote: by_task
                .get(task.task.task_id.as_str())
                .and_then(|labels| collect::miner_choice(labels.iter().copied()))
                .map(|choice| task.vote(choice)),
        })
        .collect()
}

/// Recomputes every miner's components from the stored batches, labels and outcomes (what
/// `verify` does); the result of a live epoch is unchanged by it.
pub fn rescore(result: &mut LabelTrackResult) {
    let votes: Vec<MinerVotes> = result
        .miners
        .iter()
        .map(|m| MinerVotes {
            hotkey: m.hotkey.clone(),
            collected: m.outcome == LabelOutcome::Ok,
            tasks: votes_of(&m.batch, &m.labels),
        })
        .collect();
    let components = score::score(&votes, &result.history, &result.params);
    for (miner, c) in result.miners.iter_mut().zip(components) {
        miner.components = c;
    }
}

/// The validator's label track. Build once; call [`LabelTrack::run_epoch`] each epoch.
#[derive(Debug, Clone)]
pub struct LabelTrack {
    /// Signs requests with the validator's hotkey.
    client: SignedClient,
    /// Sizes, limits, scoring.
    settings: LabelSettings,
}

impl LabelTrack {
    /// A track signing with `client`.
    pub fn new(client: SignedClient, settings: LabelSettings) -> Self {
        Self { client, settings }
    }

    /// The settings.
    pub fn settings(&self) -> &LabelSettings {
        &self.settings
    }

    /// Builds every miner's batch (asking `answers` for the open pairs, on a blocking thread)
    /// and posts it with `input.deadline_block`. Never fails: an undelivered batch is recorded
    /// for [`LabelTrack::collect`].
    pub async fn send(
        &self,
        input: &LabelEpochInput<'_>,
        answers: Arc<dyn AnswerSource>,
    ) -> SentEpoch {
        self.send_deadline_at(input, answers, || std::future::ready(input.deadline_block))
            .await
    }

    /// [`send`](Self::send), with the deadline block decided by `deadline` once the answers are
    /// ready, just before the batches are posted (e.g. from the chain head then, so that a late
    /// start still leaves labelers a window).
    pub async fn send_deadline_at<F: Future<Output = u64>>(
        &self,
        input: &LabelEpochInput<'_>,
        answers: Arc<dyn AnswerSource>,
        deadline: impl FnOnce() -> F,
    ) -> SentEpoch {
        let settings = &self.settings.batch;
        let track_seed = batch::track_seed(input.seed, input.secret);
        let recipients: Vec<batch::Recipient> = input
            .miners
            .iter()
            .map(|m| batch::Recipient {
                seed: batch::miner_seed(track_seed, &m.hotkey),
                probe: m.probe,
            })
            .collect();
        // The epoch's prompts: the models answer them all at once.
        let prompts = batch::epoch_prompts(track_seed, input.prompts, settings, &recipients);
        let expected = prompts.len();
        let texts = prompts.clone();
        let mut ranked = if texts.is_empty() {
            Vec::new()
        } else {
            tokio::task::spawn_blocking(move || answers.ranked_answers(&texts))
                .await
                .unwrap_or_else(|error| {
                    tracing::error!(%error, "the answer source crashed; no label tasks this epoch");
                    Vec::new()
                })
        };
        // An answer source that answered fewer prompts than asked answers none.
        ranked.resize(expected, Vec::new());
        let candidates: Vec<Vec<String>> = ranked
            .iter()
            .map(|answers| answers.iter().map(|(a, _)| a.clone()).collect())
            .collect();
        // Only simulations read the ranks (their truth files).
        let ranks = self
            .settings
            .truth_dir
            .is_some()
            .then(|| AnswerRanks::new(&prompts, &ranked, settings.max_answer_chars));
        let pairs = batch::build_pairs(track_seed, &recipients, settings, &prompts, &candidates);
        let open_pairs = pairs.open_pairs();
        if pairs.known_pairs() == 0 {
            tracing::warn!(
                prompts = expected,
                "label track: no model answered a prompt (no scored model yet, or none loads), so \
                 there are no tasks this epoch"
            );
        }
        let deadline_block = deadline().await;
        tracing::info!(
            miners = input.miners.len(),
            probed = recipients.iter().filter(|r| r.probe).count(),
            open_pairs,
            known_pairs = pairs.known_pairs(),
            deadline_block,
            "label track: sending batches"
        );
        let shared_ref = &pairs.shared;
        let ranks = ranks.as_ref();
        // Futures collected first: a stream over a borrowing closure is not `Send` in callers
        // that need it to be (higher-ranked lifetime inference).
        let jobs: Vec<_> = input.miners.iter().zip(recipients.iter().map(|r| r.seed)).zip(&pairs.own).map(|((miner, seed), own)| {
            let span = tracing::info_span!("miner", uid = miner.uid, hotkey = %miner.hotkey);
            async move {
                let batch = batch::build_batch(
                    shared_ref,
                    own,
                    settings,
                    seed,
                    input.epoch,
                    deadline_block,
                );
                if let (Some(dir), Some(ranks)) = (&self.settings.truth_dir, ranks)
                    && let Err(error) = write_truth(dir, &batch, ranks).await
                {
                    tracing::warn!(%error, dir = %dir.display(), "label track: cannot write the simulation truth");
                }
                let delivered = match &miner.base_url {
                    _ if batch.tasks.is_empty() && miner.probe => Err(Failure {
                        outcome: LabelOutcome::NoTasks,
                        reason: "its recent batches went unanswered, so it is only probed now \
                                 and then (not this epoch)"
                            .into(),
                    }),
                    _ if batch.tasks.is_empty() => Err(Failure {
                        outcome: LabelOutcome::NoTasks,
                        reason: "no model answered a prompt this epoch: nothing to label".into(),
                    }),
                    None => Err(Failure {
                        outcome: LabelOutcome::NotServing,
                        reason: "no axon published on chain".into(),
                    }),
                    Some(url) => {
                        collect::send_batch(
                            &self.client,
                            url,
                            &miner.hotkey,
                            &batch.wire(),
                            &self.settings.limits,
                        )
                        .await
                    }
                };
                if let Err(failure) = &delivered {
                    tracing::debug!(outcome = %failure.outcome, reason = %failure.reason, "batch not delivered");
                }
                Sent {
                    miner: miner.clone(),
                    batch,
                    delivered,
                }
            }
            .instrument(span)
        }).collect();
        let sent: Vec<Sent> = futures::stream::iter(jobs)
            .buffered(self.settings.concurrency.max(1))
            .collect()
            .await;
        SentEpoch {
            netuid: input.netuid,
            epoch: input.epoch,
            track_seed,
            deadline_block,
            open_pairs,
            sent,
        }
    }

    /// Collects the labels of every delivered batch and scores them as `epoch`'s (the epoch
    /// they are collected in: the sending one, or a later one when the window spans epochs),
    /// with `history` (each hotkey's known answers in the window's earlier epochs,
    /// [`crate::db::known_history`]). Call it once the deadline block is over: miners take labels
    /// through it, and none after.
    pub async fn collect(
        &self,
        sent: SentEpoch,
        epoch: u64,
        history: KnownHistory,
    ) -> LabelTrackResult {
        let limits = &self.settings.limits;
        let jobs: Vec<_> = sent
            .sent
            .into_iter()
            .map(|s| {
                let span =
                    tracing::info_span!("miner", uid = s.miner.uid, hotkey = %s.miner.hotkey);
                async move {
                    let collected = match (&s.delivered, &s.miner.base_url) {
                        (Err(failure), _) => Err(failure.clone()),
                        (Ok(()), None) => Err(Failure {
                            outcome: LabelOutcome::NotServing,
                            reason: "no axon published on chain".into(),
                        }),
                        (Ok(()), Some(url)) => {
                            collect::fetch_labels(
                                &self.client,
                                url,
                                &s.miner.hotkey,
                                &s.batch.batch_id,
                                limits,
                            )
                            .await
                        }
                    };
                    let (outcome, reason, labels, dropped) = match collected {
                        Err(failure) => (failure.outcome, failure.reason, Vec::new(), 0),
                        Ok(labels) => {
                            let ids: BTreeSet<&str> = s
                                .batch
                                .tasks
                                .iter()
                                .map(|t| t.task.task_id.as_str())
                                .collect();
                            let (mut kept, dropped) =
                                collect::accept_labels(labels, &ids, limits.max_labels_per_task);
                            // One canonical order, the one they are stored and loaded in.
                            kept.sort_by(|a, b| {
                                (&a.task_id, &a.labeler).cmp(&(&b.task_id, &b.labeler))
                            });
                            if kept.is_empty() {
                                (
                                    LabelOutcome::NoLabels,
                                    format!(
                                        "no label for any task of the batch ({dropped} dropped)"
                                    ),
                                    kept,
                                    dropped,
                                )
                            } else {
                                (LabelOutcome::Ok, String::new(), kept, dropped)
                            }
                        }
                    };
                    tracing::debug!(%outcome, labels = labels.len(), dropped, "labels collected");
                    LabelMinerResult {
                        uid: s.miner.uid,
                        hotkey: s.miner.hotkey.to_ss58(),
                        outcome,
                        reason,
                        batch: s.batch,
                        labels,
                        dropped_labels: u32::try_from(dropped).unwrap_or(u32::MAX),
                        components: Components::default(),
                    }
                }
                .instrument(span)
            })
            .collect();
        let mut miners: Vec<LabelMinerResult> = futures::stream::iter(jobs)
            .buffered(self.settings.concurrency.max(1))
            .collect()
            .await;
        miners.sort_by_key(|m| m.uid);
        let mut result = LabelTrackResult {
            netuid: sent.netuid,
            epoch,
            sent_epoch: sent.epoch,
            track_seed: hex::encode(sent.track_seed),
            deadline_block: sent.deadline_block,
            params: self.settings.score,
            miners,
            history,
        };
        rescore(&mut result);
        result
    }

    /// [`send`](Self::send), wait for `deadline_over` (a future the caller resolves once the
    /// deadline block is over, e.g. its clock waiting for `deadline_block + 1`), then
    /// [`collect`](Self::collect) with `history`.
    pub async fn run_epoch(
        &self,
        input: &LabelEpochInput<'_>,
        answers: Arc<dyn AnswerSource>,
        deadline_over: impl Future<Output = ()>,
        history: KnownHistory,
    ) -> LabelTrackResult {
        let sent = self.send(input, answers).await;
        deadline_over.await;
        self.collect(sent, input.epoch, history).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use subnet_common::chain::types::{AxonInfo, NeuronInfo};

    fn neuron(uid: u16, byte: u8, port: u16) -> NeuronInfo {
        let key = AccountId([byte; 32]);
        let axon = AxonInfo::ipv4(std::net::Ipv4Addr::LOCALHOST, port);
        NeuronInfo::registered(1, uid, key, key, axon)
    }

    #[test]
    fn label_miners_are_every_other_uid_with_its_axon() {
        let metagraph = Metagraph {
            netuid: 1,
            block: 10,
            neurons: vec![neuron(2, 2, 8092), neuron(0, 9, 8090), neuron(1, 1, 0)],
        };
        let miners = label_miners(&metagraph, &AccountId([9; 32]));
        let uids: Vec<u16> = miners.iter().map(|m| m.uid).collect();
        assert_eq!(uids, [1, 2], "the validator itself is left out, uid order");
        assert_eq!(miners[0].base_url, None, "port 0: no axon");
        assert_eq!(
            miners[1].base_url.as_ref().map(reqwest::Url::as_str),
            Some("http://127.0.0.1:8092/")
        );
    }

    #[test]
    fn simulations_learn_which_side_of_an_open_pair_the_better_model_gave() {
        let prompts = vec!["Why?".to_string(), "How?".to_string()];
        let answers = |best_also_says_no_idea: bool| {
            let mut why = vec![
                ("Because it is.\nMore text.".to_string(), 0),
                ("no idea".to_string(), 1),
            ];
            if best_also_says_no_idea {
                why.push(("no idea".to_string(), 0));
            }
            vec![
                why,
                vec![("Slowly.".to_string(), 1), ("Fast.".to_string(), 1)],
            ]
        };
        let task = |prompt: &str, a: &str, b: &str| subnet_common::protocol::RlhfTask {
            task_id: "t".into(),
            prompt: prompt.into(),
            a: a.into(),
            b: b.into(),
        };
        // Answers are looked up as shown (first line, trimmed).
        let ranks = AnswerRanks::new(&prompts, &answers(false), 1000);
        assert_eq!(
            ranks.better(&task("Why?", "no idea", "Because it is.")),
            Some(Choice::B)
        );
        assert_eq!(
            ranks.better(&task("Why?", "Because it is.", "no idea")),
            Some(Choice::A)
        );
        assert_eq!(
            ranks.better(&task("How?", "Slowly.", "Fast.")),
            None,
            "equal ranks"
        );
        assert_eq!(ranks.better(&task("How?", "Slowly.", "Unknown")), None);
        // An answer the best model gave too counts as the best model's.
        let ranks = AnswerRanks::new(&prompts, &answers(true), 1000);
        assert_eq!(
            ranks.better(&task("Why?", "no idea", "Because it is.")),
            None
        );
    }

    #[test]
    fn fresh_secrets_differ() {
        assert_ne!(fresh_secret(), fresh_secret());
    }
}
