//! The catalog: every atom, operator, loss, solve option and closed form hfc knows, as data.
//!
//! Each entry answers a fixed questionnaire (CVXPY keeps curvature and sign per atom the same
//! way): its degree law, shape law, sign, whether it is separable over the columns of a factor,
//! its prox, its dual norm, how it reads in mathematics. The analyses never special-case an
//! atom by name: `degree.rs` applies [`DegreeLaw`]s, `shape.rs` applies [`ShapeLaw`]s,
//! `derive.rs` looks up [`INDUCED`], and `hfc atoms` prints this file. Adding a norm is adding
//! one [`Atom`] entry (plus, if its pairing with another norm has a closed form, one
//! [`Induced`] row).

use hfc_runtime::kir::{Binary, Expr, Unary};

/// What kind of thing an atom is; decides where it may appear and how it is documented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtomKind {
    /// A norm or seminorm of its argument (positively homogeneous of degree 1, convex).
    Norm,
    /// A power of a norm (`frob2` = squared Frobenius norm).
    NormPower,
    /// The indicator of a convex cone (0 inside, +∞ outside).
    Cone,
    /// A positively homogeneous nonlinearity of degree 1 (ReLU and friends).
    Activation,
    /// A multilinear map of factors (`cp`).
    Map,
    /// A function that is not positively homogeneous; rejected wherever factors flow into it.
    NotHomogeneous,
    /// A regularizer defined by the whole map rather than by its arguments (dropout).
    Regularizer,
}

impl AtomKind {
    /// The heading under which `hfc atoms` lists the kind.
    pub fn title(self) -> &'static str {
        match self {
            AtomKind::Norm => "norms",
            AtomKind::NormPower => "norm powers",
            AtomKind::Cone => "cone constraints",
            AtomKind::Activation => "activations",
            AtomKind::Map => "maps",
            AtomKind::NotHomogeneous => {
                "not positively homogeneous (rejected in maps and regularizers)"
            }
            AtomKind::Regularizer => "regularizers defined by the map",
        }
    }
}

/// How an atom's degree of positive homogeneity follows from its arguments'.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DegreeLaw {
    /// `k` times the degree of the argument (norms: k = 1; `frob2`: k = 2; activations: 1).
    Scale(u32),
    /// The sum of the arguments' degrees (multilinear maps such as `cp`).
    SumOfArgs,
    /// An indicator of a cone: homogeneous of every degree, so it never decides one.
    Indicator,
    /// Twice the degree of the whole map, in every factor (fixed-rate dropout:
    /// Σᵢ Πₖ ‖Wᵏᵢ‖²).
    TwiceMap,
    /// Matched to the map by a weight that grows with the size r (adaptive dropout).
    SizeAdaptive,
    /// Not positively homogeneous.
    None,
}

impl DegreeLaw {
    /// The law in words, for `hfc atoms`.
    pub fn describe(self) -> String {
        match self {
            DegreeLaw::Scale(1) => "deg(x)".into(),
            DegreeLaw::Scale(k) => format!("{k}·deg(x)"),
            DegreeLaw::SumOfArgs => "sum of its arguments' degrees".into(),
            DegreeLaw::Indicator => "any (an indicator)".into(),
            DegreeLaw::TwiceMap => "2 × the map's degree".into(),
            DegreeLaw::SizeAdaptive => "matches the map (rate grows with r)".into(),
            DegreeLaw::None => "not homogeneous".into(),
        }
    }
}

/// How an atom's shape follows from its arguments'.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShapeLaw {
    /// Any shape in, a scalar out (norms, cones, regularizers).
    Reduce,
    /// Elementwise: the argument's shape.
    Elementwise,
    /// Pooling over groups of `k` rows: `[a, b] -> [a/k, b]`.
    PoolRows,
    /// K matrices `[n_k, r]` sharing their column dimension give the tensor `[n_1, ..., n_K]`.
    OuterProduct,
    /// One square matrix in, a scalar out.
    SquareReduce,
}

/// How many expression inputs an atom takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inputs {
    /// Exactly this many.
    Exactly(usize),
    /// At least this many.
    AtLeast(usize),
}

impl Inputs {
    /// Whether `n` inputs are accepted.
    pub fn accepts(self, n: usize) -> bool {
        match self {
            Inputs::Exactly(k) => n == k,
            Inputs::AtLeast(k) => n >= k,
        }
    }

    /// The fewest inputs accepted.
    pub fn min(self) -> usize {
        match self {
            Inputs::Exactly(k) | Inputs::AtLeast(k) => k,
        }
    }
}

/// A constant parameter of an atom or loss.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParamSpec {
    /// Its name (for named arguments: `huber(delta = 0.5)`).
    pub name: &'static str,
    /// The value used when it is not given; `None` makes it required.
    pub default: Option<f64>,
    /// The values it may take.
    pub domain: Domain,
    /// What it is.
    pub doc: &'static str,
}

/// The values a constant may take.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Domain {
    /// Any real number > 0.
    Positive,
    /// Any real number >= 0.
    Nonnegative,
    /// A real number in the open interval (0, 1).
    OpenUnit,
    /// An integer >= the bound.
    IntegerAtLeast(u64),
    /// A flag word given by name (`adaptive`); its value is 1 when present, 0 when absent.
    Flag,
    /// Any finite number.
    Any,
}

