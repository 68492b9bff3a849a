//! The resolved program (HIR): what `resolve` makes of the AST.
//!
//! Names are gone, replaced by typed indices into arenas (`la-arena`, as rust-analyzer does):
//! a factor reference is a [`FactorId`], an atom call points into the catalog, a norm call
//! into [`Program::norms`]. All expressions of a program (every model and every norm body)
//! live in one arena, with their source locations in a parallel map so that nodes stay
//! small. Later stages never mutate this; they compute side tables keyed by [`ExprId`].

use hfc_grammar::{FileId, Span};
use la_arena::{Arena, ArenaMap, Idx};

use crate::catalog;

/// An expression.
pub type ExprId = Idx<Expr>;
/// A symbolic dimension of one model.
pub type DimId = Idx<Dim>;
/// A parameter of one model.
pub type ParamId = Idx<Param>;
/// A data declaration of one model.
pub type DataId = Idx<Data>;
/// A factor of one model.
pub type FactorId = Idx<Factor>;
/// An index variable bound by `sum(i)`.
pub type VarId = Idx<IndexVar>;
/// A user-defined norm.
pub type NormId = Idx<NormDef>;

/// Where something is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loc {
    /// The file.
    pub file: FileId,
    /// The span in it.
    pub span: Span,
}

/// A resolved program: the models of the root file and every norm they can see.
#[derive(Debug, Default)]
pub struct Program {
    /// Every expression.
    pub exprs: Arena<Expr>,
    /// Where each expression is written.
    pub locs: ArenaMap<ExprId, Loc>,
    /// User-defined norms (from the root file, its imports and its models).
    pub norms: Arena<NormDef>,
    /// The root file's models, in source order.
    pub models: Vec<Model>,
}

impl Program {
    /// The location of an expression.
    pub fn loc(&self, expr: ExprId) -> Loc {
        self.locs.get(expr).copied().unwrap_or(Loc {
            file: FileId(0),
            span: Span::default(),
        })
    }

    /// The span of an expression.
    pub fn span(&self, expr: ExprId) -> Span {
        self.loc(expr).span
    }

    /// Adds an expression.
    pub(crate) fn alloc(&mut self, expr: Expr, loc: Loc) -> ExprId {
        let id = self.exprs.alloc(expr);
        self.locs.insert(id, loc);
        id
    }

    /// The value of a constant expression (numbers, parameters, arithmetic), if it is one.
    pub fn const_value(&self, model: &Model, expr: ExprId) -> Option<f64> {
        self.const_value_in(model, expr, &[])
    }

    /// As [`Program::const_value`], with the values of a norm's parameters.
    pub fn const_value_in(&self, model: &Model, expr: ExprId, norm_params: &[f64]) -> Option<f64> {
        let value = match &self.exprs[expr] {
            Expr::Number(v) => *v,
            Expr::Param(p) => model.params[*p].value?,
            Expr::NormParam(k) => *norm_params.get(*k as usize)?,
            Expr::Neg(e) => -self.const_value_in(model, *e, norm_params)?,
            Expr::Binary { op, lhs, rhs, .. } => {
                let a = self.const_value_in(model, *lhs, norm_params)?;
                let b = self.const_value_in(model, *rhs, norm_params)?;
                match op {
                    BinaryOp::Add => a + b,
                    BinaryOp::Sub => a - b,
                    BinaryOp::Mul => a * b,
                    BinaryOp::Div => a / b,
                    BinaryOp::Pow => a.powf(b),
                }
            }
            _ => return None,
        };
        value.is_finite().then_some(value)
    }
}

/// One model.
#[derive(Debug)]
pub struct Model {
    /// Its name.
    pub name: String,
    /// Where the name is written.
    pub name_span: Span,
    /// The file it is in.
    pub file: FileId,
    /// The whole model.
    pub span: Span,
    /// Symbolic dimensions, in order of first use.
    pub dims: Arena<Dim>,
    /// Parameters.
    pub params: Arena<Param>,
    /// Data.
    pub data: Arena<Data>,
    /// Factors.
    pub factors: Arena<Factor>,
    /// Index variables of `sum(i)`.
    pub vars: Arena<IndexVar>,
    /// `fit TARGET ~ map;`
    pub fit: Option<Fit>,
    /// `loss ...;`
    pub loss: Option<Loss>,
    /// `reg ...;`
    pub reg: Option<Reg>,
    /// `solve { ... }` settings.
    pub solve: Vec<SolveSetting>,
    /// Whether some statement of the model did not parse (later stages stay quiet about
    /// what may be missing because of it).
    pub has_syntax_errors: bool,
}

impl Model {
    /// The value of solve option `name`: the model's setting, else the catalog default.
    pub fn solve_value(&self, name: &str) -> Option<f64> {
        self.solve
            .iter()
            .find(|s| s.option.name == name)
            .map(|s| s.value)
            .or_else(|| catalog::solve_option(name).and_then(|o| o.default))
    }
}

/// A symbolic dimension such as `m` or `r`.
#[derive(Debug, Clone)]
pub struct Dim {
    /// Its name.
    pub name: String,
    /// Its first use.
    pub span: Span,
}

/// One axis of a declared shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DimRef {
    /// A symbolic dimension.
    Named(DimId),
    /// A literal size.
    Fixed(u64),
}

/// An axis with where it is written.
#[derive(Debug, Clone, Copy)]
pub struct DimUse {
    /// The dimension.
    pub dim: DimRef,
    /// Where.
    pub span: Span,
}

/// `param NAME = value;`
#[derive(Debug)]
pub struct Param {
    /// Its name.
    pub name: String,
    /// Where the name is written.
    pub span: Span,
    /// The default value expression.
    pub expr: ExprId,
    /// Its value, when the expression is a valid constant.
    pub value: Option<f64>,
}

