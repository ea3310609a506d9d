//! Warmup-stable-decay (WSD) and its special case, linear decay to zero.

use serde::{Deserialize, Serialize};

use super::decay::{check_lr, check_positive};
use super::error::{check, Result};
use super::Schedule;

/// The shape of a [`Wsd`] cooldown, as a function of its progress `p` in [0, 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cooldown {
    /// `1 - p`: straight down to the floor.
    Linear,
    /// `1 - sqrt(p)`: drops fast, then flattens; Hägele et al. (2024) found it
    /// beats the linear cooldown at equal length.
    OneMinusSqrt,
}

/// Warmup-stable-decay (MiniCPM; Hägele et al. 2024): a linear warm-up from `eta_min` over
/// `warmup_steps`, the peak rate `lr0` until the cooldown, then a cooldown of `decay_steps`
/// to `eta_min`, reached at `total_steps` and held after it.
///
/// With `d = total_steps - decay_steps` (where the cooldown starts) and
/// `p = (t - d) / decay_steps`:
///
/// ```text
/// lr(t) = eta_min + (lr0 - eta_min) * t / warmup_steps    t < warmup_steps
///       = lr0                                        warmup_steps <= t < d
///       = eta_min + (lr0 - eta_min) * shape(p)         d <= t < total_steps
///       = eta_min                                    t >= total_steps
/// ```
///
/// the formulas of Hugging Face `transformers`' `get_wsd_schedule` (warm-up from 0, then
/// `1 - p` or `1 - sqrt(p)`), except that `eta_min` is a rate, not a ratio. The stable
/// phase does not depend on `total_steps`, so a run stopped anywhere in it can branch into
/// a cooldown for any later budget: the rates up to the branch point are the same.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Wsd {
    /// The peak (stable-phase) rate.
    pub lr0: f64,
    /// Steps until the floor is reached, at least 1.
    pub total_steps: u64,
    /// Warm-up length in steps (0: start at the peak).
    pub warmup_steps: u64,
    /// Cooldown length in steps, at least 1, at most `total_steps - warmup_steps`.
    pub decay_steps: u64,
    /// The cooldown's shape.
    pub cooldown: Cooldown,
    /// The rate the cooldown ends at, in [0, `lr0`] (named as `CosineAnnealingLR`'s).
    pub eta_min: f64,
}

impl Wsd {
    /// A WSD schedule with a cooldown over the last `decay_steps` of `total_steps`, to 0.
    pub fn new(lr0: f64, total_steps: u64, warmup_steps: u64, decay_steps: u64, cooldown: Cooldown) -> Result<Self> {
        Self {
            lr0,
            total_steps,
            warmup_steps,
            decay_steps,
            cooldown,
            eta_min: 0.0,
        }
        .validate()
    }

    /// Linear decay to zero after a warm-up: the cooldown is everything after `warmup_steps`
    /// (Defazio et al. 2023 found it matches or beats cosine).
    pub fn linear_to_zero(lr0: f64, total_steps: u64, warmup_steps: u64) -> Result<Self> {
        check(
            "warmup",
            warmup_steps as f64,
            warmup_steps < total_steps,
            "expected warmup < total",
        )?;
        Self::new(
            lr0,
            total_steps,
            warmup_steps,
            total_steps - warmup_steps,
            Cooldown::Linear,
        )
    }

    /// Checks the ranges the field docs give and returns the schedule.
    pub fn validate(self) -> Result<Self> {
        check_lr("lr0", self.lr0)?;
        check_positive("total_steps", self.total_steps)?;
        check_positive("decay_steps", self.decay_steps)?;
        let room = self.total_steps.saturating_sub(self.warmup_steps);
        check(
            "decay_steps",
            self.decay_steps as f64,
            self.decay_steps <= room,
            "expected warmup + cooldown <= total",
        )?;
        check(
            "eta_min",
            self.eta_min,
            (0.0..=self.lr0).contains(&self.eta_min),
            "expected 0 <= min <= the peak rate",
        )?;
        Ok(self)
    }

    /// The first step of the cooldown.
    pub fn decay_start(&self) -> u64 {
        self.total_steps.saturating_sub(self.decay_steps)
    }
}

