//! The polar of the two-layer ReLU regularizer (ℓ2 on the first layer's column times ℓ2 on the
//! second layer's column): given the inputs X (N×d) and Z = −∇ℓ at the outputs (N×c),
//!
//! ```text
//! Ω°(Z) = max_{‖w‖₂ = 1} f(w),   f(w) = ‖Zᵀ relu(X w)‖₂,
//! ```
//!
//! and the second layer's maximizer is v = Zᵀ relu(X w*) / f(w*).
//!
//! **Exact for d ≤ 3** (within [`RELU_ENUM_MAX_CELLS`]). The hyperplanes xⱼᵀw = 0 cut the
//! sphere into cells; on the cell with pattern S, f² = wᵀ M_S w with B_S = Zᵀ D_S X and
//! M_S = B_Sᵀ B_S. The maximizer lies in the relative interior of a face (cell, arc of a great
//! circle xⱼ^⊥, or vertex), where f² is a quadratic form on a subspace whose local maxima on
//! the sphere are its top eigenvectors. So the maximizer is among: ± the top eigenvector of
//! each cell's M_S, ± the top eigenvector of each arc's restricted form, and the vertices.
//! The cells, arcs and vertices are visited by sweeps with rank-one updates of B:
//! d = 2 sorts the 2N boundary angles of the one circle; d = 3 sweeps each great circle
//! xⱼ^⊥ through its sorted crossings with the other planes (each arc borders the cells S and
//! S ∪ {j}, and every cell has an edge, so every cell, arc and vertex is seen).
//!
//! Arc and vertex candidates are checked against their own arc in angle space, so their
//! quadratic value *is* f there. A cell's eigenvector can lie outside its cell, and a cell's
//! full boundary is not known during the sweep, so a cell candidate whose quadratic value
//! could beat the best known value is checked by evaluating the true f (lazily, largest
//! first, until no remaining candidate can win). A candidate outside its face only adds a
//! feasible value, so the result is the maximum up to rounding. Cost: O(N log N + N c) for
//! d = 2 and O(N² (log N + c)) for d = 3, plus the true evaluations of the cell candidates
//! that survive the bound (few in practice).
//!
//! **Heuristic otherwise** (d ≥ 4, or more cells than the cap): "pattern power iteration"
//! from seeded normal starts, the caller's warm directions and ± the top right singular
//! vector of Zᵀ X: S ← pattern(w), w ← ± top eigenvector of M_S (the sign that agrees with
//! more of S) until the pattern repeats, then projected gradient ascent on the sphere with
//! backtracking. The result is a feasible value (a lower bound on the polar), labelled
//! `exact: false` with the reason.
//!
//! Convention: relu(0) = 0, so a point on its own boundary is inactive.

use std::collections::HashSet;
use std::f64::consts::{PI, TAU};
use std::hash::{DefaultHasher, Hash, Hasher};

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use ndarray::Axis;

use super::Polar;
use crate::backend::ExecError;
use crate::kir::Slot;
use crate::linalg;
use crate::machine::Machine;
use crate::polar::normal_vector;

mod enumerate;
mod local;
#[cfg(test)]
mod tests;

use enumerate::*;
use local::*;

/// The most cells (of the arrangement {xⱼᵀw = 0} on the sphere, by [`cell_count_bound`]) the
/// exact enumeration visits: N ≤ 2000 nonzero rows for d = 3, N ≤ 2·10⁶ for d = 2. Above it
/// the heuristic runs.
pub const RELU_ENUM_MAX_CELLS: u64 = 4_000_000;

/// A solution of the ReLU polar problem.
#[derive(Clone, Debug, PartialEq)]
pub struct ReluPolar {
    /// f(w) = ‖Zᵀ relu(X w)‖₂ at the returned w: the polar when `exact`, else a lower bound.
    pub value: f64,
    /// The first layer's direction, unit (empty only when d = 0).
    pub w: Array1<f64>,
    /// The second layer's direction Zᵀ relu(X w) / value, unit (any unit vector when the value
    /// is 0; empty only when c = 0).
    pub v: Array1<f64>,
    /// Whether `value` is the maximum (up to rounding): the enumeration ran, or f ≡ 0.
    pub exact: bool,
    /// Why the result is heuristic, when it is.
    pub note: Option<String>,
    /// The enumeration: candidate directions considered (vertices, arc and cell
    /// eigenvectors). The heuristic: directions evaluated.
    pub candidates: u64,
}

