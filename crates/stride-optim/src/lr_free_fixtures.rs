//! Lion, Schedule-Free, Prodigy and D-Adaptation against trajectories recorded from their
//! reference packages (`fixtures/optimizers/gen_lr_free.py`): every parameter after each
//! of 200 steps, Schedule-Free's averaged point x whenever the reference was switched to
//! it, and the reference's own rate; then the state round trip of every case.
//!
//! Each case carries its `horizon`, the leading steps its reference trajectory is
//! determined to 2e-6 by the reference's own arithmetic (the generator reruns it with
//! its reductions in float64): those steps are held to 1e-5, the rest to 1e-3, because
//! past the horizon Prodigy's and D-Adaptation's trajectories depend on the summation
//! order of their dot products (see the generator's docstring).

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};
use serde_json::Value;

use crate::torch_fixtures::{floats, get, Problem};

use crate::{
    DAdaptAdamConfig, DAdaptSgdConfig, LionConfig, OptimError, Optimizer, Optimizing, ParamGroup, ProdigyConfig,
    ScheduleFreeAdamWConfig, ScheduleFreeSgdConfig, UpdateRule,
};

const FIXTURE: &str = include_str!("../fixtures/optimizers/lr_free.json");

impl Problem {
    fn values(&self) -> (Vec<f32>, Vec<f32>) {
        (
            self.w.flatten_all().unwrap().to_vec1().unwrap(),
            self.b.to_vec1().unwrap(),
        )
    }
}

fn flag(config: &Value, key: &str) -> Option<bool> {
    config.get(key).and_then(Value::as_bool)
}

fn betas(config: &Value, default: (f64, f64)) -> (f64, f64) {
    match config.get("betas") {
        Some(b) => (b[0].as_f64().unwrap(), b[1].as_f64().unwrap()),
        None => default,
    }
}

fn build<R: UpdateRule>(case: &Value, p: &Problem, rule: R) -> Box<dyn Optimizer> {
    let vars = vec![p.w.clone(), p.b.clone()];
    match case["groups"].as_array() {
        None => Box::new(Optimizing::new(vars, rule).unwrap()),
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
            Box::new(Optimizing::with_groups(groups, rule).unwrap())
        }
    }
}

