//! The dropout strategy of the solver (`Regularization::Dropout`).
//!
//! Dropout with retain probability 1 − p is, in expectation over the masks, the squared loss
//! plus `κ·m·Σᵢ ‖uᵢ‖²‖vᵢ‖²` with κ = ½·p/(1 − p) (times λ) and `m = 1` at a fixed rate or
//! `m = r` when the rate grows with the size (Cavazza et al. 2018). Over factorizations with
//! r columns, `Σᵢ ‖uᵢ‖²‖vᵢ‖² ≥ ‖X‖_*²/r` with equality exactly when the factorization is
//! nuclear-optimal and *equalized* (Mianjy, Arora & Vidal 2018), so the induced convex
//! problem is `½‖Y − X‖² + κ_c‖X‖_*²` with `κ_c = κ·m/r`, and its solution is a singular
//! value thresholding of Y.
//!
//! The regularizer is quartic, so its prox is not a column gauge's: descent is by exact
//! block minimization instead (the objective is quadratic in each factor:
//! `U ← Y V (VᵀV + 2κm·diag‖vᵢ‖²)⁻¹`, an r × r Cholesky on the host), each sweep followed by
//! [`linalg::equalize`], which keeps the map and lowers the regularizer to `κ_c‖X‖_*²`.
//! Without equalization growth by singular pairs lands on non-equalized fixed points.
//!
//! Certificate: X is optimal iff `σ_max(Y − X) ≤ 2κ_c‖X‖_*` (the polar test, by Lanczos, so
//! exact), and the duality gap uses `D(s) = −ℓ*(s∇ℓ) − s²σ²/(4κ_c)` maximized over s in
//! closed form (the `Dual` kernel is quadratic in s: two evaluations give it).

use std::sync::atomic::Ordering;
use std::time::Instant;

use ndarray::{Array1, Array2, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{
    DESCENT_BUDGET, DropoutSummary, Options, Progress, Record, Solution, SolveError, State, Stop,
    append,
};
use crate::backend::ExecError;
use crate::kir::{Regularization, Role, Slot};
use crate::linalg;
use crate::machine::Machine;
use crate::polar;
use crate::value::Value;

/// ‖columns‖² of a factor.
fn column_norms_sq(m: &Array2<f64>) -> Array1<f64> {
    m.map_axis(Axis(0), |c| c.dot(&c))
}

/// The dropout regularizer `κ·m·Σᵢ ‖uᵢ‖²‖vᵢ‖²`.
fn regularizer(kappa_m: f64, u: &Array2<f64>, v: &Array2<f64>) -> f64 {
    kappa_m * column_norms_sq(u).dot(&column_norms_sq(v))
}

/// The relative spread `(max − min)/mean` of `‖uᵢ‖‖vᵢ‖` over the columns (0 when equalized).
pub fn equalization_spread(u: &Array2<f64>, v: &Array2<f64>) -> f64 {
    let products: Vec<f64> = column_norms_sq(u)
        .iter()
        .zip(column_norms_sq(v).iter())
        .map(|(a, b)| (a * b).sqrt())
        .collect();
    if products.is_empty() {
        return 0.0;
    }
    let mean = products.iter().sum::<f64>() / products.len() as f64;
    let max = products.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min = products.iter().copied().fold(f64::INFINITY, f64::min);
    if mean > 0.0 { (max - min) / mean } else { 0.0 }
}

/// The exact minimizer of the objective in one factor with the other fixed:
/// `from · (otherᵀother) − grad` is `Y·other` (or `Yᵀ·other`), then `(…)(otherᵀother + 2κm D)⁻¹`.
fn block_minimizer(
    from: &Array2<f64>,
    grad: &Array2<f64>,
    other: &Array2<f64>,
    kappa_m: f64,
) -> Array2<f64> {
    let gram = linalg::gemm(other.view(), true, other.view(), false, 1.0);
    let mut data_term = linalg::gemm(from.view(), false, gram.view(), false, 1.0);
    data_term -= grad;
    let mut system = gram;
    for (k, n) in column_norms_sq(other).iter().enumerate() {
        system[[k, k]] += 2.0 * kappa_m * n;
    }
    match linalg::solve_spd_right(data_term.view(), system.view()) {
        Some(x) => x,
        None => {
            // A zero column of `other` with a rank-deficient Gram: a tiny ridge keeps the
            // step defined (the column contributes nothing either way).
            let ridge = 1e-14 * (0..system.nrows()).map(|k| system[[k, k]]).sum::<f64>();
            for k in 0..system.nrows() {
                system[[k, k]] += ridge.max(f64::MIN_POSITIVE);
            }
            linalg::solve_spd_right(data_term.view(), system.view()).unwrap_or_else(|| from.clone())
        }
    }
}

struct Sweep<'s, 'm, 'p> {
    state: &'s mut State<'m, 'p>,
    kappa: f64,
    adaptive: bool,
}

