//! The verdict on a whole finished run (for `stride diagnose`): it reads the entire curve, not a
//! window a rate change resets, judges trends against the noise the curve itself shows (so the
//! batch size changes the noise, not the verdict), works from 5 points on with its confidence
//! stated, treats the log's learning rates as evidence (a decayed schedule, a step down after a
//! rate drop, a warmup), reports overfitting as its own finding, and never names a rate the log
//! does not give.

use serde::{Deserialize, Serialize};

use crate::diagnosis::Diagnosis;
use crate::evidence::Evidence;
use crate::log_reader::{LogPoint, ValPoint, XUnit};
use crate::numfmt::{num, round_sig, short};
use crate::run_curve::Curve;
use crate::state::{Reason, State};
use crate::suggestion::{Action, Suggestion};

/// Fewer finite losses than this give no verdict.
pub const MIN_POINTS: usize = 5;

/// Rates outside this range are called extraordinary when suggested.
const SANE_LR: std::ops::RangeInclusive<f64> = 1e-8..=10.0;

/// How much a verdict can be trusted, from the number of points and the noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    /// Under 10 points, or noise as large as the effect.
    Low,
    /// 10 to 29 points.
    Medium,
    /// 30 points or more with a clear effect.
    High,
}

impl std::fmt::Display for Confidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        })
    }
}

/// What the judge is given.
#[derive(Debug, Clone, Copy)]
pub struct RunInput<'a> {
    /// Training losses in order.
    pub points: &'a [LogPoint],
    /// Validation losses in order (may be empty).
    pub val: &'a [ValPoint],
    /// The run's rate when the log has none (`None`: advice names factors, not rates).
    pub lr: Option<f64>,
    /// Number of classes, for the chance level `ln C`.
    pub num_classes: Option<u32>,
    /// What the x values count (for sentences).
    pub unit: XUnit,
    /// The live monitor's last verdict on the same losses: its sentence is kept for a
    /// divergence ending in NaN when it agrees (the lesson's examples).
    pub live: Option<&'a Diagnosis>,
}

/// The verdict on a whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunVerdict {
    /// The state.
    pub state: State,
    /// The rule that fired.
    pub reason: Reason,
    /// How far to trust it.
    pub confidence: Confidence,
    /// Finite losses the verdict was made from.
    pub points: usize,
    /// What to do.
    pub suggestion: Suggestion,
    /// Other findings: overfitting, spikes that recovered, rate drops, skipped non-finite values.
    pub findings: Vec<String>,
    /// Step (or epoch) from which the validation loss rose while the training loss did not.
    pub overfitting_since: Option<f64>,
    /// The numbers behind it (`level_init` = start, `best`, `level` = end, `lr`).
    pub evidence: Evidence,
}

impl std::fmt::Display for RunVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}), from {} points, {} confidence: {}",
            self.state, self.reason, self.points, self.confidence, self.suggestion.text
        )
    }
}

fn unit_name(u: XUnit) -> &'static str {
    match u {
        XUnit::Step => "step",
        XUnit::Epoch => "epoch",
        XUnit::Index => "row",
    }
}

/// `lr * factor` as advice: the rate when known (flagged when outside [1e-8, 10]), else the factor.
fn rate_advice(lr: Option<f64>, factor: f64, verb: &str) -> (Option<f64>, String) {
    let times = if factor < 1.0 { 1.0 / factor } else { factor };
    match lr.filter(|l| l.is_finite() && *l > 0.0) {
        Some(l) => {
            let new = round_sig(l * factor);
            let odd = if SANE_LR.contains(&new) {
                String::new()
            } else {
                " (an extraordinary rate: check the log's lr units)".to_string()
            };
            (
                Some(new),
                format!("{verb} the rate {}x: lr {} -> {}{odd}", short(times), num(l), num(new)),
            )
        }
        None => (None, format!("{verb} the rate {}x", short(times))),
    }
}

fn suggestion(action: Action, new_lr: Option<f64>, lr: Option<f64>, text: String) -> Suggestion {
    Suggestion {
        action,
        new_lr,
        alt_lr: None,
        factor: match (new_lr, lr) {
            (Some(n), Some(l)) if l > 0.0 => Some(round_sig(n / l)),
            _ => None,
        },
        rollback_to: None,
        extras: Vec::new(),
        text,
    }
}

/// The rates of the log, summarised.
#[derive(Debug, Default)]
struct Rates {
    last: Option<f64>,
    max: f64,
    /// The rate ended at most a fifth of its peak (a decayed schedule).
    decayed: bool,
    /// Index where the rate first reached its peak, when it started below half of it (warmup).
    warmup_end: Option<usize>,
    /// Index of the first rate under half the peak after it (where a decaying schedule stops
    /// training at full speed).
    half_after_peak: Option<usize>,
    /// `(index, old, new)` of drops by 2x or more from one logged rate to the next.
    drops: Vec<(usize, f64, f64)>,
}

fn rates(points: &[LogPoint]) -> Rates {
    let lrs: Vec<(usize, f64)> = points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.lr.filter(|l| l.is_finite() && *l > 0.0).map(|l| (i, l)))
        .collect();
    let Some(&(_, last)) = lrs.last() else {
        return Rates::default();
    };
    let (peak_i, max) = lrs
        .iter()
        .copied()
        .fold((0, f64::NEG_INFINITY), |a, b| if b.1 > a.1 { b } else { a });
    // Drops out of a steady rate (a step decay, a plateau cut), not a cosine's last steps.
    let drops = lrs
        .windows(4)
        .filter(|w| w[3].1 <= 0.5 * w[2].1 && w[0].1 == w[2].1 && w[1].1 == w[2].1)
        .map(|w| (w[3].0, w[2].1, w[3].1))
        .collect();
    Rates {
        last: Some(last),
        max,
        decayed: last <= 0.2 * max,
        warmup_end: (lrs[0].1 < 0.5 * max).then_some(peak_i),
        half_after_peak: lrs.iter().find(|(i, l)| *i > peak_i && *l < 0.5 * max).map(|(i, _)| *i),
        drops,
    }
}

