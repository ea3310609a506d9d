//! The LR range test on an MLP: ramp the rate from 1e-7 to 10 over 100 steps, print the
//! suggestions (valley, steep, minimum/10, slide) with a sparkline, write the plot, and
//! show that the weights are back where they were.
//!
//! ```text
//! cargo run --release --example lr_finder -- --svg lr_find.svg
//! cargo run --release --example lr_finder -- --dataset fashion-mnist --optimizer adam --svg lr_find.svg
//! ```

use clap::Parser;
use stride::tune::LrFindArgs;

/// The LR range test on an MLP, with its suggested rates.
///
/// It ramps the rate from 1e-7 to 10 over 100 steps, prints the
/// suggested rates (valley, steep, minimum/10, slide) with a sparkline, optionally writes the plot,
/// and restores the weights.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    find: LrFindArgs,
}

fn main() -> anyhow::Result<()> {
    stride::logging::init();
    let args = Args::parse();
    print!("{}", stride::tune::lr_find_job(&args.find)?);
    Ok(())
}
