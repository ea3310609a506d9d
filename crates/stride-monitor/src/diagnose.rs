//! Post-hoc diagnosis of a loss log (for `stride diagnose`): replays a sequence through a fresh
//! monitor and returns the online trajectory.

use crate::config::MonitorConfig;
use crate::diagnosis::Diagnosis;
use crate::error::MonitorError;
use crate::monitor::Monitor;
use crate::record::{EpochRecord, StepRecord};
use crate::state::State;

/// Diagnoses per-step losses at a constant rate with the default configuration; step numbers are
/// the indices (0-based). Returns one verdict per loss.
pub fn diagnose_steps(losses: &[f64], lr: f64) -> Vec<Diagnosis> {
    let recs: Vec<StepRecord> = losses
        .iter()
        .enumerate()
        .map(|(i, l)| StepRecord::new(i as u64, *l, lr))
        .collect();
    let mut m = Monitor::default();
    recs.iter().map(|r| m.observe_step(r)).collect()
}

/// Diagnoses per-epoch training losses at a constant rate with the default configuration;
/// epochs are numbered from 1. Returns one verdict per loss.
pub fn diagnose_epochs(losses: &[f64], lr: f64) -> Vec<Diagnosis> {
    let mut m = Monitor::default();
    losses
        .iter()
        .enumerate()
        .map(|(i, l)| m.observe_epoch(&EpochRecord::new(i as u64 + 1, *l, lr)))
        .collect()
}

/// Diagnoses full step records (rates, grad norms, ...) with a given configuration.
pub fn diagnose_step_records(records: &[StepRecord], cfg: MonitorConfig) -> Result<Vec<Diagnosis>, MonitorError> {
    let mut m = Monitor::new(cfg)?;
    Ok(records.iter().map(|r| m.observe_step(r)).collect())
}

/// Diagnoses full epoch records (with validation losses) with a given configuration.
pub fn diagnose_epoch_records(records: &[EpochRecord], cfg: MonitorConfig) -> Result<Vec<Diagnosis>, MonitorError> {
    let mut m = Monitor::new(cfg)?;
    Ok(records.iter().map(|r| m.observe_epoch(r)).collect())
}

/// The trajectory as one letter per verdict (`.` H S P O D X, [`State::letter`](crate::State::letter)).
pub fn trajectory(diagnoses: &[Diagnosis]) -> String {
    diagnoses.iter().map(|d| d.state.letter()).collect()
}

/// The most severe state of a trajectory (`Insufficient` when empty).
pub fn worst(diagnoses: &[Diagnosis]) -> State {
    diagnoses.iter().map(|d| d.state).max().unwrap_or(State::Insufficient)
}
