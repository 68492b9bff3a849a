//! Degree analysis: positive homogeneity, sign, parallel structure and convexity of every
//! expression, and the checks `hfc check` exists for.
//!
//! Input: the [`Program`] and its [`ShapeTable`]. Output: a [`DegreeTable`]. This module is the
//! one place where the composition rules live (the analogue of CVXPY's `is_convex`): atoms
//! only declare local facts in the catalog ([`DegreeLaw`]), and `Walker::fact` combines them.
//!
//! Degrees are vectors indexed by factor ([`MultiDegree`]): `U * V'` has degree 1 in `U` and
//! 1 in `V`. A sum of terms with equal totals but different vectors (weight decay
//! ‖U‖² + ‖V‖²) is jointly homogeneous ([`Degree::Joint`]) but not per factor. The checks:
//! - the map and the regularizer are positively homogeneous (errors point at the operation);
//! - the regularizer's degree equals the map's, factor by factor (a warning that explains
//!   the consequence, with a suggested product of norms);
//! - the regularizer is Σᵢ θ(columns i) (parallel), nonnegative, and every `norm` definition
//!   is a nonnegative combination of norms.

use std::collections::BTreeMap;

use hfc_grammar::{FileId, Span};
use la_arena::ArenaMap;

use crate::catalog::{self, AtomKind, DegreeLaw};
use crate::diagnostics::degree::{self as diag, MismatchKind, NotHomogeneous};
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::hir::{
    BinaryOp, Callee, Expr, ExprId, FactorId, IndexKind, Model, NormId, Program, VarId,
};
use crate::shape::ShapeTable;

/// What a degree is counted in: a factor, or the argument of a `norm` definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Var {
    /// A factor of the model.
    Factor(FactorId),
    /// The argument `x` of the norm definition being checked.
    NormArg,
}

/// A degree per factor (zero entries are absent).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MultiDegree(pub BTreeMap<Var, u32>);

impl MultiDegree {
    fn one(var: Var) -> MultiDegree {
        MultiDegree(BTreeMap::from([(var, 1)]))
    }

    /// The total degree (what scaling every factor by a multiplies by, as a power).
    pub fn total(&self) -> u32 {
        self.0.values().sum()
    }

    /// The degree in one factor.
    pub fn of(&self, var: Var) -> u32 {
        self.0.get(&var).copied().unwrap_or(0)
    }

    fn add(&self, other: &MultiDegree) -> MultiDegree {
        let mut out = self.clone();
        for (v, d) in &other.0 {
            *out.0.entry(*v).or_insert(0) += d;
        }
        out
    }

    fn scale(&self, k: u32) -> MultiDegree {
        MultiDegree(self.0.iter().map(|(v, d)| (*v, d * k)).collect())
    }
}

/// The degree of positive homogeneity of an expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Degree {
    /// Does not depend on any factor (data, parameters, numbers).
    Const,
    /// Homogeneous in each factor with these degrees.
    Multi(MultiDegree),
    /// A sum of terms homogeneous of the same total degree, with different per-factor
    /// degrees (at least two, sorted).
    Joint(Vec<MultiDegree>),
    /// An indicator of a cone: homogeneous of every degree.
    Indicator,
    /// Adaptive dropout: matched to the map by its rate.
    Adaptive,
    /// Not homogeneous, or unknown (already reported).
    Invalid,
}

impl Degree {
    /// The total degree, when the expression is homogeneous and depends on a factor.
    pub fn total(&self) -> Option<u32> {
        match self {
            Degree::Multi(m) => Some(m.total()),
            Degree::Joint(terms) => terms.first().map(MultiDegree::total),
            _ => None,
        }
    }

    fn from_terms(mut terms: Vec<MultiDegree>) -> Degree {
        terms.sort();
        terms.dedup();
        match terms.len() {
            1 => Degree::Multi(terms.pop().unwrap_or_default()),
            _ => Degree::Joint(terms),
        }
    }

    fn terms(&self) -> Vec<MultiDegree> {
        match self {
            Degree::Multi(m) => vec![m.clone()],
            Degree::Joint(t) => t.clone(),
            _ => Vec::new(),
        }
    }
}

/// The sign of an expression's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sign {
    /// Always >= 0.
    Nonneg,
    /// Always <= 0.
    Nonpos,
    /// Either.
    Any,
}

impl Sign {
    fn of(v: f64) -> Sign {
        if v >= 0.0 { Sign::Nonneg } else { Sign::Nonpos }
    }

    fn neg(self) -> Sign {
        match self {
            Sign::Nonneg => Sign::Nonpos,
            Sign::Nonpos => Sign::Nonneg,
            Sign::Any => Sign::Any,
        }
    }

    fn mul(self, other: Sign) -> Sign {
        match (self, other) {
            (Sign::Any, _) | (_, Sign::Any) => Sign::Any,
            (a, b) if a == b => Sign::Nonneg,
            _ => Sign::Nonpos,
        }
    }

    fn add(self, other: Sign) -> Sign {
        if self == other { self } else { Sign::Any }
    }
}

/// How an expression of the regularizer depends on the columns of the factors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Structure {
    /// No factor.
    Scalar,
    /// Only column `i` of factors (inside `sum(i)`).
    Column(VarId),
    /// A whole factor, not yet reduced.
    Whole,
    /// Σᵢ of per-column terms.
    Parallel,
    /// Couples columns: where, and how.
    Coupled(Span, Coupling),
    /// Unknown (an error upstream).
    Unknown,
}

/// How a regularizer couples the columns of the factors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coupling {
    /// A norm that is not separable over columns (named when it is an atom), applied to a
    /// whole factor.
    WholeNorm(Option<&'static str>),
    /// A product of two sums over the columns (or of a column and a sum).
    Product,
    /// A power of a sum over the columns.
    Power,
    /// One fixed column (`U[:, 0]`).
    FixedColumn,
    /// A sum or operation mixing per-column terms with whole factors.
    Mixed,
}

