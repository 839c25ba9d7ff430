//! `miner`: parse the command line, set up logging, run the chosen command.

use clap::Parser;
use subnet_miner::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    subnet_common::telemetry::init(cli.log_format, "info,tower_http=info");
    match cli.command {
        Command::Serve(args) => subnet_miner::serve(args).await,
        Command::Keys { wallet, command } => {
            subnet_common::cli::run(&command, &wallet, &mut std::io::stdout().lock())
        }
    }
}
