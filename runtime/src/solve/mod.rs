//! The rank-growing meta-algorithm with its certificate (DESIGN §4).
//!
//! ```text
//! r ← r₀; W ← init(seed)
//! loop:
//!     local descent at fixed r: accelerated alternating proximal gradient (steps 1/L per
//!         block from the Lipschitz bound, extrapolation with restart when F increases,
//!         column balancing, pruning of zero columns) until F stalls
//!     p ← Ω°(−∇ℓ(X)) by the plan's polar solver
//!     stop when p ≤ λ(1 + tol) (and, for an exact polar, the relative duality gap ≤ tol)
//!     else append the polar maximizer scaled by the best step, r ← r + 1
//! ```
//!
//! The objective is `F = ℓ(U Vᵀ) + w Σᵢ g_U(uᵢ) g_V(vᵢ)` with `w = λ·scale`. The polar value
//! reported is `sup uᵀZv / scale`, comparable with λ. The duality gap (exact polars) uses
//! Z = s·∇ℓ with s = min(1, w / sup uᵀ(−∇ℓ)v): D = −ℓ*(Z) is a lower bound on the optimum.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use ndarray::{Array1, Array2, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::backend::ExecError;
use crate::kir::{Lipschitz, PolarSolver, Regularization, Role, Slot};
use crate::linalg;
use crate::machine::Machine;
use crate::polar::{self, Polar};
use crate::value::Value;

mod dropout;

pub use dropout::{DropoutClosedForm, dropout_closed_form, equalization_spread};

/// Descent iterations at one size before the polar test is consulted again.
const DESCENT_BUDGET: u64 = 2000;

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
    /// rounding).
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
    /// U, `[m, r]`.
    pub left: Array2<f64>,
    /// V, `[n, r]`.
    pub right: Array2<f64>,
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
        self.left.ncols()
    }

    /// Whether it stopped at a point that passed the polar test.
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

/// The kernels and buffers of one factor's block step.
#[derive(Clone, Copy)]
struct Block {
    /// 0 for the left factor, 1 for the right (indexes `Plan::lipschitz`).
    index: usize,
    grad_role: Role,
    grad_slot: Slot,
    other_gauge_role: Role,
    other_gauge_slot: Slot,
    step_slot: Slot,
    prox_role: Role,
    factor_slot: Slot,
}

impl Block {
    const LEFT: Block = Block {
        index: 0,
        grad_role: Role::GradLeft,
        grad_slot: Slot::GradLeft,
        other_gauge_role: Role::GaugeRight,
        other_gauge_slot: Slot::GaugeRight,
        step_slot: Slot::StepLeft,
        prox_role: Role::ProxLeft,
        factor_slot: Slot::Left,
    };
    const RIGHT: Block = Block {
        index: 1,
        grad_role: Role::GradRight,
        grad_slot: Slot::GradRight,
        other_gauge_role: Role::GaugeLeft,
        other_gauge_slot: Slot::GaugeLeft,
        step_slot: Slot::StepRight,
        prox_role: Role::ProxRight,
        factor_slot: Slot::Right,
    };
}

struct State<'m, 'p> {
    machine: &'m mut Machine<'p>,
    weight: f64,
    smoothness: f64,
    /// λ_max(XᵀX) for [`Lipschitz::InputTimesOtherGram`] (read once after `Setup`).
    input_norm_sq: f64,
}

impl State<'_, '_> {
    fn bind(&mut self, u: &Array2<f64>, v: &Array2<f64>) -> Result<(), ExecError> {
        self.machine.set_rank(u.ncols());
        self.machine.set_matrix(Slot::Left, u.clone())?;
        self.machine.set_matrix(Slot::Right, v.clone())
    }

    fn gauges(&mut self) -> Result<(Array1<f64>, Array1<f64>), ExecError> {
        self.machine.run(Role::GaugeLeft)?;
        self.machine.run(Role::GaugeRight)?;
        Ok((
            self.machine.vector(Slot::GaugeLeft)?,
            self.machine.vector(Slot::GaugeRight)?,
        ))
    }

    fn regularizer(&mut self) -> Result<f64, ExecError> {
        let (a, b) = self.gauges()?;
        Ok(self.weight * a.dot(&b))
    }

