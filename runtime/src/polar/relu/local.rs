//! The heuristic ReLU polar for any d: pattern power iteration and a projected-gradient
//! polish (see the parent module).

use super::*;

/// Iterations of the pattern map per start, and of the gradient polish.
pub(super) const PATTERN_ITERATIONS: usize = 100;
pub(super) const POLISH_ITERATIONS: usize = 200;

/// The best direction found from the given starts (zero or non-finite ones skipped) and the
/// number of directions evaluated.
pub(super) fn pattern_power(
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
pub(super) const FACE_NEAR: f64 = 1e-2;
/// Rounds of polish and face step.
pub(super) const FACE_ROUNDS: usize = 20;

/// Gradient polish, then the face step, until neither improves. The polish stalls at a
/// kink, where f is largest on a boundary xᵢᵀw = 0 (a point with zᵢ pulling the other way
/// becoming active): it zigzags across. The face step jumps to the top eigenvector of the
/// pattern's form restricted to the boundaries of the k nearest rows (k < d), which is that
/// maximizer when the face is right (the arcs of the exact enumeration, in any d). Only true
/// improvements are accepted.
pub(super) fn refine(
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
pub(super) fn polish(
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
pub(super) fn pattern_matrix(
    x: ArrayView2<'_, f64>,
    z: ArrayView2<'_, f64>,
    xw: &Array1<f64>,
) -> Array2<f64> {
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

pub(super) fn pattern_hash(xw: &Array1<f64>) -> u64 {
    let mut hasher = DefaultHasher::new();
    for s in xw {
        (*s > 0.0).hash(&mut hasher);
    }
    hasher.finish()
}

/// The top right singular vector of B (c×d), i.e. the top eigenvector of BᵀB; `None` when B
/// is zero or the SVD fails.
pub(super) fn top_right_singular_vector(b: ArrayView2<'_, f64>) -> Option<Array1<f64>> {
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
