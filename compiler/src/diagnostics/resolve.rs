//! Name-resolution diagnostics: unknown, duplicate and misused names, calls and arguments.

use hfc_grammar::{FileId, Span};

use super::{Diagnostic, codes, one_of};

/// A name that nothing declares.
pub fn unknown_name(
    file: FileId,
    span: Span,
    name: &str,
    suggestion: Option<&str>,
    hint: Option<String>,
) -> Diagnostic {
    let d = Diagnostic::new(
        codes::RESOLVE_UNKNOWN_NAME,
        file,
        format!("unknown name `{name}`"),
        span,
        "not declared",
    );
    match (suggestion, hint) {
        (_, Some(hint)) => d.with_help(hint),
        (Some(s), None) => d.with_help(format!("did you mean `{s}`?")),
        (None, None) => d.with_help(format!(
            "declare it: `param {name} = ...;`, `data {name} : [...];` or `factor {name} : [...];`"
        )),
    }
}

/// A call of something that is neither an atom nor a norm.
pub fn unknown_function(
    file: FileId,
    span: Span,
    name: &str,
    suggestion: Option<&str>,
) -> Diagnostic {
    let d = Diagnostic::new(
        codes::RESOLVE_UNKNOWN_FUNCTION,
        file,
        format!("unknown function `{name}`"),
        span,
        "not an atom or a defined norm",
    );
    match suggestion {
        Some(s) => d.with_help(format!("did you mean `{s}`?")),
        None => {
            d.with_help("`hfc atoms` lists the atoms; define a norm with `norm name(x) = ...;`")
        }
    }
}

/// A loss the catalog does not have.
pub fn unknown_loss(
    file: FileId,
    span: Span,
    name: &str,
    suggestion: Option<&str>,
    known: &[&str],
) -> Diagnostic {
    let d = Diagnostic::new(
        codes::RESOLVE_UNKNOWN_LOSS,
        file,
        format!("unknown loss `{name}`"),
        span,
        "not a loss",
    );
    let list: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
    match suggestion {
        Some(s) => d.with_help(format!("did you mean `{s}`?")),
        None => d.with_help(format!("the losses are {}", one_of(&list))),
    }
}

/// A name declared twice.
pub fn duplicate(file: FileId, span: Span, name: &str, first: Span) -> Diagnostic {
    Diagnostic::new(
        codes::RESOLVE_DUPLICATE,
        file,
        format!("`{name}` is declared twice"),
        span,
        "declared again here",
    )
    .with_label(first, "first declared here")
    .with_help("rename one of them")
}

/// A name declared in another file first (an imported norm).
pub fn duplicate_elsewhere(file: FileId, span: Span, name: &str, first_file: &str) -> Diagnostic {
    Diagnostic::new(
        codes::RESOLVE_DUPLICATE,
        file,
        format!("`{name}` is declared twice"),
        span,
        "declared again here",
    )
    .with_help("rename one of them")
    .with_note(format!("`{name}` is already defined in `{first_file}`"))
}

/// A norm definition that reuses the name of a catalog atom.
pub fn shadows_atom(file: FileId, span: Span, name: &str) -> Diagnostic {
    Diagnostic::new(
        codes::RESOLVE_DUPLICATE,
        file,
        format!("`{name}` is already an atom"),
        span,
        "this name is taken by the catalog",
    )
    .with_help("choose another name for the norm")
}

/// A name used as something it is not.
pub fn wrong_kind(
    file: FileId,
    span: Span,
    name: &str,
    is: &str,
    expected: &str,
    help: Option<String>,
) -> Diagnostic {
    let d = Diagnostic::new(
        codes::RESOLVE_WRONG_KIND,
        file,
        format!("`{name}` is {is}, not {expected}"),
        span,
        format!("expected {expected}"),
    );
    match help {
        Some(h) => d.with_help(h),
        None => d,
    }
}

/// A call with the wrong number of inputs or parameters.
pub fn arity(
    file: FileId,
    span: Span,
    message: String,
    label: &str,
    signature: String,
) -> Diagnostic {
    Diagnostic::new(codes::RESOLVE_ARITY, file, message, span, label)
        .with_help(format!("it is called as `{signature}`"))
}

/// A named argument the callee does not take.
pub fn unknown_argument(
    file: FileId,
    span: Span,
    callee: &str,
    arg: &str,
    accepted: &[&str],
) -> Diagnostic {
    let d = Diagnostic::new(
        codes::RESOLVE_UNKNOWN_ARGUMENT,
        file,
        format!("`{callee}` has no parameter `{arg}`"),
        span,
        "unknown parameter",
    );
    if accepted.is_empty() {
        d.with_help(format!("`{callee}` takes no parameters"))
    } else {
        let list: Vec<String> = accepted.iter().map(|a| format!("`{a}`")).collect();
        d.with_help(format!("its parameters are {}", one_of(&list)))
    }
}

/// A value that must be constant but depends on data or factors.
pub fn not_constant(file: FileId, span: Span, what: &str) -> Diagnostic {
    Diagnostic::new(
        codes::RESOLVE_NOT_CONSTANT,
        file,
        format!("{what} must be a constant"),
        span,
        "not a constant",
    )
    .with_help("use numbers and parameters only")
}

/// A constant outside its domain.
pub fn bad_value(file: FileId, span: Span, what: &str, value: f64, domain: &str) -> Diagnostic {
    Diagnostic::new(
        codes::RESOLVE_BAD_VALUE,
        file,
        format!("{what} must be {domain}"),
        span,
        format!("this is {}", crate::catalog::format_number(value)),
    )
}

/// An import that cannot be read.
pub fn import_not_found(file: FileId, span: Span, path: &str, reason: &str) -> Diagnostic {
    Diagnostic::new(
        codes::RESOLVE_IMPORT,
        file,
        format!("cannot import `{path}`"),
        span,
        reason.to_string(),
    )
    .with_help(
        "paths are relative to the importing file; the standard library is under `std/` \
         (e.g. `import \"std/norms.hfm\";`)",
    )
}

/// A solve option that does not exist.
pub fn unknown_option(
    file: FileId,
    span: Span,
    name: &str,
    suggestion: Option<&str>,
    known: &[&str],
) -> Diagnostic {
    let d = Diagnostic::new(
        codes::SOLVE_UNKNOWN_OPTION,
        file,
        format!("unknown solve option `{name}`"),
        span,
        "not an option",
    );
    let list: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
    match suggestion {
        Some(s) => d.with_help(format!("did you mean `{s}`?")),
        None => d.with_help(format!("the options are {}", one_of(&list))),
    }
}

/// A bound written as a value or a value written as a bound.
pub fn wrong_relation(
    file: FileId,
    span: Span,
    name: &str,
    value: &str,
    bound: bool,
) -> Diagnostic {
    let (wanted, example) = if bound {
        ("`<=`", format!("`{name} <= {value};`"))
    } else {
        ("`=`", format!("`{name} = {value};`"))
    };
    Diagnostic::new(
        codes::SOLVE_RELATION,
        file,
        format!("`{name}` is set with {wanted}"),
        span,
        format!("expected {wanted}"),
    )
    .with_help(format!("write {example}"))
    .with_note(if bound {
        "the size r grows as the solver needs it; `rank` only caps it"
    } else {
        "only `rank` is a bound; every other option is a value"
    })
}

/// A data source hfc cannot read.
pub fn bad_source(file: FileId, span: Span, message: String, help: &str) -> Diagnostic {
    Diagnostic::new(codes::DATA_SOURCE, file, message, span, "cannot be read").with_help(help)
}
