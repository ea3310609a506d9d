//! Progress bars for the training loop, and their log-line fallback.

use std::ffi::OsStr;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use stride_monitor::State;

use crate::callback::{format_lr, Action, Callback, EpochEnd, StepEnd, TrainBegin};
use crate::error::Result;
use crate::History;

/// Whether Stride may colour what it writes to stderr: stderr is a terminal, `NO_COLOR` is
/// unset or empty (<https://no-color.org>) and `TERM` is not `dumb`. Decided once per process;
/// the log subscriber and the bars both ask here, so they never disagree.
pub fn use_colour() -> bool {
    static COLOUR: OnceLock<bool> = OnceLock::new();
    *COLOUR.get_or_init(|| {
        colour_allowed(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
            std::env::var_os("TERM").as_deref(),
        )
    })
}

/// The rule behind [`use_colour`], apart from the process's environment.
pub fn colour_allowed(stderr_is_terminal: bool, no_color: Option<&OsStr>, term: Option<&OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(OsStr::is_empty) && term.is_none_or(|t| t != "dumb")
}

/// The process-wide bar container.
///
/// Bars are drawn on stderr when stderr is a terminal (as tqdm and Lightning do: redirecting
/// stdout keeps them), nowhere otherwise or after [`hide_bars`].
/// Binaries route their log output through [`MultiProgress::suspend`] on it
/// so log lines never tear a bar.
pub fn multi_progress() -> &'static MultiProgress {
    static MULTI: OnceLock<MultiProgress> = OnceLock::new();
    MULTI.get_or_init(|| {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        MultiProgress::with_draw_target(target)
    })
}

/// Hides every bar of [`multi_progress`] for the rest of the process (`--quiet`); the
/// per-epoch log lines are the log filter's business.
pub fn hide_bars() {
    multi_progress().set_draw_target(ProgressDrawTarget::hidden());
}

/// An epoch bar and a step bar (loss, lr, steps/s) while training, and one
/// `tracing` line per epoch. When stderr is not a terminal the bars are
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

    /// Also shows the run-health state of a [`crate::RunMonitor`] on the step bar (coloured when
    /// [`use_colour`] allows).
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
        if use_colour() {
            format!("  \x1b[{colour}m{state}\x1b[0m")
        } else {
            format!("  {state}")
        }
    }
}

impl Callback for ProgressBars {
    fn on_train_begin(&mut self, info: &TrainBegin) -> Result<Action> {
        let multi = multi_progress();
        // indicatif colours a `{bar:30.cyan/blue}` by itself: without colour, no style spec.
        let (epoch_colours, step_colours) = if use_colour() {
            (".cyan/blue", ".green/white")
        } else {
            ("", "")
        };
        let epoch_bar = multi.add(ProgressBar::new(info.epochs as u64));
        epoch_bar.set_style(
            ProgressStyle::with_template(&format!(
                "epoch {{pos}}/{{len}} [{{bar:30{epoch_colours}}}] {{elapsed_precise}} {{msg}}"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let step_bar = multi.add(ProgressBar::new(info.steps_per_epoch as u64));
        step_bar.set_style(
            ProgressStyle::with_template(&format!(
                "step  {{pos}}/{{len}} [{{bar:30{step_colours}}}] {{rate}} {{msg}}"
            ))
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
        if let (Some(bar), 0) = (&self.epoch_bar, s.batch) {
            // The epoch being trained, counted from 1: "epoch 2/3" during the second.
            bar.set_position(s.epoch as u64 + 1);
        }
        if let Some(bar) = &self.step_bar {
            if s.batch == 0 {
                bar.reset();
                bar.set_length(s.batches as u64);
            }
            bar.set_position(s.batch as u64 + 1);
            if !bar.is_hidden() {
                // Tuning-free optimizers move at their own rate: show it beside the nominal one.
                let effective = if (s.effective_lr - s.lr).abs() > 1e-12 * s.lr.abs() {
                    format!(" (effective {})", format_lr(s.effective_lr))
                } else {
                    String::new()
                };
                bar.set_message(format!(
                    "loss {}  lr {}{effective}{}",
                    format_loss(s.loss),
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
                    bar.set_message(format!("val acc {:.4}", eval.accuracy));
                }
                tracing::info!(
                    "epoch {}/{}: train loss {}{}, val loss {}, val accuracy {:.4}, lr {}, {:.2}s",
                    e.epoch + 1,
                    e.epochs,
                    format_loss(e.train_loss),
                    train_accuracy(e.train_accuracy),
                    format_loss(eval.loss),
                    eval.accuracy,
                    format_lr(e.lr),
                    secs
                )
            }
            None => tracing::info!(
                "epoch {}/{}: train loss {}{}, lr {}, {:.2}s",
                e.epoch + 1,
                e.epochs,
                format_loss(e.train_loss),
                train_accuracy(e.train_accuracy),
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

/// ` (accuracy 0.8123)` after the training loss, when there is one.
fn train_accuracy(a: Option<f64>) -> String {
    a.map(|a| format!(" (accuracy {a:.4})")).unwrap_or_default()
}

/// A loss for people: four decimals, or three significant digits in exponent form when it
/// has blown up (`3.21e36`, not 37 digits) or is tiny.
pub fn format_loss(loss: f64) -> String {
    if loss.is_finite() && loss != 0.0 && !(1e-3..1e5).contains(&loss.abs()) {
        format!("{loss:.2e}")
    } else {
        format!("{loss:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::colour_allowed;

    #[test]
    fn losses_print_at_a_readable_precision() {
        assert_eq!(super::format_loss(0.48761), "0.4876");
        assert_eq!(super::format_loss(3.2123e36), "3.21e36");
        assert_eq!(super::format_loss(f64::NAN), "NaN");
    }
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color_or_a_dumb_term() {
        let os = |s: &'static str| Some(OsStr::new(s));
        assert!(colour_allowed(true, None, os("xterm-256color")));
        assert!(colour_allowed(true, None, None));
        // no-color.org: set and non-empty disables, whatever the value; empty is unset.
        assert!(colour_allowed(true, os(""), os("xterm")));
        assert!(!colour_allowed(true, os("1"), os("xterm")));
        assert!(!colour_allowed(true, os("0"), os("xterm")));
        assert!(!colour_allowed(true, None, os("dumb")));
        assert!(!colour_allowed(false, None, os("xterm")));
    }
}