impl Sweep<'_, '_, '_> {
    /// κ·m for r columns.
    fn kappa_m(&self, rank: usize) -> f64 {
        if self.adaptive {
            self.kappa * rank as f64
        } else {
            self.kappa
        }
    }

    /// κ_c: the weight of ‖X‖_*² in the induced convex problem at r columns.
    fn kappa_convex(&self, rank: usize) -> f64 {
        if self.adaptive {
            self.kappa
        } else {
            self.kappa / rank.max(1) as f64
        }
    }

    fn objective(&mut self, u: &Array2<f64>, v: &Array2<f64>) -> Result<(f64, f64), ExecError> {
        self.state.bind(&[u.clone(), v.clone()])?;
        self.state.machine.run(Role::Value)?;
        let loss = self.state.machine.scalar(Slot::Loss)?;
        Ok((loss + regularizer(self.kappa_m(u.ncols()), u, v), loss))
    }

    /// One sweep: exact U step, exact V step, equalization. Returns (U, V, F, ℓ).
    fn sweep(
        &mut self,
        u: &Array2<f64>,
        v: &Array2<f64>,
    ) -> Result<(Array2<f64>, Array2<f64>, f64, f64), ExecError> {
        let kappa_m = self.kappa_m(u.ncols());
        self.state.bind(&[u.clone(), v.clone()])?;
        self.state.machine.run(Role::Grad(0))?;
        let grad_u = self.state.machine.matrix(Slot::Grad(0))?;
        let u_new = block_minimizer(u, &grad_u, v, kappa_m);
        self.state.bind(&[u_new.clone(), v.clone()])?;
        self.state.machine.run(Role::Grad(1))?;
        let grad_v = self.state.machine.matrix(Slot::Grad(1))?;
        let v_new = block_minimizer(v, &grad_v, &u_new, kappa_m);
        let (u_eq, v_eq) = linalg::equalize(u_new.view(), v_new.view()).unwrap_or((u_new, v_new));
        let (objective, loss) = self.objective(&u_eq, &v_eq)?;
        Ok((u_eq, v_eq, objective, loss))
    }
}

