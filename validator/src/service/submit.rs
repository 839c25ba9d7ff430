//! Getting stored weights onto the chain, exactly once, across crashes: [`WeightSubmitter`],
//! which the epoch loop owns.
//!
//! Each stored epoch has one weight row (`weight_commits`, [`db::WeightCommitRecord`]), moved
//! forward only ([`db::WeightStatus`]):
//! `pending` → `committed` → `revealed` (commit–reveal v2), or `pending` → `set` (commit–reveal
//! off), or to `failed`/`expired`. The rules that make a second commit impossible:
//!
//! 1. **Sign, record, then send.** The extrinsic is signed first, so its hash is known; the hash
//!    (and, on the first attempt, the current head as the row's *guard block*) is stored before
//!    the extrinsic leaves the process.
//! 2. **Ask before signing again.** Before any new attempt (in this process or after a restart),
//!    the recorded hash is looked up: included → done; queued → wait for it; failed or unknown →
//!    it is not on chain. Then the validator's `last_update` in the metagraph is compared with the
//!    guard block: the chain moves it only for our commits and `set_weights`, so a value at or
//!    after the guard means an earlier attempt landed (e.g. one whose hash was overwritten).
//! 3. **Only then sign again**, at the next nonce.
//!
//! A reveal needs no such care: a second reveal of the same commit finds no commit and fails.
//! A reveal is sent once the chain's epoch index reaches `epoch_of(commit_block) +
//! commit_reveal_period`, and the row expires after that epoch. An older `pending` row that
//! never left the process is superseded by a newer one (only the newest weights are sent).
//! Before a commit or `set_weights`, the loop waits out `weights_set_rate_limit` counted from
//! the validator's `last_update`.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use subnet_common::chain::client::{ChainClient, ChainClientError, Inclusion};
use subnet_common::chain::rpc::{H256, TxStatus, code};
use subnet_common::chain::types::{Call, Hyperparameters, NeuronInfo};
use subnet_common::keys::Keypair;

use super::clock::BlockClock;
use super::schedule::EpochSchedule;
use super::{Failpoint, ServiceConfig, ServiceError};
use crate::db::{
    self, RecordedTx, Submission, WeightCommitRecord, WeightMode, WeightStatus, WeightUpdate,
};

/// The result of one attempt to send an extrinsic.
#[derive(Debug)]
enum SendError {
    /// Worth another try (network, queue full, nonce race, rate limit, inclusion timeout).
    Transient(String),
    /// The chain refused it for good.
    Refused(String),
    /// The loop must stop (failpoint, database down).
    Fatal(ServiceError),
}

impl From<ServiceError> for SendError {
    fn from(e: ServiceError) -> Self {
        Self::Fatal(e)
    }
}

impl From<db::DbError> for SendError {
    fn from(e: db::DbError) -> Self {
        Self::Fatal(e.into())
    }
}

/// Whether an earlier attempt of a row's commit is on chain.
#[derive(Debug)]
enum Landed {
    /// Included in `block` (by `tx` when known).
    Yes {
        /// The extrinsic, when it is the recorded one.
        tx: Option<H256>,
        /// Block of inclusion (or of the weight update).
        block: u64,
    },
    /// Queued and not included within the inclusion timeout: do not sign another.
    InFlight,
    /// Nothing of it is on chain.
    No,
}

/// A chain refusal that goes away by waiting: the dev chain's texts, and Subtensor's dispatch
/// errors (`Pallet.Error`) for the same rate limits.
fn is_transient_refusal(error: &str) -> bool {
    error.starts_with("setting weights too fast")
        || error.starts_with("reveal too early")
        // A timelocked commit that reached the chain after its round: encrypted again to a
        // later round on the next attempt.
        || error.starts_with("reveal round")
        || matches!(
            error,
            "SubtensorModule.SettingWeightsTooFast"
                | "SubtensorModule.CommittingWeightsTooFast"
                | "SubtensorModule.RevealTooEarly"
                | "SubtensorModule.TxRateLimitExceeded"
                | "SubtensorModule.InvalidRevealRound"
        )
}

/// Sorts a failed submission into worth-retrying or refused.
fn classify(error: ChainClientError) -> SendError {
    match &error {
        ChainClientError::Rpc { code: c, .. } => match *c {
            code::BAD_NONCE | code::POOL_FULL | code::RATE_LIMITED | code::INTERNAL_ERROR => {
                SendError::Transient(error.to_string())
            }
            _ => SendError::Refused(error.to_string()),
        },
        ChainClientError::ExtrinsicFailed { error: reason, .. } => {
            if is_transient_refusal(reason) {
                SendError::Transient(error.to_string())
            } else {
                SendError::Refused(reason.clone())
            }
        }
        ChainClientError::BadUrl { .. } => SendError::Refused(error.to_string()),
        _ => SendError::Transient(error.to_string()),
    }
}

