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

use ndarray::Array2;

use crate::backend::ExecError;
use crate::machine::Machine;
use crate::polar;
use crate::solve::{self, Options, Progress, Record, Solution, SolveError, Stop};

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
/// solver's own certificate (`solve/certificate.rs`: the same objective, polar request and
/// test as the run), and whether they pass at `tol`. The data must be bound; `Setup` is
/// run here.
pub fn evaluate(
    machine: &mut Machine<'_>,
    heights: &[usize],
    factors: &[Array2<f64>],
    tol: f64,
    seed: u64,
) -> Result<Evaluation, ExecError> {
    let mut problem = solve::Problem::setup(machine)?;
    let (objective, loss) = problem.objective(factors)?;
    let request = polar::Request::value_only(solve::polar_tolerance(tol), seed);
    let c = solve::certificate(&mut problem, heights, factors, objective, tol, &request)?;
    Ok(Evaluation {
        objective,
        loss,
        regularizer: objective - loss,
        polar_value: c.polar_value,
        gap: c.gap,
        relative_gap: c.gap.map(|g| g / objective.abs().max(f64::MIN_POSITIVE)),
        polar_residual: c.polar.residual,
        passes: c.passes,
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
