//! The WGSL writer: one compute shader per kernel-IR statement, deterministic (stable names,
//! stable order), with the scalar type a parameter ([`Precision`]).
//!
//! Every shader has the same frame: binding 0 holds the extents of the program's dimensions
//! (`dims`, written by the executor when a dimension is bound), the next bindings are the
//! buffers the statement reads and writes (`b<id>_<name>`, row-major, the destination
//! `read_write` and everything else `read`), then the observed patterns' index arrays and the
//! reduction scratch where needed. Extents are read at run time, so a shader never depends on
//! the data's sizes; every loop is a grid-stride loop, so a dispatch never needs more than
//! [`MAX_WORKGROUPS`] workgroups per dimension.
//!
//! | statement | shader |
//! |---|---|
//! | `gemm` | 16 × 16 tiles of the output per workgroup, K in steps of 16 through workgroup memory |
//! | `sample` | one invocation per observed entry (a dot product of two rows) |
//! | `spmm` | one invocation per output element, over a CSR (or, transposed, CSC) row; no atomics |
//! | `map` | one invocation per element; scalar buffers broadcast |
//! | `sum` | per-invocation partial sums, a workgroup tree, then a second pass over ≤ 256 partials |
//! | `colgauge`, `colprox` | one invocation per column (prox: ℓ1, ℓ2, ℓ∞ by Michelot's projection, TV by Condat's direct algorithm in place) |

use std::collections::BTreeSet;
use std::fmt::{self, Write};

use crate::kir::{Binary, BufId, DimId, Expr, Gauge, GaugeAtom, Program, Stmt, Unary};

use super::{GpuError, Precision};

/// Invocations per workgroup of the one-dimensional shaders.
pub const WORKGROUP: u32 = 256;
/// Side of a GEMM output tile (a workgroup is `TILE × TILE` invocations).
pub const TILE: u32 = 16;
/// Workgroups of a reduction's first pass at most (the second pass is one workgroup).
pub const MAX_PARTIALS: u32 = WORKGROUP;
/// Workgroups per dispatch dimension at most (WebGPU's default limit, lavapipe's too).
pub const MAX_WORKGROUPS: u32 = 65_535;

/// The index arrays of an observed pattern, built by the executor when the pattern is bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Aux {
    /// Row of each entry, `[nnz]`.
    Row,
    /// Column of each entry, `[nnz]`.
    Col,
    /// CSR row pointer, `[rows + 1]`.
    RowPtr,
    /// CSC column pointer, `[cols + 1]`.
    ColPtr,
    /// Entries in column-major order (indices into the row-major entries), `[nnz]`.
    Perm,
}

impl Aux {
    fn suffix(self) -> &'static str {
        match self {
            Aux::Row => "row",
            Aux::Col => "col",
            Aux::RowPtr => "row_ptr",
            Aux::ColPtr => "col_ptr",
            Aux::Perm => "perm",
        }
    }
}

/// What a shader's binding holds (binding k of group 0 is the k-th entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Binding {
    /// The extents of every dimension, `array<u32>`.
    Dims,
    /// A kernel-IR buffer.
    Buffer {
        /// Which.
        id: BufId,
        /// Bound `read_write` (the statement's destination).
        writable: bool,
    },
    /// An index array of an observed pattern.
    Aux {
        /// The observed buffer.
        pattern: BufId,
        /// Which array.
        aux: Aux,
    },
    /// The scratch of a reduction's partial sums, [`MAX_PARTIALS`] scalars.
    Partials,
}

/// How many workgroups one pass of a shader dispatches (all clamped to [`MAX_WORKGROUPS`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grid {
    /// ⌈Π extents / WORKGROUP⌉ workgroups in x.
    Linear(Vec<DimId>),
    /// ⌈cols / TILE⌉ × ⌈rows / TILE⌉ workgroups.
    Tiles {
        /// Rows of the output.
        rows: DimId,
        /// Columns of the output.
        cols: DimId,
    },
    /// min(⌈Π extents / WORKGROUP⌉, MAX_PARTIALS) workgroups (a reduction's first pass).
    Partials(Vec<DimId>),
    /// One workgroup.
    Single,
}

/// One dispatch of a shader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pass {
    /// The entry point.
    pub entry: &'static str,
    /// Its workgroup count.
    pub grid: Grid,
}

/// A generated compute shader with what the executor needs to run it.
#[derive(Clone, Debug, PartialEq)]
pub struct Shader {
    /// `kernel.statement.kind` of the first statement that uses it.
    pub label: String,
    /// The WGSL module.
    pub source: String,
    /// Binding k of group 0 holds `bindings[k]`.
    pub bindings: Vec<Binding>,
    /// Its dispatches, in order.
    pub passes: Vec<Pass>,
}

/// The shaders of a program: identical statements (the same text) share one shader.
#[derive(Clone, Debug, PartialEq)]
pub struct Shaders {
    /// The distinct shaders, in order of first use.
    pub shaders: Vec<Shader>,
    /// For each kernel, the shader of each statement.
    pub kernels: Vec<Vec<usize>>,
}

/// Generates the shaders of every statement of a validated program.
pub fn shaders(program: &Program, precision: Precision) -> Result<Shaders, GpuError> {
    let mut out = Shaders {
        shaders: Vec::new(),
        kernels: Vec::new(),
    };
    for kernel in &program.kernels {
        let mut ids = Vec::new();
        for (k, stmt) in kernel.body.iter().enumerate() {
            let mut shader = statement(program, stmt, precision)?;
            let index = match out.shaders.iter().position(|s| s.source == shader.source) {
                Some(i) => i,
                None => {
                    shader.label = format!("{}.{}.{}", kernel.name, k, shader.label);
                    out.shaders.push(shader);
                    out.shaders.len() - 1
                }
            };
            ids.push(index);
        }
        out.kernels.push(ids);
    }
    Ok(out)
}

