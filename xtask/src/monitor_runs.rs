//! `monitor-runs`: trains the outcome-labelled set of real runs the run-health monitor is
//! judged by (crates/stride-monitor/REAL_RUNS.md), and `monitor-runs --table` runs the monitor
//! over the stored fixture and rewrites the table in REAL_RUNS.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
// The crates the `stride` facade re-exports as `stride::{data, model, optim, train}`; used
// directly so this tool does not build the facade's CLI.
use stride_data::{Dataset, DatasetName, Resolver};
use stride_model::{reset_parameters, Activation, Mlp, MlpSpec};
use stride_monitor::{Action, Monitor, MonitorConfig, State, StepRecord};
use stride_optim::{Optimizer, OptimizerKind};
use stride_train::{History, Trainer};

/// Seed of the initial weights and of the batch order, the same for every run (`--seed`
/// makes a held-out set with other weights and batches).
const SEED: u64 = 1;
const BATCH: usize = 128;
/// REAL_RUNS.md: `initial` is the mean of this many first losses of the family's lowest-rate run.
const INITIAL_LEN: usize = 10;
/// REAL_RUNS.md: `final` is the mean of this many last finite losses.
const FINAL_LEN: usize = 20;
const TABLE_BEGIN: &str = "<!-- BEGIN RUNS TABLE (generated: cargo run --release -p xtask -- monitor-runs --table) -->";
const TABLE_END: &str = "<!-- END RUNS TABLE -->";

/// `monitor-runs [--seed N] [out dir]` / `monitor-runs --table [dir]`.
pub fn main(args: &[String]) -> Result<()> {
    let doc = default_dir().join("../../REAL_RUNS.md");
    match args {
        [flag] if flag == "--table" => table(&default_dir(), Some(&doc)),
        [flag, dir] if flag == "--table" => table(Path::new(dir), None),
        [flag, seed, rest @ ..] if flag == "--seed" && rest.len() <= 1 => {
            let seed: u64 = seed.parse().with_context(|| format!("--seed {seed:?}"))?;
            let out = rest.first().map_or_else(default_dir, PathBuf::from);
            generate(&out, seed)
        }
        [] => generate(&default_dir(), SEED),
        [out] if !out.starts_with("--") => generate(Path::new(out), SEED),
        _ => bail!("usage: monitor-runs [--seed N] [out dir] | monitor-runs --table [fixture dir]"),
    }
}

pub fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/stride-monitor/fixtures/real_runs")
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Arch {
    Relu,
    Tanh,
    LogReg,
}

impl Arch {
    fn name(self) -> &'static str {
        match self {
            Arch::Relu => "relu-784-128-10",
            Arch::Tanh => "tanh-784-128-10",
            Arch::LogReg => "logreg-784-10",
        }
    }
    fn short(self) -> &'static str {
        match self {
            Arch::Relu => "relu",
            Arch::Tanh => "tanh",
            Arch::LogReg => "logreg",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Opt {
    Sgd,
    Momentum,
    Adam,
    RmsProp,
}

impl Opt {
    fn name(self) -> &'static str {
        match self {
            Opt::Sgd => "sgd",
            Opt::Momentum => "sgd-momentum-0.9",
            Opt::Adam => "adam",
            Opt::RmsProp => "rmsprop",
        }
    }
    fn short(self) -> &'static str {
        match self {
            Opt::Sgd => "sgd",
            Opt::Momentum => "mom",
            Opt::Adam => "adam",
            Opt::RmsProp => "rmsprop",
        }
    }
    /// Rates by decades, from far too small to far too large.
    fn rates(self) -> Vec<f64> {
        let decades: std::ops::RangeInclusive<i32> = match self {
            Opt::Sgd => -4..=2,
            Opt::Momentum => -4..=1,
            Opt::Adam | Opt::RmsProp => -6..=0,
        };
        decades.map(|e| 10f64.powi(e)).collect()
    }
    fn build(self, vars: Vec<candle_core::Var>, lr: f64) -> Result<Box<dyn Optimizer>> {
        let (kind, momentum) = match self {
            Opt::Sgd => (OptimizerKind::Sgd, None),
            Opt::Momentum => (OptimizerKind::Sgd, Some(0.9)),
            Opt::Adam => (OptimizerKind::Adam, None),
            Opt::RmsProp => (OptimizerKind::RmsProp, None),
        };
        Ok(kind.build(vars, lr, momentum, None)?)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Data {
    Fashion,
    MnistSample,
}

impl Data {
    fn name(self) -> &'static str {
        match self {
            Data::Fashion => "fashion-mnist",
            Data::MnistSample => "mnist-sample",
        }
    }
    fn short(self) -> &'static str {
        match self {
            Data::Fashion => "fm",
            Data::MnistSample => "ms",
        }
    }
    fn epochs(self) -> usize {
        match self {
            Data::Fashion => 1,
            Data::MnistSample => 4,
        }
    }
}

