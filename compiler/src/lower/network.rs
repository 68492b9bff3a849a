//! Kernels of a two-layer ReLU network `Φ = relu(X W₁) W₂ᵀ` (parallel subnetworks
//! `relu(X w₁ᵢ) w₂ᵢᵀ`), for any elementwise loss on every output.
//!
//! With `A = X W₁`, `H = relu(A)` and `G = ℓ'(Φ, Y)`: `∇_{W₂} = Gᵀ H`,
//! `∇_{W₁} = Xᵀ((G W₂) ∘ step(A))` with relu'(0) = 0. The step sizes (see
//! [`Lipschitz`](hfc_runtime::kir::Lipschitz)): the last layer's from `HᵀH`, which its gradient
//! kernel writes; the first layer's from `λ_max(XᵀX)`, written by `setup`, times the last
//! layer's Gram, with backtracking because activation patterns change. The ReLU polar reads X
//! and G on the host; growth measures `‖relu(X p₁)‖²‖p₂‖²`.

use hfc_runtime::kir::{BufId, BufferKind, DimId, Expr, Slot, Stmt, Unary};

use super::{Builder, b, gemm, map, sum};
use crate::catalog::LossKernel;
use hfc_runtime::kir::{Binary, Role};

/// The buffers the shared lowering made that the network's kernels use.
pub(super) struct Io {
    /// The input X `[N, d]`.
    pub x: BufId,
    /// The target Y `[N, c]`.
    pub y: BufId,
    /// The first layer `[d, r]`.
    pub w1: BufId,
    /// The last layer `[c, r]`.
    pub w2: BufId,
    pub loss: BufId,
    pub grad_w1: BufId,
    pub grad_w2: BufId,
    pub probe_w1: BufId,
    pub probe_w2: BufId,
    pub dual_scale: BufId,
    pub dual: BufId,
    pub curvature: BufId,
    /// (N, c, d, r, p).
    pub dims: (DimId, DimId, DimId, DimId, DimId),
}

fn relu(e: Expr) -> Expr {
    e.bin(Binary::Max, Expr::c(0.0))
}

/// Emits every kernel of the network except the gauges and proxes (shared with matrices);
/// returns the network's own slots.
pub(super) fn kernels(
    bld: &mut Builder,
    io: &Io,
    loss: LossKernel,
    params: &[f64],
) -> Vec<(Slot, BufId)> {
    let (n, c, d, r, p) = io.dims;
    let pre = bld.buf("pre_activation", &[n, r], BufferKind::Temp);
    let hidden = bld.buf("hidden", &[n, r], BufferKind::Temp);
    let pred = bld.buf("pred", &[n, c], BufferKind::State);
    let grad_out = bld.buf("grad_out", &[n, c], BufferKind::State);
    let back = bld.buf("grad_hidden", &[n, r], BufferKind::Temp);
    let xtx = bld.buf("xt_x", &[d, d], BufferKind::State);
    let hth = bld.buf("ht_h", &[r, r], BufferKind::State);
    let value = |x: Expr, y: Expr| (loss.value)(x, y, params);
    let gradient = |x: Expr, y: Expr| (loss.gradient)(x, y, params);
    let conjugate = |z: Expr, y: Expr| (loss.conjugate)(z, y, params);

    let forward = vec![
        gemm(pre, io.x, false, io.w1, false, 1.0),
        map(hidden, relu(b(pre))),
        gemm(pred, hidden, false, io.w2, true, 1.0),
    ];
    let with_loss = |extra: Vec<Stmt>| {
        let mut body = forward.clone();
        body.push(sum(io.loss, value(b(pred), b(io.y))));
        body.extend(extra);
        body
    };
    let output_grad = map(grad_out, gradient(b(pred), b(io.y)));

    bld.kernel(Role::Setup, vec![gemm(xtx, io.x, true, io.x, false, 1.0)]);
    bld.kernel(Role::Value, with_loss(Vec::new()));
    bld.kernel(
        Role::Grad(0),
        with_loss(vec![
            output_grad.clone(),
            gemm(back, grad_out, false, io.w2, false, 1.0),
            map(back, b(back).times(b(pre).un(Unary::Step))),
            gemm(io.grad_w1, io.x, true, back, false, 1.0),
        ]),
    );
    bld.kernel(
        Role::Grad(1),
        with_loss(vec![
            output_grad.clone(),
            gemm(io.grad_w2, grad_out, true, hidden, false, 1.0),
            gemm(hth, hidden, true, hidden, false, 1.0),
        ]),
    );
    bld.kernel(Role::ValueAfterLast, with_loss(Vec::new()));
    bld.kernel(Role::Residual, with_loss(vec![output_grad]));
    bld.dual(&[n, c], grad_out, io.y, (io.dual_scale, io.dual), conjugate);
    // ‖relu(X p₁)‖² ‖p₂‖²: the map's second-order term along a new subnetwork.
    let probe_hidden = bld.buf("probe_hidden", &[n, p], BufferKind::Temp);
    let hidden_sq = bld.buf("probe_hidden_sq", &[], BufferKind::Temp);
    let outer_sq = bld.buf("probe_outer_sq", &[], BufferKind::Temp);
    bld.kernel(
        Role::Curvature,
        vec![
            gemm(probe_hidden, io.x, false, io.probe_w1, false, 1.0),
            sum(hidden_sq, relu(b(probe_hidden)).un(Unary::Square)),
            sum(outer_sq, b(io.probe_w2).un(Unary::Square)),
            map(io.curvature, b(hidden_sq).times(b(outer_sq))),
        ],
    );
    bld.kernel(Role::Predict, forward.clone());
    vec![
        (Slot::Features, io.x),
        (Slot::OutputGrad, grad_out),
        (Slot::InputGram, xtx),
        (Slot::BlockGram, hth),
        (Slot::Prediction, pred),
    ]
}