/// Every shader of a program as one text (what `hfc emit wgsl` prints): a header per kernel
/// naming its shaders, then each distinct shader once.
pub fn emit_wgsl(program: &Program, precision: Precision) -> Result<String, GpuError> {
    let all = shaders(program, precision)?;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "// program {}: {} shaders, scalar type {}",
        program.name,
        all.shaders.len(),
        precision.wgsl()
    );
    for (kernel, ids) in program.kernels.iter().zip(&all.kernels) {
        let names: Vec<String> = ids.iter().map(|i| format!("#{i}")).collect();
        let _ = writeln!(text, "// kernel {}: {}", kernel.name, names.join(", "));
    }
    for (k, shader) in all.shaders.iter().enumerate() {
        let _ = writeln!(text, "\n// ---- shader #{k}: {}", shader.label);
        text.push_str(&shader.source);
    }
    Ok(text)
}

/// Writes WGSL text with explicit indentation levels.
pub struct Writer<W: Write> {
    out: W,
    indent: usize,
}

impl<W: Write> Writer<W> {
    /// A writer into `out`.
    pub fn new(out: W) -> Writer<W> {
        Writer { out, indent: 0 }
    }

    /// One line at the current indentation.
    pub fn line(&mut self, text: impl fmt::Display) -> fmt::Result {
        for _ in 0..self.indent {
            self.out.write_str("    ")?;
        }
        writeln!(self.out, "{text}")
    }

    /// `text {` and one level deeper.
    pub fn open(&mut self, text: impl fmt::Display) -> fmt::Result {
        self.line(format_args!("{text} {{"))?;
        self.indent += 1;
        Ok(())
    }

    /// One level shallower and `}`.
    pub fn close(&mut self) -> fmt::Result {
        self.indent = self.indent.saturating_sub(1);
        self.line("}")
    }

    /// The text written.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Helper functions a shader's expressions call, emitted once each, in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Helper {
    Exp,
    Log,
    Sqr,
    Log1p,
    Sigmoid,
    Softplus,
    XLogX,
}

/// The identifier of a buffer in WGSL.
fn ident(program: &Program, id: BufId) -> String {
    let name: String = program
        .buffer(id)
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("b{}_{name}", id.0)
}

/// The generator of one statement's shader.
struct Gen<'p> {
    program: &'p Program,
    precision: Precision,
    bindings: Vec<Binding>,
    helpers: BTreeSet<Helper>,
    /// Workgroup arrays (name, length).
    shared: Vec<(&'static str, u32)>,
    body: Writer<String>,
}

type Res<T> = Result<T, GpuError>;

fn fmt_err(_: fmt::Error) -> GpuError {
    GpuError::Codegen("formatting failed".into())
}

impl<'p> Gen<'p> {
    fn new(program: &'p Program, precision: Precision) -> Gen<'p> {
        Gen {
            program,
            precision,
            bindings: vec![Binding::Dims],
            helpers: BTreeSet::new(),
            shared: Vec::new(),
            body: Writer::new(String::new()),
        }
    }

    fn line(&mut self, text: impl fmt::Display) -> Res<()> {
        self.body.line(text).map_err(fmt_err)
    }
    fn open(&mut self, text: impl fmt::Display) -> Res<()> {
        self.body.open(text).map_err(fmt_err)
    }
    fn close(&mut self) -> Res<()> {
        self.body.close().map_err(fmt_err)
    }

    /// Binds a buffer (once; the destination first, so that it is the writable one) and
    /// returns its identifier.
    fn buf(&mut self, id: BufId, writable: bool) -> String {
        if !self
            .bindings
            .iter()
            .any(|b| matches!(b, Binding::Buffer { id: i, .. } if *i == id))
        {
            self.bindings.push(Binding::Buffer { id, writable });
        }
        ident(self.program, id)
    }

    fn aux(&mut self, pattern: BufId, aux: Aux) -> String {
        let binding = Binding::Aux { pattern, aux };
        if !self.bindings.contains(&binding) {
            self.bindings.push(binding);
        }
        format!("{}_{}", ident(self.program, pattern), aux.suffix())
    }

    fn partials(&mut self) -> &'static str {
        if !self.bindings.contains(&Binding::Partials) {
            self.bindings.push(Binding::Partials);
        }
        "partials"
    }

    fn dim(&self, d: DimId) -> String {
        format!("dims[{}u]", d.0)
    }

    /// The product of extents as a u32 expression.
    fn extent(&self, dims: &[DimId]) -> String {
        if dims.is_empty() {
            "1u".into()
        } else {
            let parts: Vec<String> = dims.iter().map(|d| self.dim(*d)).collect();
            parts.join(" * ")
        }
    }

