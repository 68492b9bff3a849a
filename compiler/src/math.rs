//! Expressions as readable mathematics (Unicode), for `hfc explain` and for messages.
//!
//! `lambda * sum(i) norm2(U[:, i]) * norm2(V[:, i])` reads `λ Σᵢ ‖Uᵢ‖₂ ‖Vᵢ‖₂`: columns picked
//! by the subnetwork index are written `Uᵢ` ([`Columns::Indexed`]) or, for the polar
//! problem's single column, `u` ([`Columns::Single`]). Atoms read by their catalog template.

use crate::catalog;
use crate::hir::{BinaryOp, Callee, Expr, ExprId, IndexKind, Model, Program};

/// How a column of a factor picked by the subnetwork index is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Columns {
    /// `Uᵢ`.
    Indexed,
    /// `u` (one column, no index); a whole factor also reads as its column.
    Single,
}

/// Renders `expr` of `model`.
pub fn render(program: &Program, model: &Model, expr: ExprId, columns: Columns) -> String {
    Printer {
        program,
        model,
        columns,
    }
    .expr(expr, 0)
}

/// A name as mathematics: Greek letters by name (`lambda` → `λ`).
pub fn symbol(name: &str) -> String {
    const GREEK: &[(&str, &str)] = &[
        ("alpha", "α"),
        ("beta", "β"),
        ("gamma", "γ"),
        ("delta", "δ"),
        ("epsilon", "ε"),
        ("eta", "η"),
        ("theta", "θ"),
        ("kappa", "κ"),
        ("lambda", "λ"),
        ("mu", "μ"),
        ("nu", "ν"),
        ("rho", "ρ"),
        ("sigma", "σ"),
        ("tau", "τ"),
    ];
    GREEK
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, g)| g.to_string())
        .unwrap_or_else(|| name.to_string())
}

/// The name of one column of factor `name` (`U` → `u`, `W1` → `w1`).
pub fn column_name(name: &str) -> String {
    name.to_lowercase()
}

/// The subscript form of an index variable (`i` → `ᵢ`).
pub fn subscript(var: &str) -> String {
    match var {
        "i" => "ᵢ".into(),
        "j" => "ⱼ".into(),
        "k" => "ₖ".into(),
        other => format!("_{other}"),
    }
}

/// The items of an index as written: `:, i`.
fn index_text(model: &Model, items: &[crate::hir::IndexItem]) -> String {
    let parts: Vec<String> = items
        .iter()
        .map(|i| match i.kind {
            IndexKind::All => ":".into(),
            IndexKind::Var(v) => model.vars[v].name.clone(),
            IndexKind::Fixed(k) => k.to_string(),
        })
        .collect();
    parts.join(", ")
}

fn superscript(k: u64) -> String {
    const DIGITS: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    k.to_string()
        .chars()
        .map(|c| DIGITS[c.to_digit(10).unwrap_or(0) as usize])
        .collect()
}

struct Printer<'a> {
    program: &'a Program,
    model: &'a Model,
    columns: Columns,
}

/// Binding strength, for parentheses.
fn precedence(expr: &Expr) -> u8 {
    match expr {
        Expr::Binary {
            op: BinaryOp::Add | BinaryOp::Sub,
            ..
        } => 1,
        Expr::Sum { .. } => 2,
        Expr::Binary {
            op: BinaryOp::Mul | BinaryOp::Div,
            ..
        } => 3,
        Expr::Neg(_) => 4,
        Expr::Binary {
            op: BinaryOp::Pow, ..
        } => 5,
        _ => 6,
    }
}

