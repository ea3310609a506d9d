//! Seconds per epoch of the layers issue's CNN workload (Fashion-MNIST, conv 1->8 5x5,
//! ReLU, max-pool 2, conv 8->16 5x5, ReLU, max-pool 2, linear 256->10; batch 128, 469
//! steps per epoch, SGD 0.05 or Adam 1e-3), two ways:
//!
//! - `stride`: the built-in CNN (`--model cnn`, Stride's layers) through the Trainer as
//!   `stride train` runs it (monitor, gradient norm, update ratio, progress);
//! - `candle`: the same network on candle-nn layers and candle's autograd, a raw loop.
//!
//! ```text
//! cargo bench --bench cnn_epoch -- [--epochs 3] [--opt sgd|adam|both] [--impls stride,candle] [--seed 0]
//! ```
//!
//! Each `RESULT impl=... opt=... median_epoch_s=... test_acc=...` line has the shape of
//! `scripts/torch_cnn.py`'s; `scripts/compare_cnn.sh` runs the two alternately.

use std::time::Instant;

use anyhow::{bail, Context};
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{Optimizer as _, VarBuilder, VarMap};
use clap::Parser;
use stride::cli::TrainArgs;
use stride::data::{Batcher, DatasetName, Resolver, Splits};
use stride::model::reset_parameters;

#[derive(Parser)]
struct Args {
    /// Epochs per run; the median leaves the first out.
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// sgd, adam or both.
    #[arg(long, default_value = "both")]
    opt: String,
    /// Comma-separated: stride, candle.
    #[arg(long, default_value = "stride")]
    impls: String,
    /// Seed of the initialisation and the shuffle.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Ignored (cargo bench passes it).
    #[arg(long, hide = true)]
    bench: bool,
}

fn median_after_first(seconds: &[f64]) -> f64 {
    let mut v: Vec<f64> = if seconds.len() > 1 {
        seconds[1..].to_vec()
    } else {
        seconds.to_vec()
    };
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn print(name: &str, opt: &str, seconds: &[f64], loss: f64, acc: f64) {
    println!(
        "RESULT impl={name} opt={opt} epochs={} median_epoch_s={:.4} final_train_loss={loss:.4} test_acc={acc:.4}",
        seconds.len(),
        median_after_first(seconds)
    );
}

fn lr(opt: &str) -> &'static str {
    if opt == "adam" {
        "0.001"
    } else {
        "0.05"
    }
}

fn stride_run(opt: &str, epochs: usize, seed: u64) -> anyhow::Result<()> {
    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        train: TrainArgs,
    }
    let (epochs, seed) = (epochs.to_string(), seed.to_string());
    let argv = [
        "cnn",
        "--model",
        "cnn",
        "--conv",
        "lenet",
        "--dataset",
        "fashion-mnist",
        "--optimizer",
        opt,
        "--lr",
        lr(opt),
        "--epochs",
        &epochs,
        "--seed",
        &seed,
        // PyTorch's recipe: all 60,000 training images, and the test set's accuracy (the
        // CLI's default holds out 10 % for validation, which would train on fewer steps and
        // report the validation accuracy).
        "--val-split",
        "0",
    ];
    let summary = stride::cli::train(&Wrap::try_parse_from(argv)?.train)?;
    let history = summary.history;
    let test_accuracy = summary.test.map_or(f64::NAN, |e| e.accuracy);
    let last = history.last().context("the run recorded no epoch")?;
    let seconds: Vec<f64> = history.epochs.iter().map(|e| e.train_seconds).collect();
    print("stride", opt, &seconds, last.train_loss, test_accuracy);
    let later: Vec<_> = history
        .epochs
        .iter()
        .skip(usize::from(history.epochs.len() > 1))
        .collect();
    let total: f64 = later.iter().map(|e| e.train_seconds).sum();
    let share =
        |f: &dyn Fn(&stride::train::EpochRecord) -> f64| later.iter().map(|e| f(e)).sum::<f64>() / total * 100.0;
    println!(
        "  shares of training time: data {:.1}%  forward {:.1}%  backward {:.1}%  optimizer {:.1}%  \
         monitor+progress {:.1}%",
        share(&|e| e.data_seconds),
        share(&|e| e.forward_seconds),
        share(&|e| e.backward_seconds),
        share(&|e| e.optimizer_seconds),
        share(&|e| e.callback_seconds)
    );
    Ok(())
}