    fn shape(&self, id: BufId) -> &'p [DimId] {
        &self.program.buffer(id).shape
    }

    /// A constant of the scalar type.
    fn constant(&self, c: f64) -> Res<String> {
        match self.precision {
            Precision::F32 => {
                let v = c as f32;
                if !v.is_finite() {
                    return Err(GpuError::Constant(c, "f32"));
                }
                Ok(format!("{v:?}f"))
            }
            Precision::F64 => {
                if !c.is_finite() {
                    return Err(GpuError::Constant(c, "f64"));
                }
                Ok(format!("{c:?}lf"))
            }
        }
    }

    /// An expression at element `i` (scalar buffers at element 0).
    fn expr(&mut self, e: &Expr, dst: Option<BufId>) -> Res<String> {
        Ok(match e {
            Expr::Buf(id) => {
                let name = self.buf(*id, Some(*id) == dst);
                if self.shape(*id).is_empty() {
                    format!("{name}[0]")
                } else {
                    format!("{name}[i]")
                }
            }
            Expr::Const(c) => format!("T({})", self.constant(*c)?),
            Expr::Unary(op, a) => {
                let a = self.expr(a, dst)?;
                match op {
                    Unary::Neg => format!("(-{a})"),
                    Unary::Abs => format!("abs({a})"),
                    Unary::Square => self.call(Helper::Sqr, &a),
                    Unary::Sqrt => format!("sqrt({a})"),
                    Unary::Exp => self.call(Helper::Exp, &a),
                    Unary::Log1p => self.call(Helper::Log1p, &a),
                    Unary::Sigmoid => self.call(Helper::Sigmoid, &a),
                    Unary::Softplus => self.call(Helper::Softplus, &a),
                    Unary::XLogX => self.call(Helper::XLogX, &a),
                    Unary::Step => format!("select(T(0), T(1), {a} > T(0))"),
                }
            }
            Expr::Binary(op, a, b) => {
                let (a, b) = (self.expr(a, dst)?, self.expr(b, dst)?);
                match op {
                    Binary::Add => format!("({a} + {b})"),
                    Binary::Sub => format!("({a} - {b})"),
                    Binary::Mul => format!("({a} * {b})"),
                    Binary::Div => format!("({a} / {b})"),
                    Binary::Min => format!("min({a}, {b})"),
                    Binary::Max => format!("max({a}, {b})"),
                }
            }
        })
    }

    fn call(&mut self, helper: Helper, arg: &str) -> String {
        self.helpers.insert(helper);
        // Every helper builds on exp and log (software versions for f64).
        if matches!(
            helper,
            Helper::Log1p | Helper::Sigmoid | Helper::Softplus | Helper::XLogX
        ) {
            self.helpers.insert(Helper::Exp);
            self.helpers.insert(Helper::Log);
            if helper == Helper::Softplus {
                self.helpers.insert(Helper::Log1p);
            }
        }
        let name = match helper {
            Helper::Exp => "hfc_exp",
            Helper::Log => "hfc_log",
            Helper::Sqr => "hfc_sqr",
            Helper::Log1p => "hfc_log1p",
            Helper::Sigmoid => "hfc_sigmoid",
            Helper::Softplus => "hfc_softplus",
            Helper::XLogX => "hfc_xlogx",
        };
        format!("{name}({arg})")
    }

    /// Grid-stride loop header over `n` (an expression) with index `i`.
    fn linear_loop(&mut self, n: &str) -> Res<()> {
        self.line(format_args!("let n = {n};"))?;
        self.line(format_args!("let stride = nwg.x * {WORKGROUP}u;"))?;
        self.open("for (var i = gid.x; i < n; i += stride)")
    }

    fn linear_entry(&mut self) -> Res<()> {
        self.line(format_args!("@compute @workgroup_size({WORKGROUP})"))?;
        self.open("fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>)")
    }

    /// Assembles the module.
    fn finish(self, label: &str, passes: Vec<Pass>) -> Res<Shader> {
        let mut w = Writer::new(String::new());
        let t = self.precision.wgsl();
        let mut head = || -> fmt::Result {
            w.line(format_args!("// {label}"))?;
            w.line(format_args!("alias T = {t};"))?;
            for (k, binding) in self.bindings.iter().enumerate() {
                let (access, name, ty) = match binding {
                    Binding::Dims => ("read", "dims".to_string(), "u32"),
                    Binding::Buffer { id, writable } => (
                        if *writable { "read_write" } else { "read" },
                        ident(self.program, *id),
                        "T",
                    ),
                    Binding::Aux { pattern, aux } => (
                        "read",
                        format!("{}_{}", ident(self.program, *pattern), aux.suffix()),
                        "u32",
                    ),
                    Binding::Partials => ("read_write", "partials".to_string(), "T"),
                };
                w.line(format_args!(
                    "@group(0) @binding({k}) var<storage, {access}> {name}: array<{ty}>;"
                ))?;
            }
            for (name, len) in &self.shared {
                w.line(format_args!("var<workgroup> {name}: array<T, {len}>;"))?;
            }
            for helper in &self.helpers {
                write_helper(&mut w, *helper, self.precision)?;
            }
            Ok(())
        };
        head().map_err(fmt_err)?;
        let mut source = w.into_inner();
        source.push_str(&self.body.into_inner());
        Ok(Shader {
            label: label.to_string(),
            source,
            bindings: self.bindings,
            passes,
        })
    }
}

