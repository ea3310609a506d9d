//! The optimizer's share of a training step on the reference workload W
//! (Fashion-MNIST, MLP 784-128-ReLU-10, batch 128, 469 steps per epoch), for
//! SGD, SGD with momentum, Adam and AdamW, on the fused CPU path and on the
//! generic tensor-op path.
//!
//! ```text
//! cargo bench --bench optimizer_share -- [epochs, default 3]
//! ```
//!
//! Prints, per optimizer and path: median seconds per epoch (the first epoch
//! left out), median seconds in the optimizer per epoch, their ratio, and the
//! test accuracy.

use candle_nn::VarMap;
use stride::data::{DatasetName, Resolver};
use stride::model::{Activation, Mlp};
use stride::optim::{AdamConfig, Optimizer, Optimizing, SgdConfig, UpdateRule};
use stride::train::{History, Trainer};

/// One optimizer configuration, run on the fused (true) or tensor-op path.
type Case<'a> = dyn Fn(bool) -> anyhow::Result<History> + 'a;

fn median(mut v: Vec<f64>) -> f64 {
    if v.len() > 1 {
        v.remove(0);
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn run<R: UpdateRule>(data: &stride::data::Splits, rule: R, fused: bool, epochs: usize) -> anyhow::Result<History> {
    let varmap = VarMap::new();
    let model = Mlp::seeded(&"784-128-10".parse()?, Activation::Relu, &varmap, 0)?;
    let mut opt = Optimizing::new(varmap.all_vars(), rule)?;
    opt.set_fused(fused);
    let mut trainer = Trainer::builder().epochs(epochs).batch_size(128).seed(0).build()?;
    Ok(trainer.fit_with(&model, &mut opt as &mut dyn Optimizer, &data.train, Some(&data.test))?)
}

fn main() -> anyhow::Result<()> {
    let epochs: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(3);
    let data = Resolver::from_env().load(DatasetName::FashionMnist)?.splits;
    println!(
        "W: Fashion-MNIST {} train, MLP 784-128-10, batch 128, {epochs} epochs",
        data.train.len()
    );
    println!(
        "{:<14} {:<10} {:>8} {:>8} {:>7} {:>8}",
        "optimizer", "path", "s/epoch", "optim s", "share", "test acc"
    );
    let cases: Vec<(&str, Box<Case>)> = vec![
        ("sgd 0.1", Box::new(|f| run(&data, SgdConfig::with_lr(0.1), f, epochs))),
        (
            "sgd-momentum",
            Box::new(|f| {
                let cfg = SgdConfig {
                    momentum: 0.9,
                    ..SgdConfig::with_lr(0.01)
                };
                run(&data, cfg, f, epochs)
            }),
        ),
        (
            "adam 1e-3",
            Box::new(|f| run(&data, AdamConfig::with_lr(1e-3), f, epochs)),
        ),
        (
            "adamw 1e-3",
            Box::new(|f| run(&data, AdamConfig::adamw(1e-3), f, epochs)),
        ),
    ];
    for (name, case) in &cases {
        for fused in [false, true] {
            let h = case(fused)?;
            let epoch = median(h.epochs.iter().map(|e| e.train_seconds).collect());
            let optim = median(h.epochs.iter().map(|e| e.optimizer_seconds).collect());
            let acc = h.last().and_then(|e| e.eval).map_or(f64::NAN, |e| e.accuracy);
            let path = if fused { "fused" } else { "tensor ops" };
            println!(
                "{name:<14} {path:<10} {epoch:>8.3} {optim:>8.3} {:>6.1}% {acc:>8.4}",
                100.0 * optim / epoch
            );
        }
    }
    Ok(())
}
