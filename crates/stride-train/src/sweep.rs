//! LR sweeps: the same model, from the same initial weights and with the same batch
//! order, trained at several rates; per rate its speed (steps and seconds to a target
//! loss), its stability (largest loss, first non-finite step), its result and the
//! monitor's verdict over time.

use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use candle_core::Device;
use candle_nn::VarMap;
use serde::Serialize;
use stride_data::{Batcher, Examples};
use stride_model::Model;
use stride_monitor::stats::Ema;
use stride_monitor::{Diagnosis, MonitorConfig, State};
use stride_optim::{OptimizerKind, OptimizerSpec};

use crate::callback::{format_lr, Action, Callback, Eval, StepEnd, TrainBegin};
use crate::error::{Result, TrainError};
use crate::loss::Loss;
use crate::monitor::RunMonitor;
use crate::plot::{Axis, Chart, Figure, Series, PALETTE};
use crate::progress::ProgressBars;
use crate::sharpness::{estimate_sharpness, SharpnessConfig};
use crate::trainer::{evaluate_with, Trainer};

/// Rates `10^lo, 10^(lo+1), ..., 10^hi`.
pub fn decade_grid(lo: i32, hi: i32) -> Vec<f64> {
    (lo..=hi).map(|k| 10f64.powi(k)).collect()
}

/// Settings of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepConfig {
    /// The rates, in the order they are run.
    pub lrs: Vec<f64>,
    /// Epochs per rate.
    pub epochs: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// Seed of the batch order (the model factory owns the initialisation seed).
    pub seed: u64,
    /// Optimizer, built fresh for every rate: a built-in ([`OptimizerKind`] converts) or
    /// any rule's [`OptimizerSpec`].
    pub optimizer: OptimizerSpec,
    /// Momentum / beta1 (PyTorch's default when `None`).
    pub momentum: Option<f64>,
    /// Weight decay (PyTorch's default when `None`).
    pub weight_decay: Option<f64>,
    /// Smoothed training loss that counts as "reached" for the speed columns; by default
    /// 1.5 x the best final training loss of the sweep.
    pub target_loss: Option<f64>,
    /// Settings of the monitor that judges each run.
    pub monitor: MonitorConfig,
    /// Show progress bars.
    pub progress: bool,
    /// Estimate the sharpness of the initial weights on this many training examples and
    /// report the stability limit next to the rates (SGD only; default 1024, `None` skips it).
    pub sharpness_examples: Option<usize>,
    /// Rate multipliers by variable name (muP's per-layer rates); empty: every variable at
    /// the swept rate.
    pub rate_scales: Vec<(String, f64)>,
    /// The loss every run minimises and is judged by (default cross-entropy; MSE or the
    /// user's for regression and other tasks, where accuracy is not reported).
    pub loss: Loss,
}

impl SweepConfig {
    /// A sweep of `lrs` with `optimizer` for `epochs` epochs, batch 128, seed 0.
    pub fn new(lrs: Vec<f64>, optimizer: impl Into<OptimizerSpec>, epochs: usize) -> Self {
        Self {
            lrs,
            epochs,
            batch_size: 128,
            seed: 0,
            optimizer: optimizer.into(),
            momentum: None,
            weight_decay: None,
            target_loss: None,
            monitor: MonitorConfig {
                eval_every: 8,
                ..MonitorConfig::default()
            },
            progress: false,
            sharpness_examples: Some(1024),
            rate_scales: Vec::new(),
            loss: Loss::CrossEntropy,
        }
    }
}

/// The stability limit predicted from the initial weights' sharpness.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StabilityBound {
    /// Top eigenvalue of the curvature at the initial weights.
    pub lambda: f64,
    /// Threshold of `lr * lambda` (2 for plain SGD, `2(1 + momentum)` with momentum).
    pub theta: f64,
    /// `theta / lambda`: above it the loss is expected to oscillate.
    pub limit: f64,
    /// Examples the estimate used.
    pub examples: usize,
    /// Wall time of the estimate.
    pub seconds: f64,
}

