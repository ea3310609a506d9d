//! Finite ramps: linear warm-up and polynomial decay to zero.

use serde::{Deserialize, Serialize};

use super::decay::{check_lr, check_positive};
use super::error::{check, Result};
use super::Schedule;

/// PyTorch `LinearLR`: the factor moves linearly from `start_factor` to
/// `end_factor` over `total_iters` steps, then stays at `end_factor`.
///
/// `lr(t) = lr0 * (start + (end - start) * min(t, total) / total)`, PyTorch's
/// closed form. PyTorch's defaults are start 1/3, end 1, total 5
/// ([`LinearWarmup::pytorch_default`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LinearWarmup {
    /// Rate the factors multiply.
    pub lr0: f64,
    /// Factor at step 0, in (0, 1] (PyTorch default 1/3).
    pub start_factor: f64,
    /// Factor from step `total_iters` on, in [0, 1] (PyTorch default 1).
    pub end_factor: f64,
    /// Length of the ramp in steps, at least 1 (PyTorch default 5).
    pub total_iters: u64,
}

impl LinearWarmup {
    /// A ramp with PyTorch's ranges: `0 < start_factor <= 1`, `0 <= end_factor <= 1`.
    ///
    /// `total_iters` must be at least 1; PyTorch accepts 0 and then divides by it.
    pub fn new(lr0: f64, start_factor: f64, end_factor: f64, total_iters: u64) -> Result<Self> {
        let s = Self {
            lr0,
            start_factor,
            end_factor,
            total_iters,
        };
        s.validate()
    }

    /// PyTorch's `LinearLR()` defaults: from `lr0 / 3` to `lr0` over 5 steps.
    pub fn pytorch_default(lr0: f64) -> Result<Self> {
        Self::new(lr0, 1.0 / 3.0, 1.0, 5)
    }

    /// Checks the ranges [`LinearWarmup::new`] documents and returns the schedule.
    pub fn validate(self) -> Result<Self> {
        check_lr("lr0", self.lr0)?;
        let (s, e) = (self.start_factor, self.end_factor);
        check("start_factor", s, s > 0.0 && s <= 1.0, "expected 0 < start_factor <= 1")?;
        check(
            "end_factor",
            e,
            (0.0..=1.0).contains(&e),
            "expected 0 <= end_factor <= 1",
        )?;
        check_positive("total_iters", self.total_iters)?;
        Ok(self)
    }
}

impl Schedule for LinearWarmup {
    fn lr(&self, t: u64) -> f64 {
        let total = self.total_iters.max(1);
        // Same operation order as PyTorch's `_get_closed_form_lr`.
        self.lr0 * (self.start_factor + (self.end_factor - self.start_factor) * t.min(total) as f64 / total as f64)
    }
}

/// PyTorch `PolynomialLR`: `lr(t) = lr0 * (1 - min(t, total) / total)^power`,
/// reaching 0 at `total_iters` and staying there.
///
/// PyTorch's defaults are total 5, power 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Polynomial {
    /// Rate at step 0.
    pub lr0: f64,
    /// Steps until the rate reaches 0, at least 1 (PyTorch default 5).
    pub total_iters: u64,
    /// Exponent, >= 0 (PyTorch default 1: linear decay).
    pub power: f64,
}

impl Polynomial {
    /// Decays to 0 over `total_iters >= 1` steps with exponent `power >= 0`.
    pub fn new(lr0: f64, total_iters: u64, power: f64) -> Result<Self> {
        check_lr("lr0", lr0)?;
        check_positive("total_iters", total_iters)?;
        check("power", power, power >= 0.0, "expected an exponent >= 0")?;
        Ok(Self {
            lr0,
            total_iters,
            power,
        })
    }
}

impl Schedule for Polynomial {
    fn lr(&self, t: u64) -> f64 {
        let total = self.total_iters.max(1);
        self.lr0 * (1.0 - t.min(total) as f64 / total as f64).powf(self.power)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::error::ScheduleError;
    use crate::schedule::test_util::assert_table;

    #[test]
    fn linear_warmup_pytorch_default() {
        // lr = 0.3 * (1/3 + (2/3) * min(t, 5) / 5): 0.1, 0.14, 0.18, 0.22, 0.26, 0.3, 0.3
        let s = LinearWarmup::pytorch_default(0.3).unwrap();
        let table = [
            (0, 0.1),
            (1, 0.14),
            (2, 0.18),
            (3, 0.22),
            (4, 0.26),
            (5, 0.3),
            (6, 0.3),
            (u64::MAX, 0.3),
        ];
        assert_table(&s, &table);
    }

    #[test]
    fn linear_warmup_can_ramp_down() {
        // lr = 1 * (1 + (0.5 - 1) * min(t, 4) / 4)
        let s = LinearWarmup::new(1.0, 1.0, 0.5, 4).unwrap();
        assert_table(&s, &[(0, 1.0), (1, 0.875), (2, 0.75), (4, 0.5), (100, 0.5)]);
    }

    #[test]
    fn linear_warmup_ranges_are_pytorchs() {
        let e = LinearWarmup::new(0.1, 0.0, 1.0, 5).unwrap_err();
        assert!(
            matches!(
                e,
                ScheduleError::Config {
                    name: "start_factor",
                    ..
                }
            ),
            "{e}"
        );
        assert!(LinearWarmup::new(0.1, 0.5, 1.5, 5).is_err());
        assert!(LinearWarmup::new(0.1, 0.5, 1.0, 0).is_err());
    }

    #[test]
    fn polynomial_matches_polynomiallr() {
        // lr = 0.1 * (1 - min(t, 4) / 4)^2: 0.1, 0.05625, 0.025, 0.00625, 0
        let s = Polynomial::new(0.1, 4, 2.0).unwrap();
        assert_table(
            &s,
            &[(0, 0.1), (1, 0.056_25), (2, 0.025), (3, 0.006_25), (4, 0.0), (9, 0.0)],
        );
        // power 1 is linear: 0.1 * (1 - t / 5)
        let s = Polynomial::new(0.1, 5, 1.0).unwrap();
        assert_table(&s, &[(1, 0.08), (4, 0.02)]);
        assert!(Polynomial::new(0.1, 5, -1.0).is_err());
    }
}
