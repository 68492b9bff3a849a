//! The kernel IR: what one model does per iteration, as straight-line kernels over named
//! buffers, plus the [`Plan`] that tells the solver which kernel plays which role.
//!
//! It is the contract between the compiler (which lowers a checked model to it and makes the
//! rewrites there: the squared loss never forms the m × n residual, a masked loss works only on
//! observed entries) and the back ends (the reference interpreter here; Cranelift and WGSL
//! next). Dense products are [`Stmt::Gemm`] (a library kernel); everything else (elementwise
//! maps, sums, sampled products, sparse products, per-column gauges and prox) is what code
//! generators generate. The text form ([`std::fmt::Display`]) is stable and readable; the
//! validator ([`crate::valid`]) checks a program before any back end sees it.

use std::fmt;

/// A dimension (an extent shared by buffers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DimId(pub u32);

/// A buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BufId(pub u32);

/// A kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KernelId(pub u32);

/// Where a dimension's extent comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DimKind {
    /// Fixed by the data (rows, columns).
    Data,
    /// The number of observed entries of an observed input.
    Observed,
    /// The size r: the solver grows it.
    Rank,
    /// Columns of a probe block (the polar solver's vectors): the solver sets it.
    Probe,
    /// A number known when the program is built (a subnetwork's hidden units).
    Fixed(u32),
    /// `factor` times another dimension's extent, bound with it (back ends bind it whenever
    /// they bind `base`): the `h·r` columns of r subnetworks' h hidden units each.
    Scaled {
        /// The dimension it is a multiple of.
        base: DimId,
        /// The multiple.
        factor: u32,
    },
}

/// A dimension declaration.
#[derive(Clone, Debug, PartialEq)]
pub struct Dim {
    /// Its name (`m`, `n`, `r`).
    pub name: String,
    /// Where its extent comes from.
    pub kind: DimKind,
}

/// What a buffer holds and who writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BufferKind {
    /// Dense data, bound before the run.
    Input,
    /// Observed entries of a matrix (values on a sparsity pattern), bound before the run; its
    /// shape is `[nnz]` and its pattern has the extents `rows × cols`.
    Observed {
        /// Rows of the full matrix.
        rows: DimId,
        /// Columns of the full matrix.
        cols: DimId,
    },
    /// A factor: the solver owns its value.
    Factor,
    /// An argument the solver sets before calling a kernel (a step, weights, probe vectors).
    Arg,
    /// Written by a kernel and read by kernels the solver calls later.
    State,
    /// Written and read inside one kernel.
    Temp,
}

/// A buffer declaration. Shape `[]` is a scalar.
#[derive(Clone, Debug, PartialEq)]
pub struct Buffer {
    /// Its name.
    pub name: String,
    /// Its extents.
    pub shape: Vec<DimId>,
    /// What it holds.
    pub kind: BufferKind,
}

/// Elementwise unary operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unary {
    /// −x
    Neg,
    /// |x|
    Abs,
    /// x²
    Square,
    /// √x
    Sqrt,
    /// eˣ
    Exp,
    /// log(1 + x)
    Log1p,
    /// 1 / (1 + e⁻ˣ), evaluated without overflow.
    Sigmoid,
    /// log(1 + eˣ), evaluated without overflow.
    Softplus,
    /// x log x, with 0 log 0 = 0.
    XLogX,
    /// 1 where x > 0, else 0 (NaN gives 0): the derivative of relu, with relu'(0) = 0.
    Step,
}

impl Unary {
    /// Its name in the text form.
    pub fn name(self) -> &'static str {
        match self {
            Unary::Neg => "neg",
            Unary::Abs => "abs",
            Unary::Square => "sqr",
            Unary::Sqrt => "sqrt",
            Unary::Exp => "exp",
            Unary::Log1p => "log1p",
            Unary::Sigmoid => "sigmoid",
            Unary::Softplus => "softplus",
            Unary::XLogX => "xlogx",
            Unary::Step => "step",
        }
    }

    /// Applies it to one number (the definition every back end must agree with).
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Unary::Neg => -x,
            Unary::Abs => x.abs(),
            Unary::Square => x * x,
            Unary::Sqrt => x.sqrt(),
            Unary::Exp => x.exp(),
            Unary::Log1p => x.ln_1p(),
            Unary::Sigmoid => {
                if x >= 0.0 {
                    1.0 / (1.0 + (-x).exp())
                } else {
                    let e = x.exp();
                    e / (1.0 + e)
                }
            }
            Unary::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
            Unary::XLogX => {
                if x == 0.0 {
                    0.0
                } else {
                    x * x.ln()
                }
            }
            Unary::Step => {
                if x > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }
}

