//! The run-health monitor on three rates and one rescue: the MNIST MLP
//! trained with SGD at 1e-4 (too small), 0.1 (right) and 10 (diverges), then
//! at 10 again with `--auto-lr` interventions.
//!
//! ```text
//! cargo run --release --example monitor_demo -- --epochs 3
//! ```
//!
//! For each run it prints the monitor's timeline (state, reason, suggestion,
//! interventions), its final verdict and the test accuracy.

use candle_nn::VarMap;
use clap::Parser;
use stride::monitor::MonitorConfig;
use stride::prelude::*;
use stride::train::{AutoLr, RunMonitor};

/// The run-health monitor on three rates and one rescue.
///
/// The MNIST MLP is trained with SGD at 1e-4 (too small), 0.1 (right) and 10 (diverges), then at
/// 10 again with --auto-lr; it prints each run's timeline of states, reasons and suggestions, its verdict and its test accuracy.
#[derive(Parser)]
struct Args {
    /// Epochs per run.
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// Seed shared by all runs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn main() -> anyhow::Result<()> {
    stride::logging::init();
    let args = Args::parse();
    let data = Resolver::from_env().load(DatasetName::Mnist)?.splits;
    for (lr, auto) in [(1e-4, false), (0.1, false), (10.0, false), (10.0, true)] {
        let varmap = VarMap::new();
        let model = Mlp::seeded(&"784-128-10".parse()?, Activation::Relu, &varmap, args.seed)?;
        let config = MonitorConfig {
            num_classes: Some(10),
            eval_every: 8,
            ..MonitorConfig::default()
        };
        let monitor = RunMonitor::new(config, auto.then(AutoLr::default))?;
        let report = monitor.report_handle();
        let history = Trainer::builder()
            .epochs(args.epochs)
            .lr(lr)
            .seed(args.seed)
            .track_grad_norm(true)
            .callback(monitor)
            .build()?
            .fit(&model, &varmap, &data.train, Some(&data.test))?;
        let accuracy = history.last().and_then(|e| e.eval).map_or(f64::NAN, |e| e.accuracy);
        println!(
            "\n=== SGD lr {lr}{}: test accuracy {accuracy:.4}",
            if auto { " with --auto-lr" } else { "" }
        );
        let report = report.lock().map(|r| r.clone()).unwrap_or_default();
        print!("{}", report.table());
    }
    Ok(())
}
