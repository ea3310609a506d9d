//! The main job: train an MLP on MNIST (or Fashion-MNIST) with plain SGD.
//!
//! ```text
//! cargo run --release --example mnist_mlp -- --epochs 3 --lr 0.1 --batch-size 128
//! cargo run --release --example mnist_mlp -- --dataset fashion-mnist --epochs 5
//! ```
//!
//! Data comes from `--data-dir`, `datasets/`, the Debian package, the hub or,
//! for MNIST, the embedded 10,000-digit sample (the log says which). It shows
//! an epoch bar and a step bar, logs one line per epoch (train loss, test
//! loss, test accuracy, seconds) and prints a summary table at the end.

use clap::Parser;
use stride::cli::TrainArgs;

/// The main job: trains an MLP on MNIST (or Fashion-MNIST) with plain SGD.
///
/// It shows an epoch bar and a step bar, one log line per epoch, and a summary table at the end
/// (on the embedded 10,000-digit sample when no MNIST is installed).
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    train: TrainArgs,
}

fn main() -> anyhow::Result<()> {
    stride::logging::init();
    let args = Args::parse();
    let summary = stride::cli::train(&args.train)?;
    print!("{}", summary.report());
    if let Some(note) = summary.interruption_note() {
        eprintln!("{note}");
        std::process::exit(summary.exit_code());
    }
    if summary.loaded_from.is_sample() {
        println!("note: this was the embedded 8,000/2,000 MNIST sample; put the full IDX files in datasets/mnist/ or pass --data-dir for the real thing");
    }
    Ok(())
}
