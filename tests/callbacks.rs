//! Observers see every event in order and can steer the loop.

use std::cell::RefCell;
use std::rc::Rc;

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use stride::prelude::*;
use stride_data::{Dataset, MNIST_CLASSES};
use stride_train::{MetricsLog, Result, TrainBegin};

/// 64 tiny random-ish examples: enough to drive the loop, not to learn.
fn toy() -> Dataset {
    let images = (0..64 * 784).map(|i| ((i * 31) % 255) as u8).collect();
    let labels = (0..64).map(|i| (i % MNIST_CLASSES) as u8).collect();
    Dataset::new(images, labels, 28, 28, MNIST_CLASSES, std::path::Path::new("toy")).unwrap()
}

#[derive(Default)]
struct Recorder {
    events: Rc<RefCell<Vec<String>>>,
}

impl Callback for Recorder {
    fn on_train_begin(&mut self, info: &TrainBegin) -> Result<Action> {
        self.events
            .borrow_mut()
            .push(format!("begin {}x{}", info.epochs, info.steps_per_epoch));
        Ok(Action::Continue)
    }
    fn on_step_end(&mut self, s: &StepEnd) -> Result<Action> {
        self.events.borrow_mut().push(format!("step {} lr {}", s.step, s.lr));
        // Halve the rate after step 2; stop after step 5.
        Ok(match s.step {
            2 => Action::SetLr(s.lr / 2.0),
            5 => Action::Stop("enough".into()),
            _ => Action::Continue,
        })
    }
    fn on_epoch_end(&mut self, e: &EpochEnd) -> Result<Action> {
        self.events.borrow_mut().push(format!("epoch {}", e.epoch));
        Ok(Action::Continue)
    }
    fn on_train_end(&mut self, h: &History) -> Result<()> {
        self.events
            .borrow_mut()
            .push(format!("end {:?}", h.stopped.as_ref().map(|s| s.to_string())));
        Ok(())
    }
}

#[test]
fn callbacks_observe_in_order_and_steer() {
    let varmap = VarMap::new();
    let model = Mlp::new(
        &"784-8-10".parse().unwrap(),
        Activation::Relu,
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )
    .unwrap();
    let events = Rc::new(RefCell::new(Vec::new()));
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("m.csv");
    let jsonl = dir.path().join("m.jsonl");
    let mut trainer = Trainer::builder()
        .epochs(3)
        .batch_size(16)
        .lr(0.4)
        .callback(Recorder { events: events.clone() })
        .callback(MetricsLog::create(&csv).unwrap())
        .callback(MetricsLog::create(&jsonl).unwrap())
        .build()
        .unwrap();
    let history = trainer.fit(&model, &varmap, &toy(), Some(&toy())).unwrap();
    let got = events.borrow().clone();
    assert_eq!(
        got,
        [
            "begin 3x4",
            "step 1 lr 0.4",
            "step 2 lr 0.4",
            "step 3 lr 0.2",
            "step 4 lr 0.2",
            "epoch 0",
            "step 5 lr 0.2",
            "epoch 1",
            "end Some(\"enough\")"
        ]
    );
    assert_eq!(history.step_lrs, vec![0.4, 0.4, 0.2, 0.2, 0.2]);

    let csv = std::fs::read_to_string(csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "kind,epoch,step,loss,lr,val_loss,val_accuracy,seconds,train_accuracy,effective_lr"
    );
    assert_eq!(lines.len(), 1 + 5 + 2);
    assert!(
        lines[3].starts_with("step,1,3,") && lines[3].contains(",0.2,"),
        "{}",
        lines[3]
    );
    assert!(lines[5].starts_with("epoch,1,4,"), "{}", lines[5]);
    let jsonl = std::fs::read_to_string(jsonl).unwrap();
    let last: serde_json::Value = serde_json::from_str(jsonl.lines().last().unwrap()).unwrap();
    assert_eq!(last["kind"], "epoch");
    assert_eq!(last["step"], 5);
    assert!(last["val_accuracy"].as_f64().unwrap() >= 0.0);
}

#[test]
fn bad_settings_are_errors() {
    assert!(Trainer::builder().epochs(0).build().is_err());
    assert!(Trainer::builder().batch_size(0).build().is_err());
    let err = Trainer::builder().lr(f64::NAN).build().err().unwrap();
    assert!(err.to_string().contains("lr"), "{err}");
    assert!(MetricsLog::create("/nonexistent-dir/x.csv").is_err());
}

/// Halves the rate once, at step 3.
struct HalveAt3;

impl Callback for HalveAt3 {
    fn on_step_end(&mut self, s: &StepEnd) -> Result<Action> {
        Ok(if s.step == 3 {
            Action::SetLr(s.lr / 2.0)
        } else {
            Action::Continue
        })
    }
}

