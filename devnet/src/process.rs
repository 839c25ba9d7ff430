//! Child processes: one-shot commands with a deadline, long-running services with a log file,
//! and an orderly stop (SIGTERM, a grace period, then SIGKILL).
//!
//! Services run in their own process group, so a Ctrl-C on the terminal reaches only the devnet,
//! which then stops them in reverse start order.

use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rustix::process::{Pid, Signal, kill_process};
use tokio::process::{Child, Command};

/// How long a stopped service may take before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// Runs `program args…` to completion within `timeout`, its output appended to `log`.
/// Returns its stdout; a failure names the command and shows the end of its output.
pub async fn run_command(
    program: &Path,
    args: &[&OsStr],
    envs: &[(&str, &str)],
    log: &Path,
    timeout: Duration,
) -> anyhow::Result<String> {
    let shown = command_line(program, args);
    let mut command = Command::new(program);
    command
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(timeout, command.output())
        .await
        .map_err(|_| anyhow::anyhow!("`{shown}` did not finish within {timeout:?}"))?
        .with_context(|| format!("while starting `{shown}`"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let record = format!("$ {shown}\n{stdout}{stderr}\n");
    if let Err(e) = append(log, &record) {
        eprintln!("devnet: could not write {}: {e}", log.display());
    }
    if !output.status.success() {
        bail!(
            "`{shown}` failed ({}):\n{}",
            output.status,
            tail(&format!("{stdout}{stderr}"), 20)
        );
    }
    Ok(stdout)
}

/// A long-running child process whose stdout and stderr go to a log file.
#[derive(Debug)]
pub struct Service {
    /// Short name used in messages (`chain`, `miner strong`, `validator 1`).
    pub name: String,
    /// Its log file.
    pub log: PathBuf,
    child: Child,
    exited: Option<ExitStatus>,
}

impl Service {
    /// Starts `program args…` in its own process group, output appended to `log` (a service
    /// restarted in a loop, as the simulated labelers are, keeps its history).
    pub fn spawn(
        name: impl Into<String>,
        program: &Path,
        args: &[&OsStr],
        envs: &[(&str, &str)],
        log: &Path,
    ) -> anyhow::Result<Self> {
        let name = name.into();
        let file = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("while opening {}", log.display()))?;
        let err_file = file
            .try_clone()
            .with_context(|| format!("while opening {} twice", log.display()))?;
        let child = Command::new(program)
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err_file)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("while starting {name}: `{}`", command_line(program, args)))?;
        Ok(Self {
            name,
            log: log.to_path_buf(),
            child,
            exited: None,
        })
    }

    /// `Some(status)` once the process has exited (checked without blocking).
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// Errors with the end of its log when the process has exited.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        match self.exit_status() {
            None => Ok(()),
            Some(status) => bail!(
                "{} exited ({status}); the end of {}:\n{}",
                self.name,
                self.log.display(),
                log_tail(&self.log, 20)
            ),
        }
    }

    /// Waits until the log contains a line starting with `prefix` and returns the rest of that
    /// line. Errors when the process exits first or `timeout` passes.
    pub async fn wait_for_line(
        &mut self,
        prefix: &str,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(rest) = text.lines().find_map(|line| line.strip_prefix(prefix)) {
                return Ok(rest.trim().to_owned());
            }
            self.ensure_running()?;
            if Instant::now() >= deadline {
                bail!(
                    "{} did not print {prefix:?} within {timeout:?}; the end of {}:\n{}",
                    self.name,
                    self.log.display(),
                    log_tail(&self.log, 20)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends SIGTERM, waits up to `grace`, then kills. Returns how it ended, for the summary.
    pub async fn stop(&mut self, grace: Duration) -> String {
        if let Some(status) = self.exit_status() {
            return format!("had exited ({status})");
        }
        let pid = self
            .child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(Pid::from_raw);
        if let Some(pid) = pid
            && kill_process(pid, Signal::TERM).is_ok()
            && let Ok(Ok(status)) = tokio::time::timeout(grace, self.child.wait()).await
        {
            self.exited = Some(status);
            return "stopped".to_owned();
        }
        match self.child.kill().await {
            Ok(()) => format!("killed after {grace:?}"),
            Err(e) => format!("could not be killed: {e}"),
        }
    }
}

/// The program and its arguments as one line (for messages).
fn command_line(program: &Path, args: &[&OsStr]) -> String {
    let name = program.file_name().map_or_else(
        || program.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut line = name;
    for arg in args {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

fn append(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = File::options().create(true).append(true).open(path)?;
    file.write_all(text.as_bytes())
}

/// The last `lines` lines of a log file (empty when unreadable).
pub fn log_tail(path: &Path, lines: usize) -> String {
    tail(&std::fs::read_to_string(path).unwrap_or_default(), lines)
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .context("while looking for a free port on 127.0.0.1")?;
    Ok(listener
        .local_addr()
        .context("while reading a bound port")?
        .port())
}

/// Polls `url` until it answers 2xx, the service exits, or `timeout` passes.
pub async fn wait_http_ok(
    http: &reqwest::Client,
    url: &str,
    service: &mut Service,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let answered = http
            .get(url)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if answered {
            return Ok(());
        }
        service.ensure_running()?;
        if Instant::now() >= deadline {
            bail!(
                "{} did not answer {url} within {timeout:?}; the end of {}:\n{}",
                service.name,
                service.log.display(),
                log_tail(&service.log, 20)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }

    #[tokio::test]
    async fn a_failing_command_shows_its_output() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let err = run_command(
            Path::new("/bin/sh"),
            &[OsStr::new("-c"), OsStr::new("echo boom >&2; exit 3")],
            &[],
            &log,
            Duration::from_secs(10),
        )
        .await
        .unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains("boom"), "{message}");
        assert!(std::fs::read_to_string(&log).unwrap().contains("boom"));
    }

    #[tokio::test]
    async fn a_slow_command_is_stopped_at_its_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let err = run_command(
            Path::new("/bin/sleep"),
            &[OsStr::new("5")],
            &[],
            &dir.path().join("log"),
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
        assert!(format!("{err}").contains("did not finish"), "{err}");
    }

    #[tokio::test]
    async fn stop_terminates_a_service_with_sigterm() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let mut service = Service::spawn(
            "sleeper",
            Path::new("/bin/sh"),
            &[OsStr::new("-c"), OsStr::new("echo ready; exec sleep 30")],
            &[],
            &log,
        )
        .unwrap();
        service
            .wait_for_line("ready", Duration::from_secs(10))
            .await
            .unwrap();
        let started = Instant::now();
        assert_eq!(service.stop(Duration::from_secs(5)).await, "stopped");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(service.exit_status().is_some());
    }

    #[tokio::test]
    async fn a_service_that_ignores_sigterm_is_killed_after_the_grace() {
        let dir = tempfile::tempdir().unwrap();
        let mut service = Service::spawn(
            "stubborn",
            Path::new("/bin/sh"),
            &[
                OsStr::new("-c"),
                OsStr::new("trap '' TERM; echo ready; while :; do sleep 0.1; done"),
            ],
            &[],
            &dir.path().join("log"),
        )
        .unwrap();
        service
            .wait_for_line("ready", Duration::from_secs(10))
            .await
            .unwrap();
        let ended = service.stop(Duration::from_millis(300)).await;
        assert!(ended.starts_with("killed"), "{ended}");
    }

    #[tokio::test]
    async fn waiting_for_a_line_fails_fast_when_the_process_exits() {
        let dir = tempfile::tempdir().unwrap();
        let mut service = Service::spawn(
            "quitter",
            Path::new("/bin/sh"),
            &[OsStr::new("-c"), OsStr::new("echo bye; exit 1")],
            &[],
            &dir.path().join("log"),
        )
        .unwrap();
        let err = service
            .wait_for_line("never", Duration::from_secs(20))
            .await
            .unwrap_err();
        assert!(format!("{err}").contains("exited"), "{err}");
    }
}
