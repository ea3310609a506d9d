//! Checkpoints on disk, written so that a crash at any moment leaves a loadable one.
//!
//! A checkpoint directory holds one directory per checkpoint plus two pointer files:
//!
//! ```text
//! runs/a/
//!   ckpt-s0000000126-e00003-b000000/   step 126, continue in epoch 3 (1-based) at batch 0;
//!                                      `state.json` keeps the 0-based index (`position.epoch` 2)
//!     model.safetensors                the model's variables, by VarMap name (loadable by candle)
//!     optimizer.safetensors            the optimizer's buffers (moments, momentum), canonical order
//!     state.json                       everything else: position, optimizer scalars, plateau,
//!                                      observer state (the monitor), run config, file sizes
//!   latest                             name of the newest complete checkpoint
//!   best                               name of the one with the lowest validation loss
//! ```
//!
//! A checkpoint is written into `.tmp-<name>-<pid>/`, every file and the directory are
//! fsynced, the directory is renamed into place and its parent fsynced; only then is
//! `latest` replaced (temp file, fsync, rename, fsync). A reader that follows `latest`
//! therefore always finds a complete checkpoint, the old one or the new one. Older
//! checkpoints beyond the last N are renamed to `.trash-*` before being deleted, and the
//! ones `latest` and `best` name are never deleted.
//!
//! Optimizer buffers are stored in the order of the variables' sorted names, not the
//! optimizer's own order, because `VarMap::all_vars()` comes from a `HashMap` whose order
//! differs between processes.

mod atomic;
mod load;
mod remap;
mod state;
mod writer;

pub use load::Checkpoint;
pub use state::{CheckpointState, Position, TensorEntry, FORMAT_VERSION};
pub use writer::{CheckpointConfig, Checkpointer, ExistingRun, LOCK_FILE};

pub(crate) use writer::SaveRequest;

/// File of the model's variables inside a checkpoint.
pub const MODEL_FILE: &str = "model.safetensors";
/// File of the optimizer's buffers inside a checkpoint.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// File of the rest of the state inside a checkpoint.
pub const STATE_FILE: &str = "state.json";
/// Pointer file naming the newest checkpoint.
pub const LATEST: &str = "latest";
/// Pointer file naming the checkpoint with the lowest validation loss.
pub const BEST: &str = "best";
