//! What a rule defined outside this crate needs to implement [`crate::UpdateRule`]: the
//! tensor helpers the built-in rules are written with (rounded as PyTorch rounds, so an
//! external rule can match a reference bit for bit) and the hyper-parameter checks.

pub use crate::error::check;
pub use crate::hyper::{Field, Hyper, Role};
pub use crate::hypers;
pub use crate::rule::{
    add_scaled, div_scalar, hyper_get, hyper_map, l2_grad, lerp, shared_scalar, sum_item, take_or_zeros, StepCtx,
    UpdateRule, VarStep,
};
