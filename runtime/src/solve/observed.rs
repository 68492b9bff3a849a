//! Truncated Newton for matrix completion: `U * V'` with ℓ2 · ℓ2 (the nuclear norm) and a
//! squared loss on the observed entries Ω.
//!
//! At a fixed size r the nuclear norm has the variational form
//! `w‖U Vᵀ‖_* = min ½w(‖U‖² + ‖V‖²)` over factorizations of the same map, so the local
//! problem is the smooth
//!
//! ```text
//! G(U, V) = β/2 Σ_{(i,j)∈Ω} (uᵢ·vⱼ − yᵢⱼ)² + ½w(‖U‖² + ‖V‖²)  ≥  F(U, V)
//! ```
//!
//! with equality at balanced factors, which every stationary point of G is. First-order
//! steps on it (softImpute's fill-in, the span step of [`super::descent`]) contract by a
//! factor that tends to 1 as fewer entries are observed: thousands of steps at 5%. Newton's
//! method does not care: each step solves `H z = −∇G` by conjugate gradients with
//! Hessian-vector products in O(|Ω| r) (the Hessian is never formed), preconditioned by the
//! expected per-row curvature `β pᵢ VᵀV + w I` (pᵢ the share of row i observed), and takes
//! the longest Armijo step along z. CG stops early at negative curvature (G is not convex)
//! and at a residual that shrinks with ‖∇G‖ (superlinear convergence near a minimizer).
//!
//! This step runs on the host from a copy of the observed entries (read once from the back
//! end); [`ObservedSquared::from_problem`] checks its loss against the kernels' at a probe
//! point and the solver falls back on the span step when they disagree. The descent ends
//! with one span sweep through the kernels: exact singular value thresholding on the
//! current spans (balances the factors and drops the columns Newton drove to zero), so the
//! objective the solver reports is the kernels'.

use ndarray::{Array1, Array2, Axis};

use super::SolveError;
use super::descent::{Limits, Point, Recorder};
use super::problem::{Problem, rank};
use crate::backend::ExecError;
use crate::kir::{BufferKind, Role, Slot};

/// Armijo's sufficient-decrease share.
const ARMIJO: f64 = 1e-4;
/// Halvings of the step before a line search gives up.
const MAX_HALVINGS: u32 = 40;
/// CG iterations per Newton step at most.
const MAX_CG: usize = 250;

/// The squared loss `β/2 Σ (uᵢ·vⱼ − yᵢⱼ)²` on observed entries, on the host.
#[derive(Clone, Debug)]
pub(crate) struct ObservedSquared {
    rows: Vec<usize>,
    cols: Vec<usize>,
    values: Vec<f64>,
    /// The loss's curvature per entry.
    beta: f64,
    /// The share of each row observed (|Ωᵢ|/n).
    row_share: Array1<f64>,
    /// The share of each column observed (|Ωʲ|/m).
    col_share: Array1<f64>,
}

/// Two blocks (U, V) as one vector of the Newton system.
type Pair = (Array2<f64>, Array2<f64>);

fn dot(a: &Pair, b: &Pair) -> f64 {
    (&a.0 * &b.0).sum() + (&a.1 * &b.1).sum()
}

fn norm(a: &Pair) -> f64 {
    dot(a, a).sqrt()
}

/// `a + t·b`.
fn axpy(a: &Pair, t: f64, b: &Pair) -> Pair {
    let mut out = a.clone();
    out.0.scaled_add(t, &b.0);
    out.1.scaled_add(t, &b.1);
    out
}

/// `Σ aₖbₖ` over one row of each, with four partial sums (the compiler vectorizes it; the
/// order differs from a plain sum only in rounding).
#[inline(always)]
fn row_dot(a: &[f64], b: &[f64]) -> f64 {
    let mut partial = [0.0; 4];
    let (chunks_a, chunks_b) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = chunks_a
        .remainder()
        .iter()
        .zip(chunks_b.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in chunks_a.zip(chunks_b) {
        for l in 0..4 {
            partial[l] += x[l] * y[l];
        }
    }
    partial.iter().sum::<f64>() + tail
}

/// `a·b + c·d` over one row each (four lanes, as [`row_dot`]).
#[inline(always)]
fn row_dot2(a: &[f64], b: &[f64], c: &[f64], d: &[f64]) -> f64 {
    let mut partial = [0.0; 4];
    let chunks = a
        .chunks_exact(4)
        .zip(b.chunks_exact(4))
        .zip(c.chunks_exact(4).zip(d.chunks_exact(4)));
    for ((a, b), (c, d)) in chunks {
        for l in 0..4 {
            partial[l] += a[l] * b[l] + c[l] * d[l];
        }
    }
    let body = a.len() - a.len() % 4;
    let tail: f64 = (body..a.len().min(b.len()).min(c.len()).min(d.len()))
        .map(|k| a[k] * b[k] + c[k] * d[k])
        .sum();
    partial.iter().sum::<f64>() + tail
}

/// `dst += t·src` over one row.
#[inline(always)]
fn row_axpy(dst: &mut [f64], t: f64, src: &[f64]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += t * s;
    }
}

