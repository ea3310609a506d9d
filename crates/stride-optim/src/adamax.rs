use std::collections::BTreeMap;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::engine::Optimizing;
use crate::error::{check_betas_eps, check_lr_and_decay, Result};
use crate::rule::{add_scaled, hyper_get, hyper_map, l2_grad, take_or_zeros, StepCtx, UpdateRule};

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

    fn lr(&self) -> f64 {
        self.lr
    }
    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
    fn weight_decay(&self) -> f64 {
        self.weight_decay
    }
    fn momentum(&self) -> Option<f64> {
        Some(self.beta1)
    }
    fn set_momentum(&mut self, beta1: f64) -> bool {
        self.beta1 = beta1;
        true
    }

    fn validate(&self) -> Result<()> {
        check_lr_and_decay(self.lr, self.weight_decay)?;
        check_betas_eps(self.beta1, self.beta2, self.eps)?;
        Ok(())
    }

    fn hyper(&self) -> BTreeMap<String, f64> {
        hyper_map(&[
            ("beta1", self.beta1),
            ("beta2", self.beta2),
            ("eps", self.eps),
            ("weight_decay", self.weight_decay),
        ])
    }

    fn from_hyper(lr: f64, h: &BTreeMap<String, f64>) -> Result<Self> {
        let get = |k| hyper_get(h, Self::KIND, k);
        Ok(Self {
            lr,
            beta1: get("beta1")?,
            beta2: get("beta2")?,
            eps: get("eps")?,
            weight_decay: get("weight_decay")?,
        })
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
