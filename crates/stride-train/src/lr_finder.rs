//! The LR range test (Smith 2015; fastai's `lr_find`): train a few steps while the
//! rate grows from tiny to huge, smooth the loss, stop when it blows up, read off
//! where it fell fastest — then put the weights and the optimizer back exactly.

use std::fmt::Write;
use std::time::Instant;

use candle_core::{Device, Var};
use serde::Serialize;
use stride_data::{Batcher, Examples};

use crate::loss::Loss;
use stride_model::Model;
use stride_monitor::range_test::{
    analyze, exponential_lrs, linear_lrs, smooth, sparkline, Analysis, AnalysisConfig, DEFAULT_RULE,
};
use stride_monitor::stats::Ema;
use stride_optim::Optimizer;

use crate::callback::format_lr;
use crate::error::{Result, TrainError};
use crate::plot::{Axis, Chart, Figure, Marker, Series};
use crate::sharpness::{estimate_sharpness, SharpnessConfig};
use crate::sweep::StabilityBound;
use crate::trainer::step::{train_step, StepOptions, StepTimes};

/// How the rate grows from step to step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RampMode {
    /// Geometric steps (fastai's and Lightning's default).
    Exponential,
    /// Equal steps (Smith's original test).
    Linear,
}

/// Settings of the range test; `Default` is fastai's `lr_find()`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LrFinderConfig {
    /// First rate (default 1e-7).
    pub start_lr: f64,
    /// Rate the ramp heads for; step `i` uses `start (end/start)^(i/num_iters)` (default 10).
    pub end_lr: f64,
    /// Steps at most (default 100).
    pub num_iters: usize,
    /// Ramp shape (default exponential).
    pub mode: RampMode,
    /// EMA factor of the loss smoothing, bias-corrected (default 0.98).
    pub beta: f64,
    /// Stop once the smoothed loss exceeds this multiple of its minimum (default 4; `None`
    /// runs every step). Not applied while the minimum is not positive: a multiple of a
    /// negative loss lies below it and would stop the test at its first step.
    pub stop_factor: Option<f64>,
    /// Examples per step (default 128).
    pub batch_size: usize,
    /// Seed of the batch order (default 0).
    pub seed: u64,
    /// Record the loss after each step on one fixed batch of this many training examples
    /// (the same batch in every repeat) instead of the step's own minibatch loss; 0 records
    /// the minibatch losses, as fastai does (default 0).
    pub eval_examples: usize,
    /// The loss the steps minimise, the trainer's (default cross-entropy; MSE or the user's
    /// for regression and other tasks).
    #[serde(skip)]
    pub loss: Loss,
}

impl Default for LrFinderConfig {
    fn default() -> Self {
        Self {
            start_lr: 1e-7,
            end_lr: 10.0,
            num_iters: 100,
            mode: RampMode::Exponential,
            beta: 0.98,
            stop_factor: Some(4.0),
            batch_size: 128,
            seed: 0,
            eval_examples: 0,
            loss: Loss::CrossEntropy,
        }
    }
}

impl LrFinderConfig {
    /// Checks every setting, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        let bad = |name, value: f64, message| {
            Err(TrainError::Config {
                name,
                // Debug prints 1e-9 rather than 0.000000001.
                value: format!("{value:?}"),
                message,
            })
        };
        if !(self.start_lr.is_finite() && self.start_lr > 0.0) {
            return bad("start_lr", self.start_lr, "expected a finite rate > 0");
        }
        if !(self.end_lr.is_finite() && self.end_lr > self.start_lr) {
            return bad("end_lr", self.end_lr, "expected a finite rate above start_lr");
        }
        if self.num_iters < 2 {
            return bad("num_iters", self.num_iters as f64, "expected at least 2 steps");
        }
        if !(0.0..1.0).contains(&self.beta) {
            return bad("beta", self.beta, "expected a smoothing factor in [0, 1)");
        }
        if let Some(f) = self.stop_factor {
            if !(f.is_finite() && f > 1.0) {
                return bad("stop_factor", f, "expected a finite factor > 1");
            }
        }
        if self.batch_size == 0 {
            return bad("batch_size", 0.0, "expected at least 1");
        }
        Ok(())
    }

    /// The planned rates.
    pub fn lrs(&self) -> Vec<f64> {
        match self.mode {
            RampMode::Exponential => exponential_lrs(self.start_lr, self.end_lr, self.num_iters),
            RampMode::Linear => linear_lrs(self.start_lr, self.end_lr, self.num_iters),
        }
    }
}

