//! The orchestration: start Postgres, the chain, miners and validators as real processes, watch
//! the epochs, then stop everything and print who earned what.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use subnet_common::chain::types::{Call, Metagraph, NetUid};
use subnet_common::chain::{ChainClient, DevChainClient};
use subnet_common::wallet::{Protection, Wallet};

use crate::bins::Binaries;
use crate::cli::Cli;
use crate::competition::{Competition, check_model_dir};
use crate::postgres::Postgres;
use crate::process::{STOP_GRACE, Service, free_port, run_command, wait_http_ok};
use crate::progress::Progress;
use crate::report::{self, Leaderboard, NeuronRow};
use crate::roster::{Brought, ExtraLabeler, Labeling, Member, Role, roster};
use crate::selective::SelectiveProxy;
use crate::shape::Shape;

/// Where the selective miner listens; its proxy holds the published address on 127.0.0.1.
const SELECTIVE_MINER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// The dev subnet.
const NETUID: NetUid = 1;
/// Hotkey file name inside each participant's wallet.
const HOTKEY: &str = "default";
/// Stake each validator's coldkey puts on its hotkey, in TAO.
const VALIDATOR_STAKE_TAO: &str = "1000";
/// Deadline of short commands (register, stake, commit, genesis).
const SHORT: Duration = Duration::from_secs(90);
/// Deadline of a fine-tuning run.
const FINETUNE: Duration = Duration::from_secs(900);
/// How long a service may take to answer its health check.
const READY: Duration = Duration::from_secs(120);
/// How long a validator's dashboard may take to answer before the devnet goes on without it.
const DASHBOARD_WAIT: Duration = Duration::from_secs(20);
/// Least time between two runs of a label miner's simulated labeler.
const LABELER_PAUSE: Duration = Duration::from_secs(2);

/// What `summary.json` holds.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Summary {
    /// Seconds from start to the final table.
    pub wall_seconds: f64,
    /// Epochs watched after the validators started.
    pub epochs: u32,
    /// Block of the final metagraph.
    pub block: u64,
    /// The first validator's dashboard while it ran.
    pub dashboard: Option<String>,
    /// The final metagraph joined with roles and scores.
    pub neurons: Vec<NeuronRow>,
    /// What each validator collected of the labels given through the printed sign-in link.
    #[serde(default)]
    pub person: Vec<PersonLabels>,
    /// Requests of the other validators the selective miner refused (`None`: no such miner).
    #[serde(default)]
    pub selective_refusals: Option<u64>,
}

/// The labels of the person signed in as `you` that one validator collected (and so paid for).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PersonLabels {
    /// The validator's role name.
    pub validator: String,
    /// Labels collected.
    pub labels: u64,
    /// Of them, on known-answer pairs.
    pub known: u64,
    /// Of those, the right answer.
    pub right: u64,
}

/// The labeler name of the person's sign-in link.
const PERSON: &str = "you";

/// A label miner's simulated labeler.
struct Labeler {
    role: Role,
    /// The `miner labelers simulate` flags of who answers (`--accuracy`, `--bot`, …).
    answerer: Vec<String>,
    axon: String,
    db_url: String,
    seed: u64,
    running: Option<Service>,
    last_start: Option<Instant>,
}

/// Everything a devnet run owns.
struct Devnet {
    bins: Binaries,
    progress: Progress,
    dir: PathBuf,
    logs: PathBuf,
    wallets: PathBuf,
    http: reqwest::Client,
    postgres: Option<Postgres>,
    /// Started services in start order (stopped in reverse).
    services: Vec<Service>,
    chain: Option<(String, Arc<DevChainClient>)>,
    members: Vec<Member>,
    /// SS58 hotkey → role name.
    roles: BTreeMap<String, String>,
    labelers: Vec<Labeler>,
    /// The competition (`--competition`, with `--eval-samples` and `--open-samples`).
    competition: Competition,
    /// The run's size, from the flags and the competition.
    shape: Shape,
    /// The validators' `--competition` file: [`Self::competition`] in the run directory.
    competition_file: PathBuf,
    /// The base model the miners fine-tune when it is brought (`--base-model`, or the fetched
    /// SmolLM2); `None`: a random byte-level one.
    base_model: Option<PathBuf>,
    dashboards: Vec<String>,
    /// A sign-in link for a real person on the first label miner: (miner name, link).
    person_link: Option<(String, String)>,
    /// SS58 hotkey → emission summed over watched epochs.
    totals: BTreeMap<String, u64>,
    last: Option<(Metagraph, Vec<NeuronRow>)>,
    epochs_seen: u32,
    /// Services already reported as exited.
    reported_exits: Vec<String>,
    /// The selective miner's proxy, when the roster has one.
    selective: Option<SelectiveProxy>,
}

