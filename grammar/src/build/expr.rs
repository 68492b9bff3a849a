//! Expressions: the grammar gives a flat sequence of operands and operators; pest's Pratt
//! parser orders them (precedence table in [`pratt_parser`]).
//!
//! Three limits keep later stages' recursion bounded whatever the input: at most
//! [`MAX_OPERANDS`] operands in one flat sequence, at most [`MAX_PAREN_DEPTH`] nested
//! parentheses, calls or indices, and trees at most [`MAX_DEPTH`] deep. Beyond them the
//! expression is reported once and replaced by [`ast::ExprKind::Error`].

use std::cell::Cell;

use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};

use super::{Builder, Children, ident, span_of};
use crate::ast::{self, Expr, ExprKind};
use crate::error::SyntaxErrorKind;
use crate::parser::Rule;

/// Most operands in one flat operator sequence.
pub(crate) const MAX_OPERANDS: usize = 1024;
/// Most nested parentheses, call arguments or indices.
pub(crate) const MAX_PAREN_DEPTH: usize = 64;
/// Deepest expression tree kept.
pub(crate) const MAX_DEPTH: u32 = 256;

thread_local! {
    static NESTING: Cell<usize> = const { Cell::new(0) };
}

/// The precedence table, lowest first:
/// `+ -` < `sum(i)` < `* /` < unary `-` < `^` (right) < postfix `'` and `[..]`.
///
/// `sum(i)` sits between `+` and `*` so that `lambda * sum(i) a * b + c` reads as
/// `(lambda * (sum(i) (a * b))) + c`, as the big-sigma notation does in mathematics.
pub(crate) fn pratt_parser() -> PrattParser<Rule> {
    PrattParser::new()
        .op(Op::infix(Rule::add, Assoc::Left) | Op::infix(Rule::sub, Assoc::Left))
        .op(Op::prefix(Rule::sum_prefix))
        .op(Op::infix(Rule::mul, Assoc::Left) | Op::infix(Rule::div, Assoc::Left))
        .op(Op::prefix(Rule::neg))
        .op(Op::infix(Rule::pow, Assoc::Right))
        .op(Op::postfix(Rule::transpose) | Op::postfix(Rule::index))
}

/// An expression under construction with its tree depth.
type Built = (Expr, u32);

fn leaf(kind: ExprKind, span: crate::span::Span) -> Built {
    (Expr { kind, span }, 1)
}

