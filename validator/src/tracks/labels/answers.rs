//! The production [`AnswerSource`]: the best-scored models of the last scored epoch (the label
//! track's batches go out at the start of an epoch, while its model track is still running),
//! already in the artifact cache, run locally on the validator's device.
//!
//! Each model answers each prompt with `sampled` seeded samples (temperature
//! [`AnswerOptions::temperature`]), so even a single model gives different answers to pair, and
//! (when [`AnswerOptions::greedy`]) greedily. The label track samples only, with a seed from the
//! validator's secret: a greedy answer is what anyone running the model gets, so a known pair
//! whose real side is greedy could be answered by running the model.
//! Prompts are encoded as the evaluation encodes them (`BOS` + text); generation stops at `EOS`.
//! A model that fails to load or to generate is skipped with a log line: it only means fewer
//! open pairs this epoch.

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use subnet_model::backend::{BackendTask, Selected};
use subnet_model::competition::Competition;
use subnet_model::generate::{GenerateOptions, generate};
use subnet_model::tokenizer::Tokenizer;

use super::batch::AnswerSource;
use crate::db::ModelEvalRecord;
use crate::tracks::model::compute::load_checked;
use crate::tracks::model::outcome::Outcome;

/// How the models answer.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerOptions {
    /// Most tokens per answer.
    pub max_new_tokens: usize,
    /// Sampled answers per model and prompt.
    pub sampled: usize,
    /// Whether each model also answers greedily.
    pub greedy: bool,
    /// Temperature of the sampled answers.
    pub temperature: f64,
    /// Seed of the sampled answers (e.g. the first 8 bytes of the track seed).
    pub seed: u64,
}

impl Default for AnswerOptions {
    /// 24 tokens, two samples at temperature 0.8 and no greedy answer, seed 0.
    fn default() -> Self {
        Self {
            max_new_tokens: 24,
            sampled: 2,
            greedy: false,
            temperature: 0.8,
            seed: 0,
        }
    }
}

/// Answers from model artifacts on disk.
#[derive(Debug, Clone)]
pub struct ModelAnswers {
    /// Artifact directories, best model first.
    dirs: Vec<PathBuf>,
    /// Loading rules (architecture bounds, size limit).
    competition: Competition,
    /// Where to run them.
    device: Selected,
    /// Generation settings.
    options: AnswerOptions,
}

impl ModelAnswers {
    /// Answers from the artifacts in `dirs` (best first), loaded under `competition`'s rules.
    pub fn new(
        dirs: Vec<PathBuf>,
        competition: Competition,
        device: Selected,
        options: AnswerOptions,
    ) -> Self {
        Self {
            dirs,
            competition,
            device,
            options,
        }
    }

    /// The cache directories (`cache_dir/<manifest_sha256>`) of the `k` best-scored models of an
    /// epoch's stored model-track rows, best first (ties: lower uid); models with the same
    /// manifest appear once, and only scored (`ok`) models with a positive score count.
    pub fn top_models(evals: &[ModelEvalRecord], cache_dir: &Path, k: usize) -> Vec<PathBuf> {
        let ok = Outcome::Ok.code();
        let mut scored: Vec<(f64, i32, &str)> = evals
            .iter()
            .filter(|m| m.outcome == ok && m.score > 0.0)
            .filter_map(|m| Some((m.score, m.uid, m.manifest_sha256.as_deref()?)))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut dirs: Vec<PathBuf> = Vec::new();
        for (_, _, manifest) in scored {
            let dir = cache_dir.join(manifest);
            if !dirs.contains(&dir) && dirs.len() < k {
                dirs.push(dir);
            }
        }
        dirs
    }
}

impl AnswerSource for ModelAnswers {
    fn answers(&self, prompts: &[String]) -> Vec<Vec<String>> {
        self.ranked_answers(prompts)
            .into_iter()
            .map(|answers| answers.into_iter().map(|(a, _)| a).collect())
            .collect()
    }

    /// Each model's rank is its place among the top models (0: the best scored).
    fn ranked_answers(&self, prompts: &[String]) -> Vec<Vec<(String, u32)>> {
        let mut out = vec![Vec::new(); prompts.len()];
        for (rank, dir) in (0u32..).zip(&self.dirs) {
            let task = AnswerTask {
                dir,
                competition: &self.competition,
                prompts,
                options: &self.options,
            };
            match self.device.run(task) {
                Ok(answers) => {
                    for (all, mine) in out.iter_mut().zip(answers) {
                        all.extend(mine.into_iter().map(|a| (a, rank)));
                    }
                }
                Err(reason) => {
                    tracing::warn!(dir = %dir.display(), %reason, "label track: a top model cannot answer; skipped");
                }
            }
        }
        out
    }
}

/// One model answering every prompt, on the selected backend.
struct AnswerTask<'a> {
    dir: &'a Path,
    competition: &'a Competition,
    prompts: &'a [String],
    options: &'a AnswerOptions,
}