/// Elementwise binary operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    /// a + b
    Add,
    /// a − b
    Sub,
    /// a · b
    Mul,
    /// a / b
    Div,
    /// min(a, b)
    Min,
    /// max(a, b)
    Max,
}

impl Binary {
    /// Its name in the text form.
    pub fn name(self) -> &'static str {
        match self {
            Binary::Add => "add",
            Binary::Sub => "sub",
            Binary::Mul => "mul",
            Binary::Div => "div",
            Binary::Min => "min",
            Binary::Max => "max",
        }
    }

    /// Applies it to two numbers.
    pub fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            Binary::Add => a + b,
            Binary::Sub => a - b,
            Binary::Mul => a * b,
            Binary::Div => a / b,
            Binary::Min => a.min(b),
            Binary::Max => a.max(b),
        }
    }
}

/// An elementwise expression: buffers of the destination's shape, scalars (broadcast) and
/// constants.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A buffer's element (or a scalar buffer's value).
    Buf(BufId),
    /// A constant.
    Const(f64),
    /// A unary operation.
    Unary(Unary, Box<Expr>),
    /// A binary operation.
    Binary(Binary, Box<Expr>, Box<Expr>),
}

impl Expr {
    /// A buffer.
    pub fn buf(id: BufId) -> Expr {
        Expr::Buf(id)
    }
    /// A constant.
    pub fn c(value: f64) -> Expr {
        Expr::Const(value)
    }
    /// `op(self)`.
    pub fn un(self, op: Unary) -> Expr {
        Expr::Unary(op, Box::new(self))
    }
    /// `op(self, other)`.
    pub fn bin(self, op: Binary, other: Expr) -> Expr {
        Expr::Binary(op, Box::new(self), Box::new(other))
    }
    /// `self + other`.
    pub fn plus(self, other: Expr) -> Expr {
        self.bin(Binary::Add, other)
    }
    /// `self − other`.
    pub fn minus(self, other: Expr) -> Expr {
        self.bin(Binary::Sub, other)
    }
    /// `self · other`.
    pub fn times(self, other: Expr) -> Expr {
        self.bin(Binary::Mul, other)
    }

    /// Every buffer it reads, in order of appearance.
    pub fn buffers(&self, out: &mut Vec<BufId>) {
        match self {
            Expr::Buf(id) => out.push(*id),
            Expr::Const(_) => {}
            Expr::Unary(_, a) => a.buffers(out),
            Expr::Binary(_, a, b) => {
                a.buffers(out);
                b.buffers(out);
            }
        }
    }
}

/// The order in which sums (`Sum`, the dot products of `Sample`) add their terms, which
/// every back end follows so that f64 results agree bit for bit: terms at even and odd
/// positions (row-major) go to two accumulators, which are added, and an odd last term is
/// added after them. Two lanes is what a 128-bit f64 vector holds, so generated code keeps
/// the order at full vector speed.
pub fn ordered_sum(terms: impl IntoIterator<Item = f64>) -> f64 {
    let (mut even, mut odd) = (0.0, 0.0);
    let mut pending = None;
    for term in terms {
        match pending.take() {
            None => pending = Some(term),
            Some(first) => {
                even += first;
                odd += term;
            }
        }
    }
    let pairs = even + odd;
    match pending {
        Some(last) => pairs + last,
        None => pairs,
    }
}

/// A gauge atom (a norm or seminorm on one column).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GaugeAtom {
    /// ℓ1 norm.
    L1,
    /// ℓ2 norm.
    L2,
    /// ℓ∞ norm.
    Linf,
    /// 1-D total variation Σ|x_{k+1} − x_k|.
    Tv,
}

impl GaugeAtom {
    /// Its name in the text form.
    pub fn name(self) -> &'static str {
        match self {
            GaugeAtom::L1 => "l1",
            GaugeAtom::L2 => "l2",
            GaugeAtom::Linf => "linf",
            GaugeAtom::Tv => "tv",
        }
    }
}

/// A column gauge: Σ weight·atom, optionally on the nonnegative cone.
#[derive(Clone, Debug, PartialEq)]
pub struct Gauge {
    /// Weighted atoms.
    pub terms: Vec<(f64, GaugeAtom)>,
    /// Columns are constrained to be nonnegative.
    pub nonneg: bool,
}

impl fmt::Display for Gauge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, (weight, atom)) in self.terms.iter().enumerate() {
            if k > 0 {
                f.write_str(" + ")?;
            }
            if *weight != 1.0 {
                write!(f, "{weight}*")?;
            }
            f.write_str(atom.name())?;
        }
        if self.nonneg {
            f.write_str(" on >=0")?;
        }
        Ok(())
    }
}

