//! Seeded synthetic data for examples, tests and benchmarks: planted low-rank matrices,
//! noise, sampled observations. Deterministic for a given seed on every platform (ChaCha8).

use ndarray::{Array1, Array2};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::linalg;
use crate::polar::normal_vector;
use crate::value::Observed;

/// A generator.
pub struct Synth {
    rng: ChaCha8Rng,
}

impl Synth {
    /// A generator with a seed.
    pub fn new(seed: u64) -> Synth {
        Synth {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// An `rows × cols` matrix of standard normal entries.
    pub fn normal(&mut self, rows: usize, cols: usize) -> Array2<f64> {
        let v: Array1<f64> = normal_vector(&mut self.rng, rows * cols);
        v.into_shape_with_order((rows, cols))
            .unwrap_or_else(|_| Array2::zeros((rows, cols)))
    }

    /// A planted rank-`rank` matrix A Bᵀ / √rank (entries of order 1), nonnegative factors
    /// when `nonneg`.
    pub fn low_rank(&mut self, rows: usize, cols: usize, rank: usize, nonneg: bool) -> Array2<f64> {
        let mut a = self.normal(rows, rank);
        let mut b = self.normal(cols, rank);
        if nonneg {
            a.mapv_inplace(f64::abs);
            b.mapv_inplace(f64::abs);
        }
        linalg::gemm(
            a.view(),
            false,
            b.view(),
            true,
            1.0 / (rank.max(1) as f64).sqrt(),
        )
    }

    /// A planted CP tensor `Σᵢ a¹ᵢ ⊗ … ⊗ aᴷᵢ` of the given shape and rank, standard normal
    /// factors (returned too, one `[nₖ, rank]` per mode).
    pub fn cp_tensor(
        &mut self,
        shape: &[usize],
        rank: usize,
    ) -> (ndarray::ArrayD<f64>, Vec<Array2<f64>>) {
        let factors: Vec<Array2<f64>> = shape.iter().map(|&n| self.normal(n, rank)).collect();
        let tensor = ndarray::ArrayD::from_shape_fn(shape, |index| {
            (0..rank)
                .map(|i| {
                    factors
                        .iter()
                        .enumerate()
                        .map(|(k, a)| a[(index[k], i)])
                        .product::<f64>()
                })
                .sum()
        });
        (tensor, factors)
    }

    /// Adds Gaussian noise of standard deviation `sigma`.
    pub fn add_noise(&mut self, y: &mut Array2<f64>, sigma: f64) {
        let noise = self.normal(y.nrows(), y.ncols());
        y.scaled_add(sigma, &noise);
    }

    /// A uniform number in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.rng.random::<f64>()
    }

    /// Each entry of `y` observed with probability `fraction`.
    pub fn observe(&mut self, y: &Array2<f64>, fraction: f64) -> Observed {
        let mut entries = Vec::new();
        for ((i, j), v) in y.indexed_iter() {
            if self.uniform() < fraction {
                entries.push((i as u32, j as u32, *v));
            }
        }
        Observed::from_triplets(y.nrows(), y.ncols(), entries)
    }

    /// A planted two-layer ReLU teacher in the plane: `n` inputs uniform on [−1, 1]², and
    /// outputs `Σₖ aₖ relu(xᵀwₖ)` for neurons at the given angles (radians, each moved by up
    /// to ±0.2 at random) with outer weights `aₖ`. Returns (X `[n, 2]`, Y `[n, 1]`, the
    /// first-layer directions `[2, k]`).
    pub fn relu_teacher(
        &mut self,
        n: usize,
        neurons: &[(f64, f64)],
    ) -> (Array2<f64>, Array2<f64>, Array2<f64>) {
        let x = Array2::from_shape_fn((n, 2), |_| 2.0 * self.uniform() - 1.0);
        let mut y = Array2::zeros((n, 1));
        let mut directions = Array2::zeros((2, neurons.len()));
        for (k, &(angle, weight)) in neurons.iter().enumerate() {
            let angle = angle + 0.4 * (self.uniform() - 0.5);
            let w = ndarray::array![angle.cos(), angle.sin()];
            let hidden = x.dot(&w).mapv(|a| a.max(0.0));
            y.column_mut(0).scaled_add(weight, &hidden);
            directions.column_mut(k).assign(&w);
        }
        (x, y, directions)
    }
}

/// The teacher of the ReLU examples and tests: three neurons at 0.3, 2.2 and 4.1 rad with
/// outer weights 1, −0.8 and 1.2.
pub const RELU_TEACHER: [(f64, f64); 3] = [(0.3, 1.0), (2.2, -0.8), (4.1, 1.2)];

/// Observed entries as a Matrix Market coordinate file.
pub fn to_matrix_market(o: &Observed) -> String {
    use std::fmt::Write;
    let mut out = String::from("%%MatrixMarket matrix coordinate real general\n");
    let _ = writeln!(out, "{} {} {}", o.rows, o.cols, o.len());
    for ((i, j), v) in o.row.iter().zip(&o.col).zip(o.values.iter()) {
        let _ = writeln!(out, "{} {} {v:?}", i + 1, j + 1);
    }
    out
}
