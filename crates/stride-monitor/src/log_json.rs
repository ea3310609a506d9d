//! JSON logs: one object per line (Stride's `--metrics run.jsonl`, most loggers), HF Trainer's
//! `trainer_state.json` (`log_history`), an array of objects or of numbers, and an object of
//! arrays (Keras's `history.history`).

use std::io::BufRead;

use serde_json::{Map, Value};

use crate::error::MonitorError;
use crate::log_columns::{is_val_name, norm, LOSS_NAMES, LR_NAMES, VAL_NAMES, X_NAMES};
use crate::log_reader::{clip, parse_number, LogFormat, LogPoint, LossLog, ReadOptions, ValPoint, XUnit};

/// Whether a line is a whole JSON object of scalars (a JSON-lines row) rather than the start of
/// a document or an object of arrays.
pub(crate) fn is_complete_object(line: &str) -> bool {
    line.ends_with('}')
        && parse_value(line)
            .as_ref()
            .and_then(Value::as_object)
            .is_some_and(|o| !o.values().any(Value::is_array))
}

/// Parses JSON, accepting Python's `NaN`/`Infinity` literals (as null: a NaN loss is data).
fn parse_value(text: &str) -> Option<Value> {
    serde_json::from_str(text).ok().or_else(|| {
        let fixed = text
            .replace("-Infinity", "null")
            .replace("Infinity", "null")
            .replace("NaN", "null");
        serde_json::from_str(&fixed).ok()
    })
}

/// The number of a JSON value: numbers, numeric strings, and null as NaN.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => parse_number(s),
        Value::Null => Some(f64::NAN),
        _ => None,
    }
}

/// Keys of one object, normalised, with their values (nested objects flattened one level:
/// `{"train": {"loss": 1}}` is `train_loss`).
fn flat(obj: &Map<String, Value>) -> Vec<(String, &Value)> {
    let mut out = Vec::with_capacity(obj.len());
    for (k, v) in obj {
        match v {
            Value::Object(inner) => {
                for (k2, v2) in inner {
                    out.push((norm(&format!("{k}_{k2}")), v2));
                }
            }
            v => out.push((norm(k), v)),
        }
    }
    out
}

/// Which keys a reader uses, fixed by the first object that has a loss.
#[derive(Debug, Default)]
struct Keys {
    loss: Option<String>,
}

/// Adds one object to the log. Returns whether it held a loss or a validation loss.
fn add_object(obj: &Map<String, Value>, log: &mut LossLog, keys: &mut Keys, opts: &ReadOptions) -> bool {
    // HF Trainer's last entry is a run summary (`train_loss` averaged over the run), not a step.
    if obj.contains_key("train_runtime") {
        return false;
    }
    let fields = flat(obj);
    let get = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| fields.iter().find(|(k, _)| k == n).and_then(|(_, v)| number(v)))
    };
    if keys.loss.is_none() {
        keys.loss = match &opts.column {
            Some(c) => Some(norm(c)),
            None => LOSS_NAMES
                .iter()
                .find(|n| fields.iter().any(|(k, v)| k == *n && number(v).is_some()))
                .map(|s| s.to_string())
                .or_else(|| {
                    // `{"metrics": {"train/loss": ...}}` is `metrics_train_loss`.
                    fields
                        .iter()
                        .find(|(k, v)| k.ends_with("loss") && !is_val_name(k) && number(v).is_some())
                        .map(|(k, _)| k.clone())
                }),
        };
    }
    let loss = keys
        .loss
        .as_deref()
        .and_then(|k| fields.iter().find(|(f, _)| f == k))
        .and_then(|(_, v)| number(v));
    let x = get(X_NAMES);
    let epoch = get(&["epoch", "epochs"]);
    let lr = get(LR_NAMES).filter(|l| l.is_finite());
    let val = get(VAL_NAMES).or_else(|| fields.iter().find(|(k, _)| is_val_name(k)).and_then(|(_, v)| number(v)));
    if log.x_name.is_none() {
        if let Some((k, _)) = fields.iter().find(|(k, _)| X_NAMES.contains(&k.as_str())) {
            log.x_name = Some(k.clone());
            log.x_unit = XUnit::Step;
        } else if epoch.is_some() {
            log.x_name = Some("epoch".into());
            log.x_unit = XUnit::Epoch;
        }
    }
    let pos = match log.x_unit {
        XUnit::Step => x,
        XUnit::Epoch => epoch,
        XUnit::Index => None,
    };
    let kind_epoch = obj.get("kind").and_then(Value::as_str) == Some("epoch");
    if let Some(v) = val.filter(|v| v.is_finite()) {
        log.val.push(ValPoint {
            x: pos.unwrap_or(log.points.len() as f64),
            epoch,
            loss: v,
        });
    }
    let Some(loss) = loss else {
        return val.is_some();
    };
    let point = LogPoint {
        x: pos.unwrap_or(log.points.len() as f64 + 1.0),
        loss,
        lr,
    };
    if kind_epoch {
        log.epochs.push(LogPoint {
            x: epoch.unwrap_or(log.epochs.len() as f64 + 1.0),
            ..point
        });
    } else {
        log.points.push(point);
    }
    true
}

