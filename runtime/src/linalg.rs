//! Dense linear algebra through faer: GEMM, the thin SVD and symmetric eigenvalues.
//!
//! ndarray arrays are row-major; faer reads them through views without copying (a
//! non-contiguous view is copied to standard layout first). faer is used for its tuned GEMM
//! and because it also supplies the SVD and eigensolvers; a measured comparison with
//! ndarray's own product (matrixmultiply) is still to be done.

use faer::{Accum, MatMut, MatRef, Side};
use ndarray::{Array1, Array2, ArrayView2};

fn faer_ref<'a>(a: &'a ArrayView2<'a, f64>) -> MatRef<'a, f64> {
    let (rows, cols) = a.dim();
    match a.as_slice() {
        Some(slice) => MatRef::from_row_major_slice(slice, rows, cols),
        // Callers pass standard-layout views (see `standard`).
        None => unreachable!("faer_ref needs a standard-layout view"),
    }
}

fn standard<'a>(a: ArrayView2<'a, f64>) -> ndarray::CowArray<'a, f64, ndarray::Ix2> {
    if a.is_standard_layout() {
        a.into()
    } else {
        a.as_standard_layout().into_owned().into()
    }
}

/// `dst = alpha·op(a)·op(b)` (`+ dst` when `accumulate`). Shapes must agree (checked by the
/// kernel validator before any call).
pub fn gemm_into(
    dst: &mut Array2<f64>,
    accumulate: bool,
    a: ArrayView2<'_, f64>,
    trans_a: bool,
    b: ArrayView2<'_, f64>,
    trans_b: bool,
    alpha: f64,
) {
    let a = standard(a);
    let b = standard(b);
    let av = a.view();
    let bv = b.view();
    let mut lhs = faer_ref(&av);
    if trans_a {
        lhs = lhs.transpose();
    }
    let mut rhs = faer_ref(&bv);
    if trans_b {
        rhs = rhs.transpose();
    }
    let (rows, cols) = dst.dim();
    if !dst.is_standard_layout() {
        *dst = dst.as_standard_layout().into_owned();
    }
    let Some(out) = dst.as_slice_mut() else {
        unreachable!("standard layout was just ensured")
    };
    let out = MatMut::from_row_major_slice_mut(out, rows, cols);
    let beta = if accumulate {
        Accum::Add
    } else {
        Accum::Replace
    };
    faer::linalg::matmul::matmul(out, beta, lhs, rhs, alpha, faer::get_global_parallelism());
}

/// `alpha·op(a)·op(b)` as a new matrix.
pub fn gemm(
    a: ArrayView2<'_, f64>,
    trans_a: bool,
    b: ArrayView2<'_, f64>,
    trans_b: bool,
    alpha: f64,
) -> Array2<f64> {
    let rows = if trans_a { a.ncols() } else { a.nrows() };
    let cols = if trans_b { b.nrows() } else { b.ncols() };
    let mut dst = Array2::zeros((rows, cols));
    gemm_into(&mut dst, false, a, trans_a, b, trans_b, alpha);
    dst
}

/// The thin SVD `a = U diag(s) Vᵀ`, singular values nonincreasing. `None` if it fails to
/// converge.
pub fn thin_svd(a: ArrayView2<'_, f64>) -> Option<(Array2<f64>, Array1<f64>, Array2<f64>)> {
    let a = standard(a);
    let av = a.view();
    let svd = faer_ref(&av).thin_svd().ok()?;
    let u = svd.U();
    let v = svd.V();
    let s = svd.S().column_vector();
    let u = Array2::from_shape_fn((u.nrows(), u.ncols()), |(i, j)| u[(i, j)]);
    let v = Array2::from_shape_fn((v.nrows(), v.ncols()), |(i, j)| v[(i, j)]);
    let s = Array1::from_shape_fn(s.nrows(), |i| s[i]);
    Some((u, s, v))
}

