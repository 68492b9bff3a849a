//! The rank-growing meta-algorithm with its certificate (DESIGN §4), one loop over three
//! strategies chosen once from the plan:
//!
//! ```text
//! r ← r₀; W ← init(seed)
//! loop:
//!     descend at fixed r                      descent.rs  (span step | prox-gradient | dropout)
//!     certificate: p ← Ω°(−∇ℓ(X)), gap        certificate.rs
//!     stop when certified (relative gap ≤ tol; a heuristic polar: p ≤ λ(1 + tol))
//!     when p ≤ λ(1 + tol) but the gap is open: descend further, with tighter tests
//!     else grow by every atom above λ         growth.rs  (dropout: its top pair)
//! ```
//!
//! The objective is `F = ℓ(Φ(W)) + w Σᵢ Πₖ gₖ(wₖᵢ)` with `w = λ·scale` (`problem.rs`; dropout's
//! regularizer in `dropout.rs`). The polar value reported is `sup uᵀZv / scale`, comparable
//! with λ. Columns are balanced, pruned and merged in `columns.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use ndarray::{Array2, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::backend::ExecError;
use crate::kir::Regularization;
use crate::machine::Machine;
use crate::polar::{self, Request};

mod certificate;
mod columns;
mod descent;
mod dropout;
mod growth;
mod observed;
mod problem;

pub(crate) use certificate::{Certificate, certificate, polar_tolerance};
pub use dropout::{DropoutClosedForm, dropout_closed_form, equalization_spread};
pub(crate) use problem::Problem;

use columns::balance_and_prune;
use descent::{Limits, LocalStep, Point, Recorder};
use problem::{Factors, rank};

/// Descent iterations at one size before the polar test is consulted again.
const DESCENT_BUDGET: u64 = 2000;

/// The Lanczos residual (relative to σ_max) of the singular pairs growth adds when the loss
/// is dense and quadratic: growth by them is then thresholding of the residual's SVD, exact
/// up to this, and a tighter first step saves descent.
const EXACT_ATOM_TOL: f64 = 1e-12;

/// The Lanczos residual (relative to σ_max) of the atoms growth adds under a masked loss:
/// growth there only starts the descent (the atoms of P_Ω(Y) at zero are hundreds of noise
/// directions that descent thresholds away), so rough pairs serve as well as exact ones at a
/// fraction of the Krylov basis.
const MASKED_ATOM_TOL: f64 = 1e-2;

/// The most atoms the first growth adds under a masked loss (later growths at most double).
const MASKED_FIRST_ATOMS: usize = 16;

/// The first descent at a size under Newton stops when ‖∇G‖ has fallen this much.
const NEWTON_GRADIENT_DROP: f64 = 1e-2;

/// How to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Iterations of local descent, in all.
    pub max_iter: u64,
    /// Relative tolerance.
    pub tol: f64,
    /// Largest size r.
    pub max_rank: Option<usize>,
    /// Size to start from (random columns).
    pub init_rank: usize,
    /// Seed of the initialization and of polar starts.
    pub seed: u64,
    /// Set to stop cleanly (Ctrl-C).
    pub interrupt: Option<Arc<AtomicBool>>,
}

/// Why the solver stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The polar test passed (a certified optimum when the polar is exact).
    Optimal,
    /// The iteration budget ran out.
    IterationLimit,
    /// The polar test failed at the largest size allowed.
    RankLimit,
    /// Interrupted.
    Interrupted,
    /// The polar maximizer did not decrease the objective (a local polar solver's limit, or
    /// rounding), or its column merged back into the one it copied without moving the polar
    /// value.
    NoProgress,
}

impl Stop {
    /// How the report says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Stop::Optimal => "optimal",
            Stop::IterationLimit => "iteration_limit",
            Stop::RankLimit => "rank_limit",
            Stop::Interrupted => "interrupted",
            Stop::NoProgress => "no_progress",
        }
    }
}

