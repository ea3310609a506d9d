//! Gradient clipping over a whole `GradStore`, with PyTorch's semantics.

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, DType, Storage, Tensor, Var};

use crate::error::{check, Result};

/// The global L2 norm of the gradients of `vars` (variables without a gradient count as zero).
pub fn grad_norm(grads: &GradStore, vars: &[Var]) -> Result<f64> {
    let mut sum = 0.0f64;
    for var in vars {
        if let Some(g) = grads.get(var.as_tensor()) {
            sum += sum_of_squares(g)?;
        }
    }
    Ok(sum.sqrt())
}

/// The L2 norm of a tensor (its elements as one vector), read in place where it can be.
pub fn l2_norm(t: &Tensor) -> Result<f64> {
    Ok(sum_of_squares(t)?.sqrt())
}

/// Sum of squared elements. On the CPU with f32 data laid out densely (row- or
/// column-major: weight gradients come back transposed) it reads the buffer in
/// place, since the sum does not depend on the order; the monitor asks for the
/// norm every step, and the tensor path allocates a squared copy.
fn sum_of_squares(t: &Tensor) -> Result<f64> {
    {
        let (storage, layout) = t.storage_and_layout();
        let dense = layout.is_contiguous() || layout.is_fortran_contiguous();
        if let (Storage::Cpu(CpuStorage::F32(data)), true) = (&*storage, dense) {
            let start = layout.start_offset();
            if let Some(values) = data.get(start..start + t.elem_count()) {
                return Ok(stride_cpu::sum_of_squares(values));
            }
        }
    }
    Ok(f64::from(t.to_dtype(DType::F32)?.sqr()?.sum_all()?.to_scalar::<f32>()?))
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn in_place_and_tensor_norms_agree_on_transposed_and_offset_views() {
        let base = Tensor::arange(0f32, 24.0, &Device::Cpu)
            .unwrap()
            .reshape((4, 6))
            .unwrap();
        let expected: f64 = (0..24).map(|x| f64::from(x * x)).sum();
        for t in [base.clone(), base.t().unwrap(), base.narrow(0, 1, 2).unwrap()] {
            let slow = f64::from(t.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap());
            assert!((sum_of_squares(&t).unwrap() - slow).abs() < 1e-3, "{:?}", t.layout());
        }
        assert!((sum_of_squares(&base.t().unwrap()).unwrap() - expected).abs() < 1e-3);
        // A strided column slice is not dense: the tensor path handles it.
        let col = base.narrow(1, 2, 1).unwrap();
        let slow = f64::from(col.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap());
        assert_eq!(sum_of_squares(&col).unwrap(), slow);
    }
}
