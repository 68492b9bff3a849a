//! The typed syntax tree of a `.hfm` file.
//!
//! Owned, immutable once built, and every node carries the [`Span`] of the text it came from.
//! The tree holds only what parsed: a statement with a syntax error is left out and recorded in
//! [`Model::recovered`], so later stages can stay quiet about what the user already got an error
//! for (a `fit` that did not parse is not also "missing").

use crate::span::Span;

/// A name with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    /// The name.
    pub name: String,
    /// Where it is written.
    pub span: Span,
}

/// A string literal (escapes resolved).
#[derive(Clone, Debug, PartialEq)]
pub struct StrLit {
    /// The value.
    pub value: String,
    /// Where it is written, quotes included.
    pub span: Span,
}

/// A parsed file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct File {
    /// Items in source order.
    pub items: Vec<Item>,
}

impl File {
    /// The models of the file, in source order.
    pub fn models(&self) -> impl Iterator<Item = &Model> {
        self.items.iter().filter_map(|item| match item {
            Item::Model(m) => Some(m),
            _ => None,
        })
    }
}

/// A top-level item.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// `import "path";`
    Import(Import),
    /// `norm NAME(x; params) = expr;`
    Norm(NormDef),
    /// `model NAME { ... }`
    Model(Model),
}

/// `import "path";`
#[derive(Clone, Debug, PartialEq)]
pub struct Import {
    /// The path as written.
    pub path: StrLit,
    /// The whole item.
    pub span: Span,
}

/// `norm NAME(x; p1, p2) = expr;`: a norm defined in the language.
#[derive(Clone, Debug, PartialEq)]
pub struct NormDef {
    /// The norm's name.
    pub name: Ident,
    /// The vector argument (`x`).
    pub arg: Ident,
    /// Scalar parameters after `;`.
    pub params: Vec<Ident>,
    /// The definition.
    pub body: Expr,
    /// The whole definition.
    pub span: Span,
}

/// `model NAME { statements }`
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    /// The model's name.
    pub name: Ident,
    /// Statements that parsed, in source order.
    pub stmts: Vec<Stmt>,
    /// Statements that did not parse (each already has a syntax error).
    pub recovered: Vec<Recovered>,
    /// The whole model, braces included.
    pub span: Span,
}

/// A statement that did not parse: what kind it looked like and the name it seemed to declare.
#[derive(Clone, Debug, PartialEq)]
pub struct Recovered {
    /// The leading word as written (`"factr"` in a misspelled statement).
    pub word: String,
    /// The leading keyword, when it is a statement keyword (`"factor"`, `"fit"`, ...).
    pub keyword: Option<String>,
    /// The name after a declaring keyword or an unknown word (`U` in a broken
    /// `factor U [m, r];` or in `factr U : [m, r];`).
    pub declared: Option<Ident>,
    /// The text that was skipped.
    pub span: Span,
}

/// A statement inside a model.
#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    /// `param NAME = expr;`
    Param(ParamDecl),
    /// `data NAME : [dims] (= load("path"))?;`
    Data(DataDecl),
    /// `factor NAME : [dims] (>= 0)?;`
    Factor(FactorDecl),
    /// `fit TARGET ~ expr;`
    Fit(FitStmt),
    /// `loss NAME(args)? (on observed(TARGET))?;`
    Loss(LossStmt),
    /// `reg expr;`
    Reg(RegStmt),
    /// `solve { options }`
    Solve(SolveBlock),
    /// A norm defined inside the model (visible in that model only).
    Norm(NormDef),
}

impl Stmt {
    /// The statement's span.
    pub fn span(&self) -> Span {
        match self {
            Stmt::Param(s) => s.span,
            Stmt::Data(s) => s.span,
            Stmt::Factor(s) => s.span,
            Stmt::Fit(s) => s.span,
            Stmt::Loss(s) => s.span,
            Stmt::Reg(s) => s.span,
            Stmt::Solve(s) => s.span,
            Stmt::Norm(s) => s.span,
        }
    }
}

/// `param NAME = expr;`
#[derive(Clone, Debug, PartialEq)]
pub struct ParamDecl {
    /// The parameter's name.
    pub name: Ident,
    /// Its default value (a constant expression).
    pub value: Expr,
    /// The whole statement.
    pub span: Span,
}

/// `data NAME : [dims] = load("path");`
#[derive(Clone, Debug, PartialEq)]
pub struct DataDecl {
    /// The data's name.
    pub name: Ident,
    /// Its declared shape.
    pub shape: Shape,
    /// Where it comes from; `None` when the command line supplies it.
    pub source: Option<Source>,
    /// The whole statement.
    pub span: Span,
}

/// `load("path")`
#[derive(Clone, Debug, PartialEq)]
pub struct Source {
    /// The loader's name (`load`).
    pub loader: Ident,
    /// The path argument.
    pub path: StrLit,
    /// The whole call.
    pub span: Span,
}

/// `[m, n, 3]`
#[derive(Clone, Debug, PartialEq)]
pub struct Shape {
    /// One entry per axis.
    pub dims: Vec<DimRef>,
    /// The brackets and what they hold.
    pub span: Span,
}

