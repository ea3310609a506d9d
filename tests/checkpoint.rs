//! Checkpoints: exact resume, survival of SIGKILL mid-write, and named errors for bad ones.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use stride::monitor::MonitorConfig;
use stride::optim::schedule::parse_schedule;
use stride::optim::{Optimizer, OptimizerKind};
use stride::prelude::*;
use stride_train::checkpoint::{LATEST, LOCK_FILE, MODEL_FILE, STATE_FILE};
use stride_train::{
    Checkpoint, CheckpointConfig, CheckpointProblem, Checkpointer, ExistingRun, RunMonitor, RunReport, TrainError,
};

const MODEL: &str = "mlp 784-32-10 relu";

fn sample() -> Splits {
    Resolver::local().load(DatasetName::Mnist).unwrap().splits
}

/// A fresh model and VarMap; `init_seed` differs between runs to show the weights come from the checkpoint.
fn mlp(spec: &str, init_seed: u64) -> (Mlp, VarMap) {
    let varmap = VarMap::new();
    let model = Mlp::new(
        &spec.parse().unwrap(),
        Activation::Relu,
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )
    .unwrap();
    reset_parameters(&varmap, init_seed).unwrap();
    (model, varmap)
}

/// Everything a run is made of, built from scratch each time (a "fresh process" in objects).
struct Run {
    model: Network,
    varmap: VarMap,
    optimizer: Box<dyn Optimizer>,
    trainer: Trainer,
    report: std::sync::Arc<std::sync::Mutex<RunReport>>,
}

/// Adam with a per-step cosine schedule times a plateau rule, the run monitor (its state is
/// checkpointed) and a checkpoint every `every` steps.
fn run(epochs: usize, dir: &Path, every: Option<u64>, init_seed: u64) -> Run {
    run_keeping(epochs, dir, every, init_seed, 3)
}

fn run_keeping(epochs: usize, dir: &Path, every: Option<u64>, init_seed: u64, keep_last: usize) -> Run {
    let (model, varmap) = mlp("784-32-10", init_seed);
    run_model(Network::Mlp(model), varmap, MODEL, epochs, dir, every, keep_last)
}

/// The CNN (`lenet`), its checkpoint name, in the same run set-up.
fn run_cnn(epochs: usize, dir: &Path, init_seed: u64) -> Run {
    let arch = Architecture::from_args("cnn", "", "lenet", (1, 28, 28), 10).unwrap();
    let varmap = VarMap::new();
    let model = Network::seeded(&arch, Activation::Relu, &varmap, init_seed).unwrap();
    let name = Network::checkpoint_name(&arch, Activation::Relu);
    run_model(model, varmap, &name, epochs, dir, None, 3)
}

fn run_model(
    model: Network,
    varmap: VarMap,
    name: &str,
    epochs: usize,
    dir: &Path,
    every: Option<u64>,
    keep_last: usize,
) -> Run {
    let optimizer = OptimizerKind::Adam.build(varmap.all_vars(), 1e-3, None, None).unwrap();
    let monitor = RunMonitor::new(
        MonitorConfig {
            num_classes: Some(10),
            eval_every: 8,
            ..MonitorConfig::default()
        },
        None,
    )
    .unwrap();
    let report = monitor.report_handle();
    let config = CheckpointConfig {
        every_steps: every,
        keep_last,
        // The tests resume into the directories of earlier runs on purpose.
        existing: ExistingRun::Resume,
        ..CheckpointConfig::new(dir, name)
    };
    let trainer = Trainer::builder()
        .epochs(epochs)
        .batch_size(128)
        .seed(5)
        .schedule(parse_schedule("cosine(500) then plateau(patience=0, factor=0.5) per step", 1e-3).unwrap())
        .track_grad_norm(true)
        .track_update_ratio(10)
        .callback(monitor)
        .checkpoints(Checkpointer::new(config, &varmap).unwrap())
        .build()
        .unwrap();
    Run {
        model,
        varmap,
        optimizer,
        trainer,
        report,
    }
}

impl Run {
    fn fit(&mut self, data: &Splits) -> History {
        self.trainer
            .fit_with(&self.model, self.optimizer.as_mut(), &data.train, Some(&data.test))
            .unwrap()
    }

