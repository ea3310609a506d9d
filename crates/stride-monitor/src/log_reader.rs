//! Reading the loss logs people have (for `stride diagnose`): CSV/TSV with the usual column
//! names, Lightning's `metrics.csv`, Keras's `CSVLogger`, JSON lines, HF Trainer's
//! `trainer_state.json`, one number per line, and text lines such as `step 100 | loss 2.345`.
//!
//! Lines are read one at a time and only three numbers per row are kept, so a 1M-row log costs
//! about 32 MB. The formats themselves live in [`log_columns`](crate::log_columns) (names),
//! [`log_json`](crate::log_json) and [`log_text`](crate::log_text).

use std::io::{BufRead, Read};

use crate::error::MonitorError;
use crate::log_columns::{
    find_column, loss_components, loss_like, norm, val_components, val_like, LOSS_NAMES, LR_NAMES, VAL_NAMES, X_NAMES,
};

/// One training loss of a log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogPoint {
    /// Step (or epoch, or row index: see [`LossLog::x_unit`]) of the loss.
    pub x: f64,
    /// The loss (NaN and infinities are data).
    pub loss: f64,
    /// The learning rate, when the log has one.
    pub lr: Option<f64>,
}

/// One validation loss of a log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValPoint {
    /// Step (or epoch) at which it was measured, in the unit of [`LossLog::x_unit`].
    pub x: f64,
    /// The epoch, when the log says.
    pub epoch: Option<f64>,
    /// The validation loss.
    pub loss: f64,
}

/// What the x values of a log count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XUnit {
    /// Optimizer steps (a `step`, `iter`, `global_step` column or key).
    Step,
    /// Epochs (only an `epoch` column).
    Epoch,
    /// Row numbers from 1 (no step column).
    Index,
}

/// The format a log was read as (named in the report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Delimited text with a header (comma, tab, semicolon or spaces).
    Csv,
    /// One JSON object per line.
    JsonLines,
    /// A JSON document: HF Trainer's `trainer_state.json`, an array of objects or numbers, or an
    /// object of arrays (Keras `history.history`).
    Json,
    /// One number (or `step loss`) per line, no header.
    Numbers,
    /// Free text with `loss 2.3`-style key/value pairs.
    Text,
}

impl LogFormat {
    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            LogFormat::Csv => "csv",
            LogFormat::JsonLines => "json lines",
            LogFormat::Json => "json",
            LogFormat::Numbers => "numbers",
            LogFormat::Text => "text",
        }
    }
}

/// How to read a log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadOptions {
    /// The loss column or key to read (case-insensitive); `None` picks the usual names.
    pub column: Option<String>,
}

/// The losses read from a log.
#[derive(Debug, Clone, PartialEq)]
pub struct LossLog {
    /// The format it was read as.
    pub format: LogFormat,
    /// The loss column or key, as written in the log (`"(values)"` for a list of numbers).
    pub loss_name: String,
    /// The step column or key, when there was one.
    pub x_name: Option<String>,
    /// What the x values count.
    pub x_unit: XUnit,
    /// Training losses in log order (Stride's per-step rows for its own metrics log).
    pub points: Vec<LogPoint>,
    /// Per-epoch training losses, where the log has separate epoch rows (Stride, Lightning).
    pub epochs: Vec<LogPoint>,
    /// Validation losses in log order.
    pub val: Vec<ValPoint>,
}

impl LossLog {
    pub(crate) fn new(format: LogFormat, loss_name: String) -> Self {
        LossLog {
            format,
            loss_name,
            x_name: None,
            x_unit: XUnit::Index,
            points: Vec::new(),
            epochs: Vec::new(),
            val: Vec::new(),
        }
    }

    /// Whether any training loss carries a learning rate.
    pub fn has_lr(&self) -> bool {
        self.points.iter().chain(&self.epochs).any(|p| p.lr.is_some())
    }

    /// Checks that something was read; the error names the log and what was looked for.
    pub(crate) fn non_empty(self, name: &str) -> Result<Self, MonitorError> {
        if self.points.is_empty() && self.epochs.is_empty() && self.val.is_empty() {
            return Err(MonitorError::NoLosses {
                name: name.to_string(),
                format: self.format.name(),
                looked_for: looked_for(),
            });
        }
        Ok(self)
    }
}

