//! Run-health monitor for Stride (every state, reason code and threshold: docs/monitor.md): classifies a training run from plain numbers as
//! healthy, slow, plateau, oscillating, diverging or exploded, with the evidence and a concrete
//! learning-rate suggestion. No candle: it can diagnose a log from any framework.
//!
//! ```
//! use stride_monitor::{diagnose_epochs, Action, State};
//! let d = diagnose_epochs(&[0.8, 1.5, 3.2, 8.7, f64::NAN], 1.0);
//! let last = d.last().unwrap();
//! assert_eq!(last.state, State::Diverging);
//! assert_eq!(last.suggestion.action, Action::Rollback);
//! assert_eq!(last.suggestion.new_lr, Some(0.01));
//! ```
#![deny(missing_docs)]

mod config;
mod debounce;
mod diagnose;
mod diagnosis;
mod epoch_rules;
mod error;
mod event;
mod evidence;
pub mod exact;
mod log_columns;
mod log_diagnosis;
mod log_json;
mod log_reader;
mod log_text;
mod long_history;
mod monitor;
mod numfmt;
pub mod range_test;
mod record;
mod run_curve;
mod run_verdict;
mod spikes;
mod state;
pub mod stats;
mod step_rules;
mod step_stream;
mod suggestion;
mod suggestion_rules;
mod validation;
mod window;

pub use config::{MonitorConfig, StepSize};
pub use debounce::Debounce;
pub use diagnose::{diagnose_epoch_records, diagnose_epochs, diagnose_step_records, diagnose_steps, trajectory, worst};
pub use diagnosis::{Diagnosis, Verdict};
pub use error::MonitorError;
pub use event::Event;
pub use evidence::Evidence;
pub use log_diagnosis::{
    diagnose_loss_log, LogDiagnosis, LogOptions, StateChange, StreamChoice, MAX_CHANGES, MAX_TRAJECTORY,
};
pub use log_reader::{read_log, split_cells, LogFormat, LogPoint, LossLog, ReadOptions, ValPoint, XUnit};
pub use monitor::{Monitor, MonitorState};
pub use record::{is_finite_loss, EpochRecord, StepRecord};
pub use run_verdict::{judge_run, Confidence, RunInput, RunVerdict, MIN_POINTS};
pub use state::{Reason, State, Stream};
pub use suggestion::{raise_with_caps, stability_warning, Action, RaiseCaps, Suggestion};