    fn weights(&self) -> Vec<(String, Vec<u32>)> {
        Self::bits_of(&self.varmap)
    }

    /// Every variable's f32 bits, sorted by name.
    fn bits_of(varmap: &VarMap) -> Vec<(String, Vec<u32>)> {
        let mut w: Vec<(String, Vec<u32>)> = varmap
            .data()
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                let values: Vec<f32> = v.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
                (k.clone(), values.into_iter().map(f32::to_bits).collect())
            })
            .collect();
        w.sort();
        w
    }
}

fn bits(losses: &[f64]) -> Vec<u64> {
    losses.iter().map(|l| l.to_bits()).collect()
}

#[test]
fn resume_after_one_epoch_and_mid_epoch_is_bit_identical() {
    let data = sample();
    let (straight_dir, split_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());

    // Two epochs straight, checkpointing every 40 steps and at both epoch ends.
    let mut straight = run_keeping(2, straight_dir.path(), Some(40), 1, 10);
    let all = straight.fit(&data);
    assert_eq!(all.step_losses.len(), 2 * 63);

    // One epoch, then fresh objects (other initial weights) resume from `latest` for the second.
    let mut first = run(1, split_dir.path(), None, 1);
    let part1 = first.fit(&data);
    let mut second = run(2, split_dir.path(), None, 99);
    let ckpt = Checkpoint::load(&split_dir.path().join(LATEST)).unwrap();
    assert_eq!((ckpt.state.position.epoch, ckpt.state.position.batch), (1, 0));
    second
        .trainer
        .resume(&ckpt, &second.varmap, second.optimizer.as_mut())
        .unwrap();
    let part2 = second.fit(&data);
    let joined: Vec<f64> = part1.step_losses.iter().chain(&part2.step_losses).copied().collect();
    assert_eq!(bits(&joined), bits(&all.step_losses), "per-step losses");
    assert_eq!(second.weights(), straight.weights(), "final weights");
    assert_eq!(part2.epochs[0].train_loss.to_bits(), all.epochs[1].train_loss.to_bits());
    assert_eq!(part2.epochs[0].eval, all.epochs[1].eval);
    assert_eq!(
        *second.report.lock().unwrap(),
        *straight.report.lock().unwrap(),
        "monitor report"
    );

    // Mid-epoch: the straight run's step-40 checkpoint, into fresh objects.
    let mut mid = run(2, straight_dir.path(), Some(40), 7);
    let ckpt = Checkpoint::load(&straight_dir.path().join("ckpt-s0000000040-e00001-b000040")).unwrap();
    mid.trainer.resume(&ckpt, &mid.varmap, mid.optimizer.as_mut()).unwrap();
    let rest = mid.fit(&data);
    assert_eq!(bits(&rest.step_losses), bits(&all.step_losses[40..]));
    assert_eq!(mid.weights(), straight.weights());
    assert_eq!(rest.epochs[0].train_loss.to_bits(), all.epochs[0].train_loss.to_bits());
    assert_eq!(*mid.report.lock().unwrap(), *straight.report.lock().unwrap());
}

