//! Events: things that happened at one observation, reported alongside the verdict.

use serde::{Deserialize, Serialize};

/// Something that happened at the observation a [`Diagnosis`](crate::Diagnosis) answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A loss spike that opens an episode (docs/monitor.md#what-it-reads): `value > level + 6 sigma` and
    /// `value >= 1.3 level`. Further spikes inside the open episode are not reported again.
    Spike {
        /// Step of the spike.
        step: u64,
        /// Robust loss level before the spike.
        #[serde(with = "crate::exact")]
        level_before: f64,
        /// The spiking loss.
        #[serde(with = "crate::exact")]
        value: f64,
    },
    /// The open spike episode closed: the loss is back to at most 1.1x its pre-spike level.
    SpikeRecovered {
        /// Step at which it recovered.
        step: u64,
    },
    /// A gradient-norm spike opening an episode, counted with loss spikes for the spike rate.
    GradNormSpike {
        /// Step of the spike.
        step: u64,
        /// Robust grad-norm level before the spike.
        #[serde(with = "crate::exact")]
        level_before: f64,
        /// The spiking gradient norm.
        #[serde(with = "crate::exact")]
        value: f64,
    },
    /// A sharpness estimate puts the rate above the stability limit: margin
    /// `s = lr * lambda / theta > MonitorConfig::unstable_margin` (docs/monitor.md#the-stability-warning), a warning
    /// that can come before the loss rises.
    UnstableRate {
        /// Step of the estimate.
        step: u64,
        /// The rate.
        #[serde(with = "crate::exact")]
        lr: f64,
        /// The largest stable rate `theta / lambda`.
        #[serde(with = "crate::exact")]
        limit: f64,
        /// `lr / limit`.
        #[serde(with = "crate::exact")]
        margin: f64,
    },
    /// The learning rate changed by more than 10 %: a new segment started.
    LrChange {
        /// Step (or epoch) of the change.
        at: u64,
        /// Previous rate.
        #[serde(with = "crate::exact")]
        old_lr: f64,
        /// New rate.
        #[serde(with = "crate::exact")]
        new_lr: f64,
    },
    /// Validation loss rising while training loss falls.
    Overfit {
        /// Epoch of the observation.
        epoch: u64,
        /// The validation loss.
        #[serde(with = "crate::exact")]
        val_loss: f64,
        /// Best validation loss so far.
        #[serde(with = "crate::exact")]
        best_val: f64,
        /// Epoch of the best validation loss.
        best_epoch: u64,
    },
}
