//! Error recovery: the text a catch-all rule swallowed becomes one precise error.
//!
//! The catch-alls only find *where* a piece of text stops making sense. To say *what* was
//! expected, the swallowed text is parsed again with the rule its first word asks for (a text
//! starting with `factor` is parsed as a factor declaration), and pest's list of what it would
//! have accepted at the furthest point is translated into friendly names by [`expected_of`].

use std::collections::BTreeSet;

use pest::Parser;
use pest::error::{Error as PestError, ErrorVariant, InputLocation};
use pest::iterators::Pair;

use super::{Builder, span_of};
use crate::STATEMENT_KEYWORDS;
use crate::ast;
use crate::error::{Expected, Found, SyntaxError, SyntaxErrorKind};
use crate::parser::{HfmParser, Rule};
use crate::span::Span;

/// The statement rules, by keyword, with the construct's name for messages.
const STATEMENT_RULES: &[(&str, Rule, &str)] = &[
    ("param", Rule::param_decl, "parameter declaration"),
    ("data", Rule::data_decl, "data declaration"),
    ("factor", Rule::factor_decl, "factor declaration"),
    ("fit", Rule::fit_decl, "fit statement"),
    ("loss", Rule::loss_decl, "loss statement"),
    ("reg", Rule::reg_decl, "regularizer"),
    ("solve", Rule::solve_decl, "solve block"),
    ("norm", Rule::norm_decl, "norm definition"),
];

const ITEM_RULES: &[(&str, Rule, &str)] = &[
    ("model", Rule::model_decl, "model"),
    ("norm", Rule::norm_decl, "norm definition"),
    ("import", Rule::import_decl, "import"),
];

