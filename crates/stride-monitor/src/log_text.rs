//! Free-text logs: lines with `key value` pairs, as training scripts print them
//! (`step 100 | loss 2.345`, `Epoch 3/10 ... loss: 0.4123 - val_loss: 0.5`,
//! `iter 100: loss 2.345, time 30ms`, llm.c's `step 1/74: train loss 4.677`, a printed Python
//! dict `{'loss': 2.3, 'learning_rate': 5e-05, 'epoch': 0.1}`). A number's key is the one or two
//! words before it; Keras's `Epoch 3/10` line sets the epoch of the lines after it.

use std::io::BufRead;

use crate::error::MonitorError;
use crate::log_columns::{
    find_column, is_val_name, loss_like, norm, val_like, LOSS_NAMES, LR_NAMES, VAL_NAMES, X_NAMES,
};
use crate::log_reader::{LogFormat, LogPoint, LossLog, ReadOptions, ValPoint, XUnit};

/// The `(key, value)` pairs of one line. A number right after `/` (the `10` of `3/10`) has no key.
pub(crate) fn pairs(line: &str) -> Vec<(String, f64)> {
    let line = line.rsplit('\r').find(|s| !s.trim().is_empty()).unwrap_or(line);
    // Colours of rich/tqdm output (`\x1b[32mloss\x1b[0m: 2.3`) are not numbers.
    let plain;
    let line = if line.contains('\x1b') {
        plain = strip_ansi(line);
        plain.as_str()
    } else {
        line
    };
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut words: Vec<&str> = Vec::new();
    let mut i = 0;
    let mut after_slash = false;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'/' && next_alpha(b, i)) {
                i += 1;
            }
            let w = &line[start..i];
            let lw = w.to_ascii_lowercase();
            if matches!(lw.as_str(), "nan" | "inf" | "infinity") && !words.is_empty() {
                let v = if lw == "nan" { f64::NAN } else { f64::INFINITY };
                out.push((key(&words), v));
                words.clear();
            } else {
                words.push(w);
                if words.len() > 2 {
                    words.remove(0);
                }
            }
            after_slash = false;
            continue;
        }
        // A word in another script (`训练损失: 4.61 | 验证损失: 6.01`): the loss words of the
        // languages training logs are printed in are read as their English names.
        if c >= 0x80 {
            let start = i;
            let mut end = i;
            for ch in line[i..].chars() {
                if ch.is_alphabetic() || ch == '_' {
                    end += ch.len_utf8();
                } else {
                    break;
                }
            }
            if end == start {
                // Not a letter (a symbol, an emoji): skip the whole character.
                i += line[i..].chars().next().map_or(1, char::len_utf8);
                after_slash = false;
                continue;
            }
            words.push(translated(&line[start..end]));
            if words.len() > 2 {
                words.remove(0);
            }
            i = end;
            after_slash = false;
            continue;
        }
        let signed = (c == b'-' || c == b'+') && i + 1 < b.len() && (b[i + 1].is_ascii_digit() || b[i + 1] == b'.');
        if c.is_ascii_digit() || signed || (c == b'.' && i + 1 < b.len() && b[i + 1].is_ascii_digit()) {
            let start = i;
            i += 1;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
                let mut j = i + 1;
                if j < b.len() && (b[j] == b'-' || b[j] == b'+') {
                    j += 1;
                }
                if j < b.len() && b[j].is_ascii_digit() {
                    i = j;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            if let Ok(v) = line[start..i].parse::<f64>() {
                if !after_slash && !words.is_empty() {
                    out.push((key(&words), v));
                }
            }
            words.clear();
            after_slash = false;
            continue;
        }
        if c == b'/' {
            after_slash = true;
        } else if !c.is_ascii_whitespace() {
            after_slash = false;
        }
        i += 1;
    }
    out
}

/// The English key of a word in another script: the words for loss, training, validation,
/// test and epoch in Chinese, Japanese and Korean logs (CJK writes them without spaces:
/// `训练损失` is `train loss`); any other word is a word that is not a key.
fn translated(w: &str) -> &'static str {
    const PARTS: &[(&str, &str)] = &[
        ("训练", "train"),
        ("訓練", "train"),
        ("学習", "train"),
        ("학습", "train"),
        ("훈련", "train"),
        ("验证", "val"),
        ("驗證", "val"),
        ("検証", "val"),
        ("검증", "val"),
        ("测试", "test"),
        ("測試", "test"),
        ("テスト", "test"),
        ("테스트", "test"),
    ];
    let is_loss = ["损失", "損失", "손실", "ロス"].iter().any(|l| w.ends_with(l));
    let role = PARTS.iter().find(|(p, _)| w.starts_with(p)).map(|(_, e)| *e);
    match (role, is_loss) {
        (Some("train"), true) => "train_loss",
        (Some("val"), true) => "val_loss",
        (Some("test"), true) => "test_loss",
        (None, true) => "loss",
        _ if ["轮", "輪", "エポック", "에폭", "周期"].contains(&w) => "epoch",
        _ => "_",
    }
}

