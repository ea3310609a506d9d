//! STEP window statistics: block means, OLS on their log, the
//! trend-centred noise `cv`, the lag-1 autocorrelation of residuals and Mann-Kendall on blocks.

use crate::stats::{mann_kendall_z, median, ols};

/// Number of blocks (the t quantile below is for 10 - 2 = 8 degrees of freedom).
pub(crate) const BLOCKS: usize = 10;
/// `t_{0.975, 8}`.
pub(crate) const T_CRIT: f64 = 2.306;

/// Window length `W = min(n, max_w, max(min_w, floor(n/2)))`.
pub(crate) fn window_len(n: u64, min_w: u64, max_w: u64) -> u64 {
    n.min(max_w).min(min_w.max(n / 2))
}

/// Block size `b = 2 max(1, floor(W/20))` (even: cancels a period-2 flip-flop).
pub(crate) fn block_len(w: u64) -> usize {
    2 * (w as usize / 20).max(1)
}

/// The statistics of one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct WindowStats {
    /// Window length `W`.
    pub w: u64,
    /// Block size `b`.
    pub b: usize,
    /// Relative decrease per step `-slope`.
    pub k: f64,
    /// Lower end of the 95 % CI of `k`.
    pub k_lo: f64,
    /// Upper end of the 95 % CI of `k`.
    pub k_hi: f64,
    /// Mann-Kendall Z of the log block means.
    pub mk_z: f64,
    /// Robust relative noise per step.
    pub cv: f64,
    /// Lag-1 autocorrelation of detrended log residuals.
    pub ac1: f64,
    /// Median of the window's values.
    pub level: f64,
    /// Variance of the block means around the line over what the within-block noise predicts
    /// (about 1 for independent noise).
    pub dispersion: f64,
}

impl WindowStats {
    /// Significant decrease: the CI of the slope is below zero.
    pub fn dec_sig(&self) -> bool {
        self.k_lo > 0.0
    }

    /// Significant increase.
    pub fn inc_sig(&self) -> bool {
        self.k_hi < 0.0
    }
}

/// `1.4826 median |ln v_i - ln v_{i-1} + k| / sqrt 2` over consecutive values.
pub(crate) fn trend_centred_cv(values: &[(f64, bool)], k: f64) -> f64 {
    let d: Vec<f64> = values
        .windows(2)
        .map(|p| (p[1].0.ln() - p[0].0.ln() + k).abs())
        .collect();
    if d.is_empty() {
        return 0.0;
    }
    1.4826 * median(&d) / std::f64::consts::SQRT_2
}

/// Statistics of a series of length `n` whose last values (value, is_spike) are `tail`
/// (at least `10 b` of them). `None` when the window is too short.
pub(crate) fn window_stats(n: u64, tail: &[(f64, bool)], min_w: u64, max_w: u64) -> Option<WindowStats> {
    let w = window_len(n, min_w, max_w);
    let b = block_len(w);
    let len = BLOCKS * b;
    if tail.len() < len || (n as usize) < len {
        return None;
    }
    let v = &tail[tail.len() - len..];
    let mut t = [0.0; BLOCKS];
    let mut y = [0.0; BLOCKS];
    for j in 0..BLOCKS {
        let block = &v[j * b..(j + 1) * b];
        let kept: Vec<f64> = block.iter().filter(|(_, s)| !*s).map(|(x, _)| *x).collect();
        let bj = if kept.is_empty() {
            median(&block.iter().map(|(x, _)| *x).collect::<Vec<_>>())
        } else {
            kept.iter().sum::<f64>() / kept.len() as f64
        };
        y[j] = bj.ln();
        t[j] = (j as f64 + 0.5) * b as f64;
    }
    let fit = ols(&t, &y)?;
    let k = -fit.slope;
    let half = T_CRIT * fit.se;
    let cv = trend_centred_cv(v, k);
    let r: Vec<f64> = v.iter().enumerate().map(|(i, (x, _))| x.ln() + k * i as f64).collect();
    let rm = r.iter().sum::<f64>() / r.len() as f64;
    let den: f64 = r.iter().map(|a| (a - rm).powi(2)).sum();
    let num: f64 = r.windows(2).map(|p| (p[0] - rm) * (p[1] - rm)).sum();
    let ac1 = if den > 0.0 { num / den } else { 0.0 };
    let level = median(&v.iter().map(|(x, _)| *x).collect::<Vec<_>>());
    let expected = cv * cv / b as f64;
    let observed = fit.rss / (BLOCKS as f64 - 2.0);
    let dispersion = if expected > 0.0 {
        observed / expected
    } else {
        f64::INFINITY
    };
    Some(WindowStats {
        w,
        b,
        k,
        k_lo: k - half,
        k_hi: k + half,
        mk_z: mann_kendall_z(&y),
        cv,
        ac1,
        level,
        dispersion,
    })
}
