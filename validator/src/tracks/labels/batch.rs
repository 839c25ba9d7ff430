//! Building each label miner's batch of comparison tasks (pure: seeds in, batches out).
//!
//! Every pair is a prompt from the validator's [`PromptPool`] and answers its top models wrote
//! for it this epoch (asked through an [`AnswerSource`]):
//! - **open pairs**: two different answers; nobody knows the better one in advance;
//! - **known pairs**: one answer against a [`corrupt`]ed copy of it (cut short, looped, another
//!   prompt's answer, a number changed, …), so the known side is a real answer from the same
//!   prompts and models as the open pairs, and nothing about it can be solved by a checker or
//!   looked up.
//!
//! [`build_pairs`] uses each answered prompt for one pair at most. Each miner's batch
//! ([`build_batch`]) has `known_count` known pairs and the rest open pairs. By default every pair
//! of a batch is the miner's **own** (ids from its [`miner_seed`]): no other hotkey is sent it,
//! so one person's answers replayed on other hotkeys answer nothing there, and a hotkey is paid
//! only for labels no other hotkey could copy. With `shared_share > 0` that share of each kind
//! comes from the epoch's **shared** pools (each miner its own draw without replacement, so a
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
use subnet_model::tasks::{seeded_rng, shuffle, uniform_below};

use super::corrupt::{self, Corruption};
use super::prompts::PromptPool;

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

/// Default most prompts the validator's models answer per epoch over all miners (each takes a
/// few generations, and gives one pair): beyond it, each miner gets fewer pairs.
pub const DEFAULT_MAX_PROMPTS: usize = 64;

/// Writes candidate answers for prompts: in production the top models run locally
/// ([`super::answers::ModelAnswers`]); tests pass fixed answers.
pub trait AnswerSource: Send + Sync {
    /// For each prompt (same order), the answers the source can give. Two different answers of
    /// one prompt make an open pair; prompts with fewer are not used. May block (runs models).
    fn answers(&self, prompts: &[String]) -> Vec<Vec<String>>;

    /// [`answers`](Self::answers) with the rank of the model that gave each (0: the best). The
    /// default ranks every answer 0 (no model known better); only simulations use the ranks
    /// ([`subnet_common::protocol::SimulationTruth::open_better`]).
    fn ranked_answers(&self, prompts: &[String]) -> Vec<Vec<(String, u32)>> {
        self.answers(prompts)
            .into_iter()
            .map(|answers| answers.into_iter().map(|a| (a, 0)).collect())
            .collect()
    }
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
    /// Most prompts answered per epoch over all miners (the generation budget).
    #[serde(default = "default_max_prompts")]
    pub max_prompts: usize,
}

fn default_max_prompts() -> usize {
    DEFAULT_MAX_PROMPTS
}