fn write_helper<W: Write>(w: &mut Writer<W>, helper: Helper, precision: Precision) -> fmt::Result {
    let f64 = precision == Precision::F64;
    match helper {
        Helper::Exp if f64 => {
            // Vulkan's exp and log are 32-bit only: a software exp for f64 (range reduction by
            // ln 2 in two parts, then a degree-13 Taylor polynomial on |r| ≤ ln 2 / 2).
            w.open("fn hfc_exp(x: T) -> T")?;
            w.line("if (x != x) { return x; }")?;
            w.line("if (x > 709.8lf) { return x * 1e308lf; }")?;
            w.line("if (x < -745.2lf) { return 0.0lf; }")?;
            w.line("let k = round(x * 1.4426950408889634lf);")?;
            w.line("let r = (x - k * 0.6931471803691238lf) - k * 1.9082149292705877e-10lf;")?;
            w.line("var p = 1.0lf;")?;
            w.open("for (var j = 13; j >= 1; j--)")?;
            w.line("p = 1.0lf + p * r / f64(j);")?;
            w.close()?;
            w.line("return ldexp(p, i32(k));")?;
            w.close()
        }
        Helper::Exp => {
            w.open("fn hfc_exp(x: T) -> T")?;
            w.line("return exp(x);")?;
            w.close()
        }
        Helper::Log if f64 => {
            // log x = e ln 2 + 2 atanh(s), s = (m − 1)/(m + 1), x = m 2^e, m ∈ [√½, √2): the
            // exponent by exact scalings by powers of two (no frexp, which needs i64 here).
            w.open("fn hfc_log(x: T) -> T")?;
            w.line("if (x != x || x < 0.0lf) { return (x - x) / (x - x); }")?;
            w.line("if (x == 0.0lf) { return -1.0lf / abs(x); }")?;
            w.line("if (x > 1.7976931348623157e308lf) { return x; }")?;
            w.line("var m = x;")?;
            w.line("var e = 0.0lf;")?;
            for step in [256, 64, 16, 4, 1] {
                let (up, down) = (
                    format!("{:?}lf", 2f64.powi(step)),
                    format!("{:?}lf", 2f64.powi(-step)),
                );
                w.line(format_args!(
                    "while (m >= {up}) {{ m = m * {down}; e = e + {step}.0lf; }}"
                ))?;
                w.line(format_args!(
                    "while (m < {down}) {{ m = m * {up}; e = e - {step}.0lf; }}"
                ))?;
            }
            w.line("if (m < 0.7071067811865476lf) { m = m * 2.0lf; e = e - 1.0lf; }")?;
            w.line("if (m >= 1.4142135623730951lf) { m = m * 0.5lf; e = e + 1.0lf; }")?;
            w.line("let s = (m - 1.0lf) / (m + 1.0lf);")?;
            w.line("let s2 = s * s;")?;
            w.line("var p = 0.0lf;")?;
            w.open("for (var j = 23; j >= 1; j -= 2)")?;
            w.line("p = 1.0lf / f64(j) + s2 * p;")?;
            w.close()?;
            w.line("return e * 0.6931471805599453lf + 2.0lf * s * p;")?;
            w.close()
        }
        Helper::Log => {
            w.open("fn hfc_log(x: T) -> T")?;
            w.line("return log(x);")?;
            w.close()
        }
        Helper::Sqr => {
            w.open("fn hfc_sqr(x: T) -> T")?;
            w.line("return x * x;")?;
            w.close()
        }
        Helper::Log1p => {
            // Goldberg's log1p: exact to a few ulps without a library log1p.
            w.open("fn hfc_log1p(x: T) -> T")?;
            w.line("let u = T(1) + x;")?;
            w.line("if (u == T(1)) { return x; }")?;
            w.line("return hfc_log(u) * x / (u - T(1));")?;
            w.close()
        }
        Helper::Sigmoid => {
            w.open("fn hfc_sigmoid(x: T) -> T")?;
            w.line("if (x >= T(0)) { return T(1) / (T(1) + hfc_exp(-x)); }")?;
            w.line("let e = hfc_exp(x);")?;
            w.line("return e / (T(1) + e);")?;
            w.close()
        }
        Helper::Softplus => {
            w.open("fn hfc_softplus(x: T) -> T")?;
            w.line("return max(x, T(0)) + hfc_log1p(hfc_exp(-abs(x)));")?;
            w.close()
        }
        Helper::XLogX => {
            w.open("fn hfc_xlogx(x: T) -> T")?;
            w.line("if (x == T(0)) { return T(0); }")?;
            w.line("return x * hfc_log(x);")?;
            w.close()
        }
    }
}

