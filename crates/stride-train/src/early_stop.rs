//! Early stopping: end the run when the monitored loss has stopped improving.

use crate::callback::{Action, Callback, EpochEnd};
use crate::error::{Result, TrainError};

/// Stops training when the validation loss (the training loss when the trainer evaluates
/// nothing) has not improved by more than `min_delta` for `patience` epochs, as Keras's
/// `EarlyStopping` and Lightning's do. With checkpoints on, `best` points at the best epoch.
///
/// ```no_run
/// # use stride_train::{EarlyStopping, Trainer};
/// let trainer = Trainer::builder().epochs(100).callback(EarlyStopping::new(5)).build();
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyStopping {
    patience: usize,
    min_delta: f64,
    best: Option<(f64, usize)>,
    waited: usize,
}

impl EarlyStopping {
    /// Stops after `patience` epochs (at least 1) without improvement.
    pub fn new(patience: usize) -> Self {
        Self {
            patience: patience.max(1),
            min_delta: 0.0,
            best: None,
            waited: 0,
        }
    }

    /// An improvement must lower the loss by more than this (default 0).
    pub fn min_delta(mut self, min_delta: f64) -> Self {
        self.min_delta = min_delta.max(0.0);
        self
    }

    /// The best loss seen and its epoch (0-based), if any.
    pub fn best(&self) -> Option<(f64, usize)> {
        self.best
    }
}

impl Callback for EarlyStopping {
    fn on_epoch_end(&mut self, e: &EpochEnd) -> Result<Action> {
        let (loss, what) = match e.eval {
            Some(v) => (v.loss, "validation loss"),
            None => (e.train_loss, "training loss"),
        };
        if !loss.is_finite() {
            return Ok(Action::Continue);
        }
        match self.best {
            Some((best, _)) if loss >= best - self.min_delta => self.waited += 1,
            _ => {
                self.best = Some((loss, e.epoch));
                self.waited = 0;
            }
        }
        Ok(match self.best {
            Some((best, epoch)) if self.waited >= self.patience => Action::Stop(format!(
                "early stopping: the {what} has not improved for {} epochs (best {best:.4} after epoch {}); the \
                 `best` checkpoint holds those weights when --checkpoint-dir is set",
                self.patience,
                epoch + 1
            )),
            _ => Action::Continue,
        })
    }

    fn save_state(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({
            "best": self.best,
            "waited": self.waited,
        }))
    }

    fn restore_state(&mut self, state: &serde_json::Value) -> Result<()> {
        let bad = |message: &str| TrainError::ObserverState {
            observer: "early stopping",
            message: message.to_string(),
        };
        self.waited = state
            .get("waited")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| bad("no `waited` count"))? as usize;
        self.best = match state.get("best") {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(serde_json::from_value::<(f64, usize)>(v.clone()).map_err(|e| bad(&e.to_string()))?),
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::Eval;

    fn epoch(epoch: usize, val: f64) -> EpochEnd {
        EpochEnd {
            epoch,
            epochs: 100,
            step: 0,
            train_loss: 1.0,
            train_accuracy: None,
            eval: Some(Eval {
                loss: val,
                accuracy: 0.5,
            }),
            lr: 0.1,
            train_time: std::time::Duration::ZERO,
        }
    }

    #[test]
    fn stops_after_patience_epochs_without_improvement_and_resumes_its_count() {
        let mut stop = EarlyStopping::new(2);
        let losses = [1.0, 0.8, 0.85, 0.79, 0.9, 0.95];
        let mut actions = Vec::new();
        for (i, &l) in losses.iter().enumerate() {
            actions.push(stop.on_epoch_end(&epoch(i, l)).unwrap());
        }
        assert!(actions[..5].iter().all(|a| *a == Action::Continue), "{actions:?}");
        assert!(
            matches!(&actions[5], Action::Stop(r) if r.contains("after epoch 4")),
            "{actions:?}"
        );
        // A resumed copy continues the count exactly.
        let mut half = EarlyStopping::new(2);
        for (i, &l) in losses[..5].iter().enumerate() {
            half.on_epoch_end(&epoch(i, l)).unwrap();
        }
        let mut resumed = EarlyStopping::new(2);
        resumed.restore_state(&half.save_state().unwrap()).unwrap();
        assert_eq!(resumed, half);
    }
}