/// `dst += a·x + b·y` over one row.
#[inline(always)]
fn row_axpy2(dst: &mut [f64], a: f64, x: &[f64], b: f64, y: &[f64]) {
    for ((d, x), y) in dst.iter_mut().zip(x).zip(y) {
        *d += a * x + b * y;
    }
}

/// Row-major storage of a matrix (a copy only when it is not in standard layout).
fn standard(m: &Array2<f64>) -> std::borrow::Cow<'_, [f64]> {
    match m.as_slice() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(m.iter().copied().collect()),
    }
}

impl ObservedSquared {
    /// The observed entries of the problem's data when its loss is a squared loss on them in
    /// the orientation of `U * V'`: the loss the kernels compute at a probe point of rank 1
    /// must equal this one's (relative 1e-6, so an f32 back end passes too). `None` when
    /// the plan is not a masked quadratic loss or the check fails.
    pub fn from_problem(problem: &mut Problem<'_, '_>) -> Result<Option<Self>, ExecError> {
        if !(problem.plan.quadratic && problem.plan.masked) {
            return Ok(None);
        }
        let program = problem.machine.program;
        let mut observed = program
            .buffers
            .iter()
            .enumerate()
            .filter(|(_, b)| matches!(b.kind, BufferKind::Observed { .. }));
        let (Some((id, _)), None) = (observed.next(), observed.next()) else {
            return Ok(None);
        };
        let crate::value::Value::Observed(o) =
            problem.machine.read_buffer(crate::kir::BufId(id as u32))?
        else {
            return Ok(None);
        };
        let (m, n) = (o.rows, o.cols);
        let mut row_share = Array1::zeros(m);
        let mut col_share = Array1::zeros(n);
        for (&i, &j) in o.row.iter().zip(&o.col) {
            row_share[i as usize] += 1.0 / n.max(1) as f64;
            col_share[j as usize] += 1.0 / m.max(1) as f64;
        }
        let data = ObservedSquared {
            rows: o.row.iter().map(|&i| i as usize).collect(),
            cols: o.col.iter().map(|&j| j as usize).collect(),
            values: o.values.to_vec(),
            beta: problem.plan.smoothness,
            row_share,
            col_share,
        };
        // The probe: smooth, nonzero, distinct rows and columns (an orientation or constant
        // that differs shows at once).
        let u = Array2::from_shape_fn((m, 1), |(i, _)| 1.0 + (0.7 * i as f64).sin());
        let v = Array2::from_shape_fn((n, 1), |(j, _)| 0.5 + (1.3 * j as f64).cos());
        let Ok(kernel_loss) = problem.bind(&[u.clone(), v.clone()]).and_then(|()| {
            problem.machine.run(Role::Value)?;
            problem.machine.scalar(Slot::Loss)
        }) else {
            return Ok(None);
        };
        let (_, host_loss) = data.residual(&u, &v);
        let agrees = (kernel_loss - host_loss).abs() <= 1e-6 * host_loss.abs().max(1e-300);
        Ok(agrees.then_some(data))
    }

    /// `β(uᵢ·vⱼ − yᵢⱼ)` on Ω (∂ℓ/∂x there) and the loss.
    fn residual(&self, u: &Array2<f64>, v: &Array2<f64>) -> (Vec<f64>, f64) {
        let r = u.ncols();
        let (us, vs) = (standard(u), standard(v));
        let mut loss = 0.0;
        let residual = (0..self.values.len())
            .map(|k| {
                let (i, j) = (self.rows[k], self.cols[k]);
                let x = row_dot(&us[i * r..(i + 1) * r], &vs[j * r..(j + 1) * r]);
                let e = x - self.values[k];
                loss += e * e;
                self.beta * e
            })
            .collect();
        (residual, 0.5 * self.beta * loss)
    }