impl Default for BatchSettings {
    fn default() -> Self {
        Self {
            tasks_per_miner: DEFAULT_TASKS_PER_MINER,
            known_share: DEFAULT_KNOWN_SHARE,
            pool_factor: DEFAULT_POOL_FACTOR,
            max_answer_chars: DEFAULT_MAX_ANSWER_CHARS,
            shared_share: DEFAULT_SHARED_SHARE,
            max_prompts: DEFAULT_MAX_PROMPTS,
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
}

/// One answer pair of the epoch, in its canonical orientation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pair {
    /// Id within the epoch (`k3`, `o12`); never sent to miners.
    pub id: String,
    /// The prompt.
    pub prompt: String,
    /// First answer; for a known pair, the real one.
    pub first: String,
    /// Second answer; for a known pair, the corrupted one.
    pub second: String,
    /// Whether the better answer is known.
    pub known: bool,
    /// Whether it is in the shared pool (other miners may be sent it).
    pub shared: bool,
    /// How a known pair's second answer was made (`None` for open pairs).
    pub corruption: Option<Corruption>,
}

/// Pairs to build batches from: the epoch's shared pool, or one miner's own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PairPool {
    /// A model answer versus its corruption.
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

/// Prompts the validator's models answer per epoch for `miners` miners: one pair each for
/// every task of every batch, the shared pools, and one in eight more as [`corrupt`] material,
/// within [`BatchSettings::max_prompts`].
pub fn prompts_wanted(settings: &BatchSettings, recipients: &[Recipient]) -> usize {
    let factor = settings.pool_factor.max(1);
    let shared = (settings.shared_known() + settings.shared_open()) * factor;
    let own_per_miner = settings.tasks_per_miner - settings.shared_known() - settings.shared_open();
    let full = recipients.iter().filter(|r| !r.probe).count();
    let probed = probed_this_epoch(settings, recipients).len();
    let pairs = shared + full * own_per_miner + probed * own_per_miner.min(PROBE_PAIRS);
    (pairs + pairs.div_ceil(MATERIAL_EVERY)).min(settings.max_prompts)
}

/// A miner that gets a batch this epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recipient {
    /// [`miner_seed`]: the ids and order of its batch.
    pub seed: [u8; 32],
    /// It answered none of its recent batches (a model-only miner answers 404): it is only
    /// probed. Each epoch at most one probed miner per [`PROBE_SHARE`] prompts of the budget,
    /// those with the lowest seeds (secret, so a miner cannot tell when), gets [`PROBE_PAIRS`]
    /// known pair(s) of its own, before the other miners' pairs; the rest get the shared pairs
    /// only. So the epoch's answers go to the miners that label, and one that starts labelling
    /// is seen within a few epochs and is a full recipient again once it answers.
    pub probe: bool,
}

/// Own pairs given to a probed [`Recipient`] in an epoch it is probed: enough to see whether it
/// labels, and to score it if it does.
pub const PROBE_PAIRS: usize = 1;

/// At most one probed miner per this many prompts of the generation budget gets a pair in an
/// epoch (at least one).
pub const PROBE_SHARE: usize = 8;

/// Indices of the probed recipients that get their pair this epoch: at most
/// `max(1, max_prompts / PROBE_SHARE)`, those with the lowest seeds.
fn probed_this_epoch(settings: &BatchSettings, recipients: &[Recipient]) -> Vec<usize> {
    let mut probed: Vec<usize> = (0..recipients.len())
        .filter(|&i| recipients[i].probe)
        .collect();
    probed.sort_by_key(|&i| recipients[i].seed);
    probed.truncate((settings.max_prompts / PROBE_SHARE).max(1));
    probed
}

/// One prompt in [`MATERIAL_EVERY`] answered is kept out of every batch: its answers are the
/// "another prompt's answer" of corruptions, so no text is shown twice in an epoch.
pub const MATERIAL_EVERY: usize = 8;

/// The epoch's prompts, drawn from `pool` with the track seed ([`prompts_wanted`] of them).
pub fn epoch_prompts(
    track_seed: [u8; 32],
    pool: &PromptPool,
    settings: &BatchSettings,
    recipients: &[Recipient],
) -> Vec<String> {
    pool.draw(
        derive_seed(track_seed, "labels/prompts"),
        prompts_wanted(settings, recipients),
    )
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

/// An epoch's pairs: the shared pools and each miner's own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EpochPairs {
    /// Pairs several miners may be sent (not paid).
    pub shared: PairPool,
    /// Each miner's own pairs, in the order of the `miner_seeds` given.
    pub own: Vec<PairPool>,
}

impl EpochPairs {
    /// Open pairs over all pools.
    pub fn open_pairs(&self) -> usize {
        self.shared.open.len() + self.own.iter().map(|p| p.open.len()).sum::<usize>()
    }

    /// Known pairs over all pools.
    pub fn known_pairs(&self) -> usize {
        self.shared.known.len() + self.own.iter().map(|p| p.known.len()).sum::<usize>()
    }
}

