//! muP: the coordinate check that defines it, and a muP run trained, checkpointed and
//! resumed through the `stride` binary like any other.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use clap::Parser;
use stride::coord_check::{run, CoordCheckArgs};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: CoordCheckArgs,
}

fn sample_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/stride-data/mnist-sample")
}

fn check(flags: &[&str]) -> stride::coord_check::CoordCheck {
    let dir = sample_dir();
    let mut argv = vec!["coord-check", "--data-dir", dir.to_str().unwrap()];
    argv.extend_from_slice(flags);
    run(&Cli::parse_from(argv).args).unwrap()
}

#[test]
fn coordinate_check_passes_for_mup_and_fails_for_the_standard_parametrization_with_adam() {
    // Small widths keep it to about a second; the bound is +-0.1 over steps 1-5.
    let c = check(&[
        "--widths",
        "64,128,256,512",
        "--optimizer",
        "adam",
        "--lr",
        "0.01",
        "--seeds",
        "3",
    ]);
    assert!(c.passes("mup"), "{}", c.table());
    assert!(!c.passes("standard"), "{}", c.table());
    // Not a near miss: under the standard parametrization the second hidden layer grows
    // with the width (Adam's step is ~lr per entry, summed over width-many inputs).
    let worst = c.worst("standard").unwrap();
    assert!(worst.slope > 0.25 && worst.layer == 1, "{}", c.table());
    // Every hidden layer, every step 1..=5 is measured under both.
    assert_eq!(
        c.rows
            .iter()
            .filter(|r| r.param == "mup" && !r.readout && r.step >= 1)
            .count(),
        10
    );
}

#[test]
fn coordinate_check_passes_for_mup_with_sgd() {
    let c = check(&[
        "--widths",
        "64,128,256,512",
        "--optimizer",
        "sgd",
        "--lr",
        "0.1",
        "--seeds",
        "3",
    ]);
    assert!(c.passes("mup"), "{}", c.table());
    let (mup, standard) = (
        c.worst("mup").unwrap().slope.abs(),
        c.worst("standard").unwrap().slope.abs(),
    );
    assert!(mup < standard, "{}", c.table());
}

fn stride(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stride"))
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[test]
fn a_mup_run_trains_records_its_parametrization_and_resumes_only_as_built() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("ckpt");
    let data = sample_dir();
    let common = [
        "train",
        "--data-dir",
        data.to_str().unwrap(),
        "--hidden",
        "256-256",
        "--param",
        "mup",
        "--base-width",
        "64",
        "--optimizer",
        "adam",
        "--lr",
        "0.001",
        "--no-monitor",
    ];
    let mut first = common.to_vec();
    first.extend(["--epochs", "1", "--checkpoint-dir", ckpt.to_str().unwrap()]);
    let out = stride(&first);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("muP (base width 64)"), "{err}");
    let report = String::from_utf8_lossy(&out.stdout);
    let accuracy: f64 = report
        .split("test accuracy ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!(accuracy > 0.5, "{report}");

    // Resuming as the standard parametrization is refused, naming what differs.
    let mut wrong: Vec<&str> = common
        .iter()
        .map(|f| if *f == "mup" { "standard" } else { f })
        .collect();
    wrong.extend([
        "--epochs",
        "2",
        "--checkpoint-dir",
        ckpt.to_str().unwrap(),
        "--resume",
        "latest",
    ]);
    let out = stride(&wrong);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("mup base 64"), "{err}");

    let mut resume = common.to_vec();
    resume.extend([
        "--epochs",
        "2",
        "--checkpoint-dir",
        ckpt.to_str().unwrap(),
        "--resume",
        "latest",
    ]);
    let out = stride(&resume);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
