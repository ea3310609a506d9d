//! [`MonitorConfig`]: every threshold of the rules as a field (docs/monitor.md#changing-the-thresholds-library).

use crate::error::MonitorError;
use serde::{Deserialize, Serialize};

/// Thresholds and options of the [`Monitor`](crate::Monitor). `Default` gives the values
/// docs/monitor.md quotes, which the tests are written against; validate with [`MonitorConfig::validate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MonitorConfig {
    // ---- shared ----
    /// Hard divergence ratio (EPOCH raw vs best, STEP EMA vs min EMA). Default 4.0 (fastai `stop_div`).
    pub hard_ratio: f64,
    /// Plateau after progress needs `D >= progress_min`. Default 0.05.
    pub progress_min: f64,
    /// History ratio below which a rate "has been much faster". Default 0.3.
    pub rho_min: f64,
    /// SLOW when the halving time is at least this many times the elapsed time. Default 10.
    pub halving_factor: f64,
    // ---- EPOCH ----
    /// Relative epoch rise that counts as a rise. Default 0.05.
    pub epoch_rise: f64,
    /// Relative epoch rise that counts as a jump. Default 0.25.
    pub epoch_jump: f64,
    /// Divergence ratio to the best epoch with two rises. Default 1.2.
    pub epoch_div_ratio: f64,
    /// Epoch window length. Default 6.
    pub epoch_window: usize,
    /// Relative improvement threshold of the plateau counter (PyTorch `threshold`, rel). Default 0.01.
    pub plateau_threshold: f64,
    /// Bad epochs for PLATEAU (= PyTorch `patience + 1`). Default 3.
    pub plateau_patience: u32,
    /// Mann-Kendall Z for "up". Default 2.326 (one-sided alpha 0.01).
    pub mk_up_z: f64,
    /// Mann-Kendall Z above which the epoch window is "not significantly decreasing". Default -1.645.
    pub mk_not_decreasing_z: f64,
    /// LR decay factor for EPOCH/validation plateaus. Default 0.1 (PyTorch/Keras).
    pub epoch_plateau_factor: f64,
    /// Epochs after an LR change during which PLATEAU/SLOW suggestions are withheld. Default 2.
    pub cooldown_epochs: u64,
    // ---- STEP ----
    /// Observations before trend states. Default 20.
    pub step_min_points: u64,
    /// EMA factor (bias-corrected). Default 0.98.
    pub ema_beta: f64,
    /// Smoothed-rise divergence ratio (with a Mann-Kendall up-trend). Default 1.5.
    pub step_div_ratio: f64,
    /// Spike threshold in robust sigmas. Default 6 (OLMo-core).
    pub spike_z: f64,
    /// Spike relevance floor relative to the level. Default 1.3.
    pub spike_rel: f64,
    /// Spike episode closes at `<= spike_recovery * pre_level`. Default 1.1.
    pub spike_recovery: f64,
    /// Steps (counting the spike) before an open episode is judged. Default 10.
    pub spike_horizon: u64,
    /// An open episode whose median is at least this times the pre-spike level diverges. Default 1.5.
    pub spike_nonrecovery_ratio: f64,
    /// Consecutive outliers for `persistent_outliers`. Default 5 (LLM Foundry patience 4 + 1).
    pub outlier_run: usize,
    /// Outlier multiplier of the EMA. Default 2.0.
    pub outlier_ratio: f64,
    /// Spike episodes in the window for `spike_rate`. Default 3.
    pub spike_rate_episodes: u32,
    /// Maximum window length. Default 200.
    pub window_max: u64,
    /// Minimum window length. Default 40.
    pub window_min: u64,
    /// Noise level for `noisy_flat`. Default 0.15.
    pub cv_osc: f64,
    /// Noise growth over the start for `noisy_flat` after progress. Default 2.0.
    pub cv_growth: f64,
    /// Period-2: lag-1 autocorrelation at most this. Default -0.5.
    pub period2_ac1: f64,
    /// Period-2: noise at least this. Default 0.05.
    pub period2_cv: f64,
    /// Steps after which absence of a significant decrease counts as flat. Default 100.
    pub n_long: u64,
    /// Early-warning rise of the EMA over its minimum. Default 1.1.
    pub warn_rise: f64,
    /// Length of the start segment for `cv_base`. Default 40.
    pub cv_base_len: usize,
    /// LR decay factor for STEP plateaus. Default 0.5.
    pub step_plateau_factor: f64,
    /// Steps after an LR change during which PLATEAU/SLOW suggestions are withheld. Default 40.
    pub cooldown_steps: u64,
    /// Run the STEP window rules every this many steps and repeat the last verdict in
    /// between (default 1, the reference semantics). The incremental parts (EMA, the
    /// 4x hard rule, spikes, non-finite values, rate changes) still see every step and
    /// force an evaluation. A trainer uses 8 to keep the monitor under 1% of a step.
    pub eval_every: u64,
    // ---- real-run refinements ----
    /// `noisy_flat` after progress needs a signature noise lacks: residual lag-1
    /// autocorrelation at most this ... Default -0.25.
    pub noise_signature_ac1: f64,
    /// ... or block means dispersed at least this many times more (in variance) than the
    /// within-block noise predicts. Default 4.0.
    pub noise_dispersion_ratio: f64,
    /// Steps after which the progress-so-far criterion applies. Default 200.
    pub slow_progress_min_steps: u64,
    /// SLOW (`little_progress`) when `D` is below this after `slow_progress_min_steps`. Default 0.2.
    pub slow_progress_frac: f64,
    /// REAL_RUNS.md: SLOW (`little_progress`) also when `D` is below this after
    /// `slow_progress_min_steps` steps while the rate is still near its peak ... Default 0.5.
    pub linear_progress_frac: f64,
    /// ... i.e. `rho = k / k_peak` at least this (no diminishing returns yet). Default 0.2.
    pub linear_rho_min: f64,
    /// "near chance level" means within this fraction of `ln C`. Default 0.1.
    pub chance_band: f64,
    /// Steps after which a loss at or above its start counts as no net progress. Default 100.
    pub net_progress_min_steps: u64,
    /// A blow-up is a smoothed loss at least this times the initial level. Default 1.5.
    pub blowup_ratio: f64,
    // ---- context ----
    /// Number of classes of a classification loss (for the chance level `ln C`). Default `None`.
    pub num_classes: Option<u32>,
    /// Upper bound of the sensible LR range used as a cap (teaching value 0.01). Default `None`.
    pub lr_hi: Option<f64>,
    /// LR-finder suggestion used as a cap. Default `None`.
    pub lr_finder: Option<f64>,
    /// Stability threshold theta of `lr * sharpness`: 2 (SGD), `2(1 + beta)` (heavy ball),
    /// 38 (Adam with preconditioned sharpness). Default 2.0.
    pub stability_threshold: f64,
    /// Stability margin `lr * sharpness / theta` above which the rate is called unstable (an
    /// `UnstableRate` event and a warning). Default 1.1.
    pub unstable_margin: f64,
    /// Adam's beta2, if Adam is used (warmup length `2 / (1 - beta2)`). Default `None` (SGD).
    pub adam_beta2: Option<f64>,
    /// Whether gradient clipping is already on (suppresses the "add clipping" extra). Default false.
    pub grad_clipping: bool,
    /// Whether a decaying schedule is active (changes PLATEAU/HEALTHY advice). Default false.
    pub schedule_active: bool,
    /// Loss floor for losses that can be `<= 0`; losses are shifted to `L - floor + 1e-8`. Default `None`.
    pub loss_floor: Option<f64>,
    /// What the rate in the records is to the optimizer: the step size itself, or a multiplier
    /// on a step size the optimizer estimates (suggestions are then in its own terms).
    /// Default [`StepSize::Rate`].
    pub step_size: StepSize,
    /// Leave PLATEAU to the epoch and validation streams (PyTorch's and Keras'
    /// `ReduceLROnPlateau` judge per epoch): in a run of several epochs the minibatch losses'
    /// flattening after the first fast drop is diminishing returns, not yet a stall (real runs:
    /// Fashion-MNIST with Adam 1e-3 or Prodigy was "plateau: decay" at steps 117-748 of a
    /// 1,266-step run whose epoch losses fell 0.54, 0.36, 0.33). Default false.
    pub epochs_judge_plateau: bool,
}

