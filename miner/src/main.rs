//! `miner`: parse the command line, set up logging, run the chosen command.

use clap::Parser;
use subnet_miner::{
    cli::{Cli, Command},
    commands,
};

/// The model runs many large, short-lived buffers; glibc's allocator returns each to the OS and
/// faults a fresh one in on the next op, mimalloc reuses them (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    cli.log.init("info,tower_http=info");
    // Servers hold a descriptor per connection: 1,024 runs out long before the connection cap.
    subnet_common::serve::raise_fd_limit();
    let result = match cli.command {
        Command::Serve(args) => subnet_miner::serve(args).await,
        Command::InitBase(args) => commands::init_base::run(&args, &mut std::io::stdout()),
        Command::Finetune(args) => commands::finetune::run(args, &mut std::io::stdout()).await,
        Command::Register(args) => {
            commands::chain::run_register(&args, &mut std::io::stdout()).await
        }
        Command::Commit(args) => commands::chain::run_commit(&args, &mut std::io::stdout()).await,
        Command::Labelers(args) => {
            subnet_miner::labeling::cli::run(args, &mut std::io::stdout()).await
        }
        Command::Keys { wallet, command } => {
            subnet_common::cli::run(&command, &wallet, &mut std::io::stdout().lock())
        }
    };
    // A fine-tuning stopped by Ctrl-C saved its checkpoint: the shell's code for SIGINT, so
    // `miner finetune … && miner commit …` does not go on.
    if let Err(error) = &result
        && error.is::<commands::finetune::Interrupted>()
    {
        eprintln!("{}", subnet_common::cli::error_line(error));
        return std::process::ExitCode::from(130);
    }
    subnet_common::cli::exit_code(result)
}
