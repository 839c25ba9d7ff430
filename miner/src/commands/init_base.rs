//! `miner init-base`: the base model to fine-tune from, randomly initialised or imported.
//!
//! Writes an HF-style artifact directory (`config.json` + `model.safetensors`, `LlamaForCausalLM`
//! tensor names) whose architecture is checked against the competition's bounds first, so a model
//! started here can always be entered. Random weights are drawn from `--seed` on the CPU backend,
//! so the same flags give the same bytes; `--from-gguf FILE` imports a pretrained llama.cpp model
//! instead (with its `tokenizer.json` and chat template; [`subnet_model::import`]).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use subnet_model::{
    backend::Cpu,
    competition::Competition,
    config::LlamaConfig,
    import::{ImportLimits, read_gguf, read_hf},
    io::save_artifact,
    tokenizer::{BOS, BYTE_VOCAB_SIZE, EOS, PAD},
};

use super::{check_bounds, load_competition};

/// Architectures `miner init-base` knows by name, all on the built-in byte-level tokenizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    /// 2 layers, 64 wide (~0.1 M parameters): for tests and smoke runs.
    Tiny,
    /// 6 layers, 256 wide, 8 query / 4 key-value heads (~4.5 M parameters).
    Small,
}

impl Preset {
    /// The preset's model configuration.
    pub fn config(self) -> LlamaConfig {
        let (hidden, intermediate, layers, heads, kv_heads, positions) = match self {
            Self::Tiny => (64, 176, 2, 4, 2, 256),
            Self::Small => (256, 688, 6, 8, 4, 512),
        };
        LlamaConfig {
            hidden_size: hidden,
            intermediate_size: intermediate,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            num_key_value_heads: kv_heads,
            vocab_size: BYTE_VOCAB_SIZE,
            max_position_embeddings: positions,
            rms_norm_eps: 1e-5,
            rope_theta: 10_000.0,
            tie_word_embeddings: false,
            bos_token_id: Some(BOS),
            eos_token_id: Some(EOS),
            pad_token_id: Some(PAD),
        }
    }
}

/// `miner init-base`.
#[derive(Debug, Clone, Args)]
pub struct InitBaseArgs {
    /// Directory to write `config.json` and `model.safetensors` to (created if missing).
    #[arg(long, env = "MINER_INIT_OUT")]
    pub out: PathBuf,

    /// An HF `config.json` giving the architecture (instead of `--preset`).
    #[arg(long, env = "MINER_INIT_CONFIG", conflicts_with = "preset")]
    pub config: Option<PathBuf>,

    /// A named architecture.
    #[arg(long, env = "MINER_INIT_PRESET", value_enum, default_value = "small")]
    pub preset: Preset,

    /// Seed of the random weights.
    #[arg(long, env = "MINER_INIT_SEED", default_value_t = 0)]
    pub seed: u64,

    /// Import this llama.cpp GGUF file (e.g. SmolLM2-135M-Instruct, see
    /// `scripts/fetch-base-model.sh`) instead of drawing random weights.
    #[arg(
        long = "from-gguf",
        env = "MINER_INIT_FROM_GGUF",
        value_name = "FILE",
        conflicts_with_all = ["config", "preset", "seed"]
    )]
    pub from_gguf: Option<PathBuf>,

    /// Import this Hugging Face snapshot directory (`config.json`, `model.safetensors` or shards
    /// with `model.safetensors.index.json`, `tokenizer.json`, `tokenizer_config.json`) instead of
    /// drawing random weights.
    #[arg(
        long = "from-hf",
        env = "MINER_INIT_FROM_HF",
        value_name = "DIR",
        conflicts_with_all = ["config", "preset", "seed", "from_gguf"]
    )]
    pub from_hf: Option<PathBuf>,

    /// Competition file whose architecture bounds the model must meet (default: the built-in
    /// `competitions/default.toml`).
    #[arg(long, env = "MINER_COMPETITION_FILE")]
    pub competition: Option<PathBuf>,

    /// Replace the files of a non-empty `--out` directory.
    #[arg(long)]
    pub force: bool,
}

