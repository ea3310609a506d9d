//! The learning-rate tools shared by `stride lr-find`, `stride sweep` and their examples:
//! data and model set-up, the jobs, and writing their tables and plots.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_nn::VarMap;
use stride_data::{DatasetName, Loaded, Source, Splits};
use stride_model::{Activation, Architecture, Model, Network};
use stride_monitor::MonitorConfig;
use stride_optim::OptimizerKind;
use stride_train::{
    decade_grid, format_lr, lr_find, lr_find_repeated, sgd_stability_bound, sweep, LrFinderConfig, LrFinderResult,
    RampMode, SweepConfig, SweepResult, SweepRun, TrainError,
};

use crate::args::{DataArgs, NetArgs};
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
    /// Threads for the tensor kernels (default: the cores this process may use).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Optimizer: sgd, adam, adamw, rmsprop, adagrad, adadelta, adamax, nadam, radam.
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
    /// The optimizer.
    pub kind: OptimizerKind,
    /// The options it was made from.
    pub args: SetupArgs,
}

impl Setup {
    /// Loads the data and checks the model and optimizer options.
    pub fn load(args: &SetupArgs) -> Result<Self, Error> {
        if let Some(threads) = args.threads {
            crate::set_threads(threads)?;
        }
        let name: DatasetName = args.data.name()?;
        let kind: OptimizerKind = args.optimizer.parse()?;
        let activation: Activation = args.net.activation()?;
        args.net.check()?;
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
            args: args.clone(),
        })
    }

    /// A fresh network in `varmap`, initialised from the seed (the same weights every call).
    pub fn model(&self, varmap: &VarMap) -> Result<Network, Error> {
        Ok(Network::seeded(
            &self.arch,
            self.activation,
            varmap,
            self.args.net.seed,
        )?)
    }

    /// `MLP 784-128-10 (relu) on fashion-mnist, sgd, batch 128`.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}) on {}, {}, batch {}",
            self.arch, self.activation, self.name, self.kind, self.args.batch_size
        )
    }

    /// The monitor settings for this data.
    pub fn monitor_config(&self) -> MonitorConfig {
        MonitorConfig {
            num_classes: u32::try_from(self.splits.train.classes()).ok(),
            eval_every: 8,
            ..MonitorConfig::default()
        }
    }
}

/// Options of `stride lr-find`.
#[derive(Debug, Clone, clap::Args)]
pub struct LrFindArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub setup: SetupArgs,
    /// First rate of the ramp.
    #[arg(long, allow_negative_numbers = true, default_value_t = 1e-7)]
    pub start_lr: f64,
    /// Rate the ramp heads for.
    #[arg(long, allow_negative_numbers = true, default_value_t = 10.0)]
    pub end_lr: f64,
    /// Steps of the ramp.
    #[arg(long, default_value_t = 100)]
    pub num_iters: usize,
    /// Grow the rate linearly instead of exponentially.
    #[arg(long)]
    pub linear: bool,
    /// Run every step even after the loss blows up (default: stop at 4x the best smoothed loss).
    #[arg(long)]
    pub no_stop: bool,
    /// Write the plot (loss against rate, suggestions marked) here.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// Write `step,lr,loss,smoothed` rows here.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write the whole result as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Run the test this many times, batch-order seeds --seed, --seed + 1, ..., from the same
    /// initial weights, and report how far each suggestion moves (max/min and interval).
    #[arg(long, default_value_t = 1)]
    pub repeats: usize,
    /// SGD: estimate the sharpness lambda of the initial weights on this many training
    /// examples and cap the suggestion at the stability limit 2(1 + momentum)/lambda (0: no cap).
    #[arg(long, default_value_t = 0)]
    pub sharpness_examples: usize,
}

impl LrFindArgs {
    /// The range-test settings these options describe.
    pub fn config(&self) -> LrFinderConfig {
        LrFinderConfig {
            start_lr: self.start_lr,
            end_lr: self.end_lr,
            num_iters: self.num_iters,
            mode: if self.linear {
                RampMode::Linear
            } else {
                RampMode::Exponential
            },
            stop_factor: (!self.no_stop).then_some(4.0),
            batch_size: self.setup.batch_size,
            seed: self.setup.net.seed,
            ..LrFinderConfig::default()
        }
    }
}

/// Runs the range test on a fresh model from `setup`.
pub fn find_lr(setup: &Setup, config: &LrFinderConfig) -> Result<LrFinderResult, Error> {
    let varmap = VarMap::new();
    let model = setup.model(&varmap)?;
    let mut optimizer = setup.kind.build(
        varmap.all_vars(),
        config.start_lr,
        setup.args.momentum,
        setup.args.weight_decay,
    )?;
    Ok(lr_find(&model, optimizer.as_mut(), &setup.splits.train, config)?)
}

