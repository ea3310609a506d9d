//! Arbitrary-bytes property tests of the four parsers that read what users and files hand
//! us: the IDX reader, the loss-log parser of `diagnose`, the schedule grammar and the
//! checkpoint loader. Each mutates real seed inputs (bit flips, byte sets, truncation,
//! insertion, duplication, splicing) and asserts that nothing panics: bad input must be an
//! error. The same targets exist for cargo-fuzz in `fuzz/`.
//!
//! By default each runs a few hundred cases (CI); `STRIDE_FUZZ_SECS=600 cargo test --release
//! --test tests fuzz_props::<target> -- --nocapture` runs one for that long and prints the
//! number of executions. A failing input is written to `$TMPDIR/stride-fuzz-<target>.bin`;
//! keep it as a regression case below.

use std::path::Path;
use std::time::{Duration, Instant};

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use stride::diagnose::{diagnose_log, parse_loss_log, StreamChoice};
use stride::monitor::MonitorConfig;
use stride::optim::schedule::parse_schedule;
use stride::optim::OptimizerKind;
use stride::prelude::*;
use stride_data::idx::{gunzip_if_gz, parse_images, parse_labels};
use stride_train::checkpoint::{MODEL_FILE, OPTIMIZER_FILE, STATE_FILE};
use stride_train::{Checkpoint, CheckpointConfig, Checkpointer};

/// xorshift64*: the same garbage on every run, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[u8] = &[
    0, 1, 0x7f, 0x80, 0xff, b'-', b'.', b'e', b'9', b',', b'"', b'{', b'}', b'[', b']',
];

/// One to four random edits of `input`, sometimes spliced with `other`.
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(7) {
            0 if !v.is_empty() => {
                let i = at.min(v.len() - 1);
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = at.min(v.len() - 1);
                v[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => v.truncate(at),
            3 => {
                let n = rng.below(8) + 1;
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                v.splice(at..at, bytes);
            }
            4 if !v.is_empty() => {
                let start = rng.below(v.len());
                let end = (start + rng.below(64) + 1).min(v.len());
                let chunk = v[start..end].to_vec();
                v.splice(at..at, chunk);
            }
            5 if !other.is_empty() => {
                let cut = rng.below(other.len());
                v.truncate(at);
                v.extend_from_slice(&other[cut..]);
            }
            _ => {
                if let Some(i) = v.len().checked_sub(1).map(|l| at.min(l)) {
                    // Big-endian words are what IDX headers are made of.
                    let word = [0u32, 1, 0xffff_ffff, 0x8000_0000, 0x0000_0803, 0x0000_0801][rng.below(6)];
                    let bytes = word.to_be_bytes();
                    let end = (i + 4).min(v.len());
                    v[i..end].copy_from_slice(&bytes[..end - i]);
                }
            }
        }
    }
    v
}

/// Runs `target` on the seeds and their mutations for `STRIDE_FUZZ_SECS` seconds, or `cases` cases.
fn fuzz(name: &str, seeds: &[Vec<u8>], cases: u64, target: impl Fn(&[u8])) {
    let budget = std::env::var("STRIDE_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs);
    let mut rng = Rng(0x5eed ^ name.len() as u64);
    let started = Instant::now();
    let mut corpus: Vec<Vec<u8>> = seeds.to_vec();
    let mut runs = 0u64;
    while budget.map_or(runs < cases, |b| started.elapsed() < b) {
        let base = &corpus[rng.below(corpus.len())];
        let other = &corpus[rng.below(corpus.len())];
        let input = mutate(&mut rng, base, other);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target(&input)));
        if outcome.is_err() {
            let path = std::env::temp_dir().join(format!("stride-fuzz-{name}.bin"));
            let _ = std::fs::write(&path, &input);
            panic!("{name}: input {} panicked (written to {})", hex(&input), path.display());
        }
        // Keep some mutants as new bases so edits accumulate.
        if corpus.len() < 256 && rng.below(16) == 0 {
            corpus.push(input);
        }
        runs += 1;
    }
    println!(
        "{name}: {runs} executions in {:.0} s, no panic",
        started.elapsed().as_secs_f64()
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().take(256).map(|b| format!("{b:02x}")).collect()
}

fn idx_target(data: &[u8]) {
    let origin = Path::new("fuzz-input");
    if let Ok(bytes) = gunzip_if_gz(origin, data.to_vec()) {
        if let Ok(images) = parse_images(origin, &bytes) {
            assert_eq!(images.pixels.len(), images.count * images.rows * images.cols);
        }
        let _ = parse_labels(origin, &bytes);
    }
}

#[test]
fn idx_reader() {
    let mut images = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 3];
    images.extend(0..18u8);
    let labels = vec![0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3];
    let mut gz = Vec::new();
    {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(&mut gz, flate2::Compression::default());
        enc.write_all(&images).unwrap();
        enc.finish().unwrap();
    }
    fuzz("idx", &[images, labels, gz], 3000, idx_target);
}

