use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::engine::Optimizing;
use crate::error::{check, check_lr_and_decay, OptimError, Result};
use crate::fused;
use crate::hyper::Hyper;
use crate::hypers;
use crate::rule::{add_scaled, l2_grad, StepCtx, UpdateRule};

/// Hyper-parameters of [`Sgd`]; defaults are PyTorch's `torch.optim.SGD`
/// (lr 1e-3, no momentum, no dampening, no weight decay, no Nesterov).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SgdConfig {
    /// Learning rate (default 1e-3).
    pub lr: f64,
    /// Momentum factor (default 0).
    pub momentum: f64,
    /// Dampening of the momentum (default 0).
    pub dampening: f64,
    /// L2 penalty added to the gradient (default 0).
    pub weight_decay: f64,
    /// Nesterov momentum (default false; needs momentum > 0 and dampening 0).
    pub nesterov: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        }
    }
}

impl SgdConfig {
    /// The default config with learning rate `lr`.
    pub fn with_lr(lr: f64) -> Self {
        Self { lr, ..Self::default() }
    }
}

/// Stochastic gradient descent, `w := w - lr * grad`, with PyTorch's
/// momentum, dampening, Nesterov and weight-decay semantics.
pub type Sgd = Optimizing<SgdConfig>;

impl UpdateRule for SgdConfig {
    const KIND: &'static str = "sgd";
    const BUFFERS: &'static [&'static str] = &["momentum_buffer"];
    const HYPER: &'static [Hyper<Self>] =
        hypers![lr lr, momentum momentum, real dampening, weight_decay weight_decay, flag nesterov];

    fn validate(&self) -> Result<()> {
        check_lr_and_decay(self.lr, self.weight_decay)?;
        check(
            "momentum",
            self.momentum,
            (0.0..1.0).contains(&self.momentum),
            "expected 0 <= momentum < 1 (at 1 and above the update never decays)",
        )?;
        check("dampening", self.dampening, true, "expected a finite dampening")?;
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(OptimError::Config {
                name: "nesterov",
                value: self.momentum,
                message: "Nesterov momentum needs momentum > 0 and dampening 0",
            });
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
        let mut g = l2_grad(ctx, param, grad)?;
        if self.momentum != 0.0 {
            let buf = match buffers[0].take() {
                None => g.clone(),
                Some(b) => add_scaled(&b.affine(self.momentum, 0.0)?, 1.0 - self.dampening, &g)?,
            };
            g = if self.nesterov {
                add_scaled(&g, self.momentum, &buf)?
            } else {
                buf.clone()
            };
            buffers[0] = Some(buf);
        }
        add_scaled(param, -ctx.lr, &g)
    }

    fn update_fused(
        &self,
        ctx: StepCtx,
        param: &Tensor,
        grad: &Tensor,
        buffers: &mut [Option<Tensor>],
    ) -> Result<bool> {
        let Some(grad) = fused::contiguous_grad(param, grad)? else {
            return Ok(false);
        };
        let grad = &grad;
        if buffers[0].as_ref().is_some_and(|b| !fused::eligible(&[b])) {
            return Ok(false);
        }
        let (lr, wd) = (ctx.lr as f32, ctx.weight_decay as f32);
        if self.momentum == 0.0 {
            fused::apply("sgd", param, grad, grad, move |p, g, _| p - lr * (g + wd * p))?;
            return Ok(true);
        }
        let (mu, damp) = (self.momentum as f32, 1.0 - self.dampening as f32);
        let buf = match &buffers[0] {
            Some(b) => {
                fused::apply("sgd_momentum", b, grad, param, move |b, g, p| {
                    mu * b + damp * (g + wd * p)
                })?;
                b.clone()
            }
            // PyTorch seeds the buffer with the first (decayed) gradient, undamped.
            None => {
                let b = l2_grad(ctx, param, grad)?.copy()?;
                buffers[0] = Some(b.clone());
                b
            }
        };
        if self.nesterov {
            fused::apply("sgd_nesterov", param, grad, &buf, move |p, g, b| {
                p - lr * ((g + wd * p) + mu * b)
            })?;
        } else {
            fused::apply("sgd_step", param, &buf, &buf, move |p, b, _| p - lr * b)?;
        }
        Ok(true)
    }
}