/// A prompt with its distinct shown answers.
struct Answered {
    prompt: String,
    answers: Vec<String>,
}

/// The epoch's pairs from `prompts` (from [`epoch_prompts`]) and `answers` (the source's answers
/// to them, same order), seeded by the track seed; every prompt gives at most one pair, so no
/// batch of the epoch shows a text another shows.
///
/// - Answers are normalized ([`normalize_answer`]); a prompt without a non-empty one is dropped.
/// - One prompt in [`MATERIAL_EVERY`] (when there are that many) is set aside: its answers are
///   the material of [`corrupt`] ("another prompt's answer").
/// - An **open pair** is two different answers of a prompt; a **known pair** is one answer of a
///   prompt against its [`corrupt::corrupt`]ion. Both draw from the same prompts in the same seeded
///   order: a known pair's prompt and its real answer are those of an open pair.
/// - The shared pools take their pairs first (`pool_factor` per shared slot), then the miners,
///   in turns, one pair per turn each, following their batch's mix of known and open slots;
///   a miner whose open slot finds no prompt with two answers takes a known pair instead.
///   The epoch's probed miners ([`Recipient::probe`]) take their [`PROBE_PAIRS`] known pair(s)
///   before the others' own pairs; probed miners not chosen this epoch get none.
pub fn build_pairs(
    track_seed: [u8; 32],
    recipients: &[Recipient],
    settings: &BatchSettings,
    prompts: &[String],
    answers: &[Vec<String>],
) -> EpochPairs {
    let max = settings.max_answer_chars;
    let mut answered: Vec<Answered> = prompts
        .iter()
        .zip(answers)
        .filter_map(|(prompt, candidates)| {
            let distinct: BTreeSet<String> = candidates
                .iter()
                .map(|a| normalize_answer(a, max))
                .filter(|a| !a.is_empty())
                .collect();
            (!distinct.is_empty()).then(|| Answered {
                prompt: prompt.clone(),
                answers: distinct.into_iter().collect(),
            })
        })
        .collect();
    let mut rng = seeded_rng(derive_seed(track_seed, "labels/pairs"));
    shuffle(&mut answered, &mut rng);
    for a in &mut answered {
        shuffle(&mut a.answers, &mut rng);
    }
    let material: Vec<String> = if answered.len() >= MATERIAL_EVERY {
        let keep = answered.len() - answered.len() / MATERIAL_EVERY;
        answered
            .split_off(keep)
            .into_iter()
            .flat_map(|a| a.answers)
            .collect()
    } else {
        Vec::new()
    };
    let mut builder = PairBuilder {
        left: answered.into_iter().map(Some).collect(),
        material,
        max_chars: max,
        rng,
    };
    let factor = settings.pool_factor.max(1);
    let mut shared = PairPool::default();
    for i in 0..settings.shared_known() * factor {
        if let Some(pair) = builder.known(format!("k{i}"), true) {
            shared.known.push(pair);
        }
    }
    for i in 0..settings.shared_open() * factor {
        if let Some(pair) = builder.open(format!("o{i}"), true) {
            shared.open.push(pair);
        }
    }
    let mut own: Vec<PairPool> = vec![PairPool::default(); recipients.len()];
    let prefixes: Vec<String> = recipients
        .iter()
        .map(|r| format!("x{}-", hex::encode(&r.seed[..4])))
        .collect();
    let slots = own_slots(settings);
    // The epoch's probes first (a pair each, so a probe is never starved by the budget), then
    // the full recipients, slot by slot.
    let probed = probed_this_epoch(settings, recipients);
    for _ in 0..slots.len().min(PROBE_PAIRS) {
        for &i in &probed {
            builder.fill(&mut own[i], &prefixes[i], Slot::Known);
        }
    }
    for turn in &slots {
        for ((pool, prefix), _) in own
            .iter_mut()
            .zip(&prefixes)
            .zip(recipients)
            .filter(|(_, r)| !r.probe)
        {
            builder.fill(pool, prefix, *turn);
        }
    }
    EpochPairs { shared, own }
}

