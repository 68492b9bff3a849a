//! The ℓ1 closed forms: one ball's extreme points are the signed unit vectors, so the polar
//! is a max over Z's rows or columns.

use ndarray::{Array1, Array2, Axis};

use super::{Polar, Request};
use crate::gauge;
use crate::kir::{Gauge, GaugeAtom};

/// The sup when one ball is ℓ1 (its extreme points are ±eⱼ / w): a max over Z's rows (ℓ1 on
/// U) or columns (ℓ1 on V) of the other gauge's linear maximization. The atoms: each lane's
/// maximizer whose value exceeds `request.above`, best first; when both balls are ℓ1 every
/// entry is an atom of its own (±eᵢ eⱼᵀ), so every entry above the threshold is returned.
pub(super) fn extreme_points(
    z: &Array2<f64>,
    left: &Gauge,
    right: &Gauge,
    request: &Request,
) -> Polar {
    let l1_weight = |g: &Gauge| match g.terms.as_slice() {
        [(w, GaugeAtom::L1)] => Some(*w),
        _ => None,
    };
    let none = Polar {
        value: 0.0,
        atoms: Vec::new(),
        residual: None,
        products: 0,
        heuristic_note: None,
    };
    let (axis, w, ext, other) = match (l1_weight(left), l1_weight(right)) {
        (Some(w), _) => (Axis(0), w, left, right),
        (None, Some(w)) => (Axis(1), w, right, left),
        // The lowering only picks these solvers with an ℓ1 side.
        (None, None) => return none,
    };
    let n_ext = z.len_of(axis);
    let unit = |j: usize, value: f64| {
        let mut e = Array1::zeros(n_ext);
        e[j] = value;
        e
    };
    // (value, lane, the extreme point's sign, the other side's vector)
    let mut found: Vec<(f64, usize, f64, Array1<f64>)> = Vec::new();
    let mut best = 0.0;
    for (j, lane) in z.axis_iter(axis).enumerate() {
        // Sign of the extreme point: + only on the nonnegative cone.
        for sign in [1.0, -1.0] {
            if sign < 0.0 && ext.nonneg {
                continue;
            }
            let a: Vec<f64> = lane.iter().map(|x| sign * x / w).collect();
            if let Some(wo) = l1_weight(other) {
                // ℓ1 · ℓ1: every entry of the lane with the right sign is an atom.
                for (k, &x) in a.iter().enumerate() {
                    let value = x / wo;
                    // Below the threshold only the running maximum is needed (the value).
                    if value > 0.0 && (value > request.above || value > best) {
                        best = f64::max(best, value);
                        found.push((value, j, sign, unit_in(a.len(), k, 1.0 / wo)));
                    }
                }
                continue;
            }
            if let Some((x, val)) = gauge::linear_max(other, &a) {
                found.push((val, j, sign, Array1::from(x)));
            }
        }
    }
    found.sort_by(|a, b| b.0.total_cmp(&a.0));
    let Some(&(value, ..)) = found.first() else {
        return none;
    };
    let atoms = found
        .into_iter()
        .enumerate()
        .take_while(|(i, (val, ..))| *i == 0 || *val > request.above)
        .take(request.max_atoms.max(1))
        .map(|(_, (val, j, sign, x))| {
            let e = unit(j, sign / w);
            let pair = if axis == Axis(0) {
                vec![e, x]
            } else {
                vec![x, e]
            };
            (pair, val)
        })
        .collect();
    Polar {
        value,
        atoms,
        residual: None,
        products: 0,
        heuristic_note: None,
    }
}

/// `value · eₖ` in n dimensions.
fn unit_in(n: usize, k: usize, value: f64) -> Array1<f64> {
    let mut e = Array1::zeros(n);
    e[k] = value;
    e
}
