use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use crate::error::{OptimError, Result};
use crate::optimizer::{Buffer, Optimizer, OptimizerState};
use crate::params::ParamGroup;
use crate::rule::{StepCtx, UpdateRule, VarStep};

/// An optimizer: variables in groups, the state of rule `R` for each, and step counts.
///
/// `Sgd`, `Adam`, `AdamW`, ... are this type over their config, so they share
/// grouping, state export and the choice between the fused CPU path and the
/// generic tensor path.
#[derive(Debug)]
pub struct Optimizing<R: UpdateRule> {
    rule: R,
    vars: Vec<Var>,
    /// `(lr_scale, weight_decay override)` per group.
    groups: Vec<(f64, Option<f64>)>,
    group_of: Vec<usize>,
    buffers: Vec<Vec<Option<Tensor>>>,
    scalars: Vec<Vec<f64>>,
    param_steps: Vec<u64>,
    steps: u64,
    fused: bool,
}

impl<R: UpdateRule> Optimizing<R> {
    /// One group holding `vars`.
    pub fn new(vars: Vec<Var>, rule: R) -> Result<Self> {
        Self::with_groups(vec![ParamGroup::new(vars)], rule)
    }

    /// Several groups, each with its own learning-rate scale and weight decay.
    pub fn with_groups(groups: Vec<ParamGroup>, rule: R) -> Result<Self> {
        crate::hyper::check_table(R::KIND, R::HYPER)?;
        rule.validate()?;
        let mut out = Self {
            rule,
            vars: Vec::new(),
            groups: Vec::new(),
            group_of: Vec::new(),
            buffers: Vec::new(),
            scalars: Vec::new(),
            param_steps: Vec::new(),
            steps: 0,
            fused: true,
        };
        for (g, group) in groups.into_iter().enumerate() {
            crate::error::check(
                "lr_scale",
                group.lr_scale,
                group.lr_scale >= 0.0,
                "expected a scale >= 0",
            )?;
            if let Some(wd) = group.weight_decay {
                crate::error::check("weight_decay", wd, wd >= 0.0, "expected weight decay >= 0")?;
            }
            out.groups.push((group.lr_scale, group.weight_decay));
            for var in group.vars {
                out.buffers.push(out.rule.init_buffers(var.as_tensor())?);
                out.scalars.push(R::SCALARS.iter().map(|(_, v)| *v).collect());
                out.param_steps.push(0);
                out.group_of.push(g);
                out.vars.push(var);
            }
        }
        Ok(out)
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &R {
        &self.rule
    }

    /// Whether to use the fused one-pass CPU update where the rule has one (default true).
    /// Both paths compute the same update; the switch exists for benchmarks and tests.
    pub fn set_fused(&mut self, fused: bool) {
        self.fused = fused;
    }

    /// The rule's optimizer-wide pass, before any step count or variable changes.
    fn prepare(&mut self, found: &[Option<Tensor>]) -> Result<bool> {
        let ctxs: Vec<StepCtx> = found
            .iter()
            .enumerate()
            .map(|(i, grad)| StepCtx {
                t: self.param_steps[i] + u64::from(grad.is_some()),
                ..self.ctx(i)
            })
            .collect();
        let mut views: Vec<VarStep<'_>> = self
            .vars
            .iter()
            .zip(found)
            .zip(self.buffers.iter_mut().zip(self.scalars.iter_mut()))
            .zip(ctxs)
            .map(|(((var, grad), (buffers, scalars)), ctx)| VarStep {
                ctx,
                param: var.as_tensor(),
                grad: grad.as_ref(),
                buffers: buffers.as_mut_slice(),
                scalars: scalars.as_mut_slice(),
            })
            .collect();
        self.rule.prepare_step(&mut views)
    }

    /// Moves every variable to the evaluation or the training point, all or none.
    fn switch_point(&mut self, to_eval: bool) -> Result<()> {
        // The trainer asks before every step: rules with one point have nothing to move.
        if !self.rule.has_eval_point() {
            return Ok(());
        }
        let mut scalars = self.scalars.clone();
        let mut moved = Vec::new();
        for (i, var) in self.vars.iter().enumerate() {
            if let Some(t) = self
                .rule
                .switch_point(to_eval, var.as_tensor(), &self.buffers[i], &mut scalars[i])?
            {
                moved.push((i, t));
            }
        }
        for (i, t) in moved {
            self.vars[i].set(&t)?;
        }
        self.scalars = scalars;
        Ok(())
    }

    fn ctx(&self, i: usize) -> StepCtx {
        let (scale, wd) = self.groups[self.group_of[i]];
        StepCtx {
            t: self.param_steps[i],
            lr: self.rule.lr() * scale,
            weight_decay: wd.unwrap_or_else(|| self.rule.weight_decay()),
        }
    }
}

impl<R: UpdateRule> Optimizer for Optimizing<R> {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        let found: Vec<Option<Tensor>> = self.vars.iter().map(|v| grads.get(v.as_tensor()).cloned()).collect();
        let proceed = self.prepare(&found)?;
        for (i, grad) in found.iter().enumerate() {
            let Some(grad) = grad else {
                continue;
            };
            self.param_steps[i] += 1;
            if !proceed {
                continue;
            }
            let ctx = self.ctx(i);
            let param = self.vars[i].as_tensor();
            if self.fused && self.rule.update_fused(ctx, param, grad, &mut self.buffers[i])? {
                continue;
            }
            let updated = self
                .rule
                .update(ctx, param, grad, &mut self.buffers[i], &mut self.scalars[i])?;
            self.vars[i].set(&updated)?;
        }
        self.steps += 1;
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.rule.lr()
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.rule.set_lr(lr);
    }

