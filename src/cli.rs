//! The training job shared by `stride train` and `examples/mnist_mlp.rs`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;
use candle_nn::VarMap;
use stride_data::{DatasetName, Examples, Loaded};
use stride_model::{Activation, Architecture, Parametrization};
use stride_monitor::MonitorConfig;
use stride_optim::schedule::{parse_schedule, ScheduleUnit};
use stride_optim::Registry;
use stride_train::{
    evaluate, format_loss, format_lr, AutoLr, Checkpoint, CheckpointConfig, Checkpointer, EarlyStopping, Eval,
    ExistingRun, History, Interrupt, MetricsLog, ProgressBars, RunMonitor, RunReport, SharpnessConfig,
    SharpnessSchedule, StopReason, TrainError, Trainer, TrainerConfig,
};

use crate::args::{DataArgs, DeviceArgs, NetArgs};
use crate::Error;

/// Options of an MLP training run on MNIST or Fashion-MNIST.
#[derive(Debug, Clone, clap::Args, serde::Serialize)]
pub struct TrainArgs {
    #[command(flatten)]
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub data: DataArgs,
    #[command(flatten)]
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub net: NetArgs,
    #[command(flatten)]
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub device: DeviceArgs,
    /// Passes over the training set.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Learning rate (the base rate when a schedule is given); default: the optimizer's
    /// (sgd 0.1, adam/adamw/radam 1e-3, rmsprop/adagrad 1e-2, adamax/nadam 2e-3, adadelta 1,
    /// lion 1e-4, sf-adamw 0.0025, and 1 for prodigy/dadapt-*, whose rate is a multiplier).
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// Optimizer: sgd, adam, adamw, rmsprop, adagrad, adadelta, adamax, nadam, radam, lion, or the
    /// tuning-free sf-adamw, sf-sgd (Schedule-Free), prodigy, dadapt-adam, dadapt-sgd.
    #[arg(long, default_value = "sgd")]
    pub optimizer: String,
    /// Momentum (SGD, RMSprop) or beta1 (Adam family); PyTorch's default when absent.
    #[arg(long, allow_negative_numbers = true)]
    pub momentum: Option<f64>,
    /// Weight decay; PyTorch's default for the optimizer when absent (AdamW: 0.01, others 0).
    #[arg(long, allow_negative_numbers = true)]
    pub weight_decay: Option<f64>,
    /// Learning-rate schedule, e.g. "warmup(500) then cosine(10000)"; preview it with `stride schedule`.
    #[arg(long)]
    pub schedule: Option<String>,
    /// Clip the global gradient norm to this value before every step.
    #[arg(long, allow_negative_numbers = true)]
    pub clip_grad_norm: Option<f64>,
    /// Examples per step.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Write per-step and per-epoch metrics here (.csv, otherwise JSON lines).
    #[arg(long)]
    pub metrics: Option<PathBuf>,
    /// Let the monitor act: roll back and lower the rate on divergence (at most 3 times),
    /// decay it on a plateau.
    #[arg(long)]
    pub auto_lr: bool,
    /// Turn the run-health monitor off (no warnings, no report).
    #[arg(long, conflicts_with = "auto_lr")]
    pub no_monitor: bool,
    /// Compute gradients with candle's autograd instead of the MLP's fused CPU path
    /// (same gradients, about 3.4x slower on W: 0.88 vs 0.26 s/epoch; for comparisons)
    #[arg(long)]
    pub no_fused: bool,
    /// Write the monitor's run report (timeline of states, suggestions, interventions) here as JSON.
    #[arg(long, conflicts_with = "no_monitor")]
    pub report: Option<PathBuf>,
    /// Estimate the sharpness and the stability limit theta/lambda: "epoch" (at the first step
    /// of every epoch, so also at the initial weights) or every N steps.
    #[arg(long)]
    pub sharpness_every: Option<String>,
    /// Training examples in the fixed batch the sharpness is estimated on (0: the step's minibatch).
    #[arg(long, default_value_t = 128)]
    pub sharpness_batch: usize,
    /// Write a checkpoint here at the end of every epoch (one directory each, plus `latest` and
    /// `best` pointers), keeping the last --keep-checkpoints and the best by test loss.
    #[arg(long)]
    pub checkpoint_dir: Option<PathBuf>,
    /// Also write a checkpoint every N optimizer steps (mid-epoch); needs --checkpoint-dir.
    #[arg(long, requires = "checkpoint_dir")]
    pub checkpoint_every: Option<u64>,
    /// Checkpoints kept besides the best one.
    #[arg(long, default_value_t = 3)]
    pub keep_checkpoints: usize,
    /// Continue a run from a checkpoint: its directory, a checkpoint directory's root, or
    /// `latest` (the newest in --checkpoint-dir). Same model, dataset, seed and batch size
    /// required; a changed --lr or --schedule applies from the resumed step on (a new WSD
    /// --schedule from a stable-phase checkpoint branches a cooldown for another budget).
    #[arg(long)]
    pub resume: Option<String>,
    /// Replace the checkpoints of another run in --checkpoint-dir (without it, a fresh run
    /// into a directory that holds checkpoints is refused).
    #[arg(long, requires = "checkpoint_dir", conflicts_with = "resume")]
    pub overwrite: bool,
    /// Fraction of the training set held out (stratified, by --seed) for validation: the best
    /// checkpoint, the plateau rule, --auto-lr and --early-stop decide on it; the test set is
    /// read once, after training. 0 trains on every example and decides on the training loss.
    #[arg(long, default_value_t = 0.1)]
    pub val_split: f64,
    /// Stop when the validation loss has not improved for this many epochs.
    #[arg(long)]
    pub early_stop: Option<usize>,
    /// Threads for the tensor kernels (default: the cores this process may use).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Where the data came from.
    pub loaded_from: stride_data::Source,
    /// The network, e.g. `MLP 784-128-10`.
    pub arch: Architecture,
    /// The optimizer and its rate (and schedule), as a phrase.
    pub optimizer: String,
    /// The run's history.
    pub history: History,
    /// Seconds spent loading the data.
    pub load_seconds: f64,
    /// The monitor's report, unless it was turned off.
    pub monitor: Option<RunReport>,
    /// Where the run's checkpoints went, when it wrote them.
    pub checkpoint_dir: Option<PathBuf>,
    /// Examples held out for validation (0: none).
    pub val_len: usize,
    /// The test set, evaluated once after training.
    pub test: Option<Eval>,
    /// How often the test set was read before the final evaluation (0: never, as it should be).
    pub test_reads_during_training: usize,
}

