//! An optimizer written outside Stride, registered by a program, trained by the command
//! line's own `train` by name, checkpointed and resumed (issue 17: one file plus one row).

use std::path::Path;

use candle_core::Tensor;
use clap::Parser;
use stride::optim::rule_kit::{add_scaled, check, hypers, l2_grad, Hyper, StepCtx, UpdateRule};
use stride::optim::{OptimizerSpec, Registry, Result, UpdateFamily};

/// Gradient descent whose rate falls as 1/sqrt(t): `w -= lr / sqrt(t) * g`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct SqrtDecaySgd {
    lr: f64,
    weight_decay: f64,
}

impl Default for SqrtDecaySgd {
    fn default() -> Self {
        Self {
            lr: 0.1,
            weight_decay: 0.0,
        }
    }
}

impl UpdateRule for SqrtDecaySgd {
    const KIND: &'static str = "sqrt_decay_sgd";
    const BUFFERS: &'static [&'static str] = &[];
    const HYPER: &'static [Hyper<Self>] = hypers![lr lr, weight_decay weight_decay];

    fn validate(&self) -> Result<()> {
        check(
            "lr",
            self.lr,
            self.lr.is_finite() && self.lr >= 0.0,
            "expected a finite lr >= 0",
        )?;
        check(
            "weight_decay",
            self.weight_decay,
            self.weight_decay >= 0.0,
            "expected >= 0",
        )
    }

    fn update(
        &self,
        ctx: StepCtx,
        param: &Tensor,
        grad: &Tensor,
        _buffers: &mut [Option<Tensor>],
        _scalars: &mut [f64],
    ) -> Result<Tensor> {
        let g = l2_grad(ctx, param, grad)?;
        add_scaled(param, -ctx.lr / (ctx.t as f64).sqrt(), &g)
    }
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    train: stride::cli::TrainArgs,
}

#[test]
fn a_registered_rule_trains_checkpoints_and_resumes_through_the_cli() {
    let mut optimizers = Registry::builtin();
    optimizers
        .register(OptimizerSpec::of::<SqrtDecaySgd>("sqrt-sgd", 0.5, UpdateFamily::Sgd))
        .unwrap();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/stride-data/mnist-sample");
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let mut argv = vec![
            "stride",
            "--optimizer",
            "sqrt-sgd",
            "--hidden",
            "32",
            "--no-monitor",
            "--data-dir",
            sample.to_str().unwrap(),
        ];
        argv.extend_from_slice(extra);
        stride::cli::train_with(&Cli::try_parse_from(argv).unwrap().train, &optimizers).unwrap()
    };
    let whole = run(&["--epochs", "2"]);
    assert!(whole.optimizer.starts_with("sqrt-sgd lr 0.5"), "{}", whole.optimizer);
    let (first, last) = (whole.history.step_losses[0], *whole.history.step_losses.last().unwrap());
    assert!(last < 0.5 * first, "it trains: {first} -> {last}");
    assert!(whole.test_accuracy().unwrap() > 0.8, "{:?}", whole.test_accuracy());

    let d = dir.path().to_str().unwrap();
    run(&["--epochs", "1", "--checkpoint-dir", d]);
    let resumed = run(&["--epochs", "2", "--checkpoint-dir", d, "--resume", "latest"]);
    assert_eq!(resumed.history.epochs.len(), 1, "only the epoch still to do");
    let tail = &whole.history.step_losses[whole.history.step_losses.len() - resumed.history.step_losses.len()..];
    assert_eq!(
        resumed.history.step_losses, tail,
        "the resumed epoch repeats the uninterrupted one"
    );

    // Without the row the name is unknown, and the error lists what is known.
    let argv = [
        "stride",
        "--optimizer",
        "sqrt-sgd",
        "--data-dir",
        sample.to_str().unwrap(),
    ];
    let err = stride::cli::train(&Cli::try_parse_from(argv).unwrap().train)
        .unwrap_err()
        .to_string();
    assert!(err.contains("sqrt-sgd") && err.contains("adam"), "{err}");
}