/// Why the test ended.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FinderStop {
    /// All planned steps ran.
    Completed,
    /// The smoothed loss passed `stop_factor` times its minimum at this step (from 1).
    Diverged {
        /// Step, from 1.
        step: usize,
        /// Smoothed loss then.
        smoothed: f64,
        /// Lowest smoothed loss before.
        best: f64,
    },
    /// The loss was not finite at this step (from 1).
    NonFinite {
        /// Step, from 1.
        step: usize,
    },
}

/// What the range test measured and what it suggests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LrFinderResult {
    /// The settings.
    pub config: LrFinderConfig,
    /// Rate of every step taken.
    pub lrs: Vec<f64>,
    /// Raw minibatch loss of every step.
    pub losses: Vec<f64>,
    /// Bias-corrected EMA of the losses.
    pub smoothed: Vec<f64>,
    /// Why it ended.
    pub stop: FinderStop,
    /// Suggestions, their spread, and whether the curve has a valley.
    pub analysis: Analysis,
    /// Wall time of the test, restoring included.
    pub seconds: f64,
    /// The stability limit the suggestion is capped at, when a sharpness estimate was given
    /// ([`LrFinderResult::cap_at_stability_limit`]).
    pub stability: Option<StabilityBound>,
}

impl LrFinderResult {
    /// The rate to train with: the default rule's ([`DEFAULT_RULE`], half-drop), unless the
    /// curve has no clear valley, and no higher than the stability limit when one is set.
    pub fn suggestion(&self) -> Option<f64> {
        let lr = self.uncapped()?;
        Some(self.stability.map_or(lr, |b| lr.min(b.limit)))
    }

    /// The default rule's rate, when the curve has a clear valley, whatever the stability
    /// limit says.
    pub fn uncapped(&self) -> Option<f64> {
        self.analysis.suggestion()
    }

    /// Caps [`LrFinderResult::suggestion`] at `bound.limit` (`theta / lambda`): a rate above
    /// the stability limit makes the loss oscillate however the range test's curve looks.
    pub fn cap_at_stability_limit(&mut self, bound: StabilityBound) {
        self.stability = Some(bound);
    }

    /// Whether the stability limit lowered the suggestion.
    pub fn capped(&self) -> bool {
        matches!((self.uncapped(), self.stability), (Some(v), Some(b)) if v > b.limit)
    }

    /// Smoothed loss at the step whose rate is nearest (on a log scale) to `lr`.
    pub fn smoothed_at(&self, lr: f64) -> Option<f64> {
        self.lrs
            .iter()
            .zip(&self.smoothed)
            .min_by(|a, b| (a.0.ln() - lr.ln()).abs().total_cmp(&(b.0.ln() - lr.ln()).abs()))
            .map(|(_, &s)| s)
    }

    /// One sentence on how the test ended.
    pub fn stop_sentence(&self) -> String {
        match self.stop {
            FinderStop::Completed => format!("ran all {} steps", self.lrs.len()),
            FinderStop::Diverged { step, smoothed, best } => format!(
                "stopped at step {step} (lr {}): smoothed loss {smoothed:.3} > {} x its minimum {best:.3}",
                format_lr(self.lrs[step - 1]),
                self.config.stop_factor.unwrap_or(f64::NAN)
            ),
            FinderStop::NonFinite { step } => format!(
                "stopped at step {step} (lr {}): the loss was not finite",
                format_lr(self.lrs[step - 1])
            ),
        }
    }

