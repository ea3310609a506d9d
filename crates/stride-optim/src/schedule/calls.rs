//! The calls of the schedule grammar: their parameters, defaults and the
//! schedule each builds.

use super::cosine::{CosineAnnealing, CosineWarmRestarts};
use super::cyclic::{Cyclic, CyclicMode};
use super::decay::{Constant, Exponential, ExponentialDecay, InverseTime, MultiStep, StepDecay};
use super::error::{Result, ScheduleError};
use super::grammar::{whole, Arg, Call, Span, Value};
use super::one_cycle::{Anneal, OneCycle};
use super::plateau::{PlateauConfig, PlateauMode, ReduceLrOnPlateau, ThresholdMode};
use super::ramp::{LinearWarmup, Polynomial};
use super::wsd::{Cooldown, Wsd};
use super::Schedule;

/// The call names, in the order error messages list them.
pub(crate) const CALLS: [&str; 14] = [
    "constant",
    "step",
    "multistep",
    "exp",
    "cosine",
    "restarts",
    "warmup",
    "poly",
    "invtime",
    "onecycle",
    "cyclic",
    "wsd",
    "linear",
    "plateau",
];

/// What a call builds: a pure schedule, or the plateau rule.
pub(crate) enum Built {
    Schedule(Box<dyn Schedule>),
    Plateau(ReduceLrOnPlateau),
}

/// `(keys, positional key)` of a call; the positional argument, if any, comes first.
pub(crate) fn signature(name: &str) -> (&'static [&'static str], Option<&'static str>) {
    match name {
        "constant" => (&["lr"], Some("lr")),
        "step" => (&["every", "gamma"], Some("every")),
        "multistep" => (&["at", "gamma"], Some("at")),
        "exp" => (&["gamma", "lambda"], None),
        "cosine" => (&["t_max", "min"], Some("t_max")),
        "restarts" => (&["t0", "mult", "min"], Some("t0")),
        "warmup" => (&["total", "start", "end"], Some("total")),
        "poly" => (&["total", "power"], Some("total")),
        "invtime" => (&["k"], Some("k")),
        "onecycle" => (
            &[
                "total",
                "max",
                "pct",
                "anneal",
                "div",
                "final_div",
                "three_phase",
                "momentum",
                "base_momentum",
                "max_momentum",
            ],
            Some("total"),
        ),
        "cyclic" => (
            &[
                "max",
                "base",
                "up",
                "down",
                "mode",
                "gamma",
                "momentum",
                "base_momentum",
                "max_momentum",
            ],
            None,
        ),
        "wsd" => (
            &["total", "warmup", "decay", "decay_steps", "shape", "min"],
            Some("total"),
        ),
        "linear" => (&["total", "warmup", "min"], Some("total")),
        "plateau" => (
            &[
                "patience",
                "factor",
                "mode",
                "threshold",
                "threshold_mode",
                "cooldown",
                "min_lr",
                "eps",
            ],
            None,
        ),
        _ => (&[], None),
    }
}

/// Struct fields whose grammar key is spelled differently.
const FIELD_KEYS: [(&str, &str); 15] = [
    ("eta_min", "min"),
    ("t_0", "t0"),
    ("t_mult", "mult"),
    ("start_factor", "start"),
    ("end_factor", "end"),
    ("total_iters", "total"),
    ("total_steps", "total"),
    ("max_lr", "max"),
    ("base_lr", "base"),
    ("pct_start", "pct"),
    ("div_factor", "div"),
    ("final_div_factor", "final_div"),
    ("step_size_up", "up"),
    ("step_size_down", "down"),
    ("warmup_steps", "warmup"),
];

