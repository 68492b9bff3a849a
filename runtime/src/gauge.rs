//! The numbers behind the column gauges of [`kir::Gauge`](crate::kir::Gauge): value, prox and
//! linear maximization over the unit ball, one entry per atom.
//!
//! Prox of a composite `c·(w₂‖·‖₂ + h)` with `h` a sum of ℓ1 and TV terms is the composition
//! `prox_ℓ2 ∘ prox_ℓ1 ∘ prox_TV` (Yu 2013: prox_{f+g} = prox_f ∘ prox_g when
//! ∂g(prox_f(y)) ⊇ ∂g(y); positively homogeneous g satisfy it for the ℓ2 shrink, and the 1-D
//! TV and ℓ1 pair satisfy it too). A nonnegativity cone is projected first. ℓ∞ composes with
//! nothing, so it is accepted only alone ([`supported`]).

use crate::kir::{Gauge, GaugeAtom};

/// Why a gauge cannot be used by the runtime, or `None` when it can.
pub fn supported(gauge: &Gauge) -> Option<String> {
    let has = |atom| gauge.terms.iter().any(|(_, a)| *a == atom);
    if gauge.terms.is_empty() {
        return Some("an empty gauge".into());
    }
    if let Some((w, _)) = gauge
        .terms
        .iter()
        .find(|(w, _)| !(*w > 0.0 && w.is_finite()))
    {
        return Some(format!("a gauge term with weight {w}"));
    }
    let mut atoms: Vec<GaugeAtom> = gauge.terms.iter().map(|(_, a)| *a).collect();
    atoms.sort();
    if atoms.windows(2).any(|w| w[0] == w[1]) {
        return Some("a gauge with a repeated atom".into());
    }
    if has(GaugeAtom::Linf) && gauge.terms.len() > 1 {
        return Some("ℓ∞ combined with another norm (its prox does not compose)".into());
    }
    if has(GaugeAtom::Tv) && !has(GaugeAtom::L2) {
        return Some(
            "total variation without an ℓ2 term (a seminorm alone has an unbounded ball)".into(),
        );
    }
    if has(GaugeAtom::L1) && has(GaugeAtom::Tv) && !has(GaugeAtom::L2) {
        return Some("ℓ1 + TV without an ℓ2 term".into());
    }
    None
}

/// Σₖ |xₖ₊₁ − xₖ|.
fn total_variation(x: &[f64]) -> f64 {
    x.windows(2).map(|w| (w[1] - w[0]).abs()).sum()
}

fn atom_value(atom: GaugeAtom, x: &[f64]) -> f64 {
    match atom {
        GaugeAtom::L1 => x.iter().map(|v| v.abs()).sum(),
        GaugeAtom::L2 => x.iter().map(|v| v * v).sum::<f64>().sqrt(),
        GaugeAtom::Linf => x.iter().fold(0.0, |m, v| m.max(v.abs())),
        GaugeAtom::Tv => total_variation(x),
    }
}

/// The gauge's value on a column (the cone is a constraint the solver keeps; it adds nothing).
pub fn value(gauge: &Gauge, x: &[f64]) -> f64 {
    gauge
        .terms
        .iter()
        .map(|(w, atom)| w * atom_value(*atom, x))
        .sum()
}

/// Soft-thresholding: the prox of c‖·‖₁.
fn soft_threshold(x: &mut [f64], c: f64) {
    for v in x.iter_mut() {
        *v = v.signum() * (v.abs() - c).max(0.0);
    }
}

/// Group shrinkage: the prox of c‖·‖₂.
fn group_shrink(x: &mut [f64], c: f64) {
    let norm = atom_value(GaugeAtom::L2, x);
    let factor = if norm > c { 1.0 - c / norm } else { 0.0 };
    for v in x.iter_mut() {
        *v *= factor;
    }
}

/// Euclidean projection onto the ℓ1 ball of radius `radius` (sort-based).
fn project_l1_ball(x: &[f64], radius: f64) -> Vec<f64> {
    if atom_value(GaugeAtom::L1, x) <= radius {
        return x.to_vec();
    }
    let mut mags: Vec<f64> = x.iter().map(|v| v.abs()).collect();
    mags.sort_by(|a, b| b.total_cmp(a));
    let mut cumulative = 0.0;
    let mut theta = 0.0;
    for (k, m) in mags.iter().enumerate() {
        cumulative += m;
        let t = (cumulative - radius) / (k + 1) as f64;
        if *m > t {
            theta = t;
        }
    }
    x.iter()
        .map(|v| v.signum() * (v.abs() - theta).max(0.0))
        .collect()
}

