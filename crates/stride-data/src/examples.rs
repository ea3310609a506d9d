//! What a trainer fits: any set of examples that can be put in tensors.

use candle_core::{Device, Tensor};

use crate::dataset::Dataset;
use crate::error::{DataError, Result};

/// Examples for training or evaluation: inputs and targets with the examples along
/// dimension 0. [`Dataset`] (images with class labels) is one; [`TensorData`] holds any
/// tensors (a regression's float targets, token ids, audio frames).
pub trait Examples {
    /// How many examples.
    fn len(&self) -> usize;

    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All inputs and all targets on `device`.
    fn to_tensors(&self, device: &Device) -> Result<(Tensor, Tensor)>;

    /// The examples at `indices`, in that order, on `device`.
    fn gather_tensors(&self, indices: &[u32], device: &Device) -> Result<(Tensor, Tensor)> {
        let (x, y) = self.to_tensors(device)?;
        let n = self.len();
        if let Some(&bad) = indices.iter().find(|&&i| i as usize >= n) {
            return Err(DataError::Invalid {
                what: "example index",
                message: format!("{bad} is past the last of {n} examples"),
            });
        }
        let idx = Tensor::from_slice(indices, indices.len(), device)?;
        Ok((x.index_select(&idx, 0)?, y.index_select(&idx, 0)?))
    }
}

impl Examples for Dataset {
    fn len(&self) -> usize {
        Dataset::len(self)
    }

    fn to_tensors(&self, device: &Device) -> Result<(Tensor, Tensor)> {
        Dataset::to_tensors(self, device)
    }

    fn gather_tensors(&self, indices: &[u32], device: &Device) -> Result<(Tensor, Tensor)> {
        Dataset::gather_tensors(self, indices, device)
    }
}

/// Examples held as tensors: inputs of any shape `(n, ...)` and targets `(n, ...)`, integer
/// class indices for cross-entropy or floats for a regression loss.
#[derive(Debug, Clone)]
pub struct TensorData {
    inputs: Tensor,
    targets: Tensor,
}

impl TensorData {
    /// Pairs `inputs` with `targets`; fails unless both have the same number of examples
    /// along dimension 0.
    pub fn new(inputs: Tensor, targets: Tensor) -> Result<Self> {
        let count = |t: &Tensor, what: &'static str| {
            t.dims().first().copied().ok_or_else(|| DataError::Invalid {
                what,
                message: "expected a tensor with the examples along dimension 0, got a scalar".into(),
            })
        };
        let (n, m) = (count(&inputs, "inputs")?, count(&targets, "targets")?);
        if n != m {
            return Err(DataError::Invalid {
                what: "examples",
                message: format!("{n} inputs but {m} targets"),
            });
        }
        Ok(Self { inputs, targets })
    }

    /// The inputs.
    pub fn inputs(&self) -> &Tensor {
        &self.inputs
    }

    /// The targets.
    pub fn targets(&self) -> &Tensor {
        &self.targets
    }
}

impl Examples for TensorData {
    fn len(&self) -> usize {
        self.inputs.dims().first().copied().unwrap_or(0)
    }

    fn to_tensors(&self, device: &Device) -> Result<(Tensor, Tensor)> {
        Ok((self.inputs.to_device(device)?, self.targets.to_device(device)?))
    }
}
