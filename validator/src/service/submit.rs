//! Getting stored weights onto the chain, exactly once, across crashes.
//!
//! Each stored epoch has one weight row (`weight_commits`), moved forward only:
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

use sha2::{Digest, Sha256};
use subnet_common::chain::client::{ChainClient, ChainClientError, Inclusion};
use subnet_common::chain::rpc::{H256, TxStatus, code};
use subnet_common::chain::types::{Call, Hyperparameters, NeuronInfo, SignedExtrinsic};

use super::clock::BlockClock;
use super::schedule::EpochSchedule;
use super::{Failpoint, Service, ServiceError};
use crate::db::{self, Submission, WeightCommitRecord, WeightUpdate};

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

/// A chain refusal that goes away by waiting (the chain's own error texts).
fn is_transient_refusal(error: &str) -> bool {
    error.starts_with("setting weights too fast") || error.starts_with("reveal too early")
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

fn parse_tx(epoch: i64, tx: &str) -> Result<H256, ServiceError> {
    tx.parse().map_err(|_| ServiceError::BadRow {
        epoch,
        reason: format!("stored extrinsic hash {tx:?} is not a hash"),
    })
}

fn u16s(epoch: i64, what: &str, values: &[i32]) -> Result<Vec<u16>, ServiceError> {
    values
        .iter()
        .map(|&v| u16::try_from(v))
        .collect::<Result<_, _>>()
        .map_err(|_| ServiceError::BadRow {
            epoch,
            reason: format!("{what} holds a value outside u16"),
        })
}

impl<C: ChainClient, K: BlockClock> Service<C, K> {
    /// Moves every open weight row as far as the chain allows now.
    pub(super) async fn settle(&self, hp: &Hyperparameters) -> Result<(), ServiceError> {
        let netuid = i32::from(self.config.netuid);
        let rows = db::open_weight_commits(&self.pool, netuid).await?;
        let newest_pending = rows
            .iter()
            .filter(|r| r.status == "pending")
            .map(|r| r.epoch)
            .max();
        for row in &rows {
            match row.status.as_str() {
                "pending" => {
                    self.settle_pending(row, hp, newest_pending == Some(row.epoch))
                        .await?
                }
                "committed" => self.settle_committed(row, hp).await?,
                _ => {}
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
        let result = match update {
            WeightUpdate::Committed { .. } => "committed",
            WeightUpdate::Set { .. } => "set",
            WeightUpdate::Revealed { .. } => "revealed",
            WeightUpdate::Failed { expired: true, .. } => "expired",
            WeightUpdate::Failed { .. } => "failed",
            WeightUpdate::Retry { .. } => "retry",
        };
        if applied {
            crate::metrics::record_weight_commit(result);
        }
        Ok(())
    }

    /// Our neuron in the current metagraph, if registered.
    async fn own_neuron(&self) -> Result<Option<NeuronInfo>, ServiceError> {
        let me = self.hotkey.account_id();
        let metagraph = self.chain.metagraph(self.config.netuid).await?;
        Ok(metagraph.neurons.into_iter().find(|n| n.hotkey == me))
    }

    /// Rule 2: is an earlier attempt of this row's commit on chain?
    async fn landed(&self, row: &WeightCommitRecord) -> Result<Landed, ServiceError> {
        if let Some(tx) = &row.commit_tx {
            let tx = parse_tx(row.epoch, tx)?;
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
                        .wait_for_inclusion(tx, self.config.inclusion_timeout)
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
            && me.last_update >= u64::try_from(guard).unwrap_or(u64::MAX)
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
        let tx = tx.map_or_else(|| "unknown".to_string(), |t| t.to_string());
        let block = block as i64;
        let update = if row.mode == "set_weights" {
            WeightUpdate::Set { tx, block }
        } else {
            WeightUpdate::Committed { tx, block }
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
        newest: bool,
    ) -> Result<(), ServiceError> {
        let mut backoff = self.config.initial_backoff;
        let mut row = row.clone();
        for attempt in 1..=self.config.submit_attempts.max(1) {
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
            let result = match self.commit_call(&row) {
                Ok(call) => self.send_commit(&row, call, hp).await,
                Err(error) => Err(SendError::Refused(error.to_string())),
            };
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
                    backoff = (backoff * 2).min(self.config.max_backoff);
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

    /// The `commit_weights` or `set_weights` call of a row.
    fn commit_call(&self, row: &WeightCommitRecord) -> Result<Call, ServiceError> {
        let netuid = self.config.netuid;
        let bad = |reason: String| ServiceError::BadRow {
            epoch: row.epoch,
            reason,
        };
        if row.mode == "set_weights" {
            return Ok(Call::SetWeights {
                netuid,
                dests: u16s(row.epoch, "uids", &row.uids)?,
                weights: u16s(row.epoch, "weights", &row.weights)?,
                version_key: u64::try_from(row.version_key)
                    .map_err(|_| bad("negative version key".into()))?,
            });
        }
        let hex_hash = row
            .commit_hash
            .as_deref()
            .ok_or_else(|| bad("commit_reveal row without a commit hash".into()))?;
        let commit_hash: [u8; 32] = hex::decode(hex_hash)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad(format!("commit hash {hex_hash:?} is not 32 bytes of hex")))?;
        Ok(Call::CommitWeights {
            netuid,
            commit_hash,
        })
    }

    /// Waits out the rate limit, then rules 1 and 3: sign, record, send, wait for inclusion.
    async fn send_commit(
        &self,
        row: &WeightCommitRecord,
        call: Call,
        hp: &Hyperparameters,
    ) -> Result<Inclusion, SendError> {
        let me = self
            .own_neuron()
            .await?
            .ok_or_else(|| SendError::Transient("the hotkey is not registered".into()))?;
        let limit = hp.weights_set_rate_limit;
        if limit > 0 && me.last_update > 0 {
            let allowed_at = me.last_update + limit;
            let head = self
                .clock
                .current_block()
                .await
                .map_err(ServiceError::from)?;
            if head < allowed_at {
                tracing::info!(
                    epoch = row.epoch,
                    last_update = me.last_update,
                    allowed_at,
                    "waiting for the weights rate limit"
                );
                self.clock
                    .wait_until(allowed_at)
                    .await
                    .map_err(ServiceError::from)?;
            }
        }
        self.send(row, call, Submission::Commit).await
    }

    /// Signs `call`, records its hash on the row, sends it and waits for its inclusion.
    async fn send(
        &self,
        row: &WeightCommitRecord,
        call: Call,
        which: Submission,
    ) -> Result<Inclusion, SendError> {
        let account = self.hotkey.account_id();
        let nonce = self
            .chain
            .account_next_nonce(&account)
            .await
            .map_err(classify)?;
        let genesis = self.chain.genesis_hash().await.map_err(classify)?;
        let head = self.clock.current_block().await.map_err(classify)?;
        let extrinsic = SignedExtrinsic::sign(call, nonce, &genesis.0, &self.hotkey);
        let tx = H256(Sha256::digest(parity_scale_codec::Encode::encode(&extrinsic)).into());
        db::record_submission(
            &self.pool,
            row.netuid,
            row.epoch,
            which,
            &tx.to_string(),
            head as i64,
        )
        .await?;
        match self.chain.submit_extrinsic(&extrinsic).await {
            Ok(_) => {}
            Err(ChainClientError::Rpc { code: c, .. }) if c == code::ALREADY_KNOWN => {}
            Err(error) => return Err(classify(error)),
        }
        tracing::info!(epoch = row.epoch, call = extrinsic.call.name(), %tx, nonce, "sent");
        if which == Submission::Commit {
            self.failpoint(Failpoint::AfterSend)?;
        }
        self.chain
            .wait_for_inclusion(tx, self.config.inclusion_timeout)
            .await
            .map_err(classify)
    }

    /// A `committed` row: reveal in its reveal epoch, expire after it.
    async fn settle_committed(
        &self,
        row: &WeightCommitRecord,
        hp: &Hyperparameters,
    ) -> Result<(), ServiceError> {
        if row.mode != "commit_reveal" {
            return Ok(());
        }
        let schedule = EpochSchedule::new(self.config.netuid, hp.tempo);
        let commit_block = row.commit_block.ok_or_else(|| ServiceError::BadRow {
            epoch: row.epoch,
            reason: "committed without a commit block".into(),
        })?;
        let reveal_epoch =
            schedule.epoch_of(u64::try_from(commit_block).unwrap_or(0)) + hp.commit_reveal_period;
        if let Some(tx) = &row.reveal_tx {
            let tx = parse_tx(row.epoch, tx)?;
            let included = match self.chain.tx_status(tx).await? {
                TxStatus::InBlock { block, .. } => Some(block),
                TxStatus::Pending => {
                    match self
                        .chain
                        .wait_for_inclusion(tx, self.config.inclusion_timeout)
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
                let update = WeightUpdate::Revealed {
                    tx: tx.to_string(),
                    block: block as i64,
                };
                self.update(row, &update).await?;
                return Ok(());
            }
        }
        let mut backoff = self.config.initial_backoff;
        for attempt in 1..=self.config.submit_attempts.max(1) {
            let head = self.clock.current_block().await?;
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
                netuid: self.config.netuid,
                uids: u16s(row.epoch, "uids", &row.uids)?,
                values: u16s(row.epoch, "weights", &row.weights)?,
                salt: u16s(row.epoch, "salt", &row.salt)?,
                version_key: u64::try_from(row.version_key).unwrap_or(0),
            };
            match self.send(row, call, Submission::Reveal).await {
                Ok(inclusion) => {
                    let update = WeightUpdate::Revealed {
                        tx: inclusion.tx.to_string(),
                        block: inclusion.block as i64,
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
                    backoff = (backoff * 2).min(self.config.max_backoff);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
