//! Your own CNN on Stride's layers, beside the same network on candle-nn: the code differs
//! by one import, the epoch time does not. Both train with the same Trainer, from the same
//! initial weights and batches.
//!
//! ```text
//! cargo run --release --example custom_cnn -- [--dataset fashion-mnist] [--epochs 1]
//! ```
//!
//! Prints each version's seconds per epoch, final training loss and test accuracy.
//! candle-nn's version also learns worse: its max-pool gradient is 1/4 of the true one
//! (see crates/stride-model/tests/layers.rs).

use std::time::Instant;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{VarBuilder, VarMap};
use clap::Parser;
use stride::model::nn;
use stride::prelude::*;

/// The user's network, written once over either set of layers.
macro_rules! lenet {
    ($name:ident, $conv:path, $linear:path, $relu:expr, $pool:expr) => {
        /// conv 1->8 5x5, ReLU, max-pool 2, conv 8->16 5x5, ReLU, max-pool 2, linear 256->10.
        struct $name {
            c1: $conv,
            c2: $conv,
            fc: $linear,
        }

        impl Module for $name {
            fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
                let xs = xs.reshape((xs.dim(0)?, 1, 28, 28))?;
                let xs = $pool(&$relu(&self.c1.forward(&xs)?)?, 2)?;
                let xs = $pool(&$relu(&self.c2.forward(&xs)?)?, 2)?;
                self.fc.forward(&xs.flatten_from(1)?)
            }
        }
    };
}

lenet!(StrideNet, nn::Conv2d, nn::Linear, nn::relu, nn::max_pool2d);
lenet!(
    CandleNet,
    candle_nn::Conv2d,
    candle_nn::Linear,
    Tensor::relu,
    Tensor::max_pool2d
);

/// Your own CNN (LeNet-like, conv 8 and 16 channels) on Stride's layers beside the same network on
/// candle-nn.
///
/// Both train with the same Trainer from the same weights and batches; prints each
/// version's seconds per epoch, final training loss and test accuracy.
#[derive(Parser)]
struct Args {
    /// mnist or fashion-mnist.
    #[arg(long, default_value = "mnist")]
    dataset: String,
    /// Epochs per version.
    #[arg(long, default_value_t = 1)]
    epochs: usize,
}

fn train(model: &dyn Model, varmap: &VarMap, data: &Splits, epochs: usize) -> anyhow::Result<(f64, History)> {
    reset_parameters(varmap, 42)?;
    let started = Instant::now();
    let history = Trainer::builder().epochs(epochs).lr(0.05).seed(42).build()?.fit(
        model,
        varmap,
        &data.train,
        Some(&data.test),
    )?;
    let seconds = history.epochs.iter().map(|e| e.train_seconds).sum::<f64>() / epochs.max(1) as f64;
    tracing::debug!("{:.1} s in all", started.elapsed().as_secs_f64());
    Ok((seconds, history))
}

fn main() -> anyhow::Result<()> {
    stride::logging::init();
    let args = Args::parse();
    let data = Resolver::from_env().load(args.dataset.parse()?)?.splits;
    let vb = |varmap: &VarMap| VarBuilder::from_varmap(varmap, DType::F32, &Device::Cpu);

    let ours_vars = VarMap::new();
    let ours = StrideNet {
        c1: nn::conv2d(1, 8, 5, Default::default(), vb(&ours_vars).pp("c1"))?,
        c2: nn::conv2d(8, 16, 5, Default::default(), vb(&ours_vars).pp("c2"))?,
        fc: nn::linear(256, 10, vb(&ours_vars).pp("fc"))?,
    };
    let theirs_vars = VarMap::new();
    let theirs = CandleNet {
        c1: candle_nn::conv2d(1, 8, 5, Default::default(), vb(&theirs_vars).pp("c1"))?,
        c2: candle_nn::conv2d(8, 16, 5, Default::default(), vb(&theirs_vars).pp("c2"))?,
        fc: candle_nn::linear(256, 10, vb(&theirs_vars).pp("fc"))?,
    };
    let (ours_s, ours_h) = train(&ours, &ours_vars, &data, args.epochs)?;
    let (theirs_s, theirs_h) = train(&theirs, &theirs_vars, &data, args.epochs)?;
    println!(
        "{:<22} {:>10} {:>11} {:>9}",
        "layers", "s/epoch", "train loss", "test acc"
    );
    for (name, s, h) in [
        ("stride_model::nn", ours_s, &ours_h),
        ("candle_nn", theirs_s, &theirs_h),
    ] {
        let last = h.last().ok_or_else(|| anyhow::anyhow!("no epoch ran"))?;
        let acc = last.eval.map_or(f64::NAN, |e| e.accuracy);
        println!("{name:<22} {s:>10.2} {:>11.4} {acc:>9.4}", last.train_loss);
    }
    println!("stride's layers: {:.1}x faster per epoch", theirs_s / ours_s);
    Ok(())
}
