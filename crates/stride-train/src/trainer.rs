//! The training loop.

use std::time::{Duration, Instant};

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarMap;
use stride_data::{Batcher, Examples};

use crate::loss::Loss;
use stride_model::Model;
use stride_monitor::stats::median_in_place;
use stride_optim::schedule::{ScheduleUnit, Scheduler};
use stride_optim::{clip_grad_norm, grad_norm, l2_norm, Optimizer, OptimizerState, Sgd, SgdConfig};

use crate::callback::{format_lr, Action, Callback, EpochEnd, Eval, StepEnd, TrainBegin};
use crate::checkpoint::{Checkpoint, Checkpointer, Position, SaveRequest};
use crate::error::{CheckpointProblem, Result, TrainError};
use crate::stability::{SharpnessProbe, SharpnessReading, SharpnessSchedule};

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
}

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
        }
    }
}

/// One epoch of a finished run.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochRecord {
    /// Epoch, from 0.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Held-out loss and accuracy, if evaluated.
    pub eval: Option<Eval>,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Seconds spent in training steps.
    pub train_seconds: f64,
    /// Of those, seconds spent in the optimizer's update.
    pub optimizer_seconds: f64,
    /// Of those, seconds spent estimating sharpness.
    pub sharpness_seconds: f64,
    /// Of those, seconds spent in the observers' `on_step_end` (monitor, progress bars, logs).
    pub callback_seconds: f64,
    /// Of those, seconds spent gathering batches.
    pub data_seconds: f64,
    /// Of those, seconds spent in forward passes and the loss.
    pub forward_seconds: f64,
    /// Of those, seconds spent computing gradients.
    pub backward_seconds: f64,
}

/// What a run did: per-step losses, per-epoch records, and why it stopped early.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Loss of every step, in order; a run stopped by a non-finite loss ends with it.
    pub step_losses: Vec<f64>,
    /// Learning rate of every step, in order.
    pub step_lrs: Vec<f64>,
    /// Completed epochs.
    pub epochs: Vec<EpochRecord>,
    /// Why the run ended before its last epoch, if it did.
    pub stopped: Option<String>,
    /// Steps whose gradient was not finite and whose update was skipped.
    pub skipped_steps: u64,
    /// Steps whose gradients came from the model's fused path (the others went through
    /// candle's autograd), so a test can tell which path a run took.
    pub fused_steps: u64,
    /// Sharpness estimates, as (steps taken before the estimate, estimate).
    pub sharpness: Vec<(u64, SharpnessReading)>,
    /// Snapshots restored on an observer's `Rollback`, as (step, new learning rate).
    pub rollbacks: Vec<(u64, Option<f64>)>,
    /// Wall time of the whole run, evaluation included.
    pub total_seconds: f64,
}

impl History {
    /// The last epoch's record.
    pub fn last(&self) -> Option<&EpochRecord> {
        self.epochs.last()
    }
}

/// Builder of a [`Trainer`]; every setter states its default.
#[derive(Default)]
pub struct TrainerBuilder {
    config: TrainerConfig,
    callbacks: Vec<Box<dyn Callback>>,
    scheduler: Option<Scheduler>,
    checkpointer: Option<Checkpointer>,
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
    /// is once per epoch, at its first step, on a fixed batch of 256 training examples.
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
        Ok(trainer)
    }
}

/// Runs the training loop and notifies its observers.
pub struct Trainer {
    config: TrainerConfig,
    callbacks: Vec<Box<dyn Callback>>,
    lr: LrControl,
    snapshot: Option<Snapshot>,
    checkpointer: Option<Checkpointer>,
    resume: Option<(Position, f64)>,
}

/// Weights and optimizer state kept in memory for a rollback.
struct Snapshot {
    weights: Vec<Tensor>,
    optimizer: OptimizerState,
}

/// What the observers asked for, beyond learning-rate changes.
#[derive(Default)]
struct Requests {
    stop: Option<String>,
    rolled_back: bool,
}