/// One axis of a declared shape.
#[derive(Clone, Debug, PartialEq)]
pub enum DimRef {
    /// A symbolic size such as `m` or `r`.
    Named(Ident),
    /// A literal size.
    Fixed {
        /// The size.
        value: u64,
        /// Where it is written.
        span: Span,
    },
}

impl DimRef {
    /// Where the dimension is written.
    pub fn span(&self) -> Span {
        match self {
            DimRef::Named(id) => id.span,
            DimRef::Fixed { span, .. } => *span,
        }
    }
}

/// `factor NAME : [dims] >= 0;`
#[derive(Clone, Debug, PartialEq)]
pub struct FactorDecl {
    /// The factor's name.
    pub name: Ident,
    /// Its declared shape.
    pub shape: Shape,
    /// The span of `>= 0` when the factor is constrained to the nonnegative orthant.
    pub nonneg: Option<Span>,
    /// The whole statement.
    pub span: Span,
}

/// `fit TARGET ~ expr;`
#[derive(Clone, Debug, PartialEq)]
pub struct FitStmt {
    /// The data being fitted.
    pub target: Ident,
    /// The factorization map.
    pub map: Expr,
    /// The whole statement.
    pub span: Span,
}

/// `loss NAME(args) on MASK(TARGET);`
#[derive(Clone, Debug, PartialEq)]
pub struct LossStmt {
    /// The loss's name.
    pub name: Ident,
    /// Its arguments (`huber(delta = 1.0)`).
    pub args: Vec<Arg>,
    /// `on observed(Y)`: the loss sees only the observed entries of `Y`.
    pub mask: Option<Mask>,
    /// The whole statement.
    pub span: Span,
}

/// `observed(Y)` after `on`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mask {
    /// The mask function (`observed`).
    pub kind: Ident,
    /// The data whose entries are observed.
    pub target: Ident,
    /// The whole mask.
    pub span: Span,
}

/// `reg expr;`
#[derive(Clone, Debug, PartialEq)]
pub struct RegStmt {
    /// The regularizer.
    pub expr: Expr,
    /// The whole statement.
    pub span: Span,
}

/// `solve { options }`
#[derive(Clone, Debug, PartialEq)]
pub struct SolveBlock {
    /// Options that parsed.
    pub options: Vec<SolveOption>,
    /// The whole block.
    pub span: Span,
}

/// `rank <= 100;` or `tol = 1e-8;`
#[derive(Clone, Debug, PartialEq)]
pub struct SolveOption {
    /// The option's name.
    pub name: Ident,
    /// `<=` (a bound) or `=` (a value).
    pub relation: Relation,
    /// The value.
    pub value: Expr,
    /// The whole option.
    pub span: Span,
}

/// The relation in a solve option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relation {
    /// `=`
    Eq,
    /// `<=`
    Le,
}

/// A call argument, positional or named (`delta = 1.0`).
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    /// The name, for a named argument.
    pub name: Option<Ident>,
    /// The value.
    pub value: Expr,
    /// The whole argument.
    pub span: Span,
}

/// An expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Its text, parentheses included when it was parenthesized.
    pub span: Span,
}

/// The kinds of expression.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// A number literal.
    Number(f64),
    /// A name: a parameter, data, factor, index, or a flag word such as `adaptive`.
    Name(String),
    /// `f(args)` or `f(args; params)`.
    Call {
        /// The function.
        callee: Ident,
        /// Arguments before `;`.
        args: Vec<Arg>,
        /// Parameters after `;` (user-defined norms).
        params: Vec<Arg>,
    },
    /// `lhs op rhs`
    Binary {
        /// The operator.
        op: BinaryOp,
        /// The operator's own span.
        op_span: Span,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
    },
    /// `-operand`
    Neg(Box<Expr>),
    /// `sum(i) body`: the sum over the subnetwork index.
    Sum {
        /// The index variable.
        index: Ident,
        /// The summand.
        body: Box<Expr>,
    },
    /// `operand'`
    Transpose(Box<Expr>),
    /// `base[i, :]`
    Index {
        /// What is indexed.
        base: Box<Expr>,
        /// One entry per axis.
        items: Vec<IndexItem>,
    },
    /// Stands for an expression that was too deeply nested to keep (already reported).
    Error,
}

/// A binary operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*` (matrix product, or scaling when one side is a scalar)
    Mul,
    /// `/`
    Div,
    /// `^`
    Pow,
}

impl BinaryOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Pow => "^",
        }
    }
}

/// One entry of an index `[.., ..]`.
#[derive(Clone, Debug, PartialEq)]
pub enum IndexItem {
    /// `:` (the whole axis).
    All(Span),
    /// An index variable bound by `sum(i)`.
    Var(Ident),
    /// A literal position (0-based).
    Fixed {
        /// The position.
        value: u64,
        /// Where it is written.
        span: Span,
    },
}

impl IndexItem {
    /// Where the entry is written.
    pub fn span(&self) -> Span {
        match self {
            IndexItem::All(span) => *span,
            IndexItem::Var(id) => id.span,
            IndexItem::Fixed { span, .. } => *span,
        }
    }
}
