use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::engine::Optimizing;
use crate::error::{check_lr_and_decay, Result};
use crate::hyper::Hyper;
use crate::hypers;
use crate::rule::{add_scaled, lerp, StepCtx, UpdateRule, VarStep};
use crate::schedule_free_adamw::{averaging, check_averaging, require_train_point, switch, warmup, SF_SCALARS};

/// Hyper-parameters of [`ScheduleFreeSgd`]; defaults are `schedulefree.SGDScheduleFree`
/// (lr 1.0, momentum 0.9, weight_decay 0, warmup_steps 0, r 0, weight_lr_power 2).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScheduleFreeSgdConfig {
    /// Learning rate (default 1.0, typically 10-50x what SGD with a schedule wants).
    pub lr: f64,
    /// Interpolation between the average x and the iterate z that gradients are taken at (default 0.9).
    pub momentum: f64,
    /// L2 penalty added to the gradient at y (default 0).
    pub weight_decay: f64,
    /// Updates over which the rate rises linearly to `lr` (default 0).
    pub warmup_steps: u64,
    /// Polynomial weighting of the average, step^r (default 0).
    pub r: f64,
    /// Weight of each step in the average, the largest rate so far to this power (default 2).
    pub weight_lr_power: f64,
}

impl Default for ScheduleFreeSgdConfig {
    fn default() -> Self {
        Self::with_lr(1.0)
    }
}

impl ScheduleFreeSgdConfig {
    /// The default config with learning rate `lr`.
    pub fn with_lr(lr: f64) -> Self {
        Self {
            lr,
            momentum: 0.9,
            weight_decay: 0.0,
            warmup_steps: 0,
            r: 0.0,
            weight_lr_power: 2.0,
        }
    }
}

/// Schedule-Free SGD (Defazio et al., 2024), the `schedulefree` package's update; like
/// [`crate::ScheduleFreeAdamW`] it trains at y and should be evaluated at the average x.
pub type ScheduleFreeSgd = Optimizing<ScheduleFreeSgdConfig>;

impl UpdateRule for ScheduleFreeSgdConfig {
    const KIND: &'static str = "schedule_free_sgd";
    const BUFFERS: &'static [&'static str] = &["z"];
    const SCALARS: &'static [(&'static str, f64)] = SF_SCALARS;
    const HYPER: &'static [Hyper<Self>] = hypers![lr lr, fixed_momentum momentum, weight_decay weight_decay, count warmup_steps, real r, real weight_lr_power];

    // No set_momentum: x is recovered from y and z through it.

    fn validate(&self) -> Result<()> {
        check_lr_and_decay(self.lr, self.weight_decay)?;
        check_averaging(self.momentum, self.r, self.weight_lr_power)
    }

    fn prepare_step(&self, vars: &mut [VarStep<'_>]) -> Result<bool> {
        require_train_point(vars)
    }

    fn effective_lr(&self, t: u64, _scalars: &[f64]) -> f64 {
        self.lr * warmup(t, self.warmup_steps)
    }

    fn has_eval_point(&self) -> bool {
        true
    }

    fn switch_point(
        &self,
        to_eval: bool,
        param: &Tensor,
        buffers: &[Option<Tensor>],
        scalars: &mut [f64],
    ) -> Result<Option<Tensor>> {
        switch(self.momentum, to_eval, param, buffers[0].as_ref(), scalars)
    }

    fn update(
        &self,
        ctx: StepCtx,
        param: &Tensor,
        grad: &Tensor,
        buffers: &mut [Option<Tensor>],
        scalars: &mut [f64],
    ) -> Result<Tensor> {
        let (lr, ckp1) = averaging(ctx.lr, ctx.t, self.warmup_steps, self.r, self.weight_lr_power, scalars);
        let z = match buffers[0].take() {
            Some(z) => z,
            None => param.copy()?,
        };
        let grad = if ctx.weight_decay != 0.0 {
            add_scaled(grad, ctx.weight_decay, param)?
        } else {
            grad.clone()
        };
        let y = lerp(param, &z, ckp1)?;
        let y = add_scaled(&y, lr * (self.momentum * (1.0 - ckp1) - 1.0), &grad)?;
        buffers[0] = Some(add_scaled(&z, -lr, &grad)?);
        Ok(y)
    }
}
