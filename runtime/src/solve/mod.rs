//! The rank-growing meta-algorithm with its certificate (DESIGN §4).
//!
//! ```text
//! r ← r₀; W ← init(seed)
//! loop:
//!     local descent at fixed r: accelerated alternating proximal gradient (steps 1/L per
//!         block from the Lipschitz bound, extrapolation with restart when F increases,
//!         column balancing, pruning of zero columns, merging of parallel columns) until F
//!         stalls
//!     p ← Ω°(−∇ℓ(X)) by the plan's polar solver
//!     stop when p ≤ λ(1 + tol) (and, for an exact polar, the relative duality gap ≤ tol)
//!     else append the polar maximizer scaled by the best step, r ← r + 1
//! ```
//!
//! The objective is `F = ℓ(U Vᵀ) + w Σᵢ g_U(uᵢ) g_V(vᵢ)` with `w = λ·scale`. The polar value
//! reported is `sup uᵀZv / scale`, comparable with λ. The duality gap (exact polars) uses
//! Z = s·∇ℓ with s = min(1, w / sup uᵀ(−∇ℓ)v): D = −ℓ*(Z) is a lower bound on the optimum.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use ndarray::{Array1, Array2, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::backend::ExecError;
use crate::kir::{Lipschitz, PolarSolver, Regularization, Role, Slot};
use crate::linalg;
use crate::machine::Machine;
use crate::polar::{self, Polar};
use crate::value::Value;

mod dropout;

pub use dropout::{DropoutClosedForm, dropout_closed_form, equalization_spread};

/// Descent iterations at one size before the polar test is consulted again.
const DESCENT_BUDGET: u64 = 2000;

/// Iterations per window of the crawl test in local descent.
const CRAWL_WINDOW: u32 = 100;

/// How to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Iterations of local descent, in all.
    pub max_iter: u64,
    /// Relative tolerance.
    pub tol: f64,
    /// Largest size r.
    pub max_rank: Option<usize>,
    /// Size to start from (random columns).
    pub init_rank: usize,
    /// Seed of the initialization and of polar starts.
    pub seed: u64,
    /// Set to stop cleanly (Ctrl-C).
    pub interrupt: Option<Arc<AtomicBool>>,
}

/// Why the solver stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The polar test passed (a certified optimum when the polar is exact).
    Optimal,
    /// The iteration budget ran out.
    IterationLimit,
    /// The polar test failed at the largest size allowed.
    RankLimit,
    /// Interrupted.
    Interrupted,
    /// The polar maximizer did not decrease the objective (a local polar solver's limit, or
    /// rounding), or its column merged back into the one it copied without moving the polar
    /// value.
    NoProgress,
}

impl Stop {
    /// How the report says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Stop::Optimal => "optimal",
            Stop::IterationLimit => "iteration_limit",
            Stop::RankLimit => "rank_limit",
            Stop::Interrupted => "interrupted",
            Stop::NoProgress => "no_progress",
        }
    }
}

/// One point of the convergence history.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Record {
    /// Descent iterations so far.
    pub iteration: u64,
    /// Outer iterations so far.
    pub outer: u64,
    /// The size r.
    pub rank: usize,
    /// F.
    pub objective: f64,
    /// Ω°(−∇ℓ), where computed (outer iterations).
    pub polar_value: Option<f64>,
    /// The duality gap, where computed (exact polars).
    pub gap: Option<f64>,
}

/// What the solver reports while it runs.
pub type Progress<'a> = &'a mut dyn FnMut(&Record);

/// The result of a run.
#[derive(Clone, Debug)]
pub struct Solution {
    /// The factors in block order (U `[m, r]` and V `[n, r]`; a CP model's modes).
    pub factors: Vec<Array2<f64>>,
    /// F at the end.
    pub objective: f64,
    /// ℓ at the end.
    pub loss: f64,
    /// λ·Θ at the end.
    pub regularizer: f64,
    /// λ.
    pub lambda: f64,
    /// The polar value at the end, comparable with λ.
    pub polar_value: f64,
    /// The polar value at W = 0: the smallest λ whose solution is 0.
    pub lambda_max: f64,
    /// F − D (exact polars only).
    pub gap: Option<f64>,
    /// The gap relative to F.
    pub relative_gap: Option<f64>,
    /// Lanczos residual of the last polar value (a bound on its error), when it has one.
    pub polar_residual: Option<f64>,
    /// Descent iterations.
    pub iterations: u64,
    /// Outer iterations (polar solves after the first).
    pub outer_iterations: u64,
    /// Why it stopped.
    pub stop: Stop,
    /// Seconds in local descent.
    pub seconds_descent: f64,
    /// Seconds in polar solves and gaps.
    pub seconds_polar: f64,
    /// The history.
    pub history: Vec<Record>,
    /// Dropout's numbers (dropout regularizers only).
    pub dropout: Option<DropoutSummary>,
    /// Why the last polar value is heuristic although the plan's solver is exact (the ReLU
    /// enumeration above its cap); `None` otherwise.
    pub polar_note: Option<String>,
}

