//! The optimizer's variable order against the VarMap's sorted names.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::Var;
use candle_nn::VarMap;
use stride_optim::OptimizerState;

use crate::error::{CheckpointProblem, Result, TrainError};

/// The VarMap's variables sorted by name: the canonical order of a checkpoint.
pub(crate) fn named_vars(varmap: &VarMap) -> Vec<(String, Var)> {
    let data = varmap.data().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut vars: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// For each of the optimizer's variables, the rank of its name among the optimizer's
/// variables (matched to `named` by tensor identity): a permutation of `0..n`.
pub(crate) fn canonical_order(named: &[(String, Var)], optimizer_vars: &[Var]) -> Result<Vec<usize>> {
    let names = optimizer_vars
        .iter()
        .enumerate()
        .map(|(i, var)| {
            named
                .iter()
                .find(|(_, v)| v.as_tensor().id() == var.as_tensor().id())
                .map(|(name, _)| name.as_str())
                .ok_or_else(|| TrainError::UnknownVariable {
                    index: i,
                    shape: var.dims().to_vec(),
                })
        })
        .collect::<Result<Vec<&str>>>()?;
    let mut by_name: Vec<usize> = (0..names.len()).collect();
    by_name.sort_by(|&a, &b| names[a].cmp(names[b]));
    Ok(invert(&by_name))
}

/// Renumbers the per-variable entries of `state`: entry `i` becomes entry `map[i]`.
///
/// `path` names the checkpoint when an entry does not fit (a hostile or foreign file).
pub(crate) fn remap_state(state: &OptimizerState, map: &[usize], path: &Path) -> Result<OptimizerState> {
    let bad = |message: String| TrainError::Checkpoint {
        path: path.to_path_buf(),
        problem: CheckpointProblem::Corrupt {
            file: super::STATE_FILE,
            message,
        },
    };
    let renumber = |name: &str| -> Result<String> {
        let (prefix, index) = name
            .rsplit_once('.')
            .ok_or_else(|| bad(format!("optimizer entry {name:?} has no variable index")))?;
        let index: usize = index
            .parse()
            .map_err(|_| bad(format!("optimizer entry {name:?} has no variable index")))?;
        let to = map.get(index).ok_or_else(|| {
            bad(format!(
                "optimizer entry {name:?} is for variable {index}, the model has {}",
                map.len()
            ))
        })?;
        Ok(format!("{prefix}.{to}"))
    };
    let mut out = state.clone();
    for b in &mut out.buffers {
        b.name = renumber(&b.name)?;
    }
    out.scalars = state
        .scalars
        .iter()
        .map(|(k, v)| Ok((renumber(k)?, *v)))
        .collect::<Result<BTreeMap<_, _>>>()?;
    if !state.param_steps.is_empty() {
        if state.param_steps.len() != map.len() {
            return Err(bad(format!(
                "{} per-variable step counts for {} variables",
                state.param_steps.len(),
                map.len()
            )));
        }
        let mut steps = vec![0; map.len()];
        for (i, &s) in state.param_steps.iter().enumerate() {
            steps[map[i]] = s;
        }
        out.param_steps = steps;
    }
    Ok(out)
}

/// The inverse of a permutation `map` (entry `map[i]` goes back to `i`).
pub(crate) fn invert(map: &[usize]) -> Vec<usize> {
    let mut inv = vec![0; map.len()];
    for (i, &j) in map.iter().enumerate() {
        if let Some(slot) = inv.get_mut(j) {
            *slot = i;
        }
    }
    inv
}
