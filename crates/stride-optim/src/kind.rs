use std::fmt;
use std::str::FromStr;

use candle_core::Var;

use crate::error::{OptimError, Result};
use crate::params::ParamGroup;
use crate::{
    AdadeltaConfig, AdagradConfig, AdamConfig, AdamaxConfig, DAdaptAdamConfig, DAdaptSgdConfig, LionConfig,
    NAdamConfig, Optimizer, Optimizing, ProdigyConfig, RAdamConfig, RmsPropConfig, ScheduleFreeAdamWConfig,
    ScheduleFreeSgdConfig, SgdConfig,
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

/// The optimizers a command line or a sweep can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OptimizerKind {
    /// [`crate::Sgd`].
    Sgd,
    /// [`crate::Adam`].
    Adam,
    /// [`crate::AdamW`].
    AdamW,
    /// [`crate::RmsProp`].
    RmsProp,
    /// [`crate::Adagrad`].
    Adagrad,
    /// [`crate::Adadelta`].
    Adadelta,
    /// [`crate::Adamax`].
    Adamax,
    /// [`crate::NAdam`].
    NAdam,
    /// [`crate::RAdam`].
    RAdam,
    /// [`crate::Lion`].
    Lion,
    /// [`crate::ScheduleFreeAdamW`].
    ScheduleFreeAdamW,
    /// [`crate::ScheduleFreeSgd`].
    ScheduleFreeSgd,
    /// [`crate::Prodigy`].
    Prodigy,
    /// [`crate::DAdaptAdam`].
    DAdaptAdam,
    /// [`crate::DAdaptSgd`].
    DAdaptSgd,
}

impl OptimizerKind {
    /// Every kind, in the order of the crate docs.
    pub const ALL: [Self; 15] = [
        Self::Sgd,
        Self::Adam,
        Self::AdamW,
        Self::RmsProp,
        Self::Adagrad,
        Self::Adadelta,
        Self::Adamax,
        Self::NAdam,
        Self::RAdam,
        Self::Lion,
        Self::ScheduleFreeAdamW,
        Self::ScheduleFreeSgd,
        Self::Prodigy,
        Self::DAdaptAdam,
        Self::DAdaptSgd,
    ];

    /// How an update's size depends on the gradient's: what muP's per-layer rates depend on.
    pub fn update_family(self) -> UpdateFamily {
        match self {
            Self::Sgd | Self::ScheduleFreeSgd | Self::DAdaptSgd => UpdateFamily::Sgd,
            _ => UpdateFamily::Adaptive,
        }
    }

