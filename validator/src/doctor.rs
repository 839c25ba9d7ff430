//! `validator doctor`: checks everything a validator needs before `validator run` and prints
//! one ✓/✗ line per check. Critical failures make the command exit 1.
//!
//! Checks: the hotkey loads; the chain answers, its head is recent and our clock agrees with
//! it; the hotkey is registered on the subnet and holds a validator permit; Postgres answers and
//! has every migration applied; the cache dir has free space; the evaluation device works.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use subnet_common::chain::client::{ChainClient, ChainClientError, ClientOptions};
use subnet_common::keys::AccountId;
use subnet_subtensor::AnyChain;

use crate::cli::DoctorArgs;
use crate::db;

/// How a check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Fine.
    Pass,
    /// Not fine, but a validator can run (e.g. CPU instead of CUDA).
    Warn,
    /// A validator cannot work like this.
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// How it went.
    pub verdict: Verdict,
    /// Details for the operator.
    pub detail: String,
}

impl Check {
    fn new(name: &'static str, verdict: Verdict, detail: impl Into<String>) -> Self {
        Self {
            name,
            verdict,
            detail: detail.into(),
        }
    }
}

/// Runs every check.
pub async fn checks(args: &DoctorArgs) -> Vec<Check> {
    let mut out = Vec::new();
    let hotkey = match args.wallet.load_hotkey() {
        Ok(pair) => {
            let account = pair.account_id();
            out.push(Check::new(
                "wallet",
                Verdict::Pass,
                format!(
                    "hotkey {account} loads from {}",
                    args.wallet.wallet().hotkey_path().display()
                ),
            ));
            Some(account)
        }
        Err(e) => {
            out.push(Check::new("wallet", Verdict::Fail, e.to_string()));
            None
        }
    };
    out.extend(chain_checks(args, hotkey.as_ref()).await);
    out.push(database(&args.db_url).await);
    out.push(disk(&args.models.cache_dir, args.min_free_gib));
    out.push(device(args.models.device));
    out
}

/// The chain and registration checks when the chain at `endpoint` does not answer.
fn unreachable(endpoint: &str, error: &ChainClientError) -> Vec<Check> {
    vec![
        Check::new(
            "chain",
            Verdict::Fail,
            format!("{endpoint} unreachable: {error}"),
        ),
        Check::new(
            "registration",
            Verdict::Fail,
            "not checked: the chain is unreachable",
        ),
    ]
}