/// Who sets the learning rate: the schedule, scaled by what observers asked for.
struct LrControl {
    scheduler: Option<Scheduler>,
    /// Product of the observers' `SetLr` requests relative to the schedule, so an
    /// intervention ("halve the rate") survives the schedule's next update.
    scale: f64,
}

impl LrControl {
    /// The schedule's counter for a step: the step or the epoch.
    fn t(&self, step: u64, epoch: usize) -> u64 {
        match self.scheduler.as_ref().map(|s| s.unit) {
            Some(ScheduleUnit::Epoch) => epoch as u64,
            _ => step,
        }
    }

    /// Sets the optimizer's rate (and momentum) for counter `t`.
    fn apply(&self, optimizer: &mut dyn Optimizer, t: u64) {
        if let Some(s) = &self.scheduler {
            optimizer.set_learning_rate(s.lr(t) * self.scale);
            if let Some(m) = s.momentum(t) {
                optimizer.set_momentum(m);
            }
        }
    }

    /// An observer's `SetLr(lr)`, taking effect now and kept across schedule updates.
    fn request(&mut self, optimizer: &mut dyn Optimizer, lr: f64, t: u64) {
        if let Some(s) = &self.scheduler {
            let scheduled = s.lr(t);
            if scheduled > 0.0 {
                self.scale = lr / scheduled;
            }
        }
        optimizer.set_learning_rate(lr);
    }
}

impl Trainer {
    /// A builder with the default settings.
    pub fn builder() -> TrainerBuilder {
        TrainerBuilder::default()
    }

    /// A trainer with these settings and no observers.
    pub fn new(config: TrainerConfig) -> Result<Self> {
        Self::with_callbacks(config, Vec::new())
    }

