use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::engine::Optimizing;
use crate::error::{check, check_lr_and_decay, Result};
use crate::hyper::Hyper;
use crate::hypers;
use crate::rule::{add_scaled, l2_grad, take_or_zeros, StepCtx, UpdateRule};

/// Hyper-parameters of [`Adadelta`]; defaults are PyTorch's `torch.optim.Adadelta`
/// (lr 1.0, rho 0.9, eps 1e-6, weight_decay 0).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdadeltaConfig {
    /// Scale of the update (default 1.0).
    pub lr: f64,
    /// Decay of both running averages (default 0.9).
    pub rho: f64,
    /// Added inside the square roots (default 1e-6).
    pub eps: f64,
    /// L2 penalty added to the gradient (default 0).
    pub weight_decay: f64,
}

impl Default for AdadeltaConfig {
    fn default() -> Self {
        Self {
            lr: 1.0,
            rho: 0.9,
            eps: 1e-6,
            weight_decay: 0.0,
        }
    }
}

/// Adadelta (Zeiler, 2012) with PyTorch's update.
pub type Adadelta = Optimizing<AdadeltaConfig>;

impl UpdateRule for AdadeltaConfig {
    const KIND: &'static str = "adadelta";
    const BUFFERS: &'static [&'static str] = &["square_avg", "acc_delta"];
    const HYPER: &'static [Hyper<Self>] = hypers![lr lr, real rho, real eps, weight_decay weight_decay];

    fn validate(&self) -> Result<()> {
        check_lr_and_decay(self.lr, self.weight_decay)?;
        check(
            "rho",
            self.rho,
            (0.0..=1.0).contains(&self.rho),
            "expected 0 <= rho <= 1",
        )?;
        check("eps", self.eps, self.eps >= 0.0, "expected eps >= 0")?;
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
        let rho = self.rho;
        let g = l2_grad(ctx, param, grad)?;
        let sq = take_or_zeros(&mut buffers[0], param)?;
        let sq = add_scaled(&sq.affine(rho, 0.0)?, 1.0 - rho, &g.sqr()?)?;
        let acc = take_or_zeros(&mut buffers[1], param)?;
        let std = sq.affine(1.0, self.eps)?.sqrt()?;
        let delta = ((acc.affine(1.0, self.eps)?.sqrt()? / std)? * &g)?;
        let acc = add_scaled(&acc.affine(rho, 0.0)?, 1.0 - rho, &delta.sqr()?)?;
        let updated = add_scaled(param, -ctx.lr, &delta)?;
        buffers[0] = Some(sq);
        buffers[1] = Some(acc);
        Ok(updated)
    }
}