#[test]
fn cnn_resume_after_one_epoch_is_bit_identical() {
    let data = sample();
    let (straight_dir, split_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut straight = run_cnn(2, straight_dir.path(), 1);
    let all = straight.fit(&data);
    let mut first = run_cnn(1, split_dir.path(), 1);
    let part1 = first.fit(&data);
    let mut second = run_cnn(2, split_dir.path(), 99);
    let ckpt = Checkpoint::load(&split_dir.path().join(LATEST)).unwrap();
    ckpt.expect_model("cnn 1x28x28 c8k5-mp2-c16k5-mp2 10 relu").unwrap();
    assert!(
        ckpt.expect_model(MODEL).is_err(),
        "an MLP checkpoint name matched the CNN's"
    );
    second
        .trainer
        .resume(&ckpt, &second.varmap, second.optimizer.as_mut())
        .unwrap();
    let part2 = second.fit(&data);
    let joined: Vec<f64> = part1.step_losses.iter().chain(&part2.step_losses).copied().collect();
    assert_eq!(bits(&joined), bits(&all.step_losses), "per-step losses");
    assert_eq!(second.weights(), straight.weights(), "final weights");
    assert_eq!(
        *second.report.lock().unwrap(),
        *straight.report.lock().unwrap(),
        "monitor report"
    );
}

#[test]
fn keeps_the_last_n_and_the_best() {
    let data = sample();
    let dir = tempfile::tempdir().unwrap();
    let mut r = run(2, dir.path(), Some(20), 1);
    r.fit(&data);
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        // The run's lock: the trainer still owns the directory.
        .filter(|n| n != LOCK_FILE)
        .collect();
    names.sort();
    // Saved at 20, 40, 60, 63 (epoch 1 end), 80, 100, 120, 126 (epoch 2 end); 3 kept besides best.
    let latest = "ckpt-s0000000126-e00003-b000000";
    let best = std::fs::read_to_string(dir.path().join("best")).unwrap();
    assert_eq!(std::fs::read_to_string(dir.path().join(LATEST)).unwrap().trim(), latest);
    assert_eq!(best.trim(), latest, "the second epoch has the lower test loss");
    assert_eq!(
        names,
        [
            "best",
            "ckpt-s0000000100-e00002-b000037",
            "ckpt-s0000000120-e00002-b000057",
            latest,
            "latest"
        ]
    );
}

/// The checkpoint problem of an error, or a panic naming the error.
fn problem(e: TrainError) -> (std::path::PathBuf, CheckpointProblem) {
    match e {
        TrainError::Checkpoint { path, problem } => (path, problem),
        other => panic!("expected a checkpoint error, got {other}"),
    }
}

/// Copies the checkpoint `latest` names into a fresh directory, to damage it there.
fn copy_latest(from: &Path, to: &Path) -> std::path::PathBuf {
    let src = Checkpoint::resolve(&from.join(LATEST)).unwrap();
    let dst = to.join("ckpt");
    std::fs::create_dir(&dst).unwrap();
    for f in std::fs::read_dir(&src).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), dst.join(f.file_name())).unwrap();
    }
    dst
}

/// Rewrites `model.safetensors` through `edit` and records its new size in the manifest.
fn rewrite_model(dir: &Path, edit: impl FnOnce(&mut std::collections::HashMap<String, Tensor>)) {
    let path = dir.join(MODEL_FILE);
    let mut tensors = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    edit(&mut tensors);
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let state_path = dir.join(STATE_FILE);
    let mut state: serde_json::Value = serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    state["model_bytes"] = std::fs::metadata(&path).unwrap().len().into();
    // As a checkpoint of a build without checksums: the structural checks are what is tested.
    state["model_crc32"] = serde_json::Value::Null;
    std::fs::write(&state_path, serde_json::to_vec(&state).unwrap()).unwrap();
}

