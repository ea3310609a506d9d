//! Validation losses (the validation rows of docs/monitor.md#reason-codes): PLATEAU (`val_no_improvement`) and the overfit event,
//! never DIVERGING/SLOW.

use crate::config::MonitorConfig;
use crate::diagnosis::Diagnosis;
use crate::event::Event;
use crate::evidence::Evidence;
use crate::record::{is_finite_loss, positive_loss};
use crate::state::{Reason, State, Stream};
use crate::suggestion_rules::{suggest, Context};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Incremental state of the validation stream: O(1) counters and the last 4 values.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ValStream {
    n: u64,
    #[serde(with = "crate::exact")]
    first: f64,
    #[serde(with = "crate::exact")]
    best: f64,
    best_epoch: u64,
    #[serde(with = "crate::exact")]
    min: f64,
    bad: u32,
    #[serde(with = "crate::exact")]
    recent: VecDeque<f64>,
    #[serde(with = "crate::exact")]
    lr0: Option<f64>,
}

impl ValStream {
    /// Trims a restored window to its 4 values.
    pub fn fit(&mut self) {
        crate::step_stream::trim_front(&mut self.recent, 4);
    }

    /// Feeds one validation loss; `train_decreased` says whether the last training change was a
    /// decrease. Non-finite validation losses are skipped (they never drive DIVERGING).
    pub fn observe(
        &mut self,
        epoch: u64,
        val: f64,
        lr: f64,
        train_decreased: bool,
        cfg: &MonitorConfig,
    ) -> Option<Diagnosis> {
        if !is_finite_loss(val) {
            tracing::warn!(epoch, val, "non-finite validation loss ignored");
            return None;
        }
        let x = positive_loss(val, cfg.loss_floor);
        self.lr0.get_or_insert(lr);
        self.n += 1;
        if self.n == 1 {
            self.first = x;
            self.best = x;
            self.min = x;
            self.best_epoch = epoch;
        } else {
            if x < self.best * (1.0 - cfg.plateau_threshold) {
                self.best = x;
                self.bad = 0;
            } else {
                self.bad += 1;
            }
        }
        if x < self.min {
            self.min = x;
            self.best_epoch = epoch;
        }
        if self.recent.len() == 4 {
            self.recent.pop_front();
        }
        self.recent.push_back(x);
        let d = (self.first - self.min) / self.first;
        let ups = self
            .recent
            .iter()
            .zip(self.recent.iter().skip(1))
            .filter(|(a, b)| b > a)
            .count();
        let overfit = self.n >= 3 && x >= 1.05 * self.min && ups >= 2 && train_decreased;
        let mut events = Vec::new();
        if overfit {
            events.push(Event::Overfit {
                epoch,
                val_loss: x,
                best_val: self.min,
                best_epoch: self.best_epoch,
            });
        }
        let (state, reason) = if self.n < 2 {
            (State::Insufficient, Reason::InsufficientData)
        } else if self.bad >= cfg.plateau_patience && d >= cfg.progress_min {
            (State::Plateau, Reason::ValNoImprovement)
        } else if overfit {
            (State::Healthy, Reason::Overfit)
        } else {
            (State::Healthy, Reason::Improving)
        };
        let ev = Evidence {
            n: self.n,
            last: Some(x),
            best: Some(self.min),
            ratio_to_best: Some(x / self.min),
            d: Some(d),
            progressed: Some(d >= cfg.progress_min),
            bad_count: Some(self.bad),
            lr: Some(lr),
            ..Default::default()
        };
        let ctx = Context {
            cfg,
            stream: Stream::Validation,
            state,
            reason,
            lr,
            lr0: self.lr0.unwrap_or(lr),
            ev: &ev,
            best_at: Some(self.best_epoch),
            last_good: Some(epoch),
            first_obs: false,
            early: false,
            trail: Vec::new(),
            cooldown: false,
            no_raise: false,
            sharpness: None,
            theta: cfg.stability_threshold,
            rises: 0,
            effective_lr: None,
        };
        let mut suggestion = suggest(&ctx);
        if overfit && state == State::Plateau {
            suggestion.extras.push(format!(
                "validation loss is rising: consider restoring epoch {} or stopping early",
                self.best_epoch
            ));
        }
        Some(Diagnosis {
            stream: Stream::Validation,
            at: epoch,
            state,
            reason,
            evidence: ev,
            events,
            suggestion,
        })
    }
}
