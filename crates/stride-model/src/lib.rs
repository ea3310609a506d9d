//! Models for Stride.
//!
//! - [`Model`]: the plug-in point; every `candle_nn::Module` is a model (one that behaves differently in training implements `Model::logits` with its `ModuleT::forward_t`);
//! - [`Mlp`]: an MLP from a spec string such as `"784-128-10"`, with a fused CPU
//!   training path ([`Model::fused_cross_entropy`]);
//! - [`Cnn`]: a CNN from a spec such as `"c8k5-mp2-c16k5-mp2"` (preset `lenet`);
//! - [`nn`]: layers with candle-nn's constructors and Stride's own CPU forward/backward;
//! - [`Parametrization`]: standard or muP, whose rates tuned at a base width hold at every width;
//! - [`reset_parameters`]: seeded initialisation matching PyTorch's defaults.
#![deny(missing_docs)]

mod cnn;
mod error;
mod fused;
mod init;
mod mlp;
mod model;
mod mup;
mod network;
pub mod nn;

pub use cnn::{Cnn, CnnLayer, CnnSpec, CNN_PRESETS};
pub use error::{ModelError, Result};
pub use fused::{FusedGrads, PhaseTimes};
pub use init::reset_parameters;
pub use mlp::{Activation, Mlp, MlpSpec};
pub use model::Model;
pub use mup::{width_shapes, Parametrization, WidthShape};
pub use network::{Architecture, Network};
