//! `stride coord-check`: does a parametrization keep every layer's activations the same
//! size as the network widens? The check of Tensor Programs V (and the mup package's
//! `get_coord_data`): train MLPs of several widths a few steps from the same recipe and
//! measure each layer's mean |output| on a fixed batch after every step. Under muP the size
//! does not depend on the width (slope ~0 on a log-log plot); under the standard
//! parametrization the layers after the first grow with it, which is why a rate tuned on a
//! small model blows up a large one.

use std::path::PathBuf;

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use serde::Serialize;
use stride_data::{Batcher, Dataset, Loaded};
use stride_model::{reset_parameters, Activation, Architecture, Mlp, MlpSpec, Parametrization};
use stride_optim::{OptimizerKind, UpdateFamily};
use stride_train::plot::{Axis, Chart, Figure, Series};
use stride_train::{format_lr, rate_groups};

use crate::args::DataArgs;
use crate::Error;

/// `stride coord-check` options.
#[derive(Debug, Clone, clap::Args)]
pub struct CoordCheckArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub data: DataArgs,
    /// Hidden widths to compare, comma-separated.
    #[arg(long, default_value = "64,128,256,512,1024")]
    pub widths: String,
    /// Hidden layers, each of the width.
    #[arg(long, default_value_t = 2)]
    pub depth: usize,
    /// Activation between layers.
    #[arg(long, default_value = "relu")]
    pub activation: String,
    /// Optimizer (muP's rates depend on whether it is SGD-like or Adam-like).
    #[arg(long, default_value = "adam")]
    pub optimizer: String,
    /// Learning rate; default 0.01 for the Adam family, 0.1 for SGD (large enough that a
    /// badly scaled layer shows within a few steps).
    #[arg(long)]
    pub lr: Option<f64>,
    /// muP's base width (default: the smallest width).
    #[arg(long)]
    pub base_width: Option<usize>,
    /// Training steps; activations are measured after each.
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    /// Seeds averaged per width.
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
    /// Examples per step (and in the fixed batch measured).
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// A layer passes when |slope of log mean|activation| against log width| is at most this.
    #[arg(long, default_value_t = 0.1)]
    pub tolerance: f64,
    /// Threads for the tensor kernels.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Write the mean |activation| against width as an SVG (a panel per parametrization).
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// Write every measurement as CSV (parametrization, layer, step, width, mean_abs).
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// One layer at one step under one parametrization, across the widths.
#[derive(Debug, Clone, Serialize)]
pub struct CoordRow {
    /// `standard` or `mup`.
    pub param: String,
    /// Layer index from 0 (the first hidden layer); the last is the readout (logits).
    pub layer: usize,
    /// True for the readout, whose outputs are the classes rather than width-many units.
    pub readout: bool,
    /// Updates taken before the measurement (0: the initial weights).
    pub step: usize,
    /// Mean |output| at each width, averaged over the seeds.
    pub mean_abs: Vec<f64>,
    /// Least-squares slope of ln(mean |output|) against ln(width).
    pub slope: f64,
}

/// The whole check.
#[derive(Debug, Clone, Serialize)]
pub struct CoordCheck {
    /// The widths compared.
    pub widths: Vec<usize>,
    /// Optimizer and rate.
    pub optimizer: String,
    /// The base rate.
    pub lr: f64,
    /// muP's base width.
    pub base_width: usize,
    /// Updates measured after (1..=steps).
    pub steps: usize,
    /// The slope bound a hidden layer must meet.
    pub tolerance: f64,
    /// Every measurement.
    pub rows: Vec<CoordRow>,
}

impl CoordCheck {
    /// The largest |slope| of a hidden layer over steps 1..=steps under `param`, and where.
    pub fn worst(&self, param: &str) -> Option<&CoordRow> {
        self.rows
            .iter()
            .filter(|r| r.param == param && !r.readout && r.step >= 1)
            .max_by(|a, b| a.slope.abs().total_cmp(&b.slope.abs()))
    }

    /// Whether every hidden layer of `param` keeps its size across widths at every step.
    pub fn passes(&self, param: &str) -> bool {
        self.worst(param)
            .is_some_and(|r| r.slope.abs() <= self.tolerance && r.slope.is_finite())
    }

