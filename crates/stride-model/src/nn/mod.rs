//! Layers with candle-nn's constructors and variable names whose CPU forward and backward
//! are Stride's own (candle custom ops on the GEMM kernels and thread team of the fast
//! paths); on other devices and dtypes they compose candle's ops, so one model runs
//! everywhere. Switching a candle-nn model is a change of import:
//!
//! ```
//! use candle_core::{DType, Device, Module, Tensor};
//! use candle_nn::{VarBuilder, VarMap};
//! use stride_model::nn;
//!
//! let varmap = VarMap::new();
//! let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
//! let conv = nn::conv2d(1, 8, 5, Default::default(), vb.pp("conv"))?;
//! let fc = nn::linear(8 * 12 * 12, 10, vb.pp("fc"))?;
//! let x = Tensor::zeros((2, 1, 28, 28), DType::F32, &Device::Cpu)?;
//! let h = nn::max_pool2d(&nn::relu(&conv.forward(&x)?)?, 2)?;
//! let logits = fc.forward(&nn::flatten(&h)?)?;
//! assert_eq!(logits.dims(), &[2, 10]);
//! # Ok::<(), candle_core::Error>(())
//! ```
//!
//! Why a module of `stride-model` and not a crate of its own: the built-in models are
//! made of these layers and nothing else needs them without the models.

mod act;
mod conv;
mod kernels;
mod linear;
mod pool;

pub use act::{flatten, gelu, leaky_relu, relu, sigmoid, silu, tanh, ReluLayer};
pub use candle_nn::{batch_norm, BatchNorm, BatchNormConfig, Conv2dConfig, Dropout};
pub use conv::{conv2d, conv2d_no_bias, Conv2d};
pub use linear::{linear, linear_no_bias, Linear};
pub use pool::{avg_pool2d, avg_pool2d_with_stride, max_pool2d, max_pool2d_with_stride, AvgPool2d, MaxPool2d};

/// Losses: mean softmax cross-entropy over class indices, and mean squared error.
pub mod loss {
    pub use candle_nn::loss::{cross_entropy, mse};
}