impl RunSummary {
    /// Final test accuracy, if evaluated.
    pub fn test_accuracy(&self) -> Option<f64> {
        self.test.map(|e| e.accuracy)
    }

    /// Median seconds per training epoch, leaving out the first (warm-up) when there are more.
    pub fn median_epoch_seconds(&self) -> f64 {
        let mut secs: Vec<f64> = self.history.epochs.iter().map(|e| e.train_seconds).collect();
        if secs.len() > 1 {
            secs.remove(0);
        }
        secs.sort_by(f64::total_cmp);
        secs.get(secs.len() / 2).copied().unwrap_or(f64::NAN)
    }

    /// The exit status the process should end with: 128 + the signal for an interrupted run
    /// (130 for Ctrl-C, 143 for SIGTERM), as shells and schedulers expect; 0 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self.history.stopped {
            Some(StopReason::Interrupted { signal, .. }) if signal > 0 => 128 + signal,
            _ => 0,
        }
    }

    /// For an interrupted run, one line: what was saved and how to go on.
    pub fn interruption_note(&self) -> Option<String> {
        let Some(StopReason::Interrupted { step, .. }) = &self.history.stopped else {
            return None;
        };
        Some(match &self.checkpoint_dir {
            Some(dir) => format!(
                "stopped after step {step}: checkpoint written to {}; continue with the same command plus \
                 `--resume latest`",
                dir.display()
            ),
            None => format!("stopped after step {step}: no --checkpoint-dir was set, so nothing can be resumed"),
        })
    }

    /// A plain-text table of the epochs and a closing line.
    pub fn report(&self) -> String {
        let mut out = format!(
            "data: {}\nmodel: {}\noptimizer: {}\n\n{:>5}  {:>10}  {:>9}  {:>8}  {:>7}  {:>8}\n",
            self.loaded_from,
            self.arch,
            self.optimizer,
            "epoch",
            "train loss",
            "train acc",
            "val loss",
            "val acc",
            "seconds"
        );
        for e in &self.history.epochs {
            let (vl, va) = e
                .eval
                .map(|v| (format_loss(v.loss), format!("{:.4}", v.accuracy)))
                .unwrap_or_else(|| ("-".into(), "-".into()));
            out += &format!(
                "{:>5}  {:>10}  {:>9}  {:>8}  {:>7}  {:>8.2}\n",
                e.epoch + 1,
                format_loss(e.train_loss),
                e.train_accuracy.map_or("-".into(), |a| format!("{a:.4}")),
                vl,
                va,
                e.train_seconds
            );
        }
        if let Some(report) = &self.monitor {
            out += &format!("\nrun health:\n{}", report.table());
        }
        if let Some(reason) = &self.history.stopped {
            out += &format!("\nstopped early: {reason}\n");
        }
        let epochs = self.history.epochs.len();
        let test = match self.test {
            Some(t) => format!("test loss {:.4}, test accuracy {:.4}", t.loss, t.accuracy),
            None => "test set not evaluated".into(),
        };
        out += &format!(
            "\n{test} (the test set, read once after training) after {epochs} epoch{}; {:.2} s/epoch (median), {:.1} s \
             in all, {:.2} s loading data\n",
            if epochs == 1 { "" } else { "s" },
            self.median_epoch_seconds(),
            self.history.total_seconds,
            self.load_seconds
        );
        out
    }
}

