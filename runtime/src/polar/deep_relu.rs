//! The polar of a three-layer parallel ReLU subnetwork with ℓ2 norms on its layers: given
//! the inputs X (N×d) and Z = −∇ℓ at the outputs (N×c),
//!
//! ```text
//! Ω°(Z) = max { f(P, q) : ‖P‖_F = 1, ‖q‖₂ = 1 },   f(P, q) = ‖Zᵀ relu(relu(X P) q)‖₂,
//! ```
//!
//! P `[d, h]` the subnetwork's first layer, q `[h]` its second; the last layer's maximizer
//! is Zᵀ relu(relu(X P*) q*) / f. No enumeration is known to be tractable here, so this is a
//! local method: projected gradient ascent on ½f² over the product of the two spheres, with
//! a step that doubles on success and halves until the value rises, from the current
//! subnetworks (warm starts) and seeded normal starts (each also with |q|, which keeps every
//! second-layer unit active since relu(X P) ≥ 0). The value is a lower bound on the polar.

use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{Polar, normal_vector};
use crate::backend::ExecError;
use crate::kir::Slot;
use crate::linalg;
use crate::machine::Machine;

/// Ascent steps per start at most.
const MAX_STEPS: usize = 400;

/// A solution of the deep ReLU polar problem.
#[derive(Clone, Debug, PartialEq)]
pub struct DeepReluPolar {
    /// f at the returned point: a lower bound on the polar.
    pub value: f64,
    /// The first layer `[d, h]`, ‖P‖_F = 1.
    pub first: Array2<f64>,
    /// The second layer `[h]`, unit.
    pub second: Array1<f64>,
    /// The last layer `[c]`, unit (any unit vector when the value is 0).
    pub last: Array1<f64>,
}

/// ½f², and the last layer's direction Zᵀ h₂ with the signals the gradient needs.
struct Forward {
    half_sq: f64,
    output: Array1<f64>,
    pre1: Array2<f64>,
    hidden1: Array2<f64>,
    pre2: Array1<f64>,
}

fn forward(
    x: ArrayView2<'_, f64>,
    z: ArrayView2<'_, f64>,
    p: &Array2<f64>,
    q: &Array1<f64>,
) -> Forward {
    let pre1 = linalg::gemm(x, false, p.view(), false, 1.0);
    let hidden1 = pre1.mapv(|v| v.max(0.0));
    let pre2 = hidden1.dot(q);
    let hidden2 = pre2.mapv(|v| v.max(0.0));
    let output = z.t().dot(&hidden2);
    Forward {
        half_sq: 0.5 * output.dot(&output),
        output,
        pre1,
        hidden1,
        pre2,
    }
}

fn unit_or_first(v: Array1<f64>) -> Array1<f64> {
    let norm = v.dot(&v).sqrt();
    if norm > 0.0 && norm.is_finite() {
        v / norm
    } else {
        let mut e = Array1::zeros(v.len());
        if let Some(first) = e.first_mut() {
            *first = 1.0;
        }
        e
    }
}

fn unit_matrix(m: Array2<f64>) -> Option<Array2<f64>> {
    let norm = m.iter().map(|v| v * v).sum::<f64>().sqrt();
    (norm > 0.0 && norm.is_finite()).then(|| m / norm)
}

/// Ascent from one start; returns (½f², P, q).
fn ascend(
    x: ArrayView2<'_, f64>,
    z: ArrayView2<'_, f64>,
    mut p: Array2<f64>,
    mut q: Array1<f64>,
    tol: f64,
) -> (f64, Array2<f64>, Array1<f64>) {
    let mut at = forward(x, z, &p, &q);
    let mut step = 1.0;
    for _ in 0..MAX_STEPS {
        // ∂(½f²)/∂h₂ = Z Zᵀh₂, through relu' at both layers (relu'(0) = 0).
        let s = z.dot(&at.output);
        let delta2 = Array1::from_shape_fn(s.len(), |n| if at.pre2[n] > 0.0 { s[n] } else { 0.0 });
        let grad_q = at.hidden1.t().dot(&delta2);
        let mut delta1 = delta2
            .view()
            .insert_axis(Axis(1))
            .dot(&q.view().insert_axis(Axis(0)));
        ndarray::Zip::from(&mut delta1)
            .and(&at.pre1)
            .for_each(|g, &a| {
                if a <= 0.0 {
                    *g = 0.0;
                }
            });
        let grad_p = linalg::gemm(x, true, delta1.view(), false, 1.0);
        let mut improved = false;
        for _ in 0..40 {
            let (Some(p_next), q_next) = (
                unit_matrix(&p + &(&grad_p * step)),
                unit_or_first(&q + &(&grad_q * step)),
            ) else {
                step *= 0.5;
                continue;
            };
            let next = forward(x, z, &p_next, &q_next);
            if next.half_sq > at.half_sq {
                let gain = next.half_sq - at.half_sq;
                (p, q, at) = (p_next, q_next, next);
                step *= 2.0;
                improved = gain > tol * at.half_sq;
                break;
            }
            step *= 0.5;
        }
        if !improved {
            break;
        }
    }
    (at.half_sq, p, q)
}