/// The shader of one statement.
fn statement(program: &Program, stmt: &Stmt, precision: Precision) -> Res<Shader> {
    let mut g = Gen::new(program, precision);
    match stmt {
        Stmt::Map { dst, expr } => {
            let d = g.buf(*dst, true);
            let value = g.expr(expr, Some(*dst))?;
            let shape = g.shape(*dst).to_vec();
            let n = g.extent(&shape);
            g.linear_entry()?;
            g.linear_loop(&n)?;
            if shape.is_empty() {
                g.line(format_args!("{d}[0] = {value};"))?;
            } else {
                g.line(format_args!("{d}[i] = {value};"))?;
            }
            g.close()?;
            g.close()?;
            g.finish(
                "map",
                vec![Pass {
                    entry: "main",
                    grid: Grid::Linear(shape),
                }],
            )
        }
        Stmt::Sum { dst, expr } => sum(g, *dst, expr),
        Stmt::Gemm {
            dst,
            a,
            trans_a,
            b,
            trans_b,
            alpha,
            accumulate,
        } => {
            if dst == a || dst == b {
                return Err(GpuError::Codegen(format!(
                    "gemm into one of its operands (%{})",
                    program.buffer(*dst).name
                )));
            }
            gemm(g, *dst, *a, *trans_a, *b, *trans_b, *alpha, *accumulate)
        }
        Stmt::Sample { dst, pattern, a, b } => {
            let d = g.buf(*dst, true);
            let (an, bn) = (g.buf(*a, false), g.buf(*b, false));
            let (row, col) = (g.aux(*pattern, Aux::Row), g.aux(*pattern, Aux::Col));
            let space = g.shape(*dst).to_vec();
            let n = g.extent(&space);
            let k = g.dim(g.shape(*a)[1]);
            g.linear_entry()?;
            g.line(format_args!("let k = {k};"))?;
            g.linear_loop(&n)?;
            g.line(format_args!("let ra = {row}[i] * k;"))?;
            g.line(format_args!("let rb = {col}[i] * k;"))?;
            g.line("var acc = T(0);")?;
            g.open("for (var c = 0u; c < k; c++)")?;
            g.line(format_args!("acc += {an}[ra + c] * {bn}[rb + c];"))?;
            g.close()?;
            g.line(format_args!("{d}[i] = acc;"))?;
            g.close()?;
            g.close()?;
            g.finish(
                "sample",
                vec![Pass {
                    entry: "main",
                    grid: Grid::Linear(space),
                }],
            )
        }
        Stmt::KhatriRao { dst, a, b } => {
            if dst == a || dst == b {
                return Err(GpuError::Codegen(format!(
                    "khatri_rao into one of its operands (%{})",
                    program.buffer(*dst).name
                )));
            }
            let d = g.buf(*dst, true);
            let (an, bn) = (g.buf(*a, false), g.buf(*b, false));
            let space = g.shape(*dst).to_vec();
            let n = g.extent(&space);
            let k = g.dim(g.shape(*a)[1]);
            let na = g.dim(g.shape(*a)[0]);
            let nb = g.dim(g.shape(*b)[0]);
            g.linear_entry()?;
            g.line(format_args!("let k = {k};"))?;
            g.line(format_args!("let nb = {nb};"))?;
            g.line(format_args!("let rows = {na} * nb;"))?;
            g.linear_loop(&n)?;
            g.line("let q = i / k;")?;
            g.line("let c = i % k;")?;
            // Rows past na·nb (a host binding that disagrees) are left alone.
            g.open("if (q < rows)")?;
            g.line(format_args!(
                "{d}[i] = {an}[(q / nb) * k + c] * {bn}[(q % nb) * k + c];"
            ))?;
            g.close()?;
            g.close()?;
            g.close()?;
            g.finish(
                "khatri_rao",
                vec![Pass {
                    entry: "main",
                    grid: Grid::Linear(space),
                }],
            )
        }
        Stmt::KhatriRaoAdjoint {
            dst,
            src,
            other,
            over_fast,
        } => {
            if dst == src || dst == other {
                return Err(GpuError::Codegen(format!(
                    "khatri_rao_adjoint into one of its operands (%{})",
                    program.buffer(*dst).name
                )));
            }
            let d = g.buf(*dst, true);
            let (sn, on) = (g.buf(*src, false), g.buf(*other, false));
            let space = g.shape(*dst).to_vec();
            let n = g.extent(&space);
            let k = g.dim(g.shape(*src)[1]);
            let src_rows = g.dim(g.shape(*src)[0]);
            let other_rows = g.dim(g.shape(*other)[0]);
            let out_rows = g.dim(g.shape(*dst)[0]);
            g.linear_entry()?;
            g.line(format_args!("let k = {k};"))?;
            g.line(format_args!("let src_rows = {src_rows};"))?;
            g.linear_loop(&n)?;
            g.line("let q = i / k;")?;
            g.line("let c = i % k;")?;
            g.line("var acc = T(0);")?;
            // Ascending order, as the interpreter; rows past src's end are not read.
            if *over_fast {
                g.line(format_args!("let nb = {other_rows};"))?;
                g.open("if ((q + 1u) * nb <= src_rows)")?;
                g.open("for (var j = 0u; j < nb; j++)")?;
                g.line(format_args!(
                    "acc += {sn}[(q * nb + j) * k + c] * {on}[j * k + c];"
                ))?;
            } else {
                g.line(format_args!("let nb = {out_rows};"))?;
                g.open(format_args!("for (var s = 0u; s < {other_rows}; s++)"))?;
                g.open("if (s * nb + q < src_rows)")?;
                g.line(format_args!(
                    "acc += {sn}[(s * nb + q) * k + c] * {on}[s * k + c];"
                ))?;
            }
            g.close()?;
            g.close()?;
            g.line(format_args!("{d}[i] = acc;"))?;
            g.close()?;
            g.close()?;
            g.finish(
                "khatri_rao_adjoint",
                vec![Pass {
                    entry: "main",
                    grid: Grid::Linear(space),
                }],
            )
        }
        Stmt::Copy { dst, src } => {
            if dst == src {
                return Err(GpuError::Codegen(format!(
                    "copy onto itself (%{})",
                    program.buffer(*dst).name
                )));
            }
            let d = g.buf(*dst, true);
            let sn = g.buf(*src, false);
            let space = g.shape(*dst).to_vec();
            let n = g.extent(&space);
            let src_space = g.shape(*src).to_vec();
            let m = g.extent(&src_space);
            g.linear_entry()?;
            g.line(format_args!("let available = {m};"))?;
            g.linear_loop(&n)?;
            g.open("if (i < available)")?;
            g.line(format_args!("{d}[i] = {sn}[i];"))?;
            g.close()?;
            g.close()?;
            g.close()?;
            g.finish(
                "copy",
                vec![Pass {
                    entry: "main",
                    grid: Grid::Linear(space),
                }],
            )
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
            let d = g.buf(*dst, true);
            let vals = g.buf(*values, false);
            let bn = g.buf(*b, false);
            let space = g.shape(*dst).to_vec();
            let n = g.extent(&space);
            let c = g.dim(g.shape(*b)[1]);
            let alpha = g.constant(*alpha)?;
            g.linear_entry()?;
            g.line(format_args!("let cols = {c};"))?;
            g.linear_loop(&n)?;
            g.line("let orow = i / cols;")?;
            g.line("let c = i % cols;")?;
            g.line("var acc = T(0);")?;
            if *trans {
                let ptr = g.aux(*pattern, Aux::ColPtr);
                let perm = g.aux(*pattern, Aux::Perm);
                let row = g.aux(*pattern, Aux::Row);
                g.open(format_args!(
                    "for (var q = {ptr}[orow]; q < {ptr}[orow + 1u]; q++)"
                ))?;
                g.line(format_args!("let e = {perm}[q];"))?;
                g.line(format_args!(
                    "acc += {vals}[e] * {bn}[{row}[e] * cols + c];"
                ))?;
            } else {
                let ptr = g.aux(*pattern, Aux::RowPtr);
                let col = g.aux(*pattern, Aux::Col);
                g.open(format_args!(
                    "for (var e = {ptr}[orow]; e < {ptr}[orow + 1u]; e++)"
                ))?;
                g.line(format_args!(
                    "acc += {vals}[e] * {bn}[{col}[e] * cols + c];"
                ))?;
            }
            g.close()?;
            if *accumulate {
                g.line(format_args!("{d}[i] = {d}[i] + T({alpha}) * acc;"))?;
            } else {
                g.line(format_args!("{d}[i] = T({alpha}) * acc;"))?;
            }
            g.close()?;
            g.close()?;
            g.finish(
                "spmm",
                vec![Pass {
                    entry: "main",
                    grid: Grid::Linear(space),
                }],
            )
        }
        Stmt::ColumnGauge { dst, src, gauge } => {
            let d = g.buf(*dst, true);
            let s = g.buf(*src, false);
            let (rows, cols) = (g.shape(*src)[0], g.shape(*src)[1]);
            let (rows_e, cols_e) = (g.dim(rows), g.dim(cols));
            g.linear_entry()?;
            g.line(format_args!("let rows = {rows_e};"))?;
            g.line(format_args!("let k = {cols_e};"))?;
            g.linear_loop("k")?;
            g.line("var total = T(0);")?;
            for (w, atom) in &gauge.terms {
                let w = g.constant(*w)?;
                g.open("")?;
                g.line("var s = T(0);")?;
                match atom {
                    GaugeAtom::L1 => {
                        g.open("for (var r = 0u; r < rows; r++)")?;
                        g.line(format_args!("s += abs({s}[r * k + i]);"))?;
                        g.close()?;
                    }
                    GaugeAtom::L2 => {
                        g.open("for (var r = 0u; r < rows; r++)")?;
                        g.line(format_args!("let v = {s}[r * k + i];"))?;
                        g.line("s += v * v;")?;
                        g.close()?;
                        g.line("s = sqrt(s);")?;
                    }
                    GaugeAtom::Linf => {
                        g.open("for (var r = 0u; r < rows; r++)")?;
                        g.line(format_args!("s = max(s, abs({s}[r * k + i]));"))?;
                        g.close()?;
                    }
                    GaugeAtom::Tv => {
                        g.open("for (var r = 1u; r < rows; r++)")?;
                        g.line(format_args!(
                            "s += abs({s}[r * k + i] - {s}[(r - 1u) * k + i]);"
                        ))?;
                        g.close()?;
                    }
                }
                g.line(format_args!("total += T({w}) * s;"))?;
                g.close()?;
            }
            g.line(format_args!("{d}[i] = total;"))?;
            g.close()?;
            g.close()?;
            g.finish(
                "colgauge",
                vec![Pass {
                    entry: "main",
                    grid: Grid::Linear(vec![cols]),
                }],
            )
        }
        Stmt::ColumnProx {
            dst,
            src,
            weights,
            gauge,
        } => prox(g, *dst, *src, *weights, gauge),
    }
}