impl BackendTask for AnswerTask<'_> {
    type Output = Result<Vec<Vec<String>>, String>;

    fn run<B: Backend>(self, device: B::Device) -> Self::Output {
        let (_, model) =
            load_checked::<B>(self.dir, self.competition, &device).map_err(|e| e.to_string())?;
        let tokenizer = Tokenizer::from_model_dir(self.dir).map_err(|e| e.to_string())?;
        let eos = tokenizer.eos_id();
        let mut all = Vec::with_capacity(self.prompts.len());
        for (index, prompt) in self.prompts.iter().enumerate() {
            // As the model is scored: raw text after BOS, or a chat turn in a chat competition.
            let ids = match self.competition.prompt_ids(&tokenizer, prompt) {
                Ok(ids) => ids,
                Err(error) => {
                    tracing::debug!(%error, index, "label track: a prompt cannot be encoded; skipped");
                    all.push(Vec::new());
                    continue;
                }
            };
            let first = usize::from(!self.options.greedy);
            let mut answers = Vec::with_capacity(1 + self.options.sampled);
            for sample in first..=self.options.sampled {
                let options = GenerateOptions {
                    max_new_tokens: self.options.max_new_tokens,
                    temperature: if sample == 0 {
                        0.0
                    } else {
                        self.options.temperature
                    },
                    seed: self
                        .options
                        .seed
                        .wrapping_add((index as u64) << 8)
                        .wrapping_add(sample as u64),
                    stop_token: eos,
                };
                let mut output = match generate(&model, &ids, &options) {
                    Ok(output) => output,
                    // A prompt too long for this model's context: this prompt only.
                    Err(error) => {
                        tracing::debug!(%error, index, "label track: a prompt cannot be answered; skipped");
                        break;
                    }
                };
                if eos.is_some() && output.last().copied() == eos {
                    output.pop();
                }
                answers.push(tokenizer.decode(&output).map_err(|e| e.to_string())?);
            }
            all.push(answers);
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use subnet_model::backend::Cpu;
    use subnet_model::config::LlamaConfig;
    use subnet_model::io::save_artifact;

    fn tiny_config() -> LlamaConfig {
        LlamaConfig {
            max_position_embeddings: 48,
            ..LlamaConfig::tiny()
        }
    }

    fn eval(uid: i32, manifest: Option<&str>, outcome: &str, score: f64) -> ModelEvalRecord {
        ModelEvalRecord {
            hotkey: format!("hotkey{uid}"),
            uid,
            manifest_sha256: manifest.map(str::to_owned),
            commit_block: Some(1),
            outcome: outcome.into(),
            reason: String::new(),
            mean_loss: None,
            win_rate: None,
            score,
            sample_losses: Vec::new(),
            sample_tokens: Vec::new(),
            following: Vec::new(),
        }
    }

    #[test]
    fn the_answering_models_are_the_best_scored_distinct_artifacts() {
        let cache = Path::new("/cache");
        let evals = [
            eval(0, Some("aa"), "ok", 0.2),
            eval(1, Some("bb"), "ok", 0.5),
            // The same artifact as uid 1 (a copier scored by mistake): counted once.
            eval(2, Some("bb"), "ok", 0.5),
            // Failed or unscored rows never answer, however they are scored.
            eval(3, Some("cc"), "duplicate", 0.9),
            eval(4, Some("dd"), "ok", 0.0),
            eval(5, None, "ok", 0.7),
            eval(6, Some("ee"), "ok", 0.2),
        ];
        assert_eq!(
            ModelAnswers::top_models(&evals, cache, 2),
            vec![cache.join("bb"), cache.join("aa")],
            "best first; a tie goes to the lower uid"
        );
        assert_eq!(ModelAnswers::top_models(&evals, cache, 5).len(), 3);
        assert!(ModelAnswers::top_models(&evals, cache, 0).is_empty());
        assert!(ModelAnswers::top_models(&[], cache, 2).is_empty());
    }

    #[test]
    fn a_local_model_answers_every_prompt_greedily_and_sampled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let model = tiny_config().init_seeded::<Cpu>(&Default::default(), 7);
        save_artifact(&model, &tiny_config(), dir.path()).expect("save");
        let competition =
            Competition::from_toml(crate::eval_cmd::DEFAULT_COMPETITION_TOML).expect("toml");
        let missing = dir.path().join("missing");
        let source = ModelAnswers::new(
            vec![dir.path().to_path_buf(), missing],
            competition,
            Selected::Cpu(Default::default()),
            AnswerOptions {
                max_new_tokens: 6,
                sampled: 2,
                greedy: true,
                ..AnswerOptions::default()
            },
        );
        let prompts = vec!["12+7=".to_string(), "reverse(abc)=".to_string()];
        let answers = source.answers(&prompts);
        assert_eq!(answers.len(), 2);
        for per_prompt in &answers {
            assert_eq!(
                per_prompt.len(),
                3,
                "greedy + 2 samples; the missing model skipped"
            );
        }
        assert_eq!(
            source.answers(&prompts),
            answers,
            "seeded: the same answers again"
        );
    }
}