/// The network as a candle-nn user writes it.
struct CandleCnn {
    c1: candle_nn::Conv2d,
    c2: candle_nn::Conv2d,
    fc: candle_nn::Linear,
}

impl Module for CandleCnn {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let xs = xs.reshape((xs.dim(0)?, 1, 28, 28))?;
        let xs = self.c1.forward(&xs)?.relu()?.max_pool2d(2)?;
        let xs = self.c2.forward(&xs)?.relu()?.max_pool2d(2)?;
        self.fc.forward(&xs.flatten_from(1)?)
    }
}

fn candle_run(data: &Splits, opt: &str, epochs: usize, seed: u64) -> anyhow::Result<()> {
    let device = Device::Cpu;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
    let model = CandleCnn {
        c1: candle_nn::conv2d(1, 8, 5, Default::default(), vb.pp("conv0"))?,
        c2: candle_nn::conv2d(8, 16, 5, Default::default(), vb.pp("conv3"))?,
        fc: candle_nn::linear(256, 10, vb.pp("fc5"))?,
    };
    reset_parameters(&varmap, seed)?;
    let mut sgd;
    let mut adam;
    let step: &mut dyn FnMut(&Tensor) -> candle_core::Result<()> = if opt == "adam" {
        let params = candle_nn::ParamsAdamW {
            lr: 1e-3,
            weight_decay: 0.0,
            ..Default::default()
        };
        adam = candle_nn::AdamW::new(varmap.all_vars(), params)?;
        &mut move |loss| adam.backward_step(loss)
    } else {
        sgd = candle_nn::SGD::new(varmap.all_vars(), 0.05)?;
        &mut move |loss| sgd.backward_step(loss)
    };
    let (x, y) = data.train.to_tensors(&device)?;
    let batcher = Batcher::new(data.train.len(), 128, seed)?;
    let (mut seconds, mut last_loss) = (Vec::new(), 0.0);
    for epoch in 0..epochs {
        let started = Instant::now();
        let mut sum = 0.0;
        for indices in batcher.batches(epoch as u64) {
            let idx = Tensor::from_slice(&indices, indices.len(), &device)?;
            let (xb, yb) = (x.index_select(&idx, 0)?, y.index_select(&idx, 0)?);
            let loss = candle_nn::loss::cross_entropy(&model.forward(&xb)?, &yb)?;
            sum += f64::from(loss.to_scalar::<f32>()?);
            step(&loss)?;
        }
        seconds.push(started.elapsed().as_secs_f64());
        last_loss = sum / batcher.num_batches() as f64;
    }
    let (tx, ty) = data.test.to_tensors(&device)?;
    let predicted = model.forward(&tx)?.argmax(D::Minus1)?;
    let correct = predicted.eq(&ty)?.to_dtype(DType::F32)?.sum_all()?.to_scalar::<f32>()?;
    print(
        "candle",
        opt,
        &seconds,
        last_loss,
        f64::from(correct) / data.test.len() as f64,
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let opts: Vec<&str> = match args.opt.as_str() {
        "both" => vec!["sgd", "adam"],
        "sgd" => vec!["sgd"],
        "adam" => vec!["adam"],
        other => bail!("--opt {other:?}: expected sgd, adam or both"),
    };
    let impls: Vec<&str> = args.impls.split(',').map(str::trim).collect();
    if let Some(bad) = impls.iter().find(|i| !["stride", "candle"].contains(i)) {
        bail!("--impls: unknown implementation {bad:?}; expected stride or candle");
    }
    let data = Resolver::from_env().load(DatasetName::FashionMnist)?.splits;
    for opt in &opts {
        for name in &impls {
            match *name {
                "stride" => stride_run(opt, args.epochs, args.seed)?,
                _ => candle_run(&data, opt, args.epochs, args.seed)?,
            }
        }
    }
    Ok(())
}
