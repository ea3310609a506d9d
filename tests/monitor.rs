//! The monitor inside training runs and on loss logs.

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use stride::diagnose::{diagnose_path, read_loss_log, LogOptions, StreamChoice};
use stride::monitor::{MonitorConfig, State};
use stride::prelude::*;
use stride_data::SYSTEM_DIR;
use stride_train::{AutoLr, RunMonitor};

fn sample() -> Splits {
    Resolver::local().load(DatasetName::Mnist).unwrap().splits
}

/// Trains the MLP for 3 epochs at `lr` with a monitor; returns (history, report).
fn run(data: &Splits, lr: f64, auto: bool) -> (History, stride_train::RunReport) {
    run_epochs(data, lr, auto, 3)
}

/// Trains the MLP at `lr` with a monitor (gradient norm tracked, as the CLI does).
fn run_epochs(data: &Splits, lr: f64, auto: bool, epochs: usize) -> (History, stride_train::RunReport) {
    let varmap = VarMap::new();
    let model = Mlp::new(
        &"784-128-10".parse().unwrap(),
        Activation::Relu,
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )
    .unwrap();
    reset_parameters(&varmap, 0).unwrap();
    let config = MonitorConfig {
        num_classes: Some(10),
        eval_every: 8,
        ..MonitorConfig::default()
    };
    let monitor = RunMonitor::new(config, auto.then(AutoLr::default)).unwrap();
    let report = monitor.report_handle();
    let history = Trainer::builder()
        .epochs(epochs)
        .lr(lr)
        .track_grad_norm(true)
        .callback(monitor)
        .build()
        .unwrap()
        .fit(&model, &varmap, &data.train, Some(&data.test))
        .unwrap();
    let report = report.lock().unwrap().clone();
    (history, report)
}

fn accuracy(h: &History) -> f64 {
    h.last().unwrap().eval.unwrap().accuracy
}

#[test]
fn auto_lr_rescues_a_diverging_run() {
    let data = sample();
    let (best, best_report) = run(&data, 0.1, false);
    assert_eq!(best_report.last.as_ref().unwrap().state, State::Healthy);
    assert!(
        best_report.timeline.iter().all(|e| e.state <= State::Slow),
        "{}",
        best_report.table()
    );

    let (plain, report) = run(&data, 10.0, false);
    assert!(
        accuracy(&plain) < 0.3,
        "lr 10 without help stays dead: {}",
        accuracy(&plain)
    );
    assert!(
        report.last.as_ref().unwrap().state >= State::Diverging,
        "{}",
        report.table()
    );

    let (rescued, report) = run(&data, 10.0, true);
    assert!(!rescued.rollbacks.is_empty(), "{}", report.table());
    assert!(rescued.step_losses.last().unwrap().is_finite());
    let (a, b) = (accuracy(&rescued), accuracy(&best));
    assert!(
        a >= b - 0.02,
        "auto-lr accuracy {a} vs the best fixed rate's {b}\n{}",
        report.table()
    );
    // One warning per change of state: no two consecutive timeline entries alike, unless an intervention.
    for w in report.timeline.windows(2) {
        assert!(
            w[0].state != w[1].state || w[1].intervention.is_some(),
            "{}",
            report.table()
        );
    }
}

#[test]
fn loss_logs_in_every_format_are_diagnosed() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let epoch_opts = |lr| LogOptions {
        lr: Some(lr),
        stream: StreamChoice::Epoch,
        ..LogOptions::default()
    };
    // The lesson's two worked examples, one loss per epoch.
    let d = diagnose_path(&write("a.txt", "0.8\n0.5\n0.4\n0.38\n0.37\n"), None, &epoch_opts(0.1)).unwrap();
    assert_eq!(d.verdict.state, State::Healthy, "{}", d.render());
    assert_eq!(d.verdict.suggestion.new_lr, Some(0.1));
    // An `epoch` column without a `step` column is judged per epoch, with the log's rate.
    let text = "epoch,loss,lr\n0,0.8,1\n1,1.5,1\n2,3.2,1\n3,8.7,1\n4,NaN,1\n";
    let d = diagnose_path(&write("b.csv", text), None, &LogOptions::default()).unwrap();
    assert_eq!(d.stream, stride::monitor::Stream::Epoch);
    assert_eq!(d.to_json()["state"], "diverging");
    assert_eq!(d.verdict.suggestion.new_lr, Some(0.01));
    assert_eq!(d.verdict.suggestion.alt_lr, Some(0.001));
    // Stride's own metrics logs, CSV and JSON lines.
    let csv = "kind,epoch,step,loss,lr,test_loss,test_accuracy,seconds\nstep,0,1,2.3,0.1,,,\nstep,0,2,2.1,0.1,,,\nepoch,0,2,2.2,0.1,2.0,0.3,0.1\n";
    let log = read_loss_log(&write("m.csv", csv), 1.0).unwrap();
    assert_eq!((log.points.len(), log.epochs.len()), (2, 1));
    assert_eq!(log.val[0].loss, 2.0);
    let jsonl = "{\"kind\":\"step\",\"epoch\":0,\"step\":1,\"loss\":2.3,\"lr\":0.1}\n{\"kind\":\"epoch\",\"epoch\":0,\"step\":1,\"loss\":2.3,\"lr\":0.1,\"test_loss\":null}\n";
    let log = read_loss_log(&write("m.jsonl", jsonl), 1.0).unwrap();
    assert_eq!((log.points.len(), log.epochs.len()), (1, 1));
    // Bad input names the file and the line, or what was looked for.
    let err = read_loss_log(&write("bad.csv", "step,loss\n1,abc\n"), 0.1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad.csv:2") && err.contains("\"abc\""), "{err}");
    let err = read_loss_log(&write("nocol.csv", "a,b\n1,2\n"), 0.1)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no loss column") && err.contains("train_loss") && err.contains("a, b"),
        "{err}"
    );
    assert!(read_loss_log(&write("empty.txt", "\n"), 0.1).is_err());
    assert!(read_loss_log(&dir.path().join("missing.csv"), 0.1)
        .unwrap_err()
        .to_string()
        .contains("missing.csv"));
}

