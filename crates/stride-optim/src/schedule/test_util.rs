//! Helpers shared by the schedule tests.

use super::{PlateauConfig, Schedule};

/// Asserts `|a - b| <= rel * max(|a|, |b|) + abs`.
pub(crate) fn assert_close(a: f64, b: f64, rel: f64, abs: f64, what: &str) {
    let tol = rel * a.abs().max(b.abs()) + abs;
    assert!((a - b).abs() <= tol, "{what}: got {a}, expected {b} (tolerance {tol})");
}

/// Asserts a table of `(t, expected lr)`, to 1e-12 relative: the expected
/// values are hand-computed, so only rounding may differ.
pub(crate) fn assert_table(s: &dyn Schedule, table: &[(u64, f64)]) {
    for &(t, want) in table {
        assert_close(s.lr(t), want, 1e-12, 1e-15, &format!("lr({t})"));
    }
}

/// Asserts a table of `(t, expected momentum)`, to 1e-12 relative.
pub(crate) fn assert_momentum_table(s: &dyn Schedule, table: &[(u64, f64)]) {
    for &(t, want) in table {
        let got = s.momentum(t).unwrap_or(f64::NAN);
        assert_close(got, want, 1e-12, 1e-15, &format!("momentum({t})"));
    }
}

/// MONITOR test U1: patience 2, cooldown 1, threshold 1% rel, min_lr 1e-4.
pub(crate) const U1_METRICS: [f64; 13] = [
    1.00, 0.80, 0.70, 0.695, 0.694, 0.693, 0.692, 0.60, 0.599, 0.598, 0.597, 0.596, 0.595,
];
/// Expected rate after each U1 observation. Epoch 6 (0.693) is the third
/// not-1%-better value after 0.70 (0.7 * 0.99 == 0.693 in f64, and the
/// comparison is strict); 0.692 then improves during the cooldown; 0.599,
/// 0.598, 0.597 are the next three bad ones.
pub(crate) const U1_LRS: [f64; 13] = [
    0.1, 0.1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.01, 0.01, 0.001, 0.001, 0.001,
];

/// The U1 plateau rule, used with a base rate of 0.1.
pub(crate) fn u1_config() -> PlateauConfig {
    PlateauConfig {
        factor: 0.1,
        patience: 2,
        cooldown: 1,
        min_lr: 1e-4,
        threshold: 0.01,
        ..PlateauConfig::default()
    }
}
