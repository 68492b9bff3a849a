//! Symbolic shape inference.
//!
//! Input: the [`Program`]. Output: a [`ShapeTable`] with the shape of every expression and, per
//! model, the size index r (the one dimension of the factors that no data fixes: the number
//! of parallel subnetworks, which the solver grows). Shapes are symbolic: `[m, r]` stays
//! `[m, r]`; two different names are different sizes, and a name against a number is left for
//! the data to decide.
//!
//! A rank-1 expression is a column vector; `v'` is the row `[1, n]`, so that
//! `sum(i) U[:, i] * V[:, i]'` is the same `[m, n]` matrix as `U * V'`.

use std::fmt;

use hfc_grammar::{FileId, Span};
use la_arena::ArenaMap;

use crate::catalog::ShapeLaw;
use crate::diagnostics::{Diagnostics, shape as diag};
use crate::hir::{BinaryOp, Callee, DimId, DimRef, Expr, ExprId, IndexKind, Model, Program};

/// One axis of a shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Axis {
    /// A symbolic dimension of the model.
    Dim(DimId),
    /// A literal size.
    Fixed(u64),
    /// Not known until the data is read.
    Unknown,
}

impl Axis {
    /// Whether two axes can be the same size.
    pub fn compatible(self, other: Axis) -> bool {
        match (self, other) {
            (Axis::Dim(a), Axis::Dim(b)) => a == b,
            (Axis::Fixed(a), Axis::Fixed(b)) => a == b,
            _ => true,
        }
    }
}

/// The shape of an expression: `[]` is a scalar, `[m]` a column vector.
pub type Shape = Vec<Axis>;

/// Shapes and size indices of a program.
#[derive(Debug, Default)]
pub struct ShapeTable {
    /// The shape of each expression; absent where an error upstream makes it unknown.
    pub exprs: ArenaMap<ExprId, Shape>,
    /// Per model (same order as `Program::models`): the size index, if exactly one.
    pub size_index: Vec<Option<DimId>>,
}

impl ShapeTable {
    /// The shape of an expression, if known.
    pub fn shape(&self, expr: ExprId) -> Option<&Shape> {
        self.exprs.get(expr)
    }
}

/// A shape as users write it: `[m, r]`, `[]` for a scalar.
pub struct Display<'a> {
    shape: &'a [Axis],
    model: &'a Model,
}

/// Formats `shape` with the dimension names of `model`.
pub fn display<'a>(shape: &'a [Axis], model: &'a Model) -> Display<'a> {
    Display { shape, model }
}

impl fmt::Display for Display<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.shape.is_empty() {
            return f.write_str("[] (a scalar)");
        }
        f.write_str("[")?;
        for (k, axis) in self.shape.iter().enumerate() {
            if k > 0 {
                f.write_str(", ")?;
            }
            match axis {
                Axis::Dim(d) => f.write_str(&self.model.dims[*d].name)?,
                Axis::Fixed(n) => write!(f, "{n}")?,
                Axis::Unknown => f.write_str("?")?,
            }
        }
        f.write_str("]")
    }
}

/// Infers the shapes of every model of the program.
pub fn infer_shapes(program: &Program, diags: &mut Diagnostics) -> ShapeTable {
    let mut table = ShapeTable::default();
    for model in &program.models {
        let size_index = find_size_index(model, diags);
        let mut cx = Cx {
            program,
            model,
            table: &mut table,
            diags,
            size_index,
        };
        if let Some(fit) = &model.fit {
            let map_shape = cx.infer(fit.map);
            let target = &model.data[fit.target];
            let target_shape = declared(&target.shape);
            if let Some(map_shape) = map_shape
                && !same_shape(&map_shape, &target_shape)
            {
                cx.diags.push(diag::fit_mismatch(
                    model.file,
                    fit.target_span,
                    &target.name,
                    &display(&target_shape, model).to_string(),
                    program.span(fit.map),
                    &display(&map_shape, model).to_string(),
                ));
            }
        }
        if let Some(reg) = &model.reg
            && let Some(shape) = cx.infer(reg.expr)
            && !shape.is_empty()
        {
            cx.diags.push(diag::reg_not_scalar(
                model.file,
                program.span(reg.expr),
                &display(&shape, model).to_string(),
            ));
        }
        table.size_index.push(size_index);
    }
    table
}

fn declared(shape: &[crate::hir::DimUse]) -> Shape {
    shape
        .iter()
        .map(|d| match d.dim {
            DimRef::Named(id) => Axis::Dim(id),
            DimRef::Fixed(n) => Axis::Fixed(n),
        })
        .collect()
}

