//! Sharpness: the largest eigenvalue of the loss Hessian.
//!
//! Gradient descent is stable only while `lr * lambda_max < theta` (2 for GD, `2(1 + beta)` with
//! heavy-ball momentum, 38 for Adam with beta1 = 0.9 on the preconditioned Hessian). candle has
//! no double backward, so Hessian-vector products are finite differences of gradients,
//! `Hv ~ (g(w + h v) - g(w - h v)) / 2h` (or the forward form reusing `g(w)`), and the top
//! eigenvalue comes from power iteration. The weights are restored bit-exactly afterwards.

use std::time::Instant;

use candle_core::{DType, Tensor, Var};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use stride_model::Model;
use stride_optim::{AdamConfig, OptimizerState, SgdConfig, UpdateRule};

use crate::error::{Result, TrainError};

/// How a Hessian-vector product is approximated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HvpScheme {
    /// `(g(w + h v) - g(w - h v)) / 2h`: error O(h^2), two gradients per product (default).
    #[default]
    Central,
    /// `(g(w + h v) - g(w)) / h`: error O(h), one gradient per product, `g(w)` reused.
    Forward,
}

/// Which curvature matrix the power iteration runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Curvature {
    /// The Hessian, from finite differences of gradients. For ReLU networks
    /// the gradient jumps where a unit switches, so the estimate depends on `h` (see
    /// `docs/stability.md`); smooth activations are fine.
    Hessian,
    /// The Gauss-Newton matrix `J^T H_z J` of the cross-entropy (`J` the Jacobian of the
    /// logits), from finite differences of the logits, which are continuous across ReLU
    /// switches: insensitive to `h`, positive semi-definite, and for cross-entropy networks
    /// its top eigenvalue is the Hessian's outlier (default for models).
    #[default]
    GaussNewton,
}

/// Which matrix's top eigenvalue an estimate is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    /// The loss Hessian `H` (SGD).
    #[default]
    Hessian,
    /// Adam's preconditioned Hessian `P^-1 H`, `P = diag(sqrt(v_hat) + eps)`.
    AdamPreconditioned,
}

/// Settings of the power iteration; `Default` gives the settings the tests validate.
#[derive(Debug, Clone, PartialEq)]
pub struct SharpnessConfig {
    /// Most power iterations (default 20).
    pub max_iters: usize,
    /// Stop when the estimate changes by less than this, relatively (default 1e-3).
    pub tol: f64,
    /// Finite-difference step relative to the weights: `h = rel_step * max(1, |w|)` (default 1e-3).
    pub rel_step: f64,
    /// Central or forward differences (default central).
    pub scheme: HvpScheme,
    /// Seed of the random start vector (default 0).
    pub seed: u64,
    /// Curvature matrix for model-level estimates ([`estimate_sharpness`], the trainer); the
    /// gradient-level [`SharpnessEstimator::estimate`] is always the Hessian (default Gauss-Newton).
    pub curvature: Curvature,
}

impl Default for SharpnessConfig {
    fn default() -> Self {
        Self {
            max_iters: 20,
            tol: 1e-3,
            rel_step: 1e-3,
            scheme: HvpScheme::Central,
            seed: 0,
            curvature: Curvature::GaussNewton,
        }
    }
}

impl SharpnessConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        let bad = |name, value: String, message| Err(TrainError::Config { name, value, message });
        if self.max_iters == 0 {
            return bad("sharpness.max_iters", "0".into(), "expected at least 1");
        }
        if !(self.tol.is_finite() && self.tol > 0.0) {
            return bad("sharpness.tol", self.tol.to_string(), "expected a finite tolerance > 0");
        }
        if !(self.rel_step.is_finite() && self.rel_step > 0.0) {
            return bad(
                "sharpness.rel_step",
                self.rel_step.to_string(),
                "expected a finite step > 0",
            );
        }
        Ok(())
    }
}

/// One estimate of the top eigenvalue and what it cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SharpnessEstimate {
    /// The largest eigenvalue of the operator.
    pub lambda: f64,
    /// The operator it belongs to.
    pub operator: Operator,
    /// Power iterations run (both passes when the dominant eigenvalue was negative).
    pub iterations: usize,
    /// Whether the last pass met the tolerance.
    pub converged: bool,
    /// Gradient evaluations spent.
    pub gradient_evals: usize,
    /// The finite-difference step `h` used.
    pub step: f64,
    /// Wall time of the estimate.
    pub seconds: f64,
}

