//! REAL_RUNS.md, "The wider corpus": `stride diagnose`'s whole-run verdict on every run of
//! `fixtures/corpus` (PyTorch runs made by `corpus/generate.py`, Stride runs with schedules by
//! `corpus/stride_runs.py`) and of `fixtures/real_runs` (the 82 Stride runs), each written as the logs people have: every step, every 10 and every 100 steps
//! (the loss of that step, as Lightning and most scripts log it), and one mean loss per epoch with
//! the validation loss. Judged without `--lr` or `--classes`, as a new user would run it.
//!
//! `cargo test -p stride-monitor --test tests corpus -- --nocapture` prints the agreement tables.

use std::collections::BTreeMap;

use stride_monitor::{
    diagnose_loss_log, LogFormat, LogOptions, LogPoint, LossLog, Reason, State, ValPoint, XUnit, MIN_POINTS,
};

const RUNS: &str = include_str!("../fixtures/corpus/runs.csv");
const LOSSES: &str = include_str!("../fixtures/corpus/losses.csv");
const VAL: &str = include_str!("../fixtures/corpus/val.csv");
const OLD_RUNS: &str = include_str!("../fixtures/real_runs/runs.csv");
const OLD_LOSSES: &str = include_str!("../fixtures/real_runs/losses.csv");

struct Run {
    id: String,
    family: String,
    framework: String,
    batch: u32,
    label: String,
    overfit: bool,
    steps_per_epoch: usize,
    /// `(step, loss, lr)`.
    losses: Vec<(f64, f64, Option<f64>)>,
    /// `(epoch, val_loss)`.
    val: Vec<(f64, f64)>,
}

fn num(s: &str) -> f64 {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s}"))
}

fn runs() -> Vec<Run> {
    let mut runs = Vec::new();
    for line in RUNS.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let steps: usize = f[8].parse().unwrap();
        let epochs: usize = f[9].parse().unwrap();
        runs.push(Run {
            id: f[0].into(),
            family: f[1].into(),
            framework: f[2].into(),
            batch: f[6].parse().unwrap(),
            label: f[10].into(),
            overfit: f[11] == "true",
            steps_per_epoch: steps.div_ceil(epochs.max(1)),
            losses: Vec::new(),
            val: Vec::new(),
        });
    }
    let index: BTreeMap<String, usize> = runs.iter().enumerate().map(|(i, r)| (r.id.clone(), i)).collect();
    for line in LOSSES.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        runs[index[f[0]]].losses.push((num(f[1]), num(f[2]), Some(num(f[3]))));
    }
    for line in VAL.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        runs[index[f[0]]].val.push((num(f[1]), num(f[3])));
    }
    let first = runs.len();
    for line in OLD_RUNS.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let steps: usize = f[5].parse().unwrap();
        runs.push(Run {
            id: f[0].into(),
            family: format!("stride-{}-{}", f[2], f[3]),
            framework: "stride".into(),
            batch: 128,
            label: f[9].into(),
            overfit: false,
            // Fashion-MNIST: one epoch of 469 steps; the MNIST sample: 4 epochs of 63.
            steps_per_epoch: if steps == 469 { 469 } else { 63 },
            losses: Vec::new(),
            val: Vec::new(),
        });
    }
    let index: BTreeMap<String, usize> = runs
        .iter()
        .enumerate()
        .skip(first)
        .map(|(i, r)| (r.id.clone(), i))
        .collect();
    for line in OLD_LOSSES.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        runs[index[f[0]]].losses.push((num(f[1]), num(f[2]), None));
    }
    runs
}

/// The run as a log written every `every` steps (0: one mean per epoch, with validation losses).
fn log_of(r: &Run, every: usize) -> LossLog {
    let mut log = LossLog {
        format: LogFormat::Csv,
        loss_name: "loss".into(),
        x_name: Some("step".into()),
        x_unit: XUnit::Step,
        points: Vec::new(),
        epochs: Vec::new(),
        val: Vec::new(),
    };
    let n = r.losses.len();
    let point = |(x, loss, lr): (f64, f64, Option<f64>)| LogPoint { x, loss, lr };
    if every == 0 {
        log.x_unit = XUnit::Epoch;
        log.x_name = Some("epoch".into());
        for (e, chunk) in r.losses.chunks(r.steps_per_epoch).enumerate() {
            let mean = chunk.iter().map(|v| v.1).sum::<f64>() / chunk.len() as f64;
            log.points.push(LogPoint {
                x: e as f64 + 1.0,
                loss: mean,
                lr: chunk.last().and_then(|v| v.2),
            });
        }
        log.val = r
            .val
            .iter()
            .map(|(e, v)| ValPoint {
                x: *e,
                epoch: Some(*e),
                loss: *v,
            })
            .collect();
    } else {
        for (i, v) in r.losses.iter().enumerate() {
            // The logger writes every `every`-th step, and the last one when it is not finite
            // (a run that died says so in its log).
            if (i + 1) % every == 0 || (i + 1 == n && !v.1.is_finite()) {
                log.points.push(point(*v));
            }
        }
    }
    log
}

