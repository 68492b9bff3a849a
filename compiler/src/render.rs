//! Rendering diagnostics for people (miette's graphical report) and for scripts (JSON).
//!
//! The CLI and the golden tests call the same functions, so the tests check exactly what
//! users read. The library decides nothing about terminals: the caller says whether to use
//! colour and how wide to wrap.

use std::fmt;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, SourceCode};
use serde_json::{Value, json};

use crate::diagnostics::{Diagnostic, Diagnostics, Severity};
use crate::source::SourceDb;

/// How to render for people.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    /// ANSI colours (only on a terminal).
    pub color: bool,
    /// Wrap width in columns.
    pub width: usize,
}

impl Style {
    /// No colour, 80 columns: what tests and pipes get.
    pub fn plain() -> Style {
        Style {
            color: false,
            width: 80,
        }
    }
}

/// Renders one diagnostic as miette's graphical report, followed by its note.
pub fn render(db: &SourceDb, diagnostic: &Diagnostic, style: Style) -> String {
    let theme = if style.color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(style.width)
        .with_links(false)
        .with_word_splitter(textwrap::WordSplitter::NoHyphenation)
        .without_syntax_highlighting();
    let source = db.source(diagnostic.file());
    let report = Report {
        diagnostic,
        source: Source {
            name: source.name(),
            text: source.text(),
        },
    };
    let mut out = String::new();
    if handler.render_report(&mut out, &report).is_err() {
        // miette only fails on a broken formatter; fall back to one line.
        out = format!(
            "{}: {}\n",
            diagnostic.severity().as_str(),
            diagnostic.message()
        );
    }
    if let Some(note) = diagnostic.note() {
        let options = textwrap::Options::new(style.width.saturating_sub(2))
            .initial_indent("  note: ")
            .subsequent_indent("        ")
            .word_splitter(textwrap::WordSplitter::NoHyphenation);
        out.push_str(&textwrap::fill(note, options));
        out.push('\n');
    }
    out
}

/// Renders all diagnostics, each followed by a blank line, and a summary line.
pub fn render_all(db: &SourceDb, diagnostics: &Diagnostics, style: Style) -> String {
    let mut out = String::new();
    for d in diagnostics.iter() {
        out.push_str(&render(db, d, style));
        out.push('\n');
    }
    let errors = diagnostics.error_count();
    let warnings = diagnostics.len() - errors;
    if errors + warnings > 0 {
        out.push_str(&summary(errors, warnings));
        out.push('\n');
    }
    out
}

/// "2 errors, 1 warning".
pub fn summary(errors: usize, warnings: usize) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    match (errors, warnings) {
        (0, w) => plural(w, "warning"),
        (e, 0) => plural(e, "error"),
        (e, w) => format!("{}, {}", plural(e, "error"), plural(w, "warning")),
    }
}

/// One diagnostic as the JSON object of the `hfc check --json` contract:
/// `{"code", "severity", "message", "file", "line", "column", "help"}` (plus `"note"` and
/// `"end_line"`/`"end_column"`).
pub fn to_json(db: &SourceDb, diagnostic: &Diagnostic) -> Value {
    let source = db.source(diagnostic.file());
    let span = diagnostic.span();
    let start = source.line_col(span.start);
    let end = source.line_col(span.end);
    json!({
        "code": diagnostic.code(),
        "severity": diagnostic.severity().as_str(),
        "message": diagnostic.message(),
        "file": source.name(),
        "line": start.line,
        "column": start.column,
        "end_line": end.line,
        "end_column": end.column,
        "help": diagnostic.help(),
        "note": diagnostic.note(),
    })
}

struct Source<'a> {
    name: &'a str,
    text: &'a str,
}

impl SourceCode for Source<'_> {
    fn read_span<'b>(
        &'b self,
        span: &miette::SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'b> + 'b>, miette::MietteError> {
        let contents = self
            .text
            .read_span(span, context_lines_before, context_lines_after)?;
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.name.to_string(),
            contents.data(),
            *contents.span(),
            contents.line(),
            contents.column(),
            contents.line_count(),
        )))
    }
}

struct Report<'a> {
    diagnostic: &'a Diagnostic,
    source: Source<'a>,
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.diagnostic.message())
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.diagnostic.message())
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.diagnostic.code()))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.severity() {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.diagnostic
            .help()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let text_len = self.source.text.len();
        Some(Box::new(self.diagnostic.labels().iter().map(move |l| {
            let start = (l.span.start as usize).min(text_len);
            let len = (l.span.len()).min(text_len - start);
            if l.primary {
                LabeledSpan::new_primary_with_span(Some(l.text.clone()), (start, len))
            } else {
                LabeledSpan::new_with_span(Some(l.text.clone()), (start, len))
            }
        })))
    }
}
