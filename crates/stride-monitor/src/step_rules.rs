//! The STEP classifier (the step rows of docs/monitor.md#reason-codes), as a pure
//! function of the facts the [`StepStream`](crate::step_stream) keeps.

use crate::config::MonitorConfig;
use crate::state::{Reason, State};
use crate::window::WindowStats;

/// An open spike episode, as the rules see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct OpenEpisode {
    /// Observations since the spike, counting it.
    pub age: u64,
    /// Median of the values since the spike.
    pub median_since: f64,
    /// Median of the last 3 values (where the loss is now).
    pub median_recent: f64,
    /// Highest value since the spike.
    pub peak_since: f64,
    /// Level before the spike.
    pub pre_level: f64,
}

/// Everything the STEP rules read at observation `n` (finite values only).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StepFacts {
    pub n: u64,
    /// `S_n`, the bias-corrected EMA.
    pub ema: f64,
    /// `min_t S_t` over the segment.
    pub min_ema: f64,
    /// `min_{t > grace} S_t` (`None` while every step was warmup).
    pub min_ema_post: Option<f64>,
    /// `max_t S_t` over the segment.
    pub max_ema: f64,
    /// Largest finite raw loss over the segment.
    pub max_raw: f64,
    /// `S_{n - outlier_run}` when defined.
    pub ema_lagged: Option<f64>,
    /// The last `outlier_run` raw values.
    pub last_raw: Vec<f64>,
    pub open: Option<OpenEpisode>,
    /// This step is warmup (declared, or the rate rose).
    pub warm: bool,
    pub stats: Option<WindowStats>,
    /// Spike episodes (loss and grad norm) started inside the window.
    pub episodes: u32,
    pub cv_base: f64,
    pub level_base: f64,
    /// Running max of `k` (including this evaluation), >= 0.
    pub k_peak: f64,
    /// `m_D` and the medians of the first / last `m_D` values.
    pub m_d: usize,
    pub level_init: f64,
    /// The loss of the initial weights: `min(level_init, x_1)` (a blow-up in the first `m_D`
    /// steps inflates the median; the first value is the initial weights' loss).
    pub level_start: f64,
    pub level_recent: f64,
    /// Mann-Kendall Z of the grad-norm block medians, when grad norms are supplied.
    pub grad_mk: Option<f64>,
    /// Update ratio below 1e-4 over the whole window.
    pub tiny_updates: bool,
    /// `ln C` when the number of classes is known.
    pub chance: Option<f64>,
}

/// Derived quantities of rule 10 (reported as evidence).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Derived {
    pub rho: f64,
    pub t_half: f64,
    pub d: f64,
    pub progressed: bool,
    pub flat_sig: bool,
    /// The loss blew up and is not below its start (never suggest a raise).
    pub no_raise: bool,
    /// The loss blew up at some point of this segment.
    pub blew_up: bool,
}

impl StepFacts {
    fn near_chance(&self, band: f64) -> bool {
        self.chance.is_some_and(|c| (self.level_recent - c).abs() <= band * c)
    }
}

