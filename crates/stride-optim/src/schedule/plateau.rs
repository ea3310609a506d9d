//! Reduce the rate when a monitored metric stops improving.

use serde::{Deserialize, Serialize};

use super::decay::check_lr;
use super::error::{check, Result};

/// Whether the monitored metric should go down (a loss) or up (an accuracy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlateauMode {
    /// Lower is better (the default).
    #[default]
    Min,
    /// Higher is better.
    Max,
}

/// How much better a metric must be to count as an improvement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdMode {
    /// Better than `best * (1 ∓ threshold)` (the default).
    #[default]
    Rel,
    /// Better than `best ∓ threshold`.
    Abs,
}

/// Hyper-parameters of [`ReduceLrOnPlateau`]; `Default` is PyTorch's
/// `ReduceLROnPlateau` (min, factor 0.1, patience 10, threshold 1e-4 rel,
/// cooldown 0, min_lr 0, eps 1e-8).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PlateauConfig {
    /// Direction of improvement (default min).
    pub mode: PlateauMode,
    /// Multiplier applied on a plateau, in [0, 1) (default 0.1).
    pub factor: f64,
    /// Bad observations tolerated; the rate drops on the `patience + 1`-th (default 10).
    pub patience: u64,
    /// Minimum improvement, relative or absolute (default 1e-4).
    pub threshold: f64,
    /// How `threshold` is applied (default rel).
    pub threshold_mode: ThresholdMode,
    /// Observations after a reduction during which bad ones are not counted (default 0).
    pub cooldown: u64,
    /// The rate is never reduced below this (default 0).
    pub min_lr: f64,
    /// Reductions smaller than this are skipped (default 1e-8).
    pub eps: f64,
}

impl Default for PlateauConfig {
    fn default() -> Self {
        Self {
            mode: PlateauMode::Min,
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            threshold_mode: ThresholdMode::Rel,
            cooldown: 0,
            min_lr: 0.0,
            eps: 1e-8,
        }
    }
}

impl PlateauConfig {
    /// Checks the ranges and returns the config.
    pub fn validate(self) -> Result<Self> {
        let f = self.factor;
        check("factor", f, (0.0..1.0).contains(&f), "expected 0 <= factor < 1")?;
        check("threshold", self.threshold, self.threshold >= 0.0, "expected >= 0")?;
        check(
            "min_lr",
            self.min_lr,
            self.min_lr >= 0.0,
            "expected a learning rate >= 0",
        )?;
        check("eps", self.eps, self.eps >= 0.0, "expected >= 0")?;
        Ok(self)
    }
}

/// PyTorch `ReduceLROnPlateau`, with its state exportable through serde.
///
/// Call [`ReduceLrOnPlateau::step`] once per observation (usually the
/// validation loss after each epoch). An observation is *better* when it
/// beats the best so far by the threshold; otherwise it is bad. After a
/// reduction, the next `cooldown` observations reset the bad count. When
/// the bad count exceeds `patience` the rate becomes
/// `max(lr * factor, min_lr)`, unless that changes it by `eps` or less. A NaN
/// metric is a bad observation, as in PyTorch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReduceLrOnPlateau {
    /// Hyper-parameters.
    pub config: PlateauConfig,
    base_lr: f64,
    lr: f64,
    /// Best metric so far; `None` before the first observation (PyTorch's ±inf).
    #[serde(with = "best_metric")]
    best: Option<f64>,
    num_bad_epochs: u64,
    cooldown_counter: u64,
    observations: u64,
}

impl ReduceLrOnPlateau {
    /// Starts at `base_lr >= 0` with no observation.
    pub fn new(base_lr: f64, config: PlateauConfig) -> Result<Self> {
        check_lr("base_lr", base_lr)?;
        Ok(Self {
            config: config.validate()?,
            base_lr,
            lr: base_lr,
            best: None,
            num_bad_epochs: 0,
            cooldown_counter: 0,
            observations: 0,
        })
    }