/// One statement of a kernel.
#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    /// `dst = alpha·op(a)·op(b)` (`+ dst` when accumulating): a library GEMM.
    Gemm {
        /// Destination matrix.
        dst: BufId,
        /// Left operand.
        a: BufId,
        /// Transpose the left operand.
        trans_a: bool,
        /// Right operand.
        b: BufId,
        /// Transpose the right operand.
        trans_b: bool,
        /// Scale.
        alpha: f64,
        /// Add to the destination instead of overwriting it.
        accumulate: bool,
    },
    /// `dst[k] = a[iₖ, :] · b[jₖ, :]` (summed in the order of [`ordered_sum`]) for the observed entries (iₖ, jₖ) of `pattern`: the
    /// product `a bᵀ` sampled at the observations, never formed in full.
    Sample {
        /// Destination, `[nnz]`.
        dst: BufId,
        /// The observed input whose pattern is used.
        pattern: BufId,
        /// Left factor, `[rows, k]`.
        a: BufId,
        /// Right factor, `[cols, k]`.
        b: BufId,
    },
    /// `dst[i·nb + j, c] = a[i, c]·b[j, c]`: the column-wise Kronecker (Khatri–Rao) product
    /// of `a` `[na, k]` and `b` `[nb, k]`, `b`'s rows fastest — the order of a tensor
    /// unfolding's columns, so that `T₍ₖ₎·(A ⊙ B)` contracts the other modes. `dst` is
    /// `[na·nb, k]`; its row dimension is bound by the host, and back ends write only the
    /// rows below `na·nb`.
    KhatriRao {
        /// Destination `[na·nb, k]`.
        dst: BufId,
        /// Slower factor `[na, k]`.
        a: BufId,
        /// Faster factor `[nb, k]`.
        b: BufId,
    },
    /// The adjoint of [`Stmt::KhatriRao`] in one operand, `src` `[na·nb, k]`: contracting
    /// the fast index, `dst[i, c] = Σⱼ src[i·nb + j, c]·other[j, c]` (`other` `[nb, k]`,
    /// `dst` `[na, k]`); else the slow one, `dst[j, c] = Σᵢ src[i·nb + j, c]·other[i, c]`
    /// (`other` `[na, k]`, `dst` `[nb, k]`). Summed in ascending index order. A parallel
    /// network's middle layer: r subnetworks each reduce their own h hidden units.
    KhatriRaoAdjoint {
        /// Destination.
        dst: BufId,
        /// Source `[na·nb, k]`.
        src: BufId,
        /// The operand not contracted away.
        other: BufId,
        /// Contract the fast index (`other` is the faster operand).
        over_fast: bool,
    },
    /// `dst = src` entry by entry in row-major order: the same values under another shape of
    /// as many entries (`[d·h, r]` read as `[d, h·r]`).
    Copy {
        /// Destination.
        dst: BufId,
        /// Source.
        src: BufId,
    },
    /// `dst = alpha·S·b` (`Sᵀ·b` when transposed), S the sparse matrix with `values` on the
    /// pattern of `pattern` (`+ dst` when accumulating).
    SpMM {
        /// Destination matrix.
        dst: BufId,
        /// The observed input whose pattern is used.
        pattern: BufId,
        /// Values on the pattern, `[nnz]`.
        values: BufId,
        /// Dense right operand.
        b: BufId,
        /// Use Sᵀ.
        trans: bool,
        /// Scale.
        alpha: f64,
        /// Add to the destination.
        accumulate: bool,
    },
    /// `dst = expr`, elementwise.
    Map {
        /// Destination (its shape is the iteration space).
        dst: BufId,
        /// The expression.
        expr: Expr,
    },
    /// `dst = Σ expr` over the iteration space of the expression's (equal-shaped) buffers,
    /// in the order of [`ordered_sum`].
    Sum {
        /// Destination scalar.
        dst: BufId,
        /// The summand.
        expr: Expr,
    },
    /// `dst[i] = gauge(src[:, i])`.
    ColumnGauge {
        /// Destination `[k]`.
        dst: BufId,
        /// Source `[n, k]`.
        src: BufId,
        /// The gauge.
        gauge: Gauge,
    },
    /// `dst[:, i] = prox_{weights[i]·gauge}(src[:, i])` (with the cone, if any, projected
    /// first).
    ColumnProx {
        /// Destination `[n, k]`.
        dst: BufId,
        /// Source `[n, k]`.
        src: BufId,
        /// Weights `[k]`.
        weights: BufId,
        /// The gauge.
        gauge: Gauge,
    },
}