/// Judges a whole run.
pub fn judge_run(input: &RunInput<'_>) -> RunVerdict {
    let unit = unit_name(input.unit);
    let r = rates(input.points);
    let lr = r.last.or(input.lr);
    let mut findings = Vec::new();
    // Non-finite values: at the end they are the verdict; in the middle of a run that goes on
    // (an fp16 overflow the scaler skipped) they are a finding.
    let last_finite = input.points.iter().rposition(|p| p.loss.is_finite());
    let ends_nonfinite = input.points.last().is_some_and(|p| !p.loss.is_finite());
    let upto = if ends_nonfinite {
        input.points.iter().position(|p| !p.loss.is_finite()).unwrap_or(0)
    } else {
        last_finite.map_or(0, |i| i + 1)
    };
    let kept: Vec<&LogPoint> = input.points[..upto].iter().filter(|p| p.loss.is_finite()).collect();
    let skipped = upto - kept.len();
    if skipped > 0 {
        findings.push(format!(
            "{skipped} non-finite losses in the middle of the run were skipped"
        ));
    }
    let x: Vec<f64> = kept.iter().map(|p| p.x).collect();
    let y: Vec<f64> = kept.iter().map(|p| p.loss).collect();
    // A spike that came back by itself is a spike, not a divergence and not progress: the
    // judge reads the curve without it, and says it was there.
    let excursions = crate::run_curve::transient_excursions(&y);
    let (x, y) = if excursions.is_empty() {
        (x, y)
    } else {
        let inside = |i: usize| excursions.iter().any(|r| r.contains(&i));
        let first = &excursions[0];
        let peak = |r: &std::ops::Range<usize>| y[r.clone()].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        findings.push(format!(
            "{} transient spike(s) that recovered by themselves ({} values left out of the verdict), the first \
             at {} {} up to {} for {} values: not a divergence",
            excursions.len(),
            excursions.iter().map(|r| r.len()).sum::<usize>(),
            unit,
            short(x[first.start]),
            num(round_sig(peak(first))),
            first.len()
        ));
        let keep = |v: &[f64]| {
            v.iter()
                .enumerate()
                .filter(|(i, _)| !inside(*i))
                .map(|(_, v)| *v)
                .collect()
        };
        (keep(&x), keep(&y))
    };
    let n = y.len();
    let mut ev = Evidence {
        n: n as u64,
        last: y.last().copied(),
        lr,
        ..Default::default()
    };
    let verdict = |state, reason, confidence, suggestion, findings, ev| RunVerdict {
        state,
        reason,
        confidence,
        points: n,
        suggestion,
        findings,
        overfitting_since: None,
        evidence: ev,
    };
    if ends_nonfinite {
        let at = input.points.get(upto).map_or(0.0, |p| p.x);
        return nonfinite(input, &x, &y, at, lr, unit, findings, ev);
    }
    if n < MIN_POINTS {
        let s = Suggestion::keep(format!(
            "{n} finite losses: at least {MIN_POINTS} are needed for a verdict"
        ));
        return verdict(
            State::Insufficient,
            Reason::InsufficientData,
            Confidence::Low,
            s,
            findings,
            ev,
        );
    }
    let c = Curve::of_run(&x, &y);
    let (start, end, lo, hi) = (c.start, c.end, c.min(), c.max());
    ev.level_init = Some(start);
    ev.level_start = Some(start);
    ev.best = Some(lo);
    ev.level = Some(end);
    ev.cv = Some(c.sigma);
    let drop = start - lo;
    let net = start - end;
    let best_x = c.x[c.argmin];
    let mut confidence = match n {
        0..=9 => Confidence::Low,
        10..=29 => Confidence::Medium,
        _ => Confidence::High,
    };
    // Chance level ln C: the given class count, else the common ones (a classifier that outputs
    // a constant sits exactly there, with almost no minibatch noise).
    let levels: Vec<(u32, f64)> = match input.num_classes.filter(|c| *c >= 2) {
        Some(k) => vec![(k, f64::from(k).ln())],
        None => [2u32, 10, 100, 1000].iter().map(|k| (*k, f64::from(*k).ln())).collect(),
    };
    let chance_at = |v: f64, band: f64| levels.iter().copied().find(|(_, l)| (v - l).abs() <= band * l);
    let given_chance = input.num_classes.is_some();
    let chance_band = if given_chance { 0.1 } else { 0.03 };
    let at_chance = chance_at(end, chance_band);
    // Dead: flat at ln C with the noise of a constant output, after the loss moved (blew up, or
    // had been lower); a rate too small to move the loss sits there too, but never moved.
    let moved = |l: f64| {
        (c.significant(hi - start) && hi - start >= 0.1 * l)
            || (c.significant(end - lo) && end - lo >= 0.05 * l)
            || start - end >= 0.03 * l
    };
    // Without a visible move (a log that starts after the blow-up), only the exact level: a
    // constant output's loss is the class prior's entropy, ln C for balanced classes, to 0.1 %;
    // a rate too small to move the loss sits a few tenths of a percent off it.
    // A constant output is flat: the last third of the losses all sit in the band (a smooth
    // curve of epoch means passing through 0.69 on its way down is not dead).
    let flat_in = |l: f64, band: f64| y[2 * n / 3..].iter().all(|v| (v - l).abs() <= band * l);
    let dead = chance_at(end, 0.005)
        .filter(|(_, l)| c.sigma <= 0.005 * l && moved(*l) && flat_in(*l, 0.01))
        .or_else(|| chance_at(end, 0.001).filter(|(_, l)| c.sigma <= 0.003 * l && flat_in(*l, 0.005)));
    // A log that starts far above the chance level it ends at, and sits there with little
    // noise, blew up before its first line (ln 10 and up: a 10-class network that learned its
    // way down to 0.69 is common, a binary one dying there is not told apart this way).
    let fell_to_chance = chance_at(end, 0.05).filter(|(k, l)| {
        (*k >= 10 || given_chance)
            && start >= 1.3 * l
            && c.sigma <= 0.05 * l
            // A first line just under a higher chance level is that task's normal start (a
            // 100-class net from 4.4 to a plateau at 2.3), not a blow-up.
            && !levels.iter().any(|(_, h)| start >= 0.8 * h && start <= 1.05 * h)
            && c.recent_drop() < 0.05 * drop
            // And flat there, or on it to 0.5 %: a summarisation or language model still
            // falling through 2.38 or 6.9 over its last half is converging, not stuck at a
            // chance level; a blown-up classifier creeping back down to 2.3045 is.
            && (!c.significant(c.s[c.len() / 2] - c.end) || (c.end - l).abs() <= 0.005 * l)
    });
    // A log that starts well above a chance level and whose last half sits around it (or, with
    // the spikes of a blown-up classifier, up to twice above it) blew up before its first line and
    // came back only to chance: the fall from the first line is recovery, not learning. A
    // healthy curve passing through chance level (an LM or a 100-class net on its way down)
    // does so with small noise; a recovering blow-up bounces by a quarter of its level or more
    // (or, dead, by almost nothing). The first line of a task with more classes (just under its
    // own ln C) is a normal start, not a blow-up.
    let first_hi = y[0].max(c.s[0]);
    let tail_med = crate::stats::median(&y[n / 2..]);
    // Relative noise of the last half from its point-to-point changes (a median of 3-value bins
    // sits on one of them and understates a heavy-tailed noise by half).
    let cv = {
        let d: Vec<f64> = y[n / 2..].windows(2).map(|w| (w[1] - w[0]).abs()).collect();
        let sd = 1.0483 * crate::stats::median(&d);
        if tail_med > 0.0 && sd.is_finite() {
            sd / tail_med
        } else {
            0.0
        }
    };
    // Around its median too: a recovering blow-up drifts as well as bounces.
    let cv_spread = if tail_med > 0.0 {
        1.4826 * crate::stats::mad(&y[n / 2..]) / tail_med
    } else {
        0.0
    };
    let cv_noisy = cv.max(cv_spread);
    // (Up to 1.2x: one noisy first minibatch lands above its own ln C.)
    let starts_at_own_chance = levels.iter().any(|(_, l)| first_hi >= 0.8 * l && first_hi <= 1.2 * l);
    let flat_half = c.slope(c.len() / 2, c.len()).is_none_or(|(_, t)| t > -3.0);
    let recovered_to_chance = levels.iter().copied().find(|(k, l)| {
        // Bouncing: from a first line far above (a blown-up classifier starts its log at several
        // times ln C; a noisy healthy curve's first line is within twice its own start).
        // Up to twice ln C only with spikes of 30 % and a first line 4x the typical level (a
        // noisy healthy curve ending at 1.5 ln C started at most about twice as high).
        let noisy = cv_noisy >= 0.25
            && first_hi >= 2.5 * l
            && tail_med >= 0.75 * l
            && (tail_med <= 1.3 * l || (cv_noisy >= 0.3 && tail_med <= 2.0 * l && first_hi >= 4.0 * tail_med));
        let quiet = c.sigma <= 0.02 * l && flat_half && tail_med >= 0.97 * l && tail_med <= 1.1 * l;
        // Worse than a uniform guess at the end, not falling: the blow-up never came back.
        let above = tail_med >= 1.05 * l
            && tail_med <= 1.3 * l
            && end >= 1.05 * l
            // Not falling significantly: an LM's power law passes this band slowly, but falls.
            && flat_half;
        (*k >= 10 || given_chance)
            && tail_med > 0.0
            && y.iter().all(|v| *v >= 0.0)
            && first_hi >= 1.3 * l
            && !starts_at_own_chance
            && (noisy || quiet || above)
    });
    // The typical loss (the median of the last half, which a heavy-tailed batch-1 or spiky
    // log does not drag down the way its last few values do) still at chance level, no lower
    // than the typical loss of the first third: the network has not learned.
    let head_med = crate::stats::median(&y[..(n / 3).max(1)]);
    let typical_at_chance = levels.iter().copied().find(|(k, l)| {
        (*k >= 10 || given_chance)
            && tail_med > 0.0
            && y.iter().all(|v| *v >= 0.0)
            && (tail_med - l).abs() <= if cv_noisy >= 0.25 { 0.15 } else { 0.1 } * l
            && tail_med >= 0.9 * head_med
            && first_hi < 1.3 * l
    });
    // Back at chance after having been clearly lower: a network that learned and died.
    let came_back = |l: f64| c.significant(end - lo) && end - lo >= 0.05 * l;
    // A rate of 1 or more is large for any optimizer: a loss that stays at chance under it is
    // kept there by the rate, not held back by a small one.
    let high_rate = r.max.max(input.lr.unwrap_or(0.0)) >= 1.0;
    let chance_text =
        |(k, l): (u32, f64)| format!("ln {k} = {}, the loss of a uniform guess over {k} classes", fmt3(l));
    if excursions.is_empty() {
        spikes(&x, &y, &c, unit, &mut findings);
    }
    for (i, old, new) in r.drops.iter().take(3) {
        findings.push(format!(
            "lr dropped {} -> {} at {unit} {}",
            num(*old),
            num(*new),
            short(input.points[*i].x)
        ));
    }
    let fmt = |v: f64| num(round_sig(v));
    let lower = |why: String| {
        let (new, adv) = rate_advice(lr, 0.1, "lower");
        suggestion(
            Action::Rollback,
            new,
            lr,
            format!("{why}; {adv} and restart from the initial weights"),
        )
    };
    // Unstable: in the last third, at least a tenth of the losses lie above the initial loss by
    // more than the progress made (real runs: RMSprop at 1.0 kept jumping to 5-30 around a
    // median of 2.0, under its start of 2.3).
    let tail = &y[2 * n / 3..];
    let above = tail
        .iter()
        .filter(|v| **v > start + drop.max(0.0) + 3.0 * c.sigma)
        .count();
    let above_start = tail
        .iter()
        // (and beyond the curve's own noise: a flat noisy fine-tune whose start is one low
        // minibatch is not unstable; but twice the start is beyond any noise, which a blown-up
        // run's own spread would otherwise excuse).
        .filter(|v| start > 0.0 && **v > start + drop.max(0.0) + (0.25 * start).max(3.0 * c.sigma).min(start.abs()))
        .count();
    let unstable =
        n >= 15 && ((above * 10 >= tail.len() && c.significant(hi - start)) || above_start * 5 >= tail.len());
    let above = above.max(above_start);
    let rose_through_noise = rising_through_noise(&c, &x, &y, drop);
    // The schedule decayed the rate after the loss's minimum (a linear decay to 0): a small
    // rise in the last fifth of the log is not a rate too high, whose cure the schedule was
    // already applying; giving back half the progress is, and so is an earlier or sustained
    // rise (a trend over the bins since the minimum, Mann-Kendall z >= 2.5).
    let cooled = r.decayed && {
        let at = c.first[c.argmin];
        let lr_at = input
            .points
            .iter()
            .rev()
            .filter(|p| p.x <= x[at.min(n - 1)])
            .find_map(|p| p.lr);
        lr_at.is_some_and(|l| r.last.is_some_and(|e| e < 0.5 * l))
    };
    // Ended far above the start by its typical value, with most of its last half above the
    // start: a blow-up, whatever noise its own spread suggests (positive losses).
    let far_above_start = start > 0.0
        && tail_med >= 1.5 * start
        && y[n / 2..].iter().filter(|v| **v > start).count() * 5 >= (n - n / 2) * 4;
    let rising = || {
        let (new, adv) = rate_advice(lr, 0.1, "lower");
        let text = format!(
            "the loss has been rising since its minimum at {unit} {} ({} -> {}): {adv} and resume from the \
             checkpoint at {unit} {}",
            short(best_x),
            fmt(lo),
            fmt(end),
            short(best_x)
        );
        let mut s = suggestion(Action::Rollback, new, lr, text);
        s.rollback_to = (best_x >= 0.0).then_some(best_x as u64);
        (State::Diverging, Reason::RisingAfterMinimum, s)
    };
    let (state, reason, s) = if let Some(d) = dead {
        let moved = if c.significant(hi - start) {
            format!(" after blowing up to {}", fmt(hi))
        } else {
            String::new()
        };
        (
            State::Diverging,
            Reason::DeadNetwork,
            lower(format!(
                "the loss sits at {}{moved} with almost no noise: the network outputs a constant (dead units); if \
                 the rate is small, check the data and the labels instead",
                chance_text(d)
            )),
        )
    } else if let Some(ch) = fell_to_chance {
        (
            State::Diverging,
            Reason::DeadNetwork,
            lower(format!(
                "the log starts at {}, far above the chance level it ends at ({}): the loss blew up before the \
                 first logged step and the network died",
                fmt(start),
                chance_text(ch)
            )),
        )
    } else if let Some(ch) = recovered_to_chance {
        let quiet = c.sigma <= 0.02 * ch.1 && tail_med >= 0.97 * ch.1 && tail_med <= 1.1 * ch.1;
        let how = if quiet {
            "sits there with almost no noise: the network died".to_string()
        } else if tail_med >= 1.05 * ch.1 && cv_noisy < 0.25 {
            "stays above it, worse than a uniform guess".to_string()
        } else {
            format!(
                "bounces around it (noise {} % of its level)",
                num(round_sig(100.0 * cv_noisy))
            )
        };
        (
            State::Diverging,
            if quiet {
                Reason::DeadNetwork
            } else {
                Reason::NoNetProgressHigh
            },
            lower(format!(
                "the log starts at {}, far above {}, and its last half {} (median {}): the loss blew up before the \
                 first logged step and came back only to chance level",
                fmt(first_hi),
                chance_text(ch),
                how,
                fmt(tail_med)
            )),
        )
    } else if unstable {
        (
            State::Diverging,
            Reason::NoNetProgressHigh,
            lower(format!(
                "{} of the last {} losses are above the initial loss {} by more than the progress made (median now \
                 {}, peaks to {}): the run is unstable",
                above,
                tail.len(),
                fmt(start),
                fmt(end),
                fmt(tail.iter().copied().fold(f64::NEG_INFINITY, f64::max))
            )),
        )
    } else if let Some(ch) = typical_at_chance.filter(|_| !(c.significant(hi - start) && hi - start > 0.25 * start)) {
        if came_back(ch.1) {
            (
                State::Diverging,
                Reason::DeadNetwork,
                lower(format!(
                    "the loss came down to {} and went back up to {} (now {}): the network died",
                    fmt(lo),
                    chance_text(ch),
                    fmt(tail_med)
                )),
            )
        } else {
            stuck_at_chance(
                &chance_text(ch),
                (fmt(head_med), fmt(tail_med)),
                cv_noisy,
                high_rate,
                lr,
            )
        }
    } else if !c.significant(net) {
        // No net progress.
        if c.significant(-net) || far_above_start {
            (
                State::Diverging,
                Reason::NoNetProgressHigh,
                lower(format!(
                    "the loss ended higher than it started ({} -> {})",
                    fmt(start),
                    fmt(end)
                )),
            )
        } else if rose_through_noise {
            // Back up to where it started after a real fall: a divergence, not a flat log.
            rising()
        } else if c.significant(hi - start) && hi - start > 0.25 * start.abs().max(c.se * 10.0) {
            (
                State::Diverging,
                Reason::DeadNetwork,
                lower(format!(
                    "the loss blew up to {} and came back only to where it started ({} -> {}): the network died",
                    fmt(hi),
                    fmt(start),
                    fmt(end)
                )),
            )
        } else if let Some(ch) = at_chance.filter(|(k, l)| c.sigma >= 0.025 * l && (*k >= 10 || given_chance)) {
            // Bouncing around chance level (an MLP at lr 10 around ln 10; a binary classifier
            // around ln 2 when --classes says so: a Gaussian NLL passes 0.69 too): a live network
            // the rate keeps from learning, not a slow one.
            let (new, adv) = rate_advice(lr, 0.1, "lower");
            let text = format!(
                "the loss bounces around {} (noise {} %) without net progress ({} -> {}): the rate keeps the \
                 network from learning; {adv}",
                chance_text(ch),
                num(round_sig(100.0 * c.sigma / ch.1)),
                fmt(start),
                fmt(end)
            );
            (
                State::Oscillating,
                Reason::NoisyFlat,
                suggestion(Action::Lower, new, lr, text),
            )
        } else if let Some(ch) = at_chance.filter(|_| high_rate) {
            stuck_at_chance(&chance_text(ch), (fmt(start), fmt(end)), cv_noisy, high_rate, lr)
        } else if let Some(ch) = at_chance {
            let (new, adv) = rate_advice(lr, 10.0, "raise");
            let text = format!(
                "the loss has not moved from {} (about {}): the network is not learning; if the rate is small, \
                 {adv}; if it is already large, lower it 10x; check the labels and the loss function",
                fmt(end),
                chance_text(ch)
            );
            (State::Slow, Reason::Stalled, suggestion(Action::Raise, new, lr, text))
        } else {
            // Flat over the whole log, away from chance level: a log that starts after the fast
            // part of training (every 100 steps), or a run that has converged.
            let (new, adv) = rate_advice(lr, 0.1, "decay");
            let text = format!(
                "the loss is flat over the whole log ({} -> {}, no significant change): it has converged, or the \
                 log starts after the fast part; {adv}, or stop if it is good enough",
                fmt(start),
                fmt(end)
            );
            (
                State::Plateau,
                Reason::Stalled,
                suggestion(Action::Decay, new, lr, text),
            )
        }
    } else if (rising_after_min(&c, drop)
        && c.significant(end - c.robust_min())
        && !(cooled && end - lo < 0.5 * drop && c.trend_from(c.argmin) < 2.5 && c.argmin * 5 >= 4 * c.len()))
        || rose_through_noise
    {
        rising()
    } else if given_chance && at_chance.is_some() && c.significant(hi - start) {
        (
            State::Diverging,
            Reason::DeadNetwork,
            lower(format!(
                "the loss blew up to {} and settled at chance level {}",
                fmt(hi),
                fmt(end)
            )),
        )
    } else {
        let recent = c.recent_drop();
        // Still falling: the last third significantly lower, with a downward tendency over the
        // last half (a wandering curve's bins dip significantly by chance, its trend does not).
        // (A long pretraining curve still falls by a fraction of a percent of its progress per
        // third of the run; significance and the trend carry the weight, not the size.)
        let half = c.len() / 2;
        let still = c.significant(recent) && recent >= 0.002 * drop && c.trend_from(half) <= -1.0;
        let stepped = r.drops.iter().any(|(i, _, _)| {
            // The loss came down after a rate drop: bins after it lower than the bin before.
            let b = c.first.iter().rposition(|f| f <= i).unwrap_or(0);
            b > 0 && b + 1 < c.len() && c.significant(c.s[b - 1] - c.s[(b + 1).min(c.len() - 1)])
        });
        // Without a rate column, a step down is seen in the curve itself: one bin-to-bin drop
        // in the second half at least 4x the typical one and a tenth of the progress.
        let stepped = stepped || (r.last.is_none() && step_down(&c, drop));
        // Or, through noise that hides the two-bin difference, a fall over the last half that
        // the slope of all its bins shows clearly (t <= -3) and that is not one step down.
        let still = still
            || (!stepped
                && c.slope(half, c.len()).is_some_and(|(b, t)| {
                    t <= -3.0 && -b * (c.x[c.len() - 1] - c.x[half]) >= 0.004 * drop && c.trend_from(half) <= -1.0
                }));
        // A positive loss that has fallen to half its start or below made real progress,
        // whatever its pace (a GPT-2 memorising a small text falls faster and faster to 2 %
        // of its start): "the rate looks small" is the live rules' halving test too.
        let halved = start > 0.0 && end >= 0.0 && end <= 0.5 * start;
        // Barely moved from chance level: a rate far too small (positive losses only).
        let barely = at_chance.is_some() && start > 0.0 && net < 0.1 * start;
        // Under a schedule that decayed the rate, the pace is read while the rate was at least
        // half its peak: a loss still falling at its initial pace when the schedule slowed it
        // down had a peak rate too small (it did not converge; the rate ran out).
        let slow_until_decay = r.decayed
            && r.half_after_peak.is_some_and(|i| {
                let upto = x.iter().position(|t| *t >= input.points[i].x).unwrap_or(n);
                upto >= 6 && {
                    let sub = Curve::of_run(&x[..upto], &y[..upto]);
                    // Never rising (a peak rate that shook the loss up and a decay that calmed
                    // it is a rate too high, not too small), and nearly linear by its smooth
                    // bins (not through the noise: a decaying curve's noisy halves can look alike).
                    let rise = sub
                        .s
                        .iter()
                        .scan(f64::INFINITY, |m, v| {
                            *m = m.min(*v);
                            Some(v - *m)
                        })
                        .fold(0.0, f64::max);
                    sub.start > sub.min()
                        && !sub.significant(rise)
                        && slow_pace(&sub, &r, &x[..upto], &y[..upto], 0.8, false)
                }
            });
        // A handful of points (20 or fewer) without the rate do not tell a rate too small from a
        // warmup's ramp or the early part of a long run (an LLM's first 260 batches, a CNN's
        // first epochs off its initial plateau): the steady pace is then a finding, and the
        // verdict "still improving".
        let paced = still && !r.decayed && !halved && slow_pace(&c, &r, &x, &y, 0.6, true);
        let pace_says_slow = paced && (n > 20 || r.last.is_some() || input.lr.is_some());
        if paced && !pace_says_slow {
            findings.push(format!(
                "the loss is still falling at its initial pace over {n} points: if that was a constant rate for the \
                 whole run, the rate may be small (the log has no rate to tell; --lr gives it)"
            ));
        }
        if let Some(ch) = at_chance.filter(|_| barely && high_rate) {
            stuck_at_chance(&chance_text(ch), (fmt(start), fmt(end)), cv_noisy, high_rate, lr)
        } else if barely || pace_says_slow || slow_until_decay {
            let (new, adv) = rate_advice(lr, if barely { 10.0 } else { 3.0 }, "raise");
            let why = if barely {
                format!(
                    "the loss has barely moved from chance level ({} -> {})",
                    fmt(start),
                    fmt(end)
                )
            } else {
                format!(
                    "the loss is still falling at its initial pace ({} -> {}), with no sign of diminishing returns",
                    fmt(start),
                    fmt(end)
                )
            };
            let text = format!("{why}: the rate looks small; {adv}");
            let reason = if barely {
                Reason::LittleProgress
            } else {
                Reason::SlowRate
            };
            (State::Slow, reason, suggestion(Action::Raise, new, lr, text))
        } else if still {
            let keep = match lr {
                // A decayed schedule's last rate is not the one to keep: its peak is.
                Some(_) if r.decayed => format!("keep the schedule (peak lr {})", num(r.max)),
                Some(l) => format!("keep lr {}", num(l)),
                None => "keep the rate".to_string(),
            };
            let text = format!(
                "{keep}: the loss is decreasing ({} -> {}, still falling at the end)",
                fmt(start),
                fmt(end)
            );
            (
                State::Healthy,
                Reason::Improving,
                suggestion(Action::Keep, lr, lr, text),
            )
        } else if r.decayed || stepped {
            let why = if r.decayed {
                format!(
                    "the schedule decayed the rate to {} (peak {})",
                    num(r.last.unwrap_or(0.0)),
                    num(r.max)
                )
            } else {
                "the loss stepped down (after a rate drop)".to_string()
            };
            let text = format!(
                "converged: {why} and the loss settled ({} -> {}); nothing to change (stop, or train longer at \
                 the final rate)",
                fmt(start),
                fmt(end)
            );
            (
                State::Healthy,
                Reason::Converged,
                suggestion(Action::Keep, lr, lr, text),
            )
        } else {
            let (new, adv) = rate_advice(lr, 0.1, "decay");
            let text = format!(
                "the loss has stalled after real progress ({} -> best {} at {unit} {}, now {}): {adv}, or stop \
                 if it is good enough",
                fmt(start),
                fmt(lo),
                short(best_x),
                fmt(end)
            );
            (
                State::Plateau,
                Reason::FlatAfterProgress,
                suggestion(Action::Decay, new, lr, text),
            )
        }
    };
    // The live rules' divergence is adopted where the curve shows something that rose (a
    // blow-up, a rise after the minimum, an end above the start): on a flat noisy log whose
    // first line is one low minibatch, they read noise above that line as a dead network.
    let peak = y.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let rise_seen = c.significant(hi - start)
        || c.significant(end - lo)
        || c.significant(-net)
        // A blow-up of a few steps, inside one bin.
        || (peak - start > 10.0 * c.sigma && peak - start > 0.5 * start.abs());
    let (state, reason, s) = adopt_live(input, (state, reason, s), &y, lr, rise_seen, r.decayed);
    // With the class count given, a loss at chance level is never healthy, whatever its path.
    let (state, reason, s) = match at_chance.filter(|_| given_chance && state == State::Healthy) {
        Some(ch) if c.significant(hi - start) => (
            State::Diverging,
            Reason::DeadNetwork,
            lower(format!(
                "the loss blew up to {} and is back at {}",
                fmt(hi),
                chance_text(ch)
            )),
        ),
        Some(ch) => {
            let (new, adv) = rate_advice(lr, 10.0, "raise");
            let text = format!(
                "the loss is still at {} ({} -> {}): if the rate is small, {adv}; if it is large, lower it 10x",
                chance_text(ch),
                fmt(start),
                fmt(end)
            );
            (
                State::Slow,
                Reason::LittleProgress,
                suggestion(Action::Raise, new, lr, text),
            )
        }
        None => (state, reason, s),
    };
    // Noise as large as the effect lowers the confidence one step.
    let effect = drop.abs().max((end - lo).abs()).max((hi - start).abs());
    if 3.0 * c.se * std::f64::consts::SQRT_2 > 0.3 * effect {
        confidence = confidence.min(Confidence::Medium).min(match confidence {
            Confidence::High => Confidence::Medium,
            _ => Confidence::Low,
        });
    }
    ev.d = Some(if effect > 0.0 { drop / effect } else { 0.0 });
    let mut v = verdict(state, reason, confidence, s, findings, ev);
    overfitting(input, &x, &y, unit, &mut v);
    v
}

