//! One step of gradient descent, shared by the training loop and the LR finder.

use std::time::{Duration, Instant};

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, D};
use stride_model::Model;
use stride_monitor::stats::median_in_place;
use stride_optim::{clip_grad_norm, grad_norm, l2_norm, Optimizer};

use super::readout::{clip_on_device, read_steps, sum_of_squares_on_device, update_norms, Launched, Ratios, Scalar};
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
    /// Leave the step's scalars on the device, to be read with other steps' in one transfer
    /// ([`read_steps`]); the step cannot then skip its update for a non-finite loss or
    /// gradient, since it does not know of it.
    pub defer_reads: bool,
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
/// rows `rows` of (`x`, `y`), with its scalars read. A non-finite loss takes neither a
/// backward pass nor an update: the caller decides what happens to the run.
pub(crate) fn train_step(
    model: &dyn Model,
    optimizer: &mut dyn Optimizer,
    data: (&Tensor, &Tensor),
    rows: &[u32],
    opts: &StepOptions<'_>,
    probe: Option<&mut SharpnessProbe>,
    times: &mut StepTimes,
) -> Result<StepOutcome> {
    let launched = launch_step(model, optimizer, data, rows, opts, probe, times)?;
    let mut read = read_steps(vec![launched])?;
    Ok(read.remove(0))
}

/// [`train_step`], leaving the scalars on the device when `opts.defer_reads` is set (then
/// every step takes its backward pass and update, whatever its loss).
pub(crate) fn launch_step(
    model: &dyn Model,
    optimizer: &mut dyn Optimizer,
    (x, y): (&Tensor, &Tensor),
    rows: &[u32],
    opts: &StepOptions<'_>,
    probe: Option<&mut SharpnessProbe>,
    times: &mut StepTimes,
) -> Result<Launched> {
    let (pass, loss, correct) = Pass::forward(model, opts.loss, x, y, rows, opts.fused, opts.defer_reads, times)?;
    let mut out = Launched {
        loss,
        correct,
        fused: matches!(pass, Pass::Fused(..)),
        grad_norm: None,
        update_ratio: None,
        sharpness: None,
        skipped_update: false,
    };
    if matches!(out.loss, Scalar::Read(l) if !l.is_finite()) {
        return Ok(out);
    }
    let backward = pass.backward(times)?;
    let tracked_norm = if opts.clip_grad_norm.is_none() && opts.track_grad_norm {
        Some(if opts.defer_reads {
            backward.norm_on_device(optimizer.vars())?
        } else {
            Scalar::Read(backward.norm(optimizer.vars())?)
        })
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
    out.grad_norm = match (opts.clip_grad_norm, opts.defer_reads) {
        (Some(max), false) => Some(Scalar::Read(clip_grad_norm(&mut grads, optimizer.vars(), max)?)),
        (Some(max), true) => Some(Scalar::OnDevice(clip_on_device(&mut grads, optimizer.vars(), max)?)),
        (None, _) => tracked_norm,
    };
    if matches!(out.grad_norm, Some(Scalar::Read(n)) if !n.is_finite()) {
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
        out.update_ratio = Some(if opts.defer_reads {
            Ratios::OnDevice(update_norms(optimizer.vars(), &before)?)
        } else {
            Ratios::Read(median_update_ratio(optimizer.vars(), &before)?)
        });
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
    /// The mean loss of rows `rows` of (`x`, `y`) and the count classified right: through
    /// the model's fused path when `fused` is set and the model has one, else through candle
    /// ops, read at once or, when `defer` is set, left on the device. Adds the time spent
    /// gathering the batch and in the forward pass to `times`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn forward(
        model: &dyn Model,
        loss_fn: &Loss,
        x: &Tensor,
        y: &Tensor,
        rows: &[u32],
        fused: bool,
        defer: bool,
        times: &mut StepTimes,
    ) -> Result<(Self, Scalar, Option<Scalar>)> {
        if fused && loss_fn.is_classification() {
            if let Some(f) = model.fused_cross_entropy(x, y, rows)? {
                times.data += f.times.data;
                times.forward += f.times.forward;
                return Ok((
                    Self::Fused(f.grads, f.grad_sq_norm, f.times.backward),
                    Scalar::Read(f64::from(f.loss)),
                    Some(Scalar::Read(f64::from(f.correct))),
                ));
            }
        }
        let started = Instant::now();
        let (xb, yb) = gather(x, y, rows)?;
        let gathered = Instant::now();
        let logits = model.logits(&xb, true)?;
        let loss = loss_fn.compute(&logits, &yb)?;
        let value = loss.detach().to_dtype(DType::F32)?;
        let value = if defer {
            Scalar::OnDevice(value)
        } else {
            Scalar::Read(f64::from(value.to_scalar::<f32>()?))
        };
        let correct = if loss_fn.is_classification() {
            let hits = logits
                .detach()
                .argmax(D::Minus1)?
                .eq(&yb)?
                .to_dtype(DType::U32)?
                .sum_all()?;
            Some(if defer {
                // Exact in f32 up to 2^24 examples a batch.
                Scalar::OnDevice(hits.to_dtype(DType::F32)?)
            } else {
                Scalar::Read(f64::from(hits.to_scalar::<u32>()?))
            })
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

    /// [`Backward::norm`] left on the device (the fused pass's is read already).
    fn norm_on_device(&self, vars: &[candle_core::Var]) -> Result<Scalar> {
        match self.sq_norm {
            Some(_) => Ok(Scalar::Read(self.norm(vars)?)),
            None => Ok(Scalar::OnDevice(sum_of_squares_on_device(&self.grads, vars)?.sqrt()?)),
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
