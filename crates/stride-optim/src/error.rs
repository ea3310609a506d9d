/// Errors of optimizer construction and state handling.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OptimError {
    /// A hyper-parameter outside its valid range.
    #[error("invalid {name} = {value}: {message}")]
    Config {
        /// The hyper-parameter.
        name: &'static str,
        /// Its value.
        value: f64,
        /// What is expected.
        message: &'static str,
    },
    /// An unknown name (optimizer, schedule).
    #[error("unknown {0}")]
    Unknown(String),
    /// A saved state that does not fit this optimizer.
    #[error("cannot load optimizer state: {0}")]
    State(String),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, OptimError>;

/// Checks `value` with `ok`, naming it in the error.
pub(crate) fn check(name: &'static str, value: f64, ok: bool, message: &'static str) -> Result<()> {
    if ok && value.is_finite() {
        Ok(())
    } else {
        Err(OptimError::Config { name, value, message })
    }
}
