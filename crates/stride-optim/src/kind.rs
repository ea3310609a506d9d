use std::fmt;
use std::str::FromStr;

use candle_core::Var;

use crate::error::{OptimError, Result};
use crate::hyper::{with_role, Role};
use crate::params::ParamGroup;
use crate::{
    AdadeltaConfig, AdagradConfig, AdamConfig, AdamaxConfig, DAdaptAdamConfig, DAdaptSgdConfig, LionConfig,
    NAdamConfig, Optimizer, Optimizing, ProdigyConfig, RAdamConfig, RmsPropConfig, ScheduleFreeAdamWConfig,
    ScheduleFreeSgdConfig, SgdConfig, UpdateRule,
};

/// Whether an optimizer's step grows with the gradient (SGD) or is normalised entrywise
/// (Adam, RMSprop, Adagrad, Lion, ...): muP scales the two kinds' per-layer rates differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpdateFamily {
    /// The step is the gradient times the rate (plus momentum).
    Sgd,
    /// The step is about the rate per entry, whatever the gradient's scale.
    Adaptive,
}

/// Builds an optimizer over parameter groups from a base rate and the optional momentum
/// (beta1 for the Adam family) and weight decay that override the rule's defaults.
pub type BuildFn = fn(Vec<ParamGroup>, f64, Option<f64>, Option<f64>) -> Result<Box<dyn Optimizer>>;

/// One row of the optimizer table: what the command line, the sweeps and the LR tools need
/// to know of an optimizer. The built-ins are [`OptimizerKind::spec`]; a rule written
/// outside this crate gets one with [`OptimizerSpec::of`] and joins them in a [`Registry`].
#[derive(Clone, Copy)]
pub struct OptimizerSpec {
    /// Lower-case name, as parsed.
    pub name: &'static str,
    /// The rate used when none is given.
    pub default_lr: f64,
    /// How an update's size depends on the gradient's (muP's per-layer rates depend on it).
    pub family: UpdateFamily,
    /// Builds it.
    pub build: BuildFn,
}

impl fmt::Debug for OptimizerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OptimizerSpec")
            .field("name", &self.name)
            .field("default_lr", &self.default_lr)
            .field("family", &self.family)
            .finish()
    }
}

/// Two rows are the same optimizer when they have the same name: a registry holds a name once.
impl PartialEq for OptimizerSpec {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl OptimizerSpec {
    /// A row for rule `C`, built from `C::default()` with the rate, momentum and weight decay
    /// set through its [`UpdateRule::HYPER`] roles.
    pub fn of<C: UpdateRule>(name: &'static str, default_lr: f64, family: UpdateFamily) -> Self {
        Self {
            name,
            default_lr,
            family,
            build: |groups, lr, momentum, wd| build_rule(C::default(), groups, lr, momentum, wd),
        }
    }

    /// Builds it over one group of `vars`.
    pub fn build(
        &self,
        vars: Vec<Var>,
        lr: f64,
        momentum: Option<f64>,
        weight_decay: Option<f64>,
    ) -> Result<Box<dyn Optimizer>> {
        (self.build)(vec![ParamGroup::new(vars)], lr, momentum, weight_decay)
    }

