//! Helpers shared by the integration tests: where `../shared` and the Python venv are.

#![allow(dead_code)]

use std::path::PathBuf;

/// The workspace root (parent of `common/`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("common/ has a parent")
        .to_path_buf()
}

/// `../shared` beside the checkout, or `$SUBNET_SHARED`.
pub fn shared_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("SUBNET_SHARED") {
        return PathBuf::from(dir);
    }
    let dir = workspace_root().join("../shared");
    assert!(
        dir.join("vectors").is_dir(),
        "golden vectors not found at {}: put the shared/ folder beside the checkout or set SUBNET_SHARED",
        dir.display()
    );
    dir
}

/// A Python interpreter with `bittensor==11.3.0` installed: `$SUBNET_PYTHON`, else `.venv/bin/python`.
/// Fails (never skips) with the command that sets it up.
pub fn python() -> PathBuf {
    let py = std::env::var("SUBNET_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join(".venv/bin/python"));
    assert!(
        py.exists(),
        "Python with bittensor 11.3.0 not found at {}: run `scripts/setup-python.sh` (or scripts/test.sh), or set SUBNET_PYTHON",
        py.display()
    );
    py
}

/// Runs a Python snippet with the bittensor venv, feeding `stdin`, and returns stdout.
/// Panics with stderr when the script fails.
pub fn run_python(script: &str, stdin: &str) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(python())
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python");
    child
        .stdin
        .take()
        .expect("stdin piped")
        .write_all(stdin.as_bytes())
        .expect("write python stdin");
    let out = child.wait_with_output().expect("wait for python");
    assert!(
        out.status.success(),
        "python failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("python prints UTF-8")
}