/// Creates the base model and prints where it went.
pub fn run(args: &InitBaseArgs, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    let competition = load_competition(args.competition.as_deref())?;
    if let Some(file) = &args.from_gguf {
        return import_base(Source::Gguf(file), &competition, &args.out, args.force, out);
    }
    if let Some(dir) = &args.from_hf {
        return import_base(Source::Hf(dir), &competition, &args.out, args.force, out);
    }
    let config = match &args.config {
        Some(path) => LlamaConfig::from_file(path).with_context(|| {
            format!(
                "--config {}: while reading the model config",
                path.display()
            )
        })?,
        None => args.preset.config(),
    };
    let params = init_base(&config, &competition, &args.out, args.seed, args.force)?;
    writeln!(
        out,
        "wrote a random base model to {} ({} layers, hidden {}, {params} parameters, seed {})",
        args.out.display(),
        config.num_hidden_layers,
        config.hidden_size,
        args.seed
    )
    .context("while printing the result")?;
    Ok(())
}

/// Draws a model for `config` from `seed` and saves it to `dir`; returns its parameter count.
/// Refuses a config outside `competition`'s bounds, and a non-empty `dir` unless `force`.
pub fn init_base(
    config: &LlamaConfig,
    competition: &Competition,
    dir: &Path,
    seed: u64,
    force: bool,
) -> anyhow::Result<u64> {
    check_bounds(config, competition)?;
    ensure_empty_or_forced(dir, force, "--out")?;
    let device = Default::default();
    let model = config.init_seeded::<Cpu>(&device, seed);
    save_artifact(&model, config, dir)
        .with_context(|| format!("while writing the base model to {}", dir.display()))?;
    Ok(config.num_parameters())
}

/// Where a pretrained base comes from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// A llama.cpp GGUF file (`--from-gguf`).
    Gguf(&'a Path),
    /// A Hugging Face snapshot directory (`--from-hf`).
    Hf(&'a Path),
}

impl Source<'_> {
    fn flag(&self) -> String {
        match self {
            Source::Gguf(path) => format!("--from-gguf {}", path.display()),
            Source::Hf(path) => format!("--from-hf {}", path.display()),
        }
    }
}

/// Imports the model at `source` into `dir` once its architecture fits `competition`; prints
/// what it wrote.
pub fn import_base(
    source: Source<'_>,
    competition: &Competition,
    dir: &Path,
    force: bool,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    ensure_empty_or_forced(dir, force, "--out")?;
    let started = std::time::Instant::now();
    let limits = ImportLimits::default();
    let import = match source {
        Source::Gguf(file) => read_gguf(file, &limits),
        Source::Hf(snapshot) => read_hf(snapshot, &limits),
    }
    .with_context(|| format!("{}: cannot import it", source.flag()))?;
    check_bounds(&import.config, competition).with_context(|| {
        format!(
            "{}: pass the competition it is for with --competition \
             (e.g. competitions/smollm2-135m.toml)",
            source.flag()
        )
    })?;
    import
        .write(dir)
        .with_context(|| format!("while writing the base model to {}", dir.display()))?;
    let config = &import.config;
    let types: Vec<String> = import
        .tensor_types
        .iter()
        .map(|(kind, n)| format!("{n} {kind}"))
        .collect();
    writeln!(
        out,
        "imported {} into {} in {:.1}s: {} layers, hidden {}, vocabulary {}, {} parameters \
         (f32, from {}); tokenizer.json{}",
        import.name.as_deref().unwrap_or("the model"),
        dir.display(),
        started.elapsed().as_secs_f64(),
        config.num_hidden_layers,
        config.hidden_size,
        config.vocab_size,
        config.num_parameters(),
        types.join(", "),
        match (import.has_tokenizer(), import.chat_template) {
            (true, true) => " and its chat template",
            (true, false) => ", no chat template",
            (false, _) => ": none (the byte-level tokenizer)",
        }
    )
    .context("while printing the result")?;
    Ok(())
}

