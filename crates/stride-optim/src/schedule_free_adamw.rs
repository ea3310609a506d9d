use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::engine::Optimizing;
use crate::error::{check, check_betas_eps, check_lr_and_decay, OptimError, Result};
use crate::hyper::Hyper;
use crate::hypers;
use crate::rule::{add_scaled, div_scalar, lerp, take_or_zeros, StepCtx, UpdateRule, VarStep};

/// Hyper-parameters of [`ScheduleFreeAdamW`]; defaults are `schedulefree.AdamWScheduleFree`
/// (lr 0.0025, betas (0.9, 0.999), eps 1e-8, weight_decay 0, warmup_steps 0, r 0,
/// weight_lr_power 2).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScheduleFreeAdamWConfig {
    /// Learning rate (default 0.0025); no schedule is needed, only the warmup below.
    pub lr: f64,
    /// Interpolation between the average x and the iterate z that gradients are taken at (default 0.9).
    pub beta1: f64,
    /// Decay of the second moment (default 0.999).
    pub beta2: f64,
    /// Added to the denominator (default 1e-8).
    pub eps: f64,
    /// Weight decay, applied at y to the normalised gradient (default 0).
    pub weight_decay: f64,
    /// Updates over which the rate rises linearly to `lr` (default 0).
    pub warmup_steps: u64,
    /// Polynomial weighting of the average, step^r (default 0).
    pub r: f64,
    /// Weight of each step in the average, the largest rate so far to this power (default 2).
    pub weight_lr_power: f64,
}

impl Default for ScheduleFreeAdamWConfig {
    fn default() -> Self {
        Self::with_lr(0.0025)
    }
}

impl ScheduleFreeAdamWConfig {
    /// The default config with learning rate `lr`.
    pub fn with_lr(lr: f64) -> Self {
        Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            warmup_steps: 0,
            r: 0.0,
            weight_lr_power: 2.0,
        }
    }
}

/// Schedule-Free AdamW (Defazio et al., 2024, "The Road Less Scheduled"), the
/// `schedulefree` package's update: trains at y, an interpolation between the average x
/// and the iterate z, and should be evaluated at x ([`crate::Optimizer::eval_point`]).
pub type ScheduleFreeAdamW = Optimizing<ScheduleFreeAdamWConfig>;

/// Slots of the per-variable scalars both Schedule-Free rules keep.
pub(crate) const SF_SCALARS: &[(&str, f64)] = &[("lr_max", -1.0), ("weight_sum", 0.0), ("at_eval_point", 0.0)];
const LR_MAX: usize = 0;
const WEIGHT_SUM: usize = 1;
const AT_EVAL: usize = 2;

/// The warmup factor of update `t` (counted from 1).
pub(crate) fn warmup(t: u64, warmup_steps: u64) -> f64 {
    if t - 1 < warmup_steps {
        t as f64 / warmup_steps as f64
    } else {
        1.0
    }
}

/// The warmed-up rate of update `t` and the weight `ckp1` of the new iterate in the
/// average, advancing the running maximum rate and the sum of weights.
pub(crate) fn averaging(lr: f64, t: u64, warmup_steps: u64, r: f64, power: f64, scalars: &mut [f64]) -> (f64, f64) {
    let lr = lr * warmup(t, warmup_steps);
    scalars[LR_MAX] = lr.max(scalars[LR_MAX]);
    let weight = (t as f64).powf(r) * scalars[LR_MAX].powf(power);
    scalars[WEIGHT_SUM] += weight;
    let ckp1 = if scalars[WEIGHT_SUM] == 0.0 {
        0.0
    } else {
        weight / scalars[WEIGHT_SUM]
    };
    (lr, ckp1)
}

