//! The crate's error type.

use thiserror::Error;

/// Errors of `stride-monitor`: only configuration can be wrong; data (NaN, Inf) is never an error.
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
}
