//! A **simulated** labeler, for tests and demos: it signs in with a sign-in link and answers
//! through the same HTTP form a browser uses (session cookie, one-time CSRF tokens, redirects).
//!
//! How it decides. A simulation cannot know which answer a human would prefer, nor see, as a
//! person does, which answer of a known pair is the corrupted one. With `--truth-dir DIR` it
//! reads the validators' hidden truth of each task (written there by a validator started with
//! `--labels.truth-dir DIR`, [`SimulationTruth`]): that stands in for a person's judgement. For
//! prompts of the subnet's own task generators (`subnet_model::tasks`, e.g. `12+7=`) it can also
//! check each answer with the generators' checker ([`TaskKind::check`]): the right one is
//! "correct" (both right: a tie). With probability `accuracy` it gives the correct
//! choice, otherwise a wrong one (the other answer; for a tie, A or B at random). An open pair
//! has no right answer: when the truth file says which side the better-ranked model gave
//! ([`SimulationTruth::open_better`]) it prefers that side with the same accuracy (a person
//! usually prefers the better model's answer; this is what makes a devnet's exported
//! preferences carry a signal), otherwise it picks A, B or Tie uniformly at random.
//!
//! With [`Answerer::Program`] a program decides instead (`miner labelers simulate
//! --answer-with CMD`): for each task it runs `sh -c CMD`, writes the task as one JSON object
//! (`{"task_id", "prompt", "a", "b"}`) to its standard input and reads `a`, `b` or `tie` from its
//! standard output. That is how a bot, a checker or a language model is put on the form, to see
//! what the validators pay it.
//!
//! [`FormClient`] is the browser part alone (sign in, next task, submit), shared with the
//! concurrent-labelers test and `cargo bench -p subnet-miner --bench labelers`.

use std::{
    io::Write,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, bail};
use rand::{Rng, SeedableRng, rngs::StdRng};
use reqwest::{StatusCode, header};
use subnet_common::protocol::{Choice, SimulationTruth};
use subnet_model::tasks::TaskKind;

use super::SESSION_COOKIE;
use crate::db;

/// The answer a checker finds correct ([`TaskKind::check`]), if any checker knows the prompt and
/// exactly one answer (or both) is right.
pub fn judge(prompt: &str, a: &str, b: &str) -> Option<Choice> {
    let kind = TaskKind::ALL
        .into_iter()
        .find(|kind| kind.solve(prompt).is_some())?;
    match (kind.check(prompt, a), kind.check(prompt, b)) {
        (true, false) => Some(Choice::A),
        (false, true) => Some(Choice::B),
        (true, true) => Some(Choice::Tie),
        (false, false) => None,
    }
}

/// What a simulated labeler with `accuracy` answers, given the checker's verdict.
pub fn decide<R: Rng + ?Sized>(truth: Option<Choice>, accuracy: f64, rng: &mut R) -> Choice {
    let Some(truth) = truth else {
        return [Choice::A, Choice::B, Choice::Tie][rng.gen_range(0..3)];
    };
    if rng.gen_bool(accuracy.clamp(0.0, 1.0)) {
        return truth;
    }
    match truth {
        Choice::A => Choice::B,
        Choice::B => Choice::A,
        Choice::Tie => [Choice::A, Choice::B][rng.gen_range(0..2)],
    }
}

/// Settings of one simulation run.
#[derive(Debug, Clone)]
pub struct Simulation {
    /// The sign-in link (`http://host:port/label/login?token=…`).
    pub link: String,
    /// Who answers.
    pub answerer: Answerer,
    /// Most answers to give (stops earlier when no task is open).
    pub count: usize,
    /// Seed of the choices (random when `None`).
    pub seed: Option<u64>,
    /// Where validators write the hidden truth of their batches (`--labels.truth-dir`); only a
    /// simulated person reads it, but every answerer's report counts against it.
    pub truth_dir: Option<PathBuf>,
    /// Appends each choice (`a`, `b`, `tie`), one per line, to this file (`--record`).
    pub record: Option<PathBuf>,
}

/// Who answers the tasks of a simulation.
#[derive(Debug, Clone, PartialEq)]
pub enum Answerer {
    /// A simulated person, right with this probability where the truth is known (the truth
    /// files, or a task generator's checker); A, B or tie at random elsewhere.
    Person {
        /// In [0, 1].
        accuracy: f64,
    },
    /// A program: `sh -c CMD` with the task on its stdin (`--answer-with`).
    Program(String),
    /// A built-in bot (`--bot`).
    Bot(Bot),
    /// Answers its n-th task with the n-th choice another simulation recorded (`--replay FILE`,
    /// `--record` of the other): one person's answers replayed on another hotkey. n counts the
    /// lines of this simulation's own `--record` file across runs.
    Replay(PathBuf),
}