    fn with_callbacks(config: TrainerConfig, callbacks: Vec<Box<dyn Callback>>) -> Result<Self> {
        let positive = |name, v: usize| {
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
        positive("epochs", config.epochs)?;
        positive("batch_size", config.batch_size)?;
        positive("eval_batch_size", config.eval_batch_size)?;
        if !(config.lr.is_finite() && config.lr > 0.0) {
            return Err(TrainError::Config {
                name: "lr",
                value: config.lr.to_string(),
                message: "expected a finite learning rate > 0",
            });
        }
        if let Some(max) = config.clip_grad_norm {
            if !(max.is_finite() && max > 0.0) {
                return Err(TrainError::Config {
                    name: "clip_grad_norm",
                    value: max.to_string(),
                    message: "expected a finite norm > 0",
                });
            }
        }
        Ok(Self {
            config,
            callbacks,
            lr: LrControl {
                scheduler: None,
                scale: 1.0,
            },
            snapshot: None,
            checkpointer: None,
            resume: None,
        })
    }

    /// The settings.
    pub fn config(&self) -> &TrainerConfig {
        &self.config
    }

    /// Restores a checkpoint so that the next [`Trainer::fit_with`] continues where it was
    /// taken: the weights into `varmap`, the optimizer's state, the schedule's plateau state,
    /// the observers' state and the position (epoch, batch, step). With a [`Checkpointer`]
    /// set, the checkpoint must hold the same model. Nothing is changed when a check fails.
    ///
    /// The shuffle seed and batch size must be the ones of the checkpointed run (the batches
    /// still to come are derived from them); more epochs than it planned are allowed.
    pub fn resume(&mut self, checkpoint: &Checkpoint, varmap: &VarMap, optimizer: &mut dyn Optimizer) -> Result<()> {
        let saved = &checkpoint.state;
        let mismatch = |name, saved: String, current: String| TrainError::Checkpoint {
            path: checkpoint.dir.clone(),
            problem: CheckpointProblem::RunMismatch { name, saved, current },
        };
        if let Some(c) = &self.checkpointer {
            checkpoint.expect_model(&c.config().model)?;
        }
        if saved.seed != self.config.seed {
            return Err(mismatch("seed", saved.seed.to_string(), self.config.seed.to_string()));
        }
        if saved.batch_size != self.config.batch_size {
            return Err(mismatch(
                "batch_size",
                saved.batch_size.to_string(),
                self.config.batch_size.to_string(),
            ));
        }
        let has_plateau = self.lr.scheduler.as_ref().is_some_and(|s| s.plateau.is_some());
        if has_plateau != saved.plateau.is_some() {
            let says = |p: bool| if p { "a plateau schedule" } else { "no plateau schedule" }.to_string();
            return Err(mismatch("schedule", says(saved.plateau.is_some()), says(has_plateau)));
        }
        let stateful: Vec<usize> = (0..self.callbacks.len())
            .filter(|&i| self.callbacks[i].save_state().is_some())
            .collect();
        if stateful.len() != saved.callbacks.len() {
            return Err(mismatch(
                "observers with state (e.g. the monitor)",
                saved.callbacks.len().to_string(),
                stateful.len().to_string(),
            ));
        }
        checkpoint.restore_weights(varmap)?;
        checkpoint.restore_optimizer(varmap, optimizer)?;
        for (&i, state) in stateful.iter().zip(&saved.callbacks) {
            self.callbacks[i].restore_state(state)?;
        }
        if let Some(s) = &mut self.lr.scheduler {
            s.plateau = saved.plateau.clone();
        }
        self.resume = Some((saved.position.clone(), saved.lr_scale));
        tracing::info!(
            checkpoint = %checkpoint.dir.display(),
            step = saved.position.step,
            "resuming at epoch {}, batch {}",
            saved.position.epoch + 1,
            saved.position.batch
        );
        Ok(())
    }

    /// Writes a checkpoint if a [`Checkpointer`] is set; a failure becomes the run's stop reason.
    fn checkpoint(&mut self, optimizer: &dyn Optimizer, position: Position, val_loss: Option<f64>) -> Option<String> {
        let callbacks = self.callbacks.iter().filter_map(|c| c.save_state()).collect();
        let plateau = self.lr.scheduler.as_ref().and_then(|s| s.plateau.clone());
        let (seed, batch_size, lr_scale) = (self.config.seed, self.config.batch_size, self.lr.scale);
        let checkpointer = self.checkpointer.as_mut()?;
        let request = SaveRequest {
            position,
            optimizer,
            plateau,
            lr_scale,
            callbacks,
            val_loss,
            seed,
            batch_size,
        };
        match checkpointer.save(request) {
            Ok(_) => None,
            Err(e) => {
                tracing::error!("{e}");
                Some(format!("stopped because a checkpoint could not be written: {e}"))
            }
        }
    }

    /// Adds an observer after construction.
    pub fn add_callback(&mut self, callback: impl Callback + 'static) {
        self.callbacks.push(Box::new(callback));
    }

    /// Trains `model` (whose variables are in `varmap`) with plain SGD at the
    /// configured rate, evaluating on `test` after every epoch.
    pub fn fit(
        &mut self,
        model: &dyn Model,
        varmap: &VarMap,
        train: &dyn Examples,
        test: Option<&dyn Examples>,
    ) -> Result<History> {
        let mut sgd = Sgd::new(varmap.all_vars(), SgdConfig::with_lr(self.config.lr))?;
        self.fit_with(model, &mut sgd, train, test)
    }

    /// Trains with an optimizer of the caller's choice, starting from its own
    /// learning rate unless a schedule is set.
    ///
    /// With a per-step schedule the rate is set before every step from the
    /// number of steps the optimizer has taken (so a resumed optimizer resumes
    /// the schedule); with a per-epoch one, at the start of every epoch. The
    /// plateau part of a schedule observes the test loss (the training loss
    /// without a test set) after every epoch.
    pub fn fit_with(
        &mut self,
        model: &dyn Model,
        optimizer: &mut dyn Optimizer,
        train: &dyn Examples,
        test: Option<&dyn Examples>,
    ) -> Result<History> {
        let device = optimizer
            .vars()
            .first()
            .map(|v| v.device().clone())
            .ok_or_else(|| TrainError::Data("the optimizer has no variables to train".into()))?;
        if train.is_empty() {
            return Err(TrainError::Data("the training set is empty".into()));
        }
        let (x, y) = train.to_tensors(&device)?;
        check_finite_inputs(&x, "training inputs")?;
        let test = test.map(|t| t.to_tensors(&device)).transpose()?;
        if let Some((tx, _)) = &test {
            check_finite_inputs(tx, "test inputs")?;
        }
        // Steps allocate the same large buffers over and over: keep their pages mapped
        // (after the data, which keeps its own huge-page mapping).
        stride_cpu::retain_freed_memory();
        let c = self.config.clone();
        let batcher = Batcher::new(train.len(), c.batch_size, c.seed)?;
        let mut probe = c
            .sharpness
            .as_ref()
            .map(|s| SharpnessProbe::new(s, &x, &y, c.seed))
            .transpose()?;
        let mut history = History::default();
        let started = Instant::now();
        let (start, scale) = self.resume.take().unwrap_or_else(|| {
            let step = optimizer.steps();
            (
                Position {
                    step,
                    ..Position::default()
                },
                1.0,
            )
        });
        let mut step = start.step;
        self.lr.scale = scale;
        self.lr.apply(optimizer, self.lr.t(step, start.epoch));
        let begin = TrainBegin {
            epochs: c.epochs,
            steps_per_epoch: batcher.num_batches(),
            train_len: train.len(),
            lr: optimizer.learning_rate(),
        };
        self.snapshot = None;
        let mut stop = self
            .dispatch(optimizer, self.lr.t(step, 0), &mut history, |cb| {
                cb.on_train_begin(&begin)
            })
            .stop;
        for epoch in start.epoch..c.epochs {
            if stop.is_some() {
                break;
            }
            let batches = batcher.batches(epoch as u64);
            let epoch_start = Instant::now();
            let resumed = epoch == start.epoch;
            let (mut loss_sum, mut epoch_steps) = if resumed {
                (start.loss_sum, start.epoch_steps)
            } else {
                (0.0, 0usize)
            };
            let skip = if resumed { start.batch } else { 0 };
            let mut optimizer_time = Duration::ZERO;
            let mut sharpness_time = 0.0;
            let mut callback_time = Duration::ZERO;
            let mut phases = StepTimes::default();
            for (batch, indices) in batches.iter().enumerate().skip(skip) {
                self.lr.apply(optimizer, self.lr.t(step, epoch));
                let (pass, loss_value) = Pass::forward(model, &c.loss, &x, &y, indices, c.fused, &mut phases)?;
                history.fused_steps += u64::from(matches!(pass, Pass::Fused(..)));
                let lr = optimizer.learning_rate();
                if !loss_value.is_finite() {
                    // Recorded: the value that ended the run is part of its history.
                    history.step_losses.push(loss_value);
                    history.step_lrs.push(lr);
                    let event = StepEnd {
                        step: step + 1,
                        epoch,
                        batch,
                        batches: batches.len(),
                        loss: loss_value,
                        lr,
                        batch_size: indices.len(),
                        grad_norm: None,
                        update_ratio: None,
                        sharpness: None,
                    };
                    let asked = self.dispatch(optimizer, self.lr.t(step, epoch), &mut history, |cb| {
                        cb.on_step_end(&event)
                    });
                    if asked.rolled_back && asked.stop.is_none() {
                        continue;
                    }
                    stop = asked.stop.or_else(|| {
                        Some(format!(
                            "the loss became {loss_value} at step {} (epoch {}, lr {}): the learning rate is too high \
                             for this model; lower it 10x and try again",
                            step + 1,
                            epoch + 1,
                            format_lr(lr)
                        ))
                    });
                    tracing::error!("{}", stop.as_deref().unwrap_or_default());
                    break;
                }
                let backward = pass.backward(&mut phases)?;
                let tracked_norm = if c.clip_grad_norm.is_none() && c.track_grad_norm {
                    Some(backward.norm(optimizer.vars())?)
                } else {
                    None
                };
                let Backward {
                    mut grads,
                    batch: batch_tensors,
                    ..
                } = backward;
                // Before clipping and the update: the estimate is of the weights this step starts from.
                let sharpness = match &mut probe {
                    Some(p) if p.due(step, batch) => {
                        let (xb, yb) = match batch_tensors {
                            Some(b) => b,
                            None => gather(&x, &y, indices)?,
                        };
                        p.measure(model, &*optimizer, &xb, &yb, &grads)?
                    }
                    _ => None,
                };
                if let Some(r) = sharpness {
                    sharpness_time += r.seconds;
                    history.sharpness.push((step, r));
                }
                let grad_norm = match c.clip_grad_norm {
                    Some(max) => Some(clip_grad_norm(&mut grads, optimizer.vars(), max)?),
                    None => tracked_norm,
                };
                let finite_grad = grad_norm.is_none_or(|n| n.is_finite());
                if !finite_grad {
                    // A non-finite gradient would poison every weight it touches.
                    history.skipped_steps += 1;
                    tracing::warn!(step = step + 1, "non-finite gradient norm: update skipped");
                }
                let measure = c.update_ratio_every.is_some_and(|k| (step + 1) % k == 0);
                let before = if measure {
                    Some(copy_weights(optimizer.vars())?)
                } else {
                    None
                };
                if finite_grad {
                    let update_start = Instant::now();
                    optimizer.step(&grads)?;
                    optimizer_time += update_start.elapsed();
                }
                let update_ratio = match before {
                    Some(before) => median_update_ratio(optimizer.vars(), &before)?,
                    None => None,
                };
                step += 1;
                loss_sum += loss_value;
                epoch_steps += 1;
                history.step_losses.push(loss_value);
                history.step_lrs.push(lr);
                let event = StepEnd {
                    step,
                    epoch,
                    batch,
                    batches: batches.len(),
                    loss: loss_value,
                    lr,
                    batch_size: indices.len(),
                    grad_norm,
                    update_ratio,
                    sharpness,
                };
                let observers_start = Instant::now();
                stop = self
                    .dispatch(optimizer, self.lr.t(step, epoch), &mut history, |cb| {
                        cb.on_step_end(&event)
                    })
                    .stop;
                callback_time += observers_start.elapsed();
                let every = self.checkpointer.as_ref().and_then(|k| k.config().every_steps);
                if stop.is_none() && every.is_some_and(|k| step % k == 0) {
                    let position = Position {
                        step,
                        epoch,
                        batch: batch + 1,
                        loss_sum,
                        epoch_steps,
                    };
                    stop = self.checkpoint(&*optimizer, position, None);
                }
                if stop.is_some() {
                    break;
                }
            }
            let train_time = epoch_start.elapsed();
            let eval = match &test {
                Some((tx, ty)) => Some(evaluate_tensors(model, &c.loss, tx, ty, c.eval_batch_size)?),
                None => None,
            };
            let event = EpochEnd {
                epoch,
                epochs: c.epochs,
                step,
                train_loss: if epoch_steps == 0 {
                    f64::NAN
                } else {
                    loss_sum / epoch_steps as f64
                },
                eval,
                lr: optimizer.learning_rate(),
                train_time,
            };
            history.epochs.push(EpochRecord {
                epoch,
                train_loss: event.train_loss,
                eval,
                lr: event.lr,
                train_seconds: train_time.as_secs_f64(),
                optimizer_seconds: optimizer_time.as_secs_f64(),
                sharpness_seconds: sharpness_time,
                callback_seconds: callback_time.as_secs_f64(),
                data_seconds: phases.data.as_secs_f64(),
                forward_seconds: phases.forward.as_secs_f64(),
                backward_seconds: phases.backward.as_secs_f64(),
            });
            let t = self.lr.t(step, epoch);
            if let Some(s) = &mut self.lr.scheduler {
                let metric = eval.map_or(event.train_loss, |e| e.loss);
                if metric.is_finite() {
                    s.observe_metric(t, metric);
                }
            }
            let after = self
                .dispatch(optimizer, self.lr.t(step, epoch), &mut history, |cb| {
                    cb.on_epoch_end(&event)
                })
                .stop;
            stop = stop.or(after);
            if stop.is_none() {
                let position = Position {
                    step,
                    epoch: epoch + 1,
                    ..Position::default()
                };
                stop = self.checkpoint(&*optimizer, position, eval.map(|e| e.loss));
            }
        }
        history.stopped = stop;
        history.total_seconds = started.elapsed().as_secs_f64();
        for cb in &mut self.callbacks {
            cb.on_train_end(&history);
        }
        Ok(history)
    }

    /// Calls every observer, applies `SetLr`, `Checkpoint` and `Rollback`, and
    /// returns the first stop reason and whether a snapshot was restored.
    fn dispatch(
        &mut self,
        optimizer: &mut dyn Optimizer,
        t: u64,
        history: &mut History,
        mut call: impl FnMut(&mut dyn Callback) -> Action,
    ) -> Requests {
        let mut out = Requests::default();
        for i in 0..self.callbacks.len() {
            let action = call(self.callbacks[i].as_mut());
            match action {
                Action::Continue => {}
                Action::SetLr(lr) if lr.is_finite() && lr > 0.0 => self.lr.request(optimizer, lr, t),
                Action::SetLr(lr) => {
                    tracing::warn!(lr, "ignoring a request for a non-positive or non-finite learning rate")
                }
                Action::Stop(reason) => {
                    out.stop.get_or_insert(reason);
                }
                Action::Checkpoint => match take_snapshot(optimizer) {
                    Ok(snapshot) => self.snapshot = Some(snapshot),
                    Err(e) => tracing::warn!(error = %e, "could not take a snapshot"),
                },
                Action::Rollback(lr) => match self.restore(optimizer) {
                    Ok(true) => {
                        if let Some(lr) = lr.filter(|lr| lr.is_finite() && *lr > 0.0) {
                            self.lr.request(optimizer, lr, t);
                        }
                        history.rollbacks.push((optimizer.steps(), lr));
                        out.rolled_back = true;
                    }
                    Ok(false) => {
                        out.stop
                            .get_or_insert_with(|| "a rollback was requested but no snapshot was taken".into());
                    }
                    Err(e) => {
                        out.stop.get_or_insert_with(|| format!("the rollback failed: {e}"));
                    }
                },
            }
        }
        out
    }

    /// Restores the snapshot, if there is one.
    fn restore(&self, optimizer: &mut dyn Optimizer) -> Result<bool> {
        let Some(snapshot) = &self.snapshot else {
            return Ok(false);
        };
        for (var, saved) in optimizer.vars().iter().zip(&snapshot.weights) {
            var.set(saved)?;
        }
        optimizer.load_state(&snapshot.optimizer)?;
        Ok(true)
    }
}

/// A training step's forward pass, and how its gradients are obtained.
pub(crate) enum Pass {
    /// The model's fused path has computed them already, with their sum of squares, in this time.
    Fused(GradStore, f64, Duration),
    /// candle's autograd computes them from this loss, on this batch.
    Graph { loss: Tensor, xb: Tensor, yb: Tensor },
}

/// Seconds of a step's phases, summed over an epoch.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StepTimes {
    pub data: Duration,
    pub forward: Duration,
    pub backward: Duration,
}