fn acceptable(label: &str, state: State) -> bool {
    use State::*;
    match label {
        "DIVERGING" => matches!(state, Diverging | Exploded),
        "HEALTHY" => matches!(state, Healthy | Plateau),
        "SLOW" => state == Slow,
        "INTERMEDIATE_LOW" => matches!(state, Slow | Healthy | Plateau),
        "TOO_HIGH" => state != Slow && state != Insufficient,
        other => panic!("unknown label {other}"),
    }
}

#[derive(Default)]
struct Tally {
    ok: usize,
    all: usize,
}

impl Tally {
    fn add(&mut self, ok: bool) {
        self.all += 1;
        self.ok += usize::from(ok);
    }

    fn cell(&self) -> String {
        format!(
            "{}/{} = {:.1} %",
            self.ok,
            self.all,
            100.0 * self.ok as f64 / self.all.max(1) as f64
        )
    }
}

#[test]
fn the_corpus_agrees_with_its_labels() {
    let runs = runs();
    let mut by: BTreeMap<(&str, String), Tally> = BTreeMap::new();
    let mut total = Tally::default();
    let mut misses = Vec::new();
    let mut unsafe_healthy = Vec::new();
    let mut sparse_unsafe = Vec::new();
    for r in &runs {
        for (every, name) in [
            (1, "every step"),
            (10, "every 10"),
            (100, "every 100"),
            (0, "per epoch"),
        ] {
            let log = log_of(r, every);
            let finite = log.points.iter().filter(|p| p.loss.is_finite()).count();
            if finite < MIN_POINTS && log.points.last().is_none_or(|p| p.loss.is_finite()) {
                continue;
            }
            let d = diagnose_loss_log(&log, &LogOptions::default()).expect("valid options");
            let v = &d.verdict;
            let overfit_log = every == 0 && r.overfit;
            let ok = if overfit_log {
                v.reason == Reason::Overfit || v.findings.iter().any(|f| f.contains("overfitting"))
            } else {
                acceptable(&r.label, v.state)
            };
            if r.label == "DIVERGING" && v.state == State::Healthy {
                // No log of a diverged run may call it healthy: not one that keeps every step
                // or every epoch, nor a sparse one whose first line is after the blow-up.
                if every <= 1 {
                    unsafe_healthy.push(format!("{} ({name})", r.id));
                } else {
                    sparse_unsafe.push(format!("{} ({name})", r.id));
                }
            }
            if !ok {
                misses.push(format!(
                    "{} [{}] ({name}, {} points): {} ({}) {}",
                    r.id,
                    if overfit_log { "OVERFIT" } else { &r.label },
                    v.points,
                    v.state,
                    v.reason,
                    v.suggestion.text
                ));
            }
            total.add(ok);
            by.entry(("family", r.family.clone())).or_default().add(ok);
            by.entry(("interval", name.to_string())).or_default().add(ok);
            by.entry(("framework", r.framework.clone())).or_default().add(ok);
            by.entry(("batch", format!("{:>3}", r.batch))).or_default().add(ok);
            let label = if overfit_log {
                "OVERFIT".to_string()
            } else {
                r.label.clone()
            };
            by.entry(("label", label)).or_default().add(ok);
        }
    }
    println!("| by | value | agreement |\n|---|---|---|");
    for ((k, v), t) in &by {
        println!("| {k} | {v} | {} |", t.cell());
    }
    println!("\ntotal: {}\n\nmisses:\n{}", total.cell(), misses.join("\n"));
    println!("\ndiverged runs called healthy in sparse logs: {sparse_unsafe:?}");
    assert!(
        unsafe_healthy.is_empty(),
        "diverged runs called healthy: {unsafe_healthy:?}"
    );
    assert!(
        sparse_unsafe.is_empty(),
        "diverged runs called healthy in sparse logs: {sparse_unsafe:?}"
    );
    // REAL_RUNS.md: the measured agreement (the target is 95 %); a floor under it so
    // that a rule change that loses ground fails here.
    assert!(
        total.ok as f64 >= 0.94 * total.all as f64,
        "agreement {}:\n{}",
        total.cell(),
        misses.join("\n")
    );
}
