//! REAL_RUNS.md, "Public logs": `stride diagnose` on 104 training logs that people outside this
//! project committed to public repositories (Hugging Face Trainer, Lightning, Keras, YOLO,
//! nanoGPT, llm.c-style, Megatron, PyTorch examples and plain scripts), each read from its file
//! exactly as committed (gzipped here) and judged without `--lr` or `--classes`, as a new user
//! would run it. The labels in `fixtures/public_logs/sources.csv` were written by a rule from
//! the numbers alone (the rule is in REAL_RUNS.md) before any verdict was looked at; UNCLEAR
//! logs are read and judged but not scored. The `held-out` batch (28 logs) was collected after
//! the rules had been changed for the first batch, `held-out-2` (22) after that, and each was
//! first judged as it came.
//!
//! `cargo test -p stride-monitor --test tests public_logs -- --nocapture` prints the table.

use std::io::{BufReader, Read};

use stride_monitor::{diagnose_loss_log, read_log, split_cells, LogOptions, ReadOptions, Reason, State};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/public_logs");

/// Whether a final verdict is acceptable for a label (the sets of the corpus: a diverged run
/// is diverging or exploded; a healthy one healthy or on a plateau; an overfit one has the
/// overfitting finding).
fn acceptable(label: &str, state: State, overfit: bool) -> Option<bool> {
    Some(match label {
        "HEALTHY" => matches!(state, State::Healthy | State::Plateau),
        "DIVERGING" | "EXPLODED" => matches!(state, State::Diverging | State::Exploded),
        "OSCILLATING" => matches!(
            state,
            State::Oscillating | State::Diverging | State::Exploded | State::Plateau
        ),
        "OVERFIT" => overfit,
        _ => return None,
    })
}

#[test]
fn public_logs_are_read_and_judged_as_labelled() {
    let sources = std::fs::read_to_string(format!("{DIR}/sources.csv")).unwrap();
    let (mut ok, mut scored, mut rows) = (0, 0, Vec::new());
    let mut by_batch: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    let mut diverged_healthy = Vec::new();
    for line in sources.lines().skip(1) {
        let c = split_cells(line, b',');
        let (file, repo, label) = (&c[0], &c[1], c[7].split_whitespace().next().unwrap_or(""));
        let gz = std::fs::File::open(format!("{DIR}/{file}")).unwrap();
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(gz).read_to_end(&mut text).unwrap();
        let log = read_log(BufReader::new(text.as_slice()), file, &ReadOptions::default())
            .unwrap_or_else(|e| panic!("{file} ({repo}) is not read: {e}"));
        let d = diagnose_loss_log(&log, &LogOptions::default()).unwrap();
        let v = &d.verdict;
        let overfit = v.overfitting_since.is_some() || v.reason == Reason::Overfit;
        let good = acceptable(label, v.state, overfit);
        if let Some(g) = good {
            scored += 1;
            ok += usize::from(g);
            let b = by_batch.entry(c[9].clone()).or_default();
            b.0 += usize::from(g);
            b.1 += 1;
        }
        if matches!(label, "DIVERGING" | "EXPLODED") && v.state == State::Healthy {
            diverged_healthy.push(file.clone());
        }
        rows.push(format!(
            "| {file} | {} | {label} | {} ({}) | {} |",
            c[4],
            v.state,
            v.reason.code(),
            match good {
                Some(true) => "yes",
                Some(false) => "no",
                None => "-",
            }
        ));
    }
    println!("| log | framework | label | verdict | acceptable |\n|---|---|---|---|---|");
    for r in &rows {
        println!("{r}");
    }
    println!(
        "\npublic logs: {ok}/{scored} = {:.1} % acceptable ({} unscored)",
        100.0 * ok as f64 / scored as f64,
        rows.len() - scored
    );
    for (b, (k, m)) in &by_batch {
        println!("{b}: {k}/{m} = {:.1} %", 100.0 * *k as f64 / *m as f64);
    }
    assert_eq!(rows.len(), 104, "every public log is read");
    assert!(
        diverged_healthy.is_empty(),
        "diverged runs called healthy: {diverged_healthy:?}"
    );
    // 87/96 when this test was written (first batch 44/49, held-out 23/26, held-out-2
    // 20/21); 83 leaves room for a rule change that trades one for another, not for a drift.
    assert!(ok >= 83, "{ok}/{scored} public logs acceptable");
}
