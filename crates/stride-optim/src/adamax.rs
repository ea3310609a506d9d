use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::engine::Optimizing;
use crate::error::{check_betas_eps, check_lr_and_decay, Result};
use crate::hyper::Hyper;
use crate::hypers;
use crate::rule::{add_scaled, l2_grad, take_or_zeros, StepCtx, UpdateRule};

/// Hyper-parameters of [`Adamax`]; defaults are PyTorch's `torch.optim.Adamax`
/// (lr 2e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamaxConfig {
    /// Learning rate (default 2e-3).
    pub lr: f64,
    /// Decay of the first moment (default 0.9).
    pub beta1: f64,
    /// Decay of the infinity norm (default 0.999).
    pub beta2: f64,
    /// Floor of the infinity norm (default 1e-8).
    pub eps: f64,
    /// L2 penalty added to the gradient (default 0).
    pub weight_decay: f64,
}

impl Default for AdamaxConfig {
    fn default() -> Self {
        Self {
            lr: 2e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// Adamax (Kingma & Ba, 2015, section 7) with PyTorch's update.
pub type Adamax = Optimizing<AdamaxConfig>;

impl UpdateRule for AdamaxConfig {
    const KIND: &'static str = "adamax";
    const BUFFERS: &'static [&'static str] = &["exp_avg", "exp_inf"];
    const HYPER: &'static [Hyper<Self>] =
        hypers![lr lr, momentum beta1, real beta2, real eps, weight_decay weight_decay];

    fn validate(&self) -> Result<()> {
        check_lr_and_decay(self.lr, self.weight_decay)?;
        check_betas_eps(self.beta1, self.beta2, self.eps)?;
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
        let g = l2_grad(ctx, param, grad)?;
        let m = take_or_zeros(&mut buffers[0], param)?;
        let m = add_scaled(&m, 1.0 - self.beta1, &(&g - &m)?)?; // lerp, as PyTorch
        let u = take_or_zeros(&mut buffers[1], param)?;
        let u = u.affine(self.beta2, 0.0)?.maximum(&g.abs()?.affine(1.0, self.eps)?)?;
        let clr = ctx.lr / (1.0 - self.beta1.powi(ctx.t as i32));
        let updated = add_scaled(param, -clr, &(&m / &u)?)?;
        buffers[0] = Some(m);
        buffers[1] = Some(u);
        Ok(updated)
    }
}
