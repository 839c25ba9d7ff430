//! `validator eval` through the real binary, on the transformers-made fixture model.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The tiny HF Llama written by transformers (vocab 262, context 64).
fn fixture_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures/hf-tiny")
}

fn validator(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_validator"))
        .args(args)
        .env("RUST_LOG", "info")
        .env_remove("BT_DEVICE")
        .output()
        .expect("run the validator binary")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Parses stdout as exactly one JSON object on one line.
fn single_json(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "stderr: {}", stderr(output));
    let text = stdout(output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "stdout must be one JSON line: {text}");
    serde_json::from_str(lines[0]).expect("stdout is JSON")
}

#[test]
fn json_report_has_one_entry_per_jsonl_line_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.jsonl");
    std::fs::write(
        &data,
        concat!(
            "{\"prompt\": \"12+7=\", \"completion\": \"19\"}\n",
            "{\"input_ids\": [256, 65, 66, 67, 68], \"completion_start\": 2}\n",
            "{\"prompt\": \"reverse: abc\\n\", \"completion\": \"cba\"}\n",
        ),
    )
    .unwrap();
    let model = fixture_model();
    let args = [
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--device",
        "cpu",
        "--batch",
        "2",
        "--json",
    ];
    let report = single_json(&validator(&args));
    let object = report.as_object().unwrap();
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "fitted_mean_loss",
            "inverse_temperature",
            "mean_loss",
            "samples"
        ],
        "{report}"
    );
    // the fit can only lower the mean loss
    assert!(
        report["fitted_mean_loss"].as_f64().unwrap()
            <= report["mean_loss"].as_f64().unwrap() + 1e-9
    );
    let samples = report["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 3);
    // Completion tokens: "19" + EOS, then ids 66..68 (3), then "cba" + EOS.
    let tokens: Vec<u64> = samples
        .iter()
        .map(|s| s["tokens"].as_u64().unwrap())
        .collect();
    assert_eq!(tokens, [3, 3, 4]);
    let losses: Vec<f64> = samples
        .iter()
        .map(|s| s["loss"].as_f64().unwrap())
        .collect();
    assert!(
        losses.iter().all(|l| l.is_finite() && *l > 0.0),
        "{losses:?}"
    );
    let mean = report["mean_loss"].as_f64().unwrap();
    assert!((mean - losses.iter().sum::<f64>() / 3.0).abs() < 1e-12);

    // Batching does not change any sample's loss (beyond float noise).
    let mut one_at_a_time = args.to_vec();
    one_at_a_time[8] = "1";
    let again = single_json(&validator(&one_at_a_time));
    for (a, b) in samples.iter().zip(again["samples"].as_array().unwrap()) {
        let (a, b) = (a["loss"].as_f64().unwrap(), b["loss"].as_f64().unwrap());
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
}

#[test]
fn seeded_samples_are_reproducible_and_the_summary_is_human() {
    let model = fixture_model();
    let seed = "0x".to_string() + &"5a".repeat(32);
    let args = [
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--seed",
        &seed,
        "--samples",
        "6",
        "--device",
        "cpu",
        "--json",
    ];
    let first = single_json(&validator(&args));
    assert_eq!(first["samples"].as_array().unwrap().len(), 6);
    assert_eq!(
        first,
        single_json(&validator(&args)),
        "same seed, same result"
    );
    let mut other = args.to_vec();
    let other_seed = "5b".repeat(32);
    other[4] = &other_seed;
    assert_ne!(first, single_json(&validator(&other)));

    let human = validator(&args[..args.len() - 1]);
    assert!(human.status.success(), "{}", stderr(&human));
    let text = stdout(&human);
    assert!(text.contains("samples    6"), "{text}");
    let mean = format!("{:.6}", first["mean_loss"].as_f64().unwrap());
    assert!(text.contains(&mean), "{text} lacks {mean}");
    assert!(stderr(&human).contains("evaluating"), "logs go to stderr");
}

#[test]
fn errors_name_the_flag_or_file_at_fault() {
    let model = fixture_model();
    let model = model.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let hex = "00".repeat(32);

    let missing = dir.path().join("nope");
    let output = validator(&["eval", "--model", missing.to_str().unwrap(), "--seed", &hex]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("--model") && stderr(&output).contains("no such directory"));

    let broken = dir.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(broken.join("config.json"), "{\"hidden_size\": ").unwrap();
    let output = validator(&["eval", "--model", broken.to_str().unwrap(), "--seed", &hex]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("config.json"),
        "{}",
        stderr(&output)
    );

    let output = validator(&["eval", "--model", model, "--seed", "xyz"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("--seed"), "{}", stderr(&output));

    // The judge's base: checked against the competition's pin before any model work, and only
    // meaningful with seeded open instructions.
    let smollm2 = Path::new(env!("CARGO_MANIFEST_DIR")).join("../competitions/smollm2-135m.toml");
    let smollm2 = smollm2.to_str().unwrap();
    let with_base = |base: &str| {
        validator(&[
            "eval",
            "--model",
            model,
            "--seed",
            &hex,
            "--competition",
            smollm2,
            "--base",
            base,
        ])
    };
    let nowhere = missing.to_str().unwrap();
    let output = with_base(nowhere);
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(text.contains("--base") && text.contains(nowhere), "{text}");
    // A directory that is not the pinned base is refused with the fix.
    let output = with_base(model);
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(
        text.contains("--base") && text.contains("pins base"),
        "{text}"
    );
    let output = validator(&["eval", "--model", model, "--base", model]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("--seed"), "{}", stderr(&output));

    let data = dir.path().join("d.jsonl");
    std::fs::write(&data, "{\"prompt\": \"a\", \"completion\": \"b\"}\n").unwrap();
    let output = validator(&[
        "eval",
        "--model",
        model,
        "--seed",
        &hex,
        "--data",
        data.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(text.contains("--data") && text.contains("--seed"), "{text}");

    // With `--data` there are no open instructions, so nothing for the judge's base to judge.
    let output = validator(&[
        "eval",
        "--model",
        model,
        "--data",
        data.to_str().unwrap(),
        "--competition",
        smollm2,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!stderr(&output).contains("--base"), "{}", stderr(&output));

    let output = validator(&["eval", "--model", model]);
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(text.contains("--data") && text.contains("--seed"), "{text}");

    let bad_data = dir.path().join("bad.jsonl");
    std::fs::write(&bad_data, "{\"prompt\": \"a\"}\n").unwrap();
    let output = validator(&[
        "eval",
        "--model",
        model,
        "--data",
        bad_data.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("bad.jsonl"), "{}", stderr(&output));
}
