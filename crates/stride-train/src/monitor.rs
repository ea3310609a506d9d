//! The run-health monitor as an observer: warnings, the state for the bars,
//! a run report, and (opt-in) automatic learning-rate interventions.

use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use stride_monitor::{
    stability_warning, Action as Advice, Debounce, Diagnosis, EpochRecord, Monitor, MonitorConfig, MonitorError,
    MonitorState, State, StepRecord,
};

use crate::callback::{format_lr, Action, Callback, EpochEnd, StepEnd, TrainBegin};
use crate::error::{Result, TrainError};
use crate::stability::SharpnessReading;
use crate::History;

/// Settings of [`RunMonitor`]'s interventions (`--auto-lr`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AutoLr {
    /// Most rollbacks before the run is stopped (default 3).
    pub max_rollbacks: usize,
    /// Steps between snapshots while the run is healthy (default 50).
    pub snapshot_every: u64,
}

impl Default for AutoLr {
    fn default() -> Self {
        Self {
            max_rollbacks: 3,
            snapshot_every: 50,
        }
    }
}

/// One change of state, or an intervention, in the run report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// Optimizer step (after the step) at which it happened.
    pub step: u64,
    /// Epoch, from 1 (as in the logs).
    pub epoch: usize,
    /// The monitor's state from here on.
    pub state: State,
    /// Its reason code.
    pub reason: String,
    /// The suggestion's sentence.
    pub suggestion: String,
    /// What the trainer did about it, if anything.
    pub intervention: Option<String>,
}

/// One sharpness estimate in the run report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StabilityEntry {
    /// Steps taken before the estimate.
    pub step: u64,
    /// The rate at that step.
    #[serde(with = "stride_monitor::exact")]
    pub lr: f64,
    /// The estimate.
    pub reading: SharpnessReading,
    /// Largest stable rate `theta / lambda` (infinite for a flat direction).
    #[serde(with = "stride_monitor::exact")]
    pub limit: f64,
    /// `lr / limit`.
    #[serde(with = "stride_monitor::exact")]
    pub margin: f64,
}

/// What the monitor saw over a run, printed as a table and saved as JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// Sharpness estimates and stability limits, when the trainer estimated them.
    pub stability: Vec<StabilityEntry>,
    /// Seconds spent estimating sharpness, and in training steps altogether.
    #[serde(with = "stride_monitor::exact")]
    pub sharpness_cost: Option<(f64, f64)>,
    /// Every change of state and every intervention, in order.
    pub timeline: Vec<TimelineEntry>,
    /// The verdict at the end of the run.
    pub last: Option<Diagnosis>,
    /// The verdict of the epoch means (and validation losses) alone at the end of the run:
    /// the lesson's view ("0.8, 0.5, 0.4, 0.38, 0.37 is healthy"), without the minibatch noise.
    pub epoch_verdict: Option<Diagnosis>,
    /// Rollbacks performed.
    pub rollbacks: usize,
}

impl RunReport {
    /// A plain-text table of the timeline and the final verdict.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:>7}  {:>5}  {:<16} {:<26} suggestion\n",
            "step", "epoch", "state", "reason"
        );
        for e in &self.timeline {
            out += &format!(
                "{:>7}  {:>5}  {:<16} {:<26} {}{}\n",
                e.step,
                e.epoch,
                e.state.to_string(),
                e.reason,
                e.suggestion,
                e.intervention.as_ref().map(|i| format!(" [{i}]")).unwrap_or_default()
            );
        }
        if !self.stability.is_empty() {
            out += &format!(
                "stability (sharpness):\n{:>7}  {:>10}  {:>7}  {:>10}  {:>9}  {:>7}\n",
                "step", "lambda", "theta", "limit", "lr", "margin"
            );
            for s in &self.stability {
                out += &format!(
                    "{:>7}  {:>10.4}  {:>7}  {:>10.4}  {:>9}  {:>7.2}{}\n",
                    s.step,
                    s.reading.lambda,
                    format!("{:.3}", s.reading.threshold)
                        .trim_end_matches('0')
                        .trim_end_matches('.'),
                    s.limit,
                    format_lr(s.lr),
                    s.margin,
                    if s.reading.converged { "" } else { "  (not converged)" }
                );
            }
            if let Some((spent, train)) = self.sharpness_cost {
                out += &format!(
                    "sharpness cost: {spent:.2} s of {train:.2} s of training ({:.1}%)\n",
                    100.0 * spent / train.max(1e-12)
                );
            }
        }
        if let Some(d) = &self.last {
            out += &format!(
                "final verdict: {} ({}): {}\n",
                d.state,
                d.reason.code(),
                d.suggestion.text
            );
        }
        out
    }

    /// Writes the report as JSON.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        let to_err = |source| TrainError::Io {
            path: path.to_path_buf(),
            source,
        };
        let json = serde_json::to_string_pretty(self).map_err(|e| to_err(std::io::Error::other(e)))?;
        std::fs::write(path, json).map_err(to_err)
    }
}

