//! Building schedules from other schedules: in sequence, as a product, or
//! from a closure.

use std::fmt;

use super::decay::check_lr;
use super::error::{Result, ScheduleError};
use super::Schedule;

/// PyTorch `SequentialLR`: schedule `i` runs from milestone `i - 1` (or 0)
/// to milestone `i`, and counts its own steps from 0 when it starts.
///
/// `lr(t) = schedules[i].lr(t - milestones[i - 1])` for
/// `milestones[i - 1] <= t < milestones[i]`. Each schedule carries its own
/// base rate, so `warmup then cosine` restarts the cosine at its `lr0`
/// whatever the warm-up ended on; unlike PyTorch's `SequentialLR` there is no
/// construction-time state to undo.
pub struct Sequential {
    /// The schedules, in order; the last one runs forever.
    pub schedules: Vec<Box<dyn Schedule>>,
    /// Steps at which the next schedule takes over: strictly increasing, one
    /// fewer than `schedules`.
    pub milestones: Vec<u64>,
}

impl Sequential {
    /// Runs `schedules` one after the other, switching at `milestones`.
    pub fn new(schedules: Vec<Box<dyn Schedule>>, milestones: Vec<u64>) -> Result<Self> {
        if schedules.is_empty() || milestones.len() + 1 != schedules.len() {
            return Err(ScheduleError::Config {
                name: "milestones",
                value: milestones.len() as f64,
                message: "expected exactly one milestone fewer than schedules",
            });
        }
        let mut previous = 0;
        for &m in &milestones {
            if m <= previous {
                return Err(ScheduleError::Config {
                    name: "milestones",
                    value: m as f64,
                    message: "expected strictly increasing milestones > 0",
                });
            }
            previous = m;
        }
        Ok(Self { schedules, milestones })
    }

    /// The active schedule at `t` and `t` relative to its start.
    fn locate(&self, t: u64) -> Option<(&dyn Schedule, u64)> {
        // bisect_right, as PyTorch: at t == milestone the next schedule starts.
        let i = self.milestones.partition_point(|&m| m <= t);
        let start = if i == 0 { 0 } else { self.milestones[i - 1] };
        self.schedules.get(i).map(|s| (s.as_ref(), t - start))
    }
}

impl Schedule for Sequential {
    fn lr(&self, t: u64) -> f64 {
        // A hand-built value may lack schedules; a rate of 0 then is visible, not a panic.
        self.locate(t).map_or(0.0, |(s, local)| s.lr(local))
    }

    fn momentum(&self, t: u64) -> Option<f64> {
        self.locate(t).and_then(|(s, local)| s.momentum(local))
    }
}

impl fmt::Debug for Sequential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sequential")
            .field("schedules", &self.schedules.len())
            .field("milestones", &self.milestones)
            .finish()
    }
}

/// A product of factor schedules, as PyTorch's `ChainedScheduler` composes
/// multiplicative schedulers: `lr(t) = lr0 * factors[0].lr(t) * factors[1].lr(t) * ...`.
///
/// Build each factor with a base rate of 1 (`StepDecay::new(1.0, ...)`), so
/// it returns a multiplier rather than a rate. Momentum comes from the first
/// factor that cycles it. For PyTorch's multiplicative schedulers (`LinearLR`,
/// `ExponentialLR`, `StepLR`, ...) this equals `ChainedScheduler`; for
/// `CosineAnnealingLR`, whose recursive update is not a pure factor, PyTorch
/// differs from any closed form.
pub struct Chained {
    /// Rate the factors multiply.
    pub lr0: f64,
    /// Factor schedules, each built with a base rate of 1.
    pub factors: Vec<Box<dyn Schedule>>,
}

impl Chained {
    /// `lr0 >= 0` times the product of `factors` (none: constant `lr0`).
    pub fn new(lr0: f64, factors: Vec<Box<dyn Schedule>>) -> Result<Self> {
        check_lr("lr0", lr0)?;
        Ok(Self { lr0, factors })
    }
}

impl Schedule for Chained {
    fn lr(&self, t: u64) -> f64 {
        self.factors.iter().fold(self.lr0, |lr, f| lr * f.lr(t))
    }

    fn momentum(&self, t: u64) -> Option<f64> {
        self.factors.iter().find_map(|f| f.momentum(t))
    }
}

impl fmt::Debug for Chained {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chained")
            .field("lr0", &self.lr0)
            .field("factors", &self.factors.len())
            .finish()
    }
}

