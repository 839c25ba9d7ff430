//! Which competition a devnet runs (`--competition`): the rules its validators get, the id its
//! miners serve and commit under, and where its base model comes from.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The built-in competitions, by the name `--competition` takes: the repository's
/// `competitions/NAME.toml`.
const BUILT_IN: [(&str, &str); 2] = [
    ("default", include_str!("../../competitions/default.toml")),
    (
        "smollm2-135m",
        include_str!("../../competitions/smollm2-135m.toml"),
    ),
];

/// Where `scripts/fetch-base-model.sh` puts SmolLM2-135M-Instruct when given no directory,
/// relative to the repository root.
pub const SMOLLM2_BASE: &str = "models/smollm2-135m";

/// What `--competition` names: a built-in competition or a competition file.
#[derive(Debug, Clone, PartialEq)]
pub enum CompetitionChoice {
    BuiltIn(&'static str),
    File(PathBuf),
}

impl CompetitionChoice {
    /// `default`, `smollm2-135m`, or the path of a competition TOML file.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some((name, _)) = BUILT_IN.iter().find(|(name, _)| *name == text) {
            return Ok(Self::BuiltIn(name));
        }
        let path = PathBuf::from(text);
        if path.extension().is_some_and(|e| e == "toml") || path.components().count() > 1 {
            return Ok(Self::File(path));
        }
        let names: Vec<&str> = BUILT_IN.iter().map(|(name, _)| *name).collect();
        Err(format!(
            "no built-in competition {text:?}: use one of {} or the path of a competition .toml \
             file",
            names.join(", ")
        ))
    }
}

/// A devnet's competition, read and checked.
#[derive(Debug, Clone)]
pub struct Competition {
    /// The rules as TOML, with `[eval] samples` and `[open] samples` replaced where
    /// `--eval-samples` and `--open-samples` say so.
    table: toml::Table,
    /// The id miners serve and commit under.
    pub id: String,
    /// For messages: `smollm2-135m`, or the file's path.
    pub name: String,
    /// Whether the competition pins a tokenizer (`[tokenizer] sha256`), so its base cannot be
    /// the random byte-level `miner init-base --preset tiny`.
    pub pins_tokenizer: bool,
    /// The built-in SmolLM2 competition, whose base `scripts/fetch-base-model.sh` fetches.
    smollm2: bool,
}

