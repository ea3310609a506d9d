//! Observation records: one per optimizer step, one per epoch.

use serde::{Deserialize, Serialize};

/// One optimizer step. Non-finite values are data (they produce EXPLODED/DIVERGING), never panics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Step number (used for events and rollback targets).
    pub step: u64,
    /// Minibatch training loss (assumed positive; see `MonitorConfig::loss_floor`).
    pub loss: f64,
    /// Learning rate used for this step.
    pub lr: f64,
    /// Global L2 norm of the gradient before clipping.
    pub grad_norm: Option<f64>,
    /// Update/weight ratio `||dw|| / ||w||` (median over parameter groups).
    pub update_ratio: Option<f64>,
    /// Sharpness estimate (top Hessian eigenvalue; preconditioned for Adam).
    pub sharpness: Option<f64>,
    /// Stability threshold theta that goes with this sharpness (2 SGD, `2(1 + beta)` momentum,
    /// 38 Adam); `None` uses `MonitorConfig::stability_threshold`.
    pub stability_threshold: Option<f64>,
    /// Declared warmup length in steps.
    pub warmup_steps: Option<u64>,
    /// The step size the optimizer took when it differs from `lr` (Prodigy's and
    /// D-Adaptation's `d * lr`, Schedule-Free's warmed-up rate): quoted in suggestions.
    #[serde(default)]
    pub effective_lr: Option<f64>,
}

impl StepRecord {
    /// A record with only the step, the loss and the rate.
    pub fn new(step: u64, loss: f64, lr: f64) -> Self {
        StepRecord {
            step,
            loss,
            lr,
            ..Default::default()
        }
    }
}

/// One epoch: mean training loss, optional validation loss, and the rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch number (used for events and rollback targets; 1-based by convention).
    pub epoch: u64,
    /// Mean training loss of the epoch.
    pub train_loss: f64,
    /// Validation loss after the epoch.
    pub val_loss: Option<f64>,
    /// Learning rate during the epoch.
    pub lr: f64,
}

impl EpochRecord {
    /// A record without validation loss.
    pub fn new(epoch: u64, train_loss: f64, lr: f64) -> Self {
        EpochRecord {
            epoch,
            train_loss,
            val_loss: None,
            lr,
        }
    }
}

/// A loss the rules can use: not NaN, not infinite, and `|x| < 1e30`.
pub fn is_finite_loss(x: f64) -> bool {
    x.is_finite() && x.abs() < 1e30
}

/// Shifts a loss by the configured floor and keeps it strictly positive for the log transforms.
pub(crate) fn positive_loss(x: f64, floor: Option<f64>) -> f64 {
    let y = match floor {
        Some(f) => x - f + 1e-8,
        None => x,
    };
    if y > 0.0 {
        y
    } else {
        tracing::debug!(
            loss = x,
            "non-positive loss: set MonitorConfig::loss_floor; clamping to 1e-12"
        );
        1e-12
    }
}