fn sum(mut g: Gen<'_>, dst: BufId, expr: &Expr) -> Res<Shader> {
    let d = g.buf(dst, true);
    let value = g.expr(expr, Some(dst))?;
    let partials = g.partials();
    g.shared.push(("tree", WORKGROUP));
    // The iteration space: the first non-scalar buffer's shape (the interpreter's rule).
    let mut ids = Vec::new();
    expr.buffers(&mut ids);
    let space: Vec<DimId> = ids
        .iter()
        .map(|id| g.shape(*id))
        .find(|s| !s.is_empty())
        .unwrap_or(&[])
        .to_vec();
    let n = g.extent(&space);
    let half = WORKGROUP / 2;
    // Pass 1: each invocation sums a strided share, then a tree per workgroup.
    g.line(format_args!("@compute @workgroup_size({WORKGROUP})"))?;
    g.open("fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>)")?;
    g.line(format_args!("let n = {n};"))?;
    g.line("var acc = T(0);")?;
    g.open(format_args!(
        "for (var i = wid.x * {WORKGROUP}u + lid.x; i < n; i += nwg.x * {WORKGROUP}u)"
    ))?;
    g.line(format_args!("acc += {value};"))?;
    g.close()?;
    g.line("tree[lid.x] = acc;")?;
    g.line("workgroupBarrier();")?;
    g.open(format_args!("for (var s = {half}u; s > 0u; s >>= 1u)"))?;
    g.line("if (lid.x < s) { tree[lid.x] += tree[lid.x + s]; }")?;
    g.line("workgroupBarrier();")?;
    g.close()?;
    g.line(format_args!(
        "if (lid.x == 0u) {{ {partials}[wid.x] = tree[0]; }}"
    ))?;
    g.close()?;
    // Pass 2: one workgroup adds the partials (as many as pass 1 had workgroups).
    g.line(format_args!("@compute @workgroup_size({WORKGROUP})"))?;
    g.open("fn finish(@builtin(local_invocation_id) lid: vec3<u32>)")?;
    g.line(format_args!("let n = {n};"))?;
    g.line(format_args!(
        "let groups = min((n + {}u) / {WORKGROUP}u, {MAX_PARTIALS}u);",
        WORKGROUP - 1
    ))?;
    g.line("var acc = T(0);")?;
    g.line(format_args!(
        "if (lid.x < groups) {{ acc = {partials}[lid.x]; }}"
    ))?;
    g.line("tree[lid.x] = acc;")?;
    g.line("workgroupBarrier();")?;
    g.open(format_args!("for (var s = {half}u; s > 0u; s >>= 1u)"))?;
    g.line("if (lid.x < s) { tree[lid.x] += tree[lid.x + s]; }")?;
    g.line("workgroupBarrier();")?;
    g.close()?;
    g.line(format_args!("if (lid.x == 0u) {{ {d}[0] = tree[0]; }}"))?;
    g.close()?;
    g.finish(
        "sum",
        vec![
            Pass {
                entry: "main",
                grid: Grid::Partials(space),
            },
            Pass {
                entry: "finish",
                grid: Grid::Single,
            },
        ],
    )
}

