//! Scoring label miners (pure: votes in, scores out). `docs/scoring.md` "Label track".
//!
//! For each label miner whose labels were collected:
//!
//! ```text
//! accuracy  = (correct + α₀) / (known_answered + α₀ + β₀)        Beta(α₀, β₀) prior, shrunk to ½
//! coverage  = answered / sent
//! agreement = agreed / compared        open pairs where the *other* miners hold a strict majority
//! raw       = clamp(accuracy · coverage + w_agree · agreement · coverage − penalty · wrong, 0, 1)
//! score     = raw / Σ raw                                         (all 0 when Σ raw = 0)
//! ```
//!
//! A tie on a known pair is answered but neither correct nor wrong. A miner whose batch failed
//! (unreachable, timeout, malformed, no labels) scores 0 and takes no part in the majorities.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::batch::Vote;

/// Default Beta prior α₀ = β₀ on known-answer accuracy.
pub const DEFAULT_PRIOR: f64 = 2.0;

/// Default penalty per wrong known answer.
pub const DEFAULT_WRONG_PENALTY: f64 = 0.02;

/// Default weight of the agreement-with-majority term.
pub const DEFAULT_AGREEMENT_WEIGHT: f64 = 0.1;

/// The scoring rule's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoreParams {
    /// α₀ of the Beta prior (pseudo-correct answers).
    pub prior_alpha: f64,
    /// β₀ of the Beta prior (pseudo-wrong answers).
    pub prior_beta: f64,
    /// Subtracted per wrong known answer.
    pub wrong_penalty: f64,
    /// Weight of the agreement term (0 turns it off).
    pub agreement_weight: f64,
}

impl Default for ScoreParams {
    fn default() -> Self {
        Self {
            prior_alpha: DEFAULT_PRIOR,
            prior_beta: DEFAULT_PRIOR,
            wrong_penalty: DEFAULT_WRONG_PENALTY,
            agreement_weight: DEFAULT_AGREEMENT_WEIGHT,
        }
    }
}

/// One task of a miner's batch and the miner's vote on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskVote {
    /// The pair behind the task (shared across miners).
    pub pair_id: String,
    /// Whether the pair's first answer is known to be the better one.
    pub known: bool,
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
    /// Shrunk known-answer accuracy.
    pub accuracy: f64,
    /// `answered / sent`.
    pub coverage: f64,
    /// `agreed / compared` (0 when nothing was compared).
    pub agreement: f64,
    /// The clamped per-miner value before normalization.
    pub raw: f64,
    /// The track score (sums to 1 over miners, or all 0).
    pub score: f64,
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

/// The score components of every miner, in input order.
pub fn score(miners: &[MinerVotes], params: &ScoreParams) -> Vec<Components> {
    let tally = tally(miners);
    let mut out: Vec<Components> = miners
        .iter()
        .map(|miner| components(miner, &tally, params))
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

/// One miner's components (score left 0).
fn components(miner: &MinerVotes, tally: &Tally, params: &ScoreParams) -> Components {
    let mut c = Components {
        sent: miner.tasks.len() as u32,
        ..Components::default()
    };
    for task in &miner.tasks {
        if task.known {
            c.known_sent += 1;
        }
        let Some(vote) = task.vote else { continue };
        c.answered += 1;
        if task.known {
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
    finish(c, miner.collected, params)
}

/// Fills `accuracy`, `coverage`, `agreement` and `raw` from the counts of `c` (`raw` stays 0
/// unless `collected`).
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

    /// A miner answering `n` known pairs with `correct` right and the rest wrong, all answered.
    fn known_only(hotkey: &str, n: u32, correct: u32) -> MinerVotes {
        MinerVotes {
            hotkey: hotkey.into(),
            collected: true,
            tasks: (0..n)
                .map(|i| TaskVote {
                    pair_id: format!("k{i}"),
                    known: true,
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
                            vote: Some(vote),
                        }
                    })
                    .collect(),
            })
            .collect();
        score(&miners, &ScoreParams::default())
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
            finish(c, true, &ScoreParams::default())
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
        assert_eq!(finish(a, false, &ScoreParams::default()).raw, 0.0);
    }

    #[test]
    fn a_small_perfect_sample_does_not_beat_a_large_nearly_perfect_one() {
        let small = known_only("small", 2, 2);
        let large = known_only("large", 30, 28);
        let c = score(&[small, large], &ScoreParams::default());
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
        let c = score(&[half], &ScoreParams::default());
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
        let c = score(&miners, &ScoreParams::default());
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
                vote: Some(vote),
            }],
        };
        // Alone, or against one other vote: no majority among the others, nothing compared.
        let c = score(&[one("a", Vote::First)], &ScoreParams::default());
        assert_eq!(c[0].compared, 0);
        let c = score(
            &[one("a", Vote::First), one("b", Vote::Second)],
            &ScoreParams::default(),
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
            &ScoreParams::default(),
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
            &ScoreParams::default(),
        );
        let agreed: Vec<(u32, u32)> = c.iter().map(|c| (c.compared, c.agreed)).collect();
        assert_eq!(agreed, [(1, 1), (1, 1), (1, 1), (1, 0)]);
    }

    #[test]
    fn heavy_penalties_clamp_at_zero_and_nothing_answered_scores_nothing() {
        let liar = known_only("liar", 20, 0);
        let params = ScoreParams {
            wrong_penalty: 0.5,
            ..ScoreParams::default()
        };
        let c = score(&[liar], &params);
        assert_eq!(c[0].raw, 0.0);
        assert_eq!(c[0].score, 0.0, "all raw 0: all scores 0");
        let silent = MinerVotes {
            hotkey: "s".into(),
            collected: true,
            tasks: Vec::new(),
        };
        assert_eq!(score(&[silent], &params)[0].raw, 0.0);
    }

    #[test]
    fn a_tie_on_a_known_pair_is_answered_but_neither_right_nor_wrong() {
        let mut m = known_only("t", 4, 4);
        m.tasks[0].vote = Some(Vote::Tie);
        let c = score(&[m], &ScoreParams::default());
        assert_eq!(
            (c[0].known_answered, c[0].known_correct, c[0].known_wrong),
            (4, 3, 0)
        );
        assert!((c[0].accuracy - 5.0 / 8.0).abs() < 1e-12);
    }
}
