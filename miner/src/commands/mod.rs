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
    competition::{Competition, CompetitionFile},
    config::LlamaConfig,
};

/// Loads the competition file at `path`, or the built-in default (`competitions/default.toml`).
pub fn load_competition(path: Option<&Path>) -> anyhow::Result<Competition> {
    let file = CompetitionFile::load_or_default(path).with_context(|| match path {
        Some(path) => format!("--competition {}", path.display()),
        None => "while reading the built-in competitions/default.toml".to_string(),
    })?;
    Ok(file.competition)
}

/// Errors when `config` is outside the competition's architecture bounds, naming the dimension.
pub fn check_bounds(config: &LlamaConfig, competition: &Competition) -> anyhow::Result<()> {
    let dims = config.dims();
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
