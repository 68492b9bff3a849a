//! Local descent at a fixed size r: one local step (a sweep over the blocks) repeated until
//! the iterates are stationary, F stalls, the descent crawls or a budget is spent. The step
//! is chosen once per run from the plan ([`LocalStep::for_problem`]):
//!
//! - [`LocalStep::NuclearSpan`], `U * V'` with ℓ2 · ℓ2 (the nuclear norm): alternating exact
//!   minimization over one side's span. With P an orthonormal basis of span(U), the best X
//!   with its columns in span(P) of the quadratic model `ℓ(X₀) + ⟨∇ℓ(X₀), X − X₀⟩ +
//!   β/2‖X − X₀‖² + w‖X‖_*` is `P · S_{w/β}(Pᵀ(X₀ − ∇ℓ(X₀)/β))` (singular value thresholding of
//!   a k × n matrix, k ≤ r), then the same with V's span. The model is ℓ itself for the
//!   dense squared loss (each half step is then exact block minimization: block subspace
//!   iteration with exact singular values) and majorizes ℓ otherwise (β = the loss's
//!   smoothness; on observed entries this is softImpute's fill-in step), so F never
//!   increases. The result is balanced, orthogonal and of the rank the thresholding keeps:
//!   columns below the threshold are dropped, never carried. Each half step needs one
//!   gradient kernel; the rest is O((m + n) r²) on the host.
//! - [`LocalStep::ProxGradient`], any product of gauges: accelerated alternating proximal
//!   gradient (steps 1/L per block from the plan's Lipschitz rule or backtracking,
//!   extrapolation with restart when F increases) with balancing, pruning and merging of
//!   columns every [`TIDY_EVERY`] iterations.
//! - [`LocalStep::Dropout`]: exact block minimization and equalization ([`super::dropout`]).
//! - [`LocalStep::ObservedNewton`], the nuclear norm with a squared loss on observed
//!   entries (matrix completion): truncated Newton on the smooth `G(U, V)` of
//!   [`super::observed`], with a span sweep before each step and after the last; the span
//!   step's contraction tends to 1 as fewer entries are observed, Newton's does not.
//!
//! The exact steps stop when the iterates are stationary, not only when F stalls (F's
//! decrease reaches f64 rounding long before a duality gap of 1e-10 closes): the relative
//! step `‖X₊ − X‖/‖X‖` for the span step (computed from k × n cores, exact to the rounding of
//! X itself), `‖W₊ − W‖/‖W‖` for dropout's.

use ndarray::{Array1, Array2, Axis, s};

use super::columns::balance_and_prune;
use super::dropout;
use super::observed;
use super::problem::{Factors, ObjectiveAndLoss, Problem, column_products, rank};
use super::{Progress, Record, SolveError};
use crate::backend::ExecError;
use crate::kir::{Lipschitz, Regularization, Role, Slot};
use crate::linalg;
use crate::value::Value;

/// Iterations between two balancing/pruning/merging passes of the prox-gradient descent.
const TIDY_EVERY: u32 = 50;

/// Iterations per window of the crawl test.
const CRAWL_WINDOW: u32 = 100;

/// Which local step a run uses.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum LocalStep {
    /// Alternating exact minimization over each side's span (nuclear-norm matrix models).
    NuclearSpan,
    /// Truncated Newton on the factored problem, then one span sweep (matrix completion:
    /// the nuclear norm with a squared loss on observed entries, see [`super::observed`]).
    ObservedNewton,
    /// Accelerated alternating proximal gradient.
    ProxGradient,
    /// Dropout's exact blocks and equalization.
    Dropout {
        /// κ.
        kappa: f64,
        /// Whether the rate grows with r.
        adaptive: bool,
    },
}

