//! The STEP stream: bounded incremental state (EMA, rings, spike detectors) feeding the rules
//! of [`step_rules`](crate::step_rules). Memory: a 200-value ring, the first 40 values, 32
//! accepted values per spike detector; each observation costs O(200) at most.

use crate::config::MonitorConfig;
use crate::diagnosis::Diagnosis;
use crate::event::Event;
use crate::evidence::Evidence;
use crate::long_history::LongHistory;
use crate::record::{is_finite_loss, positive_loss, StepRecord};
use crate::spikes::SpikeDetector;
use crate::state::{Reason, State, Stream};
use crate::stats::{mann_kendall_z, median, Ema};
use crate::step_rules::{classify, OpenEpisode, StepFacts};
use crate::suggestion_rules::{suggest, Context};
use crate::window::{block_len, trend_centred_cv, window_len, window_stats, BLOCKS};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

const RING: usize = 200;

/// Drops the oldest values beyond `len`.
pub(crate) fn trim_front<T>(v: &mut VecDeque<T>, len: usize) {
    while v.len() > len {
        v.pop_front();
    }
}
const D_MAX: usize = 20;
/// Observations at one rate before a change of rate counts as a jump that starts a new segment.
const STEADY_BEFORE_JUMP: u64 = 10;

/// Incremental state of the STEP stream for one segment (reset on LR changes and `reset`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StepStream {
    n: u64,
    #[serde(with = "crate::exact")]
    ring: VecDeque<(f64, bool)>,
    #[serde(with = "crate::exact")]
    first: Vec<(f64, bool)>,
    ema: Ema,
    #[serde(with = "crate::exact")]
    ema_hist: VecDeque<f64>,
    #[serde(with = "crate::exact")]
    min_ema: f64,
    min_ema_n: u64,
    min_ema_step: u64,
    #[serde(with = "crate::exact")]
    min_ema_post: Option<f64>,
    #[serde(with = "crate::exact")]
    max_ema: f64,
    #[serde(with = "crate::exact")]
    max_raw: f64,
    spikes: SpikeDetector,
    grad_spikes: SpikeDetector,
    #[serde(with = "crate::exact")]
    grad_ring: VecDeque<f64>,
    #[serde(with = "crate::exact")]
    k_peak: f64,
    #[serde(with = "crate::exact")]
    base: Option<(f64, f64)>,
    ur_ema: Ema,
    tiny_run: u64,
    #[serde(with = "crate::exact")]
    sharpness: Option<f64>,
    /// Theta of the last sharpness record (the config's until one says otherwise).
    #[serde(with = "crate::exact")]
    theta: Option<f64>,
    /// Rate of the previous observation (any segment).
    #[serde(with = "crate::exact")]
    last_lr: Option<f64>,
    /// First rate ever seen (floor for decays).
    #[serde(with = "crate::exact")]
    lr0: Option<f64>,
    /// Observations since the last segment start (for the cooldown).
    since_change: Option<u64>,
    last_step: Option<u64>,
    total: u64,
    latched: Option<Diagnosis>,
    /// The last evaluated verdict, repeated between evaluations (`eval_every`).
    last_eval: Option<Diagnosis>,
    /// Consecutive observations at the same rate.
    steady: u64,
    /// The whole run in block medians (kept across segments: a rate change is evidence).
    long: LongHistory,
    /// The optimizer's own step size at the last observation, when it reports one.
    #[serde(default, with = "crate::exact")]
    effective_lr: Option<f64>,
}

impl StepStream {
    pub fn new(cfg: &MonitorConfig) -> Self {
        StepStream {
            n: 0,
            ring: VecDeque::with_capacity(RING),
            first: Vec::with_capacity(cfg.cv_base_len),
            ema: Ema::new(cfg.ema_beta),
            ema_hist: VecDeque::new(),
            min_ema: f64::INFINITY,
            min_ema_n: 0,
            min_ema_step: 0,
            min_ema_post: None,
            max_ema: f64::NEG_INFINITY,
            max_raw: f64::NEG_INFINITY,
            spikes: SpikeDetector::default(),
            grad_spikes: SpikeDetector::default(),
            grad_ring: VecDeque::with_capacity(RING),
            k_peak: 0.0,
            base: None,
            ur_ema: Ema::new(cfg.ema_beta),
            tiny_run: 0,
            sharpness: None,
            theta: None,
            last_lr: None,
            lr0: None,
            since_change: None,
            last_step: None,
            total: 0,
            latched: None,
            last_eval: None,
            steady: 0,
            long: LongHistory::default(),
            effective_lr: None,
        }
    }

