//! The certificate at a point, in one place for the solver's loop and for the f64
//! re-certification of a low-precision run ([`crate::certify`]): the polar value, the polar
//! test and, for an exact polar, the duality gap.
//!
//! Product of gauges: the polar value `p = sup uᵀZv` over the unit balls with Z = −∇ℓ; the
//! test `p ≤ w(1 + tol)`; the dual point `s·∇ℓ` with `s = min(1, w/p)` (feasible for the
//! dual of the convex problem), whose value D bounds the optimum from below, so that
//! `F − D ≥ F − F*`. Dropout: see [`super::dropout`] (threshold `2κ_c‖X‖_*`, its own dual).
//!
//! A point is certified when the relative gap is at most tol (exact polars) or, for a
//! heuristic polar, when the polar test passes (a necessary condition only, and reported so).

use ndarray::Array2;

use super::dropout;
use super::problem::{Problem, rank};
use crate::backend::ExecError;
use crate::kir::{Regularization, Role, Slot};
use crate::polar::{self, Polar, Request};
use crate::value::Value;

/// The polar solver's relative tolerance for a run at `tol`.
pub(crate) fn polar_tolerance(tol: f64) -> f64 {
    (tol * 1e-2).clamp(1e-13, 1e-6)
}

/// The certificate's numbers at one point.
#[derive(Clone, Debug)]
pub(crate) struct Certificate {
    /// The polar solution (its atoms are what growth adds).
    pub polar: Polar,
    /// The polar value comparable with λ (product of gauges: `sup uᵀZv / scale`; dropout:
    /// `σ_max(Y − X)/‖X‖_*`).
    pub polar_value: f64,
    /// The polar test: no atom would decrease F.
    pub polar_ok: bool,
    /// F − D (exact polars).
    pub gap: Option<f64>,
    /// Whether the point is certified at the tolerance.
    pub passes: bool,
}

/// The certificate at factors `w` with objective `objective`, at tolerance `tol`. Runs the
/// `Residual` kernel there; `request` says which atoms the polar solver returns.
pub(crate) fn certificate(
    problem: &mut Problem<'_, '_>,
    heights: &[usize],
    w: &[Array2<f64>],
    objective: f64,
    tol: f64,
    request: &Request,
) -> Result<Certificate, ExecError> {
    problem.bind(w)?;
    problem.machine.run(Role::Residual)?;
    let polar = polar::solve(problem.machine, heights, request, w)?;
    let exact = problem.plan.polar_exact && polar.heuristic_note.is_none();
    let magnitude = objective.abs().max(f64::MIN_POSITIVE);
    // Lanczos's value is a lower bound on σ_max within its residual: the tests use the upper
    // end, so that rounding of the polar never certifies.
    let upper = polar.value + polar.residual.unwrap_or(0.0);
    let (polar_value, polar_ok, gap, needs_columns) = match problem.plan.regularization {
        Regularization::ProductOfGauges => {
            let weight = problem.weight;
            let gap = if exact {
                let s_dual = if upper > weight { weight / upper } else { 1.0 };
                problem
                    .machine
                    .set(Slot::DualScale, Value::Scalar(s_dual))?;
                problem.machine.run(Role::Dual)?;
                let dual = problem.machine.scalar(Slot::Dual)?;
                Some((objective - dual).max(0.0))
            } else {
                None
            };
            (
                polar.value / problem.plan.scale,
                upper <= weight * (1.0 + tol),
                gap,
                false,
            )
        }
        Regularization::Dropout { kappa, adaptive } => {
            let (value, ok, gap) =
                dropout::certificate_numbers(problem, w, upper, objective, tol, kappa, adaptive)?;
            // X = 0 is never dropout's optimum (σ₁ > 0 always gives a column).
            (value, ok, Some(gap), true)
        }
    };
    let passes = match gap {
        Some(g) => g <= tol * magnitude && (!needs_columns || rank(w) > 0),
        None => polar_ok,
    };
    Ok(Certificate {
        polar,
        polar_value,
        polar_ok,
        gap,
        passes,
    })
}