/// Watches the run through `stride-monitor`: one `tracing` warning per
/// transition into a non-healthy state (with the suggestion's sentence), the
/// current state for the progress bars, and a [`RunReport`]. With [`AutoLr`]
/// it also acts: snapshots while healthy, rolls back and lowers the rate on
/// divergence or a non-finite loss (at most `max_rollbacks` times, then
/// stops), and applies the suggested decay on a plateau.
pub struct RunMonitor {
    monitor: Monitor,
    auto: Option<AutoLr>,
    display: Debounce,
    epoch: usize,
    state: Arc<Mutex<State>>,
    report: Arc<Mutex<RunReport>>,
    quiet: bool,
    /// True while replaying the journal of a checkpoint written before [`SAVED_FORMAT`]: no log
    /// lines.
    replaying: bool,
}

/// Version of [`Saved`]. Checkpoints before it kept a journal of every event (about 175 bytes
/// a step) and are still read by replaying it.
const SAVED_FORMAT: u32 = 2;

/// What a checkpoint keeps of a [`RunMonitor`]: the monitor's bounded state, the display's
/// hysteresis and the report (which grows with changes of state, not with steps).
#[derive(Serialize, Deserialize)]
struct Saved {
    format: u32,
    monitor: MonitorState,
    display: Debounce,
    epoch: usize,
    shown: State,
    report: RunReport,
}

impl RunMonitor {
    /// A monitor that warns and reports; `auto` enables interventions.
    pub fn new(config: MonitorConfig, auto: Option<AutoLr>) -> std::result::Result<Self, MonitorError> {
        if let Some(a) = auto.filter(|a| a.snapshot_every == 0) {
            return Err(MonitorError::InvalidConfig {
                field: "snapshot_every",
                value: a.snapshot_every.to_string(),
                expected: "at least 1 step between snapshots",
            });
        }
        Ok(Self {
            monitor: Monitor::new(config)?,
            auto,
            display: Debounce::default(),
            epoch: 0,
            state: Arc::new(Mutex::new(State::Insufficient)),
            report: Arc::new(Mutex::new(RunReport::default())),
            quiet: false,
            replaying: false,
        })
    }

    /// Keeps the changes of state in the report but logs them at debug level only
    /// (sweeps run many rates and print one verdict each).
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    /// The current state, shared with the progress bars.
    pub fn state_handle(&self) -> Arc<Mutex<State>> {
        self.state.clone()
    }

    /// The report, readable after the run (the monitor itself moves into the trainer).
    pub fn report_handle(&self) -> Arc<Mutex<RunReport>> {
        self.report.clone()
    }