/// Built-in bots: what a labeler who does not read the answers, or reads only their surface,
/// earns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Bot {
    /// A or B at random.
    Random,
    /// Always A.
    AlwaysA,
    /// Always tie.
    AlwaysTie,
    /// Surface rules: the answer with more of the prompt's words, then the longer, then A.
    Shallow,
}

impl Bot {
    /// The bot's choice on `task`.
    pub fn choose<R: Rng + ?Sized>(self, task: &ShownTask, rng: &mut R) -> Choice {
        match self {
            Bot::Random => [Choice::A, Choice::B][rng.gen_range(0..2)],
            Bot::AlwaysA => Choice::A,
            Bot::AlwaysTie => Choice::Tie,
            Bot::Shallow => {
                let words: std::collections::BTreeSet<String> = task
                    .prompt
                    .split_whitespace()
                    .map(str::to_lowercase)
                    .collect();
                let overlap = |answer: &str| {
                    answer
                        .split_whitespace()
                        .filter(|w| words.contains(&w.to_lowercase()))
                        .count()
                };
                let key = |answer: &str| (overlap(answer), answer.chars().count());
                if key(&task.b) > key(&task.a) {
                    Choice::B
                } else {
                    Choice::A
                }
            }
        }
    }
}

/// How long a replay waits for the recording it follows to reach its next line.
const REPLAY_WAIT: Duration = Duration::from_secs(5);

/// Lines of `path` (none when it does not exist yet).
fn recorded(path: &Path) -> anyhow::Result<Vec<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.lines().map(str::to_owned).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("while reading {}", path.display())),
    }
}

/// The `n`-th recorded choice of `path`, waiting up to [`REPLAY_WAIT`] for it; `None` when the
/// recording has not got that far.
async fn replayed(path: &Path, n: usize) -> anyhow::Result<Option<Choice>> {
    let waited = std::time::Instant::now();
    loop {
        if let Some(line) = recorded(path)?.get(n) {
            return match line.trim() {
                "a" => Ok(Some(Choice::A)),
                "b" => Ok(Some(Choice::B)),
                "tie" => Ok(Some(Choice::Tie)),
                other => bail!(
                    "{}: line {} is {other:?}, not a, b or tie",
                    path.display(),
                    n + 1
                ),
            };
        }
        if waited.elapsed() > REPLAY_WAIT {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The truth files of a `--truth-dir`, read as tasks need them.
#[derive(Debug)]
pub struct TruthDir {
    dir: std::path::PathBuf,
    read: std::collections::BTreeSet<std::ffi::OsString>,
    tasks: std::collections::BTreeMap<String, Option<Choice>>,
    /// Open tasks' sides given by the better-ranked model ([`SimulationTruth::open_better`]).
    better: std::collections::BTreeMap<String, Choice>,
}

impl TruthDir {
    /// Reads nothing yet.
    pub fn new(dir: std::path::PathBuf) -> Self {
        Self {
            dir,
            read: Default::default(),
            tasks: Default::default(),
            better: Default::default(),
        }
    }

    /// For an open task [`lookup`](Self::lookup) found: the side of the model the validator
    /// ranked higher, when its answers came from differently ranked models.
    pub fn better(&self, task_id: &str) -> Option<Choice> {
        self.better.get(task_id).copied()
    }

    /// The truth of `task_id`: `Some(Some(choice))` for a known pair, `Some(None)` for an open
    /// one, `None` when no file has it (files written since the last look are read first).
    pub fn lookup(&mut self, task_id: &str) -> anyhow::Result<Option<Option<Choice>>> {
        if !self.tasks.contains_key(task_id) {
            let entries = match std::fs::read_dir(&self.dir) {
                // No validator has written one yet.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                other => {
                    Some(other.with_context(|| format!("--truth-dir {}", self.dir.display()))?)
                }
            };
            for entry in entries.into_iter().flatten() {
                let entry = entry?;
                let name = entry.file_name();
                let is_truth = name
                    .to_str()
                    .is_some_and(|n| n.ends_with(".json") && !n.starts_with('.'));
                if !is_truth || self.read.contains(&name) {
                    continue;
                }
                let text = std::fs::read(entry.path())
                    .with_context(|| format!("while reading {}", entry.path().display()))?;
                let truth: SimulationTruth = serde_json::from_slice(&text)
                    .with_context(|| format!("{} is not a truth file", entry.path().display()))?;
                self.tasks.extend(truth.tasks);
                self.better.extend(truth.open_better);
                self.read.insert(name);
            }
        }
        Ok(self.tasks.get(task_id).copied())
    }
}

/// Longest a `--answer-with` program may take for one task.
pub const PROGRAM_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest answer read from a `--answer-with` program.
const PROGRAM_OUTPUT_LIMIT: usize = 4096;

/// Asks `command` (run with `sh -c`) for its choice on `task`.
pub async fn ask_program(command: &str, task: &ShownTask) -> anyhow::Result<Choice> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let input = serde_json::json!({
        "task_id": task.task_id,
        "prompt": task.prompt,
        "a": task.a,
        "b": task.b,
    })
    .to_string();
    let mut child = tokio::process::Command::new("sh")
        .args(["-c", command])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("--answer-with {command:?}: cannot start it"))?;
    let mut stdin = child.stdin.take().context("no stdin")?;
    let mut stdout = child.stdout.take().context("no stdout")?;
    let talk = async {
        // A program that answers without reading its input closes the pipe early: not an error.
        let _ = stdin.write_all(input.as_bytes()).await;
        let _ = stdin.write_all(b"\n").await;
        drop(stdin);
        let mut output = Vec::new();
        (&mut stdout)
            .take(PROGRAM_OUTPUT_LIMIT as u64)
            .read_to_end(&mut output)
            .await?;
        let status = child.wait().await?;
        Ok::<_, std::io::Error>((status, output))
    };
    let (status, output) = tokio::time::timeout(PROGRAM_TIMEOUT, talk)
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "--answer-with {command:?}: no answer within {} s",
                PROGRAM_TIMEOUT.as_secs()
            )
        })?
        .with_context(|| format!("--answer-with {command:?}"))?;
    let text = String::from_utf8_lossy(&output);
    if !status.success() {
        bail!("--answer-with {command:?} exited with {status} (printed {text:?})");
    }
    match text.trim().to_ascii_lowercase().as_str() {
        "a" => Ok(Choice::A),
        "b" => Ok(Choice::B),
        "tie" => Ok(Choice::Tie),
        _ => bail!("--answer-with {command:?} printed {text:?}, not a, b or tie"),
    }
}