    /// Builds it over parameter groups, each training at `lr * lr_scale`.
    pub fn build_groups(
        &self,
        groups: Vec<ParamGroup>,
        lr: f64,
        momentum: Option<f64>,
        weight_decay: Option<f64>,
    ) -> Result<Box<dyn Optimizer>> {
        (self.build)(groups, lr, momentum, weight_decay)
    }
}

impl fmt::Display for OptimizerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl From<OptimizerKind> for OptimizerSpec {
    fn from(kind: OptimizerKind) -> Self {
        kind.spec()
    }
}

/// `base` with rate `lr` and, where given, the momentum and weight decay, found through its
/// hyper-parameter roles, as an optimizer over `groups`.
pub fn build_rule<C: UpdateRule>(
    mut base: C,
    groups: Vec<ParamGroup>,
    lr: f64,
    momentum: Option<f64>,
    weight_decay: Option<f64>,
) -> Result<Box<dyn Optimizer>> {
    base.set_lr(lr);
    if let Some(m) = momentum {
        let row = with_role(C::HYPER, Role::Momentum).or_else(|| with_role(C::HYPER, Role::FixedMomentum));
        match row {
            Some(row) => row.set(&mut base, m)?,
            None => {
                return Err(OptimError::Config {
                    name: "momentum",
                    value: m,
                    message: "this optimizer has no momentum setting",
                })
            }
        }
    }
    if let (Some(wd), Some(row)) = (weight_decay, with_role(C::HYPER, Role::WeightDecay)) {
        row.set(&mut base, wd)?;
    }
    Ok(Box::new(Optimizing::with_groups(groups, base)?))
}

/// Declares the built-in optimizers once: the enum, its table of rows and the name list.
/// A row: the variant (with its doc), the name, the default rate, the family, and the base
/// config as a function of the rate (the defaults, which the rate then overrides).
macro_rules! builtin_optimizers {
    ($($(#[$doc:meta])* $variant:ident => $name:literal, $lr:expr, $family:ident, $base:expr;)*) => {
        /// The optimizers a command line or a sweep can name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum OptimizerKind {
            $($(#[$doc])* $variant,)*
        }

        impl OptimizerKind {
            /// Every kind, in the order of the crate docs.
            pub const ALL: [Self; [$($name),*].len()] = [$(Self::$variant),*];

            /// Its row of the optimizer table.
            pub fn spec(self) -> OptimizerSpec {
                match self {
                    $(Self::$variant => OptimizerSpec {
                        name: $name,
                        default_lr: $lr,
                        family: UpdateFamily::$family,
                        build: |groups, lr, momentum, wd| build_rule(($base)(lr), groups, lr, momentum, wd),
                    },)*
                }
            }
        }
    };
}

// The default rates are PyTorch's (the table in the crate docs), except SGD's 0.1 instead
// of 1e-3, the rate an MLP on MNIST-like data wants (at 1e-3 the run is stable but very
// slow; Keras uses 0.01). The others are their reference packages' defaults; for Prodigy
// and D-Adaptation it is a multiplier of the estimated step.
builtin_optimizers! {
    /// [`crate::Sgd`].
    Sgd => "sgd", 0.1, Sgd, |_| SgdConfig::default();
    /// [`crate::Adam`].
    Adam => "adam", 1e-3, Adaptive, |_| AdamConfig::default();
    /// [`crate::AdamW`].
    AdamW => "adamw", 1e-3, Adaptive, AdamConfig::adamw;
    /// [`crate::RmsProp`].
    RmsProp => "rmsprop", 1e-2, Adaptive, |_| RmsPropConfig::default();
    /// [`crate::Adagrad`].
    Adagrad => "adagrad", 1e-2, Adaptive, |_| AdagradConfig::default();
    /// [`crate::Adadelta`].
    Adadelta => "adadelta", 1.0, Adaptive, |_| AdadeltaConfig::default();
    /// [`crate::Adamax`].
    Adamax => "adamax", 2e-3, Adaptive, |_| AdamaxConfig::default();
    /// [`crate::NAdam`].
    NAdam => "nadam", 2e-3, Adaptive, |_| NAdamConfig::default();
    /// [`crate::RAdam`].
    RAdam => "radam", 1e-3, Adaptive, |_| RAdamConfig::default();
    /// [`crate::Lion`].
    Lion => "lion", 1e-4, Adaptive, LionConfig::with_lr;
    /// [`crate::ScheduleFreeAdamW`].
    ScheduleFreeAdamW => "sf-adamw", 0.0025, Adaptive, ScheduleFreeAdamWConfig::with_lr;
    /// [`crate::ScheduleFreeSgd`].
    ScheduleFreeSgd => "sf-sgd", 1.0, Sgd, ScheduleFreeSgdConfig::with_lr;
    /// [`crate::Prodigy`].
    Prodigy => "prodigy", 1.0, Adaptive, ProdigyConfig::with_lr;
    /// [`crate::DAdaptAdam`].
    DAdaptAdam => "dadapt-adam", 1.0, Adaptive, DAdaptAdamConfig::with_lr;
    /// [`crate::DAdaptSgd`].
    DAdaptSgd => "dadapt-sgd", 1.0, Sgd, DAdaptSgdConfig::with_lr;
}

impl OptimizerKind {
    /// How an update's size depends on the gradient's: what muP's per-layer rates depend on.
    pub fn update_family(self) -> UpdateFamily {
        self.spec().family
    }

    /// Lower-case name, as parsed.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The rate used when none is given (see the table above [`OptimizerKind::spec`]'s rows).
    pub fn default_lr(self) -> f64 {
        self.spec().default_lr
    }

    /// Builds the optimizer with its defaults except the learning rate and, when given,
    /// the momentum (SGD, RMSprop, Schedule-Free SGD, D-Adaptation SGD; beta1 for the Adam
    /// family, Lion, Schedule-Free AdamW and Prodigy) and weight decay.
    pub fn build(
        self,
        vars: Vec<Var>,
        lr: f64,
        momentum: Option<f64>,
        weight_decay: Option<f64>,
    ) -> Result<Box<dyn Optimizer>> {
        self.spec().build(vars, lr, momentum, weight_decay)
    }

    /// [`Self::build`] over parameter groups, each training at `lr * lr_scale` (muP's
    /// per-layer rates, a smaller rate for a pretrained backbone).
    pub fn build_groups(
        self,
        groups: Vec<ParamGroup>,
        lr: f64,
        momentum: Option<f64>,
        weight_decay: Option<f64>,
    ) -> Result<Box<dyn Optimizer>> {
        self.spec().build_groups(groups, lr, momentum, weight_decay)
    }
}

/// Optimizers by name: the built-ins, plus the rules a program registers, so its command
/// line and sweeps can name them as they name `adam`.
#[derive(Debug, Clone, PartialEq)]
pub struct Registry {
    specs: Vec<OptimizerSpec>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Registry {
    /// The built-in optimizers, in [`OptimizerKind::ALL`]'s order.
    pub fn builtin() -> Self {
        Self {
            specs: OptimizerKind::ALL.iter().map(|k| k.spec()).collect(),
        }
    }

    /// Adds `spec`; a name already taken is an error (it would hide the other).
    pub fn register(&mut self, spec: OptimizerSpec) -> Result<()> {
        if self.specs.iter().any(|s| s.name == spec.name) {
            return Err(OptimError::Unknown(format!(
                "optimizer {:?} is already registered",
                spec.name
            )));
        }
        self.specs.push(spec);
        Ok(())
    }

    /// The optimizer named `name` (any case), or an error listing the names.
    pub fn get(&self, name: &str) -> Result<OptimizerSpec> {
        let lower = name.to_ascii_lowercase();
        self.specs
            .iter()
            .find(|s| s.name == lower)
            .copied()
            .ok_or_else(|| unknown_optimizer(name, self.specs.iter().map(|s| s.name)))
    }

    /// Every row.
    pub fn specs(&self) -> &[OptimizerSpec] {
        &self.specs
    }
}

impl fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for OptimizerKind {
    type Err = OptimError;

    fn from_str(s: &str) -> Result<Self> {
        let lower = s.to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|k| k.name() == lower)
            .ok_or_else(|| unknown_optimizer(s, Self::ALL.iter().map(|k| k.name())))
    }
}

/// The error for an optimizer name that is not among `names`, listing them.
fn unknown_optimizer<'a>(name: &str, names: impl Iterator<Item = &'a str>) -> OptimError {
    let names: Vec<&str> = names.collect();
    OptimError::Unknown(format!("optimizer {name:?}: expected one of {}", names.join(", ")))
}