/// One rate of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepRun {
    /// The rate.
    pub lr: f64,
    /// Minibatch loss of every step.
    #[serde(skip)]
    pub step_losses: Vec<f64>,
    /// Seconds since the start of training at the end of every step.
    #[serde(skip)]
    pub step_seconds: Vec<f64>,
    /// Mean training loss of the last epoch; NaN when the run did not finish (or went non-finite).
    pub final_train_loss: f64,
    /// Validation loss of the final weights (the held-out split the sweep chooses on).
    pub val_loss: Option<f64>,
    /// Validation accuracy of the final weights.
    pub val_accuracy: Option<f64>,
    /// Test loss of the final weights (reported, never used to choose).
    pub test_loss: Option<f64>,
    /// Test accuracy of the final weights.
    pub test_accuracy: Option<f64>,
    /// First step (from 1) whose smoothed loss was at or below the target.
    pub steps_to_target: Option<u64>,
    /// Training seconds until then.
    pub seconds_to_target: Option<f64>,
    /// Largest finite minibatch loss.
    pub max_loss: f64,
    /// First step (from 1) with a non-finite loss.
    pub first_nonfinite_step: Option<u64>,
    /// The monitor's final verdict.
    pub verdict: State,
    /// Its reason code.
    pub reason: String,
    /// Its suggestion.
    pub suggestion: String,
    /// The displayed state over time: `(step, state)` at every change.
    pub timeline: Vec<(u64, State)>,
    /// Why the run stopped early, if it did.
    pub stopped: Option<String>,
    /// Wall time of the run.
    pub seconds: f64,
}

impl SweepRun {
    /// The timeline as `healthy@8 > plateau@1800`.
    pub fn timeline_text(&self) -> String {
        if self.timeline.is_empty() {
            return "-".into();
        }
        self.timeline
            .iter()
            .map(|(step, state)| format!("{}@{step}", state))
            .collect::<Vec<_>>()
            .join(" > ")
    }

    /// Share of the run's steps spent in each displayed state, in order of first appearance,
    /// e.g. `healthy 71%, plateau 29%`.
    pub fn time_in_states(&self) -> String {
        let total = self.step_losses.len() as u64;
        if self.timeline.is_empty() || total == 0 {
            return "-".into();
        }
        let mut shares: Vec<(State, u64)> = Vec::new();
        let mut from = 0;
        for (i, &(step, state)) in self.timeline.iter().enumerate() {
            let until = self.timeline.get(i + 1).map_or(total, |n| n.0).max(step);
            // Steps before the first verdict count for the first state.
            let span = until - if i == 0 { from } else { step };
            from = until;
            match shares.iter_mut().find(|(s, _)| *s == state) {
                Some((_, n)) => *n += span,
                None => shares.push((state, span)),
            }
        }
        shares
            .iter()
            .map(|(s, n)| format!("{} {:.0}%", s, 100.0 * *n as f64 / total as f64))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Smoothed (EMA 0.98) step losses, as the speed columns and the plot use them.
    pub fn smoothed_losses(&self) -> Vec<f64> {
        let mut ema = Ema::new(0.98);
        self.step_losses.iter().map(|&l| ema.update(l)).collect()
    }

    fn diverged(&self) -> bool {
        self.first_nonfinite_step.is_some()
    }
}

/// A finished sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepResult {
    /// Optimizer name.
    pub optimizer: String,
    /// Epochs per rate.
    pub epochs: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// The loss the speed columns measure against.
    pub target_loss: f64,
    /// One entry per rate, in the configured order.
    pub runs: Vec<SweepRun>,
    /// The predicted stability limit, for SGD sweeps.
    pub stability: Option<StabilityBound>,
}

impl SweepResult {
    /// The run the sweep recommends: the lowest validation loss among the runs that finished,
    /// or the lowest final training loss when nothing was held out. Never the test set.
    pub fn best(&self) -> Option<&SweepRun> {
        let finished = || self.runs.iter().filter(|r| r.final_train_loss.is_finite());
        if self.runs.iter().any(|r| r.val_loss.is_some()) {
            finished()
                .filter(|r| r.val_loss.is_some_and(f64::is_finite))
                .min_by(|a, b| {
                    a.val_loss
                        .unwrap_or(f64::INFINITY)
                        .total_cmp(&b.val_loss.unwrap_or(f64::INFINITY))
                })
        } else {
            finished().min_by(|a, b| a.final_train_loss.total_cmp(&b.final_train_loss))
        }
    }