    /// The printed report: slopes per layer and step, then the verdicts.
    pub fn table(&self) -> String {
        let widths: Vec<String> = self.widths.iter().map(usize::to_string).collect();
        let mut out = format!(
            "coordinate check: MLP with hidden widths {} (muP base width {}), {} lr {}, mean |layer output| on a fixed \
             batch after each of {} steps\n\n",
            widths.join(", "),
            self.base_width,
            self.optimizer,
            format_lr(self.lr),
            self.steps
        );
        out += &format!(
            "{:<9} {:<8} {:>4}  {:>7}   mean |output| by width\n",
            "param", "layer", "step", "slope"
        );
        for r in self.rows.iter().filter(|r| r.step >= 1) {
            let layer = if r.readout {
                "logits".to_string()
            } else {
                format!("hidden{}", r.layer + 1)
            };
            let means: Vec<String> = r.mean_abs.iter().map(|m| format!("{m:.3}")).collect();
            out += &format!(
                "{:<9} {:<8} {:>4}  {:>+7.3}   {}\n",
                r.param,
                layer,
                r.step,
                r.slope,
                means.join("  ")
            );
        }
        out.push('\n');
        for param in ["standard", "mup"] {
            if let Some(w) = self.worst(param) {
                out += &format!(
                    "{param}: {} (largest hidden-layer |slope| {:.3} at hidden{} step {}; bound {})\n",
                    if self.passes(param) { "PASS" } else { "FAIL" },
                    w.slope.abs(),
                    w.layer + 1,
                    w.step,
                    self.tolerance
                );
            }
        }
        out
    }

    /// Every measurement as CSV.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("param,layer,readout,step,width,mean_abs\n");
        for r in &self.rows {
            for (w, m) in self.widths.iter().zip(&r.mean_abs) {
                out += &format!("{},{},{},{},{w},{m}\n", r.param, r.layer, r.readout, r.step);
            }
        }
        out
    }

    /// Mean |output| against width at the last step, a line per layer, a panel per
    /// parametrization (flat lines: the parametrization keeps the layer's size).
    pub fn figure(&self) -> Figure {
        let panels = ["standard", "mup"]
            .iter()
            .map(|param| {
                let mut chart = Chart::new(
                    format!("{param}: mean |output| after {} steps", self.steps),
                    Axis::log("width"),
                    Axis::log("mean |output|"),
                );
                for r in self.rows.iter().filter(|r| r.param == *param && r.step == self.steps) {
                    let label = if r.readout {
                        "logits".to_string()
                    } else {
                        format!("hidden{}", r.layer + 1)
                    };
                    let points = self
                        .widths
                        .iter()
                        .map(|&w| w as f64)
                        .zip(r.mean_abs.iter().copied())
                        .collect();
                    let mut series = Series::line(format!("{label} (slope {:+.2})", r.slope), points);
                    series.dots = true;
                    chart.series.push(series);
                }
                chart
            })
            .collect();
        Figure {
            panel_width: 480.0,
            height: 360.0,
            panels,
        }
    }
}

/// Runs the check for both parametrizations on the training split of `args.data`.
pub fn run(args: &CoordCheckArgs) -> Result<CoordCheck, Error> {
    let widths = parse_widths(&args.widths)?;
    if args.depth == 0 || args.steps == 0 || args.seeds == 0 || args.batch_size == 0 {
        return Err(Error::Usage(
            "--depth, --steps, --seeds and --batch-size must each be at least 1".into(),
        ));
    }
    crate::positive("--tolerance", args.tolerance)?;
    let activation: Activation = args.activation.parse()?;
    let kind: OptimizerKind = args.optimizer.parse()?;
    let sgd_like = kind.update_family() == UpdateFamily::Sgd;
    let lr = args.lr.unwrap_or(if sgd_like { 0.1 } else { 0.01 });
    crate::positive("--lr", lr)?;
    let base_width = args.base_width.unwrap_or(widths[0]);
    let mup = Parametrization::mup(base_width)?;
    if let Some(threads) = args.threads {
        crate::set_threads(threads)?;
    }
    let Loaded { splits, .. } = args.data.load()?;
    let train = &splits.train;
    let mut rows = Vec::new();
    for (name, param) in [("standard", Parametrization::Standard), ("mup", mup)] {
        // means[step][layer][width], averaged over the seeds.
        let mut means = vec![vec![vec![0.0; widths.len()]; args.depth + 1]; args.steps + 1];
        for (wi, &width) in widths.iter().enumerate() {
            for seed in 0..args.seeds {
                let trace = trace(train, width, args, activation, kind, lr, param, seed)?;
                for (step, layers) in trace.into_iter().enumerate() {
                    for (layer, m) in layers.into_iter().enumerate() {
                        means[step][layer][wi] += m / args.seeds as f64;
                    }
                }
            }
        }
        for (step, layers) in means.into_iter().enumerate() {
            for (layer, mean_abs) in layers.into_iter().enumerate() {
                rows.push(CoordRow {
                    param: name.to_string(),
                    layer,
                    readout: layer == args.depth,
                    step,
                    slope: log_log_slope(&widths, &mean_abs),
                    mean_abs,
                });
            }
        }
    }
    Ok(CoordCheck {
        widths,
        optimizer: kind.to_string(),
        lr,
        base_width,
        steps: args.steps,
        tolerance: args.tolerance,
        rows,
    })
}

