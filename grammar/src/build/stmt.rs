//! Statements inside a model.

use pest::iterators::Pair;

use super::{Builder, Children, ident, span_of, string_lit};
use crate::ast;
use crate::error::SyntaxErrorKind;
use crate::parser::Rule;
use crate::span::Span;

impl Builder<'_> {
    /// Builds one statement; `None` only if the grammar and the builder disagree.
    pub(super) fn stmt(&self, pair: Pair<'_, Rule>) -> Option<ast::Stmt> {
        Some(match pair.as_rule() {
            Rule::param_decl => ast::Stmt::Param(self.param_decl(pair)?),
            Rule::data_decl => ast::Stmt::Data(self.data_decl(pair)?),
            Rule::factor_decl => ast::Stmt::Factor(self.factor_decl(pair)?),
            Rule::fit_decl => ast::Stmt::Fit(self.fit_decl(pair)?),
            Rule::loss_decl => ast::Stmt::Loss(self.loss_decl(pair)?),
            Rule::reg_decl => ast::Stmt::Reg(self.reg_decl(pair)?),
            Rule::solve_decl => ast::Stmt::Solve(self.solve_decl(pair)),
            Rule::norm_decl => ast::Stmt::Norm(self.norm_def(pair)?),
            _ => return None,
        })
    }

    fn param_decl(&self, pair: Pair<'_, Rule>) -> Option<ast::ParamDecl> {
        let span = span_of(&pair);
        let mut c = Children::of(pair);
        let name = ident(&c.next_if(Rule::ident)?);
        let value = self.expr(c.next_if(Rule::expr)?);
        Some(ast::ParamDecl { name, value, span })
    }

    fn data_decl(&self, pair: Pair<'_, Rule>) -> Option<ast::DataDecl> {
        let span = span_of(&pair);
        let mut c = Children::of(pair);
        let name = ident(&c.next_if(Rule::ident)?);
        let shape = self.shape(c.next_if(Rule::shape)?);
        let source = c.next_if(Rule::source).and_then(|p| {
            let span = span_of(&p);
            let mut c = Children::of(p);
            let loader = ident(&c.next_if(Rule::ident)?);
            let path = string_lit(&c.next_if(Rule::string)?);
            Some(ast::Source { loader, path, span })
        });
        Some(ast::DataDecl {
            name,
            shape,
            source,
            span,
        })
    }

    fn factor_decl(&self, pair: Pair<'_, Rule>) -> Option<ast::FactorDecl> {
        let span = span_of(&pair);
        let mut c = Children::of(pair);
        let name = ident(&c.next_if(Rule::ident)?);
        let shape = self.shape(c.next_if(Rule::shape)?);
        let nonneg = c.next_if(Rule::cone).map(|p| span_of(&p));
        Some(ast::FactorDecl {
            name,
            shape,
            nonneg,
            span,
        })
    }

    fn shape(&self, pair: Pair<'_, Rule>) -> ast::Shape {
        let span = span_of(&pair);
        let dims = pair
            .into_inner()
            .map(|d| match d.as_rule() {
                Rule::integer => ast::DimRef::Fixed {
                    value: self.integer(&d),
                    span: span_of(&d),
                },
                _ => ast::DimRef::Named(ident(&d)),
            })
            .collect();
        ast::Shape { dims, span }
    }

    /// The value of an `integer` pair; out-of-range literals are reported and read as 0.
    pub(super) fn integer(&self, pair: &Pair<'_, Rule>) -> u64 {
        pair.as_str().parse().unwrap_or_else(|_| {
            self.error(
                SyntaxErrorKind::NumberOutOfRange {
                    text: pair.as_str().to_string(),
                },
                span_of(pair),
            );
            0
        })
    }

    fn fit_decl(&self, pair: Pair<'_, Rule>) -> Option<ast::FitStmt> {
        let span = span_of(&pair);
        let mut c = Children::of(pair);
        let target = ident(&c.next_if(Rule::ident)?);
        let map = self.expr(c.next_if(Rule::expr)?);
        Some(ast::FitStmt { target, map, span })
    }

    fn loss_decl(&self, pair: Pair<'_, Rule>) -> Option<ast::LossStmt> {
        let span = span_of(&pair);
        let mut c = Children::of(pair);
        let name = ident(&c.next_if(Rule::ident)?);
        let args = c
            .next_if(Rule::args)
            .map(|a| self.args(a))
            .unwrap_or_default();
        let mask = c.next_if(Rule::mask).and_then(|m| {
            let span = span_of(&m);
            let mut c = Children::of(m);
            let kind = ident(&c.next_if(Rule::ident)?);
            let target = ident(&c.next_if(Rule::ident)?);
            Some(ast::Mask { kind, target, span })
        });
        Some(ast::LossStmt {
            name,
            args,
            mask,
            span,
        })
    }

    fn reg_decl(&self, pair: Pair<'_, Rule>) -> Option<ast::RegStmt> {
        let span = span_of(&pair);
        let mut c = Children::of(pair);
        let expr = self.expr(c.next_if(Rule::expr)?);
        Some(ast::RegStmt { expr, span })
    }

    fn solve_decl(&self, pair: Pair<'_, Rule>) -> ast::SolveBlock {
        let span = span_of(&pair);
        let open = self.brace_after(Span::new(span.start as usize, span.start as usize + 5));
        let mut options = Vec::new();
        for child in Children::of(pair).rest() {
            match child.as_rule() {
                Rule::solve_option => options.extend(self.solve_option(child)),
                Rule::bad_option => self.bad_option(&child),
                Rule::open_comment => self.open_comment(&child),
                Rule::unclosed => self.error(
                    SyntaxErrorKind::Unclosed {
                        open,
                        what: "solve block",
                    },
                    span_of(&child),
                ),
                _ => {}
            }
        }
        ast::SolveBlock { options, span }
    }

    fn solve_option(&self, pair: Pair<'_, Rule>) -> Option<ast::SolveOption> {
        let span = span_of(&pair);
        let mut c = Children::of(pair);
        let name = ident(&c.next_if(Rule::ident)?);
        let relation = match c.next_if(Rule::relation)?.as_str() {
            "<=" => ast::Relation::Le,
            _ => ast::Relation::Eq,
        };
        let value = self.expr(c.next_if(Rule::expr)?);
        Some(ast::SolveOption {
            name,
            relation,
            value,
            span,
        })
    }
}