    /// A plain-text report: the run, the suggestions with their losses, the agreement, a sparkline.
    pub fn table(&self) -> String {
        let c = &self.config;
        let mut out = format!(
            "LR range test: {} from {} to {} over {} steps, batch {}; {} ({:.2} s)\n\n",
            match c.mode {
                RampMode::Exponential => "exponential ramp",
                RampMode::Linear => "linear ramp",
            },
            format_lr(c.start_lr),
            format_lr(c.end_lr),
            c.num_iters,
            c.batch_size,
            self.stop_sentence(),
            self.seconds
        );
        let _ = writeln!(out, "{:<12} {:>10} {:>14}", "suggestion", "lr", "smoothed loss");
        for (name, lr) in self.analysis.suggestions.named() {
            let _ = writeln!(
                out,
                "{name:<12} {:>10} {:>14.4}{}",
                format_lr(lr),
                self.smoothed_at(lr).unwrap_or(f64::NAN),
                if name == DEFAULT_RULE { "   <- default" } else { "" }
            );
        }
        if let Some(spread) = self.analysis.spread_decades {
            let _ = writeln!(
                out,
                "\nthe suggestions span {spread:.1} decades{}",
                if spread <= 1.0 {
                    " (they agree)"
                } else {
                    " (they disagree: prefer the default, check with a short sweep)"
                }
            );
        }
        if self.analysis.denoise_half_width > 0 {
            let _ = writeln!(
                out,
                "the half-drop and the valley are read through a centred mean of {} points (loss noise sd {:.4})",
                2 * self.analysis.denoise_half_width + 1,
                self.analysis.noise.unwrap_or(f64::NAN)
            );
        }
        match (&self.analysis.no_valley, self.suggestion()) {
            (Some(why), _) => {
                let _ = writeln!(out, "no clear valley: {why}");
            }
            (None, Some(lr)) => {
                if let Some(b) = self.stability {
                    let _ = writeln!(
                        out,
                        "stability limit {}/lambda = {} (lambda {:.3} on {} examples): the {DEFAULT_RULE} {} is {}",
                        b.theta,
                        format_lr(b.limit),
                        b.lambda,
                        b.examples,
                        format_lr(self.uncapped().unwrap_or(lr)),
                        if self.capped() { "above it" } else { "below it" }
                    );
                }
                let _ = writeln!(
                    out,
                    "suggested lr: {} ({})",
                    format_lr(lr),
                    if self.capped() {
                        "the stability limit"
                    } else {
                        DEFAULT_RULE
                    }
                );
            }
            (None, None) => {}
        }
        // Only a ramp that ran out while the loss still fell needs a higher end: one stopped by
        // the loss blowing up has shown where training breaks down.
        if self.analysis.still_falling && matches!(self.stop, FinderStop::Completed) {
            let _ = writeln!(
                out,
                "the loss was still falling at the last analysed rate: raise end_lr to see where training breaks down"
            );
        }
        let _ = writeln!(
            out,
            "\nsmoothed loss, lr {} -> {}:\n{}",
            format_lr(self.lrs.first().copied().unwrap_or(c.start_lr)),
            format_lr(self.lrs.last().copied().unwrap_or(c.end_lr)),
            self.sparkline(72)
        );
        out
    }

    /// The smoothed loss as a Unicode sparkline.
    pub fn sparkline(&self, width: usize) -> String {
        // Clipped like the plot, so the blow-up does not flatten the valley.
        let cap = self.smoothed.first().copied().unwrap_or(f64::INFINITY) * 1.6;
        let clipped: Vec<f64> = self
            .smoothed
            .iter()
            .map(|&v| if v.is_finite() { v.min(cap) } else { v })
            .collect();
        sparkline(&clipped, width)
    }

    /// `step,lr,loss,smoothed` rows.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("step,lr,loss,smoothed\n");
        for (i, ((lr, l), s)) in self.lrs.iter().zip(&self.losses).zip(&self.smoothed).enumerate() {
            let _ = writeln!(out, "{},{lr:e},{l},{s}", i + 1);
        }
        out
    }

    /// Loss (raw and smoothed) against the rate on a log axis, suggestions marked.
    pub fn chart(&self) -> Chart {
        let mut chart = Chart::new(
            format!(
                "LR range test: {}",
                match self.suggestion() {
                    Some(lr) => format!("{DEFAULT_RULE} at lr {}", format_lr(lr)),
                    None => "no clear valley".to_string(),
                }
            ),
            Axis::log("learning rate"),
            Axis::linear("training loss"),
        );
        // Keep the blow-up from flattening the interesting part of the curve.
        let finite = self
            .smoothed
            .iter()
            .chain(&self.losses)
            .copied()
            .filter(|v| v.is_finite());
        let lo = finite.fold(f64::INFINITY, f64::min);
        let first = self.smoothed.first().copied().unwrap_or(lo);
        if lo.is_finite() && first.is_finite() {
            let hi = first.max(lo) * 1.6;
            chart.y = chart.y.with_range(lo - 0.05 * (hi - lo), hi);
        }
        chart.series.push(Series {
            color: Some("#c8c8c8".into()),
            ..Series::line(
                "raw minibatch loss",
                self.lrs.iter().copied().zip(self.losses.iter().copied()).collect(),
            )
        });
        chart.series.push(Series {
            color: Some("#1f4e99".into()),
            ..Series::line(
                "smoothed (EMA 0.98)",
                self.lrs.iter().copied().zip(self.smoothed.iter().copied()).collect(),
            )
        });
        let colors = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e"];
        for ((name, lr), color) in self.analysis.suggestions.named().into_iter().zip(colors) {
            chart.markers.push(Marker {
                x: lr,
                label: format!("{name} {}", format_lr(lr)),
                color: color.into(),
            });
        }
        chart
    }

    /// [`LrFinderResult::chart`] as an SVG document.
    pub fn to_svg(&self) -> String {
        Figure::single(self.chart(), 820.0, 460.0).to_svg()
    }
}