    /// `(A V + B dV, Aᵀ U + Bᵀ dU)` for the sparse matrices A, B on Ω with entries `a`, `b`
    /// (`b` absent: B = 0), in one pass over the entries.
    fn products(
        &self,
        a: &[f64],
        b: Option<(&[f64], &Pair)>,
        u: &Array2<f64>,
        v: &Array2<f64>,
    ) -> Pair {
        let (m, r) = u.dim();
        let n = v.nrows();
        let (us, vs) = (standard(u), standard(v));
        let mut out_u = vec![0.0; m * r];
        let mut out_v = vec![0.0; n * r];
        let directions = b.map(|(b, (du, dv))| (b, standard(du), standard(dv)));
        for k in 0..a.len() {
            let (i, j) = (self.rows[k], self.cols[k]);
            let (ri, rj) = (i * r..(i + 1) * r, j * r..(j + 1) * r);
            row_axpy(&mut out_u[ri.clone()], a[k], &vs[rj.clone()]);
            row_axpy(&mut out_v[rj.clone()], a[k], &us[ri.clone()]);
            if let Some((b, du, dv)) = &directions {
                row_axpy(&mut out_u[ri.clone()], b[k], &dv[rj.clone()]);
                row_axpy(&mut out_v[rj], b[k], &du[ri]);
            }
        }
        let shape = |rows, data| Array2::from_shape_vec((rows, r), data).unwrap_or_default();
        (shape(m, out_u), shape(n, out_v))
    }

    /// G at (u, v) with the residual there.
    fn smooth_objective(&self, weight: f64, u: &Array2<f64>, v: &Array2<f64>) -> (f64, Vec<f64>) {
        let (residual, loss) = self.residual(u, v);
        let ridge = 0.5
            * weight
            * (u.iter().map(|x| x * x).sum::<f64>() + v.iter().map(|x| x * x).sum::<f64>());
        (loss + ridge, residual)
    }

    /// The Hessian of G at (u, v) (residual `residual` there) applied to `d`, in one pass
    /// over the entries: with cₖ = β(duᵢ·vⱼ + uᵢ·dvⱼ) (the first-order change of ∂ℓ/∂x),
    /// `(C V + R dV + w dU, Cᵀ U + Rᵀ dU + w dV)`.
    fn hessian_times(
        &self,
        weight: f64,
        u: &Array2<f64>,
        v: &Array2<f64>,
        residual: &[f64],
        d: &Pair,
    ) -> Pair {
        let (m, r) = u.dim();
        let n = v.nrows();
        let (us, vs) = (standard(u), standard(v));
        let (dus, dvs) = (standard(&d.0), standard(&d.1));
        let mut out_u = vec![0.0; m * r];
        let mut out_v = vec![0.0; n * r];
        // Compiled for the best instruction set the CPU has (the loop is most of a Newton
        // step); the arithmetic is the same on every path.
        pulp::Arch::new().dispatch(HessianPass {
            data: self,
            r,
            factors: (&us, &vs),
            directions: (&dus, &dvs),
            residual,
            out: (&mut out_u, &mut out_v),
        });
        let shape = |rows, data| Array2::from_shape_vec((rows, r), data).unwrap_or_default();
        let mut out = (shape(m, out_u), shape(n, out_v));
        out.0.scaled_add(weight, &d.0);
        out.1.scaled_add(weight, &d.1);
        out
    }
}

/// The entry loop of [`ObservedSquared::hessian_times`] (rows of length r, row-major),
/// as a [`pulp::WithSimd`] so that it is compiled for the best instruction set the CPU has:
/// it is most of a Newton step. The arithmetic (and so the result) is the same on every
/// path: no fused multiply-adds are introduced.
struct HessianPass<'a> {
    data: &'a ObservedSquared,
    r: usize,
    factors: (&'a [f64], &'a [f64]),
    directions: (&'a [f64], &'a [f64]),
    residual: &'a [f64],
    out: (&'a mut [f64], &'a mut [f64]),
}

impl pulp::WithSimd for HessianPass<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let HessianPass {
            data,
            r,
            factors: (us, vs),
            directions: (dus, dvs),
            residual,
            out: (out_u, out_v),
        } = self;
        for (k, &entry_gradient) in residual.iter().enumerate() {
            let (i, j) = (data.rows[k], data.cols[k]);
            let (ri, rj) = (i * r..(i + 1) * r, j * r..(j + 1) * r);
            let change = data.beta
                * row_dot2(
                    &dus[ri.clone()],
                    &vs[rj.clone()],
                    &us[ri.clone()],
                    &dvs[rj.clone()],
                );
            row_axpy2(
                &mut out_u[ri.clone()],
                change,
                &vs[rj.clone()],
                entry_gradient,
                &dvs[rj.clone()],
            );
            row_axpy2(
                &mut out_v[rj],
                change,
                &us[ri.clone()],
                entry_gradient,
                &dus[ri],
            );
        }
    }
}