    /// Records one observation of the metric and reduces the rate on a plateau.
    pub fn step(&mut self, metric: f64) {
        self.observations += 1;
        if self.is_better(metric) {
            self.best = Some(metric);
            self.num_bad_epochs = 0;
        } else {
            self.num_bad_epochs += 1;
        }
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.num_bad_epochs = 0;
        }
        if self.num_bad_epochs > self.config.patience {
            let new_lr = (self.lr * self.config.factor).max(self.config.min_lr);
            if self.lr - new_lr > self.config.eps {
                self.lr = new_lr;
            }
            self.cooldown_counter = self.config.cooldown;
            self.num_bad_epochs = 0;
        }
    }

    /// PyTorch's `_is_better`, with `best` starting at the worst value of the mode.
    fn is_better(&self, a: f64) -> bool {
        let c = &self.config;
        let best = self.best.unwrap_or(match c.mode {
            PlateauMode::Min => f64::INFINITY,
            PlateauMode::Max => f64::NEG_INFINITY,
        });
        match (c.mode, c.threshold_mode) {
            (PlateauMode::Min, ThresholdMode::Rel) => a < best * (1.0 - c.threshold),
            (PlateauMode::Min, ThresholdMode::Abs) => a < best - c.threshold,
            (PlateauMode::Max, ThresholdMode::Rel) => a > best * (c.threshold + 1.0),
            (PlateauMode::Max, ThresholdMode::Abs) => a > best + c.threshold,
        }
    }

    /// The current rate.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// The rate it started from.
    pub fn base_lr(&self) -> f64 {
        self.base_lr
    }

    /// `lr / base_lr`: the product of the reductions so far (clamped by
    /// `min_lr`); 1 before any reduction or when `base_lr` is 0.
    pub fn factor(&self) -> f64 {
        if self.base_lr > 0.0 {
            self.lr / self.base_lr
        } else {
            1.0
        }
    }

    /// The best metric so far, `None` before the first observation.
    pub fn best(&self) -> Option<f64> {
        self.best
    }

    /// Bad observations since the last improvement or reduction.
    pub fn num_bad_epochs(&self) -> u64 {
        self.num_bad_epochs
    }

    /// Observations left in the cooldown.
    pub fn cooldown_counter(&self) -> u64 {
        self.cooldown_counter
    }

    /// Observations recorded so far (PyTorch's `last_epoch`).
    pub fn observations(&self) -> u64 {
        self.observations
    }
}