/// A slot of a miner's own pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Known,
    Open,
}

/// The kinds of a miner's own slots in the order they are filled: its known and open counts
/// (less the shared ones) spread evenly, so that a short epoch keeps the batch's mix.
fn own_slots(settings: &BatchSettings) -> Vec<Slot> {
    let known = settings.known_count() - settings.shared_known();
    let open = settings.open_count() - settings.shared_open();
    let total = known + open;
    // round(x · known / total), so that every prefix holds its share of known slots.
    let quota = |x: usize| (2 * x * known + total) / (2 * total.max(1));
    (0..total)
        .map(|i| {
            if quota(i + 1) > quota(i) {
                Slot::Known
            } else {
                Slot::Open
            }
        })
        .collect()
}

/// Hands out each answered prompt once.
struct PairBuilder<R> {
    left: Vec<Option<Answered>>,
    material: Vec<String>,
    max_chars: usize,
    rng: R,
}

impl<R: RngCore> PairBuilder<R> {
    /// The next unused prompt with at least `answers` answers.
    /// One more own pair of kind `slot` into `pool` (an open slot takes a known pair when no
    /// open one is left), ids prefixed with the miner's `prefix`.
    fn fill(&mut self, pool: &mut PairPool, prefix: &str, slot: Slot) {
        let n = pool.known.len() + pool.open.len();
        let pair = match slot {
            Slot::Open => self
                .open(format!("{prefix}o{n}"), false)
                .or_else(|| self.known(format!("{prefix}k{n}"), false)),
            Slot::Known => self.known(format!("{prefix}k{n}"), false),
        };
        match pair {
            Some(pair) if pair.known => pool.known.push(pair),
            Some(pair) => pool.open.push(pair),
            None => {}
        }
    }

    fn take(&mut self, answers: usize) -> Option<Answered> {
        self.left
            .iter_mut()
            .find(|slot| slot.as_ref().is_some_and(|a| a.answers.len() >= answers))
            .and_then(Option::take)
    }

    fn open(&mut self, id: String, shared: bool) -> Option<Pair> {
        let mut a = self.take(2)?;
        Some(Pair {
            id,
            prompt: a.prompt,
            first: a.answers.swap_remove(0),
            second: a.answers.swap_remove(0),
            known: false,
            shared,
            corruption: None,
        })
    }

    fn known(&mut self, id: String, shared: bool) -> Option<Pair> {
        // Prompts whose answer no corruption fits are skipped (and used by nobody).
        loop {
            let a = self.take(1)?;
            let real = a.answers[0].clone();
            let Some((kind, text)) =
                corrupt::corrupt(&a.prompt, &real, &self.material, &mut self.rng)
            else {
                continue;
            };
            let second = normalize_answer(&text, self.max_chars);
            if second.is_empty() || second == real {
                continue;
            }
            return Some(Pair {
                id,
                prompt: a.prompt,
                first: real,
                second,
                known: true,
                shared,
                corruption: Some(kind),
            });
        }
    }
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
    use std::collections::BTreeMap;

    use super::*;

    const FILLER: [&str; 24] = [
        "the", "a", "is", "it", "because", "and", "so", "of", "to", "you", "can", "which", "more",
        "when", "this", "usually", "water", "light", "time", "people", "small", "first", "about",
        "then",
    ];

