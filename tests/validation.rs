//! Every value a user types is checked, and the error names the value and what is allowed.
//! One test per row of `docs/validation.md`.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use clap::Parser;
use stride::cli::TrainArgs;
use stride::diagnose::read_loss_log;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    train: TrainArgs,
}

fn sample_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/stride-data/mnist-sample")
}

/// The error `stride train` reports for these flags (on the embedded sample and one epoch
/// unless the flags say otherwise).
fn train_error(flags: &[&str]) -> String {
    let sample = sample_dir();
    let mut argv = vec!["stride"];
    for (flag, default) in [("--epochs", "1"), ("--data-dir", sample.to_str().unwrap())] {
        if !flags.contains(&flag) {
            argv.extend([flag, default]);
        }
    }
    argv.extend_from_slice(flags);
    let args = Cli::try_parse_from(argv).map_err(|e| e.to_string()).unwrap().train;
    match stride::cli::train(&args) {
        Ok(_) => panic!("{flags:?} was accepted"),
        Err(e) => e.to_string(),
    }
}

fn assert_says(message: &str, parts: &[&str]) {
    for p in parts {
        assert!(message.contains(p), "{message:?} does not say {p:?}");
    }
}

#[test]
fn lr_nan() {
    assert_says(
        &train_error(&["--lr", "NaN"]),
        &["lr = NaN", "expected a finite learning rate > 0"],
    );
}

#[test]
fn lr_negative() {
    assert_says(
        &train_error(&["--lr", "-0.1"]),
        &["lr = -0.1", "expected a finite learning rate > 0"],
    );
}

#[test]
fn lr_zero() {
    assert_says(
        &train_error(&["--lr", "0"]),
        &["lr = 0", "expected a finite learning rate > 0"],
    );
}

#[test]
fn lr_infinite() {
    assert_says(
        &train_error(&["--lr", "inf"]),
        &["lr = inf", "expected a finite learning rate > 0"],
    );
}

#[test]
fn lr_not_a_number() {
    let e = Cli::try_parse_from(["stride", "--lr", "fast"])
        .err()
        .unwrap()
        .to_string();
    assert_says(&e, &["invalid value 'fast'", "--lr"]);
}

#[test]
fn batch_size_zero() {
    assert_says(
        &train_error(&["--batch-size", "0"]),
        &["batch_size = 0", "expected at least 1"],
    );
}

#[test]
fn epochs_zero() {
    assert_says(&train_error(&["--epochs", "0"]), &["epochs = 0", "expected at least 1"]);
}

#[test]
fn model_and_conv_malformed() {
    assert_says(
        &train_error(&["--model", "resnet"]),
        &["unknown model \"resnet\"", "mlp or cnn"],
    );
    assert_says(
        &train_error(&["--model", "cnn", "--conv", "c8k5-q"]),
        &["\"q\" is not a layer", "e.g. c8k5-mp2-c16k5-mp2", "lenet"],
    );
    // A layer that no longer fits the feature map is named, before any training.
    assert_says(
        &train_error(&["--model", "cnn", "--conv", "c8k5-mp2-c16k5-mp2-c32k5"]),
        &["c32k5 does not fit the 4x4 feature map", "1x28x28"],
    );
}

#[test]
fn hidden_malformed() {
    assert_says(
        &train_error(&["--hidden", "128-x"]),
        &["\"128-x\"", "\"x\" is not a hidden width", "e.g. 128"],
    );
    assert_says(&train_error(&["--hidden", "0"]), &["\"0\" is not a hidden width"]);
}

#[test]
fn activation_unknown() {
    assert_says(
        &train_error(&["--activation", "softsign"]),
        &["\"softsign\"", "expected relu, gelu"],
    );
}

#[test]
fn schedule_malformed() {
    assert_says(
        &train_error(&["--schedule", "step(gama=0.5, every=1000)"]),
        &["column 6", "unknown parameter `gama`", "expected one of every, gamma"],
    );
}

#[test]
fn optimizer_unknown() {
    assert_says(
        &train_error(&["--optimizer", "adamm"]),
        &["optimizer \"adamm\"", "expected one of sgd, adam"],
    );
}

#[test]
fn dataset_unknown() {
    assert_says(
        &train_error(&["--dataset", "cifar"]),
        &["\"cifar\"", "expected \"mnist\" or \"fashion-mnist\""],
    );
}

#[test]
fn clip_grad_norm_not_positive() {
    assert_says(
        &train_error(&["--clip-grad-norm", "-1"]),
        &["clip_grad_norm = -1", "expected a finite norm > 0"],
    );
}

