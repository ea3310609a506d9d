//! An LR sweep from a program: the same MLP from the same initial weights and batch order at
//! a decade grid of rates, written against the library (`stride::train::sweep`); per rate the
//! final loss, validation loss, test accuracy, steps to a target loss and the monitor's
//! verdict. The rate is chosen on a validation split, never on the test set.
//!
//! ```text
//! cargo run --release --example lr_sweep -- --epochs 3 --svg sweep.svg
//! cargo run --release --example lr_sweep -- --dataset fashion-mnist --optimizer adam
//! ```
//!
//! `stride sweep` is the same with every option (the finder beside it, CSV, Markdown).

use std::path::PathBuf;

use clap::Parser;
use stride::args::DataArgs;
use stride::monitor::MonitorConfig;
use stride::optim::OptimizerKind;
use stride::prelude::*;
use stride::train::{decade_grid, format_lr, sweep, SweepConfig};

/// An LR sweep: the same MLP at a decade grid of rates, compared, written against the library.
///
/// Every rate starts from the same initial weights and batch order; per rate the table shows the
/// final loss, validation loss, test accuracy, steps to a target loss, the largest loss, the
/// first non-finite step and the monitor's verdict over time. The best rate is chosen on a 10%
/// validation split.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    data: DataArgs,
    /// Epochs per rate.
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// Optimizer: sgd, adam, ... (rates 1e-5..10 for SGD, 1e-6..1 for the others).
    #[arg(long, default_value = "sgd")]
    optimizer: String,
    /// Write the plot here.
    #[arg(long)]
    svg: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    stride::logging::init();
    let args = Args::parse();
    let kind: OptimizerKind = args.optimizer.parse()?;
    let data = args.data.load()?.splits;
    let (train, val) = data.train.split_validation(0.1, 0)?;
    let lrs = if kind == OptimizerKind::Sgd {
        decade_grid(-5, 1)
    } else {
        decade_grid(-6, 0)
    };
    let mut config = SweepConfig::new(lrs, kind, args.epochs);
    config.monitor = MonitorConfig {
        num_classes: Some(10),
        ..MonitorConfig::default()
    };
    let result = sweep(
        |varmap| Ok(Box::new(Mlp::seeded(&"784-128-10".parse()?, Activation::Relu, varmap, 0)?) as Box<dyn Model>),
        &train,
        Some(&val),
        Some(&data.test),
        &config,
        |run| eprintln!("lr {}: {} ({:.1} s)", format_lr(run.lr), run.verdict, run.seconds),
    )?;
    print!("{}", result.markdown());
    if let Some(best) = result.best() {
        println!("\nbest rate ({}): {}", result.chosen_on(), format_lr(best.lr));
    }
    if let Some(path) = &args.svg {
        std::fs::write(path, result.figure("MLP 784-128-10").to_svg())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