impl Printer<'_> {
    /// Renders `expr`, parenthesized if it binds more loosely than `min`.
    fn expr(&self, expr: ExprId, min: u8) -> String {
        let e = &self.program.exprs[expr];
        let text = self.inner(expr);
        if precedence(e) < min {
            format!("({text})")
        } else {
            text
        }
    }

    fn inner(&self, expr: ExprId) -> String {
        let program = self.program;
        match &program.exprs[expr] {
            Expr::Number(v) => catalog::format_number(*v),
            Expr::Param(p) => symbol(&self.model.params[*p].name),
            Expr::Data(d) => self.model.data[*d].name.clone(),
            // In one subnetwork's terms, a whole factor under a separable atom is its column.
            Expr::Factor(f) => match self.columns {
                Columns::Indexed => self.model.factors[*f].name.clone(),
                Columns::Single => column_name(&self.model.factors[*f].name),
            },
            Expr::Var(v) => self.model.vars[*v].name.clone(),
            Expr::NormArg => "x".into(),
            Expr::NormParam(k) => format!("p{k}"),
            Expr::Missing => "?".into(),
            Expr::Neg(e) => format!("−{}", self.expr(*e, 4)),
            Expr::Transpose(e) => format!("{}ᵀ", self.expr(*e, 6)),
            Expr::Sum { var, body } => {
                let sub = subscript(&self.model.vars[*var].name);
                format!("Σ{sub} {}", self.expr(*body, 2))
            }
            Expr::Index { base, items } => self.index(*base, items),
            Expr::Binary { op, lhs, rhs, .. } => match op {
                BinaryOp::Add => format!("{} + {}", self.expr(*lhs, 1), self.expr(*rhs, 2)),
                BinaryOp::Sub => format!("{} − {}", self.expr(*lhs, 1), self.expr(*rhs, 2)),
                BinaryOp::Mul => {
                    // `λ Σᵢ …`: a sum on the right reads as in the source, unparenthesized.
                    let rhs_min = if matches!(program.exprs[*rhs], Expr::Sum { .. }) {
                        2
                    } else {
                        4
                    };
                    let right = self.expr(*rhs, rhs_min);
                    // `2·x`, `g‖v‖₁`, `U Vᵀ`.
                    let sep = match program.exprs[*lhs] {
                        Expr::Number(_) => "·",
                        Expr::Param(_) if right.starts_with('‖') => "",
                        _ => " ",
                    };
                    format!("{}{sep}{right}", self.expr(*lhs, 3))
                }
                BinaryOp::Div => format!("{}/{}", self.expr(*lhs, 3), self.expr(*rhs, 4)),
                BinaryOp::Pow => match &program.exprs[*rhs] {
                    Expr::Number(k) if k.fract() == 0.0 && *k >= 0.0 => {
                        format!("{}{}", self.expr(*lhs, 6), superscript(*k as u64))
                    }
                    _ => format!("{}^{}", self.expr(*lhs, 6), self.expr(*rhs, 6)),
                },
            },
            Expr::Call {
                callee,
                inputs,
                params,
            } => match callee {
                Callee::Atom(atom) => {
                    let args: Vec<String> = inputs.iter().map(|&i| self.expr(i, 0)).collect();
                    if atom.inputs.min() == 0 {
                        let values: Vec<String> = params
                            .iter()
                            .zip(atom.params)
                            .filter(|(_, spec)| spec.domain != catalog::Domain::Flag)
                            .map(|(&p, _)| self.expr(p, 0))
                            .collect();
                        let flags: Vec<&str> = params
                            .iter()
                            .zip(atom.params)
                            .filter(|(p, spec)| {
                                spec.domain == catalog::Domain::Flag
                                    && program.const_value(self.model, **p) == Some(1.0)
                            })
                            .map(|(_, spec)| spec.name)
                            .collect();
                        let all: Vec<String> = values
                            .into_iter()
                            .chain(flags.into_iter().map(String::from))
                            .collect();
                        format!("{}({})", atom.math, all.join(", "))
                    } else {
                        atom.math.replacen("{}", &args.join(", "), 1)
                    }
                }
                Callee::Norm(norm) => {
                    let def = &program.norms[*norm];
                    let args: Vec<String> = inputs.iter().map(|&i| self.expr(i, 0)).collect();
                    let params: Vec<String> = params.iter().map(|&p| self.expr(p, 0)).collect();
                    if params.is_empty() {
                        format!("{}({})", def.name, args.join(", "))
                    } else {
                        format!("{}({}; {})", def.name, args.join(", "), params.join(", "))
                    }
                }
            },
        }
    }

    fn index(&self, base: ExprId, items: &[crate::hir::IndexItem]) -> String {
        let base_text = self.expr(base, 6);
        let vars: Vec<_> = items
            .iter()
            .filter_map(|i| match i.kind {
                IndexKind::Var(v) => Some(v),
                _ => None,
            })
            .collect();
        let only_var = vars.len() == 1
            && items
                .iter()
                .all(|i| matches!(i.kind, IndexKind::All | IndexKind::Var(_)));
        if only_var && let Expr::Factor(_) = self.program.exprs[base] {
            return match self.columns {
                Columns::Indexed => {
                    format!("{base_text}{}", subscript(&self.model.vars[vars[0]].name))
                }
                Columns::Single => column_name(&base_text),
            };
        }
        format!("{base_text}[{}]", index_text(self.model, items))
    }
}

