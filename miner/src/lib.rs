//! The miner: serves its model and RLHF labels to validators over btauth/1-signed HTTP.
//!
//! | module | what |
//! |---|---|
//! | [`cli`] | the command line (clap), every flag also from an env var |
//! | [`startup`] | [`startup::Application`]: binds, builds the router, serves until shutdown |
//! | [`routes`] | HTTP handlers |
//! | [`artifact`] | the served model directory, hashed into its manifest at start |
//! | [`inference`] | the served model loaded for `/v1/generate`, one request at a time |
//! | [`error`] | [`error::ApiError`] and the JSON error shape for every 4xx/5xx |

pub mod artifact;
pub mod cli;
pub mod error;
pub mod inference;
pub mod routes;
pub mod startup;

use std::{net::SocketAddr, time::Duration};

use anyhow::Context;
use subnet_common::btauth::AllowAnySigner;

/// `miner serve`: load the hotkey, bind, serve until SIGINT/SIGTERM.
pub async fn serve(args: cli::ServeArgs) -> anyhow::Result<()> {
    if args.dump_config {
        println!(
            "{}",
            serde_json::to_string_pretty(&args).context("while printing the config")?
        );
        return Ok(());
    }
    let keypair = args.wallet.load_hotkey()?;
    let config = startup::ServerConfig {
        addr: SocketAddr::new(args.axon_ip, args.axon_port),
        max_body_bytes: args.max_body_bytes,
        auth_max_age: Duration::from_secs(args.auth_max_age_secs),
        model: args.model_dir.clone().map(|dir| startup::ModelConfig {
            dir,
            competition: args.competition.clone(),
            device: Some(args.device),
        }),
    };
    let hotkey = keypair.account_id();
    let app = if args.insecure_no_chain {
        tracing::warn!(
            "--insecure-no-chain: registration is NOT checked; any correctly signed caller is served. Use only for local tests."
        );
        startup::Application::build(&config, keypair, AllowAnySigner).await?
    } else {
        anyhow::bail!(
            "no chain to check callers against: pass --chain.url <URL> (the subnet's chain) or, for local tests only, --insecure-no-chain"
        );
    };
    let addr = app
        .local_addr()
        .context("while reading the bound address")?;
    tracing::info!(%addr, hotkey = %hotkey, netuid = args.netuid, "miner serving");
    app.run_until(startup::shutdown_signal()).await
}
