use std::collections::BTreeMap;

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::error::{OptimError, Result};

/// An optimizer the trainer can hold as `Box<dyn Optimizer>`.
///
/// Unlike `candle_nn::Optimizer` it is dyn-compatible, its learning rate is
/// always readable and settable (schedules and the monitor drive it), and its
/// whole state can be exported and imported so a resumed run continues exactly.
pub trait Optimizer {
    /// Applies one update from the gradients of the last backward pass.
    /// Variables without a gradient are left untouched.
    fn step(&mut self, grads: &GradStore) -> Result<()>;
    /// The current learning rate.
    fn learning_rate(&self) -> f64;
    /// Sets the learning rate used by the next steps.
    fn set_learning_rate(&mut self, lr: f64);
    /// Momentum (SGD, RMSprop) or beta1 (Adam family), for schedules that cycle it.
    fn momentum(&self) -> Option<f64> {
        None
    }
    /// Sets what [`Optimizer::momentum`] reads; false when the optimizer has none.
    fn set_momentum(&mut self, _momentum: f64) -> bool {
        false
    }
    /// The rate the next step moves at: the learning rate, except for optimizers that
    /// scale it themselves (Prodigy's and D-Adaptation's `d * lr`, Schedule-Free's warmup),
    /// where [`Optimizer::learning_rate`] is a multiplier. For logging.
    fn effective_learning_rate(&self) -> f64 {
        self.learning_rate()
    }
    /// Whether the optimizer trains at one point and should be evaluated at another
    /// (Schedule-Free); then [`Optimizer::eval_point`] and [`Optimizer::train_point`] move
    /// the variables, and the others are no-ops.
    fn has_eval_point(&self) -> bool {
        false
    }
    /// Moves the variables to the point to evaluate, checkpoint and report at
    /// (Schedule-Free's average x, the reference's `optimizer.eval()`); does nothing when
    /// already there.
    fn eval_point(&mut self) -> Result<()> {
        Ok(())
    }
    /// Moves the variables back to the point gradients are taken at (Schedule-Free's y,
    /// `optimizer.train()`); [`Optimizer::step`] refuses to run until it is called.
    fn train_point(&mut self) -> Result<()> {
        Ok(())
    }
    /// Number of steps taken so far.
    fn steps(&self) -> u64;
    /// The variables being optimised.
    fn vars(&self) -> &[Var];
    /// Exports hyper-parameters, step count and buffers.
    fn state(&self) -> Result<OptimizerState>;
    /// Restores what [`Optimizer::state`] exported; the kind and shapes must match.
    fn load_state(&mut self, state: &OptimizerState) -> Result<()>;
}

impl<O: Optimizer + ?Sized> Optimizer for Box<O> {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        (**self).step(grads)
    }
    fn learning_rate(&self) -> f64 {
        (**self).learning_rate()
    }
    fn set_learning_rate(&mut self, lr: f64) {
        (**self).set_learning_rate(lr)
    }
    fn momentum(&self) -> Option<f64> {
        (**self).momentum()
    }
    fn set_momentum(&mut self, momentum: f64) -> bool {
        (**self).set_momentum(momentum)
    }
    fn effective_learning_rate(&self) -> f64 {
        (**self).effective_learning_rate()
    }
    fn has_eval_point(&self) -> bool {
        (**self).has_eval_point()
    }
    fn eval_point(&mut self) -> Result<()> {
        (**self).eval_point()
    }
    fn train_point(&mut self) -> Result<()> {
        (**self).train_point()
    }
    fn steps(&self) -> u64 {
        (**self).steps()
    }
    fn vars(&self) -> &[Var] {
        (**self).vars()
    }
    fn state(&self) -> Result<OptimizerState> {
        (**self).state()
    }
    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        (**self).load_state(state)
    }
}

/// A saved per-variable buffer (momentum, moments, ...), stored as f32.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Buffer {
    /// Buffer name and variable index, e.g. `momentum.3`.
    pub name: String,
    /// Shape of the variable.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub values: Vec<f32>,
}

impl Buffer {
    /// Copies a tensor out.
    pub fn from_tensor(name: String, t: &Tensor) -> Result<Self> {
        Ok(Self {
            name,
            shape: t.dims().to_vec(),
            values: t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?,
        })
    }

    /// Rebuilds the tensor on the device and dtype of `like`, checking the shape.
    pub fn to_tensor(&self, like: &Tensor) -> Result<Tensor> {
        if self.shape != like.dims() {
            return Err(OptimError::State(format!(
                "buffer {} has shape {:?}, the variable has {:?}",
                self.name,
                self.shape,
                like.dims()
            )));
        }
        Ok(Tensor::from_vec(self.values.clone(), self.shape.as_slice(), like.device())?.to_dtype(like.dtype())?)
    }
}

/// Everything needed to continue optimising exactly where a run stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerState {
    /// Optimizer name, e.g. `sgd`.
    pub kind: String,
    /// Steps taken.
    pub step: u64,
    /// Current learning rate.
    pub lr: f64,
    /// Other hyper-parameters by name.
    pub hyper: BTreeMap<String, f64>,
    /// Per-variable buffers, named `<buffer>.<variable index>`.
    pub buffers: Vec<Buffer>,
    /// Per-variable scalar states, named `<scalar>.<variable index>`.
    #[serde(default)]
    pub scalars: BTreeMap<String, f64>,
    /// Updates each variable has received.
    #[serde(default)]
    pub param_steps: Vec<u64>,
}

impl OptimizerState {
    /// Fails unless the state was exported by an optimizer of `kind`.
    pub fn expect_kind(&self, kind: &str) -> Result<()> {
        if self.kind == kind {
            Ok(())
        } else {
            Err(OptimError::State(format!(
                "state is from a {} optimizer, not {kind}",
                self.kind
            )))
        }
    }
}
