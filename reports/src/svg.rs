//! Charts as inline SVG, drawn here (no script, no external file): the
//! latency percentile spectrum on a log axis (HdrHistogram style) and
//! per-second time series.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

use crate::fmt::{duration, esc};

/// Width of every chart, in CSS pixels.
pub const WIDTH: f64 = 560.0;
/// Height of a percentile spectrum.
pub const SPECTRUM_HEIGHT: f64 = 290.0;
/// Height of a time-series chart.
pub const SERIES_HEIGHT: f64 = 220.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 34.0;
const TOP: f64 = 44.0;
const BOTTOM: f64 = 40.0;

/// Colours of the lines.
pub const NEW: &str = "#1f63c6";
pub const BASE: &str = "#e8710a";
pub const RECEIVED: &str = "#188038";
pub const ERRORS: &str = "#d93025";

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Line {
    pub label: String,
    pub color: &'static str,
    pub dashed: bool,
    pub points: Vec<(f64, f64)>,
    /// Marked points with a tooltip: (x, y, text).
    pub marks: Vec<(f64, f64, String)>,
}

/// How values on an axis read.
#[derive(Debug, Clone, Copy)]
pub enum Fmt {
    /// Microseconds, as durations.
    Micros,
    /// Plain numbers.
    Number,
}

fn plot_w() -> f64 {
    WIDTH - LEFT - RIGHT
}

fn plot_h(height: f64) -> f64 {
    height - TOP - BOTTOM
}

/// A step of 1, 2 or 5 × 10^k giving about `target` intervals over `span`.
pub fn nice_step(span: f64, target: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / target;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// The upper end of an axis from 0 that holds `max`, and its step.
fn nice_max(max: f64, target: f64) -> (f64, f64) {
    let max = if max > 0.0 { max } else { 1.0 };
    let step = nice_step(max, target);
    ((max / step).ceil() * step, step)
}

fn fmt_tick(v: f64, fmt: Fmt) -> String {
    match fmt {
        Fmt::Micros => {
            if v == 0.0 {
                "0".to_owned()
            } else {
                duration(v.round() as u64)
            }
        }
        Fmt::Number => {
            if v.fract() == 0.0 || v.abs() >= 100.0 {
                crate::fmt::count(v.round().max(0.0) as u64)
            } else {
                format!("{v}")
            }
        }
    }
}

fn open(out: &mut String, id: &str, title: &str, aria: &str, height: f64) {
    let _ = write!(
        out,
        r#"<svg class="chart" id="{id}" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{aria}">"#,
        id = esc(id),
        aria = esc(aria)
    );
    let _ = write!(
        out,
        r#"<rect class="bg" x="0" y="0" width="{WIDTH}" height="{height}"/><text class="title" x="12" y="19">{}</text>"#,
        esc(title)
    );
}

fn legend(out: &mut String, lines: &[Line]) {
    let mut x = WIDTH - RIGHT;
    for l in lines.iter().rev() {
        let w = 30.0 + 6.5 * l.label.chars().count() as f64;
        x -= w;
        let dash = if l.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = write!(
            out,
            r#"<g class="legend"><line x1="{x:.1}" y1="31" x2="{:.1}" y2="31" stroke="{}" stroke-width="2.5"{dash}/><text x="{:.1}" y="35">{}</text></g>"#,
            x + 20.0,
            l.color,
            x + 24.0,
            esc(&l.label)
        );
    }
}

fn empty(out: &mut String, text: &str, height: f64) {
    let _ = write!(
        out,
        r#"<text class="empty" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text></svg>"#,
        LEFT + plot_w() / 2.0,
        TOP + plot_h(height) / 2.0,
        esc(text)
    );
}

/// Draws the lines over prepared axes; `sx`/`sy` map data to pixels.
fn draw_lines(out: &mut String, lines: &[Line], sx: &dyn Fn(f64) -> f64, sy: &dyn Fn(f64) -> f64) {
    for l in lines {
        if l.points.is_empty() {
            continue;
        }
        let mut d = String::new();
        for (i, (x, y)) in l.points.iter().enumerate() {
            let _ = write!(
                d,
                "{}{:.1},{:.1}",
                if i == 0 { "M" } else { " L" },
                sx(*x),
                sy(*y)
            );
        }
        let dash = if l.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = write!(
            out,
            r#"<path class="line" d="{d}" fill="none" stroke="{}" stroke-width="2" stroke-linejoin="round"{dash}><title>{}</title></path>"#,
            l.color,
            esc(&l.label)
        );
        for (x, y, text) in &l.marks {
            let _ = write!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.2" fill="{}"><title>{}</title></circle>"#,
                sx(*x),
                sy(*y),
                l.color,
                esc(text)
            );
        }
    }
}

