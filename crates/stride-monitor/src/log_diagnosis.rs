//! `stride diagnose` without the command line: a read log replayed through the live monitor
//! (with the live display's hysteresis, so a steady run shows a handful of state changes), the
//! whole-run verdict of [`judge_run`](crate::judge_run), and a report of bounded size whatever
//! the log's length.

use serde::Serialize;

use crate::config::MonitorConfig;
use crate::debounce::Debounce;
use crate::diagnosis::Diagnosis;
use crate::error::MonitorError;
use crate::log_reader::{LogPoint, LossLog, ValPoint, XUnit};
use crate::monitor::Monitor;
use crate::record::{EpochRecord, StepRecord};
use crate::run_verdict::{judge_run, RunInput, RunVerdict, MIN_POINTS};
use crate::state::{Reason, State, Stream};

/// Which losses of a log to judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamChoice {
    /// Per-step losses when the log has any, else per-epoch ones.
    #[default]
    Auto,
    /// Per-step losses (a plain list is read as steps).
    Step,
    /// Per-epoch losses (a plain list is read as epochs).
    Epoch,
}

/// Options of a log diagnosis.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogOptions {
    /// The run's rate where the log has none; `None`: advice in factors ("lower the rate 10x").
    pub lr: Option<f64>,
    /// Number of classes (chance level `ln C`).
    pub num_classes: Option<u32>,
    /// Which losses to judge.
    pub stream: StreamChoice,
}

/// One change of the state shown by the live replay.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateChange {
    /// Step, epoch or row of the change.
    pub at: f64,
    /// The newly shown state.
    pub state: State,
    /// The rule behind it.
    pub reason: Reason,
    /// The live suggestion (empty when the log has no rate: the live rules need one).
    pub text: String,
}

/// Most state changes listed (the first and the last halves; the rest are counted).
pub const MAX_CHANGES: usize = 20;
/// Most trajectory letters (longer logs get one letter per bucket of observations).
pub const MAX_TRAJECTORY: usize = 100;
/// Most rows replayed through the live rules (longer logs are replayed at every k-th row).
const REPLAY_MAX: usize = 50_000;

/// The diagnosis of a log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogDiagnosis {
    /// The stream judged (`step` or `epoch`).
    pub stream: Stream,
    /// Observations judged.
    pub observations: usize,
    /// One letter per observation (or per bucket, at most [`MAX_TRAJECTORY`]) of the shown state.
    pub trajectory: String,
    /// Observations per trajectory letter.
    pub per_letter: usize,
    /// Shown state changes, at most [`MAX_CHANGES`].
    pub changes: Vec<StateChange>,
    /// Changes not listed.
    pub changes_omitted: usize,
    /// The live monitor's last raw verdict.
    pub live: Option<Diagnosis>,
    /// The whole-run verdict.
    pub verdict: RunVerdict,
    /// What was read: the log's format and the loss column or key judged (so a user sees
    /// which of several losses, `d_loss` or `g_loss`, the verdict is about).
    pub read: String,
}

/// Where the x of `items` starts over: it goes back, to the first x or before it.
fn starts_over<T>(items: &[T], x: impl Fn(&T) -> f64) -> Vec<usize> {
    (1..items.len())
        .filter(|i| x(&items[*i]) < x(&items[i - 1]) && x(&items[*i]) <= x(&items[0]))
        .collect()
}