impl LocalStep {
    /// The step for the problem's plan.
    pub fn for_problem(problem: &Problem<'_, '_>) -> LocalStep {
        match problem.plan.regularization {
            Regularization::Dropout { kappa, adaptive } => LocalStep::Dropout { kappa, adaptive },
            Regularization::ProductOfGauges
                if problem.is_nuclear_matrix() && problem.observed.is_some() =>
            {
                LocalStep::ObservedNewton
            }
            Regularization::ProductOfGauges if problem.is_nuclear_matrix() => {
                LocalStep::NuclearSpan
            }
            Regularization::ProductOfGauges => LocalStep::ProxGradient,
        }
    }
}

/// Where descent stops.
pub(crate) struct Limits<'a> {
    /// The run's iteration limit (all sizes).
    pub max_iter: u64,
    /// The most iterations of this descent.
    pub budget: u64,
    /// F stalls when its relative decrease is at most this, three times running (0: never).
    pub stall_tol: f64,
    /// The iterates are stationary when the relative step is at most this.
    pub step_tol: f64,
    /// Newton descent's early stop: ‖∇G‖ fallen by this factor (0: off).
    pub gradient_drop: f64,
    /// The crawl test's share (see [`descend`]).
    pub crawl_tol: f64,
    /// Set to stop (Ctrl-C).
    pub interrupted: &'a dyn Fn() -> bool,
}

/// The current point of the solver.
#[derive(Clone, Debug)]
pub(crate) struct Point {
    /// The factors.
    pub w: Factors,
    /// F there.
    pub objective: f64,
    /// ℓ there.
    pub loss: f64,
}

/// ‖a‖_F² summed over blocks.
fn frobenius_sq(w: &[Array2<f64>]) -> f64 {
    w.iter().map(|m| m.iter().map(|x| x * x).sum::<f64>()).sum()
}

/// The relative step ‖W₊ − W‖/‖W₊‖ over all blocks (∞ when the shapes differ).
fn relative_step(new: &[Array2<f64>], old: &[Array2<f64>]) -> f64 {
    if new.len() != old.len() || new.iter().zip(old).any(|(a, b)| a.dim() != b.dim()) {
        return f64::INFINITY;
    }
    let diff: f64 = new
        .iter()
        .zip(old)
        .map(|(a, b)| (a - b).iter().map(|x| x * x).sum::<f64>())
        .sum();
    (diff / frobenius_sq(new).max(f64::MIN_POSITIVE)).sqrt()
}

/// Where descent records its iterations.
pub(crate) struct Recorder<'h, 'p> {
    /// The outer iteration the records belong to.
    pub outer: u64,
    /// The run's history.
    pub history: &'h mut Vec<Record>,
    /// Reported every tenth iteration.
    pub progress: Progress<'p>,
}

impl Recorder<'_, '_> {
    pub(crate) fn record(&mut self, iteration: u64, point: &Point) {
        let record = Record {
            iteration,
            outer: self.outer,
            rank: rank(&point.w),
            objective: point.objective,
            polar_value: None,
            gap: None,
        };
        if iteration.is_multiple_of(10) {
            (self.progress)(&record);
        }
        self.history.push(record);
    }
}

/// Runs local descent from `point` at its size (the size may fall: pruning, merging, or
/// the span step's thresholding); `iterations` counts on.
pub(crate) fn descend(
    problem: &mut Problem<'_, '_>,
    local: LocalStep,
    point: &mut Point,
    iterations: &mut u64,
    limits: &Limits<'_>,
    recorder: &mut Recorder<'_, '_>,
) -> Result<(), SolveError> {
    let budget_end = iterations
        .saturating_add(limits.budget)
        .min(limits.max_iter);
    match local {
        LocalStep::ProxGradient => {
            prox_gradient_descent(problem, point, iterations, budget_end, limits, recorder)
        }
        LocalStep::NuclearSpan => exact_descent(
            problem, point, iterations, budget_end, limits, recorder, span_sweep,
        ),
        LocalStep::ObservedNewton => {
            let Some(data) = problem.observed.take() else {
                return exact_descent(
                    problem, point, iterations, budget_end, limits, recorder, span_sweep,
                );
            };
            let result = observed::newton_descent(
                problem,
                &data,
                point,
                iterations,
                budget_end,
                limits,
                recorder,
                |problem, point| Ok(span_sweep(problem, point)?.0),
            );
            problem.observed = Some(data);
            result
        }
        LocalStep::Dropout { kappa, adaptive } => exact_descent(
            problem,
            point,
            iterations,
            budget_end,
            limits,
            recorder,
            |problem, point| {
                let (w, objective, loss) = dropout::sweep(problem, &point.w, kappa, adaptive)?;
                let step = relative_step(&w, &point.w);
                Ok((Point { w, objective, loss }, step))
            },
        ),
    }
}