/// How an optimizer's rate sets its step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepSize {
    /// The rate is the step size (SGD, Adam and the like).
    #[default]
    Rate,
    /// Prodigy: the rate multiplies the estimated step `d`; the reference tunes `d_coef`
    /// and `safeguard_warmup` instead and leaves the rate at 1.
    Prodigy,
    /// D-Adaptation: the rate multiplies the estimated step `d`; `growth_rate` caps its growth.
    DAdaptation,
}

impl StepSize {
    /// The optimizer's name for sentences, `None` for a plain rate.
    pub fn estimator(self) -> Option<&'static str> {
        match self {
            StepSize::Rate => None,
            StepSize::Prodigy => Some("Prodigy"),
            StepSize::DAdaptation => Some("D-Adaptation"),
        }
    }
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            hard_ratio: 4.0,
            progress_min: 0.05,
            rho_min: 0.3,
            halving_factor: 10.0,
            epoch_rise: 0.05,
            epoch_jump: 0.25,
            epoch_div_ratio: 1.2,
            epoch_window: 6,
            plateau_threshold: 0.01,
            plateau_patience: 3,
            mk_up_z: 2.326,
            mk_not_decreasing_z: -1.645,
            epoch_plateau_factor: 0.1,
            cooldown_epochs: 2,
            step_min_points: 20,
            ema_beta: 0.98,
            step_div_ratio: 1.5,
            spike_z: 6.0,
            spike_rel: 1.3,
            spike_recovery: 1.1,
            spike_horizon: 10,
            spike_nonrecovery_ratio: 1.5,
            outlier_run: 5,
            outlier_ratio: 2.0,
            spike_rate_episodes: 3,
            window_max: 200,
            window_min: 40,
            cv_osc: 0.15,
            cv_growth: 2.0,
            period2_ac1: -0.5,
            period2_cv: 0.05,
            n_long: 100,
            warn_rise: 1.1,
            cv_base_len: 40,
            step_plateau_factor: 0.5,
            cooldown_steps: 40,
            eval_every: 1,
            noise_signature_ac1: -0.25,
            noise_dispersion_ratio: 4.0,
            slow_progress_min_steps: 200,
            slow_progress_frac: 0.2,
            linear_progress_frac: 0.5,
            linear_rho_min: 0.2,
            chance_band: 0.1,
            net_progress_min_steps: 100,
            blowup_ratio: 1.5,
            num_classes: None,
            lr_hi: None,
            lr_finder: None,
            stability_threshold: 2.0,
            unstable_margin: 1.1,
            adam_beta2: None,
            grad_clipping: false,
            schedule_active: false,
            loss_floor: None,
            step_size: StepSize::Rate,
            epochs_judge_plateau: false,
        }
    }
}

