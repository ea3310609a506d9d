//! Cyclical learning rates (Smith 2017).

use serde::{Deserialize, Serialize};

use super::decay::{check_lr, check_positive};
use super::error::{check, Result};
use super::Schedule;

/// How [`Cyclic`] scales the amplitude over time (PyTorch `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CyclicMode {
    /// Full amplitude every cycle (the default).
    #[default]
    Triangular,
    /// Amplitude halved each cycle: scale `1 / 2^(cycle - 1)`.
    Triangular2,
    /// Amplitude scaled by `gamma^t`, `t` counting steps from the start.
    ExpRange,
}

/// PyTorch `CyclicLR`: triangles between `base_lr` and `max_lr`, `step_size_up`
/// steps up and `step_size_down` down, with momentum cycled the other way.
///
/// With `total = up + down`, `cycle = floor(1 + t / total)`,
/// `x = 1 + t / total - cycle` and `scale = x / ratio` rising (`x <= ratio`,
/// `ratio = up / total`) or `(x - 1) / (ratio - 1)` falling:
/// `lr(t) = base_lr + (max_lr - base_lr) * scale * f`, and
/// `momentum(t) = max_momentum - (max_momentum - base_momentum) * scale * f`,
/// where `f` is 1, `1 / 2^(cycle - 1)` or `gamma^t` by [`CyclicMode`].
/// Defaults ([`Cyclic::new`]) are PyTorch's: 2000 steps up, as many down,
/// triangular, gamma 1, momentum cycled between 0.8 and 0.9. PyTorch's custom
/// `scale_fn` is not offered; use a closure [`Schedule`] instead.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Cyclic {
    /// Lower bound, the rate at step 0.
    pub base_lr: f64,
    /// Upper bound, reached at the end of the first rise.
    pub max_lr: f64,
    /// Steps of the rising half, at least 1 (PyTorch default 2000).
    pub step_size_up: u64,
    /// Steps of the falling half (PyTorch default: `step_size_up`).
    pub step_size_down: u64,
    /// Amplitude policy (PyTorch default triangular).
    pub mode: CyclicMode,
    /// Base of [`CyclicMode::ExpRange`], in (0, 1] usually (PyTorch default 1).
    pub gamma: f64,
    /// Cycle momentum / beta1 inversely to the rate (PyTorch default true).
    pub cycle_momentum: bool,
    /// Momentum at the top of a cycle (PyTorch default 0.8).
    pub base_momentum: f64,
    /// Momentum at the bottom of a cycle (PyTorch default 0.9).
    pub max_momentum: f64,
}

impl Cyclic {
    /// PyTorch's defaults between `base_lr` and `max_lr`; change fields with
    /// struct update syntax, then call [`Cyclic::validate`].
    pub fn new(base_lr: f64, max_lr: f64) -> Result<Self> {
        Self {
            base_lr,
            max_lr,
            step_size_up: 2000,
            step_size_down: 2000,
            mode: CyclicMode::Triangular,
            gamma: 1.0,
            cycle_momentum: true,
            base_momentum: 0.8,
            max_momentum: 0.9,
        }
        .validate()
    }

    /// Checks the parameters and returns the schedule.
    pub fn validate(self) -> Result<Self> {
        check_lr("base_lr", self.base_lr)?;
        check_lr("max_lr", self.max_lr)?;
        // PyTorch divides by the rising length: 0 steps up is a division by zero there.
        check_positive("step_size_up", self.step_size_up)?;
        check("gamma", self.gamma, self.gamma > 0.0, "expected > 0")?;
        check("base_momentum", self.base_momentum, true, "expected a finite momentum")?;
        check("max_momentum", self.max_momentum, true, "expected a finite momentum")?;
        Ok(self)
    }