/// Diagnoses a read log.
pub fn diagnose_loss_log(log: &LossLog, opts: &LogOptions) -> Result<LogDiagnosis, MonitorError> {
    let use_epochs = match opts.stream {
        StreamChoice::Auto => log.points.is_empty(),
        StreamChoice::Step => log.points.is_empty(),
        StreamChoice::Epoch => true,
    };
    let (points, unit, val): (&[LogPoint], XUnit, Vec<ValPoint>) = if use_epochs && !log.epochs.is_empty() {
        // Validation losses by epoch, to line up with the epoch means.
        let val = log
            .val
            .iter()
            .map(|v| ValPoint {
                x: v.epoch.unwrap_or(v.x),
                ..*v
            })
            .collect();
        (&log.epochs, XUnit::Epoch, val)
    } else if use_epochs {
        let unit = if log.x_unit == XUnit::Index {
            XUnit::Epoch
        } else {
            log.x_unit
        };
        (&log.points, unit, log.val.clone())
    } else {
        (&log.points, log.x_unit, log.val.clone())
    };
    // An epoch count that starts over is another run appended to the same file (Keras's
    // `CSVLogger(append=True)`, a script rerun with `>>`): within one run it never goes back.
    // The verdict is about the last run, and says how many the log holds.
    let log_len = points.len();
    let restarts = if unit == XUnit::Epoch {
        starts_over(points, |p| p.x)
    } else {
        Vec::new()
    };
    let (points, val) = match restarts.last() {
        Some(&from) if points.len() - from >= MIN_POINTS => {
            let vfrom = starts_over(&val, |v| v.x).last().copied().unwrap_or(0);
            (&points[from..], val[vfrom..].to_vec())
        }
        _ => (points, val),
    };
    // A step column that goes back (a batch index that restarts every epoch, concatenated runs)
    // cannot place the losses: use the row order.
    let renumbered: Vec<LogPoint>;
    let (points, unit) = if points.windows(2).all(|w| w[0].x <= w[1].x) {
        (points, unit)
    } else {
        renumbered = points
            .iter()
            .enumerate()
            .map(|(i, p)| LogPoint {
                x: i as f64 + 1.0,
                ..*p
            })
            .collect();
        (&renumbered[..], XUnit::Index)
    };
    // The live rules: per epoch for epoch logs and for logs too short for the STEP window
    // (under 20 points); a log every 10 or 100 steps is a coarse STEP stream of minibatch
    // losses, whose noise the STEP rules measure and the epoch rules do not.
    let epoch_rules = use_epochs || unit == XUnit::Epoch || points.len() < 20;
    // Logs over 50,000 rows are replayed through the live rules at every `stride`-th row (and
    // every non-finite one): the timeline has at most 100 letters and the whole-run verdict
    // reads every row; the replay would otherwise be 90 % of `stride diagnose`'s time.
    let stride = points.len().div_ceil(REPLAY_MAX).max(1);
    let cfg = MonitorConfig {
        num_classes: opts.num_classes,
        // Long logs: the window rules every 8 observations, as the trainer runs them.
        eval_every: if points.len() > REPLAY_MAX / 2 { 8 } else { 1 },
        ..MonitorConfig::default()
    };
    let lr_known = opts.lr.is_some() || log.has_lr();
    let mut monitor = Monitor::new(cfg)?;
    // The display's hysteresis, counted in observations: ten steps, or two epochs (an epoch is
    // hundreds of steps; ten of them would hide every state of a 5-epoch log).
    let mut shown = if epoch_rules {
        Debounce::new(2)
    } else {
        Debounce::default()
    };
    let n = points.len();
    let per_letter = n.div_ceil(MAX_TRAJECTORY).max(1);
    let mut trajectory = String::with_capacity(MAX_TRAJECTORY + 1);
    let (mut head, mut tail) = (Vec::new(), std::collections::VecDeque::new());
    let mut total_changes = 0usize;
    let mut live = None;
    let mut bucket_worst = State::Insufficient;
    for (i, p) in points.iter().enumerate() {
        let fed = stride == 1 || (i + 1) % stride == 0 || i + 1 == n || !p.loss.is_finite();
        if !fed {
            continue;
        }
        let lr = p.lr.or(opts.lr).unwrap_or(1.0);
        let d = if epoch_rules {
            let val_loss = if val.len() == n { Some(val[i].loss) } else { None };
            monitor.observe_epoch(&EpochRecord {
                val_loss,
                ..EpochRecord::new(i as u64 + 1, p.loss, lr)
            })
        } else {
            monitor.observe_step(&StepRecord::new(i as u64 + 1, p.loss, lr))
        };
        if let Some(state) = shown.update(d.state) {
            total_changes += 1;
            let change = StateChange {
                at: p.x,
                state,
                reason: d.reason,
                text: if lr_known {
                    d.suggestion.text.clone()
                } else {
                    String::new()
                },
            };
            if head.len() < MAX_CHANGES / 2 {
                head.push(change);
            } else {
                if tail.len() == MAX_CHANGES / 2 {
                    tail.pop_front();
                }
                tail.push_back(change);
            }
        }
        // A bucket's letter: its most severe shown alarm, else the state shown at its end.
        let s = shown.shown();
        if s.is_terminal() {
            bucket_worst = bucket_worst.max(s);
        }
        // One letter per bucket of `per_letter` rows, written at the first replayed row that
        // completes it.
        while (trajectory.len() + 1) * per_letter <= i + 1 || (i + 1 == n && trajectory.len() * per_letter < n) {
            let letter = if bucket_worst.is_terminal() { bucket_worst } else { s };
            trajectory.push(letter.letter());
            bucket_worst = State::Insufficient;
        }
        if i + 1 == n {
            live = Some(d);
        }
    }
    let changes_omitted = total_changes - head.len() - tail.len();
    let mut changes = head;
    changes.extend(tail);
    let verdict = judge_run(&RunInput {
        points,
        val: &val,
        lr: opts.lr,
        num_classes: opts.num_classes,
        unit,
        live: live.as_ref(),
    });
    let mut verdict = verdict;
    if !restarts.is_empty() && n >= MIN_POINTS && restarts.last().is_some_and(|f| n == log_len - f) {
        verdict.findings.insert(
            0,
            format!(
                "the log holds {} runs (the epoch count starts over {} time(s)): the verdict is about the last one",
                restarts.len() + 1,
                restarts.len()
            ),
        );
    }
    let read = match log.format {
        crate::log_reader::LogFormat::Numbers => "one loss per line".to_string(),
        f => format!("{} log, loss `{}`", f.name(), log.loss_name),
    };
    Ok(LogDiagnosis {
        read,
        stream: if epoch_rules { Stream::Epoch } else { Stream::Step },
        observations: n,
        trajectory,
        per_letter,
        changes,
        changes_omitted,
        live,
        verdict,
    })
}