/// PyTorch `LambdaLR`: `lr(t) = lr0 * factor(t)`.
///
/// A bare closure is already a [`Schedule`] returning the rate itself; this
/// wrapper is for factors written against a base rate chosen elsewhere.
pub struct Lambda {
    /// Rate the factor multiplies.
    pub lr0: f64,
    /// The multiplicative factor at `t`.
    pub factor: Box<dyn Fn(u64) -> f64 + Send + Sync>,
}

impl Lambda {
    /// `lr0 >= 0` times `factor(t)`.
    pub fn new(lr0: f64, factor: impl Fn(u64) -> f64 + Send + Sync + 'static) -> Result<Self> {
        check_lr("lr0", lr0)?;
        Ok(Self {
            lr0,
            factor: Box::new(factor),
        })
    }
}

impl Schedule for Lambda {
    fn lr(&self, t: u64) -> f64 {
        self.lr0 * (self.factor)(t)
    }
}

impl fmt::Debug for Lambda {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lambda").field("lr0", &self.lr0).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::test_util::{assert_momentum_table, assert_table};
    use crate::schedule::{CosineAnnealing, Exponential, LinearWarmup, OneCycle, StepDecay};

    #[test]
    fn sequential_restarts_the_count_at_each_milestone() {
        // warmup 0.1 * (0.5 + 0.5 t / 4) for t < 4, then cosine over 4 steps from 0.1
        let warm = LinearWarmup::new(0.1, 0.5, 1.0, 4).unwrap();
        let cos = CosineAnnealing::new(0.1, 4, 0.0).unwrap();
        let s = Sequential::new(vec![Box::new(warm), Box::new(cos)], vec![4]).unwrap();
        // t=6 is cosine step 2: 0.1 * (1 + cos(pi/2)) / 2 = 0.05; t=8: 0
        assert_table(&s, &[(0, 0.05), (2, 0.075), (3, 0.0875), (4, 0.1), (6, 0.05), (8, 0.0)]);
    }

    #[test]
    fn sequential_of_three_and_momentum() {
        let one = OneCycle::new(1.0, 10).unwrap();
        let s = Sequential::new(vec![Box::new(0.5), Box::new(one), Box::new(0.01)], vec![3, 13]).unwrap();
        // one-cycle runs t in [3, 13): its step 0 is 0.04 at t=3 and its peak (step 2) at t=5
        assert_table(
            &s,
            &[
                (0, 0.5),
                (2, 0.5),
                (3, 0.04),
                (5, 1.0),
                (12, 4e-6),
                (13, 0.01),
                (1000, 0.01),
            ],
        );
        assert_momentum_table(&s, &[(3, 0.95), (5, 0.85)]);
        assert_eq!(s.momentum(0), None);
        assert_eq!(s.momentum(13), None);
    }

    #[test]
    fn sequential_validates_milestones() {
        let two = || -> Vec<Box<dyn Schedule>> { vec![Box::new(0.1), Box::new(0.2)] };
        assert!(Sequential::new(two(), vec![]).is_err());
        assert!(Sequential::new(two(), vec![0]).is_err());
        assert!(Sequential::new(vec![], vec![]).is_err());
        let three: Vec<Box<dyn Schedule>> = vec![Box::new(0.1), Box::new(0.2), Box::new(0.3)];
        let e = Sequential::new(three, vec![5, 5]).unwrap_err();
        assert!(e.to_string().contains("strictly increasing"), "{e}");
    }

    #[test]
    fn chained_multiplies_factors() {
        // lr = 0.1 * 0.9^t * 0.5^floor(t / 2)
        let exp = Exponential::new(1.0, 0.9).unwrap();
        let step = StepDecay::new(1.0, 0.5, 2).unwrap();
        let s = Chained::new(0.1, vec![Box::new(exp), Box::new(step)]).unwrap();
        assert_table(
            &s,
            &[(0, 0.1), (1, 0.09), (2, 0.1 * 0.81 * 0.5), (5, 0.1 * 0.59049 * 0.25)],
        );
        let empty = Chained::new(0.1, vec![]).unwrap();
        assert_table(&empty, &[(7, 0.1)]);
    }

    #[test]
    fn lambda_scales_a_closure() {
        // LambdaLR with lambda t: 0.95^t
        let s = Lambda::new(0.1, |t| 0.95f64.powf(t as f64)).unwrap();
        assert_table(&s, &[(0, 0.1), (2, 0.09025)]);
        assert!(format!("{s:?}").starts_with("Lambda"));
    }
}
