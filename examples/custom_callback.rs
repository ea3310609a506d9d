//! Write your own observer of the training loop: it watches every step and epoch, may change
//! the rate or stop the run, and can fail the run with an error.
//!
//! ```text
//! cargo run --release --example custom_callback -- [--target 0.9] [--epochs 20]
//! ```
//!
//! The callback here halves the rate whenever the validation loss rises (a hand-made
//! plateau rule) and stops once the validation accuracy reaches `--target`. Built-in observers (`EarlyStopping`, `MetricsLog`,
//! `RunMonitor`) sit beside it.

use clap::Parser;
use stride::prelude::*;
use stride::train::{EarlyStopping, Result as TrainResult};

/// Write your own observer of the training loop: halve the rate when the validation loss
/// rises, stop at a target validation accuracy.
///
/// Trains the built-in MLP on MNIST (the embedded sample without a download) with a 10%
/// validation split and prints what the callback did.
#[derive(Parser)]
struct Args {
    /// Stop once the validation accuracy reaches this.
    #[arg(long, default_value_t = 0.9)]
    target: f64,
    /// Most epochs.
    #[arg(long, default_value_t = 20)]
    epochs: usize,
}

/// Halves the rate on a rising validation loss; stops at a target accuracy.
struct HalveAndStop {
    target: f64,
    last_val: Option<f64>,
    steps: u64,
}

impl Callback for HalveAndStop {
    fn on_step_end(&mut self, s: &StepEnd) -> TrainResult<Action> {
        // Called after every optimizer step, with its loss, rate and gradient norm.
        self.steps = s.step;
        Ok(Action::Continue)
    }

    fn on_epoch_end(&mut self, e: &EpochEnd) -> TrainResult<Action> {
        let Some(val) = e.eval else {
            return Ok(Action::Continue);
        };
        if val.accuracy >= self.target {
            return Ok(Action::Stop(format!(
                "validation accuracy {:.4} reached the target {} after epoch {}",
                val.accuracy,
                self.target,
                e.epoch + 1
            )));
        }
        let rose = self.last_val.is_some_and(|last| val.loss > last);
        self.last_val = Some(val.loss);
        if rose {
            tracing::info!(
                "validation loss rose to {:.4} after step {}: halving lr to {}",
                val.loss,
                self.steps,
                e.lr / 2.0
            );
            return Ok(Action::SetLr(e.lr / 2.0));
        }
        Ok(Action::Continue)
    }
}

fn main() -> anyhow::Result<()> {
    stride::logging::init();
    let args = Args::parse();
    let data = Resolver::from_env().load(DatasetName::Mnist)?.splits;
    let (train, val) = data.train.split_validation(0.1, 0)?;
    let varmap = candle_nn::VarMap::new();
    let model = Mlp::seeded(&"784-128-10".parse()?, Activation::Relu, &varmap, 0)?;
    let watcher = HalveAndStop {
        target: args.target,
        last_val: None,
        steps: 0,
    };
    let mut trainer = Trainer::builder()
        .epochs(args.epochs)
        .lr(0.1)
        .callback(ProgressBars::new())
        .callback(watcher)
        .callback(EarlyStopping::new(3))
        .build()?;
    let history = trainer.fit(&model, &varmap, &train, Some(&val))?;
    let test = stride::train::evaluate(&model, &data.test, &candle_core::Device::Cpu, 1000)?;
    println!(
        "{} epochs; stopped: {}; test accuracy {:.4} (read once, after training)",
        history.epochs.len(),
        history.stopped.map_or("no".to_string(), |s| s.to_string()),
        test.accuracy
    );
    Ok(())
}