    /// Logs, records and, with `--auto-lr`, acts on a diagnosis.
    fn handle(&mut self, d: &Diagnosis, step: u64) -> Action {
        let changed = self.display.update(d.state).is_some();
        if changed {
            if let Ok(mut s) = self.state.lock() {
                *s = d.state;
            }
        }
        let mut action = Action::Continue;
        let mut intervention = None;
        if let Some(auto) = self.auto {
            let rollbacks = self.report.lock().map(|r| r.rollbacks).unwrap_or(0);
            match d.state {
                State::Diverging | State::Exploded => {
                    if rollbacks >= auto.max_rollbacks {
                        action = Action::Stop(format!(
                            "still {} after {rollbacks} rollbacks with lower rates: {}",
                            d.state, d.suggestion.text
                        ));
                    } else {
                        let lr = d.suggestion.new_lr;
                        intervention = Some(format!(
                            "rolled back to the last healthy snapshot{}",
                            lr.map(|lr| format!(", lr -> {}", format_lr(lr))).unwrap_or_default()
                        ));
                        if let Ok(mut r) = self.report.lock() {
                            r.rollbacks += 1;
                        }
                        action = Action::Rollback(lr);
                        // The restored weights start a new history.
                        self.monitor.reset();
                    }
                }
                State::Plateau if changed && d.suggestion.action == Advice::Decay => {
                    if let Some(lr) = d.suggestion.new_lr {
                        intervention = Some(format!("decayed lr -> {}", format_lr(lr)));
                        action = Action::SetLr(lr);
                        self.monitor.notify_lr_change(lr);
                    }
                }
                State::Healthy if step % auto.snapshot_every == 0 => action = Action::Checkpoint,
                _ => {}
            }
        }
        if changed || intervention.is_some() {
            // A replayed journal was logged when it happened.
            if self.quiet || self.replaying {
                tracing::debug!("{} ({}): {}", d.state, d.reason.code(), d.suggestion.text);
            } else if d.state != State::Healthy {
                let code = d.reason.code();
                tracing::warn!("{} ({code}): {} [{}]", d.state, d.suggestion.text, doc_link(code));
            } else {
                tracing::info!("healthy: {}", d.suggestion.text);
            }
            if let Ok(mut r) = self.report.lock() {
                r.timeline.push(TimelineEntry {
                    step,
                    epoch: self.epoch + 1,
                    state: d.state,
                    reason: d.reason.code().to_string(),
                    suggestion: d.suggestion.text.clone(),
                    intervention,
                });
            }
            if matches!(action, Action::Rollback(_)) {
                self.display.reset();
            }
        }
        action
    }
}

impl Callback for RunMonitor {
    fn on_train_begin(&mut self, _info: &TrainBegin) -> Result<Action> {
        // The initial weights are the snapshot of last resort (a dead network restarts from them).
        Ok(if self.auto.is_some() {
            Action::Checkpoint
        } else {
            Action::Continue
        })
    }

    fn on_step_end(&mut self, s: &StepEnd) -> Result<Action> {
        self.epoch = s.epoch;
        if let Some(r) = &s.sharpness {
            let margin = r.margin(s.lr);
            let entry = StabilityEntry {
                step: s.step - 1,
                lr: s.lr,
                reading: *r,
                limit: r.limit(),
                margin,
            };
            if self.replaying {
                // Logged when it happened.
            } else if margin > self.monitor.config().unstable_margin {
                tracing::warn!("{}", stability_warning(s.lr, r.lambda, r.threshold));
            } else {
                tracing::info!(
                    "sharpness {:.4}: stable below lr {} (lr {} is {:.2}x that)",
                    r.lambda,
                    format_lr(r.limit()),
                    format_lr(s.lr),
                    margin
                );
            }
            if let Ok(mut rep) = self.report.lock() {
                rep.stability.push(entry);
            }
        }
        let record = StepRecord {
            // Only a non-finite norm is passed on (rule 1). The grad-norm spike rule,
            // run on real Fashion-MNIST at SGD 0.1 (the best rate), called the run
            // oscillating for 200 steps (minibatch grad norms spike routinely); the
            // loss-only rules are the ones the real-run fixture validates.
            grad_norm: s.grad_norm.filter(|g| !g.is_finite()),
            update_ratio: s.update_ratio,
            sharpness: s.sharpness.map(|r| r.lambda),
            stability_threshold: s.sharpness.map(|r| r.threshold),
            effective_lr: (s.effective_lr != s.lr).then_some(s.effective_lr),
            ..StepRecord::new(s.step, s.loss, s.lr)
        };
        let d = self.monitor.observe_step(&record);
        Ok(self.handle(&d, s.step))
    }