/// The `stride` binary on logs: stdin, `--column`, `--json`, and a reader that closes the pipe.
#[test]
fn diagnose_command_reads_stdin_and_survives_a_closed_pipe() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let bin = env!("CARGO_BIN_EXE_stride");
    let mut child = Command::new(bin)
        .args(["diagnose", "-", "--column", "nll", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let rows: String = (0..200)
        .map(|i| format!("{i},{},9\n", 2.0 * (-(i as f64) / 10.0).exp() - 1.0))
        .collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("step,nll,loss\n{rows}").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["state"], "plateau", "{json}");
    assert_eq!(json["points"], 200);
    assert!(
        json["suggestion"]["new_lr"].is_null(),
        "no rate in the log, none invented: {json}"
    );
    // A long log into a reader that stops at once (`| head -0`).
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.csv");
    let text: String = (0..200_000)
        .map(|i| format!("{i},{}\n", 1.0 + 1.0 / (1.0 + i as f64)))
        .collect();
    std::fs::write(&big, format!("step,loss\n{text}")).unwrap();
    let mut child = Command::new(bin)
        .args(["diagnose", big.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !stderr.contains("panicked"), "{stderr}");
}

/// Real case: Fashion-MNIST, SGD 0.1 (the best rate of the sweep), seed 0. With the
/// gradient norm fed to the §3.4 spike rule, minibatch grad-norm spikes made the
/// monitor show "oscillating (spike_rate)" from step 369; the run is healthy.
#[test]
fn best_rate_on_fashion_mnist_shows_no_alarm() {
    let dir = std::path::Path::new(SYSTEM_DIR).join("fashion-mnist");
    assert!(
        dir.is_dir(),
        "{} is missing: apt-get install dataset-fashion-mnist",
        dir.display()
    );
    let data = Resolver::local().load(DatasetName::FashionMnist).unwrap().splits;
    let (history, report) = run_epochs(&data, 0.1, false, 1);
    assert_eq!(history.step_losses.len(), 469);
    assert!(
        report.timeline.iter().all(|e| e.state < State::Oscillating),
        "{}",
        report.table()
    );
}

/// `stride train` with `--report`: the run report's JSON.
fn cli_report(flags: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/stride-data/mnist-sample");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stride"))
        .arg("train")
        .arg("--data-dir")
        .arg(&sample)
        .arg("--report")
        .arg(&report)
        .args(flags)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap()
}

/// Every suggestion of a report: the timeline's and the final verdict's.
fn suggestions(report: &serde_json::Value) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = report["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["state"].as_str().unwrap().to_string(),
                e["suggestion"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let last = &report["last"];
    all.push((
        last["state"].as_str().unwrap().to_string(),
        last["suggestion"]["text"].as_str().unwrap().to_string(),
    ));
    all
}

/// Issue 17: Prodigy's rate is a multiplier on the step it estimates, 1 by default. A healthy
/// run at lr 1 gets no alarm to lower or decay it; a run made to diverge (multiplier 1000) is
/// told to lower Prodigy's estimate in Prodigy's terms (`d_coef`, `safeguard_warmup`), with
/// the step it actually took.
#[test]
fn prodigy_runs_are_judged_in_prodigys_terms() {
    let healthy = cli_report(&["--optimizer", "prodigy", "--epochs", "3"]);
    let said = suggestions(&healthy);
    assert_eq!(healthy["last"]["state"], "healthy", "{said:?}");
    for (state, text) in &said {
        assert!(
            state == "healthy" && !text.contains("lower") && !text.contains("decay"),
            "a healthy Prodigy run was told: {state}: {text}"
        );
    }
    assert!(
        said.iter()
            .any(|(_, t)| t.contains("the multiplier on Prodigy's estimate d")),
        "{said:?}"
    );

    let diverged = cli_report(&["--optimizer", "prodigy", "--lr", "1000", "--epochs", "1"]);
    let said = suggestions(&diverged);
    let alarm = said
        .iter()
        .find(|(state, _)| state == "diverging" || state == "exploded")
        .unwrap_or_else(|| panic!("no alarm at lr 1000: {said:?}"));
    assert!(
        alarm.1.contains("Prodigy's step-size estimate is too large")
            && alarm.1.contains("d_coef")
            && alarm.1.contains("safeguard_warmup")
            && alarm.1.contains("d x lr is"),
        "{}",
        alarm.1
    );
    // The same run under SGD's terms would be "lr 1000 is too high": not what Prodigy users tune.
    assert!(!alarm.1.contains("lr 1000.0 is too high"), "{}", alarm.1);
}
