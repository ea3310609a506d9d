//! A multi-layer perceptron described by a spec string such as `"784-128-10"`.

use std::fmt;
use std::str::FromStr;

use candle_core::{DType, Device, Tensor};
use candle_nn::{Module, ModuleT, VarBuilder, VarMap};

use crate::nn::{linear, Linear};

use crate::fused::{self, FusedGrads, FusedState, LayerRef};
use crate::model::Model;

use crate::error::{ModelError, Result};

/// The non-linearity between hidden layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Activation {
    /// max(0, x) (default).
    #[default]
    Relu,
    /// Gaussian error linear unit (tanh approximation, as candle's `gelu`).
    Gelu,
    /// x * sigmoid(x).
    Silu,
    /// Hyperbolic tangent.
    Tanh,
    /// Logistic sigmoid.
    Sigmoid,
    /// max(0.01 x, x).
    LeakyRelu,
}

impl Activation {
    /// Applies the activation.
    pub fn apply(self, xs: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::Relu => crate::nn::relu(xs),
            Self::Gelu => xs.gelu(),
            Self::Silu => xs.silu(),
            Self::Tanh => xs.tanh(),
            Self::Sigmoid => candle_nn::ops::sigmoid(xs),
            Self::LeakyRelu => candle_nn::ops::leaky_relu(xs, 0.01),
        }
    }
}

impl FromStr for Activation {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "relu" => Ok(Self::Relu),
            "gelu" => Ok(Self::Gelu),
            "silu" | "swish" => Ok(Self::Silu),
            "tanh" => Ok(Self::Tanh),
            "sigmoid" => Ok(Self::Sigmoid),
            "leaky-relu" | "leaky_relu" | "leakyrelu" => Ok(Self::LeakyRelu),
            _ => Err(ModelError::Activation(s.to_string())),
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Relu => "relu",
            Self::Gelu => "gelu",
            Self::Silu => "silu",
            Self::Tanh => "tanh",
            Self::Sigmoid => "sigmoid",
            Self::LeakyRelu => "leaky-relu",
        })
    }
}

/// Layer widths of an MLP, input first and classes last: `"784-128-10"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MlpSpec {
    /// Widths, at least two (input and output).
    pub sizes: Vec<usize>,
}

impl MlpSpec {
    /// Input width, hidden widths, output width.
    pub fn new(sizes: Vec<usize>) -> Result<Self> {
        let spec = sizes.iter().map(usize::to_string).collect::<Vec<_>>().join("-");
        if sizes.len() < 2 {
            return Err(ModelError::Spec {
                spec,
                message: "expected at least an input and an output width, e.g. 784-10".into(),
            });
        }
        if sizes.contains(&0) {
            return Err(ModelError::Spec {
                spec,
                message: "widths must be positive".into(),
            });
        }
        Ok(Self { sizes })
    }
}

impl FromStr for MlpSpec {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self> {
        let sizes = s
            .split('-')
            .map(|part| {
                part.trim().parse::<usize>().map_err(|_| ModelError::Spec {
                    spec: s.to_string(),
                    message: format!("{part:?} is not a width; expected numbers joined by '-', e.g. 784-128-10"),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Self::new(sizes)
    }
}

impl fmt::Display for MlpSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.sizes.iter().map(usize::to_string).collect();
        f.write_str(&parts.join("-"))
    }
}

/// Fully connected layers with an activation between them (none after the last).
///
/// Variables are named `fc{i}.weight` / `fc{i}.bias`, as `nn.Sequential` would
/// number them, so [`crate::reset_parameters`] initialises them like PyTorch.
#[derive(Debug, Clone)]
pub struct Mlp {
    layers: Vec<Linear>,
    activation: Activation,
    fused: FusedState,
}

impl Mlp {
    /// Creates the layers under `vb`.
    pub fn new(spec: &MlpSpec, activation: Activation, vb: VarBuilder) -> Result<Self> {
        let layers = spec
            .sizes
            .windows(2)
            .enumerate()
            .map(|(i, w)| linear(w[0], w[1], vb.pp(format!("fc{i}"))))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            layers,
            activation,
            fused: FusedState::default(),
        })
    }

    /// A fresh MLP whose f32 CPU variables live in `varmap`, initialised like PyTorch from
    /// `seed`: the same weights for the same seed, which sweeps and comparisons rely on.
    pub fn seeded(spec: &MlpSpec, activation: Activation, varmap: &VarMap, seed: u64) -> Result<Self> {
        let model = Self::new(
            spec,
            activation,
            VarBuilder::from_varmap(varmap, DType::F32, &Device::Cpu),
        )?;
        crate::reset_parameters(varmap, seed)?;
        Ok(model)
    }
}

impl Mlp {
    /// Whether training steps can take the fused CPU path (ReLU, tanh and sigmoid MLPs);
    /// the other activations train through candle's autograd.
    pub fn has_fused_path(&self) -> bool {
        fused::supported(self.activation)
    }

    /// Forward pass to logits through candle ops (what evaluation and autograd use).
    pub fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let mut outputs = self.layer_outputs(xs)?;
        outputs
            .pop()
            .ok_or_else(|| candle_core::Error::Msg("an MLP has at least one layer".into()))
    }

    /// Every layer's output before its activation, the logits last: what a coordinate check
    /// measures.
    pub fn layer_outputs(&self, xs: &Tensor) -> candle_core::Result<Vec<Tensor>> {
        let mut outputs = Vec::with_capacity(self.layers.len());
        let mut xs = xs.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            let out = layer.forward(&xs)?;
            if i + 1 < self.layers.len() {
                xs = self.activation.apply(&out)?;
            }
            outputs.push(out);
        }
        Ok(outputs)
    }
}

impl ModuleT for Mlp {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> candle_core::Result<Tensor> {
        self.forward(xs)
    }
}

impl Model for Mlp {
    fn logits(&self, xs: &Tensor, _train: bool) -> candle_core::Result<Tensor> {
        self.forward(xs)
    }

    fn fused_cross_entropy(&self, x: &Tensor, y: &Tensor, rows: &[u32]) -> candle_core::Result<Option<FusedGrads>> {
        let layers: Vec<LayerRef<'_>> = self
            .layers
            .iter()
            .map(|l| LayerRef {
                weight: l.weight(),
                bias: l.bias(),
            })
            .collect();
        fused::step(&self.fused, &layers, self.activation, x, y, rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_parses_and_rejects() {
        assert_eq!("784-128-10".parse::<MlpSpec>().unwrap().sizes, vec![784, 128, 10]);
        assert!("784".parse::<MlpSpec>().is_err());
        assert!("784-x-10".parse::<MlpSpec>().unwrap_err().to_string().contains("\"x\""));
        assert!("784-0-10".parse::<MlpSpec>().is_err());
        assert_eq!("GELU".parse::<Activation>().unwrap(), Activation::Gelu);
        assert!("softsign".parse::<Activation>().is_err());
    }
}
