//! burn against transformers: the fixtures under `tests/fixtures/` were written by
//! `scripts/make_hf_fixture.py` (a random tiny `LlamaForCausalLM`, reference logits and losses
//! computed by transformers); loading them here must reproduce both.
//!
//! They run on the CPU. `SUBNET_TEST_DEVICE=cuda` (a build with `--features cuda`) runs them on a
//! GPU instead (`scripts/gpu-check.sh`), and `SUBNET_MODEL_FIXTURES` points at the fixtures when
//! the test binary runs away from its source tree.

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use safetensors::SafeTensors;
use serde::Deserialize;
use subnet_model::backend::{BackendTask, DeviceChoice, select};
use subnet_model::eval::{Sample, evaluate};
use subnet_model::io::{load_artifact, read_weights_file};

#[derive(Deserialize)]
struct Reference {
    samples: Vec<ReferenceSample>,
}

#[derive(Deserialize)]
struct ReferenceSample {
    input_ids: Vec<u32>,
    completion_start: usize,
    loss: f64,
    tokens: usize,
}

fn fixture(name: &str) -> PathBuf {
    std::env::var_os("SUBNET_MODEL_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"))
        .join(name)
}

/// The device the parity checks run on: `SUBNET_TEST_DEVICE` (`cpu` when unset).
fn test_device() -> DeviceChoice {
    std::env::var("SUBNET_TEST_DEVICE")
        .map(|v| v.parse().expect("SUBNET_TEST_DEVICE"))
        .unwrap_or(DeviceChoice::Cpu)
}

fn check_fixture(name: &str) {
    check_model(name, &fixture(name));
}

/// The model in `model_dir` against the reference values of fixture `name`, on [`test_device`].
fn check_model(name: &str, model_dir: &Path) {
    let selected = select(test_device()).unwrap();
    eprintln!("{name}: on {}", selected.name());
    let tolerance = if selected.is_cpu() {
        Tolerance::FLOAT32
    } else {
        Tolerance::TENSOR_FLOAT32
    };
    selected.run(CheckModel {
        name,
        model_dir,
        tolerance,
    });
}

/// How close to transformers' float32 figures ours must be.
#[derive(Clone, Copy)]
struct Tolerance {
    /// Largest absolute difference of any logit.
    logit: f32,
    /// Largest relative difference of any per-sample loss.
    loss: f64,
}

impl Tolerance {
    /// float32 arithmetic throughout (the CPU backend).
    const FLOAT32: Self = Self {
        logit: 1e-4,
        loss: 1e-5,
    };
    /// burn's CUDA backend multiplies float32 matrices on tensor cores in TF32 (inputs rounded
    /// to a 10-bit mantissa, about 5e-4 relative; cubek-matmul picks it for f32 whenever the
    /// GPU has it), as PyTorch does with `allow_tf32`. Measured on an H200
    /// (scripts/gpu-check.sh): logits within 2.3e-2 of float32's on these fixtures.
    const TENSOR_FLOAT32: Self = Self {
        logit: 5e-2,
        loss: 2e-3,
    };
}

struct CheckModel<'a> {
    name: &'a str,
    model_dir: &'a Path,
    tolerance: Tolerance,
}

impl BackendTask for CheckModel<'_> {
    type Output = ();

    fn run<B: Backend>(self, device: B::Device) {
        check_model_on::<B>(self.name, self.model_dir, self.tolerance, &device);
    }
}

fn check_model_on<B: Backend>(
    name: &str,
    model_dir: &Path,
    tolerance: Tolerance,
    device: &B::Device,
) {
    let dir = fixture(name);
    let (config, model) = load_artifact::<B>(model_dir, 1 << 20, device).unwrap();
    let reference: Reference =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    let logits_bytes =
        read_weights_file(&dir.join("reference_logits.safetensors"), 1 << 20).unwrap();
    let logits_file = SafeTensors::deserialize(&logits_bytes).unwrap();

    let (mut worst, mut largest) = (0f32, 0f32);
    for (i, sample) in reference.samples.iter().enumerate() {
        let len = sample.input_ids.len();
        let ids: Vec<i64> = sample.input_ids.iter().map(|&t| i64::from(t)).collect();
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [1, len]), device);
        let ours = model.forward(ids).into_data().to_vec::<f32>().unwrap();

        let view = logits_file.tensor(&format!("logits.{i}")).unwrap();
        assert_eq!(view.shape(), &[len, config.vocab_size]);
        let theirs: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(ours.len(), theirs.len());
        for (a, b) in ours.iter().zip(&theirs) {
            worst = worst.max((a - b).abs());
            largest = largest.max(b.abs());
        }
    }
    eprintln!("{name}: max abs logit difference {worst:e} (largest logit {largest})");

    let samples: Vec<Sample> = reference
        .samples
        .iter()
        .map(|s| Sample {
            input_ids: s.input_ids.clone(),
            completion_start: s.completion_start,
        })
        .collect();
    let mut worst_loss = 0f64;
    for batch_size in [1, 3] {
        let losses = evaluate(&model, &samples, batch_size).unwrap();
        for (ours, theirs) in losses.iter().zip(&reference.samples) {
            assert_eq!(ours.tokens, theirs.tokens);
            let relative = (ours.loss - theirs.loss).abs() / theirs.loss.abs();
            eprintln!("{name}: loss relative difference {relative:e}");
            worst_loss = worst_loss.max(relative);
        }
    }
    assert!(
        worst <= tolerance.logit,
        "{name}: max abs logit difference {worst}"
    );
    assert!(
        worst_loss <= tolerance.loss,
        "{name}: max relative loss difference {worst_loss:e}"
    );
}