    /// What [`SweepResult::best`] chose on.
    pub fn chosen_on(&self) -> &'static str {
        if self.runs.iter().any(|r| r.val_loss.is_some()) {
            "lowest validation loss"
        } else {
            "lowest final training loss (no validation split)"
        }
    }

    /// A Markdown table (also readable in a terminal).
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "| lr | final train loss | val loss | test acc | steps to loss {t} | seconds to {t} | max loss | first non-finite step | monitor verdict (over time) |\n|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
            t = fmt_loss(self.target_loss)
        );
        let best = self.best().map(|b| b.lr);
        for r in &self.runs {
            let _ = writeln!(
                out,
                "| {}{} | {} | {} | {} | {} | {} | {} | {} | **{}** ({}; {} changes) |",
                format_lr(r.lr),
                if Some(r.lr) == best { " (best)" } else { "" },
                if r.final_train_loss.is_finite() {
                    fmt_loss(r.final_train_loss)
                } else {
                    "-".into()
                },
                r.val_loss.map_or("-".into(), fmt_loss),
                r.test_accuracy.map_or("-".into(), |a| format!("{a:.4}")),
                r.steps_to_target.map_or("not reached".into(), |s| s.to_string()),
                r.seconds_to_target.map_or("-".into(), |s| format!("{s:.1}")),
                fmt_loss(r.max_loss),
                r.first_nonfinite_step.map_or("-".into(), |s| s.to_string()),
                r.verdict,
                r.time_in_states(),
                r.timeline.len().saturating_sub(1)
            );
        }
        out
    }

    /// `lr,step,loss,seconds` rows: every step of every run.
    pub fn steps_csv(&self) -> String {
        let mut out = String::from("lr,step,loss,seconds\n");
        for r in &self.runs {
            for (i, (l, t)) in r.step_losses.iter().zip(&r.step_seconds).enumerate() {
                let _ = writeln!(out, "{:e},{},{l},{t:.4}", r.lr, i + 1);
            }
        }
        out
    }

    /// The predicted limit against what each rate did: a run "blew up" when its largest loss
    /// passed 1.5x its first or went non-finite.
    pub fn stability_section(&self) -> Option<String> {
        let b = self.stability?;
        let mut out = format!(
            "Stability bound: lambda_max of the initial weights = {:.3} (Gauss-Newton curvature, {} training \
             examples, {:.2} s), theta = {} -> predicted limit theta/lambda = {}\n\n| lr | lr / limit | max loss / \
             first loss | blew up | verdict |\n|---:|---:|---:|---|---|\n",
            b.lambda,
            b.examples,
            b.seconds,
            b.theta,
            format_lr(b.limit)
        );
        let (mut agree, mut total) = (0, 0);
        for r in &self.runs {
            let first = r.step_losses.first().copied().unwrap_or(f64::NAN);
            let ratio = r.max_loss / first;
            let blew_up = r.first_nonfinite_step.is_some() || ratio >= 1.5;
            let predicted = r.lr > b.limit;
            total += 1;
            agree += usize::from(blew_up == predicted);
            let _ = writeln!(
                out,
                "| {} | {} | {:.2} | {} | {} |",
                format_lr(r.lr),
                format_lr(r.lr / b.limit),
                ratio,
                if blew_up { "yes" } else { "no" },
                r.verdict
            );
        }
        let _ = writeln!(
            out,
            "\nthe limit separates the rates that blew up from those that did not for {agree} of {total} rates"
        );
        Some(out)
    }

    /// One row per rate.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "lr,final_train_loss,val_loss,val_accuracy,test_loss,test_accuracy,target_loss,steps_to_target,seconds_to_target,max_loss,\
             first_nonfinite_step,verdict,reason,timeline,seconds\n",
        );
        let opt = |v: Option<String>| v.unwrap_or_default();
        for r in &self.runs {
            let _ = writeln!(
                out,
                "{:e},{},{},{},{},{},{},{},{},{},{},{},{},{},{:.3}",
                r.lr,
                r.final_train_loss,
                opt(r.val_loss.map(|v| v.to_string())),
                opt(r.val_accuracy.map(|v| v.to_string())),
                opt(r.test_loss.map(|v| v.to_string())),
                opt(r.test_accuracy.map(|v| v.to_string())),
                self.target_loss,
                opt(r.steps_to_target.map(|v| v.to_string())),
                opt(r.seconds_to_target.map(|v| format!("{v:.3}"))),
                r.max_loss,
                opt(r.first_nonfinite_step.map(|v| v.to_string())),
                r.verdict,
                r.reason,
                r.timeline_text(),
                r.seconds
            );
        }
        out
    }

    /// Left: smoothed training loss per step (log y), one colour per rate, each curve
    /// labelled with its verdict; right: test accuracy per rate.
    pub fn figure(&self, title: &str) -> Figure {
        let mut losses = Chart::new(
            format!("{title}: training loss (EMA 0.98)"),
            Axis::linear("step"),
            Axis::log("training loss"),
        );
        let finite_losses = self
            .runs
            .iter()
            .flat_map(|r| r.smoothed_losses())
            .filter(|v| v.is_finite() && *v > 0.0);
        let lo = finite_losses.fold(f64::INFINITY, f64::min);
        let first = self.runs.iter().find_map(|r| r.step_losses.first().copied());
        if let (true, Some(first)) = (lo.is_finite(), first) {
            losses.y = losses.y.with_range(lo * 0.8, (first * 3.0).max(lo * 2.0));
        }
        losses.legend = false;
        for (i, r) in self.runs.iter().enumerate() {
            let smoothed = r.smoothed_losses();
            // At most ~400 points a curve keeps the file small and the lines smooth.
            let stride = smoothed.len().div_ceil(400).max(1);
            let mut points: Vec<(f64, f64)> = smoothed
                .iter()
                .enumerate()
                .filter(|(s, _)| s % stride == 0 || s + 1 == smoothed.len())
                .map(|(s, &l)| ((s + 1) as f64, l))
                .collect();
            if r.diverged() {
                points.retain(|p| p.1.is_finite());
            }
            losses.series.push(Series {
                color: Some(PALETTE[i % PALETTE.len()].into()),
                end_label: Some(format!(
                    "lr {}: {}{}",
                    format_lr(r.lr),
                    r.verdict,
                    if r.diverged() { " (NaN)" } else { "" }
                )),
                ..Series::line(format!("lr {}", format_lr(r.lr)), points)
            });
        }
        let mut accuracy = Chart::new(
            format!("{title}: test accuracy after {} epochs", self.epochs),
            Axis::log("learning rate"),
            Axis::linear("test accuracy").with_range(0.0, 1.0),
        );
        accuracy.legend = false;
        accuracy.series.push(Series {
            color: Some("#333".into()),
            dots: true,
            ..Series::line(
                "test accuracy",
                self.runs
                    .iter()
                    .map(|r| (r.lr, r.test_accuracy.unwrap_or(f64::NAN)))
                    .collect(),
            )
        });
        Figure {
            panel_width: 640.0,
            height: 440.0,
            panels: vec![losses, accuracy],
        }
    }
}