    fn on_epoch_end(&mut self, e: &EpochEnd) -> Result<Action> {
        self.epoch = e.epoch;
        if !e.train_loss.is_finite() && e.eval.is_none() {
            return Ok(Action::Continue);
        }
        let record = EpochRecord {
            val_loss: e.eval.map(|v| v.loss),
            ..EpochRecord::new(e.epoch as u64, e.train_loss, e.lr)
        };
        self.monitor.observe_epoch(&record);
        let d = self.monitor.overall();
        Ok(self.handle(&d, e.step))
    }

    fn on_train_end(&mut self, history: &History) -> Result<()> {
        if let Ok(mut r) = self.report.lock() {
            r.last = Some(self.monitor.overall());
            r.epoch_verdict = self.monitor.epoch_overall();
            if !history.sharpness.is_empty() {
                let spent = history.epochs.iter().map(|e| e.sharpness_seconds).sum();
                let train = history.epochs.iter().map(|e| e.train_seconds).sum();
                r.sharpness_cost = Some((spent, train));
            }
        }
        Ok(())
    }

    fn save_state(&self) -> Option<serde_json::Value> {
        let saved = Saved {
            format: SAVED_FORMAT,
            monitor: self.monitor.state(),
            display: self.display.clone(),
            epoch: self.epoch,
            shown: self.state.lock().map_or(State::Insufficient, |s| *s),
            report: self.report.lock().map(|r| r.clone()).unwrap_or_default(),
        };
        match serde_json::to_value(&saved) {
            Ok(v) => Some(v),
            Err(e) => {
                // Unreachable with these types (no maps with non-string keys); a checkpoint
                // without the monitor still resumes the training.
                tracing::error!("run monitor: cannot encode its state for the checkpoint: {e}");
                None
            }
        }
    }

    fn restore_state(&mut self, state: &serde_json::Value) -> Result<()> {
        if state.get("journal").is_some() {
            return self.replay_journal(state);
        }
        let format = state.get("format").and_then(serde_json::Value::as_u64);
        if format != Some(u64::from(SAVED_FORMAT)) {
            return Err(bad_state(&format!(
                "state format {} is not one this build reads ({SAVED_FORMAT}, or the older journal)",
                format.map_or_else(|| "missing".to_string(), |f| f.to_string())
            )));
        }
        let saved = Saved::deserialize(state).map_err(|e| bad_state(&e.to_string()))?;
        self.monitor =
            Monitor::from_state(self.monitor.config().clone(), saved.monitor).map_err(|e| bad_state(&e.to_string()))?;
        self.display = saved.display;
        self.epoch = saved.epoch;
        if let Ok(mut s) = self.state.lock() {
            *s = saved.shown;
        }
        if let Ok(mut r) = self.report.lock() {
            *r = saved.report;
        }
        Ok(())
    }
}

impl RunMonitor {
    /// Rebuilds the state from a checkpoint written before [`SAVED_FORMAT`]: the monitor is a
    /// deterministic function of what it saw, so replaying the events rebuilds its windows,
    /// latches, report and intervention counts exactly.
    fn replay_journal(&mut self, state: &serde_json::Value) -> Result<()> {
        let journal = state
            .get("journal")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| bad_journal("no `journal` array"))?;
        let events = journal.iter().map(decode).collect::<Result<Vec<_>>>()?;
        self.monitor = Monitor::new(self.monitor.config().clone()).map_err(|e| bad_journal(&e.to_string()))?;
        self.display = Debounce::default();
        self.epoch = 0;
        if let Ok(mut r) = self.report.lock() {
            *r = RunReport::default();
        }
        if let Ok(mut s) = self.state.lock() {
            *s = State::Insufficient;
        }
        self.replaying = true;
        let replayed = events.iter().try_for_each(|event| {
            match event {
                Replay::Step(s) => self.on_step_end(s)?,
                Replay::Epoch(e) => self.on_epoch_end(e)?,
            };
            Ok(())
        });
        self.replaying = false;
        replayed
    }
}

