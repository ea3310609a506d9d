use std::collections::BTreeMap;

use candle_core::Tensor;

use crate::error::{OptimError, Result};
use crate::hyper::{with_role, Hyper, Role};

/// What one update of one variable sees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepCtx {
    /// Updates this variable has received, this one included (PyTorch's per-parameter `step`).
    pub t: u64,
    /// Learning rate of the variable's group.
    pub lr: f64,
    /// Weight decay of the variable's group.
    pub weight_decay: f64,
}

/// The per-variable update rule of an optimizer; its config struct implements it.
///
/// An [`crate::Optimizing`] over a rule holds the variables, the buffers named
/// in [`UpdateRule::BUFFERS`] (created lazily, as PyTorch does), the scalars
/// named in [`UpdateRule::SCALARS`] and the step counts, and exports them all.
/// The rate, the momentum and the weight decay are found through the roles in
/// [`UpdateRule::HYPER`], which also saves and restores every hyper-parameter, so a
/// rule writes its checks and its update and nothing else.
pub trait UpdateRule: Clone + Default + std::fmt::Debug + Send + Sync + 'static {
    /// Name in saved states, e.g. `adam`.
    const KIND: &'static str;
    /// Names of the per-variable tensor buffers.
    const BUFFERS: &'static [&'static str];
    /// Names of the per-variable scalar states, with their initial values.
    const SCALARS: &'static [(&'static str, f64)] = &[];
    /// Every hyper-parameter, with its role ([`crate::hypers!`] writes it from field names).
    const HYPER: &'static [Hyper<Self>];

    /// The base learning rate (NaN when the table has no rate, which `validate` rejects).
    fn lr(&self) -> f64 {
        role_value(self, Role::Lr).unwrap_or(f64::NAN)
    }
    /// Sets the base learning rate.
    fn set_lr(&mut self, lr: f64) {
        if let Some(h) = with_role(Self::HYPER, Role::Lr) {
            // A real number's setter cannot fail.
            let _ = h.set(self, lr);
        }
    }
    /// The default weight decay of every group.
    fn weight_decay(&self) -> f64 {
        role_value(self, Role::WeightDecay).unwrap_or(0.0)
    }
    /// Momentum (SGD, RMSprop) or beta1 (Adam family), for schedules that cycle it.
    fn momentum(&self) -> Option<f64> {
        role_value(self, Role::Momentum).or_else(|| role_value(self, Role::FixedMomentum))
    }
    /// Sets what [`UpdateRule::momentum`] reads; false when the rule has none that a
    /// schedule may cycle.
    fn set_momentum(&mut self, momentum: f64) -> bool {
        with_role(Self::HYPER, Role::Momentum).is_some_and(|h| h.set(self, momentum).is_ok())
    }
    /// Checks every hyper-parameter.
    fn validate(&self) -> Result<()>;
    /// Hyper-parameters other than the learning rate, for saving.
    fn hyper(&self) -> BTreeMap<String, f64> {
        crate::hyper::save(Self::HYPER, self)
    }
    /// Rebuilds the config from a saved learning rate and [`UpdateRule::hyper`] map.
    fn from_hyper(lr: f64, hyper: &BTreeMap<String, f64>) -> Result<Self> {
        crate::hyper::load(Self::KIND, Self::HYPER, Self::default(), lr, hyper)
    }
    /// Initial buffers for a variable; `None` means "created at the first update".
    fn init_buffers(&self, _param: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![None; Self::BUFFERS.len()])
    }
    /// Returns the updated variable value, updating `buffers` and `scalars` in place.
    fn update(
        &self,
        ctx: StepCtx,
        param: &Tensor,
        grad: &Tensor,
        buffers: &mut [Option<Tensor>],
        scalars: &mut [f64],
    ) -> Result<Tensor>;
    /// An in-place update of contiguous CPU f32 data in one pass, when the rule has one.
    /// Returns false to fall back to [`UpdateRule::update`].
    fn update_fused(
        &self,
        _ctx: StepCtx,
        _param: &Tensor,
        _grad: &Tensor,
        _buffers: &mut [Option<Tensor>],
    ) -> Result<bool> {
        Ok(false)
    }
    /// Runs once per step before any variable is updated, over every variable (with its
    /// gradient, if it has one this step), for rules whose step size depends on all of
    /// them (Prodigy's and D-Adaptation's distance estimate `d`). Such rules keep their
    /// optimizer-wide values in [`UpdateRule::SCALARS`], equal on every variable, so the
    /// saved state survives a renumbering of the variables. Returns false to skip this
    /// step's updates (what the references do when every gradient is zero).
    fn prepare_step(&self, _vars: &mut [VarStep<'_>]) -> Result<bool> {
        Ok(true)
    }
    /// The rate the next update moves at, from the next update's count `t` and a
    /// variable's scalars: Prodigy's `d * lr`, Schedule-Free's warmed-up rate; by default
    /// the base learning rate.
    fn effective_lr(&self, _t: u64, _scalars: &[f64]) -> f64 {
        self.lr()
    }
    /// Whether the rule evaluates at a point other than the one it trains at (Schedule-Free).
    fn has_eval_point(&self) -> bool {
        false
    }
    /// The variable's value at the evaluation point (`to_eval`) or back at the training
    /// point, recording which one it is at in `scalars`; `None` leaves it where it is.
    fn switch_point(
        &self,
        _to_eval: bool,
        _param: &Tensor,
        _buffers: &[Option<Tensor>],
        _scalars: &mut [f64],
    ) -> Result<Option<Tensor>> {
        Ok(None)
    }
}

