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
    /// An operation the optimizer's current mode forbids, e.g. a Schedule-Free step
    /// taken at the evaluation point.
    #[error("{0}")]
    Mode(&'static str),
    /// Parameter groups an optimizer cannot combine, e.g. different rates under Prodigy.
    #[error("unsupported parameter groups: {0}")]
    Groups(String),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, OptimError>;

/// Checks `value` with `ok`, naming it in the error.
pub fn check(name: &'static str, value: f64, ok: bool, message: &'static str) -> Result<()> {
    if ok && value.is_finite() {
        Ok(())
    } else {
        Err(OptimError::Config { name, value, message })
    }
}

/// Checks the hyper-parameters every optimizer has: a rate >= 0 and a weight decay >= 0.
pub(crate) fn check_lr_and_decay(lr: f64, weight_decay: f64) -> Result<()> {
    check("lr", lr, lr >= 0.0, "expected a learning rate >= 0")?;
    check(
        "weight_decay",
        weight_decay,
        weight_decay >= 0.0,
        "expected weight decay >= 0",
    )
}

/// Checks the moment decays and epsilon of the Adam family.
pub(crate) fn check_betas_eps(beta1: f64, beta2: f64, eps: f64) -> Result<()> {
    check("beta1", beta1, (0.0..1.0).contains(&beta1), "expected 0 <= beta1 < 1")?;
    check("beta2", beta2, (0.0..1.0).contains(&beta2), "expected 0 <= beta2 < 1")?;
    check("eps", eps, eps >= 0.0, "expected eps >= 0")
}