/// One point of the convergence history.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Record {
    /// Descent iterations so far.
    pub iteration: u64,
    /// Outer iterations so far.
    pub outer: u64,
    /// The size r.
    pub rank: usize,
    /// F.
    pub objective: f64,
    /// Ω°(−∇ℓ), where computed (outer iterations).
    pub polar_value: Option<f64>,
    /// The duality gap, where computed (exact polars).
    pub gap: Option<f64>,
}

/// What the solver reports while it runs.
pub type Progress<'a> = &'a mut dyn FnMut(&Record);

/// The result of a run.
#[derive(Clone, Debug)]
pub struct Solution {
    /// The factors in block order (U `[m, r]` and V `[n, r]`; a CP model's modes).
    pub factors: Vec<Array2<f64>>,
    /// F at the end.
    pub objective: f64,
    /// ℓ at the end.
    pub loss: f64,
    /// λ·Θ at the end.
    pub regularizer: f64,
    /// λ.
    pub lambda: f64,
    /// The polar value at the end, comparable with λ.
    pub polar_value: f64,
    /// The polar value at W = 0: the smallest λ whose solution is 0.
    pub lambda_max: f64,
    /// F − D (exact polars only).
    pub gap: Option<f64>,
    /// The gap relative to F.
    pub relative_gap: Option<f64>,
    /// Lanczos residual of the last polar value (a bound on its error), when it has one.
    pub polar_residual: Option<f64>,
    /// Descent iterations.
    pub iterations: u64,
    /// Outer iterations (polar solves after the first).
    pub outer_iterations: u64,
    /// Why it stopped.
    pub stop: Stop,
    /// Seconds in local descent.
    pub seconds_descent: f64,
    /// Seconds in polar solves and gaps.
    pub seconds_polar: f64,
    /// The history.
    pub history: Vec<Record>,
    /// Dropout's numbers (dropout regularizers only).
    pub dropout: Option<DropoutSummary>,
    /// Why the last polar value is heuristic although the plan's solver is exact (the ReLU
    /// enumeration above its cap); `None` otherwise.
    pub polar_note: Option<String>,
    /// The numerical rank of the fitted map for `U * V'` (singular values above 1e-12 of the
    /// largest), which may be below the number of columns; `None` for other maps.
    pub map_rank: Option<usize>,
}

/// What a dropout run adds to its [`Solution`].
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DropoutSummary {
    /// κ in `κ·m·Σᵢ ‖uᵢ‖²‖vᵢ‖²`.
    pub kappa: f64,
    /// Whether the rate grows with the size (m = r) or is fixed (m = 1).
    pub adaptive: bool,
    /// 2κ_c: the weight λ of the induced `½λ‖X‖_*²` at the final size, which the reported
    /// polar value `σ_max(Y − X)/‖X‖_*` is compared with.
    pub lambda_convex: f64,
    /// ‖U Vᵀ‖_*.
    pub nuclear_norm: f64,
    /// `(max − min)/mean` of `‖uᵢ‖‖vᵢ‖`: 0 when the factors are equalized.
    pub equalization_spread: f64,
    /// F after splitting every column into two copies scaled by 1/√2 (the same map): below F
    /// at a fixed rate, which therefore does not limit the size.
    pub split_objective: f64,
}

impl Solution {
    /// The size r.
    pub fn rank(&self) -> usize {
        self.factors.first().map_or(0, Array2::ncols)
    }

    /// The first factor (U).
    pub fn left(&self) -> &Array2<f64> {
        &self.factors[0]
    }

    /// The second factor (V).
    pub fn right(&self) -> &Array2<f64> {
        &self.factors[1]
    }

    /// Whether it stopped at a certified point (relative gap within the tolerance for an
    /// exact polar; the polar test for a heuristic one).
    pub fn converged(&self) -> bool {
        self.stop == Stop::Optimal
    }
}

/// A fault while solving.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SolveError {
    /// The back end failed.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// The objective became NaN or infinite.
    #[error(
        "the objective became {0} at iteration {1}; the data may be badly scaled (try a smaller step: rescale the data)"
    )]
    NonFinite(f64, u64),
}

