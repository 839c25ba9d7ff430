//! Concurrent labelers on the labeler web form (issue 6): `--labelers` simulated labelers (default
//! 200) each sign in through their one-time link and answer `--labels` tasks (default 25) through
//! the same HTTP form a browser uses (`GET /label` → CSRF token → `POST /label/answer`), all at
//! once. Reports labels/s, the latency of each submit (the `POST`) and of each task page, then
//! checks in Postgres that every accepted submit is stored exactly once with its choice: exits
//! non-zero if a label is lost, duplicated, changed or stored without an accepted submit.
//!
//! ```text
//! cargo bench -p subnet-miner --bench labelers [-- --labelers 200 --labels 25 --think-ms 0 --log]
//! ```
//!
//! It creates a throwaway database on the server of `DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), migrated and pooled by `db::connect` as
//! `miner serve --db.url` does, starts the real miner server in-process on port 0 (its own tokio
//! runtime), stores the tasks through the signed `POST /v1/rlhf/tasks` of one validator, adds
//! the labelers as `miner labelers add` does, and drops the database at the end. `--think-ms T`
//! makes each labeler pause a random 0.5 T – 1.5 T between reading a task and submitting (a
//! human's reading time); 0 is a closed loop at full speed. `--log` logs as `miner serve
//! --log.format json` does, to stderr (redirect it). The load generator, the server and
//! Postgres share the machine's cores.

use std::{
    collections::HashMap,
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use rand::{Rng, SeedableRng, rngs::StdRng};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use subnet_common::{
    btauth::{AllowAnySigner, SignedClient},
    keys::Keypair,
    protocol::{Choice, RlhfTask, RlhfTaskBatch},
};
use subnet_miner::{
    db,
    labeling::{
        self, Labeling, LabelingConfig, ManualClock,
        simulate::{self, FormClient, Submitted},
    },
    startup::{Application, ServerConfig},
};

/// How far simulated labelers answer correctly where a checker knows the answer.
const ACCURACY: f64 = 0.9;

/// The bench's settings (`cargo bench … -- --labelers N --labels N --think-ms N`).
#[derive(Debug, Clone, Copy)]
struct Args {
    /// Concurrent labelers.
    labelers: usize,
    /// Labels each labeler submits (= tasks sent; every labeler answers every task).
    labels: usize,
    /// Mean pause between reading a task and submitting it, in milliseconds.
    think_ms: u64,
    /// Log as `miner serve --log.format json` does (to stderr; redirect it), to include the
    /// cost of the miner's request spans and "label stored" lines.
    log: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        labelers: 200,
        labels: 25,
        think_ms: 0,
        log: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| -> anyhow::Result<u64> {
            let v = it.next().with_context(|| format!("{name} needs a value"))?;
            v.parse()
                .with_context(|| format!("{name} {v:?} is not a whole number"))
        };
        match arg.as_str() {
            // `cargo bench` passes `--bench` to every bench binary.
            "--bench" => {}
            "--labelers" => args.labelers = usize::try_from(value("--labelers")?)?,
            "--labels" => args.labels = usize::try_from(value("--labels")?)?,
            "--think-ms" => args.think_ms = value("--think-ms")?,
            "--log" => args.log = true,
            other => bail!(
                "unknown argument {other:?}; use --labelers N --labels N --think-ms N --log \
                 (after `--`)"
            ),
        }
    }
    if args.labelers == 0 || args.labels == 0 {
        bail!("--labelers and --labels must be at least 1");
    }
    Ok(args)
}

/// What one simulated labeler did.
#[derive(Debug, Default)]
struct LabelerRun {
    /// Task ids whose submit the miner accepted (303), with the choice sent.
    stored: Vec<(String, Choice)>,
    /// Latency of each `POST /label/answer`.
    submits: Vec<Duration>,
    /// Latency of each `GET /label` that showed a task.
    pages: Vec<Duration>,
    /// Submits refused with a status (nothing should be stored for them), with the task.
    refused: Vec<String>,
    /// Requests that failed outright (connection, timeout, an unexpected page); with the cause.
    errors: Vec<String>,
}