/// What is wrong with the input of [`relu_polar`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReluPolarError {
    /// X and Z do not have the same number of rows (data points).
    #[error("X has {x_rows} rows but Z has {z_rows}: both need one row per data point")]
    RowMismatch {
        /// Rows of X.
        x_rows: usize,
        /// Rows of Z.
        z_rows: usize,
    },
    /// A warm start's length is not d.
    #[error("warm start {index} has {len} entries, expected d = {d}")]
    WarmLength {
        /// Its position in `warm`.
        index: usize,
        /// Its length.
        len: usize,
        /// The number of columns of X.
        d: usize,
    },
    /// An input holds NaN or an infinity.
    #[error("{0} contains a non-finite value")]
    NonFinite(&'static str),
}

/// An upper bound on the number of cells the hyperplanes of `n` nonzero rows cut the unit
/// sphere of ℝ^d into: 2·Σ_{i<d} C(n−1, i) (attained by rows in general position), so 2 for
/// d = 1, 2n for d = 2, n² − n + 2 for d = 3; 1 when n = 0 or d = 0. `None` if it exceeds
/// u64.
pub fn cell_count_bound(n: usize, d: usize) -> Option<u64> {
    if n == 0 || d == 0 {
        return Some(1);
    }
    let top = (n - 1) as u128;
    let mut binomial: u128 = 1; // C(n−1, i)
    let mut sum: u128 = 0;
    for i in 0..d as u128 {
        if i > top {
            break;
        }
        if i > 0 {
            binomial = binomial.checked_mul(top - i + 1)?.checked_div(i)?;
        }
        sum = sum.checked_add(binomial)?;
        if sum > u64::MAX as u128 {
            return None;
        }
    }
    u64::try_from(sum.checked_mul(2)?).ok()
}

/// Whether [`relu_polar`] enumerates exactly for `n` nonzero rows of dimension `d`: d ≤ 3 and
/// [`cell_count_bound`] within [`RELU_ENUM_MAX_CELLS`].
pub fn enumeration_applies(n: usize, d: usize) -> bool {
    enumeration_applies_with_cap(n, d, RELU_ENUM_MAX_CELLS)
}

fn enumeration_applies_with_cap(n: usize, d: usize, cap: u64) -> bool {
    d <= 3 && cell_count_bound(n, d).is_some_and(|cells| cells <= cap)
}

/// f(w) = ‖Zᵀ relu(X w)‖₂ (not normalized: f is positively homogeneous of degree 1). NaN when
/// the shapes disagree.
pub fn value_at(x: ArrayView2<'_, f64>, z: ArrayView2<'_, f64>, w: ArrayView1<'_, f64>) -> f64 {
    if x.nrows() != z.nrows() || x.ncols() != w.len() {
        return f64::NAN;
    }
    let y = output_direction(x, z, w);
    y.dot(&y).sqrt()
}

/// Zᵀ relu(X w) (shapes checked by the callers).
fn output_direction(
    x: ArrayView2<'_, f64>,
    z: ArrayView2<'_, f64>,
    w: ArrayView1<'_, f64>,
) -> Array1<f64> {
    let mut y = Array1::zeros(z.ncols());
    for (xi, zi) in x.outer_iter().zip(z.outer_iter()) {
        let s = xi.dot(&w);
        if s > 0.0 {
            y.scaled_add(s, &zi);
        }
    }
    y
}

/// Solves the polar problem: exactly for d ≤ 3 within [`RELU_ENUM_MAX_CELLS`], else by the
/// heuristic from `starts` normal starts drawn from `seed` plus the `warm` directions (any
/// nonzero length-d vectors, e.g. the current neurons' first-layer columns). The heuristic's
/// result is labelled `exact: false` with a note saying why.
pub fn relu_polar(
    x: ArrayView2<'_, f64>,
    z: ArrayView2<'_, f64>,
    starts: usize,
    seed: u64,
    warm: &[Array1<f64>],
) -> Result<ReluPolar, ReluPolarError> {
    solve_with_cap(x, z, starts, seed, warm, RELU_ENUM_MAX_CELLS)
}

