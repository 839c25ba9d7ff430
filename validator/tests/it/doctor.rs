//! `validator doctor` through the real binary: an unreachable chain fails, a good database and
//! wallet pass, and the exit code says whether anything critical failed.

use std::process::{Command, Output};

use sqlx::PgPool;

use crate::pg::database_url;

fn validator(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_validator"))
        .args(args)
        .env_remove("BT_WALLET_PATH")
        .output()
        .expect("run validator")
}

fn line<'a>(stdout: &'a str, name: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
        .unwrap_or_else(|| panic!("no {name} line in\n{stdout}"))
}

/// A wallet with a fresh hotkey under a temp dir; returns the dir.
fn wallet() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_str().expect("utf-8 path");
    let out = validator(&["keys", "--wallet.path", path, "new-hotkey"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

fn doctor(wallet: &str, db_url: &str, cache: &str) -> (Option<i32>, String) {
    let out = validator(&[
        "doctor",
        "--wallet.path",
        wallet,
        "--chain.url",
        "http://127.0.0.1:1",
        "--db.url",
        db_url,
        "--cache.dir",
        cache,
        "--device",
        "cpu",
        "--min-free-gib",
        "0",
    ]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn an_unreachable_chain_fails_and_the_rest_is_reported(pool: PgPool) {
    let wallet = wallet();
    let cache = wallet.path().join("cache");
    let (code, stdout) = doctor(
        wallet.path().to_str().expect("path"),
        &database_url(&pool),
        cache.to_str().expect("path"),
    );
    assert_eq!(code, Some(1), "{stdout}");
    assert!(line(&stdout, "wallet").starts_with('✓'), "{stdout}");
    assert!(line(&stdout, "chain").starts_with('✗'), "{stdout}");
    assert!(line(&stdout, "chain").contains("unreachable"), "{stdout}");
    assert!(line(&stdout, "registration").starts_with('✗'), "{stdout}");
    assert!(line(&stdout, "database").starts_with('✓'), "{stdout}");
    assert!(
        line(&stdout, "database").contains("migrations applied"),
        "{stdout}"
    );
    assert!(line(&stdout, "disk").starts_with('✓'), "{stdout}");
    assert!(line(&stdout, "device").starts_with('✓'), "{stdout}");
    assert!(stdout.contains("2 critical check(s) failed"), "{stdout}");
}

#[sqlx::test(migrations = false)]
async fn missing_wallet_and_unmigrated_database_are_reported(pool: PgPool) {
    let empty = tempfile::tempdir().expect("tempdir");
    let path = empty.path().to_str().expect("path");
    let (code, stdout) = doctor(path, &database_url(&pool), path);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(line(&stdout, "wallet").starts_with('✗'), "{stdout}");
    assert!(line(&stdout, "database").starts_with('!'), "{stdout}");
    assert!(
        line(&stdout, "database").contains("not applied"),
        "{stdout}"
    );
}