    /// Starts a new segment: everything but the LR bookkeeping and the latch is reset.
    pub fn new_segment(&mut self, cfg: &MonitorConfig) {
        let keep = (
            self.last_lr,
            self.lr0,
            self.total,
            self.latched.take(),
            self.sharpness,
            self.theta,
            std::mem::take(&mut self.long),
        );
        *self = StepStream::new(cfg);
        (
            self.last_lr,
            self.lr0,
            self.total,
            self.latched,
            self.sharpness,
            self.theta,
            self.long,
        ) = keep;
        self.since_change = Some(0);
    }

    /// Records the rate the next observation is compared with (after `notify_lr_change`).
    pub fn set_lr(&mut self, lr: f64) {
        self.last_lr = Some(lr);
    }

    /// Trims a restored state to the buffers' sizes under `cfg`: the rings are kept at their
    /// length by one pop per push, so a longer one (another configuration, an edited file)
    /// would never shrink.
    pub fn fit_to(&mut self, cfg: &MonitorConfig) {
        trim_front(&mut self.ring, RING);
        trim_front(&mut self.grad_ring, RING);
        trim_front(&mut self.ema_hist, cfg.outlier_run + 1);
        self.first.truncate(cfg.cv_base_len);
        self.spikes.fit();
        self.grad_spikes.fit();
        self.long.fit();
    }

