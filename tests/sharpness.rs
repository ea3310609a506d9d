//! Sharpness on a real MLP: insensitive to the finite-difference step, and invisible to training.

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use stride::data::{DatasetName, Resolver};
use stride::model::{reset_parameters, Activation, Mlp};
use stride::train::{estimate_sharpness, SharpnessConfig, SharpnessSchedule, Trainer};

fn mlp() -> (VarMap, Mlp) {
    let varmap = VarMap::new();
    let model = Mlp::new(
        &"784-32-10".parse().unwrap(),
        Activation::Relu,
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )
    .unwrap();
    reset_parameters(&varmap, 0).unwrap();
    (varmap, model)
}

#[test]
fn mnist_mlp_estimate_moves_under_one_percent_when_h_is_halved_or_doubled() {
    let data = Resolver::local().load(DatasetName::Mnist).unwrap().splits.train;
    let (x, y) = data.to_tensors(&Device::Cpu).unwrap();
    let (x, y) = (x.narrow(0, 0, 512).unwrap(), y.narrow(0, 0, 512).unwrap());
    let (varmap, model) = mlp();
    let vars = varmap.all_vars();
    let before: Vec<Vec<f32>> = vars
        .iter()
        .map(|v| v.as_tensor().flatten_all().unwrap().to_vec1().unwrap())
        .collect();
    let at = |rel_step: f64| {
        let config = SharpnessConfig {
            rel_step,
            tol: 1e-5,
            max_iters: 60,
            ..SharpnessConfig::default()
        };
        estimate_sharpness(&model, &vars, &x, &y, &config).unwrap().lambda
    };
    let base = at(1e-3);
    assert!(base > 0.1 && base < 100.0, "lambda {base}");
    for rel in [5e-4, 2e-3] {
        let other = at(rel);
        assert!(
            (other / base - 1.0).abs() < 0.01,
            "h x{}: {other} vs {base}",
            rel / 1e-3
        );
    }
    let after: Vec<Vec<f32>> = vars
        .iter()
        .map(|v| v.as_tensor().flatten_all().unwrap().to_vec1().unwrap())
        .collect();
    assert_eq!(before, after, "the weights must be restored bit-exactly");
}

#[test]
fn estimating_sharpness_does_not_change_the_run() {
    let data = Resolver::local().load(DatasetName::Mnist).unwrap().splits.train;
    let run = |schedule: Option<SharpnessSchedule>| {
        let (varmap, model) = mlp();
        let mut b = Trainer::builder().epochs(2).batch_size(256);
        if let Some(s) = schedule {
            b = b.sharpness(s);
        }
        b.build().unwrap().fit(&model, &varmap, &data, None).unwrap()
    };
    let plain = run(None);
    let probed = run(Some(SharpnessSchedule {
        batch: 128,
        ..SharpnessSchedule::default()
    }));
    assert_eq!(plain.step_losses, probed.step_losses);
    assert_eq!(probed.sharpness.len(), 2, "once per epoch");
    assert_eq!(probed.sharpness[0].0, 0, "the first estimate is of the initial weights");
    assert!(probed
        .sharpness
        .iter()
        .all(|(_, r)| r.lambda > 0.0 && r.threshold == 2.0));
}
