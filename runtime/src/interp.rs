//! The reference interpreter: executes kernel programs over ndarray, one statement at a time.
//!
//! It is the oracle the generated back ends are tested against, so it is written for
//! obviousness: every statement computes a fresh value with the plainest ndarray code, except
//! GEMM, which goes to faer ([`crate::linalg`]).

use std::sync::Arc;

use ndarray::{Array1, Array2, ArrayD, Axis, IxDyn, Zip};

use crate::backend::{Backend, ExecError};
use crate::gauge;
use crate::kir::{BufId, DimId, Expr, KernelId, Program, Stmt, ordered_sum};
use crate::linalg;
use crate::value::{Observed, Value};

/// The reference interpreter.
pub struct Interpreter {
    program: Arc<Program>,
    extents: Vec<Option<usize>>,
    values: Vec<Option<Value>>,
}

impl Interpreter {
    /// An interpreter for a validated program.
    pub fn new(program: &Program) -> Interpreter {
        Interpreter {
            program: Arc::new(program.clone()),
            extents: program.initial_extents(),
            values: vec![None; program.buffers.len()],
        }
    }

    fn name(&self, id: BufId) -> String {
        self.program.buffer(id).name.clone()
    }

    fn value(&self, id: BufId) -> Result<&Value, ExecError> {
        self.values[id.0 as usize]
            .as_ref()
            .ok_or_else(|| ExecError::Unset(self.name(id)))
    }

    fn matrix(&self, id: BufId) -> Result<&Array2<f64>, ExecError> {
        match self.value(id)? {
            Value::Matrix(m) => Ok(m),
            other => Err(self.shape_error(id, other)),
        }
    }

    fn vector(&self, id: BufId) -> Result<Array1<f64>, ExecError> {
        match self.value(id)? {
            Value::Vector(v) => Ok(v.clone()),
            Value::Observed(o) => Ok(o.values.clone()),
            other => Err(self.shape_error(id, other)),
        }
    }

    fn observed(&self, id: BufId) -> Result<&Observed, ExecError> {
        match self.value(id)? {
            Value::Observed(o) => Ok(o),
            other => Err(self.shape_error(id, other)),
        }
    }

    fn expected_shape(&self, id: BufId) -> Vec<usize> {
        self.program
            .buffer(id)
            .shape
            .iter()
            .map(|d| self.extents[d.0 as usize].unwrap_or(usize::MAX))
            .collect()
    }

    fn shape_error(&self, id: BufId, found: &Value) -> ExecError {
        ExecError::Shape {
            name: self.name(id),
            expected: self.expected_shape(id),
            found: found.shape(),
        }
    }

    fn store(&mut self, id: BufId, value: Value) -> Result<(), ExecError> {
        let expected = self.expected_shape(id);
        if value.shape() != expected {
            return Err(ExecError::Shape {
                name: self.name(id),
                expected,
                found: value.shape(),
            });
        }
        self.values[id.0 as usize] = Some(value);
        Ok(())
    }

    /// Evaluates an expression over an iteration space of `shape` (scalars broadcast).
    fn eval(&self, expr: &Expr, shape: &[usize]) -> Result<Elem, ExecError> {
        Ok(match expr {
            Expr::Const(c) => Elem::Scalar(*c),
            Expr::Buf(id) => match self.value(*id)? {
                Value::Scalar(s) => Elem::Scalar(*s),
                other => {
                    let Some(view) = other.view_dyn() else {
                        return Err(self.shape_error(*id, other));
                    };
                    if view.shape() != shape {
                        return Err(self.shape_error(*id, other));
                    }
                    Elem::Array(view.to_owned())
                }
            },
            Expr::Unary(op, a) => match self.eval(a, shape)? {
                Elem::Scalar(s) => Elem::Scalar(op.apply(s)),
                Elem::Array(mut x) => {
                    x.mapv_inplace(|v| op.apply(v));
                    Elem::Array(x)
                }
            },
            Expr::Binary(op, a, b) => match (self.eval(a, shape)?, self.eval(b, shape)?) {
                (Elem::Scalar(x), Elem::Scalar(y)) => Elem::Scalar(op.apply(x, y)),
                (Elem::Array(mut x), Elem::Scalar(y)) => {
                    x.mapv_inplace(|v| op.apply(v, y));
                    Elem::Array(x)
                }
                (Elem::Scalar(x), Elem::Array(mut y)) => {
                    y.mapv_inplace(|v| op.apply(x, v));
                    Elem::Array(y)
                }
                (Elem::Array(mut x), Elem::Array(y)) => {
                    Zip::from(&mut x)
                        .and(&y)
                        .for_each(|u, v| *u = op.apply(*u, *v));
                    Elem::Array(x)
                }
            },
        })
    }

