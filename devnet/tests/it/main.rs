//! End to end: a shortened devnet with real `devchain`, `miner` and `validator` processes, then
//! assertions on the chain's final metagraph (written by the devnet to `summary.json`).
//!
//! Needs PostgreSQL's `initdb`/`pg_ctl` (the `postgresql` package; the devnet starts a throwaway
//! cluster) and builds the three binaries first (debug profile, beside the `devnet` binary).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use subnet_devnet::report::NeuronRow;
use subnet_devnet::run::Summary;

// The miner's Chromium driver, shared by path rather than copied.
#[path = "../../../miner/tests/it/webdriver.rs"]
mod webdriver;

/// The whole run, build excluded, must finish within this.
const RUN_LIMIT: Duration = Duration::from_secs(20 * 60);

/// Builds `devchain`, `miner` and `validator` into the folder of the `devnet` test binary.
fn build_binaries() -> PathBuf {
    let devnet = PathBuf::from(env!("CARGO_BIN_EXE_devnet"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--bins",
            "-p",
            "subnet-chain",
            "-p",
            "subnet-miner",
            "-p",
            "subnet-validator",
        ])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the binaries failed");
    devnet.parent().expect("a folder").to_path_buf()
}

/// Runs the devnet binary to completion (killed after [`RUN_LIMIT`]); returns its output.
fn run_devnet(bin_dir: &Path, run_dir: &Path, summary: &Path, extra: &[&str]) -> String {
    let (child, log) = spawn_devnet(bin_dir, run_dir, summary, extra);
    wait_devnet(child, &log)
}

/// Starts the devnet binary at debug-build speed with `extra` flags; its output goes to the
/// returned log file.
fn spawn_devnet(
    bin_dir: &Path,
    run_dir: &Path,
    summary: &Path,
    extra: &[&str],
) -> (std::process::Child, PathBuf) {
    let log = run_dir.join("devnet-stdout.log");
    std::fs::create_dir_all(run_dir).unwrap();
    let out = std::fs::File::create(&log).unwrap();
    let err = out.try_clone().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_devnet"))
        .args([
            "--tempo",
            "20",
            // Debug validators evaluate slowly: fewer samples, longer blocks.
            "--block-time-ms",
            "1500",
            "--eval-samples",
            "16",
            // Debug builds train ~3 s per step on 2 cores: enough to separate the two models.
            "--strong-steps",
            "30",
            "--weak-steps",
            "2",
        ])
        .args(extra)
        .arg("--bin-dir")
        .arg(bin_dir)
        .arg("--run-dir")
        .arg(run_dir)
        .arg("--summary")
        .arg(summary)
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("devnet starts");
    (child, log)
}

/// Waits for the devnet to finish (killed after [`RUN_LIMIT`]) and checks it succeeded; returns
/// its output.
fn wait_devnet(mut child: std::process::Child, log: &Path) -> String {
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > RUN_LIMIT {
            stop(&mut child);
            panic!(
                "devnet ran over {RUN_LIMIT:?}:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let output = std::fs::read_to_string(log).unwrap_or_default();
    assert!(status.success(), "devnet failed ({status}):\n{output}");
    output
}

/// SIGTERM (the devnet then stops its own children), SIGKILL after 30 s.
fn stop(child: &mut std::process::Child) {
    let pid = i32::try_from(child.id())
        .ok()
        .and_then(rustix::process::Pid::from_raw);
    if let Some(pid) = pid {
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).ok();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    child.kill().ok();
    child.wait().ok();
}

fn role<'a>(summary: &'a Summary, name: &str) -> &'a NeuronRow {
    summary
        .neurons
        .iter()
        .find(|n| n.role == name)
        .unwrap_or_else(|| panic!("no {name} in {:#?}", summary.neurons))
}

/// Runs a devnet of 6 epochs with `extra` flags and returns its summary and a context for
/// messages.
fn devnet_summary(extra: &[&str]) -> (Summary, String) {
    devnet_summary_of(6, extra)
}

/// One devnet at a time: its validators answer the label prompts on the CPU at each epoch's
/// start, and with two devnets on two cores that eats the labelers' window.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A devnet run's turn: [`ONE_AT_A_TIME`] held while it lives, the built binaries, and a
/// temporary directory for the run and its summary.
struct Turn {
    _lock: std::sync::MutexGuard<'static, ()>,
    bin_dir: PathBuf,
    _dir: tempfile::TempDir,
    run_dir: PathBuf,
    summary: PathBuf,
}

