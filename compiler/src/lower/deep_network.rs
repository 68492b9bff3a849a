//! Kernels of a three-layer parallel ReLU network: r subnetworks, each with its own h hidden
//! units, `Φ = Σᵢ relu(relu(X W1ᵢ) w2ᵢ) w3ᵢᵀ` (`W1 : [d, h, r]`, `W2 : [h, r]`,
//! `W3 : [c, r]`), for any elementwise loss on every output.
//!
//! Layout: the solver sees every layer as a block of r columns, so W1 is `[d·h, r]` with
//! column i the row-major `vec(W1ᵢ)` (row a·h + j). Row-major, that is the same memory as
//! `[d, h·r]` with column j·r + i, so one GEMM `X · W1` (after a `copy` to that shape) gives
//! every subnetwork's first hidden layer at once, `[N, h·r]` = `[N·h, r]`; the second layer
//! contracts each subnetwork's h units with its own column of W2 (`khatri_rao_adjoint`), and
//! its gradient in the first layer is the Khatri–Rao product of the back-propagated signal
//! with W2.
//!
//! With `A₁ = X W1`, `H₁ = relu(A₁)`, `a₂ᵢ = H₁ᵢ w2ᵢ`, `h₂ = relu(a₂)`, `Φ = h₂ W3ᵀ` and
//! `G = ℓ'(Φ, Y)`: `∇W3 = Gᵀ h₂`; `δ₂ = (G W3) ∘ step(a₂)`; `∇w2ᵢ = H₁ᵢᵀ δ₂ᵢ`;
//! `∇W1ᵢ = Xᵀ((δ₂ᵢ w2ᵢᵀ) ∘ step(A₁ᵢ))`. Steps: the last layer's from `h₂ᵀh₂` (its gradient
//! kernel writes it); the inner layers backtrack (no closed-form bound: activation patterns
//! of two layers change). The polar is a local method on the host (projected gradient
//! ascent), labelled heuristic.

use hfc_runtime::kir::{
    BufId, BufferKind, DimKind, Expr, Gauge, GaugeAtom, Lipschitz, Plan, PolarSolver, Program,
    Regularization, Role, Slot, Stmt, Unary,
};

use super::{Builder, Lowered, b, gauge_of, gemm, map, require_certificate, sum, unsupported};
use crate::derive::InducedProblem;
use crate::diagnostics::Diagnostic;
use crate::ir::{self, RegForm};

fn relu(e: Expr) -> Expr {
    e.bin(hfc_runtime::kir::Binary::Max, Expr::c(0.0))
}

/// The most hidden units per subnetwork (a bound on the literal, not on the data).
const MAX_HIDDEN: u32 = 4096;

