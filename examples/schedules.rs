//! Constant rate vs step decay vs exponential decay vs one-cycle on the MNIST
//! MLP: same model, data, seed and epochs; only the schedule differs.
//!
//! ```text
//! cargo run --release --example schedules -- --epochs 5
//! ```
//!
//! Prints one row per schedule: final training loss, test loss and accuracy,
//! and seconds per epoch.

use candle_nn::VarMap;
use clap::Parser;
use stride::optim::schedule::parse_schedule;
use stride::prelude::*;

/// Compares learning-rate schedules on the MNIST MLP (constant, step decay, exponential decay,
/// one-cycle).
///
/// Same model, data, seed and epochs; prints one row per schedule with the final
/// training loss, test loss and accuracy, and seconds per epoch.
#[derive(Parser)]
struct Args {
    /// Epochs per run.
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    /// Base learning rate of SGD.
    #[arg(long, default_value_t = 0.1)]
    lr: f64,
    /// Seed of initialisation and shuffling, shared by all runs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn main() -> anyhow::Result<()> {
    stride::logging::init();
    let args = Args::parse();
    let data = Resolver::from_env().load(DatasetName::Mnist)?.splits;
    let steps_per_epoch = data.train.len().div_ceil(128) as u64;
    let total = steps_per_epoch * args.epochs as u64;
    // The lesson's step decay halves the rate every epoch; its exponential decay
    // reaches the same final rate smoothly.
    let lambda = (2f64).ln() / steps_per_epoch as f64;
    let schedules = [
        ("constant".to_string(), "constant".to_string()),
        ("step decay".into(), format!("step(every={steps_per_epoch}, gamma=0.5)")),
        ("exponential decay".into(), format!("exp(lambda={lambda:e})")),
        (
            "one-cycle".into(),
            format!("onecycle(total={total}, max={})", args.lr * 4.0),
        ),
    ];
    let mut rows = Vec::new();
    for (name, spec) in &schedules {
        let varmap = VarMap::new();
        let model = Mlp::seeded(&"784-128-10".parse()?, Activation::Relu, &varmap, args.seed)?;
        let mut sgd = Sgd::new(varmap.all_vars(), SgdConfig::with_lr(args.lr))?;
        let mut trainer = Trainer::builder()
            .epochs(args.epochs)
            .seed(args.seed)
            .schedule(parse_schedule(spec, args.lr)?)
            .build()?;
        let history = trainer.fit_with(&model, &mut sgd, &data.train, Some(&data.test))?;
        let last = history
            .last()
            .ok_or_else(|| anyhow::anyhow!("{name}: no epoch finished"))?;
        let eval = last.eval.ok_or_else(|| anyhow::anyhow!("{name}: no evaluation"))?;
        let secs = history.epochs.iter().map(|e| e.train_seconds).sum::<f64>() / history.epochs.len() as f64;
        rows.push((
            name.clone(),
            spec.clone(),
            last.train_loss,
            eval.loss,
            eval.accuracy,
            secs,
            last.lr,
        ));
    }
    println!(
        "\n{:<18} {:>10} {:>9} {:>8} {:>9} {:>10}  spec",
        "schedule", "train loss", "test loss", "test acc", "s/epoch", "final lr"
    );
    for (name, spec, train, test, acc, secs, lr) in rows {
        println!("{name:<18} {train:>10.4} {test:>9.4} {acc:>8.4} {secs:>9.2} {lr:>10.2e}  {spec}");
    }
    Ok(())
}
