//! Lowering: a checked model and its derivation to a kernel program.
//!
//! Input: an [`ir::Model`] and its [`InducedProblem`]. Output: a [`Program`] (validated
//! by the caller with `hfc_runtime::valid::validate`) or a diagnostic saying what the runtime
//! cannot run yet. The model-specific choices are made here, once, not in the solver loop:
//!
//! - **squared loss, every entry**: the m × n residual is never formed. ∇_U = U (VᵀV) − Y V,
//!   ∇_V = V (UᵀU) − Yᵀ U, ℓ = ½‖Y‖² − ⟨U, Y V⟩ + ½⟨UᵀU, VᵀV⟩ (‖Y‖² once, in `setup`), the
//!   polar's products −∇ℓ·x = Y x − U (Vᵀ x), and the loss after a V step reuses Yᵀ U.
//! - **any loss on observed entries**: the prediction is sampled at the observations only
//!   (`sample`), gradients are sparse-times-dense products (`spmm`): cost grows with the
//!   number of observations, never with m·n.
//! - **other losses on every entry**: X = U Vᵀ, then the catalog's elementwise value and
//!   gradient ([`catalog::LossKernel`]).

use hfc_grammar::Span;
use hfc_runtime::kir::{
    BufId, Buffer, BufferKind, Dim, DimId, DimKind, Expr, Gauge, GaugeAtom, Kernel, KernelId,
    Lipschitz, Plan, PolarSolver, Program, Regularization, Role, Slot, Stmt, Unary,
};

use crate::catalog::{self, PolarOracle};
use crate::derive::{Certificate, InducedProblem};
use crate::diagnostics::{Diagnostic, codes};
use crate::ir::{self, FactorGauge, Map, RegForm};

/// What the runtime needs to know beyond the program: which data to bind where.
#[derive(Clone, Debug)]
pub struct Lowered {
    /// The program.
    pub program: Program,
    /// The fitted data (index into the model's `data`) and its buffer.
    pub target: (usize, BufId),
    /// Whether the target is bound as observed entries.
    pub observed: bool,
    /// The data's dimensions, one per axis (rows and columns of a matrix; a tensor's modes).
    pub data_dims: Vec<DimId>,
    /// Other data the map reads (a network's input X): index into the model's `data`, its
    /// buffer and its dimensions (rows, columns). The rows of a network's input are the
    /// target's rows (the same dimension).
    pub inputs: Vec<(usize, BufId, (DimId, DimId))>,
    /// The dimensions of the factors' rows in block order: the data's for `U * V'` and
    /// `cp(...)`, (d, c) for a network; the solver's factor heights.
    pub factor_dims: Vec<DimId>,
    /// The factors in block order (indices into the model's `factors`).
    pub factors: Vec<usize>,
    /// A tensor target's unfoldings (`cp(...)` maps); `None` for a matrix.
    pub tensor: Option<TensorBinding>,
}

fn unsupported(model: &ir::Model, span: Span, what: &str, help: &str) -> Box<Diagnostic> {
    Box::new(
        Diagnostic::new(
            codes::RUN_UNSUPPORTED,
            model.file,
            format!("`hfc run` cannot run this model yet: {what}"),
            span,
            "not supported by the runtime",
        )
        .with_help(help.to_string())
        .with_note(
            "the runtime runs matrix factorizations `U * V'` with a product of column gauges \
             (ℓ1, ℓ2, ℓ∞, TV, sums of them, nonnegativity) or dropout, CP factorizations \
             `cp(A, B, C, ...)` of 3 to 8 modes with the squared loss, two-layer ReLU \
             networks with ℓ2 · ℓ2 and three-layer parallel ones with ℓ2 · ℓ2 · ℓ2; `hfc explain` still derives the convex problem of this \
             model",
        ),
    )
}

