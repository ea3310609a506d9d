//! What a new user meets first, run as a user runs it: the `stride` binary and the examples as
//! child processes. A copied binary trains on the embedded sample from an empty directory; logs
//! written to a file carry no colour codes; every example answers `--help` without training;
//! every reason code of the monitor is explained in `docs/monitor.md`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use stride_data::idx::{write_images, write_labels, IdxImages};

/// The facade crate's description, which an example's `--help` must not show in its place.
const FACADE_ABOUT: &str = "Train neural networks on candle with the learning rate in view.";

fn stride_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_stride"))
}

/// A `stride` command that finds no data but what it is given or has embedded: an empty
/// working directory, no data directory, an empty hub cache read offline, no repository copy.
fn hermetic(bin: &Path, scratch: &Path) -> Command {
    let work = scratch.join("work");
    let empty = scratch.join("empty");
    for d in [&work, &empty] {
        std::fs::create_dir_all(d).unwrap();
    }
    let mut cmd = Command::new(bin);
    cmd.current_dir(&work)
        .env_remove("STRIDE_DATA_DIR")
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HOME", &empty)
        .env("HOME", &empty)
        .env(stride_data::REPO_DATASETS_ENV, &empty)
        .stdin(Stdio::null());
    cmd
}

/// Runs `cmd` to completion, killing it after `limit` (a `--help` that starts training hangs).
fn run_within(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{cmd:?} still running after {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_copied_binary_trains_on_the_embedded_sample_from_an_empty_directory() {
    let scratch = tempfile::tempdir().unwrap();
    let bin_dir = scratch.path().join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let copy = bin_dir.join("stride");
    std::fs::copy(stride_bin(), &copy).unwrap();
    // The bytes are in the binary: its smallest file, the 74-byte gzip of the training labels.
    let labels = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/stride-data/mnist-sample/train-labels-idx1-ubyte.gz"),
    )
    .unwrap();
    let binary = std::fs::read(&copy).unwrap();
    assert!(
        binary.windows(labels.len()).any(|w| w == labels.as_slice()),
        "the sample's label file is not inside the binary"
    );

    let out = run_within(
        hermetic(&copy, scratch.path()).args(["train", "--epochs", "1"]),
        Duration::from_secs(600),
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "exit {:?}\nstderr:\n{stderr}", out.status);
    let label = "embedded MNIST sample (8,000 train / 2,000 test digits)";
    assert!(
        stderr.contains(&format!("source={label}")),
        "the log does not name the embedded sample:\n{stderr}"
    );
    assert!(stdout.contains(&format!("data: {label}")), "{stdout}");
    assert!(
        !stderr.contains("mnist-sample") && !stdout.contains("mnist-sample"),
        "a build-tree path leaked into the output:\n{stderr}\n{stdout}"
    );
    assert!(
        stdout.contains("after 1 epoch"),
        "no final line for one epoch:\n{stdout}"
    );
}

/// `n` 28x28 images with cycling labels, as gzip IDX files in `dir` (a quick `--data-dir`).
fn write_tiny_dataset(dir: &Path, train: usize, test: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for (stem, n) in [("train", train), ("t10k", test)] {
        let pixels = (0..n * 784).map(|i| ((i * 31) % 251) as u8).collect();
        let images = IdxImages {
            count: n,
            rows: 28,
            cols: 28,
            pixels,
        };
        write_images(&dir.join(format!("{stem}-images-idx3-ubyte.gz")), &images, true).unwrap();
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        write_labels(&dir.join(format!("{stem}-labels-idx1-ubyte.gz")), &labels, true).unwrap();
    }
}

/// `stride train` for one epoch on a tiny dataset, stderr to a file; returns the file's bytes.
fn train_stderr_to_file(extra_env: &[(&str, &str)]) -> Vec<u8> {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    write_tiny_dataset(&data, 512, 128);
    let log = scratch.path().join("log.txt");
    let mut cmd = hermetic(&stride_bin(), scratch.path());
    cmd.args(["train", "--epochs", "1", "--data-dir"]).arg(&data);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let status = cmd
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .status()
        .unwrap();
    let bytes = std::fs::read(&log).unwrap();
    assert!(status.success(), "exit {status:?}\nstderr:\n{}", text(&bytes));
    bytes
}

fn assert_no_escape(bytes: &[u8], what: &str) {
    let log = text(bytes);
    // The log must have said something for its lack of colour to mean anything.
    assert!(log.contains("INFO") && log.contains("epoch 1/1"), "{what}: {log}");
    assert!(
        !bytes.windows(2).any(|w| w == b"\x1b["),
        "{what}: ANSI escape codes in a log written to a file:\n{}",
        log.escape_debug()
    );
}

#[test]
fn logs_written_to_a_file_carry_no_colour_codes() {
    assert_no_escape(&train_stderr_to_file(&[]), "stderr to a file");
    assert_no_escape(&train_stderr_to_file(&[("NO_COLOR", "1")]), "NO_COLOR=1");
    // A terminal that says it wants colour changes nothing when stderr is a file.
    assert_no_escape(
        &train_stderr_to_file(&[("TERM", "xterm-256color")]),
        "TERM=xterm-256color",
    );
}

/// SGR sequences (`ESC [ ... m`), the colour codes, apart from the cursor movements of the bars.
fn colour_codes(bytes: &[u8]) -> usize {
    let mut count = 0;
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == 0x1b && bytes[i + 1] == b'[' {
            let rest = &bytes[i + 2..];
            let end = rest.iter().position(|b| !(b.is_ascii_digit() || *b == b';'));
            if end.is_some_and(|e| rest[e] == b'm') {
                count += 1;
            }
        }
        i += 1;
    }
    count
}