/// Runs a devnet as `cli` says and prints the final summary.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let started = Instant::now();
    let bins = Binaries::locate(cli.bin_dir.as_deref())?;
    let competition = Competition::load(&cli.competition)?;
    let shape = Shape::new(&cli, &competition);
    let competition = competition.with_samples(shape.eval_samples, shape.open_samples)?;
    let base_model = competition.base_dir(cli.base_model.as_deref())?;
    let temp = match &cli.run_dir {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("devnet-")
                .tempdir()
                .context("while creating the run directory")?,
        ),
    };
    let dir = match (&cli.run_dir, &temp) {
        (Some(dir), _) => dir.clone(),
        (None, Some(temp)) => temp.path().to_path_buf(),
        (None, None) => bail!("no run directory"),
    };
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("while creating {}", logs.display()))?;
    for extra in &cli.extra_models {
        check_model_dir(
            &format!("--extra-model {}={}", extra.name, extra.dir.display()),
            &extra.dir,
            "`miner finetune --out`",
        )?;
    }
    let competition_file = dir.join("competition.toml");
    std::fs::write(&competition_file, competition.to_toml()?)
        .with_context(|| format!("while writing {}", competition_file.display()))?;
    let members = roster(
        cli.roster,
        shape.miners,
        Brought {
            models: &cli.extra_models,
            labelers: &cli.extra_labelers,
        },
        cli.label_miners,
        shape.validators,
    )?;
    let roles = members
        .iter()
        .map(|m| (m.hotkey.account_id().to_ss58(), m.label.clone()))
        .collect();
    let mut net = Devnet {
        bins,
        progress: Progress::detect(),
        wallets: dir.join("wallets"),
        logs,
        dir: dir.clone(),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .context("while building the HTTP client")?,
        postgres: None,
        services: Vec::new(),
        chain: None,
        members,
        roles,
        labelers: Vec::new(),
        competition,
        shape,
        competition_file,
        base_model,
        dashboards: Vec::new(),
        person_link: None,
        totals: BTreeMap::new(),
        last: None,
        epochs_seen: 0,
        reported_exits: Vec::new(),
        selective: None,
    };
    println!("devnet: run directory {} (logs in logs/)", dir.display());

    let outcome = tokio::select! {
        result = net.start_and_watch(&cli) => result,
        signal = stop_signal() => {
            println!("\ndevnet: {signal}, stopping");
            Ok(())
        }
    };
    let summary = net.final_summary(started).await;
    net.shutdown(cli.keep).await;
    if cli.keep {
        net.print_reopen();
    }

    if let Some(summary) = &summary {
        // The default place is the run directory: only worth writing when it is kept.
        let removed = temp.is_some() && !cli.keep;
        let path = match &cli.summary {
            Some(path) => Some(path.clone()),
            None if removed => None,
            None => Some(dir.join("summary.json")),
        };
        match path {
            Some(path) => {
                let json =
                    serde_json::to_string_pretty(summary).context("while encoding the summary")?;
                std::fs::write(&path, json + "\n")
                    .with_context(|| format!("while writing {}", path.display()))?;
                println!("devnet: summary written to {}", path.display());
            }
            None => println!(
                "devnet: summary.json not kept (the run directory is removed): pass --summary \
                 PATH or --keep to keep it"
            ),
        }
    }
    match temp {
        Some(temp) if cli.keep => {
            let kept = temp.keep();
            println!("devnet: kept {}", kept.display());
        }
        Some(temp) => {
            let path = temp.path().to_path_buf();
            if let Err(e) = temp.close() {
                eprintln!("devnet: could not remove {}: {e}", path.display());
            }
        }
        None => println!(
            "devnet: run directory {} left in place (--run-dir)",
            dir.display()
        ),
    }
    outcome
}

impl Devnet {
    async fn start_and_watch(&mut self, cli: &Cli) -> anyhow::Result<()> {
        self.start_postgres(cli).await?;
        self.start_chain(cli).await?;
        self.register().await?;
        let models = self.build_models(cli).await?;
        self.pin_base()?;
        self.start_miners(&models, &cli.extra_labelers).await?;
        self.commit(&models).await?;
        self.start_validators(cli).await?;
        self.watch(cli).await
    }

    /// Where the validators write each label batch's hidden truth, for the simulated labelers:
    /// a person sees which answer of a known pair is the corrupted one; a simulation needs to be
    /// told. Brought labelers (`--extra-labeler`) are not.
    fn truth_dir(&self) -> PathBuf {
        self.dir.join(TRUTH_DIR)
    }

    /// The `miner labelers simulate` flags of a label miner's labeler. Only a simulated person
    /// answers from the truth files; every simulation counts its answers against them in its
    /// log (`SIMULATION done: … correct`).
    fn answerer_flags(
        &self,
        labeling: &Labeling,
        extra: &[ExtraLabeler],
        name: &str,
    ) -> Vec<String> {
        let path = |file: &str| self.dir.join(file).to_string_lossy().into_owned();
        let mut flags = vec![
            "--truth-dir".to_string(),
            self.truth_dir().to_string_lossy().into_owned(),
        ];
        let more: Vec<String> = match labeling {
            Labeling::Person(p) => vec!["--accuracy".into(), p.to_string()],
            Labeling::Bot(bot) => vec!["--bot".into(), bot.name().into()],
            Labeling::Program(i) => vec![
                "--answer-with".into(),
                extra[usize::from(*i) - 1].command.clone(),
            ],
            Labeling::Recorder => vec![
                "--accuracy".into(),
                "0.9".into(),
                "--record".into(),
                path(REPLAY_FILE),
            ],
            Labeling::Replayer => vec![
                "--replay".into(),
                path(REPLAY_FILE),
                "--record".into(),
                path(&format!("choices-{name}.txt")),
            ],
        };
        flags.extend(more);
        flags
    }

    fn log(&self, name: &str) -> PathBuf {
        self.logs.join(format!("{name}.log"))
    }

    /// The chain's URL and client.
    fn chain(&self) -> anyhow::Result<(String, Arc<DevChainClient>)> {
        let (url, client) = self.chain.as_ref().context("the chain is not running")?;
        Ok((url.clone(), Arc::clone(client)))
    }

    async fn start_postgres(&mut self, cli: &Cli) -> anyhow::Result<()> {
        let step = self.progress.step("Postgres");
        let log = self.log("postgres");
        let pg = match &cli.db_url {
            Some(url) => Postgres::external(url).await?,
            None => {
                let (pg_dir, _) = Postgres::place_cluster(&self.dir)?;
                Postgres::throwaway(&pg_dir, &log).await?
            }
        };
        let describe = pg.describe();
        self.postgres = Some(pg);
        let pg = self.postgres.as_mut().context("Postgres vanished")?;
        for member in &self.members {
            if member.role.is_validator() || member.role.is_label_miner() {
                let db = member.role.name().replace('-', "_");
                pg.create_database(&db).await?;
            }
        }
        step.done(&describe);
        Ok(())
    }

    /// The database URL of a member (created by [`Self::start_postgres`]).
    fn database_of(&self, role: Role) -> anyhow::Result<String> {
        let pg = self.postgres.as_ref().context("Postgres is not running")?;
        pg.url_of(&role.name().replace('-', "_"))
    }

