//! SVG line charts for the LR finder and sweeps: log or linear axes, several series,
//! labelled vertical markers, curve labels, panels side by side. Text is left to the
//! viewer's fonts (`font-family="sans-serif"`), so nothing here needs a font file.
//!
//! All of Stride's plotting lives in this module.

use std::fmt::Write;

/// A categorical palette (Tableau 10) that stays readable on white.
pub const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
];

/// One axis: its label, scale and (optional) fixed range.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// Text under (or beside) the axis.
    pub label: String,
    /// Logarithmic (base 10) rather than linear.
    pub log: bool,
    /// Fixed range; computed from the data when `None`.
    pub range: Option<(f64, f64)>,
}

impl Axis {
    /// A linear axis with an automatic range.
    pub fn linear(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            log: false,
            range: None,
        }
    }

    /// A log-10 axis with an automatic range.
    pub fn log(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            log: true,
            range: None,
        }
    }

    /// The same axis with a fixed range.
    pub fn with_range(mut self, lo: f64, hi: f64) -> Self {
        self.range = Some((lo, hi));
        self
    }

    fn transform(&self, v: f64) -> f64 {
        if self.log {
            v.log10()
        } else {
            v
        }
    }

    fn usable(&self, v: f64) -> bool {
        v.is_finite() && (!self.log || v > 0.0)
    }
}

/// A line (and optionally its points) with a legend label and an end label.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// `(x, y)` points; non-finite or (on log axes) non-positive values break the line.
    pub points: Vec<(f64, f64)>,
    /// Stroke colour (CSS); the palette's next colour when `None`.
    pub color: Option<String>,
    /// Draw a dot at every point.
    pub dots: bool,
    /// Text written at the line's last drawable point (e.g. the monitor's verdict).
    pub end_label: Option<String>,
}

impl Series {
    /// A plain line.
    pub fn line(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            label: label.into(),
            points,
            color: None,
            dots: false,
            end_label: None,
        }
    }
}

/// A labelled vertical line at `x` (e.g. an LR suggestion).
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    /// Where, in data units.
    pub x: f64,
    /// Its text.
    pub label: String,
    /// Colour (CSS).
    pub color: String,
}

/// One panel: axes, series, markers.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Title above the panel.
    pub title: String,
    /// Horizontal axis.
    pub x: Axis,
    /// Vertical axis.
    pub y: Axis,
    /// The lines.
    pub series: Vec<Series>,
    /// Vertical markers.
    pub markers: Vec<Marker>,
    /// Draw a legend box.
    pub legend: bool,
}

impl Chart {
    /// An empty chart.
    pub fn new(title: impl Into<String>, x: Axis, y: Axis) -> Self {
        Self {
            title: title.into(),
            x,
            y,
            series: Vec::new(),
            markers: Vec::new(),
            legend: true,
        }
    }