/// The line without ANSI escape sequences (`ESC [ ... letter`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

fn next_alpha(b: &[u8], i: usize) -> bool {
    b.get(i + 1).is_some_and(|c| c.is_ascii_alphabetic())
}

/// The key of a value: the last word, with the one before it when that one qualifies the loss
/// (`train loss`, `val loss`, `learning rate`).
fn key(words: &[&str]) -> String {
    let last = norm(words[words.len() - 1]);
    if words.len() >= 2 {
        let prev = norm(words[words.len() - 2]);
        let two = format!("{prev}_{last}");
        const QUALIFIERS: &[&str] = &[
            "train",
            "training",
            "val",
            "valid",
            "validation",
            "test",
            "eval",
            "dev",
            "avg",
            "average",
            "mean",
            "total",
            "running",
            "learning",
            "global",
            "smoothed",
            "lm",
        ];
        if QUALIFIERS.contains(&prev.as_str()) {
            return two;
        }
        // `Best ValLoss: 1.05` restates a value; it is not an evaluation (nor a loss).
        if matches!(prev.as_str(), "best" | "min" | "lowest" | "minimum") {
            return format!("best_{last}");
        }
    }
    last
}

/// A Keras progress-bar update before the end of its epoch: the last `\r` segment has an ETA.
fn keras_update(line: &str) -> bool {
    line.rsplit('\r')
        .find(|s| !s.trim().is_empty())
        .is_some_and(|s| s.contains("] - ETA: "))
}

/// What one text line says.
#[derive(Debug, Default, PartialEq)]
struct Line {
    loss: Option<f64>,
    /// The key the loss was read from.
    loss_key: Option<String>,
    val: Option<f64>,
    step: Option<f64>,
    epoch: Option<f64>,
    lr: Option<f64>,
}

fn interpret(pairs: &[(String, f64)], wanted: Option<&str>) -> Line {
    let mut line = Line::default();
    let find = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| pairs.iter().find(|(k, _)| k == n).map(|(_, v)| *v))
    };
    let found = match wanted {
        Some(w) => pairs.iter().find(|(k, _)| k == w),
        None => LOSS_NAMES
            .iter()
            .find_map(|n| pairs.iter().find(|(k, _)| k == n))
            .or_else(|| {
                pairs
                    .iter()
                    .find(|(k, _)| k.ends_with("loss") && !is_val_name(k) && !k.starts_with("best"))
            })
            // The first of the components a VAE or a detector prints (`loss_vae: 3.51;
            // loss_recon: 3.49; loss_kl: 1.93`) is their total; one `loss_` key alone is a
            // setting (Megatron's `loss_scale_window ... 1000`).
            .or_else(|| {
                let mut parts = pairs.iter().filter(|(k, _)| k.starts_with("loss_") && !is_val_name(k));
                let first = parts.next();
                parts.next().and(first)
            })
            // build-nanogpt's `log.txt`: `250 train 6.12` beside `250 val 6.10`.
            .or_else(|| pairs.iter().find(|(k, _)| pairs.len() <= 2 && k == "train")),
    };
    line.loss = found.map(|(_, v)| *v);
    line.loss_key = found.map(|(k, _)| k.clone());
    line.val = pairs
        .iter()
        // A bare `val` is build-nanogpt's `1000 val 3.28`, a line with nothing else; among
        // other counts (`[Split] Train=3667 | Val=786 | Test=787`) it is a count.
        .find(|(k, _)| is_val_name(k) || (pairs.len() <= 2 && matches!(k.as_str(), "val" | "validation" | "valid")))
        .map(|(_, v)| *v)
        .filter(|v| v.is_finite());
    line.step = find(X_NAMES).or_else(|| find(&["global_step", "train_step", "training_step", "iters"]));
    line.epoch = find(&["epoch", "epochs", "ep"]);
    line.lr = find(LR_NAMES).or_else(|| find(&["learning_rate", "lr_rate"]));
    line
}