fn fmt_loss(v: f64) -> String {
    if !v.is_finite() {
        v.to_string()
    } else if v.abs() >= 1e4 {
        format!("{v:.2e}")
    } else {
        format!("{v:.4}")
    }
}

/// Records every step's loss and time for the speed and stability columns.
#[derive(Default)]
struct Recorder {
    started: Option<Instant>,
    steps: Arc<Mutex<(Vec<f64>, Vec<f64>)>>,
}

impl Callback for Recorder {
    fn on_train_begin(&mut self, _info: &TrainBegin) -> Result<Action> {
        self.started = Some(Instant::now());
        Ok(Action::Continue)
    }

    fn on_step_end(&mut self, s: &StepEnd) -> Result<Action> {
        let elapsed = self.started.map_or(0.0, |t| t.elapsed().as_secs_f64());
        if let Ok(mut steps) = self.steps.lock() {
            steps.0.push(s.loss);
            steps.1.push(elapsed);
        }
        Ok(Action::Continue)
    }
}

/// Trains a fresh model from `make_model` at every rate of `config` and measures each run.
///
/// `make_model` is called once per rate with an empty `VarMap`; it must create and
/// initialise the model's variables the same way every time (e.g. `reset_parameters(varmap,
/// seed)`), so every rate starts from the same weights. `on_run` sees each run as it ends.
pub fn sweep<E: Examples>(
    mut make_model: impl FnMut(&VarMap) -> Result<Box<dyn Model>>,
    train: &E,
    val: Option<&E>,
    test: Option<&E>,
    config: &SweepConfig,
    mut on_run: impl FnMut(&SweepRun),
) -> Result<SweepResult> {
    if config.lrs.is_empty() {
        return Err(TrainError::Config {
            name: "lrs",
            value: "[]".into(),
            message: "expected at least one learning rate",
        });
    }
    if let Some(bad) = config.lrs.iter().find(|lr| !(lr.is_finite() && **lr > 0.0)) {
        return Err(TrainError::Config {
            name: "lrs",
            value: bad.to_string(),
            message: "expected finite learning rates > 0",
        });
    }
    let sgd = config.optimizer == OptimizerKind::Sgd.spec();
    let stability = match (sgd, config.sharpness_examples) {
        // The Gauss-Newton sharpness is cross-entropy's, the limit plain SGD's.
        (true, Some(n)) if n > 0 && config.loss == Loss::CrossEntropy => {
            Some(initial_bound(&mut make_model, train, config, n)?)
        }
        _ => None,
    };
    let mut runs = Vec::with_capacity(config.lrs.len());
    for &lr in &config.lrs {
        let run = run_one(
            &mut make_model,
            train,
            val.map(|v| v as &dyn Examples),
            test.map(|t| t as &dyn Examples),
            config,
            lr,
        )?;
        on_run(&run);
        runs.push(run);
    }
    let target_loss = config.target_loss.unwrap_or_else(|| {
        runs.iter()
            .map(|r| r.final_train_loss)
            .filter(|l| l.is_finite())
            .fold(f64::INFINITY, f64::min)
            * 1.5
    });
    for r in &mut runs {
        let smoothed = r.smoothed_losses();
        if let Some(i) = smoothed.iter().position(|&l| l <= target_loss) {
            r.steps_to_target = Some(i as u64 + 1);
            r.seconds_to_target = r.step_seconds.get(i).copied();
        }
    }
    Ok(SweepResult {
        optimizer: config.optimizer.name.to_string(),
        epochs: config.epochs,
        batch_size: config.batch_size,
        target_loss,
        runs,
        stability,
    })
}

