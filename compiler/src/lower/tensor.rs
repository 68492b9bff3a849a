//! Kernels of a K-way CP factorization `T ≈ Σᵢ a¹ᵢ ⊗ … ⊗ aᴷᵢ` (`cp(A, B, C, ...)`), squared
//! loss on every entry or on the observed ones.
//!
//! The tensor is bound as its K mode unfoldings `T₍ₖ₎` `[nₖ, Πₗ≠ₖ nₗ]` (columns: the other
//! modes in ascending order, the last fastest), so that every contraction is a GEMM with a
//! Khatri–Rao product `KRₖ = ⊙ₗ≠ₖ Aₗ` (same order):
//!
//! - **every entry**: `∇ₖ = Aₖ Hₖ − T₍ₖ₎ KRₖ` with `Hₖ = ⊛ₗ≠ₖ AₗᵀAₗ`, and
//!   `ℓ = ½‖T‖² − ⟨Aₖ, T₍ₖ₎ KRₖ⟩ + ½⟨Hₖ, AₖᵀAₖ⟩`: the residual tensor is never formed; the loss
//!   after the last block's step reuses its `T₍ₖ₎ KRₖ` (the other factors did not move).
//! - **observed entries** (NaN in the file): `R₍ₖ₎ = Mₖ ∘ (Aₖ KRₖᵀ − T₍ₖ₎)` with the 0/1 mask
//!   unfolding `Mₖ`, `∇ₖ = R₍ₖ₎ KRₖ`, `ℓ = ½‖R‖²`: cost of the dense tensor per step.
//!
//! The polar `max ⟨−∇ℓ, p¹ ⊗ … ⊗ pᴷ⟩` is the higher-order power method on the host; its
//! contraction on every mode but k is `T₍ₖ₎ KR(p) − Aₖ (⊛ₗ≠ₖ Aₗᵀpₗ)` (or `−R₍ₖ₎ KR(p)`).

use std::collections::HashMap;

use hfc_runtime::backend::{Backend, ExecError};
use hfc_runtime::kir::{
    BufId, BufferKind, DimId, DimKind, Expr, Gauge, Lipschitz, Plan, PolarSolver, Program,
    Regularization, Role, Slot, Stmt, Unary,
};
use hfc_runtime::value::Value;
use ndarray::ArrayD;

use super::{
    Builder, Lowered, b, gauge_of, gemm, gemm_acc, map, require_certificate, sum, unsupported,
};
use crate::derive::InducedProblem;
use crate::diagnostics::Diagnostic;
use crate::ir::{self, RegForm};

/// How a tensor target is bound: its unfoldings and the dimensions that are products of
/// mode extents.
#[derive(Clone, Debug)]
pub struct TensorBinding {
    /// Per mode k: the unfolding `T₍ₖ₎` and, for observed entries, its 0/1 mask.
    pub unfoldings: Vec<(BufId, Option<BufId>)>,
    /// Dimensions whose extent is the product of some modes' extents.
    pub product_dims: Vec<(DimId, Vec<usize>)>,
}

impl TensorBinding {
    /// Binds the modes' extents (`mode_dims`, one per axis of `tensor`), the product
    /// dimensions and the unfoldings; NaN entries are missing (value 0, mask 0) when the
    /// program has masks.
    pub fn bind(
        &self,
        backend: &mut dyn Backend,
        mode_dims: &[DimId],
        tensor: &ArrayD<f64>,
    ) -> Result<(), ExecError> {
        let shape = tensor.shape();
        if shape.len() != mode_dims.len() {
            return Err(ExecError::Backend(format!(
                "a {}-way tensor for a {}-way model",
                shape.len(),
                mode_dims.len()
            )));
        }
        for (&dim, &extent) in mode_dims.iter().zip(shape) {
            backend.bind_dim(dim, extent);
        }
        for (dim, modes) in &self.product_dims {
            backend.bind_dim(*dim, modes.iter().map(|&k| shape[k]).product());
        }
        for (k, (values, mask)) in self.unfoldings.iter().enumerate() {
            let unfolded = hfc_runtime::linalg::unfold(tensor.view(), k);
            if let Some(mask) = mask {
                let observed = unfolded.mapv(|x| if x.is_nan() { 0.0 } else { 1.0 });
                backend.set(*mask, Value::Matrix(observed))?;
                let filled = unfolded.mapv(|x| if x.is_nan() { 0.0 } else { x });
                backend.set(*values, Value::Matrix(filled))?;
            } else {
                backend.set(*values, Value::Matrix(unfolded))?;
            }
        }
        Ok(())
    }
}