/// `data NAME : [dims] = load("path");`
#[derive(Debug)]
pub struct Data {
    /// Its name.
    pub name: String,
    /// Where the name is written.
    pub span: Span,
    /// Its declared shape.
    pub shape: Vec<DimUse>,
    /// Where it comes from (`None`: given on the command line).
    pub source: Option<DataSource>,
}

/// A file to load data from.
#[derive(Debug, Clone)]
pub struct DataSource {
    /// The path as written (relative to the model file).
    pub path: String,
    /// The format, from the extension.
    pub format: DataFormat,
    /// Where the source is written.
    pub span: Span,
}

/// The data file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataFormat {
    /// NumPy `.npy`.
    Npy,
    /// NumPy `.npz` archive.
    Npz,
    /// Comma-separated values.
    Csv,
    /// Matrix Market (coordinate = observed entries; array = dense).
    MatrixMarket,
}

impl DataFormat {
    /// The format of a path, from its extension.
    pub fn from_path(path: &str) -> Option<DataFormat> {
        let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
        Some(match ext.as_str() {
            "npy" => DataFormat::Npy,
            "npz" => DataFormat::Npz,
            "csv" => DataFormat::Csv,
            "mtx" => DataFormat::MatrixMarket,
            _ => return None,
        })
    }
}

/// `factor NAME : [dims] >= 0;`
#[derive(Debug)]
pub struct Factor {
    /// Its name.
    pub name: String,
    /// Where the name is written.
    pub span: Span,
    /// Its declared shape.
    pub shape: Vec<DimUse>,
    /// The span of `>= 0` when constrained to be nonnegative.
    pub nonneg: Option<Span>,
}

/// The `i` of `sum(i)`.
#[derive(Debug)]
pub struct IndexVar {
    /// Its name.
    pub name: String,
    /// Where it is bound.
    pub span: Span,
}

/// `fit TARGET ~ map;`
#[derive(Debug)]
pub struct Fit {
    /// The data fitted.
    pub target: DataId,
    /// Where the target is written.
    pub target_span: Span,
    /// The map.
    pub map: ExprId,
    /// The whole statement.
    pub span: Span,
}

/// `loss NAME(params) on observed(TARGET);`
#[derive(Debug)]
pub struct Loss {
    /// The catalog entry.
    pub loss: &'static catalog::Loss,
    /// Where the name is written.
    pub name_span: Span,
    /// Parameter values, in the catalog's order (defaults filled in).
    pub params: Vec<f64>,
    /// `on observed(Y)`.
    pub mask: Option<Mask>,
    /// The whole statement.
    pub span: Span,
}

/// `observed(Y)`.
#[derive(Debug)]
pub struct Mask {
    /// The data whose observed entries count.
    pub target: DataId,
    /// Where the mask is written.
    pub span: Span,
}

/// `reg expr;`
#[derive(Debug)]
pub struct Reg {
    /// The regularizer.
    pub expr: ExprId,
    /// The whole statement.
    pub span: Span,
}

/// One `solve { }` setting.
#[derive(Debug)]
pub struct SolveSetting {
    /// The catalog entry.
    pub option: &'static catalog::SolveOption,
    /// Its value.
    pub value: f64,
    /// Where it is written.
    pub span: Span,
}

/// A user-defined norm `norm NAME(x; params) = body;`.
#[derive(Debug)]
pub struct NormDef {
    /// Its name.
    pub name: String,
    /// Where the name is written.
    pub name_span: Span,
    /// The file it is in.
    pub file: FileId,
    /// The argument's name (`x`).
    pub arg: String,
    /// Its parameters' names.
    pub params: Vec<String>,
    /// The definition, over [`Expr::NormArg`] and [`Expr::NormParam`].
    pub body: ExprId,
    /// The whole definition.
    pub span: Span,
}

/// A binary operator.
pub use hfc_grammar::ast::BinaryOp;

/// A resolved expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal.
    Number(f64),
    /// A parameter.
    Param(ParamId),
    /// Data.
    Data(DataId),
    /// A whole factor.
    Factor(FactorId),
    /// An index variable (only inside an index).
    Var(VarId),
    /// The argument of the norm whose body this is.
    NormArg,
    /// The k-th parameter of the norm whose body this is.
    NormParam(u32),
    /// A call of an atom or a user-defined norm.
    Call {
        /// What is called.
        callee: Callee,
        /// Expression inputs.
        inputs: Vec<ExprId>,
        /// Constant parameters, in the callee's order (defaults filled in as numbers).
        params: Vec<ExprId>,
    },
    /// `lhs op rhs`.
    Binary {
        /// The operator.
        op: BinaryOp,
        /// Left.
        lhs: ExprId,
        /// Right.
        rhs: ExprId,
        /// The operator's span.
        op_span: Span,
    },
    /// `-e`.
    Neg(ExprId),
    /// `sum(i) body`.
    Sum {
        /// The index.
        var: VarId,
        /// The summand.
        body: ExprId,
    },
    /// `e'`.
    Transpose(ExprId),
    /// `base[items]`.
    Index {
        /// What is indexed.
        base: ExprId,
        /// One item per axis.
        items: Vec<IndexItem>,
    },
    /// Something that did not resolve (already reported).
    Missing,
}

/// What a call calls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Callee {
    /// A catalog atom.
    Atom(&'static catalog::Atom),
    /// A user-defined norm.
    Norm(NormId),
}

/// One item of an index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IndexItem {
    /// What it selects.
    pub kind: IndexKind,
    /// Where it is written.
    pub span: Span,
}

/// What an index item selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    /// `:`
    All,
    /// `i`
    Var(VarId),
    /// `3`
    Fixed(u64),
}
