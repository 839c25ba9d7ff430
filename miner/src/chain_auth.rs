//! Who may call the miner: hotkeys registered on the subnet, and for validator-only routes
//! (`/v1/model/*`, `/v1/generate`, `/v1/rlhf/*`) hotkeys holding a validator permit: only
//! validators may download the model or run it, so a competing miner cannot fetch the leader's
//! artifact to copy it. Backed by a metagraph snapshot refreshed in
//! the background from any [`ChainClient`], and at once (at most once per
//! [`ON_DEMAND_MIN_INTERVAL`]) when a caller would be refused: a validator that gained its permit
//! at the last epoch is served without waiting for the next periodic refresh.

use std::{
    collections::HashSet,
    sync::{Arc, RwLock},
    time::Duration,
};

use tokio::sync::{Notify, watch};

use http::Method;
use subnet_common::{
    btauth::{Authorize, Caller, Forbidden},
    chain::{
        client::{ChainClient, ChainClientError},
        types::Metagraph,
    },
    keys::AccountId,
};

/// How often the metagraph snapshot is refreshed (one block on a production chain).
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(12);

/// Shortest time between two refreshes asked for by refused callers (one metagraph read per
/// interval at most, however many unregistered callers knock).
pub const ON_DEMAND_MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Longest pause between two attempts to reach a chain that is not up yet at start-up.
const MAX_START_RETRY: Duration = Duration::from_secs(30);

/// How long a caller about to be refused waits for that refresh before its 403.
const ON_DEMAND_WAIT: Duration = Duration::from_secs(3);

/// Path prefixes of routes only validators may call: the model's files and inference (a
/// competitor must not copy the artifact) and the label exchange.
pub const VALIDATOR_ONLY_PREFIXES: &[&str] = &["/v1/model/", "/v1/generate", "/v1/rlhf/"];

/// The chain's block time as the refreshes see it: the blocks of the last
/// [`BlockRate::WINDOW`] snapshots that moved the head, and when they were read.
#[derive(Debug, Clone, Default)]
pub struct BlockRate {
    seen: std::collections::VecDeque<(u64, std::time::Instant)>,
}

impl BlockRate {
    /// Snapshots kept.
    pub const WINDOW: usize = 16;

    /// Records that `block` was the head at `at` (ignored unless the head moved on).
    pub fn observe(&mut self, block: u64, at: std::time::Instant) {
        if self.seen.back().is_none_or(|&(last, _)| block > last) {
            self.seen.push_back((block, at));
            if self.seen.len() > Self::WINDOW {
                self.seen.pop_front();
            }
        }
    }

    /// Time per block over the window; `None` until the head has moved twice.
    pub fn block_time(&self) -> Option<Duration> {
        let (&(b0, t0), &(b1, t1)) = (self.seen.front()?, self.seen.back()?);
        let blocks = u32::try_from(b1.checked_sub(b0)?).ok().filter(|&n| n > 0)?;
        (self.seen.len() >= 3).then(|| t1.duration_since(t0) / blocks)
    }
}

/// The registered hotkeys of a subnet at one block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registry {
    /// Block the snapshot was read at.
    pub block: u64,
    /// Every registered hotkey.
    pub registered: HashSet<AccountId>,
    /// Hotkeys holding a validator permit.
    pub validators: HashSet<AccountId>,
}

impl Registry {
    /// Snapshot of a metagraph.
    pub fn from_metagraph(metagraph: &Metagraph) -> Self {
        Self {
            block: metagraph.block,
            registered: metagraph.neurons.iter().map(|n| n.hotkey).collect(),
            validators: metagraph
                .neurons
                .iter()
                .filter(|n| n.validator_permit)
                .map(|n| n.hotkey)
                .collect(),
        }
    }

    /// Why `caller` may not call `path`, or `None` when it may.
    pub fn refusal(&self, caller: &AccountId, path: &str) -> Option<Refusal> {
        if !self.registered.contains(caller) {
            return Some(Refusal::NotRegistered);
        }
        let validator_only = VALIDATOR_ONLY_PREFIXES.iter().any(|p| path.starts_with(p));
        (validator_only && !self.validators.contains(caller)).then_some(Refusal::NoPermit)
    }

    /// Whether `caller` may call `path`.
    pub fn check(&self, caller: &AccountId, path: &str, netuid: u16) -> Result<(), Forbidden> {
        match self.refusal(caller, path) {
            None => Ok(()),
            Some(Refusal::NotRegistered) => Err(Forbidden::new(format!(
                "hotkey {caller} is not registered on subnet {netuid} (as of block {})",
                self.block
            ))),
            Some(Refusal::NoPermit) => Err(Forbidden::new(format!(
                "hotkey {caller} holds no validator permit on subnet {netuid}; {path} is for validators"
            ))),
        }
    }
}

