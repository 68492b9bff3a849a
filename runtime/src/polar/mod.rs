//! Polar solvers: `sup { uᵀ Z v : g_U(u) ≤ 1, g_V(v) ≤ 1 }` for Z = −∇ℓ at the current point,
//! reached only through products with Z and Zᵀ (or, for the entrywise closed forms, Z itself).
//!
//! Every solver returns the maximizer and, where it can, every further atom whose value
//! exceeds the [`Request::above`] threshold (the regularizer's weight), so that growth adds
//! all the columns the polar certifies at once.
//!
//! - `lanczos`: σ_max(Z) and the singular pairs above the threshold by block
//!   Golub–Kahan–Lanczos with full reorthogonalization (exact, ℓ2 · ℓ2); `deflated` runs it
//!   on Z without the current factors' spans, where an optimum's residual has its cluster of
//!   singular values at λ, and bounds σ_max(Z) from the pieces (a second-order bound);
//! - `extreme`: the ℓ1 closed forms (one ball's extreme points are the signed unit vectors,
//!   so the sup is a max over Z's rows or columns of the other gauge's dual; exact);
//! - `alternating`: alternating linear maximization over each ball from seeded starts
//!   (heuristic);
//! - `relu`, `deep_relu`: the two-layer ReLU polar (exact for input dimension ≤ 3) and the
//!   three-layer subnetwork polar (heuristic).

use ndarray::{Array1, Array2};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::backend::ExecError;
use crate::kir::{PolarSolver, Role, Slot};
use crate::machine::Machine;

mod alternating;
pub mod deep_relu;
mod deflated;
mod extreme;
mod lanczos;
pub mod relu;

/// A solution of the polar problem.
#[derive(Clone, Debug)]
pub struct Polar {
    /// `uᵀ Z v` at the maximizer (not divided by θ's constant).
    pub value: f64,
    /// Maximizers, best first: one unit vector per factor (gₖ = 1) and the value there
    /// (uᵀZv for a matrix). Exact ℓ2 solvers return further orthonormal Ritz pairs after the
    /// first.
    pub atoms: Vec<(Vec<Array1<f64>>, f64)>,
    /// For Lanczos: the residual norm of the top Ritz pair.
    pub residual: Option<f64>,
    /// Products with Z or Zᵀ used.
    pub products: usize,
    /// Set when a solver the plan calls exact fell back on a local method this time (the
    /// ReLU enumeration above its cap): why. The value is then only a lower bound.
    pub heuristic_note: Option<String>,
}

/// Standard normal samples (Box–Muller) from a seeded generator.
pub fn normal_vector(rng: &mut ChaCha8Rng, n: usize) -> Array1<f64> {
    Array1::from_shape_fn(n, |_| {
        let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
        let u2: f64 = rng.random::<f64>();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    })
}

pub(crate) fn norm(x: &Array1<f64>) -> f64 {
    x.dot(x).sqrt()
}

/// What the caller asks of a polar solver.
#[derive(Clone, Copy, Debug)]
pub struct Request {
    /// Relative tolerance of the value.
    pub tol: f64,
    /// Relative tolerance of the atoms returned above `above` (block Lanczos: the residual
    /// of each such singular pair relative to σ_max).
    pub atom_tol: f64,
    /// Seed of random starts.
    pub seed: u64,
    /// Atoms whose value exceeds this are returned after the maximizer (exact solvers):
    /// the regularizer's weight, so that each of them decreases F when added.
    pub above: f64,
    /// At most this many atoms (the room left under the size limit; at least the maximizer).
    pub max_atoms: usize,
    /// Block solvers: how many vectors to multiply at once (a hint: the number of atoms
    /// expected; 0 lets the solver choose).
    pub block: usize,
}

impl Request {
    /// Only the value and its maximizer (the tolerance and seed given).
    pub fn value_only(tol: f64, seed: u64) -> Request {
        Request {
            tol,
            atom_tol: tol,
            seed,
            above: f64::INFINITY,
            max_atoms: 1,
            block: 1,
        }
    }
}

/// Solves the polar problem after the `Residual` kernel has run. `heights`: the factors'
/// row counts (Z's shape for a matrix); `current`: the factors now (warm starts of the ReLU
/// polar).
pub fn solve(
    machine: &mut Machine<'_>,
    heights: &[usize],
    request: &Request,
    current: &[Array2<f64>],
) -> Result<Polar, ExecError> {
    let plan = machine.plan().clone();
    let (tol, seed) = (request.tol, request.seed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let rows = heights.first().copied().unwrap_or(0);
    let cols = heights.get(1).copied().unwrap_or(0);
    match plan.polar {
        PolarSolver::TopSingular => match deflated::spans(current) {
            Some(spans) => deflated::deflated(machine, rows, cols, &spans, request, &mut rng),
            None => lanczos::lanczos(
                &mut lanczos::Residual {
                    machine,
                    rows,
                    cols,
                },
                request,
                &mut rng,
                0.0,
            ),
        },
        PolarSolver::MaxAbsEntry
        | PolarSolver::MaxPositiveEntry
        | PolarSolver::MaxRowNorm
        | PolarSolver::MaxColumnNorm => {
            // −∇ℓ in full, as its products with the identity (one pass per outer iteration).
            machine.set_probe(cols);
            machine.set_matrix(Slot::ProbeIn(1), Array2::eye(cols))?;
            machine.run(Role::Contract(0))?;
            let z = machine.matrix(Slot::ProbeOut(0))?;
            Ok(extreme::extreme_points(
                &z,
                &plan.gauges[0],
                &plan.gauges[1],
                request,
            ))
        }
        PolarSolver::Alternating => alternating::alternating(
            machine,
            heights,
            &plan.gauges,
            plan.polar_starts.max(1) as usize,
            tol,
            &mut rng,
        ),
        PolarSolver::ReluPatterns => relu::relu_patterns(machine, &plan, seed, current),
        PolarSolver::DeepReluAscent { hidden } => {
            deep_relu::deep_relu(machine, &plan, hidden as usize, tol, seed, current)
        }
    }
}
