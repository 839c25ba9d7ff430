//! `miner labelers …`: the operator manages who may label (sign-in links, listing, disabling)
//! and can run a simulated labeler.

use std::io::Write;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use sqlx::PgPool;

use super::{LINK_TTL, login_link, new_secret, simulate, valid_labeler_name};
use crate::db;

/// `miner labelers`.
#[derive(Debug, Clone, Args)]
pub struct LabelersArgs {
    /// Postgres URL of the miner's database (the one `miner serve --db.url` uses).
    #[arg(long = "db.url", env = "MINER_DB_URL", global = true)]
    pub db_url: Option<String>,

    /// The miner's address as labelers reach it, used to print sign-in links.
    #[arg(
        long = "label.base-url",
        env = "MINER_LABEL_BASE_URL",
        default_value = "http://127.0.0.1:8091",
        global = true
    )]
    pub base_url: String,

    #[command(subcommand)]
    pub command: LabelersCommand,
}

/// What to do with labelers.
#[derive(Debug, Clone, Subcommand)]
pub enum LabelersCommand {
    /// Add a labeler and print a one-time sign-in link for them.
    Add {
        /// Name (1–64 of A-Z a-z 0-9 _ - .), reported to validators with each label.
        name: String,
    },
    /// Print a new one-time sign-in link for an existing labeler (the old link stops working).
    Link {
        /// The labeler's name.
        name: String,
    },
    /// List the labelers.
    List,
    /// Disable a labeler: no more sign-ins, open sessions end. Their labels stay.
    Disable {
        /// The labeler's name.
        name: String,
    },
    /// Run a SIMULATED labeler against a miner's web form (tests and demos).
    Simulate(SimulateArgs),
}

/// `miner labelers simulate`.
#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// Probability of choosing the right answer where the truth is known (`--truth-dir`, or a
    /// task generator's checker).
    #[arg(long, default_value_t = 0.9, value_parser = subnet_common::cli::parse_fraction)]
    pub accuracy: f64,
    /// Labeler name (created, or given a new link, through `--db.url` when `--link` is absent).
    #[arg(long, default_value = "simulated")]
    pub name: String,
    /// The miner's base URL (`http://HOST:PORT`).
    #[arg(long, default_value = "http://127.0.0.1:8091")]
    pub url: String,
    /// Most answers to give.
    #[arg(long, default_value_t = 20)]
    pub count: usize,
    /// Sign in with this link instead of creating one through the database.
    #[arg(long)]
    pub link: Option<String>,
    /// Seed of the simulated choices (random when absent).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Let a program answer instead of the built-in checker: for each task it runs `sh -c CMD`
    /// with the task as JSON (`{"task_id", "prompt", "a", "b"}`) on its standard input and reads
    /// `a`, `b` or `tie` from its standard output (30 s per task).
    #[arg(long = "answer-with", value_name = "CMD", conflicts_with_all = ["accuracy", "bot", "replay"])]
    pub answer_with: Option<String>,
    /// Let a built-in bot answer: `random`, `always-a`, `always-tie`, or `shallow` (the answer
    /// with more of the prompt's words, then the longer).
    #[arg(long, value_enum, conflicts_with_all = ["accuracy", "replay"])]
    pub bot: Option<simulate::Bot>,
    /// Replay the choices another simulation wrote with `--record FILE`, in order: one person's
    /// answers on another hotkey.
    #[arg(long, value_name = "FILE", conflicts_with = "accuracy")]
    pub replay: Option<std::path::PathBuf>,
    /// Append each choice (`a`, `b` or `tie`) to FILE, one per line.
    #[arg(long, value_name = "FILE")]
    pub record: Option<std::path::PathBuf>,
    /// Simulations only: the directory where validators started with `--labels.truth-dir`
    /// write their batches' hidden truth. A simulated labeler (`--accuracy`) answers from it, as
    /// a person who sees which answer of a known pair is the corrupted one would; for any
    /// answerer the final line counts the answers against it.
    #[arg(long = "truth-dir", value_name = "DIR")]
    pub truth_dir: Option<std::path::PathBuf>,
}

