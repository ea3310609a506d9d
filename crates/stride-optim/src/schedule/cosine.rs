//! Cosine annealing, once or with warm restarts.

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};

use super::decay::{check_lr, check_positive};
use super::error::{check, Result};
use super::Schedule;

/// PyTorch `CosineAnnealingLR` in its closed form:
/// `lr(t) = eta_min + (lr0 - eta_min) * (1 + cos(pi t / t_max)) / 2`.
///
/// After `t_max` the cosine simply continues, as PyTorch's
/// `_get_closed_form_lr` (and, up to rounding, its recursive form) does: the
/// rate climbs back to `lr0` at `2 t_max` and repeats with period `2 t_max`.
/// Follow it with another part (`cosine(T) then ...`) to stop at `eta_min`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CosineAnnealing {
    /// Rate at step 0.
    pub lr0: f64,
    /// Half-period in steps, at least 1.
    pub t_max: u64,
    /// Rate at `t_max` (PyTorch default 0).
    pub eta_min: f64,
}

impl CosineAnnealing {
    /// Anneals from `lr0` to `eta_min >= 0` over `t_max >= 1` steps.
    pub fn new(lr0: f64, t_max: u64, eta_min: f64) -> Result<Self> {
        check_lr("lr0", lr0)?;
        check_positive("t_max", t_max)?;
        check("eta_min", eta_min, eta_min >= 0.0, "expected a learning rate >= 0")?;
        Ok(Self { lr0, t_max, eta_min })
    }
}

impl Schedule for CosineAnnealing {
    fn lr(&self, t: u64) -> f64 {
        cosine(self.lr0, self.eta_min, t as f64, self.t_max.max(1) as f64)
    }
}

/// `eta_min + (lr0 - eta_min) * (1 + cos(pi * t / period)) / 2`, in PyTorch's operation order.
fn cosine(lr0: f64, eta_min: f64, t: f64, period: f64) -> f64 {
    eta_min + (lr0 - eta_min) * (1.0 + (PI * t / period).cos()) / 2.0
}

/// PyTorch `CosineAnnealingWarmRestarts` (SGDR) stepped once per step:
/// cosine from `lr0` to `eta_min` over `t_i` steps, then restart at `lr0`
/// with `t_i` multiplied by `t_mult`, starting from `t_0`.
///
/// With `t_cur` the steps since the last restart,
/// `lr(t) = eta_min + (lr0 - eta_min) * (1 + cos(pi t_cur / t_i)) / 2`,
/// so the rate never quite reaches `eta_min` (the restart comes first). The
/// cycle is found in integers, as PyTorch's `step()` without an epoch does;
/// PyTorch's `step(epoch)` uses a float logarithm that can misplace a
/// restart by one step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CosineWarmRestarts {
    /// Rate at step 0 and after each restart.
    pub lr0: f64,
    /// Length of the first cycle in steps, at least 1.
    pub t_0: u64,
    /// Growth of the cycle length at each restart, at least 1 (PyTorch default 1).
    pub t_mult: u64,
    /// Rate the cosine heads for (PyTorch default 0).
    pub eta_min: f64,
}

impl CosineWarmRestarts {
    /// Restarts after `t_0 >= 1`, `t_0 t_mult`, `t_0 t_mult^2`, ... steps (`t_mult >= 1`).
    pub fn new(lr0: f64, t_0: u64, t_mult: u64, eta_min: f64) -> Result<Self> {
        check_lr("lr0", lr0)?;
        check_positive("t_0", t_0)?;
        check("t_mult", t_mult as f64, t_mult >= 1, "expected a whole number >= 1")?;
        check("eta_min", eta_min, eta_min >= 0.0, "expected a learning rate >= 0")?;
        Ok(Self {
            lr0,
            t_0,
            t_mult,
            eta_min,
        })
    }

    /// `(t_cur, t_i)`: steps since the last restart and the current cycle length.
    pub fn position(&self, t: u64) -> (u64, u64) {
        let t_0 = self.t_0.max(1);
        if self.t_mult <= 1 {
            return (t % t_0, t_0);
        }
        // Cycles grow geometrically, so this loops at most ~64 times; saturation
        // keeps the last cycle "infinite" instead of overflowing.
        let (mut start, mut len) = (0u64, t_0);
        while t - start >= len {
            start += len;
            len = len.saturating_mul(self.t_mult);
        }
        (t - start, len)
    }
}

impl Schedule for CosineWarmRestarts {
    fn lr(&self, t: u64) -> f64 {
        let (t_cur, t_i) = self.position(t);
        cosine(self.lr0, self.eta_min, t_cur as f64, t_i as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::test_util::assert_table;

    #[test]
    fn cosine_annealing_closed_form() {
        // lr = 0.01 + (0.1 - 0.01) * (1 + cos(pi t / 10)) / 2
        // t=5: cos(pi/2)=0 -> 0.055; t=10: cos(pi)=-1 -> 0.01;
        // t=15: cos(3pi/2)=0 -> 0.055 (continues upward); t=20: cos(2pi)=1 -> 0.1
        let s = CosineAnnealing::new(0.1, 10, 0.01).unwrap();
        let c1 = 0.01 + 0.09 * (1.0 + (PI / 10.0).cos()) / 2.0; // t=1: 0.09779754323328192
        assert_table(
            &s,
            &[
                (0, 0.1),
                (1, c1),
                (5, 0.055),
                (10, 0.01),
                (15, 0.055),
                (20, 0.1),
                (21, c1),
            ],
        );
    }

    #[test]
    fn warm_restarts_t_mult_1() {
        // t_cur = t % 4, lr = 0.1 * (1 + cos(pi t_cur / 4)) / 2: 0.1, 0.0853553, 0.05, 0.0146447, restart
        let s = CosineWarmRestarts::new(0.1, 4, 1, 0.0).unwrap();
        let a = 0.05 * (1.0 + std::f64::consts::FRAC_1_SQRT_2);
        let b = 0.05 * (1.0 - std::f64::consts::FRAC_1_SQRT_2);
        assert_table(
            &s,
            &[(0, 0.1), (1, a), (2, 0.05), (3, b), (4, 0.1), (6, 0.05), (8, 0.1)],
        );
    }

    #[test]
    fn warm_restarts_t_mult_2() {
        // cycles [0,2) [2,6) [6,14) [14,30): lr = 0.1 * (1 + cos(pi t_cur / t_i)) / 2
        let s = CosineWarmRestarts::new(0.1, 2, 2, 0.0).unwrap();
        assert_eq!(s.position(1), (1, 2));
        assert_eq!(s.position(2), (0, 4));
        assert_eq!(s.position(5), (3, 4));
        assert_eq!(s.position(6), (0, 8));
        assert_eq!(s.position(13), (7, 8));
        assert_eq!(s.position(14), (0, 16));
        assert_table(
            &s,
            &[
                (0, 0.1),
                (1, 0.05),
                (2, 0.1),
                (4, 0.05),
                (6, 0.1),
                (10, 0.05),
                (14, 0.1),
                (22, 0.05),
            ],
        );
    }

    #[test]
    fn warm_restarts_survive_huge_steps() {
        let s = CosineWarmRestarts::new(0.1, 1, u64::MAX, 0.0).unwrap();
        assert!(s.lr(u64::MAX).is_finite());
        let s = CosineWarmRestarts::new(0.1, 3, 2, 0.0).unwrap();
        assert!(s.lr(u64::MAX).is_finite());
        assert!(CosineWarmRestarts::new(0.1, 3, 0, 0.0).is_err());
        assert!(CosineWarmRestarts::new(0.1, 0, 1, 0.0).is_err());
    }
}