    fn exec(&mut self, stmt: &Stmt) -> Result<(), ExecError> {
        let result = match stmt {
            Stmt::Gemm {
                dst,
                a,
                trans_a,
                b,
                trans_b,
                alpha,
                accumulate,
            } => {
                let (av, bv) = (self.matrix(*a)?.view(), self.matrix(*b)?.view());
                let mut out = if *accumulate {
                    self.matrix(*dst)?.clone()
                } else {
                    let rows = if *trans_a { av.ncols() } else { av.nrows() };
                    let cols = if *trans_b { bv.nrows() } else { bv.ncols() };
                    Array2::zeros((rows, cols))
                };
                linalg::gemm_into(&mut out, *accumulate, av, *trans_a, bv, *trans_b, *alpha);
                Value::Matrix(out)
            }
            Stmt::Sample { pattern, a, b, .. } => {
                let (obs, a, b) = (self.observed(*pattern)?, self.matrix(*a)?, self.matrix(*b)?);
                let out: Array1<f64> = obs
                    .row
                    .iter()
                    .zip(&obs.col)
                    .map(|(i, j)| {
                        let (x, y) = (a.row(*i as usize), b.row(*j as usize));
                        ordered_sum(x.iter().zip(y.iter()).map(|(u, v)| u * v))
                    })
                    .collect();
                Value::Vector(out)
            }
            Stmt::KhatriRao { dst, a, b } => {
                let (a, b) = (self.matrix(*a)?, self.matrix(*b)?);
                let rows = self.expected_shape(*dst).first().copied().unwrap_or(0);
                if rows != a.nrows() * b.nrows() || a.ncols() != b.ncols() {
                    return Err(ExecError::Backend(format!(
                        "khatri_rao: {} rows for [{}, {}] ⊙ [{}, {}]",
                        rows,
                        a.nrows(),
                        a.ncols(),
                        b.nrows(),
                        b.ncols()
                    )));
                }
                let nb = b.nrows();
                let out = Array2::from_shape_fn((rows, a.ncols()), |(q, c)| {
                    a[(q / nb, c)] * b[(q % nb, c)]
                });
                Value::Matrix(out)
            }
            Stmt::KhatriRaoAdjoint {
                dst,
                src,
                other,
                over_fast,
            } => {
                let (src, other) = (self.matrix(*src)?, self.matrix(*other)?);
                let rows = self.expected_shape(*dst).first().copied().unwrap_or(0);
                let (na, nb) = if *over_fast {
                    (rows, other.nrows())
                } else {
                    (other.nrows(), rows)
                };
                // An unbound extent reads as usize::MAX: the product must not overflow.
                if na.checked_mul(nb) != Some(src.nrows()) || src.ncols() != other.ncols() {
                    return Err(ExecError::Backend(format!(
                        "khatri_rao_adjoint: [{}, {}] against [{}, {}] into {rows} rows",
                        src.nrows(),
                        src.ncols(),
                        other.nrows(),
                        other.ncols()
                    )));
                }
                let out = Array2::from_shape_fn((rows, src.ncols()), |(q, c)| {
                    if *over_fast {
                        (0..nb).fold(0.0, |acc, j| acc + src[(q * nb + j, c)] * other[(j, c)])
                    } else {
                        (0..na).fold(0.0, |acc, i| acc + src[(i * nb + q, c)] * other[(i, c)])
                    }
                });
                Value::Matrix(out)
            }
            Stmt::Copy { dst, src } => {
                let expected = self.expected_shape(*dst);
                let value = self.value(*src)?;
                let flat: Vec<f64> = match value {
                    Value::Scalar(x) => vec![*x],
                    other => match other.view_dyn() {
                        Some(view) => view.iter().copied().collect(),
                        None => Vec::new(),
                    },
                };
                let count = expected.iter().try_fold(1usize, |a, &b| a.checked_mul(b));
                let fits = count == Some(flat.len());
                match (fits, expected.as_slice()) {
                    (true, []) => Value::Scalar(flat[0]),
                    (true, [_]) => Value::Vector(Array1::from(flat)),
                    (true, &[rows, cols]) => Array2::from_shape_vec((rows, cols), flat)
                        .map(Value::Matrix)
                        .map_err(|e| ExecError::Backend(e.to_string()))?,
                    _ => return Err(self.shape_error(*src, value)),
                }
            }
            Stmt::SpMM {
                dst,
                pattern,
                values,
                b,
                trans,
                alpha,
                accumulate,
            } => {
                let obs = self.observed(*pattern)?;
                let vals = self.vector(*values)?;
                let b = self.matrix(*b)?;
                let rows = if *trans { obs.cols } else { obs.rows };
                let mut out = if *accumulate {
                    self.matrix(*dst)?.clone()
                } else {
                    Array2::zeros((rows, b.ncols()))
                };
                for ((i, j), v) in obs.row.iter().zip(&obs.col).zip(vals.iter()) {
                    let (to, from) = if *trans { (*j, *i) } else { (*i, *j) };
                    out.row_mut(to as usize)
                        .scaled_add(alpha * v, &b.row(from as usize));
                }
                Value::Matrix(out)
            }
            Stmt::Map { dst, expr } => {
                let shape = self.expected_shape(*dst);
                match self.eval(expr, &shape)? {
                    Elem::Scalar(s) if shape.is_empty() => Value::Scalar(s),
                    Elem::Scalar(s) => from_dyn(ArrayD::from_elem(IxDyn(&shape), s)),
                    Elem::Array(x) => from_dyn(x),
                }
            }
            Stmt::Sum { expr, .. } => {
                let mut ids = Vec::new();
                expr.buffers(&mut ids);
                let mut shape = Vec::new();
                for id in ids {
                    let s = self.value(id)?.shape();
                    if !s.is_empty() {
                        shape = s;
                        break;
                    }
                }
                match self.eval(expr, &shape)? {
                    Elem::Scalar(s) => Value::Scalar(s * shape.iter().product::<usize>() as f64),
                    Elem::Array(x) => Value::Scalar(ordered_sum(x.iter().copied())),
                }
            }
            Stmt::ColumnGauge { src, gauge: g, .. } => {
                let src = self.matrix(*src)?;
                let out: Array1<f64> = src
                    .axis_iter(Axis(1))
                    .map(|col| gauge::value(g, &col.to_vec()))
                    .collect();
                Value::Vector(out)
            }
            Stmt::ColumnProx {
                src,
                weights,
                gauge: g,
                ..
            } => {
                let mut out = self.matrix(*src)?.clone();
                let weights = self.vector(*weights)?;
                for (mut col, w) in out.axis_iter_mut(Axis(1)).zip(weights.iter()) {
                    let mut x = col.to_vec();
                    gauge::prox(g, &mut x, *w);
                    col.assign(&Array1::from(x));
                }
                Value::Matrix(out)
            }
        };
        self.store(stmt.dst(), result)
    }
}