/// The families of REAL_RUNS.md (dataset, architecture, optimizer); every rate of the optimizer.
fn families() -> Vec<(Data, Arch, Opt)> {
    use {Arch::*, Data::*, Opt::*};
    vec![
        (Fashion, Relu, Sgd),
        (Fashion, Relu, Momentum),
        (Fashion, Relu, Adam),
        (Fashion, Relu, RmsProp),
        (Fashion, Tanh, Sgd),
        (Fashion, Tanh, Adam),
        (Fashion, LogReg, Sgd),
        (Fashion, LogReg, Adam),
        (MnistSample, Relu, Sgd),
        (MnistSample, Relu, Adam),
        (MnistSample, Tanh, Momentum),
        (MnistSample, LogReg, RmsProp),
    ]
}

fn lr_tag(lr: f64) -> String {
    let e = lr.log10().round() as i32;
    format!("1e{e}")
}

/// One run of the fixture, as stored in runs.csv.
#[derive(Debug, Clone)]
pub struct Run {
    pub id: String,
    pub dataset: String,
    pub arch: String,
    pub optimizer: String,
    pub lr: f64,
    pub steps: usize,
    pub stopped_nonfinite: bool,
    pub initial: f64,
    pub final_loss: f64,
    pub label: String,
}

/// The loss as stored: the trainer's f32 loss in its shortest exact form (`NaN`, `inf`).
fn loss_text(x: f64) -> String {
    format!("{}", x as f32)
}

fn train_one(train: &Dataset, arch: Arch, opt: Opt, lr: f64, epochs: usize, seed: u64) -> Result<History> {
    let device = Device::Cpu;
    let varmap = VarMap::new();
    let input = train.rows() * train.cols();
    let (spec, act): (MlpSpec, Activation) = match arch {
        Arch::Relu => (format!("{input}-128-{}", train.classes()).parse()?, Activation::Relu),
        Arch::Tanh => (format!("{input}-128-{}", train.classes()).parse()?, Activation::Tanh),
        Arch::LogReg => (format!("{input}-{}", train.classes()).parse()?, Activation::Relu),
    };
    let model = Mlp::new(&spec, act, VarBuilder::from_varmap(&varmap, DType::F32, &device))?;
    reset_parameters(&varmap, seed)?;
    let mut optimizer = opt.build(varmap.all_vars(), lr)?;
    let history = Trainer::builder()
        .epochs(epochs)
        .batch_size(BATCH)
        .seed(seed)
        .build()?
        .fit_with(&model, optimizer.as_mut(), train, None)?;
    Ok(history)
}

/// The labelling rule of REAL_RUNS.md, applied to every family at once.
/// `runs[i]` gives (family key, lr) and `losses[i]` the run's losses.
pub fn label(runs: &[(String, f64)], losses: &[Vec<f64>]) -> Vec<(f64, f64, String)> {
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let mut fams: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, (fam, _)) in runs.iter().enumerate() {
        fams.entry(fam.as_str()).or_default().push(i);
    }
    let mut out = vec![(0.0, 0.0, String::new()); runs.len()];
    for members in fams.values() {
        let Some(&lowest) = members.iter().min_by(|a, b| runs[**a].1.total_cmp(&runs[**b].1)) else {
            continue;
        };
        let head = &losses[lowest][..INITIAL_LEN.min(losses[lowest].len())];
        let initial = mean(head);
        let mut fin = BTreeMap::new();
        for &i in members {
            let finite: Vec<f64> = losses[i].iter().copied().filter(|x| x.is_finite()).collect();
            let tail = &finite[finite.len().saturating_sub(FINAL_LEN)..];
            let f = mean(tail);
            let diverging = finite.len() < losses[i].len() || f >= initial;
            fin.insert(i, (f, diverging));
        }
        let best = members
            .iter()
            .filter(|i| !fin[*i].1)
            .map(|i| (initial - fin[i].0, runs[*i].1))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        for &i in members {
            let (f, diverging) = fin[&i];
            let lab = match best {
                _ if diverging => "DIVERGING",
                None => "DIVERGING",
                Some((best, lr_best)) => {
                    let imp = initial - f;
                    if imp >= 0.8 * best {
                        "HEALTHY"
                    } else if runs[i].1 < lr_best {
                        if imp < 0.5 * best {
                            "SLOW"
                        } else {
                            "INTERMEDIATE_LOW"
                        }
                    } else {
                        "TOO_HIGH"
                    }
                }
            };
            out[i] = (initial, f, lab.to_string());
        }
    }
    out
}

