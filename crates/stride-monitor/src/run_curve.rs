//! A whole run's loss curve summarised by robust, scale- and shift-free statistics: bin medians,
//! the noise the curve itself shows, and where its minimum lies. Every comparison the judge of
//! [`run_verdict`](crate::run_verdict) makes is a difference of two of these numbers against
//! this noise or against the run's own progress, so adding a constant to the losses or
//! multiplying them by one changes no verdict.

use crate::stats::{mann_kendall_z, median, median_in_place};

/// The most bins a curve is summarised into (a run logged every step or every 100 steps is
/// the same curve; only its noise per bin differs).
const MAX_BINS: usize = 40;

/// A binned loss curve.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Curve {
    /// Bin medians, in order (the values themselves for short logs).
    pub s: Vec<f64>,
    /// Median x of each bin.
    pub x: Vec<f64>,
    /// Index of the first value of each bin in the input.
    pub first: Vec<usize>,
    /// Standard error of one bin median (robust, from the last half of the run).
    pub se: f64,
    /// Robust standard deviation of one raw value around the local level (last half).
    pub sigma: f64,
    /// Loss of the initial weights: the median of the first few raw values.
    pub start: f64,
    /// Robust level at the end (median of the last bin, or of the last 3 values).
    pub end: f64,
    /// Index of the lowest bin.
    pub argmin: usize,
}

impl Curve {
    /// Summarises finite `y` (at least 1 value) logged at `x`, with the noise estimates the
    /// live history rules were tuned on.
    pub fn new(x: &[f64], y: &[f64]) -> Curve {
        Curve::build(x, y, false)
    }

    /// The same summary for the whole-run judge, whose noise must hold for short bins and
    /// handfuls of points too (see `build`).
    pub fn of_run(x: &[f64], y: &[f64]) -> Curve {
        Curve::build(x, y, true)
    }

