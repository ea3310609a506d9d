/// Errors of model construction.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// An MLP spec string that does not parse.
    #[error("invalid model spec {spec:?}: {message}")]
    Spec {
        /// The spec as given.
        spec: String,
        /// What was expected.
        message: String,
    },
    /// An unknown activation name.
    #[error("unknown activation {0:?}: expected relu, gelu, silu, tanh, sigmoid or leaky-relu")]
    Activation(String),
    /// An unknown built-in network name.
    #[error("unknown model {0:?}: expected mlp or cnn")]
    Kind(String),
    /// A network whose parameters, gradients and optimizer state would not fit in memory.
    #[error(
        "model {spec} has {parameters} parameters: training needs about {needed} (weights, gradients, two \
         optimizer moments), this machine has {available}; use smaller widths"
    )]
    TooLarge {
        /// The network, as described.
        spec: String,
        /// Its parameter count (saturating).
        parameters: u64,
        /// The memory training it needs, human-readable.
        needed: String,
        /// The machine's memory, human-readable.
        available: String,
    },
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, ModelError>;
