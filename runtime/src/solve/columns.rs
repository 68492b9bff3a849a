//! Column housekeeping for a product of gauges: balancing, pruning of zero columns and
//! merging of parallel ones. None of them changes the map; balancing and pruning never raise
//! the regularizer, and a merge is kept only if F does not increase.

use ndarray::{Array2, Axis};

use super::problem::{Factors, ObjectiveAndLoss, Problem};
use crate::backend::ExecError;
use crate::kir::Regularization;
use crate::linalg;

/// Rescales columns so that every factor's gauge of column i is the same (the map and θ do
/// not change: the map is positively homogeneous of degree 1 in each factor), drops the
/// columns where any is 0 (they add nothing to the map or the regularizer) and merges
/// columns that point the same way in every block ([`merge_parallel`]). Returns F and ℓ at
/// the new point when a merge changed it (to rounding), `None` when F is unchanged.
pub(crate) fn balance_and_prune(
    problem: &mut Problem<'_, '_>,
    factors: &mut Vec<Array2<f64>>,
) -> Result<Option<ObjectiveAndLoss>, ExecError> {
    let rank = factors.first().map_or(0, Array2::ncols);
    if rank == 0 {
        return Ok(None);
    }
    problem.bind(factors)?;
    let gauges = problem.gauges(factors.len())?;
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
    merge_parallel(problem, factors, &thetas)
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
    problem: &mut Problem<'_, '_>,
    factors: &mut Vec<Array2<f64>>,
    thetas: &[f64],
) -> Result<Option<ObjectiveAndLoss>, ExecError> {
    let rank = factors.first().map_or(0, Array2::ncols);
    if rank < 2
        || thetas.len() != rank
        || !matches!(problem.plan.regularization, Regularization::ProductOfGauges)
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
    let (mut f_current, _) = problem.objective(&current)?;
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
        let (f_trial, _) = problem.objective(&trial)?;
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
    Ok(Some(problem.objective(factors)?))
}