fn solve_with_cap(
    x: ArrayView2<'_, f64>,
    z: ArrayView2<'_, f64>,
    starts: usize,
    seed: u64,
    warm: &[Array1<f64>],
    cap: u64,
) -> Result<ReluPolar, ReluPolarError> {
    let (n, d) = x.dim();
    let c = z.ncols();
    if z.nrows() != n {
        return Err(ReluPolarError::RowMismatch {
            x_rows: n,
            z_rows: z.nrows(),
        });
    }
    if let Some((index, w)) = warm.iter().enumerate().find(|(_, w)| w.len() != d) {
        return Err(ReluPolarError::WarmLength {
            index,
            len: w.len(),
            d,
        });
    }
    if !x.iter().all(|a| a.is_finite()) {
        return Err(ReluPolarError::NonFinite("X"));
    }
    if !z.iter().all(|a| a.is_finite()) {
        return Err(ReluPolarError::NonFinite("Z"));
    }
    if !warm.iter().all(|w| w.iter().all(|a| a.is_finite())) {
        return Err(ReluPolarError::NonFinite("a warm start"));
    }

    // Scaled copies (entries at most 1 in magnitude) keep squares and sums far from overflow;
    // f scales by the product of the two factors.
    let x_scale = max_abs(x.iter());
    let z_scale = max_abs(z.iter());
    let nonzero_rows = x
        .outer_iter()
        .filter(|row| row.iter().any(|a| *a != 0.0))
        .count();
    if d == 0 || c == 0 || x_scale == 0.0 || z_scale == 0.0 {
        // f ≡ 0: any unit pair is a maximizer.
        return Ok(ReluPolar {
            value: 0.0,
            w: unit_vector(d),
            v: unit_vector(c),
            exact: true,
            note: None,
            candidates: 0,
        });
    }
    let xs = x.mapv(|a| a / x_scale);
    let zs = z.mapv(|a| a / z_scale);

    let (w, exact, note, candidates) = if enumeration_applies_with_cap(nonzero_rows, d, cap) {
        let packed = Packed::new(xs.view(), zs.view());
        let (w, candidates) = match d {
            1 => enumerate_d1(&packed),
            2 => enumerate_d2(&packed),
            _ => enumerate_d3(&packed),
        };
        (Array1::from(w[..d].to_vec()), true, None, candidates)
    } else {
        let note = if d > 3 {
            format!("d = {d} > 3: heuristic polar")
        } else {
            match cell_count_bound(nonzero_rows, d) {
                Some(cells) => format!(
                    "d = {d} but {cells} cells (N = {nonzero_rows} nonzero rows) > cap {cap}: heuristic polar"
                ),
                None => format!(
                    "d = {d} but the cell count of N = {nonzero_rows} rows overflows: heuristic polar"
                ),
            }
        };
        let mut starting = Vec::with_capacity(starts + warm.len() + 2);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for _ in 0..starts {
            starting.push(normal_vector(&mut rng, d));
        }
        starting.extend(warm.iter().cloned());
        // The direction that is best when every point is active (a linear network's polar),
        // with both signs: cheap, deterministic, and good when most of the data agree.
        let all_active = xs.t().dot(&zs).reversed_axes();
        if let Some(top) = top_right_singular_vector(all_active.view()) {
            starting.push(-&top);
            starting.push(top);
        }
        let (w, candidates) = pattern_power(xs.view(), zs.view(), &starting);
        (w, false, Some(note), candidates)
    };

    let y = output_direction(xs.view(), zs.view(), w.view());
    let scaled_value = y.dot(&y).sqrt();
    let v = if scaled_value > 0.0 {
        y / scaled_value
    } else {
        unit_vector(c)
    };
    Ok(ReluPolar {
        value: scaled_value * x_scale * z_scale,
        w,
        v,
        exact,
        note,
        candidates,
    })
}

fn max_abs<'a>(values: impl Iterator<Item = &'a f64>) -> f64 {
    values.fold(0.0, |m: f64, a| m.max(a.abs()))
}

/// e₁ (empty for n = 0).
fn unit_vector(n: usize) -> Array1<f64> {
    let mut e = Array1::zeros(n);
    if let Some(first) = e.first_mut() {
        *first = 1.0;
    }
    e
}

/// The two-layer ReLU polar `max_{‖w‖≤1} ‖Zᵀ relu(X w)‖₂` with Z = −∇ℓ at the outputs, on the
/// host from the input data and the output gradient the `Residual` kernel wrote. Warm starts:
/// the current first-layer columns.
pub(super) fn relu_patterns(
    machine: &mut Machine<'_>,
    plan: &crate::kir::Plan,
    seed: u64,
    current: &[Array2<f64>],
) -> Result<Polar, ExecError> {
    let x = machine.matrix(Slot::Features)?;
    let z = -machine.matrix(Slot::OutputGrad)?;
    let warm: Vec<Array1<f64>> = current
        .first()
        .map(|w1| w1.axis_iter(Axis(1)).map(|c| c.to_owned()).collect())
        .unwrap_or_default();
    let found = relu_polar(
        x.view(),
        z.view(),
        plan.polar_starts.max(1) as usize,
        seed,
        &warm,
    )
    .map_err(|e| ExecError::Backend(e.to_string()))?;
    Ok(Polar {
        value: found.value,
        atoms: vec![(vec![found.w, found.v], found.value)],
        residual: None,
        products: 0,
        heuristic_note: if found.exact {
            None
        } else {
            found.note.or(Some("heuristic".into()))
        },
    })
}
