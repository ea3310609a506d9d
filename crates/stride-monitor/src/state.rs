//! The verdict vocabulary: [`State`], [`Reason`] and the [`Stream`] a verdict comes from.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Health state of a run, ordered by severity (`Insufficient` least, `Exploded` most; docs/monitor.md#states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Not enough observations yet (never an alarm).
    Insufficient,
    /// Decreasing with diminishing returns: keep the rate.
    Healthy,
    /// Stable but tiny progress that has never been much faster: the rate is too small.
    Slow,
    /// Stalled after real progress: time to decay.
    Plateau,
    /// Bounces, noise, frequent spikes or period-2 flip-flop without net progress: somewhat too large.
    Oscillating,
    /// Rising persistently, exploding or dead after a blow-up: much too large.
    Diverging,
    /// NaN/Inf without a preceding divergence: too large and/or a numerics bug.
    Exploded,
}

impl State {
    /// One-letter code used in trajectories (`.` H S P O D X).
    pub fn letter(self) -> char {
        match self {
            State::Insufficient => '.',
            State::Healthy => 'H',
            State::Slow => 'S',
            State::Plateau => 'P',
            State::Oscillating => 'O',
            State::Diverging => 'D',
            State::Exploded => 'X',
        }
    }

    /// Whether the state is an alarm that the trainer should act on without hysteresis.
    pub fn is_terminal(self) -> bool {
        matches!(self, State::Diverging | State::Exploded)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            State::Insufficient => "not enough data",
            State::Healthy => "healthy",
            State::Slow => "slow",
            State::Plateau => "plateau",
            State::Oscillating => "oscillating",
            State::Diverging => "diverging",
            State::Exploded => "exploded",
        };
        f.write_str(s)
    }
}

/// Which observation stream produced a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Per-step minibatch losses.
    Step,
    /// Per-epoch mean training losses.
    Epoch,
    /// Per-epoch validation losses.
    Validation,
}

/// Why a verdict was given: the rule that fired (each code is explained in docs/monitor.md#reason-codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reason {
    /// Too few observations for any rule.
    InsufficientData,
    /// Loss (EPOCH raw, STEP smoothed) at least 4x its best.
    #[serde(rename = "hard_4x")]
    Hard4x,
    /// Two consecutive epoch rises of more than 5 %, at least 1.2x the best.
    TwoRises,
    /// A single epoch rise of more than 25 % (provisional).
    Jump,
    /// Mann-Kendall up-trend over the epoch window, at least 1.2x the best.
    MkUp,
    /// At least two epoch rises in the window without a significant net decrease.
    Bounce,
    /// Steady but slow decrease that has never been much faster.
    SlowRate,
    /// Three epochs without a 1 % improvement after at least 5 % progress.
    NoImprovement,
    /// Flat without ever having made progress.
    Stalled,
    /// NaN/Inf at the end of a visible divergence.
    NonfiniteAfterDivergence,
    /// NaN/Inf out of a healthy or flat run (or at the first observation).
    NonfiniteSudden,
    /// Five consecutive step losses at least 2x the smoothed loss.
    PersistentOutliers,
    /// A spike episode open for 10 steps at 1.5x its pre-spike level or more.
    SpikeNotRecovering,
    /// A spike episode open for 10 steps, below 1.5x its pre-spike level.
    SpikePartial,
    /// A spike episode opened less than 10 steps ago.
    SpikeActive,
    /// Inside the declared (or detected) warmup.
    Warmup,
    /// Smoothed loss at least 1.5x its post-warmup minimum with a Mann-Kendall up-trend.
    EmaRise,
    /// At least three spike episodes inside the window.
    SpikeRate,
    /// Significant rise of at least 1.1x (early warning).
    Rising,
    /// Period-2 flip-flop (lag-1 autocorrelation of residuals at most -0.5).
    Period2,
    /// Flat and noisy.
    NoisyFlat,
    /// Flat after real progress.
    FlatAfterProgress,
    /// The slope's confidence interval straddles zero; no alarm without evidence.
    Inconclusive,
    /// Clearly decreasing (STEP) or still improving (EPOCH).
    Improving,
    /// Validation loss: three epochs without a 1 % improvement after at least 5 % progress.
    ValNoImprovement,
    /// Validation loss rising while the training loss falls.
    Overfit,
    /// Gradient norm growing while the loss is not decreasing.
    GradnormRising,
    /// Update/weight ratio below 1e-4 over the whole window.
    TinyUpdates,
    /// After hundreds of steps the loss is still within a small fraction of its start
    /// (or near chance level).
    LittleProgress,
    /// The loss blew up, then sat at or above its initial value (dead ReLU network).
    DeadNetwork,
    /// After real training time the loss is above its initial value, at a finite value.
    NoNetProgressHigh,
    /// Whole run: the loss rose significantly after its minimum (by half its progress, or by a
    /// tenth with a rising trend).
    RisingAfterMinimum,
    /// Whole run: the loss settled after the schedule decayed the rate (or after a rate drop).
    Converged,
    /// Minibatch losses flat after progress in a run whose epochs judge plateaus
    /// ([`MonitorConfig::epochs_judge_plateau`](crate::MonitorConfig::epochs_judge_plateau)).
    DiminishingReturns,
}

impl Reason {
    /// The reason code as written in the spec (`hard_4x`, `two_rises`, ...).
    pub fn code(self) -> &'static str {
        match self {
            Reason::InsufficientData => "insufficient_data",
            Reason::Hard4x => "hard_4x",
            Reason::TwoRises => "two_rises",
            Reason::Jump => "jump",
            Reason::MkUp => "mk_up",
            Reason::Bounce => "bounce",
            Reason::SlowRate => "slow_rate",
            Reason::NoImprovement => "no_improvement",
            Reason::Stalled => "stalled",
            Reason::NonfiniteAfterDivergence => "nonfinite_after_divergence",
            Reason::NonfiniteSudden => "nonfinite_sudden",
            Reason::PersistentOutliers => "persistent_outliers",
            Reason::SpikeNotRecovering => "spike_not_recovering",
            Reason::SpikePartial => "spike_partial",
            Reason::SpikeActive => "spike_active",
            Reason::Warmup => "warmup",
            Reason::EmaRise => "ema_rise",
            Reason::SpikeRate => "spike_rate",
            Reason::Rising => "rising",
            Reason::Period2 => "period2",
            Reason::NoisyFlat => "noisy_flat",
            Reason::FlatAfterProgress => "flat_after_progress",
            Reason::Inconclusive => "inconclusive",
            Reason::Improving => "improving",
            Reason::ValNoImprovement => "val_no_improvement",
            Reason::Overfit => "overfit",
            Reason::GradnormRising => "gradnorm_rising",
            Reason::TinyUpdates => "tiny_updates",
            Reason::LittleProgress => "little_progress",
            Reason::DeadNetwork => "dead_network",
            Reason::NoNetProgressHigh => "no_net_progress_high",
            Reason::RisingAfterMinimum => "rising_after_minimum",
            Reason::Converged => "converged",
            Reason::DiminishingReturns => "diminishing_returns",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}
