//! The RLHF label track on the miner: validators send task batches (`routes::rlhf`), the
//! operator's labelers answer them in a server-rendered web form, validators collect the labels.
//!
//! | module | what |
//! |---|---|
//! | [`pages`] | the askama templates of the form (`miner/templates/label/`), served by [`crate::routes::label`]: sign-in from a one-time link, cookie sessions, one task at a time, CSRF |
//! | [`cli`] | `miner labelers add / link / list / disable / simulate` |
//! | [`simulate`] | a simulated labeler answering through the same HTTP form a browser uses |
//!
//! Everything here needs Postgres (`--db.url`); a miner started without it serves its model and
//! answers the label routes with 404 "this miner collects no labels".

pub mod cli;
pub mod pages;
pub mod simulate;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use rand::RngCore;
use sqlx::PgPool;

/// The message of every label route on a miner started without a database.
pub const NO_LABELS: &str = "this miner collects no labels (started without --db.url)";

/// Name of the labeler form's session cookie.
pub const SESSION_COOKIE: &str = "miner_label_session";

/// Longest note a labeler may add to an answer, in characters.
pub const MAX_NOTE_CHARS: usize = 2000;

/// How long a sign-in link works (it works once).
pub const LINK_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Where the current chain block comes from: deadlines are blocks.
pub trait BlockClock: Send + Sync + 'static {
    /// The chain's current block, or `None` when the miner runs without a chain (then every
    /// deadline counts as open).
    fn current_block(&self) -> Option<u64>;

    /// The chain's measured time per block, when known (deadlines are shown in minutes with it).
    fn block_time(&self) -> Option<Duration> {
        None
    }
}

/// No chain (`--insecure-no-chain`): the block is unknown.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoChain;

impl BlockClock for NoChain {
    fn current_block(&self) -> Option<u64> {
        None
    }
}

/// The block of the metagraph snapshot the caller check already keeps fresh.
impl BlockClock for crate::chain_auth::RegisteredCallers {
    fn current_block(&self) -> Option<u64> {
        Some(self.snapshot().block)
    }

    fn block_time(&self) -> Option<Duration> {
        crate::chain_auth::RegisteredCallers::block_time(self)
    }
}

/// A block number set by hand (tests, tools).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock at `block`.
    pub fn at(block: u64) -> Self {
        Self(AtomicU64::new(block))
    }

    /// Moves the clock to `block`.
    pub fn set(&self, block: u64) {
        self.0.store(block, Ordering::SeqCst);
    }
}

impl BlockClock for ManualClock {
    fn current_block(&self) -> Option<u64> {
        Some(self.0.load(Ordering::SeqCst))
    }
}

/// Limits on what a validator may send in one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most tasks in one batch (more: 413).
    pub max_tasks: usize,
    /// Longest prompt or answer, in bytes (longer: 413).
    pub max_text_bytes: usize,
    /// Longest `batch_id` or `task_id`, in bytes (longer: 400).
    pub max_id_bytes: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self {
            max_tasks: 256,
            max_text_bytes: 8 * 1024,
            max_id_bytes: 128,
        }
    }
}

/// Settings of the label track.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabelingConfig {
    /// Time per block assumed until the chain's is measured ([`BlockClock::block_time`]), to
    /// show deadlines in minutes as well as blocks.
    pub block_time: Duration,
    /// How long a browser session lasts after sign-in.
    pub session_ttl: Duration,
    /// Batch limits.
    pub limits: BatchLimits,
    /// Characters a person reads per second at most: a label given in less time than the prompt
    /// and both answers take to read at this speed is kept on the miner but not sent to
    /// validators. 0: no floor.
    pub reading_speed: f64,
}

/// Default [`LabelingConfig::reading_speed`]: 50 characters a second, about 600 words a minute,
/// faster than people read.
pub const DEFAULT_READING_SPEED: f64 = 50.0;

impl Default for LabelingConfig {
    fn default() -> Self {
        Self {
            block_time: Duration::from_secs(12),
            session_ttl: Duration::from_secs(24 * 3600),
            limits: BatchLimits::default(),
            reading_speed: DEFAULT_READING_SPEED,
        }
    }
}

impl LabelingConfig {
    /// The defaults without a reading floor: for simulations and tests, whose labelers answer at
    /// once.
    pub fn without_reading_floor() -> Self {
        Self {
            reading_speed: 0.0,
            ..Self::default()
        }
    }
}

/// What the label routes share: the database, the chain's block and the settings.
#[derive(Clone)]
pub struct Labeling {
    /// Batches, labelers, sessions and labels.
    pub pool: PgPool,
    /// The current block, for deadlines.
    pub clock: Arc<dyn BlockClock>,
    /// Settings.
    pub config: LabelingConfig,
}

impl std::fmt::Debug for Labeling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Labeling")
            .field("block", &self.clock.current_block())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A fresh random secret (256 bits from the OS), hex: sign-in tokens, session ids, CSRF tokens.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The sign-in link for a token, under the miner's public base URL.
pub fn login_link(base_url: &str, token: &str) -> String {
    format!(
        "{}/label/login?token={token}",
        base_url.trim_end_matches('/')
    )
}

/// Whether `name` is acceptable as a labeler name: 1–64 of `A-Z a-z 0-9 _ - .`.
pub fn valid_labeler_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_and_different() {
        let (a, b) = (new_secret(), new_secret());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }

    #[test]
    fn login_links_ignore_a_trailing_slash() {
        assert_eq!(
            login_link("http://h:1/", "ab"),
            "http://h:1/label/login?token=ab"
        );
    }

    #[test]
    fn labeler_names_are_short_plain_words() {
        assert!(valid_labeler_name("ann.b-2_x"));
        assert!(!valid_labeler_name(""));
        assert!(!valid_labeler_name("a b"));
        assert!(!valid_labeler_name("<script>"));
        assert!(!valid_labeler_name(&"x".repeat(65)));
    }

    #[test]
    fn a_manual_clock_moves_when_set() {
        let clock = ManualClock::at(3);
        clock.set(9);
        assert_eq!(clock.current_block(), Some(9));
        assert_eq!(NoChain.current_block(), None);
    }
}
