//! Epoch wall time of `validator run` against 8, 32 and 128 miners serving tiny models, and the
//! share of it spent outside model evaluation.
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench -p subnet-validator --bench epoch [-- 8 32 128]
//! ```
//!
//! Each miner count gets a fresh local subnet (`tests/it/localnet.rs`: an in-process dev chain,
//! real in-process miners on loopback, each serving its own differently seeded model) and a
//! fresh Postgres database (created here, dropped after). The validator's real turn
//! ([`Service::run_once`], what `validator run` does once per epoch) runs twice: the first epoch
//! downloads every artifact (cold cache), the second (a new seed) finds them cached and
//! evaluates again, as a validator does every epoch after its first. Its
//! [`EpochTimings`](subnet_validator::service::EpochTimings) give the per-phase breakdown;
//! "eval" is the forward passes over the epoch's samples, everything else is outside it.
//! Miner counts can also come from `EPOCH_BENCH_MINERS=8,32`.

#[path = "../tests/it/localnet.rs"]
#[allow(dead_code)]
mod localnet;

use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use subnet_model::config::LlamaConfig;
use subnet_validator::artifacts::Limits;
use subnet_validator::service::EpochTimings;
use subnet_validator::service::clock::BlockClock;
use subnet_validator::tracks::model::TrackSettings;

use localnet::{Localnet, LocalnetOptions, competition};

/// Samples per epoch and their longest length.
const SAMPLES: usize = 32;
const MAX_SEQ_LEN: usize = 64;

fn model() -> LlamaConfig {
    LlamaConfig {
        hidden_size: 64,
        intermediate_size: 128,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        max_position_embeddings: 128,
        ..LlamaConfig::tiny()
    }
}

fn miner_counts() -> anyhow::Result<Vec<usize>> {
    // `cargo bench` passes `--bench`; flags are not miner counts.
    let mut args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if args.is_empty()
        && let Ok(env) = std::env::var("EPOCH_BENCH_MINERS")
    {
        args = env
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
    }
    if args.is_empty() {
        return Ok(vec![8, 32, 128]);
    }
    args.iter()
        .map(|a| a.parse().with_context(|| format!("miner count {a:?}")))
        .collect()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "n/a".into())
}

/// One measured turn.
struct Row {
    miners: usize,
    epoch: &'static str,
    timings: EpochTimings,
    ok: usize,
    load: String,
}

/// `DATABASE_URL` with its database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let root = match base[authority..].find('/') {
        Some(slash) => &base[..authority + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{root}/{name}?{query}"),
        None => format!("{root}/{name}"),
    }
}