impl Stmt {
    /// The buffer it writes.
    pub fn dst(&self) -> BufId {
        match self {
            Stmt::Gemm { dst, .. }
            | Stmt::Sample { dst, .. }
            | Stmt::KhatriRao { dst, .. }
            | Stmt::KhatriRaoAdjoint { dst, .. }
            | Stmt::Copy { dst, .. }
            | Stmt::SpMM { dst, .. }
            | Stmt::Map { dst, .. }
            | Stmt::Sum { dst, .. }
            | Stmt::ColumnGauge { dst, .. }
            | Stmt::ColumnProx { dst, .. } => *dst,
        }
    }

    /// The buffers it reads (the destination too when accumulating).
    pub fn reads(&self) -> Vec<BufId> {
        let mut out = Vec::new();
        match self {
            Stmt::Gemm {
                dst,
                a,
                b,
                accumulate,
                ..
            } => {
                out.extend([*a, *b]);
                if *accumulate {
                    out.push(*dst);
                }
            }
            Stmt::Sample { pattern, a, b, .. } => out.extend([*pattern, *a, *b]),
            Stmt::KhatriRao { a, b, .. } => out.extend([*a, *b]),
            Stmt::KhatriRaoAdjoint { src, other, .. } => out.extend([*src, *other]),
            Stmt::Copy { src, .. } => out.push(*src),
            Stmt::SpMM {
                dst,
                pattern,
                values,
                b,
                accumulate,
                ..
            } => {
                out.extend([*pattern, *values, *b]);
                if *accumulate {
                    out.push(*dst);
                }
            }
            Stmt::Map { expr, .. } | Stmt::Sum { expr, .. } => expr.buffers(&mut out),
            Stmt::ColumnGauge { src, .. } => out.push(*src),
            Stmt::ColumnProx { src, weights, .. } => out.extend([*src, *weights]),
        }
        out
    }
}

/// A kernel: straight-line statements.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    /// Its name (the role it plays).
    pub name: String,
    /// Its statements, in order.
    pub body: Vec<Stmt>,
}

/// The names of blocks in kernel names: the two factors of `U * V'` (and a network's two
/// layers) are `left` and `right`, so matrix programs keep their historical names.
const BLOCK_NAMES: [&str; 8] = [
    "left", "right", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
];

/// The most blocks (factors) a program may have.
pub const MAX_BLOCKS: usize = BLOCK_NAMES.len();

fn block_name(k: u8) -> &'static str {
    BLOCK_NAMES.get(k as usize).copied().unwrap_or("block")
}

/// The roles kernels play for the solver. Block-indexed roles exist once per factor (block
/// k = 0, 1, …: U and V, a network's layers, a CP model's modes); every program defines every
/// role its plan requires ([`Plan::required_roles`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Once, after the data are bound: constants of the data (‖Y‖²).
    Setup,
    /// `loss = ℓ(Φ(W))`.
    Value,
    /// `loss = ℓ(Φ(W))` and `grad(k) = ∇_{W_k} ℓ`.
    Grad(u8),
    /// `loss = ℓ(Φ(W))` when the factors other than the last are those the last block's
    /// `Grad` saw (lets the squared loss reuse `Yᵀ U`).
    ValueAfterLast,
    /// Prepares the negative gradient −∇ℓ at the current point for the polar solver and the
    /// dual value (residuals, a dense gradient), and sets `loss`.
    Residual,
    /// `probe_out(k) = −∇ℓ` contracted with `probe_in(l)` on every mode l ≠ k (after
    /// `Residual`). For a matrix: `Contract(0)` is `−∇ℓ · probe_in_right`, `Contract(1)` is
    /// `−∇ℓᵀ · probe_in_left`.
    Contract(u8),
    /// `dual = −ℓ*(s·∇ℓ)` for the scalar `dual_scale` s (after `Residual`).
    Dual,
    /// `curvature = ‖P_obs(φ(probes))‖²`: the map's square along one new column.
    Curvature,
    /// `gauge(k) = g_k(columns of factor k)`.
    Gauge(u8),
    /// `factor(k) = prox(step(k), prox_weights)` column by column.
    Prox(u8),
    /// Networks: the forward pass into the prediction only (`hfc predict`); optional.
    Predict,
}