/// What a dropout run adds to its [`Solution`].
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DropoutSummary {
    /// κ in `κ·m·Σᵢ ‖uᵢ‖²‖vᵢ‖²`.
    pub kappa: f64,
    /// Whether the rate grows with the size (m = r) or is fixed (m = 1).
    pub adaptive: bool,
    /// 2κ_c: the weight λ of the induced `½λ‖X‖_*²` at the final size, which the reported
    /// polar value `σ_max(Y − X)/‖X‖_*` is compared with.
    pub lambda_convex: f64,
    /// ‖U Vᵀ‖_*.
    pub nuclear_norm: f64,
    /// `(max − min)/mean` of `‖uᵢ‖‖vᵢ‖`: 0 when the factors are equalized.
    pub equalization_spread: f64,
    /// F after splitting every column into two copies scaled by 1/√2 (the same map): below F
    /// at a fixed rate, which therefore does not limit the size.
    pub split_objective: f64,
}

impl Solution {
    /// The size r.
    pub fn rank(&self) -> usize {
        self.factors.first().map_or(0, Array2::ncols)
    }

    /// The first factor (U).
    pub fn left(&self) -> &Array2<f64> {
        &self.factors[0]
    }

    /// The second factor (V).
    pub fn right(&self) -> &Array2<f64> {
        &self.factors[1]
    }

    /// Whether it stopped at a point that passed the polar test.
    pub fn converged(&self) -> bool {
        self.stop == Stop::Optimal
    }
}

/// A fault while solving.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SolveError {
    /// The back end failed.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// The objective became NaN or infinite.
    #[error(
        "the objective became {0} at iteration {1}; the data may be badly scaled (try a smaller step: rescale the data)"
    )]
    NonFinite(f64, u64),
}

/// F and ℓ at a point.
type ObjectiveAndLoss = (f64, f64);

/// The factors W_0 … W_{K−1}, each `[n_k, r]`.
type Factors = Vec<Array2<f64>>;

struct State<'m, 'p> {
    machine: &'m mut Machine<'p>,
    weight: f64,
    smoothness: f64,
    /// λ_max(XᵀX) for [`Lipschitz::InputTimesOtherGram`] (read once after `Setup`).
    input_norm_sq: f64,
    /// Per block, the L of its last accepted backtracking step.
    accepted_lipschitz: Vec<Option<f64>>,
}

impl State<'_, '_> {
    fn bind(&mut self, factors: &[Array2<f64>]) -> Result<(), ExecError> {
        self.machine
            .set_rank(factors.first().map_or(0, Array2::ncols));
        for (k, w) in factors.iter().enumerate() {
            self.machine.set_matrix(Slot::Factor(k as u8), w.clone())?;
        }
        Ok(())
    }

    /// The column gauges of every factor (of the factors bound).
    fn gauges(&mut self, blocks: usize) -> Result<Vec<Array1<f64>>, ExecError> {
        (0..blocks as u8)
            .map(|k| {
                self.machine.run(Role::Gauge(k))?;
                self.machine.vector(Slot::Gauge(k))
            })
            .collect()
    }

    /// w·Σᵢ Πₖ gₖ(wₖᵢ) at the factors bound.
    fn regularizer(&mut self, blocks: usize) -> Result<f64, ExecError> {
        let gauges = self.gauges(blocks)?;
        Ok(self.weight
            * match gauges.as_slice() {
                [a, b] => a.dot(b),
                _ => column_products(&gauges, None).sum(),
            })
    }

    /// F at the factors: (objective, loss).
    fn objective(&mut self, factors: &[Array2<f64>]) -> Result<(f64, f64), ExecError> {
        self.bind(factors)?;
        self.machine.run(Role::Value)?;
        let loss = self.machine.scalar(Slot::Loss)?;
        Ok((loss + self.regularizer(factors.len())?, loss))
    }