impl Coupling {
    /// What couples the columns, for the label of `hfc::reg::not_parallel`.
    pub fn describe(self) -> String {
        match self {
            Coupling::WholeNorm(Some(name)) => {
                format!("`{name}` of a whole factor mixes its columns")
            }
            Coupling::WholeNorm(None) => "this norm of a whole factor mixes its columns".into(),
            Coupling::Product => "a product of sums over the columns".into(),
            Coupling::Power => "a power of a sum over the columns".into(),
            Coupling::FixedColumn => "this picks one fixed column".into(),
            Coupling::Mixed => "this mixes per-column terms with whole factors".into(),
        }
    }
}

/// Curvature, tracked for `norm` definitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curvature {
    /// Affine in the argument (constants included).
    Affine,
    /// Convex.
    Convex,
    /// Not known to be convex.
    Unknown,
}

/// Everything the analysis knows about one expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Fact {
    /// Its degree.
    pub degree: Degree,
    /// Its sign.
    pub sign: Sign,
    /// Its column structure.
    pub structure: Structure,
    /// Its curvature.
    pub curvature: Curvature,
}

impl Fact {
    fn constant(sign: Sign) -> Fact {
        Fact {
            degree: Degree::Const,
            sign,
            structure: Structure::Scalar,
            curvature: Curvature::Affine,
        }
    }

    fn invalid() -> Fact {
        Fact {
            degree: Degree::Invalid,
            sign: Sign::Any,
            structure: Structure::Unknown,
            curvature: Curvature::Unknown,
        }
    }
}

/// The degrees of one model.
#[derive(Clone, Debug, Default)]
pub struct ModelDegrees {
    /// The map's degree per factor, when it is homogeneous factor by factor.
    pub map: Option<MultiDegree>,
    /// The map's total degree, when it is homogeneous.
    pub map_total: Option<u32>,
    /// The regularizer's degree.
    pub reg: Option<Degree>,
    /// Whether the regularizer's degree matches the map's (so the induced regularizer is
    /// defined).
    pub matched: bool,
    /// Whether the regularizer is of parallel form Σᵢ θ(Wᵢ).
    pub parallel: bool,
}

/// The result of degree analysis.
#[derive(Debug, Default)]
pub struct DegreeTable {
    /// Facts per expression.
    pub exprs: ArenaMap<ExprId, Fact>,
    /// Per model, in the program's order.
    pub models: Vec<ModelDegrees>,
    /// Per user-defined norm: whether it is a valid norm.
    pub norms: ArenaMap<NormId, bool>,
}

impl DegreeTable {
    /// The fact of an expression.
    pub fn fact(&self, expr: ExprId) -> Option<&Fact> {
        self.exprs.get(expr)
    }
}

/// Where an expression sits: decides which diagnostic a violation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ctx {
    Map,
    Reg,
    NormBody,
}

/// Analyses every norm definition and model of the program.
pub fn check_degrees(
    program: &Program,
    shapes: &ShapeTable,
    diags: &mut Diagnostics,
) -> DegreeTable {
    let mut table = DegreeTable::default();
    for (id, norm) in program.norms.iter() {
        let mut walker = Walker {
            program,
            model: None,
            table: &mut table,
            diags,
            file: norm.file,
            map_degree: None,
        };
        let fact = walker.fact(norm.body, Ctx::NormBody);
        let why = if matches!(fact.degree, Degree::Invalid) {
            None // already reported
        } else if fact.degree != Degree::Multi(MultiDegree::one(Var::NormArg)) {
            let d = fact.degree.total().unwrap_or(0);
            Some(format!(
                "it has degree {d} in `{}`, and a norm has degree 1",
                norm.arg
            ))
        } else if fact.curvature != Curvature::Convex {
            Some("it is not convex (a norm is a sum of norms with nonnegative weights)".into())
        } else if fact.sign != Sign::Nonneg {
            Some("it can be negative".into())
        } else {
            None
        };
        let valid = why.is_none() && !matches!(fact.degree, Degree::Invalid);
        if let Some(why) = why {
            diags.push(diag::not_a_norm(
                norm.file,
                program.span(norm.body),
                &norm.name,
                why,
            ));
        }
        table.norms.insert(id, valid);
    }
    for (k, model) in program.models.iter().enumerate() {
        let degrees = check_model(program, model, shapes, k, &mut table, diags);
        table.models.push(degrees);
    }
    table
}