/// Power iteration with finite-difference Hessian-vector products; keeps the last eigenvector
/// so the next estimate (a few hundred steps later) starts close to it.
#[derive(Debug, Clone)]
pub struct SharpnessEstimator {
    config: SharpnessConfig,
    direction: Option<Vec<Tensor>>,
}

impl SharpnessEstimator {
    /// An estimator with validated settings.
    pub fn new(config: SharpnessConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            direction: None,
        })
    }

    /// The settings.
    pub fn config(&self) -> &SharpnessConfig {
        &self.config
    }

    /// Top eigenvalue of the Hessian of the loss whose gradient `grad` computes at the current
    /// values of `vars` (one tensor per variable, in order). `g0`, the gradient at the current
    /// values, saves one evaluation in the forward scheme. `precond`, one tensor per variable
    /// holding `P^(-1/2)`, makes it the top eigenvalue of `P^(-1/2) H P^(-1/2)`, which equals
    /// that of `P^-1 H`. The variables hold exactly their old values afterwards, also on error.
    pub fn estimate(
        &mut self,
        vars: &[Var],
        grad: &mut dyn FnMut() -> Result<Vec<Tensor>>,
        g0: Option<&[Tensor]>,
        precond: Option<&[Tensor]>,
    ) -> Result<SharpnessEstimate> {
        let started = Instant::now();
        if vars.is_empty() {
            return Err(TrainError::NoVariables);
        }
        let saved: Vec<Tensor> = vars
            .iter()
            .map(|v| v.as_tensor().copy())
            .collect::<candle_core::Result<_>>()?;
        let result = self.run(vars, &saved, Source::Gradient { grad, g0 }, precond);
        // Bit-exact: `set` copies the saved values into the variables' own storage.
        for (var, old) in vars.iter().zip(&saved) {
            var.set(old)?;
        }
        let mut estimate = result?;
        estimate.operator = if precond.is_some() {
            Operator::AdamPreconditioned
        } else {
            Operator::Hessian
        };
        estimate.seconds = started.elapsed().as_secs_f64();
        Ok(estimate)
    }

    /// Top eigenvalue of the Gauss-Newton matrix of the mean cross-entropy of `model` on the
    /// inputs `x` (it does not depend on the labels), or of `P^(-1/2) G P^(-1/2)` with
    /// `precond`; the variables are restored exactly.
    pub fn estimate_gauss_newton(
        &mut self,
        model: &dyn Model,
        vars: &[Var],
        x: &Tensor,
        precond: Option<&[Tensor]>,
    ) -> Result<SharpnessEstimate> {
        let started = Instant::now();
        if vars.is_empty() {
            return Err(TrainError::NoVariables);
        }
        let saved: Vec<Tensor> = vars
            .iter()
            .map(|v| v.as_tensor().copy())
            .collect::<candle_core::Result<_>>()?;
        let result = self.run(vars, &saved, Source::GaussNewton { model, x }, precond);
        for (var, old) in vars.iter().zip(&saved) {
            var.set(old)?;
        }
        let mut estimate = result?;
        estimate.operator = if precond.is_some() {
            Operator::AdamPreconditioned
        } else {
            Operator::Hessian
        };
        estimate.seconds = started.elapsed().as_secs_f64();
        Ok(estimate)
    }

    fn run(
        &mut self,
        vars: &[Var],
        saved: &[Tensor],
        source: Source<'_>,
        precond: Option<&[Tensor]>,
    ) -> Result<SharpnessEstimate> {
        let w: Vec<Tensor> = saved
            .iter()
            .map(|t| t.to_dtype(DType::F64))
            .collect::<candle_core::Result<_>>()?;
        let h = self.config.rel_step * norm(&w)?.max(1.0);
        let precond: Option<Vec<Tensor>> = precond
            .map(|p| {
                p.iter()
                    .map(|t| t.to_dtype(DType::F64))
                    .collect::<candle_core::Result<_>>()
            })
            .transpose()?;
        let (source, g0) = match source {
            Source::Gradient { grad, g0 } => (
                Source::Gradient { grad, g0: None },
                g0.map(|g| {
                    g.iter()
                        .map(|t| t.to_dtype(DType::F64))
                        .collect::<candle_core::Result<_>>()
                })
                .transpose()?,
            ),
            other => (other, None),
        };
        let mut hvp = Hvp {
            vars,
            w: &w,
            saved,
            h,
            scheme: self.config.scheme,
            g0,
            precond: precond.as_deref(),
            source,
            evals: 0,
        };
        let start = match self.direction.take().filter(|d| same_shapes(d, &w)) {
            Some(d) => d,
            None => random_direction(&w, self.config.seed)?,
        };
        let first = power_iteration(&mut hvp, start, 0.0, &self.config)?;
        let (lambda, iterations, converged, direction) = if first.lambda < 0.0 {
            // The dominant eigenvalue is negative: H - lambda_1 I has only eigenvalues >= 0,
            // and its largest is lambda_max - lambda_1.
            let start = random_direction(&w, self.config.seed.wrapping_add(1))?;
            let second = power_iteration(&mut hvp, start, first.lambda, &self.config)?;
            (
                second.lambda + first.lambda,
                first.iterations + second.iterations,
                second.converged,
                second.direction,
            )
        } else {
            (first.lambda, first.iterations, first.converged, first.direction)
        };
        if !lambda.is_finite() {
            return Err(TrainError::Sharpness(format!(
                "the estimate is {lambda} (finite-difference step h = {h:e}); the loss or its \
                 gradient is not finite near the current weights"
            )));
        }
        self.direction = Some(direction);
        Ok(SharpnessEstimate {
            lambda,
            operator: Operator::Hessian,
            iterations,
            converged,
            gradient_evals: hvp.evals,
            step: h,
            seconds: 0.0,
        })
    }
}