impl Role {
    /// Its name (the kernel's name).
    pub fn name(self) -> String {
        match self {
            Role::Setup => "setup".into(),
            Role::Value => "value".into(),
            Role::Grad(k) => format!("grad_{}", block_name(k)),
            Role::ValueAfterLast => "value_after_right".into(),
            Role::Residual => "residual".into(),
            Role::Contract(0) => "apply_neg_grad".into(),
            Role::Contract(1) => "apply_neg_grad_t".into(),
            Role::Contract(k) => format!("contract_{}", block_name(k)),
            Role::Dual => "dual".into(),
            Role::Curvature => "curvature".into(),
            Role::Gauge(k) => format!("gauge_{}", block_name(k)),
            Role::Prox(k) => format!("prox_{}", block_name(k)),
            Role::Predict => "predict".into(),
        }
    }
}

/// The buffers the solver reads and writes by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Slot {
    /// Factor k `[n_k, r]` (U = 0, V = 1).
    Factor(u8),
    /// The loss value (scalar).
    Loss,
    /// ∇ℓ with respect to factor k `[n_k, r]`.
    Grad(u8),
    /// The point a prox step on factor k starts from `[n_k, r]`.
    Step(u8),
    /// Per-column prox weights `[r]`.
    ProxWeights,
    /// Column gauges of factor k `[r]`.
    Gauge(u8),
    /// Probe vectors on factor k's side `[n_k, p]`.
    ProbeIn(u8),
    /// Result of `Contract(k)` `[n_k, p]`.
    ProbeOut(u8),
    /// The dual scale s (scalar).
    DualScale,
    /// The dual value (scalar).
    Dual,
    /// ‖P_obs(φ(probes))‖² (scalar).
    Curvature,
    /// Networks: the input data X `[N, d]` (the ReLU polar reads it).
    Features,
    /// Networks: ∇ℓ at the outputs `[N, c]` after `Residual` (the ReLU polar reads it).
    OutputGrad,
    /// Networks: XᵀX `[d, d]`, written by `Setup` (see [`Lipschitz::InputTimesOtherGram`]).
    InputGram,
    /// Networks: the Gram `[r, r]` of the last layer's features, written by its `Grad` (see
    /// [`Lipschitz::BlockGram`]).
    BlockGram,
    /// Networks: the prediction `[N, c]` written by `Predict`.
    Prediction,
}

/// How a block's step size 1/L is bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lipschitz {
    /// `L = β·λ_max(⊛_{l≠k} W_lᵀW_l)` (the Hadamard product of the other factors' Grams):
    /// the map is linear in the block, with the others' columns (their Khatri–Rao product)
    /// as features (matrices, CP tensors).
    OtherGram,
    /// `L = β·λ_max(Slot::BlockGram)` from the block's gradient kernel: the features depend
    /// on the other factor (a network's last layer, `HᵀH` with `H = relu(X W₁)`).
    BlockGram,
    /// `L = β·λ_max(XᵀX)·λ_max(otherᵀother)`: a network's first layer. The bound holds within
    /// one activation pattern only, so the step backtracks (L doubles until the quadratic
    /// upper bound holds).
    InputTimesOtherGram,
    /// No bound in closed form (a deep network's inner layers): L starts from half the
    /// block's last accepted value and doubles until the quadratic upper bound holds.
    Backtracking,
}

/// Which polar solver the plan asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolarSolver {
    /// σ_max(−∇ℓ) by Golub–Kahan–Lanczos with full reorthogonalization (ℓ2 · ℓ2).
    TopSingular,
    /// max |−∇ℓ|ⱼₖ (ℓ1 · ℓ1).
    MaxAbsEntry,
    /// max (−∇ℓ)ⱼₖ (ℓ1 · ℓ1 on the nonnegative orthant).
    MaxPositiveEntry,
    /// Largest row ℓ2 norm (ℓ1 on U, ℓ2 on V).
    MaxRowNorm,
    /// Largest column ℓ2 norm (ℓ2 on U, ℓ1 on V).
    MaxColumnNorm,
    /// Alternating maximization of uᵀ(−∇ℓ)v over the gauge balls (exact linear maximization
    /// per block) from several seeded starts: a local method.
    Alternating,
    /// Two-layer ReLU networks: `max_{‖w‖≤1} ‖Zᵀ relu(X w)‖₂` by enumerating the activation
    /// patterns (exact for input dimension ≤ 3 under a cell cap), pattern iteration otherwise.
    ReluPatterns,
    /// Three-layer parallel ReLU networks: `max ‖Zᵀ relu(relu(X P) q)‖₂` over unit `P`
    /// `[d, h]` and `q` `[h]`, by projected gradient ascent from seeded starts (a local method).
    DeepReluAscent {
        /// Hidden units per subnetwork (the columns of P).
        hidden: u32,
    },
}

