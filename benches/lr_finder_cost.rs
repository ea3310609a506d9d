//! Cost of the LR range test on the reference workload W (Fashion-MNIST, MLP
//! 784-128-ReLU-10, SGD, batch 128) against 100 ordinary training steps of the Trainer.
//! Runs the two alternately (machines are noisy) and prints the medians and their ratio.
//!
//! ```text
//! cargo bench --bench lr_finder_cost -- [rounds, default 5]
//! ```

use std::time::Instant;

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use stride::data::{DatasetName, Resolver};
use stride::model::{reset_parameters, Activation, Mlp};
use stride::optim::{Sgd, SgdConfig};
use stride::train::{lr_find, Action, Callback, LrFinderConfig, StepEnd, Trainer};

/// Times steps `skip+1 ..= skip+100` of a run, then stops it.
struct HundredSteps {
    skip: u64,
    started: Option<Instant>,
    seconds: std::sync::Arc<std::sync::Mutex<f64>>,
}

impl Callback for HundredSteps {
    fn on_step_end(&mut self, s: &StepEnd) -> stride::train::Result<Action> {
        if s.step == self.skip {
            self.started = Some(Instant::now());
        }
        if s.step == self.skip + 100 {
            if let Some(t) = self.started {
                *self.seconds.lock().unwrap() = t.elapsed().as_secs_f64();
            }
            return Ok(Action::Stop("measured".into()));
        }
        Ok(Action::Continue)
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(5);
    let data = Resolver::from_env().load(DatasetName::FashionMnist)?.splits;
    let varmap = VarMap::new();
    let model = Mlp::new(
        &"784-128-10".parse()?,
        Activation::Relu,
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )?;
    let (mut steps, mut finder) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        reset_parameters(&varmap, 0)?;
        let mut sgd = Sgd::new(varmap.all_vars(), SgdConfig::with_lr(0.1))?;
        let seconds = std::sync::Arc::new(std::sync::Mutex::new(f64::NAN));
        let timer = HundredSteps {
            skip: 20,
            started: None,
            seconds: seconds.clone(),
        };
        Trainer::builder()
            .epochs(1)
            .track_grad_norm(true)
            .callback(timer)
            .build()?
            .fit_with(&model, &mut sgd, &data.train, None)?;
        let t = *seconds.lock().unwrap();
        steps.push(t);

        reset_parameters(&varmap, 0)?;
        let mut sgd = Sgd::new(varmap.all_vars(), SgdConfig::with_lr(0.1))?;
        let result = lr_find(&model, &mut sgd, &data.train, &LrFinderConfig::default())?;
        finder.push(result.seconds);
        println!(
            "round {}: 100 trainer steps {:.3} s, LR finder {:.3} s ({} steps, {})",
            round + 1,
            t,
            result.seconds,
            result.lrs.len(),
            result.stop_sentence()
        );
    }
    let (s, f) = (median(steps), median(finder));
    println!(
        "median: 100 trainer steps {s:.3} s, LR finder {f:.3} s, ratio {:.2}",
        f / s
    );
    Ok(())
}