/// The loss stays at chance level (`chance`, typical level `from -> to`): a spiky one (noise a
/// quarter of its level) or one under a rate of 1 or more is kept there by the rate (diverging:
/// lower it); a noisy one bounces (oscillating: lower it); a quiet one under a small or unknown
/// rate has not started to learn (slow: raise it, or check the data).
fn stuck_at_chance(
    chance: &str,
    (from, to): (String, String),
    cv: f64,
    high_rate: bool,
    lr: Option<f64>,
) -> (State, Reason, Suggestion) {
    let noise = num(round_sig(100.0 * cv));
    if high_rate || cv >= 0.25 {
        let (new, adv) = rate_advice(lr, 0.1, "lower");
        let why = if high_rate {
            "under a rate of 1 or more".to_string()
        } else {
            format!("with noise {noise} % of its level")
        };
        let text = format!(
            "the typical loss stays at {chance} ({from} -> {to}) {why}: the rate keeps the network from learning; \
             {adv} and restart from the initial weights"
        );
        (
            State::Diverging,
            Reason::NoNetProgressHigh,
            suggestion(Action::Rollback, new, lr, text),
        )
    } else if cv >= 0.025 {
        let (new, adv) = rate_advice(lr, 0.1, "lower");
        let text = format!(
            "the loss bounces around {chance} (noise {noise} %) without net progress ({from} -> {to}): the rate \
             keeps the network from learning; {adv}"
        );
        (
            State::Oscillating,
            Reason::NoisyFlat,
            suggestion(Action::Lower, new, lr, text),
        )
    } else {
        let (new, adv) = rate_advice(lr, 10.0, "raise");
        let text = format!(
            "the loss has not moved from {to} (about {chance}): the network is not learning; if the rate is small, \
             {adv}; if it is already large, lower it 10x; check the labels and the loss function"
        );
        (State::Slow, Reason::Stalled, suggestion(Action::Raise, new, lr, text))
    }
}

