//! `validator run` flag parsing through the real binary: `--dump-config` shows what flags, env
//! vars and defaults resolved to (flags win over env vars), and bad values stop it early.

use std::process::Command;

use serde_json::Value;

fn validator() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_validator"));
    for var in [
        "BT_NETUID",
        "BT_CHAIN_URL",
        "BT_SUBTENSOR_NETWORK",
        "BT_SUBTENSOR_CHAIN_ENDPOINT",
        "BT_CHAIN_POLL_MS",
        "DATABASE_URL",
        "BT_DEVICE",
        "BT_COMPETITION",
        "BT_CACHE_DIR",
        "BT_HTTP_PORT",
        "BT_SCORES_EMA_ALPHA",
        "BT_WEIGHTS_VERSION_KEY",
        "BT_WALLET_NAME",
        "BT_WALLET_HOTKEY",
        "BT_WALLET_PATH",
    ] {
        command.env_remove(var);
    }
    command
}

#[test]
fn dump_config_takes_flags_over_env_over_defaults_and_redacts_the_password() {
    let output = validator()
        .args([
            "run",
            "--dump-config",
            "--netuid",
            "3",
            "--chain.url",
            "http://flag:9944",
            "--wallet.hotkey",
            "v1",
        ])
        .env("BT_CHAIN_URL", "http://env:9944")
        .env("BT_SCORES_EMA_ALPHA", "0.5")
        .env("BT_HTTP_PORT", "8080")
        .env("DATABASE_URL", "postgres://val:hunter2@db:5432/validator")
        .output()
        .expect("run validator");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let config: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(config["netuid"], 3);
    assert_eq!(config["chain"]["endpoint"], "http://flag:9944");
    assert_eq!(config["chain"]["poll_ms"], 500);
    assert_eq!(config["scores"]["ema_alpha"], 0.5);
    assert_eq!(config["http"]["port"], 8080);
    assert_eq!(config["db"]["url"], "postgres://val:***@db:5432/validator");
    assert_eq!(config["wallet"]["hotkey"], "v1");
    assert_eq!(config["wallet"]["name"], "default");
    assert_eq!(config["device"], "auto");
    assert_eq!(config["cache"]["dir"], "validator-cache");
    assert_eq!(config["weights"]["version_key"], Value::Null);
    assert!(!String::from_utf8_lossy(&output.stdout).contains("hunter2"));
}

/// The chain flags btcli users know: a network name, an endpoint that wins over it (from a flag
/// or `BT_SUBTENSOR_*`), `local` when none is given, and `--chain.url` as the older name.
#[test]
fn the_chain_is_named_as_btcli_names_it() {
    let endpoint = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = validator();
        command
            .args(["run", "--dump-config", "--db.url", "postgres://db/v"])
            .args(args);
        for (name, value) in env {
            command.env(name, value);
        }
        let output = command.output().expect("run validator");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let config: Value = serde_json::from_slice(&output.stdout).expect("JSON");
        config["chain"]["endpoint"]
            .as_str()
            .expect("endpoint")
            .to_owned()
    };
    assert_eq!(endpoint(&[], &[]), "local");
    assert_eq!(endpoint(&["--subtensor.network", "test"], &[]), "test");
    assert_eq!(
        endpoint(
            &["--subtensor.network", "finney"],
            &[("BT_SUBTENSOR_CHAIN_ENDPOINT", "wss://lite.example:443")]
        ),
        "wss://lite.example:443"
    );
    assert_eq!(
        endpoint(&[], &[("BT_SUBTENSOR_NETWORK", "finney")]),
        "finney"
    );
    // The older flag and the new one name the same thing: both at once is a mistake.
    let output = validator()
        .args([
            "run",
            "--dump-config",
            "--db.url",
            "postgres://db/v",
            "--chain.url",
            "http://a:9944",
            "--subtensor.chain_endpoint",
            "ws://b:9944",
        ])
        .output()
        .expect("run validator");
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("--chain.url"), "{err}");
}

#[test]
fn dump_config_hides_passwords_in_query_and_keyword_connection_strings() {
    for (dsn, shown) in [
        (
            "postgres://val@db/validator?password=hunter2",
            "postgres://val@db/validator?password=***",
        ),
        (
            "host=db user=val password=hunter2 dbname=validator",
            "host=db user=val password=*** dbname=validator",
        ),
    ] {
        let output = validator()
            .args(["run", "--dump-config", "--db.url", dsn])
            .output()
            .expect("run validator");
        assert!(output.status.success());
        let config: Value = serde_json::from_slice(&output.stdout).expect("JSON");
        assert_eq!(config["db"]["url"], shown);
        assert!(!String::from_utf8_lossy(&output.stdout).contains("hunter2"));
    }
}

#[test]
fn an_ema_alpha_outside_zero_to_one_is_refused_before_anything_starts() {
    let output = validator()
        .args([
            "run",
            "--db.url",
            "postgres://127.0.0.1:1/none",
            "--scores.ema-alpha",
            "1.5",
        ])
        .output()
        .expect("run validator");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--scores.ema-alpha must be in (0, 1]"),
        "{stderr}"
    );
}

#[test]
fn a_bad_label_prompt_file_is_named_before_anything_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("prompts.jsonl");
    std::fs::write(&bad, "{\"prompt\": \"fine\"}\n{\"text\": \"no prompt\"}\n").expect("write");
    let missing = dir.path().join("missing.jsonl");
    for (file, needle) in [(&bad, "line 2"), (&missing, "missing.jsonl")] {
        let output = validator()
            .args([
                "run",
                "--db.url",
                "postgres://127.0.0.1:1/none",
                "--labels.prompts",
            ])
            .arg(file)
            .output()
            .expect("run validator");
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--labels.prompts"), "{stderr}");
        assert!(stderr.contains(needle), "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
}

#[test]
fn the_database_url_is_required() {
    let output = validator().args(["run"]).output().expect("run validator");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--db.url"), "{stderr}");
}

#[test]
fn a_user_error_is_one_line_without_a_backtrace_even_with_rust_backtrace_set() {
    let output = validator()
        .args([
            "eval",
            "--model",
            "/nonexistent/model",
            "--seed",
            &"0".repeat(64),
        ])
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run validator");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.trim_end(),
        "error: --model /nonexistent/model: no such directory",
        "{stderr}"
    );
    // A chain of causes stays on one line too.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("config.json"), "{").expect("write");
    let output = validator()
        .arg("eval")
        .arg("--model")
        .arg(dir.path())
        .args(["--seed", &"0".repeat(64)])
        .env("RUST_BACKTRACE", "full")
        .output()
        .expect("run validator");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("error: --model "), "{stderr}");
    assert!(
        lines[0].contains("config.json: "),
        "the cause follows: {stderr}"
    );
}

/// The SDK's logging flags are taken before or after the subcommand.
#[test]
fn logging_flags_are_the_sdks() {
    for args in [
        &[
            "--logging.debug",
            "run",
            "--dump-config",
            "--db.url",
            "postgres://db/v",
        ][..],
        &[
            "run",
            "--dump-config",
            "--db.url",
            "postgres://db/v",
            "--logging.trace",
        ][..],
    ] {
        let output = validator().args(args).output().expect("run validator");
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
