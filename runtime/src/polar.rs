//! Polar solvers: `sup { uᵀ Z v : g_U(u) ≤ 1, g_V(v) ≤ 1 }` for Z = −∇ℓ at the current point,
//! reached only through products with Z and Zᵀ (or, for the entrywise closed forms, Z itself).
//!
//! Exact: the largest singular value by Golub–Kahan–Lanczos with full reorthogonalization,
//! stopped when the residual of the top Ritz pair is below the tolerance (the residual is
//! the bound reported); the ℓ1 closed forms (one factor's ball has the signed unit vectors as
//! extreme points, so the sup is a max over rows or columns of the other gauge's dual).
//! Heuristic: alternating exact linear maximization over each ball, from seeded starts.

use ndarray::{Array1, Array2, Axis};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::backend::ExecError;
use crate::gauge;
use crate::kir::{Gauge, GaugeAtom, PolarSolver, Role, Slot};
use crate::linalg;
use crate::machine::Machine;

/// A solution of the polar problem.
#[derive(Clone, Debug)]
pub struct Polar {
    /// `uᵀ Z v` at the maximizer (not divided by θ's constant).
    pub value: f64,
    /// Maximizers, best first: one unit vector per factor (gₖ = 1) and the value there
    /// (uᵀZv for a matrix). Exact ℓ2 solvers return further orthonormal Ritz pairs after the
    /// first.
    pub atoms: Vec<(Vec<Array1<f64>>, f64)>,
    /// For Lanczos: the residual norm of the top Ritz pair.
    pub residual: Option<f64>,
    /// Products with Z or Zᵀ used.
    pub products: usize,
    /// Set when a solver the plan calls exact fell back on a local method this time (the
    /// ReLU enumeration above its cap): why. The value is then only a lower bound.
    pub heuristic_note: Option<String>,
}

/// Standard normal samples (Box–Muller) from a seeded generator.
pub fn normal_vector(rng: &mut ChaCha8Rng, n: usize) -> Array1<f64> {
    Array1::from_shape_fn(n, |_| {
        let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
        let u2: f64 = rng.random::<f64>();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    })
}

fn norm(x: &Array1<f64>) -> f64 {
    x.dot(x).sqrt()
}

/// Solves the polar problem after the `Residual` kernel has run. `heights`: the factors'
/// row counts (Z's shape for a matrix); `tol`: relative tolerance; `seed`: for starts;
/// `current`: the factors now (warm starts of the ReLU polar).
pub fn solve(
    machine: &mut Machine<'_>,
    heights: &[usize],
    tol: f64,
    seed: u64,
    current: &[Array2<f64>],
) -> Result<Polar, ExecError> {
    let plan = machine.plan().clone();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let rows = heights.first().copied().unwrap_or(0);
    let cols = heights.get(1).copied().unwrap_or(0);
    match plan.polar {
        PolarSolver::TopSingular => lanczos(machine, rows, cols, tol, &mut rng),
        PolarSolver::MaxAbsEntry
        | PolarSolver::MaxPositiveEntry
        | PolarSolver::MaxRowNorm
        | PolarSolver::MaxColumnNorm => {
            // −∇ℓ in full, as its products with the identity (one pass per outer iteration).
            machine.set_probe(cols);
            machine.set_matrix(Slot::ProbeIn(1), Array2::eye(cols))?;
            machine.run(Role::Contract(0))?;
            let z = machine.matrix(Slot::ProbeOut(0))?;
            Ok(extreme_points(&z, &plan.gauges[0], &plan.gauges[1]))
        }
        PolarSolver::Alternating => alternating(
            machine,
            heights,
            &plan.gauges,
            plan.polar_starts.max(1) as usize,
            tol,
            &mut rng,
        ),
        PolarSolver::ReluPatterns => relu_patterns(machine, &plan, seed, current),
        PolarSolver::DeepReluAscent { hidden } => {
            deep_relu(machine, &plan, hidden as usize, tol, seed, current)
        }
    }
}