/// A discontinuous drop in the second half of the curve (what a rate drop does to the loss).
fn step_down(c: &Curve, drop: f64) -> bool {
    let d: Vec<f64> = c.s.windows(2).map(|w| w[0] - w[1]).collect();
    if d.len() < 6 || drop <= 0.0 {
        return false;
    }
    let typical = crate::stats::median(&d.iter().map(|v| v.abs()).collect::<Vec<_>>());
    d[d.len() / 2..]
        .iter()
        .any(|v| *v >= 4.0 * typical && *v >= 0.1 * drop && c.significant(*v))
}

/// Three significant digits for chance levels (`ln 10 = 2.303`).
fn fmt3(v: f64) -> String {
    format!("{v:.3}")
}

/// The live rules' final verdict where it is the safer one: their divergence findings that
/// read the smoothed loss (a dead network, no net progress, a 4x rise, a sustained rise), and
/// their progress-so-far SLOW verdict on per-step positive losses (REAL_RUNS.md: 82/82).
fn adopt_live(
    input: &RunInput<'_>,
    judged: (State, Reason, Suggestion),
    y: &[f64],
    lr: Option<f64>,
    rise_seen: bool,
    decayed: bool,
) -> (State, Reason, Suggestion) {
    let Some(d) = input.live else {
        return judged;
    };
    let (state, _, _) = &judged;
    let positive = y.iter().all(|v| *v > 0.0);
    let diverging = matches!(
        d.reason,
        Reason::DeadNetwork | Reason::NoNetProgressHigh | Reason::Hard4x | Reason::EmaRise
    ) && d.state == State::Diverging;
    // (Not under a schedule that decayed the rate: the live rules read the pace at the last,
    // decayed rate, whose "too small" is the schedule's doing, not the peak's.)
    let slow = matches!(d.reason, Reason::LittleProgress | Reason::SlowRate)
        && d.state == State::Slow
        && d.stream == crate::state::Stream::Step
        && !decayed;
    let text_of = |d: &Diagnosis, factor: f64, verb: &str| {
        if input.lr.is_some() || lr.is_some() {
            d.suggestion.clone()
        } else {
            let (new, adv) = rate_advice(None, factor, verb);
            let mut s = d.suggestion.clone();
            s.new_lr = new;
            s.alt_lr = None;
            s.factor = Some(factor);
            s.text = format!("{} (live rules, {}): {adv}", d.state, d.reason.code());
            s
        }
    };
    if diverging && rise_seen && *state < State::Diverging && positive {
        return (State::Diverging, d.reason, text_of(d, 0.1, "lower"));
    }
    if slow && matches!(state, State::Healthy | State::Plateau) && positive && judged.1 != Reason::Converged {
        return (State::Slow, d.reason, text_of(d, 10.0, "raise"));
    }
    judged
}