impl LogDiagnosis {
    /// The report as JSON: the whole-run verdict's fields (`state`, `reason`, `confidence`,
    /// `points`, `suggestion`, `findings`, ...) at the top, with the stream and the replay's size.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(&self.verdict).unwrap_or_default();
        if let Some(obj) = v.as_object_mut() {
            obj.insert("stream".into(), serde_json::to_value(self.stream).unwrap_or_default());
            obj.insert("observations".into(), self.observations.into());
            obj.insert(
                "state_changes".into(),
                (self.changes.len() + self.changes_omitted).into(),
            );
            obj.insert("trajectory".into(), self.trajectory.clone().into());
            obj.insert("read".into(), self.read.clone().into());
        }
        v
    }

    /// The report: the trajectory, the shown changes, the verdict, its confidence and findings.
    pub fn render(&self) -> String {
        let per = if self.per_letter > 1 {
            format!(", one letter per {}", self.per_letter)
        } else {
            String::new()
        };
        let mut out = format!(
            "trajectory ({} observations{per}): {}\n",
            self.observations, self.trajectory
        );
        for (i, c) in self.changes.iter().enumerate() {
            if i == MAX_CHANGES / 2 && self.changes_omitted > 0 {
                out += &format!("  ... {} more changes of state ...\n", self.changes_omitted);
            }
            out += &format!(
                "  at {:>6}: {:<16} {:<22} {}\n",
                crate::numfmt::short(c.at),
                c.state.to_string(),
                c.reason.code(),
                c.text
            );
        }
        let v = &self.verdict;
        out += &format!("verdict: {} ({}): {}\n", v.state, v.reason.code(), v.suggestion.text);
        out += &format!("confidence: {} (from {} finite losses)\n", v.confidence, v.points);
        for f in &v.findings {
            out += &format!("finding: {f}\n");
        }
        out
    }
}
