use std::collections::BTreeMap;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::error::{check, OptimError, Result};
use crate::optimizer::{Buffer, Optimizer, OptimizerState};

/// Hyper-parameters of [`Sgd`]; defaults are PyTorch's `torch.optim.SGD`
/// (lr 1e-3, no momentum, no dampening, no weight decay, no Nesterov).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SgdConfig {
    /// Learning rate (default 1e-3).
    pub lr: f64,
    /// Momentum factor (default 0).
    pub momentum: f64,
    /// Dampening of the momentum (default 0).
    pub dampening: f64,
    /// L2 penalty added to the gradient (default 0).
    pub weight_decay: f64,
    /// Nesterov momentum (default false; needs momentum > 0 and dampening 0).
    pub nesterov: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        }
    }
}

impl SgdConfig {
    /// The default config with learning rate `lr`.
    pub fn with_lr(lr: f64) -> Self {
        Self { lr, ..Self::default() }
    }

    fn validate(&self) -> Result<()> {
        check("lr", self.lr, self.lr >= 0.0, "expected a learning rate >= 0")?;
        check(
            "momentum",
            self.momentum,
            self.momentum >= 0.0,
            "expected momentum >= 0",
        )?;
        check("dampening", self.dampening, true, "expected a finite dampening")?;
        check(
            "weight_decay",
            self.weight_decay,
            self.weight_decay >= 0.0,
            "expected weight decay >= 0",
        )?;
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(OptimError::Config {
                name: "nesterov",
                value: self.momentum,
                message: "Nesterov momentum needs momentum > 0 and dampening 0",
            });
        }
        Ok(())
    }
}

/// Stochastic gradient descent, `w := w - lr * grad`, with PyTorch's
/// momentum, dampening, Nesterov and weight-decay semantics.
#[derive(Debug)]
pub struct Sgd {
    vars: Vec<Var>,
    config: SgdConfig,
    momentum: Vec<Option<Tensor>>,
    steps: u64,
}