/// `stride train` with stderr on a pseudo-terminal (util-linux `script`) and stdout in a file:
/// what the terminal saw. `None` where `script` is not installed.
fn train_on_a_terminal(env: &[(&str, &str)]) -> Option<Vec<u8>> {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("util-linux `script` is not installed: the terminal half of this test is skipped");
        return None;
    }
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    write_tiny_dataset(&data, 2048, 128);
    let inner = format!(
        "'{}' train --epochs 2 --batch-size 8 --data-dir '{}' > '{}'",
        stride_bin().display(),
        data.display(),
        scratch.path().join("stdout.txt").display()
    );
    let mut cmd = hermetic(Path::new("script"), scratch.path());
    cmd.args(["-qefc", &inner, "/dev/null"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run_within(&mut cmd, Duration::from_secs(300));
    assert!(out.status.success(), "{}", text(&out.stdout));
    let stdout = std::fs::read_to_string(scratch.path().join("stdout.txt")).unwrap();
    assert!(stdout.contains("epoch"), "the summary went missing: {stdout}");
    Some(out.stdout)
}

#[cfg(target_os = "linux")]
#[test]
fn on_a_terminal_colour_unless_no_color_or_a_dumb_term_and_bars_with_stdout_redirected() {
    let Some(coloured) = train_on_a_terminal(&[("TERM", "xterm-256color")]) else {
        return;
    };
    assert!(
        colour_codes(&coloured) > 0,
        "no colour on a terminal:\n{}",
        text(&coloured).escape_debug()
    );
    // The bars are on stderr although stdout is redirected (tqdm's and Lightning's convention).
    assert!(
        // The step bar's template: `step  {pos}/{len} [...] {rate} steps/s`.
        text(&coloured).contains("step  ") && text(&coloured).contains(" steps/s"),
        "no step bar on the terminal:\n{}",
        text(&coloured).escape_debug()
    );
    for env in [
        [("TERM", "xterm-256color"), ("NO_COLOR", "1")],
        [("TERM", "dumb"), ("NO_COLOR", "")],
    ] {
        let plain = train_on_a_terminal(&env).unwrap_or_default();
        assert_eq!(
            colour_codes(&plain),
            0,
            "{env:?}: colour codes on the terminal:\n{}",
            text(&plain).escape_debug()
        );
        assert!(text(&plain).contains("INFO"), "{env:?}: {}", text(&plain));
    }
}

/// Each example and a phrase its `--help` must contain: what it does, in its own words.
const EXAMPLES: [(&str, &str); 9] = [
    ("custom_callback", "Write your own observer of the training loop"),
    ("custom_cnn", "Your own CNN"),
    ("custom_model", "Plug your own network into the Trainer"),
    ("lr_finder", "The LR range test on an MLP"),
    ("lr_sweep", "An LR sweep"),
    ("mnist_mlp", "The main job: trains an MLP"),
    ("monitor_demo", "The run-health monitor on three rates"),
    ("schedules", "Compares learning-rate schedules"),
    ("stability_bound", "Does the stability limit 2/lambda separate"),
];

/// The example binaries next to the `stride` binary, (re)built first: `cargo test --test tests`
/// builds no example, and a binary left from an earlier build may predate the sources. When
/// they are fresh the build is a no-op of a second or two.
fn example_bins() -> Vec<(PathBuf, &'static str)> {
    let profile_dir = stride_bin().parent().unwrap().to_path_buf();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--examples", "-p", "stride"])
        .env("CARGO_TARGET_DIR", profile_dir.parent().unwrap());
    if profile_dir.ends_with("release") {
        build.arg("--release");
    }
    // What cargo sets for this test process is not the user's environment: build scripts
    // that track it (ring's reads CARGO_MANIFEST_DIR) would rebuild on every run, and again
    // in the next plain `cargo build`.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let set_for_tests = [
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_PATH",
            "CARGO_CRATE_NAME",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
            "CARGO_BIN_NAME",
        ];
        if key.starts_with("CARGO_PKG_") || set_for_tests.contains(&key.as_str()) {
            build.env_remove(&key);
        }
    }
    let status = build.status().unwrap();
    assert!(status.success(), "cargo build --examples failed: {status:?}");
    let dir = profile_dir.join("examples");
    EXAMPLES
        .iter()
        .map(|(name, phrase)| (dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX)), *phrase))
        .collect()
}

