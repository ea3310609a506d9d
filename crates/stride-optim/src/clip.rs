//! Gradient clipping over a whole `GradStore`, with PyTorch's semantics.

use candle_core::backprop::GradStore;
use candle_core::{DType, Var};

use crate::error::{check, Result};

/// The global L2 norm of the gradients of `vars` (variables without a gradient count as zero).
pub fn grad_norm(grads: &GradStore, vars: &[Var]) -> Result<f64> {
    let mut sum = 0.0f64;
    for var in vars {
        if let Some(g) = grads.get(var.as_tensor()) {
            sum += f64::from(g.to_dtype(DType::F32)?.sqr()?.sum_all()?.to_scalar::<f32>()?);
        }
    }
    Ok(sum.sqrt())
}

/// Scales every gradient by `max_norm / (norm + 1e-6)` when that is below 1, as
/// `torch.nn.utils.clip_grad_norm_` does, and returns the norm before clipping
/// (the number worth logging: it is what the monitor watches).
///
/// A non-finite norm is returned as is and the gradients are left untouched,
/// so the caller can skip the step.
pub fn clip_grad_norm(grads: &mut GradStore, vars: &[Var], max_norm: f64) -> Result<f64> {
    check("max_norm", max_norm, max_norm > 0.0, "expected a norm > 0")?;
    let norm = grad_norm(grads, vars)?;
    let coef = max_norm / (norm + 1e-6);
    if norm.is_finite() && coef < 1.0 {
        for var in vars {
            if let Some(g) = grads.remove(var.as_tensor()) {
                grads.insert(var.as_tensor(), g.affine(coef, 0.0)?);
            }
        }
    }
    Ok(norm)
}

/// Clamps every gradient element to `[-clip, clip]`, as `torch.nn.utils.clip_grad_value_` does.
pub fn clip_grad_value(grads: &mut GradStore, vars: &[Var], clip: f64) -> Result<()> {
    check("clip_value", clip, clip > 0.0, "expected a value > 0")?;
    for var in vars {
        if let Some(g) = grads.remove(var.as_tensor()) {
            grads.insert(var.as_tensor(), g.clamp(-clip, clip)?);
        }
    }
    Ok(())
}
