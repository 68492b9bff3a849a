//! `hfc-grammar`: the syntax of `.hfm` models.
//!
//! One entry point, [`parse`], turns a [`SourceFile`] into a typed [`ast::File`] and a list of
//! [`SyntaxError`]s. Parsing never fails: the grammar (`hfm.pest`) has catch-all rules at the
//! item, statement and option levels, so a file with several mistakes gets one error for each
//! and an AST of everything else.
//!
//! Invariants (see ARCHITECTURE.md):
//! - this is the only crate that knows pest; no pest type appears in the public API, and no
//!   error ever names a grammar rule;
//! - it knows nothing of degrees, shapes, atoms or the runtime: it reads text, nothing more.

#![deny(missing_docs)]

pub mod ast;
mod build;
mod error;
mod span;

pub use error::{Expected, Found, SyntaxError, SyntaxErrorKind};
pub use span::{FileId, LineCol, SourceFile, Span};

/// Keywords that begin a statement inside a model, in the order the docs list them.
pub const STATEMENT_KEYWORDS: &[&str] = &[
    "param", "data", "factor", "fit", "loss", "reg", "solve", "norm",
];

/// Keywords that begin a top-level item.
pub const ITEM_KEYWORDS: &[&str] = &["model", "norm", "import"];

/// Parses one file. Never fails: what cannot be read becomes a [`SyntaxError`] and is left
/// out of the tree. Errors come sorted by position.
pub fn parse(file: &SourceFile) -> (ast::File, Vec<SyntaxError>) {
    build::build_file(file.text())
}

mod parser {
    // The derive generates `Rule` and `HfmParser`; both stay private to this crate.
    #![allow(missing_docs)]
    #[derive(pest_derive::Parser)]
    #[grammar = "hfm.pest"]
    pub(crate) struct HfmParser;
}