    pub fn observe(&mut self, rec: &StepRecord, cfg: &MonitorConfig) -> Diagnosis {
        if let Some(l) = &self.latched {
            let mut d = l.clone();
            d.at = rec.step;
            d.events.clear();
            return d;
        }
        let mut events = Vec::new();
        let lr = rec.lr;
        self.effective_lr = rec.effective_lr.filter(|e| e.is_finite());
        self.lr0.get_or_insert(lr);
        let mut lr_rose = false;
        if let Some(prev) = self.last_lr {
            let ratio = lr / prev;
            let warm = rec.warmup_steps.is_some_and(|w| self.n < w);
            // A rate that changes every step is a schedule (warmup, cosine, one-cycle, an
            // exponential ramp): its changes are evidence, not a reason to forget the run. Only
            // a jump out of a steady rate (a step decay, a manual change) starts a new segment.
            let steady = self.steady >= STEADY_BEFORE_JUMP;
            let same = (ratio - 1.0).abs() < 1e-9;
            if prev > 0.0 && lr.is_finite() && !(0.9..=1.1).contains(&ratio) && !warm && steady {
                events.push(Event::LrChange {
                    at: rec.step,
                    old_lr: prev,
                    new_lr: lr,
                });
                self.new_segment(cfg);
            } else {
                lr_rose = lr > prev;
            }
            self.steady = if same { self.steady + 1 } else { 0 };
        }
        self.last_lr = Some(lr);
        let grad_bad = rec.grad_norm.is_some_and(|g| !is_finite_loss(g));
        if !is_finite_loss(rec.loss) || grad_bad {
            let d = self.nonfinite(rec, cfg, events);
            self.latched = Some(d.clone());
            return d;
        }
        let x = positive_loss(rec.loss, cfg.loss_floor);
        self.long.push(rec.step as f64, rec.loss);
        self.n += 1;
        self.total += 1;
        self.since_change = self.since_change.map(|c| c + 1);
        let n = self.n;
        let ema = self.ema.update(x);
        if self.ema_hist.len() > cfg.outlier_run {
            self.ema_hist.pop_front();
        }
        self.ema_hist.push_back(ema);
        if ema < self.min_ema {
            self.min_ema = ema;
            self.min_ema_n = n;
            self.min_ema_step = rec.step;
        }
        self.max_ema = self.max_ema.max(ema);
        self.max_raw = self.max_raw.max(x);
        let warm = rec.warmup_steps.is_some_and(|w| n <= w) || lr_rose;
        if !warm {
            self.min_ema_post = Some(self.min_ema_post.map_or(ema, |m| m.min(ema)));
        }
        let out = self.spikes.observe(n, rec.step, x, cfg);
        if out.recovered {
            events.push(Event::SpikeRecovered { step: rec.step });
        }
        if out.opened {
            events.push(Event::Spike {
                step: rec.step,
                level_before: out.level,
                value: x,
            });
        }
        if self.ring.len() == RING {
            self.ring.pop_front();
        }
        self.ring.push_back((x, out.spike));
        if self.first.len() < cfg.cv_base_len {
            self.first.push((x, out.spike));
        }
        if let Some(g) = rec.grad_norm {
            let g = g.max(1e-30);
            let go = self.grad_spikes.observe(n, rec.step, g, cfg);
            if go.opened {
                events.push(Event::GradNormSpike {
                    step: rec.step,
                    level_before: go.level,
                    value: g,
                });
            }
            if self.grad_ring.len() == RING {
                self.grad_ring.pop_front();
            }
            self.grad_ring.push_back(g);
        }
        if let Some(r) = rec.update_ratio.filter(|r| r.is_finite() && *r >= 0.0) {
            self.ur_ema.update(r);
            self.tiny_run = if r < 1e-4 { self.tiny_run + 1 } else { 0 };
        }
        if let Some(s) = rec.sharpness.filter(|s| s.is_finite()) {
            self.sharpness = Some(s);
            self.theta = rec.stability_threshold.filter(|t| t.is_finite() && *t > 0.0);
            let theta = self.theta.unwrap_or(cfg.stability_threshold);
            let margin = lr * s / theta;
            if margin > cfg.unstable_margin {
                events.push(Event::UnstableRate {
                    step: rec.step,
                    lr,
                    limit: theta / s,
                    margin,
                });
            }
        }
        self.last_step = Some(rec.step);
        let urgent = !events.is_empty() || ema >= cfg.hard_ratio * self.min_ema || n <= cfg.step_min_points;
        if cfg.eval_every > 1 && n % cfg.eval_every != 0 && !urgent {
            if let Some(prev) = &self.last_eval {
                let mut d = prev.clone();
                d.at = rec.step;
                d.events = events;
                return d;
            }
        }
        let facts = self.facts(cfg, warm);
        let (state, reason, dv) = classify(&facts, cfg);
        let (state, reason) = self.long_veto(state, reason, &facts, dv.no_raise || dv.blew_up);
        let (state, reason) = match (state, reason) {
            (State::Plateau, Reason::FlatAfterProgress) if cfg.epochs_judge_plateau => {
                (State::Healthy, Reason::DiminishingReturns)
            }
            other => other,
        };
        let mut ev = self.evidence(&facts, lr, cfg);
        if facts.stats.is_some() && n >= cfg.step_min_points {
            ev.rho = Some(dv.rho);
            ev.t_half = Some(dv.t_half);
            ev.d = Some(dv.d);
            ev.progressed = Some(dv.progressed);
        }
        let ctx = Context {
            cfg,
            stream: Stream::Step,
            state,
            reason,
            lr,
            lr0: self.lr0.unwrap_or(lr),
            ev: &ev,
            best_at: Some(self.min_ema_step),
            last_good: self.last_step,
            first_obs: false,
            early: self.early(cfg),
            trail: vec![self.min_ema, ema],
            cooldown: self.since_change.is_some_and(|c| c <= cfg.cooldown_steps),
            // Real run (SGD lr 1 on Fashion-MNIST, issue 5's sweep): after a blow-up the loss
            // settled a little below its start and the stall was answered with "raise it to 10".
            no_raise: dv.no_raise || dv.blew_up,
            sharpness: self.sharpness,
            theta: self.theta.unwrap_or(cfg.stability_threshold),
            rises: 0,
            effective_lr: self.effective_lr,
        };
        let suggestion = suggest(&ctx);
        let d = Diagnosis {
            stream: Stream::Step,
            at: rec.step,
            state,
            reason,
            evidence: ev,
            events,
            suggestion,
        };
        if cfg.eval_every > 1 {
            self.last_eval = Some(d.clone());
        }
        d
    }

