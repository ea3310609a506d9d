//! Flags every subcommand that trains or loads a network shares, defined once so their
//! names, defaults and help cannot drift apart.

use std::path::PathBuf;

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use stride_data::{DatasetName, Loaded, Resolver};
use stride_model::{reset_parameters, Activation, Architecture, Network, Parametrization};
use stride_optim::{Optimizer, OptimizerKind, OptimizerSpec, UpdateFamily};

use crate::Error;

/// Which data: `--dataset`, `--data-dir`.
#[derive(Debug, Clone, clap::Args, serde::Serialize)]
pub struct DataArgs {
    /// Dataset: mnist or fashion-mnist.
    #[arg(long, default_value = "mnist")]
    pub dataset: String,
    /// Directory with the IDX files (overrides STRIDE_DATA_DIR).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

impl DataArgs {
    /// The dataset named, checked.
    pub fn name(&self) -> Result<DatasetName, Error> {
        Ok(self.dataset.parse()?)
    }

    /// Loads it from the first source that has it (see the README's data section).
    pub fn load(&self) -> Result<Loaded, Error> {
        Ok(Resolver::from_env()
            .with_data_dir(self.data_dir.clone())
            .load(self.name()?)?)
    }
}

/// Which network: `--model`, `--hidden`, `--conv`, `--activation`, `--seed`, `--param`, `--base-width`.
#[derive(Debug, Clone, clap::Args, serde::Serialize)]
pub struct NetArgs {
    /// Network: mlp (hidden widths from --hidden) or cnn (layers from --conv).
    #[arg(long, default_value = "mlp")]
    pub model: String,
    /// MLP hidden layer widths joined by '-', e.g. 128 or 256-128.
    #[arg(long, default_value = "128")]
    pub hidden: String,
    /// CNN layers before the classifier, e.g. c8k5-mp2-c16k5-mp2 (conv 8 channels 5x5,
    /// max-pool 2, ...; c<out>k<k>[s<stride>][p<pad>], mp<k>, ap<k>, f<width>), or a preset:
    /// lenet (that one), lenet5.
    #[arg(long, default_value = "lenet")]
    pub conv: String,
    /// Activation between layers: relu, gelu, silu, tanh, sigmoid, leaky-relu.
    #[arg(long, default_value = "relu")]
    pub activation: String,
    /// Seed of the initialisation, the shuffle and everything else drawn at random.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Parametrization: standard (PyTorch's), or mup, whose per-layer rates and zero readout
    /// make a rate tuned at --base-width hold at every width.
    #[arg(long, default_value = "standard")]
    pub param: String,
    /// muP's base width: the width its rates are tuned at (MLP hidden units, CNN channels).
    #[arg(long, default_value_t = 128)]
    pub base_width: usize,
}

impl NetArgs {
    /// The activation named, checked.
    pub fn activation(&self) -> Result<Activation, Error> {
        Ok(self.activation.parse()?)
    }

    /// The parametrization named, checked.
    pub fn parametrization(&self) -> Result<Parametrization, Error> {
        Ok(Parametrization::from_args(&self.param, self.base_width)?)
    }

    /// A fresh network of `arch` in `varmap` on `device`, initialised from the seed like
    /// PyTorch, then as the parametrization asks (muP zeroes the readout).
    pub fn network(&self, arch: &Architecture, varmap: &VarMap, device: &Device) -> Result<Network, Error> {
        let model = Network::new(
            arch,
            self.activation()?,
            VarBuilder::from_varmap(varmap, DType::F32, device),
        )?;
        reset_parameters(varmap, self.seed)?;
        self.parametrization()?.initialise(arch, varmap)?;
        Ok(model)
    }

    /// The identity a checkpoint records: the network, its activation and parametrization.
    pub fn model_name(&self, arch: &Architecture) -> Result<String, Error> {
        Ok(Network::checkpoint_name(arch, self.activation()?) + &self.parametrization()?.checkpoint_suffix())
    }

    /// `kind` over the variables of `varmap`, each at the rate its parametrization gives it
    /// (one group at `lr` for the standard parametrization).
    pub fn optimizer(
        &self,
        kind: impl Into<OptimizerSpec>,
        arch: &Architecture,
        varmap: &VarMap,
        lr: f64,
        momentum: Option<f64>,
        weight_decay: Option<f64>,
    ) -> Result<Box<dyn Optimizer>, Error> {
        let kind = kind.into();
        let scales = self.rate_scales(kind, arch)?;
        let groups = stride_train::rate_groups(varmap, &scales)?;
        Ok(kind.build_groups(groups, lr, momentum, weight_decay)?)
    }