/// Descent by a step that never increases F (exact or majorized block minimization): until
/// the step is below `step_tol`, F stalls or the budget ends.
fn exact_descent(
    problem: &mut Problem<'_, '_>,
    point: &mut Point,
    iterations: &mut u64,
    budget_end: u64,
    limits: &Limits<'_>,
    recorder: &mut Recorder<'_, '_>,
    mut sweep: impl FnMut(&mut Problem<'_, '_>, &Point) -> Result<(Point, f64), ExecError>,
) -> Result<(), SolveError> {
    let mut stalls = 0;
    while *iterations < budget_end && rank(&point.w) > 0 && !(limits.interrupted)() {
        let (next, step) = sweep(problem, point)?;
        *iterations += 1;
        if !next.objective.is_finite() {
            return Err(SolveError::NonFinite(next.objective, *iterations));
        }
        let decrease = point.objective - next.objective;
        *point = next;
        recorder.record(*iterations, point);
        if step <= limits.step_tol {
            break;
        }
        if decrease.abs() <= limits.stall_tol * point.objective.abs().max(f64::MIN_POSITIVE) {
            stalls += 1;
            if stalls >= 3 {
                break;
            }
        } else {
            stalls = 0;
        }
    }
    Ok(())
}

/// Accelerated alternating proximal gradient with restart; columns are tidied every
/// [`TIDY_EVERY`] iterations and at the end. It ends when F stalls or on a crawl: a
/// [`CRAWL_WINDOW`]-iteration window that gains at most `crawl_tol` of what this descent has
/// gained (a flat valley of a deep network; the polar decides what next). Not on the step:
/// a new column that starts small moves slowly beside large ones, and the relative step of
/// the whole point would stop its growth.
fn prox_gradient_descent(
    problem: &mut Problem<'_, '_>,
    point: &mut Point,
    iterations: &mut u64,
    budget_end: u64,
    limits: &Limits<'_>,
    recorder: &mut Recorder<'_, '_>,
) -> Result<(), SolveError> {
    let mut w_prev = point.w.clone();
    let mut t_prev: f64 = 1.0;
    let mut stalls = 0;
    let mut since_tidy = 0;
    let size_start = point.objective;
    let mut window_start = point.objective;
    let mut in_window = 0;
    while *iterations < budget_end && !(limits.interrupted)() {
        let t = 0.5 * (1.0 + (1.0 + 4.0 * t_prev * t_prev).sqrt());
        let beta = (t_prev - 1.0) / t;
        let extrapolated: Factors = point
            .w
            .iter()
            .zip(&w_prev)
            .map(|(x, prev)| {
                let mut y = x.clone();
                y.scaled_add(beta, &(x - prev));
                y
            })
            .collect();
        let (mut w_new, mut f_new, _) = prox_sweep(problem, &point.w, &extrapolated)?;
        if f_new > point.objective && beta > 0.0 {
            // Restart: a plain step from the current point never increases F.
            (w_new, f_new, _) = prox_sweep(problem, &point.w, &point.w)?;
            t_prev = 1.0;
        } else {
            t_prev = t;
        }
        *iterations += 1;
        if !f_new.is_finite() {
            return Err(SolveError::NonFinite(f_new, *iterations));
        }
        let decrease = point.objective - f_new;
        w_prev = std::mem::replace(&mut point.w, w_new);
        point.objective = f_new;
        recorder.record(*iterations, point);
        since_tidy += 1;
        if since_tidy >= TIDY_EVERY {
            since_tidy = 0;
            if let Some((f, _)) = balance_and_prune(problem, &mut point.w)? {
                point.objective = f;
            }
            w_prev = point.w.clone();
            t_prev = 1.0;
            if rank(&point.w) == 0 {
                break;
            }
        }
        if decrease.abs() <= limits.stall_tol * point.objective.abs().max(f64::MIN_POSITIVE) {
            stalls += 1;
            if stalls >= 3 {
                break;
            }
        } else {
            stalls = 0;
        }
        in_window += 1;
        if in_window == CRAWL_WINDOW {
            let gained = size_start - point.objective;
            if gained > 0.0 && window_start - point.objective <= limits.crawl_tol * gained {
                break;
            }
            window_start = point.objective;
            in_window = 0;
        }
    }
    balance_and_prune(problem, &mut point.w)?;
    (point.objective, point.loss) = problem.objective(&point.w)?;
    Ok(())
}