    /// F at (u, v): (objective, loss).
    fn objective(&mut self, u: &Array2<f64>, v: &Array2<f64>) -> Result<(f64, f64), ExecError> {
        self.bind(u, v)?;
        self.machine.run(Role::Value)?;
        let loss = self.machine.scalar(Slot::Loss)?;
        Ok((loss + self.regularizer()?, loss))
    }

    /// One prox-gradient step on one factor's block, from `from` (already bound), with the
    /// other factor `other` fixed: step 1/L with L = smoothness · λ_max(otherᵀ other), then
    /// the column prox with weights w·g(other's columns)/L. Returns the new block.
    fn prox_step(
        &mut self,
        block: Block,
        from: &Array2<f64>,
        other: &Array2<f64>,
    ) -> Result<Array2<f64>, ExecError> {
        self.machine.run(block.grad_role)?;
        let grad = self.machine.matrix(block.grad_slot)?;
        let rule = self.machine.plan().lipschitz[block.index];
        let other_gram = || {
            let gram = linalg::gemm(other.view(), true, other.view(), false, 1.0);
            linalg::largest_eigenvalue(gram.view())
        };
        let curvature = match rule {
            Lipschitz::OtherGram => other_gram(),
            Lipschitz::BlockGram => {
                linalg::largest_eigenvalue(self.machine.matrix(Slot::BlockGram)?.view())
            }
            Lipschitz::InputTimesOtherGram => self.input_norm_sq * other_gram(),
        };
        let mut lipschitz = (self.smoothness * curvature).max(1e-300);
        // The loss where the step starts (the gradient kernel computed it) for backtracking.
        let backtrack = rule == Lipschitz::InputTimesOtherGram;
        let loss_from = if backtrack {
            self.machine.scalar(Slot::Loss)?
        } else {
            0.0
        };
        self.machine.run(block.other_gauge_role)?;
        let gauges = self.machine.vector(block.other_gauge_slot)?;
        for _ in 0..60 {
            let weights = &gauges * (self.weight / lipschitz);
            let mut start = from.clone();
            start.scaled_add(-1.0 / lipschitz, &grad);
            self.machine.set_matrix(block.step_slot, start)?;
            self.machine
                .set(Slot::ProxWeights, Value::Vector(weights))?;
            self.machine.run(block.prox_role)?;
            let next = self.machine.matrix(block.factor_slot)?;
            if !backtrack {
                return Ok(next);
            }
            // Accept when ℓ(next) ≤ ℓ(from) + ⟨∇, Δ⟩ + L/2 ‖Δ‖² (the bound that makes the
            // prox step descend); an activation pattern that changed can break it.
            self.machine.run(Role::Value)?;
            let loss_next = self.machine.scalar(Slot::Loss)?;
            let delta = &next - from;
            let bound =
                loss_from + (&grad * &delta).sum() + 0.5 * lipschitz * (&delta * &delta).sum();
            if loss_next <= bound + 1e-12 * loss_from.abs() {
                return Ok(next);
            }
            lipschitz *= 2.0;
            self.machine.set_matrix(block.factor_slot, from.clone())?;
        }
        Ok(from.clone())
    }

    /// A prox-gradient step on U from `u_from` with V fixed; returns the new U.
    fn step_left(
        &mut self,
        u_from: &Array2<f64>,
        v: &Array2<f64>,
    ) -> Result<Array2<f64>, ExecError> {
        self.bind(u_from, v)?;
        self.prox_step(Block::LEFT, u_from, v)
    }

    /// A prox-gradient step on V from `v_from` with U fixed; returns the new V and the
    /// objective and loss at (U, new V) (the loss through `ValueAfterRight`, which may reuse
    /// what `GradRight` computed for this U).
    fn step_right(
        &mut self,
        u: &Array2<f64>,
        v_from: &Array2<f64>,
    ) -> Result<(Array2<f64>, f64, f64), ExecError> {
        self.bind(u, v_from)?;
        let v_new = self.prox_step(Block::RIGHT, v_from, u)?;
        self.machine.run(Role::ValueAfterRight)?;
        let loss = self.machine.scalar(Slot::Loss)?;
        let objective = loss + self.regularizer()?;
        Ok((v_new, objective, loss))
    }
}