/// Dropout's strategy: κ = ½·λ·p/(1 − p) (the dropout expectation of the ½-squared loss).
/// Only the dense squared loss on `U * V'` has that expectation in closed form, and a fixed
/// rate needs a fixed size.
fn dropout_regularization(
    model: &ir::Model,
    p: f64,
    adaptive: bool,
) -> Result<Regularization, Box<Diagnostic>> {
    let squared = model.loss.kind.name == "squared" && !model.loss.observed;
    if !squared || !matches!(model.map, Map::Matrix { .. }) {
        return Err(unsupported(
            model,
            model.reg_span,
            "dropout's regularizer is the expectation of the squared loss on every entry of \
             `U * V'`; other losses and maps have no closed form",
            "use `loss squared;` on a dense matrix, or a product-of-norms regularizer",
        ));
    }
    if !adaptive && model.solve.init_rank == 0 {
        return Err(Box::new(
            Diagnostic::new(
                codes::RUN_FIXED_SIZE,
                model.file,
                "fixed-rate dropout does not limit the size r: `hfc run` needs a fixed size"
                    .to_string(),
                model.reg_span,
                "no size limit",
            )
            .with_help(
                "give the size: `solve { init_rank = 20; }` (the run keeps it), or let the \
                 rate grow with the size: `dropout(p, adaptive)`"
                    .to_string(),
            ),
        ));
    }
    let weight = model.reg.weight.value;
    Ok(Regularization::Dropout {
        kappa: 0.5 * weight * p / (1.0 - p),
        adaptive,
    })
}

mod deep_network;
mod network;
mod tensor;

pub use tensor::TensorBinding;

/// The rank-growing algorithm needs a polar certificate (exact or heuristic): a model without
/// one (degrees that do not match) is refused.
fn require_certificate(model: &ir::Model, induced: &InducedProblem) -> Result<(), Box<Diagnostic>> {
    if induced.certificate == Certificate::None {
        return Err(unsupported(
            model,
            model.map_span,
            "the model has no polar certificate (see `hfc explain`)",
            "match the regularizer's degree to the map's so that the rank-growing algorithm \
             applies",
        ));
    }
    Ok(())
}

struct Builder {
    dims: Vec<Dim>,
    buffers: Vec<Buffer>,
    kernels: Vec<Kernel>,
    roles: Vec<(Role, KernelId)>,
}

impl Builder {
    fn new() -> Builder {
        Builder {
            dims: Vec::new(),
            buffers: Vec::new(),
            kernels: Vec::new(),
            roles: Vec::new(),
        }
    }

    fn dim(&mut self, name: &str, kind: DimKind) -> DimId {
        self.dims.push(Dim {
            name: name.to_string(),
            kind,
        });
        DimId(self.dims.len() as u32 - 1)
    }

    fn buf(&mut self, name: &str, shape: &[DimId], kind: BufferKind) -> BufId {
        self.buffers.push(Buffer {
            name: name.to_string(),
            shape: shape.to_vec(),
            kind,
        });
        BufId(self.buffers.len() as u32 - 1)
    }

    /// Block k's `Gauge(k)` kernel (its columns' gauges into `gauges`) and `Prox(k)` kernel
    /// (the column prox from `step` into `factor`, weighted by `weights`).
    fn gauge_and_prox(
        &mut self,
        k: u8,
        factor: BufId,
        step: BufId,
        gauges: BufId,
        weights: BufId,
        gauge: &Gauge,
    ) {
        self.kernel(
            Role::Gauge(k),
            vec![Stmt::ColumnGauge {
                dst: gauges,
                src: factor,
                gauge: gauge.clone(),
            }],
        );
        self.kernel(
            Role::Prox(k),
            vec![Stmt::ColumnProx {
                dst: factor,
                src: step,
                weights,
                gauge: gauge.clone(),
            }],
        );
    }

    /// The `Dual` kernel from the loss's convex conjugate: `dual = −Σ ℓ*(s·∇ℓ, y)` with the
    /// dual scale s, where `gradient` holds ∇ℓ at the outputs over `space` (y's shape).
    fn dual(
        &mut self,
        space: &[DimId],
        gradient: BufId,
        y: BufId,
        (dual_scale, dual): (BufId, BufId),
        conjugate: impl Fn(Expr, Expr) -> Expr,
    ) {
        let dual_point = self.buf("dual_point", space, BufferKind::Temp);
        let conjugate_sum = self.buf("conjugate_sum", &[], BufferKind::Temp);
        self.kernel(
            Role::Dual,
            vec![
                map(dual_point, b(dual_scale).times(b(gradient))),
                sum(conjugate_sum, conjugate(b(dual_point), b(y))),
                map(dual, b(conjugate_sum).un(Unary::Neg)),
            ],
        );
    }