#[test]
fn bf16_gqa_model_from_transformers_gives_the_same_logits_and_losses() {
    check_fixture("hf-tiny");
}

#[test]
fn tied_f16_model_from_transformers_gives_the_same_logits_and_losses() {
    check_fixture("hf-tiny-tied");
}

/// `miner init-base --from-hf`: the transformers-written snapshots, as they are and split into
/// shards with a `model.safetensors.index.json` (as large models are published), import to f32
/// artifacts that give transformers' logits and losses.
#[test]
fn hf_snapshots_single_and_sharded_import_to_the_same_model() {
    use subnet_model::import::{ImportLimits, SHARD_INDEX, read_hf};
    for name in ["hf-tiny", "hf-tiny-tied"] {
        let imported = tempfile::tempdir().unwrap();
        let import = read_hf(&fixture(name), &ImportLimits::default()).unwrap();
        assert!(
            import
                .tensor_types
                .keys()
                .all(|t| t == "BF16" || t == "F16"),
            "{:?}",
            import.tensor_types
        );
        import.write(imported.path()).unwrap();
        check_model(name, imported.path());

        // The same tensors over two shards and an index, config.json in transformers 4's form
        // (`rope_theta` at the top, not transformers 5's `rope_parameters`).
        let snapshot = tempfile::tempdir().unwrap();
        let bytes = std::fs::read(fixture(name).join("model.safetensors")).unwrap();
        let file = SafeTensors::deserialize(&bytes).unwrap();
        let mut names: Vec<String> = file.names().into_iter().map(str::to_owned).collect();
        names.sort();
        let mut weight_map = serde_json::Map::new();
        for (i, part) in names.chunks(names.len() / 2 + 1).enumerate() {
            let shard = format!("model-0000{}-of-00002.safetensors", i + 1);
            let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = part
                .iter()
                .map(|n| (n.clone(), file.tensor(n).unwrap()))
                .collect();
            safetensors::serialize_to_file(views, None, &snapshot.path().join(&shard)).unwrap();
            for n in part {
                weight_map.insert(n.clone(), serde_json::json!(shard));
            }
        }
        let index =
            serde_json::json!({"metadata": {"total_size": bytes.len()}, "weight_map": weight_map});
        std::fs::write(snapshot.path().join(SHARD_INDEX), index.to_string()).unwrap();
        let mut config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(fixture(name).join("config.json")).unwrap())
                .unwrap();
        let params = config.as_object_mut().unwrap().remove("rope_parameters");
        config["rope_theta"] = params.expect("transformers 5 form")["rope_theta"].clone();
        std::fs::write(snapshot.path().join("config.json"), config.to_string()).unwrap();
        let sharded = tempfile::tempdir().unwrap();
        read_hf(snapshot.path(), &ImportLimits::default())
            .unwrap()
            .write(sharded.path())
            .unwrap();
        assert_eq!(
            std::fs::read(sharded.path().join("model.safetensors")).unwrap(),
            std::fs::read(imported.path().join("model.safetensors")).unwrap(),
            "{name}: sharded and single-file snapshots import to the same bytes"
        );

        // A shard the index names but the snapshot lacks is named in the error.
        std::fs::remove_file(snapshot.path().join("model-00002-of-00002.safetensors")).unwrap();
        let err = read_hf(snapshot.path(), &ImportLimits::default()).unwrap_err();
        assert!(
            err.to_string().contains("model-00002-of-00002.safetensors"),
            "{err}"
        );
    }
}