/// What a simulation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimulationReport {
    /// Answers stored.
    pub answered: usize,
    /// Of those, answers to tasks whose truth was known (from the truth files or a checker).
    pub judged: usize,
    /// Of those, answers equal to the truth.
    pub correct: usize,
}

/// A task page as the simulation reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownTask {
    /// The form's CSRF token.
    pub csrf: String,
    /// Task id shown.
    pub task_id: String,
    /// Prompt text (unescaped).
    pub prompt: String,
    /// Answer A (unescaped).
    pub a: String,
    /// Answer B (unescaped).
    pub b: String,
}

/// What the miner answered to a submitted answer form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    /// Stored: `303 See Other` to the next task.
    Stored,
    /// Refused with this status (409 submitted before or answered already, 403 token of another
    /// session, 410 deadline passed, 401 no session, …); the miner stored nothing.
    Refused(StatusCode),
}

/// A signed-in labeler's browser, reduced to what a simulation needs: its own connection, the
/// session cookie, redirects not followed (so each step's answer can be checked).
#[derive(Debug, Clone)]
pub struct FormClient {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

impl FormClient {
    /// Opens the sign-in link (`http://HOST:PORT/label/login?token=…`), presses "Sign in" and
    /// keeps the session cookie.
    pub async fn sign_in(link: &str) -> anyhow::Result<Self> {
        let base = link
            .split_once("/label/login")
            .map(|(base, _)| base.to_string())
            .context("the link must look like http://HOST:PORT/label/login?token=…")?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .context("while building the HTTP client")?;
        let cookie = sign_in(&http, link).await?;
        Ok(Self { http, base, cookie })
    }

    /// The miner's base URL (`http://HOST:PORT`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET /label`: the next open task, or `None` on the "No open tasks" page.
    pub async fn next_task(&self) -> anyhow::Result<Option<ShownTask>> {
        let page = get_page(&self.http, &format!("{}/label", self.base), &self.cookie).await?;
        match parse_task(&page) {
            Some(task) => Ok(Some(task)),
            None if page.contains("No open tasks") => Ok(None),
            None => bail!("GET /label returned neither a task nor the all-done page"),
        }
    }

