//! σ_max(Z) and the singular pairs of Z above a threshold (the ℓ2 · ℓ2 polar and the atoms
//! growth adds), exact.
//!
//! Block Golub–Kahan–Lanczos with full reorthogonalization: from an orthonormal block V₁,
//! `Z Vⱼ` is orthogonalized against every earlier left vector (the coefficients are column
//! block j of T = Uᵀ Z V, exactly, because Z Vⱼ lies in span(U₁ … Uⱼ) by construction), then
//! `Zᵀ Uⱼ` against every right vector, which gives Vⱼ₊₁ and the coefficients Rⱼ. The Ritz
//! pairs are the singular pairs (θᵢ, U pᵢ, V qᵢ) of T, and since `Z V q − θ U p = 0`, the
//! residual of pair i is `‖Zᵀ U pᵢ − θᵢ V qᵢ‖ = ‖Rⱼ pᵢ[last block]‖`: the bound reported.
//! A block of b vectors costs one product with Z and one with Zᵀ of width b (a GEMM or a
//! sparse product over b columns), so a dense Z is read once per b vectors.
//!
//! It stops when the top pair's residual is below `tol · θ₁` and every Ritz pair above the
//! threshold (up to the number of atoms asked for) has one below `atom_tol · θ₁`, with at
//! least one block of Ritz values below the threshold (so that the basis reaches past it);
//! when the basis spans the smaller dimension (the pairs are then exact); or at a basis of
//! `3 (atoms + b) + 128` vectors.

use ndarray::{Array1, Array2, s};
use rand_chacha::ChaCha8Rng;

use super::{Polar, Request, norm, normal_vector};
use crate::backend::ExecError;
use crate::linalg;
use crate::machine::Machine;

/// A linear operator Z of `rows × cols` known through products with blocks of vectors.
pub(super) trait Operator {
    /// Z's rows.
    fn rows(&self) -> usize;
    /// Z's columns.
    fn cols(&self) -> usize;
    /// `Z X` for `X: [cols, b]`.
    fn apply(&mut self, x: &Array2<f64>) -> Result<Array2<f64>, ExecError>;
    /// `Zᵀ Y` for `Y: [rows, b]`.
    fn apply_t(&mut self, y: &Array2<f64>) -> Result<Array2<f64>, ExecError>;
}

/// −∇ℓ itself, after the `Residual` kernel: the machine's contraction kernels.
pub(super) struct Residual<'a, 'm> {
    pub machine: &'a mut Machine<'m>,
    pub rows: usize,
    pub cols: usize,
}

impl Operator for Residual<'_, '_> {
    fn rows(&self) -> usize {
        self.rows
    }
    fn cols(&self) -> usize {
        self.cols
    }
    fn apply(&mut self, x: &Array2<f64>) -> Result<Array2<f64>, ExecError> {
        self.machine.apply_block(x)
    }
    fn apply_t(&mut self, y: &Array2<f64>) -> Result<Array2<f64>, ExecError> {
        self.machine.apply_t_block(y)
    }
}

/// The block width when the caller gives no hint.
const DEFAULT_BLOCK: usize = 8;

/// Orthogonalizes `x` against `basis` twice (Kahan's "twice is enough"), adding the
/// coefficients removed to `coefficients[..basis.len()]`.
fn orthogonalize(x: &mut Array1<f64>, basis: &[Array1<f64>], coefficients: &mut [f64]) {
    for _ in 0..2 {
        for (b, c) in basis.iter().zip(coefficients.iter_mut()) {
            let d = b.dot(x);
            x.scaled_add(-d, b);
            *c += d;
        }
    }
}

/// Appends the columns of `block`, orthogonalized against `basis` and each other, to
/// `basis`. Returns, per column, its coefficients on the whole basis after (column c of
/// `block` = Σ basis[i]·coefficients[c][i]). A column with no new direction left (below
/// `floor`) gets a random unit vector orthogonal to the basis, with coefficient 0, so that
/// the basis keeps growing (an invariant subspace was found).
fn extend_basis(
    basis: &mut Vec<Array1<f64>>,
    block: &Array2<f64>,
    floor: f64,
    rng: &mut ChaCha8Rng,
) -> Vec<Vec<f64>> {
    let mut out = Vec::with_capacity(block.ncols());
    for column in block.columns() {
        let mut x = column.to_owned();
        let mut coefficients = vec![0.0; basis.len() + 1];
        orthogonalize(&mut x, basis, &mut coefficients);
        let length = norm(&x);
        if length > floor {
            coefficients[basis.len()] = length;
            basis.push(x / length);
        } else {
            let mut fresh = normal_vector(rng, x.len());
            let mut ignored = vec![0.0; basis.len()];
            orthogonalize(&mut fresh, basis, &mut ignored);
            let l = norm(&fresh);
            basis.push(if l > 0.0 { fresh / l } else { fresh });
        }
        out.push(coefficients);
    }
    out
}

/// The columns `from..` of a basis as a matrix.
fn columns(basis: &[Array1<f64>], from: usize, height: usize) -> Array2<f64> {
    let mut m = Array2::zeros((height, basis.len() - from));
    for (k, b) in basis[from..].iter().enumerate() {
        m.column_mut(k).assign(b);
    }
    m
}