    /// Answers as models might write them: a sentence of 8-24 words mixing the prompt's words,
    /// common words and now and then a number, sometimes ending with a full stop.
    fn model_like(prompt: &str, seed: u64, n: usize) -> Vec<String> {
        let mut rng = seeded_rng(derive_seed([seed as u8; 32], prompt));
        let words: Vec<&str> = prompt.split_whitespace().collect();
        (0..n)
            .map(|_| {
                let len = 8 + uniform_below(&mut rng, 17) as usize;
                let mut out: Vec<String> = (0..len)
                    .map(|_| match uniform_below(&mut rng, 10) {
                        0..=3 => words[uniform_below(&mut rng, words.len() as u64) as usize]
                            .to_lowercase(),
                        4 => (1 + uniform_below(&mut rng, 500)).to_string(),
                        _ => FILLER[uniform_below(&mut rng, 24) as usize].to_string(),
                    })
                    .collect();
                if uniform_below(&mut rng, 2) == 0 {
                    out.last_mut().expect("words").push('.');
                }
                out.join(" ")
            })
            .collect()
    }

    /// Two models × two samples.
    fn four_answers(prompts: &[String]) -> Vec<Vec<String>> {
        prompts.iter().map(|p| model_like(p, 1, 4)).collect()
    }

    fn hotkey(byte: u8) -> AccountId {
        AccountId([byte; 32])
    }

    /// An epoch's prompts, their answers, the miners' seeds and the pairs.
    type Epoch = (Vec<String>, Vec<Vec<String>>, Vec<[u8; 32]>, EpochPairs);

    /// Every seed a full recipient.
    fn full(seeds: &[[u8; 32]]) -> Vec<Recipient> {
        seeds
            .iter()
            .map(|&seed| Recipient { seed, probe: false })
            .collect()
    }

    /// An epoch for `miners` hotkeys (bytes 0..miners).
    fn epoch(seed: [u8; 32], settings: &BatchSettings, miners: u8) -> Epoch {
        let pool = PromptPool::starter();
        let seeds: Vec<[u8; 32]> = (0..miners).map(|m| miner_seed(seed, &hotkey(m))).collect();
        let recipients = full(&seeds);
        let prompts = epoch_prompts(seed, &pool, settings, &recipients);
        let answers = four_answers(&prompts);
        let pairs = build_pairs(seed, &recipients, settings, &prompts, &answers);
        (prompts, answers, seeds, pairs)
    }

    /// Every miner's batch of the epoch `seed`.
    fn batches(seed: [u8; 32], settings: &BatchSettings, miners: u8) -> Vec<MinerBatch> {
        let (_, _, seeds, pairs) = epoch(seed, settings, miners);
        seeds
            .iter()
            .zip(&pairs.own)
            .map(|(ms, own)| build_batch(&pairs.shared, own, settings, *ms, 3, 100))
            .collect()
    }

