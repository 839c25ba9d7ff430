//! Scoring label miners (pure: votes in, scores out). `docs/scoring.md` "Label track".
//!
//! The default rule, [`Rule::Information`], pays for the information a miner's labels carry:
//!
//! ```text
//! n₊, n₋   = correct and wrong known-answer votes over the last `window_epochs` epochs
//!            (this one and the stored ones before it; ties are abstentions)
//! accuracy = (n₊ + α₀) / (n₊ + n₋ + α₀ + β₀)                       Beta(α₀, β₀) posterior mean
//! p_lcb    = accuracy − z · sqrt(accuracy (1 − accuracy) / (n₊ + n₋ + α₀ + β₀ + 1))
//! bits     = 1 − H₂(p_lcb) when p_lcb > ½, else 0                  information per decisive label
//! coverage = decisive votes (a or b) / sent                          this epoch
//! raw      = coverage · bits
//! score    = raw / Σ raw                                             (all 0 when Σ raw = 0)
//! ```
//!
//! A sequential test flags labelers who answer like noise ([`NoiseTest`]): Wald's SPRT of
//! accuracy ½ against `p₁` on the window's decisive known votes,
//!
//! ```text
//! llr   = n₊ · ln(2 p₁) + n₋ · ln(2 (1 − p₁))
//! noise = llr ≤ ln(β / (1 − α))                                    (raw = 0)
//! ```
//!
//! A random, always-A or always-tie labeler carries no information and earns about 0; a 60%
//! labeler carries 5% of what a 90% one does per label and, with a lower confidence bound under ½
//! until it has shown otherwise, usually nothing. Accuracy comes from the hidden known answers
//! only: agreement with other miners is shown but never paid, since colluding hotkeys could make
//! it up.
//!
//! Epochs stored before this rule carry [`Rule::BetaAgreement`] in their parameters and are
//! recomputed with it:
//!
//! ```text
//! accuracy  = (correct + α₀) / (known_answered + α₀ + β₀)        this epoch, ties answered
//! coverage  = answered / sent
//! agreement = agreed / compared        open pairs where the *other* miners hold a strict majority
//! raw       = clamp(accuracy · coverage + w_agree · agreement · coverage − penalty · wrong, 0, 1)
//! ```
//!
//! A tie on a known pair is answered but neither correct nor wrong. A miner whose batch failed
//! (unreachable, timeout, malformed, no labels) scores 0 and takes no part in the majorities.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::batch::Vote;

/// Default Beta prior α₀ = β₀ on known-answer accuracy.
pub const DEFAULT_PRIOR: f64 = 2.0;

/// Default penalty per wrong known answer ([`Rule::BetaAgreement`]).
pub const DEFAULT_WRONG_PENALTY: f64 = 0.02;

/// Default weight of the agreement-with-majority term ([`Rule::BetaAgreement`]).
pub const DEFAULT_AGREEMENT_WEIGHT: f64 = 0.1;

/// Default number of epochs whose known answers estimate a miner's accuracy.
pub const DEFAULT_WINDOW_EPOCHS: u32 = 8;

/// Default `z` of the accuracy's lower confidence bound (one-sided 95%).
pub const DEFAULT_CONFIDENCE_Z: f64 = 1.645;

/// Wald's sequential probability ratio test of "answers like noise" (accuracy ½) against
/// "answers like a person" (accuracy `p1`) on a miner's decisive known-answer votes over the
/// window. Crossing the lower boundary flags the miner as noise: its raw score is 0 and the
/// dashboard says why.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NoiseTest {
    /// Accuracy of the alternative (a person who reads the pairs).
    pub p1: f64,
    /// Chance of flagging a labeler of accuracy `p1` (the test's α).
    pub false_flag: f64,
    /// Chance of missing a labeler of accuracy ½ (the test's β).
    pub missed_noise: f64,
}

impl Default for NoiseTest {
    fn default() -> Self {
        Self {
            p1: 0.75,
            false_flag: 0.01,
            missed_noise: 0.01,
        }
    }
}

impl NoiseTest {
    /// The log-likelihood ratio of `p1` against ½ after `correct` and `wrong` decisive votes.
    pub fn log_ratio(&self, correct: f64, wrong: f64) -> f64 {
        correct * libm::log(2.0 * self.p1) + wrong * libm::log(2.0 * (1.0 - self.p1))
    }

    /// Whether `correct` and `wrong` votes cross the boundary of noise.
    pub fn says_noise(&self, correct: f64, wrong: f64) -> bool {
        let lower = libm::log(self.missed_noise / (1.0 - self.false_flag));
        self.log_ratio(correct, wrong) <= lower
    }
}

