//! The convergence plot: objective, duality gap and rank against iteration, as SVG.
//!
//! Three panels of [`crate::plot`] (plain SVG, no fonts needed).

use crate::plot::{Figure, Mark, PALETTE, Panel, Scale, Series};
use crate::solve::Record;

/// The plot of a run's history.
pub fn convergence_svg(model: &str, history: &[Record]) -> String {
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
    let panel = |title: &str, points: Vec<(f64, f64)>, scale: Scale, mark: Mark| {
        Panel::new(title, "", scale).with(Series::new("", points, mark, PALETTE[0]))
    };
    Figure::new(
        &format!("hfc run {model}: objective, duality gap and rank per iteration"),
        1,
        640.0,
        150.0,
    )
    .with(panel(
        "objective F − min F (log scale) against iteration",
        excess,
        Scale::Log,
        Mark::Line,
    ))
    .with(panel(
        "duality gap (log scale; exact polars only) against iteration",
        gap,
        Scale::Log,
        Mark::Line,
    ))
    .with(panel(
        "rank r against iteration",
        rank,
        Scale::Linear,
        Mark::Steps,
    ))
    .to_svg()
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