/// Loads the dataset, trains the MLP with progress bars (and a metrics log
/// when asked), and returns the summary.
pub fn train(args: &TrainArgs) -> Result<RunSummary, Error> {
    train_with(args, &Registry::builtin())
}

/// [`train`] with `--optimizer` looked up in `optimizers`: a program registers its own rules
/// there and its command line trains with them, checkpoints and resume included.
pub fn train_with(args: &TrainArgs, optimizers: &Registry) -> Result<RunSummary, Error> {
    // Everything a user typed is checked before the data is loaded: a typo costs no download.
    let kind = optimizers.get(&args.optimizer)?;
    let lr = args.lr.unwrap_or(kind.default_lr);
    Trainer::new(TrainerConfig {
        epochs: args.epochs,
        batch_size: args.batch_size,
        lr,
        seed: args.net.seed,
        clip_grad_norm: args.clip_grad_norm,
        ..TrainerConfig::default()
    })?;
    let name: DatasetName = args.data.name()?;
    // The optimizer's own checks (momentum in [0, 1), betas, decay), on no variables yet.
    kind.build(Vec::new(), lr, args.momentum, args.weight_decay)?;
    crate::fraction("--val-split", args.val_split)?;
    if args.early_stop == Some(0) {
        return Err(Error::Usage(
            "--early-stop 0: expected a patience of at least 1 epoch".into(),
        ));
    }
    let activation: Activation = args.net.activation()?;
    args.net.check()?;
    let device = args.device.device()?;
    if let Some(spec) = &args.schedule {
        parse_schedule(spec, lr)?;
    }
    check_outputs(args)?;
    let resume =
        match args.resume.as_deref() {
            Some("latest") => Some(args.checkpoint_dir.as_ref().map(|d| d.join("latest")).ok_or(
                TrainError::Config {
                    name: "resume",
                    value: "latest".into(),
                    message: "expected --checkpoint-dir too: `latest` is the newest checkpoint there",
                },
            )?),
            Some(path) => Some(PathBuf::from(path)),
            None => None,
        };
    // Read (and checksummed) before the data: a bad checkpoint costs no loading.
    let checkpoint = resume.as_deref().map(Checkpoint::load).transpose()?;
    if let Some(threads) = args.threads {
        crate::set_threads(threads)?;
    }
    let started = Instant::now();
    let Loaded { splits, source } = args.data.load()?;
    let load_seconds = started.elapsed().as_secs_f64();
    let (train_set, val_set) = splits.train.split_validation(args.val_split, args.net.seed)?;
    if val_set.is_empty() {
        tracing::info!(
            "no validation split (--val-split 0): the best checkpoint, the plateau rule, --auto-lr and --early-stop \
             decide on the training loss"
        );
    }
    let test_set = Counted::new(&splits.test);
    let arch = args.net.architecture_for(&splits.train)?;

    let varmap = VarMap::new();
    let model = args.net.network(&arch, &varmap, &device)?;
    let mut optimizer = args
        .net
        .optimizer(kind, &arch, &varmap, lr, args.momentum, args.weight_decay)?;
    let mut builder = Trainer::builder()
        .epochs(args.epochs)
        .batch_size(args.batch_size)
        .lr(lr)
        .seed(args.net.seed)
        .device(device.clone())
        .fused(!args.no_fused);
    let mut described = format!(
        "{kind} lr {}{}",
        format_lr(lr),
        if args.lr.is_none() { " (default)" } else { "" }
    );
    if let p @ Parametrization::MuP { .. } = args.net.parametrization()? {
        described += &format!(", {p} per-layer rates");
    }
    if let Some(spec) = &args.schedule {
        builder = builder.schedule(parse_schedule(spec, lr)?);
        described += &format!(", schedule {spec}");
    }
    if let Some(max) = args.clip_grad_norm {
        builder = builder.clip_grad_norm(max);
        described += &format!(", gradient norm clipped at {max}");
    }
    if let Some(every) = &args.sharpness_every {
        let every = match every.as_str() {
            "epoch" => None,
            n => Some(n.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                Error::Usage(format!(
                    "--sharpness-every {n:?}: expected \"epoch\" or a number of steps >= 1"
                ))
            })?),
        };
        builder = builder.sharpness(SharpnessSchedule {
            every,
            batch: args.sharpness_batch,
            estimator: SharpnessConfig {
                seed: args.net.seed,
                ..SharpnessConfig::default()
            },
        });
    }
    if let Some(patience) = args.early_stop {
        builder = builder.callback(EarlyStopping::new(patience));
        described += &format!(", early stop after {patience} epochs without progress");
    }
    if let Some(path) = &args.metrics {
        // A resumed run continues the first run's log from its checkpoint's step.
        let log = match &checkpoint {
            Some(c) => MetricsLog::resume(path, c.state.position.step, c.state.position.epoch)?,
            None => MetricsLog::create(path)?,
        };
        builder = builder.callback(log);
    }
    let mut report = None;
    if !args.no_monitor {
        let config = MonitorConfig {
            num_classes: u32::try_from(splits.train.classes()).ok(),
            // Window rules every 8 steps keep the monitor under 1% of a step (monitor_share bench).
            eval_every: 8,
            // A decaying schedule's own plateau is not a reason to decay the rate.
            schedule_active: args.schedule.is_some(),
            step_size: crate::args::monitor_step_size(kind),
            // Several epochs: plateaus are judged on the epoch means, as ReduceLROnPlateau does.
            epochs_judge_plateau: args.epochs > 1,
            ..MonitorConfig::default()
        };
        let monitor = RunMonitor::new(config, args.auto_lr.then(AutoLr::default))?;
        report = Some(monitor.report_handle());
        let bars = ProgressBars::new().with_state(monitor.state_handle());
        builder = builder
            .callback(bars)
            .callback(monitor)
            .track_grad_norm(true)
            .track_update_ratio(50);
        if args.auto_lr {
            described += ", --auto-lr";
        }
    } else {
        builder = builder.callback(ProgressBars::new());
    }
    let model_name = args.net.model_name(&arch)?;
    if let Some(dir) = &args.checkpoint_dir {
        let config = CheckpointConfig {
            every_steps: args.checkpoint_every,
            keep_last: args.keep_checkpoints,
            run: serde_json::to_value(args).unwrap_or_default(),
            dataset: Some(name.to_string()),
            existing: if args.resume.is_some() {
                ExistingRun::Resume
            } else if args.overwrite {
                ExistingRun::Overwrite
            } else {
                ExistingRun::Refuse
            },
            ..CheckpointConfig::new(dir, model_name.as_str())
        };
        builder = builder.checkpoints(Checkpointer::new(config, &varmap)?);
    }
    let interrupt = Interrupt::on_signals()
        .map_err(|e| Error::Usage(format!("cannot install the SIGINT/SIGTERM handlers: {e}")))?;
    let mut trainer = builder.interrupt(interrupt).build()?;
    if let Some(checkpoint) = &checkpoint {
        checkpoint.expect_model(&model_name)?;
        trainer.resume(checkpoint, &varmap, optimizer.as_mut())?;
        say_schedule_change(checkpoint, args.schedule.as_deref(), lr);
        described += &format!(", resumed from {}", checkpoint.dir.display());
    }
    tracing::info!(
        "training {arch} ({activation}) on {name}: {} train / {} validation / {} test, {} epochs, {described}, batch {}",
        train_set.len(),
        val_set.len(),
        splits.test.len(),
        args.epochs,
        args.batch_size
    );
    let held_out = (!val_set.is_empty()).then_some(&val_set as &dyn Examples);
    let history = trainer.fit_with(&model, optimizer.as_mut(), &train_set, held_out)?;
    let test_reads_during_training = test_set.reads();
    let test = Some(evaluate(&model, &test_set, &device, 1000)?);
    let monitor = report.map(|r| r.lock().map(|r| r.clone()).unwrap_or_default());
    if let (Some(path), Some(report)) = (&args.report, &monitor) {
        report.write_json(path)?;
    }
    Ok(RunSummary {
        loaded_from: source,
        arch,
        optimizer: described,
        history,
        load_seconds,
        monitor,
        checkpoint_dir: args.checkpoint_dir.clone(),
        val_len: val_set.len(),
        test,
        test_reads_during_training,
    })
}