/// A table printed inside a text log (fastai's `epoch train_loss valid_loss accuracy time`
/// in a notebook's output): the width of its rows and where its columns are.
#[derive(Debug, Clone, Copy)]
struct Table {
    delim: u8,
    cells: usize,
    loss: usize,
    val: Option<usize>,
    epoch: Option<usize>,
    step: Option<usize>,
}

impl Table {
    /// A header line naming a loss column starts a table.
    fn from_header(line: &str) -> Option<Table> {
        let t = line.trim();
        let delim = crate::log_reader::header_delimiter(t)?;
        let names: Vec<String> = crate::log_reader::split_cells(t, delim)
            .iter()
            .map(|c| norm(c))
            .collect();
        let loss = find_column(&names, LOSS_NAMES).or_else(|| loss_like(&names))?;
        Some(Table {
            delim,
            cells: names.len(),
            loss,
            val: find_column(&names, VAL_NAMES).or_else(|| val_like(&names)),
            epoch: find_column(&names, &["epoch"]),
            step: find_column(&names, X_NAMES),
        })
    }

    /// A row of the table, or `None` when the line is not one (the table has ended).
    fn row(&self, line: &str) -> Option<Line> {
        let cells = crate::log_reader::split_cells(line.trim(), self.delim);
        if cells.len() != self.cells {
            return None;
        }
        let num = |i: Option<usize>| i.and_then(|i| crate::log_reader::parse_number(&cells[i]));
        Some(Line {
            loss: Some(num(Some(self.loss))?),
            loss_key: None,
            val: num(self.val).filter(|v| v.is_finite()),
            step: num(self.step),
            epoch: num(self.epoch),
            lr: None,
        })
    }
}

/// A row of YOLOv5's headerless `results.txt` (`0/29  1.86G  box obj cls total  targets
/// img_size  P R mAP50 mAP  val_box val_obj val_cls`): the total training loss, and the
/// validation loss as the sum of its three parts.
fn yolov5_row(line: &str) -> Option<Line> {
    let cells: Vec<&str> = line.split_whitespace().collect();
    let (epoch, _) = cells.first()?.split_once('/')?;
    let mem = cells.get(1)?;
    if cells.len() < 15 || !(mem.ends_with('G') || mem.ends_with('M')) {
        return None;
    }
    let num = |i: usize| cells.get(i).and_then(|c| c.parse::<f64>().ok());
    let val = [12, 13, 14].iter().map(|i| num(*i)).sum::<Option<f64>>();
    Some(Line {
        loss: Some(num(5)?),
        loss_key: Some("total_loss".into()),
        val,
        step: None,
        epoch: Some(epoch.parse::<f64>().ok()?),
        lr: None,
    })
}

