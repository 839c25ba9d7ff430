//! The operator's commands besides `serve`: make and train a model, join a subnet, commit a model.
//!
//! | module | command |
//! |---|---|
//! | [`init_base`] | `miner init-base`: a random base model within the competition's bounds |
//! | [`finetune`] | `miner finetune`: AdamW on tasks or a JSONL dataset, checkpoints, resume |
//! | [`chain`] | `miner register` (burned registration) and `miner commit` (model commitment) |

pub mod chain;
pub mod finetune;
pub mod init_base;

use std::path::Path;

use anyhow::Context;
use subnet_model::{
    competition::{ArchitectureDims, Competition, CompetitionFile},
    config::LlamaConfig,
};

/// The built-in competition (`competitions/default.toml`), used when no file is given.
pub const DEFAULT_COMPETITION_TOML: &str = include_str!("../../../competitions/default.toml");

/// Loads the competition file at `path`, or the built-in default.
pub fn load_competition(path: Option<&Path>) -> anyhow::Result<Competition> {
    match path {
        Some(path) => CompetitionFile::load(path)
            .map(|file| file.competition)
            .with_context(|| format!("--competition {}", path.display())),
        None => Competition::from_toml(DEFAULT_COMPETITION_TOML)
            .context("while reading the built-in competitions/default.toml"),
    }
}

/// Errors when `config` is outside the competition's architecture bounds, naming the dimension.
pub fn check_bounds(config: &LlamaConfig, competition: &Competition) -> anyhow::Result<()> {
    let dims = ArchitectureDims {
        layers: config.num_hidden_layers as u64,
        hidden_size: config.hidden_size as u64,
        intermediate_size: config.intermediate_size as u64,
        attention_heads: config.num_attention_heads as u64,
        key_value_heads: config.num_key_value_heads as u64,
        vocab_size: config.vocab_size as u64,
        max_position_embeddings: config.max_position_embeddings as u64,
        params: config.num_parameters(),
    };
    competition.architecture.check(&dims).with_context(|| {
        format!(
            "the model does not fit competition {:?}; pick a smaller architecture",
            competition.id
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_competition_is_the_one_the_miner_serves_by_default() {
        let competition = load_competition(None).unwrap();
        assert_eq!(competition.id, crate::artifact::DEFAULT_COMPETITION);
    }

    #[test]
    fn a_missing_competition_file_names_the_flag() {
        let err = load_competition(Some(Path::new("/nonexistent/comp.toml"))).unwrap_err();
        assert!(format!("{err:#}").contains("--competition /nonexistent/comp.toml"));
    }
}
