//! The suggestion rules (the "what to do" column of docs/monitor.md#reason-codes): from a verdict and its context to a [`Suggestion`].

use crate::config::{MonitorConfig, StepSize};
use crate::evidence::Evidence;
use crate::numfmt::{num, round_sig, short, trail};
use crate::state::{Reason, State, Stream};
use crate::suggestion::{raise_with_caps, stability_warning, Action, RaiseCaps, Suggestion};

/// Everything a suggestion depends on, gathered by the stream that produced the verdict.
pub(crate) struct Context<'a> {
    pub cfg: &'a MonitorConfig,
    pub stream: Stream,
    pub state: State,
    pub reason: Reason,
    pub lr: f64,
    pub lr0: f64,
    pub ev: &'a Evidence,
    /// Step/epoch of the best (smoothed) loss: rollback target for divergence.
    pub best_at: Option<u64>,
    /// Last finite observation: rollback target for EXPLODED.
    pub last_good: Option<u64>,
    /// The non-finite value came at the very first observation.
    pub first_obs: bool,
    /// Divergence started early: add warmup.
    pub early: bool,
    /// Losses for the sentence (non-finite last value allowed).
    pub trail: Vec<f64>,
    /// Inside the cooldown after an LR change.
    pub cooldown: bool,
    /// The loss blew up earlier and is not below its start: never raise.
    pub no_raise: bool,
    /// Latest sharpness estimate.
    pub sharpness: Option<f64>,
    /// Its stability threshold theta.
    pub theta: f64,
    /// Number of rises in the epoch window (edge-of-stability note).
    pub rises: u32,
    /// The optimizer's own step size, when it reports one (Prodigy's `d * lr`).
    pub effective_lr: Option<f64>,
}

impl Context<'_> {
    fn unit(&self) -> &'static str {
        match self.stream {
            Stream::Step => "step",
            _ => "epoch",
        }
    }

    fn at_chance(&self) -> bool {
        match (self.cfg.chance_level(), self.ev.level.or(self.ev.last)) {
            (Some(c), Some(l)) => l >= c * (1.0 - self.cfg.chance_band),
            _ => false,
        }
    }

    fn clip_extra(&self, out: &mut Vec<String>) {
        if !self.cfg.grad_clipping {
            out.push("add gradient clipping (global norm 1.0, or z-score clipping z = 2.5, alpha = 0.97)".into());
        }
    }

    fn warmup_extra(&self) -> String {
        match self.cfg.adam_beta2 {
            Some(b2) => format!(
                "add a linear warmup over {} steps (2 / (1 - beta2))",
                short((2.0 / (1.0 - b2)).round())
            ),
            None => "add a linear warmup (about 5 epochs for SGD)".to_string(),
        }
    }
}

fn with_lr(action: Action, lr: f64, new: f64, text: String) -> Suggestion {
    let new = round_sig(new);
    Suggestion {
        action,
        new_lr: Some(new),
        alt_lr: None,
        factor: Some(round_sig(new / lr)),
        rollback_to: None,
        extras: Vec::new(),
        text,
    }
}

/// The suggestion for a verdict.
pub(crate) fn suggest(c: &Context<'_>) -> Suggestion {
    let mut s = in_estimator_terms(c, suggest_unbounded(c));
    // Real runs (issue 14): an exponential schedule at 1e19 was told "use lr 1.476e18", a run
    // at 1e-318 "raise it to 1e-319". A rate outside [1e-8, 10] is named, but flagged.
    let odd = |l: Option<f64>| l.is_some_and(|l| !(1e-8..=10.0).contains(&l));
    if odd(s.new_lr) || odd(s.alt_lr) {
        s.text += " (an extraordinary rate, outside [1e-8, 10]: check the schedule and the rate's units)";
    }
    s
}

fn suggest_unbounded(c: &Context<'_>) -> Suggestion {
    match c.state {
        State::Insufficient => Suggestion::keep("not enough observations yet"),
        State::Healthy => healthy(c),
        State::Slow => slow(c),
        State::Plateau => plateau(c),
        State::Oscillating => oscillating(c),
        State::Diverging => diverging(c),
        State::Exploded => exploded(c),
    }
}

