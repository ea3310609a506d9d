//! Number formatting for suggestion sentences: short, exact-looking numbers (`0.01`, `1e-4`).

/// Rounds to 4 significant digits and prints without float noise (`0.1 * 0.1` prints `0.01`).
pub(crate) fn num(x: f64) -> String {
    if x.is_nan() {
        return "NaN".to_string();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Inf".to_string() } else { "-Inf".to_string() };
    }
    let y: f64 = format!("{x:.3e}").parse().unwrap_or(x);
    if y != 0.0 && (y.abs() < 1e-3 || y.abs() >= 1e5) {
        format!("{y:e}")
    } else {
        format!("{y:?}")
    }
}

/// Rounds a rate to 4 significant digits (removes `0.30000000000000004`-style noise).
pub(crate) fn round_sig(x: f64) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    format!("{x:.3e}").parse().unwrap_or(x)
}

/// `a -> b -> c` for a loss trail.
pub(crate) fn trail(values: &[f64]) -> String {
    values.iter().map(|v| num(*v)).collect::<Vec<_>>().join(" -> ")
}

/// Like [`num`], but whole numbers without a decimal point (`step 400`, `10x`).
pub(crate) fn short(x: f64) -> String {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        num(x)
    }
}