impl Domain {
    /// Whether `value` is in the domain.
    pub fn contains(self, value: f64) -> bool {
        match self {
            Domain::Positive => value > 0.0,
            Domain::Nonnegative => value >= 0.0,
            Domain::OpenUnit => value > 0.0 && value < 1.0,
            Domain::IntegerAtLeast(k) => value.fract() == 0.0 && value >= k as f64,
            Domain::Flag => value == 0.0 || value == 1.0,
            Domain::Any => value.is_finite(),
        }
    }

    /// The domain in words ("a number > 0").
    pub fn describe(self) -> String {
        match self {
            Domain::Positive => "a number > 0".into(),
            Domain::Nonnegative => "a number >= 0".into(),
            Domain::OpenUnit => "a number strictly between 0 and 1".into(),
            Domain::IntegerAtLeast(k) => format!("an integer >= {k}"),
            Domain::Flag => "a flag word".into(),
            Domain::Any => "a number".into(),
        }
    }
}

/// The gauges that the closed-form table knows; composite norms are sums of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Gauge {
    /// ℓ1 norm.
    L1,
    /// ℓ2 norm.
    L2,
    /// ℓ∞ norm.
    Linf,
    /// 1-D total variation (a seminorm).
    Tv,
}

/// One atom of the language.
#[derive(Clone, Copy, Debug)]
pub struct Atom {
    /// Its name in `.hfm` files.
    pub name: &'static str,
    /// What kind of atom it is.
    pub kind: AtomKind,
    /// Expression inputs.
    pub inputs: Inputs,
    /// Constant parameters (after the inputs, or after `;`, or by name).
    pub params: &'static [ParamSpec],
    /// Degree law.
    pub degree: DegreeLaw,
    /// Shape law.
    pub shape: ShapeLaw,
    /// On a whole factor `W` (columns indexed by the size r): whether it equals Σᵢ atom(Wᵢ),
    /// which makes it a regularizer of parallel form without an explicit `sum(i)`.
    pub separable: bool,
    /// Always >= 0 (norms, cones).
    pub nonnegative: bool,
    /// The gauge it is, for the closed-form table (norms only).
    pub gauge: Option<Gauge>,
    /// How it reads in mathematics; `{}` stands for the argument.
    pub math: &'static str,
    /// What it is, in one line.
    pub summary: &'static str,
    /// Its prox for weight c on one column, in words (norms, powers, cones).
    pub prox: Option<&'static str>,
    /// A flag parameter that, when set, replaces the degree law (`dropout(p, adaptive)`).
    pub flag_law: Option<(&'static str, DegreeLaw)>,
    /// The name of its dual norm (norms only; seminorms have none).
    pub dual: Option<&'static str>,
}

/// Atoms are identified by name (the catalog has one entry per name).
impl PartialEq for Atom {
    fn eq(&self, other: &Atom) -> bool {
        self.name == other.name
    }
}

const NO_PARAMS: &[ParamSpec] = &[];

const POOL_PARAMS: &[ParamSpec] = &[ParamSpec {
    name: "k",
    default: Some(2.0),
    domain: Domain::IntegerAtLeast(1),
    doc: "rows per pool",
}];

const DROPOUT_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "p",
        default: None,
        domain: Domain::OpenUnit,
        doc: "probability of dropping a column (retain probability 1 − p)",
    },
    ParamSpec {
        name: "adaptive",
        default: Some(0.0),
        domain: Domain::Flag,
        doc: "rate grows with r: λ_r = r·p/(1 − p)",
    },
];

const LEAKY_PARAMS: &[ParamSpec] = &[ParamSpec {
    name: "slope",
    default: Some(0.01),
    domain: Domain::Nonnegative,
    doc: "slope for negative inputs",
}];

/// A norm entry (degree 1, reduces to a scalar, nonnegative).
const fn norm(
    name: &'static str,
    gauge: Gauge,
    separable: bool,
    math: &'static str,
    summary: &'static str,
    prox: &'static str,
    dual: Option<&'static str>,
) -> Atom {
    Atom {
        name,
        kind: AtomKind::Norm,
        inputs: Inputs::Exactly(1),
        params: NO_PARAMS,
        degree: DegreeLaw::Scale(1),
        shape: ShapeLaw::Reduce,
        separable,
        nonnegative: true,
        gauge: Some(gauge),
        math,
        summary,
        prox: Some(prox),
        flag_law: None,
        dual,
    }
}

/// An elementwise function (activation or not homogeneous).
const fn elementwise(
    name: &'static str,
    kind: AtomKind,
    degree: DegreeLaw,
    params: &'static [ParamSpec],
    math: &'static str,
    summary: &'static str,
) -> Atom {
    Atom {
        name,
        kind,
        inputs: Inputs::Exactly(1),
        params,
        degree,
        shape: ShapeLaw::Elementwise,
        separable: false,
        nonnegative: false,
        gauge: None,
        math,
        summary,
        prox: None,
        flag_law: None,
        dual: None,
    }
}