fn healthy(c: &Context<'_>) -> Suggestion {
    let lr = num(c.lr);
    let mut s = match c.reason {
        Reason::Warmup => Suggestion::keep(format!("keep lr {lr}: inside the warmup")),
        Reason::Inconclusive => Suggestion::keep(format!("keep lr {lr}: no evidence of a problem yet")),
        Reason::DiminishingReturns => Suggestion::keep(format!(
            "keep lr {lr}: the minibatch loss has flattened after its fast first drop (diminishing returns); \
             the epoch losses will show whether it has stalled"
        )),
        Reason::Overfit => {
            let mut s = Suggestion::keep(format!(
                "validation loss is rising while the training loss falls: restore the best-validation \
                 checkpoint, stop early or add regularization (lr {lr} is not the problem)"
            ));
            s.action = Action::Rollback;
            s.rollback_to = c.best_at;
            return s;
        }
        _ if !c.ev.rel_improvements.is_empty() => {
            let r: Vec<String> =
                c.ev.rel_improvements
                    .iter()
                    .map(|r| format!("{} %", num(r * 100.0)))
                    .collect();
            Suggestion::keep(format!(
                "keep lr {lr}: the loss is still improving (relative improvements {})",
                r.join(", ")
            ))
        }
        _ => Suggestion::keep(format!("keep lr {lr}: the loss is decreasing")),
    };
    s.new_lr = Some(c.lr);
    s.factor = Some(1.0);
    if c.stream != Stream::Step && c.ev.r_recent.is_some_and(|r| r < 0.02) && !c.cfg.schedule_active {
        s.extras.push(format!(
            "returns are diminishing; plan a decay, e.g. step decay lr * 0.1^floor(t / {}) or exponential \
             lr * exp(-ln(10) t / T_remaining)",
            c.ev.n
        ));
    }
    if c.rises > 0 {
        s.extras
            .push("near the stability edge (zig-zag with net progress); halve lr if it turns into bounces".into());
    }
    if let Some(m) = c.ev.margin.filter(|m| (0.9..=1.1).contains(m)) {
        s.extras
            .push(format!("at the edge of stability (margin {}): no action", num(m)));
    }
    if let (Some(l), Some(_)) = (c.sharpness, c.ev.margin.filter(|m| *m > c.cfg.unstable_margin)) {
        s.extras.push(stability_warning(c.lr, l, c.theta));
    }
    s
}

