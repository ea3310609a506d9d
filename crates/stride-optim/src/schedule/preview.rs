//! Previews of a schedule for the command line: points, a terminal plot, CSV.

use std::fmt::Write;

use super::scheduler::Scheduler;

/// Most points [`preview`] returns, so `--steps 1e12` cannot exhaust memory.
const MAX_POINTS: u64 = 100_000;

/// `(t, lr(t))` for `t` in `0..steps`: every step up to 100,000 steps,
/// otherwise 100,000 evenly spaced ones including the first and the last.
///
/// The plateau factor is whatever the scheduler holds now (1 for a fresh
/// one): a preview cannot know future metrics.
pub fn preview(scheduler: &Scheduler, steps: u64) -> Vec<(u64, f64)> {
    if steps <= MAX_POINTS {
        return (0..steps).map(|t| (t, scheduler.lr(t))).collect();
    }
    let last = steps - 1;
    (0..MAX_POINTS)
        .map(|i| {
            // i * last / (MAX_POINTS - 1) without overflow.
            let t = (u128::from(i) * u128::from(last) / u128::from(MAX_POINTS - 1)) as u64;
            (t, scheduler.lr(t))
        })
        .collect()
}

/// A `width` x `height` character plot of rate against step, with the rate
/// range on the left and the step range below; `log_y` plots `log10(lr)`.
///
/// Non-finite rates are skipped, and so, on a log axis, are rates <= 0.
/// Sizes below 8 x 2 are raised to that.
pub fn render_ascii_plot(points: &[(u64, f64)], width: usize, height: usize, log_y: bool) -> String {
    let (width, height) = (width.max(8), height.max(2));
    let y = |lr: f64| if log_y { lr.log10() } else { lr };
    let shown: Vec<(u64, f64)> = points
        .iter()
        .filter(|(_, lr)| lr.is_finite() && (!log_y || *lr > 0.0))
        .map(|&(t, lr)| (t, y(lr)))
        .collect();
    if shown.is_empty() {
        return "(no points to plot)\n".to_string();
    }
    let fold = |f: fn(f64, f64) -> f64, init| shown.iter().map(|p| p.1).fold(init, f);
    let (lo, hi) = (fold(f64::min, f64::INFINITY), fold(f64::max, f64::NEG_INFINITY));
    let first = shown.iter().map(|p| p.0).min().unwrap_or(0);
    let last = shown.iter().map(|p| p.0).max().unwrap_or(0);
    let mut grid = vec![vec![' '; width]; height];
    for &(t, v) in &shown {
        let x = (t - first) as f64 / (last - first).max(1) as f64;
        let col = (x * (width - 1) as f64).round() as usize;
        // A flat schedule sits on the middle row.
        let frac = if hi > lo { (hi - v) / (hi - lo) } else { 0.5 };
        let row = (frac * (height - 1) as f64).round() as usize;
        grid[row.min(height - 1)][col.min(width - 1)] = '*';
    }
    let label = |v: f64| format!("{:.3e}", if log_y { 10f64.powf(v) } else { v });
    let labels = [label(hi), label((hi + lo) / 2.0), label(lo)];
    let pad = labels.iter().map(String::len).max().unwrap_or(0);
    let mut out = String::new();
    for (r, line) in grid.iter().enumerate() {
        let text = match r {
            0 => labels[0].as_str(),
            r if r == height - 1 => labels[2].as_str(),
            r if r == (height - 1) / 2 && height > 2 => labels[1].as_str(),
            _ => "",
        };
        let line: String = line.iter().collect();
        let _ = writeln!(out, "{text:>pad$} |{}", line.trim_end());
    }
    let _ = writeln!(out, "{:>pad$} +{}", "", "-".repeat(width));
    let (left, right) = (first.to_string(), last.to_string());
    let mut axis = if log_y { "step (log lr)" } else { "step" };
    if left.len() + right.len() + axis.len() + 2 > width {
        axis = "";
    }
    let gap = width.saturating_sub(left.len() + right.len() + axis.len());
    let before = gap / 2;
    let _ = writeln!(
        out,
        "{:>pad$}  {left}{}{axis}{}{right}",
        "",
        " ".repeat(before),
        " ".repeat(gap - before)
    );
    out
}

/// `step,lr` lines with a header, rates in Rust's shortest round-trip form.
pub fn to_csv(points: &[(u64, f64)]) -> String {
    let mut out = String::from("step,lr\n");
    for (t, lr) in points {
        let _ = writeln!(out, "{t},{lr}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::{parse_schedule, StepDecay};

    #[test]
    fn preview_lists_every_step_or_samples_long_runs() {
        let s = parse_schedule("step(every=2, gamma=0.5)", 1.0).unwrap();
        assert_eq!(preview(&s, 5), vec![(0, 1.0), (1, 1.0), (2, 0.5), (3, 0.5), (4, 0.25)]);
        assert!(preview(&s, 0).is_empty());
        let long = preview(&s, u64::MAX);
        assert_eq!(long.len(), MAX_POINTS as usize);
        assert_eq!(long.first().unwrap().0, 0);
        assert_eq!(long.last().unwrap().0, u64::MAX - 1);
    }

    #[test]
    fn csv_has_a_header_and_round_trips() {
        assert_eq!(to_csv(&[(0, 0.1), (1, 1e-5)]), "step,lr\n0,0.1\n1,0.00001\n");
    }

    #[test]
    fn plot_of_a_step_decay() {
        let s = crate::schedule::Scheduler::new(StepDecay::new(1.0, 0.1, 5).unwrap());
        let plot = render_ascii_plot(&preview(&s, 15), 15, 3, true);
        let expected = [
            " 1.000e0 |*****",
            "1.000e-1 |     *****",
            "1.000e-2 |          *****",
            "         +---------------",
            "          0            14",
        ];
        assert_eq!(plot, expected.join("\n") + "\n", "\n{plot}");
        let wide = render_ascii_plot(&preview(&s, 15), 30, 3, false);
        let axis = format!("0{}step{}14\n", " ".repeat(11), " ".repeat(12));
        assert!(wide.ends_with(&axis), "\n{wide}");
    }

    #[test]
    fn plot_edge_cases_do_not_panic() {
        assert_eq!(render_ascii_plot(&[], 10, 5, false), "(no points to plot)\n");
        assert_eq!(render_ascii_plot(&[(0, 0.0)], 10, 5, true), "(no points to plot)\n");
        let flat = render_ascii_plot(&[(3, 0.1), (4, 0.1)], 0, 0, false);
        assert!(flat.contains('*'), "{flat}");
        let weird = [(u64::MAX, f64::NAN), (0, 1e300), (u64::MAX, -1e300), (7, f64::INFINITY)];
        assert!(render_ascii_plot(&weird, 40, 10, false).contains('*'));
        assert!(render_ascii_plot(&weird, 40, 10, true).contains('*'));
    }
}
