//! Building each label miner's batch of comparison tasks (pure: seeds in, batches out).
//!
//! Two kinds of answer pairs:
//! - **open pairs**: a generated prompt and two different answers written by the top models
//!   (asked through an [`AnswerSource`]); nobody knows the better one in advance;
//! - **known pairs**: a generated prompt, its correct completion and a [`near_miss`].
//!
//! Each miner's batch ([`build_batch`]) has `known_count` known pairs and the rest open pairs.
//! By default every pair of a batch is the miner's **own** ([`build_own_pool`], from its
//! [`miner_seed`]): no other hotkey is sent it, so one person's answers replayed on other hotkeys
//! answer nothing there, and a hotkey is paid only for labels no other hotkey could copy. With
//! `shared_share > 0` that share of each kind comes from the epoch's **shared** pools
//! ([`build_pool`], from the [`track_seed`]; each miner its own draw without replacement, so a
//! shared pair is seen by several miners: agreement for the export); shared pairs are not paid
//! ([`super::score`]). The batch is shuffled, and each pair's A/B positions swapped at random.
//! Every task carries an opaque id of the same shape and answers normalized the same way
//! ([`normalize_answer`]): nothing on the wire tells a known pair from an open one. The truth
//! (which pair, which side is the correct one) stays in [`SentTask`], on the validator.
//!
//! The track seed mixes a validator secret into the public epoch seed: without it a miner could
//! re-run this code and find the known pairs. The secret is stored with the batches, so the
//! epoch can still be recomputed afterwards.

use std::collections::BTreeSet;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subnet_common::keys::AccountId;
use subnet_common::protocol::{Choice, RlhfTask, RlhfTaskBatch};
use subnet_model::competition::derive_seed;
use subnet_model::tasks::{self, Example, TaskMix, near_miss, seeded_rng, shuffle, uniform_below};

/// The purpose string of [`derive_seed`] for the label track.
pub const PURPOSE: &str = "labels";

/// Default tasks sent to each label miner per epoch.
pub const DEFAULT_TASKS_PER_MINER: usize = 20;

/// Default share of known-answer tasks in a batch.
pub const DEFAULT_KNOWN_SHARE: f64 = 0.3;

/// Default number of pairs in each pool per pair a batch takes of that kind.
pub const DEFAULT_POOL_FACTOR: usize = 2;

/// Default longest answer shown to a labeler, in characters.
pub const DEFAULT_MAX_ANSWER_CHARS: usize = 200;

/// Default share of each batch's known and open pairs taken from the shared pools: none, so
/// nothing a hotkey is paid for can be copied from another's batch.
pub const DEFAULT_SHARED_SHARE: f64 = 0.0;

/// Default most prompts the validator's models answer per epoch for the miners' own open pairs
/// (each takes a few generations): beyond it, each miner gets fewer own open pairs and more
/// known ones.
pub const DEFAULT_MAX_OWN_OPEN_PROMPTS: usize = 64;

/// Writes candidate answers for prompts: in production the top models run locally
/// ([`super::answers::ModelAnswers`]); tests pass fixed answers.
pub trait AnswerSource: Send + Sync {
    /// For each prompt (same order), the answers the source can give. Two different answers of
    /// one prompt make an open pair; prompts with fewer are not used. May block (runs models).
    fn answers(&self, prompts: &[String]) -> Vec<Vec<String>>;
}

/// Any `Fn(&str) -> Vec<String>` answers prompt by prompt.
impl<F> AnswerSource for F
where
    F: Fn(&str) -> Vec<String> + Send + Sync,
{
    fn answers(&self, prompts: &[String]) -> Vec<Vec<String>> {
        prompts.iter().map(|p| self(p)).collect()
    }
}

/// How batches are made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchSettings {
    /// Tasks per miner per epoch.
    pub tasks_per_miner: usize,
    /// Share of known-answer tasks, in [0, 1]; rounded to a whole number of tasks.
    pub known_share: f64,
    /// Shared pool size per shared batch slot of each kind (≥ 1); above 1, miners see
    /// overlapping subsets.
    pub pool_factor: usize,
    /// Answers are cut to this many characters.
    pub max_answer_chars: usize,
    /// Share of each kind (known, open) drawn from the shared pools, in [0, 1]; the rest are the
    /// miner's own pairs.
    #[serde(default)]
    pub shared_share: f64,
    /// Most own open prompts per epoch over all miners (the generation budget), split evenly.
    #[serde(default = "default_max_own_open")]
    pub max_own_open_prompts: usize,
}

