//! Finding the sibling binaries the devnet runs: `devchain`, `miner`, `validator`.
//!
//! The devnet builds nothing itself. Cargo puts every binary of the workspace in the same
//! folder (`target/release` or `target/debug`), so the default place to look is the folder of
//! the running `devnet` executable.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// Paths of the three programs a devnet runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binaries {
    /// The dev chain node and its `genesis`, `tx`, `metagraph` commands.
    pub devchain: PathBuf,
    /// The miner: `init-base`, `finetune`, `register`, `commit`, `serve`, `labelers`.
    pub miner: PathBuf,
    /// The validator: `run`.
    pub validator: PathBuf,
}

/// Names of the binaries, in the order of [`Binaries`]' fields.
pub const NAMES: [&str; 3] = ["devchain", "miner", "validator"];

impl Binaries {
    /// The binaries in `dir`, or an error naming the missing ones and the build command.
    pub fn in_dir(dir: &Path) -> anyhow::Result<Self> {
        let path = |name: &str| dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
        let missing: Vec<&str> = NAMES
            .iter()
            .copied()
            .filter(|name| !path(name).is_file())
            .collect();
        if !missing.is_empty() {
            anyhow::bail!(
                "{} not found in {}. The devnet runs the workspace's binaries and builds nothing \
                 itself: run `cargo build --release --bins` first, then `target/release/devnet` \
                 (or pass --bin-dir DIR)",
                missing.join(", "),
                dir.display()
            );
        }
        Ok(Self {
            devchain: path("devchain"),
            miner: path("miner"),
            validator: path("validator"),
        })
    }

    /// The binaries in `dir`, or beside the running executable when `dir` is `None`.
    pub fn locate(dir: Option<&Path>) -> anyhow::Result<Self> {
        match dir {
            Some(dir) => Self::in_dir(dir),
            None => {
                let exe = std::env::current_exe()
                    .context("while finding the devnet executable's folder")?;
                let dir = exe.parent().with_context(|| {
                    format!("the executable {} has no parent folder", exe.display())
                })?;
                Self::in_dir(dir)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_every_missing_binary_and_the_build_command() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("miner"), b"").unwrap();
        let message = format!("{:#}", Binaries::in_dir(dir.path()).unwrap_err());
        assert!(
            message.contains("devchain, validator not found"),
            "{message}"
        );
        assert!(
            message.contains("cargo build --release --bins"),
            "{message}"
        );
    }

    #[test]
    fn finds_all_three_in_one_folder() {
        let dir = tempfile::tempdir().unwrap();
        for name in NAMES {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let bins = Binaries::in_dir(dir.path()).unwrap();
        assert_eq!(bins.validator, dir.path().join("validator"));
    }
}