/// Builds `call` with base rate `base`; returns its natural length
/// (the `total`/`t_max` of finite schedules) for `then`.
pub(crate) fn build_call(spec: &str, call: &Call, base: f64) -> Result<(Built, Option<u64>)> {
    let a = Args::new(spec, call)?;
    let boxed = |s: Box<dyn Schedule>, len: Option<u64>| (Built::Schedule(s), len);
    Ok(match call.name.as_str() {
        "constant" => boxed(Box::new(a.config(Constant::new(a.number("lr", Some(base))?))?), None),
        "step" => {
            let (gamma, every) = (a.number("gamma", Some(0.1))?, a.count("every", None)?);
            boxed(Box::new(a.config(StepDecay::new(base, gamma, every))?), None)
        }
        "multistep" => {
            let (gamma, at) = (a.number("gamma", Some(0.1))?, a.counts("at")?);
            boxed(Box::new(a.config(MultiStep::new(base, gamma, at))?), None)
        }
        "exp" => boxed(exp(&a, base)?, None),
        "cosine" => {
            let (t_max, min) = (a.count("t_max", None)?, a.number("min", Some(0.0))?);
            boxed(Box::new(a.config(CosineAnnealing::new(base, t_max, min))?), Some(t_max))
        }
        "restarts" => {
            let (t0, mult) = (a.count("t0", None)?, a.count("mult", Some(1))?);
            let min = a.number("min", Some(0.0))?;
            boxed(Box::new(a.config(CosineWarmRestarts::new(base, t0, mult, min))?), None)
        }
        "warmup" => {
            let total = a.count("total", Some(5))?;
            let (start, end) = (a.number("start", Some(1.0 / 3.0))?, a.number("end", Some(1.0))?);
            boxed(
                Box::new(a.config(LinearWarmup::new(base, start, end, total))?),
                Some(total),
            )
        }
        "poly" => {
            let (total, power) = (a.count("total", Some(5))?, a.number("power", Some(1.0))?);
            boxed(Box::new(a.config(Polynomial::new(base, total, power))?), Some(total))
        }
        "invtime" => boxed(Box::new(a.config(InverseTime::new(base, a.number("k", None)?))?), None),
        "onecycle" => {
            let s = one_cycle(&a, base)?;
            boxed(Box::new(s), Some(s.total_steps))
        }
        "cyclic" => boxed(Box::new(cyclic(&a, base)?), None),
        "wsd" | "linear" => {
            let s = wsd(&a, base)?;
            boxed(Box::new(s), Some(s.total_steps))
        }
        _ => (Built::Plateau(plateau(&a, base)?), None),
    })
}

/// `exp(gamma=g)` is PyTorch's `ExponentialLR`, `exp(lambda=l)` the textbook `e^(-l t)`.
fn exp(a: &Args, base: f64) -> Result<Box<dyn Schedule>> {
    match (a.get("gamma"), a.get("lambda")) {
        (Some(_), None) => Ok(Box::new(a.config(Exponential::new(base, a.number("gamma", None)?))?)),
        (None, Some(_)) => Ok(Box::new(
            a.config(ExponentialDecay::new(base, a.number("lambda", None)?))?,
        )),
        (Some(_), Some(second)) => Err(a.error(second.span, "give either `gamma` or `lambda`, not both")),
        (None, None) => Err(a.error(
            a.call.span,
            "`exp` needs `gamma=` (lr * gamma^t) or `lambda=` (lr * e^(-lambda t))",
        )),
    }
}

fn one_cycle(a: &Args, base: f64) -> Result<OneCycle> {
    let s = OneCycle {
        max_lr: a.number("max", Some(base))?,
        total_steps: a.count("total", None)?,
        pct_start: a.number("pct", Some(0.3))?,
        anneal: match a.word("anneal", &["cos", "linear"], "cos")? {
            "linear" => Anneal::Linear,
            _ => Anneal::Cos,
        },
        div_factor: a.number("div", Some(25.0))?,
        final_div_factor: a.number("final_div", Some(1e4))?,
        three_phase: a.flag("three_phase", false)?,
        cycle_momentum: a.flag("momentum", true)?,
        base_momentum: a.number("base_momentum", Some(0.85))?,
        max_momentum: a.number("max_momentum", Some(0.95))?,
    };
    a.config(s.validate())
}

