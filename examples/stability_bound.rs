//! Does the stability limit 2/lambda separate the rates that diverge from those that do not?
//!
//! Full-batch gradient descent (plain, no momentum) on 4096 Fashion-MNIST training images with
//! the reference MLP 784-128-10: lambda_max (Gauss-Newton) is estimated at the initial weights,
//! then GD runs at rates from 0.5x to 8x the predicted limit 2/lambda, with the sharpness
//! tracked during the run (edge of stability: it settles near 2/lr). Prints a markdown table
//! (`docs/stability.md` holds a measured one).
//!
//! ```text
//! cargo run --release --example stability_bound -- [STEPS, default 100] [EXAMPLES, default 4096]
//! ```

use std::path::Path;

use candle_core::Device;
use candle_nn::VarMap;
use clap::Parser;
use stride::data::{Dataset, DatasetName, Resolver};
use stride::model::{Activation, Mlp};
use stride::train::{estimate_sharpness, SharpnessConfig, SharpnessSchedule, Trainer};

const FACTORS: [f64; 7] = [0.5, 0.8, 0.95, 1.1, 1.5, 3.0, 8.0];

/// Does the stability limit 2/lambda separate the rates that diverge from those that do not?
///
/// Full-batch gradient descent on Fashion-MNIST training images with the MLP 784-128-10 at 0.5x to
/// 8x the limit predicted from the initial sharpness; prints a markdown table of the outcomes.
#[derive(Parser)]
struct Args {
    /// Gradient-descent steps per rate.
    #[arg(default_value_t = 100)]
    steps: usize,
    /// Training images used (the first N of Fashion-MNIST's training set).
    #[arg(default_value_t = 4096)]
    examples: usize,
}

fn main() -> anyhow::Result<()> {
    stride::logging::init();
    let Args { steps, examples: n } = Args::parse();
    let full = Resolver::from_env().load(DatasetName::FashionMnist)?.splits.train;
    let per = full.rows() * full.cols();
    let n = n.min(full.len());
    let data = Dataset::new(
        full.images()[..n * per].to_vec(),
        full.labels()[..n].to_vec(),
        full.rows(),
        full.cols(),
        full.classes(),
        Path::new("fashion-mnist subset"),
    )?;
    let (x, y) = data.to_tensors(&Device::Cpu)?;
    let build = || -> anyhow::Result<(VarMap, Mlp)> {
        let varmap = VarMap::new();
        let model = Mlp::seeded(&"784-128-10".parse()?, Activation::Relu, &varmap, 0)?;
        Ok((varmap, model))
    };
    let (varmap, model) = build()?;
    let lambda0 = estimate_sharpness(&model, &varmap.all_vars(), &x, &y, &SharpnessConfig::default())?.lambda;
    let limit = 2.0 / lambda0;
    println!("full-batch GD on {n} examples, {steps} steps; lambda_max at init {lambda0:.4}, predicted limit 2/lambda = {limit:.4}\n");
    println!("| lr / (2/lambda0) | lr | initial loss | max loss | final loss | outcome | lambda at end | lr * lambda_end / 2 |");
    println!("|---|---|---|---|---|---|---|---|");
    for factor in FACTORS {
        let lr = factor * limit;
        let (varmap, model) = build()?;
        let history = Trainer::builder()
            .epochs(steps)
            .batch_size(n)
            .lr(lr)
            .sharpness(SharpnessSchedule {
                every: Some(steps.div_ceil(2) as u64),
                batch: n,
                estimator: SharpnessConfig::default(),
            })
            .build()?
            .fit(&model, &varmap, &data, None)?;
        let losses = &history.step_losses;
        let first = losses.first().copied().unwrap_or(f64::NAN);
        let last = losses.last().copied().unwrap_or(f64::NAN);
        let max = losses.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        // Diverged: a non-finite loss, or no net progress. A ReLU net blown to chance level ends
        // at ln 10 = 2.3026, which can sit a hair below the initial 2.311 and must not count as
        // progress: anything within 2% of the start is "no progress".
        let diverged = !last.is_finite() || last >= first;
        let stalled = !diverged && last > 0.98 * first;
        let end = estimate_sharpness(&model, &varmap.all_vars(), &x, &y, &SharpnessConfig::default())
            .map(|e| e.lambda)
            .unwrap_or(f64::NAN);
        println!(
            "| {factor} | {lr:.4} | {first:.4} | {max:.4} | {last:.4} | {} | {end:.3} | {:.2} |",
            if diverged {
                "diverged"
            } else if stalled {
                "no progress (at chance)"
            } else {
                "converging"
            },
            lr * end / 2.0
        );
    }
    Ok(())
}
