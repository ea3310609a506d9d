//! Per-variable rate multipliers (muP's, or a user's) turned into optimizer groups.

use candle_nn::VarMap;
use stride_optim::ParamGroup;

use crate::error::{Result, TrainError};

/// The variables of `varmap` in groups of equal rate multiplier, from `(name, scale)` pairs;
/// a variable not named trains at scale 1. One group holding every variable when `scales`
/// is empty, so the standard parametrization builds exactly today's optimizer.
///
/// Groups and their variables are in name order, so the same model gives the same
/// optimizer in every process (a `VarMap` iterates in hash order).
pub fn rate_groups(varmap: &VarMap, scales: &[(String, f64)]) -> Result<Vec<ParamGroup>> {
    let data = varmap.data().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if scales.is_empty() {
        let mut names: Vec<&String> = data.keys().collect();
        names.sort();
        return Ok(vec![ParamGroup::new(
            names.into_iter().map(|n| data[n].clone()).collect(),
        )]);
    }
    if let Some((name, scale)) = scales.iter().find(|(_, s)| !(s.is_finite() && *s >= 0.0)) {
        return Err(TrainError::Config {
            name: "rate scale",
            value: format!("{name}: {scale}"),
            message: "expected a finite multiplier >= 0",
        });
    }
    if let Some((name, _)) = scales.iter().find(|(name, _)| !data.contains_key(name)) {
        return Err(TrainError::Config {
            name: "rate scale",
            value: name.clone(),
            message: "names no variable of the model",
        });
    }
    let scale_of = |name: &str| scales.iter().find(|(n, _)| n == name).map_or(1.0, |(_, s)| *s);
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut groups: Vec<(f64, ParamGroup)> = Vec::new();
    for name in names {
        let scale = scale_of(name);
        match groups.iter_mut().find(|(s, _)| *s == scale) {
            Some((_, group)) => group.vars.push(data[name].clone()),
            None => groups.push((scale, ParamGroup::new(vec![data[name].clone()]).lr_scale(scale))),
        }
    }
    Ok(groups.into_iter().map(|(_, g)| g).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::Init;

    #[test]
    fn groups_by_scale_in_name_order_and_rejects_unknown_names() {
        let varmap = VarMap::new();
        for name in ["b.weight", "a.weight", "a.bias"] {
            varmap
                .get((2, 2), name, Init::Const(0.0), DType::F32, &Device::Cpu)
                .unwrap();
        }
        let all = rate_groups(&varmap, &[]).unwrap();
        assert_eq!((all.len(), all[0].vars.len(), all[0].lr_scale), (1, 3, 1.0));
        let groups = rate_groups(&varmap, &[("a.weight".into(), 0.25), ("b.weight".into(), 0.25)]).unwrap();
        assert_eq!(groups.len(), 2);
        // a.bias (scale 1) comes first by name, then the 0.25 group of a.weight and b.weight.
        assert_eq!((groups[0].lr_scale, groups[0].vars.len()), (1.0, 1));
        assert_eq!((groups[1].lr_scale, groups[1].vars.len()), (0.25, 2));
        let err = rate_groups(&varmap, &[("c.weight".into(), 2.0)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("c.weight"), "{err}");
        assert!(rate_groups(&varmap, &[("a.bias".into(), f64::NAN)]).is_err());
    }
}
