//! The Stride training loop.
//!
//! - [`Trainer`]: fits a [`stride_model::Model`] on a [`stride_data::Dataset`]
//!   with any [`stride_optim::Optimizer`], evaluating every epoch;
//! - [`Callback`]: observers that watch the loop and may steer it
//!   (`Continue | SetLr | Stop`);
//! - [`MetricsLog`] (CSV / JSON lines), [`ProgressBars`] and [`RunMonitor`]
//!   (run health, warnings, report, `--auto-lr` interventions), observers;
//! - [`checkpoint`]: atomic checkpoints (`latest`, `best`, last N) and exact resume.
#![deny(missing_docs)]

mod callback;
pub mod checkpoint;
mod error;
mod metrics;
mod monitor;
mod progress;
mod trainer;

pub use callback::{format_lr, Action, Callback, EpochEnd, Eval, StepEnd, TrainBegin};
pub use checkpoint::{Checkpoint, CheckpointConfig, Checkpointer};
pub use error::{CheckpointProblem, Result, TrainError};
pub use metrics::{MetricsFormat, MetricsLog};
pub use monitor::{AutoLr, RunMonitor, RunReport, TimelineEntry};
pub use progress::{multi_progress, ProgressBars};
pub use trainer::{check_finite_inputs, evaluate, EpochRecord, History, Trainer, TrainerBuilder, TrainerConfig};