fn same_shape(a: &[Axis], b: &[Axis]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.compatible(*y))
}

/// The size index: the one dimension in the factors' shapes that no data shape fixes.
fn find_size_index(model: &Model, diags: &mut Diagnostics) -> Option<DimId> {
    let in_data = |dim: DimId| {
        model
            .data
            .values()
            .any(|d| d.shape.iter().any(|u| u.dim == DimRef::Named(dim)))
    };
    let mut free: Vec<(DimId, Span)> = Vec::new();
    for factor in model.factors.values() {
        for u in &factor.shape {
            if let DimRef::Named(dim) = u.dim
                && !in_data(dim)
                && !free.iter().any(|(d, _)| *d == dim)
            {
                free.push((dim, u.span));
            }
        }
    }
    match free.as_slice() {
        [] => {
            if let Some(first) = model.factors.values().next() {
                let span = first.shape.first().map(|u| u.span).unwrap_or(first.span);
                diags.push(diag::no_size_index(model.file, span));
            }
            None
        }
        [(dim, _)] => Some(*dim),
        [(a, a_span), (b, b_span), ..] => {
            diags.push(diag::ambiguous_size_index(
                model.file,
                (*a_span, &model.dims[*a].name),
                (*b_span, &model.dims[*b].name),
            ));
            None
        }
    }
}

struct Cx<'a> {
    program: &'a Program,
    model: &'a Model,
    table: &'a mut ShapeTable,
    diags: &'a mut Diagnostics,
    size_index: Option<DimId>,
}

