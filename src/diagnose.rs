//! `stride diagnose`: the monitor's verdict on a loss log from any framework.

use std::path::Path;

use stride_monitor::{
    diagnose_epoch_records, diagnose_step_records, trajectory, Diagnosis, EpochRecord, MonitorConfig, StepRecord,
};

/// A loss log that cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiagnoseError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A line that does not parse.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The file.
        path: std::path::PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was expected.
        message: String,
    },
    /// The log holds no losses.
    #[error("{0}: no losses found (expected a `loss` column, Stride's metrics log, or one number per line)")]
    Empty(std::path::PathBuf),
    /// The monitor rejected its configuration.
    #[error(transparent)]
    Monitor(#[from] stride_monitor::MonitorError),
}

/// Losses read from a log, per step or per epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct LossLog {
    /// `(step, loss, lr)` rows.
    pub steps: Vec<StepRecord>,
    /// `(epoch, train loss, validation loss, lr)` rows.
    pub epochs: Vec<EpochRecord>,
}

impl LossLog {
    /// Reads step rows as epoch rows, for logs that hold one loss per epoch.
    pub fn per_epoch(self) -> Self {
        if !self.epochs.is_empty() {
            return self;
        }
        let epochs = self
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| EpochRecord::new(i as u64, s.loss, s.lr))
            .collect();
        Self {
            steps: Vec::new(),
            epochs,
        }
    }
}

/// Reads a loss log: Stride's metrics log (`--metrics`, CSV or JSON lines),
/// any CSV with a `loss` column (optional `step`, `lr`, `val_loss`/`test_loss`
/// columns), or one loss per line. `default_lr` fills in a missing rate.
pub fn read_loss_log(path: &Path, default_lr: f64) -> Result<LossLog, DiagnoseError> {
    let text = std::fs::read_to_string(path).map_err(|source| DiagnoseError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_loss_log(path, &text, default_lr)
}

/// Parses the text of a loss log (see [`read_loss_log`]); `path` names it in errors.
pub fn parse_loss_log(path: &Path, text: &str, default_lr: f64) -> Result<LossLog, DiagnoseError> {
    let parse_err = |line: usize, message: String| DiagnoseError::Parse {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut log = LossLog {
        steps: Vec::new(),
        epochs: Vec::new(),
    };
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if first.trim_start().starts_with('{') {
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).map_err(|e| parse_err(i + 1, e.to_string()))?;
            let num = |k: &str| v.get(k).and_then(serde_json::Value::as_f64);
            // A NaN loss is written as null by serde_json: it is data, not a gap.
            let loss = num("loss").unwrap_or(f64::NAN);
            let lr = num("lr").unwrap_or(default_lr);
            let epoch_row = match v.get("kind").and_then(serde_json::Value::as_str) {
                Some(kind) => kind == "epoch",
                None => v.get("epoch").is_some() && v.get("step").is_none(),
            };
            match epoch_row {
                true => log.epochs.push(EpochRecord {
                    val_loss: num("test_loss").or_else(|| num("val_loss")),
                    ..EpochRecord::new(num("epoch").unwrap_or(log.epochs.len() as f64) as u64, loss, lr)
                }),
                false => log.steps.push(StepRecord::new(
                    num("step").unwrap_or(log.steps.len() as f64 + 1.0) as u64,
                    loss,
                    lr,
                )),
            }
        }
    } else {
        let header: Vec<String> = first.split(',').map(|h| h.trim().to_ascii_lowercase()).collect();
        let col = |name: &str| header.iter().position(|h| h == name);
        let (loss_col, has_header) = match col("loss") {
            Some(c) => (c, true),
            None if first.trim().parse::<f64>().is_ok() => (0, false),
            None => return Err(parse_err(1, format!("no `loss` column in the header {first:?}"))),
        };
        let (kind_col, step_col, lr_col) = (col("kind"), col("step"), col("lr"));
        let val_col = col("test_loss").or_else(|| col("val_loss"));
        let lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .skip(usize::from(has_header));
        for (i, line) in lines {
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            let cell = |c: Option<usize>| c.and_then(|c| cells.get(c)).filter(|s| !s.is_empty());
            let number = |c: Option<usize>, what: &str| -> Result<Option<f64>, DiagnoseError> {
                cell(c)
                    .map(|s| {
                        s.parse::<f64>()
                            .map_err(|_| parse_err(i + 1, format!("{what} {s:?} is not a number")))
                    })
                    .transpose()
            };
            let loss = number(Some(loss_col), "loss")?.ok_or_else(|| parse_err(i + 1, "missing loss".into()))?;
            let lr = number(lr_col, "lr")?.unwrap_or(default_lr);
            // A row is an epoch when its `kind` says so, or when the file has an `epoch`
            // column and no `step` column.
            let epoch_row = match kind_col {
                Some(_) => cell(kind_col) == Some(&"epoch"),
                None => col("epoch").is_some() && step_col.is_none(),
            };
            if epoch_row {
                let epoch = number(col("epoch"), "epoch")?.unwrap_or(log.epochs.len() as f64) as u64;
                log.epochs.push(EpochRecord {
                    val_loss: number(val_col, "validation loss")?,
                    ..EpochRecord::new(epoch, loss, lr)
                });
            } else {
                let step = number(step_col, "step")?.unwrap_or(log.steps.len() as f64 + 1.0) as u64;
                log.steps.push(StepRecord::new(step, loss, lr));
            }
        }
    }
    if log.steps.is_empty() && log.epochs.is_empty() {
        return Err(DiagnoseError::Empty(path.to_path_buf()));
    }
    Ok(log)
}

/// Which stream of a log to judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StreamChoice {
    /// Steps when the log has any, else epochs.
    Auto,
    /// Per-step losses (a plain list is read as steps).
    Step,
    /// Per-epoch losses (a plain list is read as epochs).
    Epoch,
}

/// Judges the chosen stream; returns the stream used and the online trajectory.
pub fn diagnose_log(
    log: LossLog,
    config: MonitorConfig,
    stream: StreamChoice,
) -> Result<(StreamChoice, Vec<Diagnosis>), DiagnoseError> {
    let use_epochs = match stream {
        StreamChoice::Auto => log.steps.is_empty(),
        StreamChoice::Step => false,
        StreamChoice::Epoch => true,
    };
    Ok(if use_epochs {
        (
            StreamChoice::Epoch,
            diagnose_epoch_records(&log.per_epoch().epochs, config)?,
        )
    } else {
        (StreamChoice::Step, diagnose_step_records(&log.steps, config)?)
    })
}

/// A report: the trajectory in letters, every change of state, and the final verdict.
pub fn render(diagnoses: &[Diagnosis]) -> String {
    let mut out = format!(
        "trajectory ({} observations): {}\n",
        diagnoses.len(),
        trajectory(diagnoses)
    );
    let mut last = None;
    for d in diagnoses {
        if Some(d.state) != last {
            out += &format!(
                "  at {:>6}: {:<16} {:<22} {}\n",
                d.at,
                d.state.to_string(),
                d.reason.code(),
                d.suggestion.text
            );
            last = Some(d.state);
        }
    }
    if let Some(d) = diagnoses.last() {
        out += &format!("verdict: {} ({}): {}\n", d.state, d.reason.code(), d.suggestion.text);
    }
    out
}