/// The names a reader looks for, for error messages.
pub(crate) fn looked_for() -> String {
    format!(
        "a loss column or key ({}; or --column NAME), `loss <number>` in text lines, or one number per line",
        LOSS_NAMES[..6].join(", ")
    )
}

/// Reads a log from any buffered reader; `name` (a path, or `-` for stdin) names it in errors.
pub fn read_log(mut reader: impl BufRead, name: &str, opts: &ReadOptions) -> Result<LossLog, MonitorError> {
    let io = |e: std::io::Error| MonitorError::LogRead {
        name: name.to_string(),
        message: e.to_string(),
    };
    // The first meaningful line decides the format.
    let mut first = String::new();
    let mut first_no = 0usize;
    let mut skipped = String::new();
    loop {
        first.clear();
        if reader.read_line(&mut first).map_err(io)? == 0 {
            return LossLog::new(LogFormat::Numbers, String::new()).non_empty(name);
        }
        first_no += 1;
        let t = strip_bom(first.trim());
        // A commented header (`#epoch train_loss val_loss`, as numpy.savetxt writes one) is
        // the header; other comments are skipped.
        let commented_header = t
            .strip_prefix('#')
            .map(str::trim)
            .is_some_and(|h| header_delimiter(h).is_some() && crate::log_columns::has_known_column(h));
        if commented_header {
            first = t.trim_start_matches('#').trim_start().to_string();
            break;
        }
        if t.is_empty() || t.starts_with('#') || t.starts_with("//") {
            continue;
        }
        if t.starts_with('{') || t.starts_with('[') {
            skipped.push_str(&first);
        }
        break;
    }
    let t = strip_bom(first.trim()).to_string();
    let row = crate::log_json::is_complete_object(&t);
    // A one-line object that is not JSON is a printed Python dict: text.
    let python_dict = t.starts_with('{') && t.ends_with('}') && !row && !t.contains('[');
    if !python_dict && (t.starts_with('[') || (t.starts_with('{') && !row)) {
        // A JSON document (trainer_state.json is pretty-printed over many lines).
        let mut text = skipped;
        reader.read_to_string(&mut text).map_err(io)?;
        return match crate::log_json::parse_document(&text, name, opts) {
            Ok(log) => log.non_empty(name),
            // `[1,  2000] loss: 2.187` (PyTorch's tutorial) starts like JSON and is text.
            Err(e) => match crate::log_text::read_text("", first_no, text.as_bytes(), name, opts) {
                Ok(log) if !log.points.is_empty() => Ok(log),
                _ => Err(e),
            },
        };
    }
    if row {
        return crate::log_json::read_lines(&t, first_no, reader, name, opts)?.non_empty(name);
    }
    if let Some(delim) = header_delimiter(&t) {
        // A header is followed by rows of as many cells (or fewer: Lightning leaves trailing
        // ones off); a text log that opens with a config dump (`Namespace(lr=20, ...)`, a
        // `2022-10-14 22:58:55,689 - INFO` line) is not. The peeked line is read again.
        let mut next = String::new();
        loop {
            next.clear();
            if reader.read_line(&mut next).map_err(io)? == 0 || !next.trim().is_empty() {
                break;
            }
        }
        let width = split_cells(&t, delim).len();
        let row = split_cells(next.trim(), delim);
        // (and holds a number or an empty cell: a line of names after a line of names is prose)
        let values = row.iter().any(|c| c.is_empty() || parse_number(c).is_some());
        let csv = next.trim().is_empty() || (row.len() <= width && row.len() * 2 > width && values) || width == 1;
        let rest = std::io::Cursor::new(next.into_bytes()).chain(reader);
        if csv {
            return read_csv(&t, delim, first_no, rest, name, opts)?.non_empty(name);
        }
        return crate::log_text::read_text(&t, first_no, rest, name, opts)?.non_empty(name);
    }
    if numbers_line(&t).is_some() {
        return read_numbers(&t, first_no, reader, name)?.non_empty(name);
    }
    crate::log_text::read_text(&t, first_no, reader, name, opts)?.non_empty(name)
}