/// Sends the weights of stored epochs to the chain and follows them there (see the module
/// documentation). The epoch loop owns one and calls [`WeightSubmitter::settle`] each turn.
pub struct WeightSubmitter<C> {
    chain: Arc<C>,
    pool: PgPool,
    /// Signs the weight extrinsics.
    hotkey: Keypair,
    netuid: u16,
    /// How long to wait for an extrinsic's inclusion before asking again.
    inclusion_timeout: Duration,
    /// Attempts per extrinsic in one turn.
    attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    failpoint: Option<Failpoint>,
}

impl<C: ChainClient> WeightSubmitter<C> {
    /// A submitter signing with `hotkey`, with the loop's retry settings.
    pub fn new(chain: Arc<C>, pool: PgPool, hotkey: Keypair, config: &ServiceConfig) -> Self {
        Self {
            chain,
            pool,
            hotkey,
            netuid: config.netuid,
            inclusion_timeout: config.inclusion_timeout,
            attempts: config.submit_attempts.max(1),
            initial_backoff: config.initial_backoff,
            max_backoff: config.max_backoff,
            failpoint: config.failpoint,
        }
    }

    /// Moves every open weight row as far as the chain allows now.
    pub async fn settle(
        &self,
        hp: &Hyperparameters,
        clock: &impl BlockClock,
    ) -> Result<(), ServiceError> {
        let netuid = i32::from(self.netuid);
        let rows = db::open_weight_commits(&self.pool, netuid).await?;
        let newest_pending = rows
            .iter()
            .filter(|r| r.status == WeightStatus::Pending)
            .map(|r| r.epoch)
            .max();
        for row in &rows {
            match row.status {
                WeightStatus::Pending => {
                    self.settle_pending(row, hp, clock, newest_pending == Some(row.epoch))
                        .await?
                }
                WeightStatus::Committed => self.settle_committed(row, hp, clock).await?,
                WeightStatus::Revealed
                | WeightStatus::Set
                | WeightStatus::Failed
                | WeightStatus::Expired => {}
            }
        }
        Ok(())
    }

    /// Records `update` on the row and counts it in `validator_weight_commits_total`.
    async fn update(
        &self,
        row: &WeightCommitRecord,
        update: &WeightUpdate,
    ) -> Result<(), ServiceError> {
        let applied = db::update_weights(&self.pool, row.netuid, row.epoch, update).await?;
        let result = update.status().map_or("retry", WeightStatus::as_str);
        if applied {
            crate::metrics::record_weight_commit(result);
        }
        Ok(())
    }

    /// Our neuron in the current metagraph, if registered.
    async fn own_neuron(&self) -> Result<Option<NeuronInfo>, ServiceError> {
        let me = self.hotkey.account_id();
        let metagraph = self.chain.metagraph(self.netuid).await?;
        Ok(metagraph.neurons.into_iter().find(|n| n.hotkey == me))
    }

    /// Rule 2: is an earlier attempt of this row's commit on chain?
    async fn landed(&self, row: &WeightCommitRecord) -> Result<Landed, ServiceError> {
        if let Some(tx) = row.commit_tx.and_then(RecordedTx::hash) {
            match self.chain.tx_status(tx).await? {
                TxStatus::InBlock { block, .. } => {
                    return Ok(Landed::Yes {
                        tx: Some(tx),
                        block,
                    });
                }
                TxStatus::Pending => {
                    match self
                        .chain
                        .wait_for_inclusion(tx, self.inclusion_timeout)
                        .await
                    {
                        Ok(inclusion) => {
                            return Ok(Landed::Yes {
                                tx: Some(tx),
                                block: inclusion.block,
                            });
                        }
                        Err(ChainClientError::InclusionTimeout { .. }) => {
                            return Ok(Landed::InFlight);
                        }
                        Err(
                            ChainClientError::ExtrinsicFailed { .. }
                            | ChainClientError::UnknownExtrinsic { .. },
                        ) => {}
                        Err(other) => return Err(other.into()),
                    }
                }
                TxStatus::Failed { .. } | TxStatus::Unknown => {}
            }
        }
        let guard = db::submit_guard_block(&self.pool, row.netuid, row.epoch).await?;
        if let Some(guard) = guard
            && let Some(me) = self.own_neuron().await?
            && me.last_update >= guard
        {
            return Ok(Landed::Yes {
                tx: None,
                block: me.last_update,
            });
        }
        Ok(Landed::No)
    }

