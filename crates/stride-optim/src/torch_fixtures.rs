//! Every optimizer and option against trajectories recorded from PyTorch
//! (`fixtures/optimizers/gen_optimizers.py`), every parameter after every step,
//! on both the fused CPU path and the generic tensor path; and the state
//! round trip of every optimizer.

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};
use serde_json::Value;

use crate::{
    AdadeltaConfig, AdagradConfig, AdamConfig, AdamaxConfig, NAdamConfig, Optimizer, Optimizing, ParamGroup,
    RAdamConfig, RmsPropConfig, SgdConfig, UpdateRule,
};

const FIXTURE: &str = include_str!("../fixtures/optimizers/optimizers.json");

/// The numbers of a JSON array, as f32.
pub(crate) fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// The generators' problem: gradients C * x + D for a 3x4 weight and a bias of 4.
pub(crate) struct Problem {
    pub(crate) w: Var,
    pub(crate) b: Var,
    cw: Tensor,
    dw: Tensor,
    cb: Tensor,
    db: Tensor,
}

impl Problem {
    pub(crate) fn new(data: &Value) -> Self {
        let t = |k: &str, shape: &[usize]| Tensor::from_vec(floats(&data[k]), shape, &Device::Cpu).unwrap();
        Self {
            w: Var::from_tensor(&t("w0", &[3, 4])).unwrap(),
            b: Var::from_tensor(&t("b0", &[4])).unwrap(),
            cw: t("cw", &[3, 4]),
            dw: t("dw", &[3, 4]),
            cb: t("cb", &[4]),
            db: t("db", &[4]),
        }
    }

    /// The gradient C * x + D of both tensors, computed as the generator does, then one step.
    pub(crate) fn step(&self, opt: &mut dyn Optimizer) {
        let mut grads = GradStore::default();
        for (x, c, d) in [(&self.w, &self.cw, &self.dw), (&self.b, &self.cb, &self.db)] {
            grads.insert(x.as_tensor(), ((c * x.as_tensor()).unwrap() + d).unwrap());
        }
        opt.step(&grads).unwrap();
    }
}

/// A number from a case's config.
pub(crate) fn get(config: &Value, key: &str) -> Option<f64> {
    config.get(key).and_then(Value::as_f64)
}

fn flag(config: &Value, key: &str) -> bool {
    config.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn betas(config: &Value, default: (f64, f64)) -> (f64, f64) {
    match config.get("betas") {
        Some(b) => (b[0].as_f64().unwrap(), b[1].as_f64().unwrap()),
        None => default,
    }
}

fn build<R: UpdateRule>(case: &Value, p: &Problem, rule: R, fused: bool) -> Box<dyn Optimizer> {
    let vars = vec![p.w.clone(), p.b.clone()];
    let mut opt = match case["groups"].as_array() {
        None => Optimizing::new(vars, rule).unwrap(),
        Some(groups) => {
            let groups = vars
                .into_iter()
                .zip(groups)
                .map(|(v, g)| {
                    let group = ParamGroup::new(vec![v]).lr_scale(g["lr_scale"].as_f64().unwrap());
                    match g["weight_decay"].as_f64() {
                        Some(wd) => group.weight_decay(wd),
                        None => group,
                    }
                })
                .collect();
            Optimizing::with_groups(groups, rule).unwrap()
        }
    };
    opt.set_fused(fused);
    Box::new(opt)
}

/// The Stride optimizer for a fixture case, on the fused or the generic path.
fn optimizer_for(case: &Value, p: &Problem, fused: bool) -> Box<dyn Optimizer> {
    let c = &case["config"];
    let lr = |default| get(c, "lr").unwrap_or(default);
    let wd = get(c, "weight_decay").unwrap_or(0.0);
    match case["optimizer"].as_str().unwrap() {
        "SGD" => build(
            case,
            p,
            SgdConfig {
                lr: lr(1e-3),
                momentum: get(c, "momentum").unwrap_or(0.0),
                dampening: get(c, "dampening").unwrap_or(0.0),
                weight_decay: wd,
                nesterov: flag(c, "nesterov"),
            },
            fused,
        ),
        name @ ("Adam" | "AdamW") => {
            let (beta1, beta2) = betas(c, (0.9, 0.999));
            let base = if name == "AdamW" {
                AdamConfig::adamw(lr(1e-3))
            } else {
                AdamConfig::with_lr(lr(1e-3))
            };
            let cfg = AdamConfig {
                beta1,
                beta2,
                eps: get(c, "eps").unwrap_or(1e-8),
                weight_decay: get(c, "weight_decay").unwrap_or(base.weight_decay),
                amsgrad: flag(c, "amsgrad"),
                ..base
            };
            build(case, p, cfg, fused)
        }
        "RMSprop" => build(
            case,
            p,
            RmsPropConfig {
                lr: lr(1e-2),
                alpha: get(c, "alpha").unwrap_or(0.99),
                eps: get(c, "eps").unwrap_or(1e-8),
                weight_decay: wd,
                momentum: get(c, "momentum").unwrap_or(0.0),
                centered: flag(c, "centered"),
            },
            fused,
        ),
        "Adagrad" => build(
            case,
            p,
            AdagradConfig {
                lr: lr(1e-2),
                lr_decay: get(c, "lr_decay").unwrap_or(0.0),
                weight_decay: wd,
                initial_accumulator_value: get(c, "initial_accumulator_value").unwrap_or(0.0),
                eps: get(c, "eps").unwrap_or(1e-10),
            },
            fused,
        ),
        "Adadelta" => build(
            case,
            p,
            AdadeltaConfig {
                lr: lr(1.0),
                rho: get(c, "rho").unwrap_or(0.9),
                eps: get(c, "eps").unwrap_or(1e-6),
                weight_decay: wd,
            },
            fused,
        ),
        "Adamax" => {
            let (beta1, beta2) = betas(c, (0.9, 0.999));
            let cfg = AdamaxConfig {
                lr: lr(2e-3),
                beta1,
                beta2,
                eps: get(c, "eps").unwrap_or(1e-8),
                weight_decay: wd,
            };
            build(case, p, cfg, fused)
        }
        "NAdam" => {
            let (beta1, beta2) = betas(c, (0.9, 0.999));
            let cfg = NAdamConfig {
                lr: lr(2e-3),
                beta1,
                beta2,
                eps: get(c, "eps").unwrap_or(1e-8),
                weight_decay: wd,
                momentum_decay: get(c, "momentum_decay").unwrap_or(4e-3),
                decoupled_weight_decay: flag(c, "decoupled_weight_decay"),
            };
            build(case, p, cfg, fused)
        }
        "RAdam" => {
            let (beta1, beta2) = betas(c, (0.9, 0.999));
            let cfg = RAdamConfig {
                lr: lr(1e-3),
                beta1,
                beta2,
                eps: get(c, "eps").unwrap_or(1e-8),
                weight_decay: wd,
                decoupled_weight_decay: flag(c, "decoupled_weight_decay"),
            };
            build(case, p, cfg, fused)
        }
        other => panic!("unknown optimizer {other}"),
    }
}

/// `numpy.allclose` with rtol 1e-5 and atol 1e-7: the absolute term is about one
/// f32 ulp at the parameters' scale (~1), for values that cancel towards zero,
/// where a single rounding difference (PyTorch's kernels use FMA in places) is a
/// large relative one.
fn assert_close(case: &str, step: usize, what: &str, got: &[f32], want: &[f32]) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tol = 1e-5 * w.abs() + 1e-7;
        assert!(
            (g - w).abs() <= tol,
            "{case}, step {}, {what}[{i}]: got {g}, PyTorch {w} (diff {})",
            step + 1,
            (g - w).abs()
        );
    }
}