/// Waits for the previous devnet to finish, then builds the binaries.
fn turn() -> Turn {
    // A failed test poisons the lock; the next one runs all the same.
    let lock = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let bin_dir = build_binaries();
    let dir = tempfile::tempdir().unwrap();
    Turn {
        _lock: lock,
        bin_dir,
        run_dir: dir.path().join("run"),
        summary: dir.path().join("summary.json"),
        _dir: dir,
    }
}

/// [`devnet_summary`] of `epochs` epochs.
fn devnet_summary_of(epochs: u32, extra: &[&str]) -> (Summary, String) {
    let (summary, context, _turn) = devnet_run(epochs, extra);
    (summary, context)
}

/// [`devnet_summary_of`], also returning the run's [`Turn`]: its run directory lives (and no
/// other devnet starts) until the caller drops it.
fn devnet_run(epochs: u32, extra: &[&str]) -> (Summary, String, Turn) {
    let turn = turn();
    let (bin_dir, run_dir, summary_path) = (&turn.bin_dir, &turn.run_dir, &turn.summary);
    let epochs_flag = epochs.to_string();
    // Label windows inside each epoch: the simulated labelers answer at once, and the few epochs
    // of a test are all paid.
    let extra: Vec<&str> = ["--epochs", epochs_flag.as_str(), "--label-window-secs", "0"]
        .into_iter()
        .chain(extra.iter().copied())
        .collect();
    let output = run_devnet(bin_dir, run_dir, summary_path, &extra);
    let summary: Summary =
        serde_json::from_str(&std::fs::read_to_string(summary_path).unwrap()).unwrap();
    let context = format!("{output}\n{summary:#?}");
    assert_eq!(summary.epochs, epochs, "{context}");
    (summary, context, turn)
}