    async fn start_chain(&mut self, cli: &Cli) -> anyhow::Result<()> {
        let step = self.progress.step("dev chain");
        let genesis = self.dir.join("genesis.json");
        let tempo = cli.tempo.to_string();
        run_command(
            &self.bins.devchain,
            &os(&[
                "genesis",
                "--dev",
                "--tempo",
                &tempo,
                "--out",
                &genesis.to_string_lossy(),
            ]),
            &[],
            &self.log("devchain-cli"),
            SHORT,
        )
        .await?;
        let block_time = self.shape.block_time_ms.to_string();
        let mut node = Service::spawn(
            "chain",
            &self.bins.devchain,
            &os(&[
                "node",
                "--genesis",
                &genesis.to_string_lossy(),
                "--data",
                &self.dir.join("chain").to_string_lossy(),
                "--rpc.addr",
                "127.0.0.1:0",
                "--block-time",
                &block_time,
                "--rpc.rate-limit",
                "0",
            ]),
            &[],
            &self.log("chain"),
        )?;
        let url = node
            .wait_for_line("rpc listening on ", READY)
            .await
            .context("while starting the dev chain")?;
        self.services.push(node);
        let client = DevChainClient::new(&url).context("while creating the chain client")?;
        let head = client
            .head()
            .await
            .context("while reading the chain head")?;
        step.done(&format!(
            "{url}, tempo {}, block {}",
            cli.tempo, head.number
        ));
        self.chain = Some((url, Arc::new(client)));
        Ok(())
    }

    /// Writes the hotkeys, registers everyone, stakes the validators.
    async fn register(&mut self) -> anyhow::Result<()> {
        let step = self.progress.step(format!(
            "registering {} hotkeys (validators stake {VALIDATOR_STAKE_TAO} τ)",
            self.members.len()
        ));
        let (url, client) = self.chain()?;
        let log = self.log("register");
        let mut jobs = Vec::new();
        for member in &self.members {
            let name = member.role.name();
            Wallet::new(&self.wallets, &name, HOTKEY)
                .set_hotkey(&member.hotkey, Protection::Plain, true)
                .with_context(|| format!("while writing the hotkey of {name}"))?;
            let hotkey = member.hotkey.account_id().to_ss58();
            let wallet_path = self.wallets.to_string_lossy().into_owned();
            let (bins, url, log) = (self.bins.clone(), url.clone(), log.clone());
            let member = member.clone();
            jobs.push(async move {
                if member.role.is_validator() {
                    // The operator's path: `devchain tx` signed by the dev coldkey.
                    for call in [
                        vec!["register", "--netuid", "1", "--hotkey", &hotkey],
                        vec![
                            "add-stake",
                            "--netuid",
                            "1",
                            "--hotkey",
                            &hotkey,
                            "--amount",
                            VALIDATOR_STAKE_TAO,
                        ],
                    ] {
                        let mut args =
                            vec!["tx", "--chain.url", &url, "--uri", &member.coldkey_uri];
                        args.extend(call);
                        run_command(&bins.devchain, &os(&args), &[], &log, SHORT).await?;
                    }
                } else {
                    // A miner's path: `miner register`, the dev coldkey paying the burn.
                    run_command(
                        &bins.miner,
                        &os(&[
                            "register",
                            "--wallet.path",
                            &wallet_path,
                            "--wallet.name",
                            &name,
                            "--wallet.hotkey",
                            HOTKEY,
                            "--coldkey-uri",
                            &member.coldkey_uri,
                            "--chain.url",
                            &url,
                            "--netuid",
                            "1",
                        ]),
                        &[],
                        &log,
                        SHORT,
                    )
                    .await?;
                }
                anyhow::Ok(())
            });
        }
        futures::future::try_join_all(jobs).await?;
        let metagraph = client
            .metagraph(NETUID)
            .await
            .context("while reading the metagraph")?;
        let registered = metagraph
            .neurons
            .iter()
            .filter(|n| self.roles.contains_key(&n.hotkey.to_ss58()))
            .count();
        if registered != self.members.len() {
            bail!(
                "{registered} of {} hotkeys are registered; see {}",
                self.members.len(),
                log.display()
            );
        }
        step.done(&format!(
            "{} neurons on subnet {NETUID}",
            metagraph.neurons.len()
        ));
        Ok(())
    }