impl Builder<'_> {
    /// Text at the top level that is no item.
    pub(super) fn bad_item(&self, pair: &Pair<'_, Rule>) {
        let span = span_of(pair);
        let text = pair.as_str();
        let word = leading_word(text);
        if let Some(&(_, rule, context)) = ITEM_RULES.iter().find(|(kw, ..)| *kw == word) {
            self.reparse(rule, span, context);
        } else if STATEMENT_KEYWORDS.contains(&word) {
            self.error(
                SyntaxErrorKind::StatementOutsideModel {
                    keyword: word.to_string(),
                },
                Span::new(span.start as usize, span.start as usize + word.len()),
            );
        } else {
            let word = if word.is_empty() {
                first_token(text)
            } else {
                word.to_string()
            };
            let len = word.len().max(1);
            self.error(
                SyntaxErrorKind::UnknownItem { word },
                Span::new(span.start as usize, span.start as usize + len),
            );
        }
    }

    /// A statement that did not parse. Returns what it seemed to be, for the model's record.
    pub(super) fn bad_stmt(&self, pair: &Pair<'_, Rule>) -> Option<ast::Recovered> {
        let span = span_of(pair);
        let text = pair.as_str();
        let word = leading_word(text);
        let keyword = STATEMENT_RULES.iter().find(|(kw, ..)| *kw == word);
        match keyword {
            Some(&(_, rule, context)) => self.reparse(rule, span, context),
            None if word.is_empty() => {
                let found = first_token(text);
                let len = found.len().max(1);
                self.error(
                    SyntaxErrorKind::Unexpected {
                        expected: STATEMENT_KEYWORDS
                            .iter()
                            .map(|k| Expected::Token(k.to_string()))
                            .collect(),
                        found: Found::Token(found),
                        context: "model",
                    },
                    Span::new(span.start as usize, span.start as usize + len),
                );
            }
            None => self.error(
                SyntaxErrorKind::UnknownStatement {
                    word: word.to_string(),
                },
                Span::new(span.start as usize, span.start as usize + word.len()),
            ),
        }
        // What a broken statement seems to declare, so that uses of the name stay quiet.
        let declaring = match keyword {
            Some((kw, ..)) => matches!(*kw, "param" | "data" | "factor" | "norm"),
            None => !word.is_empty(),
        };
        let declared = declaring.then_some(()).and_then(|_| {
            let rest = &text[word.len()..];
            let skipped = rest.len() - rest.trim_start().len();
            let name = leading_word(rest.trim_start());
            let start = span.start as usize + word.len() + skipped;
            (!name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit())).then(|| {
                ast::Ident {
                    name: name.to_string(),
                    span: Span::new(start, start + name.len()),
                }
            })
        });
        Some(ast::Recovered {
            word: word.to_string(),
            keyword: keyword.map(|(kw, ..)| kw.to_string()),
            declared,
            span,
        })
    }

    /// An option in a solve block that did not parse.
    pub(super) fn bad_option(&self, pair: &Pair<'_, Rule>) {
        self.reparse(Rule::solve_option, span_of(pair), "solve option");
    }

    /// Parses the text under `span` again with `rule` and reports where and why it fails.
    fn reparse(&self, rule: Rule, span: Span, context: &'static str) {
        let chunk = &self.text[span.range()];
        match HfmParser::parse(rule, chunk) {
            Err(err) => self.push(self.error_from_pest(err, span.start as usize, context)),
            Ok(pairs) => {
                // The rule accepted a prefix of the text: what follows it is the problem.
                let consumed = pairs.last().map(|p| p.as_span().end()).unwrap_or(0);
                let consumed_end = (span.start as usize + consumed).min(span.end as usize);
                let rest = &self.text[consumed_end..span.end as usize];
                let at = consumed_end + (rest.len() - rest.trim_start().len());
                self.push(SyntaxError {
                    kind: SyntaxErrorKind::Unexpected {
                        expected: vec![Expected::Named("the end of the statement")],
                        found: self.found_at(at),
                        context,
                    },
                    span: self.token_span(at),
                });
            }
        }
    }

    /// Translates a pest error (positions relative to `base`) into a syntax error.
    pub(super) fn error_from_pest(
        &self,
        err: PestError<Rule>,
        base: usize,
        context: &'static str,
    ) -> SyntaxError {
        let location = match err.location {
            InputLocation::Pos(p) => p,
            InputLocation::Span((s, _)) => s,
        };
        let mut expected = BTreeSet::new();
        // pest reports the failing rule's start as the location; its parse attempts know the
        // furthest point reached and what was tried there, which is what a person needs.
        let pos = match err.parse_attempts() {
            Some(attempts) if attempts.max_position >= location => {
                // At the failing rule's own position pest's positives are exact; further on,
                // the deepest rules of the attempts' call stacks are the best we have.
                match &err.variant {
                    ErrorVariant::ParsingError { positives, .. }
                        if attempts.max_position == location =>
                    {
                        expected.extend(positives.iter().filter_map(|r| expected_of(*r)));
                    }
                    _ => {
                        for stack in attempts.call_stacks() {
                            let deepest = stack.deepest.get_rule().copied();
                            expected.extend(deepest.and_then(expected_of));
                        }
                    }
                }
                for token in attempts.expected_tokens() {
                    // `ParsingToken` is not exported by pest; its Display is the literal.
                    if let Some(e) = expected_token(&token.to_string()) {
                        expected.insert(e);
                    }
                }
                attempts.max_position
            }
            _ => {
                if let ErrorVariant::ParsingError { positives, .. } = &err.variant {
                    expected.extend(positives.iter().filter_map(|r| expected_of(*r)));
                }
                location
            }
        };
        let pos = (base + pos).min(self.text.len());
        let expected = summarize(expected);
        let found = self.found_at(pos);
        let span = self.error_span(pos);
        SyntaxError {
            kind: SyntaxErrorKind::Unexpected {
                expected,
                found,
                context,
            },
            span,
        }
    }

    /// Where to point for an error at `pos`: the next token, or, when that token is on a
    /// later line, the point right after the previous token (a missing `;` is best shown
    /// where it belongs, not at the next line's first word).
    fn error_span(&self, pos: usize) -> Span {
        let prev_end = code_end_before(self.text, pos);
        let rest = &self.text[pos..];
        let next_start = pos + (rest.len() - rest.trim_start().len());
        if next_start < self.text.len() && self.text[prev_end..next_start].contains('\n') {
            Span::point(prev_end)
        } else {
            self.token_span(next_start)
        }
    }

    fn found_at(&self, pos: usize) -> Found {
        let rest = self.text.get(pos..).unwrap_or("");
        if rest.trim().is_empty() {
            Found::EndOfFile
        } else {
            Found::Token(first_token(rest.trim_start()))
        }
    }

    fn token_span(&self, pos: usize) -> Span {
        let rest = self.text.get(pos..).unwrap_or("");
        let len = first_token(rest).len();
        Span::new(pos, (pos + len).min(self.text.len()))
    }
}

/// The end of the last code before `pos`: trailing whitespace, comment-only lines and a
/// trailing `//` comment are skipped back over.
fn code_end_before(text: &str, pos: usize) -> usize {
    let mut end = text[..pos].trim_end().len();
    loop {
        let line_start = text[..end].rfind('\n').map_or(0, |i| i + 1);
        let line = &text[line_start..end];
        match line_comment_start(line) {
            Some(0) => {
                // A comment-only line: continue on the line above.
                if line_start == 0 {
                    return 0;
                }
                end = text[..line_start].trim_end().len();
            }
            Some(at) => return line_start + line[..at].trim_end().len(),
            None => return end,
        }
    }
}