fn bad(field: &'static str, value: impl ToString, expected: &'static str) -> MonitorError {
    MonitorError::InvalidConfig {
        field,
        value: value.to_string(),
        expected,
    }
}

fn positive(field: &'static str, v: f64) -> Result<(), MonitorError> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(bad(field, v, "a finite number > 0"))
    }
}

fn above_one(field: &'static str, v: f64) -> Result<(), MonitorError> {
    if v.is_finite() && v > 1.0 {
        Ok(())
    } else {
        Err(bad(field, v, "a finite number > 1"))
    }
}

fn fraction(field: &'static str, v: f64) -> Result<(), MonitorError> {
    if v.is_finite() && v > 0.0 && v < 1.0 {
        Ok(())
    } else {
        Err(bad(field, v, "a number in (0, 1)"))
    }
}

impl MonitorConfig {
    /// The natural log of the number of classes (loss of a uniform guess), if known.
    pub fn chance_level(&self) -> Option<f64> {
        self.num_classes.filter(|c| *c >= 2).map(|c| f64::from(c).ln())
    }

    /// Checks every field; the error names the field and the value.
    pub fn validate(&self) -> Result<(), MonitorError> {
        for (f, v) in [
            ("hard_ratio", self.hard_ratio),
            ("epoch_div_ratio", self.epoch_div_ratio),
            ("step_div_ratio", self.step_div_ratio),
            ("spike_rel", self.spike_rel),
            ("spike_recovery", self.spike_recovery),
            ("spike_nonrecovery_ratio", self.spike_nonrecovery_ratio),
            ("outlier_ratio", self.outlier_ratio),
            ("halving_factor", self.halving_factor),
            ("cv_growth", self.cv_growth),
            ("warn_rise", self.warn_rise),
            ("blowup_ratio", self.blowup_ratio),
            ("noise_dispersion_ratio", self.noise_dispersion_ratio),
        ] {
            above_one(f, v)?;
        }
        for (f, v) in [
            ("progress_min", self.progress_min),
            ("rho_min", self.rho_min),
            ("epoch_rise", self.epoch_rise),
            ("plateau_threshold", self.plateau_threshold),
            ("ema_beta", self.ema_beta),
            ("epoch_plateau_factor", self.epoch_plateau_factor),
            ("step_plateau_factor", self.step_plateau_factor),
            ("slow_progress_frac", self.slow_progress_frac),
            ("linear_progress_frac", self.linear_progress_frac),
            ("linear_rho_min", self.linear_rho_min),
            ("chance_band", self.chance_band),
        ] {
            fraction(f, v)?;
        }
        for (f, v) in [
            ("epoch_jump", self.epoch_jump),
            ("spike_z", self.spike_z),
            ("mk_up_z", self.mk_up_z),
            ("cv_osc", self.cv_osc),
            ("period2_cv", self.period2_cv),
            ("stability_threshold", self.stability_threshold),
            ("unstable_margin", self.unstable_margin),
        ] {
            positive(f, v)?;
        }
        for (f, v) in [
            ("period2_ac1", self.period2_ac1),
            ("noise_signature_ac1", self.noise_signature_ac1),
        ] {
            if !(v.is_finite() && (-1.0..=0.0).contains(&v)) {
                return Err(bad(f, v, "a number in [-1, 0]"));
            }
        }
        if !(self.mk_not_decreasing_z.is_finite() && self.mk_not_decreasing_z < 0.0) {
            return Err(bad(
                "mk_not_decreasing_z",
                self.mk_not_decreasing_z,
                "a finite number < 0",
            ));
        }
        if self.epoch_window < 3 {
            return Err(bad("epoch_window", self.epoch_window, ">= 3"));
        }
        if self.plateau_patience == 0 {
            return Err(bad("plateau_patience", self.plateau_patience, ">= 1"));
        }
        if self.eval_every == 0 {
            return Err(bad("eval_every", self.eval_every, "at least 1"));
        }
        if self.step_min_points < 20 {
            return Err(bad(
                "step_min_points",
                self.step_min_points,
                ">= 20 (10 blocks of >= 2 values)",
            ));
        }
        if !(20..=200).contains(&self.window_min) || self.window_min > self.window_max {
            return Err(bad("window_min", self.window_min, "in 20..=200 and <= window_max"));
        }
        if self.window_max > 200 {
            return Err(bad("window_max", self.window_max, "<= 200 (the ring buffer size)"));
        }
        if !(20..=200).contains(&self.cv_base_len) {
            return Err(bad("cv_base_len", self.cv_base_len, "in 20..=200"));
        }
        if self.outlier_run == 0 || self.outlier_run > 20 {
            return Err(bad("outlier_run", self.outlier_run, "in 1..=20"));
        }
        if self.spike_horizon == 0 || self.spike_rate_episodes == 0 {
            return Err(bad("spike_horizon/spike_rate_episodes", 0, ">= 1"));
        }
        if let Some(c) = self.num_classes {
            if c < 2 {
                return Err(bad("num_classes", c, ">= 2"));
            }
        }
        for (f, v) in [("lr_hi", self.lr_hi), ("lr_finder", self.lr_finder)] {
            if let Some(v) = v {
                positive(f, v)?;
            }
        }
        if let Some(b2) = self.adam_beta2 {
            fraction("adam_beta2", b2)?;
        }
        if let Some(fl) = self.loss_floor {
            if !fl.is_finite() {
                return Err(bad("loss_floor", fl, "a finite number"));
            }
        }
        Ok(())
    }
}