/// `stride lr-find`: runs the test, writes the requested files, returns the printed report.
pub fn lr_find_job(args: &LrFindArgs) -> Result<String, Error> {
    // Bad flags are reported before the data loads.
    args.config().validate()?;
    if args.repeats == 0 {
        return Err(Error::Train(TrainError::Config {
            name: "repeats",
            value: "0".into(),
            message: "expected at least 1 repeat",
        }));
    }
    let setup = Setup::load(&args.setup)?;
    tracing::info!("LR range test: {} (data: {})", setup.describe(), setup.source);
    let config = args.config();
    let varmap = VarMap::new();
    let model = setup.model(&varmap)?;
    let mut optimizer = setup.kind.build(
        varmap.all_vars(),
        config.start_lr,
        setup.args.momentum,
        setup.args.weight_decay,
    )?;
    let mut note = String::new();
    let bound = match (args.sharpness_examples, setup.kind) {
        (0, _) => None,
        (n, OptimizerKind::Sgd) => Some(sgd_stability_bound(
            &model,
            &varmap.all_vars(),
            &setup.splits.train,
            n,
            // The batch-order seed is the set-up's seed; it also picks the examples.
            config.seed,
            setup.args.momentum,
        )?),
        (_, kind) => {
            note = format!("\n(--sharpness-examples: the limit 2(1 + momentum)/lambda is SGD's; no cap for {kind})\n");
            None
        }
    };
    let (table, svg, csv, json) = if args.repeats > 1 {
        let mut result = lr_find_repeated(&model, optimizer.as_mut(), &setup.splits.train, &config, args.repeats)?;
        if let Some(b) = bound {
            result.cap_at_stability_limit(b);
        }
        (result.table(), result.to_svg(), result.to_csv(), to_json(&result)?)
    } else {
        let mut result = lr_find(&model, optimizer.as_mut(), &setup.splits.train, &config)?;
        if let Some(b) = bound {
            result.cap_at_stability_limit(b);
        }
        (result.table(), result.to_svg(), result.to_csv(), to_json(&result)?)
    };
    if let Some(path) = &args.svg {
        write(path, &svg)?;
    }
    if let Some(path) = &args.csv {
        write(path, &csv)?;
    }
    if let Some(path) = &args.json {
        write(path, &json)?;
    }
    Ok(format!("{}\n\n{table}{note}", setup.describe()))
}

/// Options of `stride sweep`.
#[derive(Debug, Clone, clap::Args)]
pub struct SweepArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub setup: SetupArgs,
    /// Rates, comma-separated (default: decades 1e-5..10 for SGD, 1e-6..1 otherwise).
    #[arg(long)]
    pub lrs: Option<String>,
    /// Epochs per rate.
    #[arg(long, default_value_t = 5)]
    pub epochs: usize,
    /// Fraction of the training set held out (stratified, by --seed) to choose the best rate
    /// on; 0 chooses on the final training loss. The test set is only reported.
    #[arg(long, default_value_t = 0.1)]
    pub val_split: f64,
    /// Smoothed training loss the speed columns count steps to (default: 1.5x the best final loss).
    #[arg(long, allow_negative_numbers = true)]
    pub target_loss: Option<f64>,
    /// Also run the LR range test and put its suggestion next to the sweep's best rate.
    #[arg(long)]
    pub finder: bool,
    /// Training examples for the sharpness of the initial weights, whose stability limit
    /// 2/lambda is set against what each rate did (SGD only; 0 skips it).
    #[arg(long, default_value_t = 1024)]
    pub sharpness_examples: usize,
    /// Write the plot (loss curves labelled with the monitor's verdicts; test accuracy per rate) here.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// Write one row per rate here.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write the Markdown table here.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Write every step of every run (`lr,step,loss,seconds`) here.
    #[arg(long)]
    pub steps_csv: Option<PathBuf>,
}

/// Parses `1e-3,0.01, 0.1` into rates.
pub fn parse_lrs(text: &str) -> Result<Vec<f64>, Error> {
    text.split(',')
        .map(|s| {
            let s = s.trim();
            s.parse::<f64>()
                .ok()
                .filter(|lr| lr.is_finite() && *lr > 0.0)
                .ok_or_else(|| {
                    Error::Train(TrainError::Config {
                        name: "lrs",
                        value: s.to_string(),
                        message: "expected comma-separated finite learning rates > 0, e.g. 1e-3,0.01,0.1",
                    })
                })
        })
        .collect()
}

/// What `stride sweep` measured.
pub struct SweepOutcome {
    /// The set-up.
    pub setup: Setup,
    /// The sweep.
    pub result: SweepResult,
    /// The range test, when asked for.
    pub finder: Option<LrFinderResult>,
}