/// Which formula turns votes into scores. Stored with every epoch's parameters, so `verify`
/// recomputes an epoch with the rule it was scored by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The rule of epochs stored before 2026-12-04 (parameters without a `rule`): shrunk
    /// accuracy times coverage, an agreement bonus, a penalty per wrong answer.
    #[default]
    BetaAgreement,
    /// Information per task: the lower confidence bound of the windowed accuracy, in bits.
    Information,
}

/// The scoring rule's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoreParams {
    /// Which formula.
    #[serde(default)]
    pub rule: Rule,
    /// α₀ of the Beta prior (pseudo-correct answers).
    pub prior_alpha: f64,
    /// β₀ of the Beta prior (pseudo-wrong answers).
    pub prior_beta: f64,
    /// Subtracted per wrong known answer ([`Rule::BetaAgreement`]).
    pub wrong_penalty: f64,
    /// Weight of the agreement term, 0 turns it off ([`Rule::BetaAgreement`]).
    pub agreement_weight: f64,
    /// Epochs of known answers behind the accuracy, this one included ([`Rule::Information`]).
    #[serde(default = "default_window")]
    pub window_epochs: u32,
    /// `z` of the accuracy's lower confidence bound ([`Rule::Information`]).
    #[serde(default = "default_z")]
    pub confidence_z: f64,
    /// The sequential noise test ([`Rule::Information`]); `None` in epochs stored before it.
    #[serde(default)]
    pub noise_test: Option<NoiseTest>,
}

fn default_window() -> u32 {
    DEFAULT_WINDOW_EPOCHS
}

fn default_z() -> f64 {
    DEFAULT_CONFIDENCE_Z
}

impl Default for ScoreParams {
    fn default() -> Self {
        Self {
            rule: Rule::Information,
            prior_alpha: DEFAULT_PRIOR,
            prior_beta: DEFAULT_PRIOR,
            wrong_penalty: DEFAULT_WRONG_PENALTY,
            agreement_weight: DEFAULT_AGREEMENT_WEIGHT,
            window_epochs: DEFAULT_WINDOW_EPOCHS,
            confidence_z: DEFAULT_CONFIDENCE_Z,
            noise_test: Some(NoiseTest::default()),
        }
    }
}

/// Known-answer votes of one hotkey in earlier epochs of the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownCounts {
    /// Votes for the known better answer.
    pub correct: u32,
    /// Votes for the known worse answer.
    pub wrong: u32,
}

/// SS58 hotkey → its known-answer votes in the window's earlier epochs (batches collected).
pub type KnownHistory = BTreeMap<String, KnownCounts>;

/// One task of a miner's batch and the miner's vote on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskVote {
    /// The pair behind the task (shared across miners).
    pub pair_id: String,
    /// Whether the pair's first answer is known to be the better one.
    pub known: bool,
    /// Whether the pair is from the shared pool (other miners may have it): not paid under
    /// [`Rule::Information`], only compared.
    pub shared: bool,
    /// The miner's vote in the pair's orientation; `None` when it did not answer.
    pub vote: Option<Vote>,
}

/// A label miner's input to the scoring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinerVotes {
    /// SS58 hotkey (scores are summed in hotkey order).
    pub hotkey: String,
    /// False when its batch failed: it scores 0 and does not vote in majorities.
    pub collected: bool,
    /// Every task sent to it.
    pub tasks: Vec<TaskVote>,
}

/// How a miner's score was made; stored so it can be recomputed and explained.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Components {
    /// Tasks sent.
    pub sent: u32,
    /// Tasks answered (ties included).
    pub answered: u32,
    /// Known-answer tasks sent.
    pub known_sent: u32,
    /// Known-answer tasks answered.
    pub known_answered: u32,
    /// Known-answer tasks answered correctly.
    pub known_correct: u32,
    /// Known-answer tasks answered with the near-miss.
    pub known_wrong: u32,
    /// Open tasks voted on where the other miners hold a strict majority.
    pub compared: u32,
    /// Of those, votes with the majority.
    pub agreed: u32,
    /// Shrunk known-answer accuracy (over the window for [`Rule::Information`]).
    pub accuracy: f64,
    /// `answered / sent` ([`Rule::BetaAgreement`]) or `decisive / sent`
    /// ([`Rule::Information`]: ties do not count).
    pub coverage: f64,
    /// `agreed / compared` (0 when nothing was compared).
    pub agreement: f64,
    /// The clamped per-miner value before normalization.
    pub raw: f64,
    /// The track score (sums to 1 over miners, or all 0).
    pub score: f64,
    /// Flagged by the sequential noise test ([`NoiseTest`]): raw score 0.
    #[serde(default)]
    pub noise: bool,
}