/// Runs the range test on `model` with `optimizer`, drawing batches from `train`, and
/// restores the weights and the optimizer state (rate and step count included) exactly
/// afterwards, also when the test fails half way.
pub fn lr_find(
    model: &dyn Model,
    optimizer: &mut dyn Optimizer,
    train: &dyn Examples,
    config: &LrFinderConfig,
) -> Result<LrFinderResult> {
    config.validate()?;
    if train.is_empty() {
        return Err(TrainError::EmptyTrainingSet);
    }
    stride_cpu::retain_freed_memory();
    let device = optimizer
        .vars()
        .first()
        .map(|v| v.device().clone())
        .ok_or(TrainError::NoVariables)?;
    let started = Instant::now();
    let weights = optimizer
        .vars()
        .iter()
        .map(|v| v.as_tensor().copy())
        .collect::<candle_core::Result<Vec<_>>>()?;
    let state = optimizer.state()?;
    let ran = ramp(model, optimizer, train, config, &device);
    for (var, saved) in optimizer.vars().iter().zip(&weights) {
        var.set(saved)?;
    }
    optimizer.load_state(&state)?;
    let (lrs, losses, stop) = ran?;
    let smoothed = smooth(&losses, config.beta);
    let analysis = analyze(&lrs, &losses, &smoothed, &AnalysisConfig::for_iters(config.num_iters));
    Ok(LrFinderResult {
        config: config.clone(),
        lrs,
        losses,
        smoothed,
        stop,
        analysis,
        seconds: started.elapsed().as_secs_f64(),
        stability: None,
    })
}

/// The stability limit of plain or momentum SGD at `model`'s current weights: the sharpness
/// (top curvature eigenvalue, [`estimate_sharpness`]) on the first `examples` of a `seed`ed
/// shuffle of `train`, and `2(1 + momentum) / lambda`.
pub fn sgd_stability_bound(
    model: &dyn Model,
    vars: &[Var],
    train: &dyn Examples,
    examples: usize,
    seed: u64,
    momentum: Option<f64>,
) -> Result<StabilityBound> {
    if train.is_empty() {
        return Err(TrainError::EmptyTrainingSet);
    }
    let device = vars
        .first()
        .map(|v| v.device().clone())
        .ok_or(TrainError::NoVariables)?;
    let order = Batcher::new(train.len(), examples.max(1), seed)?.order(0);
    let used = examples.clamp(1, order.len());
    let (x, y) = train.gather_tensors(&order[..used], &device)?;
    let estimate = estimate_sharpness(model, vars, &x, &y, &SharpnessConfig::default())?;
    let theta = 2.0 * (1.0 + momentum.unwrap_or(0.0));
    Ok(StabilityBound {
        lambda: estimate.lambda,
        theta,
        limit: theta / estimate.lambda,
        examples: used,
        seconds: estimate.seconds,
    })
}

type Ramp = (Vec<f64>, Vec<f64>, FinderStop);

/// Seed of the fixed batch [`LrFinderConfig::eval_examples`] draws.
const FIXED_BATCH_SEED: u64 = 0x5eed_f1ed;