fn check_model(
    program: &Program,
    model: &Model,
    shapes: &ShapeTable,
    index: usize,
    table: &mut DegreeTable,
    diags: &mut Diagnostics,
) -> ModelDegrees {
    let mut out = ModelDegrees::default();
    let mut walker = Walker {
        program,
        model: Some(model),
        table,
        diags,
        file: model.file,
        map_degree: None,
    };
    let map_span = model.fit.as_ref().map(|f| program.span(f.map));
    if let Some(fit) = &model.fit {
        let fact = walker.fact(fit.map, Ctx::Map);
        match &fact.degree {
            Degree::Const => walker
                .diags
                .push(diag::constant_map(model.file, program.span(fit.map))),
            Degree::Multi(m) => {
                out.map = Some(m.clone());
                out.map_total = Some(m.total());
            }
            Degree::Joint(terms) => out.map_total = terms.first().map(MultiDegree::total),
            _ => {}
        }
    }
    walker.map_degree = out.map.clone();
    let Some(reg) = &model.reg else {
        return out;
    };
    let fact = walker.fact(reg.expr, Ctx::Reg);
    let reg_span = program.span(reg.expr);
    let scalar = shapes.shape(reg.expr).is_some_and(Vec::is_empty);
    if matches!(fact.degree, Degree::Invalid) || !scalar {
        return out;
    }
    // Nonnegativity.
    if fact.sign != Sign::Nonneg {
        let (span, label) = walker.sign_culprit(reg.expr);
        walker.diags.push(diag::negative(model.file, span, label));
    }
    // Parallel structure.
    out.parallel = true;
    match fact.structure {
        Structure::Coupled(span, coupling) => {
            out.parallel = false;
            let why = coupling.describe();
            let size = shapes.size_index[index];
            let suggestion = match coupling {
                Coupling::WholeNorm(_) | Coupling::Product => {
                    suggest_columns(program, model, size, reg.expr)
                }
                _ => None,
            }
            .or_else(|| {
                out.map
                    .as_ref()
                    .map(|m| suggest_product(program, model, size, m, reg.expr))
            });
            walker
                .diags
                .push(diag::not_parallel(model.file, span, &why, suggestion));
        }
        Structure::Unknown => out.parallel = false,
        _ => {}
    }
    // Degree against the map.
    out.matched = match (&fact.degree, &out.map, out.map_total, map_span) {
        (Degree::Adaptive, _, _, _) => true,
        (Degree::Indicator | Degree::Const, _, _, _) => {
            walker
                .diags
                .push(diag::only_constraints(model.file, reg_span));
            false
        }
        (reg_degree, map, Some(map_total), Some(map_span)) => {
            let verdict = compare(model, reg_degree, map.as_ref(), map_total);
            if let Some(message) = verdict {
                let kind = mismatch_kind(program, reg.expr, reg_degree, map_total);
                let suggestion = match map {
                    Some(m) => {
                        suggest_product(program, model, shapes.size_index[index], m, reg.expr)
                    }
                    None => "a product of one norm per factor".to_string(),
                };
                let reg_text = describe_degree(model, reg_degree, &kind);
                let map_text = match map {
                    Some(m) => {
                        describe_degree(model, &Degree::Multi(m.clone()), &MismatchKind::General)
                    }
                    None => format!("degree {map_total}"),
                };
                let reg_total = reg_degree.total().unwrap_or(0);
                walker.diags.push(diag::mismatch(
                    model.file, kind, reg_span, reg_text, map_span, map_text, message, reg_total,
                    map_total, suggestion,
                ));
                false
            } else {
                true
            }
        }
        _ => false,
    };
    out.reg = Some(fact.degree);
    out
}

/// Compares the regularizer's degree with the map's; `Some(message)` when they differ.
fn compare(
    model: &Model,
    reg: &Degree,
    map: Option<&MultiDegree>,
    map_total: u32,
) -> Option<String> {
    let reg_total = reg.total()?;
    let model_free = |v: Var| match v {
        Var::Factor(_) => true,
        Var::NormArg => false,
    };
    if reg_total != map_total {
        return Some(format!(
            "the regularizer has degree {reg_total} but the map has degree {map_total}"
        ));
    }
    let map = map?;
    match reg {
        Degree::Multi(e) if e != map => {
            let (var, e_v, d_v) = map
                .0
                .keys()
                .chain(e.0.keys())
                .filter(|v| model_free(**v))
                .map(|v| (*v, e.of(*v), map.of(*v)))
                .find(|(_, a, b)| a != b)?;
            Some(format!(
                "the regularizer has degree {e_v} in {} but the map has degree {d_v} in it",
                describe_var(model, var)
            ))
        }
        Degree::Joint(terms) => {
            // Each factor of the map must be controlled by some term.
            let (var, d_v) = map
                .0
                .iter()
                .find(|(v, _)| terms.iter().all(|t| t.of(**v) == 0))
                .map(|(v, d)| (*v, *d))?;
            Some(format!(
                "the regularizer has degree 0 in {} but the map has degree {d_v} in it",
                describe_var(model, var)
            ))
        }
        _ => None,
    }
}

fn mismatch_kind(program: &Program, reg: ExprId, degree: &Degree, map_total: u32) -> MismatchKind {
    if let Some(Callee::Atom(atom)) = leading_call(program, reg)
        && atom.degree == DegreeLaw::TwiceMap
    {
        return MismatchKind::FixedDropout;
    }
    let terms = degree.terms();
    let weight_decay = !terms.is_empty()
        && terms.iter().all(|t| {
            t.0.len() == 1 && t.total() == 2 && matches!(t.0.keys().next(), Some(Var::Factor(_)))
        });
    // Weight decay is the diagnosis when its degree 2 is the problem, not which factor.
    if weight_decay && degree.total() == Some(2) && map_total != 2 {
        MismatchKind::WeightDecay
    } else {
        MismatchKind::General
    }
}

/// The call at the top of `expr` once constant factors are stripped.
fn leading_call(program: &Program, expr: ExprId) -> Option<Callee> {
    match &program.exprs[expr] {
        Expr::Call { callee, .. } => Some(*callee),
        Expr::Binary {
            op: BinaryOp::Mul | BinaryOp::Div,
            lhs,
            rhs,
            ..
        } => leading_call(program, *rhs).or_else(|| leading_call(program, *lhs)),
        _ => None,
    }
}

/// "degree 2: 1 in `U`, 1 in `V`".
fn describe_degree(model: &Model, degree: &Degree, kind: &MismatchKind) -> String {
    let total = degree.total().unwrap_or(0);
    let prefix = match kind {
        MismatchKind::WeightDecay => "degree 2 (weight decay)".to_string(),
        MismatchKind::FixedDropout => format!("degree {total} (fixed-rate dropout)"),
        MismatchKind::General => format!("degree {total}"),
    };
    match degree {
        Degree::Multi(m) if !m.0.is_empty() => {
            let parts: Vec<String> =
                m.0.iter()
                    .map(|(v, d)| format!("{d} in {}", describe_var(model, *v)))
                    .collect();
            format!("{prefix}: {}", parts.join(", "))
        }
        _ => prefix,
    }
}

fn describe_var(model: &Model, var: Var) -> String {
    match var {
        Var::Factor(f) => format!("`{}`", model.factors[f].name),
        Var::NormArg => "`x`".into(),
    }
}