    /// One prox-gradient step on block k from `factors[k]` with the others fixed (all
    /// bound): step 1/L with L from the plan's rule for the block, then the column prox with
    /// weights w·Πₗ≠ₖ gₗ(columns)/L. Returns the new block.
    fn prox_step(&mut self, k: usize, factors: &[Array2<f64>]) -> Result<Array2<f64>, ExecError> {
        let block = k as u8;
        let from = &factors[k];
        self.machine.run(Role::Grad(block))?;
        let grad = self.machine.matrix(Slot::Grad(block))?;
        let rule = self.machine.plan().lipschitz[k];
        let other_gram = || largest_eigenvalue_of_other_grams(factors, k);
        let curvature = match rule {
            Lipschitz::OtherGram => other_gram(),
            Lipschitz::BlockGram => {
                linalg::largest_eigenvalue(self.machine.matrix(Slot::BlockGram)?.view())
            }
            Lipschitz::InputTimesOtherGram => self.input_norm_sq * other_gram(),
            // Half the last accepted L (a longer step when it can), or 1 before the first.
            Lipschitz::Backtracking => match self.accepted_lipschitz.get(k).copied().flatten() {
                Some(last) => 0.5 * last / self.smoothness.max(f64::MIN_POSITIVE),
                None => 1.0,
            },
        };
        let mut lipschitz = (self.smoothness * curvature).max(1e-300);
        // The loss where the step starts (the gradient kernel computed it) for backtracking.
        let backtrack = matches!(
            rule,
            Lipschitz::InputTimesOtherGram | Lipschitz::Backtracking
        );
        let loss_from = if backtrack {
            self.machine.scalar(Slot::Loss)?
        } else {
            0.0
        };
        let mut other_gauges = Vec::with_capacity(factors.len());
        for l in (0..factors.len()).filter(|&l| l != k) {
            self.machine.run(Role::Gauge(l as u8))?;
            other_gauges.push(self.machine.vector(Slot::Gauge(l as u8))?);
        }
        let gauges = column_products(&other_gauges, None);
        for _ in 0..60 {
            let weights = &gauges * (self.weight / lipschitz);
            let mut start = from.clone();
            start.scaled_add(-1.0 / lipschitz, &grad);
            self.machine.set_matrix(Slot::Step(block), start)?;
            self.machine
                .set(Slot::ProxWeights, Value::Vector(weights))?;
            self.machine.run(Role::Prox(block))?;
            let next = self.machine.matrix(Slot::Factor(block))?;
            if !backtrack {
                return Ok(next);
            }
            // Accept when ℓ(next) ≤ ℓ(from) + ⟨∇, Δ⟩ + L/2 ‖Δ‖² (the bound that makes the
            // prox step descend); an activation pattern that changed can break it.
            self.machine.run(Role::Value)?;
            let loss_next = self.machine.scalar(Slot::Loss)?;
            let delta = &next - from;
            let bound =
                loss_from + (&grad * &delta).sum() + 0.5 * lipschitz * (&delta * &delta).sum();
            if loss_next <= bound + 1e-12 * loss_from.abs() {
                if let Some(slot) = self.accepted_lipschitz.get_mut(k) {
                    *slot = Some(lipschitz);
                }
                return Ok(next);
            }
            lipschitz *= 2.0;
            self.machine.set_matrix(Slot::Factor(block), from.clone())?;
        }
        Ok(from.clone())
    }

    /// A prox-gradient step on block k of `factors` (whose block k is the point the step
    /// starts from); returns the new block. After the last block, also the objective and
    /// loss at the new point (the loss through `ValueAfterLast`, which may reuse what the
    /// last `Grad` computed).
    fn step(
        &mut self,
        k: usize,
        factors: &[Array2<f64>],
    ) -> Result<(Array2<f64>, Option<ObjectiveAndLoss>), ExecError> {
        self.bind(factors)?;
        let next = self.prox_step(k, factors)?;
        if k + 1 < factors.len() {
            return Ok((next, None));
        }
        self.machine.run(Role::ValueAfterLast)?;
        let loss = self.machine.scalar(Slot::Loss)?;
        let objective = loss + self.regularizer(factors.len())?;
        Ok((next, Some((objective, loss))))
    }

    /// One sweep over the blocks from `starts` (block k's step starts from `starts[k]`, the
    /// blocks before it are already new): the new factors, objective and loss.
    fn sweep(
        &mut self,
        current: &[Array2<f64>],
        starts: &[Array2<f64>],
    ) -> Result<(Factors, f64, f64), ExecError> {
        let mut factors: Factors = current.to_vec();
        let mut result = (0.0, 0.0);
        for k in 0..factors.len() {
            factors[k] = starts[k].clone();
            let (next, at_end) = self.step(k, &factors)?;
            factors[k] = next;
            if let Some(values) = at_end {
                result = values;
            }
        }
        Ok((factors, result.0, result.1))
    }
}