fn strip_bom(s: &str) -> &str {
    s.strip_prefix('\u{feff}').unwrap_or(s)
}

/// The delimiter of a header line: a line whose cells are all names (no number among them),
/// split by tab, comma, semicolon or, for two or more words, spaces.
pub(crate) fn header_delimiter(line: &str) -> Option<u8> {
    let delim = if line.contains('\t') {
        b'\t'
    } else if line.contains(',') {
        b','
    } else if line.contains(';') {
        b';'
    } else {
        b' '
    };
    let cells = split_cells(line, delim);
    if cells.len() < 2 && !(cells.len() == 1 && find_column(&[norm(&cells[0])], LOSS_NAMES).is_some()) {
        return None;
    }
    // A header is names only (pandas writes an empty first cell for its index, and `Unnamed: 0`
    // after a round trip); a text log line (`iter 0: loss 4.2, time 30ms`) has a loss value.
    // (A cell that starts with a digit or holds `=` is a value or a setting: the
    // `2022-10-14 22:58:55,689 - INFO: ...` of a logging line, `Namespace(lr=20, ...)`.)
    let names = cells.iter().any(|c| c.chars().any(|ch| ch.is_alphabetic()))
        && cells.iter().all(|c| c.is_empty() || parse_number(c).is_none())
        && cells
            .iter()
            .all(|c| !c.starts_with(|ch: char| ch.is_ascii_digit()) && !c.contains('='))
        && !crate::log_text::pairs(line)
            .iter()
            .any(|(k, _)| k.ends_with("loss") || k == "step" || k == "iter" || k == "epoch");
    // Spaces split only short headers of plain names (`step loss lr`), not sentences.
    let plain = delim != b' '
        || cells
            .iter()
            .all(|c| c.chars().all(|ch| ch.is_alphanumeric() || "_/.-".contains(ch)));
    (names && plain).then_some(delim)
}

/// Splits one delimited line into unquoted, trimmed cells (RFC 4180 double quotes; `""` inside
/// quotes is a quote). Spaces as delimiter collapse.
pub fn split_cells(line: &str, delim: u8) -> Vec<String> {
    let mut cells = Vec::new();
    split_cells_into(line, delim, &mut cells);
    cells
}

fn split_cells_into(line: &str, delim: u8, cells: &mut Vec<String>) {
    cells.clear();
    let line = line.trim_end_matches(['\r', '\n']);
    if delim == b' ' {
        cells.extend(line.split_whitespace().map(|c| c.trim_matches('"').to_string()));
        return;
    }
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            c if !quoted && c as u32 == u32::from(delim) => {
                cells.push(cur.trim().to_string());
                cur.clear();
            }
            c => cur.push(c),
        }
    }
    cells.push(cur.trim().to_string());
}

