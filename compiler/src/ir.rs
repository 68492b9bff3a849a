//! The model IR: a checked model in the normal form the derivation (and, later, lowering to
//! kernels) works on.
//!
//! Input: the HIR and the shape and degree tables of a model with no errors. Output: an
//! [`ir::Model`](Model) in which the map is recognized as one of the forms of the closed-form
//! table (a matrix factorization Σᵢ uᵢvᵢᵀ, a CP tensor, a ReLU network) or `General`, and the
//! regularizer as a weight λ times a per-column θ: a product of one gauge per factor, weight
//! decay, dropout, or `Other`. Recognition is structural and total: anything unrecognized is
//! `General`/`Other`, never an error (the analyses already accepted the model).

use hfc_grammar::{FileId, Span};

use crate::catalog::{self, Gauge};
use crate::degree::{Degree, DegreeTable, Var};
use crate::hir::{
    self, BinaryOp, Callee, DataFormat, DimRef, Expr, ExprId, FactorId, IndexKind, Program,
};
use crate::math::{self, Columns};
use crate::shape::ShapeTable;

/// A checked model in normal form.
#[derive(Debug, Clone)]
pub struct Model {
    /// Its name.
    pub name: String,
    /// Its file.
    pub file: FileId,
    /// Where the map is written.
    pub map_span: Span,
    /// Where the regularizer is written (the map's span when there is none).
    pub reg_span: Span,
    /// Parameters and their default values.
    pub params: Vec<(String, f64)>,
    /// The size index r (its name).
    pub size_index: String,
    /// Data declarations.
    pub data: Vec<Data>,
    /// Factors, in declaration order.
    pub factors: Vec<Factor>,
    /// The map.
    pub map: Map,
    /// The map in mathematics (`Σᵢ Uᵢ Vᵢᵀ`).
    pub map_math: String,
    /// The map's total degree.
    pub map_degree: u32,
    /// The map's degree in each factor (same order as `factors`), when homogeneous per factor.
    pub map_degrees: Option<Vec<u32>>,
    /// The loss.
    pub loss: Loss,
    /// The regularizer.
    pub reg: Reg,
    /// Solver settings.
    pub solve: Solve,
}

/// A data declaration.
#[derive(Debug, Clone)]
pub struct Data {
    /// Its name.
    pub name: String,
    /// Dimension names or sizes, per axis.
    pub shape: Vec<String>,
    /// Its file, relative to the model (`None`: given on the command line).
    pub source: Option<(String, DataFormat)>,
}

/// A factor.
#[derive(Debug, Clone)]
pub struct Factor {
    /// Its name.
    pub name: String,
    /// Dimension names or sizes, per axis.
    pub shape: Vec<String>,
    /// The axis indexed by the size r.
    pub size_axis: usize,
    /// Constrained to be nonnegative.
    pub nonneg: bool,
}

/// The forms of map the derivation distinguishes.
#[derive(Debug, Clone, PartialEq)]
pub enum Map {
    /// Σᵢ uᵢ vᵢᵀ: factors `left` [m, r] and `right` [n, r] (indices into `factors`).
    Matrix {
        /// The left factor.
        left: usize,
        /// The right factor.
        right: usize,
    },
    /// Σᵢ a¹ᵢ ⊗ … ⊗ aᴷᵢ.
    Tensor {
        /// The factors, in order.
        factors: Vec<usize>,
    },
    /// A network σ(…σ(X W¹)…Wᴷ⁻¹) Wᴷᵀ on data X.
    Network {
        /// The input data (index into `data`).
        input: usize,
        /// The layers, first to last (indices into `factors`).
        layers: Vec<usize>,
        /// The activation, `None` for a linear network.
        activation: Option<&'static str>,
        /// Every layer indexes the subnetwork by its last axis and only there (`W1 : [d, h, r]`,
        /// `W2 : [h, r]`): r parallel subnetworks. `W2 : [r, r]` mixes them.
        parallel: bool,
    },
    /// Anything else.
    General,
}