/// Rescales columns so that g_U(uᵢ) = g_V(vᵢ) (the map and θ do not change) and drops the
/// columns where either is 0 (they add nothing to the map or the regularizer).
fn balance_and_prune(
    state: &mut State<'_, '_>,
    u: &mut Array2<f64>,
    v: &mut Array2<f64>,
) -> Result<(), ExecError> {
    if u.ncols() == 0 {
        return Ok(());
    }
    state.bind(u, v)?;
    let (a, b) = state.gauges()?;
    let keep: Vec<usize> = (0..u.ncols())
        .filter(|&i| a[i] > 0.0 && b[i] > 0.0 && a[i].is_finite() && b[i].is_finite())
        .collect();
    for &i in &keep {
        let scale = (b[i] / a[i]).sqrt();
        u.column_mut(i).mapv_inplace(|x| x * scale);
        v.column_mut(i).mapv_inplace(|x| x / scale);
    }
    if keep.len() != u.ncols() {
        *u = u.select(Axis(1), &keep);
        *v = v.select(Axis(1), &keep);
    }
    Ok(())
}

fn append(m: &Array2<f64>, col: &Array1<f64>) -> Array2<f64> {
    let column = col.view().insert_axis(Axis(1));
    ndarray::concatenate(Axis(1), &[m.view(), column]).unwrap_or_else(|_| m.clone())
}

/// Runs the meta-algorithm. The data must already be bound on the machine's back end (data
/// dimensions and inputs); the `Setup` kernel is run here.
pub fn solve(
    machine: &mut Machine<'_>,
    rows: usize,
    cols: usize,
    options: &Options,
    progress: Progress<'_>,
) -> Result<Solution, SolveError> {
    solve_from(machine, rows, cols, options, None, progress)
}

