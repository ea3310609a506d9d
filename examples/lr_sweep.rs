//! An LR sweep: the same MLP from the same initial weights and batch order at a decade
//! grid of rates; per rate the final loss, test accuracy, steps and seconds to a target
//! loss, the largest loss, the first non-finite step and the monitor's verdict over time.
//!
//! ```text
//! cargo run --release --example lr_sweep -- --epochs 3 --svg sweep.svg --finder
//! cargo run --release --example lr_sweep -- --dataset fashion-mnist --optimizer adam --svg sweep.svg
//! ```

use clap::Parser;
use stride::tune::SweepArgs;

/// An LR sweep: the same MLP at a decade grid of rates, compared.
///
/// Every rate starts from the same initial weights and batch order; per rate the table shows the
/// final loss, test accuracy, steps and seconds to a target loss, the largest loss, the first
/// non-finite step and the monitor's verdict over time.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    sweep: SweepArgs,
}

fn main() -> anyhow::Result<()> {
    stride::logging::init();
    let args = Args::parse();
    print!("{}", stride::tune::sweep_job(&args.sweep)?.report());
    Ok(())
}
