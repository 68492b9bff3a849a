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

use crate::linalg;
use crate::polar::normal_vector;

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

// ---------------------------------------------------------------------------------------
// Exact enumeration, d ≤ 3.

/// The nonzero rows for the enumeration, normalized (relu is positively homogeneous, so
/// zⱼ relu(xⱼᵀw) = (‖xⱼ‖ zⱼ) relu(x̂ⱼᵀw): unit rows make the angle tests well scaled), padded
/// to three coordinates, with Z's rows scaled to match, row-major.
struct Packed {
    x: Vec<[f64; 3]>,
    z: Vec<f64>,
    c: usize,
}

impl Packed {
    fn new(x: ArrayView2<'_, f64>, z: ArrayView2<'_, f64>) -> Packed {
        let c = z.ncols();
        let mut rows = Vec::new();
        let mut zs = Vec::new();
        for (xi, zi) in x.outer_iter().zip(z.outer_iter()) {
            let norm = xi.dot(&xi).sqrt();
            if norm == 0.0 {
                continue;
            }
            let mut row = [0.0; 3];
            for (r, a) in row.iter_mut().zip(xi.iter()) {
                *r = a / norm;
            }
            rows.push(row);
            zs.extend(zi.iter().map(|a| a * norm));
        }
        Packed { x: rows, z: zs, c }
    }

    fn z_row(&self, i: usize) -> &[f64] {
        &self.z[i * self.c..(i + 1) * self.c]
    }

    /// The true f(w)² (y: scratch of length c).
    fn value_sq(&self, w: &[f64; 3], y: &mut [f64]) -> f64 {
        y.fill(0.0);
        for (i, xi) in self.x.iter().enumerate() {
            let s = dot3(xi, w);
            if s > 0.0 {
                for (ya, za) in y.iter_mut().zip(self.z_row(i)) {
                    *ya += s * za;
                }
            }
        }
        y.iter().map(|a| a * a).sum()
    }

    /// B += sign·zᵢ xᵢᵀ (B: c×3 row-major).
    fn add_outer(&self, b: &mut [f64], i: usize, sign: f64) {
        let xi = self.x[i];
        for (brow, za) in b.chunks_exact_mut(3).zip(self.z_row(i)) {
            let s = sign * za;
            brow[0] += s * xi[0];
            brow[1] += s * xi[1];
            brow[2] += s * xi[2];
        }
    }
}