/// Golub–Kahan–Lanczos bidiagonalization with full reorthogonalization.
fn lanczos(
    machine: &mut Machine<'_>,
    rows: usize,
    cols: usize,
    tol: f64,
    rng: &mut ChaCha8Rng,
) -> Result<Polar, ExecError> {
    let kmax = rows.min(cols);
    let mut us: Vec<Array1<f64>> = Vec::new();
    let mut vs: Vec<Array1<f64>> = Vec::new();
    let mut alphas: Vec<f64> = Vec::new();
    let mut betas: Vec<f64> = Vec::new();
    let mut v = normal_vector(rng, cols);
    v /= norm(&v);
    let mut products = 0;
    let mut last_beta = 0.0;
    let orthogonalize = |x: &mut Array1<f64>, basis: &[Array1<f64>]| {
        // Twice is enough (Kahan's "twice is enough").
        for _ in 0..2 {
            for b in basis {
                let c = b.dot(x);
                x.scaled_add(-c, b);
            }
        }
    };
    let mut result = None;
    for k in 0..kmax {
        vs.push(v.clone());
        let mut u = machine.apply(&v)?;
        products += 1;
        if let Some(prev) = us.last() {
            u.scaled_add(-last_beta, prev);
        }
        orthogonalize(&mut u, &us);
        let alpha = norm(&u);
        alphas.push(alpha);
        if alpha > 0.0 {
            u /= alpha;
        }
        us.push(u.clone());
        let mut next = machine.apply_t(&u)?;
        products += 1;
        next.scaled_add(-alpha, &v);
        orthogonalize(&mut next, &vs);
        let beta = norm(&next);
        let size = k + 1;
        let last = beta <= f64::EPSILON * alphas.iter().fold(0.0, |m: f64, a| m.max(*a))
            || alpha == 0.0
            || size == kmax;
        // The Ritz values of the size × size bidiagonal matrix: an O(size³) SVD, so only
        // every few steps once the basis is large.
        if !last && size > 12 && size % 4 != 0 {
            betas.push(beta);
            last_beta = beta;
            v = next / beta;
            continue;
        }
        let mut b = Array2::zeros((size, size));
        for i in 0..size {
            b[(i, i)] = alphas[i];
            if i + 1 < size {
                b[(i, i + 1)] = betas[i];
            }
        }
        let Some((p, s, q)) = linalg::thin_svd(b.view()) else {
            return Err(ExecError::Backend(
                "the SVD of the Lanczos bidiagonal did not converge".into(),
            ));
        };
        let top = s.first().copied().unwrap_or(0.0);
        let residual = beta * p[(size - 1, 0)].abs();
        let done = residual <= tol * top.max(f64::MIN_POSITIVE) || last;
        if done {
            result = Some((p, s, q, residual));
            break;
        }
        betas.push(beta);
        last_beta = beta;
        v = next / beta;
    }
    let Some((p, s, q, residual)) = result else {
        return Ok(Polar {
            value: 0.0,
            atoms: Vec::new(),
            residual: Some(0.0),
            products,
            heuristic_note: None,
        });
    };
    let mut pairs = Vec::new();
    for i in 0..s.len() {
        if s[i] <= 0.0 {
            break;
        }
        let mut u = Array1::zeros(rows);
        let mut vv = Array1::zeros(cols);
        for (j, (uj, vj)) in us.iter().zip(&vs).enumerate() {
            u.scaled_add(p[(j, i)], uj);
            vv.scaled_add(q[(j, i)], vj);
        }
        // Unit vectors whatever the rounding.
        let (nu, nv) = (norm(&u), norm(&vv));
        if nu > 0.0 && nv > 0.0 {
            pairs.push((vec![u / nu, vv / nv], s[i]));
        }
    }
    Ok(Polar {
        value: s.first().copied().unwrap_or(0.0),
        atoms: pairs,
        residual: Some(residual),
        products,
        heuristic_note: None,
    })
}

/// The sup when one ball is ℓ1 (its extreme points are ±eⱼ / w): a max over Z's rows (ℓ1 on
/// U) or columns (ℓ1 on V) of the other gauge's linear maximization.
fn extreme_points(z: &Array2<f64>, left: &Gauge, right: &Gauge) -> Polar {
    let l1_weight = |g: &Gauge| match g.terms.as_slice() {
        [(w, GaugeAtom::L1)] => Some(*w),
        _ => None,
    };
    let (axis, w, ext, other) = match (l1_weight(left), l1_weight(right)) {
        (Some(w), _) => (Axis(0), w, left, right),
        (None, Some(w)) => (Axis(1), w, right, left),
        // The lowering only picks these solvers with an ℓ1 side.
        (None, None) => {
            return Polar {
                value: 0.0,
                atoms: Vec::new(),
                residual: None,
                products: 0,
                heuristic_note: None,
            };
        }
    };
    let mut best: Option<(usize, f64, Array1<f64>, f64)> = None;
    for (j, lane) in z.axis_iter(axis).enumerate() {
        // Sign of the extreme point: + only on the nonnegative cone.
        for sign in [1.0, -1.0] {
            if sign < 0.0 && ext.nonneg {
                continue;
            }
            let a: Vec<f64> = lane.iter().map(|x| sign * x / w).collect();
            if let Some((x, val)) = gauge::linear_max(other, &a)
                && best.as_ref().is_none_or(|b| val > b.3)
            {
                best = Some((j, sign, Array1::from(x), val));
            }
        }
    }
    let Some((j, sign, x, val)) = best else {
        return Polar {
            value: 0.0,
            atoms: Vec::new(),
            residual: None,
            products: 0,
            heuristic_note: None,
        };
    };
    let n_ext = z.len_of(axis);
    let mut e = Array1::zeros(n_ext);
    e[j] = sign / w;
    let (u, v) = if axis == Axis(0) { (e, x) } else { (x, e) };
    Polar {
        value: val,
        atoms: vec![(vec![u, v], val)],
        residual: None,
        products: 0,
        heuristic_note: None,
    }
}

