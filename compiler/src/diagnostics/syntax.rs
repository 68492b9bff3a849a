//! Syntax errors, worded.

use hfc_grammar::{Expected, FileId, Found, STATEMENT_KEYWORDS, SyntaxError, SyntaxErrorKind};

use super::{Diagnostic, codes, did_you_mean, one_of};

const LIMITS: &str = "hfc accepts at most 64 nested parentheses or calls, and 1024 operands, \
                      in one expression";

/// How each construct reads, for the help of a syntax error inside it.
fn example_of(context: &str) -> Option<&'static str> {
    Some(match context {
        "parameter declaration" => "a parameter reads `param lambda = 0.1;`",
        "data declaration" => "data reads `data Y : [m, n] = load(\"Y.npy\");`",
        "factor declaration" => "a factor reads `factor U : [m, r];` or `factor U : [m, r] >= 0;`",
        "fit statement" => "a fit reads `fit Y ~ U * V';`",
        "loss statement" => {
            "a loss reads `loss squared;`, `loss huber(delta = 1.0);` or `loss squared on observed(Y);`"
        }
        "regularizer" => {
            "a regularizer reads `reg lambda * sum(i) norm2(U[:, i]) * norm2(V[:, i]);`"
        }
        "solve block" | "solve option" => {
            "a solve block reads `solve { rank <= 100; tol = 1e-8; }`"
        }
        "norm definition" => {
            "a norm definition reads `norm elastic(x; g) = norm2(x) + g * norm1(x);`"
        }
        "import" => "an import reads `import \"std/norms.hfm\";`",
        "model" => "a model reads `model name { statements }`",
        _ => return None,
    })
}

fn found_text(found: &Found) -> String {
    match found {
        Found::Token(t) => format!("`{t}`"),
        Found::EndOfFile => "end of file".to_string(),
    }
}

fn expected_text(expected: &[Expected]) -> String {
    let items: Vec<String> = expected
        .iter()
        .map(|e| match e {
            Expected::Token(t) => format!("`{t}`"),
            Expected::Named(n) => n.to_string(),
        })
        .collect();
    one_of(&items)
}

/// The diagnostic for a syntax error in `file`.
pub fn from_syntax_error(file: FileId, error: &SyntaxError) -> Diagnostic {
    let span = error.span;
    match &error.kind {
        SyntaxErrorKind::Unexpected {
            expected,
            found,
            context,
        } => {
            let found = found_text(found);
            let (message, label) = if expected.is_empty() {
                (format!("unexpected {found}"), "unexpected here".to_string())
            } else {
                let expected = expected_text(expected);
                (
                    format!("expected {expected}, found {found}"),
                    format!("expected {expected} here"),
                )
            };
            let d = Diagnostic::new(codes::SYNTAX_UNEXPECTED, file, message, span, label)
                .with_note(if *context == "file" {
                    "the rest of the file could not be read".to_string()
                } else {
                    format!("this {context} was skipped; the rest of the file is still checked")
                });
            match example_of(context) {
                Some(example) => d.with_help(example),
                None => d.with_help("remove or complete what is here"),
            }
        }
        SyntaxErrorKind::UnknownStatement { word } => {
            let d = Diagnostic::new(
                codes::SYNTAX_UNKNOWN_STATEMENT,
                file,
                format!("unknown statement `{word}`"),
                span,
                "not a statement keyword",
            )
            .with_note(
                "a model holds `param`, `data`, `factor`, `fit`, `loss`, `reg`, `solve` and \
                 `norm` statements, each ending with `;`",
            );
            match did_you_mean(word, STATEMENT_KEYWORDS.iter().copied()) {
                Some(kw) => d.with_help(format!("did you mean `{kw}`?")),
                None => d.with_help(format!(
                    "a statement starts with {}",
                    one_of(&quoted(STATEMENT_KEYWORDS))
                )),
            }
        }
        SyntaxErrorKind::UnknownItem { word } => {
            let d = Diagnostic::new(
                codes::SYNTAX_UNKNOWN_ITEM,
                file,
                format!("expected `model`, `norm` or `import`, found `{word}`"),
                span,
                "not the start of a model, norm or import",
            )
            .with_note("a file holds `import`, `norm` and `model` items");
            match did_you_mean(word, hfc_grammar::ITEM_KEYWORDS.iter().copied()) {
                Some(kw) => d.with_help(format!("did you mean `{kw}`?")),
                None if word == "}" => d.with_help("this `}` closes nothing; remove it"),
                None => d.with_help("everything up to the next `model`, `norm` or `import` line was skipped"),
            }
        }
        SyntaxErrorKind::StatementOutsideModel { keyword } => Diagnostic::new(
            codes::SYNTAX_OUTSIDE_MODEL,
            file,
            format!("`{keyword}` statement outside a model"),
            span,
            "not inside any `model { }`",
        )
        .with_help("move it into a `model name { ... }` block")
        .with_note("only `import` and `norm` stand at the top level; statements belong to a model"),
        SyntaxErrorKind::Unclosed { open, what } => Diagnostic::new(
            codes::SYNTAX_UNCLOSED,
            file,
            format!("unclosed {what}: expected `}}`"),
            span,
            "expected `}` here",
        )
        .with_label(*open, "this `{` is never closed")
        .with_help("add the missing `}`")
        .with_note("a block runs from its `{` to the matching `}`; what follows was read as part of it"),
        SyntaxErrorKind::UnterminatedComment => Diagnostic::new(
            codes::SYNTAX_UNTERMINATED_COMMENT,
            file,
            "unterminated block comment",
            span,
            "this `/*` has no `*/`",
        )
        .with_help("close the comment with `*/`; the rest of the file was skipped")
        .with_note("a `/*` comment ends at the first `*/`; comments do not nest"),
        SyntaxErrorKind::NumberOutOfRange { text } => Diagnostic::new(
            codes::SYNTAX_NUMBER,
            file,
            format!("number `{text}` is out of range"),
            span,
            "not a finite 64-bit number",
        )
        .with_help("write a smaller number")
        .with_note("numbers are 64-bit floats (at most about 1.8e308); sizes and indices are 64-bit integers"),
        SyntaxErrorKind::TooDeep { limit } => Diagnostic::new(
            codes::SYNTAX_TOO_COMPLEX,
            file,
            "expression nested too deeply",
            span,
            format!("more than {limit} levels deep"),
        )
        .with_help("split it with a `param` or a `norm` definition")
        .with_note(LIMITS),
        SyntaxErrorKind::TooLong { limit } => Diagnostic::new(
            codes::SYNTAX_TOO_COMPLEX,
            file,
            "expression too long",
            span,
            format!("more than {limit} operands"),
        )
        .with_help("split it with a `param` or a `norm` definition")
        .with_note(LIMITS),
    }
}

fn quoted(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| format!("`{w}`")).collect()
}
