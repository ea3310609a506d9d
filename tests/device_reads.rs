//! The trainer's batched reads of the step scalars (what a GPU run takes by default), forced
//! on the CPU and set against the per-step reads the CPU takes: the same run, step for step.

use std::sync::{Arc, Mutex};

use candle_core::Device;
use stride::prelude::*;
use stride::train::{StopReason, TrainerBuilder};

use crate::training::mlp;

/// Every step's event, in the order the observers got them.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<StepEnd>>>);

impl Callback for Events {
    fn on_step_end(&mut self, s: &StepEnd) -> stride::train::Result<Action> {
        self.0.lock().unwrap().push(s.clone());
        Ok(Action::Continue)
    }
}

/// A run of the MLP through candle's graph (the fused path reads its scalars on the CPU
/// itself, which would leave nothing on the "device" to batch), and the events it sent.
fn run(read_every: u64, builder: impl Fn(TrainerBuilder) -> TrainerBuilder) -> (History, Vec<StepEnd>) {
    let data = Resolver::local().load(DatasetName::Mnist).unwrap().splits;
    let (model, varmap) = mlp(7);
    let events = Events::default();
    let trainer = Trainer::builder()
        .epochs(2)
        .batch_size(128)
        .seed(7)
        .fused(false)
        .read_every(read_every)
        .callback(events.clone());
    let history = builder(trainer)
        .build()
        .unwrap()
        .fit(&model, &varmap, &data.train, Some(&data.test))
        .unwrap();
    let events = events.0.lock().unwrap().clone();
    (history, events)
}

fn close(a: Option<f64>, b: Option<f64>, what: &str, step: u64) {
    match (a, b) {
        (Some(a), Some(b)) => assert!(
            (a - b).abs() <= 1e-5 * b.abs().max(1e-12),
            "step {step}: {what} {a} vs {b}"
        ),
        (a, b) => assert_eq!(a.is_some(), b.is_some(), "step {step}: {what} {a:?} vs {b:?}"),
    }
}

#[test]
fn batched_reads_report_the_same_run_as_per_step_reads() {
    // 63 batches an epoch: reads of 8 leave a short read at each epoch's end.
    let observed = |b: TrainerBuilder| b.lr(0.1).track_grad_norm(true).track_update_ratio(5);
    let (direct, direct_events) = run(1, observed);
    let (batched, batched_events) = run(8, |b| observed(b).device(Device::Cpu));
    assert_eq!(direct.step_losses.len(), 126);
    assert_eq!(batched.step_losses, direct.step_losses);
    assert_eq!(batched.step_lrs, direct.step_lrs);
    // Debug text, since the losses are NaN.
    assert_eq!(format!("{:?}", batched.stopped), format!("{:?}", direct.stopped));
    assert_eq!(batched.epochs.len(), 2);
    for (b, d) in batched.epochs.iter().zip(&direct.epochs) {
        assert_eq!(
            (b.train_loss, b.train_accuracy, b.eval, b.lr),
            (d.train_loss, d.train_accuracy, d.eval, d.lr)
        );
    }
    assert_eq!(batched_events.len(), direct_events.len());
    for (b, d) in batched_events.iter().zip(&direct_events) {
        assert_eq!(
            (b.step, b.epoch, b.batch, b.batches, b.loss, b.lr, b.batch_size),
            (d.step, d.epoch, d.batch, d.batches, d.loss, d.lr, d.batch_size)
        );
        // The device path sums squares in f32 on the device, the CPU path in f64.
        close(b.grad_norm, d.grad_norm, "gradient norm", d.step);
        close(b.update_ratio, d.update_ratio, "update ratio", d.step);
    }
    assert!(direct_events.iter().all(|e| e.grad_norm.is_some()));
    assert_eq!(
        direct_events.iter().filter(|e| e.update_ratio.is_some()).count(),
        126 / 5
    );
}

#[test]
fn clipping_on_the_device_clips_as_on_the_cpu() {
    let clipped = |b: TrainerBuilder| b.lr(0.1).clip_grad_norm(0.5);
    let ((direct, de), (batched, be)) = (run(1, clipped), run(5, clipped));
    assert_eq!(batched.step_losses.len(), direct.step_losses.len());
    // The scale is formed in f32 on the device, in f64 on the CPU: rounding, compounded.
    for (step, (b, d)) in batched.step_losses.iter().zip(&direct.step_losses).enumerate() {
        assert!((b - d).abs() <= 1e-4 * d, "step {step}: loss {b} vs {d}");
    }
    assert!(
        de.iter().filter(|e| e.grad_norm.is_some_and(|n| n > 0.5)).count() > 10,
        "nothing was clipped"
    );
    for (b, d) in be.iter().zip(&de).take(10) {
        close(b.grad_norm, d.grad_norm, "gradient norm", d.step);
    }
}

#[test]
fn a_non_finite_loss_stops_batched_reads_at_the_same_step() {
    let diverging = |b: TrainerBuilder| b.lr(1e20);
    let ((direct, de), (batched, be)) = (run(1, diverging), run(8, diverging));
    assert!(
        matches!(direct.stopped, Some(StopReason::NonFiniteLoss { .. })),
        "{:?}",
        direct.stopped
    );
    // The steps taken past the non-finite one before the read saw it are dropped unreported.
    // Debug text, since the losses are NaN.
    assert_eq!(format!("{:?}", batched.stopped), format!("{:?}", direct.stopped));
    assert_eq!(
        format!("{:?}", batched.step_losses),
        format!("{:?}", direct.step_losses)
    );
    assert_eq!(be.len(), de.len());
}

/// Asks for a snapshot after step 3 and a rollback after step 10.
struct SnapshotThenRollback;

impl Callback for SnapshotThenRollback {
    fn on_step_end(&mut self, s: &StepEnd) -> stride::train::Result<Action> {
        Ok(match s.step {
            3 => Action::Checkpoint,
            10 => Action::Rollback(None),
            _ => Action::Continue,
        })
    }
}

#[test]
fn a_snapshot_asked_for_between_reads_is_taken_at_the_read() {
    let scripted = |b: TrainerBuilder| b.lr(0.1).epochs(1).callback(SnapshotThenRollback);
    let ((direct, _), (batched, be)) = (run(1, scripted), run(8, scripted));
    // Read one at a time, the snapshot holds step 3; read 8 at a time, the weights are
    // already past it when the request is read, and the snapshot waits for the read's last
    // step (8), whose weights it holds.
    assert_eq!(direct.rollbacks, vec![(3, None)]);
    assert_eq!(batched.rollbacks, vec![(8, None)]);
    // Steps 11..16 were taken from the weights rolled back: dropped, never reported.
    assert_eq!(direct.step_losses.len(), 63);
    assert_eq!(batched.step_losses.len(), 63 - 6);
    assert_eq!(be.len(), 63 - 6);
    assert_eq!(batched.step_losses[..10], direct.step_losses[..10]);
    assert_eq!(batched.stopped, None);
}
