//! Name-resolution diagnostics: unknown, duplicate and misused names, calls and arguments.

use hfc_grammar::{FileId, Span};

use super::{Code, Diagnostic, codes, one_of};

const CALL_RULE: &str = "a call takes its inputs first, then constant parameters: after `;`, \
                         after the inputs, or by name (`huber(delta = 0.5)`)";

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
    )
    .with_note(
        "a name is a `param`, `data` or `factor` of the model, or an index bound by `sum(i)`",
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
    )
    .with_note(
        "a call names an atom of the catalog (`hfc atoms` lists them) or a `norm` definition",
    );
    match suggestion {
        Some(s) => d.with_help(format!("did you mean `{s}`?")),
        None => d.with_help("define it as a norm: `norm name(x) = norm2(x) + norm1(x);`"),
    }
}

/// A word that is not one of a known list (a loss, a solve option).
fn unknown_among(
    code: Code,
    file: FileId,
    span: Span,
    what: &str,
    name: &str,
    suggestion: Option<&str>,
    known: &[&str],
) -> Diagnostic {
    let list: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
    let d = Diagnostic::new(
        code,
        file,
        format!("unknown {what} `{name}`"),
        span,
        format!("not a {what}"),
    )
    .with_note(format!("the {what}s are {}", one_of(&list)));
    match suggestion {
        Some(s) => d.with_help(format!("did you mean `{s}`?")),
        None => d.with_help(format!(
            "use one of the {what}s; `hfc atoms` describes each"
        )),
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
    unknown_among(
        codes::RESOLVE_UNKNOWN_LOSS,
        file,
        span,
        "loss",
        name,
        suggestion,
        known,
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
    unknown_among(
        codes::SOLVE_UNKNOWN_OPTION,
        file,
        span,
        "solve option",
        name,
        suggestion,
        known,
    )
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
    .with_note(
        "the params, data, factors and indices of a model share one namespace; norms share \
         another",
    )
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
    .with_help(format!(
        "rename it, or use the definition in `{first_file}`"
    ))
    .with_note(format!(
        "`{name}` is already defined in `{first_file}`; an import brings its norms into scope"
    ))
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
    .with_note("the catalog's atoms cannot be redefined (`hfc atoms` lists them)")
}

/// A name used as something it is not.
pub fn wrong_kind(
    file: FileId,
    span: Span,
    name: &str,
    is: &str,
    expected: &str,
    help: String,
) -> Diagnostic {
    Diagnostic::new(
        codes::RESOLVE_WRONG_KIND,
        file,
        format!("`{name}` is {is}, not {expected}"),
        span,
        format!("expected {expected}"),
    )
    .with_help(help)
    .with_note(
        "data and parameters are fixed, factors are what is solved for, an index ranges over \
         the subnetworks, a loss is named in the `loss` statement",
    )
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
        .with_note(CALL_RULE)
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
    )
    .with_note(CALL_RULE);
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
    .with_note("constants are fixed before solving; only the factors vary")
}

/// A constant outside its domain.
pub fn bad_value(
    file: FileId,
    span: Span,
    what: &str,
    value: f64,
    domain: &str,
    doc: &str,
) -> Diagnostic {
    Diagnostic::new(
        codes::RESOLVE_BAD_VALUE,
        file,
        format!("{what} must be {domain}"),
        span,
        format!("this is {}", crate::catalog::format_number(value)),
    )
    .with_help(format!("use {domain}"))
    .with_note(format!("{what}: {doc}"))
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
    .with_note("an import brings the `norm` definitions of a file into scope")
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
    Diagnostic::new(codes::DATA_SOURCE, file, message, span, "cannot be read")
        .with_help(help)
        .with_note(
            "data comes from `.npy` and `.npz` (NumPy), `.csv`, or `.mtx` (Matrix Market: a \
             coordinate file lists observed entries), relative to the model file",
        )
}