impl Pass {
    /// The mean cross-entropy of rows `rows` of (`x`, `y`): through the model's fused path
    /// when `fused` is set and the model has one, else through candle ops. Adds the time
    /// spent gathering the batch and in the forward pass to `times`.
    pub(crate) fn forward(
        model: &dyn Model,
        loss_fn: &Loss,
        x: &Tensor,
        y: &Tensor,
        rows: &[u32],
        fused: bool,
        times: &mut StepTimes,
    ) -> Result<(Self, f64)> {
        if fused && loss_fn.is_classification() {
            if let Some(f) = model.fused_cross_entropy(x, y, rows)? {
                times.data += f.times.data;
                times.forward += f.times.forward;
                return Ok((
                    Self::Fused(f.grads, f.grad_sq_norm, f.times.backward),
                    f64::from(f.loss),
                ));
            }
        }
        let started = Instant::now();
        let (xb, yb) = gather(x, y, rows)?;
        let gathered = Instant::now();
        let logits = model.logits(&xb, true)?;
        let loss = loss_fn.compute(&logits, &yb)?;
        let value = f64::from(loss.to_dtype(DType::F32)?.to_scalar::<f32>()?);
        times.data += gathered - started;
        times.forward += gathered.elapsed();
        Ok((Self::Graph { loss, xb, yb }, value))
    }