/// λ_max of the Hadamard product of the factors' Grams other than block k: the curvature of
/// a multilinear map in block k (`VᵀV` for `U * V'`).
fn largest_eigenvalue_of_other_grams(factors: &[Array2<f64>], k: usize) -> f64 {
    let mut product: Option<Array2<f64>> = None;
    for (l, w) in factors.iter().enumerate() {
        if l == k {
            continue;
        }
        let gram = linalg::gemm(w.view(), true, w.view(), false, 1.0);
        product = Some(match product {
            None => gram,
            Some(p) => p * gram,
        });
    }
    product.map_or(0.0, |p| linalg::largest_eigenvalue(p.view()))
}

/// Πₖ vₖ entrywise over the vectors (the first one itself when there is one, so two-factor
/// results stay bit-identical to a plain product).
fn column_products(vectors: &[Array1<f64>], skip: Option<usize>) -> Array1<f64> {
    let mut out: Option<Array1<f64>> = None;
    for (k, v) in vectors.iter().enumerate() {
        if Some(k) == skip {
            continue;
        }
        out = Some(match out {
            None => v.clone(),
            Some(p) => p * v,
        });
    }
    out.unwrap_or_default()
}

/// Rescales columns so that every factor's gauge of column i is the same (the map and θ do
/// not change: the map is positively homogeneous of degree 1 in each factor), drops the
/// columns where any is 0 (they add nothing to the map or the regularizer) and merges
/// columns that point the same way in every block ([`merge_parallel`]). Returns F and ℓ at
/// the new point when a merge changed it (to rounding), `None` when F is unchanged.
fn balance_and_prune(
    state: &mut State<'_, '_>,
    factors: &mut Vec<Array2<f64>>,
) -> Result<Option<ObjectiveAndLoss>, ExecError> {
    let rank = factors.first().map_or(0, Array2::ncols);
    if rank == 0 {
        return Ok(None);
    }
    state.bind(factors)?;
    let gauges = state.gauges(factors.len())?;
    let keep: Vec<usize> = (0..rank)
        .filter(|&i| gauges.iter().all(|g| g[i] > 0.0 && g[i].is_finite()))
        .collect();
    let blocks = factors.len();
    for &i in &keep {
        if blocks == 2 {
            // √(b/a) and its inverse: the two-factor formula results were tuned with.
            let scale = (gauges[1][i] / gauges[0][i]).sqrt();
            factors[0].column_mut(i).mapv_inplace(|x| x * scale);
            factors[1].column_mut(i).mapv_inplace(|x| x / scale);
        } else {
            let mean = gauges.iter().map(|g| g[i].ln()).sum::<f64>() / blocks as f64;
            for (w, g) in factors.iter_mut().zip(&gauges) {
                let scale = (mean - g[i].ln()).exp();
                w.column_mut(i).mapv_inplace(|x| x * scale);
            }
        }
    }
    if keep.len() != rank {
        for w in factors.iter_mut() {
            *w = w.select(Axis(1), &keep);
        }
    }
    // θᵢ = Πₖ gₖ(column i), unchanged by the balancing.
    let thetas: Vec<f64> = keep
        .iter()
        .map(|&i| gauges.iter().map(|g| g[i]).product())
        .collect();
    merge_parallel(state, factors, &thetas)
}

/// The cosine (in every block) at or above which two columns are tried as a merge. Copies of
/// one direction agree to rounding under ℓ2 gauges but drift apart to 1 − cos ≈ 1e-9 under
/// composite gauges (the prox treats a column's ℓ1 and TV parts relative to its scale), and
/// nearly parallel units of a ReLU network that activate the same data points merge exactly
/// (on the ReLU teacher, seeds 100–111, the copies the solver left differed by 1 − cos up to
/// 4e-4). Every merge is kept only if F does not increase, so the threshold only bounds the
/// work.
const MERGE_COSINE: f64 = 1.0 - 1e-2;

/// How much a merge may raise F, relative to |F|, and still count as not increasing it: F is
/// evaluated through kernels whose rounding (the squared loss by traces, ‖Y‖² − 2⟨Y, X⟩ +
/// ‖X‖², cancels to about 1e-16·‖Y‖²) is well below this.
const MERGE_SLACK: f64 = 1e-12;

