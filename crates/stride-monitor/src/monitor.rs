//! [`Monitor`]: feeds the STEP, EPOCH and validation streams and combines their verdicts.

use crate::config::MonitorConfig;
use crate::diagnosis::Diagnosis;
use crate::epoch_rules::EpochStream;
use crate::error::MonitorError;
use crate::evidence::Evidence;
use crate::record::{EpochRecord, StepRecord};
use crate::state::{Reason, State, Stream};
use crate::step_stream::StepStream;
use crate::validation::ValStream;
use serde::{Deserialize, Serialize};

/// The run-health monitor. Feed it [`StepRecord`]s and/or [`EpochRecord`]s; each call returns
/// the raw verdict of that stream; [`Monitor::overall`] gives the most severe of all streams.
///
/// Call order: `observe_step` after every optimizer step, `observe_epoch` after every epoch
/// (both optional), `notify_lr_change` when the rate is changed outside the records (records
/// whose rate differs by more than 10 % from the previous one do the same automatically),
/// `reset` after a rollback. Each observation costs O(200) at most; memory is bounded.
#[derive(Debug, Clone)]
pub struct Monitor {
    cfg: MonitorConfig,
    step: StepStream,
    epoch: EpochStream,
    val: ValStream,
    last_step: Option<Diagnosis>,
    last_epoch: Option<Diagnosis>,
    last_val: Option<Diagnosis>,
}

impl Default for Monitor {
    fn default() -> Self {
        let cfg = MonitorConfig::default();
        Monitor {
            step: StepStream::new(&cfg),
            cfg,
            epoch: EpochStream::default(),
            val: ValStream::default(),
            last_step: None,
            last_epoch: None,
            last_val: None,
        }
    }
}

impl Monitor {
    /// A monitor with a validated configuration.
    pub fn new(cfg: MonitorConfig) -> Result<Self, MonitorError> {
        cfg.validate()?;
        Ok(Monitor {
            step: StepStream::new(&cfg),
            cfg,
            ..Monitor::default()
        })
    }

    /// The configuration.
    pub fn config(&self) -> &MonitorConfig {
        &self.cfg
    }

    /// Observes one optimizer step and returns the STEP verdict.
    pub fn observe_step(&mut self, rec: &StepRecord) -> Diagnosis {
        let d = self.step.observe(rec, &self.cfg);
        if d.state >= State::Diverging {
            // Debug only: warning once per change of state is the display layer's job.
            tracing::debug!(step = rec.step, state = %d.state, reason = %d.reason, "{}", d.suggestion.text);
        }
        self.last_step = Some(d.clone());
        d
    }

    /// Observes one epoch and returns the epoch verdict: the more severe of the training-loss
    /// verdict and the validation verdict (validation preferred for PLATEAU and overfitting).
    pub fn observe_epoch(&mut self, rec: &EpochRecord) -> Diagnosis {
        let train = self.epoch.observe(rec, &self.cfg);
        let decreased = self.epoch.last_change_is_decrease();
        let val = rec
            .val_loss
            .and_then(|v| self.val.observe(rec.epoch, v, rec.lr, decreased, &self.cfg));
        if train.state >= State::Diverging {
            tracing::debug!(epoch = rec.epoch, state = %train.state, reason = %train.reason, "{}", train.suggestion.text);
        }
        self.last_epoch = Some(train.clone());
        if val.is_some() {
            self.last_val = val.clone();
        }
        match val {
            Some(v) => combine(train, v),
            None => train,
        }
    }

    /// The most severe verdict over the STEP, EPOCH and validation streams, with the
    /// events of all three.
    pub fn overall(&self) -> Diagnosis {
        let mut best: Option<Diagnosis> = None;
        for d in [&self.last_val, &self.last_epoch, &self.last_step]
            .into_iter()
            .flatten()
        {
            best = Some(match best {
                None => d.clone(),
                Some(b) => combine(b, d.clone()),
            });
        }
        best.unwrap_or_else(|| Diagnosis::insufficient(Stream::Step, 0, Evidence::default()))
    }

    /// The combined verdict of the epoch means and validation losses alone, without the
    /// minibatch losses (`None` before the first epoch).
    pub fn epoch_overall(&self) -> Option<Diagnosis> {
        [&self.last_val, &self.last_epoch]
            .into_iter()
            .flatten()
            .cloned()
            .reduce(combine)
    }

    /// The last verdict of one stream.
    pub fn last(&self, stream: Stream) -> Option<&Diagnosis> {
        match stream {
            Stream::Step => self.last_step.as_ref(),
            Stream::Epoch => self.last_epoch.as_ref(),
            Stream::Validation => self.last_val.as_ref(),
        }
    }

    /// Starts a new segment after an LR change: windows, spike buffers, `k_peak`,
    /// `cv_base`, the progress reference and the EMA restart; PLATEAU/SLOW suggestions are
    /// withheld for 40 steps / 2 epochs.
    pub fn notify_lr_change(&mut self, new_lr: f64) {
        tracing::debug!(new_lr, "lr change: new monitor segment");
        self.step.new_segment(&self.cfg);
        self.epoch.new_segment();
        self.step.set_lr(new_lr);
        self.epoch.set_lr(new_lr);
    }

