//! Shape diagnostics.

use hfc_grammar::{FileId, Span};

use super::{Diagnostic, codes};

/// Two operands whose shapes do not agree.
#[allow(clippy::too_many_arguments)]
pub fn mismatch(
    file: FileId,
    op_span: Span,
    message: String,
    lhs_span: Span,
    lhs_shape: &str,
    rhs_span: Span,
    rhs_shape: &str,
    help: Option<String>,
) -> Diagnostic {
    let d = Diagnostic::new(
        codes::SHAPE_MISMATCH,
        file,
        message,
        op_span,
        "shapes do not agree here",
    )
    .with_label(lhs_span, format!("this has shape {lhs_shape}"))
    .with_label(rhs_span, format!("this has shape {rhs_shape}"));
    match help {
        Some(h) => d.with_help(h),
        None => d,
    }
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
}

/// An operand of the wrong rank or form for its operation.
pub fn operand(
    file: FileId,
    span: Span,
    message: String,
    label: String,
    help: Option<&str>,
) -> Diagnostic {
    let d = Diagnostic::new(codes::SHAPE_MISMATCH, file, message, span, label);
    match help {
        Some(h) => d.with_help(h),
        None => d,
    }
}

/// An index that does not fit.
pub fn index(
    file: FileId,
    span: Span,
    message: String,
    label: String,
    help: Option<String>,
) -> Diagnostic {
    let d = Diagnostic::new(codes::SHAPE_INDEX, file, message, span, label);
    match help {
        Some(h) => d.with_help(h),
        None => d,
    }
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