/// A product of one ℓ2 norm per factor with the map's degrees, written in `.hfm`:
/// `1e-3 * sum(i) norm2(W1[:, i]) * norm2(W2[:, i]) * norm2(W3[:, i])`.
fn suggest_product(
    program: &Program,
    model: &Model,
    size: Option<crate::hir::DimId>,
    map: &MultiDegree,
    reg: ExprId,
) -> String {
    let coefficient = leading_constant(program, model, reg)
        .map(|c| format!("{c} * "))
        .unwrap_or_default();
    let index = "i";
    let factors: Vec<String> = map
        .0
        .iter()
        .filter_map(|(v, d)| match v {
            Var::Factor(f) => Some((*f, *d)),
            Var::NormArg => None,
        })
        .map(|(f, d)| {
            let factor = &model.factors[f];
            let axis = factor
                .shape
                .iter()
                .rposition(|u| Some(u.dim) == size.map(crate::hir::DimRef::Named))
                .unwrap_or(factor.shape.len().saturating_sub(1));
            let items: Vec<&str> = (0..factor.shape.len())
                .map(|k| if k == axis { index } else { ":" })
                .collect();
            let column = format!("norm2({}[{}])", factor.name, items.join(", "));
            if d == 1 {
                column
            } else {
                format!("{column}^{d}")
            }
        })
        .collect();
    format!("{coefficient}sum({index}) {}", factors.join(" * "))
}

/// The regularizer rewritten per column: `lambda * norm1(U) * norm1(V)` becomes
/// `lambda * sum(i) norm1(U[:, i]) * norm1(V[:, i])`.
fn suggest_columns(
    program: &Program,
    model: &Model,
    size: Option<crate::hir::DimId>,
    reg: ExprId,
) -> Option<String> {
    let size = size?;
    let (constant, body) = match &program.exprs[reg] {
        Expr::Binary {
            op: BinaryOp::Mul,
            lhs,
            rhs,
            ..
        } if program.const_value(model, *lhs).is_some() => {
            (leading_constant(program, model, reg), *rhs)
        }
        _ => (None, reg),
    };
    let body = crate::math::source(program, model, body, Some((size, "i")));
    Some(match constant {
        Some(c) => format!("{c} * sum(i) {body}"),
        None => format!("sum(i) {body}"),
    })
}

/// The constant multiplying the whole regularizer, as written (`lambda`, `1e-3`).
fn leading_constant(program: &Program, model: &Model, expr: ExprId) -> Option<String> {
    match &program.exprs[expr] {
        Expr::Binary {
            op: BinaryOp::Mul,
            lhs,
            ..
        } => match &program.exprs[*lhs] {
            Expr::Number(v) => Some(catalog::format_number(*v)),
            Expr::Param(p) => Some(model.params[*p].name.clone()),
            _ => None,
        },
        _ => None,
    }
}

struct Walker<'a> {
    program: &'a Program,
    model: Option<&'a Model>,
    table: &'a mut DegreeTable,
    diags: &'a mut Diagnostics,
    file: FileId,
    map_degree: Option<MultiDegree>,
}