    fn kernel(&mut self, role: Role, body: Vec<Stmt>) {
        self.kernels.push(Kernel {
            name: role.name().to_string(),
            body,
        });
        self.roles
            .push((role, KernelId(self.kernels.len() as u32 - 1)));
    }
}

fn gemm(dst: BufId, a: BufId, trans_a: bool, b: BufId, trans_b: bool, alpha: f64) -> Stmt {
    Stmt::Gemm {
        dst,
        a,
        trans_a,
        b,
        trans_b,
        alpha,
        accumulate: false,
    }
}

fn gemm_acc(dst: BufId, a: BufId, trans_a: bool, b: BufId, trans_b: bool, alpha: f64) -> Stmt {
    Stmt::Gemm {
        dst,
        a,
        trans_a,
        b,
        trans_b,
        alpha,
        accumulate: true,
    }
}

fn sum(dst: BufId, expr: Expr) -> Stmt {
    Stmt::Sum { dst, expr }
}

fn map(dst: BufId, expr: Expr) -> Stmt {
    Stmt::Map { dst, expr }
}

fn b(id: BufId) -> Expr {
    Expr::Buf(id)
}

fn gauge_of(model: &ir::Model, g: &FactorGauge) -> Option<(Gauge, f64)> {
    if g.power != 1 {
        return None;
    }
    let mut terms = Vec::new();
    for (weight, atom) in &g.terms {
        let atom = match atom.gauge? {
            catalog::Gauge::L1 => GaugeAtom::L1,
            catalog::Gauge::L2 => GaugeAtom::L2,
            catalog::Gauge::Linf => GaugeAtom::Linf,
            catalog::Gauge::Tv => GaugeAtom::Tv,
        };
        terms.push((weight.value, atom));
    }
    // A single weighted atom: the weight moves into θ's constant, so that the closed-form
    // polar solvers see unit balls.
    let mut scale = 1.0;
    if let [(w, _)] = terms.as_mut_slice() {
        scale = *w;
        *w = 1.0;
    }
    let nonneg = model.factors.get(g.factor)?.nonneg;
    Some((Gauge { terms, nonneg }, scale))
}

/// `curvature = ‖u vᵀ‖²_F = ‖u‖² ‖v‖²` when every entry counts.
fn dense_curvature(bld: &mut Builder, u: BufId, v: BufId, curvature: BufId) {
    let uu = bld.buf("probe_left_sq", &[], BufferKind::Temp);
    let vv = bld.buf("probe_right_sq", &[], BufferKind::Temp);
    bld.kernel(
        Role::Curvature,
        vec![
            sum(uu, b(u).un(Unary::Square)),
            sum(vv, b(v).un(Unary::Square)),
            map(curvature, b(uu).times(b(vv))),
        ],
    );
}