impl PolarSolver {
    /// Its name in the text form and the report.
    pub fn name(self) -> &'static str {
        match self {
            PolarSolver::TopSingular => "top_singular",
            PolarSolver::MaxAbsEntry => "max_abs_entry",
            PolarSolver::MaxPositiveEntry => "max_positive_entry",
            PolarSolver::MaxRowNorm => "max_row_norm",
            PolarSolver::MaxColumnNorm => "max_column_norm",
            PolarSolver::Alternating => "alternating",
            PolarSolver::ReluPatterns => "relu_patterns",
            PolarSolver::DeepReluAscent { .. } => "deep_relu_ascent",
        }
    }
}

/// Which regularizer the solver minimizes with the loss the kernels compute.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Regularization {
    /// `weight · Σᵢ g_U(uᵢ) g_V(vᵢ)` through the gauge and prox kernels: proximal descent and
    /// growth by the polar maximizer.
    ProductOfGauges,
    /// Dropout's expected squared loss, `κ·m·Σᵢ ‖uᵢ‖²‖vᵢ‖²` with `m = r` (adaptive rate) or
    /// `m = 1` (fixed rate), minimized on the host by exact block steps and equalization.
    /// The kernels are those of the dense squared loss.
    Dropout {
        /// κ = ½·weight·p/(1 − p): dropout's expectation of hfc's ½-squared loss.
        kappa: f64,
        /// The rate grows with r (the regularizer's degree matches the map's).
        adaptive: bool,
    },
}

/// How the solver uses the kernels: the problem is
/// `min ℓ(U Vᵀ) + weight · Σᵢ g_U(uᵢ) g_V(vᵢ)` (or dropout's regularizer, see
/// [`Regularization`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The regularizer's strategy.
    pub regularization: Regularization,
    /// The size dimension r.
    pub rank: DimId,
    /// The probe dimension p.
    pub probe: DimId,
    /// λ as the user wrote it.
    pub lambda: f64,
    /// The constant inside θ (θ = scale · g_U g_V), so that the regularizer's weight is
    /// `lambda · scale` and the polar value compared with λ is `sup uᵀZv / scale`.
    pub scale: f64,
    /// The gauge on each factor's columns, in block order (U, V; a CP model's modes).
    pub gauges: Vec<Gauge>,
    /// Lipschitz constant of the loss's gradient (per entry).
    pub smoothness: f64,
    /// The loss is quadratic in the map's output: line searches are exact.
    pub quadratic: bool,
    /// The loss works on observed entries only.
    pub masked: bool,
    /// The polar solver.
    pub polar: PolarSolver,
    /// Whether its value is exact (the certificate and the gap).
    pub polar_exact: bool,
    /// Seeded starts of local polar solvers.
    pub polar_starts: u64,
    /// The step-size rule of each block.
    pub lipschitz: Vec<Lipschitz>,
    /// The solver's buffers, by slot.
    pub slots: Vec<(Slot, BufId)>,
    /// The kernel of each role.
    pub roles: Vec<(Role, KernelId)>,
}

impl Plan {
    /// A plan with no slots or roles, for programs whose kernels are run one by one (tests
    /// and benchmarks of a back end), never by the solver.
    pub fn for_kernel_tests(rank: DimId) -> Plan {
        let l2 = Gauge {
            terms: vec![(1.0, GaugeAtom::L2)],
            nonneg: false,
        };
        Plan {
            regularization: Regularization::ProductOfGauges,
            rank,
            probe: rank,
            lambda: 1.0,
            scale: 1.0,
            gauges: vec![l2.clone(), l2],
            smoothness: 1.0,
            quadratic: true,
            masked: false,
            polar: PolarSolver::TopSingular,
            polar_exact: true,
            polar_starts: 1,
            lipschitz: vec![Lipschitz::OtherGram; 2],
            slots: Vec::new(),
            roles: Vec::new(),
        }
    }

    /// The buffer in a slot.
    pub fn slot(&self, slot: Slot) -> Option<BufId> {
        self.slots.iter().find(|(s, _)| *s == slot).map(|(_, b)| *b)
    }

    /// The kernel of a role.
    pub fn kernel(&self, role: Role) -> Option<KernelId> {
        self.roles.iter().find(|(r, _)| *r == role).map(|(_, k)| *k)
    }

