//! Progress bars for the training loop, and their log-line fallback.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use stride_monitor::State;

use crate::callback::{format_lr, Action, Callback, EpochEnd, StepEnd, TrainBegin};
use crate::error::Result;
use crate::History;

/// The process-wide bar container.
///
/// Binaries route their log output through [`MultiProgress::suspend`] on it
/// so log lines never tear a bar.
pub fn multi_progress() -> &'static MultiProgress {
    static MULTI: OnceLock<MultiProgress> = OnceLock::new();
    MULTI.get_or_init(|| {
        let target = if std::io::stdout().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        MultiProgress::with_draw_target(target)
    })
}

/// An epoch bar and a step bar (loss, lr, steps/s) while training, and one
/// `tracing` line per epoch. When stdout is not a terminal the bars are
/// hidden and only the log lines remain.
#[derive(Default)]
pub struct ProgressBars {
    epoch_bar: Option<ProgressBar>,
    step_bar: Option<ProgressBar>,
    started: Option<Instant>,
    state: Option<Arc<Mutex<State>>>,
}

impl ProgressBars {
    /// Bars attached to [`multi_progress`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Also shows the run-health state of a [`crate::RunMonitor`] on the step bar, coloured.
    pub fn with_state(mut self, state: Arc<Mutex<State>>) -> Self {
        self.state = Some(state);
        self
    }

    fn state_label(&self) -> String {
        let Some(state) = self.state.as_ref().and_then(|s| s.lock().ok().map(|s| *s)) else {
            return String::new();
        };
        // ANSI colours: green is fine, yellow needs a look, red needs action.
        let colour = match state {
            State::Insufficient => return String::new(),
            State::Healthy => "32",
            State::Slow | State::Plateau => "33",
            State::Oscillating | State::Diverging | State::Exploded => "31",
        };
        format!("  \x1b[{colour}m{state}\x1b[0m")
    }
}

impl Callback for ProgressBars {
    fn on_train_begin(&mut self, info: &TrainBegin) -> Result<Action> {
        let multi = multi_progress();
        let epoch_bar = multi.add(ProgressBar::new(info.epochs as u64));
        epoch_bar.set_style(
            ProgressStyle::with_template("epoch {pos}/{len} [{bar:30.cyan/blue}] {elapsed_precise} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let step_bar = multi.add(ProgressBar::new(info.steps_per_epoch as u64));
        step_bar.set_style(
            ProgressStyle::with_template("step  {pos}/{len} [{bar:30.green/white}] {rate} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .with_key("rate", |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:>6.0} steps/s", state.per_sec());
                }),
        );
        self.epoch_bar = Some(epoch_bar);
        self.step_bar = Some(step_bar);
        self.started = Some(Instant::now());
        Ok(Action::Continue)
    }

    fn on_step_end(&mut self, s: &StepEnd) -> Result<Action> {
        if let Some(bar) = &self.step_bar {
            if s.batch == 0 {
                bar.reset();
                bar.set_length(s.batches as u64);
            }
            bar.set_position(s.batch as u64 + 1);
            if !bar.is_hidden() {
                bar.set_message(format!(
                    "loss {:.4}  lr {}{}",
                    s.loss,
                    format_lr(s.lr),
                    self.state_label()
                ));
            }
        }
        Ok(Action::Continue)
    }

    fn on_epoch_end(&mut self, e: &EpochEnd) -> Result<Action> {
        if let Some(bar) = &self.epoch_bar {
            bar.set_position(e.epoch as u64 + 1);
        }
        let secs = e.train_time.as_secs_f64();
        match e.eval {
            Some(eval) => {
                if let Some(bar) = &self.epoch_bar {
                    bar.set_message(format!("test acc {:.4}", eval.accuracy));
                }
                tracing::info!(
                    "epoch {}/{}: train loss {:.4}, test loss {:.4}, test accuracy {:.4}, lr {}, {:.2}s",
                    e.epoch + 1,
                    e.epochs,
                    e.train_loss,
                    eval.loss,
                    eval.accuracy,
                    format_lr(e.lr),
                    secs
                )
            }
            None => tracing::info!(
                "epoch {}/{}: train loss {:.4}, lr {}, {:.2}s",
                e.epoch + 1,
                e.epochs,
                e.train_loss,
                format_lr(e.lr),
                secs
            ),
        }
        Ok(Action::Continue)
    }

    fn on_train_end(&mut self, _history: &History) -> Result<()> {
        for bar in [self.step_bar.take(), self.epoch_bar.take()].into_iter().flatten() {
            bar.finish_and_clear();
            multi_progress().remove(&bar);
        }
        Ok(())
    }
}
