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

#[cfg(test)]
mod tests {
    //! The syntax tree of each construct, and the precedence table, one line per rule.

    use super::ast::{Arg, DimRef, Expr, ExprKind, IndexItem, Item, Relation, Stmt};
    use super::*;

    fn parse_text(text: &str) -> (ast::File, Vec<SyntaxError>) {
        parse(&SourceFile::new(FileId(0), "t.hfm", text))
    }

    /// The expression of `param p = <text>;`, as an S-expression.
    fn expr(text: &str) -> String {
        let (file, errors) = parse_text(&format!("model m {{ param p = {text}; }}"));
        assert!(errors.is_empty(), "{text}: {errors:?}");
        let Some(Item::Model(model)) = file.items.first() else {
            panic!("no model");
        };
        let Some(Stmt::Param(p)) = model.stmts.first() else {
            panic!("no param");
        };
        sexp(&p.value)
    }

    fn sexp(e: &Expr) -> String {
        let args = |args: &[Arg]| -> Vec<String> {
            args.iter()
                .map(|a| match &a.name {
                    Some(n) => format!("{}={}", n.name, sexp(&a.value)),
                    None => sexp(&a.value),
                })
                .collect()
        };
        match &e.kind {
            ExprKind::Number(v) => format!("{v}"),
            ExprKind::Name(n) => n.clone(),
            ExprKind::Call {
                callee,
                args: a,
                params,
            } => {
                let mut parts = vec![callee.name.clone()];
                parts.extend(args(a));
                if !params.is_empty() {
                    parts.push(";".into());
                    parts.extend(args(params));
                }
                format!("(call {})", parts.join(" "))
            }
            ExprKind::Binary { op, lhs, rhs, .. } => {
                format!("({} {} {})", op.symbol(), sexp(lhs), sexp(rhs))
            }
            ExprKind::Neg(e) => format!("(neg {})", sexp(e)),
            ExprKind::Sum { index, body } => format!("(sum {} {})", index.name, sexp(body)),
            ExprKind::Transpose(e) => format!("(' {})", sexp(e)),
            ExprKind::Index { base, items } => {
                let items: Vec<String> = items
                    .iter()
                    .map(|i| match i {
                        IndexItem::All(_) => ":".into(),
                        IndexItem::Var(v) => v.name.clone(),
                        IndexItem::Fixed { value, .. } => value.to_string(),
                    })
                    .collect();
                format!("(index {} {})", sexp(base), items.join(" "))
            }
            ExprKind::Error => "error".into(),
        }
    }

    #[test]
    fn precedence_and_associativity() {
        let rules = [
            ("a + b * c", "(+ a (* b c))"),
            ("a - b - c", "(- (- a b) c)"),
            ("a / b * c", "(* (/ a b) c)"),
            ("a ^ b ^ c", "(^ a (^ b c))"),
            ("-a ^ 2", "(neg (^ a 2))"),
            ("2 * -a", "(* 2 (neg a))"),
            ("-U'", "(neg (' U))"),
            ("U * V'", "(* U (' V))"),
            ("U[:, i]'", "(' (index U : i))"),
            ("(a + b) * c", "(* (+ a b) c)"),
            // `sum(i)` binds the product after it, not the sum.
            (
                "lambda * sum(i) a * b + c",
                "(+ (* lambda (sum i (* a b))) c)",
            ),
            ("sum(i) sum(j) a", "(sum i (sum j a))"),
            (
                "norm2(U[:, i])^2 * norm1(V)",
                "(* (^ (call norm2 (index U : i)) 2) (call norm1 V))",
            ),
            ("elastic(x; g = 0.5)", "(call elastic x ; g=0.5)"),
            ("dropout(0.5, adaptive)", "(call dropout 0.5 adaptive)"),
            ("cp(A, B, C)", "(call cp A B C)"),
            ("1e-3 * .5", "(* 0.001 0.5)"),
            ("relu(X * W1) * W2'", "(* (call relu (* X W1)) (' W2))"),
        ];
        for (text, want) in rules {
            assert_eq!(expr(text), want, "{text}");
        }
    }

