//! `devchain`: parse the command line, set up logging, run the command.

use clap::Parser;
use subnet_chain::cli::{Cli, run};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    subnet_common::telemetry::init(cli.log_format, "info,tower_http=warn");
    subnet_common::cli::exit_code(run(cli).await)
}
