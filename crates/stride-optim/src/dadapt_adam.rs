use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::engine::Optimizing;
use crate::error::{check, check_betas_eps, check_lr_and_decay, OptimError, Result};
use crate::hyper::Hyper;
use crate::hypers;
use crate::prodigy::common_lr;
use crate::rule::{add_scaled, l2_grad, shared_scalar, sum_item, StepCtx, UpdateRule, VarStep};

/// Hyper-parameters of [`DAdaptAdam`]; defaults are dadaptation's `DAdaptAdam` (lr 1.0,
/// betas (0.9, 0.999), eps 1e-8, weight_decay 0 coupled, use_bias_correction false,
/// d0 1e-6, growth_rate unbounded).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DAdaptAdamConfig {
    /// Multiplier of the estimated step size `d` (default 1.0).
    pub lr: f64,
    /// Decay of the first moment (default 0.9).
    pub beta1: f64,
    /// Decay of the second moment (default 0.999).
    pub beta2: f64,
    /// Added to the denominator (default 1e-8).
    pub eps: f64,
    /// Weight decay (default 0).
    pub weight_decay: f64,
    /// Decay the weights directly, AdamW-style, instead of through the gradient (default false).
    pub decouple: bool,
    /// Scale the rate by Adam's bias correction (default false).
    pub use_bias_correction: bool,
    /// Initial estimate of `d` (default 1e-6).
    pub d0: f64,
    /// Largest factor `d` may grow by per step (default `None`: unbounded).
    pub growth_rate: Option<f64>,
}

impl Default for DAdaptAdamConfig {
    fn default() -> Self {
        Self::with_lr(1.0)
    }
}

impl DAdaptAdamConfig {
    /// The default config with learning rate (multiplier) `lr`.
    pub fn with_lr(lr: f64) -> Self {
        Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decouple: false,
            use_bias_correction: false,
            d0: 1e-6,
            growth_rate: None,
        }
    }

    fn bias_correction(&self, k: f64) -> f64 {
        if self.use_bias_correction {
            (1.0 - self.beta2.powf(k + 1.0)).powf(0.5) / (1.0 - self.beta1.powf(k + 1.0))
        } else {
            1.0
        }
    }
}

/// D-Adaptation Adam (Defazio & Mishchenko, 2023): Adam whose step size `d * lr` is a
/// running lower bound on the distance to the solution; dadaptation's update.
pub type DAdaptAdam = Optimizing<DAdaptAdamConfig>;

// Optimizer-wide values, the same on every variable; `d` 0 means "not started" (d0).
const K: usize = 0;
const D: usize = 1;
const NUMERATOR_WEIGHTED: usize = 2;
const DLR: usize = 3;
const S: usize = 0;
const EXP_AVG: usize = 1;
const EXP_AVG_SQ: usize = 2;

impl UpdateRule for DAdaptAdamConfig {
    const KIND: &'static str = "dadapt_adam";
    const BUFFERS: &'static [&'static str] = &["s", "exp_avg", "exp_avg_sq"];
    const SCALARS: &'static [(&'static str, f64)] =
        &[("k", 0.0), ("d", 0.0), ("numerator_weighted", 0.0), ("dlr", 0.0)];
    const HYPER: &'static [Hyper<Self>] = hypers![lr lr, momentum beta1, real beta2, real eps, weight_decay weight_decay, flag decouple, flag use_bias_correction, real d0, optional growth_rate];

    fn validate(&self) -> Result<()> {
        check_lr_and_decay(self.lr, self.weight_decay)?;
        check_betas_eps(self.beta1, self.beta2, self.eps)?;
        check("eps", self.eps, self.eps > 0.0, "expected eps > 0")?;
        check("d0", self.d0, self.d0 > 0.0, "expected d0 > 0")?;
        if let Some(g) = self.growth_rate {
            check("growth_rate", g, g >= 1.0, "expected growth_rate >= 1")?;
        }
        Ok(())
    }

    fn prepare_step(&self, vars: &mut [VarStep<'_>]) -> Result<bool> {
        let lr = common_lr(vars)?;
        let (b1, b2) = (self.beta1, self.beta2);
        let sqrt_b2 = b2.powf(0.5);
        let k = shared_scalar(vars, K, 0.0);
        let d = shared_scalar(vars, D, 0.0);
        let d = if d == 0.0 { self.d0 } else { d };
        let dlr = d * lr * self.bias_correction(k);
        let (mut numerator_acum, mut sk_l1) = (0.0, 0.0);
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
                for slot in [S, EXP_AVG, EXP_AVG_SQ] {
                    b[slot] = Some(v.param.zeros_like()?);
                }
            }
            if v.ctx.lr <= 0.0 {
                continue;
            }
            let (Some(s), Some(m), Some(sq)) = (&b[S], &b[EXP_AVG], &b[EXP_AVG_SQ]) else {
                return Err(OptimError::State(
                    "dadapt_adam state lacks s, exp_avg or exp_avg_sq".into(),
                ));
            };
            let denom = sq.sqrt()?.affine(1.0, self.eps)?;
            numerator_acum += dlr * sum_item(&(&g * (s / &denom)?)?)?;
            let m = add_scaled(&m.affine(b1, 0.0)?, dlr * (1.0 - b1), &g)?;
            let sq = (sq.affine(b2, 0.0)? + (g.affine(1.0 - b2, 0.0)? * &g)?)?; // addcmul order
            let s = add_scaled(&s.affine(sqrt_b2, 0.0)?, dlr * (1.0 - sqrt_b2), &g)?;
            sk_l1 += sum_item(&s.abs()?)?;
            b[S] = Some(s);
            b[EXP_AVG] = Some(m);
            b[EXP_AVG_SQ] = Some(sq);
        }
        // No gradient signal at all: the reference returns before stepping or counting.
        if sk_l1 == 0.0 {
            return Ok(false);
        }
        let numerator_weighted =
            sqrt_b2 * shared_scalar(vars, NUMERATOR_WEIGHTED, 0.0) + (1.0 - sqrt_b2) * numerator_acum;
        let mut d = d;
        if lr > 0.0 {
            let d_hat = numerator_weighted / ((1.0 - sqrt_b2) * sk_l1);
            d = d.max(self.growth_rate.map_or(d_hat, |g| d_hat.min(d * g)));
        }
        for v in vars.iter_mut() {
            v.scalars[K] = k + 1.0;
            v.scalars[D] = d;
            v.scalars[NUMERATOR_WEIGHTED] = numerator_weighted;
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
        _grad: &Tensor,
        buffers: &mut [Option<Tensor>],
        scalars: &mut [f64],
    ) -> Result<Tensor> {
        let (Some(m), Some(sq)) = (&buffers[EXP_AVG], &buffers[EXP_AVG_SQ]) else {
            return Err(OptimError::State("dadapt_adam update before its state exists".into()));
        };
        let denom = sq.sqrt()?.affine(1.0, self.eps)?;
        // The decay uses this step's rate, from before `d` was updated.
        let param = if self.decouple && ctx.weight_decay != 0.0 {
            add_scaled(param, -ctx.weight_decay * scalars[DLR], param)?
        } else {
            param.clone()
        };
        Ok((param + (m.affine(-1.0, 0.0)? / &denom)?)?)
    }
}
