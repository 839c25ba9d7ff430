//! Peak memory of loading a model (issue 16 item 2).
//!
//! `load_artifact` reads `model.safetensors` tensor by tensor, so the only full copy of the
//! weights it makes is the f32 model itself. The test below loads a 17 M-parameter bf16 artifact
//! in a child process (this test binary, run again on one test) and checks, from the kernel's
//! count of the child's resident memory (`VmHWM` in `/proc/self/status`), that loading grew the
//! process by less than the f32 model plus half the file: reading the whole file first, as
//! `read_weights_file` does, would hold the file's 34 MB beside the model's 67 MB.
//!
//! `measure_load_and_eval` is the benchmark behind `scripts/bench/load-memory.sh` and
//! `docs/benchmarks.md`: it loads a model directory one way or the other, evaluates it and prints
//! the resident memory at each stage and a digest of the losses' bits.

use std::path::{Path, PathBuf};
use std::process::Command;

use safetensors::tensor::{Dtype, TensorView};
use subnet_model::config::LlamaConfig;
use subnet_model::eval::{Sample, evaluate_fitted};
use subnet_model::io::{
    WEIGHTS_FILE, WeightDtype, convert_weights, load_artifact, load_weights, read_weights_file,
};
use subnet_model::similarity::{tensor_cosines, tensor_cosines_bytes};

type B = subnet_model::backend::Cpu;

/// The test's model: 16.8 M parameters, most of them in the linear layers (which loading
/// transposes) and the rest in the embedding.
fn config() -> LlamaConfig {
    LlamaConfig {
        hidden_size: 256,
        intermediate_size: 1024,
        num_hidden_layers: 8,
        num_attention_heads: 4,
        num_key_value_heads: 4,
        vocab_size: 32_768,
        max_position_embeddings: 64,
        tie_word_embeddings: true,
        ..LlamaConfig::tiny()
    }
}

/// A `field` of `/proc/self/status` (`VmRSS`, `VmHWM`) in bytes.
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    let kib: u64 = line
        .trim()
        .strip_suffix("kB")
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{field}: {line}"));
    kib * 1024
}

/// Writes `dir/config.json` and a bf16 `dir/model.safetensors` for `config`; returns the number
/// of weights.
fn write_bf16_artifact(config: &LlamaConfig, dir: &Path) -> usize {
    std::fs::create_dir_all(dir).unwrap();
    config.save(dir).unwrap();
    let raw: Vec<(String, Vec<usize>, Vec<u8>)> = config
        .expected_tensors()
        .into_iter()
        .enumerate()
        .map(|(t, (name, shape))| {
            let n: usize = shape.iter().product();
            let bytes = (0..n)
                .flat_map(|i| {
                    let x = (((t * 7919 + i) % 1999) as f32 - 999.0) * 1e-4;
                    half::bf16::from_f32(x).to_le_bytes()
                })
                .collect();
            (name, shape, bytes)
        })
        .collect();
    let weights = raw.iter().map(|(_, _, b)| b.len() / 2).sum();
    let views: Vec<_> = raw
        .iter()
        .map(|(name, shape, bytes)| {
            let view = TensorView::new(Dtype::BF16, shape.clone(), bytes).unwrap();
            (name.as_str(), view)
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir.join(WEIGHTS_FILE)).unwrap();
    weights
}

const CHILD_DIR: &str = "SUBNET_LOAD_MEMORY_CHILD_DIR";
/// The child's first, tiny artifact, inside [`CHILD_DIR`].
const WARM_UP: &str = "warm-up";

#[cfg(target_os = "linux")]
#[test]
fn loading_holds_one_copy_of_the_weights_not_also_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let weights = write_bf16_artifact(&config(), dir.path()) as u64;
    write_bf16_artifact(&LlamaConfig::tiny(), &dir.path().join(WARM_UP));
    let file_bytes = std::fs::metadata(dir.path().join(WEIGHTS_FILE))
        .unwrap()
        .len();
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "load_memory::child_loads_the_artifact",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // libtest writes `test NAME ... ` before the child's line: look for the marker anywhere.
    let growth: u64 = stdout
        .split("load_memory growth_bytes=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("the child printed no growth: {stdout}"));
    let model = 4 * weights;
    println!("loading grew the process by {growth} bytes (f32 model {model}, file {file_bytes})");
    // The f32 model must be resident (the measurement measures something), and at most half
    // the file more: the whole file beside it would be twice that.
    assert!(
        growth >= model * 9 / 10 && growth < model + file_bytes / 2,
        "loading a {file_bytes}-byte bf16 file into a {model}-byte f32 model grew the process \
         by {growth} bytes"
    );
}

/// The child of [`loading_holds_one_copy_of_the_weights_not_also_the_file`]; does nothing
/// unless run by it.
#[test]
#[ignore = "run by loading_holds_one_copy_of_the_weights_not_also_the_file in a process of its own"]
fn child_loads_the_artifact() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let dir = Path::new(&dir);
    // A tiny model first, so the code that loading runs is paged in before the measurement.
    load_artifact::<B>(&dir.join(WARM_UP), u64::MAX, &Default::default()).unwrap();
    let before = status_bytes("VmRSS");
    let (_, model) = load_artifact::<B>(dir, u64::MAX, &Default::default()).unwrap();
    let peak = status_bytes("VmHWM");
    drop(model);
    println!("load_memory growth_bytes={}", peak.saturating_sub(before));
}