/// Refuses a step while the variables sit at the evaluation point: the gradient was
/// taken at x, not at y, and the update would silently be wrong.
pub(crate) fn require_train_point(vars: &[VarStep<'_>]) -> Result<bool> {
    if vars.iter().any(|v| v.scalars[AT_EVAL] != 0.0) {
        return Err(OptimError::Mode(
            "a Schedule-Free step at the evaluation point x: call train_point() before step()",
        ));
    }
    Ok(true)
}

/// Moves y to x (`to_eval`, lerp towards z by 1 - 1/beta1) or x back to y (by 1 - beta1),
/// as the reference's `eval()` / `train()` do; a variable without z yet stays put.
pub(crate) fn switch(
    beta1: f64,
    to_eval: bool,
    param: &Tensor,
    z: Option<&Tensor>,
    scalars: &mut [f64],
) -> Result<Option<Tensor>> {
    if (scalars[AT_EVAL] != 0.0) == to_eval {
        return Ok(None);
    }
    scalars[AT_EVAL] = f64::from(u8::from(to_eval));
    let Some(z) = z else {
        return Ok(None);
    };
    let weight = if to_eval { 1.0 - 1.0 / beta1 } else { 1.0 - beta1 };
    Ok(Some(lerp(param, z, weight)?))
}

/// Checks the averaging hyper-parameters both Schedule-Free rules share.
pub(crate) fn check_averaging(beta: f64, r: f64, weight_lr_power: f64) -> Result<()> {
    check(
        "beta1",
        beta,
        beta > 0.0 && beta < 1.0,
        "expected 0 < beta1 < 1 (x is recovered from y and z through it)",
    )?;
    check("r", r, r >= 0.0, "expected r >= 0")?;
    check(
        "weight_lr_power",
        weight_lr_power,
        weight_lr_power >= 0.0,
        "expected weight_lr_power >= 0",
    )
}

impl UpdateRule for ScheduleFreeAdamWConfig {
    const KIND: &'static str = "schedule_free_adamw";
    const BUFFERS: &'static [&'static str] = &["z", "exp_avg_sq"];
    const SCALARS: &'static [(&'static str, f64)] = SF_SCALARS;
    const HYPER: &'static [Hyper<Self>] = hypers![lr lr, fixed_momentum beta1, real beta2, real eps, weight_decay weight_decay, count warmup_steps, real r, real weight_lr_power];

    // No set_momentum: x is recovered from y and z through beta1, so cycling it would
    // move the averaged point.

    fn validate(&self) -> Result<()> {
        check_lr_and_decay(self.lr, self.weight_decay)?;
        check_betas_eps(self.beta1, self.beta2, self.eps)?;
        check_averaging(self.beta1, self.r, self.weight_lr_power)
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
        switch(self.beta1, to_eval, param, buffers[0].as_ref(), scalars)
    }

    fn update(
        &self,
        ctx: StepCtx,
        param: &Tensor,
        grad: &Tensor,
        buffers: &mut [Option<Tensor>],
        scalars: &mut [f64],
    ) -> Result<Tensor> {
        let (b1, b2) = (self.beta1, self.beta2);
        let (lr, ckp1) = averaging(ctx.lr, ctx.t, self.warmup_steps, self.r, self.weight_lr_power, scalars);
        let bc2 = 1.0 - b2.powf(ctx.t as f64);
        let z = match buffers[0].take() {
            Some(z) => z,
            None => param.copy()?,
        };
        let v = take_or_zeros(&mut buffers[1], param)?;
        let v = (v.affine(b2, 0.0)? + (grad.affine(1.0 - b2, 0.0)? * grad)?)?; // addcmul order
        let denom = div_scalar(&v, bc2)?.sqrt()?.affine(1.0, self.eps)?;
        let mut normalised = (grad / &denom)?;
        if ctx.weight_decay != 0.0 {
            normalised = add_scaled(&normalised, ctx.weight_decay, param)?;
        }
        let y = lerp(param, &z, ckp1)?;
        let y = add_scaled(&y, lr * (b1 * (1.0 - ckp1) - 1.0), &normalised)?;
        buffers[0] = Some(add_scaled(&z, -lr, &normalised)?);
        buffers[1] = Some(v);
        Ok(y)
    }
}
