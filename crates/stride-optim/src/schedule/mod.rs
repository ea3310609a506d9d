//! Learning-rate schedules: pure functions of the step, one metric-driven
//! plateau rule, and a text grammar for the command line.
//!
//! A [`Schedule`] maps a counter `t` (0 for the first update) to a learning
//! rate, so resuming needs only `t` and tests are tables of `(t, lr)`. The
//! closed forms follow PyTorch's `torch.optim.lr_scheduler` formulas; each
//! type's doc names the PyTorch class and any place where it differs. Only
//! [`ReduceLrOnPlateau`] keeps state. A trainer holds a [`Scheduler`]: a boxed
//! schedule, an optional plateau factor, and the [`ScheduleUnit`] it is
//! stepped in.
//!
//! # The schedule grammar
//!
//! [`parse_schedule`] reads the spec the command line takes, as in
//! `stride schedule "<spec>" --lr 0.1`. `--lr` is the base rate: every
//! schedule starts from it unless a parameter says otherwise.
//!
//! ```text
//! spec    := seq [ "per" ("step" | "epoch") ]
//! seq     := part ( "then" part )*
//! part    := product [ "for" N ]
//! product := call ( "*" call )*
//! call    := NAME [ "(" [ arg ( "," arg )* ] ")" ]
//! arg     := [ KEY "=" ] value            -- one positional arg, first, where shown below
//! value   := NUMBER | WORD | "[" [ NUMBER ( "," NUMBER )* ] "]"
//! ```
//!
//! | call | PyTorch | parameters (default) |
//! |---|---|---|
//! | `constant` | — | `lr` (positional; `--lr`) |
//! | `step(gamma=0.5, every=1000)` | `StepLR` | `every` (positional, required), `gamma` (0.1) |
//! | `multistep(gamma=0.1, at=[30, 80])` | `MultiStepLR` | `at` (positional, required; a list, or one step), `gamma` (0.1) |
//! | `exp(gamma=0.999)` | `ExponentialLR` | exactly one of `gamma` (lr·γ^t) or `lambda` (lr·e^(−λt)) |
//! | `cosine(10000, min=1e-5)` | `CosineAnnealingLR` | `t_max` (positional, required), `min` (0) |
//! | `restarts(t0=100, mult=2)` | `CosineAnnealingWarmRestarts` | `t0` (positional, required), `mult` (1), `min` (0) |
//! | `warmup(500)` | `LinearLR` | `total` (positional; 5), `start` (1/3), `end` (1) |
//! | `poly(total=1000, power=2)` | `PolynomialLR` | `total` (positional; 5), `power` (1) |
//! | `invtime(k=1e-3)` | — (CS231n 1/t) | `k` (positional, required) |
//! | `onecycle(total=5000, max=0.1)` | `OneCycleLR` | `total` (positional, required), `max` (`--lr`), `pct` (0.3), `anneal` (`cos`\|`linear`), `div` (25), `final_div` (1e4), `three_phase` (false), `momentum` (true), `base_momentum` (0.85), `max_momentum` (0.95) |
//! | `cyclic(base=1e-3, max=0.1, up=2000)` | `CyclicLR` | `max` (required), `base` (`--lr`), `up` (2000), `down` (`up`), `mode` (`triangular`\|`triangular2`\|`exp_range`), `gamma` (1), `momentum` (true), `base_momentum` (0.8), `max_momentum` (0.9) |
//! | `wsd(10000, warmup=500)` | — (`transformers` `get_wsd_schedule`) | `total` (positional, required), `warmup` (0), `decay` (0.2, a fraction of `total`) or `decay_steps`, `shape` (`sqrt`\|`linear`), `min` (0) |
//! | `linear(10000, warmup=500)` | — | `total` (positional, required), `warmup` (0), `min` (0) |
//! | `plateau(patience=2, factor=0.5)` | `ReduceLROnPlateau` | `patience` (10), `factor` (0.1), `mode` (`min`\|`max`), `threshold` (1e-4), `threshold_mode` (`rel`\|`abs`), `cooldown` (0), `min_lr` (0), `eps` (1e-8) |
//!
//! Warm-up starts at PyTorch `LinearLR`'s default factor 1/3, not at 0;
//! write `warmup(500, start=0.01)` for a gentler start.
//!
//! **`wsd`** is warmup-stable-decay ([`Wsd`]): a linear warm-up from 0 over `warmup`
//! steps, `--lr` until the cooldown, then a cooldown over the last `decay` fraction of
//! `total` (or `decay_steps`), `1 - sqrt(p)` (Hägele et al. 2024's best) or linear, to
//! `min`. **`linear`** is linear decay to `min` (0) after the warm-up. The stable phase does
//! not depend on `total`: resume a stable-phase checkpoint with the same `warmup` and
//! another `total` and the run branches into that budget's cooldown.
//!
//! **`A then B`** runs `A`, then `B` counting from 0 where `A` ended, as
//! PyTorch's `SequentialLR` does ([`Sequential`]). `A` lasts its natural
//! length (`warmup`, `poly`, `onecycle`, `wsd`, `linear`: `total`; `cosine`: `t_max`)
//! or what `for N` says; the others (`constant`, `step`, `cyclic`, ...) need
//! `for N`. The last part runs to the end, so `for N` there is an error. **`A * B`** multiplies factors, as PyTorch's `ChainedScheduler`
//! does for multiplicative schedules ([`Chained`]): each term is evaluated
//! with a base rate of 1 and the product is scaled by `--lr`, so inside a
//! product every rate parameter (`min=`, `max=`, `base=`) is a fraction of
//! `--lr`; a product lasts as long as its longest term. **`plateau`** may
//! only be the last part: it holds `--lr` and divides it on plateaus, and
//! counts only metrics observed after the earlier parts end (warm-up then
//! plateau, which PyTorch cannot compose, pytorch#68978).
//!
//! The counter is optimizer steps unless the spec ends in `per epoch`; a spec
//! with `plateau` counts epochs unless it ends in `per step`.
//!
//! ```text
//! constant
//! step(gamma=0.5, every=1000)
//! multistep(gamma=0.1, at=[30, 80]) per epoch
//! exp(lambda=1e-3)
//! cosine(10000, min=1e-5)
//! warmup(500) then cosine(9500)
//! constant for 1000 then cosine(9000)
//! warmup(500, start=0.01) * exp(gamma=0.9995)
//! warmup(5) then plateau(patience=2, factor=0.5)
//! onecycle(total=5000, max=0.1, anneal=linear, three_phase=true)
//! cyclic(base=1e-3, max=0.1, up=2000, mode=triangular2)
//! wsd(10000, warmup=500, decay=0.2, shape=sqrt)
//! linear(10000, warmup=500)
//! ```
//!
//! Errors name the column, underline the token and say what was expected:
//!
//! ```text
//! invalid schedule at column 6: unknown parameter `gama` for `step`; expected one of every, gamma
//!   step(gama=0.5, every=1000)
//!        ^^^^
//! ```