/// What the curvature products are computed from.
enum Source<'a> {
    /// A gradient function (and possibly the gradient at `w`): the Hessian.
    Gradient {
        grad: &'a mut dyn FnMut() -> Result<Vec<Tensor>>,
        g0: Option<&'a [Tensor]>,
    },
    /// A model and its inputs: the cross-entropy's Gauss-Newton matrix (independent of the labels).
    GaussNewton { model: &'a dyn Model, x: &'a Tensor },
}

/// Curvature-vector products by finite differences around the saved weights `w`.
struct Hvp<'a, 's> {
    vars: &'a [Var],
    w: &'a [Tensor],
    saved: &'a [Tensor],
    h: f64,
    scheme: HvpScheme,
    g0: Option<Vec<Tensor>>,
    precond: Option<&'a [Tensor]>,
    source: Source<'s>,
    evals: usize,
}

impl Hvp<'_, '_> {
    fn set_at(&self, d: &[Tensor], t: f64) -> Result<()> {
        for ((var, w), d) in self.vars.iter().zip(self.w).zip(d) {
            var.set(&(w + d.affine(t, 0.0)?)?.to_dtype(var.dtype())?)?;
        }
        Ok(())
    }

    /// The gradient at `w + t * d`, in f64.
    fn grad_at(&mut self, d: &[Tensor], t: f64) -> Result<Vec<Tensor>> {
        self.set_at(d, t)?;
        self.evals += 1;
        let Source::Gradient { grad, .. } = &mut self.source else {
            return Err(TrainError::Sharpness("no gradient function".into()));
        };
        let g = grad()?;
        if g.len() != self.vars.len() {
            return Err(TrainError::Sharpness(format!(
                "the gradient function returned {} tensors for {} variables",
                g.len(),
                self.vars.len()
            )));
        }
        Ok(g.iter()
            .map(|t| t.to_dtype(DType::F64))
            .collect::<candle_core::Result<_>>()?)
    }

    /// `G d = J^T H_z J d` for a unit vector `d`: `J d` by central differences of the logits,
    /// `H_z` of the mean cross-entropy in closed form (`(diag(p) - p p^T) / B` per example),
    /// `J^T` by one backward pass at `w`.
    fn gauss_newton(&mut self, d: &[Tensor], model: &dyn Model, x: &Tensor) -> Result<Vec<Tensor>> {
        self.set_at(d, self.h)?;
        let plus = model.logits(x, false)?.detach().to_dtype(DType::F64)?;
        self.set_at(d, -self.h)?;
        let minus = model.logits(x, false)?.detach().to_dtype(DType::F64)?;
        for (var, old) in self.vars.iter().zip(self.saved) {
            var.set(old)?;
        }
        let jd = ((plus - minus)? * (0.5 / self.h))?;
        let z = model.logits(x, false)?;
        let p = candle_nn::ops::softmax_last_dim(&z.detach().to_dtype(DType::F64)?)?;
        let pj = (&p * &jd)?;
        let batch = z.dim(0)?.max(1) as f64;
        let r = ((&pj - p.broadcast_mul(&pj.sum_keepdim(1)?)?)? * (1.0 / batch))?;
        let grads = (&z * r.to_dtype(z.dtype())?.detach())?.sum_all()?.backward()?;
        self.evals += 2;
        Ok(self
            .vars
            .iter()
            .map(|v| match grads.get(v.as_tensor()) {
                Some(g) => g.to_dtype(DType::F64),
                None => v.as_tensor().zeros_like()?.to_dtype(DType::F64),
            })
            .collect::<candle_core::Result<_>>()?)
    }