impl Walker<'_> {
    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn not_homogeneous(&mut self, ctx: Ctx, span: Span, why: NotHomogeneous<'_>) {
        match ctx {
            Ctx::Map | Ctx::Reg => {
                let d = diag::not_homogeneous(self.file, span, ctx == Ctx::Map, why);
                self.push(d);
            }
            // A norm body's failure is reported once, as "not a norm", by the caller.
            Ctx::NormBody => {}
        }
    }

    fn const_value(&self, expr: ExprId) -> Option<f64> {
        let model = self.model?;
        self.program.const_value(model, expr)
    }

    /// The fact of `expr` (recorded in the table).
    fn fact(&mut self, expr: ExprId, ctx: Ctx) -> Fact {
        let fact = self.fact_uncached(expr, ctx);
        self.table.exprs.insert(expr, fact.clone());
        fact
    }

    fn fact_uncached(&mut self, expr: ExprId, ctx: Ctx) -> Fact {
        let program = self.program;
        let span = program.span(expr);
        match &program.exprs[expr] {
            Expr::Number(v) => Fact::constant(Sign::of(*v)),
            Expr::Param(p) => {
                let sign = self
                    .model
                    .and_then(|m| m.params[*p].value)
                    .map(Sign::of)
                    .unwrap_or(Sign::Any);
                Fact::constant(sign)
            }
            // A norm's parameters are weights; their sign is checked where the norm is used.
            Expr::NormParam(_) => Fact::constant(Sign::Nonneg),
            Expr::Data(_) | Expr::Var(_) => Fact::constant(Sign::Any),
            Expr::Factor(f) => {
                let nonneg = self.model.is_some_and(|m| m.factors[*f].nonneg.is_some());
                Fact {
                    degree: Degree::Multi(MultiDegree::one(Var::Factor(*f))),
                    sign: if nonneg { Sign::Nonneg } else { Sign::Any },
                    structure: Structure::Whole,
                    curvature: Curvature::Affine,
                }
            }
            Expr::NormArg => Fact {
                degree: Degree::Multi(MultiDegree::one(Var::NormArg)),
                sign: Sign::Any,
                structure: Structure::Whole,
                curvature: Curvature::Affine,
            },
            Expr::Missing => Fact::invalid(),
            Expr::Neg(e) => {
                let f = self.fact(*e, ctx);
                Fact {
                    sign: f.sign.neg(),
                    curvature: if f.curvature == Curvature::Affine {
                        Curvature::Affine
                    } else {
                        Curvature::Unknown
                    },
                    ..f
                }
            }
            Expr::Transpose(e) => self.fact(*e, ctx),
            Expr::Index { base, items } => {
                let f = self.fact(*base, ctx);
                let var = items.iter().find_map(|i| match i.kind {
                    IndexKind::Var(v) => Some(v),
                    _ => None,
                });
                let fixed = items.iter().any(|i| matches!(i.kind, IndexKind::Fixed(_)));
                let structure = match (f.structure, var) {
                    (Structure::Whole, Some(v)) => Structure::Column(v),
                    (Structure::Whole, None) if fixed => {
                        Structure::Coupled(span, Coupling::FixedColumn)
                    }
                    (s, _) => s,
                };
                Fact { structure, ..f }
            }
            Expr::Sum { var, body } => {
                let f = self.fact(*body, ctx);
                let structure = match f.structure {
                    Structure::Column(v) if v == *var => Structure::Parallel,
                    Structure::Scalar => Structure::Parallel,
                    Structure::Unknown => Structure::Unknown,
                    Structure::Coupled(s, c) => Structure::Coupled(s, c),
                    _ => Structure::Coupled(span, Coupling::Mixed),
                };
                Fact { structure, ..f }
            }
            Expr::Binary {
                op,
                lhs,
                rhs,
                op_span,
            } => {
                let a = self.fact(*lhs, ctx);
                let b = self.fact(*rhs, ctx);
                self.binary(ctx, *op, *op_span, (*lhs, a), (*rhs, b), span)
            }
            Expr::Call {
                callee,
                inputs,
                params,
            } => {
                let facts: Vec<Fact> = inputs.iter().map(|&i| self.fact(i, ctx)).collect();
                match callee {
                    Callee::Atom(atom) => self.atom(ctx, atom, &facts, params, span),
                    Callee::Norm(norm) => self.user_norm(*norm, &facts, params, span),
                }
            }
        }
    }

    fn binary(
        &mut self,
        ctx: Ctx,
        op: BinaryOp,
        op_span: Span,
        (lhs, a): (ExprId, Fact),
        (rhs, b): (ExprId, Fact),
        span: Span,
    ) -> Fact {
        match op {
            BinaryOp::Add | BinaryOp::Sub => {
                let degree = self.sum_degree(ctx, op_span, (lhs, &a.degree), (rhs, &b.degree));
                let b_sign = if op == BinaryOp::Sub {
                    b.sign.neg()
                } else {
                    b.sign
                };
                let curvature = match (a.curvature, b.curvature, op) {
                    (Curvature::Affine, Curvature::Affine, _) => Curvature::Affine,
                    (c, Curvature::Affine, _) => c,
                    (Curvature::Affine, c, BinaryOp::Add) => c,
                    (Curvature::Convex, Curvature::Convex, BinaryOp::Add) => Curvature::Convex,
                    _ => Curvature::Unknown,
                };
                Fact {
                    degree,
                    sign: a.sign.add(b_sign),
                    structure: add_structure(a.structure, b.structure, op_span),
                    curvature,
                }
            }
            BinaryOp::Mul => {
                let degree = product_degree(&a.degree, &b.degree);
                let curvature = match (&a.degree, &b.degree) {
                    (Degree::Const, _) => scale_curvature(b.curvature, a.sign),
                    (_, Degree::Const) => scale_curvature(a.curvature, b.sign),
                    _ => Curvature::Unknown,
                };
                Fact {
                    degree,
                    sign: a.sign.mul(b.sign),
                    structure: mul_structure(a.structure, b.structure, op_span),
                    curvature,
                }
            }
            BinaryOp::Div => {
                if !matches!(b.degree, Degree::Const | Degree::Invalid) {
                    self.not_homogeneous(ctx, op_span, NotHomogeneous::Division);
                    return Fact::invalid();
                }
                Fact {
                    sign: a.sign.mul(b.sign),
                    curvature: scale_curvature(a.curvature, b.sign),
                    ..a
                }
            }
            BinaryOp::Pow => {
                if matches!(a.degree, Degree::Invalid) || matches!(b.degree, Degree::Invalid) {
                    return Fact::invalid();
                }
                let k = match (&b.degree, self.exponent(rhs)) {
                    (Degree::Const, Some(k)) => k,
                    _ => {
                        if !matches!(a.degree, Degree::Const) || ctx != Ctx::NormBody {
                            let value = self.const_value(rhs);
                            self.push(diag::bad_exponent(self.file, self.program.span(rhs), value));
                        }
                        return Fact::invalid();
                    }
                };
                let degree = match &a.degree {
                    Degree::Multi(m) => Degree::Multi(m.scale(k)),
                    Degree::Joint(t) => Degree::from_terms(t.iter().map(|m| m.scale(k)).collect()),
                    other => other.clone(),
                };
                let sign = if k % 2 == 0 { Sign::Nonneg } else { a.sign };
                let structure = match a.structure {
                    Structure::Parallel | Structure::Whole if k > 1 => {
                        Structure::Coupled(span, Coupling::Power)
                    }
                    s => s,
                };
                Fact {
                    degree,
                    sign,
                    structure,
                    curvature: if k == 1 {
                        a.curvature
                    } else {
                        Curvature::Unknown
                    },
                }
            }
        }
    }

    /// The value of an exponent, when it is a positive integer constant.
    fn exponent(&self, expr: ExprId) -> Option<u32> {
        let value = match &self.program.exprs[expr] {
            Expr::Number(v) => *v,
            _ => self.const_value(expr)?,
        };
        (value >= 1.0 && value.fract() == 0.0 && value <= 64.0).then_some(value as u32)
    }

    fn sum_degree(
        &mut self,
        ctx: Ctx,
        op_span: Span,
        (lhs, a): (ExprId, &Degree),
        (rhs, b): (ExprId, &Degree),
    ) -> Degree {
        match (a, b) {
            (Degree::Invalid, _) | (_, Degree::Invalid) => Degree::Invalid,
            (Degree::Indicator, other) | (other, Degree::Indicator) => other.clone(),
            (Degree::Const, Degree::Const) => Degree::Const,
            (Degree::Const, other) | (other, Degree::Const) if other.total().is_some() => {
                let constant = if matches!(a, Degree::Const) { lhs } else { rhs };
                let degree = other.total().unwrap_or(0);
                self.not_homogeneous(
                    ctx,
                    op_span,
                    NotHomogeneous::Bias {
                        degree,
                        constant: self.program.span(constant),
                    },
                );
                Degree::Invalid
            }
            _ => match (a.total(), b.total()) {
                (Some(x), Some(y)) if x == y => {
                    let mut terms = a.terms();
                    terms.extend(b.terms());
                    Degree::from_terms(terms)
                }
                // Different totals, or adaptive dropout added to a term that has one.
                (x, y) => {
                    self.not_homogeneous(
                        ctx,
                        op_span,
                        NotHomogeneous::Terms {
                            lhs: (self.program.span(lhs), x.unwrap_or(0)),
                            rhs: (self.program.span(rhs), y.unwrap_or(0)),
                        },
                    );
                    Degree::Invalid
                }
            },
        }
    }

    fn atom(
        &mut self,
        ctx: Ctx,
        atom: &catalog::Atom,
        inputs: &[Fact],
        params: &[ExprId],
        span: Span,
    ) -> Fact {
        if inputs.iter().any(|f| matches!(f.degree, Degree::Invalid)) {
            return Fact::invalid();
        }
        let all_const = inputs.iter().all(|f| f.degree == Degree::Const);
        let mut law = atom.degree;
        if let Some((flag, flagged)) = atom.flag_law {
            let set = atom
                .params
                .iter()
                .position(|p| p.name == flag)
                .and_then(|k| params.get(k))
                .and_then(|&e| self.const_value(e))
                .is_some_and(|v| v != 0.0);
            if set {
                law = flagged;
            }
        }
        let degree = match law {
            _ if all_const && !inputs.is_empty() && law != DegreeLaw::Indicator => Degree::Const,
            DegreeLaw::Scale(k) => match &inputs[0].degree {
                Degree::Multi(m) => Degree::Multi(m.scale(k)),
                Degree::Joint(t) => Degree::from_terms(t.iter().map(|m| m.scale(k)).collect()),
                other => other.clone(),
            },
            DegreeLaw::SumOfArgs => inputs
                .iter()
                .fold(Degree::Const, |acc, f| product_degree(&acc, &f.degree)),
            DegreeLaw::Indicator => Degree::Indicator,
            DegreeLaw::TwiceMap => match &self.map_degree {
                Some(m) => Degree::Multi(m.scale(2)),
                None => Degree::Invalid,
            },
            DegreeLaw::SizeAdaptive => Degree::Adaptive,
            DegreeLaw::None => {
                self.not_homogeneous(
                    ctx,
                    span,
                    NotHomogeneous::Function {
                        name: atom.name,
                        why: atom.summary,
                    },
                );
                Degree::Invalid
            }
        };
        let input_structure = inputs
            .first()
            .map(|f| f.structure)
            .unwrap_or(Structure::Scalar);
        let structure = match atom.kind {
            AtomKind::Regularizer => Structure::Parallel,
            _ if atom.shape == catalog::ShapeLaw::Reduce
                || atom.shape == catalog::ShapeLaw::SquareReduce =>
            {
                reduce_structure(input_structure, atom.separable, Some(atom.name), span)
            }
            _ => input_structure,
        };
        let curvature = match atom.kind {
            AtomKind::Norm
                if inputs
                    .first()
                    .is_some_and(|f| f.curvature == Curvature::Affine) =>
            {
                Curvature::Convex
            }
            _ => Curvature::Unknown,
        };
        Fact {
            degree,
            sign: if atom.nonnegative {
                Sign::Nonneg
            } else {
                Sign::Any
            },
            structure,
            curvature,
        }
    }

    fn user_norm(&mut self, norm: NormId, inputs: &[Fact], params: &[ExprId], span: Span) -> Fact {
        let Some(input) = inputs.first() else {
            return Fact::invalid();
        };
        if matches!(input.degree, Degree::Invalid) {
            return Fact::invalid();
        }
        let def = &self.program.norms[norm];
        for (k, &p) in params.iter().enumerate() {
            if let Some(value) = self.const_value(p)
                && value < 0.0
            {
                let d = diag::norm_negative_param(
                    self.file,
                    self.program.span(p),
                    &def.name,
                    def.params.get(k).map(String::as_str).unwrap_or("?"),
                    value,
                );
                self.push(d);
                return Fact::invalid();
            }
        }
        let separable = norm_separable(self.program, def.body);
        let degree = match &input.degree {
            Degree::Const => Degree::Const,
            other => other.clone(),
        };
        Fact {
            degree,
            sign: Sign::Nonneg,
            structure: reduce_structure(input.structure, separable, None, span),
            curvature: if input.curvature == Curvature::Affine {
                Curvature::Convex
            } else {
                Curvature::Unknown
            },
        }
    }

    /// The deepest subexpression that makes the regularizer's sign unknown or negative, and
    /// a label saying why.
    fn sign_culprit(&self, expr: ExprId) -> (Span, String) {
        let program = self.program;
        let span = program.span(expr);
        let not_nonneg = |e: ExprId| {
            self.table
                .exprs
                .get(e)
                .is_some_and(|f| f.sign != Sign::Nonneg)
        };
        match &program.exprs[expr] {
            Expr::Binary {
                op,
                lhs,
                rhs,
                op_span,
            } => {
                if *op == BinaryOp::Sub && !not_nonneg(*lhs) && !not_nonneg(*rhs) {
                    return (*op_span, "a subtraction".into());
                }
                for side in [*lhs, *rhs] {
                    if not_nonneg(side) {
                        return self.sign_culprit(side);
                    }
                }
                (span, "may be negative".into())
            }
            Expr::Neg(e) if !not_nonneg(*e) => (span, "a negation".into()),
            Expr::Neg(e) | Expr::Sum { body: e, .. } | Expr::Transpose(e) => self.sign_culprit(*e),
            Expr::Param(p) => {
                let label = match self.model.and_then(|m| m.params[*p].value) {
                    Some(v) => format!(
                        "`{}` is {}",
                        self.model
                            .map(|m| m.params[*p].name.as_str())
                            .unwrap_or("?"),
                        catalog::format_number(v)
                    ),
                    None => "may be negative".into(),
                };
                (span, label)
            }
            Expr::Number(v) => (span, format!("{} is negative", catalog::format_number(*v))),
            _ => (span, "may be negative".into()),
        }
    }
}