fn dot3(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// The best candidate so far, by f² (exact for the candidates offered to it).
struct Best {
    sq: f64,
    w: [f64; 3],
}

impl Best {
    fn offer(&mut self, sq: f64, w: [f64; 3]) {
        if sq > self.sq {
            self.sq = sq;
            self.w = w;
        }
    }
}

fn enumerate_d1(p: &Packed) -> ([f64; 3], u64) {
    let mut y = vec![0.0; p.c];
    let plus = p.value_sq(&[1.0, 0.0, 0.0], &mut y);
    let minus = p.value_sq(&[-1.0, 0.0, 0.0], &mut y);
    let w = if minus > plus { -1.0 } else { 1.0 };
    ([w, 0.0, 0.0], 2)
}

/// d = 2: the circle of the plane itself, whose arcs are the cells.
fn enumerate_d2(p: &Packed) -> ([f64; 3], u64) {
    let mut sweep = Sweep::new(p);
    sweep.circle(p, [0.0, 0.0, 1.0], None, false);
    sweep.finish(p)
}

/// d = 3: every distinct great circle xⱼ^⊥, with the cells on both sides of each arc.
fn enumerate_d3(p: &Packed) -> ([f64; 3], u64) {
    let mut sweep = Sweep::new(p);
    for (j, xj) in p.x.iter().enumerate() {
        sweep.circle(p, *xj, Some(j), true);
    }
    sweep.finish(p)
}

/// Rows closer than this (in sin of the angle, rows being unit) to the circle's normal are
/// treated as parallel to it: their planes coincide with the circle's and they vanish on it.
const PARALLEL_TOLERANCE: f64 = 1e-12;
/// How far outside a known wall of its cell a cell candidate may lie before it is dropped
/// without evaluation. A cell's maximizer strictly inside it passes; one within this of a
/// wall is matched to second order by the wall's arc candidate.
const WALL_TOLERANCE: f64 = 1e-9;
/// Cell candidates held before their true values are evaluated.
const LAZY_CAPACITY: usize = 1 << 15;

/// A row's boundary crossing on the current circle: at `angle` the row becomes active
/// (`enter`) or inactive.
#[derive(Clone, Copy)]
struct Event {
    angle: f64,
    crossing: u32,
    enter: bool,
}

struct Sweep {
    best: Best,
    candidates: u64,
    /// Cell candidates (f² if inside their cell, direction) awaiting a true evaluation.
    lazy: Vec<(f64, [f64; 3])>,
    y: Vec<f64>,
    /// Per circle: (row, coordinates in the circle's basis) of the rows that cross it.
    crossings: Vec<(usize, f64, f64)>,
    events: Vec<Event>,
    seen: Vec<bool>,
    /// B (c×3) of the active rows, and C = B·[u₁ u₂] (c×2), both row-major.
    b: Vec<f64>,
    b_circle: Vec<f64>,
    /// Σ zᵢxᵢᵀ over the rows parallel (positive side) or antiparallel (negative side) to the
    /// circle's normal: active on one side only.
    b_plus: Vec<f64>,
    b_minus: Vec<f64>,
    b_side: Vec<f64>,
}

impl Sweep {
    fn new(p: &Packed) -> Sweep {
        let c = p.c;
        let mut y = vec![0.0; c];
        // A real starting value: the first row's own direction.
        let first = p.x.first().copied().unwrap_or([1.0, 0.0, 0.0]);
        let best = Best {
            sq: p.value_sq(&first, &mut y),
            w: first,
        };
        Sweep {
            best,
            candidates: 1,
            lazy: Vec::new(),
            y,
            crossings: Vec::new(),
            events: Vec::new(),
            seen: Vec::new(),
            b: vec![0.0; 3 * c],
            b_circle: vec![0.0; 2 * c],
            b_plus: vec![0.0; 3 * c],
            b_minus: vec![0.0; 3 * c],
            b_side: vec![0.0; 3 * c],
        }
    }

    /// Sweeps the great circle orthogonal to `normal` (unit): its vertices and arcs, and with
    /// `cells` the cells on both sides of each arc. `own`: the row whose plane this circle is;
    /// a circle already swept for an earlier parallel row is skipped.
    fn circle(&mut self, p: &Packed, normal: [f64; 3], own: Option<usize>, cells: bool) {
        let (u1, u2) = circle_basis(&normal);
        self.crossings.clear();
        self.b_plus.fill(0.0);
        self.b_minus.fill(0.0);
        for (i, xi) in p.x.iter().enumerate() {
            let (a, b) = (dot3(xi, &u1), dot3(xi, &u2));
            if a * a + b * b <= PARALLEL_TOLERANCE * PARALLEL_TOLERANCE {
                if own.is_some_and(|j| i < j) {
                    return;
                }
                if dot3(xi, &normal) > 0.0 {
                    p.add_outer(&mut self.b_plus, i, 1.0);
                } else {
                    p.add_outer(&mut self.b_minus, i, 1.0);
                }
                continue;
            }
            self.crossings.push((i, a, b));
        }

        // Row i is active where aᵢcos φ + bᵢsin φ > 0: from αᵢ − π/2 to αᵢ + π/2.
        self.events.clear();
        for (k, &(_, a, b)) in self.crossings.iter().enumerate() {
            let alpha = b.atan2(a);
            let crossing = k as u32;
            self.events.push(Event {
                angle: (alpha - PI / 2.0).rem_euclid(TAU),
                crossing,
                enter: true,
            });
            self.events.push(Event {
                angle: (alpha + PI / 2.0).rem_euclid(TAU),
                crossing,
                enter: false,
            });
        }
        self.events.sort_by(|a, b| a.angle.total_cmp(&b.angle));
        // Active before the first event: the rows whose first event (in the processing
        // order, which settles ties consistently) is leaving.
        self.b.fill(0.0);
        self.b_circle.fill(0.0);
        self.seen.clear();
        self.seen.resize(self.crossings.len(), false);
        for k in 0..self.events.len() {
            let event = self.events[k];
            let crossing = event.crossing as usize;
            if !self.seen[crossing] {
                self.seen[crossing] = true;
                if !event.enter {
                    self.update(p, crossing, 1.0);
                }
            }
        }

        if self.events.is_empty() {
            // Every row is parallel to the normal: the circle carries f = 0 and the two
            // hemispheres are the cells.
            if cells {
                for side in [1.0, -1.0] {
                    self.cell(p, &normal, side, None, None);
                }
            }
            return;
        }
        let count = self.events.len();
        for k in 0..count {
            let event = self.events[k];
            let crossing = event.crossing as usize;
            self.update(p, crossing, if event.enter { 1.0 } else { -1.0 });
            let start = event.angle;
            let end = if k + 1 < count {
                self.events[k + 1].angle
            } else {
                self.events[0].angle + TAU
            };

            // The vertex at `start` lies in the closure of the arc that follows it.
            let (cos, sin) = (start.cos(), start.sin());
            let vertex_sq = self.circle_form(cos, sin);
            self.candidates += 1;
            if vertex_sq > self.best.sq {
                self.best.offer(vertex_sq, on_circle(&u1, &u2, cos, sin));
            }

            // The arc (start, end): f² = (cos, sin) Cᵀ C (cos, sin)ᵀ, maximal at angle ψ
            // with 2ψ = atan2(2q, p − r) for CᵀC = [[p, q], [q, r]].
            let (pp, qq, rr) = gram2(&self.b_circle);
            let arc_sq = 0.5 * (pp + rr) + (0.5 * (pp - rr)).hypot(qq);
            self.candidates += 2;
            if arc_sq > self.best.sq {
                let psi = 0.5 * (2.0 * qq).atan2(pp - rr);
                for angle in [psi, psi + PI] {
                    let at = start + (angle - start).rem_euclid(TAU);
                    if at <= end {
                        self.best
                            .offer(arc_sq, on_circle(&u1, &u2, at.cos(), at.sin()));
                    }
                }
            }

            if cells {
                // The rows crossing at the arc's ends bound its cells: the one at `start`
                // is active on the arc iff it entered there, the one at `end` iff it leaves.
                let here = self.crossings[crossing].0;
                let next = self.events[(k + 1) % count];
                let there = self.crossings[next.crossing as usize].0;
                let walls = [
                    (here, if event.enter { 1.0 } else { -1.0 }),
                    (there, if next.enter { -1.0 } else { 1.0 }),
                ];
                for side in [1.0, -1.0] {
                    self.cell(p, &normal, side, Some(walls[0]), Some(walls[1]));
                }
            }
        }
    }

    /// B += sign·zᵢxᵢᵀ and C += sign·zᵢ(aᵢ, bᵢ) for crossing `k`.
    fn update(&mut self, p: &Packed, k: usize, sign: f64) {
        let (i, a, b) = self.crossings[k];
        p.add_outer(&mut self.b, i, sign);
        for (crow, za) in self.b_circle.chunks_exact_mut(2).zip(p.z_row(i)) {
            crow[0] += sign * za * a;
            crow[1] += sign * za * b;
        }
    }

    /// ‖C (cos, sin)ᵀ‖².
    fn circle_form(&self, cos: f64, sin: f64) -> f64 {
        self.b_circle
            .chunks_exact(2)
            .map(|r| {
                let s = r[0] * cos + r[1] * sin;
                s * s
            })
            .sum()
    }

    /// The cell on side `side` (sign of normalᵀw) of the current arc: its top eigenvector,
    /// kept for a true evaluation if its quadratic value could beat the best and it is not
    /// outside one of the known walls (row, required sign).
    fn cell(
        &mut self,
        p: &Packed,
        normal: &[f64; 3],
        side: f64,
        wall_a: Option<(usize, f64)>,
        wall_b: Option<(usize, f64)>,
    ) {
        self.candidates += 1;
        let extra = if side > 0.0 {
            &self.b_plus
        } else {
            &self.b_minus
        };
        for ((s, b), e) in self.b_side.iter_mut().zip(&self.b).zip(extra) {
            *s = b + e;
        }
        // λ_max(M) ≤ trace(M) = ‖B‖²_F: most cells stop here.
        let frobenius_sq: f64 = self.b_side.iter().map(|a| a * a).sum();
        if frobenius_sq <= self.best.sq {
            return;
        }
        let (mut e, top) = if p.c == 1 {
            // M = bbᵀ: the top eigenvector is b itself.
            let b = [self.b_side[0], self.b_side[1], self.b_side[2]];
            let norm = dot3(&b, &b).sqrt();
            ([b[0] / norm, b[1] / norm, b[2] / norm], frobenius_sq)
        } else {
            top_eigen3(&gram3(&self.b_side))
        };
        if top <= self.best.sq {
            return;
        }
        if side * dot3(normal, &e) < 0.0 {
            e = [-e[0], -e[1], -e[2]];
        }
        for (row, sign) in [wall_a, wall_b].into_iter().flatten() {
            if sign * dot3(&p.x[row], &e) < -WALL_TOLERANCE {
                return;
            }
        }
        self.lazy.push((top, e));
        if self.lazy.len() >= LAZY_CAPACITY {
            self.flush(p);
        }
    }

    /// Evaluates the held cell candidates, largest bound first, until none can beat the
    /// best. One inside its cell has the true value equal to its bound, so it stops the
    /// loop; one outside is evaluated at its true (feasible) value.
    fn flush(&mut self, p: &Packed) {
        self.lazy.sort_by(|a, b| b.0.total_cmp(&a.0));
        for k in 0..self.lazy.len() {
            let (bound, e) = self.lazy[k];
            if bound <= self.best.sq {
                break;
            }
            let value_sq = p.value_sq(&e, &mut self.y);
            self.best.offer(value_sq, e);
        }
        self.lazy.clear();
    }

    fn finish(mut self, p: &Packed) -> ([f64; 3], u64) {
        self.flush(p);
        (self.best.w, self.candidates)
    }
}

/// An orthonormal basis (u₁, u₂) of normal^⊥ (normal unit). For normal = e₃ it is (e₁, e₂),
/// so the d = 2 sweep runs in the plane's own coordinates.
fn circle_basis(normal: &[f64; 3]) -> ([f64; 3], [f64; 3]) {
    // Start from the coordinate axis least aligned with the normal.
    let axis = (0..3)
        .min_by(|&a, &b| normal[a].abs().total_cmp(&normal[b].abs()))
        .unwrap_or(0);
    let mut u1 = [0.0; 3];
    u1[axis] = 1.0;
    let along = dot3(&u1, normal);
    for (u, n) in u1.iter_mut().zip(normal) {
        *u -= along * n;
    }
    let norm = dot3(&u1, &u1).sqrt();
    for u in &mut u1 {
        *u /= norm;
    }
    let u2 = [
        normal[1] * u1[2] - normal[2] * u1[1],
        normal[2] * u1[0] - normal[0] * u1[2],
        normal[0] * u1[1] - normal[1] * u1[0],
    ];
    (u1, u2)
}

fn on_circle(u1: &[f64; 3], u2: &[f64; 3], cos: f64, sin: f64) -> [f64; 3] {
    [
        cos * u1[0] + sin * u2[0],
        cos * u1[1] + sin * u2[1],
        cos * u1[2] + sin * u2[2],
    ]
}

/// CᵀC = [[p, q], [q, r]] for C (c×2, row-major).
fn gram2(c: &[f64]) -> (f64, f64, f64) {
    c.chunks_exact(2).fold((0.0, 0.0, 0.0), |(p, q, r), row| {
        (
            p + row[0] * row[0],
            q + row[0] * row[1],
            r + row[1] * row[1],
        )
    })
}

/// BᵀB for B (c×3, row-major).
fn gram3(b: &[f64]) -> [[f64; 3]; 3] {
    let mut m = [[0.0; 3]; 3];
    for row in b.chunks_exact(3) {
        for (a, ma) in m.iter_mut().enumerate() {
            for (bb, mab) in ma.iter_mut().enumerate() {
                *mab += row[a] * row[bb];
            }
        }
    }
    m
}

/// The top eigenpair (unit vector, eigenvalue) of a symmetric 3×3 matrix by cyclic Jacobi
/// rotations: robust for the zero matrix and repeated eigenvalues (any unit vector of the top
/// eigenspace is returned).
fn top_eigen3(m: &[[f64; 3]; 3]) -> ([f64; 3], f64) {
    let mut a = *m;
    let mut v = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    for _ in 0..32 {
        let off = a[0][1] * a[0][1] + a[0][2] * a[0][2] + a[1][2] * a[1][2];
        let diagonal = a[0][0] * a[0][0] + a[1][1] * a[1][1] + a[2][2] * a[2][2];
        if off <= 1e-32 * diagonal || off == 0.0 {
            break;
        }
        for (p, q) in [(0, 1), (0, 2), (1, 2)] {
            let apq = a[p][q];
            if apq == 0.0 {
                continue;
            }
            // The rotation that zeroes a[p][q] (Numerical Recipes' `jacobi`, smaller angle).
            let theta = (a[q][q] - a[p][p]) / (2.0 * apq);
            let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
            let cos = 1.0 / (t * t + 1.0).sqrt();
            let sin = t * cos;
            a[p][p] -= t * apq;
            a[q][q] += t * apq;
            a[p][q] = 0.0;
            a[q][p] = 0.0;
            let r = 3 - p - q;
            let (arp, arq) = (a[r][p], a[r][q]);
            a[r][p] = cos * arp - sin * arq;
            a[p][r] = a[r][p];
            a[r][q] = sin * arp + cos * arq;
            a[q][r] = a[r][q];
            for row in &mut v {
                let (vp, vq) = (row[p], row[q]);
                row[p] = cos * vp - sin * vq;
                row[q] = sin * vp + cos * vq;
            }
        }
    }
    let top = (0..3)
        .max_by(|&i, &j| a[i][i].total_cmp(&a[j][j]))
        .unwrap_or(0);
    let e = [v[0][top], v[1][top], v[2][top]];
    let norm = dot3(&e, &e).sqrt();
    ([e[0] / norm, e[1] / norm, e[2] / norm], a[top][top])
}

// ---------------------------------------------------------------------------------------
// Heuristic, any d.

/// Iterations of the pattern map per start, and of the gradient polish.
const PATTERN_ITERATIONS: usize = 100;
const POLISH_ITERATIONS: usize = 200;

/// The best direction found from the given starts (zero or non-finite ones skipped) and the
/// number of directions evaluated.
fn pattern_power(
    x: ArrayView2<'_, f64>,
    z: ArrayView2<'_, f64>,
    starts: &[Array1<f64>],
) -> (Array1<f64>, u64) {
    let d = x.ncols();
    let mut best = (unit_vector(d), value_at(x, z, unit_vector(d).view()));
    let mut evaluated = 1u64;
    for start in starts {
        let norm = start.dot(start).sqrt();
        if !(norm > 0.0 && norm.is_finite()) {
            continue;
        }
        let mut w = start / norm;
        let mut start_best = (w.clone(), f64::NEG_INFINITY);
        let mut seen = HashSet::new();
        for _ in 0..PATTERN_ITERATIONS {
            let xw = x.dot(&w);
            let b = pattern_matrix(x, z, &xw);
            let value = b.dot(&w).dot(&b.dot(&w)).sqrt();
            evaluated += 1;
            if value > start_best.1 {
                start_best = (w.clone(), value);
            }
            if !seen.insert(pattern_hash(&xw)) {
                break;
            }
            let Some(e) = top_right_singular_vector(b.view()) else {
                break;
            };
            // The sign under which more of the rows keep their side of the pattern.
            let xe = x.dot(&e);
            let agree = xw
                .iter()
                .zip(&xe)
                .filter(|(s, t)| (**s > 0.0) == (**t > 0.0))
                .count();
            let disagree = xw
                .iter()
                .zip(&xe)
                .filter(|(s, t)| (**s > 0.0) == (**t < 0.0))
                .count();
            w = if disagree > agree { -e } else { e };
        }
        let (w, value, steps) = refine(x, z, start_best.0);
        evaluated += steps;
        if value > best.1 {
            best = (w, value);
        }
    }
    (best.0, evaluated)
}

/// Rows within this angle (in |x̂ᵢᵀw|) of a point are candidates for the face step.
const FACE_NEAR: f64 = 1e-2;
/// Rounds of polish and face step.
const FACE_ROUNDS: usize = 20;

/// Gradient polish, then the face step, until neither improves. The polish stalls at a
/// kink, where f is largest on a boundary xᵢᵀw = 0 (a point with zᵢ pulling the other way
/// becoming active): it zigzags across. The face step jumps to the top eigenvector of the
/// pattern's form restricted to the boundaries of the k nearest rows (k < d), which is that
/// maximizer when the face is right (the arcs of the exact enumeration, in any d). Only true
/// improvements are accepted.
fn refine(
    x: ArrayView2<'_, f64>,
    z: ArrayView2<'_, f64>,
    w: Array1<f64>,
) -> (Array1<f64>, f64, u64) {
    let d = x.ncols();
    let (mut w, mut value, mut evaluations) = polish(x, z, w);
    let row_norms: Vec<f64> = x.outer_iter().map(|r| r.dot(&r).sqrt()).collect();
    for _ in 0..FACE_ROUNDS {
        let xw = x.dot(&w);
        let mut near: Vec<(f64, usize)> = xw
            .iter()
            .zip(&row_norms)
            .enumerate()
            .filter(|(_, (_, norm))| **norm > 0.0)
            .map(|(i, (s, norm))| (s.abs() / norm, i))
            .filter(|(angle, _)| *angle < FACE_NEAR)
            .collect();
        near.sort_by(|a, b| a.0.total_cmp(&b.0));
        near.truncate(d.saturating_sub(1));
        let mut improved = None;
        // The face of the k nearest boundaries: orthonormal Q (rows) of those rows, the
        // pattern without them, and the top eigenvector of Π M_S Π with Π = I − QᵀQ.
        let mut basis: Vec<Array1<f64>> = Vec::new();
        let mut face_rows = Vec::new();
        for &(_, i) in &near {
            let mut q = x.row(i).to_owned();
            for _ in 0..2 {
                for b in &basis {
                    let along = b.dot(&q);
                    q.scaled_add(-along, b);
                }
            }
            let norm = q.dot(&q).sqrt();
            if norm.partial_cmp(&(1e-8 * row_norms[i])) != Some(std::cmp::Ordering::Greater) {
                continue;
            }
            basis.push(q / norm);
            face_rows.push(i);
            let mut face_xw = xw.clone();
            for &k in &face_rows {
                face_xw[k] = 0.0;
            }
            let mut b = pattern_matrix(x, z, &face_xw);
            for q in &basis {
                let bq = b.dot(q);
                for (mut row, s) in b.outer_iter_mut().zip(&bq) {
                    row.scaled_add(-s, q);
                }
            }
            let Some(mut e) = top_right_singular_vector(b.view()) else {
                continue;
            };
            if e.dot(&w) < 0.0 {
                e = -e;
            }
            let trial = value_at(x, z, e.view());
            evaluations += 1;
            if trial > value * (1.0 + 1e-15) {
                improved = Some(e);
                break;
            }
        }
        let Some(e) = improved else {
            break;
        };
        let (polished, polished_value, steps) = polish(x, z, e);
        evaluations += steps;
        w = polished;
        value = polished_value;
    }
    (w, value, evaluations)
}

/// Projected gradient ascent of f² on the sphere, step by backtracking; returns the point,
/// f there and the number of evaluations.
fn polish(
    x: ArrayView2<'_, f64>,
    z: ArrayView2<'_, f64>,
    mut w: Array1<f64>,
) -> (Array1<f64>, f64, u64) {
    let mut evaluations = 0;
    let mut step = f64::NAN;
    let mut value_sq = f64::NAN;
    for _ in 0..POLISH_ITERATIONS {
        let xw = x.dot(&w);
        let b = pattern_matrix(x, z, &xw);
        let y = b.dot(&w);
        value_sq = y.dot(&y);
        evaluations += 1;
        let gradient = b.t().dot(&y) * 2.0;
        let radial = gradient.dot(&w);
        let tangent = &gradient - &(&w * radial);
        let tangent_sq = tangent.dot(&tangent);
        if tangent_sq.partial_cmp(&(1e-28 * value_sq * value_sq))
            != Some(std::cmp::Ordering::Greater)
        {
            break;
        }
        if !step.is_finite() {
            // A first step of the order of the inverse curvature ‖M_S‖ ≤ ‖B‖²_F.
            step = 1.0 / b.iter().map(|a| a * a).sum::<f64>().max(f64::MIN_POSITIVE);
        } else {
            step *= 2.0;
        }
        let mut accepted = false;
        for _ in 0..60 {
            let mut trial = &w + &(&tangent * step);
            let norm = trial.dot(&trial).sqrt();
            trial /= norm;
            let trial_value = value_at(x, z, trial.view());
            evaluations += 1;
            if trial_value * trial_value >= value_sq + 1e-4 * step * tangent_sq {
                w = trial;
                accepted = true;
                break;
            }
            step *= 0.5;
        }
        if !accepted {
            break;
        }
    }
    let value = if value_sq.is_finite() {
        value_at(x, z, w.view())
    } else {
        0.0
    };
    (w, value, evaluations)
}

/// B_S = Zᵀ D_S X (c×d) for the pattern S = {i : (Xw)ᵢ > 0}.
fn pattern_matrix(x: ArrayView2<'_, f64>, z: ArrayView2<'_, f64>, xw: &Array1<f64>) -> Array2<f64> {
    let mut b = Array2::zeros((z.ncols(), x.ncols()));
    for ((xi, zi), s) in x.outer_iter().zip(z.outer_iter()).zip(xw) {
        if *s > 0.0 {
            for (mut brow, za) in b.outer_iter_mut().zip(zi) {
                brow.scaled_add(*za, &xi);
            }
        }
    }
    b
}

fn pattern_hash(xw: &Array1<f64>) -> u64 {
    let mut hasher = DefaultHasher::new();
    for s in xw {
        (*s > 0.0).hash(&mut hasher);
    }
    hasher.finish()
}

/// The top right singular vector of B (c×d), i.e. the top eigenvector of BᵀB; `None` when B
/// is zero or the SVD fails.
fn top_right_singular_vector(b: ArrayView2<'_, f64>) -> Option<Array1<f64>> {
    if b.iter().all(|a| *a == 0.0) {
        return None;
    }
    if b.nrows() == 1 {
        let row = b.row(0).to_owned();
        let norm = row.dot(&row).sqrt();
        return Some(row / norm);
    }
    let (_, _, v) = linalg::thin_svd(b)?;
    let e = v.column(0).to_owned();
    let norm = e.dot(&e).sqrt();
    (norm > 0.0 && norm.is_finite()).then(|| e / norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::Synth;
    use ndarray::{array, s};

    fn instance(seed: u64, n: usize, d: usize, c: usize) -> (Array2<f64>, Array2<f64>) {
        let mut synth = Synth::new(seed);
        (synth.normal(n, d), synth.normal(n, c))
    }

    fn rel_diff(a: f64, b: f64) -> f64 {
        (a - b).abs() / a.abs().max(b.abs()).max(f64::MIN_POSITIVE)
    }

    fn unit(w: Array1<f64>) -> Array1<f64> {
        let norm = w.dot(&w).sqrt();
        w / norm
    }

    fn cross(a: ArrayView1<'_, f64>, b: ArrayView1<'_, f64>) -> Array1<f64> {
        array![
            a[1] * b[2] - a[2] * b[1],
            a[2] * b[0] - a[0] * b[2],
            a[0] * b[1] - a[1] * b[0]
        ]
    }

    /// The maximum over the candidate set built from *every subset* of rows (not only the
    /// realizable patterns): ± the top eigenvector of M_S, for d = 3 of its restriction to
    /// each xⱼ^⊥, and the vertices; each candidate valued by the true f. Independent of the
    /// sweeps (no arrangement, no angles), exponential in N.
    fn brute_force(x: ArrayView2<'_, f64>, z: ArrayView2<'_, f64>) -> f64 {
        let (n, d) = x.dim();
        let mut best: f64 = 0.0;
        let mut consider = |w: &Array1<f64>| {
            let norm = w.dot(w).sqrt();
            if norm > 0.0 {
                for sign in [1.0, -1.0] {
                    best = best.max(value_at(x, z, (w * (sign / norm)).view()));
                }
            }
        };
        // Vertices.
        for j in 0..n {
            if d == 2 {
                consider(&array![-x[(j, 1)], x[(j, 0)]]);
            }
            if d == 3 {
                for k in j + 1..n {
                    consider(&cross(x.row(j), x.row(k)));
                }
            }
        }
        for subset in 0u32..1 << n {
            let mut b = Array2::<f64>::zeros((z.ncols(), d));
            for i in (0..n).filter(|i| subset >> i & 1 == 1) {
                for a in 0..z.ncols() {
                    for col in 0..d {
                        b[(a, col)] += z[(i, a)] * x[(i, col)];
                    }
                }
            }
            if let Some(e) = top_right_singular_vector(b.view()) {
                consider(&e);
            }
            if d == 3 {
                for j in 0..n {
                    // An orthonormal basis of xⱼ^⊥ by Gram–Schmidt from two axes.
                    let xj = unit(x.row(j).to_owned());
                    let axis = if xj[0].abs() < 0.9 { 0 } else { 1 };
                    let mut p1 = Array1::zeros(3);
                    p1[axis] = 1.0;
                    let p1 = unit(&p1 - &(&xj * xj[axis]));
                    let p2 = cross(xj.view(), p1.view());
                    let mut basis = Array2::zeros((3, 2));
                    basis.column_mut(0).assign(&p1);
                    basis.column_mut(1).assign(&p2);
                    if let Some(e) = top_right_singular_vector(b.dot(&basis).view()) {
                        consider(&basis.dot(&e));
                    }
                }
            }
        }
        best
    }

    /// f on rows given as flat slices (fast, for the dense oracles).
    struct Flat {
        x: Vec<f64>,
        z: Vec<f64>,
        d: usize,
        c: usize,
    }

    impl Flat {
        fn new(x: &Array2<f64>, z: &Array2<f64>) -> Flat {
            Flat {
                x: x.iter().copied().collect(),
                z: z.iter().copied().collect(),
                d: x.ncols(),
                c: z.ncols(),
            }
        }

        /// f(w)² and, into `gradient` when given, its gradient 2 B_Sᵀ B_S w.
        fn value_sq(&self, w: &[f64], gradient: Option<&mut [f64]>) -> f64 {
            let mut y = [0.0; 8];
            let y = &mut y[..self.c];
            for (xi, zi) in self.x.chunks_exact(self.d).zip(self.z.chunks_exact(self.c)) {
                let s: f64 = xi.iter().zip(w).map(|(a, b)| a * b).sum();
                if s > 0.0 {
                    for (ya, za) in y.iter_mut().zip(zi) {
                        *ya += s * za;
                    }
                }
            }
            if let Some(g) = gradient {
                g.fill(0.0);
                for (xi, zi) in self.x.chunks_exact(self.d).zip(self.z.chunks_exact(self.c)) {
                    let s: f64 = xi.iter().zip(w).map(|(a, b)| a * b).sum();
                    if s > 0.0 {
                        let zy: f64 = zi.iter().zip(y.iter()).map(|(a, b)| a * b).sum();
                        for (ga, xa) in g.iter_mut().zip(xi) {
                            *ga += 2.0 * zy * xa;
                        }
                    }
                }
            }
            y.iter().map(|a| a * a).sum()
        }
    }

    fn normalize3(w: [f64; 3]) -> [f64; 3] {
        let norm = dot3(&w, &w).sqrt();
        [w[0] / norm, w[1] / norm, w[2] / norm]
    }

    /// A few steps of projected gradient ascent of f² on the sphere with backtracking.
    fn gradient_steps(f: &Flat, mut w: [f64; 3], steps: usize) -> ([f64; 3], f64) {
        let mut g = [0.0; 3];
        let mut value = f.value_sq(&w, Some(&mut g));
        let mut step = 0.1 / value.max(1e-12);
        for _ in 0..steps {
            let radial = dot3(&g, &w);
            let t = [
                g[0] - radial * w[0],
                g[1] - radial * w[1],
                g[2] - radial * w[2],
            ];
            let t_sq = dot3(&t, &t);
            let mut moved = false;
            for _ in 0..20 {
                let trial =
                    normalize3([w[0] + step * t[0], w[1] + step * t[1], w[2] + step * t[2]]);
                let trial_value = f.value_sq(&trial, None);
                if trial_value >= value + 1e-4 * step * t_sq {
                    w = trial;
                    moved = true;
                    break;
                }
                step *= 0.5;
            }
            if !moved {
                break;
            }
            value = f.value_sq(&w, Some(&mut g));
            step *= 2.0;
        }
        (w, value)
    }

    /// Derivative-free local refinement that copes with kinks: the best of a (2k+1)² grid
    /// of radius h in the tangent plane; shrink h when the center wins.
    fn zoom3(f: &Flat, mut w: [f64; 3]) -> f64 {
        let mut value = f.value_sq(&w, None);
        let mut h = 0.02;
        let k = 5;
        for _ in 0..2000 {
            if h < 1e-12 {
                break;
            }
            let (t1, t2) = circle_basis(&w);
            let mut best = (value, w);
            for a in -k..=k {
                for b in -k..=k {
                    let (sa, sb) = (h * a as f64 / k as f64, h * b as f64 / k as f64);
                    let trial = normalize3([
                        w[0] + sa * t1[0] + sb * t2[0],
                        w[1] + sa * t1[1] + sb * t2[1],
                        w[2] + sa * t1[2] + sb * t2[2],
                    ]);
                    let v = f.value_sq(&trial, None);
                    if v > best.0 {
                        best = (v, trial);
                    }
                }
            }
            if best.0 > value {
                (value, w) = best;
            } else {
                h /= 3.0;
            }
        }
        value.sqrt()
    }

    /// Dense oracle for d = 3: a Fibonacci sphere of `points` directions, each moved by a
    /// few gradient steps, then the best few refined by `zoom3`.
    fn sphere_oracle(x: &Array2<f64>, z: &Array2<f64>, points: usize) -> f64 {
        let f = Flat::new(x, z);
        let golden = PI * (3.0 - 5f64.sqrt());
        let mut found: Vec<(f64, [f64; 3])> = (0..points)
            .map(|k| {
                let height = 1.0 - (2 * k + 1) as f64 / points as f64;
                let radius = (1.0 - height * height).sqrt();
                let phi = golden * k as f64;
                let (w, v) =
                    gradient_steps(&f, [radius * phi.cos(), radius * phi.sin(), height], 3);
                (v, w)
            })
            .collect();
        found.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut best: f64 = found[0].0.sqrt();
        let mut refined: Vec<[f64; 3]> = Vec::new();
        for (_, w) in found {
            if refined.len() == 8 {
                break;
            }
            // Distinct local maxima only.
            if refined.iter().any(|r| dot3(r, &w) > 1.0 - 1e-4) {
                continue;
            }
            refined.push(w);
            best = best.max(zoom3(&f, w));
        }
        best
    }

    /// Dense oracle for d = 2: `points` angles, the best few refined by a 1-D zoom grid.
    fn circle_oracle(x: &Array2<f64>, z: &Array2<f64>, points: usize) -> f64 {
        let f = Flat::new(x, z);
        let at = |phi: f64| f.value_sq(&[phi.cos(), phi.sin()], None);
        let mut found: Vec<(f64, f64)> = (0..points)
            .map(|k| {
                let phi = TAU * k as f64 / points as f64;
                (at(phi), phi)
            })
            .collect();
        found.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut best: f64 = found[0].0.sqrt();
        let mut refined: Vec<f64> = Vec::new();
        for (mut value, mut phi) in found {
            if refined.len() == 8 {
                break;
            }
            if refined.iter().any(|r| (r - phi).abs() < 1e-3) {
                continue;
            }
            refined.push(phi);
            let mut h = 2.0 * TAU / points as f64;
            while h > 1e-14 {
                let (v, p) = (-10..=10)
                    .map(|k| {
                        let p = phi + h * k as f64 / 10.0;
                        (at(p), p)
                    })
                    .fold((value, phi), |b, t| if t.0 > b.0 { t } else { b });
                if v > value {
                    (value, phi) = (v, p);
                } else {
                    h /= 3.0;
                }
            }
            best = best.max(value.sqrt());
        }
        best
    }

    fn assert_solution(x: &Array2<f64>, z: &Array2<f64>, polar: &ReluPolar) {
        let at_w = value_at(x.view(), z.view(), polar.w.view());
        assert!(
            rel_diff(at_w, polar.value) < 1e-12,
            "value {} but f(w) = {at_w}",
            polar.value
        );
        assert!((polar.w.dot(&polar.w) - 1.0).abs() < 1e-12, "w not unit");
        assert!((polar.v.dot(&polar.v) - 1.0).abs() < 1e-12, "v not unit");
        // v attains the value: vᵀ Zᵀ relu(Xw) = f(w).
        let y = output_direction(x.view(), z.view(), polar.w.view());
        assert!(rel_diff(polar.v.dot(&y), polar.value) < 1e-12);
    }

    #[test]
    fn one_point_is_the_product_of_norms() {
        let x = array![[3.0, -4.0, 0.0]];
        let z = array![[1.0, 2.0]];
        let polar = relu_polar(x.view(), z.view(), 0, 0, &[]).unwrap();
        assert!(polar.exact && polar.note.is_none());
        assert!((polar.value - 5.0 * 5f64.sqrt()).abs() < 1e-12);
        let w_expected = array![0.6, -0.8, 0.0];
        assert!((&polar.w - &w_expected).iter().all(|a| a.abs() < 1e-12));
        let v_expected = array![1.0, 2.0] / 5f64.sqrt();
        assert!((&polar.v - &v_expected).iter().all(|a| a.abs() < 1e-12));
        // The same in d = 2 and d = 1.
        for x in [array![[3.0, -4.0]], array![[-5.0]]] {
            let polar = relu_polar(x.view(), z.view(), 0, 0, &[]).unwrap();
            assert!((polar.value - 5.0 * 5f64.sqrt()).abs() < 1e-12);
            assert_solution(&x, &z, &polar);
        }
    }

    #[test]
    fn one_dimension_picks_the_better_side() {
        // f(1) = |1·1 + 3·(−2)| = 5, f(−1) = |2·1| = 2.
        let x = array![[1.0], [-2.0], [3.0], [0.0]];
        let z = array![[1.0], [1.0], [-2.0], [100.0]];
        let polar = relu_polar(x.view(), z.view(), 0, 0, &[]).unwrap();
        assert!((polar.value - 5.0).abs() < 1e-12);
        assert_eq!(polar.w, array![1.0]);
        assert_eq!(polar.v, array![-1.0]);
        let z2 = array![[0.0, 1.0], [3.0, 0.0], [0.0, 0.0], [7.0, 7.0]];
        // f(1) = ‖(0, 1)‖ = 1, f(−1) = ‖(6, 0)‖ = 6.
        let polar = relu_polar(x.view(), z2.view(), 0, 0, &[]).unwrap();
        assert!((polar.value - 6.0).abs() < 1e-12);
        assert_eq!(polar.w, array![-1.0]);
        assert_solution(&x, &z2, &polar);
    }

    #[test]
    fn matches_brute_force_on_small_instances() {
        // c = 1 is the classic closed form (w = ±X_SᵀD_S z/‖·‖ per subset, plus faces).
        for seed in 0..12 {
            for (d, c) in [(2, 1), (2, 2), (3, 1), (3, 2)] {
                let (x, z) = instance(100 + seed, 7, d, c);
                let polar = relu_polar(x.view(), z.view(), 0, 0, &[]).unwrap();
                let brute = brute_force(x.view(), z.view());
                assert!(polar.exact);
                assert!(
                    rel_diff(polar.value, brute) < 1e-12,
                    "seed {seed} d {d} c {c}: enumeration {} vs brute force {brute}",
                    polar.value
                );
                assert_solution(&x, &z, &polar);
            }
        }
    }

    #[test]
    fn degenerate_rows_match_brute_force() {
        // Repeated, opposite and zero rows (coincident planes), and a rank-one X.
        let (x0, z) = instance(7, 8, 3, 2);
        let mut x = x0.clone();
        x.row_mut(1).assign(&(&x0.row(0) * 2.0));
        x.row_mut(2).assign(&(&x0.row(0) * -0.5));
        x.row_mut(3).fill(0.0);
        x.row_mut(5).assign(&x0.row(4));
        let polar = relu_polar(x.view(), z.view(), 0, 0, &[]).unwrap();
        assert!(rel_diff(polar.value, brute_force(x.view(), z.view())) < 1e-12);
        assert_solution(&x, &z, &polar);
        let rank_one = Array2::from_shape_fn((6, 3), |(i, k)| {
            [1.0, -2.0, 0.5, 3.0, -1.0, 0.0][i] * [0.3, -0.4, 1.2][k]
        });
        let (_, z) = instance(8, 6, 3, 2);
        let polar = relu_polar(rank_one.view(), z.view(), 0, 0, &[]).unwrap();
        assert!(rel_diff(polar.value, brute_force(rank_one.view(), z.view())) < 1e-12);
        assert_solution(&rank_one, &z, &polar);
        // d = 2 with a repeated and an opposite row.
        let (x0, z) = instance(9, 7, 2, 3);
        let mut x = x0.clone();
        x.row_mut(1).assign(&x0.row(0));
        x.row_mut(2).assign(&(&x0.row(0) * -1.0));
        let polar = relu_polar(x.view(), z.view(), 0, 0, &[]).unwrap();
        assert!(rel_diff(polar.value, brute_force(x.view(), z.view())) < 1e-12);
    }

    #[test]
    fn d2_equals_the_dense_circle_maximum() {
        for seed in 0..4 {
            for c in [1, 3] {
                let (x, z) = instance(200 + seed, 60, 2, c);
                let polar = relu_polar(x.view(), z.view(), 0, 0, &[]).unwrap();
                let sampled = circle_oracle(&x, &z, 100_000);
                assert!(
                    polar.value >= sampled * (1.0 - 1e-12),
                    "seed {seed} c {c}: enumeration {} below a sampled value {sampled}",
                    polar.value
                );
                assert!(
                    rel_diff(polar.value, sampled) < 1e-6,
                    "seed {seed} c {c}: enumeration {} vs sampled {sampled}",
                    polar.value
                );
                assert_solution(&x, &z, &polar);
            }
        }
    }

    #[test]
    fn d3_equals_the_dense_sphere_maximum() {
        for seed in 0..3 {
            for c in [1, 2] {
                let (x, z) = instance(300 + seed, 40, 3, c);
                let polar = relu_polar(x.view(), z.view(), 0, 0, &[]).unwrap();
                let sampled = sphere_oracle(&x, &z, 200_000);
                assert!(
                    polar.value >= sampled * (1.0 - 1e-12),
                    "seed {seed} c {c}: enumeration {} below a sampled value {sampled}",
                    polar.value
                );
                assert!(
                    rel_diff(polar.value, sampled) < 1e-6,
                    "seed {seed} c {c}: enumeration {} vs sampled {sampled}",
                    polar.value
                );
                assert_solution(&x, &z, &polar);
            }
        }
    }

    /// Z as a ReLU fit's residual would look: one neuron's output per column, plus noise.
    fn teacher_instance(seed: u64, n: usize, d: usize, c: usize) -> (Array2<f64>, Array2<f64>) {
        let (x, noise) = instance(seed, n, d, c);
        let neuron = unit(Synth::new(seed + 1).normal(d, 1).column(0).to_owned());
        let hidden = x.dot(&neuron).mapv(|a| a.max(0.0));
        let mut z = noise * 0.1;
        for (k, mut column) in z.columns_mut().into_iter().enumerate() {
            column.scaled_add(1.0 + k as f64, &hidden);
        }
        (x, z)
    }

    #[test]
    fn heuristic_finds_the_exact_value_on_easy_instances() {
        // Easy: a dominant neuron in Z. On plain Gaussian Z, 16 starts miss the global
        // maximum (by 1e-5 to 2e-3) on about one instance in ten.
        for seed in 0..6 {
            let (x, z) = teacher_instance(400 + seed, 40, 3, 1 + seed as usize % 3);
            let exact = relu_polar(x.view(), z.view(), 0, 0, &[]).unwrap();
            // A cap of 0 forces the heuristic.
            let heuristic = solve_with_cap(x.view(), z.view(), 16, seed, &[], 0).unwrap();
            assert!(exact.exact && !heuristic.exact);
            assert!(heuristic.note.as_deref().unwrap().contains("> cap 0"));
            assert!(heuristic.value <= exact.value * (1.0 + 1e-12));
            assert!(
                rel_diff(heuristic.value, exact.value) < 1e-9,
                "seed {seed}: heuristic {} vs exact {}",
                heuristic.value,
                exact.value
            );
            assert_solution(&x, &z, &heuristic);
        }
    }

    #[test]
    fn four_dimensions_are_heuristic() {
        // A d = 3 instance rotated into d = 4: the same polar, found by the heuristic.
        let (x3, z) = instance(500, 40, 3, 2);
        let exact = relu_polar(x3.view(), z.view(), 0, 0, &[]).unwrap();
        let mut x4 = Array2::zeros((40, 4));
        x4.slice_mut(s![.., ..3]).assign(&x3);
        let (q, _, _) = linalg::thin_svd(Synth::new(501).normal(4, 4).view()).unwrap();
        let x4 = x4.dot(&q);
        let polar = relu_polar(x4.view(), z.view(), 16, 1, &[]).unwrap();
        assert!(!polar.exact);
        assert_eq!(polar.note.as_deref(), Some("d = 4 > 3: heuristic polar"));
        assert!(polar.value <= exact.value * (1.0 + 1e-12));
        assert!(rel_diff(polar.value, exact.value) < 1e-9);
        assert_solution(&x4, &z, &polar);
        // A warm start at the maximizer is kept.
        let warm = q.t().dot(&ndarray::concatenate![
            ndarray::Axis(0),
            exact.w,
            array![0.0]
        ]);
        let warmed = relu_polar(x4.view(), z.view(), 0, 1, &[warm]).unwrap();
        assert!(rel_diff(warmed.value, exact.value) < 1e-12);
    }

    #[test]
    fn cell_bound_and_cap() {
        assert_eq!(cell_count_bound(0, 3), Some(1));
        assert_eq!(cell_count_bound(5, 0), Some(1));
        assert_eq!(cell_count_bound(7, 1), Some(2));
        assert_eq!(cell_count_bound(7, 2), Some(14));
        assert_eq!(cell_count_bound(1, 3), Some(2));
        assert_eq!(cell_count_bound(40, 3), Some(40 * 39 + 2));
        // Beyond the dimension of the span the bound is 2ⁿ: 2·Σ_{i<n} C(n−1, i).
        assert_eq!(cell_count_bound(3, 10), Some(8));
        assert_eq!(cell_count_bound(usize::MAX, 4), None);
        assert_eq!(cell_count_bound(1000, 40), None);
        assert_eq!(cell_count_bound(2000, 3), Some(3_998_002));
        assert!(enumeration_applies(2000, 3));
        assert!(!enumeration_applies(2001, 3));
        assert!(enumeration_applies(2_000_000, 2));
        assert!(!enumeration_applies(2_000_001, 2));
        assert!(enumeration_applies(usize::MAX, 1));
        assert!(!enumeration_applies(5, 4));
        // Over the real cap: labelled, with the count.
        let (x, z) = instance(600, 2001, 3, 1);
        let polar = relu_polar(x.view(), z.view(), 2, 0, &[]).unwrap();
        assert!(!polar.exact);
        assert_eq!(
            polar.note.as_deref(),
            Some("d = 3 but 4002002 cells (N = 2001 nonzero rows) > cap 4000000: heuristic polar")
        );
        assert_solution(&x, &z, &polar);
        // The cap counts nonzero rows only: 5 rows, one zero, is 4·3 + 2 = 14 cells.
        let (mut x, z) = instance(601, 5, 3, 2);
        x.row_mut(2).fill(0.0);
        assert!(
            solve_with_cap(x.view(), z.view(), 0, 0, &[], 14)
                .unwrap()
                .exact
        );
        assert!(
            !solve_with_cap(x.view(), z.view(), 0, 0, &[], 13)
                .unwrap()
                .exact
        );
    }

    #[test]
    fn zero_and_empty_inputs_give_zero() {
        let cases: Vec<(Array2<f64>, Array2<f64>)> = vec![
            (Array2::zeros((0, 3)), Array2::zeros((0, 2))),
            (instance(1, 5, 3, 1).0, Array2::zeros((5, 0))),
            (Array2::zeros((5, 3)), instance(1, 5, 3, 2).1),
            (instance(1, 5, 3, 2).0, Array2::zeros((5, 2))),
            (Array2::zeros((5, 0)), instance(1, 5, 3, 2).1),
            (Array2::zeros((4, 6)), instance(1, 4, 2, 2).1),
        ];
        for (x, z) in cases {
            let polar = relu_polar(x.view(), z.view(), 3, 0, &[]).unwrap();
            assert_eq!(polar.value, 0.0);
            assert!(polar.exact);
            assert_eq!(polar.w.len(), x.ncols());
            assert_eq!(polar.v.len(), z.ncols());
            if x.ncols() > 0 {
                assert_eq!(polar.w.dot(&polar.w), 1.0);
            }
        }
        // f ≡ 0 without Z = 0: every row of Z is orthogonal... rather, no point is ever
        // active with a nonzero z: here z is zero on the only nonzero row.
        let x = array![[1.0, 0.0], [0.0, 0.0]];
        let z = array![[0.0], [5.0]];
        let polar = relu_polar(x.view(), z.view(), 0, 0, &[]).unwrap();
        assert_eq!(polar.value, 0.0);
        assert_eq!(polar.v, array![1.0]);
        assert_eq!(polar.w.dot(&polar.w), 1.0);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let (x, z) = instance(2, 5, 3, 2);
        assert_eq!(
            relu_polar(x.view(), z.slice(s![..4, ..]), 0, 0, &[]),
            Err(ReluPolarError::RowMismatch {
                x_rows: 5,
                z_rows: 4
            })
        );
        let mut bad = x.clone();
        bad[(1, 1)] = f64::NAN;
        assert_eq!(
            relu_polar(bad.view(), z.view(), 0, 0, &[]),
            Err(ReluPolarError::NonFinite("X"))
        );
        let mut bad = z.clone();
        bad[(0, 0)] = f64::INFINITY;
        assert_eq!(
            relu_polar(x.view(), bad.view(), 0, 0, &[]),
            Err(ReluPolarError::NonFinite("Z"))
        );
        assert_eq!(
            relu_polar(x.view(), z.view(), 0, 0, &[array![1.0, 2.0]]),
            Err(ReluPolarError::WarmLength {
                index: 0,
                len: 2,
                d: 3
            })
        );
        assert_eq!(
            relu_polar(x.view(), z.view(), 0, 0, &[array![1.0, f64::NAN, 0.0]]),
            Err(ReluPolarError::NonFinite("a warm start"))
        );
        assert!(value_at(x.view(), z.view(), array![1.0, 0.0].view()).is_nan());
        // Zero warm starts are skipped, not divided by.
        let (x4, z4) = instance(3, 10, 5, 2);
        let polar = relu_polar(x4.view(), z4.view(), 0, 0, &[Array1::zeros(5)]).unwrap();
        assert_solution(&x4, &z4, &polar);
    }

    #[test]
    fn extreme_scales_do_not_overflow() {
        let (x, z) = instance(4, 30, 3, 2);
        let reference = relu_polar(x.view(), z.view(), 0, 0, &[]).unwrap();
        for (sx, sz) in [(1e150, 1e150), (1e-160, 1e-160), (1e300, 1.0)] {
            let polar = relu_polar((&x * sx).view(), (&z * sz).view(), 0, 0, &[]).unwrap();
            assert!(rel_diff(polar.value, reference.value * sx * sz) < 1e-12);
            assert!(rel_diff(polar.w.dot(&reference.w), 1.0) < 1e-12);
        }
    }

    #[test]
    fn values_and_second_layer_are_consistent() {
        for d in 1..=5 {
            for c in [1, 3] {
                let (x, z) = instance(700 + d as u64, 25, d, c);
                let polar = relu_polar(x.view(), z.view(), 4, 9, &[]).unwrap();
                assert_eq!(polar.exact, d <= 3);
                assert!(polar.value > 0.0 && polar.candidates > 0);
                assert_solution(&x, &z, &polar);
            }
        }
    }

    #[test]
    fn top_eigen3_is_robust() {
        let (e, top) = top_eigen3(&[[0.0; 3]; 3]);
        assert_eq!(top, 0.0);
        assert!((dot3(&e, &e) - 1.0).abs() < 1e-15);
        // A repeated top eigenvalue: any unit vector of the eigenspace.
        let (e, top) = top_eigen3(&[[3.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0]]);
        assert_eq!(top, 3.0);
        assert!(e[1].abs() < 1e-15);
        let (_, top) = top_eigen3(&[[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0]]);
        assert_eq!(top, 2.0);
        for seed in 0..20 {
            let b = Synth::new(seed).normal(3, 3);
            let m = b.t().dot(&b);
            let rows = [
                [m[(0, 0)], m[(0, 1)], m[(0, 2)]],
                [m[(1, 0)], m[(1, 1)], m[(1, 2)]],
                [m[(2, 0)], m[(2, 1)], m[(2, 2)]],
            ];
            let (e, top) = top_eigen3(&rows);
            let expected = linalg::largest_eigenvalue(m.view());
            assert!(rel_diff(top, expected) < 1e-13);
            let me = m.dot(&array![e[0], e[1], e[2]]);
            let residual = &me - &(array![e[0], e[1], e[2]] * top);
            assert!(residual.dot(&residual).sqrt() < 1e-12 * top);
        }
    }

    /// Timings (run with `--ignored --nocapture`, preferably `--release`).
    #[test]
    #[ignore]
    #[allow(clippy::print_stdout)]
    fn timing() {
        for (d, n, c) in [
            (2, 200, 1),
            (2, 200, 3),
            (3, 200, 1),
            (3, 200, 3),
            (3, 2000, 1),
            (3, 2000, 3),
        ] {
            let (x, z) = instance(800, n, d, c);
            let start = std::time::Instant::now();
            let polar = relu_polar(x.view(), z.view(), 0, 0, &[]).unwrap();
            let elapsed = start.elapsed();
            println!(
                "d = {d}, N = {n}, c = {c}: {:.3} ms, value {:.6}, {} candidates, exact {}",
                elapsed.as_secs_f64() * 1e3,
                polar.value,
                polar.candidates,
                polar.exact
            );
        }
    }
}
