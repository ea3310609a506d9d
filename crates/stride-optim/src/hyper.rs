//! A rule's hyper-parameters as a table ([`crate::UpdateRule::HYPER`]): the engine reads the
//! rate, the momentum and the weight decay through their roles, and saves and restores every
//! entry by name, so a rule declares its fields once instead of writing accessors and a
//! (de)serialiser by hand.

use std::collections::BTreeMap;

use crate::error::{OptimError, Result};

/// What a hyper-parameter is to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The base learning rate (exactly one entry); saved apart from the others.
    Lr,
    /// The default weight decay of every group (exactly one entry).
    WeightDecay,
    /// Momentum or beta1: set by `--momentum` and cycled by momentum schedules.
    Momentum,
    /// Momentum or beta1 set when the optimizer is built but not cycled during training
    /// (Schedule-Free's interpolation weight: its averaging assumes it is constant).
    FixedMomentum,
    /// Anything else.
    Other,
}

/// How a hyper-parameter is held in the config and written in a saved state (as an f64).
pub enum Field<C> {
    /// A real number.
    Real(fn(&C) -> f64, fn(&mut C, f64)),
    /// A switch, saved as 0 or 1.
    Flag(fn(&C) -> bool, fn(&mut C, bool)),
    /// A count of steps, saved as a whole number.
    Count(fn(&C) -> u64, fn(&mut C, u64)),
    /// A number that may be absent (absent means the rule's default, e.g. unbounded, which
    /// JSON could not hold as infinity); saved only when present.
    Optional(fn(&C) -> Option<f64>, fn(&mut C, Option<f64>)),
}

/// One row of a rule's hyper-parameter table.
pub struct Hyper<C> {
    /// Name in saved states and error messages: the field's name.
    pub name: &'static str,
    /// What the engine does with it.
    pub role: Role,
    /// How to read and write it.
    pub field: Field<C>,
}

// By hand: a derive would ask `C: Copy`, and the configs need not be.
impl<C> Clone for Field<C> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<C> Copy for Field<C> {}
impl<C> Clone for Hyper<C> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<C> Copy for Hyper<C> {}

impl<C> std::fmt::Debug for Hyper<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hyper")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish()
    }
}

impl<C> Hyper<C> {
    /// The value as a real number, `None` for an absent optional one.
    pub fn get(&self, config: &C) -> Option<f64> {
        match self.field {
            Field::Real(get, _) => Some(get(config)),
            Field::Flag(get, _) => Some(f64::from(u8::from(get(config)))),
            Field::Count(get, _) => Some(get(config) as f64),
            Field::Optional(get, _) => get(config),
        }
    }

    /// Sets a real number, a switch (non-zero is on) or a count (checked to be one).
    pub fn set(&self, config: &mut C, value: f64) -> Result<()> {
        match self.field {
            Field::Real(_, set) => set(config, value),
            Field::Flag(_, set) => set(config, value != 0.0),
            Field::Count(_, set) => set(config, count(self.name, value)?),
            Field::Optional(_, set) => set(config, Some(value)),
        }
        Ok(())
    }
}

/// `value` as a step count, or an error naming `name`.
fn count(name: &str, value: f64) -> Result<u64> {
    if value >= 0.0 && value.fract() == 0.0 && value < 2f64.powi(53) {
        Ok(value as u64)
    } else {
        Err(OptimError::State(format!("{name} = {value} is not a step count")))
    }
}

/// The one entry with `role`, if the table has one.
pub fn with_role<C>(table: &[Hyper<C>], role: Role) -> Option<&Hyper<C>> {
    table.iter().find(|h| h.role == role)
}

