use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::engine::Optimizing;
use crate::error::{check, check_betas_eps, check_lr_and_decay, OptimError, Result};
use crate::hyper::Hyper;
use crate::hypers;
use crate::rule::{add_scaled, l2_grad, shared_scalar, sum_item, StepCtx, UpdateRule, VarStep};

/// Hyper-parameters of [`Prodigy`]; defaults are prodigyopt's `Prodigy` (lr 1.0, betas
/// (0.9, 0.999), beta3 sqrt(beta2), eps 1e-8, weight_decay 0 decoupled,
/// use_bias_correction false, safeguard_warmup false, d0 1e-6, d_coef 1, growth_rate
/// unbounded).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProdigyConfig {
    /// Multiplier of the estimated step size `d` (default 1.0; leave it near 1 and tune `d_coef`).
    pub lr: f64,
    /// Decay of the first moment (default 0.9; 0 turns the momentum off).
    pub beta1: f64,
    /// Decay of the second moment (default 0.999).
    pub beta2: f64,
    /// Decay of the running sums behind the estimate of `d` (default `None`: sqrt(beta2)).
    pub beta3: Option<f64>,
    /// Added to the denominator, times `d` (default 1e-8).
    pub eps: f64,
    /// Weight decay (default 0).
    pub weight_decay: f64,
    /// Decay the weights directly, AdamW-style, instead of through the gradient (default true).
    pub decouple: bool,
    /// Scale the rate by Adam's bias correction (default false).
    pub use_bias_correction: bool,
    /// Leave the rate out of the denominator's running sum, against a too-large `d` early
    /// on when training with a warmup (default false).
    pub safeguard_warmup: bool,
    /// Initial estimate of `d` (default 1e-6).
    pub d0: f64,
    /// Multiplier of every new estimate of `d`: below 1 for smaller steps (default 1).
    pub d_coef: f64,
    /// Largest factor `d` may grow by per step (default `None`: unbounded).
    pub growth_rate: Option<f64>,
}

impl Default for ProdigyConfig {
    fn default() -> Self {
        Self::with_lr(1.0)
    }
}

impl ProdigyConfig {
    /// The default config with learning rate (multiplier) `lr`.
    pub fn with_lr(lr: f64) -> Self {
        Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            beta3: None,
            eps: 1e-8,
            weight_decay: 0.0,
            decouple: true,
            use_bias_correction: false,
            safeguard_warmup: false,
            d0: 1e-6,
            d_coef: 1.0,
            growth_rate: None,
        }
    }

    fn beta3(&self) -> f64 {
        self.beta3.unwrap_or_else(|| self.beta2.sqrt())
    }

    /// Adam's bias correction at optimizer step `k` (counted from 0), when enabled.
    fn bias_correction(&self, k: f64) -> f64 {
        if self.use_bias_correction {
            (1.0 - self.beta2.powf(k + 1.0)).powf(0.5) / (1.0 - self.beta1.powf(k + 1.0))
        } else {
            1.0
        }
    }
}

/// Prodigy (Mishchenko & Defazio, 2024): Adam whose step size `d * lr` is estimated from
/// the distance travelled from the initial weights; prodigyopt's update. `lr` is a
/// multiplier (1 by default), [`crate::Optimizer::effective_learning_rate`] is `d * lr`.
pub type Prodigy = Optimizing<ProdigyConfig>;

// Optimizer-wide values, the same on every variable; `d` 0 means "not started" (d0).
const K: usize = 0;
const D: usize = 1;
const D_MAX: usize = 2;
const D_NUMERATOR: usize = 3;
const DLR: usize = 4;
const S: usize = 0;
const P0: usize = 1;
const EXP_AVG: usize = 2;
const EXP_AVG_SQ: usize = 3;

