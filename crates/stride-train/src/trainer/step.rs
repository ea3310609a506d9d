//! One step of gradient descent, shared by the training loop and the LR finder.

use std::time::{Duration, Instant};

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, D};
use stride_model::Model;
use stride_monitor::stats::median_in_place;
use stride_optim::{clip_grad_norm, grad_norm, l2_norm, Optimizer};

use crate::error::Result;
use crate::loss::Loss;
use crate::stability::{SharpnessProbe, SharpnessReading};

/// How a step is taken.
pub(crate) struct StepOptions<'a> {
    /// What is minimised.
    pub loss: &'a Loss,
    /// Take the model's fused path when it has one.
    pub fused: bool,
    /// Clip the global gradient norm to this.
    pub clip_grad_norm: Option<f64>,
    /// Report the gradient norm even without clipping.
    pub track_grad_norm: bool,
    /// Measure the update-to-weight ratio of this step (a copy of the weights).
    pub measure_update_ratio: bool,
}

/// What one step did.
pub(crate) struct StepOutcome {
    /// The batch's loss before the update.
    pub loss: f64,
    /// Examples of the batch classified right (before the update), for a classification loss.
    pub correct: Option<u32>,
    /// The gradients came from the model's fused path.
    pub fused: bool,
    /// Global gradient norm before clipping, when computed.
    pub grad_norm: Option<f64>,
    /// Median `|dw| / |w|`, when measured.
    pub update_ratio: Option<f64>,
    /// Sharpness of the weights the step started from, when the probe was due.
    pub sharpness: Option<SharpnessReading>,
    /// The gradient was not finite, so the update was skipped.
    pub skipped_update: bool,
}

/// Forward, backward, the sharpness probe when one is given, clipping and the update, on
/// rows `rows` of (`x`, `y`). A non-finite loss takes neither a backward pass nor an
/// update: the caller decides what happens to the run.
pub(crate) fn train_step(
    model: &dyn Model,
    optimizer: &mut dyn Optimizer,
    (x, y): (&Tensor, &Tensor),
    rows: &[u32],
    opts: &StepOptions<'_>,
    probe: Option<&mut SharpnessProbe>,
    times: &mut StepTimes,
) -> Result<StepOutcome> {
    let (pass, loss, correct) = Pass::forward(model, opts.loss, x, y, rows, opts.fused, times)?;
    let mut out = StepOutcome {
        loss,
        correct,
        fused: matches!(pass, Pass::Fused(..)),
        grad_norm: None,
        update_ratio: None,
        sharpness: None,
        skipped_update: false,
    };
    if !loss.is_finite() {
        return Ok(out);
    }
    let backward = pass.backward(times)?;
    let tracked_norm = if opts.clip_grad_norm.is_none() && opts.track_grad_norm {
        Some(backward.norm(optimizer.vars())?)
    } else {
        None
    };
    let Backward { mut grads, batch, .. } = backward;
    // Before clipping and the update: the estimate is of the weights this step starts from.
    if let Some(p) = probe {
        let (xb, yb) = match batch {
            Some(b) => b,
            None => gather(x, y, rows)?,
        };
        out.sharpness = p.measure(model, &*optimizer, &xb, &yb, &grads)?;
        if let Some(r) = &out.sharpness {
            times.sharpness += Duration::from_secs_f64(r.seconds);
        }
    }
    out.grad_norm = match opts.clip_grad_norm {
        Some(max) => Some(clip_grad_norm(&mut grads, optimizer.vars(), max)?),
        None => tracked_norm,
    };
    if out.grad_norm.is_some_and(|n| !n.is_finite()) {
        // A non-finite gradient would poison every weight it touches.
        out.skipped_update = true;
        return Ok(out);
    }
    let before = opts
        .measure_update_ratio
        .then(|| copy_weights(optimizer.vars()))
        .transpose()?;
    let started = Instant::now();
    optimizer.step(&grads)?;
    times.update += started.elapsed();
    if let Some(before) = before {
        out.update_ratio = median_update_ratio(optimizer.vars(), &before)?;
    }
    Ok(out)
}

/// A training step's forward pass, and how its gradients are obtained.
pub(crate) enum Pass {
    /// The model's fused path has computed them already, with their sum of squares, in this time.
    Fused(GradStore, f64, Duration),
    /// candle's autograd computes them from this loss, on this batch.
    Graph { loss: Tensor, xb: Tensor, yb: Tensor },
}

/// Seconds of a step's phases, summed over an epoch.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StepTimes {
    pub data: Duration,
    pub forward: Duration,
    pub backward: Duration,
    pub update: Duration,
    pub sharpness: Duration,
}

