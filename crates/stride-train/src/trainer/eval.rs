//! Evaluation on held-out data, and the input checks before a run.

use candle_core::{DType, Device, Tensor, D};
use stride_data::Examples;
use stride_model::Model;

use crate::callback::Eval;
use crate::error::{Result, TrainError};
use crate::loss::Loss;

/// Fails when `x` (examples along dimension 0) holds NaN or infinite values, naming `what`,
/// how many and the first bad example, before any step is taken. One sum on the happy path
/// (in the inputs' own type when it is f32 or f64: converting W's 188 MB to f64 first took
/// longer than an epoch); the element scan runs only when the sum is not finite.
pub fn check_finite_inputs(x: &Tensor, what: &str) -> Result<()> {
    let sum = match x.dtype() {
        DType::F32 => f64::from(x.sum_all()?.to_scalar::<f32>()?),
        DType::F64 => x.sum_all()?.to_scalar::<f64>()?,
        _ => x.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()?,
    };
    if sum.is_finite() {
        return Ok(());
    }
    let rows = x.dim(0).unwrap_or(1).max(1);
    let values: Vec<f64> = x.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
    let per_row = (values.len() / rows).max(1);
    let bad: Vec<usize> = values
        .iter()
        .enumerate()
        .filter(|(_, v)| !v.is_finite())
        .map(|(i, _)| i)
        .collect();
    match bad.first() {
        // Finite values whose sum overflowed: nothing to report.
        None => Ok(()),
        Some(&first) => Err(TrainError::NonFiniteInputs {
            what: what.to_string(),
            count: bad.len(),
            example: first / per_row,
            value: values[first],
        }),
    }
}

/// Mean cross-entropy and accuracy of `model` on `data`, in batches of `batch_size`.
pub fn evaluate(model: &dyn Model, data: &dyn Examples, device: &Device, batch_size: usize) -> Result<Eval> {
    evaluate_with(model, data, device, batch_size, &Loss::CrossEntropy)
}

/// Mean `loss` of `model` on `data` and, for a classification loss, the accuracy (NaN otherwise).
pub fn evaluate_with(
    model: &dyn Model,
    data: &dyn Examples,
    device: &Device,
    batch_size: usize,
    loss: &Loss,
) -> Result<Eval> {
    let (x, y) = data.to_tensors(device)?;
    evaluate_tensors(model, loss, &x, &y, batch_size)
}

/// Mean `loss` and, for a classification loss, the accuracy (NaN otherwise).
pub(crate) fn evaluate_tensors(
    model: &dyn Model,
    loss_fn: &Loss,
    x: &Tensor,
    y: &Tensor,
    batch_size: usize,
) -> Result<Eval> {
    let n = y.dim(0)?;
    let (mut loss_sum, mut correct) = (0.0f64, 0u64);
    let mut start = 0;
    while start < n {
        let len = batch_size.min(n - start);
        let (xb, yb) = (x.narrow(0, start, len)?, y.narrow(0, start, len)?);
        let logits = model.logits(&xb, false)?.detach();
        let loss = loss_fn.compute(&logits, &yb)?;
        loss_sum += f64::from(loss.to_dtype(DType::F32)?.to_scalar::<f32>()?) * len as f64;
        if loss_fn.is_classification() {
            let predicted = logits.argmax(D::Minus1)?;
            correct += u64::from(predicted.eq(&yb)?.to_dtype(DType::U32)?.sum_all()?.to_scalar::<u32>()?);
        }
        start += len;
    }
    let n = n.max(1) as f64;
    Ok(Eval {
        loss: loss_sum / n,
        accuracy: if loss_fn.is_classification() {
            correct as f64 / n
        } else {
            f64::NAN
        },
    })
}

/// A classifier's evaluation by class: loss, accuracy, and the confusion matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassReport {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Fraction of correct argmax predictions.
    pub accuracy: f64,
    /// `confusion[true][predicted]`: how many examples of each class went where.
    pub confusion: Vec<Vec<u64>>,
}

impl ClassReport {
    /// Accuracy within each class (NaN for a class with no examples).
    pub fn class_accuracy(&self) -> Vec<f64> {
        self.confusion
            .iter()
            .enumerate()
            .map(|(c, row)| {
                let total: u64 = row.iter().sum();
                if total == 0 {
                    f64::NAN
                } else {
                    row[c] as f64 / total as f64
                }
            })
            .collect()
    }

    /// Per-class accuracy and the confusion matrix as text; `names` label the classes
    /// (their indices when shorter).
    pub fn table(&self, names: &[&str]) -> String {
        let name = |c: usize| names.get(c).map_or_else(|| c.to_string(), |n| (*n).to_string());
        let width = (0..self.confusion.len())
            .map(|c| name(c).len())
            .max()
            .unwrap_or(1)
            .max(5);
        let mut out = format!("{:<width$}  {:>8}  {:>6}\n", "class", "accuracy", "count");
        for (c, acc) in self.class_accuracy().iter().enumerate() {
            let total: u64 = self.confusion[c].iter().sum();
            out += &format!("{:<width$}  {:>8.4}  {:>6}\n", name(c), acc, total);
        }
        out += "\nconfusion (rows: true class, columns: predicted)\n";
        out += &format!("{:>4}", "");
        for c in 0..self.confusion.len() {
            out += &format!(" {c:>5}");
        }
        out += "\n";
        for (c, row) in self.confusion.iter().enumerate() {
            out += &format!("{c:>4}");
            for n in row {
                out += &format!(" {n:>5}");
            }
            out += "\n";
        }
        out
    }
}

/// Evaluates a classifier of `classes` classes on `data` in batches of `batch_size`: loss,
/// accuracy and the confusion matrix.
pub fn evaluate_classes(
    model: &dyn Model,
    data: &dyn Examples,
    device: &Device,
    batch_size: usize,
    classes: usize,
) -> Result<ClassReport> {
    let (x, y) = data.to_tensors(device)?;
    let n = y.dim(0)?;
    let mut confusion = vec![vec![0u64; classes]; classes];
    let mut loss_sum = 0.0f64;
    let mut start = 0;
    while start < n {
        let len = batch_size.max(1).min(n - start);
        let (xb, yb) = (x.narrow(0, start, len)?, y.narrow(0, start, len)?);
        let logits = model.logits(&xb, false)?.detach();
        let loss = Loss::CrossEntropy.compute(&logits, &yb)?;
        loss_sum += f64::from(loss.to_dtype(DType::F32)?.to_scalar::<f32>()?) * len as f64;
        let predicted: Vec<u32> = logits.argmax(D::Minus1)?.to_vec1()?;
        let truth: Vec<u32> = yb.to_vec1()?;
        for (&t, &p) in truth.iter().zip(&predicted) {
            let (t, p) = (t as usize, p as usize);
            if t >= classes || p >= classes {
                return Err(TrainError::Config {
                    name: "classes",
                    value: classes.to_string(),
                    message: "expected more classes than the largest label and output",
                });
            }
            confusion[t][p] += 1;
        }
        start += len;
    }
    let correct: u64 = (0..classes).map(|c| confusion[c][c]).sum();
    let n = n.max(1) as f64;
    Ok(ClassReport {
        loss: loss_sum / n,
        accuracy: correct as f64 / n,
        confusion,
    })
}
