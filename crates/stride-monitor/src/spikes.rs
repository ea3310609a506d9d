//! Causal spike detector with episodes ("spike" in docs/monitor.md#what-it-reads), used on the loss and the grad norm.

use crate::config::MonitorConfig;
use crate::stats::{median, median_in_place};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Accepted values kept for the level (last 5) and the noise scale (last 32).
const ACCEPTED_LEN: usize = 32;
const LEVEL_LEN: usize = 5;
const MIN_ACCEPTED: usize = 10;
/// Episode starts older than this many observations are forgotten (the window is at most 200).
const EPISODE_MEMORY: u64 = 200;

/// An open spike episode.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Episode {
    /// Observation count (1-based) of the opening spike.
    pub start_n: u64,
    /// Step of the opening spike.
    pub start_step: u64,
    /// Level before the spike.
    #[serde(with = "crate::exact")]
    pub pre_level: f64,
}

/// What one observation did to the detector.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct SpikeOutcome {
    /// The value is a spike.
    pub spike: bool,
    /// Level before the spike, when it is one.
    pub level: f64,
    /// The spike opened a new episode.
    pub opened: bool,
    /// The open episode closed at this observation.
    pub recovered: bool,
}

/// Spike detector state: bounded (32 accepted values, episode starts of the last 200 observations).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct SpikeDetector {
    #[serde(with = "crate::exact")]
    accepted: VecDeque<f64>,
    open: Option<Episode>,
    starts: VecDeque<u64>,
    /// Reused buffer, cleared before each use: not state.
    #[serde(skip)]
    scratch: Vec<f64>,
}

impl SpikeDetector {
    /// Feeds observation number `n` (1-based, finite `x`).
    pub fn observe(&mut self, n: u64, step: u64, x: f64, cfg: &MonitorConfig) -> SpikeOutcome {
        let mut out = SpikeOutcome::default();
        if let Some(ep) = self.open {
            if x <= cfg.spike_recovery * ep.pre_level {
                self.open = None;
                out.recovered = true;
            }
        }
        if self.accepted.len() >= MIN_ACCEPTED {
            let k = self.accepted.len();
            self.scratch.clear();
            self.scratch.extend(self.accepted.iter().skip(k - LEVEL_LEN));
            let level = median_in_place(&mut self.scratch);
            self.scratch.clear();
            let mut prev = None;
            for &a in &self.accepted {
                if let Some(p) = prev {
                    self.scratch.push(a - p);
                }
                prev = Some(a);
            }
            let m = median(&self.scratch);
            for d in self.scratch.iter_mut() {
                *d = (*d - m).abs();
            }
            let mad = median_in_place(&mut self.scratch);
            let sigma = (1.4826 * mad / std::f64::consts::SQRT_2).max(1e-6 * level.abs());
            if x > level + cfg.spike_z * sigma && x >= cfg.spike_rel * level {
                out.spike = true;
                out.level = level;
            }
        }
        if out.spike && self.open.is_none() {
            self.open = Some(Episode {
                start_n: n,
                start_step: step,
                pre_level: out.level,
            });
            self.starts.push_back(n);
            out.opened = true;
        }
        if !out.spike && self.open.is_none() {
            if self.accepted.len() == ACCEPTED_LEN {
                self.accepted.pop_front();
            }
            self.accepted.push_back(x);
        }
        while self.starts.front().is_some_and(|s| s + EPISODE_MEMORY <= n) {
            self.starts.pop_front();
        }
        out
    }

    /// Trims a restored state to the detector's buffer sizes.
    pub fn fit(&mut self) {
        crate::step_stream::trim_front(&mut self.accepted, ACCEPTED_LEN);
        crate::step_stream::trim_front(&mut self.starts, EPISODE_MEMORY as usize);
    }

    /// The open episode, if any.
    pub fn open(&self) -> Option<Episode> {
        self.open
    }

    /// Episodes started within the last `w` observations (up to observation `n`).
    pub fn started_within(&self, n: u64, w: u64) -> u32 {
        self.starts.iter().filter(|s| **s + w > n).count() as u32
    }
}
