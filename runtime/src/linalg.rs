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

    #[test]
    fn svd_and_eigen() {
        let a = array![[3.0, 0.0], [0.0, -2.0], [0.0, 0.0]];
        let (_, s, _) = thin_svd(a.view()).unwrap();
        assert!((s[0] - 3.0).abs() < 1e-14 && (s[1] - 2.0).abs() < 1e-14);
        let g = array![[2.0, 1.0], [1.0, 2.0]];
        assert!((largest_eigenvalue(g.view()) - 3.0).abs() < 1e-14);
    }
}
