//! The EPOCH stream (its rules: the epoch rows of docs/monitor.md#reason-codes): per-epoch mean training losses, O(1) state plus a
//! window of the last 6 epochs.

use crate::config::MonitorConfig;
use crate::diagnosis::Diagnosis;
use crate::event::Event;
use crate::evidence::Evidence;
use crate::record::{is_finite_loss, positive_loss, EpochRecord};
use crate::state::{Reason, State, Stream};
use crate::stats::{mann_kendall_z, median};
use crate::suggestion_rules::{suggest, Context};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Incremental state of the EPOCH stream for one segment.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct EpochStream {
    n: u64,
    /// Last `epoch_window` finite (epoch, loss) pairs.
    #[serde(with = "crate::exact")]
    recent: VecDeque<(u64, f64)>,
    #[serde(with = "crate::exact")]
    x1: f64,
    #[serde(with = "crate::exact")]
    min: f64,
    min_epoch: u64,
    min_n: u64,
    #[serde(with = "crate::exact")]
    max_after_first: f64,
    #[serde(with = "crate::exact")]
    best: f64,
    bad: u32,
    #[serde(with = "crate::exact")]
    r_peak: f64,
    #[serde(with = "crate::exact")]
    last_lr: Option<f64>,
    #[serde(with = "crate::exact")]
    lr0: Option<f64>,
    since_change: Option<u64>,
    latched: Option<Diagnosis>,
    /// Consecutive epochs at the same rate.
    steady: u64,
}

/// The verdict of rules 2-9 and the numbers behind it.
struct Verdict {
    state: State,
    reason: Reason,
    ev: Evidence,
}

impl EpochStream {
    /// Starts a new segment keeping the LR bookkeeping.
    pub fn new_segment(&mut self) {
        let keep = (self.last_lr, self.lr0, self.latched.take());
        *self = EpochStream::default();
        (self.last_lr, self.lr0, self.latched) = keep;
        self.since_change = Some(0);
    }

    /// Trims a restored window to `cfg.epoch_window` (it is kept at that length by one pop
    /// per push, so a longer one would never shrink).
    pub fn fit_to(&mut self, cfg: &MonitorConfig) {
        crate::step_stream::trim_front(&mut self.recent, cfg.epoch_window);
    }

    /// Records the rate the next observation is compared with (after `notify_lr_change`).
    pub fn set_lr(&mut self, lr: f64) {
        self.last_lr = Some(lr);
    }

    /// The last two finite losses, oldest first (for the overfit rule).
    pub fn last_change_is_decrease(&self) -> bool {
        let k = self.recent.len();
        k >= 2 && self.recent[k - 1].1 < self.recent[k - 2].1
    }

