//! Seconds per epoch on the reference workload W (Fashion-MNIST, MLP 784-128-ReLU-10,
//! f32, batch 128, 469 steps per epoch, SGD 0.1 or Adam 1e-3), three ways:
//!
//! - `stride`: Stride's Trainer as `stride train` / `mnist_mlp` run it (the monitor with
//!   its gradient-norm and update-ratio inputs, progress reporting, the fused MLP path);
//! - `autograd`: the same Trainer with the fused path off (candle's autograd);
//! - `candle`: a minimal raw candle loop (candle-nn Linear, cross_entropy, backward_step).
//!
//! ```text
//! cargo bench --bench w_epoch -- [--epochs 5] [--opt sgd|adam|both] [--impls stride,candle] [--rounds 1]
//! ```
//!
//! Each line `RESULT impl=... opt=... median_epoch_s=... steps_per_s=... test_acc=...` has
//! the shape of `../shared/bench/torch_w.py`'s, so the PyTorch figure can be put beside it
//! (see docs/performance.md for running them alternately). For Stride the share of
//! training time spent gathering data, in forward, backward, the optimizer, the observers
//! (monitor and progress) and the rest of the loop follows. With `--rounds R` the
//! implementations take turns R times, so a noisy machine affects them alike.

use std::time::Instant;

use anyhow::{bail, Context};
use candle_core::{DType, Device, Tensor, D};
use candle_nn::{linear, Module, Optimizer as _, VarBuilder, VarMap};
use clap::Parser;
use stride::cli::TrainArgs;
use stride::data::{Batcher, DatasetName, Resolver, Splits};
use stride::model::reset_parameters;
use stride::train::History;

#[derive(Parser)]
struct Args {
    /// Epochs per run; the median leaves the first out.
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    /// sgd, adam or both.
    #[arg(long, default_value = "both")]
    opt: String,
    /// Comma-separated: stride, autograd, candle.
    #[arg(long, default_value = "stride,autograd,candle")]
    impls: String,
    /// How many times to take turns.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Ignored (cargo bench passes it).
    #[arg(long, hide = true)]
    bench: bool,
}

/// Median of the epochs after the first (all of them for a single epoch).
fn median_after_first(seconds: &[f64]) -> f64 {
    let mut v: Vec<f64> = if seconds.len() > 1 {
        seconds[1..].to_vec()
    } else {
        seconds.to_vec()
    };
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One run's figures.
struct Outcome {
    epoch_seconds: Vec<f64>,
    steps_per_epoch: usize,
    test_accuracy: f64,
}

impl Outcome {
    fn print(&self, name: &str, opt: &str) {
        let median = median_after_first(&self.epoch_seconds);
        // The fastest epoch: what the code does when the machine is quiet (A/B of changes).
        let best = self.epoch_seconds.iter().skip(1).copied().fold(f64::INFINITY, f64::min);
        println!(
            "RESULT impl={name} opt={opt} epochs={} median_epoch_s={median:.4} best_epoch_s={best:.4} \
             steps_per_s={:.1} test_acc={:.4}",
            self.epoch_seconds.len(),
            self.steps_per_epoch as f64 / median,
            self.test_accuracy
        );
    }
}

/// Stride's Trainer through the same entry point as `stride train`.
fn stride_run(opt: &str, epochs: usize, fused: bool) -> anyhow::Result<History> {
    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        train: TrainArgs,
    }
    let lr = if opt == "adam" { "0.001" } else { "0.1" };
    let epochs = epochs.to_string();
    let mut argv = vec![
        "w",
        "--dataset",
        "fashion-mnist",
        "--optimizer",
        opt,
        "--lr",
        lr,
        "--epochs",
        &epochs,
        "--seed",
        "0",
    ];
    if !fused {
        argv.push("--no-fused");
    }
    let args = Wrap::try_parse_from(argv)?.train;
    Ok(stride::cli::train(&args)?.history)
}

