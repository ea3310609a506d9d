//! What a trainer holds: a pure schedule, maybe a plateau rule, and a unit.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::plateau::ReduceLrOnPlateau;
use super::Schedule;

/// What the counter `t` of a [`Scheduler`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleUnit {
    /// Optimizer steps: the trainer asks for `lr(t)` before every update.
    /// Usual for closed forms (warm-up, cosine, one-cycle, cyclic).
    #[default]
    Step,
    /// Epochs: the trainer asks for `lr(epoch)` at the start of each epoch
    /// and observes the validation metric at its end. Usual for plateau
    /// rules and PyTorch's epoch-based `StepLR` recipes.
    Epoch,
}

/// A schedule as a trainer runs it: `lr(t) = schedule.lr(t) * plateau factor`.
///
/// The plateau factor is 1 until the plateau rule reduces it, and the rule
/// only counts metrics observed at `t >= plateau_after`, so a warm-up of
/// `plateau_after` steps/epochs can precede it (PyTorch cannot chain
/// `ReduceLROnPlateau` after a warm-up, pytorch#68978).
///
/// Call order per unit `t` (steps or epochs, see [`ScheduleUnit`]): set the
/// optimizer's rate to [`Scheduler::lr`]`(t)` (and its momentum/beta1 to
/// [`Scheduler::momentum`]`(t)` when `Some`), train, then, if a metric was
/// measured for `t`, call [`Scheduler::observe_metric`]`(t, metric)`. To
/// resume, save `t` and the plateau (it is `Serialize`).
pub struct Scheduler {
    /// The pure part.
    pub schedule: Box<dyn Schedule>,
    /// The metric-driven part, if any.
    pub plateau: Option<ReduceLrOnPlateau>,
    /// First `t` whose metric the plateau counts; its factor applies from here on.
    pub plateau_after: u64,
    /// What `t` counts.
    pub unit: ScheduleUnit,
}

impl Scheduler {
    /// A pure schedule stepped per optimizer step, without plateau.
    pub fn new(schedule: impl Schedule + 'static) -> Self {
        Self {
            schedule: Box::new(schedule),
            plateau: None,
            plateau_after: 0,
            unit: ScheduleUnit::Step,
        }
    }

    /// Adds a plateau rule that counts metrics from `t = after` on.
    pub fn with_plateau(mut self, plateau: ReduceLrOnPlateau, after: u64) -> Self {
        self.plateau = Some(plateau);
        self.plateau_after = after;
        self
    }

    /// Sets what `t` counts.
    pub fn with_unit(mut self, unit: ScheduleUnit) -> Self {
        self.unit = unit;
        self
    }

    /// The learning rate for `t`.
    pub fn lr(&self, t: u64) -> f64 {
        let lr = self.schedule.lr(t);
        match &self.plateau {
            Some(p) if t >= self.plateau_after => lr * p.factor(),
            _ => lr,
        }
    }

    /// The momentum (SGD) or beta1 (Adam) for `t`, `None` to leave it alone.
    pub fn momentum(&self, t: u64) -> Option<f64> {
        self.schedule.momentum(t)
    }

    /// Feeds the metric measured for `t` to the plateau rule; metrics before
    /// `plateau_after`, or without a plateau rule, are ignored.
    pub fn observe_metric(&mut self, t: u64, metric: f64) {
        if let Some(p) = &mut self.plateau {
            if t >= self.plateau_after {
                p.step(metric);
            }
        }
    }
}

impl fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduler")
            .field("plateau", &self.plateau)
            .field("plateau_after", &self.plateau_after)
            .field("unit", &self.unit)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::test_util::{assert_close, u1_config, U1_LRS, U1_METRICS};
    use crate::schedule::{LinearWarmup, OneCycle, Sequential};

    #[test]
    fn plateau_alone_matches_u1() {
        let p = ReduceLrOnPlateau::new(0.1, u1_config()).unwrap();
        let mut s = Scheduler::new(0.1).with_plateau(p, 0).with_unit(ScheduleUnit::Epoch);
        for (epoch, (&m, &want)) in U1_METRICS.iter().zip(&U1_LRS).enumerate() {
            let epoch = epoch as u64;
            s.observe_metric(epoch, m);
            assert_close(s.lr(epoch + 1), want, 1e-12, 0.0, &format!("lr after epoch {epoch}"));
        }
    }

    #[test]
    fn warmup_then_plateau_ignores_warmup_metrics() {
        // 3 epochs of warm-up 0.05 -> 0.1, then plateau(patience 0, factor 0.5)
        let warm = LinearWarmup::new(0.1, 0.5, 1.0, 3).unwrap();
        let seq = Sequential::new(vec![Box::new(warm), Box::new(0.1)], vec![3]).unwrap();
        let plateau = crate::schedule::PlateauConfig {
            patience: 0,
            factor: 0.5,
            ..Default::default()
        };
        let p = ReduceLrOnPlateau::new(0.1, plateau).unwrap();
        let mut s = Scheduler::new(seq).with_plateau(p, 3);
        // Rising losses during warm-up would trigger patience 0; they must not count.
        for (t, m) in [(0, 1.0), (1, 2.0), (2, 3.0)] {
            s.observe_metric(t, m);
        }
        assert_close(s.lr(2), 0.1 * (0.5 + 0.5 * 2.0 / 3.0), 1e-12, 0.0, "lr(2)");
        assert_close(s.lr(3), 0.1, 1e-12, 0.0, "lr(3)");
        s.observe_metric(3, 5.0); // first counted: better than +inf
        s.observe_metric(4, 5.0); // bad, patience 0 -> 0.05
        assert_close(s.lr(5), 0.05, 1e-12, 0.0, "lr(5)");
        // The warm-up part is not scaled by the plateau factor.
        assert_close(s.lr(0), 0.05, 1e-12, 0.0, "lr(0)");
    }

    #[test]
    fn momentum_passes_through_and_metrics_without_plateau_are_ignored() {
        let mut s = Scheduler::new(OneCycle::new(0.1, 100).unwrap());
        assert_eq!(s.momentum(0), Some(0.95));
        s.observe_metric(0, 1.0);
        assert!(s.plateau.is_none());
        assert!(format!("{s:?}").contains("unit: Step"));
    }
}
