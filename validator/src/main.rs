//! `validator`: parse the command line, set up logging, run the chosen command.

use clap::Parser;
use subnet_validator::cli::{Cli, Command};

/// The model runs many large, short-lived buffers; glibc's allocator returns each to the OS and
/// faults a fresh one in on the next op, mimalloc reuses them (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    cli.log.init("info");
    // Servers hold a descriptor per connection: 1,024 runs out long before the connection cap.
    subnet_common::serve::raise_fd_limit();
    let result = match cli.command {
        Command::Query(args) => {
            subnet_validator::query::run(&args, &mut std::io::stdout().lock()).await
        }
        Command::Keys { wallet, command } => {
            subnet_common::cli::run(&command, &wallet, &mut std::io::stdout().lock())
        }
        Command::Eval(args) => {
            subnet_validator::eval_cmd::run(&args, &mut std::io::stdout().lock())
        }
        Command::Run(args) => subnet_validator::startup::run(&args).await,
        Command::ExportPreferences(args) => subnet_validator::export::run(&args).await,
        Command::Dashboard(args) => subnet_validator::web::run(&args).await,
        Command::Verify(args) => {
            match subnet_validator::verify::run(&args, &mut std::io::stdout().lock()).await {
                Ok(false) => std::process::exit(1),
                other => other.map(|_| ()),
            }
        }
        Command::Worker(args) => subnet_validator::workers::run(&args).await,
        Command::Doctor(args) => {
            if !subnet_validator::doctor::run(&args, &mut std::io::stdout().lock()).await {
                std::process::exit(1);
            }
            Ok(())
        }
    };
    subnet_common::cli::exit_code(result)
}
