//! Small plots as plain SVG: a grid of panels, each with line, step or marker series on a
//! linear or logarithmic y axis, labelled ranges and a legend.
//!
//! Written by hand: a plotting crate would need system fonts to lay out text, and panels of
//! polylines and dots with their ranges at the corners are all hfc's plots need (the
//! convergence plot of `hfc run`, [`crate::report`], and the papers' experiments).

use std::fmt::Write;

/// How a panel's y axis maps values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    /// Linear.
    Linear,
    /// Base-10 logarithmic; values ≤ 0 are left out.
    Log,
}

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// A polyline through the points.
    Line,
    /// A staircase: each value holds until the next point (a rank against iteration).
    Steps,
    /// A dot per point, unconnected.
    Dots,
    /// A polyline with a dot per point.
    LineDots,
    /// An open ring per point, larger than a dot: a reference that dots drawn over it leave
    /// visible (a planted truth under its recovery).
    Rings,
}

/// Where a panel's legend sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Corner {
    /// Top right (the default).
    TopRight,
    /// Bottom left.
    BottomLeft,
    /// Bottom right.
    BottomRight,
}

/// Colours for series, in order: distinguishable and printable.
pub const PALETTE: [&str; 8] = [
    "#1f5fa8", "#d1495b", "#2e933c", "#e09f3e", "#6a4c93", "#00798c", "#555555", "#8c564b",
];

/// One series of a panel.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Its legend entry (empty: not in the legend).
    pub label: String,
    /// The points (x, y); non-finite values are left out.
    pub points: Vec<(f64, f64)>,
    /// How it is drawn.
    pub mark: Mark,
    /// Its SVG colour.
    pub colour: String,
    /// Whether its line is dashed (a reference, such as a planted truth or a closed form).
    pub dashed: bool,
}

impl Series {
    /// A series drawn as `mark` in `colour`, solid.
    pub fn new(label: &str, points: Vec<(f64, f64)>, mark: Mark, colour: &str) -> Series {
        Series {
            label: label.to_string(),
            points,
            mark,
            colour: colour.to_string(),
            dashed: false,
        }
    }

    /// The same series with a dashed line.
    pub fn dashed(mut self) -> Series {
        self.dashed = true;
        self
    }

    /// `values[k]` against `k + 1`: a sequence indexed from 1 (singular values, columns).
    pub fn indexed(label: &str, values: &[f64], mark: Mark, colour: &str) -> Series {
        let points = values
            .iter()
            .enumerate()
            .map(|(k, v)| ((k + 1) as f64, *v))
            .collect();
        Series::new(label, points, mark, colour)
    }
}

/// One panel: a title, axis labels, a y scale and its series.
#[derive(Clone, Debug, PartialEq)]
pub struct Panel {
    /// The title above the panel.
    pub title: String,
    /// The label under the x axis (empty: none).
    pub x_label: String,
    /// The y axis's scale.
    pub y_scale: Scale,
    /// The series, drawn in order.
    pub series: Vec<Series>,
    /// Where the legend goes (the corner the data leave empty).
    pub legend: Corner,
}

impl Panel {
    /// A panel with a title and an x label, no series yet.
    pub fn new(title: &str, x_label: &str, y_scale: Scale) -> Panel {
        Panel {
            title: title.to_string(),
            x_label: x_label.to_string(),
            y_scale,
            series: Vec::new(),
            legend: Corner::TopRight,
        }
    }

    /// The panel with one more series.
    pub fn with(mut self, series: Series) -> Panel {
        self.series.push(series);
        self
    }

    /// The panel with its legend in `corner`.
    pub fn legend(mut self, corner: Corner) -> Panel {
        self.legend = corner;
        self
    }
}

/// A figure: panels laid out in rows of `columns`.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// The SVG's `<title>` (what the figure shows, for screen readers and file browsers).
    pub title: String,
    /// Panels per row (at least 1).
    pub columns: usize,
    /// The width of a panel's cell, margins included.
    pub cell_width: f64,
    /// The height of a panel's plot area.
    pub panel_height: f64,
    /// The panels, row by row.
    pub panels: Vec<Panel>,
}

const LEFT: f64 = 90.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 30.0;
/// Space between a panel's plot area and the next row's title: tick labels and the x label.
const GAP: f64 = 48.0;
const LEGEND_LINE: f64 = 14.0;
/// Space between the frame and the data's extremes, so markers at the ends are whole.
const INSET: f64 = 6.0;