/// The preconditioner `z ↦ z (β pᵢ diag(WᵀW) + w I)⁻¹` row by row on each block (W the
/// other block): the expected per-row curvature, whose Gram is diagonal at the span sweep's
/// output (orthogonal columns), so the diagonal loses little and costs O((m + n) r).
struct Preconditioner {
    inverse: [Array2<f64>; 2],
}

impl Preconditioner {
    fn new(data: &ObservedSquared, weight: f64, u: &Array2<f64>, v: &Array2<f64>) -> Self {
        let side = |other: &Array2<f64>, share: &Array1<f64>| {
            let squares: Vec<f64> = other
                .axis_iter(Axis(1))
                .map(|c| data.beta * c.dot(&c))
                .collect();
            let top = squares.iter().copied().fold(0.0, f64::max) + weight;
            let floor = (1e-12 * top).max(f64::MIN_POSITIVE);
            Array2::from_shape_fn((share.len(), squares.len()), |(i, k)| {
                1.0 / (share[i] * squares[k] + weight).max(floor)
            })
        };
        Preconditioner {
            inverse: [side(v, &data.row_share), side(u, &data.col_share)],
        }
    }

    fn apply(&self, x: &Pair) -> Pair {
        (&x.0 * &self.inverse[0], &x.1 * &self.inverse[1])
    }
}

/// The truncated Newton direction for `H z = −g` (see the module's documentation);
/// returns z and the number of Hessian products.
fn newton_direction(
    data: &ObservedSquared,
    weight: f64,
    u: &Array2<f64>,
    v: &Array2<f64>,
    residual: &[f64],
    gradient: &Pair,
    forcing: f64,
) -> (Pair, usize) {
    let precondition = Preconditioner::new(data, weight, u, v);
    let apply = |x: &Pair| precondition.apply(x);
    let gradient_norm = norm(gradient);
    let mut z: Pair = (Array2::zeros(u.dim()), Array2::zeros(v.dim()));
    let mut rest: Pair = (-&gradient.0, -&gradient.1);
    let mut y = apply(&rest);
    let mut p = y.clone();
    let mut rest_dot_y = dot(&rest, &y);
    let mut products = 0;
    for step in 0..MAX_CG {
        let hp = data.hessian_times(weight, u, v, residual, &p);
        products += 1;
        let curvature = dot(&p, &hp);
        if curvature <= 1e-14 * dot(&p, &p) * weight.max(f64::MIN_POSITIVE) {
            // Negative (or no) curvature: the preconditioned gradient on the first step,
            // what CG has so far after it.
            if step == 0 {
                z = p;
            }
            break;
        }
        let alpha = rest_dot_y / curvature;
        z = axpy(&z, alpha, &p);
        rest = axpy(&rest, -alpha, &hp);
        if norm(&rest) <= forcing * gradient_norm {
            break;
        }
        y = apply(&rest);
        let next = dot(&rest, &y);
        p = axpy(&y, next / rest_dot_y, &p);
        rest_dot_y = next;
    }
    if dot(gradient, &z) >= 0.0 {
        // Not a descent direction (rounding at a tiny gradient): the preconditioned one.
        let mut back = apply(gradient);
        back.0.mapv_inplace(|x| -x);
        back.1.mapv_inplace(|x| -x);
        z = back;
    }
    (z, products)
}