impl Map {
    /// The closed-form table's name for this map, if it has one.
    pub fn form(&self) -> Option<catalog::MapForm> {
        match self {
            Map::Matrix { .. } => Some(catalog::MapForm::Matrix),
            Map::Tensor { .. } => Some(catalog::MapForm::Tensor),
            Map::Network {
                layers,
                activation: Some("relu"),
                ..
            } if layers.len() == 2 => Some(catalog::MapForm::ReluTwoLayer),
            Map::Network {
                layers,
                activation: Some("relu"),
                parallel: true,
                ..
            } if layers.len() == 3 => Some(catalog::MapForm::ReluThreeLayer),
            _ => None,
        }
    }

    /// The factors in the map's order (as the closed-form table lists gauges).
    pub fn factor_order(&self) -> Vec<usize> {
        match self {
            Map::Matrix { left, right } => vec![*left, *right],
            Map::Tensor { factors } => factors.clone(),
            Map::Network { layers, .. } => layers.clone(),
            Map::General => Vec::new(),
        }
    }
}

/// The loss.
#[derive(Debug, Clone)]
pub struct Loss {
    /// The catalog entry.
    pub kind: &'static catalog::Loss,
    /// Parameter values, in the catalog's order.
    pub params: Vec<f64>,
    /// Only observed entries count (`on observed(Y)`).
    pub observed: bool,
    /// The fitted data (index into `data`).
    pub target: usize,
}

/// A constant weight with how it reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Weight {
    /// Its default value.
    pub value: f64,
    /// How it reads (`λ`, `2`, `λ·γ`).
    pub math: String,
}

impl Weight {
    /// The weight 1, written as nothing.
    pub fn one() -> Weight {
        Weight {
            value: 1.0,
            math: String::new(),
        }
    }

    fn times(self, other: Weight) -> Weight {
        let math = match (self.math.is_empty(), other.math.is_empty()) {
            (true, _) => other.math,
            (_, true) => self.math,
            _ => format!("{}·{}", self.math, other.math),
        };
        Weight {
            value: self.value * other.value,
            math,
        }
    }
}

/// The regularizer: `weight · Σᵢ θ(columns i)`.
#[derive(Debug, Clone)]
pub struct Reg {
    /// λ: the constant in front.
    pub weight: Weight,
    /// θ's form.
    pub form: RegForm,
    /// The regularizer in mathematics, as written.
    pub math: String,
    /// θ for one column, in mathematics (`‖u‖₂ ‖v‖₂`).
    pub theta_single: String,
    /// Whether it is written per column (`sum(i) ...`), so that `theta_single` is θ of one
    /// subnetwork rather than the whole Θ.
    pub per_column: bool,
    /// θ of one subnetwork in single-column notation, whatever the form it is written in
    /// (`frob2(U) + frob2(V)` reads `‖u‖²_F + ‖v‖²_F`).
    pub theta_column: String,
    /// The regularizer's total degree.
    pub degree: Option<u32>,
    /// Whether its degree matches the map's.
    pub matched: bool,
    /// Whether it is of parallel form.
    pub parallel: bool,
}

/// The forms of θ the derivation distinguishes.
#[derive(Debug, Clone, PartialEq)]
pub enum RegForm {
    /// θ = c·Πₖ gₖ(Wᵏᵢ)^pₖ: one gauge per factor, times the constants inside θ.
    Product {
        /// One gauge per factor.
        gauges: Vec<FactorGauge>,
        /// The constant c (1 when θ has none).
        scale: Weight,
    },
    /// Σₖ gₖ(Wₖ)²: weight decay.
    WeightDecay(Vec<FactorGauge>),
    /// Dropout with drop probability `p`.
    Dropout {
        /// The drop probability.
        p: f64,
        /// Whether the rate grows with the size.
        adaptive: bool,
    },
    /// Some other parallel regularizer.
    Other,
    /// No regularizer.
    None,
}