    /// A generation budget that covers every batch.
    fn roomy() -> BatchSettings {
        BatchSettings {
            max_prompts: 1000,
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
        let settings = roomy();
        let seed = track_seed([1; 32], [2; 32]);
        let a = batches(seed, &settings, 2);
        assert_eq!(a, batches(seed, &settings, 2));
        assert_eq!(a[0].tasks.len(), 20);
        assert_ne!(a[0].wire(), a[1].wire(), "another miner gets another batch");
        let other_secret = track_seed([1; 32], [3; 32]);
        let c = batches(other_secret, &settings, 2);
        assert_ne!(a[0].wire(), c[0].wire(), "the secret changes everything");
    }

    #[test]
    fn no_prompt_or_answer_is_shown_twice_in_an_epoch() {
        let settings = roomy();
        let seed = track_seed([8; 32], [1; 32]);
        let all = batches(seed, &settings, 2);
        let (mut prompts, mut texts, mut pair_ids) =
            (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        for batch in &all {
            assert_eq!(batch.tasks.len(), 20);
            assert_eq!(batch.tasks.iter().filter(|t| t.known).count(), 6);
            for task in &batch.tasks {
                assert!(!task.shared, "{task:?}");
                assert!(pair_ids.insert(task.pair_id.clone()), "{}", task.pair_id);
                assert!(prompts.insert(task.task.prompt.clone()), "{task:?}");
                for text in [&task.task.a, &task.task.b] {
                    assert!(texts.insert(text.clone()), "{text:?} shown twice");
                }
            }
        }
        // With a shared share, that share of each kind comes from the shared pools, where
        // miners' draws overlap.
        let half = BatchSettings {
            shared_share: 0.5,
            ..roomy()
        };
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for batch in batches(seed, &half, 6) {
            let shared: Vec<&SentTask> = batch.tasks.iter().filter(|t| t.shared).collect();
            assert_eq!((half.shared_known(), half.shared_open()), (3, 7));
            assert_eq!(shared.len(), 10);
            assert_eq!(shared.iter().filter(|t| t.known).count(), 3);
            for task in shared {
                *counts.entry(task.pair_id.clone()).or_default() += 1;
            }
        }
        assert!(
            counts.values().any(|&n| n > 1),
            "shared pairs are seen by several miners"
        );
    }

    #[test]
    fn known_pairs_are_a_real_answer_against_its_corruption_and_material_is_never_shown() {
        let settings = roomy();
        let seed = track_seed([5; 32], [5; 32]);
        let (prompts, answers, _, pairs) = epoch(seed, &settings, 4);
        let of: BTreeMap<&str, &Vec<String>> =
            prompts.iter().map(String::as_str).zip(&answers).collect();
        let mut used_prompts = BTreeSet::new();
        let mut kinds = BTreeSet::new();
        for pool in &pairs.own {
            for pair in &pool.known {
                let real = of[pair.prompt.as_str()];
                assert!(real.contains(&pair.first), "{pair:?}");
                assert!(!real.contains(&pair.second), "{pair:?}");
                kinds.insert(pair.corruption.expect("known pairs say how"));
                used_prompts.insert(pair.prompt.as_str());
            }
            for pair in &pool.open {
                let real = of[pair.prompt.as_str()];
                assert!(real.contains(&pair.first) && real.contains(&pair.second));
                assert_eq!(pair.corruption, None);
                used_prompts.insert(pair.prompt.as_str());
            }
        }
        assert!(kinds.len() >= 4, "{kinds:?}");
        // The prompts set aside for material: their answers appear only inside corruptions.
        let material: Vec<&str> = prompts
            .iter()
            .map(String::as_str)
            .filter(|p| !used_prompts.contains(p))
            .collect();
        assert_eq!(material.len(), prompts.len() / MATERIAL_EVERY);
        for pool in &pairs.own {
            for pair in pool.known.iter().chain(&pool.open) {
                for p in &material {
                    assert!(
                        !of[p].contains(&pair.first),
                        "material shown as a real answer"
                    );
                }
            }
        }
    }

    /// Miners that answered none of their recent batches are probed: each epoch a few of them
    /// (one per 8 prompts of the budget) get one known pair, first; the rest of the answers go to
    /// the miners that label.
    #[test]
    fn probed_miners_get_one_known_pair_and_the_rest_goes_to_the_labelling_miners() {
        let seed = track_seed([5; 32], [5; 32]);
        let recipients = |probes: u8| -> Vec<Recipient> {
            (0..2 + probes)
                .map(|m| Recipient {
                    seed: miner_seed(seed, &hotkey(m)),
                    probe: m >= 2,
                })
                .collect()
        };
        let sizes = |settings: &BatchSettings, recipients: &[Recipient]| -> Vec<(usize, usize)> {
            let prompts = epoch_prompts(seed, &PromptPool::starter(), settings, recipients);
            let answers = four_answers(&prompts);
            let pairs = build_pairs(seed, recipients, settings, &prompts, &answers);
            pairs
                .own
                .iter()
                .map(|p| (p.known.len(), p.open.len()))
                .collect()
        };
        // Budget 48: up to 6 probes an epoch, so all 4 get a pair. Two full miners (40 pairs)
        // and 4 probe pairs, plus material: 44 + 6 = 50, capped at 48 (without probing the six
        // would ask 120 + 15). 42 pairs after material: 4 to the probes, 19 each to the others.
        let settings = BatchSettings {
            max_prompts: 48,
            ..BatchSettings::default()
        };
        let four = recipients(4);
        assert_eq!(prompts_wanted(&settings, &four[..2]), 45);
        assert_eq!(prompts_wanted(&settings, &four), 48);
        let got = sizes(&settings, &four);
        assert_eq!(got[2..], [(1, 0); 4], "{got:?}");
        assert_eq!(got[0].0 + got[0].1, 19, "{got:?}");
        assert_eq!(got[1].0 + got[1].1, 19, "{got:?}");
        // Budget 16 with ten probes: two of them (the lowest seeds) get a pair this epoch.
        let settings = BatchSettings {
            max_prompts: 16,
            ..BatchSettings::default()
        };
        let ten = recipients(10);
        let got = sizes(&settings, &ten);
        let probed: Vec<usize> = (2..12).filter(|&i| got[i] != (0, 0)).collect();
        assert_eq!(probed.len(), 2, "{got:?}");
        let mut lowest: Vec<usize> = (2..12).collect();
        lowest.sort_by_key(|&i| ten[i].seed);
        lowest.truncate(2);
        lowest.sort_unstable();
        assert_eq!(probed, lowest);
        assert!(probed.iter().all(|&i| got[i] == (1, 0)));
        assert_eq!(got[0].0 + got[0].1 + got[1].0 + got[1].1, 12, "{got:?}");
    }

    #[test]
    fn the_generation_budget_limits_pairs_and_keeps_the_batch_mix() {
        let settings = BatchSettings::default();
        assert_eq!(
            prompts_wanted(&settings, &full(&[[0; 32]; 2])),
            45,
            "40 pairs and 5 for material"
        );
        assert_eq!(
            prompts_wanted(&settings, &full(&[[0; 32]; 10])),
            64,
            "the budget"
        );
        let seed = track_seed([7; 32], [7; 32]);
        let (prompts, _, _, pairs) = epoch(seed, &settings, 10);
        assert_eq!(prompts.len(), 64);
        let sizes: Vec<usize> = pairs
            .own
            .iter()
            .map(|p| p.known.len() + p.open.len())
            .collect();
        assert_eq!(
            sizes.iter().sum::<usize>(),
            56,
            "64 prompts, 8 of them material"
        );
        assert!(sizes.iter().all(|&n| n == 5 || n == 6), "{sizes:?}");
        let known: usize = pairs.own.iter().map(|p| p.known.len()).sum();
        assert!((14..=20).contains(&known), "about 30% known: {known}");
    }

    #[test]
    fn known_and_open_tasks_look_the_same_on_the_wire() {
        let settings = BatchSettings {
            shared_share: 0.5,
            ..roomy()
        };
        let seed = track_seed([4; 32], [5; 32]);
        let pool = PromptPool::starter();
        for batch in batches(seed, &settings, 8) {
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
                assert!(pool.prompts().contains(&t.prompt), "{t:?}");
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
        let settings = roomy();
        let (mut correct_a, mut correct_b) = (0, 0);
        for s in 0..10u8 {
            let seed = track_seed([6; 32], [s; 32]);
            let (_, _, seeds, pairs) = epoch(seed, &settings, 2);
            for (ms, own) in seeds.iter().zip(&pairs.own) {
                let batch = build_batch(&pairs.shared, own, &settings, *ms, 0, 0);
                for sent in batch.tasks.iter().filter(|t| t.known) {
                    let pair = own
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
        }
        assert_eq!(correct_a + correct_b, 120);
        assert!(
            (40..=80).contains(&correct_a),
            "A {correct_a}, B {correct_b}"
        );
    }

    #[test]
    fn without_answers_there_are_no_pairs_and_one_answer_gives_known_pairs_only() {
        let settings = roomy();
        let seed = track_seed([2; 32], [2; 32]);
        let seeds = [miner_seed(seed, &hotkey(1))];
        let prompts = epoch_prompts(seed, &PromptPool::starter(), &settings, &full(&seeds));
        let none = build_pairs(seed, &full(&seeds), &settings, &prompts, &[]);
        assert_eq!((none.known_pairs(), none.open_pairs()), (0, 0));
        let batch = build_batch(&none.shared, &none.own[0], &settings, seeds[0], 0, 0);
        assert!(batch.tasks.is_empty());
        // One model, one (repeated) answer: nothing to compare, but something to corrupt.
        let answers: Vec<Vec<String>> = prompts
            .iter()
            .map(|p| {
                let one = model_like(p, 2, 1).remove(0);
                vec![one.clone(), format!(" {one} "), String::new()]
            })
            .collect();
        let pairs = build_pairs(seed, &full(&seeds), &settings, &prompts, &answers);
        assert_eq!(pairs.open_pairs(), 0);
        let batch = build_batch(&pairs.shared, &pairs.own[0], &settings, seeds[0], 0, 0);
        assert_eq!(batch.tasks.len(), 20, "known pairs fill the open slots");
        assert!(batch.tasks.iter().all(|t| t.known));
    }

    /// A shallow rule's pick on a task: `Some(true)` for A, `Some(false)` for B, `None` for a tie.
    type Rule = fn(&RlhfTask) -> Option<bool>;

    fn overlap(prompt: &str, answer: &str) -> f64 {
        let words: BTreeSet<String> = prompt
            .split_whitespace()
            .map(|w| w.to_lowercase())
            .collect();
        let hits = answer
            .split_whitespace()
            .filter(|w| words.contains(&w.to_lowercase()))
            .count();
        hits as f64 / answer.split_whitespace().count().max(1) as f64
    }

    fn pick<T: PartialOrd>(a: T, b: T) -> Option<bool> {
        if a > b {
            Some(true)
        } else if b > a {
            Some(false)
        } else {
            None
        }
    }

    #[test]
    fn no_shallow_rule_tells_the_real_answer_from_its_corruption() {
        let rules: [(&str, Rule); 5] = [
            ("longer", |t| pick(t.a.len(), t.b.len())),
            ("shorter", |t| pick(t.b.len(), t.a.len())),
            ("more prompt words", |t| {
                pick(overlap(&t.prompt, &t.a), overlap(&t.prompt, &t.b))
            }),
            ("ends with a full stop", |t| {
                pick(t.a.ends_with('.'), t.b.ends_with('.'))
            }),
            ("fewer repeated words", |t| {
                let repeats = |s: &str| {
                    let words: Vec<&str> = s.split_whitespace().collect();
                    let distinct: BTreeSet<&str> = words.iter().copied().collect();
                    words.len() - distinct.len()
                };
                pick(repeats(&t.b), repeats(&t.a))
            }),
        ];
        let settings = roomy();
        let mut scored = vec![(0usize, 0usize); rules.len()];
        for s in 0..40u8 {
            let seed = track_seed([9; 32], [s; 32]);
            for batch in batches(seed, &settings, 3) {
                for task in batch.tasks.iter().filter(|t| t.known) {
                    let right = task.correct() == Some(Choice::A);
                    for (i, (_, rule)) in rules.iter().enumerate() {
                        // A tie is a coin toss: half right.
                        scored[i].0 += match rule(&task.task) {
                            Some(a) if a == right => 2,
                            Some(_) => 0,
                            None => 1,
                        };
                        scored[i].1 += 2;
                    }
                }
            }
        }
        for ((name, _), (right, all)) in rules.iter().zip(scored) {
            let accuracy = right as f64 / all as f64;
            eprintln!("{name}: {accuracy:.3} on {} known pairs", all / 2);
            assert!(
                accuracy < 0.65,
                "rule {name:?} is right on {accuracy:.3} of the known pairs"
            );
        }
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