#[test]
fn bad_checkpoints_are_named_errors() {
    let data = sample();
    let good = tempfile::tempdir().unwrap();
    run(1, good.path(), None, 1).fit(&data);
    let scratch = tempfile::tempdir().unwrap();
    let fresh = |name: &str| {
        let d = scratch.path().join(name);
        std::fs::create_dir(&d).unwrap();
        copy_latest(good.path(), &d)
    };

    // Truncated: the last 100 bytes of the weights are gone.
    let d = fresh("truncated");
    let model = d.join(MODEL_FILE);
    let len = std::fs::metadata(&model).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&model)
        .unwrap()
        .set_len(len - 100)
        .unwrap();
    let (path, p) = problem(Checkpoint::load(&d).unwrap_err());
    assert_eq!(path, model);
    assert!(
        matches!(p, CheckpointProblem::Truncated { file: MODEL_FILE, expected, found } if expected == len && found == len - 100)
    );

    // Flipped bytes, size unchanged (bit rot, a bad copy): the checksum catches them.
    let d = fresh("flipped");
    let model = d.join(MODEL_FILE);
    let mut bytes = std::fs::read(&model).unwrap();
    let n = bytes.len();
    for b in &mut bytes[n - 400..n - 200] {
        *b ^= 0x5a;
    }
    std::fs::write(&model, &bytes).unwrap();
    let (path, p) = problem(Checkpoint::load(&d).unwrap_err());
    assert_eq!(path, model);
    assert!(matches!(p, CheckpointProblem::Checksum { file: MODEL_FILE, .. }), "{p}");

    // A missing tensor, with a manifest that still lists it.
    let d = fresh("missing");
    rewrite_model(&d, |t| {
        t.remove("fc1.bias");
    });
    let e = Checkpoint::load(&d).unwrap_err();
    assert!(e.to_string().contains("no tensor for variable fc1.bias"), "{e}");

    // A tensor of the wrong shape against the manifest.
    let d = fresh("shape");
    rewrite_model(&d, |t| {
        t.insert("fc1.bias".into(), Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap());
    });
    let (_, p) = problem(Checkpoint::load(&d).unwrap_err());
    assert!(
        matches!(p, CheckpointProblem::Shape { ref name, ref expected, ref found }
        if name == "fc1.bias" && expected == &[10] && found == &[3])
    );

    // NaN weights.
    let d = fresh("nan");
    rewrite_model(&d, |t| {
        t.insert("fc0.bias".into(), Tensor::new(&[f32::NAN; 32], &Device::Cpu).unwrap());
    });
    let (_, p) = problem(Checkpoint::load(&d).unwrap_err());
    assert!(matches!(p, CheckpointProblem::NonFinite { ref name } if name == "fc0.bias"));

    // A complete checkpoint, but of another model: by its description, and by its shapes.
    let ckpt = Checkpoint::load(&good.path().join(LATEST)).unwrap();
    let (_, p) = problem(ckpt.expect_model("mlp 784-64-10 relu").unwrap_err());
    assert!(matches!(p, CheckpointProblem::ModelMismatch { .. }));
    let (_, other) = mlp("784-64-10", 0);
    let e = ckpt.restore_weights(&other).unwrap_err();
    assert!(
        e.to_string().contains("tensor fc0.bias has shape [32], expected [64]"),
        "{e}"
    );
    let other_dir = tempfile::tempdir().unwrap();
    let (_, other_varmap) = mlp("784-64-10", 0);
    let mut other_opt = OptimizerKind::Adam
        .build(other_varmap.all_vars(), 1e-3, None, None)
        .unwrap();
    let mut other_trainer = Trainer::builder()
        .batch_size(128)
        .seed(5)
        .checkpoints(
            Checkpointer::new(
                CheckpointConfig::new(other_dir.path(), "mlp 784-64-10 relu"),
                &other_varmap,
            )
            .unwrap(),
        )
        .build()
        .unwrap();
    let (_, p) = problem(
        other_trainer
            .resume(&ckpt, &other_varmap, other_opt.as_mut())
            .unwrap_err(),
    );
    assert!(matches!(p, CheckpointProblem::ModelMismatch { ref expected, ref found }
        if expected == "mlp 784-64-10 relu" && found == MODEL));

    // A different seed would change the batches still to come.
    let mut r = run(2, other_dir.path(), None, 1);
    r.trainer = Trainer::builder().seed(6).batch_size(128).build().unwrap();
    let (_, p) = problem(r.trainer.resume(&ckpt, &r.varmap, r.optimizer.as_mut()).unwrap_err());
    assert!(matches!(p, CheckpointProblem::RunMismatch { name: "seed", .. }));

    // Unparseable state, a pointer that leaves the directory, nothing there at all.
    let d = fresh("garbage");
    std::fs::write(d.join(STATE_FILE), b"{\"format\": 1, \"model\": ").unwrap();
    let (_, p) = problem(Checkpoint::load(&d).unwrap_err());
    assert!(matches!(p, CheckpointProblem::Corrupt { file: STATE_FILE, .. }));
    let d = scratch.path().join("pointer");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join(LATEST), "../garbage/ckpt\n").unwrap();
    let (_, p) = problem(Checkpoint::load(&d).unwrap_err());
    assert!(matches!(p, CheckpointProblem::Corrupt { file: "pointer", .. }));
    let (path, p) = problem(Checkpoint::load(&scratch.path().join("nothing-here")).unwrap_err());
    assert!(matches!(p, CheckpointProblem::Missing { .. }), "{path:?}");
}

/// Environment variable that turns `crash_child_writer` into the child of the SIGKILL test.
const CHILD_ENV: &str = "STRIDE_CRASH_CHILD_DIR";

/// 64 tiny examples of 4x4 pixels in 3 classes: a checkpoint per step costs almost nothing.
fn tiny() -> Dataset {
    let images = (0..64 * 16).map(|i| ((i * 37) % 251) as u8).collect();
    let labels = (0..64).map(|i| (i % 3) as u8).collect();
    Dataset::new(images, labels, 4, 4, 3, Path::new("tiny")).unwrap()
}

