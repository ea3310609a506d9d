//! The training loop.
//!
//! [`Trainer::fit_with`] is the textbook loop: for every epoch, for every batch, take a
//! step ([`step::launch_step`]: forward, backward, clip, update), read its scalars (at once
//! on the CPU, every [`DEVICE_READ_EVERY`] steps on a GPU), tell the observers, maybe
//! checkpoint; then evaluate, tell the observers, checkpoint. Everything else lives beside
//! it: settings ([`config`]), the rate ([`lr`]), the step, reading its scalars off the
//! device ([`readout`]) and reporting them ([`settle`]), evaluation ([`eval`]), the record
//! of the run ([`history`]).

mod config;
mod eval;
mod history;
mod lr;
mod readout;
mod resume;
mod settle;
pub(crate) mod step;

use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use stride_data::{Batcher, Examples};
use stride_model::Model;
use stride_optim::{Optimizer, OptimizerState, Sgd, SgdConfig};

use crate::callback::{Action, Callback, EpochEnd, TrainBegin};
use crate::checkpoint::{Checkpointer, Position, SaveRequest};
use crate::error::{Result, TrainError};
use crate::interrupt::Interrupt;
use crate::stability::SharpnessProbe;

pub use config::{TrainerBuilder, TrainerConfig, DEVICE_READ_EVERY};
pub(crate) use eval::evaluate_tensors;
pub use eval::{check_finite_inputs, evaluate, evaluate_classes, evaluate_with, ClassReport};
pub use history::{EpochRecord, History, StopReason};
use lr::LrControl;
use settle::Taken;
use step::{copy_weights, launch_step, StepOptions, StepTimes};

/// Runs the training loop and notifies its observers.
pub struct Trainer {
    config: TrainerConfig,
    callbacks: Vec<Box<dyn Callback>>,
    lr: LrControl,
    snapshot: Option<Snapshot>,
    checkpointer: Option<Checkpointer>,
    interrupt: Option<Interrupt>,
    resume: Option<(Position, f64)>,
    /// The rate the run was started with (before any schedule or observer changed it), kept
    /// in checkpoints so a resume can tell a changed `lr` from the run's own changes.
    base_lr: Option<f64>,
    /// The device the run was told to train on, if any (else the variables').
    device: Option<Device>,
    /// Steps are being settled after a read of several: an observer's snapshot request
    /// waits until all are, since the weights are already past the step it answered.
    deferring: bool,
    /// A snapshot was asked for while deferring.
    snapshot_wanted: bool,
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

/// The run's data as tensors on the model's device, checked once.
struct RunData {
    x: Tensor,
    y: Tensor,
    test: Option<(Tensor, Tensor)>,
    train_len: usize,
}

impl RunData {
    fn load(
        optimizer: &dyn Optimizer,
        train: &dyn Examples,
        test: Option<&dyn Examples>,
        expected: Option<&Device>,
    ) -> Result<Self> {
        // The variables' own device, not `expected`: two handles on one GPU are different
        // devices to candle, and the data must share the model's.
        let device: Device = optimizer
            .vars()
            .first()
            .map(|v| v.device().clone())
            .ok_or(TrainError::NoVariables)?;
        if let Some(expected) = expected {
            let (expected, found) = (device_name(expected), device_name(&device));
            if expected != found {
                return Err(TrainError::WrongDevice { expected, found });
            }
        }
        if train.is_empty() {
            return Err(TrainError::EmptyTrainingSet);
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
        Ok(Self {
            x,
            y,
            test,
            train_len: train.len(),
        })
    }
}

/// Time spent in one epoch, by phase.
#[derive(Default)]
struct EpochClock {
    phases: StepTimes,
    callbacks: Duration,
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
        config.validate()?;
        Ok(Self {
            config,
            callbacks,
            lr: LrControl {
                scheduler: None,
                scale: 1.0,
            },
            snapshot: None,
            checkpointer: None,
            interrupt: None,
            resume: None,
            base_lr: None,
            device: None,
            deferring: false,
            snapshot_wanted: false,
        })
    }