    /// Each variable's rate multiplier under the parametrization, for `kind` (empty: all 1).
    pub fn rate_scales(
        &self,
        kind: impl Into<OptimizerSpec>,
        arch: &Architecture,
    ) -> Result<Vec<(String, f64)>, Error> {
        Ok(self
            .parametrization()?
            .rate_scales(arch, kind.into().family == UpdateFamily::Sgd))
    }

    /// Checks the network flags before any data is loaded (both datasets are 1x28x28 with 10
    /// classes; the real shape is used once loaded).
    pub fn check(&self) -> Result<(), Error> {
        self.activation()?;
        self.parametrization()?;
        self.architecture((1, 28, 28), 10)?;
        Ok(())
    }

    /// The network for inputs of shape `input` (channels, rows, columns) and `classes` classes.
    pub fn architecture(&self, input: (usize, usize, usize), classes: usize) -> Result<Architecture, Error> {
        Ok(Architecture::from_args(
            &self.model,
            &self.hidden,
            &self.conv,
            input,
            classes,
        )?)
    }

    /// The network for a loaded dataset.
    pub fn architecture_for(&self, data: &stride_data::Dataset) -> Result<Architecture, Error> {
        self.architecture((1, data.rows(), data.cols()), data.classes())
    }
}

/// Where tensors live: `--device cpu|cuda|cuda:N|metal`.
#[derive(Debug, Clone, clap::Args, serde::Serialize)]
pub struct DeviceArgs {
    /// Device: cpu, cuda (GPU 0), cuda:N, or metal. GPUs need a build with `--features cuda`
    /// (or `metal`); the CPU's fast paths (fused kernels, thread team) are CPU-only.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

impl DeviceArgs {
    /// The device named, or an error saying why it cannot be used and what to do.
    pub fn device(&self) -> Result<Device, Error> {
        let spec = self.device.trim().to_ascii_lowercase();
        let (kind, index) = match spec.split_once(':') {
            Some((kind, n)) => (
                kind.to_string(),
                n.parse::<usize>()
                    .map_err(|_| Error::Usage(format!("--device {}: {n:?} is not a GPU index", self.device)))?,
            ),
            None => (spec.clone(), 0),
        };
        match kind.as_str() {
            "cpu" if !spec.contains(':') => Ok(Device::Cpu),
            "cuda" if !cfg!(feature = "cuda") => Err(Error::Usage(format!(
                "--device {}: this build of Stride has no CUDA support; rebuild with `cargo build --release \
                 --features cuda` (needs the CUDA toolkit), or train on the cpu",
                self.device
            ))),
            "metal" if !cfg!(feature = "metal") => Err(Error::Usage(format!(
                "--device {}: this build of Stride has no Metal support; rebuild with `cargo build --release \
                 --features metal` (macOS), or train on the cpu",
                self.device
            ))),
            "cuda" => Device::new_cuda(index)
                .map_err(|e| Error::Usage(format!("--device {}: no usable CUDA GPU {index}: {e}", self.device))),
            "metal" => Device::new_metal(index)
                .map_err(|e| Error::Usage(format!("--device {}: no usable Metal GPU {index}: {e}", self.device))),
            _ => Err(Error::Usage(format!(
                "--device {}: expected cpu, cuda, cuda:N or metal",
                self.device
            ))),
        }
    }
}

/// How the monitor should read `kind`'s rate: a step size, or a multiplier on one the
/// optimizer estimates (its suggestions are then in the method's own terms).
pub fn monitor_step_size(kind: impl Into<OptimizerSpec>) -> stride_monitor::StepSize {
    // An outside rule's rate is a step size unless it is one of these estimators.
    match kind.into().name.parse::<OptimizerKind>() {
        Ok(OptimizerKind::Prodigy) => stride_monitor::StepSize::Prodigy,
        Ok(OptimizerKind::DAdaptAdam | OptimizerKind::DAdaptSgd) => stride_monitor::StepSize::DAdaptation,
        _ => stride_monitor::StepSize::Rate,
    }
}
