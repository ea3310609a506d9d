//! What `state.json` holds.

use serde::{Deserialize, Serialize};
use stride_optim::schedule::ReduceLrOnPlateau;
use stride_optim::OptimizerState;

/// Version of the checkpoint layout this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Where in the run a checkpoint was taken: training continues from here.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Position {
    /// Steps taken (skipped updates included).
    pub step: u64,
    /// Epoch to continue in, from 0.
    pub epoch: usize,
    /// Batches of that epoch already done; the shuffle is derived from (seed, epoch), so the
    /// rest of the epoch sees the same batches as an uninterrupted run.
    pub batch: usize,
    /// Sum of the finite losses of those batches, for the epoch's mean.
    pub loss_sum: f64,
    /// Number of those batches that were counted in `loss_sum`.
    pub epoch_steps: usize,
    /// Examples of those batches classified right, for the epoch's training accuracy.
    #[serde(default)]
    pub correct: u64,
    /// Examples counted in `correct`.
    #[serde(default)]
    pub seen: u64,
}

/// Name and shape of one model variable, the manifest `model.safetensors` is checked against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorEntry {
    /// Variable name in the VarMap.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
}

/// Everything of a checkpoint except the tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Layout version ([`FORMAT_VERSION`]).
    pub format: u32,
    /// The model, as the run described it (e.g. `mlp 784-128-10 relu`).
    pub model: String,
    /// The run's configuration as the caller gave it (the CLI stores its arguments).
    pub run: serde_json::Value,
    /// Shuffle seed.
    pub seed: u64,
    /// Examples per step.
    pub batch_size: usize,
    /// Where training continues.
    pub position: Position,
    /// Optimizer state with the variables in sorted-name order; buffer values live in
    /// `optimizer.safetensors` and are empty here.
    pub optimizer: OptimizerState,
    /// The plateau rule of the schedule, if it has one.
    pub plateau: Option<ReduceLrOnPlateau>,
    /// Product of observers' learning-rate requests relative to the schedule.
    pub lr_scale: f64,
    /// The rate the run started with, so a resume can tell a rate the caller changed from
    /// the run's own changes (absent in checkpoints of older builds).
    #[serde(default)]
    pub base_lr: Option<f64>,
    /// The dataset the run trains on, when the caller named it; a resume on another is refused.
    #[serde(default)]
    pub dataset: Option<String>,
    /// State of each observer that keeps one (the run monitor), in observer order.
    pub callbacks: Vec<serde_json::Value>,
    /// The loss that ranks the `best` checkpoint: validation, or training when the run
    /// evaluates nothing.
    pub val_loss: Option<f64>,
    /// Names and shapes of the model's variables.
    pub tensors: Vec<TensorEntry>,
    /// Size of `model.safetensors` in bytes.
    pub model_bytes: u64,
    /// Size of `optimizer.safetensors` in bytes.
    pub optimizer_bytes: u64,
    /// CRC-32 of `model.safetensors`, so flipped bytes of an unchanged size are caught.
    #[serde(default)]
    pub model_crc32: Option<u32>,
    /// CRC-32 of `optimizer.safetensors`.
    #[serde(default)]
    pub optimizer_crc32: Option<u32>,
}
