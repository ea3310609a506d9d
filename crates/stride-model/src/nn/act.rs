//! Activations. ReLU has a one-pass CPU backward (candle's builds a comparison, a cast
//! and a product); the others compose candle's ops, whose backward is already one or
//! two passes.

use candle_core::{CpuStorage, CustomOp1, Layout, Module, Shape, Tensor};

use super::kernels::{on_cpu_f32, slice, tensor, with_values};

/// max(0, x), with candle's gradient convention (1 where x >= 0).
pub fn relu(xs: &Tensor) -> candle_core::Result<Tensor> {
    if !on_cpu_f32(xs) {
        return xs.relu();
    }
    xs.contiguous()?.apply_op1(Relu)
}

/// GELU (tanh approximation, as candle's `gelu`).
pub fn gelu(xs: &Tensor) -> candle_core::Result<Tensor> {
    xs.gelu()
}

/// Hyperbolic tangent.
pub fn tanh(xs: &Tensor) -> candle_core::Result<Tensor> {
    xs.tanh()
}

/// Logistic sigmoid.
pub fn sigmoid(xs: &Tensor) -> candle_core::Result<Tensor> {
    candle_nn::ops::sigmoid(xs)
}

/// x * sigmoid(x).
pub fn silu(xs: &Tensor) -> candle_core::Result<Tensor> {
    xs.silu()
}

/// max(slope x, x).
pub fn leaky_relu(xs: &Tensor, slope: f64) -> candle_core::Result<Tensor> {
    candle_nn::ops::leaky_relu(xs, slope)
}

/// Flattens every dimension after the first: `(batch, ...)` to `(batch, features)`.
pub fn flatten(xs: &Tensor) -> candle_core::Result<Tensor> {
    xs.flatten_from(1)
}

/// ReLU as a module.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReluLayer;

impl Module for ReluLayer {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        relu(xs)
    }
}

struct Relu;

impl CustomOp1 for Relu {
    fn name(&self) -> &'static str {
        "stride-relu"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = slice("relu", storage, layout)?;
        let out: Vec<f32> = x.iter().map(|&v| v.max(0.0)).collect();
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        if !arg.track_op() {
            return Ok(None);
        }
        with_values("relu backward", grad, |g| {
            with_values("relu backward", arg, |x| {
                let dx: Vec<f32> = g
                    .iter()
                    .zip(x)
                    .map(|(&gv, &xv)| if xv >= 0.0 { gv } else { 0.0 })
                    .collect();
                Ok(Some(tensor(dx, arg.shape())?))
            })
        })
    }
}