    /// `POST /label/answer`: submits the form whose CSRF token is `csrf`.
    pub async fn submit(
        &self,
        csrf: &str,
        choice: Choice,
        note: &str,
    ) -> anyhow::Result<Submitted> {
        let response = self
            .http
            .post(format!("{}/label/answer", self.base))
            .header(header::COOKIE, &self.cookie)
            .form(&[
                ("csrf", csrf),
                ("choice", db::choice_str(choice)),
                ("note", note),
            ])
            .send()
            .await
            .context("while posting an answer")?;
        let status = response.status();
        // Read the page to its end, so the connection can carry the next request.
        response
            .bytes()
            .await
            .context("while reading the answer's response")?;
        Ok(if status == StatusCode::SEE_OTHER {
            Submitted::Stored
        } else {
            Submitted::Refused(status)
        })
    }
}

/// Runs the simulation, writing one line per answer to `out`.
pub async fn run(sim: &Simulation, out: &mut impl Write) -> anyhow::Result<SimulationReport> {
    let client = FormClient::sign_in(&sim.link).await?;
    let who = match &sim.answerer {
        Answerer::Person { accuracy } => format!("a simulated labeler (accuracy {accuracy:.2})"),
        Answerer::Program(command) => format!("the program {command:?}"),
        Answerer::Bot(bot) => format!("the built-in bot {bot:?}"),
        Answerer::Replay(path) => format!("a replay of {}", path.display()),
    };
    writeln!(
        out,
        "SIMULATION: {who}, not a human, answering at {}",
        client.base()
    )?;
    // A replay's position: what it answered before, in this run and earlier ones.
    let mut replayed_so_far = match &sim.record {
        Some(path) => recorded(path)?.len(),
        None => 0,
    };
    let mut rng = match sim.seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => StdRng::from_entropy(),
    };
    let mut report = SimulationReport::default();
    let mut truths = sim.truth_dir.clone().map(TruthDir::new);
    while report.answered < sim.count {
        let Some(task) = client.next_task().await? else {
            writeln!(out, "SIMULATION: no open task left")?;
            break;
        };
        let told = match &mut truths {
            Some(truths) => truths.lookup(&task.task_id)?,
            None => None,
        };
        let truth = match told {
            Some(truth) => truth,
            None => judge(&task.prompt, &task.a, &task.b),
        };
        // An open pair has no right answer; a simulated person prefers the better-ranked
        // model's side (when the validator said which), as a person would usually prefer the
        // better model's answer.
        let better = truths.as_ref().and_then(|t| t.better(&task.task_id));
        let choice = match &sim.answerer {
            Answerer::Person { accuracy } => decide(truth.or(better), *accuracy, &mut rng),
            Answerer::Program(command) => ask_program(command, &task).await?,
            Answerer::Bot(bot) => bot.choose(&task, &mut rng),
            Answerer::Replay(path) => match replayed(path, replayed_so_far).await? {
                Some(choice) => choice,
                None => {
                    writeln!(
                        out,
                        "SIMULATION: {} has nothing more to replay yet",
                        path.display()
                    )?;
                    break;
                }
            },
        };
        replayed_so_far += 1;
        if let Submitted::Refused(status) = client
            .submit(&task.csrf, choice, "simulated labeler")
            .await?
        {
            bail!("answer to task {} refused with {status}", task.task_id);
        }
        if let Some(path) = &sim.record {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("--record {}", path.display()))?;
            writeln!(file, "{}", db::choice_str(choice))?;
        }
        report.answered += 1;
        if let Some(truth) = truth {
            report.judged += 1;
            report.correct += usize::from(truth == choice);
        }
        writeln!(
            out,
            "SIMULATION: task {} → {} (truth: {})",
            task.task_id,
            db::choice_str(choice),
            truth.map_or("unknown", db::choice_str)
        )?;
    }
    writeln!(
        out,
        "SIMULATION done: {} answers, {} with a known truth, {} of those correct",
        report.answered, report.judged, report.correct
    )?;
    Ok(report)
}

/// Opens the link, presses "Sign in", returns the `Cookie` header value of the session.
async fn sign_in(http: &reqwest::Client, link: &str) -> anyhow::Result<String> {
    let page = http
        .get(link)
        .send()
        .await
        .with_context(|| format!("while opening the sign-in link {link}"))?;
    if !page.status().is_success() {
        bail!("the sign-in link answered {}", page.status());
    }
    let html = page
        .text()
        .await
        .context("while reading the sign-in page")?;
    let token = attribute_after(&html, "name=\"token\"", "value=\"")
        .context("the sign-in page has no token field")?;
    let login_url = link
        .split_once('?')
        .map_or(link, |(path, _)| path)
        .to_string();
    let response = http
        .post(login_url)
        .form(&[("token", token.as_str())])
        .send()
        .await
        .context("while signing in")?;
    if response.status() != StatusCode::SEE_OTHER {
        bail!(
            "sign-in refused ({}): the link was used or has expired",
            response.status()
        );
    }
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let pair = v.split(';').next()?.trim();
            pair.starts_with(&format!("{SESSION_COOKIE}="))
                .then(|| pair.to_string())
        })
        .context("sign-in set no session cookie")
}

