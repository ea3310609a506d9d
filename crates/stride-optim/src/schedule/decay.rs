//! Monotone decays: constant, step, multi-step, exponential, 1/t.

use serde::{Deserialize, Serialize};

use super::error::{check, Result};
use super::Schedule;

/// Checks an initial learning rate.
pub(crate) fn check_lr(name: &'static str, lr: f64) -> Result<()> {
    check(name, lr, lr >= 0.0, "expected a learning rate >= 0")
}

/// Checks a count of steps that a formula divides by.
pub(crate) fn check_positive(name: &'static str, n: u64) -> Result<()> {
    check(name, n as f64, n > 0, "expected at least 1 step")
}

/// `lr(t) = lr`: the rate never changes (PyTorch: no scheduler).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Constant {
    /// The rate.
    pub lr: f64,
}

impl Constant {
    /// A constant rate `lr >= 0`.
    pub fn new(lr: f64) -> Result<Self> {
        check_lr("lr", lr)?;
        Ok(Self { lr })
    }
}

impl Schedule for Constant {
    fn lr(&self, _step: u64) -> f64 {
        self.lr
    }
}

/// `lr(t) = lr0 * gamma^floor(t / every)`, PyTorch `StepLR(step_size=every, gamma)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepDecay {
    /// Rate before the first decay.
    pub lr0: f64,
    /// Multiplier applied every `every` steps (PyTorch default 0.1).
    pub gamma: f64,
    /// Steps between decays, at least 1.
    pub every: u64,
}

impl StepDecay {
    /// Multiplies `lr0` by `gamma > 0` every `every >= 1` steps.
    pub fn new(lr0: f64, gamma: f64, every: u64) -> Result<Self> {
        check_lr("lr0", lr0)?;
        check("gamma", gamma, gamma > 0.0, "expected a multiplier > 0")?;
        check_positive("every", every)?;
        Ok(Self { lr0, gamma, every })
    }
}

impl Schedule for StepDecay {
    fn lr(&self, step: u64) -> f64 {
        // `every` is validated >= 1; max(1) keeps a hand-built struct from dividing by zero.
        self.lr0 * self.gamma.powf((step / self.every.max(1)) as f64)
    }
}

/// `lr(t) = lr0 * gamma^(number of milestones <= t)`, PyTorch `MultiStepLR`.
///
/// A milestone listed twice decays twice, as in PyTorch (which counts them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultiStep {
    /// Rate before the first milestone.
    pub lr0: f64,
    /// Multiplier applied at each milestone (PyTorch default 0.1).
    pub gamma: f64,
    /// Steps at which the rate is multiplied by `gamma`, sorted.
    pub milestones: Vec<u64>,
}

impl MultiStep {
    /// Decays by `gamma > 0` at each milestone; milestones may come in any order.
    pub fn new(lr0: f64, gamma: f64, mut milestones: Vec<u64>) -> Result<Self> {
        check_lr("lr0", lr0)?;
        check("gamma", gamma, gamma > 0.0, "expected a multiplier > 0")?;
        milestones.sort_unstable();
        Ok(Self { lr0, gamma, milestones })
    }
}

impl Schedule for MultiStep {
    fn lr(&self, step: u64) -> f64 {
        // PyTorch's closed form: bisect_right(milestones, t); counting works unsorted too.
        let passed = self.milestones.iter().filter(|&&m| m <= step).count();
        self.lr0 * self.gamma.powf(passed as f64)
    }
}

/// `lr(t) = lr0 * gamma^t`, PyTorch `ExponentialLR`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Exponential {
    /// Rate at step 0.
    pub lr0: f64,
    /// Multiplier per step.
    pub gamma: f64,
}

impl Exponential {
    /// Multiplies the rate by `gamma > 0` every step.
    pub fn new(lr0: f64, gamma: f64) -> Result<Self> {
        check_lr("lr0", lr0)?;
        check("gamma", gamma, gamma > 0.0, "expected a multiplier > 0")?;
        Ok(Self { lr0, gamma })
    }
}

impl Schedule for Exponential {
    fn lr(&self, step: u64) -> f64 {
        self.lr0 * self.gamma.powf(step as f64)
    }
}