fn default_max_own_open() -> usize {
    DEFAULT_MAX_OWN_OPEN_PROMPTS
}

impl Default for BatchSettings {
    fn default() -> Self {
        Self {
            tasks_per_miner: DEFAULT_TASKS_PER_MINER,
            known_share: DEFAULT_KNOWN_SHARE,
            pool_factor: DEFAULT_POOL_FACTOR,
            max_answer_chars: DEFAULT_MAX_ANSWER_CHARS,
            shared_share: DEFAULT_SHARED_SHARE,
            max_own_open_prompts: DEFAULT_MAX_OWN_OPEN_PROMPTS,
        }
    }
}

impl BatchSettings {
    /// Known-answer tasks per batch: `round(tasks_per_miner · known_share)`.
    pub fn known_count(&self) -> usize {
        let share = if self.known_share.is_finite() {
            self.known_share.clamp(0.0, 1.0)
        } else {
            0.0
        };
        ((self.tasks_per_miner as f64 * share).round() as usize).min(self.tasks_per_miner)
    }

    /// Open tasks per batch (when the open pools have enough pairs).
    pub fn open_count(&self) -> usize {
        self.tasks_per_miner - self.known_count()
    }

    /// `round(n · shared_share)`, at most `n`.
    fn shared_of(&self, n: usize) -> usize {
        let share = if self.shared_share.is_finite() {
            self.shared_share.clamp(0.0, 1.0)
        } else {
            0.0
        };
        ((n as f64 * share).round() as usize).min(n)
    }

    /// Known tasks per batch from the shared pool.
    pub fn shared_known(&self) -> usize {
        self.shared_of(self.known_count())
    }

    /// Open tasks per batch from the shared pool.
    pub fn shared_open(&self) -> usize {
        self.shared_of(self.open_count())
    }

    /// Own open prompts per miner when `miners` miners are sent batches: the rest of the open
    /// share, within an even split of [`BatchSettings::max_own_open_prompts`].
    pub fn own_open(&self, miners: usize) -> usize {
        let wanted = self.open_count() - self.shared_open();
        wanted.min(self.max_own_open_prompts / miners.max(1))
    }
}

/// One answer pair of the epoch, in its canonical orientation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pair {
    /// Id within the epoch (`k3`, `o12`); never sent to miners.
    pub id: String,
    /// The prompt.
    pub prompt: String,
    /// First answer; for a known pair, the correct one.
    pub first: String,
    /// Second answer; for a known pair, the near-miss.
    pub second: String,
    /// Whether the better answer is known.
    pub known: bool,
    /// Whether it is in the shared pool (other miners may be sent it).
    pub shared: bool,
}

/// Pairs to build batches from: the epoch's shared pool, or one miner's own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PairPool {
    /// Correct completion versus a near-miss.
    pub known: Vec<Pair>,
    /// Two different model answers.
    pub open: Vec<Pair>,
}

/// A pair's answer as a label says it, in the pair's canonical orientation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vote {
    /// The pair's first answer is better.
    First,
    /// The second is better.
    Second,
    /// Neither.
    Tie,
}

impl Vote {
    /// The vote of `choice` on a task whose pair was shown `swapped` (first answer as B).
    pub fn of(choice: Choice, swapped: bool) -> Self {
        match (choice, swapped) {
            (Choice::Tie, _) => Self::Tie,
            (Choice::A, false) | (Choice::B, true) => Self::First,
            (Choice::A, true) | (Choice::B, false) => Self::Second,
        }
    }
}

/// One task as sent, with the truth kept on the validator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentTask {
    /// What the miner sees.
    pub task: RlhfTask,
    /// [`Pair::id`] of the pair behind it.
    pub pair_id: String,
    /// Whether it is a known-answer task.
    pub known: bool,
    /// True when the pair's first answer is shown as B.
    pub swapped: bool,
    /// Whether the pair is from the shared pool (batches built before own pairs were all shared).
    #[serde(default = "shared_by_default")]
    pub shared: bool,
}

fn shared_by_default() -> bool {
    true
}

