//! The devnet's shape: what the flags say, with what they leave out filled in for the
//! competition. Byte-level toys are cheap: four miners, two validators, fast blocks, long
//! fine-tunes. A real pretrained model (a competition that pins its tokenizer, SmolLM2's 135M
//! parameters) takes about 10 s per fine-tuning step of 8 samples and 8 s per 16 evaluation
//! samples on 2 cores (release build), and generates about 30 tokens/s: fewer members, fewer
//! samples, slower blocks, short gentle fine-tunes.

use crate::cli::Cli;
use crate::competition::Competition;
use crate::roster::RosterKind;

/// The resolved settings of one devnet run.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    /// Model-track miners of the standard roster.
    pub miners: u8,
    /// Validators.
    pub validators: u8,
    /// Milliseconds between blocks.
    pub block_time_ms: u64,
    /// Evaluation samples per model and epoch (`None`: the competition's own count).
    pub eval_samples: Option<u32>,
    /// Open instructions per model and epoch (`None`: the competition's own count).
    pub open_samples: Option<u32>,
    /// Fine-tuning steps of the strong miner.
    pub strong_steps: usize,
    /// Fine-tuning steps of the weak miner (and the sybils').
    pub weak_steps: usize,
    /// Fine-tuning learning rate, as `miner finetune --lr` takes it.
    pub lr: &'static str,
    /// Fine-tuning samples per step.
    pub batch: &'static str,
    /// Label prompts the validators answer each epoch.
    pub label_prompts: u32,
    /// Most tokens of a label answer.
    pub label_tokens: u32,
}

impl Shape {
    /// `cli`'s settings for `competition`.
    pub fn new(cli: &Cli, competition: &Competition) -> Self {
        if competition.pins_tokenizer {
            // A real model: 8 steps at 1e-4 already lower the chat competition's loss from 6.5 to
            // about 2 (docs/benchmarks.md), where the toys' rate would undo its pretraining.
            // Answering 16 prompts in up to 32 tokens with two models took 150 s beside the
            // evaluation of three models (devnet, 2 cores), past the label window (the first
            // three quarters of a 168 s epoch at 8 s blocks): 12 prompts in up to 24 tokens.
            Self {
                miners: cli.miners.unwrap_or(2),
                validators: cli.validators.unwrap_or(1),
                block_time_ms: cli.block_time_ms.unwrap_or(8000),
                eval_samples: cli.eval_samples.or(Some(16)),
                // The competition's 16 instructions of up to 96 tokens, answered in one batch:
                // about 14 s per model and validator on 2 cores (docs/benchmarks.md).
                open_samples: cli.open_samples,
                strong_steps: cli.strong_steps.unwrap_or(8),
                weak_steps: cli.weak_steps.unwrap_or(1),
                lr: "1e-4",
                batch: "8",
                label_prompts: 12,
                label_tokens: 24,
            }
        } else {
            // Toys learn fast at a high rate: 150 steps make a clear leader, 5 a weak one. Bytes
            // are answered cheaply: short answers to many prompts (every starter prompt for the
            // labels roster's nine labelers).
            Self {
                miners: cli.miners.unwrap_or(4),
                // A selective miner's attack fails only where the validator it serves holds
                // less than κ (about half) of the stake: three of them.
                validators: cli.validators.unwrap_or(match cli.roster {
                    RosterKind::Adversarial => 3,
                    _ => 2,
                }),
                block_time_ms: cli.block_time_ms.unwrap_or(500),
                eval_samples: cli.eval_samples,
                open_samples: cli.open_samples,
                strong_steps: cli.strong_steps.unwrap_or(150),
                weak_steps: cli.weak_steps.unwrap_or(5),
                lr: "1e-3",
                batch: "16",
                label_prompts: match cli.roster {
                    RosterKind::Labels => 160,
                    _ => 96,
                },
                label_tokens: 12,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn shape(args: &[&str]) -> Shape {
        let cli = Cli::try_parse_from(args).unwrap();
        let competition = Competition::load(&cli.competition).unwrap();
        Shape::new(&cli, &competition)
    }

    #[test]
    fn the_default_devnet_keeps_its_quick_shape() {
        let toy = shape(&["devnet"]);
        assert_eq!((toy.miners, toy.validators, toy.block_time_ms), (4, 2, 500));
        assert_eq!(toy.eval_samples, None);
        assert!(toy.strong_steps > toy.weak_steps);
        assert_eq!(shape(&["devnet", "--roster", "labels"]).label_prompts, 160);
        // The selective miner's attack fails only against three validators or more.
        assert_eq!(shape(&["devnet", "--roster", "adversarial"]).validators, 3);
        let two = shape(&["devnet", "--roster", "adversarial", "--validators", "2"]);
        assert_eq!(two.validators, 2);
    }

    #[test]
    fn a_real_model_gets_fewer_members_slower_blocks_and_gentle_tuning() {
        let (toy, smol) = (
            shape(&["devnet"]),
            shape(&["devnet", "--competition", "smollm2-135m"]),
        );
        assert!(smol.miners < toy.miners && smol.validators < toy.validators);
        assert!(smol.block_time_ms > toy.block_time_ms);
        assert_eq!((smol.eval_samples, smol.open_samples), (Some(16), None));
        assert!(smol.strong_steps > smol.weak_steps && smol.strong_steps < toy.strong_steps);
        assert!(smol.lr.parse::<f64>().unwrap() < toy.lr.parse::<f64>().unwrap());
        assert!(smol.label_prompts < toy.label_prompts && smol.label_tokens > toy.label_tokens);
    }

    #[test]
    fn flags_win_over_the_competitions_defaults() {
        let chosen = shape(&[
            "devnet",
            "--competition",
            "smollm2-135m",
            "--miners",
            "3",
            "--validators",
            "2",
            "--block-time-ms",
            "6000",
            "--eval-samples",
            "8",
            "--open-samples",
            "2",
            "--strong-steps",
            "3",
        ]);
        assert_eq!(
            (chosen.miners, chosen.validators, chosen.block_time_ms),
            (3, 2, 6000)
        );
        assert_eq!((chosen.eval_samples, chosen.strong_steps), (Some(8), 3));
        assert_eq!(chosen.open_samples, Some(2));
        assert_eq!(shape(&["devnet", "--miners", "1"]).miners, 1);
    }
}