    /// The roles the solver runs with this plan: products with −∇ℓ only for the polar
    /// solvers that use them (the ReLU polar reads X and ∇ℓ instead).
    pub fn required_roles(&self) -> Vec<Role> {
        let blocks = self.blocks() as u8;
        let mut roles = vec![Role::Setup, Role::Value];
        roles.extend((0..blocks).map(Role::Grad));
        roles.extend([Role::ValueAfterLast, Role::Residual]);
        if !matches!(
            self.polar,
            PolarSolver::ReluPatterns | PolarSolver::DeepReluAscent { .. }
        ) {
            roles.extend((0..blocks).map(Role::Contract));
        }
        // The duality gap is computed for exact polars and by dropout's test.
        if self.polar_exact || matches!(self.regularization, Regularization::Dropout { .. }) {
            roles.push(Role::Dual);
        }
        roles.push(Role::Curvature);
        roles.extend((0..blocks).map(Role::Gauge));
        roles.extend((0..blocks).map(Role::Prox));
        roles
    }

    /// The number of blocks (factors).
    pub fn blocks(&self) -> usize {
        self.gauges.len()
    }
}

/// A kernel program.
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    /// The model's name.
    pub name: String,
    /// Dimensions.
    pub dims: Vec<Dim>,
    /// Buffers.
    pub buffers: Vec<Buffer>,
    /// Kernels.
    pub kernels: Vec<Kernel>,
    /// How the solver uses them.
    pub plan: Plan,
}

impl Program {
    /// A buffer's declaration.
    pub fn buffer(&self, id: BufId) -> &Buffer {
        &self.buffers[id.0 as usize]
    }

    /// A dimension's declaration.
    pub fn dim(&self, id: DimId) -> &Dim {
        &self.dims[id.0 as usize]
    }

    /// A kernel.
    pub fn kernel(&self, id: KernelId) -> &Kernel {
        &self.kernels[id.0 as usize]
    }

    /// The extents a back end starts with: the [`DimKind::Fixed`] ones; the others are
    /// bound by the host.
    pub fn initial_extents(&self) -> Vec<Option<usize>> {
        self.dims
            .iter()
            .map(|d| match d.kind {
                DimKind::Fixed(n) => Some(n as usize),
                _ => None,
            })
            .collect()
    }

    /// `dim`'s extent given the extents of the dimensions the host binds (`bound`): fixed
    /// and scaled dimensions follow from them.
    pub fn extent(&self, dim: DimId, bound: impl Fn(DimId) -> usize) -> usize {
        match self.dim(dim).kind {
            DimKind::Fixed(n) => n as usize,
            DimKind::Scaled { base, factor } => bound(base) * factor as usize,
            _ => bound(dim),
        }
    }

    /// The dimensions bound with `dim` at `extent` ([`DimKind::Scaled`] multiples of it),
    /// with their extents: a back end binds them whenever it binds `dim`.
    pub fn scaled_extents(&self, dim: DimId, extent: usize) -> Vec<(DimId, usize)> {
        self.dims
            .iter()
            .enumerate()
            .filter_map(|(k, d)| match d.kind {
                DimKind::Scaled { base, factor } if base == dim => {
                    Some((DimId(k as u32), extent * factor as usize))
                }
                _ => None,
            })
            .collect()
    }

    /// Looks a buffer up by name.
    pub fn buffer_named(&self, name: &str) -> Option<BufId> {
        self.buffers
            .iter()
            .position(|b| b.name == name)
            .map(|k| BufId(k as u32))
    }

    fn write_expr(&self, f: &mut fmt::Formatter<'_>, expr: &Expr) -> fmt::Result {
        match expr {
            Expr::Buf(id) => write!(f, "%{}", self.buffer(*id).name),
            Expr::Const(c) => write!(f, "{c:?}"),
            Expr::Unary(op, a) => {
                write!(f, "{}(", op.name())?;
                self.write_expr(f, a)?;
                f.write_str(")")
            }
            Expr::Binary(op, a, b) => {
                write!(f, "{}(", op.name())?;
                self.write_expr(f, a)?;
                f.write_str(", ")?;
                self.write_expr(f, b)?;
                f.write_str(")")
            }
        }
    }