impl Competition {
    /// Reads the competition `choice` names.
    pub fn load(choice: &CompetitionChoice) -> anyhow::Result<Self> {
        let (name, text, smollm2) = match choice {
            CompetitionChoice::BuiltIn(name) => {
                let text = BUILT_IN
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, text)| (*text).to_owned())
                    .with_context(|| format!("no built-in competition {name:?}"))?;
                ((*name).to_owned(), text, *name == "smollm2-135m")
            }
            CompetitionChoice::File(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!(
                        "--competition {}: cannot read it (a competition file as in \
                         competitions/)",
                        path.display()
                    )
                })?;
                (path.display().to_string(), text, false)
            }
        };
        let table: toml::Table = text
            .parse()
            .with_context(|| format!("--competition {name}: not TOML"))?;
        let id = table
            .get("id")
            .and_then(toml::Value::as_str)
            .with_context(|| format!("--competition {name}: no `id`"))?
            .to_owned();
        let pins_tokenizer = table
            .get("tokenizer")
            .and_then(toml::Value::as_table)
            .is_some_and(|t| t.contains_key("sha256"));
        Ok(Self {
            table,
            id,
            name,
            pins_tokenizer,
            smollm2,
        })
    }

    /// The same rules with `samples` evaluation samples and `open` open instructions when given
    /// (the id stays, so the miners' commitments still name it). Open instructions need a
    /// competition that scores them.
    pub fn with_samples(mut self, samples: Option<u32>, open: Option<u32>) -> anyhow::Result<Self> {
        let counts = [
            ("eval", samples, "--eval-samples", ""),
            (
                "open",
                open,
                "--open-samples",
                " (chat competitions such as smollm2-135m score open instructions)",
            ),
        ];
        for (section, count, flag, hint) in counts {
            let Some(count) = count else {
                continue;
            };
            let name = &self.name;
            let table = self
                .table
                .get_mut(section)
                .and_then(toml::Value::as_table_mut)
                .with_context(|| {
                    format!("{flag}: --competition {name} has no [{section}] table{hint}")
                })?;
            table.insert("samples".into(), toml::Value::Integer(i64::from(count)));
        }
        Ok(self)
    }

    /// The manifest hash of the base model the competition pins (`[base] manifest_sha256`).
    pub fn base_pin(&self) -> Option<&str> {
        self.table
            .get("base")
            .and_then(toml::Value::as_table)
            .and_then(|t| t.get("manifest_sha256"))
            .and_then(toml::Value::as_str)
    }

    /// Pins the base model whose files are in `dir`, so the validators score only models that
    /// beat it: a competition that pins one must pin these files (else an error naming both
    /// hashes), one that pins none gets `[base] manifest_sha256` of them.
    pub fn pin_base(&mut self, dir: &Path) -> anyhow::Result<()> {
        let hash = subnet_common::protocol::manifest_of_dir(&self.id, dir)
            .with_context(|| format!("while hashing the base model {}", dir.display()))?
            .manifest_sha256;
        match self.base_pin() {
            Some(pinned) if pinned == hash => Ok(()),
            Some(pinned) => bail!(
                "the base model {} is not the one --competition {} pins: its files hash to {hash}, \
                 the competition's [base] to {pinned}; run scripts/fetch-base-model.sh {} --force",
                dir.display(),
                self.name,
                dir.display()
            ),
            None => {
                let mut base = toml::Table::new();
                base.insert("manifest_sha256".into(), toml::Value::String(hash));
                self.table.insert("base".into(), toml::Value::Table(base));
                Ok(())
            }
        }
    }

    /// The rules as the validators' `--competition` file.
    pub fn to_toml(&self) -> anyhow::Result<String> {
        toml::to_string(&self.table).context("while writing the competition")
    }

    /// The base model directory the miners fine-tune: `given` (`--base-model`), else for the
    /// SmolLM2 competition the fetch script's directory when it is there. `None`: the devnet
    /// makes a random byte-level base (`miner init-base --preset tiny`), which only a competition
    /// without a pinned tokenizer admits.
    pub fn base_dir(&self, given: Option<&Path>) -> anyhow::Result<Option<PathBuf>> {
        if let Some(dir) = given {
            check_model_dir(
                &format!("--base-model {}", dir.display()),
                dir,
                "`scripts/fetch-base-model.sh DIR` or `miner init-base --out DIR`",
            )?;
            return Ok(Some(dir.to_path_buf()));
        }
        if !self.pins_tokenizer {
            return Ok(None);
        }
        let fetched = Path::new(SMOLLM2_BASE);
        if self.smollm2 && fetched.join("model.safetensors").is_file() {
            return Ok(Some(fetched.to_path_buf()));
        }
        let hint = if self.smollm2 {
            format!(
                "run scripts/fetch-base-model.sh (it writes {SMOLLM2_BASE}) or pass --base-model \
                 DIR"
            )
        } else {
            "pass --base-model DIR".to_owned()
        };
        bail!(
            "--competition {} pins its base's tokenizer, so the miners need that base: {hint}",
            self.name
        )
    }
}

