use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::engine::Optimizing;
use crate::error::{check_betas_eps, check_lr_and_decay, Result};
use crate::fused;
use crate::hyper::Hyper;
use crate::hypers;
use crate::rule::{add_scaled, div_scalar, l2_grad, take_or_zeros, StepCtx, UpdateRule};

/// Hyper-parameters of [`Adam`] / [`AdamW`].
///
/// `Default` is PyTorch's `torch.optim.Adam` (lr 1e-3, betas (0.9, 0.999),
/// eps 1e-8, weight_decay 0 as an L2 term, amsgrad false);
/// [`AdamConfig::adamw`] is `torch.optim.AdamW` (weight_decay 0.01, decoupled).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    /// Learning rate (default 1e-3).
    pub lr: f64,
    /// Decay of the first moment (default 0.9).
    pub beta1: f64,
    /// Decay of the second moment (default 0.999).
    pub beta2: f64,
    /// Added to the denominator (default 1e-8).
    pub eps: f64,
    /// Weight decay (default 0; AdamW 0.01).
    pub weight_decay: f64,
    /// Use the running maximum of the second moment (default false).
    pub amsgrad: bool,
    /// Decay the weights directly (`w -= lr * wd * w`, AdamW) instead of adding `wd * w` to the gradient.
    pub decoupled_weight_decay: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            decoupled_weight_decay: false,
        }
    }
}

impl AdamConfig {
    /// Adam with learning rate `lr`.
    pub fn with_lr(lr: f64) -> Self {
        Self { lr, ..Self::default() }
    }

    /// AdamW (PyTorch defaults: weight_decay 0.01, decoupled) with learning rate `lr`.
    pub fn adamw(lr: f64) -> Self {
        Self {
            lr,
            weight_decay: 0.01,
            decoupled_weight_decay: true,
            ..Self::default()
        }
    }
}

/// Adam (Kingma & Ba, 2015) with PyTorch's update, optionally AMSGrad.
pub type Adam = Optimizing<AdamConfig>;
/// AdamW (Loshchilov & Hutter, 2019): [`Adam`] with decoupled weight decay; build it from [`AdamConfig::adamw`].
pub type AdamW = Optimizing<AdamConfig>;

impl UpdateRule for AdamConfig {
    const KIND: &'static str = "adam";
    const BUFFERS: &'static [&'static str] = &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"];
    const HYPER: &'static [Hyper<Self>] = hypers![lr lr, momentum beta1, real beta2, real eps, weight_decay weight_decay, flag amsgrad, flag decoupled_weight_decay];

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
        let (b1, b2) = (self.beta1, self.beta2);
        let (param, grad) = if self.decoupled_weight_decay {
            (param.affine(1.0 - ctx.lr * ctx.weight_decay, 0.0)?, grad.clone())
        } else {
            (param.clone(), l2_grad(ctx, param, grad)?)
        };
        let m = take_or_zeros(&mut buffers[0], &param)?;
        let m = add_scaled(&m, 1.0 - b1, &(&grad - &m)?)?; // lerp, as PyTorch
        let v = take_or_zeros(&mut buffers[1], &param)?;
        let v = (v.affine(b2, 0.0)? + (grad.affine(1.0 - b2, 0.0)? * &grad)?)?; // addcmul order
        let t = ctx.t as i32;
        let (bc1, bc2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        let second = if self.amsgrad {
            let vmax = match buffers[2].take() {
                Some(prev) => prev.maximum(&v)?,
                None => v.clone(),
            };
            buffers[2] = Some(vmax.clone());
            vmax
        } else {
            v.clone()
        };
        // Divide (not multiply by the reciprocal) and scale the numerator first, as
        // PyTorch's `div` and `addcdiv` do, so results agree to the last bits.
        let denom = div_scalar(&second.sqrt()?, bc2.sqrt())?.affine(1.0, self.eps)?;
        let updated = ((m.affine(-ctx.lr / bc1, 0.0)? / &denom)? + &param)?;
        buffers[0] = Some(m);
        buffers[1] = Some(v);
        Ok(updated)
    }

    fn update_fused(
        &self,
        ctx: StepCtx,
        param: &Tensor,
        grad: &Tensor,
        buffers: &mut [Option<Tensor>],
    ) -> Result<bool> {
        if self.amsgrad {
            return Ok(false);
        }
        let Some(grad) = fused::contiguous_grad(param, grad)? else {
            return Ok(false);
        };
        let grad = &grad;
        let m = take_or_zeros(&mut buffers[0], param)?;
        let v = take_or_zeros(&mut buffers[1], param)?;
        if !fused::eligible(&[&m, &v]) {
            buffers[0] = Some(m);
            buffers[1] = Some(v);
            return Ok(false);
        }
        // Coefficients are formed in f64 and rounded once, as PyTorch's Python scalars are.
        let t = ctx.t as i32;
        let (b2, one_minus_b1, one_minus_b2) =
            (self.beta2 as f32, (1.0 - self.beta1) as f32, (1.0 - self.beta2) as f32);
        let neg_step = (-ctx.lr / (1.0 - self.beta1.powi(t))) as f32;
        let bc2_sqrt = (1.0 - self.beta2.powi(t)).sqrt() as f32;
        let eps = self.eps as f32;
        let l2 = if self.decoupled_weight_decay {
            0.0
        } else {
            ctx.weight_decay as f32
        };
        let decay = if self.decoupled_weight_decay {
            (1.0 - ctx.lr * ctx.weight_decay) as f32
        } else {
            1.0
        };
        let c = AdamCoefficients {
            l2,
            one_minus_b1,
            b2,
            one_minus_b2,
            decay,
            neg_step,
            bc2_sqrt,
            eps,
        };
        fused::apply3("adam", param, &m, &v, grad, move |p, m, v, g| c.update(p, m, v, g))?;
        buffers[0] = Some(m);
        buffers[1] = Some(v);
        Ok(true)
    }
}

/// One Adam step's scalars, rounded to f32 once.
#[derive(Clone, Copy)]
struct AdamCoefficients {
    l2: f32,
    one_minus_b1: f32,
    b2: f32,
    one_minus_b2: f32,
    decay: f32,
    neg_step: f32,
    bc2_sqrt: f32,
    eps: f32,
}

impl AdamCoefficients {
    /// Updates a chunk of weights `p` and moments `m`, `v` from gradients `g` in one pass,
    /// through a copy compiled for AVX2 where the CPU has it (the loop's divisions and
    /// square roots are most of an Adam step).
    fn update(&self, p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the feature was just detected on this CPU.
                unsafe { self.update_avx2(p, m, v, g) };
                return;
            }
        }
        self.update_chunk(p, m, v, g)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn update_avx2(&self, p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
        self.update_chunk(p, m, v, g)
    }

    /// The same arithmetic as the tensor path, element by element (Rust never fuses a
    /// multiply and an add on its own, so every build rounds alike).
    #[inline(always)]
    fn update_chunk(&self, p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
        let n = p.len();
        let (m, v, g) = (&mut m[..n], &mut v[..n], &g[..n]);
        for i in 0..n {
            let gi = if self.l2 != 0.0 { g[i] + self.l2 * p[i] } else { g[i] };
            m[i] += self.one_minus_b1 * (gi - m[i]);
            v[i] = v[i] * self.b2 + self.one_minus_b2 * gi * gi;
            let decayed = if self.decay != 1.0 { p[i] * self.decay } else { p[i] };
            p[i] = decayed + self.neg_step * m[i] / (v[i].sqrt() / self.bc2_sqrt + self.eps);
        }
    }
}