/// Where a `//` comment starts on a line (outside string literals), after indentation.
fn line_comment_start(line: &str) -> Option<usize> {
    let indent = line.len() - line.trim_start().len();
    let mut in_string = false;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '"' if prev != '\\' => in_string = !in_string,
            '/' if !in_string && prev == '/' => {
                let start = i - 1;
                return Some(if start == indent { 0 } else { start });
            }
            _ => {}
        }
        prev = c;
    }
    None
}

/// The number at the start of `text` (`1e-6`, `2.5`), letters after it included.
fn leading_number(text: &str) -> &str {
    let bytes = text.as_bytes();
    let mut end = 0;
    while end < bytes.len() {
        let c = bytes[end];
        let exponent_sign =
            (c == b'-' || c == b'+') && end > 0 && matches!(bytes[end - 1], b'e' | b'E');
        if c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || exponent_sign {
            end += 1;
        } else {
            break;
        }
    }
    &text[..end]
}

/// The identifier-like word at the start of `text` (empty if it starts otherwise).
fn leading_word(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The first token of `text`: a word, a number, a two-character operator or one character.
fn first_token(text: &str) -> String {
    if text.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return leading_number(text).to_string();
    }
    let word = leading_word(text);
    if !word.is_empty() {
        return word.to_string();
    }
    for op in ["<=", ">=", "==", "*/", "/*", "//"] {
        if text.starts_with(op) {
            return op.to_string();
        }
    }
    text.chars()
        .next()
        .map(|c| c.to_string())
        .unwrap_or_default()
}

/// What a rule that pest wanted at the error position means to a person; `None` for rules
/// that say nothing useful there (whole statements, catch-alls, the file).
fn expected_of(rule: Rule) -> Option<Expected> {
    use Expected::{Named, Token};
    Some(match rule {
        Rule::ident => Named("a name"),
        Rule::number => Named("a number"),
        Rule::integer | Rule::zero => Named("an integer"),
        Rule::string => Named("a string"),
        Rule::expr | Rule::paren | Rule::call | Rule::neg | Rule::sum_prefix => {
            Named("an expression")
        }
        Rule::add => Token("+".into()),
        Rule::sub => Token("-".into()),
        Rule::mul => Token("*".into()),
        Rule::div => Token("/".into()),
        Rule::pow => Token("^".into()),
        Rule::transpose => Token("'".into()),
        Rule::index | Rule::shape => Token("[".into()),
        Rule::cone => Token(">=".into()),
        Rule::source => Named("a source such as `load(\"Y.npy\")`"),
        Rule::mask => Named("a mask such as `observed(Y)`"),
        Rule::args | Rule::arg | Rule::call_params => Named("an argument"),
        Rule::model_end => Token("}".into()),
        Rule::kw_model => Token("model".into()),
        Rule::kw_param => Token("param".into()),
        Rule::kw_data => Token("data".into()),
        Rule::kw_factor => Token("factor".into()),
        Rule::kw_fit => Token("fit".into()),
        Rule::kw_loss => Token("loss".into()),
        Rule::kw_reg => Token("reg".into()),
        Rule::kw_solve => Token("solve".into()),
        Rule::kw_norm => Token("norm".into()),
        Rule::kw_import => Token("import".into()),
        Rule::kw_on => Token("on".into()),
        Rule::kw_sum => Named("an expression"),
        _ => return None,
    })
}

/// A literal token pest tried, unless it is whitespace, a comment opener or part of a
/// keyword or number that [`expected_of`] already names.
fn expected_token(token: &str) -> Option<Expected> {
    const PUNCTUATION: &[&str] = &[
        ";", ",", ":", "=", "~", "(", ")", "[", "]", "{", "}", "<=", ">=", "+", "-", "*", "/", "^",
        "'", "\"",
    ];
    PUNCTUATION
        .contains(&token)
        .then(|| Expected::Token(token.to_string()))
}

/// Folds the five arithmetic operators into one entry, so that "expected `;`, `+`, `-`, ..."
/// reads "expected `;` or an operator".
fn summarize(expected: BTreeSet<Expected>) -> Vec<Expected> {
    let ops: Vec<Expected> = ["+", "-", "*", "/", "^"]
        .iter()
        .map(|o| Expected::Token(o.to_string()))
        .collect();
    let mut list: Vec<Expected> = expected.into_iter().collect();
    if ops.iter().all(|o| list.contains(o)) {
        list.retain(|e| {
            !ops.contains(e)
                && *e != Expected::Token("'".into())
                && *e != Expected::Token("[".into())
        });
        list.push(Expected::Named("an operator"));
    }
    // An expression subsumes the tokens that can start one.
    if list.contains(&Expected::Named("an expression")) {
        list.retain(|e| {
            !matches!(e, Expected::Named("a name") | Expected::Named("a number"))
                && *e != Expected::Token("(".into())
                && *e != Expected::Token("-".into())
        });
    }
    list
}
