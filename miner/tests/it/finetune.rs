//! `miner init-base` and `miner finetune` through the real binary: a tiny model trained for a few
//! steps gets a lower loss, its output loads with the model crate and hashes as `serve` does, an
//! interrupted run resumes from its checkpoint, and bad flags get errors naming them.

use std::{
    path::Path,
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use subnet_miner::artifact::{Artifact, DEFAULT_COMPETITION};
use subnet_model::{
    config::LlamaConfig,
    eval::{Sample, evaluate},
    io::load_artifact,
    tasks::{TaskKind, TaskMix, generate, to_sample},
    tokenizer::Tokenizer,
    train::{CHECKPOINT_DIR, STATE_FILE},
};

const MINER: &str = env!("CARGO_BIN_EXE_miner");

fn miner(args: &[&str]) -> Command {
    let mut cmd = Command::new(MINER);
    cmd.args(args).env_remove("RUST_LOG");
    cmd
}

fn run_ok(args: &[&str]) -> Output {
    let out = miner(args).output().expect("run miner");
    assert!(
        out.status.success(),
        "miner {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn run_err(args: &[&str]) -> String {
    let out = miner(args).output().expect("run miner");
    assert!(!out.status.success(), "miner {args:?} should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

fn init_tiny_base(dir: &Path) {
    run_ok(&[
        "init-base",
        "--out",
        path(dir),
        "--preset",
        "tiny",
        "--seed",
        "1",
    ]);
}

/// Held-out reverse/copy samples, the kinds the test trains on.
fn eval_samples() -> Vec<Sample> {
    let mix = TaskMix::new([(TaskKind::Reverse, 1), (TaskKind::Copy, 1)].into()).unwrap();
    generate([9; 32], &mix, 32)
        .iter()
        .map(|e| to_sample(&Tokenizer::bytes(), e, 48).unwrap())
        .collect()
}

fn mean_loss(dir: &Path) -> f64 {
    let (_, model) =
        load_artifact::<subnet_model::backend::Cpu>(dir, u64::MAX, &Default::default())
            .expect("the artifact loads with the model crate");
    let losses = evaluate(&model, &eval_samples(), 32).unwrap();
    losses.iter().map(|l| l.loss).sum::<f64>() / losses.len() as f64
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

const TRAIN_FLAGS: &[&str] = &[
    "--batch",
    "8",
    "--lr",
    "3e-3",
    "--seq-len",
    "48",
    "--tasks",
    "reverse,copy",
    "--device",
    "cpu",
    "--log.format",
    "json",
];

#[tokio::test]
async fn a_few_steps_lower_the_loss_and_leave_a_servable_artifact() {
    let tmp = tempfile::tempdir().unwrap();
    let (base, out) = (tmp.path().join("base"), tmp.path().join("ft"));
    init_tiny_base(&base);
    assert_eq!(file_names(&base), ["config.json", "model.safetensors"]);

    let mut args = vec![
        "finetune",
        "--base",
        path(&base),
        "--out",
        path(&out),
        "--steps",
        "40",
        "--checkpoint-every",
        "10",
    ];
    args.extend_from_slice(TRAIN_FLAGS);
    let output = run_ok(&args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stdout.contains("final loss"), "{stdout}");
    assert!(
        stderr.contains("\"message\":\"training\""),
        "periodic log lines without a terminal: {stderr}"
    );

    // Only the artifact is left: `serve` refuses sub-directories such as the checkpoint.
    assert_eq!(file_names(&out), ["config.json", "model.safetensors"]);
    let (before, after) = (mean_loss(&base), mean_loss(&out));
    assert!(after < 0.8 * before, "loss {before} → {after}");

    let artifact = Artifact::load(&out, DEFAULT_COMPETITION).await.unwrap();
    let hash = &artifact.manifest().manifest_sha256;
    assert!(
        stdout.contains(&format!("manifest sha256 {hash}")),
        "printed hash is the served one: {stdout}"
    );
}

#[test]
fn a_base_from_a_config_file_keeps_its_tokenizer_in_the_artifact() {
    let tmp = tempfile::tempdir().unwrap();
    let (base, out) = (tmp.path().join("base"), tmp.path().join("ft"));
    // The model crate's byte-level BPE fixture (355 ids) needs a wider vocabulary than the presets.
    let tokenizer = std::fs::read(
        crate::helpers::workspace_root()
            .join("model/tests/fixtures/tokenizer-bytelevel-bpe/tokenizer.json"),
    )
    .unwrap();
    let config = LlamaConfig {
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        num_key_value_heads: 1,
        vocab_size: 360,
        max_position_embeddings: 64,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        tie_word_embeddings: true,
        bos_token_id: None,
        eos_token_id: None,
        pad_token_id: None,
    };
    let config_file = tmp.path().join("config.json");
    std::fs::write(&config_file, config.to_hf_json().to_string()).unwrap();
    run_ok(&[
        "init-base",
        "--out",
        path(&base),
        "--config",
        path(&config_file),
    ]);
    std::fs::write(base.join("tokenizer.json"), &tokenizer).unwrap();
    let mut args = vec![
        "finetune",
        "--base",
        path(&base),
        "--out",
        path(&out),
        "--steps",
        "2",
    ];
    args.extend_from_slice(TRAIN_FLAGS);
    run_ok(&args);
    assert_eq!(
        file_names(&out),
        ["config.json", "model.safetensors", "tokenizer.json"]
    );
    assert_eq!(
        std::fs::read(out.join("tokenizer.json")).unwrap(),
        tokenizer
    );
    let (loaded, _) =
        load_artifact::<subnet_model::backend::Cpu>(&out, u64::MAX, &Default::default()).unwrap();
    assert_eq!(loaded, config);
}

/// The dtype of every tensor in a safetensors file, read from its JSON header.
fn tensor_dtypes(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + len]).unwrap();
    let mut dtypes: Vec<String> = header
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, _)| *name != "__metadata__")
        .map(|(_, tensor)| tensor["dtype"].as_str().unwrap().to_owned())
        .collect();
    dtypes.dedup();
    dtypes
}

#[tokio::test]
async fn a_bf16_export_halves_the_artifact_and_still_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let (base, out) = (tmp.path().join("base"), tmp.path().join("ft"));
    init_tiny_base(&base);
    let mut args = vec![
        "finetune",
        "--base",
        path(&base),
        "--out",
        path(&out),
        "--steps",
        "2",
        "--dtype",
        "bf16",
    ];
    args.extend_from_slice(TRAIN_FLAGS);
    let stdout = String::from_utf8_lossy(&run_ok(&args).stdout).into_owned();
    assert!(stdout.contains("(bf16 weights)"), "{stdout}");
    let weights = |dir: &Path| dir.join("model.safetensors");
    assert_eq!(tensor_dtypes(&weights(&base)), ["F32"]);
    assert_eq!(tensor_dtypes(&weights(&out)), ["BF16"]);
    let size = |dir: &Path| std::fs::metadata(weights(dir)).unwrap().len();
    assert!(
        size(&out) * 10 < size(&base) * 6,
        "{} vs {}",
        size(&out),
        size(&base)
    );
    // What validators do with it: load it, as f32, and score it.
    assert!(mean_loss(&out).is_finite());
    let artifact = Artifact::load(&out, DEFAULT_COMPETITION).await.unwrap();
    assert!(stdout.contains(&artifact.manifest().manifest_sha256));

    let err = run_err(&[
        "finetune",
        "--base",
        path(&base),
        "--out",
        path(&out),
        "--steps",
        "1",
        "--dtype",
        "fp8",
    ]);
    assert!(
        err.contains("--dtype") && err.contains("f32 or bf16"),
        "{err}"
    );
}