/// One sweep of the span step: V's side from span(U), then U's side from span(V). Returns
/// the new point and the sweep's relative step (the sum of its halves', a bound).
fn span_sweep(problem: &mut Problem<'_, '_>, point: &Point) -> Result<(Point, f64), ExecError> {
    let (half, first) = span_half_step(problem, point, 0)?;
    if rank(&half.w) == 0 {
        return Ok((half, first));
    }
    let (next, second) = span_half_step(problem, &half, 1)?;
    Ok((next, first + second))
}

/// Singular values at or below this share of the largest are a basis's null space.
const SPAN_RANK_TOL: f64 = 1e-14;

/// The best point whose block-`keep` span is that of `point.w[keep]` (see the module's
/// documentation), with the relative step ‖X₊ − X‖/‖X₊‖.
///
/// In the orientation where block `keep` gives the rows: X₀ = A Bᵀ (A = w[keep], B the other
/// block) and the other block's gradient kernel gives `g = ∇ℓ(X₀)ᵀ A`. With A = P S Wᵀ
/// (thin SVD, k directions kept), `H = (X₀ − ∇ℓ/β)ᵀ P = B W S − g W S⁻¹/β`, and with
/// H = Q σ Cᵀ the new point is `A₊ = P C √s, B₊ = Q √s`, s = (σ − w/β)₊.
fn span_half_step(
    problem: &mut Problem<'_, '_>,
    point: &Point,
    keep: usize,
) -> Result<(Point, f64), ExecError> {
    let other = 1 - keep;
    let beta = problem.plan.smoothness.max(f64::MIN_POSITIVE);
    let shrink = problem.weight / beta;
    problem.bind(&point.w)?;
    problem.machine.run(Role::Grad(other as u8))?;
    let g = problem.machine.matrix(Slot::Grad(other as u8))?;
    let loss_start = problem.machine.scalar(Slot::Loss)?;
    let (a, b) = (&point.w[keep], &point.w[other]);
    let unchanged = || (point.clone(), 0.0);
    let Some((p, sa, wa)) = linalg::thin_svd(a.view()) else {
        return Ok(unchanged());
    };
    let top = sa.first().copied().unwrap_or(0.0);
    let k = sa.iter().take_while(|&&x| x > SPAN_RANK_TOL * top).count();
    let (p, sa, wa) = (
        p.slice(s![.., ..k]).to_owned(),
        sa.slice(s![..k]).to_owned(),
        wa.slice(s![.., ..k]).to_owned(),
    );
    // W S and W S⁻¹ (r × k).
    let ws = &wa * &sa.view().insert_axis(Axis(0));
    let ws_inv = &wa / &sa.view().insert_axis(Axis(0));
    // (∇ℓᵀ P): the gradient seen from the kept span, [n_other, k].
    let grad_on_span = linalg::gemm(g.view(), false, ws_inv.view(), false, 1.0);
    let mut h = linalg::gemm(b.view(), false, ws.view(), false, 1.0);
    h.scaled_add(-1.0 / beta, &grad_on_span);
    let Some((q, sigma, c)) = linalg::thin_svd(h.view()) else {
        return Ok(unchanged());
    };
    let kept: Vec<usize> = (0..sigma.len()).filter(|&i| sigma[i] > shrink).collect();
    let values = Array1::from_iter(kept.iter().map(|&i| sigma[i] - shrink));
    let roots = values.mapv(f64::sqrt);
    let c_kept = c.select(Axis(1), &kept);
    let q_kept = q.select(Axis(1), &kept);
    let new_keep = linalg::gemm(p.view(), false, c_kept.view(), false, 1.0)
        * roots.view().insert_axis(Axis(0));
    let new_other = &q_kept * &roots.view().insert_axis(Axis(0));
    // X₊ − X₀ = P·D with D = C s Qᵀ − (S Wᵀ) Bᵀ (k × n_other): exact to X's own rounding.
    let c_scaled = &c_kept * &values.view().insert_axis(Axis(0));
    let mut d = linalg::gemm(c_scaled.view(), false, q_kept.view(), true, 1.0);
    let sw_t = ws.t().to_owned();
    d -= &linalg::gemm(sw_t.view(), false, b.view(), true, 1.0);
    let change_sq: f64 = d.iter().map(|x| x * x).sum();
    let size_sq: f64 = values.iter().map(|x| x * x).sum();
    let step = (change_sq / size_sq.max(f64::MIN_POSITIVE)).sqrt();
    let w = if keep == 0 {
        vec![new_keep, new_other]
    } else {
        vec![new_other, new_keep]
    };
    let regularizer = problem.weight * values.sum();
    let loss = if problem.plan.quadratic && !problem.plan.masked {
        // The dense squared loss is its own quadratic model: ℓ₊ = ℓ₀ + ⟨∇ℓ, P D⟩ + β/2‖D‖²,
        // with ⟨∇ℓ, P D⟩ = ⟨(∇ℓᵀP)ᵀ, D⟩.
        let linear: f64 = grad_on_span
            .t()
            .iter()
            .zip(d.iter())
            .map(|(x, y)| x * y)
            .sum();
        loss_start + linear + 0.5 * beta * change_sq
    } else {
        problem.bind(&w)?;
        problem.machine.run(Role::Value)?;
        problem.machine.scalar(Slot::Loss)?
    };
    Ok((
        Point {
            w,
            objective: loss + regularizer,
            loss,
        },
        step,
    ))
}