/// A suggestion in the terms of an optimizer that estimates its own step size: the same
/// action and numbers (so `--auto-lr` still scales the rate, which multiplies the estimate),
/// but the sentence names the knobs the method's authors tune. Prodigy's README: leave lr at
/// 1, lower `d_coef` (0.5, 0.1) for a smaller estimate or raise it (2, 10) for a larger one,
/// `safeguard_warmup` with a warmup; D-Adaptation's: lr scales the estimate directly,
/// `growth_rate` caps how fast it grows. Neither decays the step on its own: both pair with a
/// decaying schedule.
fn in_estimator_terms(c: &Context<'_>, mut s: Suggestion) -> Suggestion {
    let Some(name) = c.cfg.step_size.estimator() else {
        return s;
    };
    let prodigy = c.cfg.step_size == StepSize::Prodigy;
    let lr = num(c.lr);
    let step = c
        .effective_lr
        .map(|e| format!(" (its step d x lr is {} now)", num(round_sig(e))))
        .unwrap_or_default();
    let why = match c.state {
        State::Diverging if matches!(c.reason, Reason::DeadNetwork | Reason::NoNetProgressHigh) => {
            "the loss blew up and sits at or above its start".to_string()
        }
        State::Diverging => format!("the loss rose {}", trail(&c.trail)),
        State::Exploded => format!("the loss became non-finite after {}", trail(&c.trail)),
        State::Oscillating => format!("the loss oscillates ({})", c.reason),
        State::Slow => "the loss falls slowly".to_string(),
        _ => "the loss has stalled after real progress".to_string(),
    };
    // d_coef scales the estimate as the multiplier does; the authors keep lr at 1.
    let knob = |new: f64| {
        if c.lr == 1.0 {
            format!("set d_coef {} (keep lr 1, as its authors advise)", num(new))
        } else {
            format!(
                "use lr 1, its authors' default, with d_coef {} (the same step as lr {} now)",
                num(new),
                num(new)
            )
        }
    };
    let same = |new: f64| format!("in Stride, where --lr multiplies d, --lr {} does the same", num(new));
    match (s.action, s.new_lr) {
        (Action::Lower | Action::Rollback, Some(new)) if new < c.lr => {
            let how = if s.action == Action::Rollback {
                "roll back and "
            } else {
                ""
            };
            s.text = if prodigy {
                format!(
                    "{name}'s step-size estimate is too large{step}: {why}; {how}{}, or safeguard_warmup=True \
                     with a warmup; {}",
                    knob(new),
                    same(new)
                )
            } else {
                format!(
                    "{name}'s step-size estimate is too large{step}: {why}; {how}lower lr, its multiplier on d, \
                     to {}, or cap the estimate's growth with growth_rate 1.02",
                    num(new)
                )
            };
        }
        (Action::Raise, Some(new)) => {
            s.text = if prodigy {
                format!(
                    "{name}'s step-size estimate is small{step}: {why}; for a larger one {}; {}",
                    knob(new),
                    same(new)
                )
            } else {
                format!(
                    "{name}'s step-size estimate is small{step}: {why}; raise lr, its multiplier on d, to {}",
                    num(new)
                )
            };
        }
        (Action::Decay, Some(new)) => {
            s.text = format!(
                "{why}{step}; {name} adapts the step size but does not decay it: add a decaying schedule over \
                 its multiplier (its authors pair it with cosine annealing, --schedule \"cosine(T)\" for a run of \
                 T steps), or decay lr to {} now",
                num(new)
            );
        }
        (Action::Keep, _) => {
            let plain = format!("keep lr {lr}");
            if let Some(rest) = s.text.strip_prefix(&plain) {
                s.text = format!("keep lr {lr}, the multiplier on {name}'s estimate d{step}{rest}");
            }
        }
        _ => {}
    }
    s
}

fn slow(c: &Context<'_>) -> Suggestion {
    let lr = c.lr;
    if c.no_raise {
        return Suggestion::keep(format!(
            "do not raise lr {}: the loss blew up earlier in this run; watch for a dead network",
            num(lr)
        ));
    }
    if c.cooldown {
        return Suggestion::keep(format!("keep lr {}: cooldown after the last lr change", num(lr)));
    }
    let t_half = c.ev.t_half.unwrap_or(f64::INFINITY);
    let n = c.ev.n as f64;
    let big = t_half >= 100.0 * n
        || matches!(c.reason, Reason::Stalled | Reason::TinyUpdates)
        || (c.reason == Reason::LittleProgress && c.ev.d.is_some_and(|d| d < 0.05));
    let mult = if big { 10.0 } else { 3.0 };
    let caps = RaiseCaps {
        update_ratio: c.ev.update_ratio,
        sharpness: c.sharpness,
        theta: c.theta,
        lr_finder: c.cfg.lr_finder,
        lr_hi: c.cfg.lr_hi,
    };
    let new = raise_with_caps(lr, mult, &caps);
    let why = if t_half.is_finite() {
        format!(
            "halving the loss would take about {} {}s",
            crate::numfmt::short(t_half.round()),
            c.unit()
        )
    } else {
        "the loss is not moving".to_string()
    };
    let mut s = with_lr(
        Action::Raise,
        lr,
        new,
        format!("lr {} is too small: {why}; raise it to {}", num(lr), num(new)),
    );
    if new <= lr {
        s.action = Action::Keep;
        s.text = format!("lr {} looks small ({why}) but a cap forbids raising it", num(lr));
    }
    let back = round_sig((lr * new).sqrt());
    s.alt_lr = Some(back);
    s.extras.push(format!(
        "watch the next {}: if it diverges or oscillates, use {}",
        if c.stream == Stream::Step {
            "40 steps"
        } else {
            "2 epochs"
        },
        num(back)
    ));
    if c.at_chance() || c.ev.d.is_some_and(|d| d < 1e-3) {
        s.extras.push(
            "the loss is stuck near its start (chance level?): verify that gradients are non-zero and flow".into(),
        );
    }
    s
}

