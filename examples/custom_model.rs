//! Plug your own network into the Trainer: an MLP with dropout, written with
//! plain candle-nn, trained on MNIST by the same loop as the built-ins.
//!
//! ```text
//! cargo run --release --example custom_model -- [--epochs 5]
//! ```
//!
//! Prints the per-epoch log and the final test accuracy (about 0.9 on the
//! embedded sample after 5 epochs).

use candle_core::{DType, Device, Tensor};
use candle_nn::{linear, Dropout, Linear, Module, ModuleT, VarBuilder, VarMap};
use clap::Parser;
use stride::prelude::*;

/// Plug your own network into the Trainer: an MLP with dropout (784-256-10), written with plain
/// candle-nn.
///
/// It trains on MNIST by the same loop as the built-ins and prints the per-epoch log and the
/// final test accuracy.
#[derive(Parser)]
struct Args {
    /// Epochs to train.
    #[arg(long, default_value_t = 5)]
    epochs: usize,
}

/// The user's model: 784 -> 256 -> dropout -> 10, written as a candle `ModuleT`.
struct DropoutMlp {
    hidden: Linear,
    dropout: Dropout,
    out: Linear,
}

impl DropoutMlp {
    fn new(vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(Self {
            hidden: linear(784, 256, vb.pp("hidden"))?,
            dropout: Dropout::new(0.2),
            out: linear(256, 10, vb.pp("out"))?,
        })
    }
}

impl ModuleT for DropoutMlp {
    fn forward_t(&self, xs: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let h = self.hidden.forward(xs)?.relu()?;
        self.out.forward(&self.dropout.forward_t(&h, train)?)
    }
}

/// Makes it a Stride model; `train` tells the dropout whether to drop. (A plain
/// `candle_nn::Module` needs no such line: every `Module` is a model.)
impl Model for DropoutMlp {
    fn logits(&self, xs: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        self.forward_t(xs, train)
    }
}

fn main() -> anyhow::Result<()> {
    stride::logging::init();
    let args = Args::parse();
    let data = Resolver::from_env().load(DatasetName::Mnist)?.splits;

    let varmap = VarMap::new();
    let model = DropoutMlp::new(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu))?;
    reset_parameters(&varmap, 42)?; // PyTorch-style init, repeatable

    let mut trainer = Trainer::builder()
        .epochs(args.epochs)
        .lr(0.1)
        .seed(42)
        .callback(ProgressBars::new())
        .build()?;
    let history = trainer.fit(&model, &varmap, &data.train, Some(&data.test))?;
    if let Some(eval) = history.last().and_then(|e| e.eval) {
        println!(
            "custom model: test accuracy {:.4}, test loss {:.4}",
            eval.accuracy, eval.loss
        );
    }
    Ok(())
}