#[test]
#[ignore = "the child process of checkpoints_survive_sigkill, which runs it"]
fn crash_child_writer() {
    let dir = std::env::var(CHILD_ENV).expect("run by checkpoints_survive_sigkill");
    let dir = Path::new(&dir);
    let (model, varmap) = mlp("16-8-3", 0);
    let mut optimizer = OptimizerKind::Sgd
        .build(varmap.all_vars(), 0.05, Some(0.9), None)
        .unwrap();
    let config = CheckpointConfig {
        every_steps: Some(1),
        keep_last: 2,
        existing: ExistingRun::Resume,
        ..CheckpointConfig::new(dir, "mlp 16-8-3 relu")
    };
    let mut trainer = Trainer::builder()
        .epochs(1_000_000)
        .batch_size(8)
        .checkpoints(Checkpointer::new(config, &varmap).unwrap())
        .build()
        .unwrap();
    // Each child continues from what the previous one left, as a restarted job would.
    if dir.join(LATEST).exists() {
        let ckpt = Checkpoint::load(dir).unwrap();
        trainer.resume(&ckpt, &varmap, optimizer.as_mut()).unwrap();
    }
    trainer.fit_with(&model, optimizer.as_mut(), &tiny(), None).unwrap();
}

#[test]
fn checkpoints_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let spawn = || {
        Command::new(&exe)
            .args([
                "--exact",
                "checkpoint::crash_child_writer",
                "--ignored",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let (mut kills, mut last_step) = (0, 0);
    let started = Instant::now();
    while kills < 24 {
        let mut child = spawn();
        if kills == 0 {
            // The first child must get a checkpoint written before there is anything to check.
            while !dir.path().join(LATEST).exists() {
                assert!(started.elapsed() < Duration::from_secs(60), "no checkpoint after 60 s");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(10 + rng % 90));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        let ckpt = Checkpoint::load(dir.path()).unwrap_or_else(|e| panic!("after kill {kills}: {e}"));
        let step = ckpt.state.position.step;
        assert!(
            step >= last_step,
            "after kill {kills}: latest went back from step {last_step} to {step}"
        );
        let (_, varmap) = mlp("16-8-3", 1);
        ckpt.restore_weights(&varmap).unwrap();
        last_step = step;
    }
    assert!(
        last_step > 8,
        "the children wrote only {last_step} steps in {kills} runs"
    );
}

#[test]
fn a_directory_belongs_to_one_run() {
    let data = sample();
    let dir = tempfile::tempdir().unwrap();
    run(1, dir.path(), None, 1).fit(&data);
    let (_, varmap) = mlp("784-32-10", 0);
    let config = |existing| CheckpointConfig {
        existing,
        ..CheckpointConfig::new(dir.path(), MODEL)
    };
    // A fresh run into it is refused, naming what is there.
    let e = Checkpointer::new(config(ExistingRun::Refuse), &varmap)
        .err()
        .expect("refused");
    let (path, p) = problem(e);
    assert_eq!(path, dir.path());
    assert!(
        matches!(p, CheckpointProblem::OtherRun { ref latest } if latest.starts_with("ckpt-")),
        "{p}"
    );
    // A live process holding the lock (pid 1 always exists) keeps others out.
    std::fs::write(dir.path().join(LOCK_FILE), "1\n").unwrap();
    let (_, p) = problem(
        Checkpointer::new(config(ExistingRun::Resume), &varmap)
            .err()
            .expect("locked"),
    );
    assert!(matches!(p, CheckpointProblem::Locked { pid: 1, .. }), "{p}");
    // A lock whose process is gone is stale and taken over.
    std::fs::write(dir.path().join(LOCK_FILE), "999999999\n").unwrap();
    let resumed = Checkpointer::new(config(ExistingRun::Resume), &varmap).unwrap();
    let owner = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
    assert_eq!(owner.trim(), std::process::id().to_string());
    drop(resumed);
    assert!(
        !dir.path().join(LOCK_FILE).exists(),
        "the lock outlived its checkpointer"
    );
    // --overwrite clears the old run: no checkpoint and no pointer of it survive.
    let _fresh = Checkpointer::new(config(ExistingRun::Overwrite), &varmap).unwrap();
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != LOCK_FILE)
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn resume_refuses_another_dataset_and_applies_a_changed_rate() {
    let data = sample();
    let dir = tempfile::tempdir().unwrap();
    let (model, varmap) = mlp("784-32-10", 0);
    let save = |dataset: &str, existing| CheckpointConfig {
        dataset: Some(dataset.into()),
        existing,
        ..CheckpointConfig::new(dir.path(), MODEL)
    };
    let mut sgd = OptimizerKind::Sgd.build(varmap.all_vars(), 0.1, None, None).unwrap();
    let mut first = Trainer::builder()
        .epochs(1)
        .checkpoints(Checkpointer::new(save("mnist", ExistingRun::Refuse), &varmap).unwrap())
        .build()
        .unwrap();
    first.fit_with(&model, sgd.as_mut(), &data.train, None).unwrap();
    drop(first);
    let ckpt = Checkpoint::load(&dir.path().join(LATEST)).unwrap();
    let (model, varmap) = mlp("784-32-10", 0);
    let mut other = Trainer::builder()
        .epochs(2)
        .checkpoints(Checkpointer::new(save("fashion-mnist", ExistingRun::Resume), &varmap).unwrap())
        .build()
        .unwrap();
    let mut sgd = OptimizerKind::Sgd.build(varmap.all_vars(), 0.5, None, None).unwrap();
    let (_, p) = problem(other.resume(&ckpt, &varmap, sgd.as_mut()).unwrap_err());
    assert!(
        matches!(p, CheckpointProblem::RunMismatch { name: "dataset", .. }),
        "{p}"
    );
    drop(other);
    // The same dataset at another rate: it trains at the rate it was asked for.
    let mut same = Trainer::builder()
        .epochs(2)
        .checkpoints(Checkpointer::new(save("mnist", ExistingRun::Resume), &varmap).unwrap())
        .build()
        .unwrap();
    same.resume(&ckpt, &varmap, sgd.as_mut()).unwrap();
    let history = same.fit_with(&model, sgd.as_mut(), &data.train, None).unwrap();
    assert!(
        history.step_lrs.iter().all(|&lr| lr == 0.5),
        "{:?}",
        &history.step_lrs[..3]
    );
}

/// Issue 15: the run monitor's part of a checkpoint is its bounded state, not a journal of
/// every step (about 175 B a step before), so `state.json` stops growing once the monitor's
/// 200-step window is full.
#[test]
fn state_json_does_not_grow_with_the_steps() {
    let data = sample();
    let dir = tempfile::tempdir().unwrap();
    let mut r = run_keeping(8, dir.path(), None, 0, 8);
    let history = r.fit(&data);
    let mut ckpts: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("ckpt-")))
        .collect();
    ckpts.sort();
    let sizes: Vec<u64> = ckpts
        .iter()
        .map(|c| std::fs::metadata(c.join(STATE_FILE)).unwrap().len())
        .collect();
    assert_eq!(sizes.len(), 8, "{ckpts:?}");
    let steps = history.step_losses.len();
    eprintln!("state.json after each of 8 epochs ({steps} steps): {sizes:?} B");
    // From epoch 4 (252 steps: the window is full) to epoch 8, twice the steps: the report's
    // timeline may still gain a change of state or two.
    assert!(sizes[7] < sizes[3] + sizes[3] / 10, "{sizes:?} B");
    assert!(sizes[7] < 60_000, "{sizes:?} B");
}

/// A Schedule-Free run (checkpointed at its average x) resumes bit-identically.
#[test]
fn schedule_free_resumes_bit_identically() {
    let data = sample();
    let kind: OptimizerKind = "sf-adamw".parse().unwrap();
    let run = |epochs: usize, dir: &Path, resume: bool, init_seed: u64| {
        let (model, varmap) = mlp("784-32-10", init_seed);
        let mut optimizer = kind.build(varmap.all_vars(), kind.default_lr(), None, None).unwrap();
        let config = CheckpointConfig {
            existing: ExistingRun::Resume,
            ..CheckpointConfig::new(dir, MODEL)
        };
        let mut trainer = Trainer::builder()
            .epochs(epochs)
            .seed(2)
            .checkpoints(Checkpointer::new(config, &varmap).unwrap())
            .build()
            .unwrap();
        if resume {
            let ckpt = Checkpoint::load(&dir.join(LATEST)).unwrap();
            trainer.resume(&ckpt, &varmap, optimizer.as_mut()).unwrap();
        }
        let h = trainer
            .fit_with(&model, optimizer.as_mut(), &data.train, Some(&data.test))
            .unwrap();
        let mut named: Vec<(String, Vec<u32>)> = varmap
            .data()
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                let values: Vec<f32> = v.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
                (k.clone(), values.into_iter().map(f32::to_bits).collect())
            })
            .collect();
        named.sort();
        (h, named)
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (straight, w_straight) = run(2, a.path(), false, 0);
    let (first, _) = run(1, b.path(), false, 0);
    let (second, w_resumed) = run(2, b.path(), true, 9);
    let joined: Vec<f64> = first.step_losses.iter().chain(&second.step_losses).copied().collect();
    assert_eq!(bits(&joined), bits(&straight.step_losses));
    assert_eq!(second.epochs[0].eval, straight.epochs[1].eval);
    assert_eq!(w_resumed, w_straight, "final weights");
}

