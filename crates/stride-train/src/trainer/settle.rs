//! Settling steps once their scalars are read: the history, the run's position and the
//! observers, step by step in order, whether the steps were read one at a time or many at once.

use std::time::Instant;

use stride_optim::Optimizer;

use super::readout::{read_steps, Launched};
use super::step::StepOutcome;
use super::{take_snapshot, EpochClock, History, StopReason, Trainer};
use crate::callback::StepEnd;
use crate::checkpoint::Position;
use crate::error::Result;

/// A step taken, and what its event reports beyond its scalars.
pub(super) struct Taken {
    pub step: Launched,
    pub batch: usize,
    pub batches: usize,
    pub epoch: usize,
    pub rows: usize,
    pub lr: f64,
    pub effective_lr: f64,
}

/// How settling ended.
pub(super) struct Settled {
    /// Why the run stops, if it does.
    pub stop: Option<StopReason>,
    /// A non-finite step was rolled back and the run goes on: the run skips the interrupt
    /// and checkpoint checks for it, as for any step that took no update.
    pub rolled_back_non_finite: bool,
}

impl Trainer {
    /// Reads `taken`'s scalars (one transfer for all), then, step by step: records it, moves
    /// `at` past it and tells the observers. A step that stops the run, is not finite, or is
    /// rolled back ends it; the steps after it were taken from weights now stopped at or
    /// restored, and are dropped unreported. A snapshot an observer asked for meanwhile is
    /// taken once all are settled (the weights are those of the last step taken), and not at
    /// all if one of them ended the settling: it could hold a non-finite step's update.
    pub(super) fn settle(
        &mut self,
        optimizer: &mut dyn Optimizer,
        history: &mut History,
        at: &mut Position,
        taken: Vec<Taken>,
        clock: &mut EpochClock,
    ) -> Result<Settled> {
        let mut meta = Vec::with_capacity(taken.len());
        let mut launched = Vec::with_capacity(taken.len());
        for t in taken {
            launched.push(t.step);
            meta.push((t.batch, t.batches, t.epoch, t.rows, t.lr, t.effective_lr));
        }
        let outcomes = read_steps(launched)?;
        self.deferring = outcomes.len() > 1;
        let mut ended = false;
        let mut out = Settled {
            stop: None,
            rolled_back_non_finite: false,
        };
        for (s, (batch, batches, epoch, rows, lr, effective_lr)) in outcomes.into_iter().zip(meta) {
            record_step(history, &s, lr, at.step);
            let finite = s.loss.is_finite();
            at.batch = batch + 1;
            if finite {
                at.step += 1;
                at.loss_sum += s.loss;
                at.epoch_steps += 1;
                if let Some(c) = s.correct {
                    at.correct += u64::from(c);
                    at.seen += rows as u64;
                }
            }
            let event = StepEnd {
                // A non-finite step took no update: it is reported as the step it would have been.
                step: if finite { at.step } else { at.step + 1 },
                epoch,
                batch,
                batches,
                loss: s.loss,
                lr,
                effective_lr,
                batch_size: rows,
                grad_norm: s.grad_norm,
                update_ratio: s.update_ratio,
                sharpness: s.sharpness,
            };
            let observers = Instant::now();
            let t = self.lr.t(at.step, epoch);
            let asked = self.dispatch(optimizer, t, history, |cb| cb.on_step_end(&event))?;
            clock.callbacks += observers.elapsed();
            if !finite && asked.rolled_back && asked.stop.is_none() {
                out.rolled_back_non_finite = true;
                ended = true;
                break;
            }
            out.stop = asked.stop.map(StopReason::Requested);
            if !finite {
                let reason = out.stop.take().unwrap_or(StopReason::NonFiniteLoss {
                    step: event.step,
                    epoch,
                    lr,
                    loss: s.loss,
                });
                tracing::error!("{reason}");
                out.stop = Some(reason);
            }
            if out.stop.is_some() || asked.rolled_back {
                ended = true;
                break;
            }
        }
        self.deferring = false;
        if std::mem::take(&mut self.snapshot_wanted) && !ended {
            self.snapshot = Some(take_snapshot(optimizer)?);
        }
        Ok(out)
    }
}

/// Adds a step's loss, rate and side results to the history.
fn record_step(history: &mut History, s: &StepOutcome, lr: f64, steps_before: u64) {
    history.step_losses.push(s.loss);
    history.step_lrs.push(lr);
    history.fused_steps += u64::from(s.fused);
    if s.skipped_update {
        history.skipped_steps += 1;
        tracing::warn!(step = steps_before + 1, "non-finite gradient norm: update skipped");
    }
    if let Some(r) = s.sharpness {
        history.sharpness.push((steps_before, r));
    }
}
