//! Observers see every event in order and can steer the loop.

use std::cell::RefCell;
use std::rc::Rc;

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use stride::prelude::*;
use stride_data::{Dataset, MNIST_CLASSES};
use stride_train::{MetricsLog, TrainBegin};

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
    fn on_train_begin(&mut self, info: &TrainBegin) -> Action {
        self.events
            .borrow_mut()
            .push(format!("begin {}x{}", info.epochs, info.steps_per_epoch));
        Action::Continue
    }
    fn on_step_end(&mut self, s: &StepEnd) -> Action {
        self.events.borrow_mut().push(format!("step {} lr {}", s.step, s.lr));
        // Halve the rate after step 2; stop after step 5.
        match s.step {
            2 => Action::SetLr(s.lr / 2.0),
            5 => Action::Stop("enough".into()),
            _ => Action::Continue,
        }
    }
    fn on_epoch_end(&mut self, e: &EpochEnd) -> Action {
        self.events.borrow_mut().push(format!("epoch {}", e.epoch));
        Action::Continue
    }
    fn on_train_end(&mut self, h: &History) {
        self.events.borrow_mut().push(format!("end {:?}", h.stopped));
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
    assert_eq!(lines[0], "kind,epoch,step,loss,lr,test_loss,test_accuracy,seconds");
    assert_eq!(lines.len(), 1 + 5 + 2);
    assert!(
        lines[3].starts_with("step,0,3,") && lines[3].contains(",0.2,"),
        "{}",
        lines[3]
    );
    assert!(lines[5].starts_with("epoch,0,4,"), "{}", lines[5]);
    let jsonl = std::fs::read_to_string(jsonl).unwrap();
    let last: serde_json::Value = serde_json::from_str(jsonl.lines().last().unwrap()).unwrap();
    assert_eq!(last["kind"], "epoch");
    assert_eq!(last["step"], 5);
    assert!(last["test_accuracy"].as_f64().unwrap() >= 0.0);
}

#[test]
fn bad_settings_are_errors() {
    assert!(Trainer::builder().epochs(0).build().is_err());
    assert!(Trainer::builder().batch_size(0).build().is_err());
    let err = Trainer::builder().lr(f64::NAN).build().err().unwrap();
    assert!(err.to_string().contains("lr"), "{err}");
    assert!(MetricsLog::create("/nonexistent-dir/x.csv").is_err());
}
