//! The `stride` command line.

use clap::{Parser, Subcommand};
use stride::cli::TrainArgs;

/// Train neural networks with the learning rate in view.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train an MLP on MNIST or Fashion-MNIST.
    Train(TrainArgs),
}

fn main() -> anyhow::Result<()> {
    stride::logging::init();
    match Cli::parse().command {
        Command::Train(args) => {
            let summary = stride::cli::train(&args)?;
            print!("{}", summary.report());
        }
    }
    Ok(())
}