fn y_axis(out: &mut String, height: f64, y_max: f64, step: f64, fmt: Fmt, label: &str) {
    let sy = |v: f64| TOP + plot_h(height) * (1.0 - v / y_max);
    let mut v = 0.0;
    while v <= y_max * (1.0 + 1e-9) {
        let y = sy(v);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT + plot_w(),
            LEFT - 6.0,
            y + 4.0,
            esc(&fmt_tick(v, fmt))
        );
        v += step;
    }
    let _ = write!(
        out,
        r#"<text class="axis-label" transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        TOP + plot_h(height) / 2.0,
        esc(label)
    );
}

fn frame(out: &mut String, height: f64) {
    let _ = write!(
        out,
        r#"<rect class="frame" x="{LEFT}" y="{TOP}" width="{:.1}" height="{:.1}" fill="none"/>"#,
        plot_w(),
        plot_h(height)
    );
}

/// The x position (log axis) of quantile `q`: `log10(1 / (1 - q))`, so
/// 0 → 0, 90% → 1, 99% → 2, 99.9% → 3.
pub fn nines(q: f64) -> f64 {
    (1.0 / (1.0 - q).max(1e-12)).log10()
}

/// The label of a position on the percentile axis.
fn nines_label(n: u32) -> String {
    match n {
        0 => "0%".to_owned(),
        1 => "90%".to_owned(),
        2 => "99%".to_owned(),
        n => format!("99.{}%", "9".repeat(n as usize - 2)),
    }
}

/// Points of a histogram's percentile spectrum: (nines, µs). The last
/// point (the maximum) sits at `1 - 1/count`, where the samples end.
pub fn spectrum_points(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let end = nines(1.0 - 1.0 / h.len() as f64).max(0.5);
    let mut points: Vec<(f64, f64)> = Vec::new();
    for v in h.iter_quantiles(4) {
        let q = v.quantile_iterated_to();
        let x = if q >= 1.0 { end } else { nines(q).min(end) };
        let y = h.highest_equivalent(v.value_iterated_to()) as f64;
        if let Some(last) = points.last_mut()
            && (x - last.0).abs() < 1e-9
        {
            last.1 = last.1.max(y);
            continue;
        }
        points.push((x, y));
    }
    if let Some(last) = points.last_mut() {
        last.1 = h.max() as f64;
    }
    points
}

const MARKS: [(f64, &str); 4] = [(0.5, "p50"), (0.9, "p90"), (0.99, "p99"), (0.999, "p99.9")];

fn marks(h: &Histogram<u64>, who: &str) -> Vec<(f64, f64, String)> {
    let end = nines(1.0 - 1.0 / h.len().max(1) as f64);
    MARKS
        .iter()
        .filter(|(q, _)| nines(*q) <= end + 1e-9)
        .map(|(q, name)| {
            let v = h.value_at_quantile(*q);
            (
                nines(*q),
                v as f64,
                format!("{who} {name} = {}", duration(v)),
            )
        })
        .collect()
}

