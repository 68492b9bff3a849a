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
            let trial = normalize3([w[0] + step * t[0], w[1] + step * t[1], w[2] + step * t[2]]);
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
            let (w, v) = gradient_steps(&f, [radius * phi.cos(), radius * phi.sin(), height], 3);
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
    let warm = q
        .t()
        .dot(&ndarray::concatenate![Axis(0), exact.w, array![0.0]]);
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