/// Where `docs/monitor.md` explains a reason code (each row of its table has an anchor).
fn doc_link(code: &str) -> String {
    format!("see docs/monitor.md#{code}")
}

fn bad_state(message: &str) -> TrainError {
    TrainError::ObserverState {
        observer: "run monitor",
        message: message.to_string(),
    }
}

/// An event in the journal.
#[derive(Debug, Clone)]
enum Replay {
    Step(StepEnd),
    Epoch(EpochEnd),
}

fn bad_journal(message: &str) -> TrainError {
    TrainError::ObserverState {
        observer: "run monitor",
        message: format!("journal: {message}"),
    }
}

/// One event of an old journal: `["s", step, epoch, loss, lr, grad norm, update ratio,
/// sharpness]` or `["e", epoch, step, train loss, test loss, lr]`.
fn decode(v: &serde_json::Value) -> Result<Replay> {
    let a = v
        .as_array()
        .ok_or_else(|| bad_journal(&format!("entry {v} is not an array")))?;
    let float = |i: usize| -> Result<f64> {
        match a.get(i) {
            Some(serde_json::Value::Number(n)) => n.as_f64(),
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .ok_or_else(|| bad_journal(&format!("entry {v}: field {i} is not a number")))
    };
    let opt = |i: usize| -> Result<Option<f64>> {
        match a.get(i) {
            Some(serde_json::Value::Null) => Ok(None),
            _ => float(i).map(Some),
        }
    };
    let int = |i: usize| -> Result<u64> {
        a.get(i)
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| bad_journal(&format!("entry {v}: field {i} is not a count")))
    };
    let index = |i: usize| int(i).and_then(|n| usize::try_from(n).map_err(|_| bad_journal("index too large")));
    match a.first().and_then(serde_json::Value::as_str) {
        Some("s") => Ok(Replay::Step(StepEnd {
            step: int(1)?,
            epoch: index(2)?,
            batch: 0,
            batches: 0,
            loss: float(3)?,
            lr: float(4)?,
            effective_lr: float(4)?,
            batch_size: 0,
            grad_norm: opt(5)?,
            update_ratio: opt(6)?,
            sharpness: match a.get(7) {
                None | Some(serde_json::Value::Null) => None,
                Some(r) => Some(
                    serde_json::from_value(r.clone())
                        .map_err(|e| bad_journal(&format!("entry {v}: sharpness reading: {e}")))?,
                ),
            },
        })),
        Some("e") => Ok(Replay::Epoch(EpochEnd {
            epoch: index(1)?,
            epochs: 0,
            step: int(2)?,
            train_loss: float(3)?,
            train_accuracy: None,
            eval: opt(4)?.map(|loss| crate::Eval {
                loss,
                accuracy: f64::NAN,
            }),
            lr: float(5)?,
            train_time: std::time::Duration::ZERO,
        })),
        _ => Err(bad_journal(&format!("entry {v} has no kind \"s\" or \"e\""))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A monitor as `stride train` builds it: ten classes, window rules every 8 steps.
    fn monitor(auto: Option<AutoLr>) -> RunMonitor {
        let cfg = MonitorConfig {
            num_classes: Some(10),
            eval_every: 8,
            ..MonitorConfig::default()
        };
        RunMonitor::new(cfg, auto).unwrap().quiet()
    }

    /// A noisy decreasing loss with spikes, a rate drop, a flat stretch, a blow-up and a NaN,
    /// so that the windows, spike detectors, latches, long history, display and interventions
    /// all hold something when the state is saved.
    fn loss(i: u64) -> f64 {
        let mut r = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (i >> 3);
        r ^= r >> 29;
        let noise = (r % 10_000) as f64 / 10_000.0 - 0.5;
        let spike = if i % 977 == 0 { 3.0 } else { 1.0 };
        let base = match i {
            ..=1_500 => 2.3 * (-(i as f64) / 300.0).exp() + 0.2,
            1_501..=2_000 => 0.2,
            2_001..=2_150 => 0.2 * 1.04f64.powf((i - 2_000) as f64),
            2_151..=2_600 => 1.5,
            2_601 => f64::NAN,
            _ => 1.0,
        };
        base * (1.0 + 0.4 * noise) * spike
    }

    /// A sharpness estimate every 400 steps, with an infinite stability limit now and then.
    fn sharpness(step: u64) -> Option<crate::SharpnessReading> {
        (step % 400 == 0).then(|| crate::SharpnessReading {
            lambda: if step % 1_200 == 0 {
                0.0
            } else {
                30.0 + step as f64 / 7.0
            },
            operator: crate::Operator::Hessian,
            threshold: 2.0,
            iterations: 20,
            converged: step % 800 != 0,
            gradient_evals: 40,
            seconds: 0.01,
        })
    }

    const PER_EPOCH: u64 = 250;

    /// Feeds steps `from..to` (1-based) of [`loss`], with an epoch end every [`PER_EPOCH`] steps.
    fn feed(m: &mut RunMonitor, from: u64, to: u64) -> Vec<Action> {
        feed_with(m, from, to, loss, sharpness)
    }

    fn feed_with(
        m: &mut RunMonitor,
        from: u64,
        to: u64,
        loss: impl Fn(u64) -> f64,
        sharpness: impl Fn(u64) -> Option<crate::SharpnessReading>,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        for step in from..to {
            let epoch = ((step - 1) / PER_EPOCH) as usize;
            let lr = if step < 1_500 { 0.1 } else { 0.01 };
            let s = StepEnd {
                step,
                epoch,
                batch: ((step - 1) % PER_EPOCH) as usize,
                batches: PER_EPOCH as usize,
                loss: loss(step),
                lr,
                effective_lr: lr,
                batch_size: 64,
                grad_norm: None,
                update_ratio: (step % 50 == 0).then_some(1e-3 / step as f64),
                sharpness: sharpness(step),
            };
            actions.push(m.on_step_end(&s).unwrap());
            if step % PER_EPOCH == 0 {
                let e = EpochEnd {
                    epoch,
                    epochs: 100,
                    step,
                    train_loss: loss(step) * 1.01,
                    train_accuracy: None,
                    eval: Some(crate::Eval {
                        loss: loss(step) * 1.1,
                        accuracy: 0.5,
                    }),
                    lr,
                    train_time: std::time::Duration::ZERO,
                };
                actions.push(m.on_epoch_end(&e).unwrap());
            }
        }
        actions
    }

    /// The state as the checkpoint writes it.
    fn saved(m: &RunMonitor) -> String {
        serde_json::to_string(&m.save_state().unwrap()).unwrap()
    }

    #[test]
    fn the_saved_state_does_not_grow_with_the_steps() {
        // A run that stays healthy: the report (which grows with changes of state and
        // sharpness estimates, not with steps) holds one entry, the rest is the monitor's.
        let steady = |i: u64| loss(i.min(1_500));
        let size_at = |steps: u64| {
            let mut m = monitor(None);
            feed_with(&mut m, 1, steps + 1, steady, |_| None);
            saved(&m).len()
        };
        let sizes = [500, 5_000, 50_000, 100_000].map(size_at);
        eprintln!("saved state after 500, 5,000, 50,000, 100,000 steps: {sizes:?} B");
        let growth = |a: usize, b: usize| sizes[b] as f64 / sizes[a] as f64 - 1.0;
        assert!(growth(0, 1).abs() < 0.2, "{sizes:?} B");
        // Past about 16,000 steps the long history's current block holds its most raw values
        // (512): the state has reached its ceiling.
        assert!(growth(2, 3).abs() < 0.05, "{sizes:?} B");
        assert!(sizes.iter().all(|s| *s < 30_000), "{sizes:?} B");
        // The eventful run: 11 changes of state, 3 rollbacks, 12 sharpness estimates.
        let mut m = monitor(Some(AutoLr::default()));
        feed(&mut m, 1, 5_001);
        assert!(saved(&m).len() < 40_000, "{} B", saved(&m).len());
    }

    #[test]
    fn a_restored_monitor_continues_bit_for_bit() {
        // Cuts while healthy, slow, between rollbacks, on a plateau and after the NaN latch.
        for cut in [7, 333, 1_250, 1_900, 2_045, 2_250, 2_700] {
            let mut straight = monitor(Some(AutoLr::default()));
            let first = feed(&mut straight, 1, cut);
            let text = saved(&straight);
            let mut resumed = monitor(Some(AutoLr::default()));
            resumed.restore_state(&serde_json::from_str(&text).unwrap()).unwrap();
            assert_eq!(saved(&resumed), text, "cut {cut}: restore then save");
            assert!(!first.is_empty());
            let a = feed(&mut straight, cut, 3_000);
            let b = feed(&mut resumed, cut, 3_000);
            assert_eq!(a, b, "cut {cut}: actions");
            let history = History::default();
            straight.on_train_end(&history).unwrap();
            resumed.on_train_end(&history).unwrap();
            assert_eq!(saved(&resumed), saved(&straight), "cut {cut}: state at the end");
            assert_eq!(
                *resumed.report.lock().unwrap(),
                *straight.report.lock().unwrap(),
                "cut {cut}: report"
            );
            assert_eq!(*resumed.state.lock().unwrap(), *straight.state.lock().unwrap());
            let r = straight.report.lock().unwrap();
            assert_eq!((r.timeline.len(), r.rollbacks, r.stability.len()), (11, 3, 7));
        }
    }

    #[test]
    fn a_journal_from_an_older_checkpoint_is_replayed() {
        let mut straight = monitor(None);
        feed(&mut straight, 1, 600);
        let journal: Vec<serde_json::Value> = (1..600u64)
            .flat_map(|step| {
                let lr = 0.1;
                let mut v = vec![serde_json::json!([
                    "s",
                    step,
                    (step - 1) / PER_EPOCH,
                    loss(step),
                    lr,
                    null,
                    (step % 50 == 0).then_some(1e-3 / step as f64),
                    sharpness(step).map(|r| serde_json::to_value(r).unwrap())
                ])];
                if step % PER_EPOCH == 0 {
                    v.push(serde_json::json!([
                        "e",
                        (step - 1) / PER_EPOCH,
                        step,
                        loss(step) * 1.01,
                        loss(step) * 1.1,
                        lr
                    ]));
                }
                v
            })
            .collect();
        let mut resumed = monitor(None);
        resumed
            .restore_state(&serde_json::json!({ "journal": journal }))
            .unwrap();
        assert_eq!(*resumed.report.lock().unwrap(), *straight.report.lock().unwrap());
        assert_eq!(feed(&mut resumed, 600, 900), feed(&mut straight, 600, 900));
    }

    #[test]
    fn a_state_of_another_format_is_a_named_error() {
        let mut m = monitor(None);
        for (state, needle) in [
            (serde_json::json!({ "format": 99 }), "format 99"),
            (serde_json::json!({}), "format missing"),
            (
                serde_json::json!({ "format": SAVED_FORMAT, "monitor": 1 }),
                "invalid type",
            ),
            (serde_json::json!({ "journal": 3 }), "journal"),
        ] {
            match m.restore_state(&state) {
                Err(e @ TrainError::ObserverState { .. }) => {
                    assert!(e.to_string().contains(needle), "{e}")
                }
                other => panic!("{state}: {other:?}"),
            }
        }
    }

    #[test]
    fn every_reason_code_in_the_docs_has_the_anchor_warnings_link_to() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/monitor.md");
        let doc = std::fs::read_to_string(&path).unwrap();
        let rows: Vec<&str> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split_once('`').map(|(code, _)| code))
            .filter(|c| !c.contains(' '))
            .collect();
        assert!(rows.len() > 30, "{rows:?}");
        for code in rows.into_iter().chain(["hard_4x", "flat_after_progress", "noisy_flat"]) {
            let link = doc_link(code);
            let anchor = link.rsplit_once('#').map(|(_, a)| a).unwrap();
            assert!(
                doc.contains(&format!("<a id=\"{anchor}\"></a>")),
                "{link} lands nowhere"
            );
        }
    }
}