    /// `H d` (or `G d`) for a unit vector `d`.
    fn hessian(&mut self, d: &[Tensor]) -> Result<Vec<Tensor>> {
        if let Source::GaussNewton { model, x, .. } = self.source {
            return self.gauss_newton(d, model, x);
        }
        let plus = self.grad_at(d, self.h)?;
        let (minus, scale) = match self.scheme {
            HvpScheme::Central => (self.grad_at(d, -self.h)?, 0.5 / self.h),
            HvpScheme::Forward => {
                if self.g0.is_none() {
                    self.g0 = Some(self.grad_at(d, 0.0)?);
                }
                (self.g0.clone().unwrap_or_default(), 1.0 / self.h)
            }
        };
        Ok(plus
            .iter()
            .zip(&minus)
            .map(|(p, m)| (p - m)?.affine(scale, 0.0))
            .collect::<candle_core::Result<_>>()?)
    }

    /// `A v - shift v` with `A = P^(-1/2) H P^(-1/2)` (or `H`), for a unit vector `v`.
    fn apply(&mut self, v: &[Tensor], shift: f64) -> Result<Vec<Tensor>> {
        let av = match self.precond {
            None => self.hessian(v)?,
            Some(p) => {
                let u = mul(p, v)?;
                let len = norm(&u)?;
                if len == 0.0 {
                    return Ok(v.iter().map(Tensor::zeros_like).collect::<candle_core::Result<_>>()?);
                }
                let hu = self.hessian(&scale(&u, 1.0 / len)?)?;
                mul(p, &scale(&hu, len)?)?
            }
        };
        if shift == 0.0 {
            return Ok(av);
        }
        Ok(av
            .iter()
            .zip(v)
            .map(|(a, v)| a - v.affine(shift, 0.0)?)
            .collect::<candle_core::Result<_>>()?)
    }
}

struct Pass {
    lambda: f64,
    iterations: usize,
    converged: bool,
    direction: Vec<Tensor>,
}

/// Power iteration on `A - shift I` from `v`; the Rayleigh quotient is the estimate.
fn power_iteration(hvp: &mut Hvp<'_, '_>, v: Vec<Tensor>, shift: f64, config: &SharpnessConfig) -> Result<Pass> {
    let mut v = v;
    let mut prev: Option<f64> = None;
    let mut lambda = f64::NAN;
    for k in 1..=config.max_iters {
        let av = hvp.apply(&v, shift)?;
        lambda = dot(&v, &av)?;
        let len = norm(&av)?;
        if !(len.is_finite() && len > 0.0) {
            return Ok(Pass {
                lambda: if len == 0.0 { 0.0 } else { f64::NAN },
                iterations: k,
                converged: len == 0.0,
                direction: v,
            });
        }
        v = scale(&av, 1.0 / len)?;
        if let Some(p) = prev {
            if (lambda - p).abs() / (p.abs() + 1e-12) < config.tol {
                return Ok(Pass {
                    lambda,
                    iterations: k,
                    converged: true,
                    direction: v,
                });
            }
        }
        prev = Some(lambda);
    }
    Ok(Pass {
        lambda,
        iterations: config.max_iters,
        converged: false,
        direction: v,
    })
}

fn dot(a: &[Tensor], b: &[Tensor]) -> Result<f64> {
    let mut s = 0.0;
    for (a, b) in a.iter().zip(b) {
        s += (a * b)?.sum_all()?.to_scalar::<f64>()?;
    }
    Ok(s)
}

fn norm(a: &[Tensor]) -> Result<f64> {
    Ok(dot(a, a)?.sqrt())
}