#[test]
fn schedule_drives_the_rate_and_interventions_scale_it() {
    let varmap = VarMap::new();
    let model = Mlp::new(
        &"784-8-10".parse().unwrap(),
        Activation::Relu,
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )
    .unwrap();
    let mut sgd = Sgd::new(varmap.all_vars(), SgdConfig::with_lr(0.4)).unwrap();
    let schedule = stride::optim::schedule::parse_schedule("step(every=2, gamma=0.5)", 0.4).unwrap();
    let mut trainer = Trainer::builder()
        .epochs(2)
        .batch_size(16)
        .schedule(schedule)
        .clip_grad_norm(1.0)
        .callback(HalveAt3)
        .build()
        .unwrap();
    let history = trainer.fit_with(&model, &mut sgd, &toy(), None).unwrap();
    // lr0 * 0.5^floor(t/2): 0.4 0.4 0.2 | halved from step 4 on: 0.1 0.05 0.05 0.025 0.025
    assert_eq!(history.step_lrs, vec![0.4, 0.4, 0.2, 0.1, 0.05, 0.05, 0.025, 0.025]);
    assert!(Trainer::builder().clip_grad_norm(0.0).build().is_err());
}

/// Records the gradient norms the trainer reports.
struct Norms(Rc<RefCell<Vec<Option<f64>>>>);

impl Callback for Norms {
    fn on_step_end(&mut self, s: &StepEnd) -> Result<Action> {
        self.0.borrow_mut().push(s.grad_norm);
        Ok(Action::Continue)
    }
}

#[test]
fn clipping_reports_the_pre_clip_norm_and_bounds_the_update() {
    let run = |clip: Option<f64>| {
        let varmap = VarMap::new();
        let model = Mlp::new(
            &"784-8-10".parse().unwrap(),
            Activation::Relu,
            VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        )
        .unwrap();
        reset_parameters(&varmap, 1).unwrap();
        let before: Vec<Vec<f32>> = varmap
            .all_vars()
            .iter()
            .map(|v| v.flatten_all().unwrap().to_vec1().unwrap())
            .collect();
        let norms = Rc::new(RefCell::new(Vec::new()));
        let mut builder = Trainer::builder()
            .epochs(1)
            .batch_size(64)
            .lr(1.0)
            .callback(Norms(norms.clone()));
        if let Some(c) = clip {
            builder = builder.clip_grad_norm(c);
        }
        builder.build().unwrap().fit(&model, &varmap, &toy(), None).unwrap();
        let after: Vec<Vec<f32>> = varmap
            .all_vars()
            .iter()
            .map(|v| v.flatten_all().unwrap().to_vec1().unwrap())
            .collect();
        let moved: f64 = before
            .iter()
            .flatten()
            .zip(after.iter().flatten())
            .map(|(a, b)| f64::from(a - b).powi(2))
            .sum::<f64>()
            .sqrt();
        let norms = norms.borrow().clone();
        (norms, moved)
    };
    let (norms, moved) = run(Some(1e-3));
    let norm = norms[0].expect("the trainer reports the norm when clipping");
    assert!(norm > 1e-3, "pre-clip norm {norm}");
    // One SGD step at lr 1 with the gradient clipped to norm 1e-3 moves the weights by 1e-3.
    assert!((moved - 1e-3).abs() < 1e-5, "moved {moved}");
    let (norms, moved_unclipped) = run(None);
    assert_eq!(norms, vec![None]);
    assert!(
        (moved_unclipped - norm).abs() < 1e-3 * norm,
        "unclipped step {moved_unclipped} vs norm {norm}"
    );
}

/// Records the update ratios the trainer reports.
struct Ratios(Rc<RefCell<Vec<Option<f64>>>>);

impl Callback for Ratios {
    fn on_step_end(&mut self, s: &StepEnd) -> Result<Action> {
        self.0.borrow_mut().push(s.update_ratio);
        Ok(Action::Continue)
    }
}

#[test]
fn update_ratio_is_measured_every_n_steps() {
    let varmap = VarMap::new();
    let model = Mlp::new(
        &"784-8-10".parse().unwrap(),
        Activation::Relu,
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )
    .unwrap();
    reset_parameters(&varmap, 0).unwrap();
    let seen = Rc::new(RefCell::new(Vec::new()));
    Trainer::builder()
        .epochs(2)
        .batch_size(16)
        .lr(0.1)
        .track_update_ratio(3)
        .callback(Ratios(seen.clone()))
        .build()
        .unwrap()
        .fit(&model, &varmap, &toy(), None)
        .unwrap();
    let seen = seen.borrow();
    assert_eq!(seen.len(), 8);
    for (i, r) in seen.iter().enumerate() {
        match r {
            Some(r) => assert!((i + 1) % 3 == 0 && *r > 0.0 && *r < 1.0, "step {}: {r}", i + 1),
            None => assert!((i + 1) % 3 != 0, "step {} should be measured", i + 1),
        }
    }
}
