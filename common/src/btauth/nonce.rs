//! Replay memory: which (hotkey, nonce) pairs were accepted inside the freshness window.
//!
//! Bounded in time and in size:
//! - **Time.** An entry is needed only while its nonce could still pass the freshness check, so it
//!   is dropped once `now − nonce > retention` (the verifier sets retention to max age + allowed
//!   skew, a little more than the window).
//! - **Size.** At most `capacity` entries in all. When a shard is full the entry with the oldest
//!   nonce is evicted and the shard remembers that nonce as its *watermark*; from then on it
//!   refuses every nonce at or below the watermark ([`NonceRejection::OutsideWindow`], reported as
//!   a stale request). So a flood shrinks the effective window instead of forgetting: a replay is
//!   never accepted, and honest senders with fresh nonces keep getting through.
//!
//! Entries are spread over shards by a per-process random hash of (hotkey, nonce), each behind its
//! own mutex, so concurrent requests rarely contend and nobody can aim traffic at one shard.

use std::collections::BTreeSet;
use std::hash::BuildHasher;
use std::sync::{Mutex, PoisonError};

use crate::keys::AccountId;

/// Number of independently locked shards.
const SHARDS: usize = 16;

/// Default total capacity: about 16 MiB of entries, far more than one core can verify in a window.
pub const DEFAULT_CAPACITY: usize = 1 << 18;

/// Why [`NonceStore::check_and_store`] refused a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NonceRejection {
    /// The pair was already stored.
    #[error("nonce already accepted from this hotkey")]
    Replayed,
    /// The store is full and the nonce is not newer than what it had to evict.
    #[error("nonce is older than the oldest one the store still remembers")]
    OutsideWindow,
}

/// One shard: entries ordered by nonce, so expiry and eviction pop from the front.
#[derive(Debug, Default)]
struct Shard {
    entries: BTreeSet<(u64, [u8; 32])>,
    /// Largest nonce evicted for lack of space; nonces at or below it are refused.
    watermark: Option<u64>,
}

/// Thread-safe, bounded set of accepted (hotkey, nonce) pairs. See the module docs.
#[derive(Debug)]
pub struct NonceStore {
    shards: Box<[Mutex<Shard>]>,
    shard_capacity: usize,
    retention_ns: u64,
    hasher: std::collections::hash_map::RandomState,
}

impl NonceStore {
    /// A store that keeps entries for `retention_ns` after their nonce and holds at most
    /// `capacity` entries (rounded up to a multiple of the shard count, at least one per shard).
    pub fn new(retention_ns: u64, capacity: usize) -> Self {
        let shard_capacity = capacity.div_ceil(SHARDS).max(1);
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            shard_capacity,
            retention_ns,
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    /// The most entries the store will hold.
    pub fn capacity(&self) -> usize {
        self.shard_capacity * SHARDS
    }

    /// Entries currently held (including expired ones not yet dropped).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).entries.len()).sum()
    }

    /// True when no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records `(hotkey, nonce_ns)` if it is new; refuses it if it was already recorded or if the
    /// store, being full, no longer covers it. Drops expired entries of the shard on the way.
    pub fn check_and_store(
        &self,
        hotkey: &AccountId,
        nonce_ns: u64,
        now_ns: u64,
    ) -> Result<(), NonceRejection> {
        let index = (self.hasher.hash_one((hotkey.as_bytes(), nonce_ns)) % SHARDS as u64) as usize;
        let mut shard = lock(&self.shards[index]);
        let horizon = now_ns.saturating_sub(self.retention_ns);
        while let Some(&(oldest, _)) = shard.entries.first() {
            if oldest >= horizon {
                break;
            }
            shard.entries.pop_first();
        }
        if shard.watermark.is_some_and(|mark| nonce_ns <= mark) {
            return Err(NonceRejection::OutsideWindow);
        }
        let key = (nonce_ns, *hotkey.as_bytes());
        if shard.entries.contains(&key) {
            return Err(NonceRejection::Replayed);
        }
        if shard.entries.len() >= self.shard_capacity {
            if shard.entries.first().is_some_and(|&first| key < first) {
                // It would be the one evicted: refuse rather than forget it at once.
                return Err(NonceRejection::OutsideWindow);
            }
            if let Some((evicted, _)) = shard.entries.pop_first() {
                shard.watermark = Some(shard.watermark.map_or(evicted, |m| m.max(evicted)));
            }
        }
        shard.entries.insert(key);
        Ok(())
    }
}