impl Schedule for Wsd {
    fn lr(&self, t: u64) -> f64 {
        if t >= self.total_steps {
            return self.eta_min;
        }
        if t < self.warmup_steps {
            let p = t as f64 / self.warmup_steps as f64;
            return self.eta_min + (self.lr0 - self.eta_min) * p;
        }
        let start = self.decay_start();
        if t < start {
            return self.lr0;
        }
        let p = (t - start) as f64 / self.decay_steps.max(1) as f64;
        let shape = match self.cooldown {
            Cooldown::Linear => 1.0 - p,
            Cooldown::OneMinusSqrt => 1.0 - p.sqrt(),
        };
        self.eta_min + (self.lr0 - self.eta_min) * shape
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::error::ScheduleError;
    use crate::schedule::test_util::assert_table;

    #[test]
    fn linear_cooldown_table() {
        // total 10, warm-up 2, cooldown 4 (steps 6..10): 0, 0.05, then 0.1 for 2..6,
        // then 0.1 * (1 - (t - 6) / 4): 0.1, 0.075, 0.05, 0.025, then 0.
        let s = Wsd::new(0.1, 10, 2, 4, Cooldown::Linear).unwrap();
        let table = [
            (0, 0.0),
            (1, 0.05),
            (2, 0.1),
            (5, 0.1),
            (6, 0.1),
            (7, 0.075),
            (8, 0.05),
            (9, 0.025),
            (10, 0.0),
            (u64::MAX, 0.0),
        ];
        assert_table(&s, &table);
    }

    #[test]
    fn one_minus_sqrt_cooldown_table() {
        // cooldown over steps 4..8 of 8, no warm-up, floor 0.01:
        // 0.01 + 0.09 * (1 - sqrt((t - 4) / 4)): t=5 -> 0.01 + 0.09 * 0.5 = 0.055,
        // t=6 -> 0.01 + 0.09 * (1 - sqrt(0.5)), t=7 -> 0.01 + 0.09 * (1 - sqrt(0.75)).
        let s = Wsd {
            eta_min: 0.01,
            ..Wsd::new(0.1, 8, 0, 4, Cooldown::OneMinusSqrt).unwrap()
        }
        .validate()
        .unwrap();
        let table = [
            (0, 0.1),
            (3, 0.1),
            (4, 0.1),
            (5, 0.055),
            (6, 0.01 + 0.09 * (1.0 - 0.5f64.sqrt())),
            (7, 0.01 + 0.09 * (1.0 - 0.75f64.sqrt())),
            (8, 0.01),
            (100, 0.01),
        ];
        assert_table(&s, &table);
    }

    #[test]
    fn linear_to_zero_table() {
        // warm-up 2, then 0.2 * (1 - (t - 2) / 4) down to 0 at t = 6.
        let s = Wsd::linear_to_zero(0.2, 6, 2).unwrap();
        assert_table(
            &s,
            &[(0, 0.0), (1, 0.1), (2, 0.2), (3, 0.15), (4, 0.1), (5, 0.05), (6, 0.0)],
        );
        let s = Wsd::linear_to_zero(1.0, 4, 0).unwrap();
        assert_table(&s, &[(0, 1.0), (1, 0.75), (3, 0.25), (4, 0.0)]);
    }

    #[test]
    fn the_stable_phase_does_not_depend_on_the_budget() {
        // A long run and a branch that cools down earlier agree until the branch's cooldown.
        let long = Wsd::new(0.1, 10_000, 500, 2_000, Cooldown::OneMinusSqrt).unwrap();
        let short = Wsd::new(0.1, 6_000, 500, 1_200, Cooldown::OneMinusSqrt).unwrap();
        for t in (0..4_800).step_by(7) {
            assert_eq!(long.lr(t).to_bits(), short.lr(t).to_bits(), "step {t}");
        }
        assert!(short.lr(5_000) < long.lr(5_000));
    }

    #[test]
    fn bad_ranges_are_named() {
        let e = Wsd::new(0.1, 10, 8, 4, Cooldown::Linear).unwrap_err();
        assert!(
            matches!(
                e,
                ScheduleError::Config {
                    name: "decay_steps",
                    ..
                }
            ),
            "{e}"
        );
        assert!(Wsd::new(0.1, 0, 0, 1, Cooldown::Linear).is_err());
        assert!(Wsd::new(0.1, 10, 0, 0, Cooldown::Linear).is_err());
        assert!(Wsd::linear_to_zero(0.1, 5, 5).is_err());
        let floor_above_peak = Wsd {
            eta_min: 0.2,
            ..Wsd::new(0.1, 10, 0, 4, Cooldown::Linear).unwrap()
        };
        assert!(floor_above_peak.validate().is_err());
    }
}