/// Why a verified caller is refused (403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The hotkey is not registered on the subnet.
    NotRegistered,
    /// The route is for validators and the hotkey holds no validator permit.
    NoPermit,
}

impl Refusal {
    /// The `reason` label of `miner_auth_refused_total`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::NotRegistered => "not_registered",
            Self::NoPermit => "no_permit",
        }
    }
}

/// [`Authorize`] hook answering from the latest [`Registry`] snapshot. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RegisteredCallers {
    netuid: u16,
    registry: Arc<RwLock<Registry>>,
    refresh: Arc<OnDemand>,
    /// The block time the refreshes measure.
    rate: Arc<std::sync::Mutex<BlockRate>>,
}

/// The refused callers' line to the refresh task.
#[derive(Debug)]
struct OnDemand {
    /// Asks the task for a refresh now.
    wake: Notify,
    /// Counts finished refresh attempts (successful or not).
    done: watch::Sender<u64>,
}

impl RegisteredCallers {
    /// Reads the metagraph once (so a wrong `--chain.url` or `--netuid` fails at start), then
    /// keeps the snapshot fresh every `interval` on a background task, and sooner when a caller
    /// would be refused. Refresh failures are logged and the last snapshot kept.
    pub async fn start<C: ChainClient + 'static>(
        chain: Arc<C>,
        netuid: u16,
        interval: Duration,
    ) -> Result<Self, ChainClientError> {
        // A miner may start before its chain (a devnet, a node restarting): wait for it, saying
        // so, instead of exiting. Only a chain that cannot be reached is waited for; one that
        // answers with an error (no such subnet, a bad response) is the caller's to see.
        let mut retry_in = Duration::from_secs(1);
        let first = loop {
            match chain.metagraph(netuid).await {
                Ok(metagraph) => break metagraph,
                Err(error @ ChainClientError::Transport { .. }) => {
                    tracing::warn!(
                        %error,
                        ?retry_in,
                        "the chain is not answering yet (is the devchain node running? check \
                         --chain.url); waiting for it"
                    );
                    tokio::time::sleep(retry_in).await;
                    retry_in = (retry_in * 2).min(MAX_START_RETRY);
                }
                Err(error) => return Err(error),
            }
        };
        let mut rate = BlockRate::default();
        rate.observe(first.block, std::time::Instant::now());
        let this = Self {
            netuid,
            rate: Arc::new(std::sync::Mutex::new(rate)),
            registry: Arc::new(RwLock::new(Registry::from_metagraph(&first))),
            refresh: Arc::new(OnDemand {
                wake: Notify::new(),
                done: watch::Sender::new(0),
            }),
        };
        let registry = Arc::downgrade(&this.registry);
        let refresh = Arc::clone(&this.refresh);
        let rate = Arc::clone(&this.rate);
        tokio::spawn(async move {
            // Every `interval`, or every block when blocks come faster (a devnet), so deadlines
            // are judged against a fresh head.
            let mut period = interval;
            let mut ticker = tokio::time::interval(period);
            ticker.tick().await;
            let mut last = tokio::time::Instant::now();
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    () = refresh.wake.notified() => {
                        tokio::time::sleep_until(last + ON_DEMAND_MIN_INTERVAL).await;
                    }
                }
                let Some(registry) = registry.upgrade() else {
                    return;
                };
                match chain.metagraph(netuid).await {
                    Ok(m) => {
                        let fresh = Registry::from_metagraph(&m);
                        if let Ok(mut slot) = registry.write() {
                            *slot = fresh;
                        }
                        let block_time = rate.lock().ok().and_then(|mut rate| {
                            rate.observe(m.block, std::time::Instant::now());
                            rate.block_time()
                        });
                        // Never slower than `interval`, never faster than the on-demand
                        // minimum unless `interval` itself is shorter (`clamp` needs min ≤ max).
                        let wanted = block_time.map_or(interval, |t| {
                            t.clamp(ON_DEMAND_MIN_INTERVAL.min(interval), interval)
                        });
                        if wanted != period {
                            period = wanted;
                            ticker = tokio::time::interval(period);
                            ticker.tick().await;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "metagraph refresh failed; keeping the last snapshot")
                    }
                }
                last = tokio::time::Instant::now();
                refresh.done.send_modify(|n| *n += 1);
            }
        });
        Ok(this)
    }

    /// The chain's block time as measured from the snapshots (`None` until measured).
    pub fn block_time(&self) -> Option<Duration> {
        self.rate.lock().ok().and_then(|rate| rate.block_time())
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Registry {
        self.registry.read().map(|r| r.clone()).unwrap_or_default()
    }

    fn check(&self, caller: &AccountId, path: &str) -> Result<(), (Forbidden, Option<Refusal>)> {
        let registry = self
            .registry
            .read()
            .map_err(|_| (Forbidden::new("caller registry unavailable"), None))?;
        registry
            .check(caller, path, self.netuid)
            .map_err(|forbidden| (forbidden, registry.refusal(caller, path)))
    }
}

