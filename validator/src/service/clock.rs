//! Block time: the epoch loop asks a [`BlockClock`] for the current block and waits on it, so
//! tests can drive time by hand ([`ManualClock`]) while a validator follows the chain
//! ([`ChainClock`]). Each head a [`ChainClock`] reads sets `validator_chain_head_lag_seconds`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use subnet_common::chain::client::{ChainClient, ChainClientError};
use subnet_common::chain::rpc::HeaderView;
use tokio::sync::watch;

/// The chain's block height as the loop sees it.
pub trait BlockClock: Send + Sync {
    /// The current best block.
    fn current_block(&self) -> impl Future<Output = Result<u64, ChainClientError>> + Send;

    /// Resolves once the best block is at least `block`; returns that best block.
    fn wait_until(&self, block: u64) -> impl Future<Output = Result<u64, ChainClientError>> + Send;
}

/// Follows a chain by polling its head. Transient errors are retried with exponential backoff
/// (up to [`ChainClock::max_backoff`]); each request carries the client's own timeout.
#[derive(Debug)]
pub struct ChainClock<C> {
    chain: Arc<C>,
    /// Time between two polls of the head while waiting.
    pub poll: Duration,
    /// Longest pause between retries after an error.
    pub max_backoff: Duration,
}

impl<C: ChainClient> ChainClock<C> {
    /// A clock over `chain` polling every `poll`.
    pub fn new(chain: Arc<C>, poll: Duration) -> Self {
        Self {
            chain,
            poll,
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Records how old `head` is by the system clock as `validator_chain_head_lag_seconds`.
fn note_head(head: &HeaderView) {
    let now_ms = crate::web::now_ms();
    crate::metrics::set_chain_head_lag((now_ms as f64 - head.timestamp as f64) / 1000.0);
}

impl<C: ChainClient> BlockClock for ChainClock<C> {
    async fn current_block(&self) -> Result<u64, ChainClientError> {
        let head = self.chain.head().await?;
        note_head(&head);
        Ok(head.number)
    }

    async fn wait_until(&self, block: u64) -> Result<u64, ChainClientError> {
        let mut backoff = self.poll;
        loop {
            let head = self.chain.head().await;
            if let Ok(head) = &head {
                note_head(head);
            }
            match head {
                Ok(head) if head.number >= block => return Ok(head.number),
                Ok(_) => {
                    backoff = self.poll;
                    tokio::time::sleep(self.poll).await;
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?backoff, "reading the chain head failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.max_backoff);
                }
            }
        }
    }
}

/// A clock a test moves by hand with [`ManualClock::set`].
#[derive(Debug, Clone)]
pub struct ManualClock {
    block: Arc<watch::Sender<u64>>,
}

impl ManualClock {
    /// A clock at `block`.
    pub fn new(block: u64) -> Self {
        Self {
            block: Arc::new(watch::Sender::new(block)),
        }
    }

    /// Moves the clock to `block` (it may go anywhere; waiters wake when it reaches theirs).
    pub fn set(&self, block: u64) {
        self.block.send_replace(block);
    }
}

impl BlockClock for ManualClock {
    async fn current_block(&self) -> Result<u64, ChainClientError> {
        Ok(*self.block.borrow())
    }

    async fn wait_until(&self, block: u64) -> Result<u64, ChainClientError> {
        let mut rx = self.block.subscribe();
        let reached = rx
            .wait_for(|b| *b >= block)
            .await
            .map(|b| *b)
            .unwrap_or(block);
        Ok(reached)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_clock_wakes_waiters_when_their_block_comes() {
        let clock = ManualClock::new(3);
        assert_eq!(clock.current_block().await.unwrap(), 3);
        assert_eq!(clock.wait_until(2).await.unwrap(), 3);
        let waiter = {
            let clock = clock.clone();
            tokio::spawn(async move { clock.wait_until(10).await.unwrap() })
        };
        clock.set(9);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        clock.set(12);
        assert_eq!(waiter.await.unwrap(), 12);
    }
}