fn cyclic(a: &Args, base: f64) -> Result<Cyclic> {
    let up = a.count("up", Some(2000))?;
    let s = Cyclic {
        base_lr: a.number("base", Some(base))?,
        max_lr: a.number("max", None)?,
        step_size_up: up,
        step_size_down: a.count("down", Some(up))?,
        mode: match a.word("mode", &["triangular", "triangular2", "exp_range"], "triangular")? {
            "triangular2" => CyclicMode::Triangular2,
            "exp_range" => CyclicMode::ExpRange,
            _ => CyclicMode::Triangular,
        },
        gamma: a.number("gamma", Some(1.0))?,
        cycle_momentum: a.flag("momentum", true)?,
        base_momentum: a.number("base_momentum", Some(0.8))?,
        max_momentum: a.number("max_momentum", Some(0.9))?,
    };
    a.config(s.validate())
}

/// `wsd(...)`, and `linear(...)`: a WSD whose cooldown is everything after the warm-up.
fn wsd(a: &Args, base: f64) -> Result<Wsd> {
    let total = a.count("total", None)?;
    let warmup = a.count("warmup", Some(0))?;
    let linear = a.call.name == "linear";
    let decay_steps = match (a.get("decay"), a.get("decay_steps")) {
        _ if linear => total.saturating_sub(warmup),
        (Some(_), Some(second)) => {
            return Err(a.error(
                second.span,
                "give either `decay` (a fraction) or `decay_steps`, not both",
            ))
        }
        (None, Some(_)) => a.count("decay_steps", None)?,
        (fraction, None) => {
            let f = a.number("decay", Some(0.2))?;
            if !(f > 0.0 && f <= 1.0) {
                let span = fraction.map_or(a.call.span, |arg| arg.span);
                return Err(a.error(
                    span,
                    &format!("invalid decay = {f}: expected a fraction of total in (0, 1]"),
                ));
            }
            // At least one step: a cooldown of 0 steps would end the run at the peak.
            ((f * total as f64).round() as u64).max(1)
        }
    };
    let cooldown = match a.word("shape", &["sqrt", "linear"], if linear { "linear" } else { "sqrt" })? {
        "linear" => Cooldown::Linear,
        _ => Cooldown::OneMinusSqrt,
    };
    let s = Wsd {
        lr0: base,
        total_steps: total,
        warmup_steps: warmup,
        decay_steps,
        cooldown,
        eta_min: a.number("min", Some(0.0))?,
    };
    if linear && warmup >= total {
        let span = a.get("warmup").map_or(a.call.span, |arg| arg.span);
        return Err(a.error(span, &format!("invalid warmup = {warmup}: expected warmup < total")));
    }
    a.config(s.validate())
}

fn plateau(a: &Args, base: f64) -> Result<ReduceLrOnPlateau> {
    let d = PlateauConfig::default();
    let config = PlateauConfig {
        mode: match a.word("mode", &["min", "max"], "min")? {
            "max" => PlateauMode::Max,
            _ => PlateauMode::Min,
        },
        factor: a.number("factor", Some(d.factor))?,
        patience: a.count("patience", Some(d.patience))?,
        threshold: a.number("threshold", Some(d.threshold))?,
        threshold_mode: match a.word("threshold_mode", &["rel", "abs"], "rel")? {
            "abs" => ThresholdMode::Abs,
            _ => ThresholdMode::Rel,
        },
        cooldown: a.count("cooldown", Some(d.cooldown))?,
        min_lr: a.number("min_lr", Some(d.min_lr))?,
        eps: a.number("eps", Some(d.eps))?,
    };
    a.config(ReduceLrOnPlateau::new(base, config))
}

/// The arguments of one call, checked against its signature.
struct Args<'a> {
    spec: &'a str,
    call: &'a Call,
    by_key: Vec<(&'static str, &'a Arg)>,
}

impl<'a> Args<'a> {
    /// Resolves positional and named arguments; rejects unknown and repeated keys.
    fn new(spec: &'a str, call: &'a Call) -> Result<Self> {
        let (keys, positional) = signature(&call.name);
        let mut args = Args {
            spec,
            call,
            by_key: Vec::new(),
        };
        let name = &call.name;
        for (i, arg) in call.args.iter().enumerate() {
            let key = match (&arg.key, positional) {
                (Some((k, span)), _) => match keys.iter().find(|&&key| key == k) {
                    Some(&key) => (key, *span),
                    None => {
                        let why = format!(
                            "unknown parameter `{k}` for `{name}`; expected one of {}",
                            keys.join(", ")
                        );
                        return Err(args.error(*span, &why));
                    }
                },
                (None, Some(key)) if i == 0 => (key, arg.span),
                (None, _) => {
                    let why = match positional {
                        Some(p) => {
                            format!("only the first argument of `{name}` (`{p}`) may omit its name; write key=value")
                        }
                        None => format!("`{name}` takes key=value arguments: {}", keys.join(", ")),
                    };
                    return Err(args.error(arg.span, &why));
                }
            };
            if args.get(key.0).is_some() {
                return Err(args.error(key.1, &format!("`{}` is given twice", key.0)));
            }
            args.by_key.push((key.0, arg));
        }
        Ok(args)
    }

