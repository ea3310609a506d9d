//! Does the best learning rate stay put as the MLP widens? The muP transfer experiment
//! (Tensor Programs V, Fig. 1) on Fashion-MNIST: an MLP with two hidden layers of width
//! 64..2048, every rate of a x2 grid, the standard parametrization against muP (base width
//! 128), SGD and Adam. Per width, the rate with the lowest validation loss.
//!
//! ```text
//! cargo run --release --example mup_transfer -- --dataset fashion-mnist --svg docs/img/mup_transfer.svg
//! cargo run --release --example mup_transfer -- --quick        # 3 widths, 5 rates: about a minute
//! ```
//!
//! Budgeted for two cores: each run trains `--epochs` over a `--train-examples` subset
//! (default 1 epoch of 16,000 examples, 125 steps of 128) and is judged on 4,000 held-out
//! training images; the test set is not read.

use std::path::PathBuf;

use clap::Parser;
use stride::args::DataArgs;
use stride::model::{Architecture, Mlp, MlpSpec, Parametrization};
use stride::monitor::MonitorConfig;
use stride::optim::{OptimizerKind, UpdateFamily};
use stride::prelude::*;
use stride::train::plot::{Axis, Chart, Figure, Series};
use stride::train::{format_lr, sweep, SweepConfig};

/// The muP transfer experiment: best rate per width, standard vs muP, SGD and Adam.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    data: DataArgs,
    /// Hidden widths (two layers of each), comma-separated.
    #[arg(long, default_value = "64,128,256,512,1024,2048")]
    widths: String,
    /// Optimizers, comma-separated.
    #[arg(long, default_value = "sgd,adam")]
    optimizers: String,
    /// muP's base width (where both parametrizations train at the same rates).
    #[arg(long, default_value_t = 128)]
    base_width: usize,
    /// Epochs per run.
    #[arg(long, default_value_t = 1)]
    epochs: usize,
    /// Training examples (a seeded subset), plus a quarter as many held out.
    #[arg(long, default_value_t = 16_000)]
    train_examples: usize,
    /// Three widths and five rates, to see it work.
    #[arg(long)]
    quick: bool,
    /// Write the loss-against-rate curves, a panel per optimizer and parametrization.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Write every run as CSV (optimizer, param, width, lr, val_loss, train_loss).
    #[arg(long)]
    csv: Option<PathBuf>,
}

/// One (optimizer, parametrization) sweep over every width.
struct Panel {
    optimizer: OptimizerKind,
    param: Parametrization,
    /// (width, [(lr, validation loss)]) in width order.
    curves: Vec<(usize, Vec<(f64, f64)>)>,
}

impl Panel {
    fn best(curve: &[(f64, f64)]) -> Option<(f64, f64)> {
        curve
            .iter()
            .copied()
            .filter(|(_, l)| l.is_finite())
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }
}