#[test]
fn an_interrupted_run_resumes_from_its_checkpoint_step() {
    let tmp = tempfile::tempdir().unwrap();
    let (base, out) = (tmp.path().join("base"), tmp.path().join("ft"));
    init_tiny_base(&base);
    let flags = |steps: &'static str| {
        let mut args = vec![
            "finetune".to_string(),
            "--base".into(),
            path(&base).into(),
            "--out".into(),
            path(&out).into(),
            "--steps".into(),
            steps.into(),
            "--checkpoint-every".into(),
            "3".into(),
        ];
        args.extend(TRAIN_FLAGS.iter().map(|s| s.to_string()));
        args
    };

    // A long run, frozen (SIGSTOP) once a checkpoint is complete, then killed: the checkpoint's
    // state file is written last, so the frozen process cannot be half-way through another.
    let mut child = Command::new(MINER)
        .args(flags("5000"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let state = out.join(CHECKPOINT_DIR).join(STATE_FILE);
    let deadline = Instant::now() + Duration::from_secs(120);
    let step = loop {
        assert!(Instant::now() < deadline, "no checkpoint within 120 s");
        assert!(child.try_wait().unwrap().is_none(), "finetune exited early");
        if state.exists() {
            signal(child.id(), "-STOP");
            if let Ok(text) = std::fs::read_to_string(&state) {
                let json: serde_json::Value = serde_json::from_str(&text).unwrap();
                break json["step"].as_u64().unwrap();
            }
            signal(child.id(), "-CONT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(step >= 3 && step % 3 == 0, "checkpoint step {step}");

    let total = (step + 2).to_string();
    let total: &'static str = Box::leak(total.into_boxed_str());
    let args = flags(total);
    let output = miner(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stderr}");
    let resumed = stderr.lines().any(|line| {
        line.contains("resuming from the checkpoint") && line.contains(&format!("\"step\":{step}"))
    });
    assert!(resumed, "a log line says where it resumed: {stderr}");
    assert!(
        stdout.contains(&format!("at step {total} (2 steps run")),
        "{stdout}"
    );
    assert_eq!(file_names(&out), ["config.json", "model.safetensors"]);
}

/// Ctrl-C in the middle of a run: the step in progress is saved as the checkpoint, the output
/// says where and prints the command that resumes, the exit code is 130 (so `finetune && commit`
/// stops), and that command resumes from the saved step.
#[test]
fn ctrl_c_saves_a_checkpoint_and_prints_the_command_that_resumes() {
    use std::io::{BufRead, BufReader};
    let tmp = tempfile::tempdir().unwrap();
    let (base, out) = (tmp.path().join("base"), tmp.path().join("ft"));
    init_tiny_base(&base);
    let mut args = vec![
        "finetune",
        "--base",
        path(&base),
        "--out",
        path(&out),
        "--steps",
        "5000",
        // No periodic checkpoint: the one found afterwards is the interruption's.
        "--checkpoint-every",
        "0",
    ];
    args.extend_from_slice(TRAIN_FLAGS);
    let mut child = miner(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Training has begun: let a step or more run, then Ctrl-C.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut log = Vec::new();
    while !log.iter().any(|l: &String| l.contains("\"fine-tuning\"")) {
        let left = deadline.saturating_duration_since(Instant::now());
        log.push(
            rx.recv_timeout(left)
                .expect("no 'fine-tuning' log line within 60 s"),
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    signal(child.id(), "-INT");
    let output = child.wait_with_output().unwrap();
    log.extend(rx.try_iter());
    let log = log.join("\n");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(130), "{stdout}\n{log}");
    assert!(log.contains("saving it as the checkpoint"), "{log}");

    let state = out.join(CHECKPOINT_DIR).join(STATE_FILE);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).expect("a checkpoint")).unwrap();
    let step = json["step"].as_u64().unwrap();
    assert!((1..5000).contains(&step), "checkpoint step {step}");
    assert!(
        stdout.contains(&format!(
            "stopped at step {step} of 5000: checkpoint saved in {}",
            out.join(CHECKPOINT_DIR).display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("  {MINER} {}", args.join(" "))),
        "the resume command is the one that ran: {stdout}"
    );
    assert!(log.contains("error: fine-tuning stopped at step"), "{log}");

    // The printed command, with two more steps as the total, resumes from the saved step.
    let total = (step + 2).to_string();
    let mut resume = args.clone();
    let at = resume.iter().position(|a| *a == "5000").unwrap();
    resume[at] = &total;
    let resumed = run_ok(&resume);
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(
        stderr
            .lines()
            .any(|line| line.contains("resuming from the checkpoint")
                && line.contains(&format!("\"step\":{step}"))),
        "{stderr}"
    );
    assert!(
        String::from_utf8_lossy(&resumed.stdout).contains(&format!("at step {total} (2 steps run")),
        "{}",
        String::from_utf8_lossy(&resumed.stdout)
    );
    assert_eq!(file_names(&out), ["config.json", "model.safetensors"]);
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn bad_flags_and_missing_directories_get_errors_naming_them() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    let out = tmp.path().join("out");

    let err = run_err(&[
        "finetune",
        "--base",
        path(&missing),
        "--out",
        path(&out),
        "--steps",
        "1",
    ]);
    assert!(
        err.contains("--base") && err.contains("no such directory") && err.contains("init-base"),
        "{err}"
    );

    let err = run_err(&[
        "finetune", "--base", "b", "--out", "o", "--steps", "1", "--tasks", "poetry",
    ]);
    assert!(
        err.contains("--tasks") && err.contains("unknown task"),
        "{err}"
    );

    let err = run_err(&[
        "finetune", "--base", "b", "--out", "o", "--steps", "1", "--device", "tpu",
    ]);
    assert!(err.contains("--device") && err.contains("tpu"), "{err}");

    let base = tmp.path().join("base");
    init_tiny_base(&base);
    let err = run_err(&[
        "finetune",
        "--base",
        path(&base),
        "--out",
        path(&out),
        "--steps",
        "0",
    ]);
    assert!(err.contains("--steps must be at least 1"), "{err}");

    let err = run_err(&[
        "finetune",
        "--base",
        path(&base),
        "--out",
        path(&out),
        "--steps",
        "1",
        "--seq-len",
        "100000",
    ]);
    assert!(err.contains("--seq-len 100000"), "{err}");

    // init-base never overwrites silently, and --force does.
    let err = run_err(&["init-base", "--out", path(&base), "--preset", "tiny"]);
    assert!(err.contains("--out") && err.contains("--force"), "{err}");
    run_ok(&[
        "init-base",
        "--out",
        path(&base),
        "--preset",
        "tiny",
        "--force",
    ]);

    // A finished artifact in --out is not trained over without --force.
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("config.json"), "{}").unwrap();
    let err = run_err(&[
        "finetune",
        "--base",
        path(&base),
        "--out",
        path(&out),
        "--steps",
        "1",
    ]);
    assert!(err.contains("--force"), "{err}");

    let err = run_err(&[
        "init-base",
        "--out",
        path(&tmp.path().join("x")),
        "--config",
        path(&missing),
    ]);
    assert!(err.contains("--config"), "{err}");
}

/// A preference file as `validator export-preferences` writes it: reversal prompts, the right
/// reversal chosen over the same answer shouted (upper case), with the export's other fields.
fn preference_file(path: &Path, n: usize) {
    let mix = TaskMix::new([(TaskKind::Reverse, 1)].into()).unwrap();
    let lines: Vec<String> = generate([5; 32], &mix, n)
        .iter()
        .map(|e| {
            serde_json::json!({
                "prompt": e.prompt, "chosen": e.completion, "rejected": e.completion.to_uppercase(),
                "votes": 2, "agreement": 1.0, "reliability": 0.9, "epoch": 7,
            })
            .to_string()
        })
        .collect();
    std::fs::write(path, lines.join("\n")).unwrap();
}

#[test]
fn dpo_on_exported_preferences_makes_held_out_chosen_answers_preferred() {
    let tmp = tempfile::tempdir().unwrap();
    let (base, out) = (tmp.path().join("base"), tmp.path().join("dpo"));
    init_tiny_base(&base);
    let prefs = tmp.path().join("prefs.jsonl");
    preference_file(&prefs, 96);
    let output = run_ok(&[
        "finetune",
        "--base",
        path(&base),
        "--out",
        path(&out),
        "--preferences",
        path(&prefs),
        "--steps",
        "30",
        "--batch",
        "8",
        "--lr",
        "3e-3",
        "--dpo.beta",
        "0.5",
        "--holdout",
        "0.25",
        "--seq-len",
        "48",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("held-out preference"))
        .unwrap_or_else(|| panic!("no held-out line: {stdout}"));
    let shares: Vec<f64> = line
        .split('%')
        .filter_map(|part| part.rsplit(' ').next()?.parse().ok())
        .collect();
    assert_eq!(shares.len(), 3, "{line}");
    assert!(
        shares[1] > shares[0] && shares[1] >= 80.0 && shares[2] >= 80.0,
        "the tuned model prefers the chosen answers more often: {line}"
    );
    assert_eq!(file_names(&out), ["config.json", "model.safetensors"]);

    // Bad preference input is named with its line; DPO flags need --preferences.
    std::fs::write(
        &prefs,
        "{\"prompt\":\"p\",\"chosen\":\"x\",\"rejected\":\"x\"}\n",
    )
    .unwrap();
    let err = run_err(&[
        "finetune",
        "--base",
        path(&base),
        "--out",
        path(&tmp.path().join("bad")),
        "--preferences",
        path(&prefs),
        "--steps",
        "1",
    ]);
    assert!(
        err.contains("--preferences") && err.contains("line 1") && err.contains("same answer"),
        "{err}"
    );
    let err = run_err(&[
        "finetune",
        "--base",
        "b",
        "--out",
        "o",
        "--steps",
        "1",
        "--holdout",
        "0.2",
    ]);
    assert!(err.contains("--preferences"), "{err}");
    let err = run_err(&[
        "finetune",
        "--base",
        "b",
        "--out",
        "o",
        "--steps",
        "1",
        "--preferences",
        "p.jsonl",
        "--holdout",
        "1",
    ]);
    assert!(err.contains("--holdout"), "{err}");
}