impl Pass {
    /// The mean cross-entropy of rows `rows` of (`x`, `y`): through the model's fused path
    /// when `fused` is set and the model has one, else through candle ops. Adds the time
    /// spent gathering the batch and in the forward pass to `times`.
    pub(crate) fn forward(
        model: &dyn Model,
        loss_fn: &Loss,
        x: &Tensor,
        y: &Tensor,
        rows: &[u32],
        fused: bool,
        times: &mut StepTimes,
    ) -> Result<(Self, f64, Option<u32>)> {
        if fused && loss_fn.is_classification() {
            if let Some(f) = model.fused_cross_entropy(x, y, rows)? {
                times.data += f.times.data;
                times.forward += f.times.forward;
                return Ok((
                    Self::Fused(f.grads, f.grad_sq_norm, f.times.backward),
                    f64::from(f.loss),
                    Some(f.correct),
                ));
            }
        }
        let started = Instant::now();
        let (xb, yb) = gather(x, y, rows)?;
        let gathered = Instant::now();
        let logits = model.logits(&xb, true)?;
        let loss = loss_fn.compute(&logits, &yb)?;
        let value = f64::from(loss.to_dtype(DType::F32)?.to_scalar::<f32>()?);
        let correct = if loss_fn.is_classification() {
            let hits = logits.detach().argmax(D::Minus1)?.eq(&yb)?.to_dtype(DType::U32)?;
            Some(hits.sum_all()?.to_scalar::<u32>()?)
        } else {
            None
        };
        times.data += gathered - started;
        times.forward += gathered.elapsed();
        Ok((Self::Graph { loss, xb, yb }, value, correct))
    }

    /// The gradients, and the batch tensors if the forward pass built them; adds the
    /// backward pass's time to `times`.
    pub(crate) fn backward(self, times: &mut StepTimes) -> Result<Backward> {
        Ok(match self {
            Self::Fused(grads, sq_norm, took) => {
                times.backward += took;
                Backward {
                    grads,
                    batch: None,
                    sq_norm: Some(sq_norm),
                }
            }
            Self::Graph { loss, xb, yb } => {
                let started = Instant::now();
                let grads = loss.backward()?;
                times.backward += started.elapsed();
                Backward {
                    grads,
                    batch: Some((xb, yb)),
                    sq_norm: None,
                }
            }
        })
    }
}

/// What a backward pass leaves.
pub(crate) struct Backward {
    pub grads: GradStore,
    /// The batch's inputs and labels, if the forward pass built them.
    pub batch: Option<(Tensor, Tensor)>,
    /// The gradients' sum of squares, if the pass formed it.
    pub sq_norm: Option<f64>,
}

impl Backward {
    /// The global gradient norm over `vars`: the fused pass's own when its gradients are
    /// exactly those of `vars`, else summed here.
    fn norm(&self, vars: &[candle_core::Var]) -> Result<f64> {
        match self.sq_norm {
            Some(sq)
                if self.grads.get_ids().count() == vars.len() && vars.iter().all(|v| self.grads.get(v).is_some()) =>
            {
                Ok(sq.sqrt())
            }
            _ => Ok(grad_norm(&self.grads, vars)?),
        }
    }
}

/// Rows `indices` of the inputs and labels; all rows in order are the tensors themselves
/// (the LR finder's batches), not a copy.
pub(crate) fn gather(x: &Tensor, y: &Tensor, indices: &[u32]) -> Result<(Tensor, Tensor)> {
    if indices.len() == x.dim(0)? && indices.iter().enumerate().all(|(i, &r)| r as usize == i) {
        return Ok((x.clone(), y.clone()));
    }
    let idx = Tensor::from_slice(indices, indices.len(), x.device())?;
    Ok((x.index_select(&idx, 0)?, y.index_select(&idx, 0)?))
}

/// The median over variables of `|w_after - w_before| / |w_before|` (variables at zero skipped).
fn median_update_ratio(vars: &[candle_core::Var], before: &[Tensor]) -> Result<Option<f64>> {
    let mut ratios = Vec::with_capacity(vars.len());
    for (var, old) in vars.iter().zip(before) {
        let w = l2_norm(old)?;
        if w > 0.0 {
            ratios.push(l2_norm(&(var.as_tensor() - old)?)? / w);
        }
    }
    Ok((!ratios.is_empty()).then(|| median_in_place(&mut ratios)))
}

/// Copies of the variables' values (a `Var` shares its storage, so `clone` would not do).
pub(crate) fn copy_weights(vars: &[candle_core::Var]) -> Result<Vec<Tensor>> {
    Ok(vars
        .iter()
        .map(|v| v.as_tensor().copy())
        .collect::<candle_core::Result<Vec<_>>>()?)
}
