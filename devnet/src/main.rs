//! `devnet`: parse the command line and run a whole local subnet.

use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = subnet_devnet::cli::Cli::parse();
    if let Err(e) = subnet_devnet::run::run(cli).await {
        // The cause chain, once; everything was stopped before we got here.
        eprintln!("devnet: error: {e:#}");
        std::process::exit(1);
    }
}