/// Votes for each side of each open pair: `(first, second)`.
pub type Tally = BTreeMap<String, (u32, u32)>;

/// First/second votes on every open pair by collected miners; ties and unanswered tasks count
/// for neither side.
pub fn tally(miners: &[MinerVotes]) -> Tally {
    let mut tally = Tally::new();
    for miner in miners.iter().filter(|m| m.collected) {
        for task in miner.tasks.iter().filter(|t| !t.known) {
            let entry = tally.entry(task.pair_id.clone()).or_default();
            match task.vote {
                Some(Vote::First) => entry.0 += 1,
                Some(Vote::Second) => entry.1 += 1,
                Some(Vote::Tie) | None => {}
            }
        }
    }
    tally
}

/// The strict majority of `(first, second)` votes, if any.
pub fn majority((first, second): (u32, u32)) -> Option<Vote> {
    match first.cmp(&second) {
        std::cmp::Ordering::Greater => Some(Vote::First),
        std::cmp::Ordering::Less => Some(Vote::Second),
        std::cmp::Ordering::Equal => None,
    }
}

/// The score components of every miner, in input order; `history` holds each hotkey's known
/// answers in the window's earlier epochs ([`Rule::Information`]; ignored otherwise).
pub fn score(
    miners: &[MinerVotes],
    history: &KnownHistory,
    params: &ScoreParams,
) -> Vec<Components> {
    let tally = tally(miners);
    let mut out: Vec<Components> = miners
        .iter()
        .map(|miner| match params.rule {
            Rule::BetaAgreement => {
                finish(components(miner, &tally, false), miner.collected, params)
            }
            Rule::Information => {
                let earlier = history.get(&miner.hotkey).copied().unwrap_or_default();
                let counted = components(miner, &tally, true);
                finish_information(counted, decisive(miner), earlier, miner.collected, params)
            }
        })
        .collect();
    let mut order: Vec<usize> = (0..miners.len()).collect();
    order.sort_by(|&a, &b| miners[a].hotkey.cmp(&miners[b].hotkey));
    let total: f64 = order.iter().map(|&i| out[i].raw).sum();
    if total > 0.0 {
        for c in &mut out {
            c.score = c.raw / total;
        }
    }
    out
}