fn plateau(c: &Context<'_>) -> Suggestion {
    let lr = c.lr;
    let floor = c.lr0 * 1e-3;
    if c.cooldown {
        return Suggestion::keep(format!("keep lr {}: cooldown after the last lr change", num(lr)));
    }
    if c.cfg.schedule_active {
        return Suggestion::keep(format!(
            "plateau at lr {}: the schedule is already decaying, no action",
            num(lr)
        ));
    }
    if lr <= floor {
        let mut s = Suggestion::keep(format!(
            "plateau at lr {} (already at the floor {}): converged, stop",
            num(lr),
            num(floor)
        ));
        s.action = Action::Stop;
        return s;
    }
    let (gamma, cool) = match c.stream {
        Stream::Step => (c.cfg.step_plateau_factor, format!("{} steps", c.cfg.cooldown_steps)),
        _ => (c.cfg.epoch_plateau_factor, format!("{} epochs", c.cfg.cooldown_epochs)),
    };
    let new = (lr * gamma).max(floor);
    let mut s = with_lr(
        Action::Decay,
        lr,
        new,
        format!(
            "the loss has stalled after real progress: decay lr {} to {}",
            num(lr),
            num(new)
        ),
    );
    s.extras.push(format!("then a cooldown of {cool}"));
    s.extras.push(format!(
        "schedule equivalent: step decay lr * {}^floor(t / {}) per {}",
        num(gamma),
        c.ev.n,
        c.unit()
    ));
    s
}

fn oscillating(c: &Context<'_>) -> Suggestion {
    let lr = c.lr;
    let noisy = c.ev.cv.is_some_and(|cv| cv >= 0.3) || c.ev.margin.is_some_and(|m| m > 1.5);
    match c.reason {
        Reason::SpikeActive | Reason::Jump => {
            let mut s = Suggestion::keep(format!("watch: a {} is in progress at lr {}", c.reason, num(lr)));
            s.extras
                .push("if the optimizer step produced a non-finite gradient, skip that step".into());
            s
        }
        Reason::SpikeRate => {
            let new = lr * 0.5;
            let mut s = with_lr(
                Action::Lower,
                lr,
                new,
                format!("frequent loss spikes: lower lr {} to {}", num(lr), num(new)),
            );
            s.extras
                .push("enable gradient clipping (global norm 1.0, or ZClip z = 2.5)".into());
            s.extras
                .push("inspect the spiking batches for duplicated or garbage data".into());
            s
        }
        Reason::SpikePartial => {
            let new = lr * 0.5;
            let mut s = with_lr(
                Action::Lower,
                lr,
                new,
                format!("a spike has not fully recovered: lower lr {} to {}", num(lr), num(new)),
            );
            s.extras
                .push("optionally roll back to the checkpoint before the spike".into());
            s
        }
        _ => {
            let f = if noisy && c.stream == Stream::Step { 0.3 } else { 0.5 };
            let new = lr * f;
            let mut s = with_lr(
                Action::Lower,
                lr,
                new,
                format!(
                    "the loss oscillates without net progress ({}): lower lr {} to {}",
                    c.reason,
                    num(lr),
                    num(new)
                ),
            );
            if c.reason == Reason::NoisyFlat && c.ev.ac1.is_some_and(|a| a > -0.2) {
                s.extras
                    .push("the noise looks like minibatch noise: consider a larger batch".into());
            }
            s
        }
    }
}