/// Alternating linear maximization, the higher-order power method for K factors: for each
/// k in turn, aₖ ← argmax over gₖ ≤ 1 of ⟨aₖ, Z ×_{l≠k} aₗ⟩ (exact, by the gauge's linear
/// maximization), until the value stalls; the best of several seeded starts (random unit
/// directions on every factor but the first, which is computed first). For a matrix:
/// u ← argmax ⟨u, Z v⟩, v ← argmax ⟨v, Zᵀ u⟩.
fn alternating(
    machine: &mut Machine<'_>,
    heights: &[usize],
    gauges: &[Gauge],
    starts: usize,
    tol: f64,
    rng: &mut ChaCha8Rng,
) -> Result<Polar, ExecError> {
    let blocks = heights.len();
    let mut best: Option<(Vec<Array1<f64>>, f64)> = None;
    let mut products = 0;
    for _ in 0..starts {
        let mut probes: Vec<Array1<f64>> = Vec::with_capacity(blocks);
        probes.push(Array1::zeros(heights[0]));
        for (k, &n) in heights.iter().enumerate().skip(1) {
            let mut x = normal_vector(rng, n);
            if gauges[k].nonneg {
                x.mapv_inplace(f64::abs);
            }
            probes.push(x);
        }
        let mut value = f64::NEG_INFINITY;
        let mut atom = None;
        'sweeps: for _ in 0..300 {
            let mut val = 0.0;
            for k in 0..blocks {
                let contracted = machine.contract(k, &probes)?;
                products += 1;
                let Some((x, v)) = gauge::linear_max(
                    &gauges[k],
                    contracted.as_slice().unwrap_or(&contracted.to_vec()),
                ) else {
                    break 'sweeps;
                };
                probes[k] = Array1::from(x);
                val = v;
            }
            let improved = val - value;
            value = val;
            atom = Some((probes.clone(), val));
            if improved <= tol * val.abs() {
                break;
            }
        }
        if let Some(a) = atom
            && best.as_ref().is_none_or(|b| a.1 > b.1)
        {
            best = Some(a);
        }
    }
    Ok(match best {
        Some(a) => Polar {
            value: a.1,
            atoms: vec![a],
            residual: None,
            products,
            heuristic_note: None,
        },
        None => Polar {
            value: 0.0,
            atoms: Vec::new(),
            residual: None,
            products,
            heuristic_note: None,
        },
    })
}

/// The three-layer subnetwork polar (see [`crate::deep_relu_polar`]) on the host from the
/// input data and the output gradient the `Residual` kernel wrote. Warm starts: the current
/// subnetworks' first two layers (block 0's columns are row-major `[d, h]` matrices).
fn deep_relu(
    machine: &mut Machine<'_>,
    plan: &crate::kir::Plan,
    hidden: usize,
    tol: f64,
    seed: u64,
    current: &[Array2<f64>],
) -> Result<Polar, ExecError> {
    let x = machine.matrix(Slot::Features)?;
    let z = -machine.matrix(Slot::OutputGrad)?;
    let d = x.ncols();
    let warm: Vec<(Array2<f64>, Array1<f64>)> = match current {
        [first, second, ..] if first.nrows() == d * hidden && second.nrows() == hidden => first
            .axis_iter(Axis(1))
            .zip(second.axis_iter(Axis(1)))
            .filter_map(|(w1, w2)| {
                let p = w1.to_owned().into_shape_with_order((d, hidden)).ok()?;
                Some((p, w2.to_owned()))
            })
            .collect(),
        _ => Vec::new(),
    };
    let found = crate::deep_relu_polar::deep_relu_polar(
        x.view(),
        z.view(),
        hidden,
        plan.polar_starts.max(1) as usize,
        seed,
        &warm,
        tol,
    );
    let first = Array1::from_iter(found.first.iter().copied());
    Ok(Polar {
        value: found.value,
        atoms: vec![(vec![first, found.second, found.last], found.value)],
        residual: None,
        products: 0,
        heuristic_note: Some("projected gradient ascent (a local method)".into()),
    })
}

/// The two-layer ReLU polar `max_{‖w‖≤1} ‖Zᵀ relu(X w)‖₂` with Z = −∇ℓ at the outputs, on the
/// host from the input data and the output gradient the `Residual` kernel wrote. Warm starts:
/// the current first-layer columns.
fn relu_patterns(
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
    let found = crate::relu_polar::relu_polar(
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
