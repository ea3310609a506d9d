//! A metrics log written while training: CSV or JSON lines.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::callback::{Action, Callback, EpochEnd, StepEnd};
use crate::error::{Result, TrainError};
use crate::History;

/// File format of a [`MetricsLog`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsFormat {
    /// One row per step and per epoch: `kind,epoch,step,loss,lr,val_loss,val_accuracy,seconds,train_accuracy,effective_lr`
    /// (`val_*`: the held-out set the trainer evaluates each epoch; the test set is not read
    /// during training).
    Csv,
    /// One JSON object per line, `{"kind":"step",...}` or `{"kind":"epoch",...}`.
    JsonLines,
}

impl MetricsFormat {
    /// CSV for a `.csv` path, JSON lines otherwise.
    pub fn from_path(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("csv") => Self::Csv,
            _ => Self::JsonLines,
        }
    }
}

/// Records every step (epoch from 1, step, loss, lr) and every epoch (train loss,
/// test loss and accuracy, lr, seconds) to a file, flushed after every row so a killed run
/// loses at most the step in flight. A write that fails ends the run with an error naming
/// the file and the OS reason.
pub struct MetricsLog {
    path: PathBuf,
    format: MetricsFormat,
    out: BufWriter<File>,
}

impl MetricsLog {
    /// Creates (truncates) `path`; the format follows the extension.
    pub fn create(path: impl Into<PathBuf>) -> Result<Self> {
        Self::open(path.into(), false)
    }

    /// Appends to `path` (creating it if needed), for a resumed run: the first run's rows
    /// stay, and a CSV header is written only into an empty file. Steps that ran after the
    /// checkpoint the run resumes from appear twice, the resumed run's rows last.
    pub fn append(path: impl Into<PathBuf>) -> Result<Self> {
        Self::open(path.into(), true)
    }

