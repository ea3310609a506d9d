use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::engine::Optimizing;
use crate::error::{check_betas_eps, check_lr_and_decay, Result};
use crate::hyper::Hyper;
use crate::hypers;
use crate::rule::{add_scaled, l2_grad, take_or_zeros, StepCtx, UpdateRule};

/// Hyper-parameters of [`RAdam`]; defaults are PyTorch's `torch.optim.RAdam`
/// (lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0, decoupled_weight_decay false).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RAdamConfig {
    /// Learning rate (default 1e-3).
    pub lr: f64,
    /// Decay of the first moment (default 0.9).
    pub beta1: f64,
    /// Decay of the second moment (default 0.999).
    pub beta2: f64,
    /// Added to the denominator (default 1e-8).
    pub eps: f64,
    /// Weight decay (default 0).
    pub weight_decay: f64,
    /// Decay the weights directly instead of through the gradient (default false).
    pub decoupled_weight_decay: bool,
}

impl Default for RAdamConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled_weight_decay: false,
        }
    }
}

/// RAdam (Liu et al., 2020): Adam with a rectified adaptive rate, PyTorch's update.
pub type RAdam = Optimizing<RAdamConfig>;

impl UpdateRule for RAdamConfig {
    const KIND: &'static str = "radam";
    const BUFFERS: &'static [&'static str] = &["exp_avg", "exp_avg_sq"];
    const HYPER: &'static [Hyper<Self>] =
        hypers![lr lr, momentum beta1, real beta2, real eps, weight_decay weight_decay, flag decoupled_weight_decay];

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
        let (b1, b2, t) = (self.beta1, self.beta2, ctx.t as i32);
        let (param, g) = if self.decoupled_weight_decay {
            (param.affine(1.0 - ctx.lr * ctx.weight_decay, 0.0)?, grad.clone())
        } else {
            (param.clone(), l2_grad(ctx, param, grad)?)
        };
        let m = take_or_zeros(&mut buffers[0], &param)?;
        let m = add_scaled(&m, 1.0 - b1, &(&g - &m)?)?; // lerp, as PyTorch
        let v = take_or_zeros(&mut buffers[1], &param)?;
        let v = add_scaled(&v.affine(b2, 0.0)?, 1.0 - b2, &g.sqr()?)?;
        let (bc1, bc2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        let m_hat = m.affine(1.0 / bc1, 0.0)?;
        let rho_inf = 2.0 / (1.0 - b2) - 1.0;
        let rho_t = rho_inf - 2.0 * f64::from(t) * b2.powi(t) / bc2;
        // The variance of the adaptive rate is tractable only once rho_t > 5.
        let updated = if rho_t > 5.0 {
            let rect = ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)).sqrt();
            let adaptive = v.sqrt()?.affine(1.0, self.eps)?.recip()?.affine(bc2.sqrt(), 0.0)?;
            add_scaled(&param, -ctx.lr * rect, &(&m_hat * &adaptive)?)?
        } else {
            add_scaled(&param, -ctx.lr, &m_hat)?
        };
        buffers[0] = Some(m);
        buffers[1] = Some(v);
        Ok(updated)
    }
}
