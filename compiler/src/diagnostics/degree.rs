//! Degree, regularizer and derivation diagnostics: the heart of what `hfc check` verifies.

use hfc_grammar::{FileId, Span};

use super::{Diagnostic, codes};

/// Why a positive-homogeneity rule failed, in the words of the operation at fault.
pub enum NotHomogeneous<'a> {
    /// A function such as `sigmoid` applied to an expression that depends on a factor.
    Function {
        /// The function's name.
        name: &'a str,
        /// Why it is not homogeneous.
        why: &'a str,
    },
    /// A constant added to an expression of positive degree (a bias).
    Bias {
        /// The degree of the other side.
        degree: u32,
        /// The constant's span.
        constant: Span,
    },
    /// Two terms of different degrees added.
    Terms {
        /// Left term and its degree.
        lhs: (Span, u32),
        /// Right term and its degree.
        rhs: (Span, u32),
    },
    /// Division by an expression that depends on a factor.
    Division,
}

const HOMOGENEITY_RULE: &str = "φ is positively homogeneous of degree p when φ(a·W) = aᵖ·φ(W) \
for every a ≥ 0; Haeffele & Vidal's guarantees (every local minimum with a zero column is \
global) need the map and the regularizer to be homogeneous of the same degree";

/// The map or the regularizer is not positively homogeneous.
pub fn not_homogeneous(
    file: FileId,
    span: Span,
    in_map: bool,
    why: NotHomogeneous<'_>,
) -> Diagnostic {
    let (code, whole) = if in_map {
        (codes::DEGREE_MAP_NOT_HOMOGENEOUS, "the factorization map")
    } else {
        (codes::DEGREE_REG_NOT_HOMOGENEOUS, "the regularizer")
    };
    let d = match why {
        NotHomogeneous::Function { name, why } => Diagnostic::new(
            code,
            file,
            format!("{whole} is not positively homogeneous: `{name}` is not"),
            span,
            format!("`{name}` is not positively homogeneous"),
        )
        .with_help(if in_map {
            format!(
                "use a positively homogeneous activation such as `relu` instead of `{name}` ({why})"
            )
        } else {
            format!("regularize with norms of the factors instead ({why})")
        }),
        NotHomogeneous::Bias { degree, constant } => Diagnostic::new(
            code,
            file,
            format!("{whole} is not positively homogeneous: it adds a constant"),
            span,
            format!("a constant added to an expression of degree {degree}"),
        )
        .with_label(constant, "this constant does not scale with the factors")
        .with_help(if in_map {
            "drop the constant bias, or make it a factor of its own (a bias times a ones \
             column of the data keeps the map homogeneous)"
                .to_string()
        } else {
            "drop the constant: it does not change the minimizer".to_string()
        }),
        NotHomogeneous::Terms { lhs, rhs } => Diagnostic::new(
            code,
            file,
            format!(
                "{whole} is not positively homogeneous: it adds terms of degrees {} and {}",
                lhs.1, rhs.1
            ),
            span,
            "terms of different degrees added here",
        )
        .with_label(lhs.0, format!("degree {}", lhs.1))
        .with_label(rhs.0, format!("degree {}", rhs.1))
        .with_help("give every term the same degree, e.g. a product of one norm per factor"),
        NotHomogeneous::Division => Diagnostic::new(
            code,
            file,
            format!("{whole} is not positively homogeneous: it divides by a factor"),
            span,
            "division by an expression that depends on a factor",
        )
        .with_help("divide by constants only"),
    };
    d.with_note(HOMOGENEITY_RULE)
}

/// The map depends on no factor.
pub fn constant_map(file: FileId, span: Span) -> Diagnostic {
    Diagnostic::new(
        codes::DEGREE_CONSTANT_MAP,
        file,
        "the map does not depend on any factor",
        span,
        "this is a constant",
    )
    .with_help("factorize the data with factors, e.g. `fit Y ~ U * V';`")
    .with_note("the map must depend on the factors; data enters only as a multiplicative input, as `X` in `relu(X * W1)`")
}

/// An exponent that is not a positive integer constant.
pub fn bad_exponent(file: FileId, span: Span, value: Option<f64>) -> Diagnostic {
    let label = match value {
        Some(v) => format!("this is {}", crate::catalog::format_number(v)),
        None => "not a constant".to_string(),
    };
    Diagnostic::new(
        codes::DEGREE_BAD_EXPONENT,
        file,
        "an exponent must be a positive integer constant",
        span,
        label,
    )
    .with_help("write a whole power such as `norm2(U[:, i])^2`")
    .with_note("`E ^ k` has degree k·deg(E); hfc tracks whole degrees only")
}

/// A norm definition that is not a norm.
pub fn not_a_norm(file: FileId, span: Span, name: &str, why: String) -> Diagnostic {
    Diagnostic::new(
        codes::DEGREE_NOT_A_NORM,
        file,
        format!("`{name}` is not a norm: {why}"),
        span,
        "not a nonnegative combination of norms",
    )
    .with_help(
        "define it as a sum of norms of its argument with nonnegative weights, e.g. \
         `norm2(x) + g * norm1(x)`",
    )
    .with_note("hfc needs each factor's gauge to be convex and positively homogeneous of degree 1")
}

/// A user norm used with a negative weight.
pub fn norm_negative_param(
    file: FileId,
    span: Span,
    name: &str,
    param: &str,
    value: f64,
) -> Diagnostic {
    Diagnostic::new(
        codes::DEGREE_NOT_A_NORM,
        file,
        format!(
            "`{name}` is not a norm with `{param}` = {}",
            crate::catalog::format_number(value)
        ),
        span,
        format!("`{param}` must be >= 0"),
    )
    .with_help(format!("give `{param}` a value >= 0"))
    .with_note(format!(
        "`{param}` weighs a norm in the definition of `{name}`; a negative weight makes it non-convex"
    ))
}