    fn build(x: &[f64], y: &[f64], honest: bool) -> Curve {
        let n = y.len();
        // Short logs (epoch means, a loss every 100 steps) are judged point by point; longer
        // ones in bins of at least 3 values, so that a bin's median has a noise to measure.
        let bins = bin_count(n);
        let s = bin_medians(y, bins);
        let (xs, first): (Vec<f64>, Vec<usize>) = (0..bins)
            .map(|b| {
                let r = bin_range(b, bins, n);
                (x[(r.start + r.end - 1) / 2], r.start)
            })
            .unzip();
        let per_bin = (n / bins).max(1);
        let half = &y[n / 2..];
        let sigma = if per_bin >= 3 {
            // Within-bin spread around each bin's median over the last half.
            let mut dev = Vec::with_capacity(half.len());
            for b in bins / 2..bins {
                let (lo, hi) = (first[b], if b + 1 < bins { first[b + 1] } else { n });
                let m = s[b];
                dev.extend(y[lo..hi].iter().map(|v| (v - m).abs()));
            }
            1.4826 * median_in_place(&mut dev)
        } else {
            // Residuals from a running median of 3: zero for a smooth curve, the noise otherwise
            // (a median of 3 follows the noise a little, hence the 1.5).
            let tail = &y[(n / 3).min(n.saturating_sub(5))..];
            let mut dev: Vec<f64> = (1..tail.len().saturating_sub(1))
                .map(|i| {
                    let mut w = [tail[i - 1], tail[i], tail[i + 1]];
                    (tail[i] - median_in_place(&mut w)).abs()
                })
                .collect();
            // With a handful of residuals the median is often one of the zeros a running
            // median leaves (5 points: 3 residuals), and the log would look noise-free: the
            // mean absolute residual then.
            if honest && dev.len() < 8 {
                let mean = dev.iter().sum::<f64>() / dev.len().max(1) as f64;
                1.5 * 1.2533 * mean
            } else {
                1.5 * 1.4826 * median_in_place(&mut dev).max(0.0)
            }
        };
        // A median of 3 values sits on one of them: the within-bin spread of short bins
        // understates the noise (and so inflates every t). The point-to-point changes of the
        // last half measure it without bins (a trend between neighbours only adds to it).
        let sigma = if honest && (3..6).contains(&per_bin) {
            let mut d: Vec<f64> = half.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
            sigma.max(1.0483 * median_in_place(&mut d))
        } else {
            sigma
        };
        let sigma = if sigma.is_finite() { sigma } else { 0.0 };
        let se = if per_bin >= 3 {
            1.2533 * sigma / (per_bin as f64).sqrt()
        } else {
            sigma
        };
        // The loss of the initial weights: the first bin, or the first value when the first
        // bin is inflated by a blow-up (REAL_RUNS.md).
        let start = s[0].min(y[0]);
        let end = if per_bin >= 3 {
            s[bins - 1]
        } else {
            median(&y[n.saturating_sub(3.min(n))..])
        };
        let argmin = s
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i);
        Curve {
            s,
            x: xs,
            first,
            se,
            sigma,
            start,
            end,
            argmin,
        }
    }

    /// The lowest bin median.
    pub fn min(&self) -> f64 {
        self.s[self.argmin]
    }

    /// The lowest level, robustly: for a log judged point by point, the lowest running median
    /// of 3 (one lucky minibatch among a handful of logged values is not a level); else the
    /// lowest bin median.
    pub fn robust_min(&self) -> f64 {
        let b = self.len();
        if b < 5 || self.first.last() != Some(&(b - 1)) {
            return self.min();
        }
        self.s
            .windows(3)
            .map(|w| {
                let mut w = [w[0], w[1], w[2]];
                median_in_place(&mut w)
            })
            .fold(f64::INFINITY, f64::min)
    }

    /// The highest bin median.
    pub fn max(&self) -> f64 {
        self.s.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    }

    /// Number of bins.
    pub fn len(&self) -> usize {
        self.s.len()
    }

    /// A difference of two robust levels that noise alone does not explain (3 standard errors,
    /// and more than a millionth of the curve's scale so that a noise-free curve is not judged
    /// on rounding).
    pub fn significant(&self, diff: f64) -> bool {
        let scale = self.start.abs().max(self.end.abs()).max(self.max() - self.min());
        diff > 3.0 * self.se * std::f64::consts::SQRT_2 && diff > 1e-6 * scale
    }

    /// Mann-Kendall Z of the bins from `from` on.
    pub fn trend_from(&self, from: usize) -> f64 {
        mann_kendall_z(&self.s[from.min(self.s.len())..])
    }

    /// Rises in a row at the end of the curve (bin to bin, each more than one standard error).
    pub fn rises_at_end(&self) -> usize {
        self.s
            .windows(2)
            .rev()
            .take_while(|w| w[1] - w[0] > self.se.max(1e-12 * w[0].abs()))
            .count()
    }

    /// OLS slope (per unit of x) of the bin medians `from..to` and its t statistic against the
    /// bins' noise: a trend read from every bin, not from the difference of two of them, so a
    /// steady fall is seen through noise that hides it from a two-bin comparison.
    pub fn slope(&self, from: usize, to: usize) -> Option<(f64, f64)> {
        let to = to.min(self.len());
        if to < from + 3 {
            return None;
        }
        let (xs, ys) = (&self.x[from..to], &self.s[from..to]);
        let k = xs.len() as f64;
        let mx = xs.iter().sum::<f64>() / k;
        let my = ys.iter().sum::<f64>() / k;
        let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
        if sxx <= 0.0 {
            return None;
        }
        let b = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum::<f64>() / sxx;
        let scale = self.start.abs().max(self.end.abs()).max(self.max() - self.min());
        // A noise-free curve: its t is judged against rounding (a millionth of its scale).
        let se = (self.se / sxx.sqrt()).max(1e-6 * scale / (xs[xs.len() - 1] - xs[0]).max(f64::MIN_POSITIVE));
        Some((b, if se > 0.0 { b / se } else { 0.0 }))
    }

    /// Decrease from the start of the last third of the bins to the end.
    pub fn recent_drop(&self) -> f64 {
        let b = self.len();
        let from = (b - b.div_ceil(3).max(3).min(b)).min(b - 1);
        self.s[from] - self.end
    }
}

/// How many bins `n` values are summarised into: the values themselves under 15, else bins of
/// at least 3 values (5 to [`MAX_BINS`]), so that a bin's median has a noise to measure.
fn bin_count(n: usize) -> usize {
    if n < 15 {
        n.max(1)
    } else {
        (n / 3).clamp(5, MAX_BINS)
    }
}

/// The values of bin `b` of `bins` over `n` values (never empty).
fn bin_range(b: usize, bins: usize, n: usize) -> std::ops::Range<usize> {
    let lo = b * n / bins;
    lo..((b + 1) * n / bins).max(lo + 1)
}

/// The median of each of `bins` bins of `y`.
fn bin_medians(y: &[f64], bins: usize) -> Vec<f64> {
    let mut scratch = Vec::new();
    (0..bins)
        .map(|b| {
            scratch.clear();
            scratch.extend_from_slice(&y[bin_range(b, bins, y.len())]);
            median_in_place(&mut scratch)
        })
        .collect()
}

