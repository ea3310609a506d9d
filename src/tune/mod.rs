//! The learning-rate tools, `stride lr-find` ([`lr_find`]) and `stride sweep` ([`sweep`]):
//! the data and model set-up they share, and writing their tables and plots.

use std::path::Path;

use candle_core::Device;
use candle_nn::VarMap;
use stride_data::{DatasetName, Loaded, Source, Splits};
use stride_model::{Activation, Architecture, Network, Parametrization};
use stride_monitor::MonitorConfig;
use stride_optim::{Optimizer, OptimizerSpec, Registry};
use stride_train::TrainError;

mod lr_find;
mod sweep;

pub use lr_find::{find_lr, lr_find_job, LrFindArgs};
pub use sweep::{parse_lrs, sweep_job, SweepArgs, SweepOutcome};

use crate::args::{DataArgs, DeviceArgs, NetArgs};
use crate::Error;

/// Data, model and optimizer options shared by the LR tools.
#[derive(Debug, Clone, clap::Args)]
pub struct SetupArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub data: DataArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub net: NetArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub device: DeviceArgs,
    /// Threads for the tensor kernels (default: the cores this process may use).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Optimizer: sgd, adam, adamw, rmsprop, adagrad, adadelta, adamax, nadam, radam, lion, or the
    /// tuning-free sf-adamw, sf-sgd (Schedule-Free), prodigy, dadapt-adam, dadapt-sgd.
    #[arg(long, default_value = "sgd")]
    pub optimizer: String,
    /// Momentum (SGD, RMSprop) or beta1 (Adam family); PyTorch's default when absent.
    #[arg(long, allow_negative_numbers = true)]
    pub momentum: Option<f64>,
    /// Weight decay; PyTorch's default when absent.
    #[arg(long, allow_negative_numbers = true)]
    pub weight_decay: Option<f64>,
    /// Examples per step.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
}

/// Loaded data and a model recipe.
pub struct Setup {
    /// Train and test splits.
    pub splits: Splits,
    /// Where they came from.
    pub source: Source,
    /// Which dataset.
    pub name: DatasetName,
    /// The network.
    pub arch: Architecture,
    /// Its activation.
    pub activation: Activation,
    /// The optimizer, from the registry it was loaded with.
    pub kind: OptimizerSpec,
    /// Where the model and the data live.
    pub device: Device,
    /// The options it was made from.
    pub args: SetupArgs,
}

impl Setup {
    /// Loads the data and checks the model and optimizer options (the built-in optimizers).
    pub fn load(args: &SetupArgs) -> Result<Self, Error> {
        Self::load_with(args, &Registry::builtin())
    }

    /// [`Setup::load`] with `--optimizer` looked up in `optimizers`, so a program's own
    /// rules (registered there) run through lr-find, sweeps and sharpness as built-ins do.
    pub fn load_with(args: &SetupArgs, optimizers: &Registry) -> Result<Self, Error> {
        if let Some(threads) = args.threads {
            crate::set_threads(threads)?;
        }
        let name: DatasetName = args.data.name()?;
        let kind = optimizers.get(&args.optimizer)?;
        let activation: Activation = args.net.activation()?;
        args.net.check()?;
        let device = args.device.device()?;
        // The optimizer's own checks of momentum and decay (the rate is the caller's, checked there).
        kind.build(Vec::new(), 1e-3, args.momentum, args.weight_decay)?;
        let Loaded { splits, source } = args.data.load()?;
        let arch = args.net.architecture_for(&splits.train)?;
        Ok(Self {
            splits,
            source,
            name,
            arch,
            activation,
            kind,
            device,
            args: args.clone(),
        })
    }

    /// A fresh network in `varmap`, initialised from the seed (the same weights every call).
    pub fn model(&self, varmap: &VarMap) -> Result<Network, Error> {
        self.args.net.network(&self.arch, varmap, &self.device)
    }

    /// The optimizer over `varmap`'s variables at `lr`, each at its parametrization's rate.
    pub fn optimizer(&self, varmap: &VarMap, lr: f64) -> Result<Box<dyn Optimizer>, Error> {
        self.args.net.optimizer(
            self.kind,
            &self.arch,
            varmap,
            lr,
            self.args.momentum,
            self.args.weight_decay,
        )
    }

    /// `MLP 784-128-10 (relu) on fashion-mnist, sgd, batch 128`.
    pub fn describe(&self) -> String {
        let param = match self.args.net.parametrization() {
            Ok(Parametrization::Standard) | Err(_) => String::new(),
            Ok(p) => format!(", {p}"),
        };
        format!(
            "{} ({}{param}) on {}, {}, batch {}",
            self.arch, self.activation, self.name, self.kind, self.args.batch_size
        )
    }

    /// The monitor settings for this data.
    pub fn monitor_config(&self) -> MonitorConfig {
        MonitorConfig {
            num_classes: u32::try_from(self.splits.train.classes()).ok(),
            eval_every: 8,
            step_size: crate::args::monitor_step_size(self.kind),
            ..MonitorConfig::default()
        }
    }
}

/// Pretty JSON of a result, for `--json` outputs.
pub(crate) fn to_json(value: &impl serde::Serialize) -> Result<String, Error> {
    serde_json::to_string_pretty(value).map_err(|e| Error::Json(e.to_string()))
}

/// Writes an output file the user asked for, naming it in the error and the log.
pub(crate) fn write(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::write(path, text).map_err(|source| {
        Error::Train(TrainError::Io {
            path: path.to_path_buf(),
            source,
        })
    })?;
    tracing::info!("wrote {}", path.display());
    Ok(())
}