/// Runs a `miner labelers` command, printing to `out`.
pub async fn run(args: LabelersArgs, out: &mut impl Write) -> anyhow::Result<()> {
    if let LabelersCommand::Simulate(sim) = &args.command
        && let Some(link) = &sim.link
    {
        simulate::run(&simulation(sim, link.clone()), out).await?;
        return Ok(());
    }
    let url = args.db_url.as_deref().context(
        "no database: pass --db.url postgres://… (or MINER_DB_URL), the URL `miner serve` uses",
    )?;
    let pool = db::connect(url).await?;
    match &args.command {
        LabelersCommand::Add { name } => {
            let link = add_labeler(&pool, &args.base_url, name).await?;
            print_link(out, name, &link)?;
        }
        LabelersCommand::Link { name } => {
            let token = new_secret();
            if !db::renew_token(&pool, name, &db::hash_secret(&token), ttl_secs()).await? {
                bail!("no enabled labeler named {name:?} (see `miner labelers list`)");
            }
            print_link(out, name, &login_link(&args.base_url, &token))?;
        }
        LabelersCommand::List => {
            let labelers = db::list_labelers(&pool).await?;
            if labelers.is_empty() {
                writeln!(
                    out,
                    "no labelers yet: add one with `miner labelers add NAME`"
                )?;
            }
            for l in labelers {
                writeln!(
                    out,
                    "{:<24} {:<8} labels {:>6}  added {}{}",
                    l.name,
                    if l.disabled { "disabled" } else { "active" },
                    l.labels,
                    l.created,
                    if l.link_pending {
                        "  (sign-in link not used yet)"
                    } else {
                        ""
                    }
                )?;
            }
        }
        LabelersCommand::Disable { name } => {
            if !db::disable_labeler(&pool, name).await? {
                bail!("no labeler named {name:?} (see `miner labelers list`)");
            }
            writeln!(out, "labeler {name} disabled; their sessions have ended")?;
        }
        LabelersCommand::Simulate(sim) => {
            let token = new_secret();
            let hash = db::hash_secret(&token);
            if !db::renew_token(&pool, &sim.name, &hash, ttl_secs()).await? {
                if !valid_labeler_name(&sim.name) {
                    bail!(
                        "labeler names are 1 to 64 of A-Z a-z 0-9 _ - . (got {:?})",
                        sim.name
                    );
                }
                db::add_labeler(&pool, &sim.name, &hash, ttl_secs()).await?;
            }
            let link = login_link(&sim.url, &token);
            simulate::run(&simulation(sim, link), out).await?;
        }
    }
    Ok(())
}

/// `miner labelers add NAME`: adds a labeler with a one-time sign-in token and returns the
/// sign-in link under `base_url` (only the token's hash is stored).
pub async fn add_labeler(pool: &PgPool, base_url: &str, name: &str) -> anyhow::Result<String> {
    if !valid_labeler_name(name) {
        bail!("labeler names are 1 to 64 of A-Z a-z 0-9 _ - . (got {name:?})");
    }
    let token = new_secret();
    db::add_labeler(pool, name, &db::hash_secret(&token), ttl_secs()).await?;
    Ok(login_link(base_url, &token))
}

fn simulation(sim: &SimulateArgs, link: String) -> simulate::Simulation {
    let answerer = match (&sim.answer_with, sim.bot, &sim.replay) {
        (Some(command), _, _) => simulate::Answerer::Program(command.clone()),
        (_, Some(bot), _) => simulate::Answerer::Bot(bot),
        (_, _, Some(path)) => simulate::Answerer::Replay(path.clone()),
        (None, None, None) => simulate::Answerer::Person {
            accuracy: sim.accuracy,
        },
    };
    simulate::Simulation {
        link,
        answerer,
        count: sim.count,
        seed: sim.seed,
        truth_dir: sim.truth_dir.clone(),
        record: sim.record.clone(),
    }
}

fn ttl_secs() -> i64 {
    i64::try_from(LINK_TTL.as_secs()).unwrap_or(i64::MAX)
}

fn print_link(out: &mut impl Write, name: &str, link: &str) -> anyhow::Result<()> {
    writeln!(
        out,
        "Sign-in link for {name} (works once, for {} days; send it privately):\n{link}",
        LINK_TTL.as_secs() / 86_400
    )?;
    Ok(())
}
