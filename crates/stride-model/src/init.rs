//! Seeded, PyTorch-compatible parameter initialisation.

use candle_core::Tensor;
use candle_nn::VarMap;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::Result;

/// Re-initialises every `*.weight` of rank >= 2 and its sibling `*.bias` the
/// way PyTorch's `nn.Linear` / `nn.Conv*` do (`kaiming_uniform_(a = sqrt(5))`
/// for weights, `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` for biases; both reduce
/// to that same bound), from a ChaCha8 stream seeded with `seed`.
///
/// candle's CPU initialisers cannot be seeded; this makes runs repeatable.
/// Variables are visited in name order, so the values depend only on the
/// seed and the names and shapes. Other variables (norm scales, ...) keep
/// the values they were created with.
pub fn reset_parameters(varmap: &VarMap, seed: u64) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let data = varmap.data().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    for name in names {
        let var = &data[name];
        let weight = match name.strip_suffix(".bias") {
            Some(prefix) => data.get(&format!("{prefix}.weight")),
            None if name.ends_with("weight") => Some(var),
            None => None,
        };
        let fan_in: usize = match weight {
            Some(w) if w.rank() >= 2 => w.dims()[1..].iter().product(),
            _ => continue,
        };
        let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
        let values: Vec<f32> = (0..var.elem_count())
            .map(|_| (uniform01(&mut rng) * 2.0 - 1.0) * bound)
            .map(|v| v as f32)
            .collect();
        let t = Tensor::from_vec(values, var.shape(), var.device())?.to_dtype(var.dtype())?;
        var.set(&t)?;
    }
    Ok(())
}

/// A uniform draw in [0, 1) from 53 random bits.
fn uniform01(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}
