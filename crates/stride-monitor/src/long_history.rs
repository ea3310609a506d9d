//! The whole run so far in at most 64 block medians, for the STEP stream: its 200-step window
//! cannot tell a noisy small-batch run that is still improving from a stall (at batch 8 the
//! loss's noise over 200 steps is larger than its decrease), but the run's own history can.
//! Blocks start at 8 steps and double when full, so memory stays bounded (64 medians and one
//! block of raw values, at most [`MAX_KEPT`] of them) and a trend is judged against the noise of
//! the block medians themselves.

use crate::run_curve::Curve;
use crate::stats::median_in_place;
use serde::{Deserialize, Serialize};

const MAX_BLOCKS: usize = 64;
const FIRST_BLOCK: usize = 8;
/// Blocks needed before the history has an opinion.
const MIN_BLOCKS: usize = 8;
/// Raw values kept of one block. Blocks double as the run grows (to about a 32nd of it), so a
/// larger block's median is taken on every `block / MAX_KEPT`-th value: the memory, and a
/// checkpoint of it, stay bounded. Blocks reach this size after about 16,000 steps; shorter
/// runs are judged on every value, as before.
pub(crate) const MAX_KEPT: usize = 512;

/// What the long history says about the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LongTrend {
    /// The last third of the history fell significantly, by at least 1 % of the run's progress.
    pub improving: bool,
    /// The level rose significantly after its minimum (the whole-run rule).
    pub rising: bool,
    /// Confidently flat: the last third fell by less than 5 % of the run's progress, even at
    /// the top of its noise band (a noisy curve is not called flat for lack of evidence).
    pub flat: bool,
    /// The run made significant progress from its start to its best block.
    pub progressed: bool,
}

/// Block medians of the run so far.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct LongHistory {
    block: usize,
    /// Values of the current block seen so far (kept or not).
    seen: usize,
    /// The kept values of the current block.
    #[serde(with = "crate::exact")]
    current: Vec<f64>,
    /// `(x, median)` per complete block.
    #[serde(with = "crate::exact")]
    medians: Vec<(f64, f64)>,
}

impl LongHistory {
    /// Adds one (finite) loss observed at step `x`.
    pub fn push(&mut self, x: f64, loss: f64) {
        if self.block == 0 {
            self.block = FIRST_BLOCK;
        }
        // Powers of two: the stride divides the block, so every block keeps the same count.
        let stride = (self.block / MAX_KEPT).max(1);
        if self.seen % stride == 0 {
            self.current.push(loss);
        }
        self.seen += 1;
        if self.seen >= self.block {
            let m = median_in_place(&mut self.current);
            self.medians.push((x, m));
            self.current.clear();
            self.seen = 0;
            if self.medians.len() == MAX_BLOCKS {
                // Merge pairs: the mean of two neighbouring medians stands for the median of
                // the double block (exact for a locally linear trend).
                self.medians = self
                    .medians
                    .chunks(2)
                    .map(|p| (p[p.len() - 1].0, p.iter().map(|v| v.1).sum::<f64>() / p.len() as f64))
                    .collect();
                self.block *= 2;
            }
        }
    }

    /// Trims a restored state to the history's sizes (older medians go first).
    pub fn fit(&mut self) {
        let extra = self.medians.len().saturating_sub(MAX_BLOCKS - 1);
        self.medians.drain(..extra);
        self.current.truncate(MAX_KEPT);
    }

    /// The trend, once there are enough blocks.
    pub fn trend(&self) -> Option<LongTrend> {
        if self.medians.len() < MIN_BLOCKS {
            return None;
        }
        let x: Vec<f64> = self.medians.iter().map(|v| v.0).collect();
        let y: Vec<f64> = self.medians.iter().map(|v| v.1).collect();
        let c = Curve::new(&x, &y);
        let drop = c.start - c.min();
        let recent = c.recent_drop();
        Some(LongTrend {
            improving: c.significant(recent) && recent >= 0.01 * drop.max(0.0),
            rising: crate::run_verdict::rising_after_min(&c, drop),
            flat: drop > 0.0 && recent + 2.0 * std::f64::consts::SQRT_2 * c.se < 0.05 * drop,
            progressed: c.significant(drop),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_stays_bounded_and_a_slow_noisy_decrease_is_seen() {
        let mut h = LongHistory::default();
        let mut r: u64 = 7;
        for t in 0..100_000u64 {
            r = (1103515245 * r + 12345) % (1 << 31);
            let noise = 2.0 * (r as f64 / (1u64 << 31) as f64) - 1.0;
            h.push(t as f64, (2.0 - 1e-5 * t as f64) * (1.0 + 0.5 * noise));
        }
        assert!(h.medians.len() < MAX_BLOCKS && h.current.len() <= MAX_KEPT && h.seen < h.block);
        assert!(h.block > MAX_KEPT, "the test reaches subsampled blocks");
        assert_eq!(
            h.trend(),
            Some(LongTrend {
                improving: true,
                rising: false,
                flat: false,
                progressed: true
            })
        );
    }
}
