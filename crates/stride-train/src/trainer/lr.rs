//! Who sets the learning rate at each step.

use stride_optim::schedule::{ScheduleUnit, Scheduler};
use stride_optim::Optimizer;

/// Who sets the learning rate: the schedule, scaled by what observers asked for.
pub(crate) struct LrControl {
    pub scheduler: Option<Scheduler>,
    /// Product of the observers' `SetLr` requests relative to the schedule, so an
    /// intervention ("halve the rate") survives the schedule's next update.
    pub scale: f64,
}

impl LrControl {
    /// The schedule's counter for a step: the step or the epoch.
    pub fn t(&self, step: u64, epoch: usize) -> u64 {
        match self.scheduler.as_ref().map(|s| s.unit) {
            Some(ScheduleUnit::Epoch) => epoch as u64,
            _ => step,
        }
    }

    /// Sets the optimizer's rate (and momentum) for counter `t`.
    pub fn apply(&self, optimizer: &mut dyn Optimizer, t: u64) {
        if let Some(s) = &self.scheduler {
            optimizer.set_learning_rate(s.lr(t) * self.scale);
            if let Some(m) = s.momentum(t) {
                optimizer.set_momentum(m);
            }
        }
    }

    /// An observer's `SetLr(lr)`, taking effect now and kept across schedule updates.
    pub fn request(&mut self, optimizer: &mut dyn Optimizer, lr: f64, t: u64) {
        if let Some(s) = &self.scheduler {
            let scheduled = s.lr(t);
            if scheduled > 0.0 {
                self.scale = lr / scheduled;
            }
        }
        optimizer.set_learning_rate(lr);
    }
}
