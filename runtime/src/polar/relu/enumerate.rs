//! The exact enumeration of the ReLU polar for d ≤ 3 (see the parent module).

use super::*;
/// The nonzero rows for the enumeration, normalized (relu is positively homogeneous, so
/// zⱼ relu(xⱼᵀw) = (‖xⱼ‖ zⱼ) relu(x̂ⱼᵀw): unit rows make the angle tests well scaled), padded
/// to three coordinates, with Z's rows scaled to match, row-major.
pub(super) struct Packed {
    x: Vec<[f64; 3]>,
    z: Vec<f64>,
    c: usize,
}

impl Packed {
    pub(super) fn new(x: ArrayView2<'_, f64>, z: ArrayView2<'_, f64>) -> Packed {
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

    pub(super) fn z_row(&self, i: usize) -> &[f64] {
        &self.z[i * self.c..(i + 1) * self.c]
    }

    /// The true f(w)² (y: scratch of length c).
    pub(super) fn value_sq(&self, w: &[f64; 3], y: &mut [f64]) -> f64 {
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
    pub(super) fn add_outer(&self, b: &mut [f64], i: usize, sign: f64) {
        let xi = self.x[i];
        for (brow, za) in b.chunks_exact_mut(3).zip(self.z_row(i)) {
            let s = sign * za;
            brow[0] += s * xi[0];
            brow[1] += s * xi[1];
            brow[2] += s * xi[2];
        }
    }
}

pub(super) fn dot3(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// The best candidate so far, by f² (exact for the candidates offered to it).
pub(super) struct Best {
    sq: f64,
    w: [f64; 3],
}

impl Best {
    pub(super) fn offer(&mut self, sq: f64, w: [f64; 3]) {
        if sq > self.sq {
            self.sq = sq;
            self.w = w;
        }
    }
}

pub(super) fn enumerate_d1(p: &Packed) -> ([f64; 3], u64) {
    let mut y = vec![0.0; p.c];
    let plus = p.value_sq(&[1.0, 0.0, 0.0], &mut y);
    let minus = p.value_sq(&[-1.0, 0.0, 0.0], &mut y);
    let w = if minus > plus { -1.0 } else { 1.0 };
    ([w, 0.0, 0.0], 2)
}

/// d = 2: the circle of the plane itself, whose arcs are the cells.
pub(super) fn enumerate_d2(p: &Packed) -> ([f64; 3], u64) {
    let mut sweep = Sweep::new(p);
    sweep.circle(p, [0.0, 0.0, 1.0], None, false);
    sweep.finish(p)
}

/// d = 3: every distinct great circle xⱼ^⊥, with the cells on both sides of each arc.
pub(super) fn enumerate_d3(p: &Packed) -> ([f64; 3], u64) {
    let mut sweep = Sweep::new(p);
    for (j, xj) in p.x.iter().enumerate() {
        sweep.circle(p, *xj, Some(j), true);
    }
    sweep.finish(p)
}

/// Rows closer than this (in sin of the angle, rows being unit) to the circle's normal are
/// treated as parallel to it: their planes coincide with the circle's and they vanish on it.
pub(super) const PARALLEL_TOLERANCE: f64 = 1e-12;
/// How far outside a known wall of its cell a cell candidate may lie before it is dropped
/// without evaluation. A cell's maximizer strictly inside it passes; one within this of a
/// wall is matched to second order by the wall's arc candidate.
pub(super) const WALL_TOLERANCE: f64 = 1e-9;
/// Cell candidates held before their true values are evaluated.
pub(super) const LAZY_CAPACITY: usize = 1 << 15;

/// A row's boundary crossing on the current circle: at `angle` the row becomes active
/// (`enter`) or inactive.
#[derive(Clone, Copy)]
pub(super) struct Event {
    angle: f64,
    crossing: u32,
    enter: bool,
}

pub(super) struct Sweep {
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
    pub(super) fn new(p: &Packed) -> Sweep {
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
    pub(super) fn circle(&mut self, p: &Packed, normal: [f64; 3], own: Option<usize>, cells: bool) {
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
    pub(super) fn update(&mut self, p: &Packed, k: usize, sign: f64) {
        let (i, a, b) = self.crossings[k];
        p.add_outer(&mut self.b, i, sign);
        for (crow, za) in self.b_circle.chunks_exact_mut(2).zip(p.z_row(i)) {
            crow[0] += sign * za * a;
            crow[1] += sign * za * b;
        }
    }

    /// ‖C (cos, sin)ᵀ‖².
    pub(super) fn circle_form(&self, cos: f64, sin: f64) -> f64 {
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
    pub(super) fn cell(
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
    pub(super) fn flush(&mut self, p: &Packed) {
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

    pub(super) fn finish(mut self, p: &Packed) -> ([f64; 3], u64) {
        self.flush(p);
        (self.best.w, self.candidates)
    }
}

/// An orthonormal basis (u₁, u₂) of normal^⊥ (normal unit). For normal = e₃ it is (e₁, e₂),
/// so the d = 2 sweep runs in the plane's own coordinates.
pub(super) fn circle_basis(normal: &[f64; 3]) -> ([f64; 3], [f64; 3]) {
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

pub(super) fn on_circle(u1: &[f64; 3], u2: &[f64; 3], cos: f64, sin: f64) -> [f64; 3] {
    [
        cos * u1[0] + sin * u2[0],
        cos * u1[1] + sin * u2[1],
        cos * u1[2] + sin * u2[2],
    ]
}

/// CᵀC = [[p, q], [q, r]] for C (c×2, row-major).
pub(super) fn gram2(c: &[f64]) -> (f64, f64, f64) {
    c.chunks_exact(2).fold((0.0, 0.0, 0.0), |(p, q, r), row| {
        (
            p + row[0] * row[0],
            q + row[0] * row[1],
            r + row[1] * row[1],
        )
    })
}

/// BᵀB for B (c×3, row-major).
pub(super) fn gram3(b: &[f64]) -> [[f64; 3]; 3] {
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
pub(super) fn top_eigen3(m: &[[f64; 3]; 3]) -> ([f64; 3], f64) {
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