/// Trains every run and writes runs.csv and losses.csv into `out`.
pub fn generate(out: &Path, seed: u64) -> Result<()> {
    let started = Instant::now();
    let resolver = Resolver {
        hub: None,
        ..Resolver::from_env()
    };
    let fashion = resolver.load(DatasetName::FashionMnist)?;
    let mnist = resolver.load(DatasetName::Mnist)?;
    println!("fashion-mnist from {}, mnist from {}", fashion.source, mnist.source);
    let mut meta: Vec<(String, String, f64, bool, Data, Arch, Opt)> = Vec::new();
    let mut losses: Vec<Vec<f64>> = Vec::new();
    for (data, arch, opt) in families() {
        let train = match data {
            Data::Fashion => &fashion.splits.train,
            Data::MnistSample => &mnist.splits.train,
        };
        for lr in opt.rates() {
            let id = format!("{}-{}-{}-{}", data.short(), arch.short(), opt.short(), lr_tag(lr));
            let t = Instant::now();
            let h = train_one(train, arch, opt, lr, data.epochs(), seed).with_context(|| format!("run {id}"))?;
            // Stored as text and read back, so the labels see exactly what the test sees.
            let l: Vec<f64> = h
                .step_losses
                .iter()
                .map(|x| loss_text(*x).parse::<f64>())
                .collect::<Result<_, _>>()?;
            let nonfinite = l.last().is_some_and(|x| !x.is_finite());
            println!(
                "{id:28} {:4} steps  last {:>10}  {:5.1} s{}",
                l.len(),
                l.last().map(|x| loss_text(*x)).unwrap_or_default(),
                t.elapsed().as_secs_f64(),
                if nonfinite { "  (stopped: non-finite)" } else { "" }
            );
            let family = format!("{}/{}/{}", data.name(), arch.name(), opt.name());
            meta.push((id, family, lr, nonfinite, data, arch, opt));
            losses.push(l);
        }
    }
    let keys: Vec<(String, f64)> = meta.iter().map(|m| (m.1.clone(), m.2)).collect();
    let labels = label(&keys, &losses);
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut runs_csv =
        String::from("run_id,dataset,arch,optimizer,lr,steps,stopped_nonfinite,initial_loss,final_loss,label\n");
    let mut losses_csv = String::from("run_id,step,loss\n");
    for (i, (id, _, lr, nonfinite, data, arch, opt)) in meta.iter().enumerate() {
        let (initial, fin, lab) = &labels[i];
        writeln!(
            runs_csv,
            "{id},{},{},{},{lr:e},{},{nonfinite},{initial},{fin},{lab}",
            data.name(),
            arch.name(),
            opt.name(),
            losses[i].len()
        )?;
        for (s, x) in losses[i].iter().enumerate() {
            writeln!(losses_csv, "{id},{},{}", s + 1, loss_text(*x))?;
        }
    }
    std::fs::write(out.join("runs.csv"), runs_csv)?;
    std::fs::write(out.join("losses.csv"), losses_csv)?;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, _, l) in &labels {
        *counts.entry(l.as_str()).or_default() += 1;
    }
    println!(
        "{} runs, labels {counts:?}, {:.0} s; wrote {}",
        meta.len(),
        started.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}

/// Reads runs.csv and losses.csv.
pub fn read_fixture(dir: &Path) -> Result<(Vec<Run>, Vec<Vec<f64>>)> {
    let runs_text =
        std::fs::read_to_string(dir.join("runs.csv")).with_context(|| format!("reading {}/runs.csv", dir.display()))?;
    let mut runs = Vec::new();
    for (n, line) in runs_text.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 10 {
            bail!("runs.csv line {}: expected 10 fields, got {}", n + 1, f.len());
        }
        let num = |s: &str| -> Result<f64> { s.parse().with_context(|| format!("runs.csv line {}: {s:?}", n + 1)) };
        runs.push(Run {
            id: f[0].into(),
            dataset: f[1].into(),
            arch: f[2].into(),
            optimizer: f[3].into(),
            lr: num(f[4])?,
            steps: f[5].parse()?,
            stopped_nonfinite: f[6].parse()?,
            initial: num(f[7])?,
            final_loss: num(f[8])?,
            label: f[9].into(),
        });
    }
    let index: BTreeMap<&str, usize> = runs.iter().enumerate().map(|(i, r)| (r.id.as_str(), i)).collect();
    let mut losses = vec![Vec::new(); runs.len()];
    let losses_text = std::fs::read_to_string(dir.join("losses.csv"))
        .with_context(|| format!("reading {}/losses.csv", dir.display()))?;
    for (n, line) in losses_text.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (Some(id), Some(x)) = (f.first(), f.get(2)) else {
            bail!("losses.csv line {}: expected run_id,step,loss", n + 1);
        };
        let i = *index
            .get(id)
            .with_context(|| format!("losses.csv line {}: unknown run {id}", n + 1))?;
        losses[i].push(x.parse().with_context(|| format!("losses.csv line {}: {x:?}", n + 1))?);
    }
    Ok((runs, losses))
}

