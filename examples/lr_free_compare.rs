//! What does not tuning the rate cost? Grid-tuned AdamW + cosine against the methods that
//! promise to need no tuning, on Fashion-MNIST, at four budgets (1/4, 1/2, 3/4 and all of
//! `--epochs`).
//!
//! ```text
//! cargo run --release --example lr_free_compare -- --dataset fashion-mnist --svg docs/img/lr_free_mlp.svg
//! cargo run --release --example lr_free_compare -- --dataset fashion-mnist --model cnn --epochs 4
//! ```
//!
//! - **AdamW + cosine, tuned**: 7 rates, a factor of sqrt 10 apart around 1e-3, each trained
//!   with a cosine decay to zero over the budget; the rate with the lowest loss on a
//!   validation split carved from the training set (never the test set) is reported. It
//!   spends 7 runs per budget.
//! - **Schedule-Free AdamW, Prodigy, D-Adaptation Adam**: one run each at the reference
//!   packages' defaults, read at every budget (they need no horizon; Schedule-Free is read at
//!   its averaged point).
//! - **WSD**: AdamW at its default rate 1e-3, `wsd(budget)` (constant, then a 1-sqrt cooldown
//!   over the last 20 %). The stable phase does not depend on the budget, so one run with a
//!   cooldown branched off at each budget serves all four; the steps column counts that
//!   (the shared trunk once). This example trains each branch through the trunk again, which
//!   gives the same weights (the runs are deterministic) without writing checkpoints.
//! - **lr-find, then train**: the LR finder's suggestion for AdamW (its 100-step range test
//!   counted), then AdamW + cosine at it.
//!
//! Every run starts from the same initial weights and batch order (`--seed`). Test accuracy
//! and loss are read on the test set only for the report.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;

use anyhow::Context as _;
use candle_core::Device;
use candle_nn::VarMap;
use clap::Parser;
use stride::args::{DataArgs, NetArgs};
use stride::optim::schedule::parse_schedule;
use stride::optim::OptimizerKind;
use stride::prelude::*;
use stride::train::plot::{Axis, Chart, Figure, Series};
use stride::train::{evaluate, format_lr, lr_find, Eval, LrFinderConfig};

const GRID: &str = "AdamW + cosine, 7-rate grid";
const WSD: &str = "WSD (AdamW 1e-3), branched cooldowns";
const FINDER: &str = "lr-find, then AdamW + cosine";
/// The share of each WSD budget spent cooling down.
const WSD_COOLDOWN: f64 = 0.2;

/// Grid-tuned AdamW + cosine against Schedule-Free AdamW, Prodigy, D-Adaptation, WSD and
/// lr-find, at four budgets.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    net: NetArgs,
    /// The largest budget, in epochs; the others are 1/4, 1/2 and 3/4 of it.
    #[arg(long, default_value_t = 8)]
    epochs: usize,
    /// Examples per step.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Fraction of the training set held out to choose the grid's rate.
    #[arg(long, default_value_t = 0.1)]
    val_split: f64,
    /// Write the test loss and accuracy per budget as SVG.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Write every result as CSV.
    #[arg(long)]
    csv: Option<PathBuf>,
}

/// One approach's result at one budget.
#[derive(Debug, Clone)]
struct Outcome {
    /// The budget, in epochs.
    epochs: usize,
    /// The rate it trained at (the chosen one for the grid), or `None` for an estimated step.
    lr: Option<f64>,
    /// Test loss and accuracy; `None` when the run did not reach the budget (a non-finite loss).
    test: Option<Eval>,
    /// Training steps spent to get this budget's model alone, tuning included.
    steps: u64,
}

/// A run's evaluations at the epochs asked for: (epochs done, validation, test).
type Readings = Rc<RefCell<Vec<(usize, Option<Eval>, Eval)>>>;

/// Evaluates the network on the test set after the epochs that end a budget.
struct TestProbe {
    net: Network,
    test: Dataset,
    at: Vec<usize>,
    out: Readings,
}