    /// The base model, the fine-tuned strong and weak models, the copier's copy and the
    /// broken artifact. Returns role → (served dir, committed dir).
    async fn build_models(
        &mut self,
        cli: &Cli,
    ) -> anyhow::Result<BTreeMap<Role, (PathBuf, PathBuf)>> {
        let mut models = BTreeMap::new();
        let roles: Vec<Role> = self
            .members
            .iter()
            .map(|m| m.role)
            .filter(|r| r.is_model_miner())
            .collect();
        if roles.is_empty() {
            return Ok(models);
        }
        let root = self.dir.join("models");
        let log = self.log("models");
        let competition = self.competition_file.to_string_lossy().into_owned();
        let base = match &self.base_model {
            Some(brought) => brought.clone(),
            None => {
                let base = root.join("base");
                let step = self
                    .progress
                    .step("base model (miner init-base --preset tiny)");
                run_command(
                    &self.bins.miner,
                    &os(&[
                        "init-base",
                        "--out",
                        &base.to_string_lossy(),
                        "--preset",
                        "tiny",
                        "--seed",
                        "7",
                        "--competition",
                        &competition,
                    ]),
                    &[],
                    &log,
                    SHORT,
                )
                .await?;
                step.done(&base.to_string_lossy());
                self.base_model = Some(base.clone());
                base
            }
        };

        let strong = root.join("strong");
        let weak = root.join("weak");
        let sybil = root.join("sybil");
        let selective = root.join("selective");
        let needs_strong = roles.iter().any(|r| {
            matches!(r, Role::Strong | Role::Copier | Role::FrontRunner) || r.attack().is_some()
        });
        let needs_weak = roles.iter().any(|r| matches!(r, Role::Weak | Role::Broken));
        let needs_sybil = roles.iter().any(|r| matches!(r, Role::Sybil(_)));
        let needs_selective = roles.contains(&Role::Selective);
        let shape = &self.shape;
        for (needed, out, steps, seed, label) in [
            (needs_strong, &strong, shape.strong_steps, "1", "strong"),
            (needs_weak, &weak, shape.weak_steps, "2", "weak"),
            (needs_sybil, &sybil, shape.weak_steps, "3", "sybils'"),
            (
                needs_selective,
                &selective,
                shape.strong_steps,
                "4",
                "selective miner's",
            ),
        ] {
            if !needed {
                continue;
            }
            let step = self
                .progress
                .step(format!("fine-tuning the {label} model ({steps} steps)"));
            let stdout = run_command(
                &self.bins.miner,
                &os(&[
                    "finetune",
                    "--base",
                    &base.to_string_lossy(),
                    "--out",
                    &out.to_string_lossy(),
                    "--steps",
                    &steps.to_string(),
                    "--seed",
                    seed,
                    "--device",
                    "cpu",
                    "--competition",
                    &competition,
                    "--lr",
                    shape.lr,
                    "--batch",
                    shape.batch,
                ]),
                &[],
                &log,
                FINETUNE,
            )
            .await?;
            let last = stdout.lines().last().unwrap_or_default().to_owned();
            step.done(&last);
        }
        for role in roles {
            let dirs = match role {
                Role::Strong | Role::FrontRunner => (strong.clone(), strong.clone()),
                Role::Weak => (weak.clone(), weak.clone()),
                Role::Copier => {
                    let copy = root.join("copier");
                    copy_dir(&strong, &copy)?;
                    (copy.clone(), copy)
                }
                Role::Broken => {
                    let broken = root.join("broken");
                    copy_dir(&weak, &broken)?;
                    break_config(&broken.join("config.json"))?;
                    (weak.clone(), broken)
                }
                Role::Sybil(_) => (sybil.clone(), sybil.clone()),
                Role::Selective => (selective.clone(), selective.clone()),
                Role::Extra(i) => {
                    // A copy in the run directory: the user's folder is never written to.
                    let brought = &cli.extra_models[usize::from(i) - 1].dir;
                    let copy = root.join(role.name());
                    copy_dir(brought, &copy)?;
                    (copy.clone(), copy)
                }
                _ => match role.attack() {
                    Some(attack) => {
                        let copy = root.join(role.name());
                        crate::attacks::write_attacked(&strong, &copy, attack)?;
                        (copy.clone(), copy)
                    }
                    None => continue,
                },
            };
            models.insert(role, dirs);
        }
        Ok(models)
    }

    /// Pins the base the miners fine-tuned in the validators' competition file (checking it
    /// against the competition's own pin, when it has one), so that only models that beat it
    /// score, as on a real subnet whose competition pins its base.
    fn pin_base(&mut self) -> anyhow::Result<()> {
        let Some(base) = &self.base_model else {
            return Ok(());
        };
        self.competition.pin_base(base)?;
        std::fs::write(&self.competition_file, self.competition.to_toml()?)
            .with_context(|| format!("while writing {}", self.competition_file.display()))
    }

