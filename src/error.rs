/// Any error of a Stride pipeline, wrapping the crate errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Finding or reading data failed.
    #[error(transparent)]
    Data(#[from] stride_data::DataError),
    /// Building the model failed.
    #[error(transparent)]
    Model(#[from] stride_model::ModelError),
    /// Optimizer setup failed.
    #[error(transparent)]
    Optim(#[from] stride_optim::OptimError),
    /// A schedule spec that does not parse.
    #[error(transparent)]
    Schedule(#[from] stride_optim::schedule::ScheduleError),
    /// The monitor's configuration is invalid.
    #[error(transparent)]
    Monitor(#[from] stride_monitor::MonitorError),
    /// A loss log could not be read.
    #[error(transparent)]
    Diagnose(#[from] crate::diagnose::DiagnoseError),
    /// Training failed.
    #[error(transparent)]
    Train(#[from] stride_train::TrainError),
    /// A result that could not be encoded as JSON.
    #[error("cannot encode JSON: {0}")]
    Json(String),
    /// A command-line value that is not one of the accepted ones.
    #[error("{0}")]
    Usage(String),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}