#[allow(clippy::too_many_arguments)]
fn gemm(
    mut g: Gen<'_>,
    dst: BufId,
    a: BufId,
    trans_a: bool,
    b: BufId,
    trans_b: bool,
    alpha: f64,
    accumulate: bool,
) -> Res<Shader> {
    let d = g.buf(dst, true);
    let an = g.buf(a, false);
    let bn = g.buf(b, false);
    let (rows, cols) = (g.shape(dst)[0], g.shape(dst)[1]);
    let (a0, a1) = (g.shape(a)[0], g.shape(a)[1]);
    let (b1,) = (g.shape(b)[1],);
    let inner = if trans_a { a0 } else { a1 };
    let alpha = g.constant(alpha)?;
    g.shared.push(("tile_a", TILE * TILE));
    g.shared.push(("tile_b", TILE * TILE));
    // op(A)[i, k] and op(B)[k, j] in row-major storage.
    let a_at = if trans_a {
        format!("{an}[ka * lda + row]")
    } else {
        format!("{an}[row * lda + ka]")
    };
    let b_at = if trans_b {
        format!("{bn}[col * ldb + kb]")
    } else {
        format!("{bn}[kb * ldb + col]")
    };
    let (m_e, n_e, k_e, lda_e, ldb_e) =
        (g.dim(rows), g.dim(cols), g.dim(inner), g.dim(a1), g.dim(b1));
    g.line(format_args!("@compute @workgroup_size({TILE}, {TILE})"))?;
    g.open("fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>)")?;
    g.line(format_args!("let m = {m_e};"))?;
    g.line(format_args!("let n = {n_e};"))?;
    g.line(format_args!("let depth = {k_e};"))?;
    g.line(format_args!("let lda = {lda_e};"))?;
    g.line(format_args!("let ldb = {ldb_e};"))?;
    g.line(format_args!("let tiles_m = (m + {}u) / {TILE}u;", TILE - 1))?;
    g.line(format_args!("let tiles_n = (n + {}u) / {TILE}u;", TILE - 1))?;
    g.open("for (var tr = wid.y; tr < tiles_m; tr += nwg.y)")?;
    g.open("for (var tc = wid.x; tc < tiles_n; tc += nwg.x)")?;
    g.line(format_args!("let row = tr * {TILE}u + lid.y;"))?;
    g.line(format_args!("let col = tc * {TILE}u + lid.x;"))?;
    g.line("var acc = T(0);")?;
    g.open(format_args!("for (var k0 = 0u; k0 < depth; k0 += {TILE}u)"))?;
    g.line("let ka = k0 + lid.x;")?;
    g.line("var va = T(0);")?;
    g.line(format_args!(
        "if (row < m && ka < depth) {{ va = {a_at}; }}"
    ))?;
    g.line(format_args!("tile_a[lid.y * {TILE}u + lid.x] = va;"))?;
    g.line("let kb = k0 + lid.y;")?;
    g.line("var vb = T(0);")?;
    g.line(format_args!(
        "if (kb < depth && col < n) {{ vb = {b_at}; }}"
    ))?;
    g.line(format_args!("tile_b[lid.y * {TILE}u + lid.x] = vb;"))?;
    g.line("workgroupBarrier();")?;
    g.open(format_args!("for (var kk = 0u; kk < {TILE}u; kk++)"))?;
    g.line(format_args!(
        "acc += tile_a[lid.y * {TILE}u + kk] * tile_b[kk * {TILE}u + lid.x];"
    ))?;
    g.close()?;
    g.line("workgroupBarrier();")?;
    g.close()?;
    g.open("if (row < m && col < n)")?;
    if accumulate {
        g.line(format_args!(
            "{d}[row * n + col] = {d}[row * n + col] + T({alpha}) * acc;"
        ))?;
    } else {
        g.line(format_args!("{d}[row * n + col] = T({alpha}) * acc;"))?;
    }
    g.close()?;
    g.close()?;
    g.close()?;
    g.close()?;
    g.finish(
        "gemm",
        vec![Pass {
            entry: "main",
            grid: Grid::Tiles { rows, cols },
        }],
    )
}