/// The singular values of `a`, nonincreasing.
pub fn singular_values(a: ArrayView2<'_, f64>) -> Option<Vec<f64>> {
    let a = standard(a);
    let av = a.view();
    faer_ref(&av).singular_values().ok()
}

/// The largest eigenvalue of a symmetric matrix (0 for an empty one).
pub fn largest_eigenvalue(a: ArrayView2<'_, f64>) -> f64 {
    if a.nrows() == 0 {
        return 0.0;
    }
    let a = standard(a);
    let av = a.view();
    match faer_ref(&av).self_adjoint_eigenvalues(Side::Lower) {
        Ok(values) => values.last().copied().unwrap_or(0.0),
        // Fall back on a bound that always holds: the Frobenius norm.
        Err(_) => a.iter().map(|x| x * x).sum::<f64>().sqrt(),
    }
}

/// `b · a⁻¹` for a symmetric positive definite `a` (Cholesky). `None` when `a` is not
/// positive definite to working precision.
pub fn solve_spd_right(b: ArrayView2<'_, f64>, a: ArrayView2<'_, f64>) -> Option<Array2<f64>> {
    use faer::linalg::solvers::Solve;
    let a = standard(a);
    let av = a.view();
    let llt = faer_ref(&av).llt(Side::Lower).ok()?;
    // x a = b  ⇔  a xᵀ = bᵀ (a is symmetric).
    let bt = b.t().as_standard_layout().into_owned();
    let btv = bt.view();
    let xt = llt.solve(faer_ref(&btv));
    let x = Array2::from_shape_fn((b.nrows(), b.ncols()), |(i, j)| xt[(j, i)]);
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// The SVD of a product `u vᵀ` (`u`: m × r, `v`: n × r) in O((m + n)r²), never forming it:
/// `u = P₁ S₁ Q₁ᵀ`, then `v Q₁ S₁ = P₂ S₂ Q₂ᵀ`, so `u vᵀ = (P₁ Q₂) S₂ P₂ᵀ`.
pub fn product_svd(
    u: ArrayView2<'_, f64>,
    v: ArrayView2<'_, f64>,
) -> Option<(Array2<f64>, Array1<f64>, Array2<f64>)> {
    let (p1, s1, q1) = thin_svd(u)?;
    let mut b = gemm(v, false, q1.view(), false, 1.0);
    for (mut column, s) in b.axis_iter_mut(ndarray::Axis(1)).zip(s1.iter()) {
        column.mapv_inplace(|x| x * s);
    }
    let (p2, s2, q2) = thin_svd(b.view())?;
    Some((gemm(p1.view(), false, q2.view(), false, 1.0), s2, p2))
}

/// Refactors `u vᵀ` with the same number of columns r so that every column pair has the same
/// product of norms, `‖uᵢ‖‖vᵢ‖ = ‖u vᵀ‖_* / r`, and the factorization is nuclear-optimal
/// (`Σᵢ ‖uᵢ‖‖vᵢ‖ = ‖u vᵀ‖_*`). This is the minimizer of `Σᵢ ‖uᵢ‖²‖vᵢ‖²` over factorizations
/// of `u vᵀ` with r columns (Mianjy, Arora & Vidal 2018), which dropout's regularizer needs.
///
/// From the balanced SVD factors `U₁ = P √S`, `V₁ = Q √S` (orthogonal columns with
/// `‖u₁ᵢ‖² = ‖v₁ᵢ‖² = sᵢ`, zero columns padded to r), Givens rotations act on both: the
/// product is unchanged and column i's norm product is `dᵢ = Σₖ sₖ Rₖᵢ²`. Each rotation
/// pairs an index above the mean μ with one below, sets one of them to μ exactly and never
/// touches it again (Schur–Horn); at most one touched index stays open, so the pair's Gram
/// entry is 0 and the update is exact. `None` if an SVD fails.
pub fn equalize(
    u: ArrayView2<'_, f64>,
    v: ArrayView2<'_, f64>,
) -> Option<(Array2<f64>, Array2<f64>)> {
    let rank = u.ncols();
    let (p, s, q) = product_svd(u, v)?;
    let mut u1 = Array2::zeros((u.nrows(), rank));
    let mut v1 = Array2::zeros((v.nrows(), rank));
    let mut d = vec![0.0; rank];
    for k in 0..s.len().min(rank) {
        let root = s[k].sqrt();
        u1.column_mut(k).assign(&(&p.column(k) * root));
        v1.column_mut(k).assign(&(&q.column(k) * root));
        d[k] = s[k];
    }
    if rank == 0 {
        return Some((u1, v1));
    }
    let mean = d.iter().sum::<f64>() / rank as f64;
    let mut open: Vec<usize> = (0..rank).collect();
    while open.len() > 1 {
        let by = |a: &&usize, b: &&usize| d[**a].total_cmp(&d[**b]);
        let (Some(&high), Some(&low)) = (open.iter().max_by(by), open.iter().min_by(by)) else {
            break;
        };
        if d[high] - mean <= 1e-15 * mean && mean - d[low] <= 1e-15 * mean {
            break;
        }
        // cos² c moves d_high to the mean; d_low gets the rest (the trace is kept).
        let cos2 = ((mean - d[low]) / (d[high] - d[low])).clamp(0.0, 1.0);
        let (c, sn) = (cos2.sqrt(), (1.0 - cos2).sqrt());
        for m in [&mut u1, &mut v1] {
            let a = m.column(high).to_owned();
            let b = m.column(low).to_owned();
            m.column_mut(high).assign(&(&a * c + &b * sn));
            m.column_mut(low).assign(&(&b * c - &a * sn));
        }
        d[low] += d[high] - mean;
        d[high] = mean;
        open.retain(|&k| k != high);
    }
    Some((u1, v1))
}

/// The tensor `Σᵢ a¹ᵢ ⊗ … ⊗ aᴷᵢ` of CP factors (`factors[k]` is `[shape[k], r]`).
pub fn cp_compose(factors: &[Array2<f64>], shape: &[usize]) -> ndarray::ArrayD<f64> {
    let rank = factors.first().map_or(0, Array2::ncols);
    ndarray::ArrayD::from_shape_fn(shape, |index| {
        (0..rank)
            .map(|i| {
                factors
                    .iter()
                    .enumerate()
                    .map(|(k, a)| a[(index[k], i)])
                    .product::<f64>()
            })
            .sum()
    })
}

/// The mode-k unfolding `T₍ₖ₎` `[nₖ, Πₗ≠ₖ nₗ]` of a tensor: row iₖ holds the entries with
/// that index, the other modes in ascending order with the last fastest (the order of
/// [`crate::kir::Stmt::KhatriRao`] chains, so `T₍ₖ₎ (A ⊙ B) ` contracts them).
pub fn unfold(tensor: ndarray::ArrayViewD<'_, f64>, k: usize) -> Array2<f64> {
    let order = tensor.ndim();
    let mut axes: Vec<usize> = vec![k];
    axes.extend((0..order).filter(|&l| l != k));
    let rows = tensor.shape().get(k).copied().unwrap_or(0);
    let cols = tensor
        .shape()
        .iter()
        .enumerate()
        .filter(|&(l, _)| l != k)
        .map(|(_, n)| n)
        .product();
    let permuted = tensor.permuted_axes(axes);
    let values: Vec<f64> = permuted.iter().copied().collect();
    Array2::from_shape_vec((rows, cols), values).unwrap_or_else(|_| Array2::zeros((rows, cols)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn gemm_matches_ndarray() {
        let a = array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]];
        let b = array![[1.0, 0.5], [0.0, 2.0], [1.0, 1.0]];
        assert_eq!(gemm(a.view(), false, b.view(), false, 1.0), a.dot(&b));
        assert_eq!(
            gemm(a.view(), true, a.view(), false, 2.0),
            a.t().dot(&a) * 2.0
        );
        assert_eq!(gemm(b.view(), true, a.view(), true, 1.0), b.t().dot(&a.t()));
        let mut acc = a.dot(&b);
        gemm_into(&mut acc, true, a.view(), false, b.view(), false, -1.0);
        assert!(acc.iter().all(|x| *x == 0.0));
        // Transposed (non-standard) views are copied first.
        assert_eq!(gemm(a.t(), false, a.t(), true, 1.0), a.t().dot(&a));
    }

    fn pseudo_random(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        Array2::from_shape_fn((rows, cols), |_| rng.random::<f64>() - 0.5)
    }

    #[test]
    fn spd_solve_inverts() {
        let a = array![[4.0, 1.0], [1.0, 3.0]];
        let b = array![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]];
        let x = solve_spd_right(b.view(), a.view()).unwrap();
        assert!((x.dot(&a) - &b).iter().all(|e| e.abs() < 1e-14));
        let singular = array![[1.0, 1.0], [1.0, 1.0]];
        assert!(solve_spd_right(b.view(), singular.view()).is_none());
    }

    #[test]
    fn equalize_keeps_the_product_and_equalizes_columns() {
        // r below, equal to and above the dimensions (padded zero columns).
        for (m, n, r, seed) in [(12, 9, 4, 1), (7, 5, 5, 2), (6, 4, 9, 3)] {
            let u = pseudo_random(m, r, seed);
            let v = pseudo_random(n, r, seed + 10);
            let (ue, ve) = equalize(u.view(), v.view()).unwrap();
            let x = u.dot(&v.t());
            let scale = x.iter().map(|e| e.abs()).fold(0.0, f64::max);
            let err = (ue.dot(&ve.t()) - &x)
                .iter()
                .map(|e| e.abs())
                .fold(0.0, f64::max);
            assert!(err <= 1e-13 * scale, "product moved by {err}");
            let nuclear: f64 = singular_values(x.view()).unwrap().iter().sum();
            let products: Vec<f64> = (0..r)
                .map(|i| {
                    let nu = ue.column(i).dot(&ue.column(i)).sqrt();
                    let nv = ve.column(i).dot(&ve.column(i)).sqrt();
                    nu * nv
                })
                .collect();
            for p in &products {
                assert!(
                    (p - nuclear / r as f64).abs() <= 1e-12 * nuclear,
                    "{products:?}"
                );
            }
        }
    }

    #[test]
    fn svd_and_eigen() {
        let a = array![[3.0, 0.0], [0.0, -2.0], [0.0, 0.0]];
        let (_, s, _) = thin_svd(a.view()).unwrap();
        assert!((s[0] - 3.0).abs() < 1e-14 && (s[1] - 2.0).abs() < 1e-14);
        let g = array![[2.0, 1.0], [1.0, 2.0]];
        assert!((largest_eigenvalue(g.view()) - 3.0).abs() < 1e-14);
    }

    #[test]
    fn unfoldings_order_the_other_modes_ascending_last_fastest() {
        // T[i, j, k] = 100 i + 10 j + k.
        let t = ndarray::ArrayD::from_shape_fn(vec![2, 3, 2], |x| {
            (100 * x[0] + 10 * x[1] + x[2]) as f64
        });
        let t1 = unfold(t.view(), 1);
        assert_eq!(t1.dim(), (3, 4));
        // Row j = 2: (i, k) = (0,0), (0,1), (1,0), (1,1).
        assert_eq!(t1.row(2).to_vec(), vec![20.0, 21.0, 120.0, 121.0]);
        let t2 = unfold(t.view(), 2);
        assert_eq!(
            t2.row(1).to_vec(),
            vec![1.0, 11.0, 21.0, 101.0, 111.0, 121.0]
        );
        assert_eq!(unfold(t.view(), 0).row(1)[5], 121.0);
    }
}