impl Builder<'_> {
    /// Builds an `expr` pair.
    pub(super) fn expr(&self, pair: Pair<'_, Rule>) -> Expr {
        let span = span_of(&pair);
        let nesting = NESTING.with(|n| n.get());
        let operands = pair.clone().into_inner().count();
        // Nesting stops at the limit (no deeper level is entered), so each overflow is
        // reported once, at the outermost expression that crosses it.
        let overflow = if nesting >= MAX_PAREN_DEPTH {
            Some(SyntaxErrorKind::TooDeep {
                limit: MAX_PAREN_DEPTH,
            })
        } else if operands > 2 * MAX_OPERANDS {
            Some(SyntaxErrorKind::TooLong {
                limit: MAX_OPERANDS,
            })
        } else {
            None
        };
        if let Some(kind) = overflow {
            self.error(kind, span);
            return Expr {
                kind: ExprKind::Error,
                span,
            };
        }
        NESTING.with(|n| n.set(nesting + 1));
        let too_deep = Cell::new(false);
        let (expr, _) = self
            .pratt
            .map_primary(|p| self.primary(p))
            .map_prefix(|op, (operand, depth)| {
                let span = span_of(&op).join(operand.span);
                let kind = match op.as_rule() {
                    Rule::sum_prefix => {
                        let index = Children::of(op)
                            .next_if(Rule::ident)
                            .map(|i| ident(&i))
                            .unwrap_or_else(|| ast::Ident {
                                name: String::new(),
                                span,
                            });
                        ExprKind::Sum {
                            index,
                            body: Box::new(operand),
                        }
                    }
                    _ => ExprKind::Neg(Box::new(operand)),
                };
                self.limit_depth((Expr { kind, span }, depth + 1), &too_deep)
            })
            .map_postfix(|(operand, depth), op| {
                let span = operand.span.join(span_of(&op));
                let kind = match op.as_rule() {
                    Rule::index => ExprKind::Index {
                        items: op.into_inner().map(|i| self.index_item(&i)).collect(),
                        base: Box::new(operand),
                    },
                    _ => ExprKind::Transpose(Box::new(operand)),
                };
                self.limit_depth((Expr { kind, span }, depth + 1), &too_deep)
            })
            .map_infix(|(lhs, ld), op, (rhs, rd)| {
                let op_kind = match op.as_rule() {
                    Rule::add => ast::BinaryOp::Add,
                    Rule::sub => ast::BinaryOp::Sub,
                    Rule::mul => ast::BinaryOp::Mul,
                    Rule::div => ast::BinaryOp::Div,
                    _ => ast::BinaryOp::Pow,
                };
                let span = lhs.span.join(rhs.span);
                let kind = ExprKind::Binary {
                    op: op_kind,
                    op_span: span_of(&op),
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                };
                self.limit_depth((Expr { kind, span }, ld.max(rd) + 1), &too_deep)
            })
            .parse(pair.into_inner());
        NESTING.with(|n| n.set(nesting));
        expr
    }

    /// Replaces a tree deeper than [`MAX_DEPTH`] by an error node (reported once per
    /// expression), so that no later stage recurses without bound.
    fn limit_depth(&self, built: Built, reported: &Cell<bool>) -> Built {
        if built.1 <= MAX_DEPTH {
            return built;
        }
        if !reported.replace(true) {
            self.error(
                SyntaxErrorKind::TooDeep {
                    limit: MAX_DEPTH as usize,
                },
                built.0.span,
            );
        }
        leaf(ExprKind::Error, built.0.span)
    }

    fn primary(&self, pair: Pair<'_, Rule>) -> Built {
        let span = span_of(&pair);
        match pair.as_rule() {
            Rule::number => {
                let value = match pair.as_str().parse::<f64>() {
                    Ok(v) if v.is_finite() => v,
                    _ => {
                        self.error(
                            SyntaxErrorKind::NumberOutOfRange {
                                text: pair.as_str().to_string(),
                            },
                            span,
                        );
                        0.0
                    }
                };
                leaf(ExprKind::Number(value), span)
            }
            Rule::ident => leaf(ExprKind::Name(pair.as_str().to_string()), span),
            Rule::paren => match Children::of(pair).next_if(Rule::expr) {
                Some(inner) => {
                    let inner = self.expr(inner);
                    leaf(inner.kind, span)
                }
                None => leaf(ExprKind::Error, span),
            },
            Rule::call => self.call(pair),
            _ => leaf(ExprKind::Error, span),
        }
    }

    fn call(&self, pair: Pair<'_, Rule>) -> Built {
        let span = span_of(&pair);
        let mut c = Children::of(pair);
        let Some(callee) = c.next_if(Rule::ident).map(|p| ident(&p)) else {
            return leaf(ExprKind::Error, span);
        };
        let args = c
            .next_if(Rule::args)
            .map(|a| self.args(a))
            .unwrap_or_default();
        let params = c
            .next_if(Rule::call_params)
            .and_then(|p| Children::of(p).next_if(Rule::args))
            .map(|a| self.args(a))
            .unwrap_or_default();
        leaf(
            ExprKind::Call {
                callee,
                args,
                params,
            },
            span,
        )
    }

    /// Builds an `args` pair: `a, name = b, ...`.
    pub(super) fn args(&self, pair: Pair<'_, Rule>) -> Vec<ast::Arg> {
        pair.into_inner()
            .filter_map(|arg| {
                let span = span_of(&arg);
                let mut c = Children::of(arg);
                let name = c.next_if(Rule::ident).map(|p| ident(&p));
                let value = self.expr(c.next_if(Rule::expr)?);
                Some(ast::Arg { name, value, span })
            })
            .collect()
    }

    fn index_item(&self, pair: &Pair<'_, Rule>) -> ast::IndexItem {
        let span = span_of(pair);
        match pair.as_rule() {
            Rule::slice_all => ast::IndexItem::All(span),
            Rule::integer => ast::IndexItem::Fixed {
                value: self.integer(pair),
                span,
            },
            _ => ast::IndexItem::Var(ident(pair)),
        }
    }
}