fn loss_log_target(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(log) = parse_loss_log(Path::new("fuzz-input"), text, 0.1) {
        for stream in [StreamChoice::Auto, StreamChoice::Epoch] {
            let config = MonitorConfig {
                num_classes: Some(10),
                ..MonitorConfig::default()
            };
            let _ = diagnose_log(log.clone(), config, stream);
        }
    }
}

#[test]
fn loss_log_parser() {
    let seeds = [
        "0.8\n1.5\n3.2\n8.7\nNaN\n",
        "kind,epoch,step,loss,lr,test_loss\nstep,0,1,2.3,0.1,\nstep,0,2,2.1,0.1,\nepoch,0,,2.2,0.1,1.9\n",
        "{\"kind\":\"step\",\"step\":1,\"loss\":2.3,\"lr\":0.1}\n{\"kind\":\"epoch\",\"epoch\":0,\"loss\":2.0,\"test_loss\":1.8}\n",
        "epoch,loss,val_loss\n0,2.3,2.2\n1,1.1,1.3\n2,0.9,1.4\n",
    ];
    let seeds: Vec<Vec<u8>> = seeds.iter().map(|s| s.as_bytes().to_vec()).collect();
    fuzz("loss_log", &seeds, 1000, loss_log_target);
}

fn schedule_target(data: &[u8]) {
    let Ok(spec) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(mut s) = parse_schedule(spec, 0.1) {
        for t in [0, 1, 7, 12_345, u64::MAX / 2, u64::MAX] {
            let _ = s.lr(t);
            let _ = s.momentum(t);
            s.observe_metric(t, 1.0 / (t as f64 + 1.0));
        }
    }
}

#[test]
fn schedule_grammar() {
    let seeds = [
        "warmup(500, start=0.01) * exp(gamma=0.9995)",
        "constant for 1000 then cosine(9000)",
        "multistep(gamma=0.1, at=[30, 80]) per epoch",
        "warmup(5) then plateau(patience=2, factor=0.5)",
        "onecycle(total=5000, max=0.1, anneal=linear, three_phase=true)",
        "cyclic(base=1e-3, max=0.1, up=2000, mode=triangular2) for 10 then restarts(t0=100, mult=2)",
        "poly(total=1000, power=2) then invtime(k=1e-3)",
    ];
    let seeds: Vec<Vec<u8>> = seeds.iter().map(|s| s.as_bytes().to_vec()).collect();
    fuzz("schedule", &seeds, 3000, schedule_target);
}

/// The files of a real checkpoint of `mlp 16-8-3 relu` (SGD with momentum, mid-epoch).
fn real_checkpoint() -> [Vec<u8>; 3] {
    let dir = tempfile::tempdir().unwrap();
    let varmap = VarMap::new();
    let model = Mlp::new(
        &"16-8-3".parse().unwrap(),
        Activation::Relu,
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )
    .unwrap();
    let mut opt = OptimizerKind::Sgd
        .build(varmap.all_vars(), 0.05, Some(0.9), None)
        .unwrap();
    let images = (0..64 * 16).map(|i| ((i * 37) % 251) as u8).collect();
    let labels = (0..64).map(|i| (i % 3) as u8).collect();
    let data = Dataset::new(images, labels, 4, 4, 3, Path::new("tiny")).unwrap();
    let config = CheckpointConfig {
        every_steps: Some(3),
        ..CheckpointConfig::new(dir.path(), "mlp 16-8-3 relu")
    };
    Trainer::builder()
        .epochs(1)
        .batch_size(8)
        .checkpoints(Checkpointer::new(config, &varmap).unwrap())
        .build()
        .unwrap()
        .fit_with(&model, opt.as_mut(), &data, None)
        .unwrap();
    let ckpt = Checkpoint::resolve(dir.path()).unwrap();
    [STATE_FILE, MODEL_FILE, OPTIMIZER_FILE].map(|f| std::fs::read(ckpt.join(f)).unwrap())
}

#[test]
fn checkpoint_loader() {
    let files = real_checkpoint();
    let varmap = VarMap::new();
    let _model = Mlp::new(
        &"16-8-3".parse().unwrap(),
        Activation::Relu,
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )
    .unwrap();
    // The input picks which file to damage; the other two stay real so the loader gets deep.
    let seeds: Vec<Vec<u8>> = (0..3u8)
        .map(|which| {
            let mut v = vec![which];
            v.extend_from_slice(&files[usize::from(which)]);
            v
        })
        .collect();
    fuzz("checkpoint", &seeds, 600, |data| {
        let Some((&which, damaged)) = data.split_first() else {
            return;
        };
        let mut parts = [files[0].as_slice(), files[1].as_slice(), files[2].as_slice()];
        parts[usize::from(which % 3)] = damaged;
        let Ok(ckpt) = Checkpoint::from_bytes(Path::new("fuzz-ckpt"), parts[0], parts[1], parts[2]) else {
            return;
        };
        if ckpt.restore_weights(&varmap).is_ok() {
            let mut opt = OptimizerKind::Sgd
                .build(varmap.all_vars(), 0.05, Some(0.9), None)
                .unwrap();
            let _ = ckpt.restore_optimizer(&varmap, opt.as_mut());
        }
    });
}