/// Product dimensions by the set of modes they multiply, declared once each.
struct ProductDims {
    dims: HashMap<Vec<usize>, DimId>,
    order: Vec<(DimId, Vec<usize>)>,
}

impl ProductDims {
    fn get(&mut self, bld: &mut Builder, names: &[String], modes: &[usize]) -> DimId {
        if let Some(&d) = self.dims.get(modes) {
            return d;
        }
        let name: Vec<&str> = modes.iter().map(|&k| names[k].as_str()).collect();
        let d = bld.dim(&name.join("·"), DimKind::Data);
        self.dims.insert(modes.to_vec(), d);
        self.order.push((d, modes.to_vec()));
        d
    }
}

/// Statements writing `⊙ₗ∈others operands[l]` into a fresh buffer `[Πₗ nₗ, width]`; returns
/// them and the buffer (`operands[l]` itself when only one mode is left).
fn khatri_rao_chain(
    bld: &mut Builder,
    products: &mut ProductDims,
    names: &[String],
    operands: &[BufId],
    others: &[usize],
    width: DimId,
    tag: &str,
) -> (Vec<Stmt>, BufId) {
    let mut body = Vec::new();
    let last = others[others.len() - 1];
    let mut acc = operands[last];
    // Built from the fastest mode outwards: KR(A_{l0}, KR(A_{l1}, … A_{last})).
    for start in (0..others.len() - 1).rev() {
        let modes = &others[start..];
        let rows = products.get(bld, names, modes);
        let label: Vec<String> = modes.iter().map(|k| k.to_string()).collect();
        let dst = bld.buf(
            &format!("kr_{tag}_{}", label.join("")),
            &[rows, width],
            BufferKind::Temp,
        );
        body.push(Stmt::KhatriRao {
            dst,
            a: operands[others[start]],
            b: acc,
        });
        acc = dst;
    }
    (body, acc)
}