    fn get(&self, key: &str) -> Option<&'a Arg> {
        self.by_key.iter().find(|(k, _)| *k == key).map(|(_, a)| *a)
    }

    fn error(&self, at: Span, message: &str) -> ScheduleError {
        ScheduleError::Parse {
            spec: self.spec.to_string(),
            offset: at.offset,
            len: at.len,
            message: message.to_string(),
        }
    }

    /// The value of `key`, or its default, or an error naming the missing key.
    fn value(&self, key: &str, has_default: bool) -> Result<Option<&'a Arg>> {
        match self.get(key) {
            Some(arg) => Ok(Some(arg)),
            None if has_default => Ok(None),
            None => Err(self.error(self.call.span, &format!("`{}` needs `{key}=...`", self.call.name))),
        }
    }

    fn number(&self, key: &str, default: Option<f64>) -> Result<f64> {
        match self.value(key, default.is_some())? {
            None => Ok(default.unwrap_or(0.0)),
            Some(Arg {
                value: Value::Number(v),
                ..
            }) => Ok(*v),
            Some(arg) => Err(self.error(arg.span, &format!("`{key}` expects a number"))),
        }
    }

    fn count(&self, key: &str, default: Option<u64>) -> Result<u64> {
        match self.value(key, default.is_some())? {
            None => Ok(default.unwrap_or(0)),
            Some(arg) => match arg.value {
                Value::Number(v) => whole(v),
                _ => None,
            }
            .ok_or_else(|| self.error(arg.span, &format!("`{key}` expects a whole number of steps"))),
        }
    }

    /// A list of step counts; a single number is a list of one.
    fn counts(&self, key: &str) -> Result<Vec<u64>> {
        let arg = self
            .value(key, false)?
            .ok_or_else(|| self.error(self.call.span, "missing list"))?;
        match &arg.value {
            Value::Number(v) => whole(*v)
                .map(|n| vec![n])
                .ok_or_else(|| self.error(arg.span, "expected a step")),
            Value::List(items) => items
                .iter()
                .map(|&(v, span)| whole(v).ok_or_else(|| self.error(span, "expected a whole number of steps")))
                .collect(),
            Value::Word(_) => Err(self.error(arg.span, &format!("`{key}` expects a list like [30, 80]"))),
        }
    }

    /// One of `choices`; returns the matching static string.
    fn word(&self, key: &str, choices: &[&'static str], default: &'static str) -> Result<&'static str> {
        let Some(arg) = self.get(key) else {
            return Ok(default);
        };
        let found = match &arg.value {
            Value::Word(w) => choices.iter().find(|&&c| c == w).copied(),
            _ => None,
        };
        found.ok_or_else(|| self.error(arg.span, &format!("`{key}` expects one of {}", choices.join(", "))))
    }

    fn flag(&self, key: &str, default: bool) -> Result<bool> {
        let default_word = if default { "true" } else { "false" };
        Ok(self.word(key, &["true", "false"], default_word)? == "true")
    }

    /// Re-points a constructor's `Config` error at the argument it names,
    /// spelled as the grammar spells it.
    fn config<T>(&self, r: Result<T>) -> Result<T> {
        r.map_err(|e| match e {
            ScheduleError::Config { name, value, message } => {
                let key = FIELD_KEYS.iter().find(|(f, _)| *f == name).map_or(name, |(_, k)| *k);
                let span = self.get(key).map_or(self.call.span, |a| a.span);
                self.error(span, &format!("invalid {key} = {value}: {message}"))
            }
            other => other,
        })
    }
}