/// Every atom, grouped by kind in the order `hfc atoms` prints them.
pub const ATOMS: &[Atom] = &[
    norm(
        "norm1",
        Gauge::L1,
        true,
        "‖{}‖₁",
        "ℓ1 norm (entrywise on a matrix)",
        "soft-thresholding: sign(x)·max(|x| − c, 0)",
        Some("norminf"),
    ),
    norm(
        "norm2",
        Gauge::L2,
        false,
        "‖{}‖₂",
        "ℓ2 norm (Frobenius on a matrix)",
        "group shrinkage: x·max(0, 1 − c/‖x‖₂)",
        Some("norm2"),
    ),
    norm(
        "norminf",
        Gauge::Linf,
        false,
        "‖{}‖∞",
        "ℓ∞ norm (largest magnitude)",
        "x − c·P_{‖·‖₁≤1}(x/c) (Moreau decomposition)",
        Some("norm1"),
    ),
    norm(
        "tv",
        Gauge::Tv,
        true,
        "TV({})",
        "1-D total variation Σₖ |x₍ₖ₊₁₎ − xₖ| (a seminorm; per column on a matrix)",
        "Condat's direct algorithm",
        None,
    ),
    Atom {
        name: "frob2",
        kind: AtomKind::NormPower,
        inputs: Inputs::Exactly(1),
        params: NO_PARAMS,
        degree: DegreeLaw::Scale(2),
        shape: ShapeLaw::Reduce,
        separable: true,
        nonnegative: true,
        gauge: Some(Gauge::L2),
        math: "‖{}‖²_F",
        summary: "squared Frobenius norm Σ x² (weight decay)",
        prox: Some("scaling: x / (1 + 2c)"),
        flag_law: None,
        dual: None,
    },
    Atom {
        name: "nonneg",
        kind: AtomKind::Cone,
        inputs: Inputs::Exactly(1),
        params: NO_PARAMS,
        degree: DegreeLaw::Indicator,
        shape: ShapeLaw::Reduce,
        separable: true,
        nonnegative: true,
        gauge: None,
        math: "ι₊({})",
        summary: "indicator of the nonnegative orthant (same as `>= 0` on a factor)",
        prox: Some("projection: max(x, 0)"),
        flag_law: None,
        dual: None,
    },
    Atom {
        name: "psd",
        kind: AtomKind::Cone,
        inputs: Inputs::Exactly(1),
        params: NO_PARAMS,
        degree: DegreeLaw::Indicator,
        shape: ShapeLaw::SquareReduce,
        separable: false,
        nonnegative: true,
        gauge: None,
        math: "ι_psd({})",
        summary: "indicator of the positive semidefinite cone (square matrices)",
        prox: Some("projection: clip the eigenvalues at 0"),
        flag_law: None,
        dual: None,
    },
    elementwise(
        "relu",
        AtomKind::Activation,
        DegreeLaw::Scale(1),
        NO_PARAMS,
        "relu({})",
        "max(x, 0)",
    ),
    elementwise(
        "leaky_relu",
        AtomKind::Activation,
        DegreeLaw::Scale(1),
        LEAKY_PARAMS,
        "leaky_relu({})",
        "max(x, slope·x)",
    ),
    elementwise(
        "abs",
        AtomKind::Activation,
        DegreeLaw::Scale(1),
        NO_PARAMS,
        "|{}|",
        "|x|",
    ),
    Atom {
        name: "maxpool",
        kind: AtomKind::Activation,
        inputs: Inputs::Exactly(1),
        params: POOL_PARAMS,
        degree: DegreeLaw::Scale(1),
        shape: ShapeLaw::PoolRows,
        separable: false,
        nonnegative: false,
        gauge: None,
        math: "maxpool({})",
        summary: "largest entry of each group of k rows",
        prox: None,
        flag_law: None,
        dual: None,
    },
    Atom {
        name: "meanpool",
        kind: AtomKind::Activation,
        inputs: Inputs::Exactly(1),
        params: POOL_PARAMS,
        degree: DegreeLaw::Scale(1),
        shape: ShapeLaw::PoolRows,
        separable: false,
        nonnegative: false,
        gauge: None,
        math: "meanpool({})",
        summary: "mean of each group of k rows",
        prox: None,
        flag_law: None,
        dual: None,
    },
    Atom {
        name: "cp",
        kind: AtomKind::Map,
        inputs: Inputs::AtLeast(2),
        params: NO_PARAMS,
        degree: DegreeLaw::SumOfArgs,
        shape: ShapeLaw::OuterProduct,
        separable: false,
        nonnegative: false,
        gauge: None,
        math: "⟦{}⟧",
        summary: "CP tensor Σᵢ aᵢ ⊗ bᵢ ⊗ cᵢ ⊗ … of factors [n_k, r]",
        prox: None,
        flag_law: None,
        dual: None,
    },
    elementwise(
        "sigmoid",
        AtomKind::NotHomogeneous,
        DegreeLaw::None,
        NO_PARAMS,
        "σ({})",
        "1/(1 + e^(−x)); σ(0) = 1/2, so σ(a·x) ≠ aᵖ·σ(x)",
    ),
    elementwise(
        "tanh",
        AtomKind::NotHomogeneous,
        DegreeLaw::None,
        NO_PARAMS,
        "tanh({})",
        "saturates: tanh(a·x) → ±1 as a grows",
    ),
    elementwise(
        "softplus",
        AtomKind::NotHomogeneous,
        DegreeLaw::None,
        NO_PARAMS,
        "softplus({})",
        "log(1 + eˣ); softplus(0) = log 2 ≠ 0",
    ),
    elementwise(
        "exp",
        AtomKind::NotHomogeneous,
        DegreeLaw::None,
        NO_PARAMS,
        "exp({})",
        "exp(0) = 1 ≠ 0",
    ),
    elementwise(
        "log",
        AtomKind::NotHomogeneous,
        DegreeLaw::None,
        NO_PARAMS,
        "log({})",
        "log(a·x) = log a + log x",
    ),
    elementwise(
        "elu",
        AtomKind::NotHomogeneous,
        DegreeLaw::None,
        NO_PARAMS,
        "elu({})",
        "eˣ − 1 for x < 0: not homogeneous for negative inputs",
    ),
    elementwise(
        "gelu",
        AtomKind::NotHomogeneous,
        DegreeLaw::None,
        NO_PARAMS,
        "gelu({})",
        "x·Φ(x): the Gaussian CDF Φ is not homogeneous",
    ),
    Atom {
        name: "dropout",
        kind: AtomKind::Regularizer,
        inputs: Inputs::Exactly(0),
        params: DROPOUT_PARAMS,
        degree: DegreeLaw::TwiceMap,
        shape: ShapeLaw::Reduce,
        separable: true,
        nonnegative: true,
        gauge: None,
        math: "dropout",
        summary: "dropout(p): ½·p/(1 − p)·Σᵢ Πₖ ‖Wᵏᵢ‖₂² (Cavazza et al., with the ½ of the loss); dropout(p, adaptive): rate grows with r",
        prox: None,
        flag_law: Some(("adaptive", DegreeLaw::SizeAdaptive)),
        dual: None,
    },
];