async fn chain_checks(args: &DoctorArgs, hotkey: Option<&AccountId>) -> Vec<Check> {
    let options = ClientOptions {
        request_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(3),
        ..ClientOptions::default()
    };
    let endpoint = args.chain.endpoint();
    let client = match AnyChain::connect(endpoint, options).await {
        Ok(client) => client,
        Err(e @ ChainClientError::BadUrl { .. }) => {
            return vec![Check::new("chain", Verdict::Fail, e.to_string())];
        }
        Err(e) => return unreachable(endpoint, &e),
    };
    let head = match client.head().await {
        Ok(head) => head,
        Err(e) => return unreachable(endpoint, &e),
    };
    let now_ms = crate::web::now_ms();
    let lag = (now_ms as f64 - head.timestamp as f64) / 1000.0;
    let max = args.max_lag_secs as f64;
    let mut out = vec![Check::new(
        "chain",
        if lag <= max {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        format!(
            "{} {endpoint} at block {}, head is {lag:.1} s old (limit {max} s)",
            client.kind(),
            head.number
        ),
    )];
    out.push(if -lag <= max {
        Check::new(
            "clock",
            Verdict::Pass,
            format!("our clock is {:.1} s after the head's timestamp", lag),
        )
    } else {
        Check::new(
            "clock",
            Verdict::Fail,
            format!(
                "the head's timestamp is {:.1} s in our future: check NTP",
                -lag
            ),
        )
    });
    let Some(hotkey) = hotkey else {
        out.push(Check::new(
            "registration",
            Verdict::Fail,
            "not checked: no hotkey",
        ));
        return out;
    };
    out.push(match client.metagraph(args.chain.netuid).await {
        Err(e) => Check::new("registration", Verdict::Fail, e.to_string()),
        Ok(metagraph) => match metagraph.neurons.iter().find(|n| &n.hotkey == hotkey) {
            None => Check::new(
                "registration",
                Verdict::Fail,
                format!("{hotkey} is not registered on subnet {}", args.chain.netuid),
            ),
            Some(n) if !n.validator_permit => Check::new(
                "registration",
                Verdict::Warn,
                format!(
                    "uid {} on subnet {} but no validator permit yet (stake {} rao): weights will not count",
                    n.uid, args.chain.netuid, n.stake
                ),
            ),
            Some(n) => Check::new(
                "registration",
                Verdict::Pass,
                format!("uid {} on subnet {} with a validator permit", n.uid, args.chain.netuid),
            ),
        },
    });
    out
}

async fn database(url: &str) -> Check {
    let pool = match db::connect_unmigrated(url).await {
        Ok(pool) => pool,
        Err(e) => return Check::new("database", Verdict::Fail, e.to_string()),
    };
    let applied = match db::applied_migrations(&pool).await {
        Ok(applied) => applied,
        Err(e) => return Check::new("database", Verdict::Fail, e.to_string()),
    };
    let expected: Vec<i64> = db::MIGRATOR.iter().map(|m| m.version).collect();
    let missing = expected.iter().filter(|v| !applied.contains(v)).count();
    if missing == 0 {
        Check::new(
            "database",
            Verdict::Pass,
            format!(
                "{} reachable, {} migrations applied",
                db::redact(url),
                expected.len()
            ),
        )
    } else {
        Check::new(
            "database",
            Verdict::Warn,
            format!(
                "{} reachable, {missing} of {} migrations not applied yet (`validator run` applies them)",
                db::redact(url),
                expected.len()
            ),
        )
    }
}

/// Free space under `dir` (or its nearest existing parent), from `df -Pk`.
fn disk(dir: &Path, min_free_gib: u64) -> Check {
    let mut probe: PathBuf = dir.to_path_buf();
    while !probe.exists() {
        match probe.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => probe = parent.to_path_buf(),
            _ => {
                probe = PathBuf::from(".");
                break;
            }
        }
    }
    let output = std::process::Command::new("df")
        .arg("-Pk")
        .arg(&probe)
        .output();
    let free_kib = output.ok().and_then(|o| {
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        text.lines()
            .nth(1)?
            .split_whitespace()
            .nth(3)?
            .parse::<u64>()
            .ok()
    });
    match free_kib {
        None => Check::new(
            "disk",
            Verdict::Warn,
            format!("cannot read free space of {}", probe.display()),
        ),
        Some(kib) => {
            let gib = kib as f64 / (1024.0 * 1024.0);
            Check::new(
                "disk",
                if gib >= min_free_gib as f64 {
                    Verdict::Pass
                } else {
                    Verdict::Fail
                },
                format!(
                    "{gib:.1} GiB free at {} (cache {}; need {min_free_gib} GiB)",
                    probe.display(),
                    dir.display()
                ),
            )
        }
    }
}

fn device(choice: subnet_model::backend::DeviceChoice) -> Check {
    match subnet_model::backend::select(choice) {
        Ok(selected)
            if selected.is_cpu() && choice == subnet_model::backend::DeviceChoice::Auto =>
        {
            Check::new(
                "device",
                Verdict::Warn,
                "no CUDA GPU: evaluating on the CPU (slower)",
            )
        }
        Ok(selected) => Check::new(
            "device",
            Verdict::Pass,
            format!("evaluating on {}", selected.name()),
        ),
        Err(e) => Check::new("device", Verdict::Fail, e.to_string()),
    }
}

/// Prints the report; returns whether no check failed.
pub fn print(checks: &[Check], out: &mut impl Write) -> std::io::Result<bool> {
    for c in checks {
        let mark = match c.verdict {
            Verdict::Pass => "✓",
            Verdict::Warn => "!",
            Verdict::Fail => "✗",
        };
        writeln!(out, "{mark} {:<13} {}", c.name, c.detail)?;
    }
    let failed = checks.iter().filter(|c| c.verdict == Verdict::Fail).count();
    if failed == 0 {
        writeln!(out, "all critical checks passed")?;
    } else {
        writeln!(out, "{failed} critical check(s) failed")?;
    }
    Ok(failed == 0)
}

/// `validator doctor`: returns whether every critical check passed.
pub async fn run(args: &DoctorArgs, out: &mut impl Write) -> bool {
    let checks = checks(args).await;
    print(&checks, out).unwrap_or(false)
}
