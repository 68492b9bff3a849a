//! Shape diagnostics.

use hfc_grammar::{FileId, Span};

use super::{Diagnostic, codes};

/// The shape rule of a product, for notes.
pub const PRODUCT_RULE: &str = "a product [a, b] * [b, c] needs equal inner sizes; a vector \
                                [n] takes part as the column [n, 1]";
/// The shape rule of a sum, for notes.
pub const SUM_RULE: &str = "a sum adds expressions of the same shape, or a scalar to anything";
/// The shape rule of divisors and exponents, for notes.
pub const SCALAR_RULE: &str = "divisors and exponents are scalars";

/// One side of a binary operation: where it is and its shape.
pub struct Operand<'a> {
    /// Where.
    pub span: Span,
    /// Its shape, as users write it.
    pub shape: &'a str,
}

/// Two operands whose shapes do not agree.
pub fn mismatch(
    file: FileId,
    op_span: Span,
    message: String,
    (lhs, rhs): (Operand<'_>, Operand<'_>),
    help: String,
    rule: &str,
) -> Diagnostic {
    Diagnostic::new(
        codes::SHAPE_MISMATCH,
        file,
        message,
        op_span,
        "shapes do not agree here",
    )
    .with_label(lhs.span, format!("this has shape {}", lhs.shape))
    .with_label(rhs.span, format!("this has shape {}", rhs.shape))
    .with_help(help)
    .with_note(rule)
}

/// The fitted data and the map have different shapes.
pub fn fit_mismatch(
    file: FileId,
    target_span: Span,
    target: &str,
    target_shape: &str,
    map_span: Span,
    map_shape: &str,
) -> Diagnostic {
    Diagnostic::new(
        codes::SHAPE_MISMATCH,
        file,
        format!("`{target}` has shape {target_shape} but the map has shape {map_shape}"),
        map_span,
        format!("this map has shape {map_shape}"),
    )
    .with_label(target_span, format!("`{target}` has shape {target_shape}"))
    .with_help("change the map (a transpose, the order of a product) or the declared shapes")
    .with_note(
        "the map's output is compared with the data entry by entry: their shapes must be equal",
    )
}

/// Inputs of a multilinear map (`cp`) whose column counts differ.
pub fn columns_differ(
    file: FileId,
    callee: &str,
    first: (Span, &str),
    this: (Span, &str),
) -> Diagnostic {
    Diagnostic::new(
        codes::SHAPE_MISMATCH,
        file,
        format!("the inputs of `{callee}` must have the same columns"),
        this.0,
        format!("this has shape {}", this.1),
    )
    .with_label(first.0, format!("this has shape {}", first.1))
    .with_help("every factor of a CP model is `[n_k, r]`, with the size index r last")
    .with_note("cp(A, B, C) = Σᵢ Aᵢ ⊗ Bᵢ ⊗ Cᵢ sums over the columns its inputs share")
}

/// An operand of the wrong rank or form for its operation.
pub fn operand(
    file: FileId,
    span: Span,
    message: String,
    label: String,
    help: &str,
    rule: &str,
) -> Diagnostic {
    Diagnostic::new(codes::SHAPE_MISMATCH, file, message, span, label)
        .with_help(help)
        .with_note(rule)
}

/// An index that does not fit.
pub fn index(file: FileId, span: Span, message: String, label: String, help: String) -> Diagnostic {
    Diagnostic::new(codes::SHAPE_INDEX, file, message, span, label)
        .with_help(help)
        .with_note(
            "`U[:, i]` is column i of U: one item per axis, `:` for a whole axis; the index of \
             `sum(i)` ranges over the size index r",
        )
}

/// A regularizer that is not a scalar.
pub fn reg_not_scalar(file: FileId, span: Span, shape: &str) -> Diagnostic {
    Diagnostic::new(
        codes::SHAPE_NOT_SCALAR,
        file,
        "the regularizer must be a scalar",
        span,
        format!("this has shape {shape}"),
    )
    .with_help("apply a norm, e.g. `norm2(U[:, i])`")
    .with_note("a regularizer gives one number for every value of the factors")
}

/// No free dimension among the factors' shapes.
pub fn no_size_index(file: FileId, span: Span) -> Diagnostic {
    Diagnostic::new(
        codes::SHAPE_NO_SIZE_INDEX,
        file,
        "no dimension of the factors can grow",
        span,
        "every axis of the factors is fixed by data or a number",
    )
    .with_help("give the factors a dimension no data fixes, e.g. `factor U : [m, r];`")
    .with_note(
        "hfc grows the size r of the factorization until the polar certificate holds; r is the \
         one dimension of the factors that no data declaration fixes",
    )
}

/// Several free dimensions.
pub fn ambiguous_size_index(file: FileId, first: (Span, &str), second: (Span, &str)) -> Diagnostic {
    Diagnostic::new(
        codes::SHAPE_AMBIGUOUS_SIZE_INDEX,
        file,
        format!(
            "two dimensions of the factors are free: `{}` and `{}`",
            first.1, second.1
        ),
        second.0,
        format!("`{}` is not fixed by any data", second.1),
    )
    .with_label(first.0, format!("`{}` is not fixed by any data", first.1))
    .with_help("fix all but one with data or a number; the one left is the size r that grows")
    .with_note(
        "the size index is the one dimension of the factors that no data declaration fixes; \
         hfc grows it until the polar certificate holds",
    )
}