/// Σⱼ basis[j]·weights[j], normalized.
fn combine(
    basis: &[Array1<f64>],
    weights: ndarray::ArrayView1<'_, f64>,
    height: usize,
) -> Array1<f64> {
    let mut x = Array1::zeros(height);
    for (b, &w) in basis.iter().zip(weights.iter()) {
        x.scaled_add(w, b);
    }
    let l = norm(&x);
    if l > 0.0 { x / l } else { x }
}

/// The top singular value of Z and its pairs above `request.above`. With `settle_below > 0`
/// it also stops as soon as the top pair's upper end `θ₁ + ‖r₁‖` is at most that (the caller
/// needs only a bound there; no atom is above it then).
pub(super) fn lanczos(
    op: &mut dyn Operator,
    request: &Request,
    rng: &mut ChaCha8Rng,
    settle_below: f64,
) -> Result<Polar, ExecError> {
    let (rows, cols) = (op.rows(), op.cols());
    let kmax = rows.min(cols);
    let empty = Polar {
        value: 0.0,
        atoms: Vec::new(),
        residual: Some(0.0),
        products: 0,
        heuristic_note: None,
    };
    if kmax == 0 {
        return Ok(empty);
    }
    let hint = if request.block == 0 {
        DEFAULT_BLOCK
    } else {
        request.block
    };
    let b = hint.clamp(1, kmax);
    let wanted = request.max_atoms.max(1);
    let mut lefts: Vec<Array1<f64>> = Vec::new();
    let mut rights: Vec<Array1<f64>> = Vec::new();
    // T = Uᵀ Z V by columns (column j has entries for the left vectors that existed after
    // Z vⱼ was orthogonalized; later ones are 0).
    let mut t_columns: Vec<Vec<f64>> = Vec::new();
    let mut products = 0;
    let mut start = Array2::zeros((cols, b));
    for mut c in start.columns_mut() {
        c.assign(&normal_vector(rng, cols));
    }
    extend_basis(&mut rights, &start, 0.0, rng);
    // The scale below which a new direction counts as none (relative to ‖Z‖'s estimate).
    let mut scale: f64 = 0.0;
    let mut last_checked = 0;
    loop {
        let from = lefts.len();
        // The last block stops at the smaller dimension.
        let width = b.min(kmax - from).min(rights.len() - from);
        let block_right = columns(&rights[..from + width], from, cols);
        let images = op.apply(&block_right)?;
        products += block_right.ncols();
        scale = scale.max(images.iter().fold(0.0, |m: f64, x| m.max(x.abs())));
        let floor = f64::EPSILON * scale * (rows as f64).sqrt();
        t_columns.extend(extend_basis(&mut lefts, &images, floor, rng));
        let block_left = columns(&lefts, from, rows);
        let back = op.apply_t(&block_left)?;
        products += block_left.ncols();
        let before = rights.len();
        let coefficients = extend_basis(&mut rights, &back, floor, rng);
        let size = lefts.len();
        // Rⱼ: the components of Zᵀ Uⱼ on the new right vectors (rows), per column of Uⱼ.
        let mut r_block = Array2::zeros((rights.len() - before, width));
        for (c, coeff) in coefficients.iter().enumerate() {
            for (i, &x) in coeff.iter().enumerate().skip(before) {
                r_block[[i - before, c]] = x;
            }
        }
        let full = size >= kmax;
        // The SVD of T costs O(size³): every block while small, then when the basis has
        // grown by a quarter since the last one.
        if !full && size >= 48 && (size as f64) < 1.25 * last_checked as f64 {
            continue;
        }
        last_checked = size;
        let mut t = Array2::zeros((size, size));
        for (j, column) in t_columns.iter().enumerate() {
            for (i, &x) in column.iter().enumerate() {
                t[[i, j]] = x;
            }
        }
        let Some((p, theta, q)) = linalg::thin_svd(t.view()) else {
            return Err(ExecError::Backend(
                "the SVD of the Lanczos projection did not converge".into(),
            ));
        };
        let top = theta.first().copied().unwrap_or(0.0);
        if top <= 0.0 && full {
            return Ok(Polar { products, ..empty });
        }
        let residual = |i: usize| -> f64 {
            let tail = p.slice(s![from..size, i]);
            let r = r_block.dot(&tail);
            r.dot(&r).sqrt()
        };
        let above = theta.iter().take_while(|&&x| x > request.above).count();
        let needed = above.clamp(1, wanted);
        let scale_top = top.max(f64::MIN_POSITIVE);
        let converged = residual(0) <= request.tol * scale_top
            && (0..above.min(wanted)).all(|i| residual(i) <= request.atom_tol * scale_top);
        // A basis this large has not converged to the atom tolerance (rounding, or a
        // spectrum too flat): the pairs found are still the best directions in it.
        let capped = size >= 3 * (above + b) + 128;
        let reaches_past = above >= wanted || above + b <= size;
        let settled = settle_below > 0.0 && top + residual(0) <= settle_below;
        if full || capped || settled || (converged && reaches_past) {
            let count = needed.min(theta.len());
            let atoms = (0..count)
                .filter(|&i| theta[i] > 0.0)
                .map(|i| {
                    let u = combine(&lefts[..size], p.column(i), rows);
                    let v = combine(&rights[..size], q.column(i), cols);
                    (vec![u, v], theta[i])
                })
                .collect();
            return Ok(Polar {
                value: top,
                atoms,
                residual: Some(if full { 0.0 } else { residual(0) }),
                products,
                heuristic_note: None,
            });
        }
    }
}
