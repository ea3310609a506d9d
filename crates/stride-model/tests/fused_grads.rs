//! The fused MLP path against candle's autograd: same loss, same gradients (relative 1e-5).

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use stride_model::{Activation, Mlp, MlpSpec, Model};

const TOLERANCE: f64 = 1e-5;

fn random(rng: &mut ChaCha8Rng, len: usize, scale: f32) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-scale..scale)).collect()
}

/// Largest element-wise difference relative to the largest autograd value.
fn relative_error(fused: &Tensor, autograd: &Tensor) -> f64 {
    let a: Vec<f32> = fused.flatten_all().unwrap().to_vec1().unwrap();
    let b: Vec<f32> = autograd.flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0.0f64, |m, &v| m.max(f64::from(v).abs()));
    let diff = a
        .iter()
        .zip(&b)
        .fold(0.0f64, |m, (&x, &y)| m.max((f64::from(x) - f64::from(y)).abs()));
    if scale == 0.0 {
        diff
    } else {
        diff / scale
    }
}

struct Case {
    spec: &'static str,
    /// Inputs are uniform in -scale..scale.
    scale: f32,
    activation: Activation,
    examples: usize,
    rows: Vec<u32>,
    labels: DType,
    seed: u64,
}

/// Runs one case and returns the worst relative error over the loss and every gradient.
fn compare(case: &Case) -> f64 {
    let spec: MlpSpec = case.spec.parse().unwrap();
    let varmap = VarMap::new();
    let mlp = Mlp::seeded(&spec, case.activation, &varmap, case.seed).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(case.seed);
    let (inputs, classes) = (spec.sizes[0], *spec.sizes.last().unwrap());
    let x = Tensor::from_vec(
        random(&mut rng, case.examples * inputs, case.scale),
        (case.examples, inputs),
        &Device::Cpu,
    )
    .unwrap();
    let labels: Vec<u32> = (0..case.examples)
        .map(|_| rng.random_range(0..classes as u32))
        .collect();
    let y = Tensor::from_vec(labels, case.examples, &Device::Cpu)
        .unwrap()
        .to_dtype(case.labels)
        .unwrap();

    let fused = mlp
        .fused_cross_entropy(&x, &y, &case.rows)
        .unwrap()
        .expect("a ReLU/tanh/sigmoid MLP on CPU f32 takes the fused path");

    let idx = Tensor::from_slice(&case.rows, case.rows.len(), &Device::Cpu).unwrap();
    let (xb, yb) = (x.index_select(&idx, 0).unwrap(), y.index_select(&idx, 0).unwrap());
    let loss = candle_nn::loss::cross_entropy(&mlp.forward(&xb).unwrap(), &yb).unwrap();
    let grads = loss.backward().unwrap();

    let autograd_loss = f64::from(loss.to_scalar::<f32>().unwrap());
    assert!(
        fused.loss.is_finite() && autograd_loss.is_finite(),
        "loss {} vs {autograd_loss}",
        fused.loss
    );
    let mut worst = (f64::from(fused.loss) - autograd_loss).abs() / autograd_loss.abs();
    let vars = varmap.all_vars();
    assert_eq!(vars.len(), 2 * (spec.sizes.len() - 1));
    let mut sq_norm = 0.0f64;
    for var in &vars {
        let want = grads
            .get(var.as_tensor())
            .expect("autograd has every variable's gradient");
        let values: Vec<f32> = want.flatten_all().unwrap().to_vec1().unwrap();
        sq_norm += values.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>();
        let got = fused
            .grads
            .get(var.as_tensor())
            .expect("the fused path has every variable's gradient");
        assert_eq!(got.dims(), want.dims());
        worst = worst.max(relative_error(got, want));
    }
    // The norm the monitor reads comes with the fused gradients.
    worst.max((fused.grad_sq_norm - sq_norm).abs() / sq_norm.max(f64::MIN_POSITIVE))
}

