use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::engine::Optimizing;
use crate::error::{check, check_lr_and_decay, Result};
use crate::hyper::Hyper;
use crate::hypers;
use crate::rule::{add_scaled, take_or_zeros, StepCtx, UpdateRule};

/// Hyper-parameters of [`Lion`]; defaults are lion-pytorch's `Lion`
/// (lr 1e-4, betas (0.9, 0.99), weight_decay 0, decoupled_weight_decay false).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LionConfig {
    /// Learning rate (default 1e-4; Lion wants one 3-10x smaller than AdamW's).
    pub lr: f64,
    /// Weight of the momentum in the interpolation whose sign is the update (default 0.9).
    pub beta1: f64,
    /// Decay of the momentum (default 0.99).
    pub beta2: f64,
    /// Decay of the weights, `w *= 1 - lr * weight_decay` before each update (default 0).
    pub weight_decay: f64,
    /// Divide the weight decay by [`LionConfig::initial_lr`], so that the decay per step does
    /// not depend on the rate (default false).
    pub decoupled_weight_decay: bool,
    /// The rate the decoupled weight decay is relative to: lion-pytorch's rate at
    /// construction, which [`LionConfig::with_lr`] sets (default 1e-4).
    pub initial_lr: f64,
}

impl Default for LionConfig {
    fn default() -> Self {
        Self::with_lr(1e-4)
    }
}

impl LionConfig {
    /// The default config with learning rate `lr`, also the decoupled weight decay's reference rate.
    pub fn with_lr(lr: f64) -> Self {
        Self {
            lr,
            beta1: 0.9,
            beta2: 0.99,
            weight_decay: 0.0,
            decoupled_weight_decay: false,
            initial_lr: lr,
        }
    }
}

/// Lion (Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms"): every
/// coordinate moves by exactly `lr`, in the direction of the sign of an interpolation
/// between the momentum and the gradient; lion-pytorch's update.
pub type Lion = Optimizing<LionConfig>;

impl UpdateRule for LionConfig {
    const KIND: &'static str = "lion";
    const BUFFERS: &'static [&'static str] = &["exp_avg"];
    const HYPER: &'static [Hyper<Self>] = hypers![lr lr, momentum beta1, real beta2, weight_decay weight_decay, flag decoupled_weight_decay, real initial_lr];

    fn validate(&self) -> Result<()> {
        check_lr_and_decay(self.lr, self.weight_decay)?;
        check(
            "beta1",
            self.beta1,
            (0.0..=1.0).contains(&self.beta1),
            "expected 0 <= beta1 <= 1",
        )?;
        check(
            "beta2",
            self.beta2,
            (0.0..=1.0).contains(&self.beta2),
            "expected 0 <= beta2 <= 1",
        )?;
        if self.decoupled_weight_decay {
            check(
                "initial_lr",
                self.initial_lr,
                self.initial_lr > 0.0,
                "decoupled weight decay needs an initial rate > 0",
            )?;
        }
        Ok(())
    }

    fn update(
        &self,
        ctx: StepCtx,
        param: &Tensor,
        grad: &Tensor,
        buffers: &mut [Option<Tensor>],
        _scalars: &mut [f64],
    ) -> Result<Tensor> {
        let wd = if self.decoupled_weight_decay {
            ctx.weight_decay / self.initial_lr
        } else {
            ctx.weight_decay
        };
        let param = param.affine(1.0 - ctx.lr * wd, 0.0)?;
        let m = take_or_zeros(&mut buffers[0], &param)?;
        let direction = add_scaled(&m.affine(self.beta1, 0.0)?, 1.0 - self.beta1, grad)?.sign()?;
        let updated = add_scaled(&param, -ctx.lr, &direction)?;
        buffers[0] = Some(add_scaled(&m.affine(self.beta2, 0.0)?, 1.0 - self.beta2, grad)?);
        Ok(updated)
    }
}
