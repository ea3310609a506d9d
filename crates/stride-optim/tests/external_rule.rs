//! A rule written outside the crate, through `stride_optim::rule_kit` only.

use std::collections::BTreeMap;

use candle_core::{Device, Tensor, Var};
use stride_optim::rule_kit::{add_scaled, check, hyper_get, hyper_map, l2_grad, StepCtx, UpdateRule};
use stride_optim::{Optimizer, Optimizing, Result};

/// Sign-SGD with momentum: `m = mu m + g`, `w -= lr sign(m)`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct SignSgd {
    lr: f64,
    momentum: f64,
    weight_decay: f64,
}

impl UpdateRule for SignSgd {
    const KIND: &'static str = "sign_sgd";
    const BUFFERS: &'static [&'static str] = &["momentum_buffer"];

    fn lr(&self) -> f64 {
        self.lr
    }
    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
    fn weight_decay(&self) -> f64 {
        self.weight_decay
    }
    fn momentum(&self) -> Option<f64> {
        Some(self.momentum)
    }
    fn validate(&self) -> Result<()> {
        check("lr", self.lr, self.lr >= 0.0, "expected lr >= 0")?;
        check(
            "momentum",
            self.momentum,
            (0.0..1.0).contains(&self.momentum),
            "expected 0 <= momentum < 1",
        )
    }
    fn hyper(&self) -> BTreeMap<String, f64> {
        hyper_map(&[("momentum", self.momentum), ("weight_decay", self.weight_decay)])
    }
    fn from_hyper(lr: f64, h: &BTreeMap<String, f64>) -> Result<Self> {
        Ok(Self {
            lr,
            momentum: hyper_get(h, Self::KIND, "momentum")?,
            weight_decay: hyper_get(h, Self::KIND, "weight_decay")?,
        })
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
