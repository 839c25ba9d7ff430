//! `devchain`: parse the command line, set up logging, run the command.

use clap::Parser;
use subnet_chain::cli::{Cli, run};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    cli.log.init("info,tower_http=warn");
    // Servers hold a descriptor per connection: 1,024 runs out long before the connection cap.
    subnet_common::serve::raise_fd_limit();
    subnet_common::cli::exit_code(run(cli).await)
}