    /// Records that the row's commit (or set_weights) is on chain.
    async fn record_landed(
        &self,
        row: &WeightCommitRecord,
        tx: Option<H256>,
        block: u64,
    ) -> Result<(), ServiceError> {
        let tx = tx.map_or(RecordedTx::Unknown, RecordedTx::Hash);
        let update = match row.mode {
            WeightMode::SetWeights => WeightUpdate::Set { tx, block },
            WeightMode::CommitReveal { .. } | WeightMode::Timelocked => {
                WeightUpdate::Committed { tx, block }
            }
        };
        self.update(row, &update).await?;
        tracing::info!(epoch = row.epoch, ?update, "weights on chain");
        Ok(())
    }

    /// A `pending` row: detect an earlier attempt, else send (newest row only).
    async fn settle_pending(
        &self,
        row: &WeightCommitRecord,
        hp: &Hyperparameters,
        clock: &impl BlockClock,
        newest: bool,
    ) -> Result<(), ServiceError> {
        let mut backoff = self.initial_backoff;
        let mut row = row.clone();
        for attempt in 1..=self.attempts {
            match self.landed(&row).await? {
                Landed::Yes { tx, block } => return self.record_landed(&row, tx, block).await,
                Landed::InFlight => {
                    tracing::warn!(epoch = row.epoch, "commit still queued; checking next turn");
                    return Ok(());
                }
                Landed::No => {}
            }
            if !newest {
                let update = WeightUpdate::Failed {
                    error: "superseded by the weights of a newer epoch".into(),
                    expired: false,
                };
                self.update(&row, &update).await?;
                return Ok(());
            }
            if row.uids.is_empty() {
                let update = WeightUpdate::Failed {
                    error: "no weights to set".into(),
                    expired: false,
                };
                self.update(&row, &update).await?;
                return Ok(());
            }
            let result = self.send_commit(&row, hp, clock).await;
            match result {
                Ok(inclusion) => {
                    return self
                        .record_landed(&row, Some(inclusion.tx), inclusion.block)
                        .await;
                }
                Err(SendError::Fatal(error)) => return Err(error),
                Err(SendError::Refused(error)) => {
                    tracing::error!(epoch = row.epoch, %error, "the chain refused the weights");
                    let update = WeightUpdate::Failed {
                        error,
                        expired: false,
                    };
                    self.update(&row, &update).await?;
                    return Ok(());
                }
                Err(SendError::Transient(error)) => {
                    tracing::warn!(epoch = row.epoch, attempt, %error, "sending weights failed; retrying");
                    let update = WeightUpdate::Retry { error };
                    self.update(&row, &update).await?;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.max_backoff);
                    // The attempt may have recorded a new hash: read the row again.
                    if let Some(fresh) = db::open_weight_commits(&self.pool, row.netuid)
                        .await?
                        .into_iter()
                        .find(|r| r.epoch == row.epoch)
                    {
                        row = fresh;
                    } else {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    /// The `commit_weights`, `set_weights` or `commit_timelocked_weights` call of a row; a
    /// timelocked commit is encrypted now, to the round the chain reveals a commit sent now at.
    async fn commit_call(&self, row: &WeightCommitRecord) -> Result<Call, SendError> {
        let netuid = self.netuid;
        Ok(match &row.mode {
            WeightMode::SetWeights => Call::SetWeights {
                netuid,
                dests: row.uids.clone(),
                weights: row.weights.clone(),
                version_key: row.version_key,
            },
            WeightMode::CommitReveal { commit_hash, .. } => Call::CommitWeights {
                netuid,
                commit_hash: *commit_hash,
            },
            WeightMode::Timelocked => {
                let commit = self
                    .chain
                    .timelocked_commit(
                        netuid,
                        &self.hotkey.account_id(),
                        &row.uids,
                        &row.weights,
                        row.version_key,
                    )
                    .await
                    .map_err(classify)?;
                tracing::info!(
                    epoch = row.epoch,
                    reveal_round = commit.reveal_round,
                    "weights encrypted to the beacon round of their reveal"
                );
                commit.call
            }
        })
    }

    /// Waits out the rate limit, then builds the row's call and follows rules 1 and 3: sign,
    /// record, send, wait for inclusion.
    async fn send_commit(
        &self,
        row: &WeightCommitRecord,
        hp: &Hyperparameters,
        clock: &impl BlockClock,
    ) -> Result<Inclusion, SendError> {
        let me = self
            .own_neuron()
            .await?
            .ok_or_else(|| SendError::Transient("the hotkey is not registered".into()))?;
        let limit = hp.weights_set_rate_limit;
        if limit > 0 && me.last_update > 0 {
            let allowed_at = me.last_update + limit;
            let head = clock.current_block().await.map_err(ServiceError::from)?;
            if head < allowed_at {
                tracing::info!(
                    epoch = row.epoch,
                    last_update = me.last_update,
                    allowed_at,
                    "waiting for the weights rate limit"
                );
                clock
                    .wait_until(allowed_at)
                    .await
                    .map_err(ServiceError::from)?;
            }
        }
        // Built after the wait: a timelocked commit is encrypted to a round counted from now.
        let call = self.commit_call(row).await?;
        self.send(row, call, Submission::Commit, clock).await
    }

    /// Signs `call`, records its hash on the row, sends it and waits for its inclusion.
    async fn send(
        &self,
        row: &WeightCommitRecord,
        call: Call,
        which: Submission,
        clock: &impl BlockClock,
    ) -> Result<Inclusion, SendError> {
        let head = clock.current_block().await.map_err(classify)?;
        let prepared = self
            .chain
            .prepare(call, &self.hotkey)
            .await
            .map_err(classify)?;
        let tx = prepared.hash;
        db::record_submission(&self.pool, row.netuid, row.epoch, which, tx, head).await?;
        match self.chain.submit_prepared(&prepared).await {
            Ok(_) => {}
            Err(ChainClientError::Rpc { code: c, .. }) if c == code::ALREADY_KNOWN => {}
            Err(error) => return Err(classify(error)),
        }
        tracing::info!(epoch = row.epoch, call = prepared.call, %tx, nonce = prepared.nonce, "sent");
        if which == Submission::Commit {
            Failpoint::AfterSend.stop_if_configured(self.failpoint)?;
        }
        self.chain
            .wait_for_inclusion(tx, self.inclusion_timeout)
            .await
            .map_err(classify)
    }

    /// A `committed` row: reveal in its reveal epoch, expire after it.
    async fn settle_committed(
        &self,
        row: &WeightCommitRecord,
        hp: &Hyperparameters,
        clock: &impl BlockClock,
    ) -> Result<(), ServiceError> {
        let schedule = EpochSchedule::new(self.netuid, hp.tempo);
        let commit_block = row.commit_block.ok_or_else(|| ServiceError::BadRow {
            epoch: row.epoch,
            reason: "committed without a commit block".into(),
        })?;
        if matches!(row.mode, WeightMode::CommitReveal { .. })
            && let Some(tempo) = db::epoch_tempo(&self.pool, row.netuid, row.epoch).await?
            && tempo != hp.tempo
        {
            // The chain keeps the commit under the epoch index it had when it arrived, which a
            // tempo change moves: its reveal epoch comes much later (index moved back) or has
            // passed (moved forward). Given up; the newest epoch's weights go out under the new
            // tempo instead of waiting for it.
            let update = WeightUpdate::Failed {
                error: format!(
                    "the subnet's tempo changed from {tempo} to {} after this commit: its reveal \
                     epoch no longer follows; re-planned, the newest weights are committed \
                     under the new tempo",
                    hp.tempo
                ),
                expired: false,
            };
            self.update(row, &update).await?;
            tracing::warn!(
                epoch = row.epoch,
                tempo_before = tempo,
                tempo = hp.tempo,
                "weight commit made under the old tempo given up"
            );
            return Ok(());
        }
        let reveal_epoch = schedule.epoch_of(commit_block) + hp.commit_reveal_period;
        let salt = match &row.mode {
            WeightMode::CommitReveal { salt, .. } => salt,
            WeightMode::Timelocked => {
                // The chain reveals a timelocked commit by itself at the start of its reveal
                // epoch; once that epoch is reached there is nothing left to do.
                let head = clock.current_block().await?;
                if schedule.epoch_of(head) >= reveal_epoch {
                    let update = WeightUpdate::Revealed {
                        tx: None,
                        block: head,
                    };
                    self.update(row, &update).await?;
                    tracing::info!(
                        epoch = row.epoch,
                        block = head,
                        "timelocked weights due for the chain's reveal"
                    );
                }
                return Ok(());
            }
            WeightMode::SetWeights => return Ok(()),
        };
        if let Some(tx) = row.reveal_tx {
            let included = match self.chain.tx_status(tx).await? {
                TxStatus::InBlock { block, .. } => Some(block),
                TxStatus::Pending => {
                    match self
                        .chain
                        .wait_for_inclusion(tx, self.inclusion_timeout)
                        .await
                    {
                        Ok(inclusion) => Some(inclusion.block),
                        Err(ChainClientError::InclusionTimeout { .. }) => return Ok(()),
                        Err(_) => None,
                    }
                }
                TxStatus::Failed { .. } | TxStatus::Unknown => None,
            };
            if let Some(block) = included {
                self.update(
                    row,
                    &WeightUpdate::Revealed {
                        tx: Some(tx),
                        block,
                    },
                )
                .await?;
                return Ok(());
            }
        }
        let mut backoff = self.initial_backoff;
        for attempt in 1..=self.attempts {
            let head = clock.current_block().await?;
            let current = schedule.epoch_of(head);
            if current < reveal_epoch {
                tracing::debug!(
                    epoch = row.epoch,
                    reveal_epoch,
                    current,
                    "reveal not due yet"
                );
                return Ok(());
            }
            if current > reveal_epoch {
                let update = WeightUpdate::Failed {
                    error: format!(
                        "reveal window (epoch {reveal_epoch}) passed at epoch {current}"
                    ),
                    expired: true,
                };
                self.update(row, &update).await?;
                tracing::warn!(
                    epoch = row.epoch,
                    reveal_epoch,
                    "weight commit expired unrevealed"
                );
                return Ok(());
            }
            let call = Call::RevealWeights {
                netuid: self.netuid,
                uids: row.uids.clone(),
                values: row.weights.clone(),
                salt: salt.clone(),
                version_key: row.version_key,
            };
            match self.send(row, call, Submission::Reveal, clock).await {
                Ok(inclusion) => {
                    let update = WeightUpdate::Revealed {
                        tx: Some(inclusion.tx),
                        block: inclusion.block,
                    };
                    self.update(row, &update).await?;
                    tracing::info!(
                        epoch = row.epoch,
                        block = inclusion.block,
                        "weights revealed"
                    );
                    return Ok(());
                }
                Err(SendError::Fatal(error)) => return Err(error),
                Err(SendError::Refused(error)) => {
                    let expired = error.contains("expired");
                    tracing::error!(epoch = row.epoch, %error, "the chain refused the reveal");
                    let update = WeightUpdate::Failed { error, expired };
                    self.update(row, &update).await?;
                    return Ok(());
                }
                Err(SendError::Transient(error)) => {
                    tracing::warn!(epoch = row.epoch, attempt, %error, "reveal failed; retrying");
                    self.update(row, &WeightUpdate::Retry { error }).await?;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.max_backoff);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_refusals_are_transient_and_others_are_final() {
        let failed = |error: &str| ChainClientError::ExtrinsicFailed {
            tx: H256::default(),
            block: 3,
            error: error.into(),
        };
        assert!(matches!(
            classify(failed(
                "setting weights too fast: last update at block 1, limit 10 blocks"
            )),
            SendError::Transient(_)
        ));
        assert!(matches!(
            classify(failed(
                "reveal too early: commit of epoch 1 reveals in epoch 2, now 1"
            )),
            SendError::Transient(_)
        ));
        // A timelocked commit that came after its round is sealed again to a later one.
        for late in [
            "reveal round 250 is already published (the chain is at block 251)",
            "SubtensorModule.InvalidRevealRound",
            "SubtensorModule.SettingWeightsTooFast",
        ] {
            assert!(
                matches!(classify(failed(late)), SendError::Transient(_)),
                "{late}"
            );
        }
        assert!(matches!(
            classify(failed("uid 3 has no validator permit")),
            SendError::Refused(_)
        ));
        let rpc = |c| ChainClientError::Rpc {
            method: "author_submitExtrinsic",
            code: c,
            message: "x".into(),
        };
        assert!(matches!(
            classify(rpc(code::BAD_NONCE)),
            SendError::Transient(_)
        ));
        assert!(matches!(
            classify(rpc(code::POOL_FULL)),
            SendError::Transient(_)
        ));
        assert!(matches!(
            classify(rpc(code::BAD_SIGNATURE)),
            SendError::Refused(_)
        ));
        assert!(matches!(
            classify(ChainClientError::InclusionTimeout {
                tx: H256::default(),
                waited: Duration::from_secs(1)
            }),
            SendError::Transient(_)
        ));
    }
}