/// Renders `expr` back as `.hfm` source, for suggestions in diagnostics. With `columns`
/// set to the size index and an index name, whole factors under a norm are written as
/// their column (`norm2(U)` → `norm2(U[:, i])`).
pub fn source(
    program: &Program,
    model: &Model,
    expr: ExprId,
    columns: Option<(crate::hir::DimId, &str)>,
) -> String {
    SourcePrinter {
        program,
        model,
        columns,
    }
    .expr(expr, 0, false)
}

struct SourcePrinter<'a> {
    program: &'a Program,
    model: &'a Model,
    columns: Option<(crate::hir::DimId, &'a str)>,
}

impl SourcePrinter<'_> {
    fn expr(&self, expr: ExprId, min: u8, under_norm: bool) -> String {
        let text = self.inner(expr, under_norm);
        if precedence(&self.program.exprs[expr]) < min {
            format!("({text})")
        } else {
            text
        }
    }

    fn inner(&self, expr: ExprId, under_norm: bool) -> String {
        let program = self.program;
        match &program.exprs[expr] {
            Expr::Number(v) => catalog::format_number(*v),
            Expr::Param(p) => self.model.params[*p].name.clone(),
            Expr::Data(d) => self.model.data[*d].name.clone(),
            Expr::Factor(f) => {
                let factor = &self.model.factors[*f];
                match self.columns {
                    Some((size, index)) if under_norm => {
                        let axis = factor
                            .shape
                            .iter()
                            .rposition(|u| u.dim == crate::hir::DimRef::Named(size))
                            .unwrap_or(factor.shape.len().saturating_sub(1));
                        let items: Vec<&str> = (0..factor.shape.len())
                            .map(|k| if k == axis { index } else { ":" })
                            .collect();
                        format!("{}[{}]", factor.name, items.join(", "))
                    }
                    _ => factor.name.clone(),
                }
            }
            Expr::Var(v) => self.model.vars[*v].name.clone(),
            Expr::NormArg => "x".into(),
            Expr::NormParam(k) => format!("p{k}"),
            Expr::Missing => "?".into(),
            Expr::Neg(e) => format!("-{}", self.expr(*e, 4, under_norm)),
            Expr::Transpose(e) => format!("{}'", self.expr(*e, 6, under_norm)),
            Expr::Sum { var, body } => format!(
                "sum({}) {}",
                self.model.vars[*var].name,
                self.expr(*body, 2, under_norm)
            ),
            Expr::Index { base, items } => format!(
                "{}[{}]",
                self.expr(*base, 6, false),
                index_text(self.model, items)
            ),
            Expr::Binary { op, lhs, rhs, .. } => {
                let (l, r) = match op {
                    BinaryOp::Add | BinaryOp::Sub => (1, 2),
                    BinaryOp::Mul | BinaryOp::Div => {
                        let r = if matches!(program.exprs[*rhs], Expr::Sum { .. }) {
                            2
                        } else {
                            4
                        };
                        (3, r)
                    }
                    BinaryOp::Pow => (6, 5),
                };
                let sep = match op {
                    BinaryOp::Pow => "^".to_string(),
                    other => format!(" {} ", other.symbol()),
                };
                format!(
                    "{}{sep}{}",
                    self.expr(*lhs, l, under_norm),
                    self.expr(*rhs, r, under_norm)
                )
            }
            Expr::Call {
                callee,
                inputs,
                params,
            } => {
                let (name, reduces) = match callee {
                    Callee::Atom(atom) => (
                        atom.name.to_string(),
                        atom.shape == catalog::ShapeLaw::Reduce,
                    ),
                    Callee::Norm(norm) => (program.norms[*norm].name.clone(), true),
                };
                let args: Vec<String> = inputs.iter().map(|&i| self.expr(i, 0, reduces)).collect();
                let params: Vec<String> = params.iter().map(|&p| self.expr(p, 0, false)).collect();
                match (args.is_empty(), params.is_empty()) {
                    (_, true) => format!("{name}({})", args.join(", ")),
                    (true, false) => format!("{name}({})", params.join(", ")),
                    (false, false) => format!("{name}({}; {})", args.join(", "), params.join(", ")),
                }
            }
        }
    }
}