    fn write_stmt(&self, f: &mut fmt::Formatter<'_>, stmt: &Stmt) -> fmt::Result {
        let name = |id: &BufId| &self.buffer(*id).name;
        let t = |trans: bool| if trans { "'" } else { "" };
        let acc = |accumulate: bool| if accumulate { "+=" } else { "=" };
        match stmt {
            Stmt::Gemm {
                dst,
                a,
                trans_a,
                b,
                trans_b,
                alpha,
                accumulate,
            } => write!(
                f,
                "%{} {} gemm({alpha:?}, %{}{}, %{}{})",
                name(dst),
                acc(*accumulate),
                name(a),
                t(*trans_a),
                name(b),
                t(*trans_b)
            ),
            Stmt::Sample { dst, pattern, a, b } => write!(
                f,
                "%{} = sample(%{}, %{}, %{})",
                name(dst),
                name(pattern),
                name(a),
                name(b)
            ),
            Stmt::KhatriRao { dst, a, b } => {
                write!(f, "%{} = khatri_rao(%{}, %{})", name(dst), name(a), name(b))
            }
            Stmt::KhatriRaoAdjoint {
                dst,
                src,
                other,
                over_fast,
            } => write!(
                f,
                "%{} = khatri_rao_adjoint_{}(%{}, %{})",
                name(dst),
                if *over_fast { "fast" } else { "slow" },
                name(src),
                name(other)
            ),
            Stmt::Copy { dst, src } => write!(f, "%{} = copy(%{})", name(dst), name(src)),
            Stmt::SpMM {
                dst,
                pattern,
                values,
                b,
                trans,
                alpha,
                accumulate,
            } => write!(
                f,
                "%{} {} spmm({alpha:?}, %{}[%{}]{}, %{})",
                name(dst),
                acc(*accumulate),
                name(pattern),
                name(values),
                t(*trans),
                name(b)
            ),
            Stmt::Map { dst, expr } => {
                write!(f, "%{} = map ", name(dst))?;
                self.write_expr(f, expr)
            }
            Stmt::Sum { dst, expr } => {
                write!(f, "%{} = sum ", name(dst))?;
                self.write_expr(f, expr)
            }
            Stmt::ColumnGauge { dst, src, gauge } => {
                write!(f, "%{} = colgauge[{gauge}](%{})", name(dst), name(src))
            }
            Stmt::ColumnProx {
                dst,
                src,
                weights,
                gauge,
            } => write!(
                f,
                "%{} = colprox[{gauge}](%{}, %{})",
                name(dst),
                name(src),
                name(weights)
            ),
        }
    }
}

/// The text form.
impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "program {}", self.name)?;
        for dim in &self.dims {
            let kind = match dim.kind {
                DimKind::Data => "data".to_string(),
                DimKind::Observed => "observed".into(),
                DimKind::Rank => "rank".into(),
                DimKind::Probe => "probe".into(),
                DimKind::Fixed(n) => format!("fixed {n}"),
                DimKind::Scaled { base, factor } => format!("{factor} x {}", self.dim(base).name),
            };
            writeln!(f, "  dim {}: {kind}", dim.name)?;
        }
        for buffer in &self.buffers {
            let shape: Vec<&str> = buffer
                .shape
                .iter()
                .map(|d| self.dim(*d).name.as_str())
                .collect();
            let kind = match buffer.kind {
                BufferKind::Input => "input".to_string(),
                BufferKind::Observed { rows, cols } => format!(
                    "observed({} x {})",
                    self.dim(rows).name,
                    self.dim(cols).name
                ),
                BufferKind::Factor => "factor".into(),
                BufferKind::Arg => "arg".into(),
                BufferKind::State => "state".into(),
                BufferKind::Temp => "temp".into(),
            };
            writeln!(f, "  {kind} %{}: [{}]", buffer.name, shape.join(", "))?;
        }
        let plan = &self.plan;
        match plan.regularization {
            Regularization::ProductOfGauges => writeln!(
                f,
                "  plan: min loss + {:?}*{:?} * sum_i g_left(u_i) g_right(v_i)",
                plan.lambda, plan.scale
            )?,
            Regularization::Dropout { kappa, adaptive } => writeln!(
                f,
                "  plan: min loss + {kappa:?}*{} * sum_i |u_i|^2 |v_i|^2 (dropout)",
                if adaptive { "r" } else { "1" }
            )?,
        }
        for (k, gauge) in plan.gauges.iter().enumerate() {
            writeln!(f, "    g_{} = {gauge}", block_name(k as u8))?;
        }
        if plan.lipschitz.iter().any(|l| *l != Lipschitz::OtherGram) {
            writeln!(f, "    steps: {:?}", plan.lipschitz)?;
        }
        writeln!(
            f,
            "    loss: smoothness {:?}{}{}",
            plan.smoothness,
            if plan.quadratic { ", quadratic" } else { "" },
            if plan.masked { ", masked" } else { "" }
        )?;
        writeln!(
            f,
            "    polar: {} ({}, {} starts)",
            plan.polar.name(),
            if plan.polar_exact {
                "exact"
            } else {
                "heuristic"
            },
            plan.polar_starts
        )?;
        for kernel in &self.kernels {
            writeln!(f, "  kernel {} {{", kernel.name)?;
            for stmt in &kernel.body {
                f.write_str("    ")?;
                self.write_stmt(f, stmt)?;
                f.write_str("\n")?;
            }
            writeln!(f, "  }}")?;
        }
        Ok(())
    }
}
