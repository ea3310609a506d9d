//! Stride: neural-network training on candle with the learning rate in view.
//!
//! This facade re-exports the workspace crates and holds what the `stride`
//! binary and the examples share. Most programs need only the [`prelude`].
#![deny(missing_docs)]

pub mod cli;
pub mod diagnose;
mod error;
pub mod logging;
pub mod sharpness;
pub mod tune;

pub use error::Error;
pub use stride_data as data;
pub use stride_model as model;
pub use stride_monitor as monitor;
pub use stride_optim as optim;
pub use stride_train as train;

/// The types most training programs use.
pub mod prelude {
    pub use stride_data::{Dataset, DatasetName, Examples, Resolver, Splits, TensorData};
    pub use stride_model::{reset_parameters, Activation, Architecture, Cnn, CnnSpec, Mlp, MlpSpec, Model, Network};
    pub use stride_optim::{Optimizer, Sgd, SgdConfig};
    pub use stride_train::{Action, Callback, EpochEnd, History, Loss, MetricsLog, ProgressBars, StepEnd, Trainer};
}
