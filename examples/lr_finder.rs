//! The LR range test from a program: ramp the rate from 1e-7 to 10 over 100 steps on an MLP,
//! print the suggestions (half-drop, the default; valley, steep, minimum/10, slide), repeat it with other batch orders
//! to see how far a rerun moves them, write the plot, and check the weights are back.
//!
//! ```text
//! cargo run --release --example lr_finder -- --svg lr_find.svg
//! cargo run --release --example lr_finder -- --dataset fashion-mnist --optimizer adam --repeats 5
//! ```
//!
//! Written against the library (`stride::train::lr_find_repeated`); `stride lr-find` is the
//! same with every option.

use std::path::PathBuf;

use clap::Parser;
use stride::args::DataArgs;
use stride::optim::OptimizerKind;
use stride::prelude::*;
use stride::train::{lr_find_repeated, LrFinderConfig};

/// The LR range test on an MLP, with its suggested rates and how much a rerun moves them.
///
/// It ramps the rate from 1e-7 to 10 over 100 steps, prints the suggested rates (half-drop, valley, steep,
/// minimum/10, slide) per repeat and their spread, optionally writes the plot of the first
/// repeat, and restores the weights.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    data: DataArgs,
    /// Optimizer the test steps with.
    #[arg(long, default_value = "sgd")]
    optimizer: String,
    /// Range tests with batch orders seed, seed + 1, ...
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Write the plot of the first range test here.
    #[arg(long)]
    svg: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    stride::logging::init();
    let args = Args::parse();
    let kind: OptimizerKind = args.optimizer.parse()?;
    let data = args.data.load()?.splits;
    let varmap = candle_nn::VarMap::new();
    let model = Mlp::seeded(&"784-128-10".parse()?, Activation::Relu, &varmap, 0)?;
    let mut optimizer = kind.build(varmap.all_vars(), kind.default_lr(), None, None)?;
    let before: Vec<f32> = varmap.all_vars()[0].as_tensor().flatten_all()?.to_vec1()?;
    let found = lr_find_repeated(
        &model,
        optimizer.as_mut(),
        &data.train,
        &LrFinderConfig::default(),
        args.repeats,
    )?;
    print!("{}", found.table());
    let after: Vec<f32> = varmap.all_vars()[0].as_tensor().flatten_all()?.to_vec1()?;
    println!(
        "weights restored exactly after the test: {}",
        if before == after { "yes" } else { "NO" }
    );
    if let (Some(path), Some(first)) = (&args.svg, found.runs.first()) {
        std::fs::write(path, first.to_svg())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