/// Looks an atom up by name.
pub fn atom(name: &str) -> Option<&'static Atom> {
    ATOMS.iter().find(|a| a.name == name)
}

/// The degree law of each operator, for `hfc atoms` (the rule itself is applied in
/// `degree.rs`, the one place the composition rules live).
pub const OPERATORS: &[(&str, &str)] = &[
    (
        "A * B",
        "deg A + deg B (a matrix product, or scaling when one side is constant)",
    ),
    (
        "A + B, A - B",
        "deg A, only if deg A = deg B (a constant added to a factor is a bias: not homogeneous)",
    ),
    ("A / c", "deg A; c must be constant"),
    ("A ^ k", "k·deg A; k a positive integer"),
    ("-A, A', A[:, i]", "deg A"),
    (
        "sum(i) A",
        "deg A; i ranges over the size index r (the parallel subnetworks)",
    ),
    ("factor W", "1 in W"),
    (
        "data, param, number",
        "0 (a constant: only as a multiplicative input)",
    ),
];

/// A loss function ℓ(Y, X) of the data Y and the model's output X.
#[derive(Clone, Copy, Debug)]
pub struct Loss {
    /// Its name in `.hfm` files.
    pub name: &'static str,
    /// Its parameters.
    pub params: &'static [ParamSpec],
    /// Its value, in mathematics; `{Y}` is the data, `{X}` the model's output.
    pub value: &'static str,
    /// Its value on observed entries only (`on observed(Y)`).
    pub masked_value: &'static str,
    /// Its gradient in X (placeholders as in `value`).
    pub gradient: &'static str,
    /// Lipschitz constant of the gradient (the smoothness used for step sizes).
    pub smoothness: &'static str,
    /// Its convex conjugate in Z, for the duality gap (`{Y}` is the data).
    pub conjugate: &'static str,
    /// What the data must be.
    pub requires: &'static str,
    /// Its numbers, as kernel IR expressions for one entry.
    pub kernel: LossKernel,
}

/// A loss's numbers as kernel IR expressions over one entry (`x` the model's output, `y` the
/// data, `z` a dual variable, `p` the loss's parameter values in catalog order). The lowering
/// builds every loss kernel from these; the back ends never know which loss they run.
#[derive(Clone, Copy, Debug)]
pub struct LossKernel {
    /// ℓ(y, x) for one entry.
    pub value: fn(x: Expr, y: Expr, p: &[f64]) -> Expr,
    /// ∂ℓ/∂x for one entry.
    pub gradient: fn(x: Expr, y: Expr, p: &[f64]) -> Expr,
    /// ℓ*(z) for one entry (finite on the dual points the solver forms).
    pub conjugate: fn(z: Expr, y: Expr, p: &[f64]) -> Expr,
    /// Lipschitz constant of the gradient.
    pub smoothness: fn(p: &[f64]) -> f64,
    /// Quadratic in x (exact line searches; the squared-loss rewrites apply).
    pub quadratic: bool,
}

fn param(p: &[f64], k: usize) -> f64 {
    p.get(k).copied().unwrap_or(1.0)
}

const SQUARED_KERNEL: LossKernel = LossKernel {
    value: |x, y, _| x.minus(y).un(Unary::Square).times(Expr::c(0.5)),
    gradient: |x, y, _| x.minus(y),
    conjugate: |z, y, _| {
        z.clone()
            .times(y)
            .plus(z.un(Unary::Square).times(Expr::c(0.5)))
    },
    smoothness: |_| 1.0,
    quadratic: true,
};

