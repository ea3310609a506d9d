//! Stride: neural-network training on candle with the learning rate in view.
//!
//! This facade re-exports the workspace crates and holds what the `stride`
//! binary and the examples share. Most programs need only the [`prelude`].
#![deny(missing_docs)]

pub mod args;
pub mod cli;
pub mod coord_check;
pub mod diagnose;
mod error;
pub mod eval;
pub mod logging;
pub mod sharpness;
pub mod tune;

pub use error::Error;

/// Fails unless `value` is finite and > 0, naming the flag: rates, tolerances and loss
/// targets mean nothing otherwise.
pub fn positive(flag: &str, value: f64) -> Result<f64, Error> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(Error::Usage(format!("{flag} {value}: expected a finite number > 0")))
    }
}

/// Fails unless `value` is a fraction in [0, 1), naming the flag (a validation share).
pub fn fraction(flag: &str, value: f64) -> Result<f64, Error> {
    if (0.0..1.0).contains(&value) {
        Ok(value)
    } else {
        Err(Error::Usage(format!(
            "{flag} {value}: expected a fraction 0 <= f < 1 of the training set"
        )))
    }
}

/// Runs the tensor kernels on `threads` threads (Stride's own team and rayon's pool, which
/// candle and the GEMM kernels use); call it before training starts.
pub fn set_threads(threads: usize) -> Result<(), Error> {
    if threads == 0 {
        return Err(Error::Usage("--threads 0: expected at least 1 thread".into()));
    }
    let team = stride_cpu::set_threads(threads);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .is_ok();
    if !(team && pool) {
        tracing::warn!("--threads {threads}: the thread pools were already running; their size is unchanged");
    }
    Ok(())
}
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