/// Escapes text for SVG.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A range label: integers as integers, others with four significant digits.
fn number_label(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e7 {
        format!("{v:.0}")
    } else if v != 0.0 && (v.abs() >= 1e5 || v.abs() < 1e-3) {
        format!("{v:.3e}")
    } else {
        let digits = (3 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
        format!("{v:.digits$}")
    }
}

impl Figure {
    /// A figure of one column of `cell_width`-wide panels `panel_height` high.
    pub fn new(title: &str, columns: usize, cell_width: f64, panel_height: f64) -> Figure {
        Figure {
            title: title.to_string(),
            columns: columns.max(1),
            cell_width,
            panel_height,
            panels: Vec::new(),
        }
    }

    /// The figure with one more panel.
    pub fn with(mut self, panel: Panel) -> Figure {
        self.panels.push(panel);
        self
    }

    /// The SVG document.
    pub fn to_svg(&self) -> String {
        let columns = self.columns.max(1);
        let rows = self.panels.len().div_ceil(columns).max(1);
        let width = self.cell_width * columns as f64;
        let height = TOP + rows as f64 * (self.panel_height + GAP + TOP) - TOP;
        let mut out = String::new();
        let _ = writeln!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">"#
        );
        let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(out, "<title>{}</title>", escape(&self.title));
        for (k, panel) in self.panels.iter().enumerate() {
            let left = (k % columns) as f64 * self.cell_width + LEFT;
            let top = TOP + (k / columns) as f64 * (self.panel_height + GAP + TOP);
            let area = Area {
                left,
                top,
                width: self.cell_width - LEFT - RIGHT,
                height: self.panel_height,
            };
            draw_panel(&mut out, &area, panel);
        }
        out.push_str("</svg>\n");
        out
    }
}

/// A panel's plot area in SVG coordinates.
struct Area {
    left: f64,
    top: f64,
    width: f64,
    height: f64,
}

/// The data range of the transformed points, widened when empty.
fn range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if lo > hi {
        return None;
    }
    Some(if hi > lo {
        (lo, hi)
    } else {
        (lo - 1.0, hi + 1.0)
    })
}

fn draw_panel(out: &mut String, area: &Area, panel: &Panel) {
    let Area {
        left,
        top,
        width,
        height,
    } = *area;
    let _ = writeln!(
        out,
        r#"<text x="{left}" y="{:.1}" font-size="13" font-family="sans-serif">{}</text>"#,
        top - 8.0,
        escape(&panel.title)
    );
    let _ = writeln!(
        out,
        r##"<rect x="{left}" y="{top:.1}" width="{width:.1}" height="{height}" fill="none" stroke="#999"/>"##
    );
    let log = panel.y_scale == Scale::Log;
    let transform = |y: f64| if log { y.log10() } else { y };
    let series: Vec<Vec<(f64, f64)>> = panel
        .series
        .iter()
        .map(|s| {
            s.points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite() && (!log || *y > 0.0))
                .map(|(x, y)| (*x, transform(*y)))
                .collect()
        })
        .collect();
    let all = || series.iter().flatten();
    let (Some((x0, x1)), Some((y0, y1))) = (range(all().map(|p| p.0)), range(all().map(|p| p.1)))
    else {
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" font-size="12" font-family="sans-serif" fill="#666">no values</text>"##,
            left + 10.0,
            top + height / 2.0
        );
        return;
    };
    let sx = |x: f64| left + INSET + (x - x0) / (x1 - x0) * (width - 2.0 * INSET);
    let sy = |y: f64| top + height - INSET - (y - y0) / (y1 - y0) * (height - 2.0 * INSET);
    for (spec, points) in panel.series.iter().zip(&series) {
        let dash = if spec.dashed {
            r#" stroke-dasharray="5,3""#
        } else {
            ""
        };
        if matches!(spec.mark, Mark::Line | Mark::Steps | Mark::LineDots) && !points.is_empty() {
            let mut path = String::new();
            let mut previous: Option<f64> = None;
            for (x, y) in points {
                if let (Mark::Steps, Some(py)) = (spec.mark, previous) {
                    let _ = write!(path, "{:.2},{:.2} ", sx(*x), sy(py));
                }
                let _ = write!(path, "{:.2},{:.2} ", sx(*x), sy(*y));
                previous = Some(*y);
            }
            let _ = writeln!(
                out,
                r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="1.5"{dash}/>"#,
                path.trim_end(),
                escape(&spec.colour)
            );
        }
        if matches!(spec.mark, Mark::Dots | Mark::LineDots | Mark::Rings) {
            for (x, y) in points {
                let _ = writeln!(
                    out,
                    "{}",
                    marker(spec.mark, sx(*x), sy(*y), &escape(&spec.colour))
                );
            }
        }
    }
    let y_label = |v: f64| {
        if log {
            format!("1e{v:.1}")
        } else {
            number_label(v)
        }
    };
    for (v, y) in [(y1, sy(y1)), (y0, sy(y0))] {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="11" font-family="sans-serif" text-anchor="end">{}</text>"#,
            left - 6.0,
            y + 4.0,
            escape(&y_label(v))
        );
    }
    for (v, anchor) in [(x0, "start"), (x1, "end")] {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="11" font-family="sans-serif" text-anchor="{anchor}">{}</text>"#,
            sx(v),
            top + height + 14.0,
            escape(&number_label(v))
        );
    }
    if !panel.x_label.is_empty() {
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" font-size="11" font-family="sans-serif" text-anchor="middle" fill="#444">{}</text>"##,
            left + width / 2.0,
            top + height + 28.0,
            escape(&panel.x_label)
        );
    }
    // The legend in the chosen corner: key then label on the left, label then key on the
    // right, so the text runs away from the frame.
    let labelled: Vec<&Series> = panel
        .series
        .iter()
        .filter(|s| !s.label.is_empty())
        .collect();
    let lines = labelled.len() as f64;
    let on_left = panel.legend == Corner::BottomLeft;
    let first_y = match panel.legend {
        Corner::TopRight => top + 14.0,
        Corner::BottomLeft | Corner::BottomRight => {
            top + height - 8.0 - (lines - 1.0) * LEGEND_LINE
        }
    };
    // The key spans [key_x, key_x + 16]; the label is anchored 4 px beyond it.
    let (key_x, text_x, anchor) = if on_left {
        (left + 10.0, left + 30.0, "start")
    } else {
        (left + width - 26.0, left + width - 30.0, "end")
    };
    for (k, spec) in labelled.iter().enumerate() {
        let y = first_y + k as f64 * LEGEND_LINE;
        let colour = escape(&spec.colour);
        match spec.mark {
            Mark::Dots | Mark::Rings => {
                let _ = writeln!(out, "{}", marker(spec.mark, key_x + 8.0, y - 4.0, &colour));
            }
            _ => {
                let dash = if spec.dashed {
                    r#" stroke-dasharray="5,3""#
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    r#"<line x1="{key_x:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="1.5"{dash}/>"#,
                    y - 4.0,
                    key_x + 16.0,
                    y - 4.0
                );
            }
        }
        let _ = writeln!(
            out,
            r#"<text x="{text_x:.1}" y="{y:.1}" font-size="11" font-family="sans-serif" text-anchor="{anchor}">{}</text>"#,
            escape(&spec.label)
        );
    }
}