/// An environment variable, parsed, or `default`.
fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name}={v}")))
        .unwrap_or(default)
}

/// The benchmark: `SUBNET_MEM_MODEL=DIR` (a model directory), `SUBNET_MEM_LOAD=file|bytes`
/// (`load_artifact`, or the validator's `read_weights_file` + `load_weights` with the bytes
/// kept until the model is built), `SUBNET_MEM_SAMPLES` (16), `SUBNET_MEM_SEQ` (64 tokens, the
/// second half scored), `SUBNET_MEM_BATCH` (16). `SUBNET_MEM_CONVERT=bf16` instead rewrites the
/// directory's weights as bf16 (on a copy!) and exits.
#[test]
#[ignore = "a benchmark: scripts/bench/load-memory.sh"]
fn measure_load_and_eval() {
    let Some(dir) = std::env::var_os("SUBNET_MEM_MODEL").map(PathBuf::from) else {
        eprintln!("SUBNET_MEM_MODEL is not set; nothing measured");
        return;
    };
    if let Ok(dtype) = std::env::var("SUBNET_MEM_CONVERT") {
        let dtype: WeightDtype = dtype.parse().unwrap();
        let size = convert_weights(&dir, dtype).unwrap();
        println!("converted {} to {dtype}: {size} bytes", dir.display());
        return;
    }
    let how = std::env::var("SUBNET_MEM_LOAD").unwrap_or_else(|_| "file".into());
    let samples: usize = env_or("SUBNET_MEM_SAMPLES", 16);
    let seq: usize = env_or("SUBNET_MEM_SEQ", 64);
    let batch: usize = env_or("SUBNET_MEM_BATCH", 16);
    let mib = |bytes: u64| bytes as f64 / (1 << 20) as f64;

    let before = status_bytes("VmRSS");
    let started = std::time::Instant::now();
    let device = Default::default();
    let model = match how.as_str() {
        "file" => load_artifact::<B>(&dir, u64::MAX, &device).unwrap().1,
        "bytes" => {
            let config = LlamaConfig::from_file(&dir.join("config.json")).unwrap();
            let bytes = read_weights_file(&dir.join(WEIGHTS_FILE), u64::MAX).unwrap();
            let model = load_weights::<B>(&config, &bytes, &device).unwrap();
            drop(bytes);
            model
        }
        other => panic!("SUBNET_MEM_LOAD={other}: expected file or bytes"),
    };
    let load_s = started.elapsed().as_secs_f64();
    let load_peak = status_bytes("VmHWM");
    let loaded = status_bytes("VmRSS");

    let samples: Vec<Sample> = (0..samples)
        .map(|s| Sample {
            input_ids: (0..seq)
                .map(|i| ((s * 131 + i * 31) % 256) as u32)
                .collect(),
            completion_start: seq / 2,
        })
        .collect();
    let started = std::time::Instant::now();
    let fitted = evaluate_fitted(&model, &samples, batch).unwrap();
    let eval_s = started.elapsed().as_secs_f64();
    let eval_peak = status_bytes("VmHWM");
    // FNV-1a over the bits of every result, so two builds can be compared exactly.
    let mut digest: u64 = 0xcbf2_9ce4_8422_2325;
    let bits = fitted
        .losses
        .iter()
        .chain(&fitted.unfitted)
        .map(|l| l.loss.to_bits())
        .chain([fitted.inverse_temperature.to_bits()]);
    for word in bits {
        for byte in word.to_le_bytes() {
            digest = (digest ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    println!(
        "load={how} rss_before_mib={:.1} load_peak_mib={:.1} after_load_mib={:.1} \
         eval_peak_mib={:.1} load_s={load_s:.2} eval_s={eval_s:.2} mean_fitted_loss={:.6} \
         losses_fnv1a={digest:016x}",
        mib(before),
        mib(load_peak),
        mib(loaded),
        mib(eval_peak),
        fitted.losses.iter().map(|l| l.loss).sum::<f64>() / fitted.losses.len().max(1) as f64,
    );
}

/// The near-copy comparison's memory: `SUBNET_MEM_MODEL=DIR` compares `DIR/model.safetensors`
/// with `SUBNET_MEM_OTHER` (default: itself) by [`tensor_cosines`] (`SUBNET_MEM_COSINES=file`,
/// read piece by piece) or by reading both files whole first, as `tensor_cosines` did before
/// (`bytes`); prints the peak resident memory and a digest of the cosines' bits.
#[test]
#[ignore = "a benchmark: docs/benchmarks.md"]
fn measure_cosines() {
    let Some(dir) = std::env::var_os("SUBNET_MEM_MODEL").map(PathBuf::from) else {
        eprintln!("SUBNET_MEM_MODEL is not set; nothing measured");
        return;
    };
    let a = dir.join(WEIGHTS_FILE);
    let b = std::env::var_os("SUBNET_MEM_OTHER").map_or_else(|| a.clone(), PathBuf::from);
    let how = std::env::var("SUBNET_MEM_COSINES").unwrap_or_else(|_| "file".into());
    let before = status_bytes("VmRSS");
    let started = std::time::Instant::now();
    let cosines = match how.as_str() {
        "file" => tensor_cosines(&a, &b, u64::MAX).unwrap(),
        "bytes" => {
            let x = read_weights_file(&a, u64::MAX).unwrap();
            let y = read_weights_file(&b, u64::MAX).unwrap();
            tensor_cosines_bytes(&x, &y).unwrap()
        }
        other => panic!("SUBNET_MEM_COSINES={other}: expected file or bytes"),
    };
    let mut digest: u64 = 0xcbf2_9ce4_8422_2325;
    for cosine in &cosines {
        for byte in cosine.cosine.to_bits().to_le_bytes() {
            digest = (digest ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    let mib = |bytes: u64| bytes as f64 / (1 << 20) as f64;
    println!(
        "cosines={how} tensors={} rss_before_mib={:.1} peak_mib={:.1} seconds={:.2} \
         cosines_fnv1a={digest:016x}",
        cosines.len(),
        mib(before),
        mib(status_bytes("VmHWM")),
        started.elapsed().as_secs_f64(),
    );
}
