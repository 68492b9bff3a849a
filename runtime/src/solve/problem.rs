//! The problem the solver works on: a machine running the plan's kernels, and the objective
//! `F = ℓ(Φ(W)) + regularizer(W)` at factors W. This is the one definition of F: local steps,
//! growth, the certificate and the f64 re-certification of a low-precision run
//! ([`crate::certify`]) all evaluate it here.

use ndarray::{Array1, Array2, Axis};

use super::dropout;
use super::observed::ObservedSquared;
use crate::backend::ExecError;
use crate::kir::{GaugeAtom, Lipschitz, Plan, Regularization, Role, Slot};
use crate::linalg;
use crate::machine::Machine;

/// F and ℓ at a point.
pub(crate) type ObjectiveAndLoss = (f64, f64);

/// The factors W_0 … W_{K−1}, each `[n_k, r]`.
pub(crate) type Factors = Vec<Array2<f64>>;

/// The size r of factors (0 for none).
pub(crate) fn rank(w: &[Array2<f64>]) -> usize {
    w.first().map_or(0, Array2::ncols)
}

/// The machine with what the solver reads off the plan once.
pub(crate) struct Problem<'m, 'p> {
    pub machine: &'m mut Machine<'p>,
    pub plan: Plan,
    /// The regularizer's weight w = λ·scale (product of gauges).
    pub weight: f64,
    /// λ_max(XᵀX) for [`Lipschitz::InputTimesOtherGram`] (read once after `Setup`).
    pub input_norm_sq: f64,
    /// Per block, the L of its last accepted backtracking step.
    pub accepted_lipschitz: Vec<Option<f64>>,
    /// A host copy of the observed entries when the model is matrix completion (a nuclear
    /// norm and a squared loss on them): the truncated Newton step of [`super::observed`].
    pub observed: Option<ObservedSquared>,
}

impl<'m, 'p> Problem<'m, 'p> {
    /// The problem on a machine whose data are bound; runs `Setup`.
    pub fn setup(machine: &'m mut Machine<'p>) -> Result<Problem<'m, 'p>, ExecError> {
        let plan = machine.plan().clone();
        let blocks = plan.blocks();
        let mut problem = Problem {
            machine,
            weight: plan.lambda * plan.scale,
            plan,
            input_norm_sq: 0.0,
            accepted_lipschitz: vec![None; blocks],
            observed: None,
        };
        problem.machine.run(Role::Setup)?;
        if problem.is_nuclear_matrix() {
            problem.observed = ObservedSquared::from_problem(&mut problem)?;
        }
        if problem
            .plan
            .lipschitz
            .contains(&Lipschitz::InputTimesOtherGram)
        {
            problem.input_norm_sq =
                linalg::largest_eigenvalue(problem.machine.matrix(Slot::InputGram)?.view());
        }
        Ok(problem)
    }

    /// Whether the model is `U * V'` with plain ℓ2 norms on both factors' columns (the
    /// nuclear norm): the ridge and span steps of [`super::descent`] apply.
    pub fn is_nuclear_matrix(&self) -> bool {
        let plain_l2 = |k: usize| {
            self.plan
                .gauges
                .get(k)
                .is_some_and(|g| g.terms == [(1.0, GaugeAtom::L2)] && !g.nonneg)
        };
        self.plan.regularization == Regularization::ProductOfGauges
            && self.plan.lipschitz == [Lipschitz::OtherGram, Lipschitz::OtherGram]
            && plain_l2(0)
            && plain_l2(1)
    }

    /// Binds the factors (and the size r they have).
    pub fn bind(&mut self, factors: &[Array2<f64>]) -> Result<(), ExecError> {
        self.machine.set_rank(rank(factors));
        for (k, w) in factors.iter().enumerate() {
            self.machine.set_matrix(Slot::Factor(k as u8), w.clone())?;
        }
        Ok(())
    }

    /// The column gauges of every factor (of the factors bound).
    pub fn gauges(&mut self, blocks: usize) -> Result<Vec<Array1<f64>>, ExecError> {
        (0..blocks as u8)
            .map(|k| {
                self.machine.run(Role::Gauge(k))?;
                self.machine.vector(Slot::Gauge(k))
            })
            .collect()
    }

