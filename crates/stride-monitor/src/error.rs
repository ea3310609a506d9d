//! The crate's error type.

use thiserror::Error;

/// Errors of `stride-monitor`: a configuration, or a log that cannot be read; data (NaN, Inf) is
/// never an error.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum MonitorError {
    /// A [`MonitorConfig`](crate::MonitorConfig) field is out of its valid range.
    #[error("invalid monitor config: `{field}` = {value} ({expected})")]
    InvalidConfig {
        /// The field name.
        field: &'static str,
        /// The offending value, printed.
        value: String,
        /// What the field must satisfy.
        expected: &'static str,
    },
    /// A log could not be read (I/O).
    #[error("cannot read {name}: {message}")]
    LogRead {
        /// The log's path (`-` for stdin).
        name: String,
        /// The I/O error, printed (kept as text so the error stays `Clone`).
        message: String,
    },
    /// A line of a log that does not parse.
    #[error("{name}:{line}: {message}")]
    LogParse {
        /// The log's path.
        name: String,
        /// 1-based line number.
        line: usize,
        /// What was found and what was expected.
        message: String,
    },
    /// No loss column or key of the wanted name.
    #[error("{name}: no loss column: looked for {wanted}; the log has {columns} (pick one with --column NAME)")]
    NoLossColumn {
        /// The log's path.
        name: String,
        /// The names looked for.
        wanted: String,
        /// The columns or keys the log has.
        columns: String,
    },
    /// The log was read but holds no losses.
    #[error("{name}: no losses found (read as {format}; expected {looked_for})")]
    NoLosses {
        /// The log's path.
        name: String,
        /// The format it was read as.
        format: &'static str,
        /// What the readers look for.
        looked_for: String,
    },
}