/// Maximizes f from `warm` starts (first and second layers of the current subnetworks) and
/// `starts` seeded normal ones, each also with |q|. `tol`: relative gain that ends a start.
pub fn deep_relu_polar(
    x: ArrayView2<'_, f64>,
    z: ArrayView2<'_, f64>,
    hidden: usize,
    starts: usize,
    seed: u64,
    warm: &[(Array2<f64>, Array1<f64>)],
    tol: f64,
) -> DeepReluPolar {
    let d = x.ncols();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut candidates: Vec<(Array2<f64>, Array1<f64>)> = warm.to_vec();
    for _ in 0..starts {
        let p = normal_vector(&mut rng, d * hidden)
            .into_shape_with_order((d, hidden))
            .unwrap_or_else(|_| Array2::zeros((d, hidden)));
        let q = normal_vector(&mut rng, hidden);
        candidates.push((p.clone(), q.mapv(f64::abs)));
        candidates.push((p, q));
    }
    let mut best: Option<(f64, Array2<f64>, Array1<f64>)> = None;
    for (p, q) in candidates {
        let (Some(p), q) = (unit_matrix(p), unit_or_first(q)) else {
            continue;
        };
        let found = ascend(x, z, p, q, tol);
        if best.as_ref().is_none_or(|b| found.0 > b.0) {
            best = Some(found);
        }
    }
    let (p, q) = match best {
        Some((_, p, q)) => (p, q),
        None => {
            let mut p = Array2::zeros((d, hidden));
            if let Some(first) = p.first_mut() {
                *first = 1.0;
            }
            (p, unit_or_first(Array1::zeros(hidden)))
        }
    };
    let at = forward(x, z, &p, &q);
    let value = (2.0 * at.half_sq).sqrt();
    DeepReluPolar {
        value,
        first: p,
        second: q,
        last: unit_or_first(at.output),
    }
}

/// The three-layer subnetwork polar (see [`crate::deep_relu_polar`]) on the host from the
/// input data and the output gradient the `Residual` kernel wrote. Warm starts: the current
/// subnetworks' first two layers (block 0's columns are row-major `[d, h]` matrices).
pub(super) fn deep_relu(
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
    let found = deep_relu_polar(
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

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// With one hidden unit and q = 1 the problem is the two-layer polar of X: for Z = relu(X w)
    /// (one output), f(w) = ‖relu(X w)‖·‖relu(X w*)‖-like; here a planted w makes the maximum
    /// at w itself: f(P, q) ≤ ‖Z‖ ‖relu(relu(XP)q)‖ ≤ ‖Z‖ ‖X‖₂, reached at the top singular
    /// direction when X's rows all lie in one half-space.
    #[test]
    fn reaches_the_bound_when_every_unit_stays_active() {
        // Rows in the positive quadrant, Z = X v for v the top right singular vector, so
        // relu(X v) = X v and f ≤ ‖Z‖·σ_max(X) is attained at P = v (h = 1), q = 1.
        let x = array![[3.0, 1.0], [2.0, 2.0], [1.0, 0.5], [0.5, 2.5]];
        let sigma = linalg::largest_eigenvalue(x.t().dot(&x).view()).sqrt();
        // The top right singular vector by power iteration on XᵀX.
        let gram = x.t().dot(&x);
        let mut v = array![1.0, 1.0];
        for _ in 0..200 {
            v = gram.dot(&v);
            v /= v.dot(&v).sqrt();
        }
        let zcol = x.dot(&v);
        let z = zcol.clone().insert_axis(Axis(1));
        let bound = zcol.dot(&zcol).sqrt() * sigma;
        let found = deep_relu_polar(x.view(), z.view(), 1, 4, 7, &[], 1e-14);
        assert!(
            (found.value - bound).abs() <= 1e-6 * bound,
            "value {} against the bound {bound}",
            found.value
        );
        // The first layer is ±v (up to the sign absorbed by q's sign).
        let p = found.first.column(0).to_owned();
        assert!((p.dot(&v).abs() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn never_exceeds_the_cauchy_schwarz_bound_and_returns_units() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let x = normal_vector(&mut rng, 40 * 3)
            .into_shape_with_order((40, 3))
            .unwrap();
        let z = normal_vector(&mut rng, 40 * 2)
            .into_shape_with_order((40, 2))
            .unwrap();
        let found = deep_relu_polar(x.view(), z.view(), 4, 6, 1, &[], 1e-12);
        let sigma_x = linalg::largest_eigenvalue(x.t().dot(&x).view()).sqrt();
        let sigma_z = linalg::largest_eigenvalue(z.t().dot(&z).view()).sqrt();
        // ‖Zᵀ relu(relu(XP)q)‖ ≤ σ(Z)·‖relu(XP)‖₂·‖q‖ ≤ σ(Z)·σ(X)·‖P‖_F.
        assert!(found.value > 0.0 && found.value <= sigma_x * sigma_z * (1.0 + 1e-12));
        let norm_p = found.first.iter().map(|v| v * v).sum::<f64>().sqrt();
        assert!((norm_p - 1.0).abs() < 1e-12);
        assert!((found.second.dot(&found.second) - 1.0).abs() < 1e-12);
        assert!((found.last.dot(&found.last) - 1.0).abs() < 1e-12);
        // The value is f at the returned point.
        let at = forward(x.view(), z.view(), &found.first, &found.second);
        assert!(((2.0 * at.half_sq).sqrt() - found.value).abs() < 1e-12);
    }
}