/// Locks a shard; a panic while holding it cannot leave the set inconsistent, so poison is ignored.
fn lock(shard: &Mutex<Shard>) -> std::sync::MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;
    const T0: u64 = 1_764_000_000 * SECOND;

    fn key(n: u8) -> AccountId {
        AccountId([n; 32])
    }

    #[test]
    fn second_store_of_the_same_pair_is_a_replay() {
        let store = NonceStore::new(12 * SECOND, 100);
        assert_eq!(store.check_and_store(&key(1), T0, T0), Ok(()));
        assert_eq!(
            store.check_and_store(&key(1), T0, T0 + SECOND),
            Err(NonceRejection::Replayed)
        );
        assert_eq!(store.check_and_store(&key(2), T0, T0), Ok(()));
        assert_eq!(store.check_and_store(&key(1), T0 + 1, T0), Ok(()));
    }

    #[test]
    fn entries_expire_after_the_retention() {
        let store = NonceStore::new(12 * SECOND, 10_000);
        for n in 0..20 {
            store.check_and_store(&key(n), T0, T0).unwrap();
        }
        assert_eq!(store.len(), 20);
        // Each shard drops its expired entries when next touched; 1000 random touches reach all.
        let later = T0 + 12 * SECOND + 1;
        for i in 0..1000 {
            store.check_and_store(&key(99), later + i, later).unwrap();
        }
        assert_eq!(store.len(), 1000);
        // Entries exactly at the retention edge are kept.
        let edge = store.check_and_store(&key(99), later, later + 12 * SECOND);
        assert_eq!(edge, Err(NonceRejection::Replayed));
    }

    #[test]
    fn full_store_evicts_the_oldest_and_refuses_anything_not_newer() {
        // Capacity 16 = one entry per shard.
        let store = NonceStore::new(12 * SECOND, 16);
        assert_eq!(store.capacity(), 16);
        let mut accepted = Vec::new();
        for i in 0..1000u64 {
            let hotkey = key((i % 251) as u8);
            if store.check_and_store(&hotkey, T0 + i, T0).is_ok() {
                accepted.push((hotkey, T0 + i));
            }
        }
        assert!(store.len() <= 16, "holds {}", store.len());
        // Every nonce with strictly increasing values is accepted: eviction makes room.
        assert_eq!(accepted.len(), 1000);
        // No accepted pair can be replayed, evicted or not.
        for (hotkey, nonce) in accepted {
            assert!(store.check_and_store(&hotkey, nonce, T0).is_err());
        }
        // An old nonce never seen before is refused as outside the window, not forgotten.
        let mut outside = 0;
        for n in 0..50u8 {
            if store.check_and_store(&key(n), T0 + 500, T0) == Err(NonceRejection::OutsideWindow) {
                outside += 1;
            }
        }
        assert_eq!(outside, 50);
    }

    #[test]
    fn concurrent_stores_accept_each_pair_exactly_once() {
        let store = std::sync::Arc::new(NonceStore::new(12 * SECOND, 100_000));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || {
                    (0..2000u64)
                        .filter(|i| {
                            store
                                .check_and_store(&key((i % 7) as u8), T0 + i, T0)
                                .is_ok()
                        })
                        .count()
                })
            })
            .collect();
        let total: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(total, 2000);
        assert_eq!(store.len(), 2000);
    }
}