    /// The gradients, and the batch tensors if the forward pass built them; adds the
    /// backward pass's time to `times`.
    pub(crate) fn backward(self, times: &mut StepTimes) -> Result<Backward> {
        Ok(match self {
            Self::Fused(grads, sq_norm, took) => {
                times.backward += took;
                Backward {
                    grads,
                    batch: None,
                    sq_norm: Some(sq_norm),
                }
            }
            Self::Graph { loss, xb, yb } => {
                let started = Instant::now();
                let grads = loss.backward()?;
                times.backward += started.elapsed();
                Backward {
                    grads,
                    batch: Some((xb, yb)),
                    sq_norm: None,
                }
            }
        })
    }
}

/// What a backward pass leaves.
pub(crate) struct Backward {
    pub grads: GradStore,
    /// The batch's inputs and labels, if the forward pass built them.
    pub batch: Option<(Tensor, Tensor)>,
    /// The gradients' sum of squares, if the pass formed it.
    pub sq_norm: Option<f64>,
}

impl Backward {
    /// The global gradient norm over `vars`: the fused pass's own when its gradients are
    /// exactly those of `vars`, else summed here.
    fn norm(&self, vars: &[candle_core::Var]) -> Result<f64> {
        match self.sq_norm {
            Some(sq)
                if self.grads.get_ids().count() == vars.len() && vars.iter().all(|v| self.grads.get(v).is_some()) =>
            {
                Ok(sq.sqrt())
            }
            _ => Ok(grad_norm(&self.grads, vars)?),
        }
    }
}