/// Votes for a or b (not ties, not unanswered) on the miner's own (paid) pairs.
fn decisive(miner: &MinerVotes) -> u32 {
    let count = miner
        .tasks
        .iter()
        .filter(|t| !t.shared && matches!(t.vote, Some(Vote::First | Vote::Second)))
        .count();
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// One miner's counts (the derived fields and the score left 0). With `own_only`, `sent`,
/// `answered` and the known-answer counts cover the miner's own pairs only; agreement is counted
/// on shared open pairs either way (own pairs have no other voter).
fn components(miner: &MinerVotes, tally: &Tally, own_only: bool) -> Components {
    let mut c = Components::default();
    for task in &miner.tasks {
        let counted = !(own_only && task.shared);
        if counted {
            c.sent += 1;
        }
        if task.known && counted {
            c.known_sent += 1;
        }
        let Some(vote) = task.vote else { continue };
        if counted {
            c.answered += 1;
        }
        if task.known {
            if !counted {
                continue;
            }
            c.known_answered += 1;
            match vote {
                Vote::First => c.known_correct += 1,
                Vote::Second => c.known_wrong += 1,
                Vote::Tie => {}
            }
        } else if miner.collected && vote != Vote::Tie {
            // Leave this miner's own vote out of the majority it is compared with.
            let (mut first, mut second) = tally.get(&task.pair_id).copied().unwrap_or_default();
            match vote {
                Vote::First => first = first.saturating_sub(1),
                _ => second = second.saturating_sub(1),
            }
            if let Some(majority) = majority((first, second)) {
                c.compared += 1;
                if majority == vote {
                    c.agreed += 1;
                }
            }
        }
    }
    c
}

/// Binary entropy in bits (`libm`, so every validator computes the same bits).
fn binary_entropy(p: f64) -> f64 {
    if p <= 0.0 || p >= 1.0 {
        return 0.0;
    }
    -(p * libm::log2(p) + (1.0 - p) * libm::log2(1.0 - p))
}

/// The lower confidence bound of a Beta(`alpha`, `beta`) posterior's mean: mean − z·sd.
pub fn accuracy_lower_bound(alpha: f64, beta: f64, z: f64) -> f64 {
    let n = alpha + beta;
    let mean = alpha / n;
    mean - z * libm::sqrt(mean * (1.0 - mean) / (n + 1.0))
}

/// Information carried by one decisive label of a labeler right with probability at least
/// `p`: `1 − H₂(p)` bits, 0 at or below ½.
pub fn bits_per_label(p: f64) -> f64 {
    if p.is_finite() && p > 0.5 {
        1.0 - binary_entropy(p.min(1.0))
    } else {
        0.0
    }
}

/// Fills `accuracy`, `coverage`, `agreement` and `raw` under [`Rule::Information`] (`raw` stays 0
/// unless `collected`): `decisive` votes this epoch, `earlier` known answers from the window.
pub fn finish_information(
    mut c: Components,
    decisive: u32,
    earlier: KnownCounts,
    collected: bool,
    params: &ScoreParams,
) -> Components {
    let correct = f64::from(c.known_correct) + f64::from(earlier.correct);
    let wrong = f64::from(c.known_wrong) + f64::from(earlier.wrong);
    let (alpha, beta) = (correct + params.prior_alpha, wrong + params.prior_beta);
    c.accuracy = alpha / (alpha + beta);
    c.coverage = if c.sent == 0 {
        0.0
    } else {
        f64::from(decisive) / f64::from(c.sent)
    };
    c.agreement = if c.compared == 0 {
        0.0
    } else {
        f64::from(c.agreed) / f64::from(c.compared)
    };
    c.raw = 0.0;
    c.noise = params
        .noise_test
        .is_some_and(|test| test.says_noise(correct, wrong));
    if collected && !c.noise {
        let bound = accuracy_lower_bound(alpha, beta, params.confidence_z);
        let raw = c.coverage * bits_per_label(bound);
        c.raw = if raw.is_finite() {
            raw.clamp(0.0, 1.0)
        } else {
            0.0
        };
    }
    c
}

/// Fills `accuracy`, `coverage`, `agreement` and `raw` from the counts of `c` under
/// [`Rule::BetaAgreement`] (`raw` stays 0 unless `collected`).
pub fn finish(mut c: Components, collected: bool, params: &ScoreParams) -> Components {
    c.accuracy = (f64::from(c.known_correct) + params.prior_alpha)
        / (f64::from(c.known_answered) + params.prior_alpha + params.prior_beta);
    c.coverage = if c.sent == 0 {
        0.0
    } else {
        f64::from(c.answered) / f64::from(c.sent)
    };
    c.agreement = if c.compared == 0 {
        0.0
    } else {
        f64::from(c.agreed) / f64::from(c.compared)
    };
    c.raw = 0.0;
    if collected {
        let raw = c.accuracy * c.coverage + params.agreement_weight * c.agreement * c.coverage
            - params.wrong_penalty * f64::from(c.known_wrong);
        c.raw = if raw.is_finite() {
            raw.clamp(0.0, 1.0)
        } else {
            0.0
        };
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    /// The rule of epochs stored before [`Rule::Information`].
    fn legacy() -> ScoreParams {
        ScoreParams {
            rule: Rule::BetaAgreement,
            noise_test: None,
            ..ScoreParams::default()
        }
    }

    /// A miner answering `n` known pairs with `correct` right and the rest wrong, all answered.
    fn known_only(hotkey: &str, n: u32, correct: u32) -> MinerVotes {
        MinerVotes {
            hotkey: hotkey.into(),
            collected: true,
            tasks: (0..n)
                .map(|i| TaskVote {
                    pair_id: format!("k{i}"),
                    known: true,
                    shared: true,
                    vote: Some(if i < correct {
                        Vote::First
                    } else {
                        Vote::Second
                    }),
                })
                .collect(),
        }
    }

    /// A simulated labeler: (its randomness, whether the right answer is shown as B) → says "a".
    type Labeler = dyn Fn(&mut StdRng, bool) -> bool;

    /// Batches of `known` known and `open` open pairs, with the correct side shown as A or B by
    /// `swapped`; each labeler turns (task, swapped) into a choice of "a" (true) or "b".
    fn simulate(
        seed: u64,
        known: u32,
        open: u32,
        labelers: &[(&str, &Labeler)],
    ) -> Vec<Components> {
        let mut rng = StdRng::seed_from_u64(seed);
        let miners: Vec<MinerVotes> = labelers
            .iter()
            .map(|(name, choose)| MinerVotes {
                hotkey: (*name).into(),
                collected: true,
                tasks: (0..known + open)
                    .map(|i| {
                        let swapped = rng.r#gen::<bool>();
                        let says_a = choose(&mut rng, swapped);
                        // First is shown as A unless swapped.
                        let vote = if says_a != swapped {
                            Vote::First
                        } else {
                            Vote::Second
                        };
                        TaskVote {
                            pair_id: format!("p{i}"),
                            known: i < known,
                            shared: true,
                            vote: Some(vote),
                        }
                    })
                    .collect(),
            })
            .collect();
        score(&miners, &KnownHistory::new(), &legacy())
    }

    #[test]
    fn an_accurate_labeler_outscores_a_random_and_an_always_a_one() {
        let accurate: &Labeler = &|rng, swapped| {
            // Right 95% of the time: picks the first answer, wherever it is shown.
            let right = rng.gen_range(0..100) < 95;
            right != swapped
        };
        let random: &Labeler = &|rng, _| rng.r#gen::<bool>();
        let always_a: &Labeler = &|_, _| true;
        for seed in 0..20 {
            let c = simulate(
                seed,
                30,
                70,
                &[("acc", accurate), ("rnd", random), ("aaa", always_a)],
            );
            assert!(c[0].score > c[1].score, "seed {seed}: {c:?}");
            assert!(c[0].score > c[2].score, "seed {seed}: {c:?}");
            assert!(c[0].score > 0.5, "seed {seed}: {c:?}");
            let sum: f64 = c.iter().map(|c| c.score).sum();
            assert!((sum - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn worked_example_of_docs_scoring_md() {
        let counts = |answered, known_answered, known_correct, known_wrong, compared, agreed| {
            let c = Components {
                sent: 20,
                answered,
                known_sent: 6,
                known_answered,
                known_correct,
                known_wrong,
                compared,
                agreed,
                ..Components::default()
            };
            finish(c, true, &legacy())
        };
        let a = counts(20, 6, 6, 0, 10, 9);
        let b = counts(10, 3, 2, 1, 5, 3);
        let c = counts(20, 6, 3, 3, 10, 5);
        let close = |x: f64, y: f64| (x - y).abs() < 5e-7;
        assert!(close(a.raw, 0.89), "{a:?}");
        assert!(
            close(b.accuracy, 0.571429) && close(b.raw, 0.295714),
            "{b:?}"
        );
        assert!(close(c.raw, 0.49), "{c:?}");
        let total = a.raw + b.raw + c.raw;
        assert!(close(a.raw / total, 0.531117));
        assert!(close(b.raw / total, 0.176471));
        assert!(close(c.raw / total, 0.292413));
        assert_eq!(finish(a, false, &legacy()).raw, 0.0);
    }

    #[test]
    fn a_small_perfect_sample_does_not_beat_a_large_nearly_perfect_one() {
        let small = known_only("small", 2, 2);
        let large = known_only("large", 30, 28);
        let c = score(&[small, large], &KnownHistory::new(), &legacy());
        // (2+2)/(2+4) = 0.667 versus (28+2)/(30+4) − 2·0.02 = 0.842.
        assert!((c[0].raw - 4.0 / 6.0).abs() < 1e-12, "{c:?}");
        assert!((c[1].raw - (30.0 / 34.0 - 0.04)).abs() < 1e-12, "{c:?}");
        assert!(c[1].score > c[0].score);
    }

    #[test]
    fn coverage_scales_the_score_and_unanswered_tasks_are_not_wrong() {
        let mut half = known_only("half", 10, 10);
        for task in half.tasks.iter_mut().skip(5) {
            task.vote = None;
        }
        let c = score(&[half], &KnownHistory::new(), &legacy());
        assert_eq!(
            (c[0].answered, c[0].known_answered, c[0].known_wrong),
            (5, 5, 0)
        );
        assert!((c[0].coverage - 0.5).abs() < 1e-12);
        assert!((c[0].raw - 7.0 / 9.0 * 0.5).abs() < 1e-12);
        assert_eq!(c[0].score, 1.0);
    }

    #[test]
    fn a_failed_batch_scores_zero_and_does_not_vote() {
        let open = |hotkey: &str, vote, collected| MinerVotes {
            hotkey: hotkey.into(),
            collected,
            tasks: vec![TaskVote {
                pair_id: "o1".into(),
                known: false,
                shared: true,
                vote: Some(vote),
            }],
        };
        let miners = [
            open("a", Vote::First, true),
            open("b", Vote::First, true),
            open("c", Vote::Second, false),
            open("d", Vote::Second, false),
        ];
        assert_eq!(tally(&miners)["o1"], (2, 0));
        let c = score(&miners, &KnownHistory::new(), &legacy());
        assert_eq!(
            (c[0].compared, c[0].agreed),
            (1, 1),
            "b's vote is a's majority"
        );
        assert_eq!(c[2].raw, 0.0);
        assert_eq!(c[2].score, 0.0);
        // Without known tasks accuracy is the prior mean; agreement adds its small bonus.
        assert!((c[0].raw - (0.5 + 0.1)).abs() < 1e-12, "{c:?}");
    }

    #[test]
    fn agreement_leaves_the_miners_own_vote_out() {
        let one = |hotkey: &str, vote| MinerVotes {
            hotkey: hotkey.into(),
            collected: true,
            tasks: vec![TaskVote {
                pair_id: "o".into(),
                known: false,
                shared: true,
                vote: Some(vote),
            }],
        };
        // Alone, or against one other vote: no majority among the others, nothing compared.
        let c = score(&[one("a", Vote::First)], &KnownHistory::new(), &legacy());
        assert_eq!(c[0].compared, 0);
        let c = score(
            &[one("a", Vote::First), one("b", Vote::Second)],
            &KnownHistory::new(),
            &legacy(),
        );
        assert_eq!((c[0].compared, c[1].compared), (1, 1));
        assert_eq!((c[0].agreed, c[1].agreed), (0, 0));
        // Two against one: each of the two sees a tie among the others.
        let c = score(
            &[
                one("a", Vote::First),
                one("b", Vote::First),
                one("c", Vote::Second),
            ],
            &KnownHistory::new(),
            &legacy(),
        );
        assert_eq!((c[0].compared, c[1].compared, c[2].compared), (0, 0, 1));
        assert_eq!(c[2].agreed, 0);
        let c = score(
            &[
                one("a", Vote::First),
                one("b", Vote::First),
                one("c", Vote::First),
                one("d", Vote::Second),
            ],
            &KnownHistory::new(),
            &legacy(),
        );
        let agreed: Vec<(u32, u32)> = c.iter().map(|c| (c.compared, c.agreed)).collect();
        assert_eq!(agreed, [(1, 1), (1, 1), (1, 1), (1, 0)]);
    }

    #[test]
    fn heavy_penalties_clamp_at_zero_and_nothing_answered_scores_nothing() {
        let liar = known_only("liar", 20, 0);
        let params = ScoreParams {
            wrong_penalty: 0.5,
            ..legacy()
        };
        let c = score(&[liar], &KnownHistory::new(), &params);
        assert_eq!(c[0].raw, 0.0);
        assert_eq!(c[0].score, 0.0, "all raw 0: all scores 0");
        let silent = MinerVotes {
            hotkey: "s".into(),
            collected: true,
            tasks: Vec::new(),
        };
        assert_eq!(score(&[silent], &KnownHistory::new(), &params)[0].raw, 0.0);
    }

    #[test]
    fn a_tie_on_a_known_pair_is_answered_but_neither_right_nor_wrong() {
        let mut m = known_only("t", 4, 4);
        m.tasks[0].vote = Some(Vote::Tie);
        let c = score(&[m], &KnownHistory::new(), &legacy());
        assert_eq!(
            (c[0].known_answered, c[0].known_correct, c[0].known_wrong),
            (4, 3, 0)
        );
        assert!((c[0].accuracy - 5.0 / 8.0).abs() < 1e-12);
    }

    #[test]
    fn the_noise_test_crosses_its_boundary_where_wald_says() {
        let test = NoiseTest::default();
        // ln(β / (1 − α)) = ln(1/99) ≈ −4.595; each right vote adds ln 1.5, each wrong ln 0.5.
        assert!(!test.says_noise(0.0, 0.0), "no evidence, no flag");
        assert!(!test.says_noise(0.0, 6.0), "6 · ln 0.5 = −4.16");
        assert!(test.says_noise(0.0, 7.0), "7 · ln 0.5 = −4.85");
        assert!(test.says_noise(20.0, 20.0), "half right over 40");
        assert!(!test.says_noise(24.0, 16.0), "60% over 40: not yet");
        assert!(!test.says_noise(30.0, 10.0));
        assert!(!test.says_noise(9.0, 1.0));
    }

    /// How often the noise test flags a labeler right with probability `p` after `votes`
    /// decisive known answers, over `trials` windows.
    fn flag_rate(p: f64, votes: u32, trials: u32) -> f64 {
        let test = NoiseTest::default();
        let mut rng = StdRng::seed_from_u64(7);
        let flagged = (0..trials)
            .filter(|_| {
                let right = (0..votes).filter(|_| rng.r#gen::<f64>() < p).count() as f64;
                test.says_noise(right, f64::from(votes) - right)
            })
            .count();
        flagged as f64 / f64::from(trials)
    }

    #[test]
    fn noise_is_flagged_within_a_window_and_a_careful_person_never_is() {
        // A window of 8 epochs at the default 6 known pairs (48 votes) and at the devnet's 10.
        assert_eq!(flag_rate(0.9, 48, 2_000), 0.0);
        assert_eq!(flag_rate(0.9, 80, 2_000), 0.0);
        assert!(flag_rate(0.75, 48, 2_000) < 0.01);
        let random_48 = flag_rate(0.5, 48, 2_000);
        let random_80 = flag_rate(0.5, 80, 2_000);
        assert!(random_48 > 0.6, "{random_48}");
        assert!(random_80 > 0.85, "{random_80}");
        // A flagged miner earns nothing, whatever its coverage.
        let own = |hotkey: &str, n: u32, correct: u32| {
            let mut miner = known_only(hotkey, n, correct);
            for task in &mut miner.tasks {
                task.shared = false;
            }
            miner
        };
        let params = ScoreParams::default();
        let c = score(&[own("noise", 40, 20)], &KnownHistory::new(), &params);
        assert!(c[0].noise);
        assert_eq!((c[0].raw, c[0].score), (0.0, 0.0));
        let c = score(&[own("careful", 40, 36)], &KnownHistory::new(), &params);
        assert!(!c[0].noise && c[0].score == 1.0, "{c:?}");
        // Epochs stored before the test recompute without it.
        let before = ScoreParams {
            noise_test: None,
            ..params
        };
        let c = score(&[own("noise", 40, 20)], &KnownHistory::new(), &before);
        assert!(!c[0].noise);
    }

    /// What a simulated labeler answers on a pair whose better answer is shown as B or not.
    #[derive(Clone, Copy)]
    enum Says {
        A,
        B,
        Tie,
    }

    type Answerer = dyn Fn(&mut StdRng, bool) -> Says;

    /// Right with probability `p`, wherever the better answer is shown.
    fn right_with(p: f64) -> impl Fn(&mut StdRng, bool) -> Says {
        move |rng, better_is_b| {
            if rng.r#gen::<f64>() < p {
                if better_is_b { Says::B } else { Says::A }
            } else if better_is_b {
                Says::A
            } else {
                Says::B
            }
        }
    }

    /// Each labeler's mean share of the label pool over `epochs` epochs of 20 tasks (6 known)
    /// after the first window, under the default rule with each epoch's known answers carried in
    /// the window's history.
    fn shares(seed: u64, epochs: usize, labelers: &[(&str, &Answerer)]) -> Vec<f64> {
        let params = ScoreParams::default();
        let window = params.window_epochs as usize;
        let mut rng = StdRng::seed_from_u64(seed);
        let mut past: Vec<KnownHistory> = Vec::new();
        let mut totals = vec![0.0; labelers.len()];
        for epoch in 0..epochs {
            let miners: Vec<MinerVotes> = labelers
                .iter()
                .map(|(name, answer)| MinerVotes {
                    hotkey: (*name).into(),
                    collected: true,
                    tasks: (0..20)
                        .map(|i| {
                            let better_is_b = rng.r#gen::<bool>();
                            let vote = match (answer(&mut rng, better_is_b), better_is_b) {
                                (Says::Tie, _) => Vote::Tie,
                                (Says::A, false) | (Says::B, true) => Vote::First,
                                _ => Vote::Second,
                            };
                            TaskVote {
                                pair_id: format!("e{epoch}p{i}"),
                                known: i < 6,
                                shared: false,
                                vote: Some(vote),
                            }
                        })
                        .collect(),
                })
                .collect();
            let mut history = KnownHistory::new();
            for earlier in past.iter().rev().take(window - 1) {
                for (hotkey, counts) in earlier {
                    let sum = history.entry(hotkey.clone()).or_default();
                    sum.correct += counts.correct;
                    sum.wrong += counts.wrong;
                }
            }
            let c = score(&miners, &history, &params);
            past.push(
                miners
                    .iter()
                    .zip(&c)
                    .map(|(m, c)| {
                        let counts = KnownCounts {
                            correct: c.known_correct,
                            wrong: c.known_wrong,
                        };
                        (m.hotkey.clone(), counts)
                    })
                    .collect(),
            );
            if epoch >= window {
                for (total, c) in totals.iter_mut().zip(&c) {
                    *total += c.score;
                }
            }
        }
        let counted = (epochs - window) as f64;
        totals.into_iter().map(|t| t / counted).collect()
    }

    #[test]
    fn pay_follows_information_noise_and_tricks_earn_almost_nothing() {
        let careful = right_with(0.9);
        let careless = right_with(0.6);
        let random = right_with(0.5);
        let always_a: &Answerer = &|_, _| Says::A;
        let always_tie: &Answerer = &|_, _| Says::Tie;
        let labelers: [(&str, &Answerer); 5] = [
            ("careful", &careful),
            ("careless", &careless),
            ("random", &random),
            ("always-a", always_a),
            ("always-tie", always_tie),
        ];
        for seed in 0..5 {
            let s = shares(seed, 48, &labelers);
            let [careful, careless, random, always_a, always_tie] = s[..] else {
                unreachable!()
            };
            assert!(careless < careful / 3.0, "seed {seed}: {s:?}");
            for (name, share) in [
                ("random", random),
                ("always-a", always_a),
                ("always-tie", always_tie),
            ] {
                assert!(share < 0.02, "seed {seed}: {name} {share}: {s:?}");
            }
            assert!(careful > 0.9, "seed {seed}: {s:?}");
        }
    }

    #[test]
    fn the_information_worked_example_of_docs_scoring_md() {
        // 36 of 40 known answers right in the window's earlier epochs, 5 of 6 this epoch, 18 of
        // 20 tasks answered a or b: Beta(2 + 41, 2 + 5).
        let mut c = Components {
            sent: 20,
            answered: 19,
            known_sent: 6,
            known_answered: 6,
            known_correct: 5,
            known_wrong: 1,
            ..Components::default()
        };
        let earlier = KnownCounts {
            correct: 36,
            wrong: 4,
        };
        c = finish_information(c, 18, earlier, true, &ScoreParams::default());
        let close = |x: f64, y: f64| (x - y).abs() < 5e-7;
        assert!(close(c.accuracy, 0.86), "{c:?}");
        let bound = accuracy_lower_bound(43.0, 7.0, DEFAULT_CONFIDENCE_Z);
        assert!(close(bound, 0.780073), "{bound}");
        assert!(
            close(bits_per_label(bound), 0.239966),
            "{}",
            bits_per_label(bound)
        );
        assert!(close(c.coverage, 0.9) && close(c.raw, 0.215969), "{c:?}");
        // Not collected: nothing, whatever the history.
        let failed = finish_information(c, 18, earlier, false, &ScoreParams::default());
        assert_eq!(failed.raw, 0.0);
        // No information at or below one half.
        assert_eq!(bits_per_label(0.5), 0.0);
        assert_eq!(bits_per_label(f64::NAN), 0.0);
        assert!(close(bits_per_label(0.9), 0.531004));
        assert!(close(bits_per_label(0.6), 0.029049));
    }

    #[test]
    fn parameters_stored_without_a_rule_are_the_old_rule() {
        let old =
            r#"{"prior_alpha":2.0,"prior_beta":2.0,"wrong_penalty":0.02,"agreement_weight":0.1}"#;
        let params: ScoreParams = serde_json::from_str(old).unwrap();
        assert_eq!(params, legacy());
        let json = serde_json::to_value(ScoreParams::default()).unwrap();
        assert_eq!(json["rule"], "information");
    }

    #[test]
    fn shared_pairs_are_compared_but_not_paid() {
        // Two miners answer the same shared pairs alike (one person's answers on two hotkeys):
        // nothing they are paid for is there, however right; the own pairs are.
        let miner = |hotkey: &str, shared: bool| MinerVotes {
            hotkey: hotkey.into(),
            collected: true,
            tasks: (0..20)
                .map(|i| TaskVote {
                    pair_id: if shared {
                        format!("p{i}")
                    } else {
                        format!("x{hotkey}-p{i}")
                    },
                    known: i < 10,
                    shared,
                    vote: Some(Vote::First),
                })
                .collect(),
        };
        let history = KnownHistory::new();
        let c = score(
            &[miner("a", true), miner("b", true)],
            &history,
            &ScoreParams::default(),
        );
        assert_eq!((c[0].sent, c[0].known_sent, c[0].raw), (0, 0, 0.0), "{c:?}");
        assert_eq!(c[1].raw, 0.0);
        let c = score(
            &[miner("a", false), miner("b", true)],
            &history,
            &ScoreParams::default(),
        );
        assert_eq!((c[0].sent, c[0].known_correct), (20, 10));
        assert!(c[0].raw > 0.0 && c[0].score == 1.0, "{c:?}");
        // The old rule counted every task.
        let c = score(&[miner("b", true)], &history, &legacy());
        assert_eq!(c[0].sent, 20);
        assert!(c[0].raw > 0.0);
    }
}
