//! Optimizers for Stride.
//!
//! [`Optimizer`] is dyn-compatible, exposes the learning rate and exports its
//! state; each optimizer also implements `candle_nn::Optimizer` so it drops
//! into plain candle code.
//!
//! | optimizer | PyTorch defaults |
//! |---|---|
//! | [`Sgd`] | lr 1e-3, momentum 0, dampening 0, weight_decay 0, nesterov false |
#![deny(missing_docs)]

mod error;
mod optimizer;
mod sgd;

pub use error::{OptimError, Result};
pub use optimizer::{Buffer, Optimizer, OptimizerState};
pub use sgd::{Sgd, SgdConfig};
