//! A rule written outside the crate, through `stride_optim::rule_kit` only.

use candle_core::{Device, Tensor, Var};
use stride_optim::rule_kit::{add_scaled, check, hypers, l2_grad, Hyper, StepCtx, UpdateRule};
use stride_optim::{OptimError, Optimizer, OptimizerKind, OptimizerSpec, Optimizing, Registry, Result, UpdateFamily};

/// Sign-SGD with momentum: `m = mu m + g`, `w -= lr sign(m)`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct SignSgd {
    lr: f64,
    momentum: f64,
    weight_decay: f64,
}

impl Default for SignSgd {
    fn default() -> Self {
        Self {
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 0.0,
        }
    }
}

// The whole rule: its table, its checks and its update; the engine derives the rate,
// momentum and weight-decay accessors and the saved state from the table.
impl UpdateRule for SignSgd {
    const KIND: &'static str = "sign_sgd";
    const BUFFERS: &'static [&'static str] = &["momentum_buffer"];
    const HYPER: &'static [Hyper<Self>] = hypers![lr lr, momentum momentum, weight_decay weight_decay];

    fn validate(&self) -> Result<()> {
        check("lr", self.lr, self.lr >= 0.0, "expected lr >= 0")?;
        check(
            "momentum",
            self.momentum,
            (0.0..1.0).contains(&self.momentum),
            "expected 0 <= momentum < 1",
        )
    }
    fn update(
        &self,
        ctx: StepCtx,
        param: &Tensor,
        grad: &Tensor,
        buffers: &mut [Option<Tensor>],
        _scalars: &mut [f64],
    ) -> Result<Tensor> {
        let g = l2_grad(ctx, param, grad)?;
        let m = match buffers[0].take() {
            Some(m) => add_scaled(&g, self.momentum, &m)?,
            None => g,
        };
        let updated = add_scaled(param, -ctx.lr, &m.sign()?)?;
        buffers[0] = Some(m);
        Ok(updated)
    }
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

fn step(opt: &mut dyn Optimizer, w: &Var) {
    let loss = (w.as_tensor().sqr().unwrap() * 0.5).unwrap().sum_all().unwrap();
    opt.step(&loss.backward().unwrap()).unwrap();
}

#[test]
fn external_sign_sgd_trains_and_resumes_bit_identically() {
    let rule = SignSgd {
        lr: 0.1,
        momentum: 0.9,
        weight_decay: 0.01,
    };
    let init = Tensor::new(&[1.0f32, -2.0, 0.5], &Device::Cpu).unwrap();
    let w = Var::from_tensor(&init).unwrap();
    let mut opt: Box<dyn Optimizer> = Box::new(Optimizing::new(vec![w.clone()], rule).unwrap());
    step(opt.as_mut(), &w);
    let after: Vec<f32> = w.as_tensor().to_vec1().unwrap();
    for (got, want) in after.iter().zip([0.9f32, -1.9, 0.4]) {
        assert!((got - want).abs() < 1e-6, "{after:?}");
    }
    step(opt.as_mut(), &w);
    let saved = opt.state().unwrap();
    let json = serde_json::to_string(&saved).unwrap();
    assert_eq!(saved.kind, "sign_sgd");
    let (a, b) = (w.clone(), Var::from_tensor(w.as_tensor()).unwrap());
    for _ in 0..3 {
        step(opt.as_mut(), &a);
    }
    let mut resumed = Optimizing::new(
        vec![b.clone()],
        SignSgd {
            lr: 1.0,
            momentum: 0.0,
            weight_decay: 0.0,
        },
    )
    .unwrap();
    resumed.load_state(&serde_json::from_str(&json).unwrap()).unwrap();
    assert_eq!(resumed.state().unwrap(), saved);
    for _ in 0..3 {
        step(&mut resumed, &b);
    }
    assert_eq!(bits(&a), bits(&b));
    assert_eq!(resumed.momentum(), Some(0.9));
}

/// The registry row: a program's command line and sweeps name the outside rule as they
/// name a built-in, and `--momentum` / `--weight-decay` reach it through its table.
#[test]
fn external_rule_joins_the_registry() {
    let mut registry = Registry::builtin();
    assert_eq!(registry.specs().len(), OptimizerKind::ALL.len());
    registry
        .register(OptimizerSpec::of::<SignSgd>("sign-sgd", 0.01, UpdateFamily::Adaptive))
        .unwrap();
    let spec = registry.get("Sign-SGD").unwrap();
    assert_eq!((spec.name, spec.default_lr), ("sign-sgd", 0.01));
    assert_eq!(registry.get("adam").unwrap(), OptimizerKind::Adam.spec());
    match registry.register(OptimizerKind::Adam.spec()) {
        Err(OptimError::Unknown(m)) => assert!(m.contains("already registered"), "{m}"),
        other => panic!("expected a name clash, got {other:?}"),
    }
    match registry.get("sgn") {
        Err(OptimError::Unknown(m)) => assert!(m.contains("sign-sgd") && m.contains("adam"), "{m}"),
        other => panic!("expected an unknown name, got {other:?}"),
    }

    let w = Var::from_tensor(&Tensor::new(&[1.0f32, -2.0, 0.5], &Device::Cpu).unwrap()).unwrap();
    let mut opt = spec.build(vec![w.clone()], 0.1, Some(0.5), Some(0.01)).unwrap();
    assert_eq!((opt.learning_rate(), opt.momentum()), (0.1, Some(0.5)));
    let state = opt.state().unwrap();
    assert_eq!(state.hyper.get("weight_decay"), Some(&0.01));
    assert_eq!(state.hyper.get("momentum"), Some(&0.5));
    step(opt.as_mut(), &w);
    let after: Vec<f32> = w.as_tensor().to_vec1().unwrap();
    for (got, want) in after.iter().zip([0.9f32, -1.9, 0.4]) {
        assert!((got - want).abs() < 1e-6, "{after:?}");
    }
    // A bad value is the rule's own check, named.
    match spec.build(vec![w], 0.1, Some(1.5), None) {
        Err(OptimError::Config { name, .. }) => assert_eq!(name, "momentum"),
        other => panic!("expected a config error, got {:?}", other.map(|_| ())),
    }
}

/// A table without a rate cannot build: the engine says which rule and what is missing.
#[test]
fn a_table_without_a_rate_is_an_error() {
    #[derive(Debug, Clone, Copy, Default)]
    struct NoRate {
        weight_decay: f64,
    }
    impl UpdateRule for NoRate {
        const KIND: &'static str = "no_rate";
        const BUFFERS: &'static [&'static str] = &[];
        const HYPER: &'static [Hyper<Self>] = hypers![weight_decay weight_decay];
        fn validate(&self) -> Result<()> {
            Ok(())
        }
        fn update(
            &self,
            _ctx: StepCtx,
            param: &Tensor,
            _grad: &Tensor,
            _buffers: &mut [Option<Tensor>],
            _scalars: &mut [f64],
        ) -> Result<Tensor> {
            Ok(param.clone())
        }
    }
    let w = Var::new(&[1.0f32], &Device::Cpu).unwrap();
    match Optimizing::new(vec![w], NoRate::default()) {
        Err(OptimError::Unknown(m)) => assert!(m.contains("no_rate") && m.contains("Lr"), "{m}"),
        other => panic!("expected a table error, got {:?}", other.map(|_| ())),
    }
}
