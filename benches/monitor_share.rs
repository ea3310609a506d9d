//! The monitor's share of a training step on the reference workload W
//! (Fashion-MNIST, MLP 784-128-ReLU-10, SGD 0.1, batch 128, 469 steps/epoch):
//! the time spent in the monitor observer itself (in the loop, and replayed alone,
//! without the cache misses a training step leaves behind), plus the global gradient
//! norm the trainer computes for it when a model has no fused path (the built-in MLP's
//! fused pass forms it while its gradients are in cache).
//!
//! ```text
//! cargo bench --bench monitor_share -- [epochs, default 3]
//! ```

use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use stride::data::{DatasetName, Resolver};
use stride::model::{Activation, Mlp, Model};
use stride::monitor::MonitorConfig;
use stride::optim::{grad_norm, Sgd, SgdConfig};
use stride::train::{Action, Callback, EpochEnd, History, RunMonitor, StepEnd, Trainer};

/// Times every call into the wrapped observer.
struct Timed<C> {
    inner: C,
    spent: std::sync::Arc<std::sync::Mutex<Duration>>,
}

impl<C: Callback> Callback for Timed<C> {
    fn on_step_end(&mut self, s: &StepEnd) -> stride::train::Result<Action> {
        let t = Instant::now();
        let a = self.inner.on_step_end(s);
        *self.spent.lock().unwrap() += t.elapsed();
        a
    }
    fn on_epoch_end(&mut self, e: &EpochEnd) -> stride::train::Result<Action> {
        let t = Instant::now();
        let a = self.inner.on_epoch_end(e);
        *self.spent.lock().unwrap() += t.elapsed();
        a
    }
}

fn main() -> anyhow::Result<()> {
    let epochs: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(3);
    let data = Resolver::from_env().load(DatasetName::FashionMnist)?.splits;
    let varmap = VarMap::new();
    let model = Mlp::seeded(&"784-128-10".parse()?, Activation::Relu, &varmap, 0)?;
    let spent = std::sync::Arc::new(std::sync::Mutex::new(Duration::ZERO));
    // As `stride train` configures it.
    let config = MonitorConfig {
        num_classes: Some(10),
        eval_every: 8,
        ..MonitorConfig::default()
    };
    let monitor = RunMonitor::new(config.clone(), None)?;
    let mut sgd = Sgd::new(varmap.all_vars(), SgdConfig::with_lr(0.1))?;
    let history: History = Trainer::builder()
        .epochs(epochs)
        .track_grad_norm(true)
        .callback(Timed {
            inner: monitor,
            spent: spent.clone(),
        })
        .build()?
        .fit_with(&model, &mut sgd, &data.train, None)?;
    let steps = history.step_losses.len() as f64;
    let train: f64 = history.epochs.iter().map(|e| e.train_seconds).sum();
    let observer = spent.lock().unwrap().as_secs_f64();

    // The gradient norm as the trainer computes it for models without a fused pass, on real
    // W gradients.
    let (x, y) = data.train.to_tensors(&Device::Cpu)?;
    let rows: Vec<u32> = (0..128).collect();
    let grads = model
        .fused_cross_entropy(&x, &y, &rows)?
        .ok_or_else(|| anyhow::anyhow!("the MLP has a fused path"))?
        .grads;
    let vars = varmap.all_vars();
    let reps = 469;
    let t = Instant::now();
    let mut norm = 0.0;
    for _ in 0..reps {
        norm += grad_norm(&grads, &vars)?;
    }
    let per_norm = t.elapsed().as_secs_f64() / f64::from(reps);
    let _ = Tensor::new(norm as f32, &Device::Cpu)?;

    // The observer alone, replaying the run's losses: its CPU cost without the cache misses
    // and scheduling noise that a window inside a busy training loop picks up.
    let mut replay = RunMonitor::new(config, None)?;
    let t = Instant::now();
    for (i, (&loss, &lr)) in history.step_losses.iter().zip(&history.step_lrs).enumerate() {
        let event = StepEnd {
            step: i as u64 + 1,
            epoch: i / 469,
            batch: i % 469,
            batches: 469,
            loss,
            lr,
            effective_lr: lr,
            batch_size: 128,
            grad_norm: Some(1.0),
            update_ratio: None,
            sharpness: None,
        };
        replay.on_step_end(&event)?;
    }
    let replayed = t.elapsed().as_secs_f64() / steps;

    let per_step = train / steps;
    println!(
        "W, {epochs} epochs, {steps} steps: {:.3} ms per training step",
        1e3 * per_step
    );
    println!(
        "monitor observer in the loop: {:.1} us/step ({:.2}%); gradient norm (custom models): {:.1} us/step \
         ({:.2}%); together {:.2}%",
        1e6 * observer / steps,
        100.0 * observer / train,
        1e6 * per_norm,
        100.0 * per_norm / per_step,
        100.0 * (observer / steps + per_norm) / per_step
    );
    println!(
        "monitor observer replayed alone: {:.2} us/step ({:.2}% of a step)",
        1e6 * replayed,
        100.0 * replayed / per_step
    );
    Ok(())
}