/// Reads a text log whose first meaningful line (`first`, line `first_no`) is already read.
pub(crate) fn read_text(
    first: &str,
    first_no: usize,
    mut reader: impl BufRead,
    name: &str,
    opts: &ReadOptions,
) -> Result<LossLog, MonitorError> {
    let wanted = opts.column.as_deref().map(norm);
    let mut log = LossLog::new(LogFormat::Text, wanted.clone().unwrap_or_else(|| "loss".into()));
    let mut line = first.to_string();
    let mut epoch: Option<f64> = None;
    let (mut any_step, mut epochs_increase, mut last_epoch) = (false, true, f64::NEG_INFINITY);
    let mut buf_epochs = Vec::new();
    let mut table: Option<Table> = None;
    // Whether each loss line carried a step or an epoch.
    let mut placed = Vec::new();
    let _ = first_no;
    loop {
        // Keras's progress bar (`13/285 [>....] - ETA: 5s - loss: 3.96`) prints the running
        // mean of the epoch so far: the epoch's own line (`285/285 [====] - 6s ... - loss`)
        // is its loss, the updates before it would make a sawtooth of every epoch.
        let p = if keras_update(&line) { Vec::new() } else { pairs(&line) };
        let table_row = table.and_then(|t| t.row(&line));
        if table_row.is_none() {
            table = None;
        }
        let header = if table_row.is_none() && wanted.is_none() {
            Table::from_header(&line)
        } else {
            None
        };
        if header.is_some() {
            table = header;
        }
        let mut l = match table_row.or_else(|| yolov5_row(&line)) {
            Some(row) => row,
            None if header.is_some() => Line::default(),
            None => interpret(&p, wanted.as_deref()),
        };
        // llm.c's `main.log` opens each line with `s:<step>`.
        if l.step.is_none() && line.starts_with("s:") {
            l.step = p.first().filter(|(k, _)| k == "s").map(|(_, v)| *v);
        }
        if l.epoch.is_some() {
            epoch = l.epoch;
        }
        if let Some(v) = l.val {
            let x = l.step.or(epoch).unwrap_or(log.points.len() as f64);
            // A checkpoint line restating an evaluation (`Loaded ... (epoch=20,
            // val_loss=1.0521)`) is not another one.
            let restated = log.val.iter().any(|p| p.x == x && p.loss == v);
            if !restated {
                log.val.push(ValPoint { x, epoch, loss: v });
            }
        }
        if let Some(loss) = l.loss {
            if log.points.is_empty() && wanted.is_none() {
                if let Some(k) = &l.loss_key {
                    log.loss_name.clone_from(k);
                }
            }
            any_step |= l.step.is_some();
            let ep = epoch.unwrap_or(f64::NAN);
            // (Or start over at the first epoch: another run appended to the same file, which
            // the diagnosis tells apart.)
            let first_epoch = buf_epochs.first().copied().unwrap_or(ep);
            epochs_increase &= ep > last_epoch || (ep <= first_epoch && last_epoch > first_epoch);
            last_epoch = ep;
            buf_epochs.push(ep);
            placed.push(l.step.is_some() || l.epoch.is_some());
            log.points.push(LogPoint {
                x: l.step.unwrap_or(log.points.len() as f64 + 1.0),
                loss,
                lr: l.lr.filter(|v| v.is_finite()),
            });
        }
        line.clear();
        if reader.read_line(&mut line).map_err(|e| MonitorError::LogRead {
            name: name.to_string(),
            message: e.to_string(),
        })? == 0
        {
            break;
        }
    }
    // Loss lines before the first one that says where it is, when every later one does, are
    // prose or a legend (`- avg_loss : 1 epoch average loss, ...`), not a training step.
    if let Some(k) = placed.iter().position(|p| *p) {
        if k > 0 && placed[k..].iter().all(|p| *p) {
            log.points.drain(..k);
            buf_epochs.drain(..k);
        }
    }
    if log.points.is_empty() && !log.val.is_empty() {
        log.points = log
            .val
            .drain(..)
            .map(|v| LogPoint {
                x: v.x,
                loss: v.loss,
                lr: None,
            })
            .collect();
        log.loss_name = "val_loss".into();
    }
    if any_step {
        log.x_unit = XUnit::Step;
        log.x_name = Some("step".into());
    } else if epochs_increase && !log.points.is_empty() {
        // One loss per epoch (Keras's end-of-epoch line): the epoch is the x.
        log.x_unit = XUnit::Epoch;
        log.x_name = Some("epoch".into());
        for (p, e) in log.points.iter_mut().zip(buf_epochs) {
            p.x = e;
        }
    } else {
        // Several losses per epoch without a step: rows in order, and the validation losses
        // placed at the row count when they were logged.
        for v in &mut log.val {
            if v.epoch.is_some() {
                v.x = v.x.min(log.points.len() as f64);
            }
        }
    }
    if let Some(w) = &wanted {
        if log.points.is_empty() {
            return Err(MonitorError::NoLossColumn {
                name: name.to_string(),
                wanted: w.clone(),
                columns: "(no line has it)".into(),
            });
        }
    }
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log_reader::read_log;

    fn read(text: &str) -> LossLog {
        read_log(text.as_bytes(), "t", &ReadOptions::default()).unwrap()
    }

    #[test]
    fn pairs_take_the_words_before_a_number() {
        let p = pairs("step 100 | loss 2.345 | lr 1e-3");
        assert_eq!(
            p,
            vec![("step".into(), 100.0), ("loss".into(), 2.345), ("lr".into(), 1e-3)]
        );
        let p = pairs("Epoch 3/10 - 2s - loss: 0.4123 - val_loss: 0.5");
        assert_eq!(p[0], ("epoch".into(), 3.0));
        assert!(p.contains(&("loss".into(), 0.4123)) && p.contains(&("val_loss".into(), 0.5)));
        let p = pairs("step    1/74: train loss 4.677 (acc 4.677) (1234 ms, 500 tok/s)");
        assert_eq!(p[0], ("step".into(), 1.0));
        assert_eq!(p[1], ("train_loss".into(), 4.677));
    }

    #[test]
    fn colours_megatron_and_mmdet() {
        assert_eq!(pairs("\x1b[32mloss\x1b[0m: 2.3"), vec![("loss".into(), 2.3)]);
        let log = read(
            " iteration      100/  500000 | learning rate: 1.000E-04 | lm loss: 7.345E+00 | loss scale: 65536.0 |\n\
              iteration      200/  500000 | learning rate: 1.000E-04 | lm loss: 6.100E+00 | loss scale: 65536.0 |\n",
        );
        assert_eq!(
            log.points.iter().map(|p| (p.x, p.loss)).collect::<Vec<_>>(),
            vec![(100.0, 7.345), (200.0, 6.1)]
        );
        assert_eq!(log.points[0].lr, Some(1e-4));
        let log = read("Epoch [1][50/7330]\tlr: 1.000e-02, eta: 1:00:00, loss_cls: 0.5, loss_bbox: 0.3, loss: 1.2\n");
        assert_eq!(log.points[0].loss, 1.2);
    }

    #[test]
    fn text_logs_of_common_scripts() {
        let log = read("step 100 | loss 2.345\nstep 200 | loss 2.100\n");
        assert_eq!(log.points.iter().map(|p| p.x).collect::<Vec<_>>(), vec![100.0, 200.0]);
        assert_eq!(log.x_unit, XUnit::Step);
        let log = read("iter 0: loss 4.2, time 30ms\niter 10: loss 3.9, time 31ms\n");
        assert_eq!(log.points[1].loss, 3.9);
        let log = read("{'loss': 2.3, 'learning_rate': 5e-05, 'epoch': 0.1}\n{'loss': 2.1, 'learning_rate': 4e-05, 'epoch': 0.2}\n");
        assert_eq!(log.points[1].lr, Some(4e-5));
    }

    #[test]
    fn keras_stdout_sets_the_epoch_from_the_line_before() {
        let log = read(
            "Epoch 1/3\n1875/1875 [==============================] - 3s 2ms/step - loss: 0.60 - accuracy: 0.8 - val_loss: 0.5\n\
             Epoch 2/3\n1875/1875 [==============================] - 3s 2ms/step - loss: 0.40 - accuracy: 0.9 - val_loss: 0.45\n",
        );
        assert_eq!(log.points.iter().map(|p| p.loss).collect::<Vec<_>>(), vec![0.6, 0.4]);
        assert_eq!(log.x_unit, XUnit::Epoch);
        assert_eq!(log.points[1].x, 2.0);
        assert_eq!(log.val.len(), 2);
    }

    #[test]
    fn keras_progress_updates_are_running_means_the_epoch_line_is_the_loss() {
        let log = read(
            "Epoch 1/2\n  1/285 [..............................] - ETA: 1:04 - loss: 4.0902 - acc: 0.0\n \
             13/285 [>.............................] - ETA: 5s - loss: 3.9622 - acc: 0.0577\n\
             285/285 [==============================] - 6s 21ms/step - loss: 2.9 - acc: 0.3 - val_loss: 2.5\n\
             Epoch 2/2\n  1/285 [..............................] - ETA: 5s - loss: 2.1 - acc: 0.5\n\
             285/285 [==============================] - 6s 21ms/step - loss: 1.8 - acc: 0.6 - val_loss: 1.9\n",
        );
        assert_eq!(log.points.iter().map(|p| p.loss).collect::<Vec<_>>(), vec![2.9, 1.8]);
        assert_eq!(log.x_unit, XUnit::Epoch);
        assert_eq!(log.val.len(), 2);
    }

    #[test]
    fn loss_components_and_settings() {
        let log = read(
            "ITER 0 TRAINING (phase 1). loss_vae: 3.51; loss_recon: 3.49; loss_kl: 1.93\n\
             ITER 10 TRAINING (phase 1). loss_vae: 2.80; loss_recon: 2.70; loss_kl: 1.10\n",
        );
        assert_eq!(log.points.iter().map(|p| p.loss).collect::<Vec<_>>(), vec![3.51, 2.8]);
        assert_eq!(log.loss_name, "loss_vae");
        // A setting in the argument dump before the training lines is not a loss.
        let log = read(
            "  loss_scale_window ............................... 1000\n\
              iteration      100/  500000 | lm loss: 7.345E+00 |\n\
              iteration      200/  500000 | lm loss: 6.100E+00 |\n",
        );
        assert_eq!(log.points.iter().map(|p| p.loss).collect::<Vec<_>>(), vec![7.345, 6.1]);
        assert_eq!(log.loss_name, "lm_loss");
    }

    #[test]
    fn counts_and_restated_values_are_not_evaluations() {
        let log = read(
            "[Split] Train=3667 | Val=786 | Test=787\n\
             Epoch [001/30] TrainLoss=1.8695 | ValLoss=1.3028 | LR=1.00e-04\n\
             Epoch [002/30] TrainLoss=1.5289 | ValLoss=1.1843 | LR=1.00e-04\n\
             [Checkpoint] Loaded best (epoch=2, val_loss=1.1843)\n\
             [Training] Complete | Best ValLoss: 1.1843\n",
        );
        assert_eq!(log.val.iter().map(|v| v.loss).collect::<Vec<_>>(), vec![1.3028, 1.1843]);
        assert_eq!(log.points.len(), 2);
        // build-nanogpt's bare `train` and `val`.
        let log = read("0 val 10.95\n0 hella 0.25\n0 train 10.96\n250 val 6.1\n250 train 6.0\n");
        assert_eq!(log.points.iter().map(|p| p.loss).collect::<Vec<_>>(), vec![10.96, 6.0]);
        assert_eq!(log.val.iter().map(|p| p.loss).collect::<Vec<_>>(), vec![10.95, 6.1]);
    }

    #[test]
    fn loss_words_in_other_scripts() {
        let log = read(
            "Epoch 16 完成 | 训练损失: 4.6130 | 验证损失: 6.0073 | 时间: 385.8s\n\
             Epoch 17 完成 | 训练损失: 4.5880 | 验证损失: 5.9688 | 时间: 388.0s\n",
        );
        assert_eq!(
            log.points.iter().map(|p| p.loss).collect::<Vec<_>>(),
            vec![4.613, 4.588]
        );
        assert_eq!(log.val.iter().map(|v| v.loss).collect::<Vec<_>>(), vec![6.0073, 5.9688]);
        // Unknown words, symbols and emoji are no keys.
        assert_eq!(pairs("✓ 保存最佳模型 | loss 2.5"), vec![("loss".into(), 2.5)]);
    }

    #[test]
    fn tables_inside_text_yolov5_results_and_legends() {
        let log = read(
            "Training lm from random weights\nepoch     train_loss  valid_loss  accuracy  time\n\
             0         4.452324    4.517938    0.397063  1:12:10\n1         4.354969    4.473063    0.399108  1:12:08\n\
             Better model found at epoch 1\n",
        );
        assert_eq!(
            log.points.iter().map(|p| p.loss).collect::<Vec<_>>(),
            vec![4.452324, 4.354969]
        );
        assert_eq!(log.val.len(), 2);
        let log = read(
            "      0/29     1.86G   0.09854   0.09318         0    0.1917        24       416         0         0  0.004895 0.0009547   0.09176   0.05526         0\n\
                   1/29     1.93G   0.09296    0.1009         0    0.1939        37       416   0.04823   0.01505  0.007566  0.001351    0.0922   0.05528         0\n",
        );
        assert_eq!(
            log.points.iter().map(|p| p.loss).collect::<Vec<_>>(),
            vec![0.1917, 0.1939]
        );
        assert!((log.val[0].loss - (0.09176 + 0.05526)).abs() < 1e-12);
        assert_eq!(log.x_unit, XUnit::Epoch);
        let log = read(
            "- avg_loss : 1 epoch average loss, l : total loss\n\
             Epoch    1/1000 done | avg_loss 393.7097  l:389.0295\nEpoch    2/1000 done | avg_loss 383.9871  l:380.2843\n",
        );
        assert_eq!(
            log.points.iter().map(|p| p.loss).collect::<Vec<_>>(),
            vec![393.7097, 383.9871]
        );
    }

    #[test]
    fn llm_c_main_log() {
        let log =
            read("s:0 tel:11.0095\ns:0 trl:11.0116 lr:0.000001 norm:14.96\ns:1 trl:10.9586 lr:0.000002 norm:15.18\n");
        assert_eq!(
            log.points.iter().map(|p| (p.x, p.loss)).collect::<Vec<_>>(),
            vec![(0.0, 11.0116), (1.0, 10.9586)]
        );
        assert_eq!(log.val.len(), 1);
        assert_eq!(log.points[1].lr, Some(2e-6));
    }

    #[test]
    fn text_without_losses_is_an_error() {
        let err = read_log(
            "hello world\nnothing here\n".as_bytes(),
            "out.log",
            &ReadOptions::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("out.log"), "{err}");
    }
}