/// The verdicts the label accepts (REAL_RUNS.md).
pub fn accepted(label: &str) -> &'static [State] {
    use State::*;
    match label {
        "DIVERGING" => &[Diverging, Exploded],
        "HEALTHY" => &[Healthy, Plateau],
        "SLOW" => &[Slow],
        "INTERMEDIATE_LOW" => &[Slow, Healthy, Plateau],
        "TOO_HIGH" => &[Oscillating, Diverging, Exploded, Healthy, Plateau],
        _ => &[],
    }
}

/// Runs the monitor over the runs in `dir` and rewrites the table of `doc` (or prints it).
pub fn table(dir: &Path, doc: Option<&Path>) -> Result<()> {
    let (runs, losses) = read_fixture(dir)?;
    let keys: Vec<(String, f64)> = runs
        .iter()
        .map(|r| (format!("{}/{}/{}", r.dataset, r.arch, r.optimizer), r.lr))
        .collect();
    for ((r, l), (initial, fin, lab)) in runs.iter().zip(&losses).zip(label(&keys, &losses)) {
        let nonfinite = l.last().is_some_and(|x| !x.is_finite());
        if r.label != lab
            || r.steps != l.len()
            || r.stopped_nonfinite != nonfinite
            || r.initial != initial
            || r.final_loss != fin
        {
            bail!(
                "run {}: runs.csv does not match the rule applied to losses.csv (label {lab})",
                r.id
            );
        }
    }
    let cfg = MonitorConfig {
        num_classes: Some(10),
        ..Default::default()
    };
    let mut rows = String::from(
        "| run | dataset | arch | optimizer | lr | steps | label | final STEP verdict (reason) | in set |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    let (mut agree, mut violations) = (0usize, Vec::new());
    for (r, l) in runs.iter().zip(&losses) {
        let mut m = Monitor::new(cfg.clone())?;
        let mut last = None;
        for (s, x) in l.iter().enumerate() {
            let d = m.observe_step(&StepRecord::new(s as u64 + 1, *x, r.lr));
            if r.label == "DIVERGING"
                && (s + 1 >= 100 || s + 1 == l.len())
                && (d.state == State::Healthy || d.suggestion.action == Action::Raise)
            {
                violations.push(format!("{} step {}: {} {}", r.id, s + 1, d.state, d.reason));
            }
            last = Some(d);
        }
        let d = last.with_context(|| format!("run {} has no losses", r.id))?;
        let ok = accepted(&r.label).contains(&d.state);
        agree += usize::from(ok);
        writeln!(
            rows,
            "| {} | {} | {} | {} | {:e} | {} | {} | {} ({}) | {} |",
            r.id,
            r.dataset,
            r.arch,
            r.optimizer,
            r.lr,
            r.steps,
            r.label,
            d.state,
            d.reason,
            if ok { "yes" } else { "**no**" }
        )?;
    }
    let summary = format!(
        "Agreement: **{agree}/{} = {:.1} %** of the runs' final verdicts lie in their label's set; \
         diverging runs called HEALTHY or told to raise from step 100 on: {}.\n",
        runs.len(),
        100.0 * agree as f64 / runs.len().max(1) as f64,
        violations.len()
    );
    for v in &violations {
        println!("violation: {v}");
    }
    let body = format!("{TABLE_BEGIN}\n{summary}\n{rows}{TABLE_END}");
    print!("{summary}");
    let text = doc.map(std::fs::read_to_string).transpose()?.unwrap_or_default();
    match (doc, text.find(TABLE_BEGIN), text.find(TABLE_END)) {
        (Some(doc), Some(a), Some(b)) if a < b => {
            let new = format!("{}{body}{}", &text[..a], &text[b + TABLE_END.len()..]);
            std::fs::write(doc, new).with_context(|| format!("writing {}", doc.display()))?;
            println!("rewrote the table in {}", doc.display());
        }
        _ => println!("{body}"),
    }
    Ok(())
}
