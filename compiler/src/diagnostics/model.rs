//! Model-level diagnostics: missing, repeated and unused statements and declarations.

use hfc_grammar::{FileId, Span};

use super::{Diagnostic, codes};

/// A model without `fit`.
pub fn missing_fit(file: FileId, name_span: Span, model: &str) -> Diagnostic {
    Diagnostic::new(
        codes::MODEL_MISSING_FIT,
        file,
        format!("model `{model}` has no `fit` statement"),
        name_span,
        "this model fits nothing",
    )
    .with_help("say what is factorized, e.g. `fit Y ~ U * V';`")
    .with_note("a model fits one data declaration with a map of its factors")
}

/// A model without `loss`.
pub fn missing_loss(file: FileId, name_span: Span, model: &str) -> Diagnostic {
    Diagnostic::new(
        codes::MODEL_MISSING_LOSS,
        file,
        format!("model `{model}` has no `loss` statement"),
        name_span,
        "this model has no loss",
    )
    .with_help("add one, e.g. `loss squared;`")
    .with_note("the losses are `squared`, `huber` and `logistic`; `hfc atoms` describes them")
}

/// A second `fit`, `loss`, `reg` or `solve`.
pub fn duplicate_statement(file: FileId, span: Span, keyword: &str, first: Span) -> Diagnostic {
    Diagnostic::new(
        codes::MODEL_DUPLICATE_STATEMENT,
        file,
        format!("a model has one `{keyword}` statement"),
        span,
        "a second one",
    )
    .with_label(first, "the first one")
    .with_help(match keyword {
        "reg" => "combine the regularizers with `+` in one `reg` statement".to_string(),
        _ => format!("keep one `{keyword}` statement"),
    })
    .with_note("a model has at most one `fit`, `loss`, `reg` and `solve`")
}

/// `on observed(Z)` where Z is not the fitted data.
pub fn mask_target(
    file: FileId,
    span: Span,
    mask_target: &str,
    fit_target: &str,
    fit_span: Span,
) -> Diagnostic {
    Diagnostic::new(
        codes::MODEL_MASK_TARGET,
        file,
        format!("the loss is masked by `{mask_target}` but the model fits `{fit_target}`"),
        span,
        format!("observed entries of `{mask_target}`"),
    )
    .with_label(fit_span, format!("the fitted data is `{fit_target}`"))
    .with_help(format!("write `on observed({fit_target})`"))
    .with_note(
        "`on observed(Y)` restricts the loss to the entries of the fitted data that are present",
    )
}

/// A factor the map does not use.
pub fn unused_factor(file: FileId, span: Span, name: &str) -> Diagnostic {
    Diagnostic::new(
        codes::MODEL_UNUSED_FACTOR,
        file,
        format!("factor `{name}` is not used by the map"),
        span,
        "declared here",
    )
    .with_help(format!("use `{name}` in the `fit` statement, or remove it"))
    .with_note(
        "a factor outside the map does not change the fit; regularizing it only shrinks it to zero",
    )
}

/// Data nothing uses.
pub fn unused_data(file: FileId, span: Span, name: &str) -> Diagnostic {
    Diagnostic::new(
        codes::MODEL_UNUSED_DATA,
        file,
        format!("data `{name}` is not used"),
        span,
        "declared here",
    )
    .with_help(format!("use `{name}` or remove the declaration"))
    .with_note("data is used by the map, as the fitted target, or as a mask")
}
