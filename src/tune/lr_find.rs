//! `stride lr-find`: the LR range test, repeated if asked, with its suggestions.

use std::path::PathBuf;

use candle_nn::VarMap;
use stride_optim::OptimizerKind;
use stride_train::{
    lr_find, lr_find_repeated, sgd_stability_bound, LrFinderConfig, LrFinderResult, RampMode, TrainError,
};

use super::{to_json, write, Setup, SetupArgs};
use crate::Error;

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
    /// Record each step's loss on one fixed batch of this many training examples (0: the
    /// step's own minibatch loss, as fastai).
    #[arg(long, default_value_t = 0)]
    pub eval_examples: usize,
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
            eval_examples: self.eval_examples,
            ..LrFinderConfig::default()
        }
    }
}

/// Runs the range test on a fresh model from `setup`.
pub fn find_lr(setup: &Setup, config: &LrFinderConfig) -> Result<LrFinderResult, Error> {
    let varmap = VarMap::new();
    let model = setup.model(&varmap)?;
    let mut optimizer = setup.optimizer(&varmap, config.start_lr)?;
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
    let mut optimizer = setup.optimizer(&varmap, config.start_lr)?;
    let mut note = String::new();
    let sgd = setup.kind == OptimizerKind::Sgd.spec();
    let bound = match (args.sharpness_examples, setup.kind) {
        (0, _) => None,
        (n, _) if sgd => Some(sgd_stability_bound(
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