/// Newton descent from `point` until the relative step is below `limits.step_tol`, G
/// stalls, the line search finds no decrease or the budget ends; then one span sweep
/// through the kernels (a span sweep also precedes every Newton step).
// The span steps' arguments plus the host copy of the data.
#[allow(clippy::too_many_arguments)]
pub(crate) fn newton_descent(
    problem: &mut Problem<'_, '_>,
    data: &ObservedSquared,
    point: &mut Point,
    iterations: &mut u64,
    budget_end: u64,
    limits: &Limits<'_>,
    recorder: &mut Recorder<'_, '_>,
    mut span_sweep: impl FnMut(&mut Problem<'_, '_>, &Point) -> Result<Point, ExecError>,
) -> Result<(), SolveError> {
    let weight = problem.weight;
    let mut first_gradient = None;
    let mut stalls = 0;
    while *iterations < budget_end && rank(&point.w) > 0 && !(limits.interrupted)() {
        // A span sweep first: it thresholds away the columns growth added beyond the rank
        // the spans support (Newton would carry them, at their cost, until the end) and
        // balances the factors.
        *point = span_sweep(problem, point)?;
        let [u, v] = point.w.as_slice() else {
            return Ok(());
        };
        if u.ncols() == 0 {
            break;
        }
        let (u, v) = (u.clone(), v.clone());
        let (value, residual) = data.smooth_objective(weight, &u, &v);
        let mut gradient = data.products(&residual, None, &u, &v);
        gradient.0.scaled_add(weight, &u);
        gradient.1.scaled_add(weight, &v);
        let gradient_norm = norm(&gradient);
        let first = *first_gradient.get_or_insert(gradient_norm);
        // The duality gap at a nearly stationary point is first order in ‖∇G‖ (at a
        // stationary point ⟨−∇ℓ, U Vᵀ⟩ = w‖U‖² = w‖X‖_*, and the defect is ⟨∇G, W⟩/2 plus
        // second-order terms): stop when that term is a step tolerance's share of G.
        let size = (u.iter().chain(v.iter()).map(|x| x * x).sum::<f64>()).sqrt();
        if gradient_norm == 0.0
            || gradient_norm <= limits.gradient_drop * first
            || gradient_norm * size <= limits.step_tol * value.abs()
        {
            break;
        }
        let forcing = (gradient_norm / first.max(f64::MIN_POSITIVE))
            .sqrt()
            .min(0.5);
        let (z, _) = newton_direction(data, weight, &u, &v, &residual, &gradient, forcing);
        let slope = dot(&gradient, &z);
        let mut t = 1.0;
        let mut accepted = None;
        for _ in 0..MAX_HALVINGS {
            let u_next = {
                let mut x = u.clone();
                x.scaled_add(t, &z.0);
                x
            };
            let v_next = {
                let mut x = v.clone();
                x.scaled_add(t, &z.1);
                x
            };
            let (next_value, next_residual) = data.smooth_objective(weight, &u_next, &v_next);
            if next_value <= value + ARMIJO * t * slope {
                accepted = Some((u_next, v_next, next_value, next_residual));
                break;
            }
            t *= 0.5;
        }
        *iterations += 1;
        let Some((u_next, v_next, next_value, next_residual)) = accepted else {
            break;
        };
        if !next_value.is_finite() {
            return Err(SolveError::NonFinite(next_value, *iterations));
        }
        let size = (u_next
            .iter()
            .chain(v_next.iter())
            .map(|x| x * x)
            .sum::<f64>())
        .sqrt();
        let step = t * norm(&z) / size.max(f64::MIN_POSITIVE);
        let decrease = value - next_value;
        let (u, v, value, residual) = (u_next, v_next, next_value, next_residual);
        // The objective as the solver defines it (ℓ + w Σ ‖uᵢ‖‖vᵢ‖ ≤ G).
        let loss = residual.iter().map(|e| e * e).sum::<f64>() / (2.0 * data.beta);
        let thetas: f64 = u
            .axis_iter(Axis(1))
            .zip(v.axis_iter(Axis(1)))
            .map(|(a, b)| a.dot(&a).sqrt() * b.dot(&b).sqrt())
            .sum();
        point.w = vec![u.clone(), v.clone()];
        point.loss = loss;
        point.objective = loss + weight * thetas;
        recorder.record(*iterations, point);
        if step <= limits.step_tol {
            break;
        }
        if decrease <= limits.stall_tol * value.abs().max(f64::MIN_POSITIVE) {
            stalls += 1;
            if stalls >= 3 {
                break;
            }
        } else {
            stalls = 0;
        }
    }
    if rank(&point.w) > 0 {
        *point = span_sweep(problem, point)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg;

    fn toy() -> ObservedSquared {
        // A 4 × 3 matrix with 7 entries observed.
        let entries = [
            (0, 0, 1.0),
            (0, 2, -0.5),
            (1, 1, 2.0),
            (2, 0, 0.3),
            (2, 1, -1.2),
            (3, 2, 0.8),
            (3, 0, 0.1),
        ];
        let (m, n) = (4.0, 3.0);
        let mut row_share = Array1::zeros(4);
        let mut col_share = Array1::zeros(3);
        for &(i, j, _) in &entries {
            row_share[i] += 1.0 / n;
            col_share[j] += 1.0 / m;
        }
        ObservedSquared {
            rows: entries.iter().map(|e| e.0).collect(),
            cols: entries.iter().map(|e| e.1).collect(),
            values: entries.iter().map(|e| e.2).collect(),
            beta: 1.5,
            row_share,
            col_share,
        }
    }

    fn point(seed: f64) -> (Array2<f64>, Array2<f64>) {
        let u = Array2::from_shape_fn((4, 2), |(i, k)| {
            (seed + 0.9 * i as f64 + 1.7 * k as f64).sin()
        });
        let v = Array2::from_shape_fn((3, 2), |(j, k)| {
            (seed + 0.4 * j as f64 - 2.1 * k as f64).cos()
        });
        (u, v)
    }

    /// G by finite differences against the gradient and the Hessian products.
    #[test]
    fn gradient_and_hessian_match_finite_differences() {
        let data = toy();
        let weight = 0.3;
        let (u, v) = point(0.2);
        let (du, dv) = point(1.1);
        let (_, residual) = data.smooth_objective(weight, &u, &v);
        let mut gradient = data.products(&residual, None, &u, &v);
        gradient.0.scaled_add(weight, &u);
        gradient.1.scaled_add(weight, &v);
        let h = 1e-6;
        let shifted = |t: f64| {
            let mut a = u.clone();
            a.scaled_add(t, &du);
            let mut b = v.clone();
            b.scaled_add(t, &dv);
            (a, b)
        };
        let (up, vp) = shifted(h);
        let (um, vm) = shifted(-h);
        let (gp, _) = data.smooth_objective(weight, &up, &vp);
        let (gm, _) = data.smooth_objective(weight, &um, &vm);
        let d = (du.clone(), dv.clone());
        let directional = dot(&gradient, &d);
        assert!(((gp - gm) / (2.0 * h) - directional).abs() < 1e-8 * directional.abs().max(1.0));
        // The Hessian product, from central differences of the gradient at ±h.
        let grad_at = |a: &Array2<f64>, b: &Array2<f64>| {
            let (_, res) = data.smooth_objective(weight, a, b);
            let mut g = data.products(&res, None, a, b);
            g.0.scaled_add(weight, a);
            g.1.scaled_add(weight, b);
            g
        };
        let (gpu, gpv) = grad_at(&up, &vp);
        let (gmu, gmv) = grad_at(&um, &vm);
        let hd = data.hessian_times(weight, &u, &v, &residual, &d);
        let fd_u = (gpu - gmu) / (2.0 * h);
        let fd_v = (gpv - gmv) / (2.0 * h);
        for (a, b) in fd_u
            .iter()
            .chain(fd_v.iter())
            .zip(hd.0.iter().chain(hd.1.iter()))
        {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    /// The Newton direction decreases G, and repeated steps reach a stationary point.
    #[test]
    fn newton_steps_reach_a_stationary_point() {
        let data = toy();
        let weight = 0.3;
        let (mut u, mut v) = point(0.2);
        let mut gradient_norm = f64::INFINITY;
        for _ in 0..30 {
            let (value, residual) = data.smooth_objective(weight, &u, &v);
            let mut g = data.products(&residual, None, &u, &v);
            g.0.scaled_add(weight, &u);
            g.1.scaled_add(weight, &v);
            gradient_norm = norm(&g);
            if gradient_norm < 1e-13 {
                break;
            }
            let (z, _) = newton_direction(&data, weight, &u, &v, &residual, &g, 1e-3);
            let mut t = 1.0;
            loop {
                let (a, b) = (&u + &(&z.0 * t), &v + &(&z.1 * t));
                if data.smooth_objective(weight, &a, &b).0 <= value + ARMIJO * t * dot(&g, &z) {
                    (u, v) = (a, b);
                    break;
                }
                t *= 0.5;
                assert!(t > 1e-12, "no decrease along the Newton direction");
            }
        }
        assert!(gradient_norm < 1e-10, "gradient norm {gradient_norm}");
        // Stationary points of G are balanced: UᵀU = VᵀV.
        let gu = linalg::gemm(u.view(), true, u.view(), false, 1.0);
        let gv = linalg::gemm(v.view(), true, v.view(), false, 1.0);
        assert!((&gu - &gv).iter().all(|x| x.abs() < 1e-8));
    }
}