    #[test]
    fn every_statement_builds_its_node() {
        let text = r#"
            import "std/norms.hfm";
            norm elastic(x; g) = norm2(x) + g * norm1(x);
            model m {
                param lambda = 1.0;
                data Y : [m, n] = load("Y.npy");
                data X : [N, 3];
                factor U : [m, r] >= 0;
                fit Y ~ U * U';
                loss huber(delta = 0.5) on observed(Y);
                reg lambda * sum(i) norm2(U[:, i])^2;
                solve { rank <= 10; tol = 1e-8; }
                norm local(x) = norm1(x);
            }
        "#;
        let (file, errors) = parse_text(text);
        assert!(errors.is_empty(), "{errors:?}");
        assert!(matches!(&file.items[0], Item::Import(i) if i.path.value == "std/norms.hfm"));
        assert!(
            matches!(&file.items[1], Item::Norm(n) if n.name.name == "elastic" && n.params.len() == 1)
        );
        let Item::Model(model) = &file.items[2] else {
            panic!("no model");
        };
        let kinds: Vec<&str> = model
            .stmts
            .iter()
            .map(|s| match s {
                Stmt::Param(_) => "param",
                Stmt::Data(_) => "data",
                Stmt::Factor(_) => "factor",
                Stmt::Fit(_) => "fit",
                Stmt::Loss(_) => "loss",
                Stmt::Reg(_) => "reg",
                Stmt::Solve(_) => "solve",
                Stmt::Norm(_) => "norm",
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "param", "data", "data", "factor", "fit", "loss", "reg", "solve", "norm"
            ]
        );
        let Stmt::Data(y) = &model.stmts[1] else {
            panic!()
        };
        assert_eq!(
            y.source.as_ref().map(|s| s.path.value.as_str()),
            Some("Y.npy")
        );
        let Stmt::Data(x) = &model.stmts[2] else {
            panic!()
        };
        assert!(x.source.is_none());
        assert!(matches!(x.shape.dims[1], DimRef::Fixed { value: 3, .. }));
        let Stmt::Factor(u) = &model.stmts[3] else {
            panic!()
        };
        assert!(u.nonneg.is_some());
        let Stmt::Loss(loss) = &model.stmts[5] else {
            panic!()
        };
        assert_eq!(loss.args.len(), 1);
        assert_eq!(
            loss.mask.as_ref().map(|m| m.target.name.as_str()),
            Some("Y")
        );
        let Stmt::Solve(solve) = &model.stmts[7] else {
            panic!()
        };
        let relations: Vec<Relation> = solve.options.iter().map(|o| o.relation).collect();
        assert_eq!(relations, [Relation::Le, Relation::Eq]);
    }

    #[test]
    fn spans_cover_their_text() {
        let text = "model m { reg 2 * (norm1(U) + norm2(V)); }";
        let (file, _) = parse_text(text);
        let Some(Item::Model(model)) = file.items.first() else {
            panic!()
        };
        let Stmt::Reg(reg) = &model.stmts[0] else {
            panic!()
        };
        let source = SourceFile::new(FileId(0), "t", text);
        assert_eq!(source.slice(reg.expr.span), "2 * (norm1(U) + norm2(V))");
        let ExprKind::Binary { rhs, op_span, .. } = &reg.expr.kind else {
            panic!()
        };
        assert_eq!(source.slice(rhs.span), "(norm1(U) + norm2(V))");
        assert_eq!(source.slice(*op_span), "*");
    }

    #[test]
    fn broken_statements_are_recorded_and_the_rest_parses() {
        let (file, errors) =
            parse_text("model m { factor U [m, r]; factr V : [n, r]; fit Y ~ U; }");
        assert_eq!(errors.len(), 2);
        let Some(Item::Model(model)) = file.items.first() else {
            panic!()
        };
        assert_eq!(model.stmts.len(), 1);
        let declared: Vec<&str> = model
            .recovered
            .iter()
            .filter_map(|r| r.declared.as_ref().map(|d| d.name.as_str()))
            .collect();
        assert_eq!(declared, ["U", "V"]);
    }

    #[test]
    fn the_keyword_list_is_the_grammars() {
        for kw in STATEMENT_KEYWORDS.iter().chain(ITEM_KEYWORDS) {
            let (_, errors) = parse_text(&format!("model m {{ param {kw} = 1; }}"));
            assert!(!errors.is_empty(), "`{kw}` should be reserved");
        }
    }
}