fn scale_curvature(c: Curvature, by: Sign) -> Curvature {
    match (c, by) {
        (Curvature::Affine, _) => Curvature::Affine,
        (Curvature::Convex, Sign::Nonneg) => Curvature::Convex,
        _ => Curvature::Unknown,
    }
}

fn product_degree(a: &Degree, b: &Degree) -> Degree {
    match (a, b) {
        (Degree::Invalid, _) | (_, Degree::Invalid) => Degree::Invalid,
        (Degree::Const, other) | (other, Degree::Const) => other.clone(),
        (Degree::Indicator, other) | (other, Degree::Indicator) => other.clone(),
        (Degree::Adaptive, _) | (_, Degree::Adaptive) => Degree::Invalid,
        _ => {
            let mut terms = Vec::new();
            for x in a.terms() {
                for y in b.terms() {
                    terms.push(x.add(&y));
                }
            }
            Degree::from_terms(terms)
        }
    }
}

/// A reduction (norm, cone, user norm) of an input with structure `s`.
fn reduce_structure(
    s: Structure,
    separable: bool,
    name: Option<&'static str>,
    span: Span,
) -> Structure {
    match s {
        Structure::Whole if separable => Structure::Parallel,
        Structure::Whole => Structure::Coupled(span, Coupling::WholeNorm(name)),
        other => other,
    }
}