/// One labeler: `labels` times fetch the next task, think, submit its choice.
async fn label(client: FormClient, labels: usize, think_ms: u64, seed: u64) -> LabelerRun {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut run = LabelerRun::default();
    while run.stored.len() + run.refused.len() < labels && run.errors.is_empty() {
        let started = Instant::now();
        let task = match client.next_task().await {
            Ok(Some(task)) => task,
            Ok(None) => {
                run.errors.push(format!(
                    "no open task left after {} labels",
                    run.stored.len()
                ));
                break;
            }
            Err(e) => {
                run.errors.push(format!("{e:#}"));
                break;
            }
        };
        run.pages.push(started.elapsed());
        if think_ms > 0 {
            let pause = rng.gen_range(think_ms / 2..=think_ms + think_ms / 2);
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        let choice = simulate::decide(
            simulate::judge(&task.prompt, &task.a, &task.b),
            ACCURACY,
            &mut rng,
        );
        let started = Instant::now();
        match client.submit(&task.csrf, choice, "").await {
            Ok(Submitted::Stored) => {
                run.submits.push(started.elapsed());
                run.stored.push((task.task_id, choice));
            }
            Ok(Submitted::Refused(status)) => {
                run.submits.push(started.elapsed());
                run.refused
                    .push(format!("answer to task {} refused: {status}", task.task_id));
            }
            Err(e) => run.errors.push(format!("{e:#}")),
        }
    }
    run
}

/// The tasks, `max_tasks` per batch: arithmetic the simulator's checker can judge.
fn batches(tasks: usize, max_tasks: usize) -> Vec<RlhfTaskBatch> {
    let all: Vec<RlhfTask> = (0..tasks)
        .map(|i| {
            let (x, y) = (17 * i + 3, i % 97);
            RlhfTask {
                task_id: format!("t{i}"),
                prompt: format!("{x}+{y}="),
                a: (x + y).to_string(),
                b: (x + y + 1).to_string(),
            }
        })
        .collect();
    all.chunks(max_tasks)
        .enumerate()
        .map(|(k, chunk)| RlhfTaskBatch {
            batch_id: format!("bench-{k}"),
            deadline_block: 1_000_000,
            tasks: chunk.to_vec(),
        })
        .collect()
}

/// The running miner, stopped on drop.
struct Miner {
    base: String,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

/// Migrates the database at `db_url`, starts the miner on `runtime` with it, stores the tasks
/// through `POST /v1/rlhf/tasks` and adds the labelers; returns the miner and the sign-in links.
fn start_miner(
    runtime: &tokio::runtime::Runtime,
    db_url: &str,
    args: Args,
) -> anyhow::Result<(Miner, Vec<String>)> {
    runtime.block_on(async {
        let pool = db::connect(db_url).await?;
        let miner = Keypair::from_uri("//Bob").context("dev key")?;
        let config = LabelingConfig::without_reading_floor();
        let labeling = Labeling {
            pool: pool.clone(),
            clock: Arc::new(ManualClock::at(100)),
            config,
        };
        let server = ServerConfig {
            addr: "127.0.0.1:0".parse().context("addr")?,
            max_body_bytes: 1 << 20,
            auth_max_age: Duration::from_secs(10),
            model: None,
        };
        let app = Application::build_with_labeling(
            &server,
            miner.clone(),
            AllowAnySigner,
            Some(Arc::new(labeling)),
        )
        .await?;
        let base = format!("http://{}", app.local_addr()?);
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until(async {
            let _ = stop.await;
        }));

        let validator = SignedClient::new(
            reqwest::Client::new(),
            Keypair::from_uri("//Alice").context("dev key")?,
        );
        let url = reqwest::Url::parse(&format!("{base}/v1/rlhf/tasks"))?;
        for batch in batches(args.labels, config.limits.max_tasks) {
            let res = validator
                .post_json(url.clone(), &miner.account_id(), &batch)?
                .send()
                .await
                .context("while sending a task batch")?;
            if res.status() != reqwest::StatusCode::ACCEPTED {
                bail!("POST /v1/rlhf/tasks answered {}", res.status());
            }
        }
        let mut links = Vec::with_capacity(args.labelers);
        for i in 0..args.labelers {
            links.push(labeling::cli::add_labeler(&pool, &base, &format!("sim-{i:04}")).await?);
        }
        Ok((
            Miner {
                base,
                _shutdown: shutdown,
            },
            links,
        ))
    })
}

/// `p` in 0..=1 of sorted `xs` (nearest rank), in milliseconds.
fn percentile(xs: &[Duration], p: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * xs.len() as f64).ceil() as usize).clamp(1, xs.len());
    xs[rank - 1].as_secs_f64() * 1e3
}