/// One prox-gradient step on block k from `factors[k]` with the others fixed (all
/// bound): step 1/L with L from the plan's rule for the block, then the column prox with
/// weights w·Πₗ≠ₖ gₗ(columns)/L. Returns the new block.
fn prox_step(
    problem: &mut Problem<'_, '_>,
    k: usize,
    factors: &[Array2<f64>],
) -> Result<Array2<f64>, ExecError> {
    let block = k as u8;
    let from = &factors[k];
    problem.machine.run(Role::Grad(block))?;
    let grad = problem.machine.matrix(Slot::Grad(block))?;
    let rule = problem.plan.lipschitz[k];
    let other_gram = || largest_eigenvalue_of_other_grams(factors, k);
    let curvature = match rule {
        Lipschitz::OtherGram => other_gram(),
        Lipschitz::BlockGram => {
            linalg::largest_eigenvalue(problem.machine.matrix(Slot::BlockGram)?.view())
        }
        Lipschitz::InputTimesOtherGram => problem.input_norm_sq * other_gram(),
        // Half the last accepted L (a longer step when it can), or 1 before the first.
        Lipschitz::Backtracking => match problem.accepted_lipschitz.get(k).copied().flatten() {
            Some(last) => 0.5 * last / problem.plan.smoothness.max(f64::MIN_POSITIVE),
            None => 1.0,
        },
    };
    let mut lipschitz = (problem.plan.smoothness * curvature).max(1e-300);
    // The loss where the step starts (the gradient kernel computed it) for backtracking.
    let backtrack = matches!(
        rule,
        Lipschitz::InputTimesOtherGram | Lipschitz::Backtracking
    );
    let loss_from = if backtrack {
        problem.machine.scalar(Slot::Loss)?
    } else {
        0.0
    };
    let mut other_gauges = Vec::with_capacity(factors.len());
    for l in (0..factors.len()).filter(|&l| l != k) {
        problem.machine.run(Role::Gauge(l as u8))?;
        other_gauges.push(problem.machine.vector(Slot::Gauge(l as u8))?);
    }
    let gauges = column_products(&other_gauges, None);
    for _ in 0..60 {
        let weights = &gauges * (problem.weight / lipschitz);
        let mut start = from.clone();
        start.scaled_add(-1.0 / lipschitz, &grad);
        problem.machine.set_matrix(Slot::Step(block), start)?;
        problem
            .machine
            .set(Slot::ProxWeights, Value::Vector(weights))?;
        problem.machine.run(Role::Prox(block))?;
        let next = problem.machine.matrix(Slot::Factor(block))?;
        if !backtrack {
            return Ok(next);
        }
        // Accept when ℓ(next) ≤ ℓ(from) + ⟨∇, Δ⟩ + L/2 ‖Δ‖² (the bound that makes the
        // prox step descend); an activation pattern that changed can break it.
        problem.machine.run(Role::Value)?;
        let loss_next = problem.machine.scalar(Slot::Loss)?;
        let delta = &next - from;
        let bound = loss_from + (&grad * &delta).sum() + 0.5 * lipschitz * (&delta * &delta).sum();
        if loss_next <= bound + 1e-12 * loss_from.abs() {
            if let Some(slot) = problem.accepted_lipschitz.get_mut(k) {
                *slot = Some(lipschitz);
            }
            return Ok(next);
        }
        lipschitz *= 2.0;
        problem
            .machine
            .set_matrix(Slot::Factor(block), from.clone())?;
    }
    Ok(from.clone())
}

