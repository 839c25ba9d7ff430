//! The start-up shape (`ARCHITECTURE.md`, miner): `startup` builds the state and the router from
//! `routes`, the handlers read `state` and never reach back into `startup`, and the labeler
//! form's handlers live with the other handlers while `labeling` keeps the label track.

use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("read");
            out.push((path, text));
        }
    }
    out
}

#[test]
fn handlers_depend_on_the_state_not_on_startup() {
    for (path, text) in sources(&src().join("routes")) {
        assert!(
            !text.contains("startup"),
            "{} reaches into startup (startup → routes → startup)",
            path.display()
        );
    }
    assert!(
        src().join("state.rs").is_file(),
        "AppState has its own module"
    );
}

#[test]
fn the_labeler_form_is_served_from_routes_and_labeling_keeps_no_handlers() {
    let label = std::fs::read_to_string(src().join("routes/label.rs")).expect("routes/label.rs");
    for handler in ["login_page", "login", "task_page", "answer"] {
        assert!(
            label.contains(&format!("pub async fn {handler}(")),
            "{handler}"
        );
    }
    for (path, text) in sources(&src().join("labeling")) {
        assert!(
            !text.contains("State<AppState>"),
            "{} holds a request handler",
            path.display()
        );
    }
}