/// The loss rose significantly after its minimum: by half of the progress, or by a tenth of
/// it with a rising trend since the minimum.
pub(crate) fn rising_after_min(c: &Curve, drop: f64) -> bool {
    let b = c.len();
    let rise = c.end - c.min();
    if c.argmin + 1 >= b || !c.significant(rise) {
        return false;
    }
    let after = b - c.argmin;
    let trend = (after >= 4 && c.trend_from(c.argmin) >= 1.645) || c.rises_at_end() >= 2;
    rise >= 0.5 * drop || (rise >= 0.1 * drop && trend)
}

/// Risen back by half the progress since the minimum, which two bins' medians are too noisy
/// to show but the OLS slope of every raw point since the minimum shows clearly (t >= 3).
fn rising_through_noise(c: &Curve, x: &[f64], y: &[f64], drop: f64) -> bool {
    let b = c.len();
    if drop <= 0.0 || c.argmin + 4 > b || c.end - c.robust_min() < 0.5 * drop {
        return false;
    }
    let from = c.first[c.argmin].min(y.len());
    ols(&x[from..], &y[from..]).is_some_and(|(slope, t)| slope > 0.0 && t >= 3.0)
}

/// Still falling at its initial pace: the second half (by x, after any warmup) fell at least
/// `ratio` times as much as the first (0.6; 0.8 for the part of a run before its schedule decayed);
/// `through_noise`: also by each half's slope over all its bins.
fn slow_pace(c: &Curve, r: &Rates, x: &[f64], y: &[f64], ratio: f64, through_noise: bool) -> bool {
    let b = c.len();
    if b < 8 {
        // A short log (6 to 24 points, 5-7 bins): each half's OLS slope over the raw points,
        // against that half's own residual noise.
        let n = y.len();
        if n < 6 || b < 5 {
            return false;
        }
        let from = r.warmup_end.filter(|i| *i < n / 2).unwrap_or(0);
        let mid = from + (n - from) / 2;
        return match (ols(&x[from..mid], &y[from..mid]), ols(&x[mid..], &y[mid..])) {
            (Some((b1, t1)), Some((b2, _))) => b1 < 0.0 && t1 <= -3.0 && b2 <= ratio * b1,
            _ => false,
        };
    }
    let from = r
        .warmup_end
        .and_then(|i| c.first.iter().rposition(|f| *f <= i))
        .filter(|f| *f < b / 2)
        .unwrap_or(0);
    let (x0, x1) = (c.x[from], c.x[b - 1]);
    let mid_x = 0.5 * (x0 + x1);
    let mid =
        c.x.iter()
            .position(|x| *x >= mid_x)
            .unwrap_or(b / 2)
            .clamp(from + 1, b - 1);
    let h1 = c.s[from] - c.s[mid];
    let h2 = c.s[mid] - c.end;
    if h1 > 0.0 && c.significant(h1) && h2 >= ratio * h1 {
        return true;
    }
    // Through the noise, but not against the two-bin comparison: a fast fall that flattened
    // under heavy noise has a second half well under half of the first.
    if !through_noise || h1 <= 0.0 || h2 < 0.3 * h1 {
        return false;
    }
    // The same comparison through the noise: each half's OLS slope over all its raw points
    // (the most of the noise averaged out; a fall that flattened within a half still gives
    // that half the larger slope).
    let lo = c.first[from].min(y.len());
    let split = x.iter().position(|t| *t >= mid_x).unwrap_or(y.len()).clamp(lo, y.len());
    match (ols(&x[lo..split], &y[lo..split]), ols(&x[split..], &y[split..])) {
        (Some((b1, t1)), Some((b2, _))) => b1 < 0.0 && t1 <= -3.0 && b2 <= ratio * b1,
        _ => false,
    }
}