/// Merges columns that are positive multiples of one another in every block, which the
/// rank-growing loop otherwise keeps as copies (the polar maximizer may add a direction the
/// factors already hold, and nothing at a fixed size pulls two copies apart or together).
///
/// For a product of 1-homogeneous gauges, one per block, and a map positively homogeneous of
/// degree 1 in each block's column (what balancing already relies on), the merge is exact:
/// balanced columns wᵏₘ = θₘ^(1/K) uᵏ (gₖ(uᵏ) = 1) carry the map Σₘ θₘ φ(u) and the
/// regularizer Σₘ θₘ, and the merged column (Σₘ θₘ)^(1/K) uᵏ carries both. Nearly parallel
/// columns are merged into (Σθ)^(1/K) times the θ-weighted mean of their unit directions (a
/// second-order change of a multilinear map, none for ReLU units that activate the same
/// points; a θ no larger by the triangle inequality). A positive combination stays in a
/// nonnegative cone.
///
/// Pairs whose cosine is at least [`MERGE_COSINE`] in every block are tried most parallel
/// first, at most `rank` of them, each kept only if F does not increase (a merged-away column
/// is zero until the end, which leaves the map and θ as without it). `factors` are balanced,
/// with `thetas` their columns' θᵢ. Dropout's regularizer is not such a product (its value
/// depends on how the columns split the map), and is never merged. Returns F and ℓ at the
/// merged point, or `None` when nothing was merged.
fn merge_parallel(
    state: &mut State<'_, '_>,
    factors: &mut Vec<Array2<f64>>,
    thetas: &[f64],
) -> Result<Option<ObjectiveAndLoss>, ExecError> {
    let rank = factors.first().map_or(0, Array2::ncols);
    if rank < 2
        || thetas.len() != rank
        || !matches!(
            state.machine.plan().regularization,
            Regularization::ProductOfGauges
        )
    {
        return Ok(None);
    }
    let grams: Vec<Array2<f64>> = factors
        .iter()
        .map(|w| linalg::gemm(w.view(), true, w.view(), false, 1.0))
        .collect();
    // (the smallest cosine over the blocks, i, j) for the pairs above the threshold.
    let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
    for i in 0..rank {
        for j in i + 1..rank {
            let cosine = grams
                .iter()
                .map(|g| {
                    let norms = (g[[i, i]] * g[[j, j]]).sqrt();
                    if norms > 0.0 { g[[i, j]] / norms } else { -1.0 }
                })
                .fold(f64::INFINITY, f64::min);
            if cosine >= MERGE_COSINE {
                pairs.push((cosine, i, j));
            }
        }
    }
    if pairs.is_empty() {
        return Ok(None);
    }
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let exponent = 1.0 - 1.0 / factors.len() as f64;
    let mut thetas = thetas.to_vec();
    let mut current: Factors = factors.clone();
    let (mut f_current, _) = state.objective(&current)?;
    let mut merged_any = false;
    for &(_, i, j) in pairs.iter().take(rank) {
        if thetas[i] <= 0.0 || thetas[j] <= 0.0 {
            continue;
        }
        // Column i becomes (θᵢ + θⱼ)^(1/K) times the θ-weighted mean of the unit directions
        // wₘ/θₘ^(1/K): (θₘ/Σθ)^(1 − 1/K) wₘ summed; column j becomes zero.
        let total = thetas[i] + thetas[j];
        let (a, b) = (
            (thetas[i] / total).powf(exponent),
            (thetas[j] / total).powf(exponent),
        );
        let mut trial = current.clone();
        for w in &mut trial {
            let merged = &w.column(i) * a + &w.column(j) * b;
            w.column_mut(i).assign(&merged);
            w.column_mut(j).fill(0.0);
        }
        let (f_trial, _) = state.objective(&trial)?;
        if f_trial <= f_current + MERGE_SLACK * f_current.abs() {
            current = trial;
            f_current = f_trial;
            thetas[i] = total;
            thetas[j] = 0.0;
            merged_any = true;
        }
    }
    if !merged_any {
        return Ok(None);
    }
    let keep: Vec<usize> = (0..rank).filter(|&i| thetas[i] > 0.0).collect();
    *factors = current.iter().map(|w| w.select(Axis(1), &keep)).collect();
    Ok(Some(state.objective(factors)?))
}

fn append(m: &Array2<f64>, col: &Array1<f64>) -> Array2<f64> {
    let column = col.view().insert_axis(Axis(1));
    ndarray::concatenate(Axis(1), &[m.view(), column]).unwrap_or_else(|_| m.clone())
}

/// Runs the meta-algorithm. The data must already be bound on the machine's back end (data
/// dimensions and inputs); the `Setup` kernel is run here. `heights`: the number of rows of
/// each factor, in block order (m and n for `U * V'`).
pub fn solve(
    machine: &mut Machine<'_>,
    heights: &[usize],
    options: &Options,
    progress: Progress<'_>,
) -> Result<Solution, SolveError> {
    solve_from(machine, heights, options, None, progress)
}

