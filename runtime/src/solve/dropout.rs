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

use ndarray::{Array1, Array2, Axis};

use super::problem::{Factors, ObjectiveAndLoss, Problem, append, ridge_block};
use crate::backend::ExecError;
use crate::kir::{Role, Slot};
use crate::linalg;
use crate::polar::Polar;
use crate::value::Value;

/// κ·m for r columns: m = r for an adaptive rate, 1 for a fixed one.
pub(crate) fn kappa_m(kappa: f64, adaptive: bool, rank: usize) -> f64 {
    if adaptive { kappa * rank as f64 } else { kappa }
}

/// κ_c: the weight of ‖X‖_*² in the induced convex problem at r columns.
pub(crate) fn kappa_convex(kappa: f64, adaptive: bool, rank: usize) -> f64 {
    if adaptive {
        kappa
    } else {
        kappa / rank.max(1) as f64
    }
}

/// One local step: the exact U step, the exact V step, then equalization (the map is kept and
/// the regularizer falls to `κ_c‖X‖_*²`). Returns the new factors, F and ℓ.
pub(crate) fn sweep(
    problem: &mut Problem<'_, '_>,
    w: &[Array2<f64>],
    kappa: f64,
    adaptive: bool,
) -> Result<(Factors, f64, f64), ExecError> {
    let [u, v] = w else {
        return Err(ExecError::Backend("dropout needs two factors".into()));
    };
    let kappa_m = kappa_m(kappa, adaptive, u.ncols());
    problem.bind(w)?;
    problem.machine.run(Role::Grad(0))?;
    let grad_u = problem.machine.matrix(Slot::Grad(0))?;
    let u_new = block_minimizer(u, &grad_u, v, kappa_m);
    problem.bind(&[u_new.clone(), v.clone()])?;
    problem.machine.run(Role::Grad(1))?;
    let grad_v = problem.machine.matrix(Slot::Grad(1))?;
    let v_new = block_minimizer(v, &grad_v, &u_new, kappa_m);
    let (u_eq, v_eq) = linalg::equalize(u_new.view(), v_new.view()).unwrap_or((u_new, v_new));
    let factors = vec![u_eq, v_eq];
    let (objective, loss) = problem.objective(&factors)?;
    Ok((factors, objective, loss))
}

/// Growth by the top singular pair of Y − X. F need not decrease: with one more column the
/// old columns' regularizer grows by (r + 1)/r, but the optimum over r + 1 columns is no
/// worse, and the sweeps that follow reach it. `None` without a pair.
pub(crate) fn grow(
    problem: &mut Problem<'_, '_>,
    w: &[Array2<f64>],
    polar: &Polar,
    kappa: f64,
) -> Result<Option<(Factors, ObjectiveAndLoss)>, ExecError> {
    let (Some(([p, q], _)), [u, v]) = (polar.atoms.first().map(|(a, v)| (a.as_slice(), v)), w)
    else {
        return Ok(None);
    };
    let step = polar.value / (1.0 + 2.0 * kappa * (u.ncols() + 1) as f64);
    let mut u = append(u, &(p * step.sqrt()));
    let mut v = append(v, &(q * step.sqrt()));
    if let Some((ue, ve)) = linalg::equalize(u.view(), v.view()) {
        (u, v) = (ue, ve);
    }
    let factors = vec![u, v];
    let values = problem.objective(&factors)?;
    Ok(Some((factors, values)))
}

/// The certificate's numbers at `w` (the `Residual` kernel run there, `sigma` an upper
/// bound on σ_max(Y − X)):
/// the polar value `σ/‖X‖_*` (comparable with λ₁ = 2κ_c), the test
/// `σ_max(Y − X) ≤ 2κ_c‖X‖_*(1 + tol)`, and the duality gap.
pub(crate) fn certificate_numbers(
    problem: &mut Problem<'_, '_>,
    w: &[Array2<f64>],
    sigma: f64,
    objective: f64,
    tol: f64,
    kappa: f64,
    adaptive: bool,
) -> Result<(f64, bool, f64), ExecError> {
    let [u, v] = w else {
        return Err(ExecError::Backend("dropout needs two factors".into()));
    };
    let nuclear = nuclear_norm(u, v);
    let kappa_c = kappa_convex(kappa, adaptive, u.ncols());
    let threshold = 2.0 * kappa_c * nuclear;
    let value = if nuclear > 0.0 {
        sigma / nuclear
    } else {
        f64::INFINITY
    };
    let dual = dual_bound(problem, sigma, kappa_c)?;
    Ok((
        value,
        sigma <= threshold * (1.0 + tol),
        (objective - dual).max(0.0),
    ))
}

/// What a dropout run reports beside its solution.
pub(crate) fn summary(
    kappa: f64,
    adaptive: bool,
    w: &[Array2<f64>],
    loss: f64,
    objective: f64,
) -> super::DropoutSummary {
    let (u, v) = match w {
        [u, v] => (u.clone(), v.clone()),
        _ => (Array2::zeros((0, 0)), Array2::zeros((0, 0))),
    };
    let regularizer = objective - loss;
    // Splitting every column into two copies scaled by 1/√2 keeps the map; the regularizer
    // becomes κ·m(2r)·2r·(n/2)²: halved at a fixed rate, unchanged with an adaptive one.
    let split_objective = if adaptive {
        objective
    } else {
        loss + 0.5 * regularizer
    };
    super::DropoutSummary {
        kappa,
        adaptive,
        lambda_convex: 2.0 * kappa_convex(kappa, adaptive, u.ncols()),
        nuclear_norm: nuclear_norm(&u, &v),
        equalization_spread: equalization_spread(&u, &v),
        split_objective,
    }
}

/// ‖columns‖² of a factor.
fn column_norms_sq(m: &Array2<f64>) -> Array1<f64> {
    m.map_axis(Axis(0), |c| c.dot(&c))
}

/// The dropout regularizer `κ·m·Σᵢ ‖uᵢ‖²‖vᵢ‖²`.
pub(crate) fn regularizer(kappa_m: f64, u: &Array2<f64>, v: &Array2<f64>) -> f64 {
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

/// The exact minimizer of the objective in one factor with the other fixed: the quadratic
/// `ℓ` in the block plus `κm Σᵢ ‖otherᵢ‖² ‖xᵢ‖²`, a ridge with `2κm·‖otherᵢ‖²` per column.
fn block_minimizer(
    from: &Array2<f64>,
    grad: &Array2<f64>,
    other: &Array2<f64>,
    kappa_m: f64,
) -> Array2<f64> {
    let ridge = column_norms_sq(other) * (2.0 * kappa_m);
    ridge_block(from, grad, other, 1.0, &ridge)
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
fn dual_bound(problem: &mut Problem<'_, '_>, sigma: f64, kappa_c: f64) -> Result<f64, ExecError> {
    let mut q = |s: f64| -> Result<f64, ExecError> {
        problem.machine.set(Slot::DualScale, Value::Scalar(s))?;
        problem.machine.run(Role::Dual)?;
        problem.machine.scalar(Slot::Dual)
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