mod calls;
mod compose;
mod cosine;
mod cyclic;
mod decay;
mod error;
mod grammar;
mod help;
mod lexer;
mod one_cycle;
mod plateau;
mod preview;
mod ramp;
mod scheduler;
mod wsd;

#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod grammar_fuzz;
#[cfg(test)]
mod grammar_tests;
#[cfg(test)]
mod test_util;

use std::sync::Arc;

pub use compose::{Chained, Lambda, Sequential};
pub use cosine::{CosineAnnealing, CosineWarmRestarts};
pub use cyclic::{Cyclic, CyclicMode};
pub use decay::{Constant, Exponential, ExponentialDecay, InverseTime, MultiStep, StepDecay};
pub use error::{Result, ScheduleError};
pub use grammar::parse_schedule;
pub use help::SCHEDULE_GRAMMAR_HELP;
pub use one_cycle::{Anneal, OneCycle};
pub use plateau::{PlateauConfig, PlateauMode, ReduceLrOnPlateau, ThresholdMode};
pub use preview::{preview, render_ascii_plot, to_csv};
pub use ramp::{LinearWarmup, Polynomial};
pub use scheduler::{ScheduleUnit, Scheduler};
pub use wsd::{Cooldown, Wsd};

/// A learning rate as a pure function of a counter.
///
/// `t` starts at 0: `lr(0)` is the rate of the first update. Whether `t`
/// counts optimizer steps or epochs is the caller's choice (see
/// [`ScheduleUnit`]); the formulas do not care. Implementations must not
/// panic for any `t`, including `u64::MAX`.
///
/// A number is a schedule (`0.1` is constant) and so is any
/// `Fn(u64) -> f64`, so a custom schedule costs one closure.
pub trait Schedule: Send + Sync {
    /// The learning rate for counter value `t`.
    fn lr(&self, t: u64) -> f64;

    /// The momentum (SGD) or beta1 (Adam) for counter value `t`, or `None` to
    /// leave the optimizer's own value alone.
    ///
    /// Only [`OneCycle`] and [`Cyclic`] with momentum cycling return `Some`,
    /// as PyTorch's `cycle_momentum` does; the trainer applies it.
    fn momentum(&self, _t: u64) -> Option<f64> {
        None
    }
}

impl Schedule for f64 {
    fn lr(&self, _t: u64) -> f64 {
        *self
    }
}

impl<F: Fn(u64) -> f64 + Send + Sync> Schedule for F {
    fn lr(&self, t: u64) -> f64 {
        self(t)
    }
}

impl Schedule for Box<dyn Schedule> {
    fn lr(&self, t: u64) -> f64 {
        (**self).lr(t)
    }
    fn momentum(&self, t: u64) -> Option<f64> {
        (**self).momentum(t)
    }
}

impl Schedule for Arc<dyn Schedule> {
    fn lr(&self, t: u64) -> f64 {
        (**self).lr(t)
    }
    fn momentum(&self, t: u64) -> Option<f64> {
        (**self).momentum(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_closures_and_boxes_are_schedules() {
        fn takes(s: &dyn Schedule, t: u64) -> f64 {
            s.lr(t)
        }
        assert_eq!(takes(&0.1, 7), 0.1);
        assert_eq!(takes(&|t: u64| 1.0 / (t + 1) as f64, 3), 0.25);
        let boxed: Box<dyn Schedule> = Box::new(StepDecay::new(1.0, 0.5, 1).unwrap());
        assert_eq!(takes(&boxed, 2), 0.25);
        let one_cycle: Arc<dyn Schedule> = Arc::new(OneCycle::new(0.1, 100).unwrap());
        // max_lr / div_factor through PyTorch's cos formula, 0.0040000000000000036 in both.
        assert!((takes(&one_cycle, 0) - 0.004).abs() < 1e-17);
        assert_eq!(one_cycle.momentum(0), Some(0.95));
        assert_eq!(boxed.momentum(0), None);
    }
}