    /// `(scale, f)` at step `t`: position in the triangle and amplitude factor.
    fn scales(&self, t: u64) -> (f64, f64) {
        let up = self.step_size_up.max(1) as f64;
        let total = up + self.step_size_down as f64;
        let ratio = up / total;
        let t = t as f64;
        // PyTorch's operation order, so the fixtures match to the last bits.
        let cycle = (1.0 + t / total).floor();
        let x = 1.0 + t / total - cycle;
        let scale = if x <= ratio {
            x / ratio
        } else {
            (x - 1.0) / (ratio - 1.0)
        };
        let f = match self.mode {
            CyclicMode::Triangular => 1.0,
            CyclicMode::Triangular2 => 1.0 / 2f64.powf(cycle - 1.0),
            CyclicMode::ExpRange => self.gamma.powf(t),
        };
        (scale, f)
    }
}

impl Schedule for Cyclic {
    fn lr(&self, t: u64) -> f64 {
        let (scale, f) = self.scales(t);
        self.base_lr + (self.max_lr - self.base_lr) * scale * f
    }

    fn momentum(&self, t: u64) -> Option<f64> {
        self.cycle_momentum.then(|| {
            let (scale, f) = self.scales(t);
            self.max_momentum - (self.max_momentum - self.base_momentum) * scale * f
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::test_util::{assert_momentum_table, assert_table};

    fn cyclic(mode: CyclicMode, up: u64, down: u64) -> Cyclic {
        Cyclic {
            step_size_up: up,
            step_size_down: down,
            mode,
            gamma: 0.9,
            ..Cyclic::new(0.1, 0.5).unwrap()
        }
        .validate()
        .unwrap()
    }

    #[test]
    fn triangular() {
        // up 4, down 4: lr = 0.1 + 0.4 * scale; scale 0, .25, .5, .75, 1, .75, ... 0 at t=8
        let s = cyclic(CyclicMode::Triangular, 4, 4);
        assert_table(
            &s,
            &[(0, 0.1), (1, 0.2), (2, 0.3), (4, 0.5), (6, 0.3), (8, 0.1), (12, 0.5)],
        );
        // momentum = 0.9 - 0.1 * scale
        assert_momentum_table(&s, &[(0, 0.9), (2, 0.85), (4, 0.8), (8, 0.9)]);
    }

    #[test]
    fn triangular2_halves_each_cycle() {
        // cycle 2 (t in [8, 16)) has amplitude 0.4 / 2, cycle 3 0.4 / 4
        let s = cyclic(CyclicMode::Triangular2, 4, 4);
        assert_table(&s, &[(4, 0.5), (12, 0.3), (20, 0.2), (22, 0.15)]);
        // momentum = 0.9 - 0.1 * scale / 2^(cycle-1)
        assert_momentum_table(&s, &[(4, 0.8), (12, 0.85), (20, 0.875)]);
    }

    #[test]
    fn exp_range_scales_by_gamma_to_the_step() {
        // lr = 0.1 + 0.4 * scale * 0.9^t
        let s = cyclic(CyclicMode::ExpRange, 4, 4);
        let t2 = 0.1 + 0.4 * 0.5 * 0.81;
        let t12 = 0.1 + 0.4 * 0.9f64.powi(12);
        assert_table(&s, &[(0, 0.1), (2, t2), (12, t12)]);
        assert_momentum_table(&s, &[(2, 0.9 - 0.1 * 0.5 * 0.81)]);
    }

    #[test]
    fn asymmetric_and_sawtooth() {
        // up 2, down 6: ratio 0.25; t=5 -> x = 5/8, scale = (5/8 - 1) / (0.25 - 1) = 0.5
        let s = cyclic(CyclicMode::Triangular, 2, 6);
        assert_table(&s, &[(1, 0.3), (2, 0.5), (5, 0.3), (8, 0.1)]);
        // down 0: a sawtooth that rises over 4 steps and drops at once
        let s = cyclic(CyclicMode::Triangular, 4, 0);
        assert_table(&s, &[(0, 0.1), (3, 0.4), (4, 0.1), (7, 0.4)]);
        assert!(Cyclic {
            step_size_up: 0,
            ..Cyclic::new(0.1, 0.5).unwrap()
        }
        .validate()
        .is_err());
        assert!(s.lr(u64::MAX).is_finite());
    }
}