#[test]
fn momentum_out_of_range() {
    assert_says(
        &train_error(&["--optimizer", "adam", "--momentum", "1.5"]),
        &["beta1 = 1.5", "expected 0 <= beta1 < 1"],
    );
    assert_says(
        &train_error(&["--optimizer", "adagrad", "--momentum", "0.9"]),
        &["momentum = 0.9", "has no momentum setting"],
    );
}

#[test]
fn weight_decay_negative() {
    assert_says(
        &train_error(&["--weight-decay", "-0.01"]),
        &["weight_decay = -0.01", "expected weight decay >= 0"],
    );
}

#[test]
fn data_dir_missing() {
    let e = train_error(&["--data-dir", "/nonexistent/stride-data"]);
    assert_says(&e, &["/nonexistent/stride-data", "no mnist IDX files"]);
}

#[test]
fn checkpoint_every_zero() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    assert_says(
        &train_error(&["--checkpoint-dir", d, "--checkpoint-every", "0"]),
        &["checkpoint_every = 0", "expected at least 1 step"],
    );
    assert_says(
        &train_error(&["--checkpoint-dir", d, "--keep-checkpoints", "0"]),
        &["keep_last = 0", "expected at least 1"],
    );
}

#[test]
fn checkpoint_every_without_dir() {
    let e = Cli::try_parse_from(["stride", "--checkpoint-every", "10"])
        .err()
        .unwrap()
        .to_string();
    assert_says(&e, &["--checkpoint-dir"]);
}

#[test]
fn resume_missing_or_latest_without_dir() {
    assert_says(
        &train_error(&["--resume", "latest"]),
        &["resume = latest", "expected --checkpoint-dir too"],
    );
    assert_says(
        &train_error(&["--resume", "/nonexistent/ckpt"]),
        &[
            "/nonexistent/ckpt",
            "missing checkpoint (no state.json and no latest pointer)",
        ],
    );
}

#[test]
fn resume_other_model() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let sample = sample_dir();
    let argv = [
        "stride",
        "--epochs",
        "1",
        "--hidden",
        "16",
        "--no-monitor",
        "--checkpoint-dir",
        d,
        "--data-dir",
    ];
    let mut argv = argv.to_vec();
    argv.push(sample.to_str().unwrap());
    stride::cli::train(&Cli::try_parse_from(argv.clone()).unwrap().train).unwrap();
    // The same flags resume and run only the epoch still to do.
    argv.extend(["--resume", "latest", "--epochs", "2"]);
    argv.remove(1);
    argv.remove(1);
    let resumed = stride::cli::train(&Cli::try_parse_from(argv).unwrap().train).unwrap();
    assert_eq!(resumed.history.epochs.iter().map(|e| e.epoch).collect::<Vec<_>>(), [1]);
    assert_says(
        &train_error(&[
            "--hidden",
            "32",
            "--no-monitor",
            "--checkpoint-dir",
            d,
            "--resume",
            "latest",
        ]),
        &[
            "holds model \"mlp 784-16-10 relu\"",
            "this run trains \"mlp 784-32-10 relu\"",
        ],
    );
    assert_says(
        &train_error(&[
            "--hidden",
            "16",
            "--no-monitor",
            "--seed",
            "3",
            "--checkpoint-dir",
            d,
            "--resume",
            "latest",
        ]),
        &["seed is 3 in this run but 0 in the checkpoint"],
    );
}

#[test]
fn loss_log_missing_or_malformed() {
    let e = read_loss_log(Path::new("/nonexistent/run.csv"), 0.1)
        .unwrap_err()
        .to_string();
    assert_says(&e, &["cannot read /nonexistent/run.csv"]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.csv");
    std::fs::write(&log, "step,loss\n1,2.3\n2,lots\n").unwrap();
    let e = read_loss_log(&log, 0.1).unwrap_err().to_string();
    assert_says(&e, &["run.csv:3", "loss \"lots\" is not a number"]);
}

#[test]
fn non_finite_inputs() {
    let x = Tensor::new(&[[0.0f32, 1.0], [f32::NAN, 0.5], [f32::INFINITY, 0.0]], &Device::Cpu).unwrap();
    let e = stride_train::check_finite_inputs(&x, "training inputs")
        .unwrap_err()
        .to_string();
    assert_says(
        &e,
        &["training inputs hold 2 NaN or infinite values", "first in example 1"],
    );
    let ok = Tensor::new(&[[0.0f32, 1.0]], &Device::Cpu).unwrap();
    stride_train::check_finite_inputs(&ok, "training inputs").unwrap();
}
