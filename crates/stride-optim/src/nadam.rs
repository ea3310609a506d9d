use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::engine::Optimizing;
use crate::error::{check, check_betas_eps, check_lr_and_decay, Result};
use crate::hyper::Hyper;
use crate::hypers;
use crate::rule::{add_scaled, l2_grad, take_or_zeros, StepCtx, UpdateRule};

/// Hyper-parameters of [`NAdam`]; defaults are PyTorch's `torch.optim.NAdam`
/// (lr 2e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0, momentum_decay 4e-3,
/// decoupled_weight_decay false).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NAdamConfig {
    /// Learning rate (default 2e-3).
    pub lr: f64,
    /// Decay of the first moment (default 0.9).
    pub beta1: f64,
    /// Decay of the second moment (default 0.999).
    pub beta2: f64,
    /// Added to the denominator (default 1e-8).
    pub eps: f64,
    /// Weight decay (default 0).
    pub weight_decay: f64,
    /// Momentum schedule constant psi (default 4e-3).
    pub momentum_decay: f64,
    /// Decay the weights directly instead of through the gradient (default false).
    pub decoupled_weight_decay: bool,
}

impl Default for NAdamConfig {
    fn default() -> Self {
        Self {
            lr: 2e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum_decay: 4e-3,
            decoupled_weight_decay: false,
        }
    }
}

/// NAdam (Dozat, 2016): Adam with Nesterov momentum, PyTorch's update.
pub type NAdam = Optimizing<NAdamConfig>;

impl UpdateRule for NAdamConfig {
    const KIND: &'static str = "nadam";
    const BUFFERS: &'static [&'static str] = &["exp_avg", "exp_avg_sq"];
    const SCALARS: &'static [(&'static str, f64)] = &[("mu_product", 1.0)];
    const HYPER: &'static [Hyper<Self>] = hypers![lr lr, real beta1, real beta2, real eps, weight_decay weight_decay, real momentum_decay, flag decoupled_weight_decay];

    fn validate(&self) -> Result<()> {
        check_lr_and_decay(self.lr, self.weight_decay)?;
        check_betas_eps(self.beta1, self.beta2, self.eps)?;
        check(
            "momentum_decay",
            self.momentum_decay,
            self.momentum_decay >= 0.0,
            "expected >= 0",
        )?;
        Ok(())
    }

    fn update(
        &self,
        ctx: StepCtx,
        param: &Tensor,
        grad: &Tensor,
        buffers: &mut [Option<Tensor>],
        scalars: &mut [f64],
    ) -> Result<Tensor> {
        let (b1, b2, t) = (self.beta1, self.beta2, ctx.t as f64);
        let (param, g) = if self.decoupled_weight_decay {
            (param.affine(1.0 - ctx.lr * ctx.weight_decay, 0.0)?, grad.clone())
        } else {
            (param.clone(), l2_grad(ctx, param, grad)?)
        };
        let bc2 = 1.0 - b2.powf(t);
        let mu = b1 * (1.0 - 0.5 * 0.96f64.powf(t * self.momentum_decay));
        let mu_next = b1 * (1.0 - 0.5 * 0.96f64.powf((t + 1.0) * self.momentum_decay));
        scalars[0] *= mu;
        let mu_product = scalars[0];
        let m = take_or_zeros(&mut buffers[0], &param)?;
        let m = add_scaled(&m, 1.0 - b1, &(&g - &m)?)?; // lerp, as PyTorch
        let v = take_or_zeros(&mut buffers[1], &param)?;
        let v = add_scaled(&v.affine(b2, 0.0)?, 1.0 - b2, &g.sqr()?)?;
        let denom = v.affine(1.0 / bc2, 0.0)?.sqrt()?.affine(1.0, self.eps)?;
        let p = add_scaled(&param, -ctx.lr * (1.0 - mu) / (1.0 - mu_product), &(&g / &denom)?)?;
        let p = add_scaled(&p, -ctx.lr * mu_next / (1.0 - mu_product * mu_next), &(&m / &denom)?)?;
        buffers[0] = Some(m);
        buffers[1] = Some(v);
        Ok(p)
    }
}