/// Lowers a model the runtime can run.
pub fn lower(model: &ir::Model, induced: &InducedProblem) -> Result<Lowered, Box<Diagnostic>> {
    // The two factors the solver alternates over, and a network's input data.
    let (left, right, network_input) = match &model.map {
        Map::Matrix { left, right } => (*left, *right, None),
        Map::Network {
            input,
            layers,
            activation: Some("relu"),
            ..
        } if layers.len() == 2 => (layers[0], layers[1], Some(*input)),
        Map::Network {
            input,
            layers,
            activation: Some("relu"),
            parallel: true,
        } if layers.len() == 3 => return deep_network::lower(model, induced, *input, layers),
        Map::Network { .. } => {
            return Err(unsupported(
                model,
                model.map_span,
                "only two-layer ReLU networks `relu(X * W1) * W2'` and three-layer parallel \
                 ones `relu(relu(X * W1) * W2) * W3'` run",
                "give each subnetwork its own layers, indexed by the size on their last axis \
                 (`W1 : [d, 8, r]; W2 : [8, r]; W3 : [c, r]`); deeper networks and other \
                 activations come with a later release; `hfc check` and `hfc explain` work now",
            ));
        }
        Map::Tensor { factors } => return tensor::lower(model, induced, factors),
        _ => {
            return Err(unsupported(
                model,
                model.map_span,
                "the map is not a matrix factorization `U * V'`, a CP factorization \
                 `cp(A, B, C, ...)` or a two-layer ReLU network",
                "`hfc explain` derives its convex problem",
            ));
        }
    };
    if network_input.is_some() && model.loss.observed {
        return Err(unsupported(
            model,
            model.map_span,
            "a network fitted on observed entries",
            "fit every output: `loss squared;` or `loss logistic;`",
        ));
    }
    let regularization = match model.reg.form {
        RegForm::Dropout { p, adaptive } => dropout_regularization(model, p, adaptive)?,
        _ => Regularization::ProductOfGauges,
    };
    let dropout = matches!(regularization, Regularization::Dropout { .. });
    let reg_help = "write the regularizer as `lambda * sum(i) g(U[:, i]) * h(V[:, i])` with \
                    norms g, h built from norm1, norm2, norminf and tv";
    let (mut gauge_left, mut gauge_right, mut scale) = match &model.reg.form {
        RegForm::Product { gauges, scale } => {
            let find = |f: usize| gauges.iter().find(|g| g.factor == f);
            let (Some(gl), Some(gr)) = (find(left), find(right)) else {
                return Err(unsupported(
                    model,
                    model.map_span,
                    "the regularizer does not put one gauge on each factor",
                    reg_help,
                ));
            };
            let (Some((gl, sl)), Some((gr, sr))) = (gauge_of(model, gl), gauge_of(model, gr))
            else {
                return Err(unsupported(
                    model,
                    model.map_span,
                    "a factor's gauge is not a sum of ℓ1, ℓ2, ℓ∞ and TV norms",
                    reg_help,
                ));
            };
            (gl, gr, scale.value * sl * sr)
        }
        // λ(‖U‖² + ‖V‖²) equals 2λ Σ‖uᵢ‖‖vᵢ‖ at balance (AM–GM), and balancing never
        // changes the map: the runtime solves the product form.
        RegForm::WeightDecay(gauges)
            if gauges.len() == 2
                && gauges
                    .iter()
                    .all(|g| g.power == 2 && matches!(g.simple(), Some(catalog::Gauge::L2))) =>
        {
            let l2 = |f: usize| Gauge {
                terms: vec![(1.0, GaugeAtom::L2)],
                nonneg: model.factors[f].nonneg,
            };
            (l2(left), l2(right), 2.0)
        }
        // The gauges only describe the columns in reports; dropout's regularizer is applied
        // on the host (`Regularization::Dropout`).
        RegForm::Dropout { .. } => {
            let l2 = Gauge {
                terms: vec![(1.0, GaugeAtom::L2)],
                nonneg: false,
            };
            (l2.clone(), l2, 1.0)
        }
        _ => {
            return Err(unsupported(
                model,
                model.map_span,
                "the regularizer is not a product of one column gauge per factor",
                reg_help,
            ));
        }
    };
    for g in [&gauge_left, &gauge_right] {
        if let Some(why) = hfc_runtime::gauge::supported(g) {
            return Err(unsupported(model, model.map_span, &why, reg_help));
        }
    }
    if !dropout {
        require_certificate(model, induced)?;
    }
    let polar = match induced.oracle {
        _ if dropout => PolarSolver::TopSingular,
        Some(PolarOracle::TopSingularValue) => PolarSolver::TopSingular,
        Some(PolarOracle::MaxAbsEntry) => PolarSolver::MaxAbsEntry,
        Some(PolarOracle::MaxPositiveEntry) => PolarSolver::MaxPositiveEntry,
        Some(PolarOracle::MaxRowNorm) => PolarSolver::MaxRowNorm,
        Some(PolarOracle::MaxColumnNorm) => PolarSolver::MaxColumnNorm,
        Some(PolarOracle::NonnegativePower | PolarOracle::AlternatingProx) => {
            PolarSolver::Alternating
        }
        Some(PolarOracle::ReluPatterns) if network_input.is_some() => PolarSolver::ReluPatterns,
        _ => {
            return Err(unsupported(
                model,
                model.map_span,
                "its polar solver is not available in the runtime",
                "see `hfc explain` for the polar problem",
            ));
        }
    };
    // The ℓ2 Lanczos and ℓ1 closed forms assume unit-weight single atoms (moved into scale
    // above); the alternating solver works with any weights.
    if polar != PolarSolver::Alternating {
        for g in [&mut gauge_left, &mut gauge_right] {
            if g.terms.len() != 1 {
                return Err(unsupported(
                    model,
                    model.map_span,
                    "an exact polar solver for a composite gauge",
                    reg_help,
                ));
            }
        }
    }
    let plain_l2 = |g: &Gauge| g.terms == [(1.0, GaugeAtom::L2)] && !g.nonneg;
    if polar == PolarSolver::ReluPatterns && !(plain_l2(&gauge_left) && plain_l2(&gauge_right)) {
        return Err(unsupported(
            model,
            model.map_span,
            "a network regularizer other than a product of ℓ2 norms",
            "write `lambda * sum(i) norm2(W1[:, i]) * norm2(W2[:, i])`",
        ));
    }
    if scale <= 0.0 || !scale.is_finite() {
        scale = 1.0;
    }
    let loss = &model.loss;
    let kernel = loss.kind.kernel;
    let params = loss.params.clone();
    let observed = loss.observed;
    let target = loss.target;

    let mut bld = Builder::new();
    let data_shape = &model.data[target].shape;
    let (m_name, n_name) = (
        data_shape.first().cloned().unwrap_or_else(|| "m".into()),
        data_shape.get(1).cloned().unwrap_or_else(|| "n".into()),
    );
    let m = bld.dim(&m_name, DimKind::Data);
    let n = bld.dim(&n_name, DimKind::Data);
    // A network's first layer has one row per input feature: X : [N, d].
    let network = network_input.map(|input| {
        let d_name = model.data[input]
            .shape
            .get(1)
            .cloned()
            .unwrap_or_else(|| "d".into());
        (input, bld.dim(&d_name, DimKind::Data))
    });
    let (u_rows, v_rows) = match network {
        Some((_, d)) => (d, n),
        None => (m, n),
    };
    let r = bld.dim(&model.size_index, DimKind::Rank);
    let p = bld.dim("p", DimKind::Probe);
    let scalar = |bld: &mut Builder, name: &str, kind| bld.buf(name, &[], kind);
    let y_name = model.data[target].name.clone();
    let (y, nnz) = if observed {
        let nnz = bld.dim("nnz", DimKind::Observed);
        (
            bld.buf(&y_name, &[nnz], BufferKind::Observed { rows: m, cols: n }),
            Some(nnz),
        )
    } else {
        (bld.buf(&y_name, &[m, n], BufferKind::Input), None)
    };
    let u = bld.buf(&model.factors[left].name, &[u_rows, r], BufferKind::Factor);
    let v = bld.buf(&model.factors[right].name, &[v_rows, r], BufferKind::Factor);
    let loss_buf = scalar(&mut bld, "loss", BufferKind::State);
    let grad_u = bld.buf("grad_left", &[u_rows, r], BufferKind::State);
    let grad_v = bld.buf("grad_right", &[v_rows, r], BufferKind::State);
    let step_u = bld.buf("step_left", &[u_rows, r], BufferKind::Arg);
    let step_v = bld.buf("step_right", &[v_rows, r], BufferKind::Arg);
    let weights = bld.buf("prox_weights", &[r], BufferKind::Arg);
    let gauge_u = bld.buf("gauge_left", &[r], BufferKind::State);
    let gauge_v = bld.buf("gauge_right", &[r], BufferKind::State);
    let probe_in_u = bld.buf("probe_in_left", &[u_rows, p], BufferKind::Arg);
    let probe_in_v = bld.buf("probe_in_right", &[v_rows, p], BufferKind::Arg);
    let probe_out_u = bld.buf("probe_out_left", &[u_rows, p], BufferKind::State);
    let probe_out_v = bld.buf("probe_out_right", &[v_rows, p], BufferKind::State);
    let dual_scale = scalar(&mut bld, "dual_scale", BufferKind::Arg);
    let dual = scalar(&mut bld, "dual", BufferKind::State);
    let curvature = scalar(&mut bld, "curvature", BufferKind::State);

    let value = |x: Expr, y: Expr| (kernel.value)(x, y, &params);
    let gradient = |x: Expr, y: Expr| (kernel.gradient)(x, y, &params);
    let conjugate = |z: Expr, y: Expr| (kernel.conjugate)(z, y, &params);

    let mut extra_slots = Vec::new();
    let mut inputs = Vec::new();
    if let Some((input, d)) = network {
        let x = bld.buf(&model.data[input].name, &[m, d], BufferKind::Input);
        inputs.push((input, x, (m, d)));
        let io = network::Io {
            x,
            y,
            w1: u,
            w2: v,
            loss: loss_buf,
            grad_w1: grad_u,
            grad_w2: grad_v,
            probe_w1: probe_in_u,
            probe_w2: probe_in_v,
            dual_scale,
            dual,
            curvature,
            dims: (m, n, d, r, p),
        };
        extra_slots = network::kernels(&mut bld, &io, kernel, &params);
    } else if let Some(nnz) = nnz {
        // Any loss on observed entries: sampled predictions, sparse gradients.
        let pred = bld.buf("pred", &[nnz], BufferKind::Temp);
        let resid = bld.buf("grad_obs", &[nnz], BufferKind::State);
        let predict = |extra: Vec<Stmt>| {
            let mut body = vec![
                Stmt::Sample {
                    dst: pred,
                    pattern: y,
                    a: u,
                    b: v,
                },
                sum(loss_buf, value(b(pred), b(y))),
            ];
            body.extend(extra);
            body
        };
        let spmm = |dst, values, rhs, trans, alpha| Stmt::SpMM {
            dst,
            pattern: y,
            values,
            b: rhs,
            trans,
            alpha,
            accumulate: false,
        };
        bld.kernel(Role::Setup, Vec::new());
        bld.kernel(Role::Value, predict(Vec::new()));
        bld.kernel(
            Role::Grad(0),
            predict(vec![
                map(resid, gradient(b(pred), b(y))),
                spmm(grad_u, resid, v, false, 1.0),
            ]),
        );
        bld.kernel(
            Role::Grad(1),
            predict(vec![
                map(resid, gradient(b(pred), b(y))),
                spmm(grad_v, resid, u, true, 1.0),
            ]),
        );
        bld.kernel(Role::ValueAfterLast, predict(Vec::new()));
        bld.kernel(
            Role::Residual,
            predict(vec![map(resid, gradient(b(pred), b(y)))]),
        );
        bld.kernel(
            Role::Contract(0),
            vec![spmm(probe_out_u, resid, probe_in_v, false, -1.0)],
        );
        bld.kernel(
            Role::Contract(1),
            vec![spmm(probe_out_v, resid, probe_in_u, true, -1.0)],
        );
        bld.dual(&[nnz], resid, y, (dual_scale, dual), conjugate);
        let sampled = bld.buf("probe_sample", &[nnz], BufferKind::Temp);
        bld.kernel(
            Role::Curvature,
            vec![
                Stmt::Sample {
                    dst: sampled,
                    pattern: y,
                    a: probe_in_u,
                    b: probe_in_v,
                },
                sum(curvature, b(sampled).un(Unary::Square)),
            ],
        );
    } else if kernel.quadratic {
        // Squared loss on every entry: traces, never the m × n residual.
        let yy = scalar(&mut bld, "y_sq", BufferKind::State);
        let yv = bld.buf("y_v", &[m, r], BufferKind::Temp);
        let ytu = bld.buf("yt_u", &[n, r], BufferKind::State);
        let utu = bld.buf("ut_u", &[r, r], BufferKind::Temp);
        let vtv = bld.buf("vt_v", &[r, r], BufferKind::Temp);
        let cross = scalar(&mut bld, "x_dot_y", BufferKind::State);
        let xx = scalar(&mut bld, "x_sq", BufferKind::State);
        // loss = ½‖Y‖² − ⟨X, Y⟩ + ½‖X‖², with ⟨X, Y⟩ and ‖X‖² from traces.
        let loss_from_traces = map(
            loss_buf,
            b(yy)
                .times(Expr::c(0.5))
                .minus(b(cross))
                .plus(b(xx).times(Expr::c(0.5))),
        );
        let grams = vec![
            gemm(utu, u, true, u, false, 1.0),
            gemm(vtv, v, true, v, false, 1.0),
            sum(xx, b(utu).times(b(vtv))),
        ];
        bld.kernel(Role::Setup, vec![sum(yy, b(y).un(Unary::Square))]);
        let via_yv = |extra: Vec<Stmt>| {
            let mut body = vec![gemm(yv, y, false, v, false, 1.0)];
            body.extend(grams.clone());
            body.push(sum(cross, b(u).times(b(yv))));
            body.push(loss_from_traces.clone());
            body.extend(extra);
            body
        };
        bld.kernel(Role::Value, via_yv(Vec::new()));
        bld.kernel(
            Role::Grad(0),
            via_yv(vec![
                gemm(grad_u, u, false, vtv, false, 1.0),
                gemm_acc(grad_u, y, false, v, false, -1.0),
            ]),
        );
        let via_ytu = |first: Vec<Stmt>, extra: Vec<Stmt>| {
            let mut body = first;
            body.extend(grams.clone());
            body.push(sum(cross, b(v).times(b(ytu))));
            body.push(loss_from_traces.clone());
            body.extend(extra);
            body
        };
        bld.kernel(
            Role::Grad(1),
            via_ytu(
                vec![gemm(ytu, y, true, u, false, 1.0)],
                vec![
                    gemm(grad_v, v, false, utu, false, 1.0),
                    Stmt::Map {
                        dst: grad_v,
                        expr: b(grad_v).minus(b(ytu)),
                    },
                ],
            ),
        );
        bld.kernel(Role::ValueAfterLast, via_ytu(Vec::new(), Vec::new()));
        bld.kernel(Role::Residual, via_yv(Vec::new()));
        let vtx = bld.buf("vt_probe", &[r, p], BufferKind::Temp);
        let uty = bld.buf("ut_probe", &[r, p], BufferKind::Temp);
        bld.kernel(
            Role::Contract(0),
            vec![
                gemm(vtx, v, true, probe_in_v, false, 1.0),
                gemm(probe_out_u, y, false, probe_in_v, false, 1.0),
                gemm_acc(probe_out_u, u, false, vtx, false, -1.0),
            ],
        );
        bld.kernel(
            Role::Contract(1),
            vec![
                gemm(uty, u, true, probe_in_u, false, 1.0),
                gemm(probe_out_v, y, true, probe_in_u, false, 1.0),
                gemm_acc(probe_out_v, v, false, uty, false, -1.0),
            ],
        );
        // −ℓ*(s·G) = −(s⟨G, Y⟩ + ½s²‖G‖²), ⟨G, Y⟩ = ⟨X, Y⟩ − ‖Y‖², ‖G‖² = ‖X‖² − 2⟨X, Y⟩ + ‖Y‖².
        let s = || b(dual_scale);
        let g_dot_y = b(cross).minus(b(yy));
        let g_sq = b(xx).minus(b(cross).times(Expr::c(2.0))).plus(b(yy));
        bld.kernel(
            Role::Dual,
            vec![map(
                dual,
                s().times(g_dot_y)
                    .plus(s().times(s()).times(g_sq).times(Expr::c(0.5)))
                    .un(Unary::Neg),
            )],
        );
        dense_curvature(&mut bld, probe_in_u, probe_in_v, curvature);
    } else {
        // Other losses on every entry: form X = U Vᵀ and apply the catalog's formulas.
        let x = bld.buf("pred", &[m, n], BufferKind::Temp);
        let g = bld.buf("grad_full", &[m, n], BufferKind::State);
        let predict = |extra: Vec<Stmt>| {
            let mut body = vec![
                gemm(x, u, false, v, true, 1.0),
                sum(loss_buf, value(b(x), b(y))),
            ];
            body.extend(extra);
            body
        };
        bld.kernel(Role::Setup, Vec::new());
        bld.kernel(Role::Value, predict(Vec::new()));
        bld.kernel(
            Role::Grad(0),
            predict(vec![
                map(g, gradient(b(x), b(y))),
                gemm(grad_u, g, false, v, false, 1.0),
            ]),
        );
        bld.kernel(
            Role::Grad(1),
            predict(vec![
                map(g, gradient(b(x), b(y))),
                gemm(grad_v, g, true, u, false, 1.0),
            ]),
        );
        bld.kernel(Role::ValueAfterLast, predict(Vec::new()));
        bld.kernel(Role::Residual, predict(vec![map(g, gradient(b(x), b(y)))]));
        bld.kernel(
            Role::Contract(0),
            vec![gemm(probe_out_u, g, false, probe_in_v, false, -1.0)],
        );
        bld.kernel(
            Role::Contract(1),
            vec![gemm(probe_out_v, g, true, probe_in_u, false, -1.0)],
        );
        bld.dual(&[m, n], g, y, (dual_scale, dual), conjugate);
        dense_curvature(&mut bld, probe_in_u, probe_in_v, curvature);
    }
    bld.gauge_and_prox(0, u, step_u, gauge_u, weights, &gauge_left);
    bld.gauge_and_prox(1, v, step_v, gauge_v, weights, &gauge_right);
    let slots: Vec<(Slot, BufId)> = vec![
        (Slot::Factor(0), u),
        (Slot::Factor(1), v),
        (Slot::Loss, loss_buf),
        (Slot::Grad(0), grad_u),
        (Slot::Grad(1), grad_v),
        (Slot::Step(0), step_u),
        (Slot::Step(1), step_v),
        (Slot::ProxWeights, weights),
        (Slot::Gauge(0), gauge_u),
        (Slot::Gauge(1), gauge_v),
        (Slot::ProbeIn(0), probe_in_u),
        (Slot::ProbeIn(1), probe_in_v),
        (Slot::ProbeOut(0), probe_out_u),
        (Slot::ProbeOut(1), probe_out_v),
        (Slot::DualScale, dual_scale),
        (Slot::Dual, dual),
        (Slot::Curvature, curvature),
    ]
    .into_iter()
    .chain(extra_slots)
    .collect();
    let lambda = match model.reg.form {
        RegForm::None => 0.0,
        _ => model.reg.weight.value,
    };
    let program = Program {
        name: model.name.clone(),
        dims: bld.dims,
        buffers: bld.buffers,
        kernels: bld.kernels,
        plan: Plan {
            regularization,
            rank: r,
            probe: p,
            lambda,
            scale,
            gauges: vec![gauge_left, gauge_right],
            smoothness: (kernel.smoothness)(&params),
            quadratic: kernel.quadratic,
            masked: observed,
            polar,
            // Dropout's test σ_max(Y − X) ≤ λ₁‖X‖_* is exact (Lanczos); at a fixed rate it
            // certifies the fixed size only, and the model has no certificate.
            polar_exact: match regularization {
                Regularization::Dropout { adaptive, .. } => adaptive,
                // The pattern enumeration is exact when the input dimension is small; the
                // solver learns it from the data and labels each polar value.
                Regularization::ProductOfGauges if polar == PolarSolver::ReluPatterns => true,
                Regularization::ProductOfGauges => {
                    induced.polar_exact && induced.certificate == Certificate::Exact
                }
            },
            polar_starts: model.solve.polar_starts,
            // A non-quadratic loss's global smoothness bound (¼ for the logistic) is far
            // above its curvature near a fit: steps that adapt converge in a tenth of the
            // iterations (measured on the logistic ReLU test: 191 against 2500+).
            lipschitz: if network.is_some() && !kernel.quadratic {
                vec![Lipschitz::Backtracking, Lipschitz::Backtracking]
            } else if network.is_some() {
                vec![Lipschitz::InputTimesOtherGram, Lipschitz::BlockGram]
            } else {
                vec![Lipschitz::OtherGram; 2]
            },
            slots,
            roles: bld.roles,
        },
    };
    Ok(Lowered {
        program,
        target: (target, y),
        observed,
        data_dims: vec![m, n],
        inputs,
        factor_dims: vec![u_rows, v_rows],
        factors: vec![left, right],
        tensor: None,
    })
}