    fn momentum(&self) -> Option<f64> {
        self.rule.momentum()
    }

    fn effective_learning_rate(&self) -> f64 {
        match (self.param_steps.first(), self.scalars.first()) {
            (Some(t), Some(scalars)) => self.rule.effective_lr(t + 1, scalars),
            _ => self.rule.lr(),
        }
    }

    fn has_eval_point(&self) -> bool {
        self.rule.has_eval_point()
    }

    fn eval_point(&mut self) -> Result<()> {
        self.switch_point(true)
    }

    fn train_point(&mut self) -> Result<()> {
        self.switch_point(false)
    }

    fn set_momentum(&mut self, momentum: f64) -> bool {
        self.rule.set_momentum(momentum)
    }

    fn steps(&self) -> u64 {
        self.steps
    }

    fn vars(&self) -> &[Var] {
        &self.vars
    }

    fn state(&self) -> Result<OptimizerState> {
        let mut buffers = Vec::new();
        let mut scalars = std::collections::BTreeMap::new();
        for (i, bufs) in self.buffers.iter().enumerate() {
            for (name, buf) in R::BUFFERS.iter().zip(bufs) {
                if let Some(t) = buf {
                    buffers.push(Buffer::from_tensor(format!("{name}.{i}"), t)?);
                }
            }
            for ((name, _), value) in R::SCALARS.iter().zip(&self.scalars[i]) {
                scalars.insert(format!("{name}.{i}"), *value);
            }
        }
        Ok(OptimizerState {
            kind: R::KIND.into(),
            step: self.steps,
            lr: self.rule.lr(),
            hyper: self.rule.hyper(),
            buffers,
            scalars,
            param_steps: self.param_steps.clone(),
        })
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        state.expect_kind(R::KIND)?;
        let n = self.vars.len();
        if state.param_steps.len() != n {
            return Err(OptimError::State(format!(
                "state is for {} variables, this optimizer has {n}",
                state.param_steps.len()
            )));
        }
        let rule = R::from_hyper(state.lr, &state.hyper)?;
        rule.validate()?;
        let mut buffers: Vec<Vec<Option<Tensor>>> = vec![vec![None; R::BUFFERS.len()]; n];
        for buffer in &state.buffers {
            let (name, index) = buffer
                .name
                .rsplit_once('.')
                .and_then(|(name, i)| Some((name, i.parse::<usize>().ok()?)))
                .filter(|(_, i)| *i < n)
                .ok_or_else(|| OptimError::State(format!("unexpected buffer {}", buffer.name)))?;
            let slot = R::BUFFERS
                .iter()
                .position(|b| *b == name)
                .ok_or_else(|| OptimError::State(format!("{} has no buffer called {name}", R::KIND)))?;
            buffers[index][slot] = Some(buffer.to_tensor(self.vars[index].as_tensor())?);
        }
        let mut scalars: Vec<Vec<f64>> = vec![R::SCALARS.iter().map(|(_, v)| *v).collect(); n];
        for (key, value) in &state.scalars {
            let (name, index) = key
                .rsplit_once('.')
                .and_then(|(name, i)| Some((name, i.parse::<usize>().ok()?)))
                .filter(|(_, i)| *i < n)
                .ok_or_else(|| OptimError::State(format!("unexpected scalar {key}")))?;
            let slot = R::SCALARS
                .iter()
                .position(|(s, _)| *s == name)
                .ok_or_else(|| OptimError::State(format!("{} has no scalar called {name}", R::KIND)))?;
            scalars[index][slot] = *value;
        }
        self.rule = rule;
        self.buffers = buffers;
        self.scalars = scalars;
        self.param_steps = state.param_steps.clone();
        self.steps = state.step;
        Ok(())
    }
}

impl<R: UpdateRule> candle_nn::Optimizer for Optimizing<R> {
    type Config = R;

    fn new(vars: Vec<Var>, config: R) -> candle_core::Result<Self> {
        Optimizing::new(vars, config).map_err(candle_core::Error::wrap)
    }

    fn step(&mut self, grads: &GradStore) -> candle_core::Result<()> {
        Optimizer::step(self, grads).map_err(candle_core::Error::wrap)
    }

    fn learning_rate(&self) -> f64 {
        self.rule.lr()
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.rule.set_lr(lr);
    }
}
