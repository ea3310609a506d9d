use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::engine::Optimizing;
use crate::error::{check, check_lr_and_decay, Result};
use crate::hyper::Hyper;
use crate::hypers;
use crate::rule::{add_scaled, l2_grad, take_or_zeros, StepCtx, UpdateRule};

/// Hyper-parameters of [`RmsProp`]; defaults are PyTorch's `torch.optim.RMSprop`
/// (lr 1e-2, alpha 0.99, eps 1e-8, weight_decay 0, momentum 0, centered false).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RmsPropConfig {
    /// Learning rate (default 1e-2).
    pub lr: f64,
    /// Smoothing constant of the squared-gradient average (default 0.99).
    pub alpha: f64,
    /// Added to the denominator (default 1e-8).
    pub eps: f64,
    /// L2 penalty added to the gradient (default 0).
    pub weight_decay: f64,
    /// Momentum factor (default 0).
    pub momentum: f64,
    /// Normalise by the variance estimate instead of the raw second moment (default false).
    pub centered: bool,
}

impl Default for RmsPropConfig {
    fn default() -> Self {
        Self {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
        }
    }
}

impl RmsPropConfig {
    /// The default config with learning rate `lr`.
    pub fn with_lr(lr: f64) -> Self {
        Self { lr, ..Self::default() }
    }
}

/// RMSprop (Hinton, 2012) with PyTorch's update.
pub type RmsProp = Optimizing<RmsPropConfig>;

impl UpdateRule for RmsPropConfig {
    const KIND: &'static str = "rmsprop";
    const BUFFERS: &'static [&'static str] = &["square_avg", "momentum_buffer", "grad_avg"];
    const HYPER: &'static [Hyper<Self>] =
        hypers![lr lr, real alpha, real eps, weight_decay weight_decay, momentum momentum, flag centered];

    fn validate(&self) -> Result<()> {
        check_lr_and_decay(self.lr, self.weight_decay)?;
        check("alpha", self.alpha, self.alpha >= 0.0, "expected alpha >= 0")?;
        check("eps", self.eps, self.eps >= 0.0, "expected eps >= 0")?;
        check(
            "momentum",
            self.momentum,
            (0.0..1.0).contains(&self.momentum),
            "expected 0 <= momentum < 1 (at 1 and above the update never decays)",
        )?;
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
        let a = self.alpha;
        let g = l2_grad(ctx, param, grad)?;
        let sq = take_or_zeros(&mut buffers[0], param)?;
        // Operation order of PyTorch's addcmul / addcdiv, so results agree to the last bits.
        let sq = (sq.affine(a, 0.0)? + (g.affine(1.0 - a, 0.0)? * &g)?)?;
        let avg = if self.centered {
            let ga = take_or_zeros(&mut buffers[2], param)?;
            let ga = add_scaled(&ga, 1.0 - a, &(&g - &ga)?)?; // lerp, as PyTorch
            let avg = (&sq - &ga.sqr()?)?.sqrt()?.affine(1.0, self.eps)?;
            buffers[2] = Some(ga);
            avg
        } else {
            sq.sqrt()?.affine(1.0, self.eps)?
        };
        buffers[0] = Some(sq);
        if self.momentum > 0.0 {
            let buf = take_or_zeros(&mut buffers[1], param)?;
            let buf = (buf.affine(self.momentum, 0.0)? + (&g / &avg)?)?;
            let updated = add_scaled(param, -ctx.lr, &buf)?;
            buffers[1] = Some(buf);
            Ok(updated)
        } else {
            Ok((param + (g.affine(-ctx.lr, 0.0)? / &avg)?)?)
        }
    }
}
