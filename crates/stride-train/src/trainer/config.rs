//! A run's settings and the builder that checks them.

use candle_core::Device;
use stride_optim::schedule::Scheduler;

use super::Trainer;
use crate::callback::Callback;
use crate::checkpoint::Checkpointer;
use crate::error::{Result, TrainError};
use crate::interrupt::Interrupt;
use crate::loss::Loss;
use crate::stability::SharpnessSchedule;

/// Settings of a run; `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainerConfig {
    /// Passes over the training set (default 10).
    pub epochs: usize,
    /// Examples per optimizer step (default 128).
    pub batch_size: usize,
    /// Seed of the per-epoch shuffle (default 0).
    pub seed: u64,
    /// Learning rate of the SGD optimizer [`Trainer::fit`] builds (default 0.1).
    pub lr: f64,
    /// Examples per forward pass during evaluation (default 1000).
    pub eval_batch_size: usize,
    /// Clip the global gradient norm to this value (default: no clipping).
    pub clip_grad_norm: Option<f64>,
    /// Compute the global gradient norm every step even without clipping (default
    /// false); observers such as the monitor read it from [`StepEnd::grad_norm`].
    pub track_grad_norm: bool,
    /// Every this many steps, measure the median over variables of the update-to-weight
    /// ratio `|dw| / |w|` (CS231n's ~1e-3 rule of thumb) for [`StepEnd::update_ratio`]
    /// (default: never; it costs one copy of the weights).
    pub update_ratio_every: Option<u64>,
    /// Estimate the sharpness (top Hessian eigenvalue) and the stability limit for
    /// [`StepEnd::sharpness`] (default: never; once per epoch it costs a few percent of an
    /// epoch, see `benches/sharpness_share.rs`).
    pub sharpness: Option<SharpnessSchedule>,
    /// Let models with a fused training path ([`Model::fused_cross_entropy`], e.g. the
    /// built-in MLP) compute loss and gradients without candle's autograd (default true).
    /// Both give the same gradients to float rounding; the switch exists for comparisons.
    pub fused: bool,
    /// What is minimised (default cross-entropy; the fused path is taken only for it).
    pub loss: Loss,
    /// Read the steps' losses, counts, gradient norms and update ratios off the device every
    /// this many steps, in one transfer, instead of after every step (default: every step on
    /// the CPU, where a read costs nothing, every [`DEVICE_READ_EVERY`] steps on a GPU, whose
    /// queue a read would drain). Observers still see every step, in order, but up to this
    /// many steps late: a stop, a rate change or a rollback they ask for takes effect at the
    /// next read, the steps already taken past a stop or a rollback are dropped unreported,
    /// and a non-finite loss or gradient cannot skip its own update (the run stops, or rolls
    /// back, at the read that sees it).
    pub read_every: Option<u64>,
}

/// Steps between reads of the step scalars on a device other than the CPU (see
/// [`TrainerConfig::read_every`]): enough to keep a GPU's queue full on small models, few
/// enough that the progress bar and the monitor lag by well under a second.
pub const DEVICE_READ_EVERY: u64 = 32;

impl Default for TrainerConfig {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 128,
            seed: 0,
            lr: 0.1,
            eval_batch_size: 1000,
            clip_grad_norm: None,
            track_grad_norm: false,
            update_ratio_every: None,
            sharpness: None,
            fused: true,
            loss: Loss::CrossEntropy,
            read_every: None,
        }
    }
}

impl TrainerConfig {
    /// Refuses settings the loop cannot run with, naming the setting.
    pub fn validate(&self) -> Result<()> {
        let at_least_one = |name, v: u64| {
            if v == 0 {
                Err(TrainError::Config {
                    name,
                    value: v.to_string(),
                    message: "expected at least 1",
                })
            } else {
                Ok(())
            }
        };
        at_least_one("epochs", self.epochs as u64)?;
        at_least_one("batch_size", self.batch_size as u64)?;
        at_least_one("eval_batch_size", self.eval_batch_size as u64)?;
        if let Some(every) = self.update_ratio_every {
            at_least_one("update_ratio_every", every)?;
        }
        if let Some(every) = self.read_every {
            at_least_one("read_every", every)?;
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(TrainError::Config {
                name: "lr",
                value: self.lr.to_string(),
                message: "expected a finite learning rate > 0",
            });
        }
        if let Some(max) = self.clip_grad_norm {
            if !(max.is_finite() && max > 0.0) {
                return Err(TrainError::Config {
                    name: "clip_grad_norm",
                    value: max.to_string(),
                    message: "expected a finite norm > 0",
                });
            }
        }
        Ok(())
    }
}