/// A prox-gradient step on block k of `factors` (whose block k is the point the step
/// starts from); returns the new block. After the last block, also the objective and
/// loss at the new point (the loss through `ValueAfterLast`, which may reuse what the
/// last `Grad` computed).
fn step(
    problem: &mut Problem<'_, '_>,
    k: usize,
    factors: &[Array2<f64>],
) -> Result<(Array2<f64>, Option<ObjectiveAndLoss>), ExecError> {
    problem.bind(factors)?;
    let next = prox_step(problem, k, factors)?;
    if k + 1 < factors.len() {
        return Ok((next, None));
    }
    problem.machine.run(Role::ValueAfterLast)?;
    let loss = problem.machine.scalar(Slot::Loss)?;
    let objective = loss + problem.regularizer(factors)?;
    Ok((next, Some((objective, loss))))
}

/// One sweep over the blocks from `starts` (block k's step starts from `starts[k]`, the
/// blocks before it are already new): the new factors, objective and loss.
pub(crate) fn prox_sweep(
    problem: &mut Problem<'_, '_>,
    current: &[Array2<f64>],
    starts: &[Array2<f64>],
) -> Result<(Factors, f64, f64), ExecError> {
    let mut factors: Factors = current.to_vec();
    let mut result = (0.0, 0.0);
    for k in 0..factors.len() {
        factors[k] = starts[k].clone();
        let (next, at_end) = step(problem, k, &factors)?;
        factors[k] = next;
        if let Some(values) = at_end {
            result = values;
        }
    }
    Ok((factors, result.0, result.1))
}

/// λ_max of the Hadamard product of the factors' Grams other than block k: the curvature of
/// a multilinear map in block k (`VᵀV` for `U * V'`).
fn largest_eigenvalue_of_other_grams(factors: &[Array2<f64>], k: usize) -> f64 {
    let mut product: Option<Array2<f64>> = None;
    for (l, w) in factors.iter().enumerate() {
        if l == k {
            continue;
        }
        let gram = linalg::gemm(w.view(), true, w.view(), false, 1.0);
        product = Some(match product {
            None => gram,
            Some(p) => p * gram,
        });
    }
    product.map_or(0.0, |p| linalg::largest_eigenvalue(p.view()))
}
