use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::engine::Optimizing;
use crate::error::{check, check_lr_and_decay, OptimError, Result};
use crate::hyper::Hyper;
use crate::hypers;
use crate::prodigy::common_lr;
use crate::rule::{add_scaled, l2_grad, shared_scalar, sum_item, StepCtx, UpdateRule, VarStep};

/// Hyper-parameters of [`DAdaptSgd`]; defaults are dadaptation's `DAdaptSGD` (lr 1.0,
/// momentum 0, weight_decay 0, d0 1e-6, growth_rate unbounded).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DAdaptSgdConfig {
    /// Multiplier of the estimated step size `d` (default 1.0).
    pub lr: f64,
    /// Momentum, as averaging of the iterates (default 0).
    pub momentum: f64,
    /// L2 penalty added to the gradient (default 0). A [`crate::ParamGroup`]'s own weight
    /// decay applies to its group; the reference applies the first group's to all.
    pub weight_decay: f64,
    /// Initial estimate of `d` (default 1e-6).
    pub d0: f64,
    /// Largest factor `d` may grow by per step (default `None`: unbounded).
    pub growth_rate: Option<f64>,
}

impl Default for DAdaptSgdConfig {
    fn default() -> Self {
        Self::with_lr(1.0)
    }
}

impl DAdaptSgdConfig {
    /// The default config with learning rate (multiplier) `lr`.
    pub fn with_lr(lr: f64) -> Self {
        Self {
            lr,
            momentum: 0.0,
            weight_decay: 0.0,
            d0: 1e-6,
            growth_rate: None,
        }
    }
}

/// D-Adaptation SGD (Defazio & Mishchenko, 2023), dadaptation's dual-averaging form:
/// the step `d * lr / |g0|` grows with a running lower bound `d` on the distance to the
/// solution, `|g0|` being the first gradient's norm.
pub type DAdaptSgd = Optimizing<DAdaptSgdConfig>;

// Optimizer-wide values, the same on every variable; `d` 0 means "not started" (d0).
const K: usize = 0;
const D: usize = 1;
const NUMERATOR_WEIGHTED: usize = 2;
const G0_NORM: usize = 3;
const Z: usize = 0;
const S: usize = 1;
const X0: usize = 2;

impl UpdateRule for DAdaptSgdConfig {
    const KIND: &'static str = "dadapt_sgd";
    const BUFFERS: &'static [&'static str] = &["z", "s", "x0"];
    const SCALARS: &'static [(&'static str, f64)] =
        &[("k", 0.0), ("d", 0.0), ("numerator_weighted", 0.0), ("g0_norm", 0.0)];
    const HYPER: &'static [Hyper<Self>] =
        hypers![lr lr, momentum momentum, weight_decay weight_decay, real d0, optional growth_rate];

    fn validate(&self) -> Result<()> {
        check_lr_and_decay(self.lr, self.weight_decay)?;
        check(
            "momentum",
            self.momentum,
            (0.0..1.0).contains(&self.momentum),
            "expected 0 <= momentum < 1",
        )?;
        check("d0", self.d0, self.d0 > 0.0, "expected d0 > 0")?;
        if let Some(g) = self.growth_rate {
            check("growth_rate", g, g >= 1.0, "expected growth_rate >= 1")?;
        }
        Ok(())
    }

    fn prepare_step(&self, vars: &mut [VarStep<'_>]) -> Result<bool> {
        let lr = common_lr(vars)?;
        let k = shared_scalar(vars, K, 0.0);
        let d = shared_scalar(vars, D, 0.0);
        let d = if d == 0.0 { self.d0 } else { d };
        let mut g0_norm = shared_scalar(vars, G0_NORM, 0.0);
        if k == 0.0 {
            // The reference leaves the weight decay out of this norm.
            let mut g_sq = 0.0;
            for v in vars.iter() {
                if let (Some(g), true) = (v.grad, v.ctx.lr > 0.0) {
                    g_sq += sum_item(&g.sqr()?)?;
                }
            }
            g0_norm = g_sq.sqrt();
        }
        // A zero first gradient gives no scale yet (the reference divides by zero here).
        if g0_norm == 0.0 {
            return Ok(false);
        }
        let dlr = d * lr / g0_norm;
        let mut numerator_weighted = shared_scalar(vars, NUMERATOR_WEIGHTED, 0.0);
        let mut sk_sq = 0.0;
        for v in vars.iter_mut() {
            let Some(grad) = v.grad else {
                continue;
            };
            let b = &mut *v.buffers;
            if b[S].is_none() {
                b[Z] = Some(v.param.copy()?);
                b[S] = Some(v.param.zeros_like()?);
                b[X0] = Some(v.param.copy()?);
            }
            if v.ctx.lr <= 0.0 {
                continue;
            }
            let Some(s) = &b[S] else {
                return Err(OptimError::State("dadapt_sgd state lacks s".into()));
            };
            let g = l2_grad(v.ctx, v.param, grad)?;
            numerator_weighted += dlr * sum_item(&(&g * s)?)?;
            let s = add_scaled(s, dlr, &g)?;
            sk_sq += sum_item(&s.sqr()?)?;
            b[S] = Some(s);
        }
        // No gradient signal at all (the reference divides by zero here).
        if sk_sq == 0.0 {
            return Ok(false);
        }
        let mut d = d;
        if lr > 0.0 {
            let d_hat = 2.0 * numerator_weighted / sk_sq.sqrt();
            d = d.max(self.growth_rate.map_or(d_hat, |g| d_hat.min(d * g)));
        }
        for v in vars.iter_mut() {
            v.scalars[K] = k + 1.0;
            v.scalars[D] = d;
            v.scalars[NUMERATOR_WEIGHTED] = numerator_weighted;
            v.scalars[G0_NORM] = g0_norm;
        }
        Ok(true)
    }

    fn effective_lr(&self, _t: u64, scalars: &[f64]) -> f64 {
        let d = if scalars[D] == 0.0 { self.d0 } else { scalars[D] };
        // Before the first step the gradient norm that divides the rate is not known yet.
        let g0 = if scalars[G0_NORM] > 0.0 { scalars[G0_NORM] } else { 1.0 };
        d * self.lr / g0
    }

    fn update(
        &self,
        _ctx: StepCtx,
        param: &Tensor,
        _grad: &Tensor,
        buffers: &mut [Option<Tensor>],
        _scalars: &mut [f64],
    ) -> Result<Tensor> {
        let (Some(s), Some(x0)) = (&buffers[S], &buffers[X0]) else {
            return Err(OptimError::State("dadapt_sgd update before its state exists".into()));
        };
        let z = (x0 - s)?;
        let ck = 1.0 - self.momentum;
        let updated = add_scaled(&param.affine(1.0 - ck, 0.0)?, ck, &z)?;
        buffers[Z] = Some(z);
        Ok(updated)
    }
}