/// Reads JSON lines, the first of which (`first`, line `first_no`) is already read.
pub(crate) fn read_lines(
    first: &str,
    first_no: usize,
    mut reader: impl BufRead,
    name: &str,
    opts: &ReadOptions,
) -> Result<LossLog, MonitorError> {
    let mut log = LossLog::new(LogFormat::JsonLines, String::new());
    let mut keys = Keys::default();
    let mut line = first.to_string();
    let mut no = first_no;
    loop {
        let t = line.trim();
        if !t.is_empty() && !t.starts_with('#') {
            let v = parse_value(t).ok_or_else(|| MonitorError::LogParse {
                name: name.to_string(),
                line: no,
                message: format!("not a JSON object: {:?}", clip(t)),
            })?;
            if let Value::Object(obj) = &v {
                add_object(obj, &mut log, &mut keys, opts);
            }
        }
        line.clear();
        no += 1;
        if reader.read_line(&mut line).map_err(|e| MonitorError::LogRead {
            name: name.to_string(),
            message: e.to_string(),
        })? == 0
        {
            break;
        }
    }
    finish(log, keys, name, opts)
}

fn finish(mut log: LossLog, keys: Keys, name: &str, opts: &ReadOptions) -> Result<LossLog, MonitorError> {
    if log.points.is_empty() && log.epochs.is_empty() {
        if let Some(c) = &opts.column {
            return Err(MonitorError::NoLossColumn {
                name: name.to_string(),
                wanted: c.clone(),
                columns: "(no object has it)".into(),
            });
        }
        // Only validation losses: judge them, as the only losses there are.
        if !log.val.is_empty() {
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
            return Ok(log);
        }
    }
    log.loss_name = keys.loss.unwrap_or_default();
    Ok(log)
}

/// Parses a whole JSON document.
pub(crate) fn parse_document(text: &str, name: &str, opts: &ReadOptions) -> Result<LossLog, MonitorError> {
    let v = parse_value(text).ok_or_else(|| {
        let line = serde_json::from_str::<Value>(text).err().map_or(1, |e| e.line());
        MonitorError::LogParse {
            name: name.to_string(),
            line,
            message: "not valid JSON".into(),
        }
    })?;
    let mut log = LossLog::new(LogFormat::Json, String::new());
    let mut keys = Keys::default();
    let items: &[Value] = match &v {
        Value::Array(items) => items,
        Value::Object(obj) => match obj.get("log_history").or_else(|| obj.get("history")) {
            Some(Value::Array(items)) => items,
            Some(Value::Object(cols)) => return columns(cols, name, opts),
            _ => return columns(obj, name, opts),
        },
        _ => &[],
    };
    for item in items {
        match item {
            Value::Object(obj) => {
                add_object(obj, &mut log, &mut keys, opts);
            }
            v => {
                if let Some(x) = number(v) {
                    log.points.push(LogPoint {
                        x: log.points.len() as f64 + 1.0,
                        loss: x,
                        lr: None,
                    });
                    keys.loss.get_or_insert_with(|| "(values)".into());
                }
            }
        }
    }
    finish(log, keys, name, opts)
}