/// Says how a resumed run's schedule differs from the checkpointed run's. An explicit new
/// `--schedule` is a branch (a WSD cooldown for another budget): said as information when
/// it continues at the rate the old schedule had at the resumed step, with a warning when
/// the rate jumps there. Dropping the schedule is warned about.
fn say_schedule_change(checkpoint: &Checkpoint, new: Option<&str>, lr: f64) {
    let saved = checkpoint.state.run.get("schedule").and_then(|s| s.as_str());
    if saved == new {
        return;
    }
    let position = &checkpoint.state.position;
    let Some(spec) = new else {
        tracing::warn!(
            "resuming without a schedule (the checkpointed run used {}): the rate is not scheduled after step {}",
            saved.unwrap_or("none"),
            position.step
        );
        return;
    };
    // Both parse: the new one was checked before loading, the old one was checked by its run.
    let rate_at = |spec: &str, base: f64| {
        parse_schedule(spec, base).ok().map(|s| {
            let t = match s.unit {
                ScheduleUnit::Step => position.step,
                ScheduleUnit::Epoch => position.epoch as u64,
            };
            s.lr(t)
        })
    };
    let now = rate_at(spec, lr);
    let before = saved.and_then(|old| rate_at(old, checkpoint.state.base_lr.unwrap_or(lr)));
    let shown = |r: Option<f64>| r.map_or_else(|| "the held rate".to_string(), format_lr);
    match (before, now) {
        (Some(b), Some(n)) if b == n => tracing::info!(
            "branching after step {}: schedule {spec} replaces {} and continues at lr {}",
            position.step,
            saved.unwrap_or("none"),
            format_lr(n)
        ),
        _ => tracing::warn!(
            "resuming with schedule {spec} (the checkpointed run used {}): after step {} the rate is {} where \
             the old schedule had {}",
            saved.unwrap_or("none"),
            position.step,
            shown(now),
            shown(before)
        ),
    }
}