    /// The regularizer at the factors (bound): w·Σᵢ Πₖ gₖ(wₖᵢ) for a product of gauges,
    /// dropout's `κ·m·Σᵢ ‖uᵢ‖²‖vᵢ‖²` otherwise.
    pub fn regularizer(&mut self, factors: &[Array2<f64>]) -> Result<f64, ExecError> {
        match self.plan.regularization {
            Regularization::ProductOfGauges => {
                let gauges = self.gauges(factors.len())?;
                Ok(self.weight
                    * match gauges.as_slice() {
                        [a, b] => a.dot(b),
                        _ => column_products(&gauges, None).sum(),
                    })
            }
            Regularization::Dropout { kappa, adaptive } => match factors {
                [u, v] => Ok(dropout::regularizer(
                    dropout::kappa_m(kappa, adaptive, u.ncols()),
                    u,
                    v,
                )),
                _ => Err(ExecError::Backend(
                    "dropout's regularizer needs two factors".into(),
                )),
            },
        }
    }

    /// F at the factors: (objective, loss).
    pub fn objective(&mut self, factors: &[Array2<f64>]) -> Result<ObjectiveAndLoss, ExecError> {
        self.bind(factors)?;
        self.machine.run(Role::Value)?;
        let loss = self.machine.scalar(Slot::Loss)?;
        Ok((loss + self.regularizer(factors)?, loss))
    }
}

/// Πₖ vₖ entrywise over the vectors but `skip` (the first one itself when there is one, so
/// two-factor results stay bit-identical to a plain product).
pub(crate) fn column_products(vectors: &[Array1<f64>], skip: Option<usize>) -> Array1<f64> {
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

/// `m` with a column appended.
pub(crate) fn append(m: &Array2<f64>, col: &Array1<f64>) -> Array2<f64> {
    let column = col.view().insert_axis(Axis(1));
    ndarray::concatenate(Axis(1), &[m.view(), column]).unwrap_or_else(|_| m.clone())
}

/// The number of singular values of the map `U Vᵀ` above `1e-12` of the largest (a matrix
/// model's numerical rank, from the r × r cores: O((m + n) r²)); `None` for other maps.
pub(crate) fn matrix_rank(problem: &Problem<'_, '_>, factors: &[Array2<f64>]) -> Option<usize> {
    if problem.plan.lipschitz != [Lipschitz::OtherGram, Lipschitz::OtherGram] {
        return None;
    }
    let [u, v] = factors else { return None };
    if u.ncols() == 0 {
        return Some(0);
    }
    let (_, s, _) = linalg::product_svd(u.view(), v.view())?;
    let top = s.first().copied().unwrap_or(0.0);
    Some(s.iter().filter(|&&x| x > 1e-12 * top && x > 0.0).count())
}

/// The minimizer over a block X of the quadratic model of ℓ in that block plus a ridge:
/// `⟨∇, X − X₀⟩ + β/2 ‖(X − X₀) Wᵀ‖² + ½ Σᵢ ridgeᵢ ‖xᵢ‖²` for a map `X Wᵀ` linear in the block
/// (W = `other`), that is `X = (β X₀ G − ∇)(β G + diag(ridge))⁻¹` with `G = WᵀW`. With β the
/// loss's smoothness the model majorizes ℓ (exactly ℓ for the dense squared loss), so the
/// step never increases what it models.
pub(crate) fn ridge_block(
    from: &Array2<f64>,
    grad: &Array2<f64>,
    other: &Array2<f64>,
    beta: f64,
    ridge: &Array1<f64>,
) -> Array2<f64> {
    let gram = linalg::gemm(other.view(), true, other.view(), false, 1.0);
    let mut data_term = linalg::gemm(from.view(), false, gram.view(), false, beta);
    data_term -= grad;
    let mut system = gram * beta;
    for (k, d) in ridge.iter().enumerate() {
        system[[k, k]] += d;
    }
    match linalg::solve_spd_right(data_term.view(), system.view()) {
        Some(x) => x,
        None => {
            // A zero column of `other` with no ridge: a tiny one keeps the step defined (the
            // column contributes nothing either way).
            let tiny = 1e-14 * (0..system.nrows()).map(|k| system[[k, k]]).sum::<f64>();
            for k in 0..system.nrows() {
                system[[k, k]] += tiny.max(f64::MIN_POSITIVE);
            }
            linalg::solve_spd_right(data_term.view(), system.view()).unwrap_or_else(|| from.clone())
        }
    }
}
