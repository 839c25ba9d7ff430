//! `devnet`: parse the command line and run a whole local subnet.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = subnet_devnet::cli::Cli::parse();
    subnet_devnet::run::run(cli).await
}