async fn get_page(http: &reqwest::Client, url: &str, cookie: &str) -> anyhow::Result<String> {
    let response = http
        .get(url)
        .header(header::COOKIE, cookie)
        .send()
        .await
        .with_context(|| format!("while loading {url}"))?;
    if !response.status().is_success() {
        bail!("{url} answered {}", response.status());
    }
    response.text().await.context("while reading the task page")
}

/// Reads the task form out of a task page; `None` when the page shows no task.
pub fn parse_task(html: &str) -> Option<ShownTask> {
    Some(ShownTask {
        csrf: attribute_after(html, "name=\"csrf\"", "value=\"")?,
        task_id: attribute_after(html, "id=\"answer-form\"", "data-task=\"")?,
        prompt: text_after(html, "id=\"prompt\">", "</div>")?,
        a: text_after(html, "id=\"answer-a\">", "</div>")?,
        b: text_after(html, "id=\"answer-b\">", "</div>")?,
    })
}

fn attribute_after(html: &str, anchor: &str, attribute: &str) -> Option<String> {
    let rest = &html[html.find(anchor)? + anchor.len()..];
    text_after(rest, attribute, "\"")
}

fn text_after(html: &str, start: &str, end: &str) -> Option<String> {
    let rest = &html[html.find(start)? + start.len()..];
    Some(unescape(&rest[..rest.find(end)?]))
}

/// Undoes HTML escaping (`&#60;`, `&lt;`, `&amp;`, …).
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let decoded = rest.find(';').and_then(|end| {
            let entity = &rest[1..end];
            let c = match entity {
                "lt" => Some('<'),
                "gt" => Some('>'),
                "amp" => Some('&'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => entity
                    .strip_prefix("#x")
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            }?;
            Some((c, end + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checker_finds_the_correct_answer() {
        assert_eq!(judge("12+7=", "19", "18"), Some(Choice::A));
        assert_eq!(judge("reverse(abc)=", "abc", "cba"), Some(Choice::B));
        assert_eq!(judge("next(9)=", "10", " 10"), Some(Choice::Tie));
        assert_eq!(judge("12+7=", "1", "2"), None);
        assert_eq!(judge("Write a poem", "x", "y"), None);
    }

    #[test]
    fn accuracy_one_is_always_right_and_zero_always_wrong() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..50 {
            assert_eq!(decide(Some(Choice::A), 1.0, &mut rng), Choice::A);
            assert_eq!(decide(Some(Choice::A), 0.0, &mut rng), Choice::B);
            assert_ne!(decide(Some(Choice::Tie), 0.0, &mut rng), Choice::Tie);
        }
    }

    #[test]
    fn accuracy_is_the_share_of_correct_answers() {
        let mut rng = StdRng::seed_from_u64(7);
        let right = (0..4000)
            .filter(|_| decide(Some(Choice::B), 0.8, &mut rng) == Choice::B)
            .count();
        assert!((3050..3350).contains(&right), "{right}");
    }

    #[test]
    fn unescape_reverses_askama_and_named_entities() {
        assert_eq!(
            unescape("&#60;script&#62; &lt;b&gt; &amp;&#38; &#34;&quot; &#x27; & ;"),
            "<script> <b> && \"\" ' & ;"
        );
    }

    #[test]
    fn a_rendered_task_page_parses_back() {
        use askama::Template;
        let page = super::super::pages::TaskPage {
            labeler: "sim".into(),
            done: 1,
            total: 3,
            deadline_block: 9,
            blocks_left: None,
            seconds_left: String::new(),
            task_id: "t<1>".into(),
            prompt: "<script>alert(1)</script>\n2+2=".into(),
            a: "4 & more".into(),
            b: "\"5\"".into(),
            csrf: "c0ffee".into(),
            max_note: 10,
            saved: true,
        };
        let shown = parse_task(&page.render().expect("render")).expect("a task");
        assert_eq!(shown.csrf, "c0ffee");
        assert_eq!(shown.task_id, "t<1>");
        assert_eq!(shown.prompt, "<script>alert(1)</script>\n2+2=");
        assert_eq!(shown.a, "4 & more");
        assert_eq!(shown.b, "\"5\"");
    }
}