/// What Postgres holds after the run, against what the labelers were told.
#[derive(Debug)]
struct Audit {
    /// Rows in `labels`.
    rows: i64,
    /// (task, labeler) pairs stored more than once.
    duplicated: i64,
    /// Accepted submits with no stored label.
    lost: usize,
    /// Stored labels whose choice differs from the accepted submit's.
    changed: usize,
    /// Stored labels with no accepted submit.
    unexpected: usize,
    /// Spent form tokens (one per stored label).
    spent_tokens: i64,
}

async fn audit(
    db_url: &str,
    accepted: &HashMap<(String, String), Choice>,
) -> anyhow::Result<Audit> {
    let mut conn = PgConnection::connect(db_url).await?;
    let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM labels")
        .fetch_one(&mut conn)
        .await?;
    let (duplicated,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM (SELECT 1 FROM labels GROUP BY task, labeler HAVING count(*) > 1) d",
    )
    .fetch_one(&mut conn)
    .await?;
    let (spent_tokens,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM form_tokens WHERE used_at IS NOT NULL")
            .fetch_one(&mut conn)
            .await?;
    let stored: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT lr.name, t.task_id, l.choice
         FROM labels l JOIN tasks t ON t.id = l.task JOIN labelers lr ON lr.id = l.labeler",
    )
    .fetch_all(&mut conn)
    .await?;
    conn.close().await?;
    let stored: HashMap<(String, String), Option<Choice>> = stored
        .into_iter()
        .map(|(name, task, choice)| ((name, task), db::parse_choice(&choice)))
        .collect();
    let lost = accepted.keys().filter(|k| !stored.contains_key(*k)).count();
    let changed = accepted
        .iter()
        .filter(|(k, choice)| stored.get(*k).is_some_and(|s| *s != Some(**choice)))
        .count();
    let unexpected = stored.keys().filter(|k| !accepted.contains_key(*k)).count();
    Ok(Audit {
        rows,
        duplicated,
        lost,
        changed,
        unexpected,
        spent_tokens,
    })
}

/// Runs the labelers against a started miner and audits the database; prints the tables.
/// `Ok(false)` when the audit failed.
fn bench(
    client_rt: &tokio::runtime::Runtime,
    links: Vec<String>,
    db_url: &str,
    args: Args,
) -> anyhow::Result<bool> {
    client_rt.block_on(async {
        // Everyone signs in first (link page + POST /label/login), then all start at once.
        let started = Instant::now();
        let mut signing = tokio::task::JoinSet::new();
        for (i, link) in links.into_iter().enumerate() {
            signing.spawn(async move {
                let t = Instant::now();
                let client = FormClient::sign_in(&link).await;
                (i, client, t.elapsed())
            });
        }
        let mut clients = Vec::new();
        let mut sign_ins = Vec::new();
        while let Some(joined) = signing.join_next().await {
            let (i, client, took) = joined?;
            clients.push((i, client.with_context(|| format!("labeler sim-{i:04}"))?));
            sign_ins.push(took);
        }
        let sign_in_wall = started.elapsed();

        let started = Instant::now();
        let mut labelers = tokio::task::JoinSet::new();
        for (i, client) in clients {
            labelers.spawn(async move {
                let run = label(client, args.labels, args.think_ms, i as u64).await;
                (i, run)
            });
        }
        let mut runs = Vec::new();
        while let Some(joined) = labelers.join_next().await {
            runs.push(joined?);
        }
        let wall = started.elapsed();

        // (labeler, task) → choice of every accepted submit; a pair accepted twice is a
        // duplicate even if the database holds one row for it.
        let (mut accepted, mut accepted_n, mut accepted_twice) = (HashMap::new(), 0, 0);
        let (mut submits, mut pages, mut refused, mut errors) = (Vec::new(), Vec::new(), 0, 0);
        let mut first_error = None;
        for (i, run) in runs {
            for (task, choice) in run.stored {
                accepted_n += 1;
                if accepted
                    .insert((format!("sim-{i:04}"), task), choice)
                    .is_some()
                {
                    accepted_twice += 1;
                }
            }
            submits.extend(run.submits);
            pages.extend(run.pages);
            refused += run.refused.len();
            errors += run.errors.len();
            if first_error.is_none() {
                first_error = run.errors.into_iter().chain(run.refused).next();
            }
        }
        submits.sort();
        pages.sort();
        sign_ins.sort();
        let audit = audit(db_url, &accepted).await?;

        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let cores = std::thread::available_parallelism().map_or(0, usize::from);
        println!(
            "\n{} concurrent simulated labelers × {} labels each, think time {} ms; \
             miner, load generator and Postgres share {cores} cores",
            args.labelers, args.labels, args.think_ms
        );
        println!("\n| request | count | p50 ms | p90 ms | p99 ms | max ms |");
        println!("|---|---:|---:|---:|---:|---:|");
        for (name, xs) in [
            ("submit: POST /label/answer", &submits),
            ("next task: GET /label", &pages),
            ("sign-in: link page + POST /label/login", &sign_ins),
        ] {
            println!(
                "| {name} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
                xs.len(),
                percentile(xs, 0.50),
                percentile(xs, 0.90),
                percentile(xs, 0.99),
                percentile(xs, 1.0)
            );
        }
        println!(
            "\n| submits accepted | refused | failed | labels stored | lost | duplicated | \
             changed | stored unasked | tokens spent | wall s | labels/s |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        println!(
            "| {accepted_n} | {refused} | {errors} | {} | {} | {} | {} | {} | {} | {:.2} | {:.0} |",
            audit.rows,
            audit.lost,
            audit.duplicated + accepted_twice,
            audit.changed,
            audit.unexpected,
            audit.spent_tokens,
            wall.as_secs_f64(),
            accepted_n as f64 / wall.as_secs_f64()
        );
        println!(
            "\nsign-in of all labelers: {:.2} s; /proc/loadavg after the run: {}",
            sign_in_wall.as_secs_f64(),
            load.trim()
        );

        let mut ok = true;
        let expected = args.labelers * args.labels;
        if let Some(e) = first_error {
            eprintln!("FAILED: {errors} requests failed, {refused} refused; first: {e}");
            ok = false;
        }
        if accepted_n != expected {
            eprintln!("FAILED: {accepted_n} submits accepted, {expected} expected");
            ok = false;
        }
        if audit.lost > 0 || audit.duplicated > 0 || accepted_twice > 0 || audit.changed > 0 {
            eprintln!(
                "FAILED: {} labels lost, {} stored twice, {} accepted twice, {} changed",
                audit.lost, audit.duplicated, accepted_twice, audit.changed
            );
            ok = false;
        }
        if audit.rows != accepted_n as i64 || audit.unexpected > 0 {
            eprintln!(
                "FAILED: {} labels stored for {accepted_n} accepted submits ({} without one)",
                audit.rows, audit.unexpected
            );
            ok = false;
        }
        if audit.spent_tokens != accepted_n as i64 {
            eprintln!(
                "FAILED: {} form tokens spent for {accepted_n} stored labels",
                audit.spent_tokens
            );
            ok = false;
        }
        Ok(ok)
    })
}