/// Lowers `cp(A, B, ...)` with a product of one column gauge per factor.
pub(super) fn lower(
    model: &ir::Model,
    induced: &InducedProblem,
    factors: &[usize],
) -> Result<Lowered, Box<Diagnostic>> {
    let order = factors.len();
    let reg_help = "write the regularizer as `lambda * sum(i) g(A[:, i]) * h(B[:, i]) * ...` \
                    with one norm per factor built from norm1, norm2, norminf and tv";
    if model.loss.kind.name != "squared" {
        return Err(unsupported(
            model,
            model.map_span,
            "a CP factorization with a loss other than `squared`",
            "use `loss squared;` (or `loss squared on observed(T);` with NaN for missing \
             entries)",
        ));
    }
    if !(3..=hfc_runtime::kir::MAX_BLOCKS).contains(&order) {
        return Err(unsupported(
            model,
            model.map_span,
            &format!(
                "a CP factorization of order {order} (the runtime runs 3 to {} modes)",
                hfc_runtime::kir::MAX_BLOCKS
            ),
            "write `U * V'` for a matrix",
        ));
    }
    let RegForm::Product { gauges, scale } = &model.reg.form else {
        return Err(unsupported(
            model,
            model.reg_span,
            "the regularizer is not a product of one column gauge per factor",
            reg_help,
        ));
    };
    let mut scale = scale.value;
    let mut block_gauges: Vec<Gauge> = Vec::with_capacity(order);
    for &f in factors {
        let Some(g) = gauges.iter().find(|g| g.factor == f) else {
            return Err(unsupported(
                model,
                model.reg_span,
                "the regularizer does not put one gauge on each factor",
                reg_help,
            ));
        };
        let Some((gauge, s)) = gauge_of(model, g) else {
            return Err(unsupported(
                model,
                model.reg_span,
                "a factor's gauge is not a sum of ℓ1, ℓ2, ℓ∞ and TV norms",
                reg_help,
            ));
        };
        if let Some(why) = hfc_runtime::gauge::supported(&gauge) {
            return Err(unsupported(model, model.reg_span, &why, reg_help));
        }
        scale *= s;
        block_gauges.push(gauge);
    }
    require_certificate(model, induced)?;
    if scale <= 0.0 || !scale.is_finite() {
        scale = 1.0;
    }
    let observed = model.loss.observed;
    let target = model.loss.target;
    let data = &model.data[target];
    if data.shape.len() != order {
        return Err(unsupported(
            model,
            model.map_span,
            &format!(
                "`{}` has {} axes but the CP map has {order} factors",
                data.name,
                data.shape.len()
            ),
            "declare the data with one axis per factor",
        ));
    }

    let mut bld = Builder::new();
    let names: Vec<String> = data.shape.clone();
    let modes: Vec<DimId> = names.iter().map(|n| bld.dim(n, DimKind::Data)).collect();
    let r = bld.dim(&model.size_index, DimKind::Rank);
    let p = bld.dim("p", DimKind::Probe);
    let mut products = ProductDims {
        dims: HashMap::new(),
        order: Vec::new(),
    };
    let others = |k: usize| -> Vec<usize> { (0..order).filter(|&l| l != k).collect() };
    let scalar = |bld: &mut Builder, name: &str, kind| bld.buf(name, &[], kind);

    // Per mode: unfolding (and mask), factor, gradient, step, gauge, probes.
    let mut unfoldings = Vec::with_capacity(order);
    let mut cols = Vec::with_capacity(order);
    for (k, &mode) in modes.iter().enumerate() {
        let c = products.get(&mut bld, &names, &others(k));
        cols.push(c);
        let t = bld.buf(
            &format!("{}_unfold{k}", data.name),
            &[mode, c],
            BufferKind::Input,
        );
        let mask = observed.then(|| {
            bld.buf(
                &format!("{}_mask{k}", data.name),
                &[mode, c],
                BufferKind::Input,
            )
        });
        unfoldings.push((t, mask));
    }
    let block = |bld: &mut Builder, what: &str, width: DimId, kind: BufferKind| -> Vec<BufId> {
        (0..order)
            .map(|k| bld.buf(&format!("{what}{k}"), &[modes[k], width], kind))
            .collect()
    };
    let factor_bufs: Vec<BufId> = factors
        .iter()
        .zip(&modes)
        .map(|(&f, &dim)| bld.buf(&model.factors[f].name, &[dim, r], BufferKind::Factor))
        .collect();
    let grads = block(&mut bld, "grad", r, BufferKind::State);
    let steps = block(&mut bld, "step", r, BufferKind::Arg);
    let probes_in = block(&mut bld, "probe_in", p, BufferKind::Arg);
    let probes_out = block(&mut bld, "probe_out", p, BufferKind::State);
    let gauge_bufs: Vec<BufId> = (0..order)
        .map(|k| bld.buf(&format!("gauge{k}"), &[r], BufferKind::State))
        .collect();
    let weights = bld.buf("prox_weights", &[r], BufferKind::Arg);
    let loss = scalar(&mut bld, "loss", BufferKind::State);
    let curvature = scalar(&mut bld, "curvature", BufferKind::State);

    // Khatri–Rao products of the factors and of the probes, per mode.
    let mut factor_kr = Vec::with_capacity(order);
    let mut probe_kr = Vec::with_capacity(order);
    for k in 0..order {
        let tag = format!("f{k}");
        factor_kr.push(khatri_rao_chain(
            &mut bld,
            &mut products,
            &names,
            &factor_bufs,
            &others(k),
            r,
            &tag,
        ));
        let tag = format!("p{k}");
        probe_kr.push(khatri_rao_chain(
            &mut bld,
            &mut products,
            &names,
            &probes_in,
            &others(k),
            p,
            &tag,
        ));
    }

    if observed {
        // R₍ₖ₎ = Mₖ ∘ (Aₖ KRₖᵀ − T₍ₖ₎), recomputed where needed.
        let predictions: Vec<BufId> = (0..order)
            .map(|k| bld.buf(&format!("pred{k}"), &[modes[k], cols[k]], BufferKind::Temp))
            .collect();
        // State: the `residual` kernel leaves every mode's R₍ₖ₎ for the polar's contractions.
        let residuals: Vec<BufId> = (0..order)
            .map(|k| {
                bld.buf(
                    &format!("resid{k}"),
                    &[modes[k], cols[k]],
                    BufferKind::State,
                )
            })
            .collect();
        let residual = |k: usize| -> Vec<Stmt> {
            let (mut body, kr) = factor_kr[k].clone();
            let (t, mask) = unfoldings[k];
            let mask = mask.unwrap_or(t);
            body.push(gemm(predictions[k], factor_bufs[k], false, kr, true, 1.0));
            body.push(map(
                residuals[k],
                b(mask).times(b(predictions[k]).minus(b(t))),
            ));
            body.push(sum(loss, b(residuals[k]).un(Unary::Square)));
            body.push(map(loss, b(loss).times(Expr::c(0.5))));
            body
        };
        bld.kernel(Role::Setup, Vec::new());
        bld.kernel(Role::Value, residual(0));
        for k in 0..order {
            let mut body = residual(k);
            let (_, kr) = factor_kr[k].clone();
            body.push(gemm(grads[k], residuals[k], false, kr, false, 1.0));
            bld.kernel(Role::Grad(k as u8), body);
        }
        bld.kernel(Role::ValueAfterLast, residual(order - 1));
        bld.kernel(Role::Residual, (0..order).flat_map(residual).collect());
        for k in 0..order {
            let (mut body, krp) = probe_kr[k].clone();
            body.push(gemm(probes_out[k], residuals[k], false, krp, false, -1.0));
            bld.kernel(Role::Contract(k as u8), body);
        }
        // ‖M ∘ (p¹ ⊗ … ⊗ pᴷ)‖² through mode 0's unfolding.
        let (mut body, krp) = probe_kr[0].clone();
        let atom = bld.buf("probe_atom", &[modes[0], cols[0]], BufferKind::Temp);
        let mask0 = unfoldings[0].1.unwrap_or(unfoldings[0].0);
        body.push(gemm(atom, probes_in[0], false, krp, true, 1.0));
        body.push(sum(curvature, b(mask0).times(b(atom)).un(Unary::Square)));
        bld.kernel(Role::Curvature, body);
    } else {
        let tt = scalar(&mut bld, "t_sq", BufferKind::State);
        let grams: Vec<BufId> = (0..order)
            .map(|k| bld.buf(&format!("gram{k}"), &[r, r], BufferKind::Temp))
            .collect();
        let hadamard = bld.buf("gram_product", &[r, r], BufferKind::Temp);
        let contracted: Vec<BufId> = (0..order)
            .map(|k| bld.buf(&format!("t_kr{k}"), &[modes[k], r], BufferKind::State))
            .collect();
        let cross = scalar(&mut bld, "x_dot_t", BufferKind::Temp);
        let xx = scalar(&mut bld, "x_sq", BufferKind::Temp);
        // Grams, Hₖ, and ℓ from T₍ₖ₎ KRₖ (already in `contracted[k]`).
        let loss_at = |k: usize| -> Vec<Stmt> {
            let mut body: Vec<Stmt> = (0..order)
                .map(|l| gemm(grams[l], factor_bufs[l], true, factor_bufs[l], false, 1.0))
                .collect();
            let product = others(k)
                .into_iter()
                .map(|l| b(grams[l]))
                .reduce(|acc, g| acc.times(g))
                .unwrap_or_else(|| Expr::c(1.0));
            body.push(map(hadamard, product));
            body.push(sum(cross, b(factor_bufs[k]).times(b(contracted[k]))));
            body.push(sum(xx, b(hadamard).times(b(grams[k]))));
            body.push(map(
                loss,
                b(tt)
                    .times(Expr::c(0.5))
                    .minus(b(cross))
                    .plus(b(xx).times(Expr::c(0.5))),
            ));
            body
        };
        let contract = |k: usize| -> Vec<Stmt> {
            let (mut body, kr) = factor_kr[k].clone();
            body.push(gemm(contracted[k], unfoldings[k].0, false, kr, false, 1.0));
            body
        };
        bld.kernel(
            Role::Setup,
            vec![sum(tt, b(unfoldings[0].0).un(Unary::Square))],
        );
        let mut value = contract(0);
        value.extend(loss_at(0));
        bld.kernel(Role::Value, value);
        for k in 0..order {
            let mut body = contract(k);
            body.extend(loss_at(k));
            body.push(gemm(grads[k], factor_bufs[k], false, hadamard, false, 1.0));
            body.push(map(grads[k], b(grads[k]).minus(b(contracted[k]))));
            bld.kernel(Role::Grad(k as u8), body);
        }
        // The last block's step moved only Aₖ: T₍ₖ₎ KRₖ is still current.
        bld.kernel(Role::ValueAfterLast, loss_at(order - 1));
        bld.kernel(Role::Residual, Vec::new());
        let loadings: Vec<BufId> = (0..order)
            .map(|k| bld.buf(&format!("factor_t_probe{k}"), &[r, p], BufferKind::Temp))
            .collect();
        let loading_product = bld.buf("factor_t_probe_product", &[r, p], BufferKind::Temp);
        for k in 0..order {
            let (mut body, krp) = probe_kr[k].clone();
            body.push(gemm(probes_out[k], unfoldings[k].0, false, krp, false, 1.0));
            for l in others(k) {
                body.push(gemm(
                    loadings[l],
                    factor_bufs[l],
                    true,
                    probes_in[l],
                    false,
                    1.0,
                ));
            }
            let product = others(k)
                .into_iter()
                .map(|l| b(loadings[l]))
                .reduce(|acc, g| acc.times(g))
                .unwrap_or_else(|| Expr::c(1.0));
            body.push(map(loading_product, product));
            body.push(gemm_acc(
                probes_out[k],
                factor_bufs[k],
                false,
                loading_product,
                false,
                -1.0,
            ));
            bld.kernel(Role::Contract(k as u8), body);
        }
        // ‖p¹ ⊗ … ⊗ pᴷ‖² = Πₖ ‖pₖ‖².
        let norms: Vec<BufId> = (0..order)
            .map(|k| scalar(&mut bld, &format!("probe_sq{k}"), BufferKind::Temp))
            .collect();
        let mut body: Vec<Stmt> = (0..order)
            .map(|k| sum(norms[k], b(probes_in[k]).un(Unary::Square)))
            .collect();
        let product = norms
            .iter()
            .map(|&n| b(n))
            .reduce(|acc, n| acc.times(n))
            .unwrap_or_else(|| Expr::c(1.0));
        body.push(map(curvature, product));
        bld.kernel(Role::Curvature, body);
    }
    for k in 0..order {
        bld.gauge_and_prox(
            k as u8,
            factor_bufs[k],
            steps[k],
            gauge_bufs[k],
            weights,
            &block_gauges[k],
        );
    }
    let mut slots = vec![
        (Slot::Loss, loss),
        (Slot::ProxWeights, weights),
        (Slot::Curvature, curvature),
    ];
    for k in 0..order {
        let block = k as u8;
        slots.extend([
            (Slot::Factor(block), factor_bufs[k]),
            (Slot::Grad(block), grads[k]),
            (Slot::Step(block), steps[k]),
            (Slot::Gauge(block), gauge_bufs[k]),
            (Slot::ProbeIn(block), probes_in[k]),
            (Slot::ProbeOut(block), probes_out[k]),
        ]);
    }
    let program = Program {
        name: model.name.clone(),
        dims: bld.dims,
        buffers: bld.buffers,
        kernels: bld.kernels,
        plan: Plan {
            regularization: Regularization::ProductOfGauges,
            rank: r,
            probe: p,
            lambda: model.reg.weight.value,
            scale,
            gauges: block_gauges,
            smoothness: 1.0,
            quadratic: true,
            masked: observed,
            polar: PolarSolver::Alternating,
            // The tensor spectral norm is NP-hard: the power method's value is a lower bound.
            polar_exact: false,
            polar_starts: model.solve.polar_starts,
            lipschitz: vec![Lipschitz::OtherGram; order],
            slots,
            roles: bld.roles,
        },
    };
    Ok(Lowered {
        program,
        target: (target, unfoldings[0].0),
        observed,
        data_dims: modes.clone(),
        inputs: Vec::new(),
        factor_dims: modes.clone(),
        factors: factors.to_vec(),
        tensor: Some(TensorBinding {
            unfoldings,
            product_dims: products.order,
        }),
    })
}
