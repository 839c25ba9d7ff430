//! `validator run` flag parsing through the real binary: `--dump-config` shows what flags, env
//! vars and defaults resolved to (flags win over env vars), and bad values stop it early.

use std::process::Command;

use serde_json::Value;

fn validator() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_validator"));
    for var in [
        "BT_NETUID",
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
        .env("BT_SUBTENSOR_CHAIN_ENDPOINT", "http://env:9944")
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
/// or `BT_SUBTENSOR_*`), `local` when none is given, and `--chain.url` as the older name of the
/// endpoint flag.
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
    // `--chain.url`, the older name of the endpoint flag, wins over the endpoint's variable.
    assert_eq!(
        endpoint(
            &["--chain.url", "http://flag:9944"],
            &[("BT_SUBTENSOR_CHAIN_ENDPOINT", "ws://env:9944")]
        ),
        "http://flag:9944"
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