    pub fn observe(&mut self, rec: &EpochRecord, cfg: &MonitorConfig) -> Diagnosis {
        if let Some(l) = &self.latched {
            let mut d = l.clone();
            d.at = rec.epoch;
            d.events.clear();
            return d;
        }
        let mut events = Vec::new();
        let lr = rec.lr;
        self.lr0.get_or_insert(lr);
        if let Some(prev) = self.last_lr {
            // As in the STEP stream: a per-epoch schedule is evidence; a jump out of a steady
            // rate starts a new segment.
            let steady = self.steady >= 2;
            self.steady = if (lr / prev - 1.0).abs() < 1e-9 {
                self.steady + 1
            } else {
                0
            };
            if prev > 0.0 && lr.is_finite() && !(0.9..=1.1).contains(&(lr / prev)) && steady {
                events.push(Event::LrChange {
                    at: rec.epoch,
                    old_lr: prev,
                    new_lr: lr,
                });
                self.new_segment();
            }
        }
        self.last_lr = Some(lr);
        if !is_finite_loss(rec.train_loss) {
            let d = self.nonfinite(rec, cfg, events);
            self.latched = Some(d.clone());
            return d;
        }
        let x = positive_loss(rec.train_loss, cfg.loss_floor);
        self.n += 1;
        self.since_change = self.since_change.map(|c| c + 1);
        if self.n == 1 {
            self.x1 = x;
            self.min = x;
            self.min_epoch = rec.epoch;
            self.min_n = 1;
            self.best = x;
            self.r_peak = f64::NEG_INFINITY;
            self.max_after_first = f64::NEG_INFINITY;
        } else {
            if let Some(&(_, prev)) = self.recent.back() {
                self.r_peak = self.r_peak.max((prev - x) / prev);
            }
            self.max_after_first = self.max_after_first.max(x);
            if x < self.best * (1.0 - cfg.plateau_threshold) {
                self.best = x;
                self.bad = 0;
            } else {
                self.bad += 1;
            }
            if x < self.min {
                self.min = x;
                self.min_epoch = rec.epoch;
                self.min_n = self.n;
            }
        }
        if self.recent.len() == cfg.epoch_window {
            self.recent.pop_front();
        }
        self.recent.push_back((rec.epoch, x));
        let v = self.classify(cfg);
        let rises = v.ev.rises.unwrap_or(0);
        let trail = self.trail();
        let ctx = Context {
            cfg,
            stream: Stream::Epoch,
            state: v.state,
            reason: v.reason,
            lr,
            lr0: self.lr0.unwrap_or(lr),
            ev: &v.ev,
            best_at: Some(self.min_epoch),
            last_good: Some(rec.epoch),
            first_obs: false,
            early: self.min_n == 1,
            trail,
            cooldown: self.since_change.is_some_and(|c| c <= cfg.cooldown_epochs),
            no_raise: false,
            sharpness: None,
            theta: cfg.stability_threshold,
            rises,
            effective_lr: None,
        };
        let suggestion = suggest(&ctx);
        Diagnosis {
            stream: Stream::Epoch,
            at: rec.epoch,
            state: v.state,
            reason: v.reason,
            evidence: v.ev,
            events,
            suggestion,
        }
    }

    /// Losses from the best one (or the window start) to the last, for sentences.
    fn trail(&self) -> Vec<f64> {
        let from = self.recent.iter().position(|(e, _)| *e == self.min_epoch).unwrap_or(0);
        self.recent.iter().skip(from).map(|(_, x)| *x).collect()
    }

    fn values(&self) -> Vec<f64> {
        self.recent.iter().map(|(_, x)| *x).collect()
    }

    /// Whether the finite prefix is divergent (rule 1).
    fn divergent(&self, cfg: &MonitorConfig) -> bool {
        let w = self.values();
        let k = w.len();
        if self.n < 2 || k < 2 {
            return false;
        }
        let xn = w[k - 1];
        let rise = |i: usize| w[i] > (1.0 + cfg.epoch_rise) * w[i - 1];
        let high = xn >= cfg.epoch_div_ratio * self.min;
        xn >= cfg.hard_ratio * self.min || (k >= 3 && rise(k - 1) && rise(k - 2) && high) || (rise(k - 1) && high)
    }

    fn nonfinite(&self, rec: &EpochRecord, cfg: &MonitorConfig, events: Vec<Event>) -> Diagnosis {
        let (state, reason) = if self.divergent(cfg) {
            (State::Diverging, Reason::NonfiniteAfterDivergence)
        } else {
            (State::Exploded, Reason::NonfiniteSudden)
        };
        let last = self.recent.back().map(|(_, x)| *x);
        let ev = Evidence {
            n: self.n,
            last,
            best: last.map(|_| self.min),
            ratio_to_best: last.map(|x| x / self.min),
            nonfinite_reached: true,
            bad_count: Some(self.bad),
            lr: Some(rec.lr),
            ..Default::default()
        };
        let mut trail = if state == State::Diverging {
            self.trail()
        } else {
            self.values()
        };
        trail.push(rec.train_loss);
        let ctx = Context {
            cfg,
            stream: Stream::Epoch,
            state,
            reason,
            lr: rec.lr,
            lr0: self.lr0.unwrap_or(rec.lr),
            ev: &ev,
            best_at: last.map(|_| self.min_epoch),
            last_good: self.recent.back().map(|(e, _)| *e),
            first_obs: self.n == 0,
            early: self.min_n <= 1,
            trail,
            cooldown: false,
            no_raise: false,
            sharpness: None,
            theta: cfg.stability_threshold,
            rises: 0,
            effective_lr: None,
        };
        let suggestion = suggest(&ctx);
        Diagnosis {
            stream: Stream::Epoch,
            at: rec.epoch,
            state,
            reason,
            evidence: ev,
            events,
            suggestion,
        }
    }