    /// Starts a new segment after a data-mixture, sequence-length or batch-size change.
    pub fn notify_phase_change(&mut self) {
        self.step.new_segment(&self.cfg);
        self.epoch.new_segment();
    }

    /// Everything the monitor has learnt from its observations, for a checkpoint: bounded (its
    /// windows, not the run), and serialised exactly, so [`Monitor::from_state`] continues bit
    /// for bit.
    pub fn state(&self) -> MonitorState {
        MonitorState {
            step: self.step.clone(),
            epoch: self.epoch.clone(),
            val: self.val.clone(),
            last_step: self.last_step.clone(),
            last_epoch: self.last_epoch.clone(),
            last_val: self.last_val.clone(),
        }
    }

    /// A monitor that continues from a saved [`MonitorState`]. The configuration is not part of
    /// the state: a resumed run may pass a changed one (a new schedule), which applies from here.
    pub fn from_state(cfg: MonitorConfig, state: MonitorState) -> Result<Self, MonitorError> {
        cfg.validate()?;
        let mut m = Monitor {
            cfg,
            step: state.step,
            epoch: state.epoch,
            val: state.val,
            last_step: state.last_step,
            last_epoch: state.last_epoch,
            last_val: state.last_val,
        };
        // What keeps the memory bounded is one pop per push: a state saved under another
        // configuration (or edited) is trimmed to this one's sizes first.
        m.step.fit_to(&m.cfg);
        m.epoch.fit_to(&m.cfg);
        m.val.fit();
        Ok(m)
    }

    /// Forgets everything (after a rollback): the non-finite latch included.
    pub fn reset(&mut self) {
        *self = Monitor {
            step: StepStream::new(&self.cfg),
            cfg: self.cfg.clone(),
            ..Monitor::default()
        };
    }
}

/// A [`Monitor`]'s observations, without its configuration: what a checkpoint keeps
/// ([`Monitor::state`], [`Monitor::from_state`]). Its size does not grow with the run: windows of
/// at most 200 steps and 6 epochs, and the run's history in at most 64 block medians.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MonitorState {
    step: StepStream,
    epoch: EpochStream,
    val: ValStream,
    last_step: Option<Diagnosis>,
    last_epoch: Option<Diagnosis>,
    last_val: Option<Diagnosis>,
}

/// The more severe of two verdicts; on a tie a validation PLATEAU or an overfit verdict wins,
/// otherwise the first. Events of both are kept.
fn combine(a: Diagnosis, b: Diagnosis) -> Diagnosis {
    let b_wins = b.state > a.state
        || (b.state == a.state && b.stream == Stream::Validation && b.state == State::Plateau)
        || (b.reason == Reason::Overfit && a.state <= State::Healthy);
    let (mut win, lose) = if b_wins { (b, a) } else { (a, b) };
    for e in lose.events {
        if !win.events.contains(&e) {
            win.events.push(e);
        }
    }
    win
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(m: &mut Monitor, steps: std::ops::Range<u64>) -> Vec<Diagnosis> {
        let mut out = Vec::new();
        for i in steps {
            let noise = ((i * 7919) % 101) as f64 / 101.0 - 0.5;
            let loss = (2.0 * (-(i as f64) / 400.0).exp() + 0.3) * (1.0 + 0.3 * noise);
            out.push(m.observe_step(&StepRecord::new(i, loss, 0.1)));
            if i % 100 == 0 {
                let rec = EpochRecord {
                    val_loss: Some(loss * 1.1),
                    ..EpochRecord::new(i / 100, loss, 0.1)
                };
                out.push(m.observe_epoch(&rec));
            }
        }
        out
    }

    #[test]
    fn a_state_through_json_continues_exactly() {
        let cfg = MonitorConfig::default();
        let mut straight = Monitor::new(cfg.clone()).unwrap();
        feed(&mut straight, 1..1_234);
        let text = serde_json::to_string(&straight.state()).unwrap();
        let state: MonitorState = serde_json::from_str(&text).unwrap();
        let mut resumed = Monitor::from_state(cfg, state).unwrap();
        assert_eq!(feed(&mut resumed, 1_234..2_000), feed(&mut straight, 1_234..2_000));
        assert_eq!(resumed.overall(), straight.overall());
    }

    #[test]
    fn a_state_restored_under_smaller_buffers_is_trimmed_to_them() {
        let mut m = Monitor::default();
        feed(&mut m, 1..1_000);
        let small = MonitorConfig {
            epoch_window: 3,
            outlier_run: 2,
            cv_base_len: 20,
            ..MonitorConfig::default()
        };
        let mut r = Monitor::from_state(small, m.state()).unwrap();
        let window = |m: &Monitor| {
            let v = serde_json::to_value(m.state()).unwrap();
            (
                v["epoch"]["recent"].as_array().map(Vec::len),
                v["step"]["ema_hist"].as_array().map(Vec::len),
            )
        };
        assert_eq!(window(&r), (Some(3), Some(3)));
        feed(&mut r, 1_000..1_500);
        assert_eq!(window(&r), (Some(3), Some(3)));
    }
}
