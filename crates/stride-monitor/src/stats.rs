//! Robust statistics used by the rules: median, MAD, Mann-Kendall, OLS with a t-interval, EMA.

use serde::{Deserialize, Serialize};

/// Median (mean of the two middle values for an even count); `NaN` for an empty slice.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    median_in_place(&mut v)
}

/// Median that reorders `values` (no allocation).
pub fn median_in_place(values: &mut [f64]) -> f64 {
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    // Selection, not a sort: the monitor takes several medians per step, and at ~0.7 ms
    // per training step a full sort of each window was the monitor's largest cost.
    let (lower, upper, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    let upper = *upper;
    if n % 2 == 1 {
        upper
    } else {
        let below = lower.iter().copied().max_by(f64::total_cmp).unwrap_or(upper);
        0.5 * (below + upper)
    }
}

/// Median absolute deviation `median |v - median(v)|` (unscaled; robust sigma = 1.4826 MAD).
pub fn mad(values: &[f64]) -> f64 {
    let m = median(values);
    let mut dev: Vec<f64> = values.iter().map(|v| (v - m).abs()).collect();
    median_in_place(&mut dev)
}

/// Mann-Kendall Z with the ties-corrected variance and continuity correction (pyMannKendall
/// `original_test`); 0 for fewer than 2 values or zero variance.
pub fn mann_kendall_z(values: &[f64]) -> f64 {
    let n = values.len();
    if n < 2 {
        return 0.0;
    }
    let mut s: i64 = 0;
    for i in 0..n {
        for j in (i + 1)..n {
            let d = values[j] - values[i];
            if d > 0.0 {
                s += 1;
            } else if d < 0.0 {
                s -= 1;
            }
        }
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    let mut ties = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && sorted[j] == sorted[i] {
            j += 1;
        }
        let t = (j - i) as f64;
        if t > 1.0 {
            ties += t * (t - 1.0) * (2.0 * t + 5.0);
        }
        i = j;
    }
    let nf = n as f64;
    let var = (nf * (nf - 1.0) * (2.0 * nf + 5.0) - ties) / 18.0;
    if var <= 0.0 {
        return 0.0;
    }
    let s = s as f64;
    if s > 0.0 {
        (s - 1.0) / var.sqrt()
    } else if s < 0.0 {
        (s + 1.0) / var.sqrt()
    } else {
        0.0
    }
}

/// Ordinary least squares fit `y = a + slope * t`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ols {
    /// Fitted slope.
    pub slope: f64,
    /// Standard error of the slope, `sqrt(RSS / (n - 2) / S_tt)`.
    pub se: f64,
    /// Residual sum of squares.
    pub rss: f64,
}

/// OLS of `y` on `t`; `None` with fewer than 3 points or constant `t`.
pub fn ols(t: &[f64], y: &[f64]) -> Option<Ols> {
    let n = t.len().min(y.len());
    if n < 3 {
        return None;
    }
    let nf = n as f64;
    let tm = t[..n].iter().sum::<f64>() / nf;
    let ym = y[..n].iter().sum::<f64>() / nf;
    let (mut stt, mut sty) = (0.0, 0.0);
    for i in 0..n {
        stt += (t[i] - tm) * (t[i] - tm);
        sty += (t[i] - tm) * (y[i] - ym);
    }
    if stt <= 0.0 {
        return None;
    }
    let slope = sty / stt;
    let a = ym - slope * tm;
    let rss: f64 = (0..n).map(|i| (y[i] - a - slope * t[i]).powi(2)).sum();
    let se = (rss / (nf - 2.0) / stt).sqrt();
    Some(Ols { slope, se, rss })
}

/// Bias-corrected exponential moving average (Adam/fastai): `m_t = beta m + (1 - beta) x`,
/// value `m_t / (1 - beta^t)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ema {
    #[serde(with = "crate::exact")]
    beta: f64,
    #[serde(with = "crate::exact")]
    m: f64,
    #[serde(with = "crate::exact")]
    pow: f64,
    count: u64,
}

impl Ema {
    /// A fresh EMA with smoothing factor `beta` (0.98 in fastai and Lightning).
    pub fn new(beta: f64) -> Self {
        Ema {
            beta,
            m: 0.0,
            pow: 1.0,
            count: 0,
        }
    }

    /// Adds `x` and returns the bias-corrected value.
    pub fn update(&mut self, x: f64) -> f64 {
        self.m = self.beta * self.m + (1.0 - self.beta) * x;
        self.pow *= self.beta;
        self.count += 1;
        self.value().unwrap_or(x)
    }

    /// The bias-corrected value, `None` before the first update.
    pub fn value(&self) -> Option<f64> {
        if self.count == 0 {
            None
        } else {
            Some(self.m / (1.0 - self.pow))
        }
    }

    /// Number of values seen.
    pub fn count(&self) -> u64 {
        self.count
    }
}