    async fn start_miners(
        &mut self,
        models: &BTreeMap<Role, (PathBuf, PathBuf)>,
        extra_labelers: &[ExtraLabeler],
    ) -> anyhow::Result<()> {
        let (url, _) = self.chain()?;
        let miners: Vec<Member> = self
            .members
            .iter()
            .filter(|m| !m.role.is_validator())
            .cloned()
            .collect();
        for member in miners {
            let name = member.role.name();
            let step = self.progress.step(format!("miner {name}"));
            let port = free_port()?;
            // The selective miner listens on another loopback address and publishes the port
            // on 127.0.0.1, where its proxy answers.
            let listen_ip = if member.role == Role::Selective {
                self.selective = Some(self.selective_proxy(port).await?);
                SELECTIVE_MINER_IP
            } else {
                Ipv4Addr::LOCALHOST
            };
            let port = port.to_string();
            let wallets = self.wallets.to_string_lossy().into_owned();
            let mut args = vec![
                "serve".to_owned(),
                "--wallet.path".into(),
                wallets,
                "--wallet.name".into(),
                name.clone(),
                "--wallet.hotkey".into(),
                HOTKEY.into(),
                "--axon.ip".into(),
                listen_ip.to_string(),
                "--axon.external-ip".into(),
                "127.0.0.1".into(),
                "--axon.port".into(),
                port.clone(),
                "--chain.url".into(),
                url.clone(),
                "--netuid".into(),
                NETUID.to_string(),
                "--device".into(),
                "cpu".into(),
                "--competition".into(),
                self.competition.id.clone(),
                // Simulated labelers answer at once; a person's reading time does not apply.
                "--label.reading-speed".into(),
                "0".into(),
            ];
            if let Some((served, _)) = models.get(&member.role) {
                args.extend(["--model.dir".into(), served.to_string_lossy().into_owned()]);
            }
            let db_url = if member.role.is_label_miner() {
                Some(self.database_of(member.role)?)
            } else {
                None
            };
            if let Some(db) = &db_url {
                args.extend(["--db.url".into(), db.clone()]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut service = Service::spawn(
                format!("miner {name}"),
                &self.bins.miner,
                &os(&args),
                &[],
                &self.log(&format!("miner-{name}")),
            )?;
            let axon = format!("http://127.0.0.1:{port}");
            let ready =
                wait_http_ok(&self.http, &format!("{axon}/health"), &mut service, READY).await;
            self.services.push(service);
            ready?;
            if let (Some(db_url), Some(labeling)) = (db_url, member.role.labeling()) {
                if self.person_link.is_none() {
                    let link = self.person_sign_in(&db_url, &axon).await?;
                    self.person_link = Some((name.clone(), link));
                }
                let answerer = self.answerer_flags(&labeling, extra_labelers, &name);
                self.labelers.push(Labeler {
                    role: member.role,
                    answerer,
                    axon: axon.clone(),
                    db_url,
                    seed: 11 + 100 * u64::try_from(self.labelers.len()).unwrap_or(0),
                    running: None,
                    last_start: None,
                });
            }
            step.done(&axon);
        }
        Ok(())
    }

    /// The selective miner's proxy on 127.0.0.1:`port`, forwarding to the miner on
    /// [`SELECTIVE_MINER_IP`] the requests of the first validator and refusing the others'.
    async fn selective_proxy(&self, port: u16) -> anyhow::Result<SelectiveProxy> {
        let refused = self
            .members
            .iter()
            .filter(|m| m.role.is_validator() && m.role != Role::Validator(1))
            .map(|m| m.hotkey.account_id().to_ss58())
            .collect();
        SelectiveProxy::start(
            (Ipv4Addr::LOCALHOST, port).into(),
            (SELECTIVE_MINER_IP, port).into(),
            refused,
        )
        .await
    }

    /// `miner labelers add you` on a label miner: a one-time sign-in link for a real person. It
    /// is a secret (anyone with it labels as "you"), so it goes to the terminal, not to a log.
    async fn person_sign_in(&self, db_url: &str, axon: &str) -> anyhow::Result<String> {
        let output = tokio::time::timeout(
            SHORT,
            tokio::process::Command::new(&self.bins.miner)
                .args([
                    "labelers",
                    "add",
                    PERSON,
                    "--db.url",
                    db_url,
                    "--label.base-url",
                    axon,
                ])
                .stdin(std::process::Stdio::null())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .context("`miner labelers add you` did not finish in time")?
        .context("while starting `miner labelers add you`")?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        match stdout.lines().find(|l| l.starts_with("http")) {
            Some(link) if output.status.success() => Ok(link.trim().to_owned()),
            _ => bail!(
                "`miner labelers add you` failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        }
    }

    /// Commits each model miner's artifact; those that copy another's (copier, attackers) last,
    /// starting a few blocks after the others. A front-runner's copy of the strong miner's
    /// commitment goes in first.
    async fn commit(&mut self, models: &BTreeMap<Role, (PathBuf, PathBuf)>) -> anyhow::Result<()> {
        let (url, client) = self.chain()?;
        let log = self.log("commit");
        let (late, mut order): (Vec<Role>, Vec<Role>) = models
            .keys()
            .copied()
            .filter(|r| *r != Role::FrontRunner)
            .partition(|r| r.commits_late());
        let first_late = late.first().copied();
        // The selective miner commits first: the validator it serves then holds its model as
        // the earlier one, which a later model displaces only by beating it by the margin.
        order.sort_by_key(|role| *role != Role::Selective);
        order.extend(late);
        for role in order {
            let Some((_, committed)) = models.get(&role) else {
                continue;
            };
            let name = role.name();
            if Some(role) == first_late {
                let head = client
                    .head()
                    .await
                    .context("while reading the head")?
                    .number;
                wait_for_block(&client, head + 3, Duration::from_secs(60)).await?;
            }
            let (wallets, model_dir, competition) = (
                self.wallets.to_string_lossy(),
                committed.to_string_lossy(),
                &self.competition.id,
            );
            let args = |dry_run: bool| {
                let mut args = os(&[
                    "commit",
                    "--wallet.path",
                    &wallets,
                    "--wallet.name",
                    &name,
                    "--wallet.hotkey",
                    HOTKEY,
                    "--chain.url",
                    &url,
                    "--netuid",
                    "1",
                    "--model.dir",
                    &model_dir,
                    "--competition",
                    competition,
                ]);
                if dry_run {
                    args.push(OsStr::new("--dry-run"));
                }
                args
            };
            if role == Role::Strong && models.contains_key(&Role::FrontRunner) {
                let step = self
                    .progress
                    .step("commit front-runner (the strong miner's bytes)");
                let stdout = run_command(&self.bins.miner, &args(true), &[], &log, SHORT).await?;
                let text = stdout
                    .split_whitespace()
                    .find(|word| word.starts_with("model2:"))
                    .with_context(|| {
                        format!("no commitment in `miner commit --dry-run`: {stdout}")
                    })?
                    .to_owned();
                self.front_run(&client, text.as_bytes().to_vec()).await?;
                step.done(&format!("{text} from the front-runner's hotkey"));
            }
            let step = self.progress.step(format!("commit {name}"));
            let stdout = run_command(&self.bins.miner, &args(false), &[], &log, SHORT).await?;
            step.done(stdout.lines().last().unwrap_or_default());
        }
        Ok(())
    }

    /// Stores `data` as the front-runner's commitment and waits until a block includes it.
    async fn front_run(&self, client: &DevChainClient, data: Vec<u8>) -> anyhow::Result<()> {
        let member = self
            .members
            .iter()
            .find(|m| m.role == Role::FrontRunner)
            .context("the roster has no front-runner")?;
        let tx = client
            .submit(Call::SetCommitment { netuid: 1, data }, &member.hotkey)
            .await
            .context("while submitting the front-runner's commitment")?;
        client
            .wait_for_inclusion(tx, SHORT)
            .await
            .context("while waiting for the front-runner's commitment")?;
        Ok(())
    }

    async fn start_validators(&mut self, cli: &Cli) -> anyhow::Result<()> {
        let (url, _) = self.chain()?;
        let validators: Vec<Member> = self
            .members
            .iter()
            .filter(|m| m.role.is_validator())
            .cloned()
            .collect();
        for member in validators {
            let name = member.role.name();
            let step = self.progress.step(format!("validator {name}"));
            let db = self.database_of(member.role)?;
            let port = free_port()?.to_string();
            let cache = self.dir.join(format!("{name}-cache"));
            let mut extra: Vec<String> = vec![
                "--competition".into(),
                self.competition_file.to_string_lossy().into_owned(),
            ];
            if let (Some(base), Some(_)) = (&self.base_model, self.competition.base_pin()) {
                extra.extend(["--model.base".into(), base.to_string_lossy().into_owned()]);
            }
            if self.labelers.is_empty() {
                // No label miners: the label track would only collect 404s.
                extra.extend(["--labels.enabled".into(), "false".into()]);
            } else {
                extra.extend([
                    "--labels.deadline-blocks".into(),
                    label_deadline_blocks(
                        cli.tempo,
                        self.shape.block_time_ms,
                        cli.label_window_secs,
                    )
                    .to_string(),
                    // The simulated labelers read it to stand in for people (see `truth_dir`).
                    "--labels.truth-dir".into(),
                    self.truth_dir().to_string_lossy().into_owned(),
                ]);
                // The validators answer the label prompts at each epoch's start, on the CPU,
                // while everything else runs: short answers, one sample per model, so labelers
                // get most of the window; half the pairs known, so that the few epochs of a
                // devnet give each labeler enough known answers to be paid (docs/scoring.md).
                extra.extend([
                    "--labels.answer-tokens".into(),
                    self.shape.label_tokens.to_string(),
                    "--labels.samples".into(),
                    "1".into(),
                    "--labels.known-share".into(),
                    "0.5".into(),
                    "--labels.max-prompts".into(),
                    self.shape.label_prompts.to_string(),
                ]);
            }
            let mut service = Service::spawn(
                name.clone(),
                &self.bins.validator,
                &os(&[
                    "run",
                    "--netuid",
                    "1",
                    "--wallet.path",
                    &self.wallets.to_string_lossy(),
                    "--wallet.name",
                    &name,
                    "--wallet.hotkey",
                    HOTKEY,
                    "--chain.url",
                    &url,
                    "--db.url",
                    &db,
                    "--device",
                    "cpu",
                    "--cache.dir",
                    &cache.to_string_lossy(),
                    "--http.port",
                    &port,
                ])
                .into_iter()
                .chain(extra.iter().map(OsStr::new))
                .collect::<Vec<_>>(),
                &[],
                &self.log(&name),
            )?;
            let dashboard = format!("http://127.0.0.1:{port}");
            let health = format!("{dashboard}/health");
            let ready = wait_http_ok(&self.http, &health, &mut service, DASHBOARD_WAIT).await;
            // A validator that runs but serves no dashboard still scores and sets weights: go
            // on with the chain's data (the table then has no track scores).
            let running = service.ensure_running();
            self.services.push(service);
            running?;
            match ready {
                Ok(()) => step.done(&format!("dashboard {dashboard}/")),
                Err(_) => step.done(&format!(
                    "running, but {health} did not answer within {DASHBOARD_WAIT:?}"
                )),
            }
            self.dashboards.push(dashboard);
        }
        Ok(())
    }

    /// Prints a table each epoch until `--epochs` have passed.
    async fn watch(&mut self, cli: &Cli) -> anyhow::Result<()> {
        let (_, client) = self.chain()?;
        let epoch_of = |block: u64| (block + u64::from(NETUID) + 1) / (u64::from(cli.tempo) + 1);
        let head = client
            .head()
            .await
            .context("while reading the head")?
            .number;
        let mut epoch = epoch_of(head);
        if let Some(dashboard) = self.dashboards.first() {
            self.progress.line(&format!(
                "\ndevnet: running {} epochs of {} blocks; dashboard {dashboard}/ (Ctrl-C stops)",
                cli.epochs, cli.tempo
            ));
        }
        if let Some((miner, link)) = &self.person_link {
            let blocks =
                label_deadline_blocks(cli.tempo, self.shape.block_time_ms, cli.label_window_secs);
            let period = u64::from(cli.tempo) + 1;
            let secs = blocks * self.shape.block_time_ms / 1000;
            self.progress.line(&format!(
                "devnet: label as a person for miner {miner}: {link}\n        (each batch is open \
                 about {secs} s; labels are collected, and paid, {} epoch(s) after their batch is sent)",
                blocks / period
            ));
        }
        while self.epochs_seen < cli.epochs {
            tokio::time::sleep(Duration::from_millis(self.shape.block_time_ms.min(500))).await;
            self.check_services()?;
            self.drive_labelers()?;
            let head = match client.head().await {
                Ok(head) => head.number,
                Err(e) => {
                    eprintln!("devnet: could not read the chain head: {e}");
                    continue;
                }
            };
            if epoch_of(head) == epoch {
                continue;
            }
            epoch = epoch_of(head);
            self.epochs_seen += 1;
            let metagraph = client
                .metagraph(NETUID)
                .await
                .context("while reading the metagraph")?;
            report::add_emissions(&mut self.totals, &metagraph);
            let rows = self.rows(&metagraph).await;
            self.progress.line(&format!(
                "\nepoch {}/{} (chain epoch {epoch}, block {}):\n{}",
                self.epochs_seen,
                cli.epochs,
                metagraph.block,
                report::render(&rows)
            ));
            self.last = Some((metagraph, rows));
        }
        Ok(())
    }

    /// The metagraph joined with the first validator's leaderboard (when it answers).
    async fn rows(&self, metagraph: &Metagraph) -> Vec<NeuronRow> {
        let leaderboard = match self.dashboards.first() {
            Some(dashboard) => self.leaderboard(dashboard).await,
            None => None,
        };
        report::rows(metagraph, &self.roles, &self.totals, leaderboard.as_ref())
    }

    async fn leaderboard(&self, dashboard: &str) -> Option<Leaderboard> {
        let response = self
            .http
            .get(format!("{dashboard}/api/leaderboard"))
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.json().await.ok()
    }

    /// The chain must run; a miner or validator that exited is reported once.
    fn check_services(&mut self) -> anyhow::Result<()> {
        for service in &mut self.services {
            if service.exit_status().is_none() || self.reported_exits.contains(&service.name) {
                continue;
            }
            if service.name == "chain" {
                service.ensure_running()?;
            }
            eprintln!(
                "devnet: {} exited; the end of {}:\n{}",
                service.name,
                service.log.display(),
                crate::process::log_tail(&service.log, 10)
            );
            self.reported_exits.push(service.name.clone());
        }
        Ok(())
    }

    /// Keeps each label miner's simulated labeler answering: a new run whenever the last one
    /// ended (it stops when no task is open).
    fn drive_labelers(&mut self) -> anyhow::Result<()> {
        for labeler in &mut self.labelers {
            if let Some(running) = &mut labeler.running {
                if running.exit_status().is_none() {
                    continue;
                }
                labeler.running = None;
            }
            if labeler
                .last_start
                .is_some_and(|t| t.elapsed() < LABELER_PAUSE)
            {
                continue;
            }
            let name = labeler.role.name();
            labeler.seed += 1;
            let seed = labeler.seed.to_string();
            let log = self.logs.join(format!("labeler-{name}.log"));
            let sim_name = format!("sim-{name}");
            let mut args = os(&[
                "labelers",
                "--db.url",
                &labeler.db_url,
                "--label.base-url",
                &labeler.axon,
                "simulate",
                "--name",
                &sim_name,
                "--url",
                &labeler.axon,
                "--count",
                "200",
                "--seed",
                &seed,
            ]);
            args.extend(labeler.answerer.iter().map(OsStr::new));
            labeler.running = Some(Service::spawn(
                format!("labeler {name}"),
                &self.bins.miner,
                &args,
                &[],
                &log,
            )?);
            labeler.last_start = Some(Instant::now());
        }
        Ok(())
    }

    /// The final table (the last metagraph, re-read when the chain still answers).
    async fn final_summary(&mut self, started: Instant) -> Option<Summary> {
        let fresh = match &self.chain {
            Some((_, client)) => client.metagraph(NETUID).await.ok(),
            None => None,
        };
        let (metagraph, rows) = match fresh {
            Some(metagraph) => {
                let rows = self.rows(&metagraph).await;
                (metagraph, rows)
            }
            None => self.last.clone()?,
        };
        let wall_seconds = started.elapsed().as_secs_f64();
        println!(
            "\n=== devnet summary: {} epochs watched, block {}, {wall_seconds:.0}s wall time ===\n{}",
            self.epochs_seen,
            metagraph.block,
            report::render(&rows)
        );
        println!("role* = validator permit; TOTAL = emission summed over the watched epochs");
        let person = self.person_labels().await;
        if let Some((miner, _)) = &self.person_link {
            for p in &person {
                println!(
                    "your labels for miner {miner}: {} collected by {} ({} on known answers, {} right)",
                    p.labels, p.validator, p.known, p.right
                );
            }
        }
        let selective_refusals = self.selective.as_ref().map(SelectiveProxy::refusals);
        if let Some(refusals) = selective_refusals {
            println!(
                "selective: served validator1 only, refused {refusals} requests of the others"
            );
        }
        Some(Summary {
            wall_seconds,
            epochs: self.epochs_seen,
            block: metagraph.block,
            dashboard: self.dashboards.first().cloned(),
            neurons: rows,
            person,
            selective_refusals,
        })
    }

    /// What each validator's database holds of the labels given through the person's link
    /// (empty without a label miner; a validator whose database does not answer is left out).
    async fn person_labels(&self) -> Vec<PersonLabels> {
        let Some((miner, _)) = &self.person_link else {
            return Vec::new();
        };
        let Some(hotkey) = self
            .roles
            .iter()
            .find(|(_, role)| *role == miner)
            .map(|(hotkey, _)| hotkey.clone())
        else {
            return Vec::new();
        };
        let validators: Vec<Role> = self
            .members
            .iter()
            .filter(|m| m.role.is_validator())
            .map(|m| m.role)
            .collect();
        let mut found = Vec::new();
        for role in validators {
            let Ok(url) = self.database_of(role) else {
                continue;
            };
            let query = async {
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .connect(&url)
                    .await?;
                // The right side of a known pair is the first, shown as B when swapped.
                let counts: (i64, i64, i64) = sqlx::query_as(
                    "SELECT count(*),
                            count(*) FILTER (WHERE t.known),
                            count(*) FILTER (WHERE t.known AND l.choice <> 'tie'
                                             AND (l.choice = 'a') <> t.swapped)
                     FROM labels l JOIN label_tasks t USING (netuid, epoch, hotkey, task_id)
                     WHERE l.labeler = $1 AND l.hotkey = $2",
                )
                .bind(PERSON)
                .bind(&hotkey)
                .fetch_one(&pool)
                .await?;
                pool.close().await;
                Ok::<_, sqlx::Error>(counts)
            };
            match tokio::time::timeout(Duration::from_secs(10), query).await {
                Ok(Ok((labels, known, right))) => found.push(PersonLabels {
                    validator: role.name(),
                    labels: u64::try_from(labels).unwrap_or(0),
                    known: u64::try_from(known).unwrap_or(0),
                    right: u64::try_from(right).unwrap_or(0),
                }),
                Ok(Err(e)) => eprintln!("devnet: could not read {}'s labels: {e}", role.name()),
                Err(_) => eprintln!("devnet: {}'s database did not answer", role.name()),
            }
        }
        found
    }

    /// After a `--keep` run: how to look at the first validator's dashboard again.
    fn print_reopen(&self) {
        let (Some(pg), Some(validator)) = (
            &self.postgres,
            self.members.iter().find(|m| m.role.is_validator()),
        ) else {
            return;
        };
        let db = validator.role.name().replace('-', "_");
        // Absolute: the commands are run from wherever the reader is.
        let validator_bin =
            std::path::absolute(&self.bins.validator).unwrap_or(self.bins.validator.clone());
        match pg.reopen(&validator_bin, &db) {
            Ok(commands) => {
                println!(
                    "devnet: the databases are kept; to open {}'s dashboard again (http://127.0.0.1:8080/):",
                    validator.role.name()
                );
                for command in commands {
                    println!("  {command}");
                }
            }
            Err(e) => eprintln!("devnet: cannot say how to reopen the dashboard: {e:#}"),
        }
    }

    /// Stops labelers, then services in reverse start order, then Postgres.
    async fn shutdown(&mut self, keep: bool) {
        let mut lines = Vec::new();
        for labeler in &mut self.labelers {
            if let Some(running) = &mut labeler.running {
                let how = running.stop(STOP_GRACE).await;
                lines.push(format!("{}: {how}", running.name));
            }
        }
        while let Some(mut service) = self.services.pop() {
            let how = service.stop(STOP_GRACE).await;
            lines.push(format!("{}: {how}", service.name));
        }
        if let Some(pg) = &mut self.postgres {
            let how = pg.stop(keep, &self.logs.join("postgres.log")).await;
            lines.push(format!("postgres: {how}"));
            if !keep
                && let Some(dir) = pg.cluster_dir()
                && let Err(e) = std::fs::remove_dir_all(&dir)
            {
                lines.push(format!("could not remove {}: {e}", dir.display()));
            }
        }
        println!("devnet: stopped — {}", lines.join("; "));
    }
}

/// Blocks after an epoch's start by which the validators collect the labels sent in it: at
/// least `window_secs` of blocks (a person's time to label a batch; 0: none), ending three
/// quarters into an epoch. A validator sends its label batches only once its model track has
/// scored the epoch (the open pairs are the top models' answers), which takes a debug build on 2
/// cores 8–14 s; the validator's default deadline, half the tempo (15 s at tempo 20 and 1.5 s
/// blocks), then often passed before a batch went out and whole label epochs were lost. The last
/// quarter is left for storing the epoch and committing its weights.
fn label_deadline_blocks(tempo: u16, block_time_ms: u64, window_secs: u64) -> u64 {
    let in_epoch = u64::from(tempo - tempo / 4).max(1);
    let wanted = (window_secs * 1000).div_ceil(block_time_ms.max(1));
    let epochs = wanted
        .saturating_sub(in_epoch)
        .div_ceil(u64::from(tempo) + 1);
    in_epoch + epochs * (u64::from(tempo) + 1)
}

/// The directory of `Devnet::truth_dir`, under the run directory.
const TRUTH_DIR: &str = "label-truth";

/// The replay sybil's recording (`--roster labels`), under the run directory.
const REPLAY_FILE: &str = "choices-replay1.txt";

/// Resolves on Ctrl-C (SIGINT) or SIGTERM with the signal's name, so that a terminal, a test
/// harness or a service manager all get the orderly stop.
async fn stop_signal() -> &'static str {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        result = tokio::signal::ctrl_c() => match result {
            Ok(()) => "Ctrl-C",
            Err(_) => std::future::pending().await,
        },
        () = terminate => "SIGTERM",
    }
}

/// Waits until the chain's head reaches `block`.
async fn wait_for_block(
    client: &DevChainClient,
    block: u64,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let head = client
            .head()
            .await
            .context("while reading the head")?
            .number;
        if head >= block {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("the chain did not reach block {block} within {timeout:?} (head {head})");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Copies the files of `from` into a new folder `to`.
pub(crate) fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("while creating {}", to.display()))?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("while reading {}", from.display()))?
    {
        let entry = entry.with_context(|| format!("while reading {}", from.display()))?;
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            std::fs::copy(entry.path(), to.join(entry.file_name()))
                .with_context(|| format!("while copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Makes a `config.json` disagree with its weights: one more layer than the file holds.
fn break_config(path: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("while reading {}", path.display()))?;
    let mut config: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let layers = config
        .get("num_hidden_layers")
        .and_then(serde_json::Value::as_u64)
        .with_context(|| format!("{} has no num_hidden_layers", path.display()))?;
    config["num_hidden_layers"] = serde_json::Value::from(layers + 1);
    let text = serde_json::to_string_pretty(&config).context("while encoding config.json")?;
    std::fs::write(path, text).with_context(|| format!("while writing {}", path.display()))
}

/// Arguments as `OsStr`s.
fn os<'a>(args: &[&'a str]) -> Vec<&'a OsStr> {
    args.iter().map(|a| OsStr::new(*a)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn break_config_adds_a_layer_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"num_hidden_layers": 2, "hidden_size": 64}"#).unwrap();
        break_config(&path).unwrap();
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(config["num_hidden_layers"], 3);
        assert_eq!(config["hidden_size"], 64);
    }