/// An object of arrays (`{"loss": [...], "val_loss": [...]}`): one row per index, by epoch.
fn columns(obj: &Map<String, Value>, name: &str, opts: &ReadOptions) -> Result<LossLog, MonitorError> {
    let fields = flat(obj);
    let arrays: Vec<(&str, &Vec<Value>)> = fields
        .iter()
        .filter_map(|(k, v)| v.as_array().map(|a| (k.as_str(), a)))
        .collect();
    let find = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| arrays.iter().find(|(k, _)| k == n).map(|(_, a)| *a))
    };
    let wanted = opts.column.as_deref().map(norm);
    let loss = match &wanted {
        Some(w) => arrays.iter().find(|(k, _)| k == w).map(|(_, a)| *a),
        None => find(LOSS_NAMES).or_else(|| find(VAL_NAMES)),
    };
    let Some(loss) = loss else {
        return Err(MonitorError::NoLossColumn {
            name: name.to_string(),
            wanted: opts.column.clone().unwrap_or_else(|| LOSS_NAMES[..6].join(", ")),
            columns: fields.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(", "),
        });
    };
    let mut log = LossLog::new(LogFormat::Json, wanted.unwrap_or_else(|| "loss".into()));
    log.x_unit = XUnit::Epoch;
    let lr = find(LR_NAMES);
    for (i, v) in loss.iter().enumerate() {
        if let Some(x) = number(v) {
            log.points.push(LogPoint {
                x: i as f64 + 1.0,
                loss: x,
                lr: lr.and_then(|a| a.get(i)).and_then(number).filter(|l| l.is_finite()),
            });
        }
    }
    if let Some(val) = find(VAL_NAMES).filter(|v| !std::ptr::eq(*v, loss)) {
        for (i, v) in val.iter().enumerate() {
            if let Some(x) = number(v).filter(|x| x.is_finite()) {
                log.val.push(ValPoint {
                    x: i as f64 + 1.0,
                    epoch: Some(i as f64 + 1.0),
                    loss: x,
                });
            }
        }
    }
    Ok(log)
}

#[cfg(test)]
mod tests {
    use crate::log_reader::{read_log, ReadOptions, XUnit};

    fn read(text: &str) -> crate::log_reader::LossLog {
        read_log(text.as_bytes(), "t", &ReadOptions::default()).unwrap()
    }

    #[test]
    fn json_lines_with_nan_and_other_names() {
        let log = read("{\"iter\": 10, \"train_loss\": 2.0, \"lr\": 0.1}\n{\"iter\": 20, \"train_loss\": NaN}\n");
        assert_eq!(log.points.len(), 2);
        assert!(log.points[1].loss.is_nan());
        assert_eq!(log.points[1].x, 20.0);
        assert_eq!(log.x_unit, XUnit::Step);
        assert_eq!(log.loss_name, "train_loss");
    }

    #[test]
    fn stride_jsonl_epoch_rows() {
        let log = read(
            "{\"kind\":\"step\",\"epoch\":0,\"step\":1,\"loss\":2.3,\"lr\":0.1}\n\
             {\"kind\":\"epoch\",\"epoch\":1,\"step\":1,\"loss\":2.2,\"lr\":0.1,\"test_loss\":2.0}\n",
        );
        assert_eq!(log.points.len(), 1);
        assert_eq!(log.epochs.len(), 1);
        assert_eq!(log.val[0].loss, 2.0);
    }

    #[test]
    fn hf_trainer_state_skips_the_summary() {
        let text = r#"{
  "best_metric": null,
  "log_history": [
    {"epoch": 0.1, "learning_rate": 5e-05, "loss": 2.5, "step": 10},
    {"epoch": 0.2, "learning_rate": 4e-05, "loss": 2.1, "step": 20},
    {"epoch": 0.2, "eval_loss": 2.2, "eval_runtime": 1.0, "step": 20},
    {"epoch": 0.2, "step": 20, "total_flos": 1, "train_loss": 2.3, "train_runtime": 9.0}
  ]
}"#;
        let log = read(text);
        assert_eq!(log.points.iter().map(|p| p.loss).collect::<Vec<_>>(), vec![2.5, 2.1]);
        assert_eq!(log.points[1].lr, Some(4e-5));
        assert_eq!(log.val.len(), 1);
        assert_eq!(log.val[0].x, 20.0);
    }

    #[test]
    fn keras_history_object_and_arrays() {
        let log = read("{\"loss\": [1.0, 0.5, 0.4],\n \"val_loss\": [1.1, 0.7, 0.8]}");
        assert_eq!(log.points.len(), 3);
        assert_eq!(log.val.len(), 3);
        assert_eq!(read("[0.9, 0.5, 0.3]").points.len(), 3);
    }
}