/// Runs the dropout strategy (see the module's documentation).
pub(super) fn solve(
    machine: &mut Machine<'_>,
    rows: usize,
    cols: usize,
    options: &Options,
    start: Option<(Array2<f64>, Array2<f64>)>,
    progress: Progress<'_>,
) -> Result<Solution, SolveError> {
    let plan = machine.plan().clone();
    let (kappa, adaptive) = match plan.regularization {
        Regularization::Dropout { kappa, adaptive } => (kappa, adaptive),
        Regularization::ProductOfGauges => (0.0, true),
    };
    let mut state = State {
        machine,
        weight: 0.0,
        smoothness: plan.smoothness,
        input_norm_sq: 0.0,
        accepted_lipschitz: Vec::new(),
    };
    state.machine.run(Role::Setup)?;
    let mut sweeper = Sweep {
        state: &mut state,
        kappa,
        adaptive,
    };
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

    let (mut u, mut v) = match start {
        Some(factors) => factors,
        None => {
            let r = options
                .init_rank
                .min(options.max_rank.unwrap_or(usize::MAX));
            let mut init = |n: usize| {
                let mut m = Array2::zeros((n, r));
                for mut c in m.axis_iter_mut(Axis(1)) {
                    c.assign(&(polar::normal_vector(&mut rng, n) * 1e-2));
                }
                m
            };
            (init(rows), init(cols))
        }
    };
    let (mut objective, mut loss) = sweeper.objective(&u, &v)?;
    let mut history = vec![Record {
        iteration: 0,
        outer: 0,
        rank: u.ncols(),
        objective,
        polar_value: None,
        gap: None,
    }];
    let mut iterations: u64 = 0;
    let mut outer: u64 = 0;
    let base_inner_tol = (tol * tol).max(1e-15);
    let mut inner_tol = base_inner_tol;
    let mut last_polar = f64::INFINITY;
    let mut last_residual = None;
    let mut gap = None;
    let stop;
    loop {
        // Exact block steps and equalization at fixed size until F stalls.
        let clock = Instant::now();
        if u.ncols() > 0 {
            let mut stalls = 0;
            let budget_end = iterations.saturating_add(DESCENT_BUDGET);
            while iterations < options.max_iter.min(budget_end) && !interrupted() {
                let (u_new, v_new, f_new, l_new) = sweeper.sweep(&u, &v)?;
                iterations += 1;
                if !f_new.is_finite() {
                    return Err(SolveError::NonFinite(f_new, iterations));
                }
                let decrease = objective - f_new;
                (u, v, objective, loss) = (u_new, v_new, f_new, l_new);
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
                if decrease.abs() <= inner_tol * objective.abs().max(f64::MIN_POSITIVE) {
                    stalls += 1;
                    if stalls >= 3 {
                        break;
                    }
                } else {
                    stalls = 0;
                }
            }
        }
        seconds_descent += clock.elapsed().as_secs_f64();
        if interrupted() {
            stop = Stop::Interrupted;
            break;
        }

        // The polar test σ_max(Y − X) ≤ 2κ_c‖X‖_* and the duality gap.
        let clock = Instant::now();
        sweeper.state.bind(&[u.clone(), v.clone()])?;
        sweeper.state.machine.run(Role::Residual)?;
        let polar = polar::solve(
            sweeper.state.machine,
            &[rows, cols],
            polar_tol,
            options.seed.wrapping_add(outer),
            &[],
        )?;
        let sigma = polar.value;
        let nuclear = nuclear_norm(&u, &v);
        let kappa_c = sweeper.kappa_convex(u.ncols());
        let threshold = 2.0 * kappa_c * nuclear;
        last_polar = if nuclear > 0.0 {
            sigma / nuclear
        } else {
            f64::INFINITY
        };
        last_residual = polar.residual;
        let dual = dual_bound(sweeper.state, sigma, kappa_c)?;
        gap = Some((objective - dual).max(0.0));
        seconds_polar += clock.elapsed().as_secs_f64();
        history.push(Record {
            iteration: iterations,
            outer,
            rank: u.ncols(),
            objective,
            polar_value: last_polar.is_finite().then_some(last_polar),
            gap,
        });
        progress(history.last().unwrap_or(&history[0]));

        let polar_ok = sigma <= threshold * (1.0 + tol);
        let gap_ok = gap.is_some_and(|g| g <= tol * objective.abs().max(f64::MIN_POSITIVE));
        if gap_ok && u.ncols() > 0 {
            stop = Stop::Optimal;
            break;
        }
        if iterations >= options.max_iter {
            stop = Stop::IterationLimit;
            break;
        }
        if polar_ok || !adaptive {
            // Nothing to add (or no growth at a fixed rate): descend further.
            inner_tol *= 0.01;
            if inner_tol < 1e-16 {
                stop = if polar_ok {
                    Stop::Optimal
                } else {
                    Stop::RankLimit
                };
                break;
            }
            continue;
        }
        if options.max_rank.is_some_and(|max| u.ncols() >= max) {
            stop = Stop::RankLimit;
            break;
        }
        let Some(([p, q], _)) = polar.atoms.first().map(|(a, v)| (a.as_slice(), v)) else {
            stop = Stop::NoProgress;
            break;
        };
        // Append the top singular pair of Y − X. F need not decrease: with one more column
        // the old columns' regularizer grows by (r + 1)/r, but the optimum over r + 1 columns
        // is no worse, and the sweeps that follow reach it.
        outer += 1;
        let step = sigma / (1.0 + 2.0 * kappa * (u.ncols() + 1) as f64);
        u = append(&u, &(p * step.sqrt()));
        v = append(&v, &(q * step.sqrt()));
        if let Some((ue, ve)) = linalg::equalize(u.view(), v.view()) {
            (u, v) = (ue, ve);
        }
        (objective, loss) = sweeper.objective(&u, &v)?;
        inner_tol = base_inner_tol;
    }
    let regularizer = objective - loss;
    let relative_gap = gap.map(|g| g / objective.abs().max(f64::MIN_POSITIVE));
    let kappa_c = sweeper.kappa_convex(u.ncols());
    // Splitting every column into two copies scaled by 1/√2 keeps the map; the regularizer
    // becomes κ·m(2r)·2r·(n/2)²: halved at a fixed rate, unchanged with an adaptive one.
    let split_objective = if adaptive {
        objective
    } else {
        loss + 0.5 * regularizer
    };
    let summary = DropoutSummary {
        kappa,
        adaptive,
        lambda_convex: 2.0 * kappa_c,
        nuclear_norm: nuclear_norm(&u, &v),
        equalization_spread: equalization_spread(&u, &v),
        split_objective,
    };
    Ok(Solution {
        factors: vec![u, v],
        objective,
        loss,
        regularizer,
        lambda: 2.0 * kappa_c,
        polar_value: last_polar,
        lambda_max: f64::INFINITY,
        gap,
        relative_gap,
        polar_residual: last_residual,
        iterations,
        outer_iterations: outer,
        stop,
        seconds_descent,
        seconds_polar,
        history,
        dropout: Some(summary),
        polar_note: None,
    })
}