    /// The settings.
    pub fn config(&self) -> &TrainerConfig {
        &self.config
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
    ///
    /// A run that cannot do what it was asked (a checkpoint or metrics write that fails, an
    /// observer's error) returns the error, after every observer's `on_train_end` has run,
    /// so logs are flushed. A run stopped early (an observer's request, a non-finite loss,
    /// an [`Interrupt`]) returns its history with [`History::stopped`] set.
    pub fn fit_with(
        &mut self,
        model: &dyn Model,
        optimizer: &mut dyn Optimizer,
        train: &dyn Examples,
        test: Option<&dyn Examples>,
    ) -> Result<History> {
        let data = RunData::load(optimizer, train, test, self.device.as_ref())?;
        let started = Instant::now();
        let mut history = History::default();
        let ran = self.run(model, optimizer, &data, &mut history);
        history.total_seconds = started.elapsed().as_secs_f64();
        if let Ok(stopped) = &ran {
            history.stopped = stopped.clone();
        }
        let ended = self.end(&history);
        ran?;
        ended?;
        Ok(history)
    }

    /// The loop: epochs of steps, each epoch followed by evaluation; the stop reason, if any.
    fn run(
        &mut self,
        model: &dyn Model,
        optimizer: &mut dyn Optimizer,
        data: &RunData,
        history: &mut History,
    ) -> Result<Option<StopReason>> {
        let c = self.config.clone();
        let read_every = c
            .read_every
            .unwrap_or(if data.x.device().is_cpu() { 1 } else { DEVICE_READ_EVERY });
        let batcher = Batcher::new(data.train_len, c.batch_size, c.seed)?;
        let mut probe = c
            .sharpness
            .as_ref()
            .map(|s| SharpnessProbe::new(s, &data.x, &data.y, c.seed))
            .transpose()?;
        let base_lr = *self.base_lr.get_or_insert(optimizer.learning_rate());
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
        self.lr.scale = scale;
        self.lr.apply(optimizer, self.lr.t(start.step, start.epoch));
        self.snapshot = None;
        let begin = TrainBegin {
            epochs: c.epochs,
            steps_per_epoch: batcher.num_batches(),
            train_len: data.train_len,
            lr: optimizer.learning_rate(),
        };
        let t = self.lr.t(start.step, start.epoch);
        if let Some(reason) = self
            .dispatch(optimizer, t, history, |cb| cb.on_train_begin(&begin))?
            .stop
        {
            return Ok(Some(StopReason::Requested(reason)));
        }
        let mut at = start.clone();
        for epoch in start.epoch..c.epochs {
            if epoch != start.epoch {
                at = Position {
                    step: at.step,
                    epoch,
                    ..Position::default()
                };
            }
            let batches = batcher.batches(epoch as u64);
            let epoch_start = Instant::now();
            let mut clock = EpochClock::default();
            let mut stop = None;
            let mut taken: Vec<Taken> = Vec::new();
            let every = self.checkpointer.as_ref().and_then(|k| k.config().every_steps);
            for (batch, rows) in batches.iter().enumerate().skip(at.batch) {
                // Steps taken but not yet read count as taken (they are, unless one is not finite).
                let step = at.step + taken.len() as u64;
                self.lr.apply(optimizer, self.lr.t(step, epoch));
                // Schedule-Free trains at y; epoch ends moved it to x (a no-op for the others).
                optimizer.train_point()?;
                let (lr, effective_lr) = (optimizer.learning_rate(), optimizer.effective_learning_rate());
                let opts = StepOptions {
                    loss: &c.loss,
                    fused: c.fused,
                    clip_grad_norm: c.clip_grad_norm,
                    track_grad_norm: c.track_grad_norm,
                    measure_update_ratio: c.update_ratio_every.is_some_and(|k| (step + 1) % k == 0),
                    defer_reads: read_every > 1,
                };
                let due = probe.as_mut().filter(|p| p.due(step, batch));
                let launched = launch_step(
                    model,
                    optimizer,
                    (&data.x, &data.y),
                    rows,
                    &opts,
                    due,
                    &mut clock.phases,
                )?;
                taken.push(Taken {
                    step: launched,
                    batch,
                    batches: batches.len(),
                    epoch,
                    rows: rows.len(),
                    lr,
                    effective_lr,
                });
                // Read at the epoch's end and at checkpoints, so the weights match the position saved.
                let read_now = taken.len() as u64 >= read_every
                    || batch + 1 == batches.len()
                    || every.is_some_and(|k| (step + 1) % k == 0)
                    || self.interrupted().is_some();
                if !read_now {
                    continue;
                }
                let settled = self.settle(optimizer, history, &mut at, std::mem::take(&mut taken), &mut clock)?;
                stop = settled.stop;
                if settled.rolled_back_non_finite {
                    continue;
                }
                if let Some(signal) = stop.is_none().then(|| self.interrupted()).flatten() {
                    // The step is done: save where it ended, and leave at once (no evaluation).
                    self.checkpoint(optimizer, at.clone(), None, base_lr)?;
                    return Ok(Some(StopReason::Interrupted { signal, step: at.step }));
                }
                if stop.is_some() {
                    break;
                }
                if every.is_some_and(|k| at.step % k == 0) {
                    self.checkpoint(optimizer, at.clone(), None, base_lr)?;
                }
            }
            // Evaluated, reported and checkpointed at Schedule-Free's average x (its `eval()`).
            optimizer.eval_point()?;
            let eval = match &data.test {
                Some((tx, ty)) => Some(evaluate_tensors(model, &c.loss, tx, ty, c.eval_batch_size)?),
                None => None,
            };
            let event = EpochEnd {
                epoch,
                epochs: c.epochs,
                step: at.step,
                train_loss: if at.epoch_steps == 0 {
                    f64::NAN
                } else {
                    at.loss_sum / at.epoch_steps as f64
                },
                train_accuracy: (at.seen > 0).then(|| at.correct as f64 / at.seen as f64),
                eval,
                lr: optimizer.learning_rate(),
                train_time: epoch_start.elapsed(),
            };
            history.epochs.push(EpochRecord {
                epoch,
                train_loss: event.train_loss,
                train_accuracy: event.train_accuracy,
                eval,
                lr: event.lr,
                train_seconds: event.train_time.as_secs_f64(),
                optimizer_seconds: clock.phases.update.as_secs_f64(),
                sharpness_seconds: clock.phases.sharpness.as_secs_f64(),
                callback_seconds: clock.callbacks.as_secs_f64(),
                data_seconds: clock.phases.data.as_secs_f64(),
                forward_seconds: clock.phases.forward.as_secs_f64(),
                backward_seconds: clock.phases.backward.as_secs_f64(),
            });
            // The plateau rule and the `best` checkpoint rank the held-out loss, or the training
            // loss when nothing is held out.
            let decided_on = eval.map_or(event.train_loss, |e| e.loss);
            let t = self.lr.t(at.step, epoch);
            if let Some(s) = &mut self.lr.scheduler {
                if decided_on.is_finite() {
                    s.observe_metric(t, decided_on);
                }
            }
            let asked = self.dispatch(optimizer, t, history, |cb| cb.on_epoch_end(&event))?;
            stop = stop.or(asked.stop.map(StopReason::Requested));
            if stop.is_some() {
                return Ok(stop);
            }
            let next = Position {
                step: at.step,
                epoch: epoch + 1,
                ..Position::default()
            };
            self.checkpoint(optimizer, next, Some(decided_on), base_lr)?;
            if let Some(signal) = self.interrupted() {
                return Ok(Some(StopReason::Interrupted { signal, step: at.step }));
            }
        }
        Ok(None)
    }

    /// Every observer's `on_train_end`, also after a failed run (so logs flush); the first error.
    fn end(&mut self, history: &History) -> Result<()> {
        let mut first = None;
        for cb in &mut self.callbacks {
            if let Err(e) = cb.on_train_end(history) {
                tracing::error!("{e}");
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// The signal an [`Interrupt`] carries, if one was requested.
    fn interrupted(&self) -> Option<i32> {
        self.interrupt.as_ref().and_then(Interrupt::requested)
    }

    /// Writes a checkpoint if a [`Checkpointer`] is set.
    fn checkpoint(
        &mut self,
        optimizer: &dyn Optimizer,
        position: Position,
        val_loss: Option<f64>,
        base_lr: f64,
    ) -> Result<()> {
        let callbacks = self.callbacks.iter().filter_map(|c| c.save_state()).collect();
        let plateau = self.lr.scheduler.as_ref().and_then(|s| s.plateau.clone());
        let (seed, batch_size, lr_scale) = (self.config.seed, self.config.batch_size, self.lr.scale);
        let Some(checkpointer) = self.checkpointer.as_mut() else {
            return Ok(());
        };
        checkpointer.save(SaveRequest {
            position,
            optimizer,
            plateau,
            lr_scale,
            base_lr,
            callbacks,
            val_loss,
            seed,
            batch_size,
        })?;
        Ok(())
    }

    /// Calls every observer, applies `SetLr`, `Checkpoint` and `Rollback`, and returns the
    /// first stop reason and whether a snapshot was restored; an observer's error (or a
    /// rollback that cannot be done) ends the run.
    fn dispatch(
        &mut self,
        optimizer: &mut dyn Optimizer,
        t: u64,
        history: &mut History,
        mut call: impl FnMut(&mut dyn Callback) -> Result<Action>,
    ) -> Result<Requests> {
        let mut out = Requests::default();
        for i in 0..self.callbacks.len() {
            match call(self.callbacks[i].as_mut())? {
                Action::Continue => {}
                Action::SetLr(lr) if lr.is_finite() && lr > 0.0 => self.lr.request(optimizer, lr, t),
                Action::SetLr(lr) => {
                    tracing::warn!(lr, "ignoring a request for a non-positive or non-finite learning rate")
                }
                Action::Stop(reason) => {
                    out.stop.get_or_insert(reason);
                }
                Action::Checkpoint if self.deferring => self.snapshot_wanted = true,
                Action::Checkpoint => self.snapshot = Some(take_snapshot(optimizer)?),
                Action::Rollback(lr) => {
                    let waiting = std::mem::take(&mut self.snapshot_wanted);
                    if !self.restore(optimizer)? {
                        let why = if waiting {
                            "the snapshot asked for is taken at the next read of the step values (`read_every`), \
                             after this step"
                        } else {
                            "no snapshot was taken (answer `Action::Checkpoint` first)"
                        };
                        return Err(TrainError::Observer {
                            asked: "a rollback",
                            why: why.into(),
                        });
                    }
                    if let Some(lr) = lr.filter(|lr| lr.is_finite() && *lr > 0.0) {
                        self.lr.request(optimizer, lr, t);
                    }
                    history.rollbacks.push((optimizer.steps(), lr));
                    out.rolled_back = true;
                }
            }
        }
        Ok(out)
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

/// `cpu`, `cuda:N` or `metal:N`: the name users give `--device`.
pub(crate) fn device_name(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

/// Copies the weights and the optimizer state.
fn take_snapshot(optimizer: &dyn Optimizer) -> Result<Snapshot> {
    Ok(Snapshot {
        weights: copy_weights(optimizer.vars())?,
        optimizer: optimizer.state()?,
    })
}
