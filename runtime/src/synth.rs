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
        (linalg::cp_compose(&factors, shape), factors)
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

/// A planted three-layer parallel ReLU teacher (see [`Synth::deep_relu_teacher`]).
#[derive(Clone, Debug, PartialEq)]
pub struct DeepReluTeacher {
    /// Inputs `[n, d]`, standard normal.
    pub x: Array2<f64>,
    /// Outputs `[n, c]` = `Σᵢ relu(relu(X W1ᵢ) w2ᵢ) w3ᵢᵀ`.
    pub y: Array2<f64>,
    /// First layers `[d·h, k]`, column i the row-major `[d, h]` matrix W1ᵢ.
    pub first: Array2<f64>,
    /// Second layers `[h, k]`, nonnegative (every planted subnetwork is active somewhere).
    pub second: Array2<f64>,
    /// Last layers `[c, k]`.
    pub last: Array2<f64>,
}

impl Synth {
    /// `k` planted subnetworks of `hidden` units each on `n` normal inputs of dimension `d`,
    /// `c` outputs; normal first and last layers, |normal| second layers.
    pub fn deep_relu_teacher(
        &mut self,
        n: usize,
        d: usize,
        hidden: usize,
        k: usize,
        c: usize,
    ) -> DeepReluTeacher {
        let x = self.normal(n, d);
        let first = self.normal(d * hidden, k);
        let second = self.normal(hidden, k).mapv(f64::abs);
        let last = self.normal(c, k);
        let mut y = Array2::zeros((n, c));
        for i in 0..k {
            let w1 = first
                .column(i)
                .to_owned()
                .into_shape_with_order((d, hidden))
                .unwrap_or_else(|_| Array2::zeros((d, hidden)));
            let h1 = x.dot(&w1).mapv(|a| a.max(0.0));
            let h2 = h1.dot(&second.column(i)).mapv(|a| a.max(0.0));
            for (mut row, &a) in y.outer_iter_mut().zip(&h2) {
                row.scaled_add(a, &last.column(i));
            }
        }
        DeepReluTeacher {
            x,
            y,
            first,
            second,
            last,
        }
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

/// What [`Synth::calcium_video`] plants: sizes, footprint widths, spiking and noise.
#[derive(Clone, Debug, PartialEq)]
pub struct CalciumSpec {
    /// Pixels, on a line (see [`Synth::calcium_video`] for why 1-D).
    pub pixels: usize,
    /// Frames.
    pub frames: usize,
    /// Neurons; each gets a slot of `pixels / neurons` pixels.
    pub neurons: usize,
    /// The smallest and largest footprint width in pixels (clamped to the slot less a margin).
    pub width: (usize, usize),
    /// The probability of a spike per neuron and frame.
    pub spike_rate: f64,
    /// The calcium transient's decay time in frames: a spike's fluorescence is multiplied by
    /// exp(−1/decay) per frame.
    pub decay: f64,
    /// The standard deviation of the Gaussian noise added to the video.
    pub noise: f64,
}

/// A synthetic calcium-imaging video and what was planted in it.
#[derive(Clone, Debug, PartialEq)]
pub struct CalciumVideo {
    /// The video `[pixels, frames]`: `Σᵢ shapeᵢ traceᵢᵀ` plus noise.
    pub y: Array2<f64>,
    /// The footprints `[pixels, neurons]`: a plateau of height in [0.8, 1.2] on the
    /// neuron's support, 0 elsewhere.
    pub shapes: Array2<f64>,
    /// The fluorescence traces `[frames, neurons]`: the spikes convolved with the decay.
    pub traces: Array2<f64>,
    /// The spikes `[frames, neurons]`: 0, or an amplitude in [0.5, 1.5].
    pub spikes: Array2<f64>,
    /// Each neuron's support: the pixels `start..end` where its footprint is positive.
    /// Supports are disjoint and at least two pixels apart.
    pub supports: Vec<std::ops::Range<usize>>,
}

impl Synth {
    /// A calcium-imaging-like video (the structured factorization of Haeffele & Vidal, ICML
    /// 2014): neurons with sparse, piecewise-constant, nonnegative footprints firing sparse
    /// spikes, each spike a transient `a·exp(−t/decay)`, plus Gaussian noise.
    ///
    /// The pixels lie on a line, not on a 2-D grid, because hfc's `tv` gauge is the 1-D total
    /// variation down a factor's column, `Σₖ |xₖ₊₁ − xₖ|`: a footprint on a line is a
    /// plateau whose TV is exactly its two edges, so `norm1 + tv` is the right prior. A 2-D
    /// image flattened into a column would have its vertical edges scattered over the column
    /// and jumps between image rows counted as edges; that needs a 2-D TV gauge.
    ///
    /// Neuron `k` lives in the slot `[k·s, (k + 1)·s)` with `s = pixels / neurons`; its
    /// support is a random interval of the slot, one pixel in from either end, so supports
    /// never touch. Every neuron spikes at least once.
    pub fn calcium_video(&mut self, spec: &CalciumSpec) -> CalciumVideo {
        let (pixels, frames, neurons) = (spec.pixels, spec.frames, spec.neurons);
        let mut shapes = Array2::zeros((pixels, neurons));
        let mut traces = Array2::zeros((frames, neurons));
        let mut spikes = Array2::zeros((frames, neurons));
        let mut supports = Vec::with_capacity(neurons);
        let slot = pixels.checked_div(neurons).unwrap_or(0);
        // A margin of one pixel at each end of the slot keeps neighbours two pixels apart.
        let room = slot.saturating_sub(2);
        let retain = (-1.0 / spec.decay.max(f64::MIN_POSITIVE)).exp();
        for k in 0..neurons {
            let lo = spec.width.0.clamp(1, room.max(1));
            let hi = spec.width.1.clamp(lo, room.max(1));
            let width = (lo + self.below(hi - lo + 1)).min(room);
            let start = k * slot + 1 + self.below(room - width + 1);
            let height = 0.8 + 0.4 * self.uniform();
            for p in start..start + width {
                shapes[[p, k]] = height;
            }
            supports.push(start..start + width);
            let mut any = false;
            for t in 0..frames {
                if self.uniform() < spec.spike_rate {
                    spikes[[t, k]] = 0.5 + self.uniform();
                    any = true;
                }
            }
            if !any && frames > 0 {
                let t = self.below(frames);
                spikes[[t, k]] = 0.5 + self.uniform();
            }
            let mut level = 0.0;
            for t in 0..frames {
                level = retain * level + spikes[[t, k]];
                traces[[t, k]] = level;
            }
        }
        let mut y = linalg::gemm(shapes.view(), false, traces.view(), true, 1.0);
        self.add_noise(&mut y, spec.noise);
        CalciumVideo {
            y,
            shapes,
            traces,
            spikes,
            supports,
        }
    }

    /// A uniform integer in `0..n` (0 when n is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        ((self.uniform() * n as f64) as usize).min(n - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calcium_video_plants_disjoint_plateaus_and_decaying_traces() {
        let spec = CalciumSpec {
            pixels: 60,
            frames: 80,
            neurons: 4,
            width: (5, 9),
            spike_rate: 0.05,
            decay: 4.0,
            noise: 0.0,
        };
        let video = Synth::new(3).calcium_video(&spec);
        assert_eq!(video.y.dim(), (60, 80));
        assert_eq!(video.supports.len(), 4);
        for (k, support) in video.supports.iter().enumerate() {
            assert!((5..=9).contains(&support.len()), "{support:?}");
            assert!(support.start > k * 15 && support.end < (k + 1) * 15);
            let column = video.shapes.column(k);
            let height = column[support.start];
            assert!((0.8..1.2).contains(&height));
            for (p, v) in column.iter().enumerate() {
                assert_eq!(*v, if support.contains(&p) { height } else { 0.0 });
            }
            assert!(video.spikes.column(k).iter().any(|s| *s > 0.0));
            // Between spikes the trace decays by exp(−1/4) per frame.
            for t in 1..80 {
                if video.spikes[[t, k]] == 0.0 {
                    let expected = video.traces[[t - 1, k]] * (-0.25f64).exp();
                    assert!((video.traces[[t, k]] - expected).abs() <= 1e-15);
                }
            }
        }
        // Without noise the video is exactly the planted factorization.
        let planted = video.shapes.dot(&video.traces.t());
        assert_eq!(video.y, planted);
        // The same seed gives the same video.
        assert_eq!(Synth::new(3).calcium_video(&spec), video);
    }
}