/// A gauge on one factor's columns.
#[derive(Debug, Clone, PartialEq)]
pub struct FactorGauge {
    /// The factor (index into `factors`).
    pub factor: usize,
    /// The gauge: Σ weight·atom (a composite norm when several).
    pub terms: Vec<(Weight, &'static catalog::Atom)>,
    /// Its power in θ.
    pub power: u32,
}

impl FactorGauge {
    /// The gauge when it is a single catalog gauge with weight 1.
    pub fn simple(&self) -> Option<Gauge> {
        match self.terms.as_slice() {
            [(w, atom)] if w.value == 1.0 => atom.gauge,
            _ => None,
        }
    }
}

/// Solver settings (catalog defaults filled in).
#[derive(Debug, Clone)]
pub struct Solve {
    /// The largest size r (`None`: no limit).
    pub max_rank: Option<u64>,
    /// The initial size.
    pub init_rank: u64,
    /// Relative tolerance.
    pub tol: f64,
    /// Iterations of local descent, in all.
    pub max_iter: u64,
    /// Seed.
    pub seed: u64,
    /// Starts of heuristic polar solvers.
    pub polar_starts: u64,
}

/// Builds the model IR of `program.models[index]`; `None` when it has no fit, no loss or no
/// size index (errors already reported).
pub fn build(
    program: &Program,
    shapes: &ShapeTable,
    degrees: &DegreeTable,
    index: usize,
) -> Option<Model> {
    let model = &program.models[index];
    let fit = model.fit.as_ref()?;
    let loss = model.loss.as_ref()?;
    let size = shapes.size_index.get(index).copied().flatten()?;
    let model_degrees = degrees.models.get(index).cloned().unwrap_or_default();
    let dim_name = |d: &hir::DimUse| match d.dim {
        DimRef::Named(id) => model.dims[id].name.clone(),
        DimRef::Fixed(n) => n.to_string(),
    };
    let mut factors: Vec<Factor> = model
        .factors
        .values()
        .map(|f| Factor {
            name: f.name.clone(),
            shape: f.shape.iter().map(dim_name).collect(),
            size_axis: f
                .shape
                .iter()
                .rposition(|u| u.dim == DimRef::Named(size))
                .unwrap_or(0),
            nonneg: f.nonneg.is_some(),
        })
        .collect();
    let data = model
        .data
        .values()
        .map(|d| Data {
            name: d.name.clone(),
            shape: d.shape.iter().map(dim_name).collect(),
            source: d.source.as_ref().map(|s| (s.path.clone(), s.format)),
        })
        .collect();
    let mut map = recognize_map(program, fit.map);
    if let Map::Network {
        layers, parallel, ..
    } = &mut map
    {
        let size_name = &model.dims[size].name;
        *parallel = layers.iter().all(|&l| {
            factors.get(l).is_some_and(|f| {
                f.size_axis + 1 == f.shape.len()
                    && f.shape.iter().filter(|s| *s == size_name).count() == 1
            })
        });
    }
    let map_degrees = model_degrees.map.as_ref().map(|m| {
        model
            .factors
            .iter()
            .map(|(id, _)| m.of(Var::Factor(id)))
            .collect()
    });
    let reg = match &model.reg {
        Some(reg) => {
            let (weight, body) = split_weight(program, model, reg.expr);
            let form = recognize_reg(program, model, body, &mut factors);
            // θ is one subnetwork's term: the summand of `sum(i)`.
            let per_column = match &program.exprs[body] {
                Expr::Sum { body, .. } => *body,
                _ => body,
            };
            // One subnetwork's θ reads in single-column notation (`‖u‖₂ ‖v‖₂`); a whole Θ
            // keeps its indices (`Σᵢ ‖Uᵢ‖₁ ‖Vᵢ‖₂ + ι₊(U)`).
            let columns = if per_column != body {
                Columns::Single
            } else {
                Columns::Indexed
            };
            let theta_single = math::render(program, model, per_column, columns);
            let theta_column = math::render(program, model, per_column, Columns::Single);
            let per_column = per_column != body;
            let degree = model_degrees.reg.as_ref().and_then(Degree::total);
            Reg {
                weight,
                form,
                math: math::render(program, model, reg.expr, Columns::Indexed),
                theta_single,
                per_column,
                theta_column,
                degree,
                matched: model_degrees.matched,
                parallel: model_degrees.parallel,
            }
        }
        None => Reg {
            weight: Weight::one(),
            form: RegForm::None,
            math: String::new(),
            theta_single: String::new(),
            per_column: false,
            theta_column: String::new(),
            degree: None,
            matched: false,
            parallel: false,
        },
    };
    let setting = |name: &str| model.solve_value(name);
    Some(Model {
        name: model.name.clone(),
        file: model.file,
        map_span: program.span(fit.map),
        reg_span: model
            .reg
            .as_ref()
            .map_or(program.span(fit.map), |reg| program.span(reg.expr)),
        params: model
            .params
            .values()
            .map(|p| (p.name.clone(), p.value.unwrap_or(f64::NAN)))
            .collect(),
        size_index: model.dims[size].name.clone(),
        data,
        factors,
        map,
        map_math: math::render(program, model, fit.map, Columns::Indexed),
        map_degree: model_degrees.map_total.unwrap_or(0),
        map_degrees,
        loss: Loss {
            kind: loss.loss,
            params: loss.params.clone(),
            observed: loss.mask.is_some(),
            target: fit.target.into_raw().into_u32() as usize,
        },
        reg,
        solve: Solve {
            max_rank: setting("rank").map(|v| v as u64),
            init_rank: setting("init_rank").unwrap_or(0.0) as u64,
            tol: setting("tol").unwrap_or(1e-6),
            max_iter: setting("max_iter").unwrap_or(10_000.0) as u64,
            seed: setting("seed").unwrap_or(0.0) as u64,
            polar_starts: setting("polar_starts").unwrap_or(8.0) as u64,
        },
    })
}

fn factor_of(program: &Program, expr: ExprId) -> Option<FactorId> {
    match &program.exprs[expr] {
        Expr::Factor(f) => Some(*f),
        _ => None,
    }
}

fn idx(f: FactorId) -> usize {
    f.into_raw().into_u32() as usize
}

/// Recognizes the map's form.
fn recognize_map(program: &Program, expr: ExprId) -> Map {
    match &program.exprs[expr] {
        // U * V'  (U: [m, r], V: [n, r])
        Expr::Binary {
            op: BinaryOp::Mul,
            lhs,
            rhs,
            ..
        } => {
            if let Expr::Transpose(inner) = &program.exprs[*rhs]
                && let Some(right) = factor_of(program, *inner)
            {
                if let Some(left) = factor_of(program, *lhs) {
                    return Map::Matrix {
                        left: idx(left),
                        right: idx(right),
                    };
                }
                if let Some((input, mut layers, activation)) = network(program, *lhs) {
                    layers.push(idx(right));
                    return Map::Network {
                        input,
                        layers,
                        activation,
                        parallel: false,
                    };
                }
            }
            Map::General
        }
        // sum(i) U[:, i] * V[:, i]'
        Expr::Sum { var, body } => {
            if let Expr::Binary {
                op: BinaryOp::Mul,
                lhs,
                rhs,
                ..
            } = &program.exprs[*body]
                && let Some(left) = column_of(program, *lhs, *var)
                && let Expr::Transpose(inner) = &program.exprs[*rhs]
                && let Some(right) = column_of(program, *inner, *var)
            {
                return Map::Matrix {
                    left: idx(left),
                    right: idx(right),
                };
            }
            Map::General
        }
        Expr::Call {
            callee: Callee::Atom(atom),
            inputs,
            ..
        } if atom.kind == catalog::AtomKind::Map => {
            let factors: Option<Vec<usize>> = inputs
                .iter()
                .map(|&i| factor_of(program, i).map(idx))
                .collect();
            factors.map_or(Map::General, |factors| Map::Tensor { factors })
        }
        _ => Map::General,
    }
}

/// `σ(… σ(X * W1) … * Wk)`: the input data, the layers and the activation.
fn network(program: &Program, expr: ExprId) -> Option<(usize, Vec<usize>, Option<&'static str>)> {
    match &program.exprs[expr] {
        Expr::Call {
            callee: Callee::Atom(atom),
            inputs,
            ..
        } if atom.kind == catalog::AtomKind::Activation && inputs.len() == 1 => {
            let (input, layers, activation) = linear_layer(program, inputs[0])?;
            match activation {
                Some(a) if a != atom.name => None,
                _ => Some((input, layers, Some(atom.name))),
            }
        }
        _ => linear_layer(program, expr),
    }
}

/// `X * W` or `(network) * W`.
fn linear_layer(
    program: &Program,
    expr: ExprId,
) -> Option<(usize, Vec<usize>, Option<&'static str>)> {
    let Expr::Binary {
        op: BinaryOp::Mul,
        lhs,
        rhs,
        ..
    } = &program.exprs[expr]
    else {
        return None;
    };
    let layer = factor_of(program, *rhs)?;
    match &program.exprs[*lhs] {
        Expr::Data(d) => Some((d.into_raw().into_u32() as usize, vec![idx(layer)], None)),
        _ => {
            let (input, mut layers, activation) = network(program, *lhs)?;
            layers.push(idx(layer));
            Some((input, layers, activation))
        }
    }
}

/// `F[:, i]` (any axes `:` but the one indexed by `var`).
fn column_of(program: &Program, expr: ExprId, var: hir::VarId) -> Option<FactorId> {
    let Expr::Index { base, items } = &program.exprs[expr] else {
        return None;
    };
    let factor = factor_of(program, *base)?;
    let vars = items
        .iter()
        .filter(|i| i.kind == IndexKind::Var(var))
        .count();
    let others_all = items
        .iter()
        .all(|i| matches!(i.kind, IndexKind::All | IndexKind::Var(_)));
    (vars == 1 && others_all).then_some(factor)
}

/// Splits the constant weight in front of the regularizer from the rest.
fn split_weight(program: &Program, model: &hir::Model, expr: ExprId) -> (Weight, ExprId) {
    match &program.exprs[expr] {
        Expr::Binary {
            op: BinaryOp::Mul,
            lhs,
            rhs,
            ..
        } => {
            if let Some(w) = constant_weight(program, model, *lhs) {
                let (inner, body) = split_weight(program, model, *rhs);
                return (w.times(inner), body);
            }
            if let Some(w) = constant_weight(program, model, *rhs) {
                let (inner, body) = split_weight(program, model, *lhs);
                return (inner.times(w), body);
            }
            (Weight::one(), expr)
        }
        _ => (Weight::one(), expr),
    }
}

fn constant_weight(program: &Program, model: &hir::Model, expr: ExprId) -> Option<Weight> {
    let value = program.const_value(model, expr)?;
    Some(Weight {
        value,
        math: math::render(program, model, expr, Columns::Indexed),
    })
}

/// Recognizes θ (the regularizer without its weight). Cone indicators (`nonneg(U)`) are
/// folded into the factors' constraints.
fn recognize_reg(
    program: &Program,
    model: &hir::Model,
    body: ExprId,
    factors: &mut [Factor],
) -> RegForm {
    // Terms of a top-level sum; indicators become constraints.
    let mut terms = Vec::new();
    flatten(program, body, BinaryOp::Add, &mut terms);
    terms.retain(|&t| match &program.exprs[t] {
        Expr::Call {
            callee: Callee::Atom(atom),
            inputs,
            ..
        } if atom.kind == catalog::AtomKind::Cone && atom.name == "nonneg" => {
            if let Some(f) = inputs.first().and_then(|&i| factor_of(program, i)) {
                factors[idx(f)].nonneg = true;
            }
            false
        }
        _ => true,
    });
    if let [single] = terms.as_slice() {
        let single = *single;
        if let Expr::Call {
            callee: Callee::Atom(atom),
            params,
            ..
        } = &program.exprs[single]
            && atom.kind == catalog::AtomKind::Regularizer
        {
            let value = |k: usize| {
                params
                    .get(k)
                    .and_then(|&p| program.const_value(model, p))
                    .unwrap_or(0.0)
            };
            return RegForm::Dropout {
                p: value(0),
                adaptive: value(1) != 0.0,
            };
        }
        if let Expr::Sum { var, body } = &program.exprs[single] {
            return product_of_gauges(program, model, *body, Some(*var))
                .map(|(gauges, scale)| RegForm::Product { gauges, scale })
                .unwrap_or(RegForm::Other);
        }
    }
    // Weight decay: Σₖ g(Wₖ)², one factor per term.
    let decay: Option<Vec<FactorGauge>> = terms
        .iter()
        .map(|&t| squared_gauge(program, model, t))
        .collect();
    match decay {
        Some(gauges) if !gauges.is_empty() => RegForm::WeightDecay(gauges),
        _ => RegForm::Other,
    }
}

/// The operands of a chain of `op` (`a + b + c` → `[a, b, c]`).
fn flatten(program: &Program, expr: ExprId, op: BinaryOp, out: &mut Vec<ExprId>) {
    match &program.exprs[expr] {
        Expr::Binary {
            op: this, lhs, rhs, ..
        } if *this == op => {
            flatten(program, *lhs, op, out);
            flatten(program, *rhs, op, out);
        }
        _ => out.push(expr),
    }
}

/// θ = Πₖ gₖ(column of Wₖ)^pₖ with distinct factors, constants absorbed.
fn product_of_gauges(
    program: &Program,
    model: &hir::Model,
    body: ExprId,
    var: Option<hir::VarId>,
) -> Option<(Vec<FactorGauge>, Weight)> {
    let mut pieces = Vec::new();
    flatten(program, body, BinaryOp::Mul, &mut pieces);
    let mut gauges: Vec<FactorGauge> = Vec::new();
    let mut scale = Weight::one();
    for piece in pieces {
        if let Some(w) = weight_of(program, model, piece, &[]) {
            scale = scale.times(w);
            continue;
        }
        let gauge = gauge_power(program, model, piece, var)?;
        if gauges.iter().any(|g| g.factor == gauge.factor) {
            return None;
        }
        gauges.push(gauge);
    }
    (!gauges.is_empty()).then_some((gauges, scale))
}

/// `g(F[:, i])^k`, where g is a norm or a weighted sum of norms of the same column.
fn gauge_power(
    program: &Program,
    model: &hir::Model,
    expr: ExprId,
    var: Option<hir::VarId>,
) -> Option<FactorGauge> {
    if let Expr::Binary {
        op: BinaryOp::Pow,
        lhs,
        rhs,
        ..
    } = &program.exprs[expr]
    {
        let k = program.const_value(model, *rhs)?;
        let mut g = gauge_power(program, model, *lhs, var)?;
        g.power *= k as u32;
        return Some(g);
    }
    let mut terms = Vec::new();
    let Subject::Factor(factor) =
        gauge_terms(program, model, expr, var, Weight::one(), &[], &mut terms)?
    else {
        return None;
    };
    Some(FactorGauge {
        factor: idx(factor),
        terms,
        power: 1,
    })
}

/// What a gauge is applied to: a factor's column, or a norm definition's argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Subject {
    Factor(FactorId),
    Arg,
}

