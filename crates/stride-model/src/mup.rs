//! How a built-in network's initial weights and per-layer learning rates scale with its
//! width: the standard parametrization, or muP (Yang et al. 2022, "Tensor Programs V").
//!
//! muP follows the paper's Table 3 relative to a base width `B` (the mup package's
//! `set_base_shapes`): a dimension that grows with the width (hidden units, conv channels)
//! has multiplier `m = d / B`; the image, the classes and kernel sizes do not grow. Weights
//! keep PyTorch's `1/fan_in` variance, biases keep the size they have at the base width, the
//! readout starts at zero, and each variable trains at the optimizer's rate times
//!
//! | variable                | SGD            | Adam family |
//! |-------------------------|----------------|-------------|
//! | weight                  | `m_out / m_in` | `1 / m_in`  |
//! | bias                    | `m_out`        | `1`         |
//!
//! which is Table 3 row by row: input weights `m` (SGD) and `1` (Adam), hidden weights `1`
//! and `1/m`, output weights `1/m` for both, biases like input weights. At the base width
//! every multiplier is 1 and muP differs from the standard parametrization only in the
//! zero readout, so a rate tuned at width `B` is the rate at every width.

use std::fmt;
use std::str::FromStr;

use candle_core::Tensor;
use candle_nn::VarMap;

use crate::cnn::CnnLayer;
use crate::error::{ModelError, Result};
use crate::network::Architecture;

/// How a network's initialisation and per-layer rates depend on its width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Parametrization {
    /// PyTorch's defaults: every variable at the optimizer's rate (what every framework does).
    #[default]
    Standard,
    /// Maximal-update parametrization relative to a base width: rates tuned at `base_width`
    /// hold at every width.
    MuP {
        /// The width the rates are tuned at; every growing dimension is measured against it.
        base_width: usize,
    },
}

/// How one variable's dimensions grow with the width: the multipliers `m_in`, `m_out`
/// (1 for a dimension that does not grow).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WidthShape {
    /// Multiplier of the input dimension (the fan-in's growing part).
    pub fan_in: f64,
    /// Multiplier of the output dimension.
    pub fan_out: f64,
    /// True for a bias (a vector over the output dimension).
    pub bias: bool,
    /// True for the readout's weight (to the classes), which muP starts at zero.
    pub readout: bool,
}

impl Parametrization {
    /// From the command-line words: `standard` (or `sp`), or `mup` with `base_width`.
    pub fn from_args(name: &str, base_width: usize) -> Result<Self> {
        let param: Self = name.parse()?;
        Ok(match param {
            Self::MuP { .. } => Self::mup(base_width)?,
            Self::Standard => Self::Standard,
        })
    }

    /// muP at `base_width`, which must be positive.
    pub fn mup(base_width: usize) -> Result<Self> {
        if base_width == 0 {
            return Err(ModelError::Spec {
                spec: "--base-width 0".into(),
                message: "expected a base width of at least 1, e.g. 64".into(),
            });
        }
        Ok(Self::MuP { base_width })
    }

    /// The multiplier of each variable's rate, by name, for an optimizer whose step grows with
    /// the gradient (`sgd_like`: SGD) or is normalised entrywise (Adam, RMSprop, Lion, ...).
    /// Empty for the standard parametrization (every variable at the optimizer's rate).
    pub fn rate_scales(&self, arch: &Architecture, sgd_like: bool) -> Vec<(String, f64)> {
        let Self::MuP { base_width } = *self else {
            return Vec::new();
        };
        width_shapes(arch, base_width)
            .into_iter()
            .map(|(name, s)| {
                let out = if sgd_like { s.fan_out } else { 1.0 };
                let scale = if s.bias { out } else { out / s.fan_in };
                (name, scale)
            })
            .collect()
    }

    /// Applies the parametrization's initialisation to freshly reset variables (after
    /// [`crate::reset_parameters`]): muP zeroes the readout weight and gives every bias the
    /// size it has at the base width.
    ///
    /// PyTorch draws a bias from `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`, which shrinks as the
    /// layer below widens; in muP a bias is a vector with fan-in 1 (Table 3: variance
    /// independent of the width), so it is scaled by `sqrt(m_in)`, the base width's bound.
    pub fn initialise(&self, arch: &Architecture, varmap: &VarMap) -> Result<()> {
        let Self::MuP { base_width } = *self else {
            return Ok(());
        };
        let data = varmap.data().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for (name, shape) in width_shapes(arch, base_width) {
            let var = data.get(&name).ok_or_else(|| ModelError::Spec {
                spec: arch.to_string(),
                message: format!("has no variable {name} for muP to initialise"),
            })?;
            if shape.readout {
                var.set(&Tensor::zeros(var.shape(), var.dtype(), var.device())?)?;
            } else if shape.bias && shape.fan_in != 1.0 {
                var.set(&var.as_tensor().affine(shape.fan_in.sqrt(), 0.0)?)?;
            }
        }
        Ok(())
    }

    /// What a checkpoint records beside the model's name: empty for the standard
    /// parametrization, ` mup base 64` for muP, so a run resumes only as it was built.
    pub fn checkpoint_suffix(&self) -> String {
        match self {
            Self::Standard => String::new(),
            Self::MuP { base_width } => format!(" mup base {base_width}"),
        }
    }
}

impl FromStr for Parametrization {
    type Err = ModelError;

    /// `standard`/`sp`, or `mup` (base width 128 until set: see [`Self::from_args`]).
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "standard" | "sp" => Ok(Self::Standard),
            "mup" | "µp" | "mu-p" => Ok(Self::MuP { base_width: 128 }),
            _ => Err(ModelError::Spec {
                spec: s.to_string(),
                message: "is not a parametrization; expected standard (or sp) or mup".into(),
            }),
        }
    }
}