    /// Rules 2-9 on the finite prefix.
    fn classify(&self, cfg: &MonitorConfig) -> Verdict {
        let w = self.values();
        let k = w.len();
        let xn = w[k - 1];
        let m = self.min;
        let rel: Vec<f64> = w.windows(2).map(|p| (p[0] - p[1]) / p[0]).collect();
        let rise = |i: usize| w[i] > (1.0 + cfg.epoch_rise) * w[i - 1];
        let rises = (1..k).filter(|i| rise(*i)).count() as u32;
        let mk = mann_kendall_z(&w);
        let d = (self.x1 - m) / self.x1;
        let mut ev = Evidence {
            n: self.n,
            last: Some(xn),
            best: Some(m),
            ratio_to_best: Some(xn / m),
            bad_count: Some(self.bad),
            rel_improvements: rel.clone(),
            rises: Some(rises),
            mk_z: Some(mk),
            d: Some(d),
            progressed: Some(d >= cfg.progress_min),
            level: Some(xn),
            level_init: Some(self.x1),
            window: Some(k as u64),
            ..Default::default()
        };
        let out = |state, reason, ev| Verdict { state, reason, ev };
        if self.n < 2 {
            return out(State::Insufficient, Reason::InsufficientData, ev);
        }
        if xn >= cfg.hard_ratio * m {
            return out(State::Diverging, Reason::Hard4x, ev);
        }
        if k >= 3 && rise(k - 1) && rise(k - 2) && xn >= cfg.epoch_div_ratio * m {
            return out(State::Diverging, Reason::TwoRises, ev);
        }
        let jump = xn > (1.0 + cfg.epoch_jump) * w[k - 2];
        if self.n == 2 {
            if jump {
                return out(State::Oscillating, Reason::Jump, ev);
            }
            return out(State::Insufficient, Reason::InsufficientData, ev);
        }
        if k >= 5 && mk >= cfg.mk_up_z && xn >= cfg.epoch_div_ratio * m {
            return out(State::Diverging, Reason::MkUp, ev);
        }
        if rises >= 2 && mk > cfg.mk_not_decreasing_z {
            return out(State::Oscillating, Reason::Bounce, ev);
        }
        if jump {
            return out(State::Oscillating, Reason::Jump, ev);
        }
        // A blow-up, then no net progress below the first epoch.
        if self.max_after_first >= cfg.blowup_ratio * self.x1 && xn >= 0.97 * self.x1 {
            return out(State::Diverging, Reason::DeadNetwork, ev);
        }
        // 9. trend states (`rel` and the k's are restricted to the window; the last 3 suffice).
        let ks: Vec<f64> = w.windows(2).map(|p| (p[0] / p[1]).ln()).collect();
        let r_recent = median(&rel[rel.len().saturating_sub(3)..]);
        let k_recent = median(&ks[ks.len().saturating_sub(3)..]);
        let rho = if self.r_peak <= 0.0 {
            1.0
        } else {
            r_recent / self.r_peak
        };
        let t_half = if k_recent > 0.0 {
            std::f64::consts::LN_2 / k_recent
        } else {
            f64::INFINITY
        };
        ev.r_recent = Some(r_recent);
        ev.k = Some(k_recent);
        ev.k_peak = Some(self.r_peak);
        ev.rho = Some(rho);
        ev.t_half = Some(t_half);
        let n = self.n as f64;
        if rho >= cfg.rho_min && t_half >= cfg.halving_factor * n {
            return out(State::Slow, Reason::SlowRate, ev);
        }
        if self.bad >= cfg.plateau_patience && d >= cfg.progress_min {
            if cfg.chance_level().is_some_and(|c| (xn - c).abs() <= 0.03 * c) {
                // "progress" that ends at chance level is a recovery from a blow-up.
                return out(State::Diverging, Reason::DeadNetwork, ev);
            }
            return out(State::Plateau, Reason::NoImprovement, ev);
        }
        if self.bad >= cfg.plateau_patience {
            return out(State::Slow, Reason::Stalled, ev);
        }
        out(State::Healthy, Reason::Improving, ev)
    }
}
