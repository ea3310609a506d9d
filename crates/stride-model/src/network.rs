//! The built-in networks behind one type, so every command can train either.

use std::fmt;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::cnn::{Cnn, CnnSpec};
use crate::error::{ModelError, Result};
use crate::fused::FusedGrads;
use crate::mlp::{Activation, Mlp, MlpSpec};
use crate::model::Model;

/// Which built-in network, with its layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Architecture {
    /// An MLP, input and classes included: `784-128-10`.
    Mlp(MlpSpec),
    /// A CNN over `(channels, height, width)` images, classifier added to `classes`.
    Cnn {
        /// Its layers before the classifier.
        spec: CnnSpec,
        /// Image shape.
        input: (usize, usize, usize),
        /// Outputs.
        classes: usize,
    },
}

impl Architecture {
    /// From the command-line words: `model` is `mlp` (hidden widths `hidden`, e.g.
    /// `128` or `256-128`) or `cnn` (layers `conv`, e.g. `lenet`), for images of shape
    /// `input` and `classes` classes.
    pub fn from_args(
        model: &str,
        hidden: &str,
        conv: &str,
        input: (usize, usize, usize),
        classes: usize,
    ) -> Result<Self> {
        match model.trim().to_ascii_lowercase().as_str() {
            "mlp" => {
                if let Some(part) = hidden
                    .split('-')
                    .find(|p| p.trim().parse::<usize>().map_or(true, |w| w == 0))
                {
                    return Err(ModelError::Spec {
                        spec: hidden.to_string(),
                        message: format!(
                            "{part:?} is not a hidden width; expected positive numbers joined by '-', e.g. 128 or 256-128"
                        ),
                    });
                }
                let (c, h, w) = input;
                let spec: MlpSpec = format!("{}-{hidden}-{classes}", c * h * w).parse()?;
                check_fits(&spec)?;
                Ok(Self::Mlp(spec))
            }
            "cnn" => Ok(Self::Cnn {
                spec: conv.parse()?,
                input,
                classes,
            }),
            _ => Err(ModelError::Kind(model.to_string())),
        }
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Mlp(spec) => write!(f, "MLP {spec}"),
            Self::Cnn { spec, input, classes } => {
                write!(f, "CNN {}x{}x{} {spec} -> {classes}", input.0, input.1, input.2)
            }
        }
    }
}

/// A built-in network: an [`Mlp`] or a [`Cnn`].
#[derive(Debug, Clone)]
pub enum Network {
    /// The MLP.
    Mlp(Mlp),
    /// The CNN.
    Cnn(Cnn),
}

impl Network {
    /// Creates the network's layers under `vb`.
    pub fn new(arch: &Architecture, activation: Activation, vb: VarBuilder) -> Result<Self> {
        Ok(match arch {
            Architecture::Mlp(spec) => Self::Mlp(Mlp::new(spec, activation, vb)?),
            Architecture::Cnn { spec, input, classes } => Self::Cnn(Cnn::new(spec, *input, *classes, activation, vb)?),
        })
    }

    /// A fresh network whose f32 CPU variables live in `varmap`, initialised like PyTorch from `seed`.
    pub fn seeded(arch: &Architecture, activation: Activation, varmap: &VarMap, seed: u64) -> Result<Self> {
        let net = Self::new(
            arch,
            activation,
            VarBuilder::from_varmap(varmap, DType::F32, &Device::Cpu),
        )?;
        crate::reset_parameters(varmap, seed)?;
        Ok(net)
    }

    /// The identity a checkpoint records, e.g. `mlp 784-128-10 relu` or `cnn c8k5-mp2-c16k5-mp2 relu`.
    pub fn checkpoint_name(arch: &Architecture, activation: Activation) -> String {
        match arch {
            Architecture::Mlp(spec) => format!("mlp {spec} {activation}"),
            Architecture::Cnn { spec, input, classes } => {
                format!("cnn {}x{}x{} {spec} {classes} {activation}", input.0, input.1, input.2)
            }
        }
    }
}

impl Model for Network {
    fn logits(&self, xs: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        match self {
            Self::Mlp(m) => m.logits(xs, train),
            Self::Cnn(c) => c.logits(xs, train),
        }
    }

    fn fused_cross_entropy(&self, x: &Tensor, y: &Tensor, rows: &[u32]) -> candle_core::Result<Option<FusedGrads>> {
        match self {
            Self::Mlp(m) => m.fused_cross_entropy(x, y, rows),
            Self::Cnn(c) => c.fused_cross_entropy(x, y, rows),
        }
    }
}

/// Refuses an MLP whose training state would not fit in this machine's memory, before
/// anything is allocated (a 100000-100000 MLP would otherwise abort allocating 40 GB).
fn check_fits(spec: &MlpSpec) -> Result<()> {
    let parameters = spec
        .sizes
        .windows(2)
        .try_fold(0u64, |sum, w| {
            let (i, o) = (w[0] as u64, w[1] as u64);
            i.checked_mul(o)?.checked_add(o)?.checked_add(sum)
        })
        .unwrap_or(u64::MAX);
    // f32 weights, their gradients and two optimizer moments (Adam's; SGD needs fewer).
    let needed = parameters.saturating_mul(16);
    let available = physical_memory();
    if needed > available.unwrap_or(u64::MAX) || parameters == u64::MAX {
        return Err(ModelError::TooLarge {
            spec: spec.to_string(),
            parameters,
            needed: bytes(needed),
            available: available.map_or_else(|| "less".to_string(), bytes),
        });
    }
    Ok(())
}

/// The machine's memory in bytes (Linux: `MemTotal`), if it can be read.
fn physical_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// `40.0 GB`, `512 MB`.
fn bytes(n: u64) -> String {
    let gb = n as f64 / 1e9;
    if gb >= 1.0 {
        format!("{gb:.1} GB")
    } else {
        format!("{:.0} MB", n as f64 / 1e6)
    }
}