    /// The data range on one axis over every drawable point (and markers, for x).
    fn range(&self, axis: &Axis, pick: impl Fn(&(f64, f64)) -> f64, markers: bool) -> (f64, f64) {
        if let Some(r) = axis.range {
            return (axis.transform(r.0), axis.transform(r.1));
        }
        let mut values: Vec<f64> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|p| self.x.usable(p.0) && self.y.usable(p.1))
            .map(&pick)
            .collect();
        if markers {
            values.extend(self.markers.iter().map(|m| m.x).filter(|&v| axis.usable(v)));
        }
        let (lo, hi) = values
            .iter()
            .map(|&v| axis.transform(v))
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        match (lo.is_finite(), hi > lo) {
            (false, _) => (0.0, 1.0),
            (true, false) => (lo - 0.5, hi + 0.5),
            (true, true) if axis.log => (lo, hi),
            (true, true) => {
                let pad = (hi - lo) * 0.04;
                (lo - pad, hi + pad)
            }
        }
    }

    /// Renders the panel into the box `(left, top, width, height)` of an SVG.
    fn render(&self, out: &mut String, left: f64, top: f64, width: f64, height: f64) {
        let (ml, mr, mt, mb) = (62.0, 120.0, 30.0, 44.0);
        let (px, py, pw, ph) = (
            left + ml,
            top + mt,
            (width - ml - mr).max(10.0),
            (height - mt - mb).max(10.0),
        );
        let (x0, x1) = self.range(&self.x, |p| p.0, true);
        let (y0, y1) = self.range(&self.y, |p| p.1, false);
        let sx = |v: f64| px + (self.x.transform(v) - x0) / (x1 - x0) * pw;
        let sy = |v: f64| py + ph - (self.y.transform(v) - y0) / (y1 - y0) * ph;
        let clip = format!("clip{}", (left * 7.0 + top * 13.0) as u64);
        let _ = write!(
            out,
            r##"<g><defs><clipPath id="{clip}"><rect x="{px:.1}" y="{py:.1}" width="{pw:.1}" height="{ph:.1}"/></clipPath></defs>
<text x="{:.1}" y="{:.1}" font-size="14" font-weight="bold" text-anchor="middle">{}</text>
<rect x="{px:.1}" y="{py:.1}" width="{pw:.1}" height="{ph:.1}" fill="white" stroke="#444"/>
"##,
            px + pw / 2.0,
            top + 20.0,
            escape(&self.title)
        );
        for (v, text) in ticks(x0, x1, self.x.log) {
            let x = px + (v - x0) / (x1 - x0) * pw;
            let _ = writeln!(
                out,
                r##"<line x1="{x:.1}" y1="{py:.1}" x2="{x:.1}" y2="{:.1}" stroke="#e4e4e4"/><text x="{x:.1}" y="{:.1}" font-size="11" text-anchor="middle">{text}</text>"##,
                py + ph,
                py + ph + 15.0
            );
        }
        for (v, text) in ticks(y0, y1, self.y.log) {
            let y = py + ph - (v - y0) / (y1 - y0) * ph;
            let _ = writeln!(
                out,
                r##"<line x1="{px:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e4e4e4"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{text}</text>"##,
                px + pw,
                px - 5.0,
                y + 4.0
            );
        }
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text>
<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle" transform="rotate(-90 {:.1} {:.1})">{}</text>"##,
            px + pw / 2.0,
            py + ph + 34.0,
            escape(&self.x.label),
            left + 16.0,
            py + ph / 2.0,
            left + 16.0,
            py + ph / 2.0,
            escape(&self.y.label)
        );
        let mut end_labels = Vec::new();
        for (i, s) in self.series.iter().enumerate() {
            let color = s
                .color
                .clone()
                .unwrap_or_else(|| PALETTE[i % PALETTE.len()].to_string());
            let mut d = String::new();
            let mut pen_down = false;
            let mut last = None;
            for &(x, y) in &s.points {
                if self.x.usable(x) && self.y.usable(y) {
                    let _ = write!(d, "{}{:.1},{:.1} ", if pen_down { "L" } else { "M" }, sx(x), sy(y));
                    pen_down = true;
                    last = Some((x, y));
                } else {
                    pen_down = false;
                }
            }
            let _ = writeln!(
                out,
                r##"<path d="{}" fill="none" stroke="{color}" stroke-width="1.8" clip-path="url(#{clip})"/>"##,
                d.trim_end()
            );
            if s.dots {
                for &(x, y) in s.points.iter().filter(|p| self.x.usable(p.0) && self.y.usable(p.1)) {
                    let _ = writeln!(
                        out,
                        r##"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{color}" clip-path="url(#{clip})"/>"##,
                        sx(x),
                        sy(y)
                    );
                }
            }
            if let (Some(text), Some((x, y))) = (&s.end_label, last) {
                end_labels.push((sy(y).clamp(py + 8.0, py + ph), sx(x).min(px + pw), color, text.clone()));
            }
        }
        // End labels sit right of the plot, pushed apart so they do not overlap.
        end_labels.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut floor = f64::NEG_INFINITY;
        for (y, x, color, text) in &mut end_labels {
            *y = y.max(floor + 12.0);
            floor = *y;
            let _ = writeln!(
                out,
                r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{color}" stroke-dasharray="2,2"/><text x="{:.1}" y="{:.1}" font-size="11" fill="{color}">{}</text>"##,
                *x,
                *y,
                px + pw + 4.0,
                *y - 4.0,
                px + pw + 6.0,
                *y,
                escape(text)
            );
        }
        for (i, m) in self.markers.iter().enumerate() {
            if !self.x.usable(m.x) {
                continue;
            }
            let x = sx(m.x);
            if x < px - 0.5 || x > px + pw + 0.5 {
                continue;
            }
            let _ = writeln!(
                out,
                r##"<line x1="{x:.1}" y1="{py:.1}" x2="{x:.1}" y2="{:.1}" stroke="{}" stroke-width="1.5" stroke-dasharray="5,3"/><text x="{:.1}" y="{:.1}" font-size="11" fill="{}">{}</text>"##,
                py + ph,
                m.color,
                x + 3.0,
                py + 14.0 + 13.0 * i as f64,
                m.color,
                escape(&m.label)
            );
        }
        if self.legend && !self.series.is_empty() {
            let rows = self.series.len() as f64;
            let lx = px + 8.0;
            let ly = py + ph - 8.0 - 15.0 * rows;
            let lw = self.series.iter().map(|s| s.label.chars().count()).max().unwrap_or(0) as f64 * 6.5 + 34.0;
            let _ = writeln!(
                out,
                r##"<rect x="{lx:.1}" y="{ly:.1}" width="{lw:.1}" height="{:.1}" fill="white" fill-opacity="0.85" stroke="#bbb"/>"##,
                15.0 * rows + 4.0
            );
            for (i, s) in self.series.iter().enumerate() {
                let color = s
                    .color
                    .clone()
                    .unwrap_or_else(|| PALETTE[i % PALETTE.len()].to_string());
                let y = ly + 13.0 + 15.0 * i as f64;
                let _ = writeln!(
                    out,
                    r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="2.5"/><text x="{:.1}" y="{:.1}" font-size="11">{}</text>"##,
                    lx + 5.0,
                    y - 4.0,
                    lx + 23.0,
                    y - 4.0,
                    lx + 28.0,
                    y,
                    escape(&s.label)
                );
            }
        }
        out.push_str("</g>\n");
    }
}