/// Errors unless `dir` is missing, empty, or `force` is set. `flag` names the option in the
/// message.
pub fn ensure_empty_or_forced(dir: &Path, force: bool, flag: &str) -> anyhow::Result<()> {
    let mut entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(e).with_context(|| format!("{flag} {}: cannot read it", dir.display()));
        }
    };
    if entries.next().is_some() && !force {
        bail!(
            "{flag} {} is not empty; pass --force to overwrite its model files",
            dir.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use subnet_model::io::load_artifact;

    /// The CPU backend's seeded RNG is process-wide: tests that draw weights take turns.
    static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn rng_turn() -> std::sync::MutexGuard<'static, ()> {
        RNG.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn default_competition() -> Competition {
        load_competition(None).unwrap()
    }

    #[test]
    fn an_import_names_the_flag_and_the_file_it_could_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.gguf");
        let out = dir.path().join("base");
        let err = import_base(
            Source::Gguf(&missing),
            &default_competition(),
            &out,
            false,
            &mut Vec::new(),
        )
        .unwrap_err();
        let message = format!("{err:#}");
        assert!(message.starts_with("--from-gguf "), "{message}");
        assert!(message.contains("nope.gguf"), "{message}");
        assert!(!out.exists(), "nothing written");
        // Not a GGUF at all.
        std::fs::write(&missing, b"not a model").unwrap();
        let err = import_base(
            Source::Gguf(&missing),
            &default_competition(),
            &out,
            false,
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("not a GGUF file"), "{err:#}");
        // A snapshot directory without a config.json.
        let err = import_base(
            Source::Hf(dir.path()),
            &default_competition(),
            &out,
            false,
            &mut Vec::new(),
        )
        .unwrap_err();
        let message = format!("{err:#}");
        assert!(message.starts_with("--from-hf "), "{message}");
        assert!(message.contains("config.json"), "{message}");
    }

    #[test]
    fn presets_fit_the_default_competition() {
        let competition = default_competition();
        for preset in [Preset::Tiny, Preset::Small] {
            let config = preset.config();
            config.validate().unwrap();
            check_bounds(&config, &competition).unwrap();
        }
        let small = Preset::Small.config();
        assert_eq!((small.num_hidden_layers, small.hidden_size), (6, 256));
    }

    #[test]
    fn writes_a_loadable_model_and_the_same_seed_gives_the_same_bytes() {
        let _turn = rng_turn();
        let competition = default_competition();
        let config = Preset::Tiny.config();
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        init_base(&config, &competition, a.path(), 7, false).unwrap();
        init_base(&config, &competition, b.path(), 7, false).unwrap();
        let (loaded, _) = load_artifact::<Cpu>(a.path(), u64::MAX, &Default::default()).unwrap();
        assert_eq!(loaded, config);
        let weights = |dir: &Path| std::fs::read(dir.join("model.safetensors")).unwrap();
        assert!(
            weights(a.path()) == weights(b.path()),
            "same seed, other bytes"
        );

        let c = tempfile::tempdir().unwrap();
        init_base(&config, &competition, c.path(), 8, false).unwrap();
        assert!(
            weights(a.path()) != weights(c.path()),
            "other seed, same bytes"
        );
    }

    #[test]
    fn refuses_a_non_empty_dir_without_force() {
        let _turn = rng_turn();
        let competition = default_competition();
        let config = Preset::Tiny.config();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "keep me").unwrap();
        let err = init_base(&config, &competition, dir.path(), 0, false).unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        init_base(&config, &competition, dir.path(), 0, true).unwrap();
        assert!(dir.path().join("model.safetensors").is_file());
    }

    #[test]
    fn refuses_an_architecture_over_the_bounds() {
        let competition = default_competition();
        let config = LlamaConfig {
            num_hidden_layers: 13,
            ..Preset::Tiny.config()
        };
        let dir = tempfile::tempdir().unwrap();
        let err = init_base(&config, &competition, dir.path(), 0, false).unwrap_err();
        assert!(format!("{err:#}").contains("num_hidden_layers"), "{err:#}");
        assert!(!dir.path().join("model.safetensors").exists());
    }
}