impl Callback for TestProbe {
    fn on_epoch_end(&mut self, epoch: &EpochEnd) -> stride::train::Result<Action> {
        let done = epoch.epoch + 1;
        if self.at.contains(&done) {
            // After the trainer's evaluation, so a Schedule-Free model is at its average x.
            let test = evaluate(&self.net, &self.test, &Device::Cpu, 1000)?;
            self.out.borrow_mut().push((done, epoch.eval, test));
        }
        Ok(Action::Continue)
    }
}

/// The data, the network and the budgets every run shares.
struct Bench {
    args: Args,
    arch: Architecture,
    train: Dataset,
    val: Dataset,
    test: Dataset,
    steps_per_epoch: u64,
}

impl Bench {
    /// Trains `kind` at `lr` for `epochs` under the schedule spec `schedule` (constant when
    /// `None`), reading validation and test losses after the epochs in `at`.
    fn run(
        &self,
        kind: OptimizerKind,
        lr: f64,
        schedule: Option<String>,
        epochs: usize,
        at: &[usize],
    ) -> anyhow::Result<Vec<(usize, Option<Eval>, Eval)>> {
        let varmap = VarMap::new();
        let net = self.args.net.network(&self.arch, &varmap, &Device::Cpu)?;
        let mut optimizer = self.args.net.optimizer(kind, &self.arch, &varmap, lr, None, None)?;
        let mut builder = Trainer::builder()
            .epochs(epochs)
            .batch_size(self.args.batch_size)
            .seed(self.args.net.seed)
            .lr(lr);
        if let Some(spec) = &schedule {
            builder = builder.schedule(parse_schedule(spec, lr).with_context(|| format!("schedule {spec:?}"))?);
        }
        let out: Readings = Rc::default();
        let mut trainer = builder.build()?;
        trainer.add_callback(TestProbe {
            net: net.clone(),
            test: self.test.clone(),
            at: at.to_vec(),
            out: out.clone(),
        });
        let history = trainer.fit_with(&net, optimizer.as_mut(), &self.train, Some(&self.val))?;
        if let Some(stop) = &history.stopped {
            eprintln!("  {kind} lr {} stopped: {stop}", format_lr(lr));
        }
        let readings = out.borrow().clone();
        Ok(readings)
    }

    /// Steps in `epochs` epochs.
    fn steps(&self, epochs: usize) -> u64 {
        self.steps_per_epoch * epochs as u64
    }
}