/// A data set that counts how often it is read, so a run can show that its test set was
/// kept out of every decision.
struct Counted<'a> {
    data: &'a dyn Examples,
    reads: std::sync::atomic::AtomicUsize,
}

impl<'a> Counted<'a> {
    fn new(data: &'a dyn Examples) -> Self {
        Self {
            data,
            reads: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    fn reads(&self) -> usize {
        self.reads.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn read(&self) {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Examples for Counted<'_> {
    fn len(&self) -> usize {
        self.data.len()
    }

    fn to_tensors(&self, device: &Device) -> stride_data::Result<(candle_core::Tensor, candle_core::Tensor)> {
        self.read();
        self.data.to_tensors(device)
    }

    fn gather_tensors(
        &self,
        indices: &[u32],
        device: &Device,
    ) -> stride_data::Result<(candle_core::Tensor, candle_core::Tensor)> {
        self.read();
        self.data.gather_tensors(indices, device)
    }
}

/// Refuses output paths that cannot be written, or that name the same file twice, before
/// any data is loaded: a typo must not cost a whole run.
fn check_outputs(args: &TrainArgs) -> Result<(), Error> {
    let files: Vec<(&str, &Path)> = [("--metrics", &args.metrics), ("--report", &args.report)]
        .into_iter()
        .filter_map(|(flag, p)| p.as_deref().map(|p| (flag, p)))
        .collect();
    for &(flag, path) in &files {
        check_writable(flag, path)?;
    }
    let mut seen: Vec<(&str, PathBuf)> = Vec::new();
    let dirs = args.checkpoint_dir.as_deref().map(|d| ("--checkpoint-dir", d));
    for (flag, path) in files.iter().copied().chain(dirs) {
        let key = absolute(path);
        if let Some((other, _)) = seen.iter().find(|(_, k)| *k == key) {
            return Err(Error::Usage(format!(
                "{flag} {} is also given as {other}: each output needs its own path",
                path.display()
            )));
        }
        seen.push((flag, key));
    }
    Ok(())
}

/// The path made absolute against the working directory, with its parent resolved when it
/// exists (so `./r.json` and `r.json` are one file).
fn absolute(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match (parent.canonicalize(), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    }
}

/// A file path this process can create or append to (a probe that leaves no new file behind).
fn check_writable(flag: &str, path: &Path) -> Result<(), Error> {
    let shown = path.display();
    if path.is_dir() {
        return Err(Error::Usage(format!(
            "{flag} {shown}: is a directory; expected a file path"
        )));
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(Error::Usage(format!(
            "{flag} {shown}: directory {} does not exist; create it first",
            parent.display()
        )));
    }
    let existed = path.exists();
    match std::fs::OpenOptions::new().append(true).create(true).open(path) {
        Ok(_) => {
            if !existed {
                let _ = std::fs::remove_file(path);
            }
            Ok(())
        }
        Err(e) => Err(Error::Usage(format!("{flag} {shown}: cannot be written: {e}"))),
    }
}
