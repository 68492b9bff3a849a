//! Growth by the polar's atoms: every atom whose polar value exceeds the regularizer's weight
//! decreases F when added as a new column with a small enough positive scale, so all of them
//! are added at once (all singular pairs, rows, columns or entries above the weight), each
//! at its own one-dimensional step, with one scale for the whole block found by line search.
//!
//! Atom i (unit gauges, map φᵢ, value cᵢ = ⟨−∇ℓ, φᵢ⟩) added at weight t costs
//! `F(t) ≤ F − t(cᵢ − w) + β/2 t² κᵢ` with κᵢ = ‖P_obs φᵢ‖² (the `Curvature` kernel), so its
//! step is tᵢ = (cᵢ − w)/(βκᵢ), exact for a quadratic loss. Each factor's column takes
//! tᵢ^(1/K) times the atom's vector, so the map gains tᵢ·φᵢ and θ gains tᵢ. The block is then
//! scaled by α: for a quadratic loss F(α) is a parabola, fixed by F(0), its slope
//! −Σ tᵢ(cᵢ − w) and F(1), and α is its minimizer (1 when the atoms are orthogonal under the
//! loss, as singular pairs of a dense matrix are); otherwise α is doubled while F decreases,
//! or halved until it does.

use ndarray::Axis;

use super::descent::Point;
use super::problem::{Factors, Problem, append};
use crate::backend::ExecError;
use crate::kir::{Role, Slot};
use crate::polar::Polar;

/// One atom to add: its vectors and its own step tᵢ.
struct Atom<'a> {
    vectors: &'a [ndarray::Array1<f64>],
    step: f64,
}

/// The factors with every atom appended at scale α·tᵢ.
fn with_atoms(w: &[ndarray::Array2<f64>], atoms: &[Atom<'_>], alpha: f64) -> Factors {
    let blocks = w.len();
    w.iter()
        .enumerate()
        .map(|(k, factor)| {
            atoms.iter().fold(factor.clone(), |m, atom| {
                let t = alpha * atom.step;
                let root = if blocks == 2 {
                    t.sqrt()
                } else {
                    t.powf(1.0 / blocks as f64)
                };
                append(&m, &(&atom.vectors[k] * root))
            })
        })
        .collect()
}

/// Adds the polar's atoms above the weight (at most `room` of them) to `point`. `None` when
/// no step decreases F (the polar maximizer's gain is below rounding, or its curvature
/// vanishes).
pub(crate) fn grow(
    problem: &mut Problem<'_, '_>,
    point: &Point,
    polar: &Polar,
    room: usize,
    tol: f64,
) -> Result<Option<Point>, ExecError> {
    let weight = problem.weight;
    let beta = problem.plan.smoothness;
    let mut atoms = Vec::new();
    let mut slope = 0.0;
    for (i, (vectors, value)) in polar.atoms.iter().enumerate() {
        if atoms.len() >= room || (i > 0 && *value <= weight * (1.0 + tol)) {
            break;
        }
        problem.machine.set_probe(1);
        for (l, vector) in vectors.iter().enumerate() {
            problem
                .machine
                .set_matrix(Slot::ProbeIn(l as u8), vector.clone().insert_axis(Axis(1)))?;
        }
        problem.machine.run(Role::Curvature)?;
        let curvature = problem.machine.scalar(Slot::Curvature)?;
        let gain = value - weight;
        if !(curvature > 0.0 && curvature.is_finite() && gain > 0.0) {
            continue;
        }
        let step = gain / (beta * curvature);
        slope += step * gain;
        atoms.push(Atom {
            vectors: vectors.as_slice(),
            step,
        });
    }
    if atoms.is_empty() {
        return Ok(None);
    }
    let at = |problem: &mut Problem<'_, '_>, alpha: f64| -> Result<Point, ExecError> {
        let w = with_atoms(&point.w, &atoms, alpha);
        let (objective, loss) = problem.objective(&w)?;
        Ok(Point { w, objective, loss })
    };
    let mut best = at(problem, 1.0)?;
    if problem.plan.quadratic {
        // F(α) = F₀ − α·slope + α²·curvature/2.
        let curvature = 2.0 * (best.objective - point.objective + slope);
        if curvature > 0.0 {
            let alpha = slope / curvature;
            if (alpha - 1.0).abs() > 1e-9 && alpha.is_finite() && alpha > 0.0 {
                let trial = at(problem, alpha)?;
                if trial.objective < best.objective {
                    best = trial;
                }
            }
        }
    } else if best.objective < point.objective {
        let mut alpha = 1.0;
        for _ in 0..20 {
            let trial = at(problem, 2.0 * alpha)?;
            if trial.objective >= best.objective {
                break;
            }
            (best, alpha) = (trial, 2.0 * alpha);
        }
    } else {
        let mut alpha = 1.0;
        for _ in 0..30 {
            alpha *= 0.5;
            let trial = at(problem, alpha)?;
            if trial.objective < point.objective {
                best = trial;
                break;
            }
        }
    }
    Ok((best.objective < point.objective).then_some(best))
}