/// [`solve`] from given factors instead of `options.init_rank` random columns (a warm start:
/// the GPU back end's f32 solution polished in f64, see [`crate::certify`]).
pub fn solve_from(
    machine: &mut Machine<'_>,
    heights: &[usize],
    options: &Options,
    start: Option<Vec<Array2<f64>>>,
    progress: Progress<'_>,
) -> Result<Solution, SolveError> {
    let plan = machine.plan().clone();
    let blocks = plan.blocks();
    if heights.len() != blocks {
        return Err(SolveError::Exec(ExecError::Backend(format!(
            "{} factor heights given for {blocks} factors",
            heights.len()
        ))));
    }
    if let Regularization::Dropout { .. } = plan.regularization {
        let start = start.map(|mut f| {
            let v = f.pop().unwrap_or_default();
            let u = f.pop().unwrap_or_default();
            (u, v)
        });
        return dropout::solve(machine, heights[0], heights[1], options, start, progress);
    }
    let weight = plan.lambda * plan.scale;
    let mut state = State {
        machine,
        weight,
        smoothness: plan.smoothness,
        input_norm_sq: 0.0,
        accepted_lipschitz: vec![None; blocks],
    };
    state.machine.run(Role::Setup)?;
    if plan.lipschitz.contains(&Lipschitz::InputTimesOtherGram) {
        state.input_norm_sq =
            linalg::largest_eigenvalue(state.machine.matrix(Slot::InputGram)?.view());
    }
    let interrupted = || {
        options
            .interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    };
    let tol = options.tol;
    let polar_tol = (tol * 1e-2).clamp(1e-13, 1e-6);
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let mut seconds_descent = 0.0;
    let mut seconds_polar = 0.0;
    let mut history = Vec::new();

    // λ_max: the polar value at W = 0.
    let mut w: Factors = heights.iter().map(|&n| Array2::zeros((n, 0))).collect();
    let clock = Instant::now();
    let (mut objective, mut loss) = state.objective(&w)?;
    state.machine.run(Role::Residual)?;
    let polar_at_zero = polar::solve(state.machine, heights, polar_tol, options.seed, &w)?;
    seconds_polar += clock.elapsed().as_secs_f64();
    let lambda_max = polar_at_zero.value / plan.scale;
    let mut pending: Option<Polar> = Some(polar_at_zero);

    if let Some(factors) = start {
        w = factors;
        balance_and_prune(&mut state, &mut w)?;
        (objective, loss) = state.objective(&w)?;
        pending = None;
    } else if options.init_rank > 0 {
        // Small random columns, balanced; the nonnegative cone keeps |x|.
        let r = options
            .init_rank
            .min(options.max_rank.unwrap_or(usize::MAX));
        let mut init = |n: usize, nonneg: bool| {
            let mut m = Array2::zeros((n, r));
            for mut c in m.axis_iter_mut(Axis(1)) {
                let mut x = polar::normal_vector(&mut rng, n) * 1e-2;
                if nonneg {
                    x.mapv_inplace(f64::abs);
                }
                c.assign(&x);
            }
            m
        };
        w = heights
            .iter()
            .zip(&plan.gauges)
            .map(|(&n, gauge)| init(n, gauge.nonneg))
            .collect();
        balance_and_prune(&mut state, &mut w)?;
        (objective, loss) = state.objective(&w)?;
        pending = None;
    }
    let rank = |w: &Factors| w.first().map_or(0, Array2::ncols);

    let mut iterations: u64 = 0;
    let mut outer: u64 = 0;
    // Local descent stops when F stalls (relative decrease below tol², three times running) or
    // after a budget per size, so that a slow descent still reaches the polar test.
    let base_inner_tol = (tol * tol).max(1e-15);
    let mut inner_tol = base_inner_tol;
    let mut last_polar = 0.0;
    let mut last_residual = None;
    let mut gap = None;
    let mut polar_note = None;
    // The size, the polar value's excess over the weight and the inner tolerance before the
    // last growth, until the polar test after it.
    let mut grown_from: Option<(usize, f64, f64)> = None;
    let stop;
    history.push(Record {
        iteration: 0,
        outer: 0,
        rank: rank(&w),
        objective,
        polar_value: None,
        gap: None,
    });
    loop {
        // Local descent at fixed size.
        let clock = Instant::now();
        if rank(&w) > 0 && pending.is_none() {
            let mut w_prev = w.clone();
            let mut t_prev: f64 = 1.0;
            let mut stalls = 0;
            let mut since_balance = 0;
            let budget_end = iterations.saturating_add(DESCENT_BUDGET);
            // F where this size's descent began and every CRAWL_WINDOW iterations since.
            let size_start = objective;
            let mut window_start = objective;
            let mut in_window = 0;
            while iterations < options.max_iter.min(budget_end) && !interrupted() {
                let t = 0.5 * (1.0 + (1.0 + 4.0 * t_prev * t_prev).sqrt());
                let beta = (t_prev - 1.0) / t;
                let extrapolated: Factors = w
                    .iter()
                    .zip(&w_prev)
                    .map(|(x, prev)| {
                        let mut y = x.clone();
                        y.scaled_add(beta, &(x - prev));
                        y
                    })
                    .collect();
                let (mut w_new, mut f_new, _) = state.sweep(&w, &extrapolated)?;
                if f_new > objective && beta > 0.0 {
                    // Restart: a plain step from the current point never increases F.
                    (w_new, f_new, _) = state.sweep(&w, &w)?;
                    t_prev = 1.0;
                } else {
                    t_prev = t;
                }
                iterations += 1;
                if !f_new.is_finite() {
                    return Err(SolveError::NonFinite(f_new, iterations));
                }
                let decrease = objective - f_new;
                w_prev = std::mem::replace(&mut w, w_new);
                objective = f_new;
                history.push(Record {
                    iteration: iterations,
                    outer,
                    rank: rank(&w),
                    objective,
                    polar_value: None,
                    gap: None,
                });
                if iterations.is_multiple_of(10) {
                    progress(history.last().unwrap_or(&history[0]));
                }
                since_balance += 1;
                if since_balance >= 50 {
                    since_balance = 0;
                    if let Some((f, _)) = balance_and_prune(&mut state, &mut w)? {
                        objective = f;
                    }
                    w_prev = w.clone();
                    t_prev = 1.0;
                    if rank(&w) == 0 {
                        break;
                    }
                }
                if decrease.abs() <= inner_tol * objective.abs().max(f64::MIN_POSITIVE) {
                    stalls += 1;
                    if stalls >= 3 {
                        break;
                    }
                } else {
                    stalls = 0;
                }
                // A crawl: a window's decrease is a vanishing share of what this size has
                // gained (a flat valley of a deep network); the polar decides what next.
                in_window += 1;
                if in_window == CRAWL_WINDOW {
                    let gained = size_start - objective;
                    if gained > 0.0 && window_start - objective <= inner_tol.sqrt() * gained {
                        break;
                    }
                    window_start = objective;
                    in_window = 0;
                }
            }
            balance_and_prune(&mut state, &mut w)?;
            (objective, loss) = state.objective(&w)?;
        }
        seconds_descent += clock.elapsed().as_secs_f64();
        if interrupted() {
            stop = Stop::Interrupted;
            break;
        }

        // The polar problem at the current point.
        let clock = Instant::now();
        let polar = match pending.take() {
            Some(p) => p,
            None => {
                state.bind(&w)?;
                state.machine.run(Role::Residual)?;
                polar::solve(
                    state.machine,
                    heights,
                    polar_tol,
                    options.seed.wrapping_add(outer + 1),
                    &w,
                )?
            }
        };
        last_polar = polar.value / plan.scale;
        last_residual = polar.residual;
        polar_note.clone_from(&polar.heuristic_note);
        gap = if plan.polar_exact && polar.heuristic_note.is_none() {
            // The residual kernel ran at this point (for the polar, or at W = 0 above).
            let s_dual = if polar.value > weight {
                weight / polar.value
            } else {
                1.0
            };
            state.machine.set(Slot::DualScale, Value::Scalar(s_dual))?;
            state.machine.run(Role::Dual)?;
            let dual = state.machine.scalar(Slot::Dual)?;
            Some((objective - dual).max(0.0))
        } else {
            None
        };
        seconds_polar += clock.elapsed().as_secs_f64();
        history.push(Record {
            iteration: iterations,
            outer,
            rank: rank(&w),
            objective,
            polar_value: Some(last_polar),
            gap,
        });
        progress(history.last().unwrap_or(&history[0]));

        // A growth whose column the descent merged back into the columns it copied, and that
        // left the polar test where it was (less than a tenth of the excess removed), was a
        // step along existing columns; the next growth would repeat it. (A growth merged
        // back while the excess shrinks is progress of a slow descent: grow again.)
        let excess = polar.value - weight;
        let absorbed = grown_from
            .take()
            .filter(|&(size, before, _)| rank(&w) <= size && excess >= 0.9 * before)
            .map(|(_, _, inner)| inner);
        let polar_ok = polar.value <= weight * (1.0 + tol);
        let gap_ok = gap.is_none_or(|g| g <= tol * objective.abs().max(f64::MIN_POSITIVE));
        // With an exact polar the duality gap is the certificate: a relative gap within the
        // tolerance proves the optimum even when rounding leaves the polar a hair above λ.
        if gap_ok && (polar_ok || gap.is_some()) {
            stop = Stop::Optimal;
            break;
        }
        if iterations >= options.max_iter {
            stop = Stop::IterationLimit;
            break;
        }
        if polar_ok {
            // No column to add but the gap is not yet closed: descend further.
            inner_tol *= 0.01;
            if inner_tol < 1e-16 {
                stop = Stop::Optimal;
                break;
            }
            continue;
        }
        if options.max_rank.is_some_and(|max| rank(&w) >= max) {
            stop = Stop::RankLimit;
            break;
        }

        if let Some(inner) = absorbed {
            // Growing again would add the same column: polish the current size instead, as
            // when the maximizer does not decrease F (from the tolerance before that growth,
            // so that repeated absorptions end).
            inner_tol = inner * 0.01;
            if inner_tol < 1e-16 {
                stop = Stop::NoProgress;
                break;
            }
            continue;
        }

        // Grow by the polar maximizer, scaled by the best step.
        outer += 1;
        let room = options
            .max_rank
            .map_or(usize::MAX, |max| max.saturating_sub(rank(&w)));
        let rank_before = rank(&w);
        let objective_before = objective;
        let inner_before = inner_tol;
        let block = plan.quadratic && !plan.masked && plan.polar == PolarSolver::TopSingular;
        for (k, (atom, value)) in polar.atoms.iter().enumerate() {
            if k >= room || (k > 0 && (!block || *value <= weight * (1.0 + tol))) {
                break;
            }
            // φ(t) = ℓ(X + t·φ(atom)) + w·t: the exact minimizer for a quadratic loss (pairs
            // of a block are orthonormal, so their steps decouple); the majorizer's step
            // otherwise, then doubled while F decreases.
            state.machine.set_probe(1);
            for (l, vector) in atom.iter().enumerate() {
                state
                    .machine
                    .set_matrix(Slot::ProbeIn(l as u8), vector.clone().insert_axis(Axis(1)))?;
            }
            state.machine.run(Role::Curvature)?;
            let curvature = state.machine.scalar(Slot::Curvature)?;
            if curvature <= 0.0 {
                continue;
            }
            let mut step = (value - weight) / (plan.smoothness * curvature);
            // Each factor's column takes t^(1/K) so that the map's term is t·φ(atom).
            let column = |t: f64| -> Factors {
                let root = if blocks == 2 {
                    t.sqrt()
                } else {
                    t.powf(1.0 / blocks as f64)
                };
                w.iter()
                    .zip(atom)
                    .map(|(factor, vector)| append(factor, &(vector * root)))
                    .collect()
            };
            let mut w_try = column(step);
            let (mut f_try, mut l_try) = state.objective(&w_try)?;
            if !plan.quadratic {
                for _ in 0..20 {
                    let w2 = column(2.0 * step);
                    let (f2, l2) = state.objective(&w2)?;
                    if f2 >= f_try {
                        break;
                    }
                    (w_try, f_try, l_try, step) = (w2, f2, l2, 2.0 * step);
                }
            }
            if f_try < objective {
                (w, objective, loss) = (w_try, f_try, l_try);
            }
        }
        if rank(&w) == rank_before || objective >= objective_before {
            // The step is below rounding: polish the current size instead.
            inner_tol *= 0.01;
            if inner_tol < 1e-16 {
                stop = Stop::NoProgress;
                break;
            }
            continue;
        }
        inner_tol = base_inner_tol;
        grown_from = Some((rank_before, excess, inner_before));
        if interrupted() {
            stop = Stop::Interrupted;
            break;
        }
    }
    let regularizer = objective - loss;
    let relative_gap = gap.map(|g| g / objective.abs().max(f64::MIN_POSITIVE));
    Ok(Solution {
        factors: w,
        objective,
        loss,
        regularizer,
        lambda: plan.lambda,
        polar_value: last_polar,
        lambda_max,
        gap,
        relative_gap,
        polar_residual: last_residual,
        iterations,
        outer_iterations: outer,
        stop,
        seconds_descent,
        seconds_polar,
        history,
        dropout: None,
        polar_note,
    })
}
