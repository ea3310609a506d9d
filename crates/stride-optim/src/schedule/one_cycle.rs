//! The 1cycle policy (Smith & Topin, super-convergence).

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};

use super::decay::{check_lr, check_positive};
use super::error::{check, Result, ScheduleError};
use super::Schedule;

/// How [`OneCycle`] interpolates within a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Anneal {
    /// Half a cosine, PyTorch `anneal_strategy="cos"` (the default).
    #[default]
    Cos,
    /// A straight line, PyTorch `anneal_strategy="linear"`.
    Linear,
}

impl Anneal {
    /// Interpolates from `start` (pct 0) to `end` (pct 1), as PyTorch's
    /// `_annealing_cos` / `_annealing_linear`.
    pub fn interpolate(self, start: f64, end: f64, pct: f64) -> f64 {
        match self {
            Anneal::Cos => end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0),
            Anneal::Linear => (end - start) * pct + start,
        }
    }
}

/// PyTorch `OneCycleLR`: warm up from `max_lr / div_factor` to `max_lr`,
/// then anneal to `max_lr / div_factor / final_div_factor`; momentum moves
/// the opposite way between `max_momentum` and `base_momentum`.
///
/// Phases end at PyTorch's float steps: `pct_start * total_steps - 1`, then
/// (three-phase only) `2 * pct_start * total_steps - 2`, then
/// `total_steps - 1`; within a phase `pct = (t - start) / (end - start)`.
/// Defaults ([`OneCycle::new`]) are PyTorch's: pct_start 0.3, cos, div 25,
/// final div 1e4, two phases, momentum cycled between 0.85 and 0.95.
///
/// Differences from PyTorch: from `t = total_steps - 1` on the rate stays at
/// its final value; PyTorch extrapolates one step further at `t =
/// total_steps` (an update that a correctly sized run never takes) and
/// raises after it. Configurations where a phase would be empty, which PyTorch
/// accepts and then divides by zero on, are rejected.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OneCycle {
    /// Peak rate.
    pub max_lr: f64,
    /// Length of the cycle in steps.
    pub total_steps: u64,
    /// Fraction of the cycle spent warming up, in [0, 1] (PyTorch default 0.3).
    pub pct_start: f64,
    /// Interpolation within a phase (PyTorch default cos).
    pub anneal: Anneal,
    /// Start rate is `max_lr / div_factor` (PyTorch default 25).
    pub div_factor: f64,
    /// Final rate is the start rate `/ final_div_factor` (PyTorch default 1e4).
    pub final_div_factor: f64,
    /// Go back down to the start rate before the final decay, as in the paper
    /// (PyTorch default false, fastai's two phases).
    pub three_phase: bool,
    /// Cycle momentum / beta1 inversely to the rate (PyTorch default true).
    pub cycle_momentum: bool,
    /// Momentum at the peak rate (PyTorch default 0.85).
    pub base_momentum: f64,
    /// Momentum at the start and end (PyTorch default 0.95).
    pub max_momentum: f64,
}

impl OneCycle {
    /// PyTorch's defaults around `max_lr` and `total_steps`.
    ///
    /// Change fields with struct update syntax, then call [`OneCycle::validate`]:
    /// `OneCycle { three_phase: true, ..OneCycle::new(0.1, 1000)? }.validate()?`.
    pub fn new(max_lr: f64, total_steps: u64) -> Result<Self> {
        let s = Self {
            max_lr,
            total_steps,
            pct_start: 0.3,
            anneal: Anneal::Cos,
            div_factor: 25.0,
            final_div_factor: 1e4,
            three_phase: false,
            cycle_momentum: true,
            base_momentum: 0.85,
            max_momentum: 0.95,
        };
        s.validate()
    }

    /// Checks the parameters, including that no phase is empty, and returns
    /// the schedule.
    pub fn validate(self) -> Result<Self> {
        check_lr("max_lr", self.max_lr)?;
        check_positive("total_steps", self.total_steps)?;
        let p = self.pct_start;
        check("pct_start", p, (0.0..=1.0).contains(&p), "expected 0 <= pct_start <= 1")?;
        check("div_factor", self.div_factor, self.div_factor > 0.0, "expected > 0")?;
        let f = self.final_div_factor;
        check("final_div_factor", f, f > 0.0, "expected > 0")?;
        check("base_momentum", self.base_momentum, true, "expected a finite momentum")?;
        check("max_momentum", self.max_momentum, true, "expected a finite momentum")?;
        let mut start = 0.0;
        for (end, ..) in self.phases() {
            if end <= start {
                return Err(ScheduleError::Config {
                    name: "pct_start",
                    value: p,
                    message: "leaves a one-cycle phase empty; use more total_steps or another pct_start",
                });
            }
            start = end;
        }
        Ok(self)
    }

    /// Rate at step 0, `max_lr / div_factor`.
    pub fn initial_lr(&self) -> f64 {
        self.max_lr / self.div_factor
    }

    /// Final rate, `initial_lr / final_div_factor`.
    pub fn min_lr(&self) -> f64 {
        self.initial_lr() / self.final_div_factor
    }