fn ramp(
    model: &dyn Model,
    optimizer: &mut dyn Optimizer,
    train: &dyn Examples,
    config: &LrFinderConfig,
    device: &Device,
) -> Result<Ramp> {
    let planned = config.lrs();
    let batcher = Batcher::new(train.len(), config.batch_size, config.seed)?;
    let per_epoch = batcher.num_batches().max(1);
    let mut epoch_batches = Vec::new();
    let (mut lrs, mut losses) = (Vec::new(), Vec::new());
    let mut ema = Ema::new(config.beta);
    let mut best = f64::INFINITY;
    let mut times = StepTimes::default();
    // One batch for every repeat: its seed does not follow the batch order's.
    let fixed = match config.eval_examples {
        0 => None,
        n => {
            let order = Batcher::new(train.len(), n.min(train.len()), FIXED_BATCH_SEED)?.order(0);
            Some(train.gather_tensors(&order[..n.min(order.len())], device)?)
        }
    };
    for (i, &lr) in planned.iter().enumerate() {
        if i % per_epoch == 0 {
            epoch_batches = batcher.batches((i / per_epoch) as u64);
        }
        let (xb, yb) = train.gather_tensors(&epoch_batches[i % per_epoch], device)?;
        optimizer.set_learning_rate(lr);
        let rows: Vec<u32> = (0..yb.dim(0)? as u32).collect();
        let opts = StepOptions {
            loss: &config.loss,
            fused: true,
            clip_grad_norm: None,
            track_grad_norm: false,
            measure_update_ratio: false,
            // The ramp's stop rule needs each loss before the next step.
            defer_reads: false,
        };
        // The same step the trainer takes; the update of the step that ends the test is
        // discarded with the rest when the weights are restored.
        let value = train_step(model, optimizer, (&xb, &yb), &rows, &opts, None, &mut times)?.loss;
        let value = match &fixed {
            Some((xf, yf)) => config
                .loss
                .compute(&model.logits(xf, false)?, yf)?
                .to_dtype(candle_core::DType::F64)?
                .to_scalar::<f64>()?,
            None => value,
        };
        lrs.push(lr);
        losses.push(value);
        if !value.is_finite() {
            return Ok((lrs, losses, FinderStop::NonFinite { step: i + 1 }));
        }
        let smoothed = ema.update(value);
        if smoothed < best {
            best = smoothed;
        }
        if let Some(factor) = config.stop_factor {
            if best > 0.0 && smoothed > factor * best {
                return Ok((
                    lrs,
                    losses,
                    FinderStop::Diverged {
                        step: i + 1,
                        smoothed,
                        best,
                    },
                ));
            }
        }
    }
    Ok((lrs, losses, FinderStop::Completed))
}

/// One suggestion's values over repeats of the range test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuggestionSpread {
    /// `half-drop`, `valley`, `steep`, `minimum/10`, `slide`, or `default` (the half-drop where the
    /// curve has a clear valley, capped at the stability limit when one is set).
    pub name: String,
    /// Its value in each repeat; `None` where that repeat had none.
    pub values: Vec<Option<f64>>,
    /// Smallest and largest value: the interval the repeats span.
    pub interval: Option<(f64, f64)>,
    /// Largest over smallest (1 when every repeat agrees).
    pub spread: Option<f64>,
    /// Geometric mean of the values.
    pub geometric_mean: Option<f64>,
}

impl SuggestionSpread {
    /// The spread of `values` under `name`.
    pub fn new(name: impl Into<String>, values: Vec<Option<f64>>) -> Self {
        let present: Vec<f64> = values.iter().flatten().copied().filter(|v| *v > 0.0).collect();
        let interval = (!present.is_empty()).then(|| {
            (
                present.iter().copied().fold(f64::INFINITY, f64::min),
                present.iter().copied().fold(0.0, f64::max),
            )
        });
        let geometric_mean =
            (!present.is_empty()).then(|| (present.iter().map(|v| v.ln()).sum::<f64>() / present.len() as f64).exp());
        Self {
            name: name.into(),
            spread: interval.map(|(lo, hi)| hi / lo),
            interval,
            geometric_mean,
            values,
        }
    }

    /// How many repeats gave a value.
    pub fn count(&self) -> usize {
        self.values.iter().flatten().count()
    }
}

