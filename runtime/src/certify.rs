//! Honest certificates for back ends that iterate in low precision (the GPU in f32).
//!
//! An f32 iterate cannot certify a relative gap of 1e-8: the squared loss is formed as
//! ½‖Y‖² − ⟨X, Y⟩ + ½‖X‖², whose cancellation alone costs f32 several digits, and descent
//! stalls long before. So the rule is:
//!
//! 1. the low-precision back end solves to a tolerance it can resolve,
//!    [`low_precision_tol`] (1e-3 in f32: its stall test, a relative decrease below tol², sits
//!    just above f32's resolution of the objective);
//! 2. its factors come back and the objective, the polar value and the duality gap are
//!    recomputed in f64 by a CPU back end (the interpreter) on the same program
//!    ([`evaluate`]);
//! 3. if those f64 numbers pass the test at the user's tolerance, that is the certificate;
//!    otherwise the CPU polishes in f64 from the back end's factors
//!    ([`crate::solve::solve_from`]), and the certificate is the polished run's.
//!
//! Either way every number a report prints as a certificate was computed in f64.

use ndarray::{Array1, Array2};

use crate::backend::ExecError;
use crate::kir::{Role, Slot};
use crate::machine::Machine;
use crate::polar;
use crate::solve::{self, Options, Progress, Record, Solution, SolveError, Stop};
use crate::value::Value;

/// The tolerance a back end computing with `epsilon` (its unit round-off) is run to: the
/// user's, but no smaller than 1e4·ε (1e-3 in f32; any user tolerance in f64).
pub fn low_precision_tol(tol: f64, epsilon: f64) -> f64 {
    tol.max(1e4 * epsilon)
}

/// The certificate's numbers at given factors, computed by the machine's back end.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Evaluation {
    /// F = ℓ + λ·Θ.
    pub objective: f64,
    /// ℓ.
    pub loss: f64,
    /// λ·Θ.
    pub regularizer: f64,
    /// Ω°(−∇ℓ), comparable with λ.
    pub polar_value: f64,
    /// F − D (exact polars).
    pub gap: Option<f64>,
    /// The gap relative to F.
    pub relative_gap: Option<f64>,
    /// Lanczos residual of the polar value, when it has one.
    pub polar_residual: Option<f64>,
    /// Whether these numbers pass the solver's test at the tolerance given to [`evaluate`].
    pub passes: bool,
}

/// Evaluates objective, polar value and (exact polars) duality gap at the factors with the
/// solver's rules, and whether they pass its stopping test at `tol`. The data must be bound
/// and the `Setup` kernel run.
pub fn evaluate(
    machine: &mut Machine<'_>,
    heights: &[usize],
    factors: &[Array2<f64>],
    tol: f64,
    seed: u64,
) -> Result<Evaluation, ExecError> {
    let plan = machine.plan().clone();
    let weight = plan.lambda * plan.scale;
    machine.set_rank(factors.first().map_or(0, Array2::ncols));
    for (k, w) in factors.iter().enumerate() {
        machine.set_matrix(Slot::Factor(k as u8), w.clone())?;
    }
    machine.run(Role::Value)?;
    let loss = machine.scalar(Slot::Loss)?;
    let mut products: Option<Array1<f64>> = None;
    for k in 0..factors.len() as u8 {
        machine.run(Role::Gauge(k))?;
        let g = machine.vector(Slot::Gauge(k))?;
        products = Some(match products {
            None => g,
            Some(p) => p * g,
        });
    }
    let regularizer = weight * products.map_or(0.0, |p| p.sum());
    let objective = loss + regularizer;
    machine.run(Role::Residual)?;
    let polar_tol = (tol * 1e-2).clamp(1e-13, 1e-6);
    let p = polar::solve(machine, heights, polar_tol, seed, factors)?;
    let gap = if plan.polar_exact {
        let s_dual = if p.value > weight {
            weight / p.value
        } else {
            1.0
        };
        machine.set(Slot::DualScale, Value::Scalar(s_dual))?;
        machine.run(Role::Dual)?;
        Some((objective - machine.scalar(Slot::Dual)?).max(0.0))
    } else {
        None
    };
    let scale = objective.abs().max(f64::MIN_POSITIVE);
    let polar_ok = p.value <= weight * (1.0 + tol);
    let passes = match gap {
        Some(g) => g <= tol * scale,
        None => polar_ok,
    };
    Ok(Evaluation {
        objective,
        loss,
        regularizer,
        polar_value: p.value / plan.scale,
        gap,
        relative_gap: gap.map(|g| g / scale),
        polar_residual: p.residual,
        passes,
    })
}

/// What [`certify`] did.
#[derive(Clone, Debug)]
pub struct Certified {
    /// The result, every certificate number in f64: the low-precision solution with its
    /// numbers recomputed, or the f64 polish of it.
    pub solution: Solution,
    /// The f64 numbers at the low-precision solution's factors.
    pub at_start: Evaluation,
    /// Descent iterations of the f64 polish (0 when the recomputed numbers passed).
    pub polish_iterations: u64,
}

/// Recomputes the certificate of a low-precision `start` in f64 on `machine` (a CPU back end
/// with the same program and data bound, `Setup` not yet run) and polishes from its factors
/// when the recomputed numbers do not pass at `options.tol`.
pub fn certify(
    machine: &mut Machine<'_>,
    heights: &[usize],
    start: &Solution,
    options: &Options,
    progress: Progress<'_>,
) -> Result<Certified, SolveError> {
    machine.run(Role::Setup)?;
    let at_start = evaluate(machine, heights, &start.factors, options.tol, options.seed)?;
    let polish = !at_start.passes || start.stop != Stop::Optimal;
    if !polish || start.stop == Stop::Interrupted {
        let mut solution = start.clone();
        solution.objective = at_start.objective;
        solution.loss = at_start.loss;
        solution.regularizer = at_start.regularizer;
        solution.polar_value = at_start.polar_value;
        solution.gap = at_start.gap;
        solution.relative_gap = at_start.relative_gap;
        solution.polar_residual = at_start.polar_residual;
        return Ok(Certified {
            solution,
            at_start,
            polish_iterations: 0,
        });
    }
    let polished = solve::solve_from(
        machine,
        heights,
        options,
        Some(start.factors.clone()),
        progress,
    )?;
    let mut solution = polished.clone();
    solution.iterations = start.iterations + polished.iterations;
    solution.outer_iterations = start.outer_iterations + polished.outer_iterations;
    solution.seconds_descent += start.seconds_descent;
    solution.seconds_polar += start.seconds_polar;
    solution.lambda_max = start.lambda_max;
    solution.history = start.history.clone();
    solution
        .history
        .extend(polished.history.iter().map(|r| Record {
            iteration: r.iteration + start.iterations,
            outer: r.outer + start.outer_iterations,
            ..r.clone()
        }));
    Ok(Certified {
        solution,
        at_start,
        polish_iterations: polished.iterations,
    })
}
