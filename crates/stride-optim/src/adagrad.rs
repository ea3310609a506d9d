use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::engine::Optimizing;
use crate::error::{check, check_lr_and_decay, Result};
use crate::hyper::Hyper;
use crate::hypers;
use crate::rule::{add_scaled, l2_grad, StepCtx, UpdateRule};

/// Hyper-parameters of [`Adagrad`]; defaults are PyTorch's `torch.optim.Adagrad`
/// (lr 1e-2, lr_decay 0, weight_decay 0, initial_accumulator_value 0, eps 1e-10).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdagradConfig {
    /// Learning rate (default 1e-2).
    pub lr: f64,
    /// The rate at update t is `lr / (1 + (t - 1) * lr_decay)` (default 0).
    pub lr_decay: f64,
    /// L2 penalty added to the gradient (default 0).
    pub weight_decay: f64,
    /// Starting value of the squared-gradient sum (default 0).
    pub initial_accumulator_value: f64,
    /// Added to the denominator (default 1e-10).
    pub eps: f64,
}

impl Default for AdagradConfig {
    fn default() -> Self {
        Self {
            lr: 1e-2,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
        }
    }
}

/// Adagrad (Duchi et al., 2011) with PyTorch's update.
pub type Adagrad = Optimizing<AdagradConfig>;

impl UpdateRule for AdagradConfig {
    const KIND: &'static str = "adagrad";
    const BUFFERS: &'static [&'static str] = &["sum"];
    const HYPER: &'static [Hyper<Self>] =
        hypers![lr lr, real lr_decay, weight_decay weight_decay, real initial_accumulator_value, real eps];

    fn validate(&self) -> Result<()> {
        check_lr_and_decay(self.lr, self.weight_decay)?;
        check(
            "lr_decay",
            self.lr_decay,
            self.lr_decay >= 0.0,
            "expected lr_decay >= 0",
        )?;
        check(
            "initial_accumulator_value",
            self.initial_accumulator_value,
            self.initial_accumulator_value >= 0.0,
            "expected a value >= 0",
        )?;
        check("eps", self.eps, self.eps >= 0.0, "expected eps >= 0")
    }

    fn init_buffers(&self, param: &Tensor) -> Result<Vec<Option<Tensor>>> {
        // PyTorch creates the accumulator at construction, filled with the initial value.
        Ok(vec![Some(
            param.ones_like()?.affine(self.initial_accumulator_value, 0.0)?,
        )])
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
        let clr = ctx.lr / (1.0 + (ctx.t - 1) as f64 * self.lr_decay);
        let sum = match buffers[0].take() {
            Some(s) => (s + g.sqr()?)?,
            None => g.sqr()?,
        };
        let std = sum.sqrt()?.affine(1.0, self.eps)?;
        let updated = add_scaled(param, -clr, &(&g / &std)?)?;
        buffers[0] = Some(sum);
        Ok(updated)
    }
}