/// The URL of database `name` on the server of `base`.
fn database_url(base: &str, name: &str) -> anyhow::Result<String> {
    let mut url = reqwest::Url::parse(base).context("DATABASE_URL is not a URL")?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

/// Runs one statement (`CREATE DATABASE`, `DROP DATABASE`) on the server's default database.
async fn admin(base: &str, sql: String) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(base).await.with_context(|| {
        format!(
            "cannot connect to Postgres at {} (set DATABASE_URL, or start Postgres)",
            db::redact(base)
        )
    })?;
    sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("labelers bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<bool> {
    let args = parse_args()?;
    if args.log {
        subnet_common::telemetry::init(
            subnet_common::telemetry::LogFormat::Json,
            "info,tower_http=info",
        );
    }
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    // The miner runs on its own runtime, as if in its own process; the labelers on another.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .thread_name("miner")
        .enable_all()
        .build()?;
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .thread_name("labelers")
        .enable_all()
        .build()?;
    let name = format!(
        "bench_labelers_{}_{}",
        std::process::id(),
        labeling::new_secret().get(..8).unwrap_or_default()
    );
    client_rt.block_on(admin(&base, format!("CREATE DATABASE {name}")))?;
    let db_url = database_url(&base, &name)?;
    let result = start_miner(&server_rt, &db_url, args).and_then(|(miner, links)| {
        eprintln!(
            "miner at {}, database {name}: {} labelers, {} tasks",
            miner.base,
            links.len(),
            args.labels
        );
        let ok = bench(&client_rt, links, &db_url, args);
        drop(miner);
        ok
    });
    // Stop the miner and close its pool before dropping the database.
    server_rt.shutdown_timeout(Duration::from_secs(5));
    let dropped = client_rt.block_on(admin(&base, format!("DROP DATABASE {name} WITH (FORCE)")));
    let ok = result?;
    dropped.with_context(|| format!("while dropping database {name}"))?;
    Ok(ok)
}
