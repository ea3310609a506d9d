//! The observer interface of the training loop.

use std::time::Duration;

use crate::error::Result;

/// What an observer asks the loop to do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Go on.
    Continue,
    /// Use this learning rate from the next step on.
    SetLr(f64),
    /// Stop after this step or epoch, with a reason for the user.
    Stop(String),
    /// Keep an in-memory snapshot of the weights and optimizer state now
    /// (replacing the previous one), for a later `Rollback`.
    Checkpoint,
    /// Restore the last snapshot, then use this learning rate if one is given.
    /// Without a snapshot the run stops with an explanation.
    Rollback(Option<f64>),
}

/// Sent once before the first step.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainBegin {
    /// Epochs planned.
    pub epochs: usize,
    /// Optimizer steps per epoch.
    pub steps_per_epoch: usize,
    /// Training examples.
    pub train_len: usize,
    /// Initial learning rate.
    pub lr: f64,
}

/// Sent after every optimizer step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepEnd {
    /// Steps taken since the start of the run (1 after the first).
    pub step: u64,
    /// Epoch, from 0.
    pub epoch: usize,
    /// Batch within the epoch, from 0.
    pub batch: usize,
    /// Batches in this epoch.
    pub batches: usize,
    /// Mean loss of the batch (before the update).
    pub loss: f64,
    /// Learning rate the step used.
    pub lr: f64,
    /// The rate the step actually moved at: Prodigy's and D-Adaptation's `d * lr`,
    /// Schedule-Free's warmed-up rate; `lr` for every other optimizer.
    pub effective_lr: f64,
    /// Examples in the batch.
    pub batch_size: usize,
    /// Global L2 norm of the gradient before clipping, when the trainer computed it.
    pub grad_norm: Option<f64>,
    /// Median over variables of `|dw| / |w|` for this step, on the steps the trainer measured it.
    pub update_ratio: Option<f64>,
    /// Sharpness of the weights this step started from, on the steps the trainer estimated it.
    pub sharpness: Option<crate::SharpnessReading>,
}

/// Evaluation of a model on a held-out set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Eval {
    /// Mean loss (cross-entropy unless the trainer was given another).
    pub loss: f64,
    /// Fraction of correct argmax predictions; NaN for a loss that is not classification.
    pub accuracy: f64,
}

/// Sent after every epoch, once evaluation is done.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochEnd {
    /// Epoch, from 0.
    pub epoch: usize,
    /// Epochs planned.
    pub epochs: usize,
    /// Steps taken since the start of the run.
    pub step: u64,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f64,
    /// Fraction of the epoch's training examples classified right, as the batches were
    /// seen (before each update, like the training loss); `None` for other losses.
    pub train_accuracy: Option<f64>,
    /// Held-out loss and accuracy, when a test set was given.
    pub eval: Option<Eval>,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Wall time of the epoch's training steps (evaluation excluded).
    pub train_time: Duration,
}

/// Observes the training loop and may steer it.
///
/// Call order: `on_train_begin`, then per epoch `on_step_end` after every
/// step and `on_epoch_end` after evaluation, then `on_train_end` once, also
/// when the run stopped early. Every method has a default, so an observer
/// implements only what it needs. A `SetLr` takes effect at the next step; a
/// `Stop` ends the run after the current step (the other observers still see it).
/// A step whose loss is not finite is still reported (`loss` NaN or infinite,
/// no update applied); unless an observer answers `Rollback`, the run then
/// stops with an explanation. An observer that cannot do its job (a log that cannot be
/// written) returns an error: the run ends with it, after every `on_train_end`.
pub trait Callback {
    /// Before the first step.
    fn on_train_begin(&mut self, _info: &TrainBegin) -> Result<Action> {
        Ok(Action::Continue)
    }
    /// After each optimizer step.
    fn on_step_end(&mut self, _step: &StepEnd) -> Result<Action> {
        Ok(Action::Continue)
    }
    /// After each epoch and its evaluation.
    fn on_epoch_end(&mut self, _epoch: &EpochEnd) -> Result<Action> {
        Ok(Action::Continue)
    }
    /// Once at the end, with the run's history (also when the run failed, so files flush).
    fn on_train_end(&mut self, _history: &crate::History) -> Result<()> {
        Ok(())
    }
    /// State to keep in a checkpoint, for observers whose later actions depend on what they
    /// have seen (the run monitor); `None` (the default) for stateless ones.
    fn save_state(&self) -> Option<serde_json::Value> {
        None
    }
    /// Restores what [`Callback::save_state`] returned, before `on_train_begin` of a resumed run.
    fn restore_state(&mut self, _state: &serde_json::Value) -> Result<()> {
        Ok(())
    }
}

impl<C: Callback + ?Sized> Callback for &mut C {
    fn on_train_begin(&mut self, info: &TrainBegin) -> Result<Action> {
        (**self).on_train_begin(info)
    }
    fn on_step_end(&mut self, step: &StepEnd) -> Result<Action> {
        (**self).on_step_end(step)
    }
    fn on_epoch_end(&mut self, epoch: &EpochEnd) -> Result<Action> {
        (**self).on_epoch_end(epoch)
    }
    fn on_train_end(&mut self, history: &crate::History) -> Result<()> {
        (**self).on_train_end(history)
    }
    fn save_state(&self) -> Option<serde_json::Value> {
        (**self).save_state()
    }
    fn restore_state(&mut self, state: &serde_json::Value) -> Result<()> {
        (**self).restore_state(state)
    }
}

impl<C: Callback + ?Sized> Callback for Box<C> {
    fn on_train_begin(&mut self, info: &TrainBegin) -> Result<Action> {
        (**self).on_train_begin(info)
    }
    fn on_step_end(&mut self, step: &StepEnd) -> Result<Action> {
        (**self).on_step_end(step)
    }
    fn on_epoch_end(&mut self, epoch: &EpochEnd) -> Result<Action> {
        (**self).on_epoch_end(epoch)
    }
    fn on_train_end(&mut self, history: &crate::History) -> Result<()> {
        (**self).on_train_end(history)
    }
    fn save_state(&self) -> Option<serde_json::Value> {
        (**self).save_state()
    }
    fn restore_state(&mut self, state: &serde_json::Value) -> Result<()> {
        (**self).restore_state(state)
    }
}

/// A learning rate for people: `0.1`, `0.003`, `1e-5`, `1e20`.
pub fn format_lr(lr: f64) -> String {
    // Three significant digits: 0.1738 reads better than 0.17378008287493762.
    let r: f64 = format!("{lr:.2e}").parse().unwrap_or(lr);
    if r != 0.0 && !(1e-4..1e4).contains(&r.abs()) {
        format!("{r:e}")
    } else {
        format!("{r}")
    }
}
