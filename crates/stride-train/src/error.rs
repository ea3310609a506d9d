use std::path::PathBuf;

/// Errors of a training run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// An invalid trainer setting.
    #[error("invalid trainer setting {name} = {value}: {message}")]
    Config {
        /// The setting.
        name: &'static str,
        /// Its value, as text.
        value: String,
        /// What is expected.
        message: &'static str,
    },
    /// The training data cannot be used with this model.
    #[error("bad training data: {0}")]
    Data(String),
    /// A metrics or report file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Dataset error.
    #[error(transparent)]
    Dataset(#[from] stride_data::DataError),
    /// Optimizer error.
    #[error(transparent)]
    Optim(#[from] stride_optim::OptimError),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, TrainError>;