impl Sgd {
    /// Creates the optimizer over `vars`, validating `config`.
    pub fn new(vars: Vec<Var>, config: SgdConfig) -> Result<Self> {
        config.validate()?;
        let momentum = vec![None; vars.len()];
        Ok(Self {
            vars,
            config,
            momentum,
            steps: 0,
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &SgdConfig {
        &self.config
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        let c = self.config;
        for (var, buf) in self.vars.iter().zip(self.momentum.iter_mut()) {
            let Some(grad) = grads.get(var.as_tensor()) else {
                continue;
            };
            let mut g = if c.weight_decay != 0.0 {
                (grad + var.as_tensor().affine(c.weight_decay, 0.0)?)?
            } else {
                grad.clone()
            };
            if c.momentum != 0.0 {
                let b = match buf.take() {
                    None => g.clone(),
                    Some(b) => (b.affine(c.momentum, 0.0)? + g.affine(1.0 - c.dampening, 0.0)?)?,
                };
                g = if c.nesterov {
                    (g + b.affine(c.momentum, 0.0)?)?
                } else {
                    b.clone()
                };
                *buf = Some(b);
            }
            var.set(&(var.as_tensor() - g.affine(c.lr, 0.0)?)?)?;
        }
        self.steps += 1;
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.config.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.config.lr = lr;
    }

    fn steps(&self) -> u64 {
        self.steps
    }

    fn vars(&self) -> &[Var] {
        &self.vars
    }

    fn state(&self) -> Result<OptimizerState> {
        let c = self.config;
        let hyper = BTreeMap::from([
            ("momentum".to_string(), c.momentum),
            ("dampening".to_string(), c.dampening),
            ("weight_decay".to_string(), c.weight_decay),
            ("nesterov".to_string(), f64::from(u8::from(c.nesterov))),
        ]);
        let buffers = self
            .momentum
            .iter()
            .enumerate()
            .filter_map(|(i, b)| b.as_ref().map(|b| Buffer::from_tensor(format!("momentum.{i}"), b)))
            .collect::<Result<_>>()?;
        Ok(OptimizerState {
            kind: "sgd".into(),
            step: self.steps,
            lr: c.lr,
            hyper,
            buffers,
        })
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        state.expect_kind("sgd")?;
        let get = |k: &str| state.hyper.get(k).copied().unwrap_or(0.0);
        let config = SgdConfig {
            lr: state.lr,
            momentum: get("momentum"),
            dampening: get("dampening"),
            weight_decay: get("weight_decay"),
            nesterov: get("nesterov") != 0.0,
        };
        config.validate()?;
        let mut momentum = vec![None; self.vars.len()];
        for buffer in &state.buffers {
            let index = buffer
                .name
                .strip_prefix("momentum.")
                .and_then(|i| i.parse::<usize>().ok())
                .filter(|&i| i < self.vars.len())
                .ok_or_else(|| OptimError::State(format!("unexpected buffer {}", buffer.name)))?;
            momentum[index] = Some(buffer.to_tensor(self.vars[index].as_tensor())?);
        }
        self.config = config;
        self.momentum = momentum;
        self.steps = state.step;
        Ok(())
    }
}

impl candle_nn::Optimizer for Sgd {
    type Config = SgdConfig;

    fn new(vars: Vec<Var>, config: SgdConfig) -> candle_core::Result<Self> {
        Sgd::new(vars, config).map_err(candle_core::Error::wrap)
    }

    fn step(&mut self, grads: &GradStore) -> candle_core::Result<()> {
        Optimizer::step(self, grads).map_err(candle_core::Error::wrap)
    }

    fn learning_rate(&self) -> f64 {
        self.config.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.config.lr = lr;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    fn run(sgd: &mut Sgd, steps: usize) -> Vec<f32> {
        for _ in 0..steps {
            let w = sgd.vars()[0].as_tensor();
            // loss = sum(w^2) / 2, so grad = w.
            let loss = (w.sqr().unwrap().sum_all().unwrap() * 0.5).unwrap();
            Optimizer::step(sgd, &loss.backward().unwrap()).unwrap();
        }
        sgd.vars()[0].as_tensor().to_vec1().unwrap()
    }

    #[test]
    fn plain_sgd_follows_the_update_rule() {
        let w = Var::from_tensor(&Tensor::new(&[1f32, -2.0], &Device::Cpu).unwrap()).unwrap();
        let mut sgd = Sgd::new(vec![w], SgdConfig::with_lr(0.1)).unwrap();
        // w := w - 0.1 w = 0.9 w, twice.
        let got = run(&mut sgd, 2);
        assert!((got[0] - 0.81).abs() < 1e-6 && (got[1] + 1.62).abs() < 1e-6, "{got:?}");
    }

    #[test]
    fn momentum_state_round_trips_exactly() {
        let cfg = SgdConfig {
            lr: 0.05,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 0.01,
            ..SgdConfig::default()
        };
        let init = Tensor::new(&[1f32, -2.0, 3.0], &Device::Cpu).unwrap();
        let mut a = Sgd::new(vec![Var::from_tensor(&init).unwrap()], cfg).unwrap();
        run(&mut a, 3);
        let state = a.state().unwrap();
        let mut b = Sgd::new(
            vec![Var::from_tensor(&a.vars()[0].as_tensor().copy().unwrap()).unwrap()],
            SgdConfig::default(),
        )
        .unwrap();
        b.load_state(&state).unwrap();
        assert_eq!(run(&mut a, 4), run(&mut b, 4));
        assert_eq!(b.steps(), 7);
        assert!(Sgd::new(vec![], SgdConfig { lr: -1.0, ..cfg }).is_err());
        let mut wrong = state.clone();
        wrong.kind = "adam".into();
        assert!(b.load_state(&wrong).is_err());
    }
}