/// What [`lr_find_repeated`] measured: every run and how far their suggestions move.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepeatedFinderResult {
    /// Batch-order seed of each repeat: the config's seed, then seed + 1, ...
    pub seeds: Vec<u64>,
    /// The range tests, in order.
    pub runs: Vec<LrFinderResult>,
    /// The default suggestion ([`LrFinderResult::suggestion`]) across the repeats.
    pub default: SuggestionSpread,
    /// The four named suggestions across the repeats.
    pub suggestions: Vec<SuggestionSpread>,
    /// Wall time of all repeats.
    pub seconds: f64,
}

impl RepeatedFinderResult {
    /// Caps every repeat's suggestion at `bound.limit` (the repeats share the initial
    /// weights, so one estimate serves them all) and recomputes the default's spread.
    pub fn cap_at_stability_limit(&mut self, bound: StabilityBound) {
        for run in &mut self.runs {
            run.cap_at_stability_limit(bound);
        }
        self.default = SuggestionSpread::new("default", self.runs.iter().map(LrFinderResult::suggestion).collect());
    }

    fn new(seeds: Vec<u64>, runs: Vec<LrFinderResult>, seconds: f64) -> Self {
        let default = SuggestionSpread::new("default", runs.iter().map(LrFinderResult::suggestion).collect());
        let suggestions = [DEFAULT_RULE, "valley", "steep", "minimum/10", "slide"]
            .into_iter()
            .map(|name| {
                let values = runs
                    .iter()
                    .map(|r| {
                        r.analysis
                            .suggestions
                            .named()
                            .into_iter()
                            .find(|(n, _)| *n == name)
                            .map(|(_, v)| v)
                    })
                    .collect();
                SuggestionSpread::new(name, values)
            })
            .collect();
        Self {
            seeds,
            runs,
            default,
            suggestions,
            seconds,
        }
    }

    /// A plain-text report: each repeat's suggestions, each suggestion's spread and interval,
    /// and how far a rerun moves the default.
    pub fn table(&self) -> String {
        let show = |v: Option<f64>| v.map_or("-".to_string(), format_lr);
        let mut out = format!(
            "LR range test, {} repeats (batch-order seeds {}), same initial weights ({:.2} s)\n\n",
            self.runs.len(),
            self.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
            self.seconds
        );
        let _ = write!(out, "{:<8} {:>6}", "repeat", "seed");
        for s in &self.suggestions {
            let _ = write!(out, " {:>13}", s.name);
        }
        let _ = writeln!(out, " {:>13}", "default");
        for (i, (run, seed)) in self.runs.iter().zip(&self.seeds).enumerate() {
            let _ = write!(out, "{:<8} {seed:>6}", i + 1);
            for s in &self.suggestions {
                let _ = write!(out, " {:>13}", show(s.values[i]));
            }
            let _ = writeln!(
                out,
                " {:>13}",
                run.suggestion().map_or("no valley".to_string(), format_lr)
            );
        }
        let all = self.suggestions.iter().chain(std::iter::once(&self.default));
        let _ = write!(out, "{:<15}", "spread max/min");
        for s in all.clone() {
            let _ = write!(out, " {:>13}", s.spread.map_or("-".into(), |v| format!("{v:.2}x")));
        }
        let _ = write!(out, "\n{:<15}", "interval");
        for s in all {
            let _ = write!(
                out,
                " {:>13}",
                s.interval
                    .map_or("-".into(), |(lo, hi)| format!("{}..{}", format_lr(lo), format_lr(hi)))
            );
        }
        out.push_str("\n\n");
        let d = &self.default;
        match (d.spread, d.interval, d.geometric_mean) {
            (Some(spread), Some((lo, hi)), Some(mean)) => {
                let _ = writeln!(
                    out,
                    "default suggestion ({DEFAULT_RULE}): {} of {} repeats found one; lr {} to {} (geometric mean {}), spread \
                     {spread:.2}x{}",
                    d.count(),
                    d.values.len(),
                    format_lr(lo),
                    format_lr(hi),
                    format_lr(mean),
                    if spread <= 2.0 {
                        ": a rerun moves it by at most 2x"
                    } else {
                        ": a rerun moves it by more than 2x, check with a short sweep"
                    }
                );
            }
            _ => {
                let _ = writeln!(out, "no repeat found a clear valley");
            }
        }
        if let Some(b) = self.runs.first().and_then(|r| r.stability) {
            let capped = self.runs.iter().filter(|r| r.capped()).count();
            let _ = writeln!(
                out,
                "stability limit {}/lambda = {} (lambda {:.3} on {} examples): it lowered {capped} of {} suggestions",
                b.theta,
                format_lr(b.limit),
                b.lambda,
                b.examples,
                self.runs.len()
            );
        }
        for (i, run) in self.runs.iter().enumerate() {
            if let Some(why) = &run.analysis.no_valley {
                let _ = writeln!(out, "repeat {}: no clear valley: {why}", i + 1);
            }
        }
        out
    }