/// Collects `Σ weight·atom` of one column, expanding user-defined norms.
fn gauge_terms(
    program: &Program,
    model: &hir::Model,
    expr: ExprId,
    var: Option<hir::VarId>,
    weight: Weight,
    norm_params: &[Weight],
    out: &mut Vec<(Weight, &'static catalog::Atom)>,
) -> Option<Subject> {
    match &program.exprs[expr] {
        Expr::Binary {
            op: BinaryOp::Add,
            lhs,
            rhs,
            ..
        } => {
            let a = gauge_terms(program, model, *lhs, var, weight.clone(), norm_params, out)?;
            let b = gauge_terms(program, model, *rhs, var, weight, norm_params, out)?;
            (a == b).then_some(a)
        }
        Expr::Binary {
            op: BinaryOp::Mul,
            lhs,
            rhs,
            ..
        } => {
            let (w, rest) = match weight_of(program, model, *lhs, norm_params) {
                Some(w) => (w, *rhs),
                None => (weight_of(program, model, *rhs, norm_params)?, *lhs),
            };
            gauge_terms(program, model, rest, var, weight.times(w), norm_params, out)
        }
        Expr::Call {
            callee,
            inputs,
            params,
        } => {
            let subject = subject_of(program, *inputs.first()?, var)?;
            match callee {
                Callee::Atom(atom) if atom.kind == catalog::AtomKind::Norm => {
                    out.push((weight, atom));
                    Some(subject)
                }
                Callee::Norm(norm) => {
                    let values: Vec<Weight> = params
                        .iter()
                        .map(|&p| weight_of(program, model, p, norm_params))
                        .collect::<Option<_>>()?;
                    let body = program.norms[*norm].body;
                    match gauge_terms(program, model, body, None, weight, &values, out)? {
                        Subject::Arg => Some(subject),
                        Subject::Factor(_) => None,
                    }
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// A constant weight; inside a norm body, its parameters read as the caller's arguments.
fn weight_of(
    program: &Program,
    model: &hir::Model,
    expr: ExprId,
    norm_params: &[Weight],
) -> Option<Weight> {
    if let Expr::NormParam(k) = program.exprs[expr] {
        return norm_params.get(k as usize).cloned();
    }
    let values: Vec<f64> = norm_params.iter().map(|w| w.value).collect();
    Some(Weight {
        value: program.const_value_in(model, expr, &values)?,
        math: math::render(program, model, expr, Columns::Indexed),
    })
}

/// The factor whose column `expr` is (or, in a norm body, the argument).
fn subject_of(program: &Program, expr: ExprId, var: Option<hir::VarId>) -> Option<Subject> {
    match (&program.exprs[expr], var) {
        (Expr::NormArg, _) => Some(Subject::Arg),
        (_, Some(v)) => column_of(program, expr, v).map(Subject::Factor),
        (Expr::Factor(f), None) => Some(Subject::Factor(*f)),
        _ => None,
    }
}

/// `frob2(W)`, `norm2(W)^2` or `sum(i) norm2(W[:, i])^2`: a squared gauge of one factor.
fn squared_gauge(program: &Program, model: &hir::Model, expr: ExprId) -> Option<FactorGauge> {
    // Terms of different weights balance at another point (a‖u‖² + b‖v‖² ≥ 2√(ab)‖u‖‖v‖);
    // only unweighted terms are recognized.
    let (weight, body) = split_weight(program, model, expr);
    if weight != Weight::one() {
        return None;
    }
    match &program.exprs[body] {
        Expr::Call {
            callee: Callee::Atom(atom),
            inputs,
            ..
        } if atom.degree == catalog::DegreeLaw::Scale(2) && atom.gauge.is_some() => {
            let factor = factor_of(program, *inputs.first()?)?;
            let norm2 = catalog::atom("norm2")?;
            Some(FactorGauge {
                factor: idx(factor),
                terms: vec![(Weight::one(), norm2)],
                power: 2,
            })
        }
        Expr::Sum { var, body } => {
            let g = gauge_power(program, model, *body, Some(*var))?;
            (g.power == 2).then_some(g)
        }
        _ => {
            let g = gauge_power(program, model, body, None)?;
            (g.power == 2).then_some(g)
        }
    }
}
