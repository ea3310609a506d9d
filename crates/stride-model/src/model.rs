use candle_core::Tensor;
use candle_nn::ModuleT;

/// A network the trainer can fit: maps a batch of inputs to logits.
///
/// Every [`candle_nn::ModuleT`] (and so every [`candle_nn::Module`]) is a
/// model through the blanket impl, so plugging in your own network is one
/// `impl Module for MyNet` away. Its variables live in the `VarMap` the
/// trainer is given.
pub trait Model {
    /// Forward pass to logits; `train` is true while training (dropout,
    /// batch-norm statistics). Named apart from `ModuleT::forward_t` so both
    /// traits can be in scope.
    fn logits(&self, xs: &Tensor, train: bool) -> candle_core::Result<Tensor>;
}

impl<M: ModuleT + ?Sized> Model for M {
    fn logits(&self, xs: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        self.forward_t(xs, train)
    }
}