/// Parses a number cell: plain floats, `nan`/`inf` in any case, `tensor(2.3)` (a logged
/// PyTorch scalar) and a trailing `%` are accepted; `None` for anything else.
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    let s = s.trim().trim_matches('"').trim_matches('\'');
    let s = s
        .strip_prefix("tensor(")
        .map(|r| r.split([',', ')']).next().unwrap_or(r))
        .unwrap_or(s);
    if let Ok(v) = s.parse::<f64>() {
        return Some(v);
    }
    match s.to_ascii_lowercase().as_str() {
        "nan" | "-nan" | "+nan" => Some(f64::NAN),
        "inf" | "+inf" | "infinity" | "+infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// A headerless line of one or two numbers (`loss` or `step loss`).
fn numbers_line(line: &str) -> Option<(Option<f64>, f64)> {
    let cells: Vec<&str> = line
        .split(|c: char| c == ',' || c == '\t' || c == ';' || c.is_whitespace())
        .filter(|c| !c.is_empty())
        .collect();
    match cells.as_slice() {
        [v] => parse_number(v).map(|v| (None, v)),
        [s, v] => Some((Some(parse_number(s)?), parse_number(v)?)),
        _ => None,
    }
}

fn read_numbers(first: &str, first_no: usize, mut reader: impl BufRead, name: &str) -> Result<LossLog, MonitorError> {
    let mut log = LossLog::new(LogFormat::Numbers, "(values)".into());
    let mut line = first.to_string();
    let mut no = first_no;
    loop {
        let t = line.trim();
        if !t.is_empty() && !t.starts_with('#') {
            let Some((x, loss)) = numbers_line(t) else {
                return Err(MonitorError::LogParse {
                    name: name.to_string(),
                    line: no,
                    message: format!("expected a number (or `step loss`), found {:?}", clip(t)),
                });
            };
            if x.is_some() {
                log.x_unit = XUnit::Step;
            }
            let x = x.unwrap_or(log.points.len() as f64 + 1.0);
            log.points.push(LogPoint { x, loss, lr: None });
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
    Ok(log)
}

/// At most 80 characters of a line, for error messages.
pub(crate) fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Column indices of a delimited log.
struct Columns {
    loss: Option<usize>,
    epoch: Option<usize>,
    lr: Option<usize>,
    val: Option<usize>,
    kind: Option<usize>,
    /// Lightning's per-epoch training mean (`train_loss_epoch`), when the loss is per step.
    epoch_loss: Option<usize>,
}

fn read_csv(
    header_line: &str,
    delim: u8,
    first_no: usize,
    mut reader: impl BufRead,
    name: &str,
    opts: &ReadOptions,
) -> Result<LossLog, MonitorError> {
    let header = split_cells(header_line, delim);
    let names: Vec<String> = header.iter().map(|h| norm(h)).collect();
    let wanted = opts.column.as_deref().map(norm);
    // No total loss, several components (YOLO's box/cls/dfl): their sum is the loss.
    let (sum_train, sum_val) = match (&wanted, find_column(&names, LOSS_NAMES)) {
        (None, None) => (loss_components(&names), val_components(&names)),
        _ => (Vec::new(), Vec::new()),
    };
    let sum_train = if sum_train.len() > 1 { sum_train } else { Vec::new() };
    let sum_val = if sum_val.len() > 1 && !sum_train.is_empty() {
        sum_val
    } else {
        Vec::new()
    };
    let loss = match &wanted {
        Some(w) => Some(
            names
                .iter()
                .position(|n| n == w)
                .ok_or_else(|| MonitorError::NoLossColumn {
                    name: name.to_string(),
                    wanted: opts.column.clone().unwrap_or_default(),
                    columns: header.join(", "),
                })?,
        ),
        None => find_column(&names, LOSS_NAMES).or_else(|| loss_like(&names)),
    };
    let val = find_column(&names, VAL_NAMES)
        .or_else(|| val_like(&names))
        .filter(|v| Some(*v) != loss);
    // A log with only a validation loss is judged on it, as the only loss there is.
    let loss = loss.or(val);
    let Some(loss_col) = loss else {
        return Err(MonitorError::NoLossColumn {
            name: name.to_string(),
            wanted: LOSS_NAMES[..6].join(", "),
            columns: header.join(", "),
        });
    };
    let val = val.filter(|v| *v != loss_col);
    let epoch = names.iter().position(|n| n == "epoch" || n == "epochs");
    let x = find_column(&names, X_NAMES);
    let cols = Columns {
        loss: Some(loss_col),
        epoch,
        lr: find_column(&names, LR_NAMES),
        val,
        kind: names.iter().position(|n| n == "kind"),
        epoch_loss: names
            .iter()
            .position(|n| *n == format!("{}_epoch", names[loss_col].trim_end_matches("_step")))
            .filter(|c| *c != loss_col),
    };
    let loss_name = if sum_train.is_empty() {
        header[loss_col].clone()
    } else {
        sum_train
            .iter()
            .map(|c| header[*c].as_str())
            .collect::<Vec<_>>()
            .join(" + ")
    };
    let mut log = LossLog::new(LogFormat::Csv, loss_name);
    log.x_name = x.or(epoch).map(|c| header[c].clone());
    log.x_unit = match (x, epoch) {
        (Some(_), _) => XUnit::Step,
        (None, Some(_)) => XUnit::Epoch,
        (None, None) => XUnit::Index,
    };
    let x_col = x.or(epoch);
    // Unquoted lines are split into byte ranges (no allocation per cell: a 1M-row log spends
    // most of its reading time here); quoted ones into owned cells.
    let mut owned: Vec<String> = Vec::with_capacity(header.len());
    let mut spans: Vec<(usize, usize)> = Vec::with_capacity(header.len());
    let mut line = String::new();
    let mut no = first_no;
    let mut rows = 0usize;
    loop {
        line.clear();
        no += 1;
        let read = reader.read_line(&mut line).map_err(|e| MonitorError::LogRead {
            name: name.to_string(),
            message: e.to_string(),
        })?;
        if read == 0 {
            break;
        }
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let slow = delim == b' ' || t.contains('"');
        if slow {
            split_cells_into(t, delim, &mut owned);
        } else {
            spans.clear();
            let mut start = 0;
            for (i, b) in t.bytes().enumerate() {
                if b == delim {
                    spans.push((start, i));
                    start = i + 1;
                }
            }
            spans.push((start, t.len()));
        }
        let get = |c: usize| -> Option<&str> {
            if slow {
                owned.get(c).map(String::as_str)
            } else {
                spans.get(c).map(|(a, b)| t[*a..*b].trim())
            }
        };
        // Concatenated logs repeat their header.
        if get(loss_col).is_some_and(|c| c == header[loss_col]) {
            continue;
        }
        rows += 1;
        let cell = |c: Option<usize>| c.and_then(get).filter(|s| !s.is_empty());
        let number = |c: Option<usize>, what: &str| -> Result<Option<f64>, MonitorError> {
            cell(c)
                .map(|s| {
                    parse_number(s).ok_or_else(|| MonitorError::LogParse {
                        name: name.to_string(),
                        line: no,
                        message: format!("{what} {:?} is not a number", clip(s)),
                    })
                })
                .transpose()
        };
        let xv = number(x_col, "step")?;
        let ep = number(cols.epoch, "epoch")?;
        let lr = number(cols.lr, "lr")?;
        let is_epoch_row = cell(cols.kind) == Some("epoch");
        let sum = |cols: &[usize], what: &str| -> Result<Option<f64>, MonitorError> {
            let mut total = 0.0;
            for c in cols {
                match number(Some(*c), what)? {
                    Some(v) => total += v,
                    None => return Ok(None),
                }
            }
            Ok(Some(total))
        };
        let val_value = if sum_val.is_empty() {
            number(cols.val, "validation loss")?
        } else {
            sum(&sum_val, "validation loss")?
        };
        if let Some(v) = val_value {
            log.val.push(ValPoint {
                x: xv.unwrap_or(rows as f64),
                epoch: ep,
                loss: v,
            });
        }
        if let Some(l) = number(cols.epoch_loss, "epoch loss")? {
            log.epochs.push(LogPoint {
                x: ep.unwrap_or(log.epochs.len() as f64 + 1.0),
                loss: l,
                lr,
            });
        }
        let loss_value = if sum_train.is_empty() {
            number(cols.loss, "loss")?
        } else {
            sum(&sum_train, "loss")?
        };
        if let Some(l) = loss_value {
            let point = LogPoint {
                x: xv.unwrap_or(rows as f64),
                loss: l,
                lr,
            };
            if is_epoch_row {
                log.epochs.push(LogPoint {
                    x: ep.unwrap_or(log.epochs.len() as f64 + 1.0),
                    ..point
                });
            } else {
                log.points.push(point);
            }
        }
    }
    // Stride's own log: epoch rows carry the epoch-end step; x in steps for both streams.
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> LossLog {
        read_log(text.as_bytes(), "t", &ReadOptions::default()).unwrap()
    }

    fn losses(log: &LossLog) -> Vec<f64> {
        log.points.iter().map(|p| p.loss).collect()
    }

    #[test]
    fn cells_honour_quotes() {
        assert_eq!(split_cells(r#""a, b",c,"d""e""#, b','), vec!["a, b", "c", "d\"e"]);
        assert_eq!(split_cells("  a   b ", b' '), vec!["a", "b"]);
    }

    #[test]
    fn numbers_parse_like_python_prints_them() {
        assert_eq!(parse_number("tensor(2.5)"), Some(2.5));
        assert_eq!(parse_number("tensor(2.5, grad_fn=<NllLossBackward0>)"), Some(2.5));
        assert!(parse_number("NaN").is_some_and(f64::is_nan));
        assert_eq!(parse_number("-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_number("1e-3"), Some(1e-3));
        assert_eq!(parse_number("abc"), None);
    }

    #[test]
    fn csv_with_usual_names_and_quotes() {
        let log = read("\"Step\",\"Train Loss\",\"LR\"\n1,2.5,0.1\n2,2.0,0.1\n");
        assert_eq!(losses(&log), vec![2.5, 2.0]);
        assert_eq!(log.points[1].x, 2.0);
        assert_eq!(log.points[1].lr, Some(0.1));
        assert_eq!(log.x_unit, XUnit::Step);
        assert_eq!(log.loss_name, "Train Loss");
    }

    #[test]
    fn pandas_headers_and_fastai_tables() {
        assert_eq!(losses(&read(",loss,val_loss\n0,2.3,2.4\n1,2.0,2.1\n")), vec![2.3, 2.0]);
        assert_eq!(losses(&read("Unnamed: 0,loss\n0,2.3\n1,2.0\n")), vec![2.3, 2.0]);
        let log = read("epoch     train_loss  valid_loss  accuracy  time\n0         0.534       0.432       0.85      00:12\n1         0.401       0.398       0.87      00:12\n");
        assert_eq!(losses(&log), vec![0.534, 0.401]);
        assert_eq!(log.val.len(), 2);
    }

    #[test]
    fn yolo_results_sum_the_loss_components() {
        let log = read(
            "               epoch,      train/box_loss,      train/cls_loss,   metrics/mAP50,        val/box_loss,        val/cls_loss,               lr/pg0\n\
                             0,             1.5,             2.5,       0.1,             1.4,             2.4,                0.01\n\
                             1,             1.2,             2.0,       0.2,             1.3,             2.2,                0.01\n",
        );
        assert_eq!(losses(&log), vec![4.0, 3.2]);
        assert_eq!(log.val[1].loss, 3.5);
        assert_eq!(log.points[0].lr, Some(0.01));
        assert_eq!(log.x_unit, XUnit::Epoch);
    }

    #[test]
    fn commented_headers_and_regression_metrics() {
        let log = read("#epoch train_loss val_loss\n0 4.35 4.35\n1 2.73 2.63\n");
        assert_eq!(losses(&log), vec![4.35, 2.73]);
        assert_eq!(log.val.len(), 2);
        let log = read("# a remark\nloss\n2.3\n2.1\n");
        assert_eq!(losses(&log), vec![2.3, 2.1]);
        let log = read("epoch,train_mse,train_r2,val_mse,val_r2\n1,0.83,0.1,0.91,0.1\n2,0.80,0.13,0.87,0.14\n");
        assert_eq!(losses(&log), vec![0.83, 0.8]);
        assert_eq!(log.val.len(), 2);
    }

    #[test]
    fn tsv_and_semicolons() {
        assert_eq!(losses(&read("iter\tloss\n10\t1.5\n20\t1.2\n")), vec![1.5, 1.2]);
        assert_eq!(losses(&read("epoch;loss\n0;1.5\n1;1.2\n")), vec![1.5, 1.2]);
        assert_eq!(read("epoch;loss\n0;1.5\n").x_unit, XUnit::Epoch);
    }

    #[test]
    fn lightning_metrics_with_empty_cells() {
        let text = "epoch,step,train_loss_step,train_loss_epoch,val_loss\n\
                    0,49,2.1,,\n0,99,1.8,,\n0,99,,,1.7\n0,99,,1.95,\n1,149,1.5,,\n1,199,1.4,,\n1,199,,,1.45\n1,199,,1.45,\n";
        let log = read(text);
        assert_eq!(losses(&log), vec![2.1, 1.8, 1.5, 1.4]);
        assert_eq!(log.val.iter().map(|v| v.loss).collect::<Vec<_>>(), vec![1.7, 1.45]);
        assert_eq!(log.val[1].epoch, Some(1.0));
        assert_eq!(log.epochs.iter().map(|v| v.loss).collect::<Vec<_>>(), vec![1.95, 1.45]);
    }

    #[test]
    fn keras_csv_logger() {
        let log = read("epoch,accuracy,loss,learning_rate,val_accuracy,val_loss\n0,0.8,0.6,0.001,0.85,0.5\n1,0.9,0.3,0.001,0.86,0.45\n");
        assert_eq!(losses(&log), vec![0.6, 0.3]);
        assert_eq!(log.x_unit, XUnit::Epoch);
        assert_eq!(log.val.len(), 2);
        assert_eq!(log.points[0].lr, Some(0.001));
    }

    #[test]
    fn stride_metrics_log_splits_steps_and_epochs() {
        let log = read(
            "kind,epoch,step,loss,lr,test_loss,test_accuracy,seconds\nstep,0,1,2.3,0.1,,,\nstep,0,2,2.1,0.1,,,\nepoch,1,2,2.2,0.1,2.0,0.5,1.0\n",
        );
        assert_eq!(losses(&log), vec![2.3, 2.1]);
        assert_eq!(log.epochs.len(), 1);
        assert_eq!(log.epochs[0].x, 1.0);
        assert_eq!(log.val[0].loss, 2.0);
    }

    #[test]
    fn column_option_and_errors_name_what_is_missing() {
        let opts = ReadOptions {
            column: Some("NLL".into()),
        };
        let log = read_log("step,nll,loss\n1,5,1\n".as_bytes(), "t", &opts).unwrap();
        assert_eq!(losses(&log), vec![5.0]);
        let err = read_log("step,acc\n1,0.5\n".as_bytes(), "run.csv", &ReadOptions::default()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("run.csv") && msg.contains("acc") && msg.contains("train_loss"),
            "{msg}"
        );
        let err = read_log("step,loss\n1,abc\n".as_bytes(), "run.csv", &ReadOptions::default()).unwrap_err();
        assert!(err.to_string().contains("run.csv:2"), "{err}");
    }

    #[test]
    fn tensorboard_and_wandb_exports() {
        let log = read("Wall time,Step,Value\n1700000000.5,10,2.5\n1700000001.5,20,2.1\n");
        assert_eq!(losses(&log), vec![2.5, 2.1]);
        assert_eq!(log.points[1].x, 20.0);
        let log =
            read("Step,run-7 - train/loss,run-7 - train/loss__MIN,run-7 - val/loss\n10,2.0,1.9,2.2\n20,1.5,1.4,1.8\n");
        assert_eq!(losses(&log), vec![2.0, 1.5]);
        assert_eq!(log.val.len(), 2);
    }

    #[test]
    fn plain_numbers_and_pairs() {
        let log = read("0.8\n0.5\n\nNaN\n");
        assert_eq!(log.points.len(), 3);
        assert!(log.points[2].loss.is_nan());
        assert_eq!(log.x_unit, XUnit::Index);
        let log = read("100 2.5\n200 2.0\n");
        assert_eq!(log.points[1].x, 200.0);
    }

    #[test]
    fn text_that_starts_like_json() {
        let log = read("[1,  2000] loss: 2.187\n[1,  4000] loss: 1.852\n[2,  2000] loss: 1.501\n");
        assert_eq!(losses(&log), vec![2.187, 1.852, 1.501]);
        assert!(read_log("[1, 2,".as_bytes(), "t", &ReadOptions::default()).is_err());
    }

    #[test]
    fn empty_input_is_an_error() {
        assert!(matches!(
            read_log("\n\n".as_bytes(), "t", &ReadOptions::default()),
            Err(MonitorError::NoLosses { .. })
        ));
    }
}