#[test]
fn every_optimizer_matches_pytorch_step_by_step() {
    let data: Value = serde_json::from_str(FIXTURE).unwrap();
    let cases = data["cases"].as_array().unwrap();
    assert!(cases.len() >= 30);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        for fused in [true, false] {
            let p = Problem::new(&data);
            let mut opt = optimizer_for(case, &p, fused);
            for (step, want) in case["steps"].as_array().unwrap().iter().enumerate() {
                p.step(opt.as_mut());
                let label = format!("{name} ({})", if fused { "fused" } else { "tensor ops" });
                assert_close(
                    &label,
                    step,
                    "w",
                    &p.w.flatten_all().unwrap().to_vec1().unwrap(),
                    &floats(&want["w"]),
                );
                assert_close(&label, step, "b", &p.b.to_vec1().unwrap(), &floats(&want["b"]));
            }
        }
    }
}

#[test]
fn state_round_trip_is_bit_identical_for_every_optimizer() {
    let data: Value = serde_json::from_str(FIXTURE).unwrap();
    for case in data["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        // Uninterrupted: 10 steps.
        let a = Problem::new(&data);
        let mut opt_a = optimizer_for(case, &a, true);
        for _ in 0..10 {
            a.step(opt_a.as_mut());
        }
        // Interrupted after 4: export, serialise, load into a fresh optimizer on copied weights.
        let b = Problem::new(&data);
        let mut opt_b = optimizer_for(case, &b, true);
        for _ in 0..4 {
            b.step(opt_b.as_mut());
        }
        let saved = serde_json::to_string(&opt_b.state().unwrap()).unwrap();
        let c = Problem::new(&data);
        c.w.set(&b.w.as_tensor().copy().unwrap()).unwrap();
        c.b.set(&b.b.as_tensor().copy().unwrap()).unwrap();
        let mut opt_c = optimizer_for(case, &c, true);
        opt_c.set_learning_rate(123.0); // overwritten by the loaded state
        opt_c.load_state(&serde_json::from_str(&saved).unwrap()).unwrap();
        assert_eq!(opt_c.steps(), 4, "{name}");
        for _ in 0..6 {
            c.step(opt_c.as_mut());
        }
        let bits = |v: &Var| -> Vec<u32> {
            v.flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
                .iter()
                .map(|x| x.to_bits())
                .collect()
        };
        assert_eq!(bits(&a.w), bits(&c.w), "{name}: w after resume");
        assert_eq!(bits(&a.b), bits(&c.b), "{name}: b after resume");
    }
}

#[test]
fn bad_configs_and_states_are_errors() {
    let v = vec![Var::zeros(3, candle_core::DType::F32, &Device::Cpu).unwrap()];
    let bad = SgdConfig {
        nesterov: true,
        ..SgdConfig::with_lr(0.1)
    };
    assert!(Optimizing::new(v.clone(), bad)
        .unwrap_err()
        .to_string()
        .contains("nesterov"));
    let err = Optimizing::new(
        v.clone(),
        AdamConfig {
            beta1: 1.5,
            ..AdamConfig::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("beta1 = 1.5"), "{err}");
    let mut sgd = Optimizing::new(v.clone(), SgdConfig::with_lr(0.1)).unwrap();
    let adam = Optimizing::new(v, AdamConfig::default()).unwrap();
    let err = sgd.load_state(&adam.state().unwrap()).unwrap_err();
    assert!(err.to_string().contains("adam"), "{err}");
}