/// Builder of a [`Trainer`]; every setter states its default.
#[derive(Default)]
pub struct TrainerBuilder {
    config: TrainerConfig,
    callbacks: Vec<Box<dyn Callback>>,
    scheduler: Option<Scheduler>,
    checkpointer: Option<Checkpointer>,
    interrupt: Option<Interrupt>,
    device: Option<Device>,
}

impl TrainerBuilder {
    /// Passes over the training set (default 10).
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.config.epochs = epochs;
        self
    }
    /// Examples per step (default 128).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.config.batch_size = batch_size;
        self
    }
    /// Shuffle seed (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self
    }
    /// Learning rate of the SGD optimizer built by [`Trainer::fit`] (default 0.1).
    pub fn lr(mut self, lr: f64) -> Self {
        self.config.lr = lr;
        self
    }
    /// Examples per evaluation forward pass (default 1000).
    pub fn eval_batch_size(mut self, n: usize) -> Self {
        self.config.eval_batch_size = n;
        self
    }
    /// Clips the global gradient norm before every step (default: none); the
    /// pre-clip norm is reported in [`StepEnd::grad_norm`].
    pub fn clip_grad_norm(mut self, max_norm: f64) -> Self {
        self.config.clip_grad_norm = Some(max_norm);
        self
    }
    /// Computes the gradient norm every step for the observers (default false).
    pub fn track_grad_norm(mut self, track: bool) -> Self {
        self.config.track_grad_norm = track;
        self
    }
    /// Measures the update-to-weight ratio every `every` steps (default: never).
    pub fn track_update_ratio(mut self, every: u64) -> Self {
        self.config.update_ratio_every = Some(every.max(1));
        self
    }
    /// Estimates sharpness on this schedule (default: never); `SharpnessSchedule::default()`
    /// is once per epoch, at its first step, on a fixed batch of 128 training examples.
    pub fn sharpness(mut self, schedule: SharpnessSchedule) -> Self {
        self.config.sharpness = Some(schedule);
        self
    }
    /// Minimises `loss` (default cross-entropy).
    pub fn loss(mut self, loss: Loss) -> Self {
        self.config.loss = loss;
        self
    }

    /// Uses the model's fused training path when it has one (default true).
    pub fn fused(mut self, fused: bool) -> Self {
        self.config.fused = fused;
        self
    }
    /// Drives the learning rate (and momentum, for cycling schedules) with a
    /// schedule (default: the optimizer's rate stays as set).
    pub fn schedule(mut self, scheduler: Scheduler) -> Self {
        self.scheduler = Some(scheduler);
        self
    }
    /// Writes checkpoints at every epoch end (and every N steps if configured) (default: none).
    pub fn checkpoints(mut self, checkpointer: Checkpointer) -> Self {
        self.checkpointer = Some(checkpointer);
        self
    }
    /// Stops the run cleanly at the next step boundary when `interrupt` is requested (a
    /// signal handler or another thread), checkpointing first when checkpoints are on
    /// (default: runs until done).
    pub fn interrupt(mut self, interrupt: Interrupt) -> Self {
        self.interrupt = Some(interrupt);
        self
    }
    /// Reads the step scalars off the device every `every` steps (default: every step on the
    /// CPU, every [`DEVICE_READ_EVERY`] elsewhere; see [`TrainerConfig::read_every`]).
    pub fn read_every(mut self, every: u64) -> Self {
        self.config.read_every = Some(every);
        self
    }
    /// Trains on `device` (default: wherever the model's variables are): the data is moved
    /// there, and a model whose variables are elsewhere is refused, naming both devices.
    pub fn device(mut self, device: Device) -> Self {
        self.device = Some(device);
        self
    }
    /// Adds an observer; observers are called in the order they were added.
    pub fn callback(mut self, callback: impl Callback + 'static) -> Self {
        self.callbacks.push(Box::new(callback));
        self
    }
    /// Validates the settings.
    pub fn build(self) -> Result<Trainer> {
        let mut trainer = Trainer::with_callbacks(self.config, self.callbacks)?;
        trainer.lr.scheduler = self.scheduler;
        trainer.checkpointer = self.checkpointer;
        trainer.interrupt = self.interrupt;
        trainer.device = self.device;
        Ok(trainer)
    }
}