/// Lowers `relu(relu(X * W1) * W2) * W3'` with `layers = [W1, W2, W3]`.
pub(super) fn lower(
    model: &ir::Model,
    induced: &InducedProblem,
    input: usize,
    layers: &[usize],
) -> Result<Lowered, Box<Diagnostic>> {
    let [l1, l2, _] = layers else {
        return Err(unsupported(
            model,
            model.map_span,
            "a parallel network with other than three layers",
            "write `relu(relu(X * W1) * W2) * W3'`",
        ));
    };
    let (l1, l2) = (*l1, *l2);
    if model.loss.observed {
        return Err(unsupported(
            model,
            model.map_span,
            "a network fitted on observed entries",
            "fit every output: `loss squared;` or `loss logistic;`",
        ));
    }
    // W1 : [d, h, r] with h a number, W2 : [h, r].
    let w1_shape = &model.factors[l1].shape;
    let hidden = match w1_shape.as_slice() {
        [_, h, _] => h
            .parse::<u32>()
            .ok()
            .filter(|h| (1..=MAX_HIDDEN).contains(h)),
        _ => None,
    };
    let Some(hidden) = hidden else {
        return Err(unsupported(
            model,
            model.map_span,
            &format!(
                "the first layer `{}` is not `[d, h, r]` with h a number of hidden units \
                 (1 to {MAX_HIDDEN})",
                model.factors[l1].name
            ),
            "declare each subnetwork's hidden units as a number: `factor W1 : [d, 8, r];`",
        ));
    };
    if model.factors[l2].shape.first().map(String::as_str) != Some(&hidden.to_string()) {
        return Err(unsupported(
            model,
            model.map_span,
            &format!(
                "the second layer `{}` does not have {hidden} rows, one per hidden unit",
                model.factors[l2].name
            ),
            &format!(
                "declare `factor {} : [{hidden}, r];`",
                model.factors[l2].name
            ),
        ));
    }
    let reg_help = "write `lambda * sum(i) norm2(W1[:, :, i]) * norm2(W2[:, i]) * norm2(W3[:, i])`";
    let RegForm::Product { gauges, scale } = &model.reg.form else {
        return Err(unsupported(
            model,
            model.reg_span,
            "the regularizer is not a product of one norm per layer",
            reg_help,
        ));
    };
    let mut theta_scale = scale.value;
    for &layer in layers {
        let found = gauges
            .iter()
            .find(|g| g.factor == layer)
            .and_then(|g| gauge_of(model, g));
        match found {
            Some((g, s)) if g.terms == [(1.0, GaugeAtom::L2)] && !g.nonneg => theta_scale *= s,
            _ => {
                return Err(unsupported(
                    model,
                    model.reg_span,
                    "a network regularizer other than a product of ℓ2 norms, one per layer",
                    reg_help,
                ));
            }
        }
    }
    require_certificate(model, induced)?;
    if theta_scale <= 0.0 || !theta_scale.is_finite() {
        theta_scale = 1.0;
    }
    let kernel = model.loss.kind.kernel;
    let params = model.loss.params.clone();
    let target = model.loss.target;

    let mut bld = Builder::new();
    let target_shape = &model.data[target].shape;
    let name_of = |shape: &[String], k: usize, default: &str| {
        shape.get(k).cloned().unwrap_or_else(|| default.into())
    };
    let n = bld.dim(&name_of(target_shape, 0, "N"), DimKind::Data);
    let c = bld.dim(&name_of(target_shape, 1, "c"), DimKind::Data);
    let d_name = name_of(&model.data[input].shape, 1, "d");
    let d = bld.dim(&d_name, DimKind::Data);
    let r = bld.dim(&model.size_index, DimKind::Rank);
    let p = bld.dim("p", DimKind::Probe);
    let h = bld.dim(&hidden.to_string(), DimKind::Fixed(hidden));
    let scaled = |bld: &mut Builder, base, name: &str| {
        bld.dim(
            &format!("{name}·{hidden}"),
            DimKind::Scaled {
                base,
                factor: hidden,
            },
        )
    };
    let dh = scaled(&mut bld, d, &d_name);
    let nh = scaled(&mut bld, n, &name_of(target_shape, 0, "N"));
    let hr = scaled(&mut bld, r, &model.size_index);
    let hp = scaled(&mut bld, p, "p");

    let scalar = |bld: &mut Builder, name: &str, kind| bld.buf(name, &[], kind);
    let x = bld.buf(&model.data[input].name, &[n, d], BufferKind::Input);
    let y = bld.buf(&model.data[target].name, &[n, c], BufferKind::Input);
    let heights = [dh, h, c];
    let names = ["first", "second", "last"];
    let per_layer = |bld: &mut Builder, what: &str, width, kind| -> Vec<BufId> {
        (0..3)
            .map(|k| bld.buf(&format!("{what}_{}", names[k]), &[heights[k], width], kind))
            .collect()
    };
    let w: Vec<BufId> = layers
        .iter()
        .zip(heights)
        .map(|(&f, rows)| bld.buf(&model.factors[f].name, &[rows, r], BufferKind::Factor))
        .collect();
    let grads = per_layer(&mut bld, "grad", r, BufferKind::State);
    let steps = per_layer(&mut bld, "step", r, BufferKind::Arg);
    let probes = per_layer(&mut bld, "probe_in", p, BufferKind::Arg);
    let gauge_bufs: Vec<BufId> = names
        .iter()
        .map(|name| bld.buf(&format!("gauge_{name}"), &[r], BufferKind::State))
        .collect();
    let weights = bld.buf("prox_weights", &[r], BufferKind::Arg);
    let loss = scalar(&mut bld, "loss", BufferKind::State);
    let dual_scale = scalar(&mut bld, "dual_scale", BufferKind::Arg);
    let dual = scalar(&mut bld, "dual", BufferKind::State);
    let curvature = scalar(&mut bld, "curvature", BufferKind::State);

    // The forward pass, every subnetwork at once.
    let w1_wide = bld.buf("first_wide", &[d, hr], BufferKind::Temp);
    let pre1 = bld.buf("pre_activation1", &[n, hr], BufferKind::Temp);
    let hidden1 = bld.buf("hidden1", &[n, hr], BufferKind::Temp);
    let hidden1_tall = bld.buf("hidden1_by_unit", &[nh, r], BufferKind::Temp);
    let pre2 = bld.buf("pre_activation2", &[n, r], BufferKind::Temp);
    let hidden2 = bld.buf("hidden2", &[n, r], BufferKind::Temp);
    let pred = bld.buf("pred", &[n, c], BufferKind::State);
    let grad_out = bld.buf("grad_out", &[n, c], BufferKind::State);
    let back2 = bld.buf("grad_hidden2", &[n, r], BufferKind::Temp);
    let back1_tall = bld.buf("grad_hidden1_by_unit", &[nh, r], BufferKind::Temp);
    let back1 = bld.buf("grad_hidden1", &[n, hr], BufferKind::Temp);
    let grad_w1_wide = bld.buf("grad_first_wide", &[d, hr], BufferKind::Temp);
    let h2th2 = bld.buf("h2t_h2", &[r, r], BufferKind::State);

    let value = |x: Expr, y: Expr| (kernel.value)(x, y, &params);
    let gradient = |x: Expr, y: Expr| (kernel.gradient)(x, y, &params);
    let conjugate = |z: Expr, y: Expr| (kernel.conjugate)(z, y, &params);
    let forward = vec![
        Stmt::Copy {
            dst: w1_wide,
            src: w[0],
        },
        gemm(pre1, x, false, w1_wide, false, 1.0),
        map(hidden1, relu(b(pre1))),
        Stmt::Copy {
            dst: hidden1_tall,
            src: hidden1,
        },
        Stmt::KhatriRaoAdjoint {
            dst: pre2,
            src: hidden1_tall,
            other: w[1],
            over_fast: true,
        },
        map(hidden2, relu(b(pre2))),
        gemm(pred, hidden2, false, w[2], true, 1.0),
    ];
    let with_loss = |extra: Vec<Stmt>| {
        let mut body = forward.clone();
        body.push(sum(loss, value(b(pred), b(y))));
        body.extend(extra);
        body
    };
    let output_grad = map(grad_out, gradient(b(pred), b(y)));
    let to_second = vec![
        output_grad.clone(),
        gemm(back2, grad_out, false, w[2], false, 1.0),
        map(back2, b(back2).times(b(pre2).un(Unary::Step))),
    ];

    bld.kernel(Role::Setup, Vec::new());
    bld.kernel(Role::Value, with_loss(Vec::new()));
    bld.kernel(
        Role::Grad(0),
        with_loss(
            [
                to_second.clone(),
                vec![
                    Stmt::KhatriRao {
                        dst: back1_tall,
                        a: back2,
                        b: w[1],
                    },
                    Stmt::Copy {
                        dst: back1,
                        src: back1_tall,
                    },
                    map(back1, b(back1).times(b(pre1).un(Unary::Step))),
                    gemm(grad_w1_wide, x, true, back1, false, 1.0),
                    Stmt::Copy {
                        dst: grads[0],
                        src: grad_w1_wide,
                    },
                ],
            ]
            .concat(),
        ),
    );
    bld.kernel(
        Role::Grad(1),
        with_loss(
            [
                to_second,
                vec![Stmt::KhatriRaoAdjoint {
                    dst: grads[1],
                    src: hidden1_tall,
                    other: back2,
                    over_fast: false,
                }],
            ]
            .concat(),
        ),
    );
    bld.kernel(
        Role::Grad(2),
        with_loss(vec![
            output_grad.clone(),
            gemm(grads[2], grad_out, true, hidden2, false, 1.0),
            gemm(h2th2, hidden2, true, hidden2, false, 1.0),
        ]),
    );
    bld.kernel(Role::ValueAfterLast, with_loss(Vec::new()));
    bld.kernel(Role::Residual, with_loss(vec![output_grad]));
    bld.dual(&[n, c], grad_out, y, (dual_scale, dual), conjugate);
    // ‖relu(relu(X P₁) p₂)‖² ‖p₃‖²: the map's term along a new subnetwork.
    let probe_wide = bld.buf("probe_first_wide", &[d, hp], BufferKind::Temp);
    let probe_pre1 = bld.buf("probe_hidden1", &[n, hp], BufferKind::Temp);
    let probe_tall = bld.buf("probe_hidden1_by_unit", &[nh, p], BufferKind::Temp);
    let probe_pre2 = bld.buf("probe_hidden2", &[n, p], BufferKind::Temp);
    let hidden_sq = scalar(&mut bld, "probe_hidden_sq", BufferKind::Temp);
    let outer_sq = scalar(&mut bld, "probe_outer_sq", BufferKind::Temp);
    bld.kernel(
        Role::Curvature,
        vec![
            Stmt::Copy {
                dst: probe_wide,
                src: probes[0],
            },
            gemm(probe_pre1, x, false, probe_wide, false, 1.0),
            map(probe_pre1, relu(b(probe_pre1))),
            Stmt::Copy {
                dst: probe_tall,
                src: probe_pre1,
            },
            Stmt::KhatriRaoAdjoint {
                dst: probe_pre2,
                src: probe_tall,
                other: probes[1],
                over_fast: true,
            },
            sum(hidden_sq, relu(b(probe_pre2)).un(Unary::Square)),
            sum(outer_sq, b(probes[2]).un(Unary::Square)),
            map(curvature, b(hidden_sq).times(b(outer_sq))),
        ],
    );
    bld.kernel(Role::Predict, forward.clone());
    let l2 = Gauge {
        terms: vec![(1.0, GaugeAtom::L2)],
        nonneg: false,
    };
    for k in 0..3 {
        bld.gauge_and_prox(k as u8, w[k], steps[k], gauge_bufs[k], weights, &l2);
    }
    let mut slots = vec![
        (Slot::Loss, loss),
        (Slot::ProxWeights, weights),
        (Slot::DualScale, dual_scale),
        (Slot::Dual, dual),
        (Slot::Curvature, curvature),
        (Slot::Features, x),
        (Slot::OutputGrad, grad_out),
        (Slot::BlockGram, h2th2),
        (Slot::Prediction, pred),
    ];
    for k in 0..3 {
        let block = k as u8;
        slots.extend([
            (Slot::Factor(block), w[k]),
            (Slot::Grad(block), grads[k]),
            (Slot::Step(block), steps[k]),
            (Slot::Gauge(block), gauge_bufs[k]),
            (Slot::ProbeIn(block), probes[k]),
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
            scale: theta_scale,
            gauges: vec![l2.clone(), l2.clone(), l2],
            smoothness: (kernel.smoothness)(&params),
            quadratic: kernel.quadratic,
            masked: false,
            polar: PolarSolver::DeepReluAscent { hidden },
            polar_exact: false,
            polar_starts: model.solve.polar_starts,
            // The last layer's Gram bounds its step for a quadratic loss; a loss's global
            // smoothness bound is loose otherwise (see `lower::lower`).
            lipschitz: vec![
                Lipschitz::Backtracking,
                Lipschitz::Backtracking,
                if kernel.quadratic {
                    Lipschitz::BlockGram
                } else {
                    Lipschitz::Backtracking
                },
            ],
            slots,
            roles: bld.roles,
        },
    };
    Ok(Lowered {
        program,
        target: (target, y),
        observed: false,
        data_dims: vec![n, c],
        inputs: vec![(input, x, (n, d))],
        factor_dims: heights.to_vec(),
        factors: layers.to_vec(),
        tensor: None,
    })
}