/// The prox of c‖·‖∞ (Moreau: x − c·P_{ℓ1 ball}(x / c)).
pub(crate) fn linf_prox(x: &mut [f64], c: f64) {
    if c <= 0.0 {
        return;
    }
    let scaled: Vec<f64> = x.iter().map(|v| v / c).collect();
    let projected = project_l1_ball(&scaled, 1.0);
    for (v, p) in x.iter_mut().zip(projected) {
        *v -= c * p;
    }
}

/// The prox of `c·gauge` on one column, in place.
pub fn prox(gauge: &Gauge, x: &mut [f64], c: f64) {
    if gauge.nonneg {
        for v in x.iter_mut() {
            *v = v.max(0.0);
        }
    }
    if c <= 0.0 {
        return;
    }
    // Inner to outer: TV, then ℓ1, then ℓ∞ (alone), then the ℓ2 shrink.
    for order in [GaugeAtom::Tv, GaugeAtom::L1, GaugeAtom::Linf, GaugeAtom::L2] {
        for (w, atom) in &gauge.terms {
            if *atom != order {
                continue;
            }
            let weight = c * w;
            match atom {
                GaugeAtom::Tv => {
                    let input = x.to_vec();
                    tv_prox(&input, weight, x);
                }
                GaugeAtom::L1 => soft_threshold(x, weight),
                GaugeAtom::Linf => linf_prox(x, weight),
                GaugeAtom::L2 => group_shrink(x, weight),
            }
        }
    }
}

/// The prox of `h = gauge without its ℓ2 term`, weight c.
fn prox_without_l2(gauge: &Gauge, x: &mut [f64], c: f64) {
    let rest = Gauge {
        terms: gauge
            .terms
            .iter()
            .copied()
            .filter(|(_, a)| *a != GaugeAtom::L2)
            .collect(),
        nonneg: false,
    };
    prox(&rest, x, c);
}

/// Linear maximization over the unit ball: `argmax ⟨u, a⟩ s.t. gauge(u) ≤ 1` (and the cone),
/// with its value (the dual gauge of `a`). `None` when the maximum is 0 (a = 0, or no
/// ascent direction in the cone).
///
/// For `w₂‖·‖₂ + h` with h positively homogeneous the maximizer is `p / gauge(p)` where
/// `p = prox_{μh}(a)` and μ solves `‖prox_{μh}(a)‖₂ = μ·w₂` (the KKT conditions of the
/// problem, using ∂h(t·p) = ∂h(p) for t > 0); μ is found by bisection.
pub fn linear_max(gauge: &Gauge, a: &[f64]) -> Option<(Vec<f64>, f64)> {
    let a: Vec<f64> = if gauge.nonneg {
        a.iter().map(|v| v.max(0.0)).collect()
    } else {
        a.to_vec()
    };
    if a.iter().all(|v| *v == 0.0) {
        return None;
    }
    let l2_weight = gauge
        .terms
        .iter()
        .find(|(_, atom)| *atom == GaugeAtom::L2)
        .map(|(w, _)| *w);
    let u = match (l2_weight, gauge.terms.as_slice()) {
        (Some(w2), [_]) => {
            let norm = atom_value(GaugeAtom::L2, &a);
            a.iter().map(|v| v / (w2 * norm)).collect::<Vec<f64>>()
        }
        (Some(w2), _) => {
            let norm = atom_value(GaugeAtom::L2, &a);
            let excess = |mu: f64| {
                let mut p = a.clone();
                prox_without_l2(gauge, &mut p, mu);
                atom_value(GaugeAtom::L2, &p) - mu * w2
            };
            let (mut lo, mut hi) = (0.0, norm / w2);
            for _ in 0..100 {
                let mid = 0.5 * (lo + hi);
                if excess(mid) > 0.0 {
                    lo = mid;
                } else {
                    hi = mid;
                }
                if hi - lo <= 1e-15 * hi {
                    break;
                }
            }
            let mut p = a.clone();
            prox_without_l2(gauge, &mut p, lo);
            let g = value(gauge, &p);
            if g <= 0.0 {
                return None;
            }
            p.iter().map(|v| v / g).collect()
        }
        (None, [(w, GaugeAtom::L1)]) => {
            let (j, _) = a
                .iter()
                .enumerate()
                .max_by(|x, y| x.1.abs().total_cmp(&y.1.abs()))?;
            let mut u = vec![0.0; a.len()];
            u[j] = a[j].signum() / w;
            u
        }
        (None, [(w, GaugeAtom::Linf)]) => a
            .iter()
            .map(|v| if *v == 0.0 { 0.0 } else { v.signum() / w })
            .collect(),
        _ => return None,
    };
    let val: f64 = u.iter().zip(&a).map(|(x, y)| x * y).sum();
    (val > 0.0).then_some((u, val))
}