/// Transient excursions: runs of consecutive values far above the curve's local level that came
/// back to it (a loss spike that recovered by itself), as index ranges into `y`. The level is
/// the median of the (up to) seven bin medians centred on each bin, which a spike a few bins
/// long does not move; an excursion needs one value above it by 8 times the noise and a quarter of the curve's
/// range, spans the neighbours above 3 times the noise, ends before the last tenth of the log
/// and, all excursions together, covers at most 5 % of the values. Noisier curves (batch 1,
/// the bounce of a blown-up run) are their noise, and a rise at the end has not recovered:
/// neither is an excursion.
pub(crate) fn transient_excursions(y: &[f64]) -> Vec<std::ops::Range<usize>> {
    let n = y.len();
    if n < 40 {
        return Vec::new();
    }
    // The bins of the curve the judge reads (the same count and bounds).
    let bins = bin_count(n);
    let s = bin_medians(y, bins);
    let mut scratch = Vec::new();
    let base: Vec<f64> = (0..bins)
        .map(|b| {
            scratch.clear();
            // Symmetric, so that a steep fall at either end is its own level.
            let h = 3.min(b).min(bins - 1 - b);
            scratch.extend_from_slice(&s[b - h..=b + h]);
            median_in_place(&mut scratch)
        })
        .collect();
    let level = |i: usize| base[(i * bins / n).min(bins - 1)];
    let mut dev: Vec<f64> = (0..n).map(|i| (y[i] - level(i)).abs()).collect();
    let noise = 1.4826 * median_in_place(&mut dev);
    let range =
        base.iter().copied().fold(f64::NEG_INFINITY, f64::max) - base.iter().copied().fold(f64::INFINITY, f64::min);
    let (high, far) = (3.0 * noise, (8.0 * noise).max(0.25 * range));
    if !(far > 0.0 && far.is_finite()) {
        return Vec::new();
    }
    let mut out: Vec<std::ops::Range<usize>> = Vec::new();
    let mut i = 0;
    while i < n {
        if y[i] - level(i) <= far {
            i += 1;
            continue;
        }
        let mut lo = i;
        while lo > 0 && y[lo - 1] - level(lo - 1) > high {
            lo -= 1;
        }
        let mut hi = i + 1;
        while hi < n && y[hi] - level(hi) > high {
            hi += 1;
        }
        // A spike rises from the level: the first values of a steep start are not one.
        if lo > 0 {
            match out.last_mut() {
                Some(prev) if lo <= prev.end => prev.end = hi,
                _ => out.push(lo..hi),
            }
        }
        i = hi;
    }
    let recovered = out.last().is_none_or(|r| r.end + (n / 10).max(5) <= n);
    let total: usize = out.iter().map(|r| r.len()).sum();
    if !recovered || total * 20 > n {
        return Vec::new();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(y: &[f64]) -> Curve {
        let x: Vec<f64> = (0..y.len()).map(|i| i as f64).collect();
        Curve::new(&x, y)
    }

    #[test]
    fn shift_and_scale_free() {
        let y: Vec<f64> = (0..500)
            .map(|t| 2.0 * (-0.01 * t as f64).exp() + 0.1 * ((t * 7919 % 13) as f64 / 13.0 - 0.5))
            .collect();
        let a = curve(&y);
        let shifted: Vec<f64> = y.iter().map(|v| 10.0 * v - 3.0).collect();
        let b = curve(&shifted);
        assert!((b.se - 10.0 * a.se).abs() < 1e-9 * b.se.max(1.0));
        assert_eq!(a.argmin, b.argmin);
        assert!(((b.start + 3.0) / 10.0 - a.start).abs() < 1e-9);
    }

    #[test]
    fn a_spike_that_recovered_is_an_excursion_a_rise_at_the_end_is_not() {
        let noisy = |t: usize| 2.0 * (-(t as f64) / 150.0).exp() + 0.3 + 0.01 * ((t * 7919 % 13) as f64 / 13.0 - 0.5);
        let mut y: Vec<f64> = (0..600).map(noisy).collect();
        for (k, v) in y[300..320].iter_mut().enumerate() {
            *v *= 1.0 + 4.0 * (-(k as f64) / 4.0).exp();
        }
        let ex = transient_excursions(&y);
        assert_eq!(ex.len(), 1, "{ex:?}");
        assert!(ex[0].start == 300 && (305..=320).contains(&ex[0].end), "{ex:?}");
        // The same rise in the last 20 values has not come back.
        let mut end: Vec<f64> = (0..600).map(noisy).collect();
        for v in end[580..].iter_mut() {
            *v *= 5.0;
        }
        assert!(transient_excursions(&end).is_empty());
        // Clean curves have none.
        assert!(transient_excursions(&(0..600).map(noisy).collect::<Vec<_>>()).is_empty());
    }

    #[test]
    fn a_smooth_short_curve_has_no_noise() {
        let c = curve(&[0.8, 0.5, 0.4, 0.38, 0.37]);
        assert_eq!(c.sigma, 0.0);
        assert!(c.significant(0.01));
        assert_eq!(c.argmin, 4);
    }
}