/// Fails, naming `flag` (as the user wrote it) and the missing file, unless `dir` holds a model
/// (`config.json` and `model.safetensors`); `made_by` says what writes one.
pub fn check_model_dir(flag: &str, dir: &Path, made_by: &str) -> anyhow::Result<()> {
    for file in ["config.json", "model.safetensors"] {
        if !dir.join(file).is_file() {
            bail!(
                "{flag}: no {file} there (a model directory holds config.json and \
                 model.safetensors, as {made_by} writes them)"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_built_ins_and_takes_paths() {
        assert_eq!(
            CompetitionChoice::parse("smollm2-135m").unwrap(),
            CompetitionChoice::BuiltIn("smollm2-135m")
        );
        assert_eq!(
            CompetitionChoice::parse("mine.toml").unwrap(),
            CompetitionChoice::File("mine.toml".into())
        );
        let err = CompetitionChoice::parse("smollm3").unwrap_err();
        assert!(err.contains("default, smollm2-135m"), "{err}");
    }

    #[test]
    fn the_base_is_pinned_where_none_is_and_must_match_where_one_is() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), b"{}").unwrap();
        std::fs::write(dir.path().join("model.safetensors"), [1u8; 64]).unwrap();
        let hash = subnet_common::protocol::manifest_of_dir("", dir.path())
            .unwrap()
            .manifest_sha256;
        let mut default = Competition::load(&CompetitionChoice::BuiltIn("default")).unwrap();
        assert_eq!(default.base_pin(), None);
        default.pin_base(dir.path()).unwrap();
        assert_eq!(default.base_pin(), Some(hash.as_str()));
        let written: toml::Table = default.to_toml().unwrap().parse().unwrap();
        assert_eq!(
            written["base"]["manifest_sha256"].as_str(),
            Some(hash.as_str())
        );
        // The same files again: fine. Other files under a pin: refused, with the fix.
        default.pin_base(dir.path()).unwrap();
        let mut smollm2 = Competition::load(&CompetitionChoice::BuiltIn("smollm2-135m")).unwrap();
        assert!(smollm2.base_pin().is_some());
        let err = smollm2.pin_base(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(&hash) && err.contains("scripts/fetch-base-model.sh"),
            "{err}"
        );
    }

    #[test]
    fn samples_change_only_the_sample_count() {
        let plain = Competition::load(&CompetitionChoice::BuiltIn("default")).unwrap();
        let fewer = plain.clone().with_samples(Some(32), None).unwrap();
        let (mut plain, fewer): (toml::Table, toml::Table) = (
            plain.to_toml().unwrap().parse().unwrap(),
            fewer.to_toml().unwrap().parse().unwrap(),
        );
        assert_eq!(fewer["eval"]["samples"].as_integer(), Some(32));
        plain["eval"]
            .as_table_mut()
            .unwrap()
            .insert("samples".into(), toml::Value::Integer(32));
        assert_eq!(plain, fewer);
        assert_eq!(fewer["id"].as_str(), Some("byte-llama-v1"));

        // Open instructions: only where the competition scores them.
        let err = Competition::load(&CompetitionChoice::BuiltIn("default"))
            .unwrap()
            .with_samples(None, Some(4))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--open-samples") && err.contains("[open]"),
            "{err}"
        );
        let smol = Competition::load(&CompetitionChoice::BuiltIn("smollm2-135m")).unwrap();
        let table: toml::Table = smol
            .with_samples(None, Some(4))
            .unwrap()
            .to_toml()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(table["open"]["samples"].as_integer(), Some(4));
        assert_eq!(table["open"]["max_new_tokens"].as_integer(), Some(96));
    }

    #[test]
    fn a_pinned_tokenizer_needs_a_base_model() {
        let default = Competition::load(&CompetitionChoice::BuiltIn("default")).unwrap();
        assert!(!default.pins_tokenizer);
        assert_eq!(default.base_dir(None).unwrap(), None);

        let smol = Competition::load(&CompetitionChoice::BuiltIn("smollm2-135m")).unwrap();
        assert!(smol.pins_tokenizer);
        assert_eq!(smol.id, "smollm2-135m-v2");
        // Tests run in the crate's directory, where no fetched base is.
        let err = smol.base_dir(None).unwrap_err().to_string();
        assert!(err.contains("scripts/fetch-base-model.sh"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let err = smol.base_dir(Some(dir.path())).unwrap_err().to_string();
        assert!(
            err.contains("--base-model") && err.contains("config.json"),
            "{err}"
        );
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        std::fs::write(dir.path().join("model.safetensors"), "").unwrap();
        assert_eq!(
            smol.base_dir(Some(dir.path())).unwrap().as_deref(),
            Some(dir.path())
        );
    }

    #[test]
    fn a_missing_file_is_named() {
        let choice = CompetitionChoice::File("/nonexistent/c.toml".into());
        let err = format!("{:#}", Competition::load(&choice).unwrap_err());
        assert!(err.contains("--competition /nonexistent/c.toml"), "{err}");
    }
}