    /// `repeat,seed,step,lr,loss,smoothed` rows.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("repeat,seed,step,lr,loss,smoothed\n");
        for (r, (run, seed)) in self.runs.iter().zip(&self.seeds).enumerate() {
            for (i, ((lr, l), s)) in run.lrs.iter().zip(&run.losses).zip(&run.smoothed).enumerate() {
                let _ = writeln!(out, "{},{seed},{},{lr:e},{l},{s}", r + 1, i + 1);
            }
        }
        out
    }

    /// Every repeat's smoothed loss against the rate, each default suggestion marked.
    pub fn chart(&self) -> Chart {
        let title = match (self.default.interval, self.default.spread) {
            (Some((lo, hi)), Some(spread)) => format!(
                "LR range test, {} repeats: {DEFAULT_RULE} {}..{} ({spread:.2}x)",
                self.runs.len(),
                format_lr(lo),
                format_lr(hi)
            ),
            _ => format!("LR range test, {} repeats: no clear valley", self.runs.len()),
        };
        let mut chart = Chart::new(
            title,
            Axis::log("learning rate"),
            Axis::linear("smoothed training loss"),
        );
        let finite = self
            .runs
            .iter()
            .flat_map(|r| &r.smoothed)
            .copied()
            .filter(|v| v.is_finite());
        let lo = finite.fold(f64::INFINITY, f64::min);
        let first = self
            .runs
            .iter()
            .filter_map(|r| r.smoothed.first().copied())
            .fold(f64::NEG_INFINITY, f64::max);
        if lo.is_finite() && first.is_finite() {
            // Clipped like the single test's plot, so the blow-ups do not flatten the valleys.
            let hi = first.max(lo) * 1.6;
            chart.y = chart.y.with_range(lo - 0.05 * (hi - lo), hi);
        }
        for (i, (run, seed)) in self.runs.iter().zip(&self.seeds).enumerate() {
            chart.series.push(Series::line(
                format!("repeat {} (seed {seed})", i + 1),
                run.lrs.iter().copied().zip(run.smoothed.iter().copied()).collect(),
            ));
            if let Some(lr) = run.suggestion() {
                chart.markers.push(Marker {
                    x: lr,
                    label: format!("{} {}", i + 1, format_lr(lr)),
                    color: "#d62728".into(),
                });
            }
        }
        chart
    }

    /// [`RepeatedFinderResult::chart`] as an SVG document.
    pub fn to_svg(&self) -> String {
        Figure::single(self.chart(), 820.0, 460.0).to_svg()
    }
}

/// Runs the range test `repeats` times with batch-order seeds `config.seed`, `config.seed + 1`,
/// ..., each from the same initial weights and optimizer state (every test restores them),
/// and reports how far the suggestions move between repeats.
pub fn lr_find_repeated(
    model: &dyn Model,
    optimizer: &mut dyn Optimizer,
    train: &dyn Examples,
    config: &LrFinderConfig,
    repeats: usize,
) -> Result<RepeatedFinderResult> {
    if repeats == 0 {
        return Err(TrainError::Config {
            name: "repeats",
            value: "0".into(),
            message: "expected at least 1 repeat",
        });
    }
    config.validate()?;
    let started = Instant::now();
    let seeds: Vec<u64> = (0..repeats as u64).map(|k| config.seed.wrapping_add(k)).collect();
    let runs = seeds
        .iter()
        .map(|&seed| lr_find(model, optimizer, train, &LrFinderConfig { seed, ..config.clone() }))
        .collect::<Result<Vec<_>>>()?;
    Ok(RepeatedFinderResult::new(seeds, runs, started.elapsed().as_secs_f64()))
}