/// ‖U Vᵀ‖_* from the r × r core of the product (0 for no columns).
fn nuclear_norm(u: &Array2<f64>, v: &Array2<f64>) -> f64 {
    if u.ncols() == 0 {
        return 0.0;
    }
    linalg::product_svd(u.view(), v.view()).map_or(f64::NAN, |(_, s, _)| s.sum())
}

/// `max_s D(s)`, `D(s) = −ℓ*(s∇ℓ) − s²σ²/(4κ_c)`: the `Dual` kernel gives `q(s) = −ℓ*(s∇ℓ)`,
/// a quadratic with `q(0) = 0` for the squared loss, so `q(1)` and `q(2)` determine it.
/// Needs the `Residual` kernel to have run at the current point.
fn dual_bound(state: &mut State<'_, '_>, sigma: f64, kappa_c: f64) -> Result<f64, ExecError> {
    let mut q = |s: f64| -> Result<f64, ExecError> {
        state.machine.set(Slot::DualScale, Value::Scalar(s))?;
        state.machine.run(Role::Dual)?;
        state.machine.scalar(Slot::Dual)
    };
    let (q1, q2) = (q(1.0)?, q(2.0)?);
    let quadratic = 0.5 * (q2 - 2.0 * q1);
    let linear = q1 - quadratic;
    let curvature = sigma * sigma / (4.0 * kappa_c) - quadratic;
    Ok(if curvature > 0.0 {
        linear * linear / (4.0 * curvature)
    } else {
        0.0
    })
}

