//! [`Diagnosis`]: a verdict with its evidence, events and suggestion.

use crate::event::Event;
use crate::evidence::Evidence;
use crate::state::{Reason, State, Stream};
use crate::suggestion::Suggestion;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The monitor's answer to one observation. The raw verdict: no hysteresis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// The stream whose rules produced the verdict.
    pub stream: Stream,
    /// Step or epoch of the observation.
    pub at: u64,
    /// The state.
    pub state: State,
    /// The rule that fired.
    pub reason: Reason,
    /// The numbers behind it.
    pub evidence: Evidence,
    /// What happened at this observation (spikes, recoveries, LR changes, overfitting).
    pub events: Vec<Event>,
    /// What to do about it.
    pub suggestion: Suggestion,
}

/// The spec's name for a [`Diagnosis`].
pub type Verdict = Diagnosis;

impl Diagnosis {
    /// An `Insufficient` verdict with a keep suggestion.
    pub fn insufficient(stream: Stream, at: u64, evidence: Evidence) -> Self {
        Diagnosis {
            stream,
            at,
            state: State::Insufficient,
            reason: Reason::InsufficientData,
            evidence,
            events: Vec::new(),
            suggestion: Suggestion::keep("not enough observations yet"),
        }
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.state, self.reason, self.suggestion.text)
    }
}
