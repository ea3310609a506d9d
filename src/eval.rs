//! `stride eval`: a checkpoint's test loss and accuracy, per class, and its confusion
//! matrix, without training.

use std::path::PathBuf;

use candle_core::DType;
use candle_nn::{VarBuilder, VarMap};
use stride_data::{DatasetName, Loaded, Resolver};
use stride_model::{Activation, Architecture, Network, Parametrization};
use stride_train::{evaluate_classes, Checkpoint, ClassReport};

use crate::args::DeviceArgs;
use crate::Error;

/// Options of `stride eval`.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// The checkpoint: its directory, a checkpoint root (its `latest`), or a pointer file
    /// such as `runs/a/best`.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Dataset to evaluate on (default: the one the checkpoint was trained on).
    #[arg(long)]
    pub dataset: Option<String>,
    /// Directory with the IDX files (overrides STRIDE_DATA_DIR).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Examples per forward pass.
    #[arg(long, default_value_t = 1000)]
    pub batch_size: usize,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub device: DeviceArgs,
}

/// What `stride eval` found.
#[derive(Debug, Clone)]
pub struct EvalOutcome {
    /// The checkpoint directory evaluated.
    pub checkpoint: PathBuf,
    /// The dataset's test split it was evaluated on.
    pub dataset: DatasetName,
    /// The network.
    pub arch: Architecture,
    /// Loss, accuracy, per class.
    pub report: ClassReport,
}

impl EvalOutcome {
    /// The printed report.
    pub fn text(&self) -> String {
        let names = self.dataset.class_names();
        format!(
            "checkpoint: {}\nmodel: {}\ntest set of {}: loss {:.4}, accuracy {:.4}\n\n{}",
            self.checkpoint.display(),
            self.arch,
            self.dataset,
            self.report.loss,
            self.report.accuracy,
            self.report.table(&names)
        )
    }
}

/// Reads the checkpoint, rebuilds its network from the flags it was trained with, and
/// evaluates it on the test split.
pub fn run(args: &EvalArgs) -> Result<EvalOutcome, Error> {
    let device = args.device.device()?;
    let checkpoint = Checkpoint::load(&args.checkpoint)?;
    let run = &checkpoint.state.run;
    let field = |name: &str, default: &str| run.get(name).and_then(|v| v.as_str()).unwrap_or(default).to_string();
    let dataset = match &args.dataset {
        Some(d) => d.clone(),
        None => checkpoint
            .state
            .dataset
            .clone()
            .unwrap_or_else(|| field("dataset", "mnist")),
    };
    let name: DatasetName = dataset.parse()?;
    let activation: Activation = field("activation", "relu").parse()?;
    let Loaded { splits, source } = Resolver::from_env().with_data_dir(args.data_dir.clone()).load(name)?;
    tracing::info!("evaluating on the test split of {source}");
    let input = (1, splits.test.rows(), splits.test.cols());
    let classes = splits.test.classes();
    let arch = Architecture::from_args(
        &field("model", "mlp"),
        &field("hidden", "128"),
        &field("conv", "lenet"),
        input,
        classes,
    )?;
    let varmap = VarMap::new();
    let model = Network::new(&arch, activation, VarBuilder::from_varmap(&varmap, DType::F32, &device))?;
    let param = Parametrization::from_args(
        &field("param", "standard"),
        run.get("base_width")
            .and_then(serde_json::Value::as_u64)
            .map_or(128, |w| usize::try_from(w).unwrap_or(0)),
    )?;
    checkpoint.expect_model(&(Network::checkpoint_name(&arch, activation) + &param.checkpoint_suffix()))?;
    checkpoint.restore_weights(&varmap)?;
    let report = evaluate_classes(&model, &splits.test, &device, args.batch_size, classes)?;
    Ok(EvalOutcome {
        checkpoint: checkpoint.dir.clone(),
        dataset: name,
        arch,
        report,
    })
}
