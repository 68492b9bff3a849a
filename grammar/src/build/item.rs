//! Top-level items: `import`, `norm` and `model`.

use pest::iterators::Pair;

use super::{Builder, Children, ident, span_of, string_lit};
use crate::ast;
use crate::error::SyntaxErrorKind;
use crate::parser::Rule;
use crate::span::Span;

impl Builder<'_> {
    pub(super) fn import(&self, pair: Pair<'_, Rule>) -> Option<ast::Import> {
        let span = span_of(&pair);
        let mut c = Children::of(pair);
        let path = string_lit(&c.next_if(Rule::string)?);
        Some(ast::Import { path, span })
    }

    pub(super) fn norm_def(&self, pair: Pair<'_, Rule>) -> Option<ast::NormDef> {
        let span = span_of(&pair);
        let mut c = Children::of(pair);
        let name = ident(&c.next_if(Rule::ident)?);
        let arg = ident(&c.next_if(Rule::ident)?);
        let params = match c.next_if(Rule::norm_params) {
            Some(p) => p.into_inner().map(|p| ident(&p)).collect(),
            None => Vec::new(),
        };
        let body = self.expr(c.next_if(Rule::expr)?);
        Some(ast::NormDef {
            name,
            arg,
            params,
            body,
            span,
        })
    }

    pub(super) fn model(&self, pair: Pair<'_, Rule>) -> Option<ast::Model> {
        let span = span_of(&pair);
        let mut c = Children::of(pair);
        let name = ident(&c.next_if(Rule::ident)?);
        let open = self.brace_after(name.span);
        let mut stmts = Vec::new();
        let mut recovered = Vec::new();
        // An unterminated comment swallows the closing brace; it is reported once, as such.
        let mut open_comment = false;
        for child in c.rest() {
            match child.as_rule() {
                Rule::model_end => {}
                Rule::unclosed if open_comment => {}
                Rule::unclosed => self.error(
                    SyntaxErrorKind::Unclosed {
                        open,
                        what: "model",
                    },
                    span_of(&child),
                ),
                Rule::open_comment => {
                    open_comment = true;
                    self.open_comment(&child);
                }
                Rule::bad_stmt => recovered.extend(self.bad_stmt(&child)),
                _ => {
                    if let Some(stmt) = self.stmt(child) {
                        stmts.push(stmt);
                    }
                }
            }
        }
        Some(ast::Model {
            name,
            stmts,
            recovered,
            span,
        })
    }

    pub(super) fn open_comment(&self, pair: &Pair<'_, Rule>) {
        let start = pair.as_span().start();
        self.error(
            SyntaxErrorKind::UnterminatedComment,
            Span::new(start, start + 2),
        );
    }

    /// The span of the first `{` after `after` (the opening brace of a block).
    pub(super) fn brace_after(&self, after: Span) -> Span {
        let from = after.end as usize;
        match self.text.get(from..).and_then(|rest| rest.find('{')) {
            Some(i) => Span::new(from + i, from + i + 1),
            None => after,
        }
    }
}