async fn run(miners: usize, admin_url: &str) -> anyhow::Result<Vec<Row>> {
    let name = format!("epoch_bench_{}_{miners}", std::process::id());
    let mut admin = PgConnection::connect(admin_url)
        .await
        .with_context(|| format!("while connecting to {admin_url} (is Postgres running?)"))?;
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .context("while creating the bench database")?;
    let result = measure(miners, &with_database(admin_url, &name)).await;
    sqlx::query(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .context("while dropping the bench database")?;
    result
}

async fn measure(miners: usize, url: &str) -> anyhow::Result<Vec<Row>> {
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .context("while connecting to the bench database")?;
    subnet_validator::db::MIGRATOR.run(&pool).await?;
    let started = std::time::Instant::now();
    let net = Localnet::start(&LocalnetOptions {
        miners,
        tempo: 10,
        block_time: Duration::from_millis(200),
        model: model(),
        competition: competition(SAMPLES, MAX_SEQ_LEN, 2),
    })
    .await;
    eprintln!(
        "{miners} miners: local subnet up in {:?}",
        started.elapsed()
    );
    let settings = TrackSettings {
        fetch: Limits {
            request_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(30),
            deadline: Duration::from_secs(120),
            ..Limits::default()
        },
        ..TrackSettings::default()
    };
    let service = net.service(&pool, settings);
    net.wait_for_eligible_epoch().await;
    let mut rows = Vec::new();
    for epoch in ["1 (cold)", "2 (cached)"] {
        let turn = service.run_once().await.context("the epoch turn failed")?;
        let timings = turn
            .timings
            .with_context(|| format!("epoch {} was not scored", turn.epoch))?;
        let (ok,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM model_evals WHERE epoch = $1 AND outcome = 'ok'")
                .bind(turn.epoch as i64)
                .fetch_one(&pool)
                .await?;
        eprintln!(
            "{miners} miners, epoch {epoch}: {:.2} s, {ok} models ok",
            timings.total.as_secs_f64()
        );
        rows.push(Row {
            miners,
            epoch,
            timings,
            ok: ok as usize,
            load: loadavg(),
        });
        net.clock()
            .wait_until(turn.next_epoch_start)
            .await
            .context("waiting for the next epoch")?;
    }
    pool.close().await;
    Ok(rows)
}

fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

fn print_tables(rows: &[Row]) {
    let m = model();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "\nEpoch wall time, release, {cores} cores; models: Llama {} layers, hidden {}, \
         intermediate {}, {} heads ({} kv), vocab {}, {} params, f32; {SAMPLES} samples of at \
         most {MAX_SEQ_LEN} tokens; fetch concurrency {}, 8 spot-checks per epoch.\n",
        m.num_hidden_layers,
        m.hidden_size,
        m.intermediate_size,
        m.num_attention_heads,
        m.num_key_value_heads,
        m.vocab_size,
        m.num_parameters(),
        TrackSettings::default().fetch_concurrency,
    );
    println!(
        "| miners | epoch | ok | epoch s | eval s | outside eval s | outside share | load avg (1/5/15 min) |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---|");
    for r in rows {
        let t = &r.timings;
        let outside = t.total.saturating_sub(t.model.eval);
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.1}% | {} |",
            r.miners,
            r.epoch,
            r.ok,
            secs(t.total),
            secs(t.model.eval),
            secs(outside),
            100.0 * outside.as_secs_f64() / t.total.as_secs_f64().max(f64::EPSILON),
            r.load,
        );
    }
    println!(
        "\nPer phase, seconds (chain: head, hyperparameters, seed block, metagraph, commitments; \
         plan: samples and candidates; fetch: downloads, tokenizing and spot-check requests, in \
         parallel, until the last arrived (overlaps the device work); waiting: the device idle \
         for a download; load+checks: reading, checking, building and sketching each model; \
         spot: verifying spot-check answers; device other: the device phase's remaining \
         bookkeeping; copies: near-copy detection; scoring: win rates, EMA, weights; DB: reads \
         and the one-transaction write; submit: commit extrinsic until included; settle: earlier \
         rows' extrinsics (a reveal) until included).\n"
    );
    println!(
        "| miners | epoch | chain | plan | fetch | waiting | load+checks | eval | spot | device other | copies | scoring | DB read | DB write | submit | settle |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let t = &r.timings;
        let m = &t.model;
        let device_other = m.device.saturating_sub(m.load + m.eval + m.spot);
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.miners,
            r.epoch,
            secs(t.chain),
            secs(m.plan),
            secs(m.fetch),
            secs(m.waiting),
            secs(m.load),
            secs(m.eval),
            secs(m.spot),
            secs(device_other),
            secs(m.copies),
            secs(m.scoring + t.weights),
            secs(t.db_read),
            secs(t.save),
            secs(t.submit),
            secs(t.settle),
        );
    }
}

fn main() -> anyhow::Result<()> {
    let counts = miner_counts()?;
    let admin_url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    // As `validator run`: tokio's multi-threaded runtime.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("while building the runtime")?;
    let load_before = loadavg();
    let mut rows = Vec::new();
    for miners in counts {
        rows.extend(runtime.block_on(run(miners, &admin_url))?);
    }
    println!("\nload average before: {load_before}; after: {}", loadavg());
    print_tables(&rows);
    Ok(())
}