/// The sharpness of the initial weights on the first `n` examples of a seeded shuffle.
fn initial_bound(
    make_model: &mut impl FnMut(&VarMap) -> Result<Box<dyn Model>>,
    train: &dyn Examples,
    config: &SweepConfig,
    n: usize,
) -> Result<StabilityBound> {
    let varmap = VarMap::new();
    let model = make_model(&varmap)?;
    let vars = varmap.all_vars();
    let device = vars.first().map_or(Device::Cpu, |v| v.device().clone());
    let order = Batcher::new(train.len(), n.max(1), config.seed)?.order(0);
    let (x, y) = train.gather_tensors(&order[..n.min(order.len())], &device)?;
    let estimate = estimate_sharpness(model.as_ref(), &vars, &x, &y, &SharpnessConfig::default())?;
    let theta = 2.0 * (1.0 + config.momentum.unwrap_or(0.0));
    Ok(StabilityBound {
        lambda: estimate.lambda,
        theta,
        limit: theta / estimate.lambda,
        examples: n.min(order.len()),
        seconds: estimate.seconds,
    })
}

fn run_one(
    make_model: &mut impl FnMut(&VarMap) -> Result<Box<dyn Model>>,
    train: &dyn Examples,
    val: Option<&dyn Examples>,
    test: Option<&dyn Examples>,
    config: &SweepConfig,
    lr: f64,
) -> Result<SweepRun> {
    let varmap = VarMap::new();
    let model = make_model(&varmap)?;
    let groups = crate::rate_groups(&varmap, &config.rate_scales)?;
    let mut optimizer = config
        .optimizer
        .build_groups(groups, lr, config.momentum, config.weight_decay)?;
    let monitor = RunMonitor::new(config.monitor.clone(), None)
        .map_err(|e| TrainError::Config {
            name: "monitor",
            value: e.to_string(),
            message: "expected valid monitor settings",
        })?
        .quiet();
    let report = monitor.report_handle();
    let recorder = Recorder::default();
    let steps = recorder.steps.clone();
    let mut builder = Trainer::builder()
        .epochs(config.epochs)
        .batch_size(config.batch_size)
        .seed(config.seed)
        .lr(lr)
        .loss(config.loss.clone())
        .track_grad_norm(true)
        .callback(recorder);
    if config.progress {
        builder = builder.callback(ProgressBars::new().with_state(monitor.state_handle()));
    }
    let started = Instant::now();
    let history = builder
        .callback(monitor)
        .build()?
        .fit_with(model.as_ref(), optimizer.as_mut(), train, val)?;
    let seconds = started.elapsed().as_secs_f64();
    let (step_losses, step_seconds) = steps.lock().map(|s| s.clone()).unwrap_or_default();
    let first_nonfinite_step = step_losses.iter().position(|l| !l.is_finite()).map(|i| i as u64 + 1);
    let completed = history.epochs.len() == config.epochs && history.stopped.is_none();
    let final_train_loss = match history.last() {
        Some(e) if completed && first_nonfinite_step.is_none() => e.train_loss,
        _ => f64::NAN,
    };
    let device = optimizer.vars().first().map_or(Device::Cpu, |v| v.device().clone());
    // A run stopped mid-epoch has no evaluation of its final weights yet.
    let val_eval: Option<Eval> = match (val, history.last().and_then(|e| e.eval)) {
        (Some(_), Some(e)) if completed => Some(e),
        (Some(v), _) => Some(evaluate_with(model.as_ref(), v, &device, 1000, &config.loss)?),
        (None, _) => None,
    };
    // The test set, once, after training: reported, never chosen on.
    let eval: Option<Eval> = test
        .map(|t| evaluate_with(model.as_ref(), t, &device, 1000, &config.loss))
        .transpose()?;
    let report = report.lock().map(|r| r.clone()).unwrap_or_default();
    let (verdict, reason, suggestion) = sweep_verdict(report.last.as_ref(), report.epoch_verdict.as_ref()).map_or_else(
        || (State::Insufficient, String::new(), String::new()),
        |d| (d.state, d.reason.code().to_string(), d.suggestion.text.clone()),
    );
    Ok(SweepRun {
        lr,
        max_loss: step_losses
            .iter()
            .copied()
            .filter(|l| l.is_finite())
            .fold(f64::NEG_INFINITY, f64::max),
        step_losses,
        step_seconds,
        final_train_loss,
        val_loss: val_eval.map(|e| e.loss),
        val_accuracy: val_eval.map(|e| e.accuracy),
        test_loss: eval.map(|e| e.loss),
        test_accuracy: eval.map(|e| e.accuracy),
        steps_to_target: None,
        seconds_to_target: None,
        first_nonfinite_step,
        verdict,
        reason,
        suggestion,
        timeline: report.timeline.iter().map(|e| (e.step, e.state)).collect(),
        stopped: history.stopped.map(|s| s.to_string()),
        seconds,
    })
}

/// The verdict a sweep reports for a rate. Alarms (oscillating and worse) from any stream
/// win, and so does a slow verdict; otherwise the epoch means decide between healthy and
/// plateau. Real case (Fashion-MNIST, SGD 0.1, 5 epochs): the minibatch losses looked like a
/// plateau from step 665 on while the epoch means fell 0.62, 0.45, 0.42, 0.40, 0.39 (the
/// lesson's "healthy, diminishing returns").
fn sweep_verdict<'a>(overall: Option<&'a Diagnosis>, epoch: Option<&'a Diagnosis>) -> Option<&'a Diagnosis> {
    match (overall, epoch) {
        (Some(o), _) if o.state >= State::Oscillating || o.state == State::Slow => Some(o),
        (o, Some(e)) if e.state >= State::Oscillating => Some(e).or(o),
        (_, Some(e)) if e.state != State::Insufficient => Some(e),
        (o, _) => o,
    }
}