fn main() -> anyhow::Result<()> {
    stride::logging::init();
    let args = Args::parse();
    anyhow::ensure!(args.epochs >= 1, "--epochs {}: expected at least 1", args.epochs);
    anyhow::ensure!(args.batch_size >= 1, "--batch-size 0: expected at least 1");
    let splits = args.data.load()?.splits;
    let (train, val) = splits.train.split_validation(args.val_split, args.net.seed)?;
    let arch = args.net.architecture_for(&train)?;
    let steps_per_epoch = train.len().div_ceil(args.batch_size) as u64;
    let mut budgets: Vec<usize> = (1..=4).map(|i| (args.epochs * i).div_ceil(4).max(1)).collect();
    budgets.dedup();
    eprintln!(
        "{arch} on {} training / {} validation / {} test examples, batch {}, {steps_per_epoch} steps per epoch, budgets {budgets:?} epochs",
        train.len(),
        val.len(),
        splits.test.len(),
        args.batch_size
    );
    let bench = Bench {
        arch,
        train,
        val,
        test: splits.test,
        steps_per_epoch,
        args,
    };
    let last = *budgets.last().context("no budget")?;
    let mut table: BTreeMap<&'static str, Vec<Outcome>> = BTreeMap::new();
    // Steps each approach spends to have a model at every budget.
    let mut totals: BTreeMap<&'static str, u64> = BTreeMap::new();

    // The tuned baseline: every rate of the grid, a cosine over each budget.
    let grid: Vec<f64> = (-3..=3).map(|k| 1e-3 * 10f64.powf(k as f64 / 2.0)).collect();
    let mut tuned = Vec::new();
    let mut grid_rows = String::new();
    for &b in &budgets {
        let mut best: Option<(f64, f64, Eval)> = None;
        for &lr in &grid {
            let cosine = format!("cosine({})", bench.steps(b));
            let readings = bench.run(OptimizerKind::AdamW, lr, Some(cosine), b, &[b])?;
            let Some((_, Some(val), test)) = readings.last().copied() else {
                grid_rows += &format!("| {b} | {} | diverged | | |\n", format_lr(lr));
                continue;
            };
            grid_rows += &format!(
                "| {b} | {} | {:.4} | {:.4} | {:.4} |\n",
                format_lr(lr),
                val.loss,
                test.loss,
                test.accuracy
            );
            eprintln!(
                "  adamw+cosine {b} epochs lr {}: val loss {:.4}",
                format_lr(lr),
                val.loss
            );
            if val.loss.is_finite() && best.as_ref().is_none_or(|(_, v, _)| val.loss < *v) {
                best = Some((lr, val.loss, test));
            }
        }
        tuned.push(Outcome {
            epochs: b,
            lr: best.as_ref().map(|b| b.0),
            test: best.map(|b| b.2),
            steps: grid.len() as u64 * bench.steps(b),
        });
    }
    totals.insert(GRID, tuned.iter().map(|o| o.steps).sum());
    table.insert(GRID, tuned);

    // One run each, read at every budget.
    for (name, kind) in [
        ("Schedule-Free AdamW", OptimizerKind::ScheduleFreeAdamW),
        ("Prodigy", OptimizerKind::Prodigy),
        ("D-Adaptation Adam", OptimizerKind::DAdaptAdam),
    ] {
        let lr = kind.default_lr();
        let readings = bench.run(kind, lr, None, last, &budgets)?;
        eprintln!("  {name}: {} of {} budgets reached", readings.len(), budgets.len());
        let outcomes = budgets
            .iter()
            .map(|&b| Outcome {
                epochs: b,
                lr: (kind == OptimizerKind::ScheduleFreeAdamW).then_some(lr),
                test: readings.iter().find(|r| r.0 == b).map(|r| r.2),
                steps: bench.steps(b),
            })
            .collect();
        table.insert(name, outcomes);
        totals.insert(name, bench.steps(last));
    }

    // WSD at AdamW's default rate: one trunk, a cooldown branched off per budget.
    let wsd_lr = OptimizerKind::AdamW.default_lr();
    let mut wsd = Vec::new();
    let (mut cooldowns, mut trunk) = (0, 0);
    for &b in &budgets {
        let total = bench.steps(b);
        // Given to the schedule, so the steps counted are the ones it cools down over.
        let cooldown = ((total as f64 * WSD_COOLDOWN).round() as u64).max(1);
        let spec = format!("wsd({total}, decay_steps={cooldown})");
        let readings = bench.run(OptimizerKind::AdamW, wsd_lr, Some(spec), b, &[b])?;
        cooldowns += cooldown;
        trunk = total - cooldown;
        wsd.push(Outcome {
            epochs: b,
            lr: Some(wsd_lr),
            test: readings.last().map(|r| r.2),
            steps: total,
        });
        eprintln!("  wsd {b} epochs: done");
    }
    // The trunk to the last cooldown's start, and every cooldown.
    totals.insert(WSD, trunk + cooldowns);
    table.insert(WSD, wsd);

    // The finder's suggestion, then cosine at it.
    let varmap = VarMap::new();
    let net = bench.args.net.network(&bench.arch, &varmap, &Device::Cpu)?;
    let mut optimizer = bench
        .args
        .net
        .optimizer(OptimizerKind::AdamW, &bench.arch, &varmap, 1e-3, None, None)?;
    let finder_config = LrFinderConfig {
        batch_size: bench.args.batch_size,
        seed: bench.args.net.seed,
        ..LrFinderConfig::default()
    };
    let found = lr_find(&net, optimizer.as_mut(), &bench.train, &finder_config)?;
    let finder_steps = found.lrs.len() as u64;
    let suggestion = found.suggestion();
    eprintln!(
        "  lr-find: {} after {finder_steps} steps",
        suggestion.map_or("no clear valley".into(), format_lr)
    );
    let mut finder = Vec::new();
    for &b in &budgets {
        let outcome = match suggestion {
            Some(lr) => {
                let readings = bench.run(
                    OptimizerKind::AdamW,
                    lr,
                    Some(format!("cosine({})", bench.steps(b))),
                    b,
                    &[b],
                )?;
                Outcome {
                    epochs: b,
                    lr: Some(lr),
                    test: readings.last().map(|r| r.2),
                    steps: finder_steps + bench.steps(b),
                }
            }
            None => Outcome {
                epochs: b,
                lr: None,
                test: None,
                steps: finder_steps,
            },
        };
        finder.push(outcome);
    }
    totals.insert(
        FINDER,
        finder_steps + budgets.iter().map(|&b| bench.steps(b)).sum::<u64>(),
    );
    table.insert(FINDER, finder);

    let report = render(&bench, &budgets, &table);
    print!("{report}");
    println!("\nSteps spent for a model at every budget, tuning included:\n");
    println!("| approach | steps | of the grid's |\n|---|---|---|");
    let grid_total = totals.get(GRID).copied().unwrap_or(1).max(1);
    for (name, steps) in &totals {
        println!(
            "| {name} | {steps} | {:.0} % |",
            100.0 * *steps as f64 / grid_total as f64
        );
    }
    println!("\nThe grid, every rate (validation loss chooses; test shown for reference):\n");
    println!("| epochs | lr | val loss | test loss | test acc |\n|---|---|---|---|---|");
    print!("{grid_rows}");
    if let Some(path) = &bench.args.csv {
        let mut csv = String::from("method,epochs,steps_spent,lr,test_loss,test_accuracy\n");
        for (name, outcomes) in &table {
            for o in outcomes {
                csv += &format!(
                    "{name},{},{},{},{},{}\n",
                    o.epochs,
                    o.steps,
                    o.lr.map_or(String::new(), |l| l.to_string()),
                    o.test.map_or(f64::NAN, |t| t.loss),
                    o.test.map_or(f64::NAN, |t| t.accuracy)
                );
            }
        }
        std::fs::write(path, csv).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &bench.args.svg {
        std::fs::write(path, figure(&bench, &table).to_svg()).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// The table: a row per budget and approach, with the gap to the tuned baseline.
fn render(bench: &Bench, budgets: &[usize], table: &BTreeMap<&'static str, Vec<Outcome>>) -> String {
    let baseline = table.get(GRID);
    let mut out = String::from(
        "\n| budget | approach | lr | test acc | test loss | vs tuned (acc pts) | steps spent |\n|---|---|---|---|---|---|---|\n",
    );
    for (i, &b) in budgets.iter().enumerate() {
        let base = baseline.and_then(|v| v.get(i)).and_then(|o| o.test);
        for (name, outcomes) in table {
            let Some(o) = outcomes.get(i) else { continue };
            let (acc, loss, gap) = match o.test {
                Some(t) => (
                    format!("{:.4}", t.accuracy),
                    format!("{:.4}", t.loss),
                    base.map_or("-".into(), |base| {
                        format!("{:+.2}", 100.0 * (t.accuracy - base.accuracy))
                    }),
                ),
                None => ("-".into(), "-".into(), "did not finish".into()),
            };
            out += &format!(
                "| {b} ep ({} steps) | {name} | {} | {acc} | {loss} | {gap} | {} |\n",
                bench.steps(b),
                o.lr.map_or("estimated".into(), format_lr),
                o.steps
            );
        }
    }
    out
}

/// Test loss and accuracy against the budget, a line per approach.
fn figure(bench: &Bench, table: &BTreeMap<&'static str, Vec<Outcome>>) -> Figure {
    let panel = |title: &str, label: &str, pick: fn(&Eval) -> f64| {
        let mut chart = Chart::new(
            title.to_string(),
            Axis::linear("budget (training steps)"),
            Axis::linear(label.to_string()),
        );
        for (name, outcomes) in table {
            let points = outcomes
                .iter()
                .filter_map(|o| o.test.as_ref().map(|t| (bench.steps(o.epochs) as f64, pick(t))))
                .collect();
            let mut s = Series::line(name.to_string(), points);
            s.dots = true;
            chart.series.push(s);
        }
        chart
    };
    Figure {
        panel_width: 460.0,
        height: 360.0,
        panels: vec![
            panel("test accuracy by budget", "test accuracy", |e| e.accuracy),
            panel("test loss by budget", "test loss", |e| e.loss),
        ],
    }
}