impl SweepOutcome {
    /// The printed report: the table, the best rate, and the finder's suggestion beside it.
    pub fn report(&self) -> String {
        let mut out = format!(
            "{}, {} epochs per rate (data: {})\n\n{}",
            self.setup.describe(),
            self.result.epochs,
            self.setup.source,
            self.result.markdown()
        );
        if let Some(section) = self.result.stability_section() {
            out += &format!("\n{section}");
        }
        if let Some(best) = self.result.best() {
            out += &format!(
                "\nbest rate ({}): lr {} (validation loss {}, final training loss {:.4}; test accuracy {}, reported \
                 only)\n",
                self.result.chosen_on(),
                format_lr(best.lr),
                best.val_loss.map_or("-".into(), |v| format!("{v:.4}")),
                best.final_train_loss,
                best.test_accuracy.map_or("-".into(), |a| format!("{a:.4}"))
            );
        }
        if let Some(f) = &self.finder {
            out += &match (f.suggestion(), self.result.best()) {
                (Some(lr), Some(best)) => format!(
                    "LR finder (valley): lr {} = {:.2} decades from the sweep's best rate {} ({:.2} s)\n",
                    format_lr(lr),
                    (lr / best.lr).log10().abs(),
                    format_lr(best.lr),
                    f.seconds
                ),
                (Some(lr), None) => format!("LR finder (valley): lr {}\n", format_lr(lr)),
                (None, _) => format!(
                    "LR finder: no clear valley ({})\n",
                    f.analysis.no_valley.as_deref().unwrap_or_default()
                ),
            };
        }
        out
    }
}

/// `stride sweep`: trains at every rate and writes the requested files.
pub fn sweep_job(args: &SweepArgs) -> Result<SweepOutcome, Error> {
    // Bad flags are reported before the data loads.
    let given = args.lrs.as_deref().map(parse_lrs).transpose()?;
    if let Some(target) = args.target_loss {
        crate::positive("--target-loss", target)?;
    }
    crate::fraction("--val-split", args.val_split)?;
    let setup = Setup::load(&args.setup)?;
    let (train, val) = setup
        .splits
        .train
        .split_validation(args.val_split, setup.args.net.seed)?;
    let lrs = match given {
        Some(lrs) => lrs,
        None if setup.kind == OptimizerKind::Sgd => decade_grid(-5, 1),
        None => decade_grid(-6, 0),
    };
    let mut config = SweepConfig::new(lrs, setup.kind, args.epochs);
    config.batch_size = setup.args.batch_size;
    config.seed = setup.args.net.seed;
    config.momentum = setup.args.momentum;
    config.weight_decay = setup.args.weight_decay;
    config.target_loss = args.target_loss;
    config.monitor = setup.monitor_config();
    config.progress = true;
    config.sharpness_examples = (args.sharpness_examples > 0).then_some(args.sharpness_examples);
    tracing::info!(
        "LR sweep: {} at {} rates x {} epochs (data: {})",
        setup.describe(),
        config.lrs.len(),
        config.epochs,
        setup.source
    );
    let started = Instant::now();
    let result = sweep(
        |varmap| {
            let network = Network::seeded(&setup.arch, setup.activation, varmap, setup.args.net.seed)?;
            Ok(Box::new(network) as Box<dyn Model>)
        },
        &train,
        (!val.is_empty()).then_some(&val),
        Some(&setup.splits.test),
        &config,
        |run: &SweepRun| {
            tracing::info!(
                "lr {}: final train loss {:.4}, val loss {}, monitor: {} ({:.1} s)",
                format_lr(run.lr),
                run.final_train_loss,
                run.val_loss.map_or("-".into(), |v| format!("{v:.4}")),
                run.verdict,
                run.seconds
            )
        },
    )?;
    tracing::info!("sweep done in {:.1} s", started.elapsed().as_secs_f64());
    let finder = if args.finder {
        let config = LrFinderConfig {
            batch_size: setup.args.batch_size,
            seed: setup.args.net.seed,
            ..LrFinderConfig::default()
        };
        Some(find_lr(&setup, &config)?)
    } else {
        None
    };
    let title = format!("{} {} on {}", setup.kind, setup.arch, setup.name);
    if let Some(path) = &args.svg {
        write(path, &result.figure(&title).to_svg())?;
    }
    if let Some(path) = &args.csv {
        write(path, &result.to_csv())?;
    }
    if let Some(path) = &args.steps_csv {
        write(path, &result.steps_csv())?;
    }
    let outcome = SweepOutcome { setup, result, finder };
    if let Some(path) = &args.markdown {
        write(path, &outcome.report())?;
    }
    Ok(outcome)
}

fn to_json(value: &impl serde::Serialize) -> Result<String, Error> {
    serde_json::to_string_pretty(value).map_err(|e| Error::Json(e.to_string()))
}

fn write(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::write(path, text).map_err(|source| {
        Error::Train(TrainError::Io {
            path: path.to_path_buf(),
            source,
        })
    })?;
    tracing::info!("wrote {}", path.display());
    Ok(())
}
