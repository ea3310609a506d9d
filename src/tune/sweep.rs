//! `stride sweep`: the same model from the same weights at several rates, compared.

use std::path::PathBuf;
use std::time::Instant;

use stride_model::Model;
use stride_optim::OptimizerKind;
use stride_train::{
    decade_grid, format_lr, sweep, LrFinderConfig, LrFinderResult, SweepConfig, SweepResult, SweepRun, TrainError,
};

use super::{find_lr, write, Setup, SetupArgs};
use crate::Error;

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
                    "LR finder (half-drop): lr {} = {:.2} decades from the sweep's best rate {} ({:.2} s)\n",
                    format_lr(lr),
                    (lr / best.lr).log10().abs(),
                    format_lr(best.lr),
                    f.seconds
                ),
                (Some(lr), None) => format!("LR finder (half-drop): lr {}\n", format_lr(lr)),
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
        None if setup.kind == OptimizerKind::Sgd.spec() => decade_grid(-5, 1),
        None => decade_grid(-6, 0),
    };
    let mut config = SweepConfig::new(lrs, setup.kind, args.epochs);
    config.batch_size = setup.args.batch_size;
    config.seed = setup.args.net.seed;
    config.momentum = setup.args.momentum;
    config.weight_decay = setup.args.weight_decay;
    config.rate_scales = setup.args.net.rate_scales(setup.kind, &setup.arch)?;
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
            let network = setup.model(varmap).map_err(|e| TrainError::Config {
                name: "model",
                value: e.to_string(),
                message: "expected a network the sweep can build",
            })?;
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