    /// The window's noise-driven verdicts checked against the run's own history: a run whose
    /// block medians are still falling significantly is improving, whatever a 200-step window
    /// of small-batch noise looks like (real runs: Fashion-MNIST SGD 0.1 at batch 8-64 was
    /// "plateau" and "oscillating" dozens of times in one healthy epoch).
    fn long_veto(&self, state: State, reason: Reason, f: &StepFacts, blew_up: bool) -> (State, Reason) {
        let vetoable = matches!(
            (state, reason),
            (State::Plateau, Reason::FlatAfterProgress)
                | (State::Slow, Reason::Stalled)
                | (
                    State::Oscillating,
                    Reason::NoisyFlat | Reason::Rising | Reason::SpikeRate | Reason::SpikeActive | Reason::SpikePartial
                )
                | (State::Diverging, Reason::SpikeNotRecovering | Reason::EmaRise)
        );
        // The history's trend costs a few microseconds: only for verdicts it may change.
        let Some(t) = vetoable.then(|| self.long.trend()).flatten() else {
            return (state, reason);
        };
        if t.rising || blew_up || !t.progressed {
            return (state, reason);
        }
        let calm = if t.improving {
            (State::Healthy, Reason::Improving)
        } else if t.flat {
            (State::Plateau, Reason::FlatAfterProgress)
        } else {
            (State::Healthy, Reason::Inconclusive)
        };
        // A spike that has not come back is still an alarm when it doubled the loss.
        // ... unless the losses themselves are that noisy (batch 8: a robust noise of 80 % of
        // the level puts ten losses in a row at 1.5x the median by chance).
        let noisy = f.stats.is_some_and(|s| s.cv >= 2.0 * 0.15);
        let moderate_spike = noisy || f.open.is_some_and(|ep| ep.median_since < 2.0 * ep.pre_level);
        match (state, reason) {
            // A plateau needs evidence of flatness, not the absence of a significant decrease.
            (State::Plateau, Reason::FlatAfterProgress) | (State::Slow, Reason::Stalled) if !t.flat => calm,
            // Noise, spikes and a rising window in a run whose history made progress and is not
            // rising: minibatch noise, not oscillation.
            (
                State::Oscillating,
                Reason::NoisyFlat | Reason::Rising | Reason::SpikeRate | Reason::SpikeActive | Reason::SpikePartial,
            ) => calm,
            (State::Diverging, Reason::SpikeNotRecovering) if moderate_spike => calm,
            // The smoothed loss against its lowest value so far: in losses this noisy that
            // minimum is an extreme of the EMA's own noise (real run: Fashion-MNIST, SGD 0.1,
            // batch 8, "diverging: 0.3766 -> 0.5721" at step 6,568 of a healthy epoch whose
            // block medians never rose).
            (State::Diverging, Reason::EmaRise) if noisy => calm,
            _ => (state, reason),
        }
    }

    fn early(&self, cfg: &MonitorConfig) -> bool {
        let horizon = cfg
            .adam_beta2
            .map_or(0.0, |b2| 2.0 / (1.0 - b2))
            .max(0.05 * self.total as f64);
        (self.min_ema_n as f64) <= horizon
    }

    fn facts(&mut self, cfg: &MonitorConfig, warm: bool) -> StepFacts {
        let n = self.n;
        let tail: Vec<(f64, bool)> = self.ring.iter().copied().collect();
        let stats = if n >= cfg.step_min_points {
            window_stats(n, &tail, cfg.window_min, cfg.window_max)
        } else {
            None
        };
        if let Some(s) = stats {
            self.k_peak = self.k_peak.max(s.k).max(0.0);
        }
        let (cv_base, level_base) = self.base(cfg, n);
        let w = window_len(n, cfg.window_min, cfg.window_max);
        let m_d = ((n / 4) as usize).clamp(5, D_MAX);
        let head: Vec<f64> = self.first.iter().take(m_d).map(|(x, _)| *x).collect();
        let recent: Vec<f64> = tail.iter().rev().take(m_d).map(|(x, _)| *x).collect();
        let open = self.spikes.open().map(|ep| {
            // Saturating: a restored state is a file's word, not an invariant.
            let age = n.saturating_sub(ep.start_n) + 1;
            let since: Vec<f64> = tail.iter().rev().take(age as usize).map(|(x, _)| *x).collect();
            OpenEpisode {
                age,
                median_since: median(&since),
                median_recent: median(&since[..since.len().min(3)]),
                peak_since: since.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                pre_level: ep.pre_level,
            }
        });
        let lagged = if self.ema_hist.len() > cfg.outlier_run {
            self.ema_hist.front().copied()
        } else {
            None
        };
        StepFacts {
            n,
            ema: self.ema.value().unwrap_or(0.0),
            min_ema: self.min_ema,
            min_ema_post: self.min_ema_post,
            max_ema: self.max_ema,
            max_raw: self.max_raw,
            ema_lagged: lagged,
            last_raw: tail.iter().rev().take(cfg.outlier_run).map(|(x, _)| *x).collect(),
            open,
            warm,
            stats,
            episodes: self.spikes.started_within(n, w) + self.grad_spikes.started_within(n, w),
            cv_base,
            level_base,
            k_peak: self.k_peak,
            m_d,
            level_init: median(&head),
            level_start: median(&head).min(head.first().copied().unwrap_or(f64::INFINITY)),
            level_recent: median(&recent),
            grad_mk: self.grad_trend(n, cfg),
            tiny_updates: self.ur_ema.count() > 0 && self.tiny_run >= w,
            chance: cfg.chance_level(),
        }
    }