impl fmt::Display for Parametrization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Standard => f.write_str("standard"),
            Self::MuP { base_width } => write!(f, "muP (base width {base_width})"),
        }
    }
}

/// Every weight and bias of a built-in network with its width multipliers, in layer order.
pub fn width_shapes(arch: &Architecture, base_width: usize) -> Vec<(String, WidthShape)> {
    let base = base_width.max(1) as f64;
    // (variable prefix, input multiplier, output multiplier) of each layer.
    let mut layers: Vec<(String, f64, f64)> = Vec::new();
    match arch {
        Architecture::Mlp(spec) => {
            let n = spec.sizes.len();
            let grows = |i: usize| i != 0 && i + 1 != n;
            for i in 0..n - 1 {
                let m = |j: usize| if grows(j) { spec.sizes[j] as f64 / base } else { 1.0 };
                layers.push((format!("fc{i}"), m(i), m(i + 1)));
            }
        }
        Architecture::Cnn { spec, .. } => {
            // The growing part of the features entering a layer: the image's channels do not
            // grow; a conv's channels and a dense layer's units do (kernels and maps do not).
            let mut features = 1.0;
            for (i, item) in spec.layers.iter().enumerate() {
                match *item {
                    CnnLayer::Conv { out, .. } => {
                        let m_out = out as f64 / base;
                        layers.push((format!("conv{i}"), features, m_out));
                        features = m_out;
                    }
                    CnnLayer::Dense(width) => {
                        let m_out = width as f64 / base;
                        layers.push((format!("fc{i}"), features, m_out));
                        features = m_out;
                    }
                    CnnLayer::MaxPool(_) | CnnLayer::AvgPool(_) => {}
                }
            }
            layers.push((format!("fc{}", spec.layers.len()), features, 1.0));
        }
    }
    let last = layers.len().saturating_sub(1);
    layers
        .into_iter()
        .enumerate()
        .flat_map(|(i, (prefix, fan_in, fan_out))| {
            let shape = WidthShape {
                fan_in,
                fan_out,
                bias: false,
                readout: i == last,
            };
            [
                (format!("{prefix}.weight"), shape),
                (
                    format!("{prefix}.bias"),
                    WidthShape {
                        bias: true,
                        readout: false,
                        ..shape
                    },
                ),
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scales(arch: &str, base: usize, sgd: bool) -> Vec<(String, f64)> {
        let arch = Architecture::Mlp(arch.parse().unwrap());
        Parametrization::mup(base).unwrap().rate_scales(&arch, sgd)
    }

    #[test]
    fn mlp_rates_follow_table_3() {
        // Width 512 against base 128: m = 4.
        let adam = scales("784-512-512-10", 128, false);
        let sgd = scales("784-512-512-10", 128, true);
        let get = |v: &[(String, f64)], n: &str| v.iter().find(|(name, _)| name == n).unwrap().1;
        // Input weights: Adam 1, SGD m; hidden: Adam 1/m, SGD 1; readout: 1/m for both.
        assert_eq!(get(&adam, "fc0.weight"), 1.0);
        assert_eq!(get(&sgd, "fc0.weight"), 4.0);
        assert_eq!(get(&adam, "fc1.weight"), 0.25);
        assert_eq!(get(&sgd, "fc1.weight"), 1.0);
        assert_eq!(get(&adam, "fc2.weight"), 0.25);
        assert_eq!(get(&sgd, "fc2.weight"), 0.25);
        // Biases: Adam 1; SGD m, except the readout's (classes do not grow).
        assert_eq!(get(&adam, "fc1.bias"), 1.0);
        assert_eq!(get(&sgd, "fc1.bias"), 4.0);
        assert_eq!(get(&sgd, "fc2.bias"), 1.0);
        // At the base width every rate is the optimizer's.
        assert!(scales("784-128-128-10", 128, true).iter().all(|(_, s)| *s == 1.0));
        let standard = Architecture::Mlp("784-512-10".parse().unwrap());
        assert!(Parametrization::Standard.rate_scales(&standard, true).is_empty());
    }

    #[test]
    fn cnn_channels_are_the_width() {
        let arch = Architecture::Cnn {
            spec: "c16k5-mp2-c32k5-mp2".parse().unwrap(),
            input: (1, 28, 28),
            classes: 10,
        };
        let shapes = width_shapes(&arch, 8);
        let names: Vec<&str> = shapes.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "conv0.weight",
                "conv0.bias",
                "conv2.weight",
                "conv2.bias",
                "fc4.weight",
                "fc4.bias"
            ]
        );
        let (_, conv2) = shapes[2];
        assert_eq!((conv2.fan_in, conv2.fan_out), (2.0, 4.0));
        let (_, readout) = shapes[4];
        assert!(readout.readout && readout.fan_in == 4.0 && readout.fan_out == 1.0);
        assert_eq!((shapes[0].1.fan_in, shapes[0].1.fan_out), (1.0, 2.0));
    }

    #[test]
    fn parses_and_checks_the_base() {
        assert_eq!(Parametrization::from_args("SP", 64).unwrap(), Parametrization::Standard);
        assert_eq!(
            Parametrization::from_args("mup", 64).unwrap(),
            Parametrization::MuP { base_width: 64 }
        );
        assert!(Parametrization::from_args("mup", 0).is_err());
        assert!("ntk"
            .parse::<Parametrization>()
            .unwrap_err()
            .to_string()
            .contains("mup"));
    }
}