/// Stores a metric that may be ±inf or NaN, which JSON numbers cannot hold,
/// as the strings `"inf"`, `"-inf"` and `"nan"`.
mod best_metric {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Number(f64),
        Text(String),
    }

    pub(super) fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        let repr = v.map(|x| match x {
            x if x.is_finite() => Repr::Number(x),
            x if x.is_nan() => Repr::Text("nan".into()),
            x if x > 0.0 => Repr::Text("inf".into()),
            _ => Repr::Text("-inf".into()),
        });
        repr.serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        match Option::<Repr>::deserialize(d)? {
            None => Ok(None),
            Some(Repr::Number(x)) => Ok(Some(x)),
            Some(Repr::Text(t)) => match t.as_str() {
                "inf" => Ok(Some(f64::INFINITY)),
                "-inf" => Ok(Some(f64::NEG_INFINITY)),
                "nan" => Ok(Some(f64::NAN)),
                other => Err(serde::de::Error::custom(format!(
                    "expected a number, \"inf\", \"-inf\" or \"nan\", found \"{other}\""
                ))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::error::ScheduleError;
    use crate::schedule::test_util::{assert_close, u1_config, U1_LRS, U1_METRICS};

    #[test]
    fn monitor_u1() {
        let mut p = ReduceLrOnPlateau::new(0.1, u1_config()).unwrap();
        for (i, (&m, &want)) in U1_METRICS.iter().zip(&U1_LRS).enumerate() {
            p.step(m);
            assert_close(p.lr(), want, 1e-12, 0.0, &format!("lr after epoch {}", i + 1));
        }
        assert_close(p.factor(), 0.01, 1e-12, 0.0, "factor");
        assert_eq!(p.observations(), 13);
    }

    #[test]
    fn min_lr_and_eps_stop_reductions() {
        let config = PlateauConfig {
            patience: 0,
            factor: 0.5,
            min_lr: 0.3,
            ..PlateauConfig::default()
        };
        let mut p = ReduceLrOnPlateau::new(1.0, config).unwrap();
        let lrs: Vec<f64> = [1.0, 1.0, 1.0, 1.0]
            .iter()
            .map(|&m| {
                p.step(m);
                p.lr()
            })
            .collect();
        // better (first), bad -> 0.5, bad -> max(0.25, 0.3) = 0.3, bad -> 0.3 (no change)
        assert_eq!(lrs, vec![1.0, 0.5, 0.3, 0.3]);
    }

    #[test]
    fn max_mode_abs_threshold() {
        let config = PlateauConfig {
            mode: PlateauMode::Max,
            threshold_mode: ThresholdMode::Abs,
            threshold: 0.1,
            patience: 1,
            ..PlateauConfig::default()
        };
        let mut p = ReduceLrOnPlateau::new(1.0, config).unwrap();
        // 0.5 best; 0.55 not > 0.6 (bad 1); 0.61 > 0.6 (best); 0.65, 0.7 bad -> reduce on the 2nd
        let lrs: Vec<f64> = [0.5, 0.55, 0.61, 0.65, 0.7]
            .iter()
            .map(|&m| {
                p.step(m);
                p.lr()
            })
            .collect();
        assert_eq!(lrs, vec![1.0, 1.0, 1.0, 1.0, 0.1]);
        assert_eq!(p.best(), Some(0.61));
    }

    #[test]
    fn nan_is_a_bad_observation() {
        let config = PlateauConfig {
            patience: 1,
            ..PlateauConfig::default()
        };
        let mut p = ReduceLrOnPlateau::new(1.0, config).unwrap();
        p.step(f64::NAN);
        p.step(f64::NAN);
        assert_close(p.lr(), 0.1, 1e-12, 0.0, "lr");
        assert_eq!(p.best(), None);
    }

    #[test]
    fn state_round_trips_through_json_even_with_infinite_best() {
        let mut p = ReduceLrOnPlateau::new(0.1, u1_config()).unwrap();
        for m in &U1_METRICS[..7] {
            p.step(*m);
        }
        let json = serde_json::to_string(&p).unwrap();
        let mut q: ReduceLrOnPlateau = serde_json::from_str(&json).unwrap();
        assert_eq!(p, q);
        for m in &U1_METRICS[7..] {
            p.step(*m);
            q.step(*m);
        }
        assert_eq!(p, q);
        q.step(f64::NEG_INFINITY);
        let back: ReduceLrOnPlateau = serde_json::from_str(&serde_json::to_string(&q).unwrap()).unwrap();
        assert_eq!(back.best(), Some(f64::NEG_INFINITY));
        let fresh = ReduceLrOnPlateau::new(0.1, PlateauConfig::default()).unwrap();
        let back: ReduceLrOnPlateau = serde_json::from_str(&serde_json::to_string(&fresh).unwrap()).unwrap();
        assert_eq!(back, fresh);
    }

    #[test]
    fn config_is_validated() {
        let bad = PlateauConfig {
            factor: 1.0,
            ..PlateauConfig::default()
        };
        let e = ReduceLrOnPlateau::new(0.1, bad).unwrap_err();
        assert!(matches!(e, ScheduleError::Config { name: "factor", .. }), "{e}");
        assert!(ReduceLrOnPlateau::new(-0.1, PlateauConfig::default()).is_err());
    }
}
