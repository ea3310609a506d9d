use candle_core::Tensor;
use candle_nn::Module;

use crate::fused::FusedGrads;

/// A network the trainer can fit: maps a batch of inputs to logits.
///
/// Every [`candle_nn::Module`] is a model through the blanket impl, so plugging
/// in your own network is one `impl Module for MyNet` away; a network that
/// behaves differently in training (dropout, batch norm) implements
/// [`Model::logits`] itself, usually by calling its `ModuleT::forward_t`.
/// Its variables live in the `VarMap` the trainer is given.
pub trait Model {
    /// Forward pass to logits; `train` is true while training (dropout,
    /// batch-norm statistics). Named apart from `ModuleT::forward_t` so both
    /// traits can be in scope.
    fn logits(&self, xs: &Tensor, train: bool) -> candle_core::Result<Tensor>;

    /// Mean cross-entropy and its gradients for rows `rows` of inputs `x` and labels `y`,
    /// computed without candle's autograd, or `None` (the default) to let the trainer
    /// run the forward pass and `backward()`. Built-in models override it with a
    /// fused path whose gradients are tested against autograd's.
    fn fused_cross_entropy(&self, x: &Tensor, y: &Tensor, rows: &[u32]) -> candle_core::Result<Option<FusedGrads>> {
        let _ = (x, y, rows);
        Ok(None)
    }
}

impl<M: Module + ?Sized> Model for M {
    fn logits(&self, xs: &Tensor, _train: bool) -> candle_core::Result<Tensor> {
        self.forward(xs)
    }
}