/// Issue 17: one WSD run serves several budgets. A checkpoint from the stable phase of a
/// 3-epoch `wsd(189, warmup=10)` run, resumed with the 2-epoch `wsd(126, warmup=10)`, cools
/// down for the shorter budget and is bit-identical to a run trained with that schedule
/// from the start: the stable phase does not depend on `total`.
#[test]
fn a_wsd_cooldown_branches_from_a_stable_phase_checkpoint() {
    let data = sample();
    let lr = 0.05;
    let (long_spec, short_spec) = ("wsd(189, warmup=10)", "wsd(126, warmup=10)");
    let run = |spec: &str, epochs: usize, dir: &Path, every: Option<u64>, from: Option<&str>| {
        let (model, varmap) = mlp("784-32-10", if from.is_some() { 9 } else { 0 });
        let mut optimizer = OptimizerKind::Sgd
            .build(varmap.all_vars(), lr, Some(0.9), None)
            .unwrap();
        let config = CheckpointConfig {
            every_steps: every,
            keep_last: 10,
            existing: ExistingRun::Resume,
            ..CheckpointConfig::new(dir, MODEL)
        };
        let mut trainer = Trainer::builder()
            .epochs(epochs)
            .seed(3)
            .lr(lr)
            .schedule(parse_schedule(spec, lr).unwrap())
            .checkpoints(Checkpointer::new(config, &varmap).unwrap())
            .build()
            .unwrap();
        if let Some(name) = from {
            let ckpt = Checkpoint::load(&dir.join(name)).unwrap();
            trainer.resume(&ckpt, &varmap, optimizer.as_mut()).unwrap();
        }
        let h = trainer.fit_with(&model, optimizer.as_mut(), &data.train, None).unwrap();
        let w = Run::bits_of(&varmap);
        (h, w)
    };
    let (long_dir, short_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (long, _) = run(long_spec, 3, long_dir.path(), Some(20), None);
    let (short, w_short) = run(short_spec, 2, short_dir.path(), None, None);
    assert_eq!(long.step_lrs.len(), 189);
    // Step 60 is in the stable phase of both (cooldowns start at 151 and 101).
    assert_eq!(bits(&long.step_lrs[..101]), bits(&short.step_lrs[..101]));
    assert!(long.step_lrs[10..151].iter().all(|&r| r == lr));
    let (branch, w_branch) = run(
        short_spec,
        2,
        long_dir.path(),
        None,
        Some("ckpt-s0000000060-e00001-b000060"),
    );
    let schedule = parse_schedule(short_spec, lr).unwrap();
    let expected: Vec<f64> = (60..126).map(|t| schedule.lr(t)).collect();
    assert_eq!(bits(&branch.step_lrs), bits(&expected), "the branch's rates");
    assert!(
        branch.step_lrs[42] < lr && branch.step_lrs[65] < 0.1 * lr,
        "it cools down"
    );
    assert_eq!(bits(&branch.step_losses), bits(&short.step_losses[60..]));
    assert_eq!(w_branch, w_short, "final weights");
}