/// A dot or a ring at (x, y).
fn marker(mark: Mark, x: f64, y: f64, colour: &str) -> String {
    if mark == Mark::Rings {
        format!(
            r#"<circle cx="{x:.2}" cy="{y:.2}" r="4.5" fill="none" stroke="{colour}" stroke-width="1.2"/>"#
        )
    } else {
        format!(r#"<circle cx="{x:.2}" cy="{y:.2}" r="2.5" fill="{colour}"/>"#)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figure_lays_out_panels_draws_marks_and_escapes_text() {
        let figure = Figure::new("a<b & c", 2, 320.0, 100.0)
            .with(
                Panel::new("lines", "k", Scale::Linear)
                    .with(Series::indexed(
                        "fit",
                        &[3.0, 2.0, 1.0],
                        Mark::Line,
                        PALETTE[0],
                    ))
                    .with(
                        Series::indexed("truth", &[3.0, 2.0, 1.0], Mark::Dots, PALETTE[1]).dashed(),
                    )
                    .with(Series::indexed("planted", &[3.0], Mark::Rings, PALETTE[2]))
                    .legend(Corner::BottomLeft),
            )
            .with(
                // Log scale: the zero and the NaN are left out, not drawn at -inf.
                Panel::new("log", "", Scale::Log).with(Series::new(
                    "",
                    vec![(0.0, 1.0), (1.0, 0.0), (2.0, f64::NAN), (3.0, 100.0)],
                    Mark::Steps,
                    PALETTE[2],
                )),
            )
            .with(Panel::new("empty", "", Scale::Linear));
        let svg = figure.to_svg();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("<title>a&lt;b &amp; c</title>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        // Three dots, one ring, and a legend key for each; three legend entries.
        assert_eq!(svg.matches("<circle").count(), 6);
        assert_eq!(svg.matches(r#"r="4.5" fill="none""#).count(), 2);
        assert!(svg.contains(">fit</text>") && svg.contains(">truth</text>"));
        assert!(svg.contains(">planted</text>"));
        assert!(svg.contains(">1e2.0</text>") && svg.contains(">1e0.0</text>"));
        assert!(svg.contains("no values"));
        // Two columns of 320: 640 wide; two rows.
        assert!(svg.contains(r#"width="640""#));
    }

    #[test]
    fn range_labels_are_short() {
        assert_eq!(number_label(160.0), "160");
        assert_eq!(number_label(0.123456), "0.1235");
        assert_eq!(number_label(12.3456), "12.35");
        assert_eq!(number_label(1.5e-6), "1.500e-6");
    }
}