/// Checks that `table` has exactly one rate and one weight-decay entry, at most one momentum,
/// every one of those a real number, and no name twice.
pub fn check_table<C>(kind: &str, table: &[Hyper<C>]) -> Result<()> {
    for role in [Role::Lr, Role::WeightDecay] {
        let n = table.iter().filter(|h| h.role == role).count();
        if n != 1 {
            return Err(OptimError::Unknown(format!(
                "rule {kind}: its HYPER table has {n} entries with role {role:?}, expected 1"
            )));
        }
    }
    // The engine sets these through `Hyper::set` and ignores its error: only a real number
    // cannot fail to take a value.
    if let Some(h) = table
        .iter()
        .find(|h| h.role != Role::Other && !matches!(h.field, Field::Real(..)))
    {
        return Err(OptimError::Unknown(format!(
            "rule {kind}: {} has role {:?} but is not a real number",
            h.name, h.role
        )));
    }
    let momenta = table
        .iter()
        .filter(|h| matches!(h.role, Role::Momentum | Role::FixedMomentum))
        .count();
    if momenta > 1 {
        return Err(OptimError::Unknown(format!(
            "rule {kind}: its HYPER table has {momenta} momentum entries, expected at most 1"
        )));
    }
    for (i, h) in table.iter().enumerate() {
        if table[..i].iter().any(|o| o.name == h.name) {
            return Err(OptimError::Unknown(format!(
                "rule {kind}: {} appears twice in its HYPER table",
                h.name
            )));
        }
    }
    Ok(())
}

/// Every entry but the rate, by name.
pub fn save<C>(table: &[Hyper<C>], config: &C) -> BTreeMap<String, f64> {
    table
        .iter()
        .filter(|h| h.role != Role::Lr)
        .filter_map(|h| h.get(config).map(|v| (h.name.to_string(), v)))
        .collect()
}

/// Sets `lr` and every saved entry on `config`; a missing entry is an error unless optional.
pub fn load<C>(kind: &str, table: &[Hyper<C>], mut config: C, lr: f64, saved: &BTreeMap<String, f64>) -> Result<C> {
    for h in table {
        if h.role == Role::Lr {
            h.set(&mut config, lr)?;
            continue;
        }
        match (saved.get(h.name), h.field) {
            (Some(&v), _) => h.set(&mut config, v)?,
            (None, Field::Optional(_, set)) => set(&mut config, None),
            (None, _) => {
                return Err(OptimError::State(format!(
                    "{kind} state lacks the hyper-parameter {}",
                    h.name
                )))
            }
        }
    }
    Ok(config)
}

/// A rule's hyper-parameter table from its fields: `hypers![lr lr, momentum beta1, real
/// beta2, weight_decay weight_decay, flag amsgrad, count warmup_steps, optional growth_rate]`.
/// The role words are `lr`, `weight_decay`, `momentum`, `fixed_momentum` (real numbers with
/// that role) and `real`, `flag`, `count`, `optional` (no role, by how they are held).
#[macro_export]
macro_rules! hypers {
    ($($kind:ident $field:ident),* $(,)?) => {
        &[$($crate::hypers!(@row $kind $field)),*]
    };
    (@row lr $f:ident) => { $crate::hypers!(@real Lr $f) };
    (@row weight_decay $f:ident) => { $crate::hypers!(@real WeightDecay $f) };
    (@row momentum $f:ident) => { $crate::hypers!(@real Momentum $f) };
    (@row fixed_momentum $f:ident) => { $crate::hypers!(@real FixedMomentum $f) };
    (@row real $f:ident) => { $crate::hypers!(@real Other $f) };
    (@row flag $f:ident) => {
        $crate::hyper::Hyper {
            name: stringify!($f),
            role: $crate::hyper::Role::Other,
            field: $crate::hyper::Field::Flag(|c| c.$f, |c, v| c.$f = v),
        }
    };
    (@row count $f:ident) => {
        $crate::hyper::Hyper {
            name: stringify!($f),
            role: $crate::hyper::Role::Other,
            field: $crate::hyper::Field::Count(|c| c.$f, |c, v| c.$f = v),
        }
    };
    (@row optional $f:ident) => {
        $crate::hyper::Hyper {
            name: stringify!($f),
            role: $crate::hyper::Role::Other,
            field: $crate::hyper::Field::Optional(|c| c.$f, |c, v| c.$f = v),
        }
    };
    (@real $role:ident $f:ident) => {
        $crate::hyper::Hyper {
            name: stringify!($f),
            role: $crate::hyper::Role::$role,
            field: $crate::hyper::Field::Real(|c| c.$f, |c, v| c.$f = v),
        }
    };
}
