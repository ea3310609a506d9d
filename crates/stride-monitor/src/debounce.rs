use crate::state::State;
use serde::{Deserialize, Serialize};

/// Display-layer hysteresis (docs/monitor.md#how-the-live-display-smooths-the-verdicts): what a user is shown, live.
///
/// Divergence and explosions are shown at once; any other change of state
/// only once the new state has held for `confirm` observations in a row, or
/// for an eighth of the run so far when that is longer (at most 2,000), so
/// a run that flickers (a period-2 reading in minibatch noise, healthy and
/// plateau taking turns near a floor for tens of steps at batch 8-64) is not
/// reported at every flicker.
/// The classifier's raw verdicts are unchanged; tests of the rules use those.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Debounce {
    confirm: u32,
    shown: State,
    pending: State,
    count: u32,
    seen: u64,
}

impl Debounce {
    /// Shows a non-alarm state after `confirm` consecutive observations (at least 1).
    pub fn new(confirm: u32) -> Self {
        Self {
            confirm: confirm.max(1),
            shown: State::Insufficient,
            pending: State::Insufficient,
            count: 0,
            seen: 0,
        }
    }

    /// The state currently shown.
    pub fn shown(&self) -> State {
        self.shown
    }

    /// Feeds a raw verdict; returns the newly shown state when it changes.
    pub fn update(&mut self, state: State) -> Option<State> {
        self.seen += 1;
        if state == self.shown || state == State::Insufficient {
            self.count = 0;
            self.pending = state;
            return None;
        }
        if state == self.pending {
            self.count += 1;
        } else {
            self.pending = state;
            self.count = 1;
        }
        // Leaving "not enough data" needs only `confirm`: the first verdict is news.
        let hold = if self.shown == State::Insufficient {
            self.confirm
        } else {
            self.confirm.max((self.seen / 8).min(2000) as u32)
        };
        if state.is_terminal() || self.count >= hold {
            self.shown = state;
            self.count = 0;
            Some(state)
        } else {
            None
        }
    }

    /// Forgets what was shown (after a rollback the run starts over).
    pub fn reset(&mut self) {
        *self = Self::new(self.confirm);
    }
}

impl Default for Debounce {
    /// Ten observations: about a twentieth of an epoch of the reference workload.
    fn default() -> Self {
        Self::new(10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use State::*;

    #[test]
    fn flickers_are_not_shown_alarms_are() {
        let mut d = Debounce::new(3);
        let shown: Vec<Option<State>> = [
            Healthy,
            Healthy,
            Healthy,
            Oscillating,
            Healthy,
            Oscillating,
            Oscillating,
        ]
        .into_iter()
        .map(|s| d.update(s))
        .collect();
        assert_eq!(shown, vec![None, None, Some(Healthy), None, None, None, None]);
        assert_eq!(d.update(Oscillating), Some(Oscillating));
        assert_eq!(d.update(Diverging), Some(Diverging), "divergence is shown at once");
        d.reset();
        assert_eq!(d.shown(), Insufficient);
    }
}
