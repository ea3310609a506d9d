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
//! Lion and the learning-rate-free optimizers follow their reference packages
//! (pinned in `fixtures/optimizers/gen_lr_free.py`) and their defaults:
//!
//! | optimizer | config | reference defaults |
//! |---|---|---|
//! | [`Lion`] | [`LionConfig`] | lion-pytorch 0.2.5: lr 1e-4, betas (0.9, 0.99), weight_decay 0, decoupled_weight_decay false |
//! | [`ScheduleFreeAdamW`] | [`ScheduleFreeAdamWConfig`] | schedulefree 1.4.1 `AdamWScheduleFree`: lr 0.0025, betas (0.9, 0.999), eps 1e-8, weight_decay 0, warmup_steps 0, r 0, weight_lr_power 2 |
//! | [`ScheduleFreeSgd`] | [`ScheduleFreeSgdConfig`] | schedulefree 1.4.1 `SGDScheduleFree`: lr 1.0, momentum 0.9, weight_decay 0, warmup_steps 0, r 0, weight_lr_power 2 |
//! | [`Prodigy`] | [`ProdigyConfig`] | prodigyopt 1.1.2: lr 1.0, betas (0.9, 0.999), beta3 sqrt(beta2), eps 1e-8, weight_decay 0 decoupled, use_bias_correction false, safeguard_warmup false, d0 1e-6, d_coef 1, growth_rate inf |
//! | [`DAdaptAdam`] | [`DAdaptAdamConfig`] | dadaptation 3.2 `DAdaptAdam`: lr 1.0, betas (0.9, 0.999), eps 1e-8, weight_decay 0 coupled, use_bias_correction false, d0 1e-6, growth_rate inf |
//! | [`DAdaptSgd`] | [`DAdaptSgdConfig`] | dadaptation 3.2 `DAdaptSGD`: lr 1.0, momentum 0, weight_decay 0, d0 1e-6, growth_rate inf |
//!
//! Schedule-Free trains at one point and is evaluated at another: call
//! [`Optimizer::eval_point`] before evaluating or saving and [`Optimizer::train_point`]
//! before the next step. Prodigy and D-Adaptation estimate their step size; their `lr`
//! is a multiplier and [`Optimizer::effective_learning_rate`] the rate they move at.
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
mod dadapt_adam;
mod dadapt_sgd;
mod engine;
mod error;
mod fused;
pub mod hyper;
mod kind;
mod lion;
mod nadam;
mod optimizer;
mod params;
mod prodigy;
mod radam;
mod rmsprop;
mod rule;
pub mod rule_kit;
pub mod schedule;
mod schedule_free_adamw;
mod schedule_free_sgd;
mod sgd;

pub use adadelta::{Adadelta, AdadeltaConfig};
pub use adagrad::{Adagrad, AdagradConfig};
pub use adam::{Adam, AdamConfig, AdamW};
pub use adamax::{Adamax, AdamaxConfig};
pub use clip::{clip_grad_norm, clip_grad_value, grad_norm, l2_norm};
pub use dadapt_adam::{DAdaptAdam, DAdaptAdamConfig};
pub use dadapt_sgd::{DAdaptSgd, DAdaptSgdConfig};
pub use engine::Optimizing;
pub use error::{OptimError, Result};
pub use kind::{build_rule, BuildFn, OptimizerKind, OptimizerSpec, Registry, UpdateFamily};
pub use lion::{Lion, LionConfig};
pub use nadam::{NAdam, NAdamConfig};
pub use optimizer::{Buffer, Optimizer, OptimizerState};
pub use params::ParamGroup;
pub use prodigy::{Prodigy, ProdigyConfig};
pub use radam::{RAdam, RAdamConfig};
pub use rmsprop::{RmsProp, RmsPropConfig};
pub use rule::{StepCtx, UpdateRule, VarStep};
pub use schedule_free_adamw::{ScheduleFreeAdamW, ScheduleFreeAdamWConfig};
pub use schedule_free_sgd::{ScheduleFreeSgd, ScheduleFreeSgdConfig};
pub use sgd::{Sgd, SgdConfig};

#[cfg(test)]
mod lr_free_fixtures;
#[cfg(test)]
mod torch_fixtures;