/// The percentile spectrum of `new` (and `base`, dashed): x = percentile
/// on a log axis (0, 90, 99, 99.9, …), y = latency.
pub fn spectrum(
    id: &str,
    metric: &str,
    new: Option<&Histogram<u64>>,
    base: Option<&Histogram<u64>>,
) -> String {
    let height = SPECTRUM_HEIGHT;
    let mut out = String::new();
    open(
        &mut out,
        id,
        metric,
        &format!("latency by percentile of {metric}"),
        height,
    );
    let mut lines = Vec::new();
    if let Some(h) = new.filter(|h| !h.is_empty()) {
        lines.push(Line {
            label: "new".to_owned(),
            color: NEW,
            dashed: false,
            points: spectrum_points(h),
            marks: marks(h, "new"),
        });
    }
    if let Some(h) = base.filter(|h| !h.is_empty()) {
        lines.push(Line {
            label: "baseline".to_owned(),
            color: BASE,
            dashed: true,
            points: spectrum_points(h),
            marks: marks(h, "baseline"),
        });
    }
    if base.is_some() {
        legend(&mut out, &lines);
    }
    if lines.is_empty() {
        empty(&mut out, "no samples", height);
        return out;
    }
    let x_end = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .fold(0.0f64, f64::max);
    let x_max = x_end.ceil().clamp(2.0, 7.0);
    let y_top = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0f64, f64::max);
    let (y_max, step) = nice_max(y_top, 5.0);
    y_axis(&mut out, height, y_max, step, Fmt::Micros, "latency");
    let sx = |x: f64| LEFT + plot_w() * x / x_max;
    let sy = |v: f64| TOP + plot_h(height) * (1.0 - v / y_max);
    for n in 0..=(x_max as u32) {
        let x = sx(n as f64);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}"/><text class="tick" x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            TOP + plot_h(height),
            TOP + plot_h(height) + 15.0,
            nines_label(n)
        );
    }
    let _ = write!(
        out,
        r#"<text class="axis-label" x="{:.1}" y="{:.1}" text-anchor="middle">percentile (log scale)</text>"#,
        LEFT + plot_w() / 2.0,
        height - 6.0
    );
    frame(&mut out, height);
    draw_lines(&mut out, &lines, &sx, &sy);
    out.push_str("</svg>");
    out
}

/// A time-series chart: x = seconds since the start of the load.
pub fn series(id: &str, title: &str, y_label: &str, lines: &[Line], fmt: Fmt) -> String {
    let height = SERIES_HEIGHT;
    let mut out = String::new();
    open(&mut out, id, title, title, height);
    if lines.len() > 1 {
        legend(&mut out, lines);
    }
    if lines.iter().all(|l| l.points.is_empty()) {
        empty(&mut out, "no samples", height);
        return out;
    }
    let x_top = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .fold(0.0f64, f64::max);
    let (x_max, x_step) = nice_max(x_top, 8.0);
    let x_step = x_step.max(1.0);
    let y_top = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0f64, f64::max);
    let (y_max, step) = nice_max(y_top, 4.0);
    y_axis(&mut out, height, y_max, step, fmt, y_label);
    let sx = |x: f64| LEFT + plot_w() * x / x_max;
    let sy = |v: f64| TOP + plot_h(height) * (1.0 - v / y_max);
    let mut t = 0.0;
    while t <= x_max * (1.0 + 1e-9) {
        let x = sx(t);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}"/><text class="tick" x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            TOP + plot_h(height),
            TOP + plot_h(height) + 15.0,
            fmt_tick(t, Fmt::Number)
        );
        t += x_step;
    }
    let _ = write!(
        out,
        r#"<text class="axis-label" x="{:.1}" y="{:.1}" text-anchor="middle">seconds since the start of the load</text>"#,
        LEFT + plot_w() / 2.0,
        height - 6.0
    );
    frame(&mut out, height);
    draw_lines(&mut out, lines, &sx, &sy);
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_nice() {
        assert_eq!(nice_step(100.0, 5.0), 20.0);
        assert_eq!(nice_step(7.0, 5.0), 2.0);
        assert_eq!(nice_max(9_300.0, 5.0), (10_000.0, 2_000.0));
        assert_eq!(nice_max(0.0, 5.0), (1.0, 0.2));
    }

    #[test]
    fn percentile_axis() {
        assert!((nines(0.99) - 2.0).abs() < 1e-9);
        assert_eq!(nines_label(0), "0%");
        assert_eq!(nines_label(2), "99%");
        assert_eq!(nines_label(4), "99.99%");
    }

    #[test]
    fn spectrum_ends_at_the_max() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).unwrap();
        for v in 1..=10_000u64 {
            h.record(v).unwrap();
        }
        let p = spectrum_points(&h);
        assert!(p.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        let last = p.last().unwrap();
        assert!((last.0 - 4.0).abs() < 0.01, "{last:?}");
        assert_eq!(last.1, h.max() as f64);
        let svg = spectrum("s", "ack.x", Some(&h), Some(&h));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("99.99%"));
    }
}