impl SentTask {
    /// The pair's vote for a miner's choice on this task.
    pub fn vote(&self, choice: Choice) -> Vote {
        Vote::of(choice, self.swapped)
    }

    /// The right choice of a known-answer task (`None` for open ones).
    pub fn correct(&self) -> Option<Choice> {
        self.known
            .then_some(if self.swapped { Choice::B } else { Choice::A })
    }
}

/// One miner's batch: the wire batch and the hidden truth of each task, in sending order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinerBatch {
    /// Id of the batch.
    pub batch_id: String,
    /// Labels after this block are not collected.
    pub deadline_block: u64,
    /// The tasks, in the order sent.
    pub tasks: Vec<SentTask>,
}

impl MinerBatch {
    /// The body of `POST /v1/rlhf/tasks`.
    pub fn wire(&self) -> RlhfTaskBatch {
        RlhfTaskBatch {
            batch_id: self.batch_id.clone(),
            deadline_block: self.deadline_block,
            tasks: self.tasks.iter().map(|t| t.task.clone()).collect(),
        }
    }
}

/// `sha256(derive_seed(epoch_seed, "labels") ‖ secret)`: the seed of everything in an epoch's
/// label track.
pub fn track_seed(epoch_seed: [u8; 32], secret: [u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(derive_seed(epoch_seed, PURPOSE));
    hasher.update(secret);
    hasher.finalize().into()
}

/// The seed of one miner's batch: `sha256(track_seed ‖ hotkey)`.
pub fn miner_seed(track_seed: [u8; 32], hotkey: &AccountId) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(track_seed);
    hasher.update(hotkey.as_bytes());
    hasher.finalize().into()
}

/// The prompts of the shared open pool.
pub fn open_prompts(track_seed: [u8; 32], mix: &TaskMix, settings: &BatchSettings) -> Vec<Example> {
    let n = settings.shared_open() * settings.pool_factor.max(1);
    tasks::generate(derive_seed(track_seed, "labels/open"), mix, n)
}

/// The prompts of one miner's own open pairs when `miners` miners are sent batches
/// ([`BatchSettings::own_open`] of them).
pub fn own_prompts(
    miner_seed: [u8; 32],
    mix: &TaskMix,
    settings: &BatchSettings,
    miners: usize,
) -> Vec<Example> {
    let n = settings.own_open(miners);
    tasks::generate(derive_seed(miner_seed, "labels/open"), mix, n)
}

/// An answer as shown: its first line without control characters (a model can emit byte 0,
/// which Postgres text refuses), trimmed, cut to `max_chars` characters.
pub fn normalize_answer(text: &str, max_chars: usize) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    line.chars()
        .filter(|c| !c.is_control())
        .take(max_chars)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// The longest model answer kept for `example`'s prompt: twice its correct completion (at least
/// 4 characters more), at most `max`, so model answers have the length of the known pairs'
/// answers and a rambling model does not mark a task as open.
pub fn open_answer_chars(example: &Example, max: usize) -> usize {
    let len = example.completion.chars().count();
    (len * 2).max(len + 4).min(max)
}

/// The epoch's shared pools: known pairs drawn from the track seed; open pairs from `prompts`
/// (from [`open_prompts`]) and `answers` (the source's answers to them, same order). A prompt
/// with fewer than two different non-empty answers (cut to [`open_answer_chars`]) gives no open
/// pair; when two or more remain, two are picked by the seed.
pub fn build_pool(
    track_seed: [u8; 32],
    mix: &TaskMix,
    settings: &BatchSettings,
    prompts: &[Example],
    answers: &[Vec<String>],
) -> PairPool {
    let known_n = settings.shared_known() * settings.pool_factor.max(1);
    pool(track_seed, mix, settings, prompts, answers, known_n, None)
}

/// One miner's own pairs, from its [`miner_seed`]: open pairs from `prompts` (from
/// [`own_prompts`]) and `answers`, and enough known pairs to fill its batch when open pairs are
/// short. Pair ids start with `x` and 8 hex digits of the seed, so they are the miner's alone.
pub fn build_own_pool(
    miner_seed: [u8; 32],
    mix: &TaskMix,
    settings: &BatchSettings,
    prompts: &[Example],
    answers: &[Vec<String>],
) -> PairPool {
    // Enough to fill the whole batch when the shared and open pairs are short.
    let known_n = settings.tasks_per_miner;
    let prefix = format!("x{}-", hex::encode(&miner_seed[..4]));
    pool(
        miner_seed,
        mix,
        settings,
        prompts,
        answers,
        known_n,
        Some(prefix),
    )
}