impl Cx<'_> {
    fn file(&self) -> FileId {
        self.model.file
    }

    fn show(&self, shape: &[Axis]) -> String {
        display(shape, self.model).to_string()
    }

    /// The shape of `expr`, recorded in the table; `None` when unknown.
    fn infer(&mut self, expr: ExprId) -> Option<Shape> {
        let shape = self.infer_uncached(expr);
        if let Some(s) = &shape {
            self.table.exprs.insert(expr, s.clone());
        }
        shape
    }

    fn infer_uncached(&mut self, expr: ExprId) -> Option<Shape> {
        let program = self.program;
        let span = program.span(expr);
        match &program.exprs[expr] {
            Expr::Number(_) | Expr::Param(_) | Expr::NormParam(_) | Expr::Var(_) => Some(vec![]),
            Expr::NormArg => Some(vec![Axis::Unknown]),
            Expr::Data(d) => Some(declared(&self.model.data[*d].shape)),
            Expr::Factor(f) => Some(declared(&self.model.factors[*f].shape)),
            Expr::Missing => None,
            Expr::Neg(e) => self.infer(*e),
            Expr::Sum { body, .. } => self.infer(*body),
            Expr::Transpose(e) => {
                let s = self.infer(*e)?;
                match s.as_slice() {
                    [] => Some(s),
                    [n] => Some(vec![Axis::Fixed(1), *n]),
                    [a, b] => Some(vec![*b, *a]),
                    _ => {
                        self.diags.push(diag::operand(
                            self.file(),
                            span,
                            "a transpose needs a matrix".into(),
                            format!("this has shape {}", self.show(&s)),
                            "use `cp(...)` for tensors",
                            "a transpose swaps the two axes of a matrix; a vector becomes a row",
                        ));
                        None
                    }
                }
            }
            Expr::Index { base, items } => {
                let s = self.infer(*base)?;
                self.index(*base, &s, items, span)
            }
            Expr::Binary {
                op,
                lhs,
                rhs,
                op_span,
            } => {
                let a = self.infer(*lhs);
                let b = self.infer(*rhs);
                let (a, b) = (a?, b?);
                self.binary(*op, *op_span, (*lhs, a), (*rhs, b))
            }
            Expr::Call { callee, inputs, .. } => {
                let shapes: Vec<Option<Shape>> = inputs.iter().map(|&i| self.infer(i)).collect();
                let law = match callee {
                    Callee::Atom(atom) => atom.shape,
                    Callee::Norm(_) => ShapeLaw::Reduce,
                };
                if law == ShapeLaw::Reduce {
                    return Some(vec![]);
                }
                let shapes: Vec<Shape> = shapes.into_iter().collect::<Option<_>>()?;
                self.call(law, callee, inputs, &shapes)
            }
        }
    }

    fn index(
        &mut self,
        _base: ExprId,
        shape: &[Axis],
        items: &[crate::hir::IndexItem],
        span: Span,
    ) -> Option<Shape> {
        if items.len() != shape.len() {
            self.diags.push(diag::index(
                self.file(),
                span,
                format!(
                    "an expression of shape {} is indexed with {} item{}",
                    self.show(shape),
                    items.len(),
                    if items.len() == 1 { "" } else { "s" }
                ),
                format!(
                    "{} ax{}, {} ind{}",
                    shape.len(),
                    if shape.len() == 1 { "is" } else { "es" },
                    items.len(),
                    if items.len() == 1 { "ex" } else { "ices" }
                ),
                "give one index per axis, `:` for a whole axis: `U[:, i]`".into(),
            ));
            return None;
        }
        let mut out = Vec::new();
        for (axis, item) in shape.iter().zip(items) {
            match item.kind {
                IndexKind::All => out.push(*axis),
                IndexKind::Fixed(k) => {
                    if let Axis::Fixed(n) = axis
                        && k >= *n
                    {
                        self.diags.push(diag::index(
                            self.file(),
                            item.span,
                            format!("index {k} is out of range for an axis of size {n}"),
                            "out of range".into(),
                            "indices count from 0".into(),
                        ));
                        return None;
                    }
                }
                IndexKind::Var(var) => {
                    let Some(size) = self.size_index else {
                        continue;
                    };
                    if !axis.compatible(Axis::Dim(size)) {
                        let var_name = &self.model.vars[var].name;
                        let size_name = &self.model.dims[size].name;
                        let position = shape.iter().position(|a| *a == Axis::Dim(size));
                        let help = match position {
                            Some(p) => {
                                let idx: Vec<&str> = (0..shape.len())
                                    .map(|k| if k == p { var_name.as_str() } else { ":" })
                                    .collect();
                                format!("index the `{size_name}` axis: `[{}]`", idx.join(", "))
                            }
                            None => format!("index an axis of size `{size_name}`"),
                        };
                        let axis_name = match axis {
                            Axis::Dim(d) => format!("`{}`", self.model.dims[*d].name),
                            Axis::Fixed(n) => format!("{n}"),
                            Axis::Unknown => "?".into(),
                        };
                        self.diags.push(diag::index(
                            self.file(),
                            item.span,
                            format!(
                                "`{var_name}` ranges over the size index `{size_name}`, but this axis has size {axis_name}"
                            ),
                            format!("this axis has size {axis_name}"),
                            help,
                        ));
                        return None;
                    }
                }
            }
        }
        Some(out)
    }

    fn binary(
        &mut self,
        op: BinaryOp,
        op_span: Span,
        (lhs, a): (ExprId, Shape),
        (rhs, b): (ExprId, Shape),
    ) -> Option<Shape> {
        let mismatch = |cx: &mut Self, message: String, help: String, rule: &str| {
            let (ls, rs) = (cx.show(&a), cx.show(&b));
            let operands = (
                diag::Operand {
                    span: cx.program.span(lhs),
                    shape: &ls,
                },
                diag::Operand {
                    span: cx.program.span(rhs),
                    shape: &rs,
                },
            );
            cx.diags.push(diag::mismatch(
                cx.file(),
                op_span,
                message,
                operands,
                help,
                rule,
            ));
            None
        };
        match op {
            BinaryOp::Mul => {
                if a.is_empty() {
                    return Some(b);
                }
                if b.is_empty() {
                    return Some(a);
                }
                // Parallel subnetworks, each with its own layer (the size index r last):
                // [N, d] * [d, h, r] = [N, h, r]; [N, h, r] * [h, r] = [N, r].
                let size = self.size_index.map(Axis::Dim);
                let is_size = |x: &Axis| size == Some(*x);
                match (a.len(), b.len()) {
                    (2, 3) if is_size(&b[2]) && a[1].compatible(b[0]) => {
                        return Some(vec![a[0], b[1], b[2]]);
                    }
                    (3, 2) if is_size(&a[2]) && is_size(&b[1]) && a[1].compatible(b[0]) => {
                        return Some(vec![a[0], a[2]]);
                    }
                    _ => {}
                }
                if a.len() > 2 || b.len() > 2 {
                    return mismatch(
                        self,
                        "a product needs matrices or vectors".into(),
                        "use `cp(...)` for tensors; a layer per subnetwork indexes the size \
                         last (`X * W1` with `W1 : [d, h, r]`, then `* W2` with `W2 : [h, r]`)"
                            .into(),
                        diag::PRODUCT_RULE,
                    );
                }
                // Column vectors take part as [n, 1].
                let l = if a.len() == 1 {
                    vec![a[0], Axis::Fixed(1)]
                } else {
                    a.clone()
                };
                let r = if b.len() == 1 {
                    vec![b[0], Axis::Fixed(1)]
                } else {
                    b.clone()
                };
                if !l[1].compatible(r[0]) {
                    let source = |e| crate::math::source(self.program, self.model, e, None);
                    let help = if b.len() == 2 && l[1].compatible(r[1]) {
                        format!(
                            "transpose the right operand: `{} * {}'`",
                            source(lhs),
                            source(rhs)
                        )
                    } else {
                        "check the order of the product and the declared shapes".to_string()
                    };
                    let inner = |x: Axis| match x {
                        Axis::Dim(d) => format!("`{}`", self.model.dims[d].name),
                        Axis::Fixed(n) => n.to_string(),
                        Axis::Unknown => "?".into(),
                    };
                    let message = format!(
                        "a product of {} and {}: the inner sizes {} and {} differ",
                        self.show(&a),
                        self.show(&b),
                        inner(l[1]),
                        inner(r[0])
                    );
                    return mismatch(self, message, help, diag::PRODUCT_RULE);
                }
                Some(if b.len() == 1 {
                    vec![l[0]]
                } else {
                    vec![l[0], r[1]]
                })
            }
            BinaryOp::Add | BinaryOp::Sub => {
                if a.is_empty() {
                    return Some(b);
                }
                if b.is_empty() || same_shape(&a, &b) {
                    return Some(a);
                }
                let message = format!(
                    "a sum of {} and {}: shapes differ",
                    self.show(&a),
                    self.show(&b)
                );
                let help = "add maps of the same shape".to_string();
                mismatch(self, message, help, diag::SUM_RULE)
            }
            BinaryOp::Div | BinaryOp::Pow => {
                if b.is_empty() {
                    return Some(a);
                }
                let what = if op == BinaryOp::Div {
                    "a divisor"
                } else {
                    "an exponent"
                };
                let message = format!("{what} must be a scalar");
                let help = "divide by, or raise to, a number or a parameter".to_string();
                mismatch(self, message, help, diag::SCALAR_RULE)
            }
        }
    }

    fn call(
        &mut self,
        law: ShapeLaw,
        callee: &Callee,
        inputs: &[ExprId],
        shapes: &[Shape],
    ) -> Option<Shape> {
        let name = match callee {
            Callee::Atom(a) => a.name,
            Callee::Norm(_) => "norm",
        };
        match law {
            ShapeLaw::Reduce => Some(vec![]),
            ShapeLaw::Elementwise => shapes.first().cloned(),
            ShapeLaw::PoolRows => {
                let s = shapes.first()?;
                let mut out = s.clone();
                if let Some(first) = out.first_mut() {
                    *first = Axis::Unknown;
                }
                Some(out)
            }
            ShapeLaw::SquareReduce => {
                let s = shapes.first()?;
                match s.as_slice() {
                    [a, b] if a.compatible(*b) => Some(vec![]),
                    _ => {
                        self.diags.push(diag::operand(
                            self.file(),
                            self.program.span(inputs[0]),
                            format!("`{name}` needs a square matrix"),
                            format!("this has shape {}", self.show(s)),
                            "apply it to a square factor such as `S : [r, r]`",
                            "a positive semidefinite matrix is square",
                        ));
                        None
                    }
                }
            }
            ShapeLaw::OuterProduct => {
                let mut out = Vec::with_capacity(shapes.len());
                let mut columns: Option<(Axis, ExprId)> = None;
                for (s, &input) in shapes.iter().zip(inputs) {
                    let [rows, cols] = s.as_slice() else {
                        self.diags.push(diag::operand(
                            self.file(),
                            self.program.span(input),
                            format!("each input of `{name}` must be a matrix [n_k, r]"),
                            format!("this has shape {}", self.show(s)),
                            "give each factor of a CP model the shape `[n_k, r]`",
                            "cp(A, B, C) = Σᵢ Aᵢ ⊗ Bᵢ ⊗ Cᵢ takes one column of each input per term",
                        ));
                        return None;
                    };
                    match columns {
                        Some((c, first)) if !c.compatible(*cols) => {
                            let first_shape = self
                                .table
                                .exprs
                                .get(first)
                                .map(Vec::as_slice)
                                .unwrap_or(&[]);
                            self.diags.push(diag::columns_differ(
                                self.file(),
                                name,
                                (self.program.span(first), &self.show(first_shape)),
                                (self.program.span(input), &self.show(s)),
                            ));
                            return None;
                        }
                        None => columns = Some((*cols, input)),
                        _ => {}
                    }
                    out.push(*rows);
                }
                Some(out)
            }
        }
    }
}
