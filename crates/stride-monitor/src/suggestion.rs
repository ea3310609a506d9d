//! [`Suggestion`]s: what to do about a verdict, with numbers (the "what to do" column of docs/monitor.md#reason-codes).

use crate::numfmt::{num, round_sig};
use serde::{Deserialize, Serialize};

/// The kind of action a suggestion asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Keep the rate (possibly: watch).
    Keep,
    /// Raise the rate to `new_lr`.
    Raise,
    /// Lower the rate to `new_lr` and continue from the current weights.
    Lower,
    /// Decay the rate to `new_lr` (plateau).
    Decay,
    /// Restore a checkpoint (`rollback_to`, or the initial weights when `None`) and use `new_lr`.
    Rollback,
    /// Add or lengthen a warmup.
    Warmup,
    /// Enable gradient clipping.
    Clip,
    /// Stop training (converged, or nothing left to decay).
    Stop,
}

/// A concrete suggestion: an action, the numbers, and one sentence saying why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suggestion {
    /// What to do.
    pub action: Action,
    /// The rate to use next (`None` when the rate is not the point).
    #[serde(default, with = "crate::exact")]
    pub new_lr: Option<f64>,
    /// Fallback rate ("if it diverges again" / "if the raise turns unstable").
    #[serde(default, with = "crate::exact")]
    pub alt_lr: Option<f64>,
    /// `new_lr / lr`.
    #[serde(default, with = "crate::exact")]
    pub factor: Option<f64>,
    /// Step or epoch of the checkpoint to restore.
    pub rollback_to: Option<u64>,
    /// Further advice: warmup, clipping, numerics checks, schedules.
    pub extras: Vec<String>,
    /// One human-readable sentence.
    pub text: String,
}

impl Suggestion {
    /// Keep the rate, with a reason.
    pub fn keep(text: impl Into<String>) -> Self {
        Suggestion {
            action: Action::Keep,
            new_lr: None,
            alt_lr: None,
            factor: None,
            rollback_to: None,
            extras: Vec::new(),
            text: text.into(),
        }
    }
}

/// Known caps on how far a rate may be raised; the smallest wins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RaiseCaps {
    /// Smoothed update/weight ratio `R~`: cap `lr * 1e-3 / R~`.
    pub update_ratio: Option<f64>,
    /// Sharpness `lambda`: cap `theta / (2 lambda)`.
    pub sharpness: Option<f64>,
    /// Stability threshold theta (2 for SGD).
    pub theta: f64,
    /// LR-finder suggestion.
    pub lr_finder: Option<f64>,
    /// Upper bound of the sensible range.
    pub lr_hi: Option<f64>,
}

/// The sentence for a rate above the stability limit `theta / lambda` (docs/monitor.md#the-stability-warning), e.g.
/// "lr 1.0 is 3.0x the stability limit 2/lambda = 0.33 for this model (lambda = 6.0): expect the
/// loss to oscillate or diverge; use at most 0.17".
pub fn stability_warning(lr: f64, lambda: f64, theta: f64) -> String {
    let limit = theta / lambda;
    let theta = if theta.fract() == 0.0 {
        format!("{theta:.0}")
    } else {
        num(theta)
    };
    format!(
        "lr {} is {:.1}x the stability limit {theta}/lambda = {} for this model (lambda = {}): expect the loss \
         to oscillate or diverge; use at most {}",
        num(lr),
        lr / limit,
        num(sig2(limit)),
        num(sig2(lambda)),
        num(sig2(limit / 2.0))
    )
}

/// Two significant digits: a limit is an estimate, not a constant.
fn sig2(x: f64) -> f64 {
    if x.is_finite() && x != 0.0 {
        let p = 10f64.powi(1 - x.abs().log10().floor() as i32);
        (x * p).round() / p
    } else {
        x
    }
}

/// `lr * multiplier`, capped by every known cap (never below `lr`: a cap under the current rate
/// means "do not raise").
pub fn raise_with_caps(lr: f64, multiplier: f64, caps: &RaiseCaps) -> f64 {
    let mut new = lr * multiplier;
    if let Some(r) = caps.update_ratio.filter(|r| r.is_finite() && *r > 0.0) {
        new = new.min(lr * 1e-3 / r);
    }
    if let Some(s) = caps.sharpness.filter(|s| s.is_finite() && *s > 0.0) {
        new = new.min(caps.theta / (2.0 * s));
    }
    for cap in [caps.lr_finder, caps.lr_hi].into_iter().flatten() {
        new = new.min(cap);
    }
    round_sig(new.max(lr))
}