    /// Appends to `path` for a run resumed from a checkpoint taken after `step` steps, at the
    /// start of (0-based) `epoch`'s remaining batches: rows the killed or interrupted run wrote
    /// past that point are dropped first, so every step appears exactly once.
    pub fn resume(path: impl Into<PathBuf>, step: u64, epoch: usize) -> Result<Self> {
        let path = path.into();
        let io = |source| TrainError::Io {
            path: path.clone(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let format = MetricsFormat::from_path(&path);
                let kept: String = text
                    .lines()
                    .filter(|line| keep_row(format, line, step, epoch))
                    .flat_map(|line| [line, "\n"])
                    .collect();
                if kept.len() != text.len() {
                    let tmp = path.with_extension("resume-tmp");
                    std::fs::write(&tmp, kept).map_err(io)?;
                    std::fs::rename(&tmp, &path).map_err(io)?;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        Self::open(path, true)
    }

    fn open(path: PathBuf, append: bool) -> Result<Self> {
        let io = |source| TrainError::Io {
            path: path.clone(),
            source,
        };
        let file = if append {
            std::fs::OpenOptions::new().create(true).append(true).open(&path)
        } else {
            File::create(&path)
        }
        .map_err(io)?;
        let empty = file.metadata().map_err(io)?.len() == 0;
        let format = MetricsFormat::from_path(&path);
        let mut log = Self {
            path,
            format,
            out: BufWriter::new(file),
        };
        if format == MetricsFormat::Csv && empty {
            log.write_line("kind,epoch,step,loss,lr,val_loss,val_accuracy,seconds,train_accuracy,effective_lr".into())?;
        }
        Ok(log)
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes and flushes a line; a failing disk is the run's error.
    fn write_line(&mut self, line: String) -> Result<()> {
        writeln!(self.out, "{line}")
            .and_then(|()| self.out.flush())
            .map_err(|source| TrainError::Io {
                path: self.path.clone(),
                source,
            })
    }
}

/// Whether a row of a metrics file belongs before a resume point: a step row up to `step`,
/// an epoch row of an epoch before `epoch`, the header; unreadable rows are kept.
fn keep_row(format: MetricsFormat, line: &str, step: u64, epoch: usize) -> bool {
    let (kind, row_epoch, row_step) = match format {
        MetricsFormat::Csv => {
            let mut cells = line.split(',');
            let kind = cells.next().unwrap_or_default().to_string();
            let e = cells.next().and_then(|c| c.parse::<usize>().ok());
            let s = cells.next().and_then(|c| c.parse::<u64>().ok());
            (kind, e, s)
        }
        MetricsFormat::JsonLines => match serde_json::from_str::<serde_json::Value>(line) {
            Ok(v) => (
                v.get("kind").and_then(|k| k.as_str()).unwrap_or_default().to_string(),
                v.get("epoch").and_then(|e| e.as_u64()).map(|e| e as usize),
                v.get("step").and_then(|s| s.as_u64()),
            ),
            Err(_) => return true,
        },
    };
    match (kind.as_str(), row_epoch, row_step) {
        ("step", _, Some(s)) => s <= step,
        // Epoch rows are numbered from 1; `epoch` is the 0-based index of the epoch resumed in.
        ("epoch", Some(e), _) => e <= epoch,
        _ => true,
    }
}

/// A number for CSV; empty when absent.
fn cell(v: Option<f64>) -> String {
    v.map(num).unwrap_or_default()
}

/// A float that reads back exactly, in exponent form when it is huge or tiny (a blown-up
/// loss of 1e36 or a rate of 1e308 would otherwise be written out in 37 or 309 digits).
fn num(v: f64) -> String {
    if v != 0.0 && v.is_finite() && !(1e-5..1e7).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        v.to_string()
    }
}

impl Callback for MetricsLog {
    fn on_step_end(&mut self, s: &StepEnd) -> Result<Action> {
        let line = match self.format {
            MetricsFormat::Csv => format!(
                "step,{},{},{},{},,,,,{}",
                s.epoch + 1,
                s.step,
                num(s.loss),
                num(s.lr),
                num(s.effective_lr)
            ),
            MetricsFormat::JsonLines => {
                json!({"kind": "step", "epoch": s.epoch + 1, "step": s.step, "loss": s.loss, "lr": s.lr,
                    "effective_lr": s.effective_lr})
                .to_string()
            }
        };
        self.write_line(line)?;
        Ok(Action::Continue)
    }

    fn on_epoch_end(&mut self, e: &EpochEnd) -> Result<Action> {
        let (test_loss, test_accuracy) = (e.eval.map(|v| v.loss), e.eval.map(|v| v.accuracy));
        let seconds = e.train_time.as_secs_f64();
        let line = match self.format {
            MetricsFormat::Csv => format!(
                "epoch,{},{},{},{},{},{},{seconds},{},",
                e.epoch + 1,
                e.step,
                num(e.train_loss),
                num(e.lr),
                cell(test_loss),
                cell(test_accuracy),
                cell(e.train_accuracy)
            ),
            MetricsFormat::JsonLines => json!({
                "kind": "epoch", "epoch": e.epoch + 1, "step": e.step, "loss": e.train_loss, "lr": e.lr,
                "val_loss": test_loss, "val_accuracy": test_accuracy, "seconds": seconds,
                "train_accuracy": e.train_accuracy,
            })
            .to_string(),
        };
        self.write_line(line)?;
        Ok(Action::Continue)
    }

    fn on_train_end(&mut self, _history: &History) -> Result<()> {
        self.out.flush().map_err(|source| TrainError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(step: u64) -> StepEnd {
        StepEnd {
            step,
            epoch: 0,
            batch: 0,
            batches: 1,
            loss: 1.5,
            lr: 0.1,
            effective_lr: 0.1,
            batch_size: 8,
            grad_norm: None,
            update_ratio: None,
            sharpness: None,
        }
    }

    #[test]
    fn append_keeps_the_first_runs_rows_and_one_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.csv");
        let mut first = MetricsLog::create(&path).unwrap();
        first.on_step_end(&step(1)).unwrap();
        first.on_train_end(&History::default()).unwrap();
        drop(first);
        let mut resumed = MetricsLog::append(&path).unwrap();
        resumed.on_step_end(&step(2)).unwrap();
        resumed.on_train_end(&History::default()).unwrap();
        drop(resumed);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "kind,epoch,step,loss,lr,val_loss,val_accuracy,seconds,train_accuracy,effective_lr\nstep,1,1,1.5,0.1,,,,,0.1\nstep,1,2,1.5,0.1,,,,,0.1\n"
        );
        // A resume drops the rows past its checkpoint (step 1, epoch 0 not finished).
        let mut again = MetricsLog::resume(&path, 1, 0).unwrap();
        again.on_step_end(&step(2)).unwrap();
        drop(again);
        assert_eq!(std::fs::read_to_string(&path).unwrap().matches("step,1,2,").count(), 1);
        // A fresh run still truncates.
        drop(MetricsLog::create(&path).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
    }
}