const HUBER_KERNEL: LossKernel = LossKernel {
    // ½ min(|d|, δ)² + δ·max(|d| − δ, 0), d = x − y.
    value: |x, y, p| {
        let delta = param(p, 0);
        let a = x.minus(y).un(Unary::Abs);
        a.clone()
            .bin(Binary::Min, Expr::c(delta))
            .un(Unary::Square)
            .times(Expr::c(0.5))
            .plus(
                a.minus(Expr::c(delta))
                    .bin(Binary::Max, Expr::c(0.0))
                    .times(Expr::c(delta)),
            )
    },
    gradient: |x, y, p| {
        let delta = param(p, 0);
        x.minus(y)
            .bin(Binary::Max, Expr::c(-delta))
            .bin(Binary::Min, Expr::c(delta))
    },
    conjugate: |z, y, _| {
        z.clone()
            .times(y)
            .plus(z.un(Unary::Square).times(Expr::c(0.5)))
    },
    smoothness: |_| 1.0,
    quadratic: false,
};

const LOGISTIC_KERNEL: LossKernel = LossKernel {
    // softplus(−y·x) = log(1 + exp(−y·x)), without overflow.
    value: |x, y, _| y.times(x).un(Unary::Neg).un(Unary::Softplus),
    gradient: |x, y, _| {
        y.clone()
            .times(y.times(x).un(Unary::Neg).un(Unary::Sigmoid))
            .un(Unary::Neg)
    },
    // With q = y·z ∈ [−1, 0]: (1 + q) log(1 + q) + (−q) log(−q).
    conjugate: |z, y, _| {
        let q = y.times(z);
        Expr::c(1.0)
            .plus(q.clone())
            .un(Unary::XLogX)
            .plus(q.un(Unary::Neg).un(Unary::XLogX))
    },
    smoothness: |_| 0.25,
    quadratic: false,
};

/// Every loss.
pub const LOSSES: &[Loss] = &[
    Loss {
        name: "squared",
        params: NO_PARAMS,
        value: "½‖{Y} − {X}‖²_F",
        masked_value: "½‖P_obs({Y} − {X})‖²_F",
        gradient: "{X} − {Y}",
        smoothness: "1",
        conjugate: "⟨Z, {Y}⟩ + ½‖Z‖²_F",
        requires: "real data",
        kernel: SQUARED_KERNEL,
    },
    Loss {
        name: "huber",
        params: &[ParamSpec {
            name: "delta",
            default: Some(1.0),
            domain: Domain::Positive,
            doc: "where the loss turns from quadratic to linear",
        }],
        value: "Σ h_δ({X} − {Y})",
        masked_value: "Σ_obs h_δ({X} − {Y})",
        gradient: "clip({X} − {Y}, −δ, δ)",
        smoothness: "1",
        conjugate: "⟨Z, {Y}⟩ + ½‖Z‖²_F if |Z| ≤ δ entrywise, else +∞",
        requires: "real data",
        kernel: HUBER_KERNEL,
    },
    Loss {
        name: "logistic",
        params: NO_PARAMS,
        value: "Σ log(1 + exp(−{Y}∘{X}))",
        masked_value: "Σ_obs log(1 + exp(−{Y}∘{X}))",
        gradient: "−{Y} ∘ σ(−{Y}∘{X})",
        smoothness: "1/4",
        conjugate: "Σ (1+s)log(1+s) − s·log(−s) with s = {Y}∘Z ∈ [−1, 0] (entropy form)",
        requires: "labels in {−1, +1}",
        kernel: LOGISTIC_KERNEL,
    },
];

/// Looks a loss up by name.
pub fn loss(name: &str) -> Option<&'static Loss> {
    LOSSES.iter().find(|l| l.name == name)
}

/// The mask that restricts a loss to observed entries (`loss squared on observed(Y)`).
pub const OBSERVED_MASK: &str = "observed";

/// A `solve { }` option.
#[derive(Clone, Copy, Debug)]
pub struct SolveOption {
    /// Its name.
    pub name: &'static str,
    /// `true` when written `name <= value` (a bound), `false` for `name = value`.
    pub bound: bool,
    /// Its values.
    pub domain: Domain,
    /// Its value when not given (`None`: no limit).
    pub default: Option<f64>,
    /// What it does.
    pub doc: &'static str,
}

/// Every solve option.
pub const SOLVE_OPTIONS: &[SolveOption] = &[
    SolveOption {
        name: "rank",
        bound: true,
        domain: Domain::IntegerAtLeast(1),
        default: None,
        doc: "largest size r the solver may grow to",
    },
    SolveOption {
        name: "init_rank",
        bound: false,
        domain: Domain::IntegerAtLeast(0),
        default: Some(0.0),
        doc: "size r to start from",
    },
    SolveOption {
        name: "tol",
        bound: false,
        domain: Domain::Positive,
        default: Some(1e-6),
        doc: "relative tolerance of local descent and of the polar test Ω°(−∇ℓ) ≤ λ(1 + tol)",
    },
    SolveOption {
        name: "max_iter",
        bound: false,
        domain: Domain::IntegerAtLeast(1),
        default: Some(10_000.0),
        doc: "iterations of local descent, in all",
    },
    SolveOption {
        name: "seed",
        bound: false,
        domain: Domain::IntegerAtLeast(0),
        default: Some(0.0),
        doc: "seed of the initialization and of heuristic polar starts",
    },
    SolveOption {
        name: "polar_starts",
        bound: false,
        domain: Domain::IntegerAtLeast(1),
        default: Some(8.0),
        doc: "random starts of heuristic polar solvers",
    },
];