/// The global optimum of `½‖Y − X‖²_F + ½λ₁‖X‖_*²` in closed form (Cavazza et al. 2018).
#[derive(Clone, Debug, PartialEq)]
pub struct DropoutClosedForm {
    /// X* = S_τ(Y), the singular value thresholding of Y.
    pub x: Array2<f64>,
    /// The singular values of X*, nonincreasing (zeros included).
    pub singular_values: Array1<f64>,
    /// The threshold τ = λ₁·Σ_{j≤k} σⱼ / (1 + λ₁k) = λ₁‖X*‖_*.
    pub tau: f64,
    /// rank X* = k, the largest k with σ_k > λ₁·Σ_{j≤k} σⱼ / (1 + λ₁k).
    pub rank: usize,
    /// The optimal value.
    pub objective: f64,
}

/// Solves `min_X ½‖Y − X‖²_F + ½λ₁‖X‖_*²` by the SVD of Y. Stationarity on the singular values
/// gives `sⱼ = σⱼ − λ₁‖X‖_*` on the support, so X* = S_τ(Y) with τ = λ₁‖X*‖_*. `None` if the
/// SVD fails or λ₁ is not positive.
pub fn dropout_closed_form(
    y: ndarray::ArrayView2<'_, f64>,
    lambda1: f64,
) -> Option<DropoutClosedForm> {
    if !(lambda1 > 0.0 && lambda1.is_finite()) {
        return None;
    }
    let (p, sigma, q) = linalg::thin_svd(y)?;
    let mut rank = 0;
    let mut partial = 0.0;
    let mut tau = 0.0;
    for (k, s) in sigma.iter().enumerate() {
        let candidate = lambda1 * (partial + s) / (1.0 + lambda1 * (k + 1) as f64);
        if *s > candidate {
            rank = k + 1;
            partial += s;
            tau = candidate;
        } else {
            break;
        }
    }
    let shrunk = sigma.mapv(|s| (s - tau).max(0.0));
    let mut scaled = p.clone();
    for (mut column, s) in scaled.axis_iter_mut(Axis(1)).zip(shrunk.iter()) {
        column.mapv_inplace(|x| x * s);
    }
    let x = linalg::gemm(scaled.view(), false, q.view(), true, 1.0);
    let residual: f64 = sigma
        .iter()
        .zip(shrunk.iter())
        .map(|(s, t)| (s - t) * (s - t))
        .sum();
    let nuclear = shrunk.sum();
    Some(DropoutClosedForm {
        x,
        singular_values: shrunk,
        tau,
        rank,
        objective: 0.5 * residual + 0.5 * lambda1 * nuclear * nuclear,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn closed_form_satisfies_its_stationarity_condition() {
        // Y = diag(5, 3, 1, 0.2): with λ₁ = 0.1, k* = 3 and τ = 0.1·9/1.3.
        let y = array![
            [5.0, 0.0, 0.0, 0.0],
            [0.0, 3.0, 0.0, 0.0],
            [0.0, 0.0, 1.0, 0.0],
            [0.0, 0.0, 0.0, 0.2]
        ];
        let cf = dropout_closed_form(y.view(), 0.1).unwrap();
        assert_eq!(cf.rank, 3);
        assert!((cf.tau - 0.9 / 1.3).abs() < 1e-15);
        // τ = λ₁‖X*‖_*.
        assert!((cf.tau - 0.1 * cf.singular_values.sum()).abs() < 1e-14);
        // The dropped value is below the threshold, the kept ones above.
        assert!(0.2 <= cf.tau && 1.0 > cf.tau);
        let expected = [5.0 - cf.tau, 3.0 - cf.tau, 1.0 - cf.tau, 0.0];
        for (s, e) in cf.singular_values.iter().zip(expected) {
            assert!((s - e).abs() < 1e-14);
        }
        // A larger λ₁ keeps fewer values; the objective is the formula's.
        let strong = dropout_closed_form(y.view(), 2.0).unwrap();
        assert_eq!(strong.rank, 1);
        assert!((strong.tau - 2.0 * 5.0 / 3.0).abs() < 1e-14);
        let nuclear = 5.0 - strong.tau;
        let objective = 0.5 * (strong.tau.powi(2) + 9.0 + 1.0 + 0.04) + nuclear * nuclear;
        assert!((strong.objective - objective).abs() < 1e-12);
    }
}