/// Rows `indices` of the inputs and labels; all rows in order are the tensors themselves
/// (the LR finder's batches), not a copy.
fn gather(x: &Tensor, y: &Tensor, indices: &[u32]) -> Result<(Tensor, Tensor)> {
    if indices.len() == x.dim(0)? && indices.iter().enumerate().all(|(i, &r)| r as usize == i) {
        return Ok((x.clone(), y.clone()));
    }
    let idx = Tensor::from_slice(indices, indices.len(), x.device())?;
    Ok((x.index_select(&idx, 0)?, y.index_select(&idx, 0)?))
}

/// Fails when `x` (examples along dimension 0) holds NaN or infinite values, naming `what`,
/// how many and the first bad example, before any step is taken. One sum on the happy path
/// (in the inputs' own type when it is f32 or f64: converting W's 188 MB to f64 first took
/// longer than an epoch); the element scan runs only when the sum is not finite.
pub fn check_finite_inputs(x: &Tensor, what: &str) -> Result<()> {
    let sum = match x.dtype() {
        DType::F32 => f64::from(x.sum_all()?.to_scalar::<f32>()?),
        DType::F64 => x.sum_all()?.to_scalar::<f64>()?,
        _ => x.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()?,
    };
    if sum.is_finite() {
        return Ok(());
    }
    let rows = x.dim(0).unwrap_or(1).max(1);
    let values: Vec<f64> = x.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
    let per_row = (values.len() / rows).max(1);
    let bad: Vec<usize> = values
        .iter()
        .enumerate()
        .filter(|(_, v)| !v.is_finite())
        .map(|(i, _)| i)
        .collect();
    match bad.first() {
        // Finite values whose sum overflowed: nothing to report.
        None => Ok(()),
        Some(&first) => Err(TrainError::Data(format!(
            "the {what} hold {} NaN or infinite values (first in example {}, value {}); clean or drop those \
             examples before training",
            bad.len(),
            first / per_row,
            values[first]
        ))),
    }
}