/// One variable as [`UpdateRule::prepare_step`] sees it.
#[derive(Debug)]
pub struct VarStep<'a> {
    /// What its update this step will see.
    pub ctx: StepCtx,
    /// Its value before the step.
    pub param: &'a Tensor,
    /// Its gradient, `None` when it has none this step (it will not be updated).
    pub grad: Option<&'a Tensor>,
    /// Its buffers, named by [`UpdateRule::BUFFERS`].
    pub buffers: &'a mut [Option<Tensor>],
    /// Its scalars, named by [`UpdateRule::SCALARS`].
    pub scalars: &'a mut [f64],
}

/// Reads a saved hyper-parameter.
pub fn hyper_get(hyper: &BTreeMap<String, f64>, kind: &str, name: &str) -> Result<f64> {
    hyper
        .get(name)
        .copied()
        .ok_or_else(|| OptimError::State(format!("{kind} state lacks the hyper-parameter {name}")))
}

/// Builds a hyper-parameter map from pairs.
pub fn hyper_map(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// `a + s * b`, the building block of every rule.
pub fn add_scaled(a: &Tensor, s: f64, b: &Tensor) -> Result<Tensor> {
    Ok((a + b.affine(s, 0.0)?)?)
}

/// The gradient with L2 weight decay folded in, as PyTorch's coupled `weight_decay` does.
pub fn l2_grad(ctx: StepCtx, param: &Tensor, grad: &Tensor) -> Result<Tensor> {
    if ctx.weight_decay != 0.0 {
        add_scaled(grad, ctx.weight_decay, param)
    } else {
        Ok(grad.clone())
    }
}

/// Takes the buffer `slot`, or a zero tensor shaped like `like` when it is not there yet.
pub fn take_or_zeros(slot: &mut Option<Tensor>, like: &Tensor) -> Result<Tensor> {
    match slot.take() {
        Some(t) => Ok(t),
        None => Ok(like.zeros_like()?),
    }
}

/// `t / s` by a true division, as PyTorch's `tensor / python_float` rounds
/// (candle's `Tensor / f64` multiplies by the reciprocal, which can differ in the last bit).
pub fn div_scalar(t: &Tensor, s: f64) -> Result<Tensor> {
    let s = Tensor::new(s, t.device())?.to_dtype(t.dtype())?;
    Ok(t.broadcast_div(&s)?)
}

/// `a + w * (b - a)` rounded as PyTorch's CPU `lerp` does: from the nearer end, with
/// `1 - w` formed in f32.
pub fn lerp(a: &Tensor, b: &Tensor, w: f64) -> Result<Tensor> {
    let diff = (b - a)?;
    if w.abs() < 0.5 {
        Ok((a + diff.affine(w, 0.0)?)?)
    } else {
        let rest = f64::from(1.0f32 - w as f32);
        Ok((b - diff.affine(rest, 0.0)?)?)
    }
}

/// The sum of a tensor's elements as PyTorch's `.sum().item()` hands it over: summed
/// in the tensor's dtype, then widened (on the CPU, as some devices have no f64).
pub fn sum_item(t: &Tensor) -> Result<f64> {
    let sum = t.sum_all()?.to_device(&candle_core::Device::Cpu)?;
    Ok(sum.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?)
}

/// The value of the saved optimizer-wide scalar `slot`, which is the same on every
/// variable; `fallback` when there are none.
pub fn shared_scalar(vars: &[VarStep<'_>], slot: usize, fallback: f64) -> f64 {
    vars.first().map_or(fallback, |v| v.scalars[slot])
}

/// The value of `config`'s entry with `role`, if it has one (and it is present).
fn role_value<C: UpdateRule>(config: &C, role: Role) -> Option<f64> {
    with_role(C::HYPER, role).and_then(|h| h.get(config))
}