/// An intermediate of expression evaluation.
enum Elem {
    Scalar(f64),
    Array(ArrayD<f64>),
}

fn from_dyn(x: ArrayD<f64>) -> Value {
    match x.ndim() {
        0 => Value::Scalar(x.sum()),
        1 => Value::Vector(x.into_dimensionality().unwrap_or_default()),
        _ => Value::Matrix(x.into_dimensionality().unwrap_or_default()),
    }
}

impl Backend for Interpreter {
    fn name(&self) -> &'static str {
        "interp"
    }

    fn bind_dim(&mut self, dim: DimId, extent: usize) {
        self.extents[dim.0 as usize] = Some(extent);
        for (scaled, extent) in self.program.scaled_extents(dim, extent) {
            self.extents[scaled.0 as usize] = Some(extent);
        }
    }

    fn set(&mut self, buffer: BufId, value: Value) -> Result<(), ExecError> {
        self.store(buffer, value)
    }

    fn get(&self, buffer: BufId) -> Result<Value, ExecError> {
        self.value(buffer).cloned()
    }

    fn run(&mut self, kernel: KernelId) -> Result<(), ExecError> {
        let program = Arc::clone(&self.program);
        for stmt in &program.kernel(kernel).body {
            self.exec(stmt)?;
        }
        Ok(())
    }
}
