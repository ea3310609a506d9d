//! Optimizers and learning-rate schedules for Stride.
//!
//! [`Optimizer`] is dyn-compatible, exposes the learning rate (and momentum,
//! for schedules that cycle it) and exports its whole state; every optimizer
//! also implements `candle_nn::Optimizer`, so it drops into plain candle code.
//! All follow PyTorch's update rules and defaults:
//!
//! | optimizer | config | PyTorch defaults |
//! |---|---|---|
//! | [`Sgd`] | [`SgdConfig`] | lr 1e-3, momentum 0, dampening 0, weight_decay 0, nesterov false |
//! | [`Adam`] | [`AdamConfig`] | lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0 (L2), amsgrad false |
//! | [`AdamW`] | [`AdamConfig::adamw`] | as Adam, weight_decay 0.01 decoupled |
//! | [`RmsProp`] | [`RmsPropConfig`] | lr 1e-2, alpha 0.99, eps 1e-8, weight_decay 0, momentum 0, centered false |
//! | [`Adagrad`] | [`AdagradConfig`] | lr 1e-2, lr_decay 0, weight_decay 0, initial_accumulator_value 0, eps 1e-10 |
//! | [`Adadelta`] | [`AdadeltaConfig`] | lr 1.0, rho 0.9, eps 1e-6, weight_decay 0 |
//! | [`Adamax`] | [`AdamaxConfig`] | lr 2e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0 |
//! | [`NAdam`] | [`NAdamConfig`] | lr 2e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0, momentum_decay 4e-3 |
//! | [`RAdam`] | [`RAdamConfig`] | lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0 |
//!
//! Variables can be split into [`ParamGroup`]s with their own learning-rate
//! scale and weight decay. On the CPU with f32 variables, SGD (with or without
//! momentum), Adam and AdamW update each variable with fused one-pass kernels;
//! elsewhere they use candle tensor operations. [`clip_grad_norm`] and
//! [`clip_grad_value`] clip a whole `GradStore`.
#![deny(missing_docs)]

mod adadelta;
mod adagrad;
mod adam;
mod adamax;
mod clip;
mod engine;
mod error;
mod fused;
mod kind;
mod nadam;
mod optimizer;
mod params;
mod radam;
mod rmsprop;
mod rule;
pub mod schedule;
mod sgd;

pub use adadelta::{Adadelta, AdadeltaConfig};
pub use adagrad::{Adagrad, AdagradConfig};
pub use adam::{Adam, AdamConfig, AdamW};
pub use adamax::{Adamax, AdamaxConfig};
pub use clip::{clip_grad_norm, clip_grad_value, grad_norm, l2_norm};
pub use engine::Optimizing;
pub use error::{OptimError, Result};
pub use kind::OptimizerKind;
pub use nadam::{NAdam, NAdamConfig};
pub use optimizer::{Buffer, Optimizer, OptimizerState};
pub use params::ParamGroup;
pub use radam::{RAdam, RAdamConfig};
pub use rmsprop::{RmsProp, RmsPropConfig};
pub use rule::{StepCtx, UpdateRule};
pub use sgd::{Sgd, SgdConfig};

#[cfg(test)]
mod torch_fixtures;
