//! The fused CPU updates (one pass, split over threads above 16k elements) against the
//! tensor path, on tensors large enough to take the threaded path: bit-identical weights.

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};
use stride_optim::{AdamConfig, Optimizer, Optimizing, SgdConfig, UpdateRule};

/// A 300 x 200 weight (60k elements, threaded) and a 7-element bias (serial).
fn vars() -> Vec<Var> {
    let w: Vec<f32> = (0..60_000).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
    let b: Vec<f32> = (0..7).map(|i| i as f32 * 0.1).collect();
    vec![
        Var::from_tensor(&Tensor::from_vec(w, (300, 200), &Device::Cpu).unwrap()).unwrap(),
        Var::from_tensor(&Tensor::from_vec(b, 7, &Device::Cpu).unwrap()).unwrap(),
    ]
}

fn grads(vars: &[Var], step: usize) -> GradStore {
    let mut store = GradStore::default();
    for var in vars {
        let n = var.elem_count();
        let g: Vec<f32> = (0..n)
            .map(|i| (((i + 31 * step) * 104_729) % 2001) as f32 / 1000.0 - 1.0)
            .collect();
        store.insert(var.as_tensor(), Tensor::from_vec(g, var.shape(), &Device::Cpu).unwrap());
    }
    store
}

fn run<R: UpdateRule + Clone>(rule: R, fused: bool) -> Vec<Vec<f32>> {
    let vars = vars();
    let mut opt = Optimizing::new(vars.clone(), rule).unwrap();
    opt.set_fused(fused);
    for step in 0..5 {
        Optimizer::step(&mut opt, &grads(&vars, step)).unwrap();
    }
    vars.iter()
        .map(|v| v.as_tensor().flatten_all().unwrap().to_vec1().unwrap())
        .collect()
}

#[test]
fn fused_updates_equal_the_tensor_path_bit_for_bit() {
    let adam = AdamConfig {
        lr: 1e-3,
        ..AdamConfig::default()
    };
    let adam_l2 = AdamConfig {
        weight_decay: 0.01,
        ..adam
    };
    let adamw = AdamConfig {
        weight_decay: 0.01,
        decoupled_weight_decay: true,
        ..adam
    };
    let initial: Vec<Vec<f32>> = vars()
        .iter()
        .map(|v| v.as_tensor().flatten_all().unwrap().to_vec1().unwrap())
        .collect();
    for (name, rule) in [("adam", adam), ("adam+l2", adam_l2), ("adamw", adamw)] {
        let fused = run(rule, true);
        assert_ne!(fused, initial, "{name}: the steps moved the weights");
        assert_eq!(fused, run(rule, false), "{name}");
    }
    let sgd = SgdConfig::with_lr(0.1);
    let momentum = SgdConfig {
        momentum: 0.9,
        weight_decay: 1e-4,
        ..sgd
    };
    for (name, rule) in [("sgd", sgd), ("sgd+momentum", momentum)] {
        assert_eq!(run(rule, true), run(rule, false), "{name}");
    }
}