/// Looks a solve option up by name.
pub fn solve_option(name: &str) -> Option<&'static SolveOption> {
    SOLVE_OPTIONS.iter().find(|o| o.name == name)
}

/// The factorization maps the closed-form table distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapForm {
    /// Σᵢ uᵢ vᵢᵀ (a matrix factorization `U * V'`).
    Matrix,
    /// Σᵢ aᵢ ⊗ bᵢ ⊗ cᵢ ⊗ … (`cp(A, B, C, ...)`).
    Tensor,
    /// Σᵢ relu(X w1ᵢ) w2ᵢᵀ (a two-layer ReLU network with data X).
    ReluTwoLayer,
    /// Σᵢ relu(relu(X W1ᵢ) w2ᵢ) w3ᵢᵀ: r parallel three-layer subnetworks, each with its
    /// own h hidden units (`W1 : [d, h, r]`, `W2 : [h, r]`, `W3 : [c, r]`).
    ReluThreeLayer,
}

/// How the polar problem is solved, as the runtime will be told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolarOracle {
    /// Largest singular value by Lanczos / power iteration with a bound.
    TopSingularValue,
    /// Largest |Zⱼₖ|.
    MaxAbsEntry,
    /// Largest positive entry.
    MaxPositiveEntry,
    /// Largest row ℓ2 norm.
    MaxRowNorm,
    /// Largest column ℓ2 norm.
    MaxColumnNorm,
    /// Alternating nonnegative power iteration from several seeded starts.
    NonnegativePower,
    /// Alternating maximization with the gauges' prox steps, several seeded starts.
    AlternatingProx,
    /// Higher-order power method, several seeded starts.
    HigherOrderPower,
    /// Enumerate the ReLU activation patterns when the input dimension is small.
    ReluPatterns,
    /// Projected gradient ascent over a three-layer subnetwork's unit layers, several
    /// seeded starts.
    DeepReluAscent,
    /// Closed form of the whole problem (singular value thresholding).
    ClosedForm,
}

impl PolarOracle {
    /// How the solver works, for `hfc explain` (`starts`: seeded starts of local methods).
    pub fn describe(self, starts: u64) -> String {
        match self {
            PolarOracle::TopSingularValue => {
                "largest singular value by Lanczos iteration, to a tolerance with a bound".into()
            }
            PolarOracle::MaxAbsEntry => "largest |Zⱼₖ|, one pass".into(),
            PolarOracle::MaxPositiveEntry => "largest entry of Z, one pass".into(),
            PolarOracle::MaxRowNorm => "largest row ℓ2 norm of Z, one pass".into(),
            PolarOracle::MaxColumnNorm => "largest column ℓ2 norm of Z, one pass".into(),
            PolarOracle::NonnegativePower => {
                format!("alternating nonnegative power iteration from {starts} seeded starts")
            }
            PolarOracle::AlternatingProx => format!(
                "alternating maximization with the gauges' prox steps from {starts} seeded starts"
            ),
            PolarOracle::HigherOrderPower => {
                format!("higher-order power method from {starts} seeded starts")
            }
            PolarOracle::ReluPatterns => format!(
                "enumeration of the ReLU activation patterns of the data when the input \
                 dimension is small; projected ascent from {starts} seeded starts otherwise"
            ),
            PolarOracle::DeepReluAscent => format!(
                "projected gradient ascent over the unit spheres of the first two layers from \
                 {starts} seeded starts and the current subnetworks"
            ),
            PolarOracle::ClosedForm => "σ_max(Y − X) by Lanczos (exact) against λ₁‖X‖_*; the \
                                         optimum is the singular value thresholding S_τ(Y), \
                                         τ = λ₁‖X*‖_*"
                .into(),
        }
    }
}

/// Whether a polar solver's value is the true maximum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exactness {
    /// Always exact.
    Exact,
    /// A local method: a value ≤ λ is necessary, not sufficient, for optimality.
    Heuristic,
    /// Exact when the data's input dimension is at most this (enumeration), else heuristic.
    ExactUpToInputDim(u32),
}

/// One row of the closed-form table: a map form with one gauge per factor, and what the
/// induced regularizer and its polar are.
#[derive(Clone, Copy, Debug)]
pub struct Induced {
    /// The map.
    pub map: MapForm,
    /// The gauge on each factor, in the map's order (`None` matches any number of ℓ2 factors
    /// of a tensor, see [`Induced::gauges_match`]).
    pub gauges: &'static [Gauge],
    /// Whether the factors are constrained to be nonnegative (all of them).
    pub nonnegative: bool,
    /// Ω(X) in mathematics: `{X}` is the convex variable, `{D}` a network's input data.
    pub omega: &'static str,
    /// Ω's name.
    pub omega_name: &'static str,
    /// Ω°(Z) in mathematics.
    pub polar: &'static str,
    /// How the polar is computed.
    pub oracle: PolarOracle,
    /// Whether that is exact.
    pub exactness: Exactness,
}