/// A pool from `seed`: `known_n` known pairs, open pairs from `prompts` and `answers`; ids
/// prefixed with `own_prefix` for a miner's own pool (shared otherwise).
fn pool(
    seed: [u8; 32],
    mix: &TaskMix,
    settings: &BatchSettings,
    prompts: &[Example],
    answers: &[Vec<String>],
    known_n: usize,
    own_prefix: Option<String>,
) -> PairPool {
    let max = settings.max_answer_chars;
    let shared = own_prefix.is_none();
    let prefix = own_prefix.unwrap_or_default();
    let mut rng = seeded_rng(derive_seed(seed, "labels/near-miss"));
    let known = tasks::generate(derive_seed(seed, "labels/known"), mix, known_n)
        .into_iter()
        .enumerate()
        .map(|(i, example)| {
            let first = normalize_answer(&example.completion, max);
            let mut second = normalize_answer(&near_miss(&example, &mut rng), max);
            if second == first {
                // Only when cutting made them equal; keep the pair two different answers.
                second.push('?');
            }
            Pair {
                id: format!("{prefix}k{i}"),
                prompt: example.prompt,
                first,
                second,
                known: true,
                shared,
            }
        })
        .collect();
    let mut rng = seeded_rng(derive_seed(seed, "labels/open-pairs"));
    let open = prompts
        .iter()
        .zip(answers)
        .enumerate()
        .filter_map(|(i, (example, candidates))| {
            let cap = open_answer_chars(example, max);
            let distinct: BTreeSet<String> = candidates
                .iter()
                .map(|a| normalize_answer(a, cap))
                .filter(|a| !a.is_empty())
                .collect();
            let mut distinct: Vec<String> = distinct.into_iter().collect();
            if distinct.len() < 2 {
                return None;
            }
            shuffle(&mut distinct, &mut rng);
            Some(Pair {
                id: format!("{prefix}o{i}"),
                prompt: example.prompt.clone(),
                first: distinct.swap_remove(0),
                second: distinct.swap_remove(0),
                known: false,
                shared,
            })
        })
        .collect();
    PairPool { known, open }
}

/// `k` distinct indices below `n` (all of them when `k ≥ n`), in draw order.
fn pick<R: RngCore>(rng: &mut R, n: usize, k: usize) -> Vec<usize> {
    let mut all: Vec<usize> = (0..n).collect();
    shuffle(&mut all, rng);
    all.truncate(k);
    all
}

/// A 16-hex-digit id from the stream.
fn hex_id<R: RngCore>(rng: &mut R) -> String {
    format!("{:016x}", rng.next_u64())
}