/// What the regularizer looks like, to explain a degree mismatch in its own terms.
pub enum MismatchKind {
    /// Any regularizer.
    General,
    /// Weight decay: a sum of squared norms, one factor each.
    WeightDecay,
    /// Dropout with a fixed rate.
    FixedDropout,
}

/// The regularizer's degree differs from the map's.
#[allow(clippy::too_many_arguments)]
pub fn mismatch(
    file: FileId,
    kind: MismatchKind,
    reg_span: Span,
    reg_degree: String,
    map_span: Span,
    map_degree: String,
    message: String,
    reg_total: u32,
    map_total: u32,
    suggestion: String,
) -> Diagnostic {
    let d = Diagnostic::new(
        codes::DEGREE_MISMATCH,
        file,
        message,
        reg_span,
        format!("this regularizer has {reg_degree}"),
    )
    .with_label(map_span, format!("this map has {map_degree}"));
    match kind {
        MismatchKind::WeightDecay => d
            .with_help(format!(
                "use a product of norms of degree {map_total}: `{suggestion}`"
            ))
            .with_note(format!(
                "weight decay Σₖ ‖Wₖ‖²_F has degree 2 whatever the depth; it suits 2 factors \
                 (at balance ‖u‖² + ‖v‖² = 2‖u‖‖v‖, a nuclear norm), but on a map of degree \
                 {map_total} spurious local minima exist (Haeffele & Vidal, degree-mismatch \
                 proposition)"
            )),
        MismatchKind::FixedDropout => d
            .with_help(format!(
                "let the rate grow with the size: `dropout(p, adaptive)`, or use `{suggestion}`"
            ))
            .with_note(
                "splitting every column into two copies scaled by 1/√2 keeps the map and \
                 halves Σᵢ Πₖ ‖Wᵏᵢ‖²: dropout at a fixed rate does not limit the size r \
                 (Cavazza et al., 2018)",
            ),
        MismatchKind::General => {
            let why = if reg_total < map_total {
                "a regularizer of lower degree than the map induces a non-convex penalty, and \
                 local descent can stop at spurious local minima (Haeffele & Vidal, \
                 degree-mismatch proposition)"
                    .to_string()
            } else if reg_total > map_total {
                format!(
                    "splitting a column into k copies scaled by k^(-1/{map_total}) keeps the map \
                     and multiplies a regularizer of degree {reg_total} by \
                     k^(1 - {reg_total}/{map_total}) → 0: it does not limit the size r"
                )
            } else {
                "rescaling the factors against each other keeps the map and drives this \
                 regularizer to 0: it does not limit the size r"
                    .to_string()
            };
            d.with_help(format!(
                "use a regularizer of matching degree: `{suggestion}`"
            ))
            .with_note(why)
        }
    }
}

/// A model without a regularizer.
pub fn missing_reg(file: FileId, name_span: Span, model: &str) -> Diagnostic {
    Diagnostic::new(
        codes::REG_MISSING,
        file,
        format!("model `{model}` has no regularizer"),
        name_span,
        "nothing limits the size r of this model",
    )
    .with_help(
        "add one of the map's degree, e.g. `reg lambda * sum(i) norm2(U[:, i]) * norm2(V[:, i]);`",
    )
    .with_note(
        "without a regularizer the size grows to the rank cap and nothing certifies a \
         global optimum",
    )
}

/// A regularizer made of constraints only.
pub fn only_constraints(file: FileId, span: Span) -> Diagnostic {
    Diagnostic::new(
        codes::REG_MISSING,
        file,
        "the regularizer only constrains the factors",
        span,
        "cone indicators: 0 or +∞",
    )
    .with_help("add a product of norms of the map's degree")
    .with_note("a cone constraint does not grow with the factors, so nothing limits the size r")
}

/// A regularizer that is not a sum over the subnetwork index.
pub fn not_parallel(file: FileId, span: Span, why: &str, suggestion: Option<String>) -> Diagnostic {
    let d = Diagnostic::new(
        codes::REG_NOT_PARALLEL,
        file,
        "the regularizer is not a sum over the subnetworks",
        span,
        why.to_string(),
    )
    .with_note(
        "the theory and the polar certificate need Θ(W) = Σᵢ θ(W¹ᵢ, …, Wᴷᵢ): one term per \
         column i, each depending on column i only",
    );
    match suggestion {
        Some(s) => d.with_help(format!("write it per column: `{s}`")),
        None => d.with_help("write it per column: `sum(i) norm2(U[:, i]) * norm2(V[:, i])`"),
    }
}

/// A regularizer that can be negative.
pub fn negative(file: FileId, span: Span, label: String) -> Diagnostic {
    Diagnostic::new(
        codes::REG_NEGATIVE,
        file,
        "the regularizer can be negative",
        span,
        label,
    )
    .with_help("weigh norms with nonnegative constants")
    .with_note("a regularizer must be nonnegative (positive semidefinite) to induce a convex Ω")
}

/// No polar solver for this map.
pub fn no_polar_oracle(file: FileId, span: Span, map: &str) -> Diagnostic {
    Diagnostic::new(
        codes::CONVEX_NO_POLAR,
        file,
        format!("hfc cannot solve the polar problem of {map}"),
        span,
        "no polar solver for this map",
    )
    .with_help("write the map as `U * V'`, `cp(A, B, ...)` or `relu(X * W1) * W2'` to get one")
    .with_note(
        "without a polar solver, `hfc run` does local descent at a fixed size and reports \
         `certificate: none`",
    )
}