    /// Lower-case name, as parsed.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sgd => "sgd",
            Self::Adam => "adam",
            Self::AdamW => "adamw",
            Self::RmsProp => "rmsprop",
            Self::Adagrad => "adagrad",
            Self::Adadelta => "adadelta",
            Self::Adamax => "adamax",
            Self::NAdam => "nadam",
            Self::RAdam => "radam",
            Self::Lion => "lion",
            Self::ScheduleFreeAdamW => "sf-adamw",
            Self::ScheduleFreeSgd => "sf-sgd",
            Self::Prodigy => "prodigy",
            Self::DAdaptAdam => "dadapt-adam",
            Self::DAdaptSgd => "dadapt-sgd",
        }
    }

    /// The rate used when none is given: PyTorch's default (the table in the crate docs),
    /// except SGD's 0.1 instead of 1e-3, the rate an MLP on MNIST-like data wants (at 1e-3
    /// the run is stable but very slow; Keras uses 0.01). The others are their reference
    /// packages' defaults; for Prodigy and D-Adaptation it is a multiplier of the estimated step.
    pub fn default_lr(self) -> f64 {
        match self {
            Self::Sgd => 0.1,
            Self::Adam | Self::AdamW | Self::RAdam => 1e-3,
            Self::RmsProp | Self::Adagrad => 1e-2,
            Self::Adadelta => 1.0,
            Self::Adamax | Self::NAdam => 2e-3,
            Self::Lion => 1e-4,
            Self::ScheduleFreeAdamW => 0.0025,
            Self::ScheduleFreeSgd | Self::Prodigy | Self::DAdaptAdam | Self::DAdaptSgd => 1.0,
        }
    }

    /// Builds the optimizer with PyTorch's defaults except the learning rate and,
    /// when given, the momentum (SGD, RMSprop, Schedule-Free SGD, D-Adaptation SGD; beta1
    /// for the Adam family, Lion, Schedule-Free AdamW and Prodigy) and weight decay.
    pub fn build(
        self,
        vars: Vec<Var>,
        lr: f64,
        momentum: Option<f64>,
        weight_decay: Option<f64>,
    ) -> Result<Box<dyn Optimizer>> {
        self.build_groups(vec![ParamGroup::new(vars)], lr, momentum, weight_decay)
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
        if let (Some(m), Self::Adagrad | Self::Adadelta | Self::NAdam) = (momentum, self) {
            return Err(OptimError::Config {
                name: "momentum",
                value: m,
                message: "this optimizer has no momentum setting",
            });
        }
        let wd = |default: f64| weight_decay.unwrap_or(default);
        Ok(match self {
            Self::Sgd => Box::new(Optimizing::with_groups(
                groups,
                SgdConfig {
                    lr,
                    momentum: momentum.unwrap_or(0.0),
                    weight_decay: wd(0.0),
                    ..SgdConfig::default()
                },
            )?),
            Self::Adam | Self::AdamW => {
                let base = if self == Self::AdamW {
                    AdamConfig::adamw(lr)
                } else {
                    AdamConfig::with_lr(lr)
                };
                Box::new(Optimizing::with_groups(
                    groups,
                    AdamConfig {
                        beta1: momentum.unwrap_or(base.beta1),
                        weight_decay: wd(base.weight_decay),
                        ..base
                    },
                )?)
            }
            Self::RmsProp => Box::new(Optimizing::with_groups(
                groups,
                RmsPropConfig {
                    lr,
                    momentum: momentum.unwrap_or(0.0),
                    weight_decay: wd(0.0),
                    ..RmsPropConfig::default()
                },
            )?),
            Self::Adagrad => Box::new(Optimizing::with_groups(
                groups,
                AdagradConfig {
                    lr,
                    weight_decay: wd(0.0),
                    ..AdagradConfig::default()
                },
            )?),
            Self::Adadelta => Box::new(Optimizing::with_groups(
                groups,
                AdadeltaConfig {
                    lr,
                    weight_decay: wd(0.0),
                    ..AdadeltaConfig::default()
                },
            )?),
            Self::Adamax => Box::new(Optimizing::with_groups(
                groups,
                AdamaxConfig {
                    lr,
                    beta1: momentum.unwrap_or(0.9),
                    weight_decay: wd(0.0),
                    ..AdamaxConfig::default()
                },
            )?),
            Self::NAdam => Box::new(Optimizing::with_groups(
                groups,
                NAdamConfig {
                    lr,
                    weight_decay: wd(0.0),
                    ..NAdamConfig::default()
                },
            )?),
            Self::RAdam => Box::new(Optimizing::with_groups(
                groups,
                RAdamConfig {
                    lr,
                    beta1: momentum.unwrap_or(0.9),
                    weight_decay: wd(0.0),
                    ..RAdamConfig::default()
                },
            )?),
            Self::Lion => {
                let base = LionConfig::with_lr(lr);
                Box::new(Optimizing::with_groups(
                    groups,
                    LionConfig {
                        beta1: momentum.unwrap_or(base.beta1),
                        weight_decay: wd(base.weight_decay),
                        ..base
                    },
                )?)
            }
            Self::ScheduleFreeAdamW => {
                let base = ScheduleFreeAdamWConfig::with_lr(lr);
                Box::new(Optimizing::with_groups(
                    groups,
                    ScheduleFreeAdamWConfig {
                        beta1: momentum.unwrap_or(base.beta1),
                        weight_decay: wd(base.weight_decay),
                        ..base
                    },
                )?)
            }
            Self::ScheduleFreeSgd => {
                let base = ScheduleFreeSgdConfig::with_lr(lr);
                Box::new(Optimizing::with_groups(
                    groups,
                    ScheduleFreeSgdConfig {
                        momentum: momentum.unwrap_or(base.momentum),
                        weight_decay: wd(base.weight_decay),
                        ..base
                    },
                )?)
            }
            Self::Prodigy => {
                let base = ProdigyConfig::with_lr(lr);
                Box::new(Optimizing::with_groups(
                    groups,
                    ProdigyConfig {
                        beta1: momentum.unwrap_or(base.beta1),
                        weight_decay: wd(base.weight_decay),
                        ..base
                    },
                )?)
            }
            Self::DAdaptAdam => {
                let base = DAdaptAdamConfig::with_lr(lr);
                Box::new(Optimizing::with_groups(
                    groups,
                    DAdaptAdamConfig {
                        beta1: momentum.unwrap_or(base.beta1),
                        weight_decay: wd(base.weight_decay),
                        ..base
                    },
                )?)
            }
            Self::DAdaptSgd => {
                let base = DAdaptSgdConfig::with_lr(lr);
                Box::new(Optimizing::with_groups(
                    groups,
                    DAdaptSgdConfig {
                        momentum: momentum.unwrap_or(base.momentum),
                        weight_decay: wd(base.weight_decay),
                        ..base
                    },
                )?)
            }
        })
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
        Self::ALL.into_iter().find(|k| k.name() == lower).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|k| k.name()).collect();
            OptimError::Unknown(format!("optimizer {s:?}: expected one of {}", names.join(", ")))
        })
    }
}
