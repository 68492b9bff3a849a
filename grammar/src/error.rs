//! Syntax errors as values.
//!
//! The grammar crate says *what* went wrong and *where*; the wording of the message a user
//! reads is the compiler's business (`hfc::diagnostics::syntax`), so that every message of
//! every stage is reviewed in one place. Nothing here ever mentions a pest rule name.

use crate::span::Span;

/// One syntax error.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntaxError {
    /// What went wrong.
    pub kind: SyntaxErrorKind,
    /// Where (the primary location).
    pub span: Span,
}

/// The kinds of syntax error.
#[derive(Clone, Debug, PartialEq)]
pub enum SyntaxErrorKind {
    /// Something else was found where one of `expected` was due.
    Unexpected {
        /// What would have been accepted, in a stable order.
        expected: Vec<Expected>,
        /// What was there instead.
        found: Found,
        /// The construct being read, e.g. "factor declaration".
        context: &'static str,
    },
    /// A statement inside a model begins with a word that starts no statement.
    UnknownStatement {
        /// The word.
        word: String,
    },
    /// Something at the top level that is not `model`, `norm` or `import`.
    UnknownItem {
        /// The first word (or character) of the text.
        word: String,
    },
    /// A model statement written outside any model.
    StatementOutsideModel {
        /// The statement's keyword.
        keyword: String,
    },
    /// A `{` that is never closed.
    Unclosed {
        /// The opening brace.
        open: Span,
        /// What it opened: "model" or "solve block".
        what: &'static str,
    },
    /// A `/*` comment without `*/`.
    UnterminatedComment,
    /// A number that is not finite as a 64-bit float, or an integer that does not fit.
    NumberOutOfRange {
        /// The literal as written.
        text: String,
    },
    /// An expression nested more deeply than the compiler accepts.
    TooDeep {
        /// The nesting limit.
        limit: usize,
    },
    /// An expression with more operands than the compiler accepts.
    TooLong {
        /// The most operands accepted.
        limit: usize,
    },
}

/// Something the parser would have accepted.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Expected {
    /// A literal token such as `;` or `model`.
    Token(String),
    /// A class of tokens, named for people: "a name", "a number", "an expression".
    Named(&'static str),
}

/// What the parser found instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// A token (a word, a number or one punctuation character).
    Token(String),
    /// The end of the file.
    EndOfFile,
}