    /// PyTorch's `_schedule_phases`: `(end_step, start_lr, end_lr, start_momentum, end_momentum)`.
    fn phases(&self) -> Vec<(f64, f64, f64, f64, f64)> {
        let total = self.total_steps as f64;
        let (initial, max, min) = (self.initial_lr(), self.max_lr, self.min_lr());
        let (lo, hi) = (self.base_momentum, self.max_momentum);
        let warm_end = self.pct_start * total - 1.0;
        if self.three_phase {
            vec![
                (warm_end, initial, max, hi, lo),
                (2.0 * self.pct_start * total - 2.0, max, initial, lo, hi),
                (total - 1.0, initial, min, hi, hi),
            ]
        } else {
            vec![(warm_end, initial, max, hi, lo), (total - 1.0, max, min, lo, hi)]
        }
    }

    /// `(lr, momentum)` at step `t`, PyTorch's `get_lr` loop.
    fn at(&self, t: u64) -> (f64, f64) {
        let step = t.min(self.total_steps.saturating_sub(1)) as f64;
        let phases = self.phases();
        let last = phases.len() - 1;
        let mut start = 0.0;
        for (i, &(end, lr0, lr1, m0, m1)) in phases.iter().enumerate() {
            if step <= end || i == last {
                let pct = (step - start) / (end - start);
                return (
                    self.anneal.interpolate(lr0, lr1, pct),
                    self.anneal.interpolate(m0, m1, pct),
                );
            }
            start = end;
        }
        // Unreachable: the last phase always matches.
        (self.min_lr(), self.max_momentum)
    }
}

impl Schedule for OneCycle {
    fn lr(&self, t: u64) -> f64 {
        self.at(t).0
    }

    fn momentum(&self, t: u64) -> Option<f64> {
        self.cycle_momentum.then(|| self.at(t).1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::test_util::{assert_close, assert_momentum_table, assert_table};

    #[test]
    fn two_phase_cos_by_hand() {
        // max 1, total 10: initial 0.04, min 4e-6; phase ends 2.0 and 9.0.
        // t=1: pct 0.5 -> 1 + (0.04 - 1)/2 * (cos(pi/2) + 1) = 0.52; momentum 0.85 + 0.1/2 = 0.9
        // t=2: peak 1, momentum 0.85; t=9: min 4e-6, momentum 0.95
        // t=5.5 would be the mid-point of phase 2; t=4: pct 2/7
        let s = OneCycle::new(1.0, 10).unwrap();
        let pct: f64 = 2.0 / 7.0;
        let lr4 = 4e-6 + (1.0 - 4e-6) / 2.0 * ((PI * pct).cos() + 1.0);
        assert_table(
            &s,
            &[
                (0, 0.04),
                (1, 0.52),
                (2, 1.0),
                (4, lr4),
                (9, 4e-6),
                (10, 4e-6),
                (99, 4e-6),
            ],
        );
        assert_momentum_table(&s, &[(0, 0.95), (1, 0.9), (2, 0.85), (9, 0.95)]);
    }

    #[test]
    fn three_phase_linear_by_hand() {
        // max 1, total 20, pct 0.25: phases end at 4, 8, 19; initial 0.04, min 4e-6.
        // t=2: 0.04 + 0.96 * 0.5 = 0.52; t=4: 1; t=6: 0.52; t=8: 0.04;
        // t=19: 4e-6; momentum: 0.95 -> 0.85 -> 0.95, then flat 0.95.
        let s = OneCycle {
            pct_start: 0.25,
            anneal: Anneal::Linear,
            three_phase: true,
            ..OneCycle::new(1.0, 20).unwrap()
        }
        .validate()
        .unwrap();
        let lr13 = (4e-6 - 0.04) * (5.0 / 11.0) + 0.04; // phase 3 runs 8..19, pct 5/11
        assert_table(
            &s,
            &[
                (0, 0.04),
                (2, 0.52),
                (4, 1.0),
                (6, 0.52),
                (8, 0.04),
                (13, lr13),
                (19, 4e-6),
            ],
        );
        assert_momentum_table(&s, &[(0, 0.95), (2, 0.9), (4, 0.85), (6, 0.9), (8, 0.95), (13, 0.95)]);
    }

    #[test]
    fn momentum_off_returns_none() {
        let s = OneCycle {
            cycle_momentum: false,
            ..OneCycle::new(0.1, 100).unwrap()
        };
        assert_eq!(s.momentum(0), None);
        assert_close(s.lr(0), 0.004, 1e-12, 0.0, "lr(0)");
    }

    #[test]
    fn empty_phases_are_rejected() {
        // pct_start * total - 1 = 0 makes PyTorch divide by zero at step 0.
        let ok = OneCycle {
            pct_start: 0.02,
            ..OneCycle::new(0.1, 100).unwrap()
        };
        assert!(ok.validate().is_ok());
        let empty = OneCycle { pct_start: 0.01, ..ok };
        assert!(empty.validate().is_err());
        let e = OneCycle::new(0.1, 3).unwrap_err();
        assert!(matches!(e, ScheduleError::Config { name: "pct_start", .. }), "{e}");
        let three = OneCycle {
            pct_start: 0.9,
            three_phase: true,
            ..OneCycle::new(0.1, 100).unwrap()
        };
        assert!(three.validate().is_err());
        assert!(OneCycle::new(0.1, 0).is_err());
    }
}
