//! From pest's pairs to the typed AST, one file per construct (`item`, `stmt`, `expr`), plus
//! `recover`, which turns the text swallowed by a catch-all rule into a precise error.
//!
//! The builder trusts the grammar: a pair of rule `factor_decl` has the children the grammar
//! says it has. Where it must look at a child it uses [`Children`], which returns `None`
//! rather than panicking if the grammar and the builder ever disagree; such a disagreement
//! then shows up as a missing statement in tests, never as a crash on user input.

mod expr;
mod item;
mod recover;
mod stmt;

use std::cell::RefCell;

use pest::Parser;
use pest::iterators::{Pair, Pairs};
use pest::pratt_parser::PrattParser;

use crate::ast;
use crate::error::{SyntaxError, SyntaxErrorKind};
use crate::parser::{HfmParser, Rule};
use crate::span::Span;

/// Builds the AST of a whole file.
pub(crate) fn build_file(text: &str) -> (ast::File, Vec<SyntaxError>) {
    // Needed for the expected-token lists of the targeted re-parses in `recover`.
    pest::set_error_detail(true);
    let builder = Builder::new(text);
    let file = match HfmParser::parse(Rule::file, text) {
        Ok(mut pairs) => match pairs.next() {
            Some(file) => builder.file(file),
            None => ast::File::default(),
        },
        // The catch-alls make this unreachable for ordinary text; only pest's stack guard
        // (absurdly deep nesting) lands here.
        Err(err) => {
            let at = builder.error_from_pest(err, 0, "file").span;
            builder.error(
                SyntaxErrorKind::TooDeep {
                    limit: expr::MAX_PAREN_DEPTH,
                },
                at,
            );
            ast::File::default()
        }
    };
    let mut errors = builder.errors.into_inner();
    errors.sort_by_key(|e| (e.span.start, e.span.end));
    (file, errors)
}

/// The state of one build: the text, the expression parser and the errors found so far.
pub(crate) struct Builder<'t> {
    text: &'t str,
    pratt: PrattParser<Rule>,
    errors: RefCell<Vec<SyntaxError>>,
}

impl<'t> Builder<'t> {
    fn new(text: &'t str) -> Builder<'t> {
        Builder {
            text,
            pratt: expr::pratt_parser(),
            errors: RefCell::new(Vec::new()),
        }
    }

    fn push(&self, error: SyntaxError) {
        self.errors.borrow_mut().push(error);
    }

    fn error(&self, kind: SyntaxErrorKind, span: Span) {
        self.push(SyntaxError { kind, span });
    }

    fn file(&self, pair: Pair<'_, Rule>) -> ast::File {
        let mut items = Vec::new();
        for child in pair.into_inner() {
            match child.as_rule() {
                Rule::import_decl => items.extend(self.import(child).map(ast::Item::Import)),
                Rule::norm_decl => items.extend(self.norm_def(child).map(ast::Item::Norm)),
                Rule::model_decl => items.extend(self.model(child).map(ast::Item::Model)),
                Rule::open_comment => self.open_comment(&child),
                Rule::bad_item => self.bad_item(&child),
                _ => {}
            }
        }
        ast::File { items }
    }
}

/// The span of a pair.
fn span_of(pair: &Pair<'_, Rule>) -> Span {
    let s = pair.as_span();
    Span::new(s.start(), s.end())
}

/// Typed access to a pair's children, skipping the keyword tokens the grammar keeps.
struct Children<'i> {
    inner: Pairs<'i, Rule>,
}

impl<'i> Children<'i> {
    fn of(pair: Pair<'i, Rule>) -> Children<'i> {
        Children {
            inner: pair.into_inner(),
        }
    }

    /// The next child if it has rule `rule` (consumed only then).
    fn next_if(&mut self, rule: Rule) -> Option<Pair<'i, Rule>> {
        let mut peek = self.inner.clone();
        let found = peek.by_ref().find(|p| !is_keyword_rule(p.as_rule()))?;
        if found.as_rule() == rule {
            self.inner = peek;
            Some(found)
        } else {
            None
        }
    }

    /// Every remaining child.
    fn rest(self) -> impl Iterator<Item = Pair<'i, Rule>> {
        self.inner.filter(|p| !is_keyword_rule(p.as_rule()))
    }
}

fn is_keyword_rule(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::kw_model
            | Rule::kw_param
            | Rule::kw_data
            | Rule::kw_factor
            | Rule::kw_fit
            | Rule::kw_loss
            | Rule::kw_reg
            | Rule::kw_solve
            | Rule::kw_norm
            | Rule::kw_import
            | Rule::kw_sum
            | Rule::kw_on
            | Rule::EOI
    )
}

fn ident(pair: &Pair<'_, Rule>) -> ast::Ident {
    ast::Ident {
        name: pair.as_str().to_string(),
        span: span_of(pair),
    }
}

fn string_lit(pair: &Pair<'_, Rule>) -> ast::StrLit {
    let raw = pair.as_str();
    let inner = raw
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(raw);
    let mut value = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => value.push('\n'),
                Some('t') => value.push('\t'),
                Some(other) => value.push(other),
                None => {}
            }
        } else {
            value.push(c);
        }
    }
    ast::StrLit {
        value,
        span: span_of(pair),
    }
}
