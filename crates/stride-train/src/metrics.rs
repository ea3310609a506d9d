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
    /// One row per step and per epoch: `kind,epoch,step,loss,lr,test_loss,test_accuracy,seconds`.
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

/// Records every step (epoch, step, loss, lr) and every epoch (train loss,
/// test loss and accuracy, lr, seconds) to a file, flushed at each epoch end.
pub struct MetricsLog {
    path: PathBuf,
    format: MetricsFormat,
    out: BufWriter<File>,
    failed: bool,
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
            failed: false,
        };
        if format == MetricsFormat::Csv && empty {
            log.write_line("kind,epoch,step,loss,lr,test_loss,test_accuracy,seconds".into());
        }
        Ok(log)
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a line; a failing disk is reported once and stops the run.
    fn write_line(&mut self, line: String) {
        if self.failed {
            return;
        }
        if let Err(e) = writeln!(self.out, "{line}") {
            tracing::error!(path = %self.path.display(), error = %e, "cannot write the metrics log");
            self.failed = true;
        }
    }

    fn flush(&mut self) -> Action {
        if !self.failed {
            if let Err(e) = self.out.flush() {
                tracing::error!(path = %self.path.display(), error = %e, "cannot write the metrics log");
                self.failed = true;
            }
        }
        if self.failed {
            Action::Stop(format!("cannot write the metrics log {}", self.path.display()))
        } else {
            Action::Continue
        }
    }
}

/// A number for CSV; empty when absent.
fn cell(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

impl Callback for MetricsLog {
    fn on_step_end(&mut self, s: &StepEnd) -> Action {
        let line = match self.format {
            MetricsFormat::Csv => format!("step,{},{},{},{},,,", s.epoch, s.step, s.loss, s.lr),
            MetricsFormat::JsonLines => {
                json!({"kind": "step", "epoch": s.epoch, "step": s.step, "loss": s.loss, "lr": s.lr}).to_string()
            }
        };
        self.write_line(line);
        Action::Continue
    }

    fn on_epoch_end(&mut self, e: &EpochEnd) -> Action {
        let (test_loss, test_accuracy) = (e.eval.map(|v| v.loss), e.eval.map(|v| v.accuracy));
        let seconds = e.train_time.as_secs_f64();
        let line = match self.format {
            MetricsFormat::Csv => format!(
                "epoch,{},{},{},{},{},{},{seconds}",
                e.epoch,
                e.step,
                e.train_loss,
                e.lr,
                cell(test_loss),
                cell(test_accuracy)
            ),
            MetricsFormat::JsonLines => json!({
                "kind": "epoch", "epoch": e.epoch, "step": e.step, "loss": e.train_loss, "lr": e.lr,
                "test_loss": test_loss, "test_accuracy": test_accuracy, "seconds": seconds,
            })
            .to_string(),
        };
        self.write_line(line);
        self.flush()
    }

    fn on_train_end(&mut self, _history: &History) {
        self.flush();
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
        first.on_step_end(&step(1));
        first.on_train_end(&History::default());
        drop(first);
        let mut resumed = MetricsLog::append(&path).unwrap();
        resumed.on_step_end(&step(2));
        resumed.on_train_end(&History::default());
        drop(resumed);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "kind,epoch,step,loss,lr,test_loss,test_accuracy,seconds\nstep,0,1,1.5,0.1,,,\nstep,0,2,1.5,0.1,,,\n"
        );
        // A fresh run still truncates.
        drop(MetricsLog::create(&path).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
    }
}