impl Authorize for RegisteredCallers {
    async fn authorize(&self, caller: &Caller, _: &Method, path: &str) -> Result<(), Forbidden> {
        let refused = match self.check(&caller.hotkey, path) {
            Ok(()) => return Ok(()),
            Err(refused) => refused,
        };
        // The snapshot may predate the caller's registration or permit: ask for a fresh one.
        let mut done = self.refresh.done.subscribe();
        self.refresh.wake.notify_one();
        let checked = match tokio::time::timeout(ON_DEMAND_WAIT, done.changed()).await {
            Ok(Ok(())) => self.check(&caller.hotkey, path),
            _ => Err(refused),
        };
        checked.map_err(|(forbidden, refusal)| {
            crate::metrics::record_auth_refused(refusal.map_or("other", Refusal::reason));
            forbidden
        })
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_block_time_is_measured_from_snapshots_that_moved_the_head() {
        let t0 = std::time::Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut rate = BlockRate::default();
        rate.observe(100, at(0));
        assert_eq!(rate.block_time(), None);
        rate.observe(108, at(12_000));
        assert_eq!(rate.block_time(), None, "two snapshots are not enough");
        // A refresh that saw the same head, or an older one (another node), is ignored.
        rate.observe(108, at(13_000));
        rate.observe(90, at(13_500));
        rate.observe(116, at(24_000));
        assert_eq!(rate.block_time(), Some(Duration::from_millis(1500)));
        for i in 0..40 {
            rate.observe(116 + 2 * (i + 1), at(24_000 + 6_000 * (i + 1)));
        }
        assert_eq!(
            rate.block_time(),
            Some(Duration::from_secs(3)),
            "the window moved on"
        );
    }

    use super::*;

    fn key(n: u8) -> AccountId {
        AccountId([n; 32])
    }

    fn registry() -> Registry {
        Registry {
            block: 7,
            registered: [key(1), key(2)].into_iter().collect(),
            validators: [key(2)].into_iter().collect(),
        }
    }

    #[test]
    fn only_validators_may_download_or_run_the_model() {
        // A registered miner (a competitor) may ask who we are, not take the model.
        assert!(registry().check(&key(1), "/v1/identity", 1).is_ok());
        for path in [
            "/v1/model/manifest",
            "/v1/model/files/model.safetensors",
            "/v1/generate",
        ] {
            let err = registry().check(&key(1), path, 1).expect_err(path);
            assert!(err.to_string().contains("validator permit"), "{err}");
            assert!(registry().check(&key(2), path, 1).is_ok(), "{path}");
        }
    }

    #[test]
    fn unregistered_caller_is_forbidden_with_a_reason() {
        let err = registry()
            .check(&key(9), "/v1/identity", 3)
            .expect_err("forbidden");
        assert!(
            err.to_string().contains("not registered on subnet 3"),
            "{err}"
        );
    }

    #[test]
    fn refusals_carry_the_reason_metrics_count_them_by() {
        assert_eq!(
            registry().refusal(&key(9), "/v1/identity"),
            Some(Refusal::NotRegistered)
        );
        assert_eq!(
            registry().refusal(&key(1), "/v1/generate"),
            Some(Refusal::NoPermit)
        );
        assert_eq!(registry().refusal(&key(2), "/v1/generate"), None);
        assert_eq!(Refusal::NoPermit.reason(), "no_permit");
        assert_eq!(Refusal::NotRegistered.reason(), "not_registered");
    }

    #[test]
    fn rlhf_routes_need_a_validator_permit() {
        assert!(registry().check(&key(1), "/v1/rlhf/tasks", 1).is_err());
        assert!(registry().check(&key(2), "/v1/rlhf/tasks", 1).is_ok());
    }
}