/// The median over variables of `|w_after - w_before| / |w_before|` (variables at zero skipped).
fn median_update_ratio(vars: &[candle_core::Var], before: &[Tensor]) -> Result<Option<f64>> {
    let mut ratios = Vec::with_capacity(vars.len());
    for (var, old) in vars.iter().zip(before) {
        let w = l2_norm(old)?;
        if w > 0.0 {
            ratios.push(l2_norm(&(var.as_tensor() - old)?)? / w);
        }
    }
    Ok((!ratios.is_empty()).then(|| median_in_place(&mut ratios)))
}

/// Copies of the variables' values (a `Var` shares its storage, so `clone` would not do).
fn copy_weights(vars: &[candle_core::Var]) -> Result<Vec<Tensor>> {
    Ok(vars
        .iter()
        .map(|v| v.as_tensor().copy())
        .collect::<candle_core::Result<Vec<_>>>()?)
}

/// Copies the weights and the optimizer state.
fn take_snapshot(optimizer: &dyn Optimizer) -> Result<Snapshot> {
    Ok(Snapshot {
        weights: copy_weights(optimizer.vars())?,
        optimizer: optimizer.state()?,
    })
}

/// Mean cross-entropy and accuracy of `model` on `data`, in batches of `batch_size`.
pub fn evaluate(model: &dyn Model, data: &dyn Examples, device: &Device, batch_size: usize) -> Result<Eval> {
    let (x, y) = data.to_tensors(device)?;
    evaluate_tensors(model, &Loss::CrossEntropy, &x, &y, batch_size)
}

/// Mean `loss` and, for a classification loss, the accuracy (NaN otherwise).
fn evaluate_tensors(model: &dyn Model, loss_fn: &Loss, x: &Tensor, y: &Tensor, batch_size: usize) -> Result<Eval> {
    let n = y.dim(0)?;
    let (mut loss_sum, mut correct) = (0.0f64, 0u64);
    let mut start = 0;
    while start < n {
        let len = batch_size.min(n - start);
        let (xb, yb) = (x.narrow(0, start, len)?, y.narrow(0, start, len)?);
        let logits = model.logits(&xb, false)?.detach();
        let loss = loss_fn.compute(&logits, &yb)?;
        loss_sum += f64::from(loss.to_dtype(DType::F32)?.to_scalar::<f32>()?) * len as f64;
        if loss_fn.is_classification() {
            let predicted = logits.argmax(D::Minus1)?;
            correct += u64::from(predicted.eq(&yb)?.to_dtype(DType::U32)?.sum_all()?.to_scalar::<u32>()?);
        }
        start += len;
    }
    let n = n.max(1) as f64;
    Ok(Eval {
        loss: loss_sum / n,
        accuracy: if loss_fn.is_classification() {
            correct as f64 / n
        } else {
            f64::NAN
        },
    })
}