fn main() -> anyhow::Result<()> {
    stride::logging::init();
    let args = Args::parse();
    let mut widths: Vec<usize> = args
        .widths
        .split(',')
        .map(|w| w.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("--widths {:?}: {e}", args.widths))?;
    if args.quick {
        widths = vec![64, 256, 1024];
    }
    let kinds: Vec<OptimizerKind> = args
        .optimizers
        .split(',')
        .map(|k| k.trim().parse())
        .collect::<Result<_, _>>()?;
    let mup = Parametrization::mup(args.base_width)?;
    let full = args.data.load()?.splits.train;
    let n = (args.train_examples + args.train_examples / 4).min(full.len());
    let (_, subset) = full.split_validation(n as f64 / full.len() as f64, 0)?;
    let (train, val) = subset.split_validation(0.2, 0)?;
    eprintln!(
        "{} train / {} validation examples, {} epoch(s), batch 128, widths {widths:?}",
        train.len(),
        val.len(),
        args.epochs
    );
    let mut panels = Vec::new();
    let mut csv = String::from("optimizer,param,width,lr,val_loss,train_loss\n");
    for &kind in &kinds {
        // x2 grids over the rates these optimizers train an MLP at, both ends included.
        let (lo, count) = match (kind.update_family(), args.quick) {
            (UpdateFamily::Sgd, false) => (-6, 11),
            (UpdateFamily::Sgd, true) => (-5, 5),
            (UpdateFamily::Adaptive, false) => (-14, 11),
            (UpdateFamily::Adaptive, true) => (-12, 5),
        };
        let step = if args.quick { 2 } else { 1 };
        let lrs: Vec<f64> = (0..count).map(|i| 2f64.powi(lo + step * i)).collect();
        for param in [Parametrization::Standard, mup] {
            let mut curves = Vec::new();
            for &width in &widths {
                let spec: MlpSpec = format!("784-{width}-{width}-10").parse()?;
                let arch = Architecture::Mlp(spec.clone());
                let mut config = SweepConfig::new(lrs.clone(), kind, args.epochs);
                config.monitor = MonitorConfig {
                    num_classes: Some(10),
                    eval_every: 8,
                    ..MonitorConfig::default()
                };
                config.sharpness_examples = None;
                config.rate_scales = param.rate_scales(&arch, kind.update_family() == UpdateFamily::Sgd);
                let result = sweep(
                    |varmap| {
                        let mlp = Mlp::seeded(&spec, Activation::Relu, varmap, 0)?;
                        param.initialise(&arch, varmap)?;
                        Ok(Box::new(mlp) as Box<dyn Model>)
                    },
                    &train,
                    Some(&val),
                    None,
                    &config,
                    |_| {},
                )?;
                let curve: Vec<(f64, f64)> = result
                    .runs
                    .iter()
                    .map(|r| (r.lr, r.val_loss.unwrap_or(f64::NAN)))
                    .collect();
                for r in &result.runs {
                    csv += &format!(
                        "{kind},{},{width},{},{},{}\n",
                        short(param),
                        r.lr,
                        r.val_loss.unwrap_or(f64::NAN),
                        r.final_train_loss
                    );
                }
                let best = Panel::best(&curve);
                eprintln!(
                    "{kind} {} width {width}: best lr {} (val loss {})",
                    short(param),
                    best.map_or("-".into(), |b| format_lr(b.0)),
                    best.map_or("-".into(), |b| format!("{:.4}", b.1))
                );
                curves.push((width, curve));
            }
            panels.push(Panel {
                optimizer: kind,
                param,
                curves,
            });
        }
    }
    print!("{}", table(&panels, &widths));
    if let Some(path) = &args.csv {
        std::fs::write(path, &csv)?;
    }
    if let Some(path) = &args.svg {
        std::fs::write(path, figure(&panels).to_svg())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn short(param: Parametrization) -> &'static str {
    match param {
        Parametrization::Standard => "standard",
        Parametrization::MuP { .. } => "mup",
    }
}

/// Best rate per width, a row per optimizer and parametrization, and how far it moved.
fn table(panels: &[Panel], widths: &[usize]) -> String {
    let header: Vec<String> = widths.iter().map(|w| format!("width {w}")).collect();
    let mut out = format!("\n| optimizer | param | {} | moved |\n", header.join(" | "));
    out += &format!("|---|---|{}---|\n", "---|".repeat(widths.len()));
    for p in panels {
        let bests: Vec<Option<f64>> = p.curves.iter().map(|(_, c)| Panel::best(c).map(|b| b.0)).collect();
        let cells: Vec<String> = bests.iter().map(|b| b.map_or("-".into(), format_lr)).collect();
        let found: Vec<f64> = bests.iter().flatten().copied().collect();
        let moved = match (
            found.iter().copied().reduce(f64::min),
            found.iter().copied().reduce(f64::max),
        ) {
            (Some(lo), Some(hi)) => {
                let steps = (hi / lo).log2().round();
                let plural = if steps == 1.0 { "" } else { "s" };
                format!("{steps:.0} grid step{plural} ({:.0}x)", hi / lo)
            }
            _ => "-".into(),
        };
        out += &format!(
            "| {} | {} | {} | {moved} |\n",
            p.optimizer,
            short(p.param),
            cells.join(" | ")
        );
    }
    out
}

/// Validation loss against rate, a line per width, a panel per optimizer and parametrization.
fn figure(panels: &[Panel]) -> Figure {
    let charts = panels
        .iter()
        .map(|p| {
            let mut chart = Chart::new(
                format!("{} {}", p.optimizer, short(p.param)),
                Axis::log("learning rate"),
                Axis::linear("validation loss").with_range(0.3, 1.2),
            );
            for (width, curve) in &p.curves {
                let mut s = Series::line(format!("width {width}"), curve.clone());
                s.dots = true;
                chart.series.push(s);
            }
            chart
        })
        .collect();
    Figure {
        panel_width: 400.0,
        height: 340.0,
        panels: charts,
    }
}