/// Runs the commands a `--keep` devnet printed to open its dashboard again (start the kept
/// Postgres, serve the dashboard on a free port instead of 8080, stop Postgres) and checks the
/// dashboard shows the run's epochs.
fn dashboard_reopens_as_printed(output: &str, epochs: u32) {
    let commands: Vec<&str> = output
        .lines()
        .skip_while(|line| !line.starts_with("devnet: the databases are kept"))
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .map(str::trim)
        .collect();
    assert_eq!(commands.len(), 3, "start, dashboard, stop:\n{output}");
    let sh = |command: &str| {
        let status = Command::new("sh").args(["-c", command]).status().unwrap();
        assert!(status.success(), "{command}");
    };
    sh(commands[0]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let mut dashboard = Command::new("sh")
        .args(["-c", &format!("exec {} --http.port {port}", commands[1])])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/api/epochs");
    let deadline = Instant::now() + Duration::from_secs(60);
    let stored = loop {
        let answer = Command::new("curl")
            .args(["-sf", "--max-time", "5", &url])
            .output()
            .ok()
            .filter(|out| out.status.success())
            .and_then(|out| serde_json::from_slice::<serde_json::Value>(&out.stdout).ok());
        if let Some(answer) = answer {
            break answer;
        }
        assert!(Instant::now() < deadline, "{url} never answered");
        std::thread::sleep(Duration::from_millis(200));
    };
    dashboard.kill().ok();
    dashboard.wait().ok();
    sh(commands[2]);
    let count = stored
        .as_array()
        .or_else(|| stored.get("epochs").and_then(|e| e.as_array()))
        .map_or(0, Vec::len);
    // The validators start a little after the devnet begins watching: at most its first
    // epoch is not stored.
    assert!(
        count + 1 >= epochs as usize,
        "the kept dashboard shows {count} of {epochs} epochs: {stored}"
    );
}

#[test]
fn a_short_devnet_pays_each_role_what_it_earned() {
    // The full roster: strong, weak, copier, broken, label-good, label-bad, two validators, one
    // model brought with `--extra-model` (the devnet's own untuned base, made the way its docs
    // say: `miner init-base --preset tiny --seed 7`) and one labeler bot (`--extra-labeler`).
    let bin_dir = build_binaries();
    let brought = tempfile::tempdir().unwrap();
    let status = Command::new(bin_dir.join("miner"))
        .args(["init-base", "--preset", "tiny", "--seed", "7", "--out"])
        .arg(brought.path())
        .stdout(Stdio::null())
        .status()
        .expect("miner init-base runs");
    assert!(status.success());
    let extra = format!("untuned={}", brought.path().display());
    // And a labeler bot brought with `--extra-labeler`: it answers A to everything.
    // Kept: its run directory (and Postgres in it) outlives the devnet until `_turn` is dropped.
    let (summary, context, _turn) = devnet_run(
        6,
        &[
            "--extra-model",
            &extra,
            "--extra-labeler",
            "always-a=cat > /dev/null; echo a",
            "--keep",
        ],
    );
    dashboard_reopens_as_printed(&context, summary.epochs);
    let (strong, weak) = (role(&summary, "strong"), role(&summary, "weak"));
    let untuned = role(&summary, "untuned");
    assert!(
        strong.incentive > untuned.incentive,
        "the brought untuned base {} ≥ strong {}\n{context}",
        untuned.incentive,
        strong.incentive
    );
    // It is the base the devnet pins for its validators: an upload of the base earns nothing.
    assert_eq!(
        untuned.outcome.as_deref(),
        Some("not_better_than_base"),
        "untuned\n{context}"
    );
    assert!(
        untuned.emission_rao <= strong.emission_rao / 100,
        "untuned\n{context}"
    );
    let (copier, broken) = (role(&summary, "copier"), role(&summary, "broken"));
    for other in [weak, copier, broken] {
        assert!(
            strong.incentive > other.incentive,
            "strong {} ≤ {} {}\n{context}",
            strong.incentive,
            other.role,
            other.incentive
        );
    }
    assert!(
        strong.total_emission_rao > weak.total_emission_rao,
        "{context}"
    );
    assert_eq!(
        copier.incentive, 0.0,
        "a duplicate earns nothing\n{context}"
    );
    assert_eq!(
        broken.incentive, 0.0,
        "a hash mismatch earns nothing\n{context}"
    );

    let (good, bad) = (role(&summary, "label-good"), role(&summary, "label-bad"));
    assert!(
        good.incentive > bad.incentive,
        "accurate labeler {} ≤ inaccurate {}\n{context}",
        good.incentive,
        bad.incentive
    );
    // Half its known answers are right by chance: it carries no information and is paid for
    // none (docs/scoring.md, the information rule).
    let always_a = role(&summary, "always-a");
    assert!(
        always_a.incentive <= 0.1 * good.incentive,
        "always-A bot {} against the accurate labeler {}\n{context}",
        always_a.incentive,
        good.incentive
    );
    assert!(
        good.total_emission_rao > bad.total_emission_rao,
        "{context}"
    );

    for validator in ["validator1", "validator2"] {
        let v = role(&summary, validator);
        assert!(v.validator_permit, "{context}");
        assert!(
            v.dividends > 0.0,
            "{validator} earns no dividends\n{context}"
        );
    }
}

#[test]
fn an_adversarial_devnet_pays_no_copy_of_the_strong_model_and_one_sybil_at_most() {
    // A front-runner of the strong miner's commitment, a selective miner (its own model,
    // committed first, served to validator1 only), strong, weak, four copies of the strong
    // model (changed config, permuted units, 3% noise, logits × 1.25), one model on three
    // hotkeys, three validators; no label miners.
    let (summary, context) = devnet_summary(&["--roster", "adversarial", "--label-miners", "0"]);
    let strong = role(&summary, "strong");
    let models = [
        "front-runner",
        "selective",
        "weak",
        "changed-config",
        "permuted",
        "noisy",
        "sharpened",
        "sybil1",
        "sybil2",
        "sybil3",
    ];
    for name in models {
        let other = role(&summary, name);
        assert!(
            strong.incentive > other.incentive,
            "strong {} ≤ {name} {}\n{context}",
            strong.incentive,
            other.incentive
        );
    }
    for name in ["changed-config", "permuted", "noisy", "sharpened"] {
        let copy = role(&summary, name);
        assert!(
            copy.incentive <= 0.01 * strong.incentive,
            "{name} earns {} against strong {}\n{context}",
            copy.incentive,
            strong.incentive
        );
        // (Totals include the first epochs, before any weights, when every uid is paid alike.)
        assert!(
            copy.emission_rao <= strong.emission_rao / 100,
            "{name} was paid in the last epoch\n{context}"
        );
    }
    // It committed the strong miner's bytes in an earlier block and serves the same files: the
    // commitment binds them to the strong miner's hotkey, so nothing it serves matches.
    let front_runner = role(&summary, "front-runner");
    assert_eq!(
        front_runner.outcome.as_deref(),
        Some("hash_mismatch"),
        "front-runner\n{context}"
    );
    assert!(
        front_runner.emission_rao <= strong.emission_rao / 100,
        "front-runner\n{context}"
    );
    // validator1 fetched and scored its model (the table's scores are validator1's); the two
    // others were refused, and one validator's third of the stake is under κ.
    let selective = role(&summary, "selective");
    assert_eq!(
        selective.outcome.as_deref(),
        Some("ok"),
        "selective\n{context}"
    );
    assert!(
        summary.selective_refusals.is_some_and(|n| n > 0),
        "the other validators never asked the selective miner\n{context}"
    );
    assert!(
        selective.incentive <= 0.01 * strong.incentive
            && selective.emission_rao <= strong.emission_rao / 100,
        "selective earns {} against strong {}\n{context}",
        selective.incentive,
        strong.incentive
    );
    let sybils: Vec<&NeuronRow> = ["sybil1", "sybil2", "sybil3"]
        .iter()
        .map(|name| role(&summary, name))
        .collect();
    let paid = sybils.iter().filter(|s| s.incentive > 0.0).count();
    assert!(paid <= 1, "{paid} sybils earn\n{context}");
    for sybil in &sybils[1..] {
        assert_eq!(
            sybil.outcome.as_deref(),
            Some("duplicate"),
            "{}: a later hotkey serving the same model\n{context}",
            sybil.role
        );
    }
}

#[test]
fn a_label_devnet_pays_for_information_not_bots_noise_or_replays() {
    // Strong and weak (their models answer the label prompts), then label miners: careful
    // (90%), careless (60%), random, always-a, always-tie, a shallow bot, and one person (90%)
    // on three hotkeys, the second and third replaying the first's choices on their batches.
    // Labels start in epoch 3 (once a model is scored to answer the prompts): 8 epochs give each
    // labeler about 28 known answers, enough to tell 90% from 60% (docs/scoring.md).
    let (summary, context) = devnet_summary_of(8, &["--roster", "labels"]);
    let labelers = [
        "careful",
        "careless",
        "bot-random",
        "bot-always-a",
        "bot-always-tie",
        "bot-shallow",
        "replay1",
        "replay2",
        "replay3",
    ];
    let incentive = |name: &str| role(&summary, name).incentive;
    let pool: f64 = labelers.iter().map(|name| incentive(name)).sum();
    let careful = incentive("careful");
    // The two 90% people share what is paid; by chance one of them can be unlucky in a short
    // run, not both.
    assert!(
        careful + incentive("replay1") > 0.5 * pool && pool > 0.0,
        "the careful people earn less than half the label pool\n{context}"
    );
    for name in [
        "careless",
        "bot-random",
        "bot-always-a",
        "bot-always-tie",
        "bot-shallow",
        "replay2",
        "replay3",
    ] {
        assert!(
            incentive(name) <= careful.max(incentive("replay1")),
            "{name} {} earns more than the careful labelers\n{context}",
            incentive(name)
        );
    }
    for name in [
        "bot-random",
        "bot-always-a",
        "bot-always-tie",
        "replay2",
        "replay3",
    ] {
        assert!(
            incentive(name) < 0.02 * pool,
            "{name} earns {} of a label pool of {pool}\n{context}",
            incentive(name)
        );
    }
    let best_person = careful.max(incentive("replay1"));
    assert!(
        incentive("careless") < best_person / 3.0,
        "careless {} against careful {best_person}\n{context}",
        incentive("careless")
    );
    assert!(
        incentive("bot-shallow") < best_person / 3.0,
        "the shallow bot {} against careful {best_person}\n{context}",
        incentive("bot-shallow")
    );
    let replays: f64 = ["replay1", "replay2", "replay3"]
        .iter()
        .map(|n| incentive(n))
        .sum();
    assert!(
        replays <= 1.5 * best_person,
        "one person on three hotkeys earns {replays}, one careful labeler {best_person}\n{context}"
    );
}

/// The batch of `task_id` and its hidden truth, from what the validators wrote
/// (`--labels.truth-dir`).
fn truth_of(run_dir: &Path, task_id: &str) -> Option<subnet_common::protocol::SimulationTruth> {
    let dir = run_dir.join("label-truth");
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
        .filter_map(|text| {
            serde_json::from_str::<subnet_common::protocol::SimulationTruth>(&text).ok()
        })
        .find(|truth| truth.tasks.contains_key(task_id))
}

#[test]
fn a_person_labels_a_batch_in_chromium_on_the_default_devnet_before_its_deadline() {
    use serde_json::json;
    use subnet_common::protocol::Choice;

    let turn = turn();
    let (run_dir, summary_path) = (&turn.run_dir, &turn.summary);
    // The default devnet (its label miners, its label window) at debug-build speed.
    let (child, log) = spawn_devnet(&turn.bin_dir, run_dir, summary_path, &["--epochs", "8"]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (answered, batch_size) = runtime.block_on(async {
        let started = Instant::now();
        let link = loop {
            let output = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(line) = output
                .lines()
                .find(|l| l.contains("label as a person for miner"))
            {
                let link = line
                    .split_whitespace()
                    .find(|w| w.starts_with("http"))
                    .expect("a link");
                break link.to_owned();
            }
            assert!(
                started.elapsed() < Duration::from_secs(600),
                "the devnet printed no sign-in link:\n{output}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let origin = &link[..link.find("/label").expect("a /label link")];
        let driver = webdriver::Driver::start().await;
        driver.goto(&link).await;
        driver.click("#sign-in").await;
        driver.wait_text("#labeler", "you").await;
        // A person's pace, three and a half seconds per pair, through the whole of the first
        // batch shown (and whatever comes before its last task): longer than an epoch (31.5 s
        // here), which the window must outlast.
        let mut answered = 0;
        let mut batch_size = 0;
        let mut first_batch: Option<std::collections::BTreeSet<String>> = None;
        while first_batch.as_ref().is_none_or(|left| !left.is_empty()) {
            assert!(
                started.elapsed() < Duration::from_secs(900),
                "{answered} tasks labelled; the first batch still has {first_batch:?}"
            );
            let has_task = driver
                .script("return document.getElementById('answer-form') !== null;")
                .await;
            if has_task != json!(true) {
                // "No open tasks" until the validators' first answered prompts arrive.
                let output = std::fs::read_to_string(&log).unwrap_or_default();
                assert!(
                    !output.contains("devnet: stopped"),
                    "the devnet ended with {answered} tasks labelled and the first batch still \
                     holding {first_batch:?}:\n{output}"
                );
                tokio::time::sleep(Duration::from_secs(2)).await;
                driver.goto(&format!("{origin}/label")).await;
                continue;
            }
            let task = driver
                .script("return document.getElementById('answer-form').dataset.task;")
                .await;
            let task = task.as_str().expect("a task id").to_owned();
            let truth = truth_of(run_dir, &task).expect("the task's truth was written");
            if first_batch.is_none() {
                let deadline = driver.text("#deadline").await;
                let blocks_left: u64 = deadline
                    .split(" blocks left")
                    .next()
                    .and_then(|head| head.rsplit(' ').next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("no blocks left in {deadline:?}"));
                assert!(
                    blocks_left > 21,
                    "the window outlasts an epoch: {deadline:?}"
                );
                assert!(deadline.contains("min"), "shown in minutes: {deadline:?}");
                first_batch = Some(truth.tasks.keys().cloned().collect());
                batch_size = truth.tasks.len() as u64;
            }
            tokio::time::sleep(Duration::from_millis(3500)).await;
            let button = match truth.tasks[&task] {
                Some(Choice::B) => "#choose-b",
                Some(Choice::Tie) => "#choose-tie",
                _ => "#choose-a",
            };
            let progress = driver.text("#progress").await;
            let done: u64 = progress
                .strip_prefix("Done ")
                .and_then(|rest| rest.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no progress in {progress:?}"));
            driver.click(button).await;
            let title = driver.script("return document.title;").await;
            assert!(
                !title.as_str().unwrap_or_default().contains("Not counted"),
                "answer {answered} came after its deadline"
            );
            // Stored: the next page counts it.
            driver
                .wait_text("#progress", &format!("Done {} /", done + 1))
                .await;
            answered += 1;
            if let Some(left) = &mut first_batch {
                left.remove(&task);
            }
            eprintln!(
                "labelled {answered} at {:?}; first batch left: {:?}",
                started.elapsed(),
                first_batch.as_ref().map(|l| l.len())
            );
        }
        (answered, batch_size)
    });
    let output = wait_devnet(child, &log);
    let summary: Summary =
        serde_json::from_str(&std::fs::read_to_string(summary_path).unwrap()).unwrap();
    let context =
        format!("{output}\n{summary:#?}\n{answered} labelled, {batch_size} in the first batch");
    // The validators collected the person's labels (and so paid for them): at least the whole
    // first batch; and every known pair was judged right, as the person judged it.
    let collected: u64 = summary.person.iter().map(|p| p.labels).sum();
    assert!(collected >= batch_size, "{context}");
    for p in &summary.person {
        assert_eq!(p.right, p.known, "{context}");
    }
    assert!(summary.person.iter().any(|p| p.known > 0), "{context}");
}