#[test]
fn fused_gradients_match_autograd_on_random_inputs() {
    let shuffled: Vec<u32> = (0..128u32).map(|i| (i * 37 + 5) % 200).collect();
    let cases = [
        // The reference workload's shape, a full batch drawn out of order from 200 examples.
        Case {
            spec: "784-128-10",
            scale: 2.0,
            activation: Activation::Relu,
            examples: 200,
            rows: shuffled.clone(),
            labels: DType::U32,
            seed: 1,
        },
        // W's last, partial batch (60000 = 468 x 128 + 96), labels as i64.
        Case {
            spec: "784-128-10",
            scale: 2.0,
            activation: Activation::Relu,
            examples: 96,
            rows: (0..96).collect(),
            labels: DType::I64,
            seed: 2,
        },
        // Deeper, odd widths, repeated rows, u8 labels.
        Case {
            spec: "37-29-17-11-5",
            scale: 2.0,
            activation: Activation::Relu,
            examples: 23,
            rows: vec![3, 3, 0, 22, 7, 7, 7, 15, 1],
            labels: DType::U8,
            seed: 3,
        },
        Case {
            spec: "64-48-32-10",
            scale: 2.0,
            activation: Activation::Tanh,
            examples: 50,
            rows: (0..50).rev().collect(),
            labels: DType::U32,
            seed: 4,
        },
        Case {
            spec: "64-48-10",
            scale: 2.0,
            activation: Activation::Sigmoid,
            examples: 40,
            rows: (0..40).collect(),
            labels: DType::U32,
            seed: 5,
        },
        // No hidden layer: logistic regression.
        Case {
            spec: "30-7",
            scale: 2.0,
            activation: Activation::Relu,
            examples: 16,
            rows: (0..16).collect(),
            labels: DType::U32,
            seed: 6,
        },
        // Logits thousands apart, as after a far too large step: exp underflows for all
        // classes but one, and the loss must stay finite as autograd's does.
        Case {
            spec: "784-128-10",
            scale: 5e3,
            activation: Activation::Relu,
            examples: 64,
            rows: (0..64).collect(),
            labels: DType::U32,
            seed: 8,
        },
        // A single example.
        Case {
            spec: "20-16-3",
            scale: 2.0,
            activation: Activation::Relu,
            examples: 4,
            rows: vec![2],
            labels: DType::U32,
            seed: 7,
        },
    ];
    for (i, case) in cases.iter().enumerate() {
        let err = compare(case);
        assert!(
            err <= TOLERANCE,
            "case {i} ({} {:?}): relative error {err:e} > {TOLERANCE:e}",
            case.spec,
            case.activation
        );
    }
}

#[test]
fn fused_path_declines_what_it_does_not_cover() {
    let varmap = VarMap::new();
    let spec: MlpSpec = "8-4-3".parse().unwrap();
    let x = Tensor::zeros((5, 8), DType::F32, &Device::Cpu).unwrap();
    let y = Tensor::zeros(5, DType::U32, &Device::Cpu).unwrap();
    let gelu = Mlp::seeded(&spec, Activation::Gelu, &varmap, 0).unwrap();
    assert!(!gelu.has_fused_path());
    assert!(gelu.fused_cross_entropy(&x, &y, &[0, 1]).unwrap().is_none());

    let varmap = VarMap::new();
    let relu = Mlp::seeded(&spec, Activation::Relu, &varmap, 0).unwrap();
    // f64 inputs and float labels are left to autograd.
    let x64 = x.to_dtype(DType::F64).unwrap();
    assert!(relu.fused_cross_entropy(&x64, &y, &[0]).unwrap().is_none());
    let yf = y.to_dtype(DType::F32).unwrap();
    assert!(relu.fused_cross_entropy(&x, &yf, &[0]).unwrap().is_none());
    // Labels must be one index per example (not one-hot rows, not fewer than the inputs).
    let one_hot = Tensor::zeros((5, 3), DType::U32, &Device::Cpu).unwrap();
    assert!(relu.fused_cross_entropy(&x, &one_hot, &[0]).unwrap().is_none());
    let short = Tensor::zeros(4, DType::U32, &Device::Cpu).unwrap();
    assert!(relu.fused_cross_entropy(&x, &short, &[0]).unwrap().is_none());
    // Bad rows and labels are errors that name them, not panics.
    let err = relu.fused_cross_entropy(&x, &y, &[0, 5]).unwrap_err().to_string();
    assert!(err.contains("index 5"), "{err}");
    let bad = Tensor::from_vec(vec![0u32, 1, 3, 0, 0], 5, &Device::Cpu).unwrap();
    let err = relu.fused_cross_entropy(&x, &bad, &[2]).unwrap_err().to_string();
    assert!(err.contains("label 3") && err.contains("0..3"), "{err}");
    // A mismatched input width is an error.
    let wide = Tensor::zeros((5, 9), DType::F32, &Device::Cpu).unwrap();
    assert!(relu.fused_cross_entropy(&wide, &y, &[0]).is_err());
}