/// The rate of every group, which Prodigy and D-Adaptation need equal (or 0, frozen).
pub(crate) fn common_lr(vars: &[VarStep<'_>]) -> Result<f64> {
    let lr = vars.iter().map(|v| v.ctx.lr).fold(0.0, f64::max);
    if let Some(v) = vars.iter().find(|v| v.ctx.lr != lr && v.ctx.lr != 0.0) {
        return Err(OptimError::Groups(format!(
            "a group at rate {} next to one at {lr}: the step size is estimated for all \
             groups together, so every group needs lr_scale 1 (or 0 to freeze it)",
            v.ctx.lr
        )));
    }
    Ok(lr)
}

impl UpdateRule for ProdigyConfig {
    const KIND: &'static str = "prodigy";
    const BUFFERS: &'static [&'static str] = &["s", "p0", "exp_avg", "exp_avg_sq"];
    const SCALARS: &'static [(&'static str, f64)] = &[
        ("k", 0.0),
        ("d", 0.0),
        ("d_max", 0.0),
        ("d_numerator", 0.0),
        ("dlr", 0.0),
    ];
    const HYPER: &'static [Hyper<Self>] = hypers![lr lr, momentum beta1, real beta2, optional beta3, real eps, weight_decay weight_decay, flag decouple, flag use_bias_correction, flag safeguard_warmup, real d0, real d_coef, optional growth_rate];

    fn validate(&self) -> Result<()> {
        check_lr_and_decay(self.lr, self.weight_decay)?;
        check_betas_eps(self.beta1, self.beta2, self.eps)?;
        check("eps", self.eps, self.eps > 0.0, "expected eps > 0")?;
        if let Some(b3) = self.beta3 {
            check("beta3", b3, (0.0..1.0).contains(&b3), "expected 0 <= beta3 < 1")?;
        }
        check("d0", self.d0, self.d0 > 0.0, "expected d0 > 0")?;
        check("d_coef", self.d_coef, self.d_coef > 0.0, "expected d_coef > 0")?;
        if let Some(g) = self.growth_rate {
            check("growth_rate", g, g >= 1.0, "expected growth_rate >= 1")?;
        }
        Ok(())
    }

    fn prepare_step(&self, vars: &mut [VarStep<'_>]) -> Result<bool> {
        let lr = common_lr(vars)?;
        let (b1, b2, b3, d0) = (self.beta1, self.beta2, self.beta3(), self.d0);
        let k = shared_scalar(vars, K, 0.0);
        let started = |x: f64| if x == 0.0 { d0 } else { x };
        let d = started(shared_scalar(vars, D, 0.0));
        let d_max = started(shared_scalar(vars, D_MAX, 0.0));
        let dlr = d * lr * self.bias_correction(k);
        let d_numerator = shared_scalar(vars, D_NUMERATOR, 0.0) * b3;
        let (mut delta_numerator, mut d_denom) = (0.0, 0.0);
        for v in vars.iter_mut() {
            let Some(grad) = v.grad else {
                continue;
            };
            let g = if self.decouple {
                grad.clone()
            } else {
                l2_grad(v.ctx, v.param, grad)?
            };
            let b = &mut *v.buffers;
            if b[EXP_AVG_SQ].is_none() {
                b[S] = Some(v.param.zeros_like()?);
                b[P0] = Some(v.param.copy()?);
                if b1 > 0.0 {
                    b[EXP_AVG] = Some(v.param.zeros_like()?);
                }
                b[EXP_AVG_SQ] = Some(v.param.zeros_like()?);
            }
            if v.ctx.lr <= 0.0 {
                continue;
            }
            let (Some(s), Some(p0), Some(sq)) = (b[S].clone(), b[P0].clone(), b[EXP_AVG_SQ].clone()) else {
                return Err(OptimError::State("prodigy state lacks s, p0 or exp_avg_sq".into()));
            };
            // `d / d0` keeps the sums away from the tiny values d itself starts at.
            let dot = sum_item(&(&g * (&p0 - v.param)?)?)?;
            delta_numerator += (d / d0) * dlr * dot;
            if b1 > 0.0 {
                let m = match &b[EXP_AVG] {
                    Some(m) => m.clone(),
                    None => v.param.zeros_like()?,
                };
                b[EXP_AVG] = Some(add_scaled(&m.affine(b1, 0.0)?, d * (1.0 - b1), &g)?);
            }
            let sq = (sq.affine(b2, 0.0)? + (g.affine(d * d * (1.0 - b2), 0.0)? * &g)?)?; // addcmul order
            let alpha = if self.safeguard_warmup {
                (d / d0) * d
            } else {
                (d / d0) * dlr
            };
            let s = add_scaled(&s.affine(b3, 0.0)?, alpha, &g)?;
            d_denom += sum_item(&s.abs()?)?;
            b[EXP_AVG_SQ] = Some(sq);
            b[S] = Some(s);
        }
        // No gradient signal at all: the reference returns before stepping or counting.
        if d_denom == 0.0 {
            return Ok(false);
        }
        let global_numerator = d_numerator + delta_numerator;
        let (mut d, mut d_max) = (d, d_max);
        if lr > 0.0 {
            let d_hat = self.d_coef * global_numerator / d_denom;
            if d == d0 {
                d = d.max(d_hat);
            }
            d_max = d_max.max(d_hat);
            d = self.growth_rate.map_or(d_max, |g| d_max.min(d * g));
        }
        for v in vars.iter_mut() {
            v.scalars[K] = k + 1.0;
            v.scalars[D] = d;
            v.scalars[D_MAX] = d_max;
            v.scalars[D_NUMERATOR] = global_numerator;
            v.scalars[DLR] = dlr;
        }
        Ok(true)
    }

    fn effective_lr(&self, _t: u64, scalars: &[f64]) -> f64 {
        let d = if scalars[D] == 0.0 { self.d0 } else { scalars[D] };
        d * self.lr * self.bias_correction(scalars[K])
    }

    fn update(
        &self,
        ctx: StepCtx,
        param: &Tensor,
        grad: &Tensor,
        buffers: &mut [Option<Tensor>],
        scalars: &mut [f64],
    ) -> Result<Tensor> {
        let (d, dlr) = (scalars[D], scalars[DLR]);
        let Some(sq) = &buffers[EXP_AVG_SQ] else {
            return Err(OptimError::State("prodigy update before its state exists".into()));
        };
        let denom = sq.sqrt()?.affine(1.0, d * self.eps)?;
        let param = if self.decouple && ctx.weight_decay != 0.0 {
            add_scaled(param, -ctx.weight_decay * dlr, param)?
        } else {
            param.clone()
        };
        // addcdiv: the numerator is scaled before the division, as PyTorch's kernel does.
        let step = match &buffers[EXP_AVG] {
            Some(m) if self.beta1 > 0.0 => (m.affine(-dlr, 0.0)? / &denom)?,
            _ => {
                let g = if self.decouple {
                    grad.clone()
                } else {
                    l2_grad(ctx, &param, grad)?
                };
                (g.affine(-dlr * d, 0.0)? / &denom)?
            }
        };
        Ok((param + step)?)
    }
}
