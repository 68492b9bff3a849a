//! σ_max(Z) for the nuclear norm at a point with factors U, V: Lanczos on the complement of
//! the singular subspaces of X = U Vᵀ, and a bound from the pieces.
//!
//! At an optimum X = U Vᵀ the residual Z = −∇ℓ(X) has the singular value λ with the
//! multiplicity of X's rank, on exactly X's singular subspaces (Z = λ P Qᵀ + W, ‖W‖ ≤ λ, W ⟂ P, Q).
//! Lanczos on Z sees a cluster at its top and its residual bound `θ + ‖r‖` converges to it
//! slowly: on matrix completion it stalls near 1e-6 relative, which caps the certified gap
//! there. Here, with P and Q orthonormal bases of X's column and row spaces (from U and V),
//! Z splits into blocks
//!
//! ```text
//! A = PᵀZQ,  B = PᵀZQ⊥,  C = P⊥ᵀZQ,  D = P⊥ᵀZQ⊥,   ‖Z‖ ≤ ‖[[‖A‖, ‖B‖], [‖C‖, ‖D‖]]‖₂
//! ```
//!
//! (apply Z to x = (x₁, x₂) and bound each block's image by the triangle inequality). ‖A‖
//! is the SVD of a k × k matrix, ‖B‖ and ‖C‖ are bounded by the Frobenius norms of
//! `(I − QQᵀ)ZᵀP` and `(I − PPᵀ)ZQ` (one product of width k each; both vanish at a
//! stationary point), and ‖D‖ by Lanczos on the deflated operator `(I − PPᵀ) Z (I − QQᵀ)`,
//! whose top is below λ at an optimum with strict complementarity, so it converges fast and
//! only needs to settle below ‖A‖. The bound exceeds ‖A‖ by O(‖B‖²/(‖A‖ − ‖D‖)): second order
//! in the distance to stationarity, where the plain residual bound is first order.
//!
//! The value reported is the larger of ‖A‖ and D's top Ritz value (both are singular values
//! of compressions of Z, so lower bounds on σ_max), the residual the distance to the bound;
//! the atoms are D's pairs (directions new to the factors) and A's, above the threshold.

use ndarray::{Array1, Array2, s};
use rand_chacha::ChaCha8Rng;

use super::lanczos::{self, Operator, Residual};
use super::{Polar, Request};
use crate::backend::ExecError;
use crate::linalg;
use crate::machine::Machine;

/// Orthonormal bases of the column and row spaces of the current map X = U Vᵀ.
pub(super) struct Spans {
    /// P: `[m, k]`.
    left: Array2<f64>,
    /// Q: `[n, k]`.
    right: Array2<f64>,
}

/// Singular values of X below this fraction of its largest count as zero. A direction kept
/// where X vanishes puts Z's noise into the off-diagonal blocks (a loose bound); one dropped
/// only leaves its singular value to the complement's Lanczos (slower, still a bound).
const SPAN_RANK_TOL: f64 = 1e-9;

/// The singular subspaces of X = U Vᵀ for factors `U [m, r]`, `V [n, r]` with r > 0;
/// `None` otherwise. Per-factor spans would not do: with more columns than X's rank (a
/// fixed-size model) span(U) holds directions where X vanishes.
pub(super) fn spans(current: &[Array2<f64>]) -> Option<Spans> {
    let [u, v] = current else { return None };
    if u.ncols() == 0 {
        return None;
    }
    let (left, sigma, right) = linalg::product_svd(u.view(), v.view())?;
    let top = sigma.first().copied().unwrap_or(0.0);
    let k = sigma
        .iter()
        .take_while(|&&x| x > SPAN_RANK_TOL * top)
        .count();
    (k > 0).then(|| Spans {
        left: left.slice(s![.., ..k]).to_owned(),
        right: right.slice(s![.., ..k]).to_owned(),
    })
}

/// `x − B(Bᵀx)`.
fn project_out(basis: &Array2<f64>, x: &Array2<f64>) -> Array2<f64> {
    let coefficients = linalg::gemm(basis.view(), true, x.view(), false, 1.0);
    x - &linalg::gemm(basis.view(), false, coefficients.view(), false, 1.0)
}

fn frobenius(a: &Array2<f64>) -> f64 {
    a.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// `(I − PPᵀ) Z (I − QQᵀ)`.
struct Deflated<'a, 'b, 'm> {
    residual: Residual<'a, 'm>,
    spans: &'b Spans,
}

impl Operator for Deflated<'_, '_, '_> {
    fn rows(&self) -> usize {
        self.residual.rows
    }
    fn cols(&self) -> usize {
        self.residual.cols
    }
    fn apply(&mut self, x: &Array2<f64>) -> Result<Array2<f64>, ExecError> {
        let image = self.residual.apply(&project_out(&self.spans.right, x))?;
        Ok(project_out(&self.spans.left, &image))
    }
    fn apply_t(&mut self, y: &Array2<f64>) -> Result<Array2<f64>, ExecError> {
        let image = self.residual.apply_t(&project_out(&self.spans.left, y))?;
        Ok(project_out(&self.spans.right, &image))
    }
}

/// ‖[[a, b], [c, d]]‖₂.
fn norm_2x2(a: f64, b: f64, c: f64, d: f64) -> f64 {
    // The largest eigenvalue of MᵀM = [[a² + c², ab + cd], [ab + cd, b² + d²]].
    let (p, q, r) = (a * a + c * c, a * b + c * d, b * b + d * d);
    (0.5 * (p + r + ((p - r) * (p - r) + 4.0 * q * q).sqrt())).sqrt()
}