/// [`solve`] from given factors `(U, V)` instead of `options.init_rank` random columns (a
/// warm start: the GPU back end's f32 solution polished in f64, see [`crate::certify`]).
pub fn solve_from(
    machine: &mut Machine<'_>,
    rows: usize,
    cols: usize,
    options: &Options,
    start: Option<(Array2<f64>, Array2<f64>)>,
    progress: Progress<'_>,
) -> Result<Solution, SolveError> {
    let plan = machine.plan().clone();
    if let Regularization::Dropout { .. } = plan.regularization {
        return dropout::solve(machine, rows, cols, options, start, progress);
    }
    let weight = plan.lambda * plan.scale;
    let mut state = State {
        machine,
        weight,
        smoothness: plan.smoothness,
        input_norm_sq: 0.0,
    };
    state.machine.run(Role::Setup)?;
    if plan.lipschitz.contains(&Lipschitz::InputTimesOtherGram) {
        state.input_norm_sq =
            linalg::largest_eigenvalue(state.machine.matrix(Slot::InputGram)?.view());
    }
    let interrupted = || {
        options
            .interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    };
    let tol = options.tol;
    let polar_tol = (tol * 1e-2).clamp(1e-13, 1e-6);
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let mut seconds_descent = 0.0;
    let mut seconds_polar = 0.0;
    let mut history = Vec::new();

    // λ_max: the polar value at W = 0.
    let mut u = Array2::zeros((rows, 0));
    let mut v = Array2::zeros((cols, 0));
    let clock = Instant::now();
    let (mut objective, mut loss) = state.objective(&u, &v)?;
    state.machine.run(Role::Residual)?;
    let polar_at_zero = polar::solve(state.machine, rows, cols, polar_tol, options.seed)?;
    seconds_polar += clock.elapsed().as_secs_f64();
    let lambda_max = polar_at_zero.value / plan.scale;
    let mut pending: Option<Polar> = Some(polar_at_zero);

    if let Some((u0, v0)) = start {
        u = u0;
        v = v0;
        balance_and_prune(&mut state, &mut u, &mut v)?;
        (objective, loss) = state.objective(&u, &v)?;
        pending = None;
    } else if options.init_rank > 0 {
        // Small random columns, balanced; the nonnegative cone keeps |x|.
        let r = options
            .init_rank
            .min(options.max_rank.unwrap_or(usize::MAX));
        let mut init = |n: usize, nonneg: bool| {
            let mut m = Array2::zeros((n, r));
            for mut c in m.axis_iter_mut(Axis(1)) {
                let mut x = polar::normal_vector(&mut rng, n) * 1e-2;
                if nonneg {
                    x.mapv_inplace(f64::abs);
                }
                c.assign(&x);
            }
            m
        };
        u = init(rows, plan.gauge_left.nonneg);
        v = init(cols, plan.gauge_right.nonneg);
        balance_and_prune(&mut state, &mut u, &mut v)?;
        (objective, loss) = state.objective(&u, &v)?;
        pending = None;
    }

    let mut iterations: u64 = 0;
    let mut outer: u64 = 0;
    // Local descent stops when F stalls (relative decrease below tol², three times running) or
    // after a budget per size, so that a slow descent still reaches the polar test.
    let base_inner_tol = (tol * tol).max(1e-15);
    let mut inner_tol = base_inner_tol;
    let mut last_polar = 0.0;
    let mut last_residual = None;
    let mut gap = None;
    let mut polar_note = None;
    let stop;
    history.push(Record {
        iteration: 0,
        outer: 0,
        rank: u.ncols(),
        objective,
        polar_value: None,
        gap: None,
    });
    loop {
        // Local descent at fixed size.
        let clock = Instant::now();
        if u.ncols() > 0 && pending.is_none() {
            let mut u_prev = u.clone();
            let mut v_prev = v.clone();
            let mut t_prev: f64 = 1.0;
            let mut stalls = 0;
            let mut since_balance = 0;
            let budget_end = iterations.saturating_add(DESCENT_BUDGET);
            while iterations < options.max_iter.min(budget_end) && !interrupted() {
                let t = 0.5 * (1.0 + (1.0 + 4.0 * t_prev * t_prev).sqrt());
                let beta = (t_prev - 1.0) / t;
                let extrapolate = |x: &Array2<f64>, prev: &Array2<f64>| {
                    let mut y = x.clone();
                    y.scaled_add(beta, &(x - prev));
                    y
                };
                let mut u_new = state.step_left(&extrapolate(&u, &u_prev), &v)?;
                let (mut v_new, mut f_new, _) =
                    state.step_right(&u_new, &extrapolate(&v, &v_prev))?;
                if f_new > objective && beta > 0.0 {
                    // Restart: a plain step from the current point never increases F.
                    u_new = state.step_left(&u, &v)?;
                    (v_new, f_new, _) = state.step_right(&u_new, &v)?;
                    t_prev = 1.0;
                } else {
                    t_prev = t;
                }
                iterations += 1;
                if !f_new.is_finite() {
                    return Err(SolveError::NonFinite(f_new, iterations));
                }
                let decrease = objective - f_new;
                u_prev = std::mem::replace(&mut u, u_new);
                v_prev = std::mem::replace(&mut v, v_new);
                objective = f_new;
                history.push(Record {
                    iteration: iterations,
                    outer,
                    rank: u.ncols(),
                    objective,
                    polar_value: None,
                    gap: None,
                });
                if iterations.is_multiple_of(10) {
                    progress(history.last().unwrap_or(&history[0]));
                }
                since_balance += 1;
                if since_balance >= 50 {
                    since_balance = 0;
                    balance_and_prune(&mut state, &mut u, &mut v)?;
                    u_prev = u.clone();
                    v_prev = v.clone();
                    t_prev = 1.0;
                    if u.ncols() == 0 {
                        break;
                    }
                }
                if decrease.abs() <= inner_tol * objective.abs().max(f64::MIN_POSITIVE) {
                    stalls += 1;
                    if stalls >= 3 {
                        break;
                    }
                } else {
                    stalls = 0;
                }
            }
            balance_and_prune(&mut state, &mut u, &mut v)?;
            (objective, loss) = state.objective(&u, &v)?;
        }
        seconds_descent += clock.elapsed().as_secs_f64();
        if interrupted() {
            stop = Stop::Interrupted;
            break;
        }

        // The polar problem at the current point.
        let clock = Instant::now();
        let polar = match pending.take() {
            Some(p) => p,
            None => {
                state.bind(&u, &v)?;
                state.machine.run(Role::Residual)?;
                polar::solve(
                    state.machine,
                    rows,
                    cols,
                    polar_tol,
                    options.seed.wrapping_add(outer + 1),
                )?
            }
        };
        last_polar = polar.value / plan.scale;
        last_residual = polar.residual;
        polar_note.clone_from(&polar.heuristic_note);
        gap = if plan.polar_exact && polar.heuristic_note.is_none() {
            // The residual kernel ran at this point (for the polar, or at W = 0 above).
            let s_dual = if polar.value > weight {
                weight / polar.value
            } else {
                1.0
            };
            state.machine.set(Slot::DualScale, Value::Scalar(s_dual))?;
            state.machine.run(Role::Dual)?;
            let dual = state.machine.scalar(Slot::Dual)?;
            Some((objective - dual).max(0.0))
        } else {
            None
        };
        seconds_polar += clock.elapsed().as_secs_f64();
        history.push(Record {
            iteration: iterations,
            outer,
            rank: u.ncols(),
            objective,
            polar_value: Some(last_polar),
            gap,
        });
        progress(history.last().unwrap_or(&history[0]));

        let polar_ok = polar.value <= weight * (1.0 + tol);
        let gap_ok = gap.is_none_or(|g| g <= tol * objective.abs().max(f64::MIN_POSITIVE));
        // With an exact polar the duality gap is the certificate: a relative gap within the
        // tolerance proves the optimum even when rounding leaves the polar a hair above λ.
        if gap_ok && (polar_ok || gap.is_some()) {
            stop = Stop::Optimal;
            break;
        }
        if iterations >= options.max_iter {
            stop = Stop::IterationLimit;
            break;
        }
        if polar_ok {
            // No column to add but the gap is not yet closed: descend further.
            inner_tol *= 0.01;
            if inner_tol < 1e-16 {
                stop = Stop::Optimal;
                break;
            }
            continue;
        }
        if options.max_rank.is_some_and(|max| u.ncols() >= max) {
            stop = Stop::RankLimit;
            break;
        }

        // Grow by the polar maximizer, scaled by the best step.
        outer += 1;
        let room = options
            .max_rank
            .map_or(usize::MAX, |max| max.saturating_sub(u.ncols()));
        let rank_before = u.ncols();
        let objective_before = objective;
        let block = plan.quadratic && !plan.masked && plan.polar == PolarSolver::TopSingular;
        for (k, (pu, pv, value)) in polar.pairs.iter().enumerate() {
            if k >= room || (k > 0 && (!block || *value <= weight * (1.0 + tol))) {
                break;
            }
            // φ(t) = ℓ(X + t·u vᵀ) + w·t: the exact minimizer for a quadratic loss (pairs of
            // a block are orthonormal, so their steps decouple); the majorizer's step
            // otherwise, then doubled while F decreases.
            state.machine.set_probe(1);
            state
                .machine
                .set_matrix(Slot::ProbeInLeft, pu.clone().insert_axis(Axis(1)))?;
            state
                .machine
                .set_matrix(Slot::ProbeInRight, pv.clone().insert_axis(Axis(1)))?;
            state.machine.run(Role::Curvature)?;
            let curvature = state.machine.scalar(Slot::Curvature)?;
            if curvature <= 0.0 {
                continue;
            }
            let mut step = (value - weight) / (plan.smoothness * curvature);
            let column = |t: f64| (pu * t.sqrt(), pv * t.sqrt());
            let (cu, cv) = column(step);
            let (mut u_try, mut v_try) = (append(&u, &cu), append(&v, &cv));
            let (mut f_try, mut l_try) = state.objective(&u_try, &v_try)?;
            if !plan.quadratic {
                for _ in 0..20 {
                    let (cu, cv) = column(2.0 * step);
                    let (u2, v2) = (append(&u, &cu), append(&v, &cv));
                    let (f2, l2) = state.objective(&u2, &v2)?;
                    if f2 >= f_try {
                        break;
                    }
                    (u_try, v_try, f_try, l_try, step) = (u2, v2, f2, l2, 2.0 * step);
                }
            }
            if f_try < objective {
                (u, v, objective, loss) = (u_try, v_try, f_try, l_try);
            }
        }
        if u.ncols() == rank_before || objective >= objective_before {
            // The step is below rounding: polish the current size instead.
            inner_tol *= 0.01;
            if inner_tol < 1e-16 {
                stop = Stop::NoProgress;
                break;
            }
            continue;
        }
        inner_tol = base_inner_tol;
        if interrupted() {
            stop = Stop::Interrupted;
            break;
        }
    }
    let regularizer = objective - loss;
    let relative_gap = gap.map(|g| g / objective.abs().max(f64::MIN_POSITIVE));
    Ok(Solution {
        left: u,
        right: v,
        objective,
        loss,
        regularizer,
        lambda: plan.lambda,
        polar_value: last_polar,
        lambda_max,
        gap,
        relative_gap,
        polar_residual: last_residual,
        iterations,
        outer_iterations: outer,
        stop,
        seconds_descent,
        seconds_polar,
        history,
        dropout: None,
        polar_note,
    })
}