/// Mean |output| of every layer on a fixed batch, at the initial weights and after each step.
#[allow(clippy::too_many_arguments)]
fn trace(
    train: &Dataset,
    width: usize,
    args: &CoordCheckArgs,
    activation: Activation,
    kind: OptimizerKind,
    lr: f64,
    param: Parametrization,
    seed: u64,
) -> Result<Vec<Vec<f64>>, Error> {
    let device = Device::Cpu;
    let input = train.rows() * train.cols();
    let mut sizes = vec![input];
    sizes.extend(std::iter::repeat_n(width, args.depth));
    sizes.push(train.classes());
    let spec = MlpSpec::new(sizes)?;
    let arch = Architecture::Mlp(spec.clone());
    let varmap = VarMap::new();
    let mlp = Mlp::new(&spec, activation, VarBuilder::from_varmap(&varmap, DType::F32, &device))?;
    reset_parameters(&varmap, seed)?;
    param.initialise(&arch, &varmap)?;
    let scales = param.rate_scales(&arch, kind.update_family() == UpdateFamily::Sgd);
    let mut optimizer = kind.build_groups(rate_groups(&varmap, &scales)?, lr, None, None)?;
    let batch = args.batch_size.min(train.len());
    let order = Batcher::new(train.len(), batch, seed)?.order(0);
    let steps: Vec<&[u32]> = order.chunks(batch).filter(|c| c.len() == batch).collect();
    if steps.is_empty() {
        return Err(Error::Usage(format!(
            "--batch-size {batch}: the training set has only {} examples",
            train.len()
        )));
    }
    // The same batch is measured after every step, so a change is the weights', not the data's.
    let (probe, _) = train.gather_tensors(steps[0], &device)?;
    let mean_abs = |mlp: &Mlp| -> Result<Vec<f64>, Error> {
        mlp.layer_outputs(&probe)?
            .iter()
            .map(|t| Ok(f64::from(t.abs()?.mean_all()?.to_scalar::<f32>()?)))
            .collect()
    };
    let mut trace = vec![mean_abs(&mlp)?];
    for t in 0..args.steps {
        let (x, y) = train.gather_tensors(steps[t % steps.len()], &device)?;
        let loss = candle_nn::loss::cross_entropy(&mlp.forward(&x)?, &y)?;
        optimizer.step(&loss.backward()?)?;
        trace.push(mean_abs(&mlp)?);
    }
    Ok(trace)
}

/// Least-squares slope of ln(y) against ln(x); NaN when a value is not positive.
fn log_log_slope(widths: &[usize], ys: &[f64]) -> f64 {
    if ys.iter().any(|&y| !(y > 0.0 && y.is_finite())) {
        return f64::NAN;
    }
    let xs: Vec<f64> = widths.iter().map(|&w| (w as f64).ln()).collect();
    let ls: Vec<f64> = ys.iter().map(|y| y.ln()).collect();
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ls.iter().sum::<f64>() / n);
    let sxy: f64 = xs.iter().zip(&ls).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    sxy / sxx
}

/// `64,128,256`: at least two distinct positive widths, ascending.
fn parse_widths(text: &str) -> Result<Vec<usize>, Error> {
    let mut widths = text
        .split(',')
        .map(|w| {
            w.trim().parse::<usize>().ok().filter(|&w| w > 0).ok_or_else(|| {
                Error::Usage(format!(
                    "--widths {text:?}: {w:?} is not a width; expected positive numbers joined by ',', e.g. 64,128,256"
                ))
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    widths.sort_unstable();
    widths.dedup();
    if widths.len() < 2 {
        return Err(Error::Usage(format!(
            "--widths {text:?}: expected at least two different widths to compare"
        )));
    }
    Ok(widths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_power_law_is_its_exponent() {
        let widths = [64, 128, 256, 512];
        let flat = [2.0, 2.0, 2.0, 2.0];
        assert!(log_log_slope(&widths, &flat).abs() < 1e-12);
        let linear: Vec<f64> = widths.iter().map(|&w| 0.01 * w as f64).collect();
        assert!((log_log_slope(&widths, &linear) - 1.0).abs() < 1e-12);
        assert!(log_log_slope(&widths, &[1.0, 0.0, 1.0, 1.0]).is_nan());
        assert!(parse_widths("64").is_err());
        assert!(parse_widths("64,x").is_err());
        assert_eq!(parse_widths("256, 64,128").unwrap(), vec![64, 128, 256]);
    }
}