/// The Stride optimizer for a fixture case, every option the case names set from it.
fn optimizer_for(case: &Value, p: &Problem) -> Box<dyn Optimizer> {
    let c = &case["config"];
    let steps = |k| get(c, k).map_or(0, |v| v as u64);
    match case["optimizer"].as_str().unwrap() {
        "Lion" => {
            let base = LionConfig::with_lr(get(c, "lr").unwrap_or(1e-4));
            let (beta1, beta2) = betas(c, (base.beta1, base.beta2));
            let cfg = LionConfig {
                beta1,
                beta2,
                weight_decay: get(c, "weight_decay").unwrap_or(0.0),
                decoupled_weight_decay: flag(c, "decoupled_weight_decay").unwrap_or(false),
                ..base
            };
            build(case, p, cfg)
        }
        "AdamWScheduleFree" => {
            let base = ScheduleFreeAdamWConfig::with_lr(get(c, "lr").unwrap_or(0.0025));
            let (beta1, beta2) = betas(c, (base.beta1, base.beta2));
            let cfg = ScheduleFreeAdamWConfig {
                beta1,
                beta2,
                eps: get(c, "eps").unwrap_or(base.eps),
                weight_decay: get(c, "weight_decay").unwrap_or(0.0),
                warmup_steps: steps("warmup_steps"),
                r: get(c, "r").unwrap_or(base.r),
                weight_lr_power: get(c, "weight_lr_power").unwrap_or(base.weight_lr_power),
                ..base
            };
            build(case, p, cfg)
        }
        "SGDScheduleFree" => {
            let base = ScheduleFreeSgdConfig::with_lr(get(c, "lr").unwrap_or(1.0));
            let cfg = ScheduleFreeSgdConfig {
                momentum: get(c, "momentum").unwrap_or(base.momentum),
                weight_decay: get(c, "weight_decay").unwrap_or(0.0),
                warmup_steps: steps("warmup_steps"),
                r: get(c, "r").unwrap_or(base.r),
                weight_lr_power: get(c, "weight_lr_power").unwrap_or(base.weight_lr_power),
                ..base
            };
            build(case, p, cfg)
        }
        "Prodigy" => {
            let base = ProdigyConfig::with_lr(get(c, "lr").unwrap_or(1.0));
            let (beta1, beta2) = betas(c, (base.beta1, base.beta2));
            let cfg = ProdigyConfig {
                beta1,
                beta2,
                beta3: get(c, "beta3"),
                eps: get(c, "eps").unwrap_or(base.eps),
                weight_decay: get(c, "weight_decay").unwrap_or(0.0),
                decouple: flag(c, "decouple").unwrap_or(base.decouple),
                use_bias_correction: flag(c, "use_bias_correction").unwrap_or(false),
                safeguard_warmup: flag(c, "safeguard_warmup").unwrap_or(false),
                d0: get(c, "d0").unwrap_or(base.d0),
                d_coef: get(c, "d_coef").unwrap_or(base.d_coef),
                growth_rate: get(c, "growth_rate"),
                ..base
            };
            build(case, p, cfg)
        }
        "DAdaptAdam" => {
            let base = DAdaptAdamConfig::with_lr(get(c, "lr").unwrap_or(1.0));
            let (beta1, beta2) = betas(c, (base.beta1, base.beta2));
            let cfg = DAdaptAdamConfig {
                beta1,
                beta2,
                eps: get(c, "eps").unwrap_or(base.eps),
                weight_decay: get(c, "weight_decay").unwrap_or(0.0),
                decouple: flag(c, "decouple").unwrap_or(base.decouple),
                use_bias_correction: flag(c, "use_bias_correction").unwrap_or(false),
                d0: get(c, "d0").unwrap_or(base.d0),
                growth_rate: get(c, "growth_rate"),
                ..base
            };
            build(case, p, cfg)
        }
        "DAdaptSGD" => {
            let base = DAdaptSgdConfig::with_lr(get(c, "lr").unwrap_or(1.0));
            let cfg = DAdaptSgdConfig {
                momentum: get(c, "momentum").unwrap_or(base.momentum),
                weight_decay: get(c, "weight_decay").unwrap_or(0.0),
                d0: get(c, "d0").unwrap_or(base.d0),
                growth_rate: get(c, "growth_rate"),
                ..base
            };
            build(case, p, cfg)
        }
        other => panic!("unknown optimizer {other}"),
    }
}

/// `numpy.allclose` with rtol 1e-5 and atol 1e-7, as the PyTorch fixtures use. Returns
/// the largest relative error among values above the absolute floor, and the first
/// element outside the tolerance, if any.
fn compare(step: usize, what: &str, got: &[f32], want: &[f32]) -> (f64, Option<String>) {
    compare_within((1e-5, 1e-7), step, what, got, want)
}

/// [`compare`] with a tolerance `(relative, absolute)`.
fn compare_within(
    (rtol, atol): (f32, f32),
    step: usize,
    what: &str,
    got: &[f32],
    want: &[f32],
) -> (f64, Option<String>) {
    let mut worst = 0.0f64;
    let mut failure = None;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let diff = (g - w).abs();
        if diff > rtol * w.abs() + atol && failure.is_none() {
            failure = Some(format!(
                "step {}, {what}[{i}]: got {g}, reference {w} (diff {diff})",
                step + 1
            ));
        }
        if w.abs() > 1e-2 {
            worst = worst.max(f64::from(diff / w.abs()));
        }
    }
    (worst, failure)
}

/// Worst error and first failure over a whole case.
#[derive(Default)]
struct Tally {
    worst: f64,
    failure: Option<String>,
}

impl Tally {
    fn add(&mut self, (worst, failure): (f64, Option<String>)) {
        self.worst = self.worst.max(worst);
        if self.failure.is_none() {
            self.failure = failure;
        }
    }
}

