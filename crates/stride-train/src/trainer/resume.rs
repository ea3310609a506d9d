//! Continuing a run from a checkpoint.

use candle_nn::VarMap;
use stride_optim::Optimizer;

use super::Trainer;
use crate::callback::format_lr;
use crate::checkpoint::Checkpoint;
use crate::error::{CheckpointProblem, Result, TrainError};

impl Trainer {
    /// Restores a checkpoint so that the next [`Trainer::fit_with`] continues where it was
    /// taken: the weights into `varmap`, the optimizer's state, the schedule's plateau state,
    /// the observers' state and the position (epoch, batch, step). With a [`Checkpointer`]
    /// set, the checkpoint must hold the same model. Nothing is changed when a check fails.
    ///
    /// The shuffle seed and batch size must be the ones of the checkpointed run (the batches
    /// still to come are derived from them); more epochs than it planned are allowed.
    pub fn resume(&mut self, checkpoint: &Checkpoint, varmap: &VarMap, optimizer: &mut dyn Optimizer) -> Result<()> {
        let saved = &checkpoint.state;
        let mismatch = |name, saved: String, current: String| TrainError::Checkpoint {
            path: checkpoint.dir.clone(),
            problem: CheckpointProblem::RunMismatch { name, saved, current },
        };
        if let Some(c) = &self.checkpointer {
            checkpoint.expect_model(&c.config().model)?;
            if let (Some(saved), Some(current)) = (&saved.dataset, &c.config().dataset) {
                if saved != current {
                    return Err(mismatch("dataset", saved.clone(), current.clone()));
                }
            }
        }
        if saved.seed != self.config.seed {
            return Err(mismatch("seed", saved.seed.to_string(), self.config.seed.to_string()));
        }
        if saved.batch_size != self.config.batch_size {
            return Err(mismatch(
                "batch_size",
                saved.batch_size.to_string(),
                self.config.batch_size.to_string(),
            ));
        }
        let has_plateau = self.lr.scheduler.as_ref().is_some_and(|s| s.plateau.is_some());
        if has_plateau != saved.plateau.is_some() {
            let says = |p: bool| if p { "a plateau schedule" } else { "no plateau schedule" }.to_string();
            return Err(mismatch("schedule", says(saved.plateau.is_some()), says(has_plateau)));
        }
        let stateful: Vec<usize> = (0..self.callbacks.len())
            .filter(|&i| self.callbacks[i].save_state().is_some())
            .collect();
        if stateful.len() != saved.callbacks.len() {
            return Err(mismatch(
                "observers with state (e.g. the monitor)",
                saved.callbacks.len().to_string(),
                stateful.len().to_string(),
            ));
        }
        let requested_lr = optimizer.learning_rate();
        checkpoint.restore_weights(varmap)?;
        checkpoint.restore_optimizer(varmap, optimizer)?;
        // The checkpoint's rate is the run's own (observers may have changed it); a rate
        // other than the one the run started with is the caller's change, and applies.
        let base = saved.base_lr.unwrap_or(requested_lr);
        self.base_lr = Some(requested_lr);
        if requested_lr != base && self.lr.scheduler.is_none() {
            tracing::warn!(
                "resuming at lr {} as asked (the checkpointed run started at lr {} and was at {})",
                format_lr(requested_lr),
                format_lr(base),
                format_lr(optimizer.learning_rate())
            );
            optimizer.set_learning_rate(requested_lr);
        }
        for (&i, state) in stateful.iter().zip(&saved.callbacks) {
            self.callbacks[i].restore_state(state)?;
        }
        if let Some(s) = &mut self.lr.scheduler {
            s.plateau = saved.plateau.clone();
        }
        self.resume = Some((saved.position.clone(), saved.lr_scale));
        tracing::info!(
            checkpoint = %checkpoint.dir.display(),
            step = saved.position.step,
            "resuming at epoch {}, batch {}",
            saved.position.epoch + 1,
            saved.position.batch
        );
        Ok(())
    }
}
