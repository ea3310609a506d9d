//! What a run did.

use std::fmt;

use crate::callback::{format_lr, Eval};
use crate::stability::SharpnessReading;

/// One epoch of a finished run.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochRecord {
    /// Epoch, from 0.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Training accuracy over the epoch's batches, for a classification loss.
    pub train_accuracy: Option<f64>,
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
    pub stopped: Option<StopReason>,
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

/// Why a run ended before its planned epochs.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StopReason {
    /// An observer answered `Action::Stop` with this reason (early stopping, a target reached).
    Requested(String),
    /// The loss became NaN or infinite; no update was applied for that step.
    NonFiniteLoss {
        /// The step, from 1.
        step: u64,
        /// Its epoch, from 0.
        epoch: usize,
        /// The rate it was taken at.
        lr: f64,
        /// The loss.
        loss: f64,
    },
    /// [`crate::Interrupt::request`] was called (by a signal handler: the signal's number).
    Interrupted {
        /// The signal, e.g. 15 for SIGTERM; 0 when requested by code.
        signal: i32,
        /// Steps completed when the run stopped.
        step: u64,
    },
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Requested(reason) => f.write_str(reason),
            Self::NonFiniteLoss { step, epoch, lr, loss } => write!(
                f,
                "the loss became {loss} at step {step} (epoch {}, lr {}): the learning rate is too high for this \
                 model; lower it 10x and try again",
                epoch + 1,
                format_lr(*lr)
            ),
            Self::Interrupted { signal, step } => {
                let name = match signal {
                    2 => "SIGINT".to_string(),
                    15 => "SIGTERM".to_string(),
                    0 => "a stop request".to_string(),
                    n => format!("signal {n}"),
                };
                write!(f, "interrupted by {name} after step {step}")
            }
        }
    }
}