#[test]
fn every_case_matches_its_reference_package_step_by_step() {
    let data: Value = serde_json::from_str(FIXTURE).unwrap();
    let cases = data["cases"].as_array().unwrap();
    assert!(cases.len() >= 20);
    let (mut report, mut failures) = (Vec::new(), Vec::new());
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let p = Problem::new(&data);
        let mut opt = optimizer_for(case, &p);
        let (mut y, mut xs, mut rates) = (Tally::default(), Tally::default(), Tally::default());
        let mut late = Tally::default();
        let horizon = case["horizon"].as_u64().unwrap() as usize;
        let lr = opt.learning_rate();
        let mut evaluated = 0;
        for (step, want) in case["steps"].as_array().unwrap().iter().enumerate() {
            let rate_before = opt.effective_learning_rate();
            p.step(opt.as_mut());
            let (w, b) = p.values();
            let tally = if step < horizon { &mut y } else { &mut late };
            let tol = if step < horizon { (1e-5, 1e-7) } else { (1e-3, 1e-5) };
            tally.add(compare_within(tol, step, "w", &w, &floats(&want["w"])));
            tally.add(compare_within(tol, step, "b", &b, &floats(&want["b"])));
            // The reference's rate: Schedule-Free's is the one this step used, Prodigy's and
            // D-Adaptation's `d` the one the next step will use (x lr, no bias correction).
            let bias_corrected = case["config"]["use_bias_correction"] == true;
            let rate = match (get(want, "scheduled_lr"), get(want, "d")) {
                (Some(scheduled), _) => Some((rate_before, scheduled)),
                (None, Some(d)) if case["optimizer"] != "DAdaptSGD" && !bias_corrected => {
                    Some((opt.effective_learning_rate(), d * lr))
                }
                _ => None,
            };
            if let (Some((got, want)), true) = (rate, step < horizon) {
                rates.add(compare(step, "rate", &[got as f32], &[want as f32]));
            }
            if let Some(x) = want.get("x") {
                assert!(opt.has_eval_point(), "{name}");
                opt.eval_point().unwrap();
                opt.eval_point().unwrap(); // a second call stays at x
                let (xw, xb) = p.values();
                xs.add(compare(step, "x.w", &xw, &floats(&x["w"])));
                xs.add(compare(step, "x.b", &xb, &floats(&x["b"])));
                assert!(xw != w, "{name}: x differs from y");
                opt.train_point().unwrap();
                evaluated += 1;
            }
        }
        if opt.has_eval_point() {
            assert_eq!(evaluated, 10, "{name}");
        }
        report.push(format!(
            "{name}: max relative error y {:.2e} over {horizon} steps, {:.2e} after; x {:.2e}; rate {:.2e}",
            y.worst, late.worst, xs.worst, rates.worst
        ));
        for failure in [y.failure, late.failure, xs.failure, rates.failure]
            .into_iter()
            .flatten()
        {
            failures.push(format!("{name}: {failure}"));
        }
    }
    println!("{}", report.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn bits(v: &Var) -> Vec<u32> {
    v.flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .iter()
        .map(|x| x.to_bits())
        .collect()
}

/// Ten steps uninterrupted against four, a save (at x for Schedule-Free, as a checkpoint
/// is taken), a load into a fresh optimizer on the saved weights, and six more.
#[test]
fn state_round_trip_is_bit_identical_for_every_case() {
    let data: Value = serde_json::from_str(FIXTURE).unwrap();
    for case in data["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let a = Problem::new(&data);
        let mut opt_a = optimizer_for(case, &a);
        for i in 0..10 {
            if i == 4 {
                opt_a.eval_point().unwrap();
                opt_a.train_point().unwrap();
            }
            a.step(opt_a.as_mut());
        }
        let b = Problem::new(&data);
        let mut opt_b = optimizer_for(case, &b);
        for _ in 0..4 {
            b.step(opt_b.as_mut());
        }
        opt_b.eval_point().unwrap();
        let saved = serde_json::to_string(&opt_b.state().unwrap()).unwrap();
        let c = Problem::new(&data);
        c.w.set(&b.w.as_tensor().copy().unwrap()).unwrap();
        c.b.set(&b.b.as_tensor().copy().unwrap()).unwrap();
        let mut opt_c = optimizer_for(case, &c);
        opt_c.set_learning_rate(123.0); // overwritten by the loaded state
        opt_c.load_state(&serde_json::from_str(&saved).unwrap()).unwrap();
        assert_eq!(opt_c.steps(), 4, "{name}");
        assert_eq!(
            opt_c.effective_learning_rate().to_bits(),
            opt_b.effective_learning_rate().to_bits(),
            "{name}"
        );
        opt_c.train_point().unwrap();
        for _ in 0..6 {
            c.step(opt_c.as_mut());
        }
        assert_eq!(bits(&a.w), bits(&c.w), "{name}: w after resume");
        assert_eq!(bits(&a.b), bits(&c.b), "{name}: b after resume");
    }
}

#[test]
fn a_schedule_free_step_at_x_is_refused_and_changes_nothing() {
    let data: Value = serde_json::from_str(FIXTURE).unwrap();
    let case = data["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "sf_adamw")
        .unwrap();
    let p = Problem::new(&data);
    let mut opt = optimizer_for(case, &p);
    p.step(opt.as_mut());
    opt.eval_point().unwrap();
    let before = (bits(&p.w), opt.state().unwrap());
    let mut grads = GradStore::default();
    grads.insert(p.w.as_tensor(), p.w.ones_like().unwrap());
    let err = opt.step(&grads).unwrap_err();
    assert!(matches!(err, OptimError::Mode(_)), "{err}");
    assert!(err.to_string().contains("train_point"), "{err}");
    assert_eq!(before, (bits(&p.w), opt.state().unwrap()));
    opt.train_point().unwrap();
    opt.step(&grads).unwrap();
}

#[test]
fn prodigy_refuses_groups_at_different_rates_and_zero_gradients_take_no_step() {
    let v = || Var::zeros(3, candle_core::DType::F32, &Device::Cpu).unwrap();
    let groups = vec![ParamGroup::new(vec![v()]), ParamGroup::new(vec![v()]).lr_scale(10.0)];
    let mut opt = Optimizing::with_groups(groups, ProdigyConfig::default()).unwrap();
    let mut grads = GradStore::default();
    for var in Optimizer::vars(&opt).to_vec() {
        grads.insert(var.as_tensor(), var.ones_like().unwrap());
    }
    let err = Optimizer::step(&mut opt, &grads).unwrap_err();
    assert!(err.to_string().contains("lr_scale 1"), "{err}");

    let x = Var::from_slice(&[1.0f32, -2.0], 2, &Device::Cpu).unwrap();
    let mut opt = Optimizing::new(vec![x.clone()], ProdigyConfig::default()).unwrap();
    let mut zero = GradStore::default();
    zero.insert(x.as_tensor(), x.zeros_like().unwrap());
    Optimizer::step(&mut opt, &zero).unwrap();
    assert_eq!(x.to_vec1::<f32>().unwrap(), vec![1.0, -2.0]);
    assert_eq!(opt.effective_learning_rate(), 1e-6);
    assert!(Optimizing::new(
        vec![x],
        ProdigyConfig {
            growth_rate: Some(0.5),
            ..ProdigyConfig::default()
        }
    )
    .is_err());
}

#[test]
fn the_new_kinds_parse_build_and_step_with_their_reference_defaults() {
    use crate::OptimizerKind;
    let cases = [
        ("lion", 1e-4, false),
        ("sf-adamw", 0.0025, true),
        ("sf-sgd", 1.0, true),
        ("prodigy", 1.0, false),
        ("dadapt-adam", 1.0, false),
        ("dadapt-sgd", 1.0, false),
    ];
    for (name, lr, eval_point) in cases {
        let kind: OptimizerKind = name.parse().unwrap();
        assert_eq!(kind.name(), name);
        assert!(OptimizerKind::ALL.contains(&kind), "{name}");
        assert_eq!(kind.default_lr(), lr, "{name}");
        let x = Var::from_slice(&[1.0f32, -2.0, 0.5], 3, &Device::Cpu).unwrap();
        let mut opt = kind.build(vec![x.clone()], lr, Some(0.5), Some(0.01)).unwrap();
        assert_eq!(opt.momentum(), Some(0.5), "{name}");
        assert_eq!(opt.has_eval_point(), eval_point, "{name}");
        for _ in 0..3 {
            let mut grads = GradStore::default();
            grads.insert(x.as_tensor(), x.affine(2.0, 0.1).unwrap());
            opt.step(&grads).unwrap();
        }
        let rate = opt.effective_learning_rate();
        assert!(rate.is_finite() && rate > 0.0, "{name}: {rate}");
        assert_eq!(opt.state().unwrap().hyper["weight_decay"], 0.01, "{name}");
        let y = x.to_vec1::<f32>().unwrap();
        assert_ne!(y, vec![1.0, -2.0, 0.5], "{name}");
        opt.eval_point().unwrap();
        assert_eq!(x.to_vec1::<f32>().unwrap() != y, eval_point, "{name}: x differs from y");
        opt.train_point().unwrap();
    }
}

#[test]
fn schedule_free_reports_the_warmed_up_rate_of_the_next_step() {
    let x = Var::from_slice(&[1.0f32, -2.0], 2, &Device::Cpu).unwrap();
    let warm = ScheduleFreeAdamWConfig {
        warmup_steps: 4,
        ..ScheduleFreeAdamWConfig::with_lr(0.01)
    };
    let mut opt = Optimizing::new(vec![x.clone()], warm).unwrap();
    let mut seen = Vec::new();
    for _ in 0..6 {
        seen.push(opt.effective_learning_rate());
        let mut grads = GradStore::default();
        grads.insert(x.as_tensor(), x.ones_like().unwrap());
        Optimizer::step(&mut opt, &grads).unwrap();
    }
    assert_eq!(seen, vec![0.0025, 0.005, 0.0075, 0.01, 0.01, 0.01]);
    assert_eq!(Optimizer::learning_rate(&opt), 0.01);
}

/// A least-squares fit through autograd (transposed, non-contiguous weight gradients):
/// each new optimizer at a rate near its reference default cuts the loss at least tenfold.
/// (Schedule-Free's x is the uniform average of the iterates z; on a noiseless problem it
/// lags y, so no order between them is asserted.)
#[test]
fn the_new_optimizers_fit_a_least_squares_problem() {
    use crate::OptimizerKind;
    let dev = Device::Cpu;
    let xs: Vec<f32> = (0..64 * 8).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
    let x = Tensor::from_vec(xs, (64, 8), &dev).unwrap();
    let truth = Tensor::from_vec((0..8).map(|i| i as f32 / 4.0 - 1.0).collect::<Vec<_>>(), (8, 1), &dev).unwrap();
    let target = x.matmul(&truth).unwrap();
    let loss_at = |w: &Var| -> f32 {
        let diff = (x.matmul(w.as_tensor()).unwrap() - &target).unwrap();
        diff.sqr().unwrap().mean_all().unwrap().to_scalar().unwrap()
    };
    for (kind, lr) in [
        (OptimizerKind::Lion, 3e-3),
        (OptimizerKind::ScheduleFreeAdamW, 0.0025 * 4.0),
        (OptimizerKind::ScheduleFreeSgd, 0.1),
        (OptimizerKind::Prodigy, 1.0),
        (OptimizerKind::DAdaptAdam, 1.0),
        (OptimizerKind::DAdaptSgd, 1.0),
    ] {
        let w = Var::zeros((8, 1), candle_core::DType::F32, &dev).unwrap();
        let start = loss_at(&w);
        let mut opt = kind.build(vec![w.clone()], lr, None, None).unwrap();
        for _ in 0..300 {
            let diff = (x.matmul(w.as_tensor()).unwrap() - &target).unwrap();
            let loss = diff.sqr().unwrap().mean_all().unwrap();
            opt.step(&loss.backward().unwrap()).unwrap();
        }
        let at_y = loss_at(&w);
        opt.eval_point().unwrap();
        let at_x = loss_at(&w);
        assert!(at_x < start / 10.0, "{kind}: loss {start} -> {at_x}");
        assert_eq!(at_x != at_y, opt.has_eval_point(), "{kind}: x {at_x}, y {at_y}");
        println!(
            "{kind} at lr {lr}: loss {start:.3} -> {at_x:.2e} (y {at_y:.2e}), effective rate {:.3e}",
            opt.effective_learning_rate()
        );
    }
}
