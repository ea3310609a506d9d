//! The numbers behind a verdict. Fields a stream does not compute stay `None`.

use serde::{Deserialize, Serialize};

/// Evidence of a [`Diagnosis`](crate::Diagnosis). Rates are relative (per step or per epoch, in
/// log space), ratios are plain numbers, `None` means "not computed by this stream / not yet".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Evidence {
    /// Number of finite observations in the current segment.
    pub n: u64,
    /// Last finite loss.
    #[serde(with = "crate::exact")]
    pub last: Option<f64>,
    /// Bias-corrected EMA of the loss (STEP).
    #[serde(with = "crate::exact")]
    pub ema: Option<f64>,
    /// Best loss: minimum raw loss (EPOCH) or minimum EMA (STEP).
    #[serde(with = "crate::exact")]
    pub best: Option<f64>,
    /// Current loss (EPOCH raw, STEP EMA) divided by `best`.
    #[serde(with = "crate::exact")]
    pub ratio_to_best: Option<f64>,
    /// Relative decrease per step (STEP, block OLS) or per epoch (EPOCH, median of the last 3).
    #[serde(with = "crate::exact")]
    pub k: Option<f64>,
    /// Lower end of the 95 % CI of `k` (STEP).
    #[serde(with = "crate::exact")]
    pub k_lo: Option<f64>,
    /// Upper end of the 95 % CI of `k` (STEP).
    #[serde(with = "crate::exact")]
    pub k_hi: Option<f64>,
    /// Running maximum of `k` (STEP) or of the relative improvement (EPOCH `r_peak`).
    #[serde(with = "crate::exact")]
    pub k_peak: Option<f64>,
    /// History ratio: recent rate over peak rate.
    #[serde(with = "crate::exact")]
    pub rho: Option<f64>,
    /// Halving time `ln 2 / k` in steps or epochs (infinite when not decreasing).
    #[serde(with = "crate::exact")]
    pub t_half: Option<f64>,
    /// Robust relative noise per step of the window (STEP).
    #[serde(with = "crate::exact")]
    pub cv: Option<f64>,
    /// The same noise statistic on the first 40 steps (STEP).
    #[serde(with = "crate::exact")]
    pub cv_base: Option<f64>,
    /// Lag-1 autocorrelation of the detrended log-loss residuals (STEP).
    #[serde(with = "crate::exact")]
    pub ac1: Option<f64>,
    /// Mann-Kendall Z (STEP: on the 10 block means; EPOCH: on the window).
    #[serde(with = "crate::exact")]
    pub mk_z: Option<f64>,
    /// Progress since start (fraction of the initial loss).
    #[serde(rename = "D")]
    #[serde(with = "crate::exact")]
    pub d: Option<f64>,
    /// Whether `D` counts as real progress.
    pub progressed: Option<bool>,
    /// PyTorch-style bad-epoch counter (EPOCH, validation).
    pub bad_count: Option<u32>,
    /// Spike episodes started inside the window (STEP, loss and grad norm).
    pub spikes_in_window: Option<u32>,
    /// Whether the stream has seen a non-finite value (it stays latched until `reset`).
    pub nonfinite_reached: bool,
    /// Relative improvements `(x[i-1] - x[i]) / x[i-1]` of the last epochs (EPOCH, oldest first).
    #[serde(with = "crate::exact")]
    pub rel_improvements: Vec<f64>,
    /// Median of the last three relative improvements (EPOCH).
    #[serde(with = "crate::exact")]
    pub r_recent: Option<f64>,
    /// Number of rises in the epoch window (EPOCH).
    pub rises: Option<u32>,
    /// Window length `W` in observations.
    pub window: Option<u64>,
    /// Robust recent loss level (median of the last values).
    #[serde(with = "crate::exact")]
    pub level: Option<f64>,
    /// Robust initial loss level (median of the first values).
    #[serde(with = "crate::exact")]
    pub level_init: Option<f64>,
    /// Loss of the initial weights: the smaller of `level_init` and the first value (a blow-up
    /// in the first steps inflates `level_init`; REAL_RUNS.md).
    #[serde(with = "crate::exact")]
    pub level_start: Option<f64>,
    /// Stability margin `s = lr * sharpness / theta` when a sharpness is known.
    #[serde(with = "crate::exact")]
    pub margin: Option<f64>,
    /// EMA of the update/weight ratio when supplied.
    #[serde(with = "crate::exact")]
    pub update_ratio: Option<f64>,
    /// Learning rate at the observation.
    #[serde(with = "crate::exact")]
    pub lr: Option<f64>,
}