/// `lr(t) = lr0 * exp(-lambda * t)`, the textbook form of exponential decay.
///
/// The same curve as [`Exponential`] with `gamma = exp(-lambda)`; kept as its
/// own type so each form is computed exactly as written.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ExponentialDecay {
    /// Rate at step 0.
    pub lr0: f64,
    /// Decay rate per step.
    pub lambda: f64,
}

impl ExponentialDecay {
    /// Decays with rate `lambda >= 0` per step.
    pub fn new(lr0: f64, lambda: f64) -> Result<Self> {
        check_lr("lr0", lr0)?;
        check("lambda", lambda, lambda >= 0.0, "expected a decay rate >= 0")?;
        Ok(Self { lr0, lambda })
    }
}

impl Schedule for ExponentialDecay {
    fn lr(&self, step: u64) -> f64 {
        self.lr0 * (-self.lambda * step as f64).exp()
    }
}

/// `lr(t) = lr0 / (1 + k t)`, the 1/t decay of CS231n's notes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct InverseTime {
    /// Rate at step 0.
    pub lr0: f64,
    /// Decay rate per step.
    pub k: f64,
}

impl InverseTime {
    /// Decays as `1/(1 + k t)` with `k >= 0`.
    pub fn new(lr0: f64, k: f64) -> Result<Self> {
        check_lr("lr0", lr0)?;
        check("k", k, k >= 0.0, "expected a decay rate >= 0")?;
        Ok(Self { lr0, k })
    }
}

impl Schedule for InverseTime {
    fn lr(&self, step: u64) -> f64 {
        self.lr0 / (1.0 + self.k * step as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::error::ScheduleError;
    use crate::schedule::test_util::assert_table;

    #[test]
    fn constant_is_flat() {
        assert_table(&Constant::new(0.1).unwrap(), &[(0, 0.1), (1, 0.1), (1_000_000, 0.1)]);
    }

    #[test]
    fn step_decay_matches_steplr() {
        // lr = 0.1 * 0.5^floor(t/3)
        let s = StepDecay::new(0.1, 0.5, 3).unwrap();
        assert_table(&s, &[(0, 0.1), (2, 0.1), (3, 0.05), (5, 0.05), (6, 0.025), (9, 0.0125)]);
    }

    #[test]
    fn multistep_counts_passed_milestones() {
        // lr = 1 * 0.1^#{m <= t}, milestones given unsorted and with a repeat
        let s = MultiStep::new(1.0, 0.1, vec![80, 30, 80]).unwrap();
        assert_eq!(s.milestones, vec![30, 80, 80]);
        assert_table(
            &s,
            &[(0, 1.0), (29, 1.0), (30, 0.1), (79, 0.1), (80, 0.001), (500, 0.001)],
        );
    }

    #[test]
    fn exponential_forms() {
        // lr = 0.1 * 0.9^t
        let g = Exponential::new(0.1, 0.9).unwrap();
        assert_table(&g, &[(0, 0.1), (1, 0.09), (2, 0.081), (10, 0.1 * 0.348_678_440_1)]);
        // lr = 0.1 * exp(-0.5 t); exp(-1) = 0.36787944117144233
        let l = ExponentialDecay::new(0.1, 0.5).unwrap();
        assert_table(
            &l,
            &[
                (0, 0.1),
                (2, 0.036_787_944_117_144_23),
                (4, 0.1 * 0.135_335_283_236_612_7),
            ],
        );
    }

    #[test]
    fn inverse_time() {
        // lr = 0.1 / (1 + 0.01 t)
        let s = InverseTime::new(0.1, 0.01).unwrap();
        assert_table(&s, &[(0, 0.1), (100, 0.05), (300, 0.025), (900, 0.01)]);
    }

    #[test]
    fn constructors_name_the_bad_parameter() {
        let e = StepDecay::new(0.1, 0.5, 0).unwrap_err();
        assert!(matches!(e, ScheduleError::Config { name: "every", .. }), "{e}");
        let e = Exponential::new(0.1, f64::NAN).unwrap_err();
        assert!(e.to_string().starts_with("invalid gamma = NaN"), "{e}");
        let e = Constant::new(-1.0).unwrap_err();
        assert_eq!(e.to_string(), "invalid lr = -1: expected a learning rate >= 0");
        assert!(InverseTime::new(0.1, -1.0).is_err());
        assert!(ExponentialDecay::new(f64::INFINITY, 1.0).is_err());
        assert!(MultiStep::new(0.1, 0.0, vec![1]).is_err());
    }
}