/// How far D's Lanczos bound must fall for the block bound to stay within `tol/10` of ‖A‖:
/// the largest d with ‖[[a, b], [c, d]]‖₂ ≤ a(1 + tol/10) (the bound's excess grows like
/// b²/(a − d), so a D settled just under a would cost the tolerance). 0 (converge fully)
/// where b and c alone exceed it.
fn complement_settle(a: f64, b: f64, c: f64, tol: f64) -> f64 {
    let target = a * (1.0 + 0.1 * tol);
    if a.is_nan() || a <= 0.0 || norm_2x2(a, b, c, 0.0) > target {
        return 0.0;
    }
    let (mut low, mut high) = (0.0, a);
    for _ in 0..60 {
        let mid = 0.5 * (low + high);
        if norm_2x2(a, b, c, mid) <= target {
            low = mid;
        } else {
            high = mid;
        }
    }
    low
}

/// σ_max(Z) (after `Residual`) and the atoms above `request.above`, by the deflation of the
/// module's documentation.
pub(super) fn deflated(
    machine: &mut Machine<'_>,
    rows: usize,
    cols: usize,
    spans: &Spans,
    request: &Request,
    rng: &mut ChaCha8Rng,
) -> Result<Polar, ExecError> {
    let (p, q) = (&spans.left, &spans.right);
    let zq = machine.apply_block(q)?;
    let ztp = machine.apply_t_block(p)?;
    let a_block = linalg::gemm(p.view(), true, zq.view(), false, 1.0);
    let c_bound = frobenius(&(&zq - &linalg::gemm(p.view(), false, a_block.view(), false, 1.0)));
    let b_bound = frobenius(&(&ztp - &linalg::gemm(q.view(), false, a_block.view(), true, 1.0)));
    let Some((pa, sa, qa)) = linalg::thin_svd(a_block.view()) else {
        return Err(ExecError::Backend(
            "the SVD of the residual on the factors' spans did not converge".into(),
        ));
    };
    let a_top = sa.first().copied().unwrap_or(0.0);
    let mut products = q.ncols() + p.ncols();
    let complement = if p.ncols() < rows && q.ncols() < cols {
        let settle =
            complement_settle(a_top, b_bound, c_bound, request.tol).min(0.999 * request.above);
        let mut operator = Deflated {
            residual: Residual {
                machine,
                rows,
                cols,
            },
            spans,
        };
        Some(lanczos::lanczos(&mut operator, request, rng, settle)?)
    } else {
        None
    };
    let (d_value, d_upper) = complement.as_ref().map_or((0.0, 0.0), |polar| {
        (polar.value, polar.value + polar.residual.unwrap_or(0.0))
    });
    let upper = norm_2x2(a_top, b_bound, c_bound, d_upper);
    let value = a_top.max(d_value);
    // The atoms of both pieces above the threshold, best first; at least the maximizer.
    let mut atoms: Vec<(Vec<Array1<f64>>, f64)> = Vec::new();
    for (i, &s) in sa.iter().enumerate() {
        if s > request.above || i == 0 {
            let u = p.dot(&pa.column(i));
            let v = q.dot(&qa.column(i));
            atoms.push((vec![u, v], s));
        }
    }
    if let Some(polar) = complement {
        products += polar.products;
        atoms.extend(polar.atoms);
    }
    atoms.sort_by(|x, y| y.1.total_cmp(&x.1));
    let keep = atoms
        .iter()
        .take_while(|(_, s)| *s > request.above)
        .count()
        .clamp(1, request.max_atoms.max(1));
    atoms.truncate(keep);
    Ok(Polar {
        value,
        atoms,
        residual: Some((upper - value).max(0.0)),
        products,
        heuristic_note: None,
    })
}

#[cfg(test)]
mod tests {
    use super::{complement_settle, norm_2x2};

    #[test]
    fn the_complement_settles_where_the_bound_keeps_the_tolerance() {
        let (a, b, c, tol) = (1.0, 1e-6, 2e-6, 1e-10);
        let d = complement_settle(a, b, c, tol);
        assert!(d > 0.0 && d < a);
        assert!(norm_2x2(a, b, c, d) <= a * (1.0 + 0.1 * tol));
        assert!(norm_2x2(a, b, c, d * 1.001 + 1e-3) > a * (1.0 + 0.1 * tol));
        // Off-diagonal blocks too large for any D: converge fully.
        assert_eq!(complement_settle(a, 1e-3, 1e-3, tol), 0.0);
        // A stationary point: anything below a.
        assert!(complement_settle(a, 0.0, 0.0, tol) > 0.999);
    }

    #[test]
    fn block_norm_bound_is_the_two_by_two_norm() {
        // Diagonal: the larger entry; a rank-one [[1, 1], [1, 1]]: 2.
        assert!((norm_2x2(3.0, 0.0, 0.0, 2.0) - 3.0).abs() < 1e-15);
        assert!((norm_2x2(1.0, 1.0, 1.0, 1.0) - 2.0).abs() < 1e-15);
        // Second order in the off-diagonal: a + b²/(a − d) to leading order.
        let (a, b, d) = (1.0, 1e-4, 0.5);
        let excess = norm_2x2(a, b, b, d) - a;
        assert!((excess - b * b / (a - d)).abs() < 1e-11, "{excess}");
    }
}