/// One miner's batch, seeded by [`miner_seed`]: from the `shared` pools `shared_known` known and
/// `shared_open` open pairs (fewer when a pool is short), then from its `own` pool open pairs up
/// to `open_count` and known pairs up to `tasks_per_miner` (known pairs fill in when open pairs
/// are short), in shuffled order with each pair's sides swapped at random, ids fresh from the
/// seed.
pub fn build_batch(
    shared: &PairPool,
    own: &PairPool,
    settings: &BatchSettings,
    miner_seed: [u8; 32],
    epoch: u64,
    deadline_block: u64,
) -> MinerBatch {
    let mut rng = seeded_rng(miner_seed);
    let open_s = settings.shared_open().min(shared.open.len());
    let known_s = settings.shared_known().min(shared.known.len());
    let open_o = (settings.open_count() - open_s).min(own.open.len());
    let known_o = (settings.tasks_per_miner - open_s - known_s - open_o).min(own.known.len());
    let mut chosen: Vec<&Pair> = Vec::with_capacity(settings.tasks_per_miner);
    for (pairs, n) in [
        (&shared.known, known_s),
        (&shared.open, open_s),
        (&own.known, known_o),
        (&own.open, open_o),
    ] {
        chosen.extend(
            pick(&mut rng, pairs.len(), n)
                .into_iter()
                .map(|i| &pairs[i]),
        );
    }
    shuffle(&mut chosen, &mut rng);
    let batch_id = format!("e{epoch}-{}", hex_id(&mut rng));
    let mut ids = BTreeSet::new();
    let tasks = chosen
        .into_iter()
        .map(|pair| {
            let swapped = uniform_below(&mut rng, 2) == 1;
            let mut task_id = hex_id(&mut rng);
            while !ids.insert(task_id.clone()) {
                task_id = hex_id(&mut rng);
            }
            let (a, b) = if swapped {
                (&pair.second, &pair.first)
            } else {
                (&pair.first, &pair.second)
            };
            SentTask {
                task: RlhfTask {
                    task_id,
                    prompt: pair.prompt.clone(),
                    a: a.clone(),
                    b: b.clone(),
                },
                pair_id: pair.id.clone(),
                known: pair.known,
                swapped,
                shared: pair.shared,
            }
        })
        .collect();
    MinerBatch {
        batch_id,
        deadline_block,
        tasks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use subnet_model::tasks::TaskKind;

    /// Two answers per prompt: the correct one and a sloppy variant, as two models might write.
    fn two_models(prompt: &str) -> Vec<String> {
        let right = TaskKind::ALL
            .iter()
            .find_map(|k| k.solve(prompt))
            .unwrap_or_default();
        vec![right.clone(), format!("{right}0")]
    }

    fn hotkey(byte: u8) -> AccountId {
        AccountId([byte; 32])
    }

    fn epoch_pool(seed: [u8; 32], settings: &BatchSettings) -> PairPool {
        let mix = TaskMix::uniform();
        let prompts = open_prompts(seed, &mix, settings);
        let texts: Vec<String> = prompts.iter().map(|e| e.prompt.clone()).collect();
        let answers = two_models.answers(&texts);
        build_pool(seed, &mix, settings, &prompts, &answers)
    }

    fn own_pool(miner_seed: [u8; 32], settings: &BatchSettings) -> PairPool {
        let mix = TaskMix::uniform();
        let prompts = own_prompts(miner_seed, &mix, settings, 2);
        let texts: Vec<String> = prompts.iter().map(|e| e.prompt.clone()).collect();
        let answers = two_models.answers(&texts);
        build_own_pool(miner_seed, &mix, settings, &prompts, &answers)
    }

    /// `hotkey`'s batch of the epoch `seed`, from the shared pool and its own.
    fn batch_of(seed: [u8; 32], settings: &BatchSettings, hotkey: &AccountId) -> MinerBatch {
        let ms = miner_seed(seed, hotkey);
        let (shared, own) = (epoch_pool(seed, settings), own_pool(ms, settings));
        build_batch(&shared, &own, settings, ms, 3, 100)
    }

    /// Every pair from the shared pools.
    fn all_shared() -> BatchSettings {
        BatchSettings {
            shared_share: 1.0,
            ..BatchSettings::default()
        }
    }

    #[test]
    fn known_count_rounds_the_share_of_the_batch() {
        let mut s = BatchSettings::default();
        assert_eq!((s.known_count(), s.open_count()), (6, 14));
        s.known_share = 0.0;
        assert_eq!(s.known_count(), 0);
        s.known_share = 2.0;
        assert_eq!(s.known_count(), 20);
        s.known_share = f64::NAN;
        assert_eq!(s.known_count(), 0);
    }

    #[test]
    fn the_same_seeds_build_the_same_batches() {
        for settings in [BatchSettings::default(), all_shared()] {
            let seed = track_seed([1; 32], [2; 32]);
            let a = batch_of(seed, &settings, &hotkey(7));
            assert_eq!(a, batch_of(seed, &settings, &hotkey(7)));
            assert_eq!(a.tasks.len(), 20);
            let other = batch_of(seed, &settings, &hotkey(8));
            assert_ne!(a.wire(), other.wire(), "another miner gets another batch");
            let other_secret = track_seed([1; 32], [3; 32]);
            let c = batch_of(other_secret, &settings, &hotkey(7));
            assert_ne!(a.wire(), c.wire(), "the secret changes everything");
        }
    }

    #[test]
    fn by_default_no_pair_of_a_batch_is_sent_to_another_miner() {
        let settings = BatchSettings::default();
        let seed = track_seed([8; 32], [1; 32]);
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for miner in 0..6 {
            let batch = batch_of(seed, &settings, &hotkey(miner));
            assert_eq!(batch.tasks.len(), 20);
            assert_eq!(batch.tasks.iter().filter(|t| t.known).count(), 6);
            for task in &batch.tasks {
                assert!(!task.shared, "{task:?}");
                assert!(seen.insert(task.pair_id.clone()), "{} twice", task.pair_id);
            }
        }
        // With a shared share, that share of each kind is drawn from the shared pools, where
        // miners' draws overlap.
        let half = BatchSettings {
            shared_share: 0.5,
            ..BatchSettings::default()
        };
        let batches: Vec<MinerBatch> = (0..6).map(|m| batch_of(seed, &half, &hotkey(m))).collect();
        let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
        for batch in &batches {
            let shared: Vec<&SentTask> = batch.tasks.iter().filter(|t| t.shared).collect();
            assert_eq!(shared.len(), half.shared_known() + half.shared_open());
            assert_eq!((half.shared_known(), half.shared_open()), (3, 7));
            assert_eq!(shared.iter().filter(|t| t.known).count(), 3);
            for task in shared {
                *counts.entry(task.pair_id.as_str()).or_default() += 1;
            }
        }
        assert!(
            counts.values().any(|&n| n > 1),
            "shared pairs are seen by several miners"
        );
    }

    #[test]
    fn the_generation_budget_caps_own_open_pairs_and_known_pairs_fill_in() {
        let settings = BatchSettings::default();
        assert_eq!(settings.own_open(2), 14);
        assert_eq!(settings.own_open(10), 6, "64 prompts over 10 miners");
        assert_eq!(settings.own_open(100), 0);
        let seed = track_seed([7; 32], [7; 32]);
        let ms = miner_seed(seed, &hotkey(1));
        let mix = TaskMix::uniform();
        let prompts = own_prompts(ms, &mix, &settings, 10);
        assert_eq!(prompts.len(), 6);
        let texts: Vec<String> = prompts.iter().map(|e| e.prompt.clone()).collect();
        let own = build_own_pool(ms, &mix, &settings, &prompts, &two_models.answers(&texts));
        let batch = build_batch(&PairPool::default(), &own, &settings, ms, 0, 0);
        assert_eq!(batch.tasks.len(), 20);
        assert_eq!(batch.tasks.iter().filter(|t| !t.known).count(), 6);
    }

    #[test]
    fn a_batch_hides_the_configured_share_of_known_pairs() {
        let settings = BatchSettings::default();
        let seed = track_seed([9; 32], [0; 32]);
        let batch = batch_of(seed, &settings, &hotkey(1));
        let known = batch.tasks.iter().filter(|t| t.known).count();
        assert_eq!(known, 6);
        let ids: BTreeSet<&str> = batch
            .tasks
            .iter()
            .map(|t| t.task.task_id.as_str())
            .collect();
        assert_eq!(ids.len(), 20, "task ids are unique");
        let pairs: BTreeSet<&str> = batch.tasks.iter().map(|t| t.pair_id.as_str()).collect();
        assert_eq!(pairs.len(), 20, "no pair twice in a batch");
    }

    #[test]
    fn known_and_open_tasks_look_the_same_on_the_wire() {
        let settings = BatchSettings {
            shared_share: 0.5,
            ..BatchSettings::default()
        };
        let seed = track_seed([4; 32], [5; 32]);
        for miner in 0..8 {
            let batch = batch_of(seed, &settings, &hotkey(miner));
            assert!(batch.batch_id.starts_with("e3-") && batch.batch_id.len() == 19);
            for sent in &batch.tasks {
                let t = &sent.task;
                assert_eq!(t.task_id.len(), 16, "{t:?}");
                assert!(t.task_id.chars().all(|c| c.is_ascii_hexdigit()));
                for answer in [&t.a, &t.b] {
                    assert_eq!(answer, &normalize_answer(answer, settings.max_answer_chars));
                    assert!(!answer.is_empty());
                }
                assert_ne!(t.a, t.b);
                // The prompt shape is the generators' for both kinds.
                assert!(TaskKind::ALL.iter().any(|k| k.solve(&t.prompt).is_some()));
            }
            // The wire form carries nothing but the four fields.
            let json = serde_json::to_value(batch.wire()).expect("json");
            let task = &json["tasks"][0];
            let mut keys: Vec<&str> = task
                .as_object()
                .expect("object")
                .keys()
                .map(String::as_str)
                .collect();
            keys.sort_unstable();
            assert_eq!(keys, ["a", "b", "prompt", "task_id"]);
        }
    }

    #[test]
    fn positions_are_shuffled_and_the_truth_follows_them() {
        let settings = all_shared();
        let seed = track_seed([6; 32], [6; 32]);
        let pool = epoch_pool(seed, &settings);
        let (mut correct_a, mut correct_b) = (0, 0);
        for miner in 0..20 {
            let ms = miner_seed(seed, &hotkey(miner));
            let batch = build_batch(&pool, &PairPool::default(), &settings, ms, 0, 0);
            for sent in batch.tasks.iter().filter(|t| t.known) {
                let pair = pool
                    .known
                    .iter()
                    .find(|p| p.id == sent.pair_id)
                    .expect("pair");
                let shown_correct = match sent.correct() {
                    Some(Choice::A) => {
                        correct_a += 1;
                        &sent.task.a
                    }
                    Some(Choice::B) => {
                        correct_b += 1;
                        &sent.task.b
                    }
                    other => panic!("known task without truth: {other:?}"),
                };
                assert_eq!(shown_correct, &pair.first);
                assert_eq!(sent.vote(sent.correct().expect("known")), Vote::First);
            }
        }
        assert_eq!(correct_a + correct_b, 120);
        assert!(
            (40..=80).contains(&correct_a),
            "A {correct_a}, B {correct_b}"
        );
    }

    #[test]
    fn prompts_without_two_answers_give_no_open_pair_and_known_pairs_fill_in() {
        let settings = all_shared();
        let seed = track_seed([2; 32], [2; 32]);
        let mix = TaskMix::uniform();
        let prompts = open_prompts(seed, &mix, &settings);
        // One model, one (repeated) answer: nothing to compare.
        let answers: Vec<Vec<String>> = prompts
            .iter()
            .map(|_| vec!["x".into(), " x ".into(), String::new()])
            .collect();
        let pool = build_pool(seed, &mix, &settings, &prompts, &answers);
        assert!(pool.open.is_empty());
        assert_eq!(pool.known.len(), 12);
        let ms = miner_seed(seed, &hotkey(1));
        let batch = build_batch(&pool, &PairPool::default(), &settings, ms, 0, 0);
        assert_eq!(batch.tasks.len(), 6, "the shared known share, no open ones");
        // The miner's own known pairs fill the rest of the batch.
        let own = build_own_pool(ms, &mix, &settings, &[], &[]);
        let batch = build_batch(&pool, &own, &settings, ms, 0, 0);
        assert_eq!(batch.tasks.len(), 20);
        assert!(batch.tasks.iter().all(|t| t.known));
        assert_eq!(batch.tasks.iter().filter(|t| t.shared).count(), 6);
    }

    #[test]
    fn a_rambling_model_answer_is_cut_to_the_length_of_a_known_answer() {
        let settings = all_shared();
        let seed = track_seed([3; 32], [3; 32]);
        let mix = TaskMix::only(TaskKind::Successor);
        let prompts = open_prompts(seed, &mix, &settings);
        let answers: Vec<Vec<String>> = prompts
            .iter()
            .map(|e| {
                vec![
                    e.completion.clone(),
                    format!("{} and so on and on", e.completion),
                ]
            })
            .collect();
        let pool = build_pool(seed, &mix, &settings, &prompts, &answers);
        assert_eq!(pool.open.len(), prompts.len());
        for (pair, example) in pool.open.iter().zip(&prompts) {
            let cap = open_answer_chars(example, settings.max_answer_chars);
            assert!(pair.first.chars().count() <= cap && pair.second.chars().count() <= cap);
        }
        assert_eq!(open_answer_chars(&prompts[0], 3), 3);
    }

    #[test]
    fn answers_are_cut_to_their_first_line_and_the_limit() {
        assert_eq!(normalize_answer("  42 \nand more", 10), "42");
        assert_eq!(normalize_answer("abcdefgh", 3), "abc");
        assert_eq!(normalize_answer("", 3), "");
        assert_eq!(normalize_answer("4\u{0}2\u{7}", 10), "42");
        assert_eq!(normalize_answer("héllo", 2), "hé");
    }
}