fn scale(a: &[Tensor], s: f64) -> Result<Vec<Tensor>> {
    Ok(a.iter().map(|t| t.affine(s, 0.0)).collect::<candle_core::Result<_>>()?)
}

fn mul(a: &[Tensor], b: &[Tensor]) -> Result<Vec<Tensor>> {
    Ok(a.iter()
        .zip(b)
        .map(|(a, b)| a * b)
        .collect::<candle_core::Result<_>>()?)
}

fn same_shapes(a: &[Tensor], b: &[Tensor]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.dims() == b.dims())
}

/// A seeded unit normal vector. Each variable's part is seeded from the seed, its shape and
/// its first values, so the vector does not depend on the order of the variables (a `VarMap`
/// lists them in hash order).
fn random_direction(w: &[Tensor], seed: u64) -> Result<Vec<Tensor>> {
    let mut parts = Vec::with_capacity(w.len());
    for t in w {
        let n = t.elem_count();
        let head: Vec<f64> = t.flatten_all()?.narrow(0, 0, n.min(16))?.to_vec1()?;
        let mut key = seed ^ 0x9e37_79b9_7f4a_7c15;
        for x in t
            .dims()
            .iter()
            .map(|&d| d as u64)
            .chain(head.iter().map(|x| x.to_bits()))
        {
            key = (key ^ x).wrapping_mul(0x0100_0000_01b3).rotate_left(17);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(key);
        let values: Vec<f64> = (0..n).map(|_| standard_normal(&mut rng)).collect();
        parts.push(Tensor::from_vec(values, t.shape(), t.device())?);
    }
    let len = norm(&parts)?;
    scale(&parts, 1.0 / len.max(f64::MIN_POSITIVE))
}

/// Box-Muller from two 53-bit uniforms.
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u = |rng: &mut ChaCha8Rng| ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let (u1, u2) = (u(rng), u(rng));
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Gradients of the mean cross-entropy of `model` on `(x, y)` at the current weights, in eval
/// mode (no dropout), one per variable (zeros for a variable the loss does not reach).
pub fn loss_gradients(model: &dyn Model, vars: &[Var], x: &Tensor, y: &Tensor) -> Result<Vec<Tensor>> {
    let loss = candle_nn::loss::cross_entropy(&model.logits(x, false)?, y)?;
    let grads = loss.backward()?;
    Ok(vars
        .iter()
        .map(|v| match grads.get(v.as_tensor()) {
            Some(g) => Ok(g.clone()),
            None => v.as_tensor().zeros_like(),
        })
        .collect::<candle_core::Result<_>>()?)
}

/// Top Hessian eigenvalue of the mean cross-entropy of `model` on the batch `(x, y)` (the
/// call the LR sweep and `stride sharpness` make); `vars` are the model's variables, restored
/// exactly afterwards.
pub fn estimate_sharpness(
    model: &dyn Model,
    vars: &[Var],
    x: &Tensor,
    y: &Tensor,
    config: &SharpnessConfig,
) -> Result<SharpnessEstimate> {
    let mut estimator = SharpnessEstimator::new(config.clone())?;
    match config.curvature {
        Curvature::GaussNewton => estimator.estimate_gauss_newton(model, vars, x, None),
        Curvature::Hessian => estimator.estimate(vars, &mut || loss_gradients(model, vars, x, y), None, None),
    }
}

/// The stability threshold theta of `lr * lambda` for an optimizer's exported state, and the
/// operator lambda must be measured on: `2(1 + momentum)` for SGD (2 without momentum),
/// `(2 + 2 beta1) / (1 - beta1)` on the preconditioned Hessian for Adam/AdamW (38 at 0.9).
/// Other optimizers get the plain-GD bound 2, a rough guide only.
pub fn stability_threshold(state: &OptimizerState) -> (f64, Operator) {
    // Read back through each rule's own saved-state reader, so a renamed key fails to
    // compile here instead of silently falling back to a default.
    if state.kind == SgdConfig::KIND {
        let momentum = SgdConfig::from_hyper(state.lr, &state.hyper).map_or(0.0, |c| c.momentum);
        (2.0 * (1.0 + momentum), Operator::Hessian)
    } else if state.kind == AdamConfig::KIND {
        let b1 = AdamConfig::from_hyper(state.lr, &state.hyper).map_or(0.9, |c| c.beta1);
        ((2.0 + 2.0 * b1) / (1.0 - b1), Operator::AdamPreconditioned)
    } else {
        (2.0, Operator::Hessian)
    }
}

/// Adam's `P^(-1/2)`, `P = diag(sqrt(v_hat) + eps)`, per variable, for the update about to
/// be made: the second moments of `state` advanced by the step's gradients `grads` when given
/// (so the first step, with no moments yet, has a preconditioner). `None` when the state is
/// not Adam's or holds no moments and no gradients are given.
pub fn adam_preconditioner(
    state: &OptimizerState,
    vars: &[Var],
    grads: Option<&[Tensor]>,
) -> Result<Option<Vec<Tensor>>> {
    if state.kind != AdamConfig::KIND {
        return Ok(None);
    }
    let adam = AdamConfig::from_hyper(state.lr, &state.hyper)
        .map_err(|e| TrainError::Sharpness(format!("the adam state: {e}")))?;
    let (beta2, eps, amsgrad) = (adam.beta2, adam.eps, adam.amsgrad);
    let mut out = Vec::with_capacity(vars.len());
    for (i, var) in vars.iter().enumerate() {
        let like = var.as_tensor().to_dtype(DType::F64)?;
        let find = |name: &str| state.buffers.iter().find(|b| b.name == format!("{name}.{i}"));
        let v = find("exp_avg_sq").map(|b| b.to_tensor(&like)).transpose()?;
        let mut t = state.param_steps.get(i).copied().unwrap_or(0);
        let v = match (v, grads.map(|g| g.get(i))) {
            (v, Some(Some(g))) => {
                let g = g.to_dtype(DType::F64)?;
                let prev = v.unwrap_or(like.zeros_like()?);
                t += 1;
                let next = (prev.affine(beta2, 0.0)? + g.sqr()?.affine(1.0 - beta2, 0.0)?)?;
                match find("max_exp_avg_sq").map(|b| b.to_tensor(&like)).transpose()? {
                    Some(m) if amsgrad => m.maximum(&next)?,
                    _ => next,
                }
            }
            (Some(v), _) if t > 0 => match find("max_exp_avg_sq").map(|b| b.to_tensor(&like)).transpose()? {
                Some(m) if amsgrad => m,
                _ => v,
            },
            _ => return Ok(None),
        };
        let bc2 = 1.0 - beta2.powi(i32::try_from(t).unwrap_or(i32::MAX));
        let p = (v.affine(1.0 / bc2, 0.0)?.sqrt()? + eps)?;
        out.push(p.sqrt()?.recip()?);
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// `f(w) = 1/2 w^T diag(d) w`, whose Hessian is `diag(d)`.
    fn quadratic(d: &[f64], w0: &[f64], dtype: DType) -> (Var, Tensor) {
        let w = Var::from_tensor(&Tensor::new(w0, &Device::Cpu).unwrap().to_dtype(dtype).unwrap()).unwrap();
        let diag = Tensor::new(d, &Device::Cpu).unwrap().to_dtype(dtype).unwrap();
        (w, diag)
    }

    fn quadratic_grad(w: &Var, diag: &Tensor) -> Result<Vec<Tensor>> {
        let loss = ((w.as_tensor().sqr()? * diag)?.sum_all()? * 0.5)?;
        let grads = loss.backward()?;
        Ok(vec![grads.get(w.as_tensor()).cloned().unwrap_or(w.zeros_like()?)])
    }

    #[test]
    fn u3_quadratic_top_eigenvalue_is_10() {
        // f(w) = 1/2 w^T diag(10, 3, 1) w at w0 = (1, 1, 1).
        for dtype in [DType::F32, DType::F64] {
            for scheme in [HvpScheme::Central, HvpScheme::Forward] {
                let (w, diag) = quadratic(&[10.0, 3.0, 1.0], &[1.0, 1.0, 1.0], dtype);
                let mut est = SharpnessEstimator::new(SharpnessConfig {
                    scheme,
                    ..SharpnessConfig::default()
                })
                .unwrap();
                let vars = [w.clone()];
                let e = est
                    .estimate(&vars, &mut || quadratic_grad(&w, &diag), None, None)
                    .unwrap();
                assert!((e.lambda - 10.0).abs() < 0.01, "{dtype:?} {scheme:?}: {e:?}");
                assert!(e.converged, "{e:?}");
                // U3's margins: s = lr * lambda / 2.
                assert!((0.25 * e.lambda / 2.0 - 1.25).abs() < 0.002);
                assert!((0.15 * e.lambda / 2.0 - 0.75).abs() < 0.002);
            }
        }
    }

    #[test]
    fn negative_dominant_eigenvalue_still_gives_the_largest() {
        // Eigenvalues -20, 3, 1: power iteration alone would report -20.
        let (w, diag) = quadratic(&[-20.0, 3.0, 1.0], &[0.5, -1.0, 2.0], DType::F64);
        let mut est = SharpnessEstimator::new(SharpnessConfig {
            max_iters: 200,
            tol: 1e-9,
            ..SharpnessConfig::default()
        })
        .unwrap();
        let vars = [w.clone()];
        let e = est
            .estimate(&vars, &mut || quadratic_grad(&w, &diag), None, None)
            .unwrap();
        assert!((e.lambda - 3.0).abs() < 0.01, "{e:?}");
    }

    #[test]
    fn preconditioned_operator_is_p_inverse_h() {
        // P^(-1/2) = (1, 0.5, 2): P^-1 H = diag(10, 3/4, 4) -> 10; with (0.2, 1, 1): diag(0.4, 3, 1) -> 3.
        let (w, diag) = quadratic(&[10.0, 3.0, 1.0], &[1.0, 1.0, 1.0], DType::F64);
        let vars = [w.clone()];
        for (p, expected) in [([1.0, 0.5, 2.0], 10.0), ([0.2, 1.0, 1.0], 3.0)] {
            let p = [Tensor::new(&p, &Device::Cpu).unwrap()];
            let mut est = SharpnessEstimator::new(SharpnessConfig {
                max_iters: 100,
                tol: 1e-8,
                ..SharpnessConfig::default()
            })
            .unwrap();
            let e = est
                .estimate(&vars, &mut || quadratic_grad(&w, &diag), None, Some(&p))
                .unwrap();
            assert!((e.lambda - expected).abs() < 1e-3, "{e:?}");
            assert_eq!(e.operator, Operator::AdamPreconditioned);
        }
    }

    #[test]
    fn weights_are_restored_bit_exactly() {
        let w0 = [0.1f64, -0.7, 3.3];
        let (w, diag) = quadratic(&[10.0, 3.0, 1.0], &w0, DType::F32);
        let before: Vec<f32> = w.as_tensor().to_vec1().unwrap();
        let vars = [w.clone()];
        let mut est = SharpnessEstimator::new(SharpnessConfig::default()).unwrap();
        est.estimate(&vars, &mut || quadratic_grad(&w, &diag), None, None)
            .unwrap();
        let after: Vec<f32> = w.as_tensor().to_vec1().unwrap();
        assert_eq!(
            before.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            after.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        // Also when the gradient function fails half-way.
        let mut calls = 0;
        let err = est.estimate(
            &vars,
            &mut || {
                calls += 1;
                if calls > 3 {
                    Err(TrainError::Sharpness("boom".into()))
                } else {
                    quadratic_grad(&w, &diag)
                }
            },
            None,
            None,
        );
        assert!(err.is_err());
        let after: Vec<f32> = w.as_tensor().to_vec1().unwrap();
        assert_eq!(before, after);
    }

    #[test]
    fn forward_scheme_reuses_the_given_gradient() {
        let (w, diag) = quadratic(&[10.0, 3.0, 1.0], &[1.0, 1.0, 1.0], DType::F64);
        let vars = [w.clone()];
        let g0 = quadratic_grad(&w, &diag).unwrap();
        let config = SharpnessConfig {
            scheme: HvpScheme::Forward,
            ..SharpnessConfig::default()
        };
        let mut with = SharpnessEstimator::new(config.clone()).unwrap();
        let a = with
            .estimate(&vars, &mut || quadratic_grad(&w, &diag), Some(&g0), None)
            .unwrap();
        let mut without = SharpnessEstimator::new(config).unwrap();
        let b = without
            .estimate(&vars, &mut || quadratic_grad(&w, &diag), None, None)
            .unwrap();
        assert_eq!(a.gradient_evals, a.iterations);
        assert_eq!(b.gradient_evals, b.iterations + 1);
        assert!((a.lambda - 10.0).abs() < 0.01 && (b.lambda - 10.0).abs() < 0.01);
    }

    #[test]
    fn bad_settings_name_the_field() {
        let e = SharpnessEstimator::new(SharpnessConfig {
            rel_step: -1.0,
            ..SharpnessConfig::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("sharpness.rel_step"), "{e}");
    }
}