fn diverging(c: &Context<'_>) -> Suggestion {
    let lr = c.lr;
    if matches!(c.reason, Reason::DeadNetwork | Reason::NoNetProgressHigh) {
        let new = round_sig(lr / 10.0);
        let alt = round_sig(new / 10.0);
        let level = c.ev.level.or(c.ev.last).map(num).unwrap_or_else(|| "?".into());
        let init =
            c.ev.level_start
                .or(c.ev.level_init)
                .map(num)
                .unwrap_or_else(|| "?".into());
        let what = if c.reason == Reason::DeadNetwork {
            "blew up and now sits"
        } else {
            "sits"
        };
        let mut s = with_lr(
            Action::Rollback,
            lr,
            new,
            format!(
                "lr {} is too high: the loss {what} at {level}, at or above its start {init} (dead units); \
                 restart from the initial weights with {} (then {} if it happens again)",
                num(lr),
                num(new),
                num(alt)
            ),
        );
        s.alt_lr = Some(alt);
        s.rollback_to = None;
        s.extras
            .push("restart from the initial weights: the current ones are damaged".into());
        c.clip_extra(&mut s.extras);
        return s;
    }
    let ratio = c.ev.ratio_to_best.unwrap_or(1.0);
    let severe = c.ev.nonfinite_reached || ratio >= c.cfg.hard_ratio || c.reason == Reason::Hard4x;
    let mut new = lr * if severe { 0.01 } else { 0.1 };
    for cap in [c.cfg.lr_hi, c.cfg.lr_finder].into_iter().flatten() {
        new = new.min(cap);
    }
    if let Some(l) = c.sharpness.filter(|l| l.is_finite() && *l > 0.0) {
        new = new.min(c.theta / (2.0 * l));
    }
    let new = round_sig(new);
    let alt = round_sig(new / 10.0);
    let rollback = c.ev.nonfinite_reached || ratio >= 1.5;
    let how = if rollback {
        "roll back and use"
    } else {
        "continue from the current weights with"
    };
    let mut s = with_lr(
        if rollback { Action::Rollback } else { Action::Lower },
        lr,
        new,
        format!(
            "lr {} is too high: the loss rose {}; {how} {} (then {} if it diverges again)",
            num(lr),
            trail(&c.trail),
            num(new),
            num(alt)
        ),
    );
    s.alt_lr = Some(alt);
    if rollback {
        s.rollback_to = c.best_at;
        let what = match c.best_at {
            Some(at) => format!(
                "restore the checkpoint of {} {at} (best loss {})",
                c.unit(),
                c.ev.best.map(num).unwrap_or_default()
            ),
            None => "restore the initial weights".to_string(),
        };
        s.extras.push(what);
    }
    if c.early {
        s.extras.push(c.warmup_extra());
    }
    c.clip_extra(&mut s.extras);
    s
}

fn exploded(c: &Context<'_>) -> Suggestion {
    let lr = c.lr;
    let new = round_sig(lr / 10.0);
    if c.first_obs {
        let mut s = with_lr(
            Action::Lower,
            lr,
            new,
            format!(
                "the loss is non-finite at the first observation: check inputs and labels for NaN, log(0), \
                 division by zero and fp16 overflow; then use lr {} with warmup",
                num(new)
            ),
        );
        s.extras.push(c.warmup_extra());
        s.extras
            .push("the initial loss should be about ln C for C classes".into());
        return s;
    }
    let at = c.last_good.map(|a| format!(" to {} {a}", c.unit())).unwrap_or_default();
    let mut s = with_lr(
        Action::Rollback,
        lr,
        new,
        format!(
            "the loss became non-finite after {} without diverging first: roll back{at} and use lr {}",
            trail(&c.trail),
            num(new)
        ),
    );
    s.rollback_to = c.last_good;
    c.clip_extra(&mut s.extras);
    s.extras.push(match c.cfg.adam_beta2 {
        Some(b2) => format!("re-warm up over {} steps", short((2.0 / (1.0 - b2)).round())),
        None => "re-warm up over a few hundred steps".to_string(),
    });
    s.extras.push(
        "if it recurs at the same step, skip the batches between the checkpoint and the blow-up and inspect them"
            .into(),
    );
    s
}
