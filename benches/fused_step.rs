//! One training step's loss and gradients on W's shapes (MLP 784-128-ReLU-10, batch 128,
//! rows drawn from a Fashion-MNIST-sized in-memory set), without the trainer around it:
//! the fused path's phases (gather, forward, backward) against candle's autograd.
//!
//! ```text
//! cargo bench --bench fused_step -- [steps, default 2000]
//! ```
//!
//! Medians over the steps, so a noisy machine moves them less than epoch times; the
//! tool for A/B-testing a change to the fused path.

use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use stride::model::{Activation, Mlp, Model};

fn median_us(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e6
}

fn main() -> anyhow::Result<()> {
    let steps: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(2000);
    let (n, width) = (60_000usize, 784usize);
    // Synthetic pixels in [0, 1], as big as the Fashion-MNIST training set, in huge pages as
    // the trainer holds it.
    let pixels = stride_cpu::huge_page_vec(n * width, (0..n * width).map(|i| ((i * 7919) % 256) as f32 / 255.0));
    let x = Tensor::from_vec(pixels, (n, width), &Device::Cpu)?;
    let y = Tensor::from_vec((0..n as u32).map(|i| i % 10).collect::<Vec<_>>(), n, &Device::Cpu)?;
    let varmap = VarMap::new();
    let mlp = Mlp::seeded(&"784-128-10".parse()?, Activation::Relu, &varmap, 0)?;
    let mut state = 12345u64;
    let mut batch = || -> Vec<u32> {
        (0..128)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 33) % n as u64) as u32
            })
            .collect()
    };

    let (mut data, mut forward, mut backward, mut total) = (vec![], vec![], vec![], vec![]);
    for i in 0..steps + 50 {
        let rows = batch();
        let t = Instant::now();
        let f = mlp
            .fused_cross_entropy(&x, &y, &rows)?
            .ok_or_else(|| anyhow::anyhow!("the MLP has a fused path"))?;
        let took = t.elapsed();
        drop(f.grads);
        if i >= 50 {
            data.push(f.times.data);
            forward.push(f.times.forward);
            backward.push(f.times.backward);
            total.push(took);
        }
    }
    let mut autograd = vec![];
    for i in 0..steps / 4 + 10 {
        let rows = batch();
        let t = Instant::now();
        let idx = Tensor::from_slice(&rows, rows.len(), &Device::Cpu)?;
        let (xb, yb) = (x.index_select(&idx, 0)?, y.index_select(&idx, 0)?);
        let loss = candle_nn::loss::cross_entropy(&mlp.forward(&xb)?, &yb)?;
        let _value = loss.to_dtype(DType::F32)?.to_scalar::<f32>()?;
        let grads = loss.backward()?;
        let took = t.elapsed();
        drop(grads);
        if i >= 10 {
            autograd.push(took);
        }
    }
    println!(
        "fused step, median over {steps}: {:.1} us (gather {:.1}, forward {:.1}, backward {:.1}); \
         candle autograd: {:.1} us",
        median_us(total),
        median_us(data),
        median_us(forward),
        median_us(backward),
        median_us(autograd)
    );
    Ok(())
}