    /// `(cv_base, level_base)` on the first `min(n, cv_base_len)` values, frozen once full.
    fn base(&mut self, cfg: &MonitorConfig, n: u64) -> (f64, f64) {
        if let Some(b) = self.base {
            return b;
        }
        let p = self.first.len();
        if (p as u64) < cfg.step_min_points.min(20) || n < 20 {
            return (0.0, 0.0);
        }
        let k = window_stats(p as u64, &self.first, cfg.window_min, cfg.window_max).map_or(0.0, |s| s.k);
        let cv = trend_centred_cv(&self.first, k);
        let level = median(&self.first.iter().map(|(x, _)| *x).collect::<Vec<_>>());
        if p >= cfg.cv_base_len {
            self.base = Some((cv, level));
        }
        (cv, level)
    }

    /// Mann-Kendall Z of the block medians of ln G over the window.
    fn grad_trend(&self, n: u64, cfg: &MonitorConfig) -> Option<f64> {
        let b = block_len(window_len(n, cfg.window_min, cfg.window_max));
        let len = BLOCKS * b;
        if n < cfg.step_min_points || self.grad_ring.len() < len {
            return None;
        }
        let g: Vec<f64> = self
            .grad_ring
            .iter()
            .skip(self.grad_ring.len() - len)
            .map(|g| g.ln())
            .collect();
        let meds: Vec<f64> = g.chunks(b).map(median).collect();
        Some(mann_kendall_z(&meds))
    }

    fn evidence(&self, f: &StepFacts, lr: f64, cfg: &MonitorConfig) -> Evidence {
        let mut ev = Evidence {
            n: f.n,
            last: self.ring.back().map(|(x, _)| *x),
            ema: Some(f.ema),
            best: Some(self.min_ema),
            ratio_to_best: Some(f.ema / self.min_ema),
            level: Some(f.level_recent),
            level_init: Some(f.level_init),
            level_start: Some(f.level_start),
            lr: Some(lr),
            update_ratio: self.ur_ema.value(),
            margin: self
                .sharpness
                .map(|s| lr * s / self.theta.unwrap_or(cfg.stability_threshold)),
            ..Default::default()
        };
        if let Some(s) = f.stats {
            ev.k = Some(s.k);
            ev.k_lo = Some(s.k_lo);
            ev.k_hi = Some(s.k_hi);
            ev.k_peak = Some(f.k_peak);
            ev.cv = Some(s.cv);
            ev.cv_base = Some(f.cv_base);
            ev.ac1 = Some(s.ac1);
            ev.mk_z = Some(s.mk_z);
            ev.window = Some(s.w);
            ev.spikes_in_window = Some(f.episodes);
        }
        ev
    }

    /// Rule 1: a non-finite loss or grad norm.
    fn nonfinite(&self, rec: &StepRecord, cfg: &MonitorConfig, events: Vec<Event>) -> Diagnosis {
        let n = self.n;
        let ema = self.ema.value();
        let rising = match (ema, self.ema_hist.len()) {
            (Some(e), len) if n >= 5 && len >= 5 => e >= 1.2 * self.min_ema && e > self.ema_hist[len - 5],
            _ => false,
        };
        let (state, reason) = if rising {
            (State::Diverging, Reason::NonfiniteAfterDivergence)
        } else {
            (State::Exploded, Reason::NonfiniteSudden)
        };
        let ev = Evidence {
            n,
            ema,
            best: ema.map(|_| self.min_ema),
            ratio_to_best: ema.map(|e| e / self.min_ema),
            nonfinite_reached: true,
            lr: Some(rec.lr),
            last: self.ring.back().map(|(x, _)| *x),
            ..Default::default()
        };
        let mut trail: Vec<f64> = ema.map(|e| vec![self.min_ema, e]).unwrap_or_default();
        trail.push(rec.loss);
        let ctx = Context {
            cfg,
            stream: Stream::Step,
            state,
            reason,
            lr: rec.lr,
            lr0: self.lr0.unwrap_or(rec.lr),
            ev: &ev,
            best_at: ema.map(|_| self.min_ema_step),
            last_good: self.last_step,
            first_obs: n == 0,
            early: self.early(cfg),
            trail,
            cooldown: false,
            no_raise: false,
            sharpness: self.sharpness,
            theta: self.theta.unwrap_or(cfg.stability_threshold),
            rises: 0,
            effective_lr: self.effective_lr,
        };
        let suggestion = suggest(&ctx);
        Diagnosis {
            stream: Stream::Step,
            at: rec.step,
            state,
            reason,
            evidence: ev,
            events,
            suggestion,
        }
    }
}