/// Classifies observation `n` (rules 3-15). Rule 1 (non-finite) and 2 live in the stream.
pub(crate) fn classify(f: &StepFacts, cfg: &MonitorConfig) -> (State, Reason, Derived) {
    let mut dv = Derived {
        rho: 1.0,
        t_half: f64::INFINITY,
        ..Default::default()
    };
    // 3. hard divergence, also during warmup.
    if f.ema >= cfg.hard_ratio * f.min_ema {
        return (State::Diverging, Reason::Hard4x, dv);
    }
    // 4.
    if f.n < cfg.step_min_points {
        return (State::Insufficient, Reason::InsufficientData, dv);
    }
    // 5a. persistent outliers.
    if let Some(lag) = f.ema_lagged {
        // ... that are not coming back down (`last_raw` is newest first): a spike falling back to its level (the last
        // value under three quarters of the run's peak) is a spike that recovers, not a divergence.
        let peak = f.last_raw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let recovering = f.last_raw.first().is_some_and(|x| *x < 0.75 * peak);
        if f.last_raw.len() == cfg.outlier_run
            && f.last_raw.iter().all(|x| *x >= cfg.outlier_ratio * lag)
            && !recovering
        {
            return (State::Diverging, Reason::PersistentOutliers, dv);
        }
    }
    // 5b. open spike episode.
    let spike = |dv: Derived| {
        f.open.map(|ep| {
            if ep.age >= cfg.spike_horizon {
                // Not recovering: high since the spike, still high now, and not half way back
                // from its peak (a spike falling back to its level is a spike, not a divergence).
                let high = cfg.spike_nonrecovery_ratio * ep.pre_level;
                let returning = ep.median_recent - ep.pre_level < 0.5 * (ep.peak_since - ep.pre_level);
                if ep.median_since >= high && ep.median_recent >= high && !returning {
                    return (State::Diverging, Reason::SpikeNotRecovering, dv);
                }
                return (State::Oscillating, Reason::SpikePartial, dv);
            }
            (State::Oscillating, Reason::SpikeActive, dv)
        })
    };
    // 7. window statistics. (6, warmup, comes after the alarms below: a warmup does not
    // excuse a network that is already dead or blowing up.)
    let Some(s) = f.stats else {
        if let Some(v) = spike(dv) {
            return v;
        }
        let reason = if f.warm { Reason::Warmup } else { Reason::Inconclusive };
        return (State::Healthy, reason, dv);
    };
    let n = f.n as f64;
    let dec_sig = s.dec_sig();
    // 10 (computed early: the real-run rules need D).
    dv.rho = if f.k_peak > 0.0 { s.k / f.k_peak } else { 1.0 };
    dv.t_half = if s.k > 0.0 {
        std::f64::consts::LN_2 / s.k
    } else {
        f64::INFINITY
    };
    dv.d = if f.level_init > 0.0 {
        (f.level_init - f.level_recent) / f.level_init
    } else {
        0.0
    };
    let se_d = 1.2533 * s.cv.max(f.cv_base) * (2.0 / f.m_d as f64).sqrt();
    dv.progressed = dv.d >= cfg.progress_min.max(3.0 * se_d);
    let k_eq = (0.1 * f.k_peak).max(std::f64::consts::LN_2 / (10.0 * n));
    dv.flat_sig = s.k_lo > -k_eq && s.k_hi < k_eq;
    let slow_like = dv.rho >= cfg.rho_min && dv.t_half >= cfg.halving_factor * n;
    // Real runs (REAL_RUNS.md): measured against the initial weights' loss, not a median the
    // blow-up itself inflated.
    let blowup = f.max_ema >= cfg.blowup_ratio * f.level_start;
    // "Not below its start" unless significantly so: the margin grows with the noise (a
    // blown-up run bouncing around its start dips 20-30 % below it by chance).
    let not_below_start = f.level_recent >= f.level_start * (1.0 - (2.0 * se_d).max(0.03));
    dv.no_raise = blowup && not_below_start;
    // A single raw loss past the hard threshold is a blow-up too, even when the EMA smooths it away.
    dv.blew_up = blowup || f.max_raw >= cfg.hard_ratio * f.level_start;
    // No net progress after real training time, at a finite value.
    if f.n >= cfg.net_progress_min_steps && !dec_sig {
        // Real runs: flat at chance level after the smoothed loss moved (rose 10 % above its
        // start, or had been 10 % below where it is now) is a network that died; a rate too
        // small to move the loss is flat at chance without ever having moved.
        let moved = f.max_ema >= 1.1 * f.level_start || f.min_ema <= 0.9 * f.level_recent;
        if (blowup && not_below_start) || ((blowup || moved) && f.near_chance(0.03)) {
            return (State::Diverging, Reason::DeadNetwork, dv);
        }
        if f.level_recent >= f.level_init * (1.0 + (3.0 * se_d).max(0.02)) {
            return (State::Diverging, Reason::NoNetProgressHigh, dv);
        }
    }
    // 5b's divergence verdict keeps its precedence over the smoothed rise.
    if let Some(v) = spike(dv).filter(|v| v.0 == State::Diverging) {
        return v;
    }
    // 8. smoothed rise (inside a warmup, against the minimum so far).
    if let Some(min_post) = f.min_ema_post.or(f.warm.then_some(f.min_ema)) {
        if f.ema >= cfg.step_div_ratio * min_post && s.mk_z >= cfg.mk_up_z {
            return (State::Diverging, Reason::EmaRise, dv);
        }
    }
    // Real runs: a loss that blew up and after real training time is still not below its
    // start is diverging even while it comes down again (never healthy, never a raise).
    if f.n >= cfg.net_progress_min_steps && dv.no_raise {
        let reason = if f.near_chance(cfg.chance_band) {
            Reason::DeadNetwork
        } else {
            Reason::NoNetProgressHigh
        };
        return (State::Diverging, reason, dv);
    }
    // 5b, after the dead-network rules: a blow-up that never came back is a dead network
    // (real runs: lr 10 under a warmup left an episode open for 500 steps at chance level).
    if let Some(v) = spike(dv) {
        return v;
    }
    // 6. warmup: the rules below read a rising rate's transient as noise or a stall.
    if f.warm {
        return (State::Healthy, Reason::Warmup, dv);
    }
    // 9. spike rate.
    if f.episodes >= cfg.spike_rate_episodes {
        return (State::Oscillating, Reason::SpikeRate, dv);
    }
    // 11. rising (early warning).
    if let Some(min_post) = f.min_ema_post {
        if s.inc_sig() && s.mk_z >= cfg.mk_up_z && f.ema >= cfg.warn_rise * min_post {
            return (State::Oscillating, Reason::Rising, dv);
        }
    }
    // 12. period-2.
    if s.ac1 <= cfg.period2_ac1 && s.cv >= cfg.period2_cv && (!dec_sig || slow_like) {
        return (State::Oscillating, Reason::Period2, dv);
    }
    // 12b. grad norm growing while the loss is not decreasing.
    if f.grad_mk.is_some_and(|z| z >= cfg.mk_up_z) && !dec_sig {
        return (State::Oscillating, Reason::GradnormRising, dv);
    }
    // Progress so far.
    // Real runs: a rate 10-100x too small is still decreasing at (near) its fastest rate
    // after hundreds of steps, without having halved the loss; a good rate reaches
    // diminishing returns (rho well below 0.3) long before.
    let little_progress = f.n >= cfg.slow_progress_min_steps
        && (dv.d < cfg.slow_progress_frac
            || (dv.d < cfg.linear_progress_frac && dv.rho >= cfg.linear_rho_min)
            || f.chance.is_some_and(|c| f.level_recent >= (1.0 - cfg.chance_band) * c));
    // 13. significant decrease.
    if dec_sig {
        if slow_like {
            return (State::Slow, Reason::SlowRate, dv);
        }
        if little_progress && !dv.no_raise {
            return (State::Slow, Reason::LittleProgress, dv);
        }
        return (State::Healthy, Reason::Improving, dv);
    }
    // 14. no progress.
    if dv.flat_sig || f.n >= cfg.n_long {
        // The noise reference follows the loss level (absolute noise), and noise
        // after progress only counts as oscillation with a signature independent noise lacks.
        let grew = s.cv * s.level >= cfg.cv_growth * f.cv_base * f.level_base
            && (s.ac1 <= cfg.noise_signature_ac1 || s.dispersion >= cfg.noise_dispersion_ratio);
        if s.cv >= cfg.cv_osc && (!dv.progressed || grew) {
            return (State::Oscillating, Reason::NoisyFlat, dv);
        }
        if dv.progressed {
            if f.near_chance(0.03) {
                return (State::Diverging, Reason::DeadNetwork, dv);
            }
            return (State::Plateau, Reason::FlatAfterProgress, dv);
        }
        return (State::Slow, Reason::Stalled, dv);
    }
    // 15. inconclusive (upgraded by tiny updates or by little progress).
    if f.tiny_updates {
        return (State::Slow, Reason::TinyUpdates, dv);
    }
    if little_progress && !dv.no_raise {
        return (State::Slow, Reason::LittleProgress, dv);
    }
    (State::Healthy, Reason::Inconclusive, dv)
}