fn add_structure(a: Structure, b: Structure, op_span: Span) -> Structure {
    use Structure::*;
    match (a, b) {
        (Unknown, _) | (_, Unknown) => Unknown,
        (Coupled(s, c), _) | (_, Coupled(s, c)) => Coupled(s, c),
        (Scalar, x) | (x, Scalar) => x,
        (Parallel, Parallel) => Parallel,
        (Column(i), Column(j)) if i == j => Column(i),
        (Whole, Whole) => Whole,
        _ => Coupled(op_span, Coupling::Mixed),
    }
}

fn mul_structure(a: Structure, b: Structure, op_span: Span) -> Structure {
    use Structure::*;
    match (a, b) {
        (Unknown, _) | (_, Unknown) => Unknown,
        (Coupled(s, c), _) | (_, Coupled(s, c)) => Coupled(s, c),
        (Scalar, x) | (x, Scalar) => x,
        (Column(i), Column(j)) if i == j => Column(i),
        // Products of whole factors are maps (U * V'); they only matter under a reduction.
        (Whole, Whole) => Whole,
        (Parallel | Column(_), Parallel | Column(_)) => Coupled(op_span, Coupling::Product),
        _ => Coupled(op_span, Coupling::Mixed),
    }
}

/// Whether a norm's body is separable over columns (every atom in it is).
fn norm_separable(program: &Program, expr: ExprId) -> bool {
    match &program.exprs[expr] {
        Expr::Call {
            callee: Callee::Atom(atom),
            ..
        } => atom.separable,
        Expr::Call {
            callee: Callee::Norm(n),
            ..
        } => norm_separable(program, program.norms[*n].body),
        Expr::Binary { lhs, rhs, .. } => {
            norm_separable(program, *lhs) && norm_separable(program, *rhs)
        }
        Expr::Neg(e) => norm_separable(program, *e),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    //! The composition rules, one line per rule, through the whole front end.

    use crate::{NoFiles, check};

    const SKELETON: &str = "model t {
        param lambda = 1; param neg = -1; param two = 2;
        data Y : [m, n]; data G : [m, m]; data X : [m, d]; data T : [m, n, p];
        factor U : [m, r]; factor V : [n, r]; factor W : [d, r]; factor P : [p, r];
        factor S : [r, r];
        fit TARGET ~ MAP;
        loss squared;
        reg REG;
    }";

    /// What `check` says about a model, in a few words: the error code if any, else the
    /// map's degree per factor, then the verdict on the regularizer.
    fn verdict(target: &str, map: &str, reg: &str) -> String {
        let text = SKELETON
            .replace("TARGET", target)
            .replace("MAP", map)
            .replace("REG", reg);
        let checked = check("t.hfm", &text, &mut NoFiles);
        let codes: Vec<&str> = checked
            .diagnostics
            .iter()
            .map(|d| d.code())
            .filter(|c| !c.starts_with("hfc::model::unused"))
            .collect();
        let report = &checked.models[0];
        let degrees: Vec<String> = report
            .map_degrees
            .iter()
            .filter(|(_, d)| *d > 0)
            .map(|(n, d)| format!("{n}{d}"))
            .collect();
        let map = match report.map_degree {
            Some(p) if degrees.is_empty() => format!("{p} joint"),
            Some(p) => format!("{p} {}", degrees.join(" ")),
            None => "-".into(),
        };
        let reg = report
            .reg_degree
            .map(|q| q.to_string())
            .unwrap_or_else(|| "-".into());
        match codes.as_slice() {
            [] => format!("map {map}; reg {reg}"),
            codes => format!("map {map}; reg {reg}; {}", codes.join(", ")),
        }
    }

    fn map(target: &str, map: &str) -> String {
        verdict(target, map, "sum(i) norm2(U[:, i]) * norm2(V[:, i])")
    }

    fn reg(reg: &str) -> String {
        verdict("Y", "U * V'", reg)
    }

    #[test]
    fn map_rules() {
        // Scaled or summed maps are homogeneous but have no closed-form polar.
        #[rustfmt::skip]
        let rules: &[(&str, &str, &str)] = &[
            ("Y", "U * V'", "map 2 U1 V1; reg 2"),
            ("Y", "sum(i) U[:, i] * V[:, i]'", "map 2 U1 V1; reg 2"),
            ("Y", "2 * U * V'", "map 2 U1 V1; reg 2; hfc::convex::no_polar_oracle"),
            ("Y", "-(U * V')", "map 2 U1 V1; reg 2; hfc::convex::no_polar_oracle"),
            ("Y", "U * V' / two", "map 2 U1 V1; reg 2; hfc::convex::no_polar_oracle"),
            ("Y", "U * V' + U * V'", "map 2 U1 V1; reg 2; hfc::convex::no_polar_oracle"),
            ("Y", "relu(X * W) * V'", "map 2 V1 W1; reg 2; hfc::degree::mismatch"),
            ("Y", "abs(X * W) * V'", "map 2 V1 W1; reg 2; hfc::degree::mismatch"),
            ("Y", "leaky_relu(X * W; 0.1) * V'", "map 2 V1 W1; reg 2; hfc::degree::mismatch"),
            ("Y", "U * S * V'", "map 3 U1 V1 S1; reg 2; hfc::degree::mismatch"),
            ("T", "cp(U, V, P)", "map 3 U1 V1 P1; reg 2; hfc::degree::mismatch"),
            ("G", "U * U'", "map 2 U2; reg 2; hfc::degree::mismatch"),
            ("Y", "U * V' + X * W * V'", "map 2 joint; reg 2; hfc::convex::no_polar_oracle"),
            ("Y", "sigmoid(X * W) * V'", "map -; reg 2; hfc::degree::map_not_homogeneous"),
            ("Y", "relu(X * W + 1) * V'", "map -; reg 2; hfc::degree::map_not_homogeneous"),
            ("Y", "U * V' + U * S * V'", "map -; reg 2; hfc::degree::map_not_homogeneous"),
            ("Y", "U * V' / U[0, 0]", "map -; reg 2; hfc::degree::map_not_homogeneous"),
            ("Y", "Y", "map -; reg 2; hfc::degree::constant_map"),
        ];
        let mut failures = Vec::new();
        for &(target, m, expected) in rules {
            let got = map(target, m);
            if got != expected {
                failures.push(format!(
                    "fit {target} ~ {m}\n  got  {got}\n  want {expected}"
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn regularizer_rules() {
        #[rustfmt::skip]
        let rules: &[(&str, &str)] = &[
            ("sum(i) norm2(U[:, i]) * norm2(V[:, i])", "map 2 U1 V1; reg 2"),
            ("lambda * sum(i) norm1(U[:, i]) * norminf(V[:, i])", "map 2 U1 V1; reg 2"),
            ("sum(i) tv(U[:, i]) * norm2(V[:, i])", "map 2 U1 V1; reg 2"),
            ("two * sum(i) (norm2(U[:, i]) + two * norm1(U[:, i])) * norm2(V[:, i])", "map 2 U1 V1; reg 2"),
            ("frob2(U) + frob2(V)", "map 2 U1 V1; reg 2"),
            ("sum(i) norm2(U[:, i])^2 + sum(i) norm2(V[:, i])^2", "map 2 U1 V1; reg 2"),
            ("sum(i) norm2(U[:, i]) * norm2(V[:, i]) + nonneg(U)", "map 2 U1 V1; reg 2"),
            ("dropout(0.5, adaptive)", "map 2 U1 V1; reg -"),
            ("sum(i) norm2(U[:, i])^2 * norm2(V[:, i])", "map 2 U1 V1; reg 3; hfc::degree::mismatch"),
            ("sum(i) norm2(U[:, i])^2", "map 2 U1 V1; reg 2; hfc::degree::mismatch"),
            ("dropout(0.5)", "map 2 U1 V1; reg 4; hfc::degree::mismatch"),
            ("norm1(U) + norm1(V)", "map 2 U1 V1; reg 1; hfc::degree::mismatch"),
            ("nonneg(U)", "map 2 U1 V1; reg -; hfc::reg::missing"),
            ("norm2(U) * norm2(V)", "map 2 U1 V1; reg 2; hfc::reg::not_parallel"),
            ("norm1(U) * norm1(V)", "map 2 U1 V1; reg 2; hfc::reg::not_parallel"),
            ("sum(i) norm2(U[:, 0]) * norm2(V[:, i])", "map 2 U1 V1; reg 2; hfc::reg::not_parallel"),
            ("neg * sum(i) norm2(U[:, i]) * norm2(V[:, i])", "map 2 U1 V1; reg 2; hfc::reg::negative"),
            ("sum(i) norm2(U[:, i]) * norm2(V[:, i]) - sum(i) norm1(U[:, i]) * norm1(V[:, i])", "map 2 U1 V1; reg 2; hfc::reg::negative"),
            ("sum(i) norm2(U[:, i]) * norm2(V[:, i]) + 1", "map 2 U1 V1; reg -; hfc::degree::reg_not_homogeneous"),
            ("sum(i) norm2(U[:, i]) + sum(i) norm2(U[:, i]) * norm2(V[:, i])", "map 2 U1 V1; reg -; hfc::degree::reg_not_homogeneous"),
            ("sum(i) softplus(norm2(U[:, i])) * norm2(V[:, i])", "map 2 U1 V1; reg -; hfc::degree::reg_not_homogeneous"),
            ("sum(i) norm2(U[:, i])^two * norm2(V[:, i])", "map 2 U1 V1; reg 3; hfc::degree::mismatch"),
            ("sum(i) norm2(U[:, i])^0.5", "map 2 U1 V1; reg -; hfc::degree::bad_exponent"),
        ];
        let mut failures = Vec::new();
        for &(r, expected) in rules {
            let got = reg(r);
            if got != expected {
                failures.push(format!("reg {r}\n  got  {got}\n  want {expected}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn multidegrees_add_scale_and_total() {
        use super::{MultiDegree, Var};
        use la_arena::{Idx, RawIdx};
        let u = Var::Factor(Idx::from_raw(RawIdx::from_u32(0)));
        let v = Var::Factor(Idx::from_raw(RawIdx::from_u32(1)));
        let a = MultiDegree::one(u);
        let b = MultiDegree::one(v);
        let ab = a.add(&b);
        assert_eq!((ab.of(u), ab.of(v), ab.total()), (1, 1, 2));
        assert_eq!(ab.scale(2).total(), 4);
        assert_eq!(a.add(&a).of(u), 2);
    }
}
