//! Reading step scalars off the device in one transfer, and the step's reductions that
//! leave their results there: on a GPU every read drains the queue of launched kernels,
//! so the trainer reads many steps' losses, counts and norms at once.

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor};
use stride_monitor::stats::median_in_place;

use super::step::StepOutcome;
use crate::error::Result;
use crate::stability::SharpnessReading;

/// A scalar of a step: read already, or a 0-d or 1-d f32 tensor still on the device.
pub(crate) enum Scalar {
    Read(f64),
    OnDevice(Tensor),
}

/// The update-to-weight ratio of a step: its median, or, still on the device, the norms
/// `|w_1|, ..., |w_n|, |dw_1|, ..., |dw_n|` it is the median of.
pub(crate) enum Ratios {
    Read(Option<f64>),
    OnDevice(Tensor),
}

/// A step taken whose scalars may still be on the device.
pub(crate) struct Launched {
    pub loss: Scalar,
    pub correct: Option<Scalar>,
    pub fused: bool,
    pub grad_norm: Option<Scalar>,
    pub update_ratio: Option<Ratios>,
    pub sharpness: Option<SharpnessReading>,
    pub skipped_update: bool,
}

/// The steps' outcomes, in order, with every scalar still on the device read in one
/// transfer (none when all were read already, as on the CPU).
pub(crate) fn read_steps(steps: Vec<Launched>) -> Result<Vec<StepOutcome>> {
    let mut on_device = Vec::new();
    for s in &steps {
        let ratios = s.update_ratio.as_ref().and_then(|r| match r {
            Ratios::OnDevice(t) => Some(t),
            Ratios::Read(_) => None,
        });
        for scalar in [Some(&s.loss), s.correct.as_ref(), s.grad_norm.as_ref()]
            .into_iter()
            .flatten()
        {
            if let Scalar::OnDevice(t) = scalar {
                on_device.push(t.flatten_all()?);
            }
        }
        if let Some(t) = ratios {
            on_device.push(t.flatten_all()?);
        }
    }
    let values = if on_device.is_empty() {
        Vec::new()
    } else {
        Tensor::cat(&on_device, 0)?.to_vec1::<f32>()?
    };
    let mut read = ReadValues(values.into_iter());
    let mut out = Vec::with_capacity(steps.len());
    for s in steps {
        let loss = read.take(s.loss);
        let correct = s.correct.map(|c| read.take(c) as u32);
        let grad_norm = s.grad_norm.map(|n| read.take(n));
        let update_ratio = match s.update_ratio {
            None => None,
            Some(Ratios::Read(r)) => r,
            Some(Ratios::OnDevice(t)) => {
                let n = t.elem_count() / 2;
                let norms: Vec<f64> = (0..2 * n).map(|_| read.next()).collect();
                let mut ratios: Vec<f64> = norms[..n]
                    .iter()
                    .zip(&norms[n..])
                    .filter(|(w, _)| **w > 0.0)
                    .map(|(w, dw)| dw / w)
                    .collect();
                (!ratios.is_empty()).then(|| median_in_place(&mut ratios))
            }
        };
        out.push(StepOutcome {
            loss,
            correct,
            fused: s.fused,
            grad_norm,
            update_ratio,
            sharpness: s.sharpness,
            skipped_update: s.skipped_update,
        });
    }
    Ok(out)
}

/// The values read from the device, handed out in the order they were gathered.
struct ReadValues(std::vec::IntoIter<f32>);

impl ReadValues {
    /// The next value read (exactly as many were read as gathered, so it is always there).
    fn next(&mut self) -> f64 {
        self.0.next().map_or(f64::NAN, f64::from)
    }

    /// A scalar's value: its own if read already, else the next value read.
    fn take(&mut self, scalar: Scalar) -> f64 {
        match scalar {
            Scalar::Read(v) => v,
            Scalar::OnDevice(_) => self.next(),
        }
    }
}

/// `clip_grad_norm` without reading the norm: the scale `min(1, max / (norm + 1e-6))` is
/// formed on the device, and a non-finite norm leaves the gradients as they are (scale 1),
/// as on the CPU. Returns the norm before clipping, on the device.
pub(crate) fn clip_on_device(grads: &mut GradStore, vars: &[candle_core::Var], max_norm: f64) -> Result<Tensor> {
    let norm = sum_of_squares_on_device(grads, vars)?.sqrt()?;
    let coef = (norm.affine(1.0, 1e-6)?.recip()? * max_norm)?.minimum(1.0)?;
    // False for an infinite norm and for NaN, which compares false with everything.
    let finite = norm.lt(f64::INFINITY)?;
    let coef = finite.where_cond(&coef, &coef.ones_like()?)?;
    for var in vars {
        if let Some(g) = grads.remove(var.as_tensor()) {
            let scaled = g.broadcast_mul(&coef.to_dtype(g.dtype())?)?;
            grads.insert(var.as_tensor(), scaled);
        }
    }
    Ok(norm)
}

/// The gradients' sum of squares over `vars` as an f32 0-d tensor on their device.
pub(crate) fn sum_of_squares_on_device(grads: &GradStore, vars: &[candle_core::Var]) -> Result<Tensor> {
    let mut sum: Option<Tensor> = None;
    for var in vars {
        if let Some(g) = grads.get(var.as_tensor()) {
            let sq = g.to_dtype(DType::F32)?.sqr()?.sum_all()?;
            sum = Some(match sum {
                Some(s) => (s + sq)?,
                None => sq,
            });
        }
    }
    match sum {
        Some(s) => Ok(s),
        None => Ok(Tensor::zeros(
            (),
            DType::F32,
            vars.first().map_or(&candle_core::Device::Cpu, |v| v.device()),
        )?),
    }
}

/// `|w_before|` for every variable, then `|w_after - w_before|`, as one f32 tensor on the device.
pub(crate) fn update_norms(vars: &[candle_core::Var], before: &[Tensor]) -> Result<Tensor> {
    let norm = |t: &Tensor| -> candle_core::Result<Tensor> { t.to_dtype(DType::F32)?.sqr()?.sum_all()?.sqrt() };
    let mut norms = Vec::with_capacity(2 * vars.len());
    for old in before {
        norms.push(norm(old)?);
    }
    for (var, old) in vars.iter().zip(before) {
        norms.push(norm(&(var.as_tensor() - old)?)?);
    }
    Ok(Tensor::stack(&norms, 0)?)
}
