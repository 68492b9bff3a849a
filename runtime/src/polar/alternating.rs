//! Alternating linear maximization (the higher-order power method): heuristic.

use ndarray::Array1;
use rand_chacha::ChaCha8Rng;

use super::{Polar, normal_vector};
use crate::backend::ExecError;
use crate::gauge;
use crate::kir::Gauge;
use crate::machine::Machine;

/// Alternating linear maximization, the higher-order power method for K factors: for each
/// k in turn, aₖ ← argmax over gₖ ≤ 1 of ⟨aₖ, Z ×_{l≠k} aₗ⟩ (exact, by the gauge's linear
/// maximization), until the value stalls; the best of several seeded starts (random unit
/// directions on every factor but the first, which is computed first). For a matrix:
/// u ← argmax ⟨u, Z v⟩, v ← argmax ⟨v, Zᵀ u⟩.
pub(super) fn alternating(
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
