//! `stride diagnose`: the monitor's verdict on a loss log from any framework. The reading and
//! the rules live in `stride-monitor` ([`stride_monitor::read_log`],
//! [`stride_monitor::diagnose_loss_log`]); this module opens the file (or stdin) and writes the
//! report.

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

pub use stride_monitor::{LogDiagnosis, LogOptions, LossLog, ReadOptions, StreamChoice};

/// A loss log that cannot be read or judged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiagnoseError {
    /// The file could not be opened.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The log does not parse, has no losses, or the monitor rejected its configuration.
    #[error(transparent)]
    Monitor(#[from] stride_monitor::MonitorError),
}

/// Which losses to judge (the command-line spelling of [`StreamChoice`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StreamArg {
    /// Steps when the log has any, else epochs.
    Auto,
    /// Per-step losses (a plain list is read as steps).
    Step,
    /// Per-epoch losses (a plain list is read as epochs).
    Epoch,
}

impl From<StreamArg> for StreamChoice {
    fn from(s: StreamArg) -> Self {
        match s {
            StreamArg::Auto => StreamChoice::Auto,
            StreamArg::Step => StreamChoice::Step,
            StreamArg::Epoch => StreamChoice::Epoch,
        }
    }
}

/// Reads a loss log from `path` (`-` is stdin), streaming it line by line; `column` names the
/// loss column when the usual names do not fit.
pub fn open_loss_log(path: &Path, column: Option<&str>) -> Result<LossLog, DiagnoseError> {
    let opts = ReadOptions {
        column: column.map(str::to_string),
    };
    let name = path.display().to_string();
    if path == Path::new("-") {
        let stdin = std::io::stdin();
        return Ok(stride_monitor::read_log(stdin.lock(), "-", &opts)?);
    }
    let file = std::fs::File::open(path).map_err(|source| DiagnoseError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(stride_monitor::read_log(
        BufReader::with_capacity(1 << 16, file),
        &name,
        &opts,
    )?)
}

/// Reads and judges a log.
pub fn diagnose_path(path: &Path, column: Option<&str>, opts: &LogOptions) -> Result<LogDiagnosis, DiagnoseError> {
    let log = open_loss_log(path, column)?;
    Ok(stride_monitor::diagnose_loss_log(&log, opts)?)
}

/// Writes the report (text, or JSON with `json`); the caller treats a broken pipe as the
/// reader having seen enough.
pub fn write_report(mut out: impl Write, d: &LogDiagnosis, json: bool, auto: bool) -> std::io::Result<()> {
    if json {
        let text = serde_json::to_string_pretty(&d.to_json()).map_err(std::io::Error::other)?;
        writeln!(out, "{text}")?;
    } else {
        let stream = match d.stream {
            stride_monitor::Stream::Epoch => "epoch",
            _ => "step",
        };
        writeln!(out, "read: {}", d.read)?;
        writeln!(out, "stream: {stream}{}", if auto { " (auto)" } else { "" })?;
        out.write_all(d.render().as_bytes())?;
    }
    out.flush()
}

/// Reads a loss log with the usual names, giving rows without a rate the run's rate `lr` (the
/// caller knows it; `stride diagnose` itself never invents one).
pub fn read_loss_log(path: &Path, lr: f64) -> Result<LossLog, DiagnoseError> {
    Ok(with_rate(open_loss_log(path, None)?, lr))
}

/// Parses the text of a loss log (see [`read_loss_log`]); `path` names it in errors.
pub fn parse_loss_log(path: &Path, text: &str, lr: f64) -> Result<LossLog, DiagnoseError> {
    let name = path.display().to_string();
    let log = stride_monitor::read_log(text.as_bytes(), &name, &ReadOptions::default())?;
    Ok(with_rate(log, lr))
}

fn with_rate(mut log: LossLog, lr: f64) -> LossLog {
    for p in log.points.iter_mut().chain(log.epochs.iter_mut()) {
        p.lr.get_or_insert(lr);
    }
    log
}

/// The live monitor's verdict after every observation of the chosen stream (no hysteresis):
/// the raw trajectory, for tests of the rules; `stride diagnose` reports
/// [`stride_monitor::diagnose_loss_log`] instead. Returns the stream used.
pub fn diagnose_log(
    log: LossLog,
    config: stride_monitor::MonitorConfig,
    stream: StreamChoice,
) -> Result<(StreamChoice, Vec<stride_monitor::Diagnosis>), DiagnoseError> {
    let use_epochs = match stream {
        StreamChoice::Auto | StreamChoice::Step => log.points.is_empty(),
        StreamChoice::Epoch => true,
    };
    let lr = |p: &stride_monitor::LogPoint| p.lr.unwrap_or(f64::NAN);
    Ok(if use_epochs {
        let src = if log.epochs.is_empty() {
            &log.points
        } else {
            &log.epochs
        };
        let records: Vec<stride_monitor::EpochRecord> = src
            .iter()
            .enumerate()
            .map(|(i, p)| stride_monitor::EpochRecord::new(i as u64 + 1, p.loss, lr(p)))
            .collect();
        (
            StreamChoice::Epoch,
            stride_monitor::diagnose_epoch_records(&records, config)?,
        )
    } else {
        let records: Vec<stride_monitor::StepRecord> = log
            .points
            .iter()
            .map(|p| stride_monitor::StepRecord::new(p.x.max(0.0) as u64, p.loss, lr(p)))
            .collect();
        (
            StreamChoice::Step,
            stride_monitor::diagnose_step_records(&records, config)?,
        )
    })
}

/// The raw trajectory in letters, every change of state, and the last verdict.
pub fn render(diagnoses: &[stride_monitor::Diagnosis]) -> String {
    let mut out = format!(
        "trajectory ({} observations): {}\n",
        diagnoses.len(),
        stride_monitor::trajectory(diagnoses)
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