    #[test]
    fn label_deadline_leaves_a_quarter_of_the_epoch_for_storing_and_committing() {
        assert_eq!(label_deadline_blocks(20, 500, 0), 15);
        assert_eq!(label_deadline_blocks(5, 500, 0), 4);
        assert_eq!(label_deadline_blocks(1, 500, 0), 1);
        for tempo in 5..=400u16 {
            for (block_ms, secs) in [(500, 0), (500, 120), (1500, 60), (12_000, 600)] {
                let deadline = label_deadline_blocks(tempo, block_ms, secs);
                let into_epoch = deadline % (u64::from(tempo) + 1);
                assert!(
                    into_epoch > u64::from(tempo) / 2 && into_epoch < u64::from(tempo),
                    "tempo {tempo}: {deadline}"
                );
                assert!(
                    deadline * block_ms >= secs * 1000,
                    "tempo {tempo}: {deadline}"
                );
                assert!(
                    deadline < u64::from(tempo) + 1
                        || (deadline - u64::from(tempo) - 1) * block_ms < secs * 1000,
                    "no more epochs than needed: tempo {tempo} {block_ms} ms {secs} s: {deadline}"
                );
            }
        }
        // The default devnet: two minutes at 0.5-s blocks is eleven epochs and three quarters.
        assert_eq!(label_deadline_blocks(20, 500, 120), 11 * 21 + 15);
    }

    #[test]
    fn copy_dir_copies_every_file() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("a");
        std::fs::create_dir(&from).unwrap();
        std::fs::write(from.join("config.json"), b"{}").unwrap();
        std::fs::write(from.join("model.safetensors"), b"xyz").unwrap();
        let to = dir.path().join("b");
        copy_dir(&from, &to).unwrap();
        assert_eq!(std::fs::read(to.join("model.safetensors")).unwrap(), b"xyz");
    }
}