/// 1-D total-variation denoising: `out = argmin_x ½‖x − y‖² + λ Σ|xₖ₊₁ − xₖ|`, exactly, in
/// linear time in practice (Condat's direct algorithm, 2013). `out` must have `y`'s length.
///
/// The algorithm sweeps left to right keeping the current segment's admissible value range
/// `[vmin, vmax]` and the running dual values; when the range cannot be extended it fixes a
/// segment at one end of the range (a jump) and restarts after it.
pub fn tv_prox(y: &[f64], lambda: f64, out: &mut [f64]) {
    let n = y.len();
    if n == 0 {
        return;
    }
    if lambda <= 0.0 {
        out.copy_from_slice(y);
        return;
    }
    let (mut k, mut k0) = (0usize, 0usize);
    let (mut kplus, mut kminus) = (0usize, 0usize);
    let (mut umin, mut umax) = (lambda, -lambda);
    let (mut vmin, mut vmax) = (y[0] - lambda, y[0] + lambda);
    loop {
        // At the right boundary the last segment must close with dual value 0.
        while k == n - 1 {
            if umin < 0.0 {
                // vmin is too high: a negative jump ends the segment at kminus.
                while k0 <= kminus {
                    out[k0] = vmin;
                    k0 += 1;
                }
                k = k0;
                kminus = k0;
                vmin = y[k0];
                umin = lambda;
                umax = vmin + umin - vmax;
            } else if umax > 0.0 {
                // vmax is too low: a positive jump ends the segment at kplus.
                while k0 <= kplus {
                    out[k0] = vmax;
                    k0 += 1;
                }
                k = k0;
                kplus = k0;
                vmax = y[k0];
                umax = -lambda;
                umin = vmax + umax - vmin;
            } else {
                vmin += umin / (k - k0 + 1) as f64;
                while k0 <= k {
                    out[k0] = vmin;
                    k0 += 1;
                }
                return;
            }
        }
        umin += y[k + 1] - vmin;
        if umin < -lambda {
            // Negative jump.
            while k0 <= kminus {
                out[k0] = vmin;
                k0 += 1;
            }
            k = k0;
            kminus = k0;
            kplus = k0;
            vmin = y[k0];
            vmax = vmin + 2.0 * lambda;
            umin = lambda;
            umax = -lambda;
            continue;
        }
        umax += y[k + 1] - vmax;
        if umax > lambda {
            // Positive jump.
            while k0 <= kplus {
                out[k0] = vmax;
                k0 += 1;
            }
            k = k0;
            kminus = k0;
            kplus = k0;
            vmax = y[k0];
            vmin = vmax - 2.0 * lambda;
            umin = lambda;
            umax = -lambda;
            continue;
        }
        // No jump: extend the segment.
        k += 1;
        if umin >= lambda {
            kminus = k;
            vmin += (umin - lambda) / (kminus - k0 + 1) as f64;
            umin = lambda;
        }
        if umax <= -lambda {
            kplus = k;
            vmax += (umax + lambda) / (kplus - k0 + 1) as f64;
            umax = -lambda;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// KKT check of 1-D TV denoising: with zₖ = Σ_{i≤k} (yᵢ − xᵢ), the solution has
    /// z_{n−1} = 0, |zₖ| ≤ λ, and zₖ = −λ·sign(xₖ₊₁ − xₖ) wherever x jumps.
    fn tv_kkt_violation(y: &[f64], x: &[f64], lambda: f64) -> f64 {
        let mut z = 0.0;
        let mut worst: f64 = 0.0;
        for k in 0..y.len() {
            z += y[k] - x[k];
            if k + 1 < y.len() {
                worst = worst.max(z.abs() - lambda);
                let jump = x[k + 1] - x[k];
                if jump.abs() > 1e-12 {
                    worst = worst.max((z + lambda * jump.signum()).abs());
                }
            } else {
                worst = worst.max(z.abs());
            }
        }
        worst
    }

    fn lcg(seed: u64, n: usize) -> Vec<f64> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|k| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = (s >> 11) as f64 / (1u64 << 53) as f64;
                // Piecewise-constant signal plus noise.
                ((k / 7) % 3) as f64 + (u - 0.5)
            })
            .collect()
    }

    #[test]
    fn tv_prox_satisfies_kkt() {
        for seed in 0..200u64 {
            let n = 1 + (seed as usize * 7) % 60;
            let y = lcg(seed, n);
            for lambda in [0.01, 0.1, 0.5, 2.0, 50.0] {
                let mut x = vec![0.0; n];
                tv_prox(&y, lambda, &mut x);
                let v = tv_kkt_violation(&y, &x, lambda);
                assert!(v < 1e-9, "seed {seed} n {n} λ {lambda}: violation {v}");
            }
        }
    }

    #[test]
    fn tv_prox_closed_forms() {
        // Large λ: the mean.
        let y = [1.0, 5.0, 3.0];
        let mut x = [0.0; 3];
        tv_prox(&y, 100.0, &mut x);
        assert!(x.iter().all(|v| (v - 3.0).abs() < 1e-12), "{x:?}");
        // Two points: each moves λ toward the other until they meet.
        let mut x = [0.0; 2];
        tv_prox(&[0.0, 1.0], 0.25, &mut x);
        assert_eq!(x, [0.25, 0.75]);
    }

    fn gauge(terms: &[(f64, GaugeAtom)], nonneg: bool) -> Gauge {
        Gauge {
            terms: terms.to_vec(),
            nonneg,
        }
    }

    #[test]
    fn prox_closed_forms() {
        let mut x = vec![3.0, -1.0, 0.5];
        prox(&gauge(&[(1.0, GaugeAtom::L1)], false), &mut x, 1.0);
        assert_eq!(x, vec![2.0, 0.0, 0.0]);
        let mut x = vec![3.0, 4.0];
        prox(&gauge(&[(1.0, GaugeAtom::L2)], false), &mut x, 2.5);
        assert_eq!(x, vec![1.5, 2.0]);
        let mut x = vec![3.0, -4.0];
        prox(&gauge(&[(1.0, GaugeAtom::L2)], true), &mut x, 1.0);
        assert_eq!(x, vec![2.0, 0.0]);
        // prox of c‖·‖∞ of (3, 1) with c = 1: (2, 1).
        let mut x = vec![3.0, 1.0];
        prox(&gauge(&[(1.0, GaugeAtom::Linf)], false), &mut x, 1.0);
        assert!(
            (x[0] - 2.0).abs() < 1e-12 && (x[1] - 1.0).abs() < 1e-12,
            "{x:?}"
        );
    }

    /// The composite prox agrees with the optimality condition of ½‖x−y‖² + c(‖x‖₂ + g‖x‖₁):
    /// checked against a fine-grained subgradient test.
    #[test]
    fn sparse_group_prox_is_optimal() {
        let g = gauge(&[(1.0, GaugeAtom::L2), (0.5, GaugeAtom::L1)], false);
        let y = vec![2.0, -1.0, 0.2, 0.7];
        let mut x = y.clone();
        prox(&g, &mut x, 0.6);
        let obj = |x: &[f64]| {
            0.5 * x.iter().zip(&y).map(|(a, b)| (a - b).powi(2)).sum::<f64>() + 0.6 * value(&g, x)
        };
        let best = obj(&x);
        for k in 0..4 {
            for d in [-1e-4, 1e-4] {
                let mut z = x.clone();
                z[k] += d;
                assert!(obj(&z) >= best - 1e-12);
            }
        }
    }

    #[test]
    fn linear_max_attains_the_dual_norm() {
        let a = [3.0, -4.0, 1.0];
        let (u, v) = linear_max(&gauge(&[(1.0, GaugeAtom::L2)], false), &a).unwrap();
        assert!(
            (v - 26f64.sqrt()).abs() < 1e-12
                && (value(&gauge(&[(1.0, GaugeAtom::L2)], false), &u) - 1.0).abs() < 1e-12
        );
        let (_, v) = linear_max(&gauge(&[(1.0, GaugeAtom::L1)], false), &a).unwrap();
        assert_eq!(v, 4.0);
        let (_, v) = linear_max(&gauge(&[(2.0, GaugeAtom::Linf)], false), &a).unwrap();
        assert_eq!(v, 4.0);
        let (u, v) = linear_max(&gauge(&[(1.0, GaugeAtom::L2)], true), &a).unwrap();
        assert!((v - 10f64.sqrt()).abs() < 1e-12 && u[1] == 0.0);
        // Composite: the value is the dual gauge; compare with a brute-force search over a
        // grid of directions in the plane.
        let g = gauge(&[(1.0, GaugeAtom::L2), (0.7, GaugeAtom::L1)], false);
        let a = [1.3, -0.4];
        let (u, v) = linear_max(&g, &a).unwrap();
        assert!((value(&g, &u) - 1.0).abs() < 1e-9);
        let mut brute: f64 = 0.0;
        for k in 0..200_000 {
            let t = k as f64 * std::f64::consts::TAU / 200_000.0;
            let d = [t.cos(), t.sin()];
            brute = brute.max((d[0] * a[0] + d[1] * a[1]) / value(&g, &d));
        }
        assert!((v - brute).abs() < 1e-6, "{v} vs {brute}");
    }
}