/// Panels laid out in a row.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// Width of one panel, pixels.
    pub panel_width: f64,
    /// Height, pixels.
    pub height: f64,
    /// The panels, left to right.
    pub panels: Vec<Chart>,
}

impl Figure {
    /// One panel.
    pub fn single(chart: Chart, width: f64, height: f64) -> Self {
        Self {
            panel_width: width,
            height,
            panels: vec![chart],
        }
    }

    /// The figure as a standalone SVG document.
    pub fn to_svg(&self) -> String {
        let width = self.panel_width * self.panels.len().max(1) as f64;
        let mut out = format!(
            r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{h:.0}" viewBox="0 0 {width:.0} {h:.0}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
"##,
            h = self.height
        );
        for (i, panel) in self.panels.iter().enumerate() {
            panel.render(
                &mut out,
                self.panel_width * i as f64,
                0.0,
                self.panel_width,
                self.height,
            );
        }
        out.push_str("</svg>\n");
        out
    }
}

/// Tick positions (in transformed units) and their labels.
fn ticks(lo: f64, hi: f64, log: bool) -> Vec<(f64, String)> {
    if log {
        let (a, b) = (lo.ceil() as i32, hi.floor() as i32);
        let decades: Vec<(f64, String)> = (a..=b).map(|k| (f64::from(k), format_power(k))).collect();
        if decades.len() >= 2 {
            return decades;
        }
        // Less than two decades in view: label 1, 2 and 5 times powers of ten.
        let mut out = Vec::new();
        for k in (lo.floor() as i32)..=(hi.ceil() as i32) {
            for m in [1.0, 2.0, 5.0] {
                let v = m * 10f64.powi(k);
                let t = v.log10();
                if t >= lo - 1e-9 && t <= hi + 1e-9 {
                    out.push((t, format_number(v)));
                }
            }
        }
        return out;
    }
    let span = hi - lo;
    if span.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return Vec::new();
    }
    let raw = span / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let mut out = Vec::new();
    let mut v = (lo / step).ceil() * step;
    while v <= hi + step * 1e-9 {
        out.push((v, format_number(v)));
        v += step;
    }
    out
}

fn format_power(k: i32) -> String {
    match k {
        -2..=3 => format_number(10f64.powi(k)),
        _ => format!("1e{k}"),
    }
}

fn format_number(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if (1e-3..1e5).contains(&a) {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.0e}")
    }
}

/// Escapes text for SVG.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_are_decades() {
        let t = ticks(-7.0, 1.0, true);
        assert_eq!(t.len(), 9);
        assert_eq!(t[0].1, "1e-7");
        assert_eq!(t[7].1, "1");
        assert_eq!(t[8].1, "10");
    }

    #[test]
    fn narrow_log_axis_gets_125_ticks() {
        let t: Vec<String> = ticks(0.2f64.log10(), 3f64.log10(), true)
            .into_iter()
            .map(|t| t.1)
            .collect();
        assert_eq!(t, vec!["0.2", "0.5", "1", "2"]);
    }

    #[test]
    fn linear_ticks_are_round() {
        let t: Vec<String> = ticks(0.0, 2345.0, false).into_iter().map(|t| t.1).collect();
        assert_eq!(t, vec!["0", "500", "1000", "1500", "2000"]);
    }

    #[test]
    fn svg_breaks_lines_at_nonfinite_and_escapes_text() {
        let mut chart = Chart::new("a <b>", Axis::linear("step"), Axis::log("loss"));
        chart.series.push(Series {
            end_label: Some("lr 1: diverging".into()),
            ..Series::line(
                "lr 1",
                vec![(0.0, 2.3), (1.0, 1.5), (2.0, f64::NAN), (3.0, 1.0), (4.0, 0.9)],
            )
        });
        chart.markers.push(Marker {
            x: 2.0,
            label: "valley".into(),
            color: "red".into(),
        });
        let svg = Figure::single(chart, 600.0, 400.0).to_svg();
        assert!(svg.contains("a &lt;b&gt;"));
        let path = svg.lines().find(|l| l.starts_with("<path")).unwrap();
        assert_eq!(path.matches('M').count(), 2, "{path}");
        assert_eq!(path.matches('L').count(), 2, "{path}");
        assert!(svg.contains("lr 1: diverging"));
        assert!(svg.contains(">valley<"));
        assert!(svg.ends_with("</svg>\n"));
    }
}
