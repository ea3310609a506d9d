//! What happens around a run: failed writes, bad output paths, signals, resumes. Each test
//! runs the `stride` binary as a user would and checks its exit status and its files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn sample_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/stride-data/mnist-sample")
}

/// `stride train` on the MNIST sample with these flags (1 epoch unless given).
fn stride_train(flags: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stride"));
    cmd.arg("train").arg("--data-dir").arg(sample_dir());
    if !flags.contains(&"--epochs") {
        cmd.args(["--epochs", "1"]);
    }
    cmd.args(flags).env("HF_HUB_OFFLINE", "1").env("NO_COLOR", "1");
    cmd
}

fn run(flags: &[&str]) -> Output {
    stride_train(flags).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_metrics_file_that_cannot_be_written_fails_the_run() {
    let out = run(&["--metrics", "/dev/full"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("/dev/full") && err.contains("No space left on device"),
        "{err}"
    );
    // It stopped at the first row: no epoch was reported.
    assert!(!err.contains("epoch 1/1:"), "{err}");
}

#[test]
fn output_paths_are_checked_before_the_data_loads() {
    let dir = tempfile::tempdir().unwrap();
    let same = dir.path().join("x.json");
    let same = same.to_str().unwrap();
    let d = dir.path().to_str().unwrap();
    for (flags, says) in [
        (vec!["--report", "/nonexistent/r.json"], "does not exist"),
        (vec!["--report", d], "is a directory"),
        (
            vec!["--metrics", same, "--report", same],
            "each output needs its own path",
        ),
        (vec!["--checkpoint-dir", d, "--metrics", d], "is a directory"),
    ] {
        let out = run(&flags);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{flags:?}: {err}");
        assert!(err.contains(says), "{flags:?}: {err}");
        assert!(
            !err.contains("dataset loaded"),
            "{flags:?} was checked after loading: {err}"
        );
    }
    assert!(!Path::new(same).exists(), "the probe left a file behind");
    // A report without a monitor would be silently missing: a usage error.
    let out = run(&["--no-monitor", "--report", same]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn a_second_run_into_a_checkpoint_directory_is_refused_unless_told() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    let ck = ck.to_str().unwrap();
    assert!(run(&["--checkpoint-dir", ck]).status.success());
    let out = run(&["--checkpoint-dir", ck, "--lr", "0.5"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("holds checkpoints of another run") && err.contains("--overwrite"),
        "{err}"
    );
    let out = run(&["--checkpoint-dir", ck, "--lr", "0.5", "--overwrite"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Resumed at another rate: it says so, and trains at it.
    let metrics = dir.path().join("m.csv");
    let out = run(&[
        "--checkpoint-dir",
        ck,
        "--epochs",
        "2",
        "--lr",
        "0.05",
        "--resume",
        "latest",
        "--metrics",
        metrics.to_str().unwrap(),
    ]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("resuming at lr 0.05 as asked"), "{err}");
    let text = std::fs::read_to_string(&metrics).unwrap();
    assert!(text
        .lines()
        .filter(|l| l.starts_with("step,"))
        .all(|l| l.split(',').nth(4) == Some("0.05")));
    // Another dataset is refused.
    let out = run(&[
        "--checkpoint-dir",
        ck,
        "--epochs",
        "3",
        "--resume",
        "latest",
        "--dataset",
        "fashion-mnist",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("dataset is fashion-mnist in this run but mnist in the checkpoint"),
        "{err}"
    );
}

/// Step numbers of the step rows of a metrics CSV.
fn steps(path: &Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("step,"))
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect()
}

#[cfg(unix)]
#[test]
fn sigterm_mid_epoch_saves_resumes_and_loses_no_step() {
    let dir = tempfile::tempdir().unwrap();
    let (ck, straight_ck) = (dir.path().join("ck"), dir.path().join("straight"));
    let metrics = dir.path().join("m.csv");
    // 4 epochs of 225 steps (8,000 digits less the 10% validation split, batch 32): the
    // signal comes well before the end.
    let flags = |ck: &Path, metrics: &Path| {
        [
            "--epochs",
            "4",
            "--batch-size",
            "32",
            "--checkpoint-dir",
            ck.to_str().unwrap(),
            "--metrics",
            metrics.to_str().unwrap(),
        ]
        .map(String::from)
    };
    let args = flags(&ck, &metrics);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = stride_train(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !metrics.exists() || steps(&metrics).len() < 100 {
        assert!(started.elapsed() < Duration::from_secs(120), "no progress in 120 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: kill sends a signal to the child we spawned.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) }, 0);
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(143), "{err}");
    assert!(err.contains("--resume latest"), "{err}");
    let stopped_at = *steps(&metrics).last().unwrap();
    assert!(stopped_at < 900, "the run finished before the signal: {stopped_at}");
    // Resumed with the same command: every step once, 1..=900.
    let mut resumed = args.clone();
    resumed.extend(["--resume", "latest"]);
    let out = run(&resumed);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(steps(&metrics), (1..=900).collect::<Vec<u64>>());
    // And the same weights as a run that was never interrupted.
    let straight_metrics = dir.path().join("s.csv");
    let args = flags(&straight_ck, &straight_metrics);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(run(&args).status.success());
    let weights = |ck: &Path| {
        let name = std::fs::read_to_string(ck.join("latest")).unwrap();
        std::fs::read(ck.join(name.trim()).join("model.safetensors")).unwrap()
    };
    assert!(
        weights(&ck) == weights(&straight_ck),
        "the interrupted run ended at other weights"
    );
}

#[test]
fn nonsense_values_are_refused_before_training() {
    for (flags, says) in [
        (vec!["--momentum", "1"], "momentum"),
        (vec!["--momentum", "1.5"], "momentum"),
        (vec!["--threads", "0"], "--threads 0"),
    ] {
        let out = run(&flags);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{flags:?}: {err}");
        assert!(err.contains(says), "{flags:?}: {err}");
    }
}

/// The `stride` binary with these arguments.
fn stride(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stride"))
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[test]
fn every_subcommand_refuses_meaningless_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("l.csv");
    std::fs::write(&log, "step,loss\n1,2.3\n2,2.2\n3,2.1\n").unwrap();
    let log = log.to_str().unwrap();
    let sample = sample_dir();
    let data = sample.to_str().unwrap();
    for (args, says) in [
        (
            vec!["train", "--data-dir", data, "--hidden", "18446744073709551615"],
            "parameters",
        ),
        (
            vec!["train", "--data-dir", data, "--hidden", "100000-100000"],
            "training needs about",
        ),
        (vec!["lr-find", "--data-dir", data, "--momentum", "2"], "momentum"),
        (
            vec!["diagnose", log, "--lr", "NaN"],
            "--lr NaN: expected a finite number > 0",
        ),
        (
            vec!["diagnose", log, "--lr", "0"],
            "--lr 0: expected a finite number > 0",
        ),
        (vec!["sharpness", "--data-dir", data, "--lr", "-1"], "--lr -1"),
        (vec!["sharpness", "--data-dir", data, "--lr", "nan"], "--lr NaN"),
        (
            vec!["sweep", "--data-dir", data, "--target-loss", "NaN"],
            "--target-loss NaN",
        ),
        (
            vec!["sweep", "--data-dir", data, "--target-loss", "-1"],
            "--target-loss -1",
        ),
    ] {
        let out = stride(&args);
        let err = stderr(&out);
        assert!(matches!(out.status.code(), Some(1 | 2)), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn schedule_csv_has_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("s.csv");
    let out = stride(&[
        "schedule",
        "cosine(300000)",
        "--steps",
        "300000",
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 300_001);
    assert!(text.lines().nth(123_457).unwrap().starts_with("123456,"));
}

#[test]
fn a_device_this_build_cannot_use_is_a_clear_error() {
    for (device, says) in [
        (
            "cuda",
            "no CUDA support; rebuild with `cargo build --release --features cuda`",
        ),
        ("cuda:1", "no CUDA support"),
        ("metal", "no Metal support"),
        ("tpu", "expected cpu, cuda, cuda:N or metal"),
        ("cuda:x", "is not a GPU index"),
    ] {
        if cfg!(feature = "cuda") && device.starts_with("cuda") {
            continue;
        }
        let out = run(&["--device", device]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{device}: {err}");
        assert!(err.contains(says), "{device}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("dataset loaded"),
            "{device}: {err}"
        );
    }
}

#[test]
fn lr_find_sweep_and_sharpness_refuse_a_device_this_build_cannot_use() {
    if cfg!(feature = "cuda") {
        return;
    }
    for command in ["lr-find", "sweep", "sharpness"] {
        for (device, says) in [
            (
                "cuda",
                "no CUDA support; rebuild with `cargo build --release --features cuda`",
            ),
            ("cuda:x", "is not a GPU index"),
        ] {
            let out = Command::new(env!("CARGO_BIN_EXE_stride"))
                .arg(command)
                .arg("--data-dir")
                .arg(sample_dir())
                .args(["--device", device])
                .env("HF_HUB_OFFLINE", "1")
                .env("NO_COLOR", "1")
                .output()
                .unwrap();
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{command} {device}: {err}");
            assert!(err.contains(says), "{command} {device}: {err}");
            assert!(!err.contains("panicked"), "{command} {device}: {err}");
        }
    }
}

#[test]
fn a_second_process_on_the_same_checkpoint_directory_fails_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    let ck = ck.to_str().unwrap();
    let first = stride_train(&["--checkpoint-dir", ck, "--epochs", "30", "--batch-size", "16"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lock = Path::new(ck).join(".lock");
    let started = Instant::now();
    while !lock.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the first run took no lock"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = run(&["--checkpoint-dir", ck]);
    let err = stderr(&out);
    let mut first = first;
    let _ = first.kill();
    let _ = first.wait();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("in use by process {}", first.id())), "{err}");
}
