//! Sharpness during training: when the trainer estimates it, on which batch, and what it reports.

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};
use stride_data::Batcher;
use stride_model::Model;
use stride_optim::Optimizer;

use crate::error::Result;
use crate::sharpness::{
    adam_preconditioner, loss_gradients, stability_threshold, Curvature, Operator, SharpnessConfig, SharpnessEstimator,
};

/// When and on what the trainer estimates sharpness ([`crate::TrainerBuilder::sharpness`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SharpnessSchedule {
    /// Every this many optimizer steps, from the first; `None`: at the first step of every
    /// epoch (default), so the first estimate is of the initial weights.
    pub every: Option<u64>,
    /// Examples in the fixed batch drawn once per run from the training set (default 128:
    /// 256 cost 7.5% of W's training time on a quiet machine, `benches/sharpness_share.rs`);
    /// 0 uses the step's own minibatch, whose gradient the forward scheme then reuses (cheaper,
    /// noisier, and wrong for models with dropout).
    pub batch: usize,
    /// The power iteration's settings.
    pub estimator: SharpnessConfig,
}

impl Default for SharpnessSchedule {
    fn default() -> Self {
        Self {
            every: None,
            batch: 128,
            estimator: SharpnessConfig::default(),
        }
    }
}

/// One sharpness estimate as the observers see it ([`crate::StepEnd::sharpness`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SharpnessReading {
    /// Top eigenvalue of [`SharpnessReading::operator`].
    pub lambda: f64,
    /// The Hessian, or Adam's preconditioned Hessian.
    pub operator: Operator,
    /// Stability threshold theta of `lr * lambda` for this optimizer (2 for plain SGD).
    pub threshold: f64,
    /// Power iterations run.
    pub iterations: usize,
    /// Whether the power iteration met its tolerance.
    pub converged: bool,
    /// Gradient evaluations spent.
    pub gradient_evals: usize,
    /// Wall time of the estimate.
    pub seconds: f64,
}

impl SharpnessReading {
    /// The largest stable rate `theta / lambda` (infinite when lambda <= 0).
    pub fn limit(&self) -> f64 {
        if self.lambda > 0.0 {
            self.threshold / self.lambda
        } else {
            f64::INFINITY
        }
    }

    /// Stability margin `s = lr * lambda / theta`: above 1 the rate is unstable.
    pub fn margin(&self, lr: f64) -> f64 {
        lr * self.lambda / self.threshold
    }
}

/// The trainer's sharpness state for one run: the schedule, the estimator (warm-started from
/// its last eigenvector) and the fixed batch.
pub(crate) struct SharpnessProbe {
    every: Option<u64>,
    estimator: SharpnessEstimator,
    batch: Option<(Tensor, Tensor)>,
}

impl SharpnessProbe {
    /// Draws the fixed batch (seeded) from the training tensors.
    pub fn new(schedule: &SharpnessSchedule, x: &Tensor, y: &Tensor, seed: u64) -> Result<Self> {
        let n = y.dim(0)?;
        let batch = if schedule.batch == 0 {
            None
        } else {
            let size = schedule.batch.min(n);
            // A seed apart from the shuffle's, so the batch is not the first step's minibatch.
            let order = Batcher::new(n, size, seed ^ 0x5348_4152_504e_4553)?.order(0);
            let idx = Tensor::from_slice(&order[..size], size, x.device())?;
            Some((x.index_select(&idx, 0)?, y.index_select(&idx, 0)?))
        };
        Ok(Self {
            every: schedule.every,
            estimator: SharpnessEstimator::new(schedule.estimator.clone())?,
            batch,
        })
    }

    /// Whether the step about to be taken (`step` steps done, `batch` in the epoch) is measured.
    pub fn due(&self, step: u64, batch: usize) -> bool {
        match self.every {
            Some(k) => step % k.max(1) == 0,
            None => batch == 0,
        }
    }

    /// Estimates at the current weights, before the update; `(xb, yb)` and `grads` are the
    /// step's minibatch and its gradients. A failed estimate is logged and skipped.
    pub fn measure(
        &mut self,
        model: &dyn Model,
        optimizer: &dyn Optimizer,
        xb: &Tensor,
        yb: &Tensor,
        grads: &GradStore,
    ) -> Result<Option<SharpnessReading>> {
        let vars: &[Var] = optimizer.vars();
        let step_grads: Vec<Tensor> = vars
            .iter()
            .map(|v| match grads.get(v.as_tensor()) {
                Some(g) => Ok(g.clone()),
                None => v.as_tensor().zeros_like(),
            })
            .collect::<candle_core::Result<_>>()?;
        let state = optimizer.state()?;
        let (threshold, operator) = stability_threshold(&state);
        let precond = match operator {
            Operator::AdamPreconditioned => match adam_preconditioner(&state, vars, Some(&step_grads))? {
                Some(p) => Some(p),
                None => return Ok(None),
            },
            Operator::Hessian => None,
        };
        let (x, y, g0) = match &self.batch {
            Some((x, y)) => (x, y, None),
            None => (xb, yb, Some(step_grads.as_slice())),
        };
        let result = match self.estimator.config().curvature {
            Curvature::GaussNewton => self.estimator.estimate_gauss_newton(model, vars, x, precond.as_deref()),
            Curvature::Hessian => {
                self.estimator
                    .estimate(vars, &mut || loss_gradients(model, vars, x, y), g0, precond.as_deref())
            }
        };
        match result {
            Ok(e) => {
                let reading = SharpnessReading {
                    lambda: e.lambda,
                    operator,
                    threshold,
                    iterations: e.iterations,
                    converged: e.converged,
                    gradient_evals: e.gradient_evals,
                    seconds: e.seconds,
                };
                tracing::debug!(?reading, "sharpness estimated");
                Ok(Some(reading))
            }
            Err(e) => {
                tracing::warn!(error = %e, "sharpness estimate skipped");
                Ok(None)
            }
        }
    }
}
