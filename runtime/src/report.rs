//! The convergence plot: objective, duality gap and rank against iteration, as SVG.
//!
//! Plain SVG written here: a plotting crate would need system fonts to lay out text, and
//! three panels of polylines with labelled ranges are all the plot is.

use std::fmt::Write;

use crate::solve::Record;

const WIDTH: f64 = 640.0;
const PANEL: f64 = 150.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 30.0;
const GAP: f64 = 40.0;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One panel: points (x, y), drawn on a log scale when `log`.
fn panel(
    out: &mut String,
    index: usize,
    title: &str,
    points: &[(f64, f64)],
    log: bool,
    steps: bool,
) {
    let top = TOP + index as f64 * (PANEL + GAP);
    let plot_w = WIDTH - LEFT - RIGHT;
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="{:.1}" font-size="13" font-family="sans-serif">{}</text>"#,
        top - 8.0,
        escape(title)
    );
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{top:.1}" width="{plot_w:.1}" height="{PANEL}" fill="none" stroke="#999"/>"##
    );
    let transform = |y: f64| if log { y.max(1e-300).log10() } else { y };
    let pts: Vec<(f64, f64)> = points
        .iter()
        .filter(|(_, y)| y.is_finite() && (!log || *y > 0.0))
        .map(|(x, y)| (*x, transform(*y)))
        .collect();
    if pts.is_empty() {
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" font-size="12" font-family="sans-serif" fill="#666">no values</text>"##,
            LEFT + 10.0,
            top + PANEL / 2.0
        );
        return;
    }
    let (mut x0, mut x1) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY);
    for (x, y) in &pts {
        x0 = x0.min(*x);
        x1 = x1.max(*x);
        y0 = y0.min(*y);
        y1 = y1.max(*y);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        y1 = y0 + 1.0;
        y0 -= 1.0;
    }
    let sx = |x: f64| LEFT + (x - x0) / (x1 - x0) * plot_w;
    let sy = |y: f64| top + PANEL - (y - y0) / (y1 - y0) * PANEL;
    let mut path = String::new();
    let mut previous: Option<(f64, f64)> = None;
    for (x, y) in &pts {
        if let (true, Some((_, py))) = (steps, previous) {
            let _ = write!(path, "{:.2},{:.2} ", sx(*x), sy(py));
        }
        let _ = write!(path, "{:.2},{:.2} ", sx(*x), sy(*y));
        previous = Some((*x, *y));
    }
    let _ = writeln!(
        out,
        r##"<polyline points="{}" fill="none" stroke="#1f5fa8" stroke-width="1.5"/>"##,
        path.trim_end()
    );
    let label = |v: f64| {
        if log {
            format!("1e{v:.1}")
        } else {
            format!("{v:.4}")
        }
    };
    for (v, y) in [(y1, top + 4.0), (y0, top + PANEL)] {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="11" font-family="sans-serif" text-anchor="end">{}</text>"#,
            LEFT - 6.0,
            y + 4.0,
            escape(&label(v))
        );
    }
    for (v, anchor) in [(x0, "start"), (x1, "end")] {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="11" font-family="sans-serif" text-anchor="{anchor}">{}</text>"#,
            sx(v),
            top + PANEL + 14.0,
            v
        );
    }
}

/// The plot of a run's history.
pub fn convergence_svg(model: &str, history: &[Record]) -> String {
    let height = TOP + 3.0 * (PANEL + GAP);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<title>hfc run {}: objective, duality gap and rank per iteration</title>"#,
        escape(model)
    );
    let objective: Vec<(f64, f64)> = history
        .iter()
        .map(|r| (r.iteration as f64, r.objective))
        .collect();
    let best = objective
        .iter()
        .map(|(_, y)| *y)
        .fold(f64::INFINITY, f64::min);
    let excess: Vec<(f64, f64)> = objective.iter().map(|(x, y)| (*x, y - best)).collect();
    let gap: Vec<(f64, f64)> = history
        .iter()
        .filter_map(|r| r.gap.map(|g| (r.iteration as f64, g)))
        .collect();
    let rank: Vec<(f64, f64)> = history
        .iter()
        .map(|r| (r.iteration as f64, r.rank as f64))
        .collect();
    panel(
        &mut out,
        0,
        "objective F − min F (log scale) against iteration",
        &excess,
        true,
        false,
    );
    panel(
        &mut out,
        1,
        "duality gap (log scale; exact polars only) against iteration",
        &gap,
        true,
        false,
    );
    panel(&mut out, 2, "rank r against iteration", &rank, false, true);
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plot_has_three_panels_and_escapes_names() {
        let history = vec![
            Record {
                iteration: 0,
                outer: 0,
                rank: 0,
                objective: 10.0,
                polar_value: Some(3.0),
                gap: Some(5.0),
            },
            Record {
                iteration: 5,
                outer: 1,
                rank: 2,
                objective: 4.0,
                polar_value: Some(1.0),
                gap: Some(1e-9),
            },
        ];
        let svg = convergence_svg("a<b", &history);
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert!(svg.contains("a&lt;b") && svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
    }
}