/// Runs the meta-algorithm. The data must already be bound on the machine's back end (data
/// dimensions and inputs); the `Setup` kernel is run here. `heights`: the number of rows of
/// each factor, in block order (m and n for `U * V'`).
pub fn solve(
    machine: &mut Machine<'_>,
    heights: &[usize],
    options: &Options,
    progress: Progress<'_>,
) -> Result<Solution, SolveError> {
    solve_from(machine, heights, options, None, progress)
}

/// The tests of descent, tightened when the polar test passes but the gap is still open.
#[derive(Clone, Copy, Debug)]
struct Tolerances {
    /// F's relative decrease that counts as a stall.
    stall: f64,
    /// The relative step that counts as stationary.
    step: f64,
    /// Newton descent (matrix completion) also stops once ‖∇G‖ has fallen by this factor
    /// at the size (0: never): right after a growth the size is often still too small,
    /// where converging is slow (saddles) and wasted, so the polar decides early.
    gradient_drop: f64,
}

impl Tolerances {
    fn new(tol: f64) -> Tolerances {
        Tolerances {
            stall: (tol * tol).max(1e-15),
            step: tol * 1e-2,
            gradient_drop: NEWTON_GRADIENT_DROP,
        }
    }

    /// A hundred times tighter; `false` once the step test is below f64's resolution.
    fn tighten(&mut self) -> bool {
        if self.gradient_drop > 0.0 {
            // The first tightening only lifts the early stop (the polar test passed).
            self.gradient_drop = 0.0;
            return true;
        }
        self.stall *= 0.01;
        self.step *= 0.01;
        self.step >= 1e-17
    }
}

/// Small random columns, balanced by the caller; the nonnegative cone keeps |x|.
fn random_columns(heights: &[usize], nonneg: &[bool], r: usize, rng: &mut ChaCha8Rng) -> Factors {
    heights
        .iter()
        .zip(nonneg)
        .map(|(&n, &nonneg)| {
            let mut m = Array2::zeros((n, r));
            for mut c in m.axis_iter_mut(Axis(1)) {
                let mut x = polar::normal_vector(rng, n) * 1e-2;
                if nonneg {
                    x.mapv_inplace(f64::abs);
                }
                c.assign(&x);
            }
            m
        })
        .collect()
}

