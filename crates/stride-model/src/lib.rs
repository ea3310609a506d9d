//! Models for Stride.
//!
//! - [`Model`]: the plug-in point; every `candle_nn::ModuleT` is a model;
//! - [`Mlp`]: an MLP from a spec string such as `"784-128-10"`, with a fused CPU
//!   training path ([`Model::fused_cross_entropy`]);
//! - [`reset_parameters`]: seeded initialisation matching PyTorch's defaults.
#![deny(missing_docs)]

mod error;
mod fused;
mod init;
mod mlp;
mod model;

pub use error::{ModelError, Result};
pub use fused::{FusedGrads, PhaseTimes};
pub use init::reset_parameters;
pub use mlp::{Activation, Mlp, MlpSpec};
pub use model::Model;