/// OLS slope of `y` on `x` and its t statistic from the residuals (at least 3 points).
fn ols(x: &[f64], y: &[f64]) -> Option<(f64, f64)> {
    let k = x.len();
    if k < 3 || y.len() != k {
        return None;
    }
    let kf = k as f64;
    let mx = x.iter().sum::<f64>() / kf;
    let my = y.iter().sum::<f64>() / kf;
    let sxx: f64 = x.iter().map(|v| (v - mx) * (v - mx)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let b = x.iter().zip(y).map(|(u, v)| (u - mx) * (v - my)).sum::<f64>() / sxx;
    let rss: f64 = x.iter().zip(y).map(|(u, v)| (v - my - b * (u - mx)).powi(2)).sum();
    let se = (rss / (kf - 2.0).max(1.0) / sxx).sqrt();
    // A noise-free line: judged against rounding (a millionth of its level).
    let se = se.max(1e-6 * my.abs().max(f64::MIN_POSITIVE) / sxx.sqrt());
    Some((b, b / se))
}

/// Findings for values far above their neighbourhood that came back down.
fn spikes(x: &[f64], y: &[f64], c: &Curve, unit: &str, findings: &mut Vec<String>) {
    let scale = (c.max() - c.min()).max(c.sigma);
    if scale <= 0.0 {
        return;
    }
    let mut count = 0;
    let mut first = None;
    for (b, &lo) in c.first.iter().enumerate() {
        let hi = c.first.get(b + 1).copied().unwrap_or(y.len());
        for i in lo..hi {
            if y[i] - c.s[b] > (8.0 * c.sigma).max(0.5 * scale) && i + 1 < y.len() {
                count += 1;
                first.get_or_insert(x[i]);
            }
        }
    }
    if let Some(at) = first {
        findings.push(format!(
            "{count} transient spike(s) that recovered, the first at {unit} {}: not a divergence",
            short(at)
        ));
    }
}

#[allow(clippy::too_many_arguments)]
fn nonfinite(
    input: &RunInput<'_>,
    x: &[f64],
    y: &[f64],
    at: f64,
    lr: Option<f64>,
    unit: &str,
    findings: Vec<String>,
    mut ev: Evidence,
) -> RunVerdict {
    ev.nonfinite_reached = true;
    let n = y.len();
    let min = y.iter().copied().fold(f64::INFINITY, f64::min);
    let spread = y.iter().copied().fold(f64::NEG_INFINITY, f64::max) - min;
    // Rising into the NaN: the last finite value is the largest of the last three and clearly
    // above the minimum.
    let rising = n >= 2 && {
        let last = y[n - 1];
        let tail = &y[n.saturating_sub(3)..];
        tail.iter().all(|v| *v <= last) && last - min > 0.1 * spread.max(1e-12) && last > y[n - 2]
    };
    let (state, reason) = if rising {
        (State::Diverging, Reason::NonfiniteAfterDivergence)
    } else {
        (State::Exploded, Reason::NonfiniteSudden)
    };
    let confidence = if n >= 3 { Confidence::High } else { Confidence::Medium };
    let live = input
        .live
        .filter(|d| d.state == state && input.lr.or(lr).is_some() && d.evidence.nonfinite_reached);
    let s = match live {
        Some(d) => {
            let mut s = d.suggestion.clone();
            if s.new_lr.is_some_and(|l| !SANE_LR.contains(&l)) {
                s.text += " (an extraordinary rate: check the log's lr units)";
            }
            s
        }
        None => {
            let (new, adv) = rate_advice(lr, 0.1, "lower");
            let trail: Vec<String> = y[n.saturating_sub(4)..].iter().map(|v| num(round_sig(*v))).collect();
            let text = if rising {
                format!(
                    "the loss rose {} -> NaN at {unit} {}: {adv} and restart from the last checkpoint before the rise",
                    trail.join(" -> "),
                    short(at)
                )
            } else {
                format!(
                    "the loss became non-finite at {unit} {} without rising first: check the numerics (fp16 \
                     overflow, log(0), a division), add gradient clipping, and {adv}",
                    short(at)
                )
            };
            suggestion(Action::Rollback, new, lr, text)
        }
    };
    let _ = x;
    RunVerdict {
        state,
        reason,
        confidence,
        points: n,
        suggestion: s,
        findings,
        overfitting_since: None,
        evidence: ev,
    }
}

/// Overfitting: the validation loss rose significantly after its minimum while the training loss
/// did not rise over the same stretch. A finding, and the verdict's reason when the rate is fine.
fn overfitting(input: &RunInput<'_>, x: &[f64], y: &[f64], unit: &str, v: &mut RunVerdict) {
    let val: Vec<&ValPoint> = input.val.iter().filter(|p| p.loss.is_finite()).collect();
    if val.len() < 4 {
        return;
    }
    let vx: Vec<f64> = val.iter().map(|p| p.x).collect();
    let vy: Vec<f64> = val.iter().map(|p| p.loss).collect();
    let c = Curve::of_run(&vx, &vy);
    let drop = c.start - c.min();
    let rise = c.end - c.min();
    // Evaluation losses bounce from one evaluation to the next more than their noise estimate
    // from a handful of points says: a rise is also clear when every evaluation since the
    // best (3 or more) stayed above it, by a tenth of the progress at their median and at the
    // median of the last 3 (DNABERT-2: 0.23 best, then 0.25-0.30 for seven evaluations while
    // the training loss fell 0.17 -> 0.03).
    // (The evaluations after the best bin: a long validation log is binned like any curve.)
    let after = &vy[c.first.get(c.argmin + 1).copied().unwrap_or(vy.len())..];
    let stayed_above = after.len() >= 3
        && drop > 0.0
        && after.iter().all(|v| *v > c.min())
        && crate::stats::median(after) - c.min() >= 0.1 * drop
        && crate::stats::median(&after[after.len() - 3..]) - c.min() >= 0.1 * drop;
    if c.argmin + 2 > c.len() || !(c.significant(rise) || stayed_above) || rise < 0.05 * drop.max(0.0) {
        return;
    }
    if !(c.trend_from(c.argmin) >= 1.0 || c.rises_at_end() >= 1 || rise >= 0.3 * drop) {
        return;
    }
    let at = c.x[c.argmin];
    // Training loss over the same stretch: not rising, and, where it was logged there, still
    // falling (a language model stuck at 7.4 whose validation loss wanders is not learning
    // too well; it is not learning).
    let i0 = x.iter().position(|t| *t >= at).unwrap_or(x.len());
    if i0 + 2 <= y.len() {
        let t = Curve::of_run(&x[i0..], &y[i0..]);
        if t.significant(t.end - t.start) || (t.len() >= 5 && !t.significant(t.start - t.end)) {
            return;
        }
    }
    let when = val
        .get(c.first[c.argmin])
        .and_then(|p| p.epoch)
        .map(|e| format!("epoch {}", short(e)))
        .unwrap_or_else(|| format!("{unit} {}", short(at)));
    let text = format!(
        "overfitting since {when}: the validation loss rose {} -> {} while the training loss kept falling; stop \
         early, regularise (weight decay, dropout, augmentation) or keep the best checkpoint ({when})",
        num(round_sig(c.min())),
        num(round_sig(c.end))
    );
    v.findings.insert(0, text.clone());
    v.overfitting_since = Some(at);
    if v.state <= State::Plateau {
        v.state = State::Healthy;
        v.reason = Reason::Overfit;
        let rate = if v.suggestion.text.is_empty() {
            String::new()
        } else {
            format!(" (training loss: {})", v.suggestion.text)
        };
        v.suggestion = Suggestion {
            action: Action::Stop,
            new_lr: None,
            alt_lr: None,
            factor: None,
            rollback_to: (at >= 0.0).then_some(at as u64),
            extras: Vec::new(),
            text: format!("{text}{rate}"),
        };
    }
}
