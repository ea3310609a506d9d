//! The Stride training loop.
//!
//! - [`Trainer`]: fits a [`stride_model::Model`] on a [`stride_data::Dataset`]
//!   with any [`stride_optim::Optimizer`], evaluating every epoch;
//! - [`Callback`]: observers that watch the loop and may steer it
//!   (`Continue | SetLr | Stop | Checkpoint | Rollback`), or end the run with an error;
//! - [`Interrupt`]: a clean stop at the next step (SIGINT/SIGTERM, or another thread);
//! - [`MetricsLog`] (CSV / JSON lines), [`ProgressBars`] and [`RunMonitor`]
//!   (run health, warnings, report, `--auto-lr` interventions), observers;
//! - [`lr_find`] (the LR range test) and [`sweep`] (the same model at several rates),
//!   with SVG plots from [`plot`];
//! - [`SharpnessEstimator`]: the top Hessian eigenvalue and the stability limit `theta / lambda`.
//! - [`checkpoint`]: atomic checkpoints (`latest`, `best`, last N) and exact resume.
#![deny(missing_docs)]

mod callback;
pub mod checkpoint;
mod early_stop;
mod error;
mod interrupt;
mod loss;
mod lr_finder;
mod metrics;
mod monitor;
pub mod plot;
mod progress;
mod rate_groups;
mod sharpness;
mod stability;
mod sweep;
mod trainer;

pub use callback::{format_lr, Action, Callback, EpochEnd, Eval, StepEnd, TrainBegin};
pub use checkpoint::{Checkpoint, CheckpointConfig, Checkpointer, ExistingRun};
pub use early_stop::EarlyStopping;
pub use error::{CheckpointProblem, Result, TrainError};
pub use interrupt::Interrupt;
pub use loss::{Loss, LossFn};
pub use lr_finder::{
    lr_find, lr_find_repeated, sgd_stability_bound, FinderStop, LrFinderConfig, LrFinderResult, RampMode,
    RepeatedFinderResult, SuggestionSpread,
};
pub use metrics::{MetricsFormat, MetricsLog};
pub use monitor::{AutoLr, RunMonitor, RunReport, StabilityEntry, TimelineEntry};
pub use progress::{colour_allowed, format_loss, hide_bars, multi_progress, use_colour, ProgressBars};
pub use rate_groups::rate_groups;
pub use sharpness::{
    adam_preconditioner, estimate_sharpness, loss_gradients, stability_threshold, Curvature, HvpScheme, Operator,
    SharpnessConfig, SharpnessEstimate, SharpnessEstimator,
};
pub use stability::{SharpnessReading, SharpnessSchedule};
pub use sweep::{decade_grid, sweep, StabilityBound, SweepConfig, SweepResult, SweepRun};
pub use trainer::{
    check_finite_inputs, evaluate, evaluate_classes, evaluate_with, ClassReport, EpochRecord, History, StopReason,
    Trainer, TrainerBuilder, TrainerConfig, DEVICE_READ_EVERY,
};