fn print_shares(history: &History) {
    // Epochs after the first, as for the median.
    let epochs: Vec<_> = history
        .epochs
        .iter()
        .skip(usize::from(history.epochs.len() > 1))
        .collect();
    let total: f64 = epochs.iter().map(|e| e.train_seconds).sum();
    let sum = |f: &dyn Fn(&stride::train::EpochRecord) -> f64| epochs.iter().map(|e| f(e)).sum::<f64>() / total * 100.0;
    let data = sum(&|e| e.data_seconds);
    let forward = sum(&|e| e.forward_seconds);
    let backward = sum(&|e| e.backward_seconds);
    let optimizer = sum(&|e| e.optimizer_seconds);
    let observers = sum(&|e| e.callback_seconds);
    let other = 100.0 - data - forward - backward - optimizer - observers;
    println!(
        "  shares of training time: data {data:.1}%  forward {forward:.1}%  backward {backward:.1}%  \
         optimizer {optimizer:.1}%  monitor+progress {observers:.1}%  rest of the loop {other:.1}%"
    );
}

fn stride_outcome(history: &History) -> anyhow::Result<Outcome> {
    let last = history.last().context("the run recorded no epoch")?;
    Ok(Outcome {
        epoch_seconds: history.epochs.iter().map(|e| e.train_seconds).collect(),
        steps_per_epoch: 469,
        test_accuracy: last.eval.map_or(f64::NAN, |e| e.accuracy),
    })
}

/// The minimal candle loop: what a candle user writes without a framework.
fn candle_run(data: &Splits, opt: &str, epochs: usize) -> anyhow::Result<Outcome> {
    let device = Device::Cpu;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
    let (fc0, fc1) = (linear(784, 128, vb.pp("fc0"))?, linear(128, 10, vb.pp("fc1"))?);
    reset_parameters(&varmap, 0)?;
    let mut sgd;
    let mut adam;
    let optimizer: &mut dyn FnMut(&Tensor) -> candle_core::Result<()> = if opt == "adam" {
        let params = candle_nn::ParamsAdamW {
            lr: 1e-3,
            weight_decay: 0.0,
            ..Default::default()
        };
        adam = candle_nn::AdamW::new(varmap.all_vars(), params)?;
        &mut move |loss| adam.backward_step(loss)
    } else {
        sgd = candle_nn::SGD::new(varmap.all_vars(), 0.1)?;
        &mut move |loss| sgd.backward_step(loss)
    };
    let (x, y) = data.train.to_tensors(&device)?;
    let batcher = Batcher::new(data.train.len(), 128, 0)?;
    let mut epoch_seconds = Vec::new();
    for epoch in 0..epochs {
        let started = Instant::now();
        for indices in batcher.batches(epoch as u64) {
            let idx = Tensor::from_slice(&indices, indices.len(), &device)?;
            let (xb, yb) = (x.index_select(&idx, 0)?, y.index_select(&idx, 0)?);
            let logits = fc1.forward(&fc0.forward(&xb)?.relu()?)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &yb)?;
            optimizer(&loss)?;
        }
        epoch_seconds.push(started.elapsed().as_secs_f64());
    }
    let (tx, ty) = data.test.to_tensors(&device)?;
    let predicted = fc1.forward(&fc0.forward(&tx)?.relu()?)?.argmax(D::Minus1)?;
    let correct = predicted.eq(&ty)?.to_dtype(DType::F32)?.sum_all()?.to_scalar::<f32>()?;
    Ok(Outcome {
        epoch_seconds,
        steps_per_epoch: batcher.num_batches(),
        test_accuracy: f64::from(correct) / data.test.len() as f64,
    })
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
    if let Some(bad) = impls.iter().find(|i| !["stride", "autograd", "candle"].contains(i)) {
        bail!("--impls: unknown implementation {bad:?}; expected stride, autograd or candle");
    }
    let data = Resolver::from_env().load(DatasetName::FashionMnist)?.splits;
    println!(
        "W: Fashion-MNIST {} train / {} test, MLP 784-128-ReLU-10, batch 128, {} epochs, rayon threads {}",
        data.train.len(),
        data.test.len(),
        args.epochs,
        rayon_threads()
    );
    for round in 0..args.rounds {
        if args.rounds > 1 {
            println!("round {}", round + 1);
        }
        for opt in &opts {
            for name in &impls {
                match *name {
                    "stride" | "autograd" => {
                        let history = stride_run(opt, args.epochs, *name == "stride")?;
                        stride_outcome(&history)?.print(name, opt);
                        print_shares(&history);
                    }
                    _ => candle_run(&data, opt, args.epochs)?.print(name, opt),
                }
            }
        }
    }
    Ok(())
}

fn rayon_threads() -> String {
    std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| {
        std::thread::available_parallelism()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".into())
    })
}
