//! Diagnostics: errors and warnings as values, with spans, stable codes, help and a note.
//!
//! Every diagnostic is built by a constructor in one of the files beside this one (one file
//! per stage), so the wording of every message is reviewed in one place, and its code comes
//! from the registry in [`codes`]. Message style (rustc/typst): `message` starts lowercase,
//! has no trailing period and states the fact; the primary label says what *this* span is;
//! `help` is an imperative fix; `note` states the rule.

pub mod codes;
pub mod degree;
pub mod model;
pub mod resolve;
pub mod shape;
pub mod syntax;

use hfc_grammar::{FileId, Span};

pub use codes::Code;

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The model is wrong; nothing is derived or run.
    Error,
    /// The model is accepted, but something is likely wrong with it.
    Warning,
}

impl Severity {
    /// `"error"` or `"warning"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// A labelled span.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    /// Where.
    pub span: Span,
    /// What this span is.
    pub text: String,
    /// The primary label is the one the diagnostic's line and column refer to.
    pub primary: bool,
}

/// One diagnostic. Boxed inside, so that a `Result<T, Diagnostic>` stays one pointer wide.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic(Box<Inner>);

#[derive(Clone, Debug, PartialEq)]
struct Inner {
    code: Code,
    message: String,
    file: FileId,
    labels: Vec<Label>,
    help: Option<String>,
    note: Option<String>,
}

impl Diagnostic {
    /// A diagnostic of `code` in `file` with its primary label.
    pub fn new(
        code: Code,
        file: FileId,
        message: impl Into<String>,
        span: Span,
        label: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic(Box::new(Inner {
            code,
            message: message.into(),
            file,
            labels: vec![Label {
                span,
                text: label.into(),
                primary: true,
            }],
            help: None,
            note: None,
        }))
    }

    /// Adds a secondary label.
    pub fn with_label(mut self, span: Span, text: impl Into<String>) -> Diagnostic {
        self.0.labels.push(Label {
            span,
            text: text.into(),
            primary: false,
        });
        self
    }

    /// Sets the help text (an imperative fix).
    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.0.help = Some(help.into());
        self
    }

    /// Sets the note (the rule behind the diagnostic).
    pub fn with_note(mut self, note: impl Into<String>) -> Diagnostic {
        self.0.note = Some(note.into());
        self
    }

    /// The stable code, e.g. `hfc::degree::mismatch`.
    pub fn code(&self) -> &'static str {
        self.0.code.name
    }

    /// Error or warning.
    pub fn severity(&self) -> Severity {
        self.0.code.severity
    }

    /// The one-line message.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The file the labels point into.
    pub fn file(&self) -> FileId {
        self.0.file
    }

    /// The labels, primary first.
    pub fn labels(&self) -> &[Label] {
        &self.0.labels
    }

    /// The primary span.
    pub fn span(&self) -> Span {
        self.0.labels[0].span
    }

    /// The help text.
    pub fn help(&self) -> Option<&str> {
        self.0.help.as_deref()
    }

    /// The note.
    pub fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }
}

/// The diagnostics of one run of the pipeline.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// No diagnostics.
    pub fn new() -> Diagnostics {
        Diagnostics::default()
    }

    /// Adds one.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    /// Whether any is an error.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity() == Severity::Error)
    }

    /// The number of errors.
    pub fn error_count(&self) -> usize {
        self.errors().count()
    }

    /// The errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items
            .iter()
            .filter(|d| d.severity() == Severity::Error)
    }

    /// All of them.
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Sorts by file, then position (stable, so equal positions keep the order of discovery).
    pub fn sort(&mut self) {
        self.items
            .sort_by_key(|d| (d.file(), d.span().start, d.span().end));
    }
}

impl Extend<Diagnostic> for Diagnostics {
    fn extend<T: IntoIterator<Item = Diagnostic>>(&mut self, iter: T) {
        self.items.extend(iter);
    }
}

/// "`a`, `b` or `c`".
pub(crate) fn one_of(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// The closest of `candidates` to `word`, if close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|&(score, c)| score > 0.8 && c != word)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diagnostic_is_one_pointer_wide() {
        assert_eq!(size_of::<Diagnostic>(), size_of::<usize>());
    }

    #[test]
    fn suggestions_find_typos_only() {
        let names = ["factor", "fit", "loss"];
        assert_eq!(did_you_mean("factr", names), Some("factor"));
        assert_eq!(did_you_mean("zzz", names), None);
    }
}
