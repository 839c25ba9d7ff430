//! The devnet: one command runs a whole local subnet as real processes and prints who earned
//! what.
//!
//! | module | what |
//! |---|---|
//! | [`competition`] | `--competition`: the rules the validators get, the id miners commit under, the base model |
//! | [`cli`] | flags (`--miners`, `--validators`, `--epochs`, `--tempo`, `--db.url`, `--keep`, …) |
//! | [`bins`] | finds `devchain`, `miner`, `validator` beside the `devnet` executable |
//! | [`postgres`] | a throwaway Postgres cluster (or `--db.url`), one database per validator and label miner |
//! | [`process`] | one-shot commands with deadlines; services with logs, stopped by SIGTERM then SIGKILL |
//! | [`roster`] | the roles (strong, weak, copier, broken, the adversarial roster's attackers, label miners, validators) and their dev keys |
//! | [`attacks`] | the copies attackers make of the strong model (changed config, permuted units, noise, sharpened logits) |
//! | [`selective`] | the proxy of the adversarial roster's `selective` miner, which serves one validator only |
//! | [`report`] | the per-epoch table and `summary.json` from the metagraph and a validator's leaderboard |
//! | [`progress`] | start-up steps as spinners on a terminal, plain lines otherwise |
//! | [`shape`] | the run's size (members, block time, samples, fine-tuning, label answers), filled in for the competition |
//! | [`run`] | the orchestration: start, watch the epochs, stop, summarise |

pub mod attacks;
pub mod bins;
pub mod cli;
pub mod competition;
pub mod postgres;
pub mod process;
pub mod progress;
pub mod report;
pub mod roster;
pub mod run;
pub mod selective;
pub mod shape;