impl Induced {
    /// Whether this row applies to `gauges` (for tensors, any number >= 3 of ℓ2 factors).
    pub fn gauges_match(&self, map: MapForm, gauges: &[Gauge], nonnegative: bool) -> bool {
        if self.map != map || self.nonnegative != nonnegative {
            return false;
        }
        match map {
            MapForm::Tensor => gauges.iter().all(|g| self.gauges.contains(g)),
            _ => self.gauges == gauges,
        }
    }
}

/// The closed forms: product-of-gauges regularizers θ = Πₖ gₖ(Wᵏᵢ) whose induced
/// regularizer or polar is known. Anything else gets the variational form and a heuristic
/// polar (see `derive.rs`).
pub const INDUCED: &[Induced] = &[
    Induced {
        map: MapForm::Matrix,
        gauges: &[Gauge::L2, Gauge::L2],
        nonnegative: false,
        omega: "‖{X}‖_*",
        omega_name: "nuclear norm",
        polar: "σ_max(Z)",
        oracle: PolarOracle::TopSingularValue,
        exactness: Exactness::Exact,
    },
    Induced {
        map: MapForm::Matrix,
        gauges: &[Gauge::L1, Gauge::L1],
        nonnegative: false,
        omega: "‖{X}‖₁ = Σⱼₖ |{X}ⱼₖ|",
        omega_name: "entrywise ℓ1 norm",
        polar: "maxⱼₖ |Zⱼₖ|",
        oracle: PolarOracle::MaxAbsEntry,
        exactness: Exactness::Exact,
    },
    Induced {
        map: MapForm::Matrix,
        gauges: &[Gauge::L1, Gauge::L2],
        nonnegative: false,
        omega: "Σⱼ ‖{X}_(j,:)‖₂",
        omega_name: "sum of row ℓ2 norms",
        polar: "maxⱼ ‖Z_(j,:)‖₂",
        oracle: PolarOracle::MaxRowNorm,
        exactness: Exactness::Exact,
    },
    Induced {
        map: MapForm::Matrix,
        gauges: &[Gauge::L2, Gauge::L1],
        nonnegative: false,
        omega: "Σₖ ‖{X}_(:,k)‖₂",
        omega_name: "sum of column ℓ2 norms",
        polar: "maxₖ ‖Z_(:,k)‖₂",
        oracle: PolarOracle::MaxColumnNorm,
        exactness: Exactness::Exact,
    },
    Induced {
        map: MapForm::Matrix,
        gauges: &[Gauge::L1, Gauge::L1],
        nonnegative: true,
        omega: "Σⱼₖ {X}ⱼₖ if {X} ≥ 0, else +∞",
        omega_name: "entrywise ℓ1 norm on the nonnegative orthant",
        polar: "max(0, maxⱼₖ Zⱼₖ)",
        oracle: PolarOracle::MaxPositiveEntry,
        exactness: Exactness::Exact,
    },
    Induced {
        map: MapForm::Matrix,
        gauges: &[Gauge::L2, Gauge::L2],
        nonnegative: true,
        omega: "inf { Σᵢ ‖uᵢ‖₂‖vᵢ‖₂ : {X} = Σᵢ uᵢvᵢᵀ, uᵢ, vᵢ ≥ 0 }",
        omega_name: "nonnegative nuclear norm; no closed form",
        polar: "max { uᵀZv : ‖u‖₂ ≤ 1, ‖v‖₂ ≤ 1, u, v ≥ 0 }",
        oracle: PolarOracle::NonnegativePower,
        exactness: Exactness::Heuristic,
    },
    Induced {
        map: MapForm::Tensor,
        gauges: &[Gauge::L2],
        nonnegative: false,
        omega: "‖{X}‖_proj = inf { Σᵢ Πₖ ‖aᵏᵢ‖₂ : {X} = Σᵢ a¹ᵢ ⊗ … ⊗ aᴷᵢ }",
        omega_name: "tensor nuclear norm, the projective tensor norm",
        polar: "‖Z‖_σ = max { ⟨Z, a¹ ⊗ … ⊗ aᴷ⟩ : ‖aᵏ‖₂ ≤ 1 } (tensor spectral norm, NP-hard)",
        oracle: PolarOracle::HigherOrderPower,
        exactness: Exactness::Heuristic,
    },
    Induced {
        map: MapForm::ReluTwoLayer,
        gauges: &[Gauge::L2, Gauge::L2],
        nonnegative: false,
        omega: "inf { Σᵢ ‖w1ᵢ‖₂‖w2ᵢ‖₂ : {X} = Σᵢ relu({D} w1ᵢ) w2ᵢᵀ }",
        omega_name: "convex ReLU regularizer",
        polar: "max { ‖Zᵀ relu({D} w)‖₂ : ‖w‖₂ ≤ 1 }",
        oracle: PolarOracle::ReluPatterns,
        exactness: Exactness::ExactUpToInputDim(3),
    },
    Induced {
        map: MapForm::ReluThreeLayer,
        gauges: &[Gauge::L2, Gauge::L2, Gauge::L2],
        nonnegative: false,
        omega: "inf { Σᵢ ‖W1ᵢ‖_F‖w2ᵢ‖₂‖w3ᵢ‖₂ : {X} = Σᵢ relu(relu({D} W1ᵢ) w2ᵢ) w3ᵢᵀ }",
        omega_name: "induced regularizer of parallel three-layer ReLU subnetworks",
        polar: "max { ‖Zᵀ relu(relu({D} P) q)‖₂ : ‖P‖_F ≤ 1, ‖q‖₂ ≤ 1 }",
        oracle: PolarOracle::DeepReluAscent,
        exactness: Exactness::Heuristic,
    },
];

