//! The competition's base model: the public model every entry fine-tunes, held on the
//! validator's disk (`validator run --model.base DIR`) and checked against the competition's
//! `[base] manifest_sha256` before it is used.
//!
//! The track evaluates it each epoch on the same samples as the entries and gives its losses to
//! the scoring, where it holds the place of the earliest commitment of all
//! ([`subnet_model::score::score_models_over_base`]).

use std::path::{Path, PathBuf};

use subnet_common::protocol::manifest_of_dir;
use subnet_model::competition::Competition;

/// Why the base model cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BaseError {
    /// The competition pins a base and none was given.
    #[error(
        "competition {competition} pins base model {pinned}: pass its directory with \
         --model.base DIR (scripts/fetch-base-model.sh writes it to models/smollm2-135m)"
    )]
    Missing {
        /// The competition id.
        competition: String,
        /// The pinned manifest hash.
        pinned: String,
    },
    /// Reading the directory or a file failed (a missing `config.json` included).
    #[error("reading the base model {path}: {source}")]
    Io {
        /// The directory or file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The files are not the pinned base.
    #[error(
        "the model in {dir} has manifest {actual}, but competition {competition} pins base \
         {pinned}; fetch it again with scripts/fetch-base-model.sh {dir} --force"
    )]
    Mismatch {
        /// The directory.
        dir: PathBuf,
        /// The competition id.
        competition: String,
        /// Its manifest hash.
        actual: String,
        /// The pinned hash.
        pinned: String,
    },
}

/// A base model directory whose files hash to the competition's pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseModel {
    dir: PathBuf,
    manifest_sha256: String,
}

impl BaseModel {
    /// The base `competition` pins, read from `dir`: `None` when it pins none (a directory given
    /// anyway is not read); an error when it pins one and `dir` is absent or holds other files.
    /// Hashes every artifact file in `dir` (a few seconds for a 500 MB model).
    pub fn for_competition(
        competition: &Competition,
        dir: Option<&Path>,
    ) -> Result<Option<Self>, BaseError> {
        let Some(pin) = &competition.base else {
            return Ok(None);
        };
        let dir = dir.ok_or_else(|| BaseError::Missing {
            competition: competition.id.clone(),
            pinned: pin.manifest_sha256.clone(),
        })?;
        let manifest_sha256 = manifest_of_dir(&competition.id, dir)
            .map_err(|source| BaseError::Io {
                path: dir.to_path_buf(),
                source,
            })?
            .manifest_sha256;
        if manifest_sha256 != pin.manifest_sha256 {
            return Err(BaseError::Mismatch {
                dir: dir.to_path_buf(),
                competition: competition.id.clone(),
                actual: manifest_sha256,
                pinned: pin.manifest_sha256.clone(),
            });
        }
        Ok(Some(Self {
            dir: dir.to_path_buf(),
            manifest_sha256,
        }))
    }

    /// The model directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its manifest hash, lowercase hex (equal to the competition's pin).
    pub fn manifest_sha256(&self) -> &str {
        &self.manifest_sha256
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use subnet_model::competition::{BasePin, CompetitionFile};

    fn competition(pin: Option<String>) -> Competition {
        let mut competition =
            CompetitionFile::from_bytes(crate::eval_cmd::DEFAULT_COMPETITION_TOML.as_bytes())
                .unwrap()
                .competition;
        competition.base = pin.map(|manifest_sha256| BasePin { manifest_sha256 });
        competition
    }

    fn model_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), b"{}").unwrap();
        std::fs::write(dir.path().join("model.safetensors"), [1u8; 100]).unwrap();
        std::fs::write(dir.path().join("README.md"), b"not part of the artifact").unwrap();
        dir
    }

    #[test]
    fn the_pinned_base_loads_and_anything_else_is_refused_with_the_flag_named() {
        let dir = model_dir();
        let hash = manifest_of_dir("", dir.path()).unwrap().manifest_sha256;
        let pinned = competition(Some(hash.clone()));
        let base = BaseModel::for_competition(&pinned, Some(dir.path()))
            .unwrap()
            .unwrap();
        assert_eq!(base.manifest_sha256(), hash);

        // No pin: nothing to load, whatever is given.
        assert_eq!(
            BaseModel::for_competition(&competition(None), Some(Path::new("/nonexistent")))
                .unwrap(),
            None
        );
        // A pin and no directory: the flag is named.
        let missing = BaseModel::for_competition(&pinned, None).unwrap_err();
        assert!(missing.to_string().contains("--model.base"), "{missing}");
        // Other bytes: refused, both hashes named.
        std::fs::write(dir.path().join("model.safetensors"), [2u8; 100]).unwrap();
        let other = BaseModel::for_competition(&pinned, Some(dir.path())).unwrap_err();
        assert!(matches!(other, BaseError::Mismatch { .. }), "{other}");
        assert!(other.to_string().contains(&hash), "{other}");
        // Not a model directory.
        std::fs::remove_file(dir.path().join("config.json")).unwrap();
        let empty = BaseModel::for_competition(&pinned, Some(dir.path())).unwrap_err();
        assert!(empty.to_string().contains("no config.json"), "{empty}");
    }
}