fn prox(mut g: Gen<'_>, dst: BufId, src: BufId, weights: BufId, gauge: &Gauge) -> Res<Shader> {
    let d = g.buf(dst, true);
    let s = g.buf(src, false);
    let wn = g.buf(weights, false);
    let (rows, cols) = (g.shape(src)[0], g.shape(src)[1]);
    let (rows_e, cols_e) = (g.dim(rows), g.dim(cols));
    let has = |atom| gauge.terms.iter().any(|(_, a)| *a == atom);
    let x = |index: &str| format!("{d}[({index}) * k + col]");
    // The atoms' proxes in place on column `col` of the destination, weight `c` > 0.
    if has(GaugeAtom::Tv) {
        // Condat's direct algorithm (gauge::tv_prox), in place: it writes only entries before
        // the ones it still reads.
        g.open("fn prox_tv(col: u32, rows: u32, k: u32, lambda: T)")?;
        g.line("if (rows == 0u || lambda <= T(0)) { return; }")?;
        g.line("var i = 0u; var i0 = 0u; var iplus = 0u; var iminus = 0u;")?;
        g.line("var umin = lambda; var umax = -lambda;")?;
        g.line(format_args!(
            "var vmin = {} - lambda; var vmax = {} + lambda;",
            x("0u"),
            x("0u")
        ))?;
        g.open("loop")?;
        g.open("loop")?;
        g.line("if (i != rows - 1u) { break; }")?;
        g.open("if (umin < T(0))")?;
        g.line(format_args!(
            "loop {{ if (i0 > iminus) {{ break; }} {} = vmin; i0++; }}",
            x("i0")
        ))?;
        g.line("i = i0; iminus = i0;")?;
        g.line(format_args!("vmin = {};", x("i0")))?;
        g.line("umin = lambda; umax = vmin + umin - vmax;")?;
        g.close()?;
        g.open("else if (umax > T(0))")?;
        g.line(format_args!(
            "loop {{ if (i0 > iplus) {{ break; }} {} = vmax; i0++; }}",
            x("i0")
        ))?;
        g.line("i = i0; iplus = i0;")?;
        g.line(format_args!("vmax = {};", x("i0")))?;
        g.line("umax = -lambda; umin = vmax + umax - vmin;")?;
        g.close()?;
        g.open("else")?;
        g.line("vmin += umin / T(i - i0 + 1u);")?;
        g.line(format_args!(
            "loop {{ if (i0 > i) {{ break; }} {} = vmin; i0++; }}",
            x("i0")
        ))?;
        g.line("return;")?;
        g.close()?;
        g.close()?;
        g.line(format_args!("umin += {} - vmin;", x("i + 1u")))?;
        g.open("if (umin < -lambda)")?;
        g.line(format_args!(
            "loop {{ if (i0 > iminus) {{ break; }} {} = vmin; i0++; }}",
            x("i0")
        ))?;
        g.line("i = i0; iminus = i0; iplus = i0;")?;
        g.line(format_args!("vmin = {};", x("i0")))?;
        g.line("vmax = vmin + T(2) * lambda; umin = lambda; umax = -lambda;")?;
        g.line("continue;")?;
        g.close()?;
        g.line(format_args!("umax += {} - vmax;", x("i + 1u")))?;
        g.open("if (umax > lambda)")?;
        g.line(format_args!(
            "loop {{ if (i0 > iplus) {{ break; }} {} = vmax; i0++; }}",
            x("i0")
        ))?;
        g.line("i = i0; iminus = i0; iplus = i0;")?;
        g.line(format_args!("vmax = {};", x("i0")))?;
        g.line("vmin = vmax - T(2) * lambda; umin = lambda; umax = -lambda;")?;
        g.line("continue;")?;
        g.close()?;
        g.line("i++;")?;
        g.open("if (umin >= lambda)")?;
        g.line("iminus = i; vmin += (umin - lambda) / T(iminus - i0 + 1u); umin = lambda;")?;
        g.close()?;
        g.open("if (umax <= -lambda)")?;
        g.line("iplus = i; vmax += (umax + lambda) / T(iplus - i0 + 1u); umax = -lambda;")?;
        g.close()?;
        g.close()?;
        g.close()?;
    }
    if has(GaugeAtom::Linf) {
        // x − c·P_{ℓ1 ball}(x / c): the threshold θ by Michelot's active-set iteration (exact
        // after at most `rows` rounds; no sort, no scratch).
        g.open("fn prox_linf(col: u32, rows: u32, k: u32, c: T)")?;
        g.line("var total = T(0);")?;
        g.line(format_args!(
            "for (var r = 0u; r < rows; r++) {{ total += abs({} / c); }}",
            x("r")
        ))?;
        g.line("var theta = T(0);")?;
        g.open("if (total > T(1))")?;
        g.line("theta = (total - T(1)) / T(rows);")?;
        g.open("for (var it = 0u; it <= rows; it++)")?;
        g.line("var count = 0u; var s = T(0);")?;
        g.open("for (var r = 0u; r < rows; r++)")?;
        g.line(format_args!("let a = abs({} / c);", x("r")))?;
        g.line("if (a > theta) { count++; s += a; }")?;
        g.close()?;
        g.line("if (count == 0u) { break; }")?;
        g.line("let t = (s - T(1)) / T(count);")?;
        g.line("if (t <= theta) { break; }")?;
        g.line("theta = t;")?;
        g.close()?;
        g.close()?;
        g.open("for (var r = 0u; r < rows; r++)")?;
        g.line(format_args!("let v = {} / c;", x("r")))?;
        g.line("let p = sign(v) * max(abs(v) - theta, T(0));")?;
        g.line(format_args!("{} = {} - c * p;", x("r"), x("r")))?;
        g.close()?;
        g.close()?;
    }
    g.linear_entry()?;
    g.line(format_args!("let rows = {rows_e};"))?;
    g.line(format_args!("let k = {cols_e};"))?;
    g.linear_loop("k")?;
    g.line("let col = i;")?;
    g.open("for (var r = 0u; r < rows; r++)")?;
    if gauge.nonneg {
        g.line(format_args!("{} = max({s}[r * k + col], T(0));", x("r")))?;
    } else {
        g.line(format_args!("{} = {s}[r * k + col];", x("r")))?;
    }
    g.close()?;
    g.line(format_args!("let c = {wn}[col];"))?;
    g.line("if (!(c > T(0))) { continue; }")?;
    for order in [GaugeAtom::Tv, GaugeAtom::L1, GaugeAtom::Linf, GaugeAtom::L2] {
        for (w, atom) in &gauge.terms {
            if *atom != order {
                continue;
            }
            let w = g.constant(*w)?;
            g.open("")?;
            g.line(format_args!("let weight = c * T({w});"))?;
            match atom {
                GaugeAtom::Tv => g.line("prox_tv(col, rows, k, weight);")?,
                GaugeAtom::Linf => {
                    g.line("if (weight > T(0)) { prox_linf(col, rows, k, weight); }")?
                }
                GaugeAtom::L1 => {
                    g.open("for (var r = 0u; r < rows; r++)")?;
                    g.line(format_args!("let v = {};", x("r")))?;
                    g.line(format_args!(
                        "{} = sign(v) * max(abs(v) - weight, T(0));",
                        x("r")
                    ))?;
                    g.close()?;
                }
                GaugeAtom::L2 => {
                    g.line("var norm = T(0);")?;
                    g.open("for (var r = 0u; r < rows; r++)")?;
                    g.line(format_args!("let v = {};", x("r")))?;
                    g.line("norm += v * v;")?;
                    g.close()?;
                    g.line("norm = sqrt(norm);")?;
                    g.line("var factor = T(0);")?;
                    g.line("if (norm > weight) { factor = T(1) - weight / norm; }")?;
                    g.open("for (var r = 0u; r < rows; r++)")?;
                    g.line(format_args!("{} = {} * factor;", x("r"), x("r")))?;
                    g.close()?;
                }
            }
            g.close()?;
        }
    }
    g.close()?;
    g.close()?;
    g.finish(
        "colprox",
        vec![Pass {
            entry: "main",
            grid: Grid::Linear(vec![cols]),
        }],
    )
}