/// Fills the placeholders of a catalog template (`{X}`, `{Y}`, `{D}`) with names.
pub fn fill(template: &str, names: &[(&str, &str)]) -> String {
    names
        .iter()
        .fold(template.to_string(), |text, (key, name)| {
            text.replace(&format!("{{{key}}}"), name)
        })
}

/// Converts a value of a parameter's domain to the text `hfc atoms` shows for its default.
pub fn describe_default(spec: &ParamSpec) -> String {
    match (spec.domain, spec.default) {
        (Domain::Flag, _) => "absent".into(),
        (_, Some(v)) => format_number(v),
        (_, None) => "required".into(),
    }
}

/// Formats a number the way `.hfm` files write it (`1`, `0.5`, `1e-8`).
pub fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else if v.abs() >= 1e-2 && v.abs() < 1e6 {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_across_atoms_losses_and_options() {
        let mut names: Vec<&str> = ATOMS.iter().map(|a| a.name).collect();
        names.extend(LOSSES.iter().map(|l| l.name));
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n, "duplicate names in the catalog");
        let mut options: Vec<&str> = SOLVE_OPTIONS.iter().map(|o| o.name).collect();
        options.dedup();
        assert_eq!(options.len(), SOLVE_OPTIONS.len());
    }

    #[test]
    fn every_norm_has_a_gauge_a_prox_and_degree_one() {
        for a in ATOMS.iter().filter(|a| a.kind == AtomKind::Norm) {
            assert!(a.gauge.is_some(), "{}", a.name);
            assert!(a.prox.is_some(), "{}", a.name);
            assert_eq!(a.degree, DegreeLaw::Scale(1), "{}", a.name);
            assert!(a.nonnegative, "{}", a.name);
            assert_eq!(a.shape, ShapeLaw::Reduce, "{}", a.name);
        }
    }

    #[test]
    fn dual_norms_are_norms_and_dual_of_dual_is_self() {
        for a in ATOMS.iter().filter(|a| a.dual.is_some()) {
            let dual = atom(a.dual.unwrap()).expect("dual is in the catalog");
            assert_eq!(dual.kind, AtomKind::Norm);
            assert_eq!(dual.dual, Some(a.name), "dual of the dual of {}", a.name);
        }
    }

    #[test]
    fn every_math_template_has_one_placeholder() {
        for a in ATOMS.iter().filter(|a| a.inputs.min() > 0) {
            assert_eq!(a.math.matches("{}").count(), 1, "{}", a.name);
        }
    }

    #[test]
    fn catalog_rows_each_say_one_fact() {
        // One line per rule: the facts the analyses rely on.
        let facts: &[(&str, DegreeLaw, bool)] = &[
            ("norm1", DegreeLaw::Scale(1), true),
            ("norm2", DegreeLaw::Scale(1), false),
            ("norminf", DegreeLaw::Scale(1), false),
            ("tv", DegreeLaw::Scale(1), true),
            ("frob2", DegreeLaw::Scale(2), true),
            ("nonneg", DegreeLaw::Indicator, true),
            ("psd", DegreeLaw::Indicator, false),
            ("relu", DegreeLaw::Scale(1), false),
            ("cp", DegreeLaw::SumOfArgs, false),
            ("sigmoid", DegreeLaw::None, false),
            ("dropout", DegreeLaw::TwiceMap, true),
        ];
        for &(name, law, separable) in facts {
            let a = atom(name).unwrap();
            assert_eq!((a.degree, a.separable), (law, separable), "{name}");
        }
    }

    #[test]
    fn closed_forms_are_unique_and_exact_ones_name_an_exact_oracle() {
        for (i, a) in INDUCED.iter().enumerate() {
            for b in &INDUCED[i + 1..] {
                assert!(
                    !(a.map == b.map && a.gauges == b.gauges && a.nonnegative == b.nonnegative),
                    "duplicate row {:?}",
                    a.gauges
                );
            }
            if a.exactness == Exactness::Exact {
                assert!(!matches!(
                    a.oracle,
                    PolarOracle::NonnegativePower
                        | PolarOracle::AlternatingProx
                        | PolarOracle::HigherOrderPower
                        | PolarOracle::DeepReluAscent
                ));
            }
        }
    }

    #[test]
    fn domains() {
        assert!(Domain::OpenUnit.contains(0.5) && !Domain::OpenUnit.contains(1.0));
        assert!(
            Domain::IntegerAtLeast(1).contains(3.0) && !Domain::IntegerAtLeast(1).contains(0.5)
        );
        assert!(Domain::Positive.contains(1e-9) && !Domain::Positive.contains(0.0));
    }

    #[test]
    fn numbers_format_as_written() {
        assert_eq!(format_number(1.0), "1");
        assert_eq!(format_number(0.5), "0.5");
        assert_eq!(format_number(1e-8), "1e-8");
        assert_eq!(format_number(0.01), "0.01");
        assert_eq!(format_number(1e-3), "1e-3");
    }
}