#[test]
fn every_example_answers_help_with_what_it_does_and_does_not_train() {
    let mut failures = Vec::new();
    for (bin, phrase) in example_bins() {
        let started = Instant::now();
        let out = run_within(
            hermetic(&bin, tempfile::tempdir().unwrap().path()).arg("--help"),
            Duration::from_secs(60),
        );
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        let name = bin.file_name().unwrap().to_string_lossy().into_owned();
        if !out.status.success() {
            failures.push(format!("{name} --help: exit {:?}\n{stderr}", out.status));
        } else if !stdout.contains(phrase) {
            failures.push(format!("{name} --help does not say {phrase:?}:\n{stdout}"));
        } else if stdout.contains(FACADE_ABOUT) {
            failures.push(format!("{name} --help shows the facade's description:\n{stdout}"));
        } else if !stderr.trim().is_empty() {
            failures.push(format!("{name} --help wrote to stderr (started work?):\n{stderr}"));
        } else if !stdout.contains("Usage:") {
            failures.push(format!("{name} --help has no usage line:\n{stdout}"));
        }
        assert!(started.elapsed() < Duration::from_secs(60));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The reason codes `Reason::code` returns, read from its source (`Reason` is
/// `#[non_exhaustive]` with no list of its values).
fn reason_codes() -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/stride-monitor/src/state.rs");
    let src = std::fs::read_to_string(&path).unwrap();
    let body_start = src
        .find("pub fn code(self)")
        .expect("Reason::code not found in state.rs");
    let body = &src[body_start..];
    let body = &body[..body.find("\n    }\n").expect("end of Reason::code")];
    let codes: BTreeSet<String> = body
        .lines()
        .filter_map(|l| l.split_once("=> \"").map(|(_, rest)| rest))
        .filter_map(|rest| rest.split_once('"').map(|(code, _)| code.to_string()))
        .collect();
    // As many codes as the enum has variants: a parse that misses some fails here.
    let enum_src = &src[src.find("pub enum Reason {").unwrap()..];
    let enum_src = &enum_src[..enum_src.find("\n}\n").unwrap()];
    let variants = enum_src
        .lines()
        .map(str::trim)
        .filter(|l| l.ends_with(',') && !l.starts_with("//") && !l.starts_with('#'))
        .count();
    assert_eq!(codes.len(), variants, "parsed codes {codes:?}");
    assert!(codes.contains("hard_4x") && codes.contains("flat_after_progress"));
    codes
}

fn monitor_doc() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/monitor.md")).unwrap()
}

#[test]
fn every_reason_code_is_explained_in_docs_monitor_md() {
    let doc = monitor_doc();
    let missing: Vec<String> = reason_codes()
        .into_iter()
        .filter(|c| !doc.contains(&format!("`{c}`")))
        .collect();
    assert!(missing.is_empty(), "docs/monitor.md does not explain {missing:?}");
    // Its table of reasons names no code the monitor does not have.
    let codes = reason_codes();
    let listed: Vec<&str> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`').map(|(c, _)| c))
        .collect();
    let unknown: Vec<&&str> = listed
        .iter()
        .filter(|c| !codes.contains(**c) && !STATE_NAMES.contains(*c))
        .collect();
    assert!(unknown.is_empty(), "docs/monitor.md lists unknown codes {unknown:?}");
    for state in STATE_NAMES {
        assert!(
            doc.contains(&format!("`{state}`")),
            "docs/monitor.md does not explain {state}"
        );
    }
}

/// The states as the monitor prints them (`State`'s `Display`), checked against the crate below.
const STATE_NAMES: [&str; 7] = [
    "not enough data",
    "healthy",
    "slow",
    "plateau",
    "oscillating",
    "diverging",
    "exploded",
];

#[test]
fn the_state_names_are_the_monitors() {
    use stride::monitor::State::*;
    let shown: Vec<String> = [Insufficient, Healthy, Slow, Plateau, Oscillating, Diverging, Exploded]
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(shown, STATE_NAMES);
}

#[test]
fn the_readme_links_the_monitor_doc_and_cites_no_missing_file() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    assert!(
        readme.contains("(docs/monitor.md)"),
        "README does not link docs/monitor.md"
    );
    assert!(
        !readme.contains("MONITOR.md"),
        "README cites MONITOR.md, which does not exist"
    );
}
