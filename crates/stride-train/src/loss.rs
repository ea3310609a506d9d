//! What the trainer minimises: cross-entropy by default, MSE, or the user's own loss.

use std::fmt;
use std::sync::Arc;

use candle_core::Tensor;

/// A loss over (model outputs, targets) returning a scalar tensor.
pub type LossFn = dyn Fn(&Tensor, &Tensor) -> candle_core::Result<Tensor> + Send + Sync;

/// The training loss.
#[derive(Clone, Default)]
pub enum Loss {
    /// Mean softmax cross-entropy over integer class targets (default); evaluation also
    /// reports accuracy, and models with a fused path may take it.
    #[default]
    CrossEntropy,
    /// Mean squared error against float targets of the outputs' shape (regression).
    Mse,
    /// The user's loss, e.g. `Loss::custom(|out, y| candle_nn::loss::binary_cross_entropy_with_logit(out, y))`.
    Custom(Arc<LossFn>),
}

impl Loss {
    /// A loss from a closure over (outputs, targets).
    pub fn custom(f: impl Fn(&Tensor, &Tensor) -> candle_core::Result<Tensor> + Send + Sync + 'static) -> Self {
        Self::Custom(Arc::new(f))
    }

    /// The loss of `outputs` against `targets`, a scalar.
    pub fn compute(&self, outputs: &Tensor, targets: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::CrossEntropy => candle_nn::loss::cross_entropy(outputs, targets),
            Self::Mse => candle_nn::loss::mse(outputs, &targets.to_dtype(outputs.dtype())?),
            Self::Custom(f) => f(outputs, targets),
        }
    }

    /// Whether targets are class indices, so accuracy means something.
    pub fn is_classification(&self) -> bool {
        matches!(self, Self::CrossEntropy)
    }
}

impl fmt::Debug for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::CrossEntropy => "CrossEntropy",
            Self::Mse => "Mse",
            Self::Custom(_) => "Custom(..)",
        })
    }
}

impl PartialEq for Loss {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Custom(a), Self::Custom(b)) => Arc::ptr_eq(a, b),
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}