/// [`solve`] from given factors instead of `options.init_rank` random columns (a warm start:
/// the GPU back end's f32 solution polished in f64, see [`crate::certify`]).
pub fn solve_from(
    machine: &mut Machine<'_>,
    heights: &[usize],
    options: &Options,
    start: Option<Vec<Array2<f64>>>,
    progress: Progress<'_>,
) -> Result<Solution, SolveError> {
    let blocks = machine.plan().blocks();
    if heights.len() != blocks {
        return Err(SolveError::Exec(ExecError::Backend(format!(
            "{} factor heights given for {blocks} factors",
            heights.len()
        ))));
    }
    let mut problem = Problem::setup(machine)?;
    let plan = problem.plan.clone();
    let local = LocalStep::for_problem(&problem);
    let (dropout, grows) = match plan.regularization {
        Regularization::Dropout { kappa, adaptive } => (Some((kappa, adaptive)), adaptive),
        Regularization::ProductOfGauges => (None, true),
    };
    let interrupted = || {
        options
            .interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    };
    let tol = options.tol;
    let weight = problem.weight;
    // What the polar solver is asked: every atom growth could add (dropout adds its top one).
    let dense_quadratic = plan.quadratic && !plan.masked;
    let request = |seed: u64, room: usize| Request {
        tol: polar_tolerance(tol),
        atom_tol: if dense_quadratic {
            EXACT_ATOM_TOL
        } else if plan.masked {
            MASKED_ATOM_TOL
        } else {
            polar_tolerance(tol)
        },
        seed,
        above: weight * (1.0 + tol),
        max_atoms: if dropout.is_some() { 1 } else { room.max(1) },
        block: if plan.masked { 4 } else { 0 },
    };
    let room_at = |r: usize| {
        let room = options
            .max_rank
            .map_or(usize::MAX, |max| max.saturating_sub(r));
        if plan.masked {
            // At most doubling (from MASKED_FIRST_ATOMS): the zero-filled data's atoms
            // above λ overcount the rank many times (879 of 1000 on a 2000 x 1000 matrix
            // with 20% observed whose optimum has rank 20), and each costs Lanczos and
            // descent work at the size it makes.
            room.min(r.max(MASKED_FIRST_ATOMS))
        } else {
            room
        }
    };
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let mut seconds_descent = 0.0;
    let mut seconds_polar = 0.0;
    let mut history = Vec::new();

    // The certificate at W = 0 gives λ_max (its polar value) and, from zero, the first atoms.
    let mut point = {
        let w: Factors = heights.iter().map(|&n| Array2::zeros((n, 0))).collect();
        let (objective, loss) = problem.objective(&w)?;
        Point { w, objective, loss }
    };
    let clock = Instant::now();
    let at_zero = certificate(
        &mut problem,
        heights,
        &point.w,
        point.objective,
        tol,
        &request(options.seed, room_at(0)),
    )?;
    seconds_polar += clock.elapsed().as_secs_f64();
    let lambda_max = if dropout.is_some() {
        f64::INFINITY
    } else {
        at_zero.polar.value / plan.scale
    };
    let mut pending: Option<Certificate> = Some(at_zero);
    let tidy = |problem: &mut Problem<'_, '_>, w: &mut Factors| -> Result<(), ExecError> {
        if dropout.is_none() {
            balance_and_prune(problem, w)?;
        }
        Ok(())
    };
    let initial = match start {
        Some(factors) => Some(factors),
        None if options.init_rank > 0 => {
            let r = options
                .init_rank
                .min(options.max_rank.unwrap_or(usize::MAX));
            let nonneg: Vec<bool> = plan.gauges.iter().map(|g| g.nonneg).collect();
            Some(random_columns(heights, &nonneg, r, &mut rng))
        }
        None => None,
    };
    if let Some(mut w) = initial {
        tidy(&mut problem, &mut w)?;
        let (objective, loss) = problem.objective(&w)?;
        point = Point { w, objective, loss };
        pending = None;
    }

    let mut iterations: u64 = 0;
    let mut outer: u64 = 0;
    let mut tolerances = Tolerances::new(tol);
    let mut last: Option<Certificate> = None;
    // The size, the polar value's excess over the weight and the tolerances before the last
    // growth, until the polar test after it.
    let mut grown_from: Option<(usize, f64, Tolerances)> = None;
    let stop;
    history.push(Record {
        iteration: 0,
        outer: 0,
        rank: rank(&point.w),
        objective: point.objective,
        polar_value: None,
        gap: None,
    });
    loop {
        let clock = Instant::now();
        if rank(&point.w) > 0 && pending.is_none() {
            let limits = Limits {
                max_iter: options.max_iter,
                budget: DESCENT_BUDGET,
                stall_tol: tolerances.stall,
                step_tol: tolerances.step,
                gradient_drop: tolerances.gradient_drop,
                crawl_tol: tolerances.stall.sqrt(),
                interrupted: &interrupted,
            };
            let mut recorder = Recorder {
                outer,
                history: &mut history,
                progress: &mut *progress,
            };
            descent::descend(
                &mut problem,
                local,
                &mut point,
                &mut iterations,
                &limits,
                &mut recorder,
            )?;
        }
        seconds_descent += clock.elapsed().as_secs_f64();
        if interrupted() {
            stop = Stop::Interrupted;
            break;
        }

        let clock = Instant::now();
        let cert = match pending.take() {
            Some(c) => c,
            None => certificate(
                &mut problem,
                heights,
                &point.w,
                point.objective,
                tol,
                &request(
                    options.seed.wrapping_add(outer + 1),
                    room_at(rank(&point.w)),
                ),
            )?,
        };
        seconds_polar += clock.elapsed().as_secs_f64();
        history.push(Record {
            iteration: iterations,
            outer,
            rank: rank(&point.w),
            objective: point.objective,
            polar_value: cert.polar_value.is_finite().then_some(cert.polar_value),
            gap: cert.gap,
        });
        progress(history.last().unwrap_or(&history[0]));
        let polar = last.insert(cert);

        // A growth whose column the descent merged back into the columns it copied, and that
        // left the polar test where it was (less than a tenth of the excess removed), was a
        // step along existing columns; the next growth would repeat it. (A growth merged
        // back while the excess shrinks is progress of a slow descent: grow again.)
        let excess = polar.polar.value - weight;
        let absorbed = grown_from
            .take()
            .filter(|&(size, before, _)| rank(&point.w) <= size && excess >= 0.9 * before)
            .map(|(_, _, before)| before);
        if polar.passes {
            stop = Stop::Optimal;
            break;
        }
        if iterations >= options.max_iter {
            stop = Stop::IterationLimit;
            break;
        }
        if polar.polar_ok || !grows {
            // Nothing to add (or no growth at a fixed size) but the gap is open: descend
            // further with tighter tests.
            if !tolerances.tighten() {
                stop = if grows || polar.polar_ok {
                    Stop::NoProgress
                } else {
                    Stop::RankLimit
                };
                break;
            }
            continue;
        }
        if options.max_rank.is_some_and(|max| rank(&point.w) >= max) {
            stop = Stop::RankLimit;
            break;
        }
        if let Some(before) = absorbed {
            // Growing again would add the same column: polish the current size instead, as
            // when the maximizer does not decrease F (from the tolerances before that growth,
            // so that repeated absorptions end).
            tolerances = before;
            if !tolerances.tighten() {
                stop = Stop::NoProgress;
                break;
            }
            continue;
        }

        let rank_before = rank(&point.w);
        let grown = match dropout {
            Some((kappa, _)) => dropout::grow(&mut problem, &point.w, &polar.polar, kappa)?
                .map(|(w, (objective, loss))| Point { w, objective, loss }),
            None => growth::grow(
                &mut problem,
                &point,
                &polar.polar,
                room_at(rank_before),
                tol,
            )?,
        };
        let Some(next) = grown else {
            // The step is below rounding: polish the current size instead.
            if !tolerances.tighten() {
                stop = Stop::NoProgress;
                break;
            }
            continue;
        };
        outer += 1;
        point = next;
        grown_from = dropout
            .is_none()
            .then_some((rank_before, excess, tolerances));
        tolerances = Tolerances::new(tol);
        if interrupted() {
            stop = Stop::Interrupted;
            break;
        }
    }
    let (polar_value, gap, polar_residual, polar_note) = match &last {
        Some(c) => (
            c.polar_value,
            c.gap,
            c.polar.residual,
            c.polar.heuristic_note.clone(),
        ),
        None => (f64::INFINITY, None, None, None),
    };
    let regularizer = point.objective - point.loss;
    let relative_gap = gap.map(|g| g / point.objective.abs().max(f64::MIN_POSITIVE));
    let map_rank = problem::matrix_rank(&problem, &point.w);
    let (lambda, summary) = match dropout {
        Some((kappa, adaptive)) => {
            let summary = dropout::summary(kappa, adaptive, &point.w, point.loss, point.objective);
            (summary.lambda_convex, Some(summary))
        }
        None => (plan.lambda, None),
    };
    Ok(Solution {
        factors: point.w,
        objective: point.objective,
        loss: point.loss,
        regularizer,
        lambda,
        polar_value,
        lambda_max,
        gap,
        relative_gap,
        polar_residual,
        iterations,
        outer_iterations: outer,
        stop,
        seconds_descent,
        seconds_polar,
        history,
        dropout: summary,
        polar_note,
        map_rank,
    })
}
